//! [`HttpConnection`]: the sans-I/O state machine for one HTTP/1.1 connection.
//!
//! Owns the request/response cycle of one transport connection: it takes request bytes with
//! [`HttpConnection::on_bytes`], produces response bytes with [`HttpConnection::poll_output`]
//! (or the zero-copy [`HttpConnection::peek_output`] + [`HttpConnection::advance_output`], which
//! lets a transport hand file ranges to `sendfile` or copy them straight into NIC frames), and
//! reports deadlines with [`HttpConnection::next_deadline`] / [`HttpConnection::on_timeout`].
//!
//! Promises: responses leave in request order (RFC 9112 §9.3.2) because the next pipelined head
//! is not even read until the current response has been handed out — unread bytes are left to
//! the transport, which is the natural back-pressure of a TCP receive window. Memory is bounded:
//! one head buffer of at most `max_head_bytes`, one response head, one open file, and with
//! deferred file I/O at most [`UPLOAD_BUFFERS`] upload buffers. It never reads a clock, never
//! blocks on the network and never panics on any input.
//!
//! File work may stay here (inline: the kernel-socket server) or be deferred to the transport
//! ([`HttpConnection::defer_file_io`]: `linerate serve`, whose shard must never wait for the
//! disk): an open-file cache miss or an upload's create/write/commit becomes a request the
//! transport runs on another thread, and the connection waits for its answer. Both give the
//! same responses.

use super::body_reader::{BodyReader, BodyStep, Framing, Sink};
use super::chunked::ChunkedDecoder;
use super::date::HttpDateMemo;
pub use super::deferred::{UploadAnswer, UploadJob};
use super::deferred::{UploadIo, UPLOAD_BUFFERS};
use super::file_cache::{Lookup, Miss};
use super::files::{FileBody, FileError, Upload};
use super::parse::{parse_head, BodyFraming, HeadBuffer, Method, RangeRequest, RequestHead, Version};
use super::response::{ConnectionField, ContentRange, HeadMemo, ResponseHead, Status};
use super::Site;
use linerate_stack::time::Instant;
use std::io::Write;
use std::sync::Arc;

/// Room reserved for a decoded request path, so typical paths never grow it.
const TYPICAL_PATH_BYTES: usize = 128;
/// Room reserved for pending response bytes: a response head (~250 bytes) or a short error body.
const TYPICAL_OUT_BYTES: usize = 512;

/// The next thing a transport should send.
#[derive(Debug, Clone, Copy)]
pub enum Output<'a> {
    /// Nothing to send until more input arrives.
    Idle,
    /// Send these bytes (a response head, a small body, `100 Continue`).
    Bytes(&'a [u8]),
    /// Send `len` bytes of `file` starting at `offset` (with sendfile, or [`FileBody::read_at`]).
    File { file: &'a FileBody, offset: u64, len: u64 },
}

/// How the response to the current request is framed and whether the connection persists.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reply {
    head_only: bool,
    keep_alive: bool,
    http10: bool,
}

impl Reply {
    fn from_request(req: &RequestHead<'_>) -> Self {
        Reply {
            head_only: req.method == Method::Head,
            keep_alive: req.keep_alive,
            http10: req.version == Version::Http10,
        }
    }

    /// For a request we could not parse: always close, as the framing cannot be trusted.
    const BROKEN: Reply = Reply { head_only: false, keep_alive: false, http10: false };

    fn connection_field(self) -> ConnectionField {
        match (self.keep_alive, self.http10) {
            (false, _) => ConnectionField::Close,
            (true, true) => ConnectionField::KeepAlive,
            (true, false) => ConnectionField::Omit,
        }
    }
}

#[derive(Debug)]
enum Phase {
    /// Reading (or waiting for) a request head.
    Head,
    /// Reading a request body.
    Body(BodyReader),
    /// No further requests will be read; input is discarded.
    Closing,
}

/// A file range being sent.
#[derive(Debug)]
struct BodyCursor {
    /// Shared with the site's open-file cache and other responses of the same file.
    file: Arc<FileBody>,
    offset: u64,
    remaining: u64,
}

/// Where an upload's bytes go once its temporary file exists.
enum UploadSink {
    Inline(Upload),
    Deferred { id: u64, alive: Arc<u64> },
}

