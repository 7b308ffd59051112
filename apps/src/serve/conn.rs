//! One accepted connection: moves bytes between the engine's buffers and an [`HttpConnection`].
//!
//! Owns a fixed receive staging buffer (the HTTP core may leave input unconsumed while a
//! response is pending; the engine's receive window then pushes back on the client) and the
//! close sequence: when the core wants to close we half-close (FIN after the queued response),
//! keep discarding input, and release the handle once our FIN is acknowledged, so "no
//! connections left" really means every response was delivered.
//!
//! A finished connection is not freed: [`Conn::retire`] drops what belonged to it and keeps
//! its buffers, and [`Conn::reopen`] gives them to the next accepted connection (the shard's
//! pool, `shard.rs`), so a connection's life cycle allocates nothing in steady state. The
//! staging buffer is not zeroed again on reuse: only bytes `engine.read` wrote since (the
//! `start..end` window) are ever looked at.
//!
//! A request whose file is not in the open-file cache waits, without reading further input,
//! while the prefetch thread opens it ([`Conn::on_opened`] takes the answer).
//!
//! File bodies go through [`BodyPath`] (see `body.rs`): large ones are lent to the engine from
//! a mapping, ranges the prefetcher reported resident; small ones are read into the send ring
//! from the page cache (the prefetcher reads uncached ones in first). A write refused for lack
//! of space leaves the engine owing us a `Writable` event, and a prefetcher answer pumps the
//! connection too: those are what wake it again.

use super::body::{BodyPath, Wrote};
use super::prefetch::{Done, FileCounters, Prefetcher};
use crate::http::{FileBody, FileError, HttpConnection, Output, Site, UploadAnswer};
use linerate_stack::engine::{ConnectionHandle, Engine, Error};
use linerate_stack::tcp::State;
use linerate_stack::time::{Duration, Instant};
use std::sync::Arc;

/// Bytes read from the engine per `read` call.
const INBUF: usize = 16 * 1024;
/// A half-closed connection whose FIN is not acknowledged by then is handed to the engine to
/// finish alone (it retransmits and times out by itself).
const CLOSE_LINGER: Duration = Duration::from_secs(10);

/// What the connection needs after a pump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Open,
    /// Our FIN is queued or in flight.
    Closing,
    /// The handle is released; forget the connection.
    Finished,
}

#[derive(Debug)]
pub struct Conn {
    pub handle: ConnectionHandle,
    http: HttpConnection,
    inbuf: Box<[u8]>,
    start: usize,
    end: usize,
    read_eof: bool,
    eof_delivered: bool,
    closing_since: Option<Instant>,
    /// The current response body's path into the engine.
    body: BodyPath,
    /// The prefetcher's token for the open the HTTP core waits for, once queued.
    open_token: Option<u64>,
}

impl Conn {
    /// A connection with buffers of its own (the pool had none to give).
    pub fn new(handle: ConnectionHandle, site: &Arc<Site>, now: Instant) -> Self {
        let mut http = HttpConnection::new(site.clone(), now);
        // `openat2`/`statx` of a cold directory or inode read the disk: never on the shard.
        http.defer_file_io();
        Conn {
            handle,
            http,
            open_token: None,
            inbuf: vec![0u8; INBUF].into_boxed_slice(),
            start: 0,
            end: 0,
            read_eof: false,
            eof_delivered: false,
            closing_since: None,
            body: BodyPath::default(),
        }
    }

    /// Takes over a newly accepted connection with this one's buffers; nothing of the
    /// previous connection remains (see [`Conn::retire`]).
    pub fn reopen(&mut self, handle: ConnectionHandle, now: Instant) {
        self.retire(now);
        self.handle = handle;
    }

    /// Forgets the connection (its requests, response, file mappings, awaited opens and
    /// uploads) but keeps the buffers for [`Conn::reopen`].
    pub fn retire(&mut self, now: Instant) {
        // Destructured without `..`: a field added later must be reset here or it fails to build.
        let Conn {
            handle: _,
            http,
            inbuf: _,
            start,
            end,
            read_eof,
            eof_delivered,
            closing_since,
            body,
            open_token,
        } = self;
        http.reset(now);
        (*start, *end) = (0, 0);
        *read_eof = false;
        *eof_delivered = false;
        *closing_since = None;
        body.finish();
        *open_token = None;
    }

    /// Requests parsed so far.
    pub fn requests(&self) -> u64 {
        self.http.requests()
    }

    /// No response in progress and no input waiting: safe to close when draining.
    pub fn is_idle(&self) -> bool {
        self.closing_since.is_none()
            && self.start == self.end
            && matches!(self.http.peek_output(), Output::Idle)
            && !self.http.awaits_file_io()
    }

    /// Our FIN is out; the connection waits for its acknowledgment.
    pub fn is_closing(&self) -> bool {
        self.closing_since.is_some()
    }