/// What a connection with deferred file I/O waits for before it can answer.
#[derive(Debug)]
enum Awaiting {
    /// The file of a GET or HEAD (not in the open-file cache).
    Open(Miss),
    /// The temporary file of a PUT; the body is read once it exists.
    UploadBegin { id: u64, alive: Arc<u64> },
    /// The commit of a complete upload.
    UploadCommit { id: u64, _alive: Arc<u64>, reply: Reply },
}

/// One HTTP/1.1 connection.
#[derive(Debug)]
pub struct HttpConnection {
    site: Arc<Site>,
    head: HeadBuffer,
    /// Decoded path of the current request; keeps its capacity across requests.
    path: Vec<u8>,
    phase: Phase,
    out: Vec<u8>,
    out_pos: usize,
    body: Option<BodyCursor>,
    close_after_output: bool,
    closed: bool,
    /// When the first byte of the head being read arrived.
    head_started: Option<Instant>,
    last_activity: Instant,
    /// Output was handed out since the last `on_timeout`; counts as activity.
    output_progress: bool,
    requests: u64,
    aborted: bool,
    /// File work that may wait for the disk is left to the transport
    /// ([`HttpConnection::defer_file_io`]).
    defer_file_io: bool,
    /// Set while the response waits for deferred file work. The request head stays in the
    /// head buffer meanwhile and is parsed again when the answer comes.
    awaiting: Option<Awaiting>,
    upload_io: UploadIo,
    /// Formatted `Date` and `Last-Modified` values, kept across requests and reuses.
    dates: HttpDateMemo,
    /// The last response head and its inputs, kept across requests and reuses.
    last_head: HeadMemo,
}

impl HttpConnection {
    /// A new connection accepted at `now`.
    pub fn new(site: Arc<Site>, now: Instant) -> Self {
        HttpConnection {
            site,
            head: HeadBuffer::new(),
            path: Vec::with_capacity(TYPICAL_PATH_BYTES),
            phase: Phase::Head,
            out: Vec::with_capacity(TYPICAL_OUT_BYTES),
            out_pos: 0,
            body: None,
            close_after_output: false,
            closed: false,
            head_started: None,
            last_activity: now,
            output_progress: false,
            requests: 0,
            aborted: false,
            defer_file_io: false,
            awaiting: None,
            upload_io: UploadIo::default(),
            dates: HttpDateMemo::default(),
            last_head: HeadMemo::default(),
        }
    }

    /// Makes this a new connection accepted at `now`, keeping the buffers' memory (a transport
    /// that pools its connections allocates nothing per accept). Nothing of the previous
    /// connection survives: its head, path and pending output are cleared, its file and upload
    /// references dropped (abandoning a deferred upload, as dropping the connection would).
    /// [`defer_file_io`](Self::defer_file_io) stays as the transport set it. A buffer that grew
    /// past its typical size for one odd request is shrunk back, so pooled memory stays small.
    pub fn reset(&mut self, now: Instant) {
        // Destructured without `..`: a field added later must be reset here or it fails to build.
        let HttpConnection {
            site: _,
            head,
            path,
            phase,
            out,
            out_pos,
            body,
            close_after_output,
            closed,
            head_started,
            last_activity,
            output_progress,
            requests,
            aborted,
            defer_file_io: _,
            awaiting,
            upload_io,
            // Memos of pure functions: right for any connection.
            dates: _,
            last_head: _,
        } = self;
        head.reset();
        path.clear();
        path.shrink_to(TYPICAL_PATH_BYTES);
        *phase = Phase::Head;
        out.clear();
        out.shrink_to(TYPICAL_OUT_BYTES);
        *out_pos = 0;
        *body = None;
        *close_after_output = false;
        *closed = false;
        *head_started = None;
        *last_activity = now;
        *output_progress = false;
        *requests = 0;
        *aborted = false;
        *awaiting = None;
        // Spare upload buffers are dropped too: uploads are rare, pooled connections many.
        *upload_io = UploadIo::default();
    }

    /// The site this connection serves.
    pub fn site(&self) -> &Arc<Site> {
        &self.site
    }

    /// From now on file work that may wait for the disk is left to the transport, to do on a
    /// thread that may block: a request whose file is not in the open-file cache waits
    /// ([`pending_open`](Self::pending_open) names the path) until the transport hands the
    /// result to [`on_opened`](Self::on_opened); an upload's create, writes and commit become
    /// [`UploadJob`]s. Meanwhile no further input is consumed.
    pub fn defer_file_io(&mut self) {
        self.defer_file_io = true;
    }

    /// The decoded request path waiting to be opened with [`crate::http::Root::open_file`],
    /// if any.
    pub fn pending_open(&self) -> Option<&[u8]> {
        matches!(self.awaiting, Some(Awaiting::Open(_))).then_some(&self.path[..])
    }

    /// The outcome of opening [`pending_open`](Self::pending_open)'s path; the response then
    /// proceeds exactly as if the file had been opened inline. Ignored if nothing is pending
    /// (the connection was aborted meanwhile).
    pub fn on_opened(&mut self, now: Instant, opened: Result<FileBody, FileError>) {
        let Some(Awaiting::Open(miss)) = self.awaiting.take() else { return };
        self.resume(now, |conn, req, reply| {
            let file = opened.map(|f| conn.site.files().fill(miss, &conn.path, f));
            conn.respond_with(now, req, reply, file);
        });
    }

    /// True while a response waits for deferred file work (an open, an upload's create or
    /// commit): the connection is not idle even though it has nothing to send.
    pub fn awaits_file_io(&self) -> bool {
        self.awaiting.is_some()
    }

    /// The next upload job for the transport, in order. Give it back with
    /// [`return_upload_job`](Self::return_upload_job) if it cannot be queued now.
    pub fn take_upload_job(&mut self) -> Option<UploadJob> {
        self.upload_io.jobs.pop_front()
    }

    /// Puts back a job [`take_upload_job`](Self::take_upload_job) gave out (the transport's
    /// queue was full); it is given out again first.
    pub fn return_upload_job(&mut self, job: UploadJob) {
        self.upload_io.jobs.push_front(job);
    }

    /// Upload jobs waiting to be taken.
    pub fn has_upload_jobs(&self) -> bool {
        !self.upload_io.jobs.is_empty()
    }

    /// Most upload write buffers this connection had in use at once (at most
    /// [`UPLOAD_BUFFERS`]).
    pub fn most_upload_buffers(&self) -> usize {
        self.upload_io.most_in_flight
    }

    /// The outcome of an [`UploadJob`]. Answers for an upload this connection gave up are
    /// ignored.
    pub fn on_upload_answer(&mut self, now: Instant, answer: UploadAnswer) {
        self.last_activity = now;
        match answer {
            UploadAnswer::Written { id, buf, ok } => {
                if self.upload_io.spare.len() < UPLOAD_BUFFERS {
                    self.upload_io.spare.push(buf);
                }
                let mut failed = false;
                if let Phase::Body(BodyReader { sink: Sink::Deferred { id: mine, in_flight, .. }, .. }) =
                    &mut self.phase
                {
                    if *mine == id {
                        *in_flight -= 1;
                        failed = !ok;
                    }
                }
                if failed {
                    self.body_failed(now, Status::INTERNAL_ERROR);
                }
            }
            UploadAnswer::Begun { id, result } => {
                let Some(Awaiting::UploadBegin { id: mine, alive }) = self.awaiting.take() else { return };
                if mine != id {
                    self.awaiting = Some(Awaiting::UploadBegin { id: mine, alive });
                    return;
                }
                let sink = result.map(|()| UploadSink::Deferred { id, alive });
                self.resume(now, |conn, req, reply| conn.continue_upload(now, req, reply, sink));
            }
            UploadAnswer::Committed { id, result } => {
                match self.awaiting.take() {
                    Some(Awaiting::UploadCommit { id: mine, reply, .. }) if mine == id => {
                        self.upload_committed(now, result, reply);
                    }
                    other => self.awaiting = other,
                }
                self.check_drained();
            }
        }
    }