    /// When [`Conn::on_timeout`] should next run.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.closing_since {
            Some(since) => Some(since + CLOSE_LINGER),
            None => self.http.next_deadline(),
        }
    }

    /// Applies HTTP deadlines, then pumps.
    pub fn on_timeout(&mut self, now: Instant, engine: &mut Engine, prefetch: &mut Prefetcher) -> Step {
        if self.closing_since.is_none() {
            self.http.on_timeout(now);
        }
        self.pump(now, engine, prefetch)
    }

    /// Takes the prefetcher's answer for this connection's body; true if it was for it (pump
    /// next).
    pub fn on_prefetched(&mut self, done: &Done, counts: &mut FileCounters) -> bool {
        self.body.on_prefetched(done, counts)
    }

    /// Takes the prefetcher's answer to this connection's open; true if it was the one
    /// awaited (pump next).
    pub fn on_opened(&mut self, now: Instant, token: u64, opened: Result<FileBody, FileError>) -> bool {
        if self.open_token != Some(token) {
            return false;
        }
        self.open_token = None;
        self.http.on_opened(now, opened);
        true
    }

    /// Takes the prefetcher's answer to one of this connection's upload jobs (pump next).
    pub fn on_upload_answer(&mut self, now: Instant, answer: UploadAnswer) {
        self.http.on_upload_answer(now, answer);
    }

    /// Most upload buffers this connection had waiting at once.
    pub fn most_upload_buffers(&self) -> usize {
        self.http.most_upload_buffers()
    }

    /// Prefetch work found the queue full (the sweep pumps the connection again).
    pub fn wants_prefetch(&self) -> bool {
        self.body.wants_prefetch()
            || (self.http.pending_open().is_some() && self.open_token.is_none())
            || self.http.has_upload_jobs()
    }

    /// Hands the HTTP core's upload jobs to the prefetch thread, in order, while it takes them.
    fn queue_upload_jobs(&mut self, prefetch: &mut Prefetcher) {
        while let Some(job) = self.http.take_upload_job() {
            if let Err(job) = prefetch.upload(self.handle, self.http.site(), job) {
                self.http.return_upload_job(job);
                return;
            }
        }
    }

    /// Queues the open the HTTP core waits for, unless it is queued already.
    fn queue_open(&mut self, prefetch: &mut Prefetcher) {
        if self.open_token.is_some() {
            return;
        }
        if let Some(path) = self.http.pending_open() {
            self.open_token = prefetch.open(self.handle, self.http.site(), path);
        }
    }

    /// Starts closing now even though the HTTP core has nothing pending (server drain).
    pub fn close_idle(&mut self, now: Instant, engine: &mut Engine) -> Step {
        self.begin_close(now, engine, false)
    }

    /// Moves everything that can move; call on any event for this connection.
    pub fn pump(&mut self, now: Instant, engine: &mut Engine, prefetch: &mut Prefetcher) -> Step {
        if let Some(since) = self.closing_since {
            return self.pump_closing(now, engine, since);
        }
        // Nothing reaches the receive buffer during a pump (the engine receives before the
        // application's turn), so once a read found it empty, reading again is wasted.
        let mut input_drained = false;
        loop {
            let mut progress = false;
            if self.start == self.end && !self.read_eof && !input_drained {
                match engine.read(now, self.handle, &mut self.inbuf) {
                    Ok(0) => self.read_eof = true,
                    Ok(n) => (self.start, self.end) = (0, n),
                    Err(Error::WouldBlock) => input_drained = true,
                    Err(_) => return self.release(now, engine),
                }
            }
            if self.start < self.end {
                let used = self.http.on_bytes(now, &self.inbuf[self.start..self.end]);
                self.start += used;
                progress |= used > 0;
            }
            if self.read_eof && self.start == self.end && !self.eof_delivered {
                self.http.on_eof();
                self.eof_delivered = true;
                progress = true;
            }
            // Every round, as a write cut short may take more now; with nothing to send this
            // is one look at the HTTP core's output.
            match self.write_output(now, engine, prefetch) {
                Ok(wrote) => progress |= wrote,
                Err(()) => return self.abort(now, engine),
            }
            // Waits for the answers, which pump the connection again.
            self.queue_open(prefetch);
            self.queue_upload_jobs(prefetch);
            if self.http.wants_close() {
                return self.begin_close(now, engine, self.http.was_aborted());
            }
            if !progress {
                return Step::Open;
            }
        }
    }

    /// Queues response bytes while the send buffer has room. `Err` means the connection must
    /// be aborted (the engine refused it, or the file failed mid-body).
    fn write_output(
        &mut self,
        now: Instant,
        engine: &mut Engine,
        prefetch: &mut Prefetcher,
    ) -> Result<bool, ()> {
        let h = self.handle;
        let mut progress = false;
        loop {
            if matches!(self.http.peek_output(), Output::Idle) {
                return Ok(progress);
            }
            if let Some(result) = self.write_head_and_kept_body(now, engine, prefetch) {
                match result {
                    Ok(true) => {
                        progress = true;
                        continue;
                    }
                    // Part of it was taken (a refusal of all of it is `WouldBlock`).
                    Ok(false) => return Ok(true),
                    Err(Error::WouldBlock) => return Ok(progress),
                    Err(_) => return Err(()),
                }
            }
            // A zero capacity still tries one byte: the refusal is what arms `Writable`.
            let room = engine.send_capacity(h).map_err(drop)?.max(1);
            let (result, offered) = match self.http.peek_output() {
                Output::Idle => return Ok(progress),
                Output::Bytes(bytes) => {
                    let chunk = &bytes[..bytes.len().min(room)];
                    (engine.write(now, h, chunk), chunk.len())
                }
                Output::File { file, offset, len } => {
                    match self.body.write(now, engine, h, prefetch, file, offset, len, room) {
                        Wrote::Failed => return Err(()),
                        // Nothing resident yet: the prefetcher's answer pumps us again.
                        Wrote::Taken(Ok(0), 0) => return Ok(progress),
                        Wrote::Taken(result, offered) => {
                            if let Ok(n) = result {
                                if n as u64 == len {
                                    self.body.finish();
                                }
                            }
                            (result, offered)
                        }
                    }
                }
            };
            match result {
                Ok(n) => {
                    self.http.advance_output(n);
                    progress |= n > 0;
                    if n < offered {
                        return Ok(progress);
                    }
                }
                Err(Error::WouldBlock) => return Ok(progress),
                Err(_) => return Err(()),
            }
        }
    }

    /// Queues a response head and the in-memory body after it ([`FileBody::kept_bytes`]) with
    /// one engine write: one call, one send-buffer update and one timer update per response
    /// instead of one for the head and one for the body (the bytes are copied once either way).
    /// `None` when the output is not of that shape (the caller writes it part by part);
    /// otherwise `Ok(true)` when everything was taken, `Ok(false)` when the send buffer took
    /// part of it (the engine then owes a `Writable`, which pumps the rest part by part).
    fn write_head_and_kept_body(
        &mut self,
        now: Instant,
        engine: &mut Engine,
        prefetch: &mut Prefetcher,
    ) -> Option<Result<bool, Error>> {
        let (head, body) = self.http.peek_bytes_and_kept_body()?;
        let (head_len, body_len) = (head.len(), body.len());
        let total = head_len + body_len;
        // Offered whole, not cut to `room`: a send buffer with less room then counts as
        // back-pressure and owes us a `Writable`, which is what pumps the rest.
        let result = engine.write_with(now, self.handle, total, |buf| {
            let from_head = head_len.min(buf.len());
            buf[..from_head].copy_from_slice(&head[..from_head]);
            let from_body = body_len.min(buf.len() - from_head);
            buf[from_head..from_head + from_body].copy_from_slice(&body[..from_body]);
            from_head + from_body
        });
        let n = match result {
            Ok(n) => n,
            Err(e) => return Some(Err(e)),
        };
        self.http.advance_output(n.min(head_len));
        let body_taken = n.saturating_sub(head_len);
        if body_taken > 0 {
            self.http.advance_output(body_taken);
        }
        if body_taken == body_len {
            // Counted here as `body.rs` counts a body it copies from memory; a body cut short
            // by a full buffer is counted once, by the path that sends the rest.
            prefetch.counts.memory += 1;
        }
        Some(Ok(n == total))
    }

    fn begin_close(&mut self, now: Instant, engine: &mut Engine, aborted: bool) -> Step {
        if aborted || engine.shutdown_write(now, self.handle).is_err() {
            return self.abort(now, engine);
        }
        self.closing_since = Some(now);
        self.pump_closing(now, engine, now)
    }

    /// Discards late input; releases the handle once our FIN is acknowledged or the linger
    /// time is over.
    fn pump_closing(&mut self, now: Instant, engine: &mut Engine, since: Instant) -> Step {
        loop {
            match engine.read(now, self.handle, &mut self.inbuf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(Error::WouldBlock) => break,
                Err(_) => return self.release(now, engine),
            }
        }
        match engine.state(self.handle) {
            Ok(State::FinWait2 | State::TimeWait | State::Closed) => self.release(now, engine),
            Ok(_) if now >= since + CLOSE_LINGER => self.release(now, engine),
            Ok(_) => Step::Closing,
            Err(_) => Step::Finished,
        }
    }

    /// Gives the handle back; the engine finishes whatever exchange is left.
    fn release(&mut self, now: Instant, engine: &mut Engine) -> Step {
        let _ = engine.close(now, self.handle);
        Step::Finished
    }

    fn abort(&mut self, now: Instant, engine: &mut Engine) -> Step {
        let _ = engine.abort(now, self.handle);
        Step::Finished
    }
}