    /// Parses the waiting request head again and goes on with `then`.
    fn resume(&mut self, now: Instant, then: impl FnOnce(&mut Self, &RequestHead<'_>, Reply)) {
        self.last_activity = now;
        let head = std::mem::take(&mut self.head);
        // The head parsed when it arrived, and parsing is a pure function of its bytes.
        if let Ok(req) = parse_head(head.bytes(), &self.site.config().limits, &mut self.path) {
            let reply = Reply::from_request(&req);
            then(self, &req, reply);
        }
        self.head = head;
        if self.awaiting.is_none() {
            self.head.clear();
        }
        self.check_drained();
    }

    /// Feeds received bytes; returns how many were consumed. Bytes are left unconsumed while a
    /// response is still being sent (pipelining back-pressure): the transport keeps them and
    /// calls `on_bytes` again once the output has been drained.
    pub fn on_bytes(&mut self, now: Instant, input: &[u8]) -> usize {
        if self.closed || matches!(self.phase, Phase::Closing) {
            return input.len();
        }
        self.last_activity = now;
        let mut consumed = 0;
        while consumed < input.len() {
            match &mut self.phase {
                Phase::Closing => return input.len(),
                Phase::Body(reader) => {
                    let limit = self.site.config().max_upload_bytes;
                    let (used, step) = reader.feed(&input[consumed..], limit, &mut self.upload_io);
                    consumed += used;
                    match step {
                        BodyStep::More => {}
                        BodyStep::Blocked => break,
                        BodyStep::Done => self.finish_body(now),
                        BodyStep::Failed(status) => self.body_failed(now, status),
                    }
                }
                Phase::Head => {
                    if self.has_output() {
                        break;
                    }
                    if self.head.is_empty() {
                        self.head_started = Some(now);
                    }
                    match self.head.push(&input[consumed..], &self.site.config().limits) {
                        Ok((used, complete)) => {
                            consumed += used;
                            if complete {
                                self.on_head(now);
                            }
                        }
                        Err(e) => {
                            self.fail(now, Status(e.status()));
                            return input.len();
                        }
                    }
                }
            }
        }
        consumed
    }

    /// The peer will send nothing more (FIN). Call it only once every byte received before the
    /// FIN has been consumed by `on_bytes`.
    pub fn on_eof(&mut self) {
        // An unfinished upload is dropped here, which deletes its temporary file (a deferred
        // one's is deleted by the transport, and its unwritten buffers are not written).
        if matches!(self.phase, Phase::Body(_)) {
            self.upload_io.jobs.retain(|j| !matches!(j, UploadJob::Write { .. }));
        }
        self.phase = Phase::Closing;
        self.head_started = None;
        self.close_after_output = true;
        self.check_drained();
    }

    /// True when the transport should close the connection: everything owed has been handed
    /// out (or the connection was aborted).
    pub fn wants_close(&self) -> bool {
        self.closed
    }

    /// True if the connection was cut short (timeout, file error mid-body) rather than closed
    /// cleanly; the transport may then reset instead of closing gracefully.
    pub fn was_aborted(&self) -> bool {
        self.aborted
    }

    /// Requests whose heads were parsed on this connection.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// When [`on_timeout`](Self::on_timeout) should next be called; `None` once closed.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let config = self.site.config();
        let idle = self.last_activity + config.idle_timeout;
        Some(match self.head_started {
            Some(start) => (start + config.header_timeout).min(idle),
            None => idle,
        })
    }

    /// Applies the deadlines: a head not complete within `header_timeout` of its first byte gets
    /// 408 and the connection closes; no progress for `idle_timeout` closes the connection.
    pub fn on_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        if std::mem::take(&mut self.output_progress) {
            self.last_activity = self.last_activity.max(now);
        }
        let config = *self.site.config();
        if let Some(start) = self.head_started {
            if now >= start + config.header_timeout {
                self.head_started = None;
                self.fail(now, Status::REQUEST_TIMEOUT);
                return;
            }
        }
        if now >= self.last_activity + config.idle_timeout {
            if matches!(self.phase, Phase::Head) && !self.has_output() && self.head.is_empty() {
                // An idle keep-alive connection: closing it is routine, not an abort.
                self.phase = Phase::Closing;
                self.closed = true;
            } else {
                self.abort();
            }
        }
    }

    /// What to send next, without consuming it; see [`advance_output`](Self::advance_output).
    pub fn peek_output(&self) -> Output<'_> {
        if self.out_pos < self.out.len() {
            return Output::Bytes(&self.out[self.out_pos..]);
        }
        match &self.body {
            Some(b) => Output::File { file: &b.file, offset: b.offset, len: b.remaining },
            None => Output::Idle,
        }
    }

    /// Marks `n` bytes of what [`peek_output`](Self::peek_output) returned as sent.
    pub fn advance_output(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.output_progress = true;
        if self.out_pos < self.out.len() {
            self.out_pos = (self.out_pos + n).min(self.out.len());
            if self.out_pos == self.out.len() {
                self.out.clear();
                self.out_pos = 0;
            }
        } else if let Some(b) = &mut self.body {
            let n = (n as u64).min(b.remaining);
            b.offset += n;
            b.remaining -= n;
            if b.remaining == 0 {
                self.body = None;
            }
        }
        self.check_drained();
    }

    /// Fills `dst` with the next response bytes (heads, then file content via `read_at`);
    /// returns how many. Zero means nothing is ready. A file that shrank or failed to read
    /// mid-body aborts the connection, since its `Content-Length` can no longer be honoured.
    pub fn poll_output(&mut self, dst: &mut [u8]) -> usize {
        let mut filled = 0;
        while filled < dst.len() {
            let free = &mut dst[filled..];
            let n = match self.peek_output() {
                Output::Idle => break,
                Output::Bytes(bytes) => {
                    let n = bytes.len().min(free.len());
                    free[..n].copy_from_slice(&bytes[..n]);
                    n
                }
                Output::File { file, offset, len } => {
                    let want = usize::try_from(len).unwrap_or(usize::MAX).min(free.len());
                    match file.read_at(offset, &mut free[..want]) {
                        Ok(n) if n > 0 => n,
                        _ => {
                            self.abort();
                            break;
                        }
                    }
                }
            };
            filled += n;
            self.advance_output(n);
        }
        filled
    }

    /// The pending bytes (a response head) and, when the body after them is held in memory
    /// ([`FileBody::kept_bytes`]), that body's remaining bytes, so a transport can queue the
    /// whole response with one write. `None` when no bytes are pending or the body is not in
    /// memory; [`advance_output`](Self::advance_output) then takes the head and the body in turn.
    pub fn peek_bytes_and_kept_body(&self) -> Option<(&[u8], &[u8])> {
        if self.out_pos >= self.out.len() {
            return None;
        }
        let b = self.body.as_ref()?;
        let start = usize::try_from(b.offset).ok()?;
        let end = start.checked_add(usize::try_from(b.remaining).ok()?)?;
        let body = b.file.kept_bytes()?.get(start..end)?;
        Some((&self.out[self.out_pos..], body))
    }

    /// True if a file range follows the pending bytes, so a transport may hold the bytes back
    /// (`MSG_MORE`) to send the head and the first body bytes in one segment.
    pub fn body_follows(&self) -> bool {
        self.body.is_some()
    }

    /// A response is owed: bytes or a body to hand out, or a file being opened for one.
    fn has_output(&self) -> bool {
        self.out_pos < self.out.len() || self.body.is_some() || self.awaiting.is_some()
    }

    fn check_drained(&mut self) {
        if self.close_after_output && !self.has_output() {
            self.closed = true;
        }
    }

    /// Drops everything and asks the transport to close.
    fn abort(&mut self) {
        self.phase = Phase::Closing;
        self.out.clear();
        self.out_pos = 0;
        self.body = None;
        // Dropping a deferred upload's token abandons it.
        self.awaiting = None;
        self.upload_io.jobs.clear();
        self.closed = true;
        self.aborted = true;
    }

    fn on_head(&mut self, now: Instant) {
        self.head_started = None;
        let head = std::mem::take(&mut self.head);
        match parse_head(head.bytes(), &self.site.config().limits, &mut self.path) {
            Ok(req) => self.dispatch(now, &req),
            Err(e) => self.fail(now, Status(e.status())),
        }
        self.head = head;
        if self.awaiting.is_none() {
            self.head.clear();
        }
    }

    fn dispatch(&mut self, now: Instant, req: &RequestHead<'_>) {
        self.requests += 1;
        let reply = Reply::from_request(req);
        match req.method {
            Method::Get | Method::Head => self.respond_file(now, req, reply),
            Method::Put if self.site.config().allow_uploads => return self.start_upload(now, req, reply),
            Method::Put | Method::Other => {
                self.respond_simple(now, Status::METHOD_NOT_ALLOWED, reply, ContentRange::None)
            }
        }
        self.skip_body(req.body);
    }

    /// After answering a request that carries a body we do not want, read past that body.
    fn skip_body(&mut self, framing: BodyFraming) {
        let framing = match framing {
            BodyFraming::None => return,
            BodyFraming::Length(n) if n > self.site.config().max_upload_bytes => {
                // Not worth reading: stop here and close once the answer is out.
                self.stop_reading();
                return;
            }
            BodyFraming::Length(n) => Framing::Length { remaining: n },
            BodyFraming::Chunked => Framing::Chunked(ChunkedDecoder::new()),
        };
        if !matches!(self.phase, Phase::Closing) {
            self.phase = Phase::Body(BodyReader { framing, sink: Sink::Discard, received: 0 });
        }
    }

    fn stop_reading(&mut self) {
        self.head_started = None;
        self.phase = Phase::Closing;
        self.close_after_output = true;
        self.check_drained();
    }

    fn respond_file(&mut self, now: Instant, req: &RequestHead<'_>, reply: Reply) {
        let file = match self.site.files().lookup(&self.path, now) {
            Lookup::Hit(file) => Ok(file),
            Lookup::Miss(miss) if self.defer_file_io => {
                self.awaiting = Some(Awaiting::Open(miss));
                return;
            }
            Lookup::Miss(miss) => {
                self.site.root().open_file(&self.path).map(|f| self.site.files().fill(miss, &self.path, f))
            }
        };
        self.respond_with(now, req, reply, file);
    }

    /// The response to a GET or HEAD once its file is open (or failed to open).
    fn respond_with(
        &mut self,
        now: Instant,
        req: &RequestHead<'_>,
        reply: Reply,
        file: Result<Arc<FileBody>, FileError>,
    ) {
        let file = match file {
            Ok(file) => file,
            Err(e) => return self.respond_simple(now, Status(e.status()), reply, ContentRange::None),
        };
        let etag = file.etag();
        let modified = file.modified_unix_secs();
        let mut head = ResponseHead::new(Status::OK, self.site.unix_secs(now));
        head.etag = Some(etag);
        head.last_modified = Some(modified);
        head.accept_ranges = true;
        head.connection = reply.connection_field();
        // RFC 9110 §13.2.2: If-None-Match takes precedence; If-Modified-Since only without it.
        let not_modified = if req.if_none_match().is_empty() {
            req.if_modified_since.is_some_and(|since| modified <= since)
        } else {
            etag.matches_any(req.if_none_match())
        };
        if not_modified {
            head.status = Status::NOT_MODIFIED;
            return self.emit(&head, reply);
        }
        let (mut first, mut len) = (0, file.len());
        let range_applies = req.if_range.is_none_or(|v| etag.if_range_holds(v, modified));
        if let (Method::Get, RangeRequest::Single(range), true) = (req.method, req.range, range_applies) {
            let Some((f, l)) = range.resolve(file.len()) else {
                let unsatisfied = ContentRange::Unsatisfied { total: file.len() };
                return self.respond_simple(now, Status::RANGE_NOT_SATISFIABLE, reply, unsatisfied);
            };
            (first, len) = (f, l);
            head.status = Status::PARTIAL_CONTENT;
            head.content_range = ContentRange::Bytes { first, last: first + len - 1, total: file.len() };
        }
        head.content_length = Some(len);
        head.content_type = Some(file.content_type());
        self.emit(&head, reply);
        if !reply.head_only && len > 0 {
            self.body = Some(BodyCursor { file, offset: first, remaining: len });
        }
    }

    fn start_upload(&mut self, now: Instant, req: &RequestHead<'_>, reply: Reply) {
        let limit = self.site.config().max_upload_bytes;
        if matches!(req.body, BodyFraming::Length(n) if n > limit) {
            // §15.5.14: refuse before reading; the unread body means the connection must close.
            let reply = Reply { keep_alive: false, ..reply };
            self.respond_simple(now, Status::PAYLOAD_TOO_LARGE, reply, ContentRange::None);
            return self.stop_reading();
        }
        let id = self.site.next_upload_id();
        if self.defer_file_io {
            let alive = Arc::new(id);
            let job =
                UploadJob::Begin { id, path: self.path.as_slice().into(), alive: Arc::downgrade(&alive) };
            self.upload_io.jobs.push_back(job);
            self.awaiting = Some(Awaiting::UploadBegin { id, alive });
            return;
        }
        let sink = self.site.root().begin_upload(&self.path, id).map(UploadSink::Inline);
        self.continue_upload(now, req, reply, sink);
    }

    /// A PUT once its temporary file exists (or could not be made): reads the body into it.
    fn continue_upload(
        &mut self,
        now: Instant,
        req: &RequestHead<'_>,
        reply: Reply,
        sink: Result<UploadSink, FileError>,
    ) {
        let sink = match sink {
            Ok(sink) => sink,
            Err(e) => {
                let has_body = req.body != BodyFraming::None;
                let reply = Reply { keep_alive: reply.keep_alive && !has_body, ..reply };
                self.respond_simple(now, Status(e.status()), reply, ContentRange::None);
                if has_body {
                    self.stop_reading();
                }
                return;
            }
        };
        let sink = match sink {
            UploadSink::Inline(upload) => Sink::Upload { upload, reply },
            UploadSink::Deferred { id, alive } => Sink::Deferred { id, _alive: alive, reply, in_flight: 0 },
        };
        if req.body != BodyFraming::None && matches!(self.phase, Phase::Closing) {
            // The peer finished sending while the file was being made, without the body: an
            // incomplete upload, dropped here as it would have been inline.
            return;
        }
        let framing = match req.body {
            BodyFraming::None => return self.commit_upload(now, sink),
            BodyFraming::Length(n) => Framing::Length { remaining: n },
            BodyFraming::Chunked => Framing::Chunked(ChunkedDecoder::new()),
        };
        if req.expect_continue {
            // §10.1.1: tell the client to send the body now that we know we will accept it.
            self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        self.phase = Phase::Body(BodyReader { framing, sink, received: 0 });
    }

    fn finish_body(&mut self, now: Instant) {
        if let Phase::Body(reader) = std::mem::replace(&mut self.phase, Phase::Head) {
            self.commit_upload(now, reader.sink);
        }
    }

    fn body_failed(&mut self, now: Instant, status: Status) {
        // Replacing the phase drops any upload, deleting its temporary file (a deferred one is
        // deleted by the transport once its token is gone).
        match std::mem::replace(&mut self.phase, Phase::Closing) {
            Phase::Body(BodyReader { sink: Sink::Upload { .. } | Sink::Deferred { .. }, .. }) => {
                self.upload_io.jobs.retain(|j| !matches!(j, UploadJob::Write { .. }));
                self.fail(now, status)
            }
            // The request was answered already; all we can do is stop.
            _ => self.stop_reading(),
        }
    }

    /// Commits a complete upload (a deferred one: asks the transport to, and waits).
    fn commit_upload(&mut self, now: Instant, sink: Sink) {
        match sink {
            Sink::Upload { upload, reply } => self.upload_committed(now, upload.commit(), reply),
            Sink::Deferred { id, _alive, reply, .. } => {
                self.upload_io.jobs.push_back(UploadJob::Commit { id });
                self.awaiting = Some(Awaiting::UploadCommit { id, _alive, reply });
            }
            Sink::Discard => {}
        }
    }

    fn upload_committed(&mut self, now: Instant, committed: Result<bool, FileError>, reply: Reply) {
        // Even a failed commit may have replaced the file: never serve the old one from cache.
        self.site.files().invalidate_all();
        let status = match committed {
            Ok(true) => Status::CREATED,
            Ok(false) => Status::NO_CONTENT,
            Err(e) => Status(e.status()),
        };
        let mut head = ResponseHead::new(status, self.site.unix_secs(now));
        head.connection = reply.connection_field();
        if status.has_body() {
            return self.respond_simple(now, status, reply, ContentRange::None);
        }
        self.emit(&head, reply);
    }

    /// Answers an unparseable or timed-out request and stops reading.
    fn fail(&mut self, now: Instant, status: Status) {
        self.respond_simple(now, status, Reply::BROKEN, ContentRange::None);
        self.stop_reading();
    }

    /// A response with a one-line text body naming the status.
    fn respond_simple(&mut self, now: Instant, status: Status, reply: Reply, range: ContentRange) {
        let mut body = [0u8; 64];
        let mut cursor = &mut body[..];
        let _ = writeln!(cursor, "{} {}", status.0, status.reason());
        let body_len = 64 - cursor.len();
        let mut head = ResponseHead::new(status, self.site.unix_secs(now));
        head.content_length = Some(body_len as u64);
        head.content_type = Some("text/plain; charset=utf-8");
        head.content_range = range;
        head.allow = status == Status::METHOD_NOT_ALLOWED;
        head.connection = reply.connection_field();
        self.emit(&head, reply);
        if !reply.head_only {
            self.out.extend_from_slice(&body[..body_len]);
        }
    }

    fn emit(&mut self, head: &ResponseHead<'_>, reply: Reply) {
        head.emit_memo(&mut self.out, &mut self.dates, &mut self.last_head);
        if !reply.keep_alive {
            self.close_after_output = true;
        }
    }
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
