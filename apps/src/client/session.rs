//! One client connection on the bypass engine: sends queued requests one after another on the
//! same connection (keep-alive), reads each response with a [`ResponseReader`], and writes body
//! bytes at their file offsets. A PUT streams its file with `pread` straight into the engine's
//! send ring (`Engine::write_with`), so no more of the file is read than can be queued.
//!
//! A response that says `Connection: close` ends the connection; remaining requests then go out
//! on a new one (counted as another handshake). Closing is a half-close followed by releasing the
//! handle once our FIN is acknowledged, so the peer never sees a reset from a clean run.

use super::response::ResponseReader;
use super::url::Url;
use anyhow::{anyhow, bail};
use linerate_stack::engine::{ConnectionHandle, Engine, Error};
use linerate_stack::tcp::{SocketOptions, State};
use linerate_stack::time::Instant;
use linerate_stack::wire::Ipv4Address;
use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::rc::Rc;

/// Where a response body goes.
#[derive(Debug, Clone)]
pub struct Sink {
    pub file: Rc<File>,
    /// File offset of the first body byte.
    pub offset: u64,
}

/// A request body read from a file (PUT).
#[derive(Debug, Clone)]
pub struct UploadBody {
    pub file: Rc<File>,
    /// Bytes sent as `Content-Length`; the file must not shrink meanwhile.
    pub len: u64,
}

/// One request to send.
#[derive(Debug, Clone)]
pub struct Request {
    pub url: Url,
    pub head_only: bool,
    /// Inclusive byte range.
    pub range: Option<(u64, u64)>,
    pub sink: Option<Sink>,
    /// Makes this a PUT of the file.
    pub upload: Option<UploadBody>,
}

impl Request {
    /// A GET (or HEAD) of `url` with no range and no sink.
    pub fn get(url: &Url) -> Request {
        Request { url: url.clone(), head_only: false, range: None, sink: None, upload: None }
    }
}

/// A finished exchange.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub request: Request,
    pub status: u16,
    pub content_length: Option<u64>,
    pub body_bytes: u64,
    /// Request body bytes sent (PUT); less than the upload's length if the server answered
    /// before taking all of it (413, for one).
    pub sent_bytes: u64,
}

#[derive(Debug)]
struct Active {
    request: Request,
    reader: ResponseReader,
    /// Request body bytes queued so far.
    sent: u64,
}

/// Connection lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Connecting,
    Open,
    /// Our FIN is queued; waiting for its acknowledgment.
    Closing,
}

#[derive(Debug)]
pub struct Session {
    remote: (Ipv4Address, u16),
    handle: Option<ConnectionHandle>,
    phase: Phase,
    queue: VecDeque<Request>,
    active: Option<Active>,
    out: Vec<u8>,
    out_pos: usize,
    pub done: Vec<Outcome>,
}

impl Session {
    pub fn new(addr: std::net::Ipv4Addr, port: u16) -> Self {
        Session {
            remote: (Ipv4Address(addr.octets()), port),
            handle: None,
            phase: Phase::Idle,
            queue: VecDeque::new(),
            active: None,
            out: Vec::new(),
            out_pos: 0,
            done: Vec::new(),
        }
    }

    /// The server this session talks to.
    pub fn remote(&self) -> (Ipv4Address, u16) {
        self.remote
    }

    pub fn push(&mut self, request: Request) {
        self.queue.push_back(request);
    }

    /// Nothing queued, nothing in progress.
    pub fn is_quiet(&self) -> bool {
        self.queue.is_empty() && self.active.is_none()
    }

    /// The connection is gone (or never opened).
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Idle
    }

    /// Starts a connection if requests wait and none is open.
    pub fn start(&mut self, now: Instant, engine: &mut Engine) -> anyhow::Result<()> {
        if self.phase == Phase::Idle && !self.queue.is_empty() {
            let opts =
                SocketOptions { recv_buffer: 1 << 20, send_buffer: 1 << 20, ..SocketOptions::default() };
            let h = engine
                .connect(now, self.remote, None, Some(opts))
                .map_err(|e| anyhow!("cannot connect to {}:{}: {e}", self.remote.0, self.remote.1))?;
            self.handle = Some(h);
            self.phase = Phase::Connecting;
        }
        Ok(())
    }

    /// Half-closes an idle open connection (the caller has no more requests for it).
    pub fn finish(&mut self, now: Instant, engine: &mut Engine) {
        if let (Phase::Open, Some(h), true) = (self.phase, self.handle, self.is_quiet()) {
            if engine.shutdown_write(now, h).is_ok() {
                self.phase = Phase::Closing;
            } else {
                self.release(now, engine);
            }
        }
    }

    /// Moves everything that can move; `on_body` sees every body byte count.
    pub fn pump(
        &mut self,
        now: Instant,
        engine: &mut Engine,
        on_body: &mut dyn FnMut(u64),
    ) -> anyhow::Result<()> {
        let Some(h) = self.handle else { return Ok(()) };
        match self.phase {
            Phase::Idle => return Ok(()),
            Phase::Closing => return self.pump_closing(now, engine, h),
            Phase::Connecting => match engine.state(h) {
                Ok(State::SynSent) => return Ok(()),
                Ok(State::Established | State::CloseWait) => self.phase = Phase::Open,
                Ok(_) | Err(_) => return self.fail(now, engine, "the connection was refused or reset"),
            },
            Phase::Open => {}
        }
        loop {
            if self.active.is_none() {
                let Some(request) = self.queue.pop_front() else { return Ok(()) };
                self.out = request_bytes(&request);
                self.out_pos = 0;
                self.active =
                    Some(Active { reader: ResponseReader::new(request.head_only), request, sent: 0 });
            }
            if self.out_pos < self.out.len() {
                match engine.write(now, h, &self.out[self.out_pos..]) {
                    Ok(n) => self.out_pos += n,
                    Err(Error::WouldBlock) => {}
                    Err(e) => return self.fail(now, engine, &e.to_string()),
                }
            }
            if self.out_pos == self.out.len() {
                if let Err(e) = self.send_body(now, engine, h, on_body) {
                    return self.fail(now, engine, &e);
                }
            }
            // Response bytes are parsed in place in the receive ring; body bytes go from there
            // straight to the output file.
            let mut consumed = Ok(());
            let read = engine.read_with(now, h, usize::MAX, |data| {
                consumed = self.consume(data, on_body);
                data.len()
            });
            match read {
                Ok(0) => return self.on_eof(now, engine),
                Ok(_) => {}
                Err(Error::WouldBlock) => return Ok(()),
                Err(e) => return self.fail(now, engine, &e.to_string()),
            }
            consumed?;
            if self.phase == Phase::Closing {
                return self.pump_closing(now, engine, h);
            }
        }
    }

    /// Queues as much of the active request's file body as the send ring takes.
    fn send_body(
        &mut self,
        now: Instant,
        engine: &mut Engine,
        h: ConnectionHandle,
        on_body: &mut dyn FnMut(u64),
    ) -> Result<(), String> {
        const CHUNK: usize = 256 * 1024;
        let Some(active) = self.active.as_mut() else { return Ok(()) };
        let Some(body) = &active.request.upload else { return Ok(()) };
        while active.sent < body.len {
            let want = usize::try_from(body.len - active.sent).unwrap_or(usize::MAX).min(CHUNK);
            let mut read_error = None;
            let offset = active.sent;
            // One contiguous piece of the ring per call, so possibly less than `want`; a full
            // ring is refused with `WouldBlock`, which arms `Writable`.
            let result = engine.write_with(now, h, want, |ring| match body.file.read_at(ring, offset) {
                Ok(k) => {
                    if k == 0 && !ring.is_empty() {
                        read_error = Some("the file shrank while being uploaded".to_owned());
                    }
                    k
                }
                Err(e) => {
                    read_error = Some(format!("reading the upload: {e}"));
                    0
                }
            });
            if let Some(e) = read_error {
                return Err(format!("{}: {e}", active.request.url.target));
            }
            match result {
                Ok(0) | Err(Error::WouldBlock) => return Ok(()),
                Ok(n) => {
                    active.sent += n as u64;
                    on_body(n as u64);
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    }

    /// Feeds received bytes to the current response (and any that follow).
    fn consume(&mut self, input: &[u8], on_body: &mut dyn FnMut(u64)) -> anyhow::Result<()> {
        let mut pos = 0;
        while pos < input.len() {
            let Some(active) = self.active.as_mut() else {
                bail!("{}: the server sent {} bytes nobody asked for", self.remote.0, input.len() - pos);
            };
            let sink = active.request.sink.clone();
            let mut written = active.reader.body_bytes;
            let used = active
                .reader
                .feed(&input[pos..], &mut |data: &[u8]| {
                    if let Some(s) = &sink {
                        s.file.write_all_at(data, s.offset + written)?;
                    }
                    written += data.len() as u64;
                    on_body(data.len() as u64);
                    Ok(())
                })
                .map_err(|e| anyhow!("{}{}: {e}", active.request.url.host, active.request.url.target))?;
            pos += used;
            if active.reader.is_done() {
                self.complete();
            }
        }
        Ok(())
    }

    /// Records the finished response; a `Connection: close` reply ends the connection.
    fn complete(&mut self) {
        let Some(active) = self.active.take() else { return };
        let head = active.reader.head().cloned().unwrap_or_default();
        let body_unsent = active.request.upload.as_ref().is_some_and(|b| active.sent < b.len);
        // A request body cut short leaves the connection's framing broken: it cannot be reused.
        if head.close || body_unsent {
            self.phase = Phase::Closing;
            self.out_pos = self.out.len();
        }
        self.done.push(Outcome {
            request: active.request,
            status: head.status,
            content_length: head.content_length,
            body_bytes: active.reader.body_bytes,
            sent_bytes: active.sent,
        });
    }

    fn on_eof(&mut self, now: Instant, engine: &mut Engine) -> anyhow::Result<()> {
        if let Some(active) = self.active.as_mut() {
            if let Err(e) = active.reader.on_eof() {
                let what = format!("{}{}", active.request.url.host, active.request.url.target);
                self.release(now, engine);
                return Err(anyhow!("{what}: {e}"));
            }
            self.complete();
        }
        self.release(now, engine);
        Ok(())
    }

    fn pump_closing(&mut self, now: Instant, engine: &mut Engine, h: ConnectionHandle) -> anyhow::Result<()> {
        if self.out_pos == self.out.len()
            && matches!(engine.state(h), Ok(State::Established | State::CloseWait))
        {
            let _ = engine.shutdown_write(now, h);
        }
        // Late bytes are discarded where they lie.
        while let Ok(1..) = engine.read_with(now, h, usize::MAX, |data| data.len()) {}
        match engine.state(h) {
            Ok(State::FinWait2 | State::TimeWait | State::Closed) | Err(_) => self.release(now, engine),
            Ok(_) => {}
        }
        Ok(())
    }

    fn release(&mut self, now: Instant, engine: &mut Engine) {
        if let Some(h) = self.handle.take() {
            let _ = engine.close(now, h);
        }
        self.phase = Phase::Idle;
    }

    fn fail(&mut self, now: Instant, engine: &mut Engine, why: &str) -> anyhow::Result<()> {
        let h = self.handle;
        let err = h.and_then(|h| match engine.read(now, h, &mut [0u8; 1]) {
            Err(Error::Connection(e)) => Some(e.to_string()),
            _ => None,
        });
        self.release(now, engine);
        Err(anyhow!("{}:{}: {}", self.remote.0, self.remote.1, err.as_deref().unwrap_or(why)))
    }
}

/// The request head; `Connection: close` is never sent, the client closes when it is done.
fn request_bytes(r: &Request) -> Vec<u8> {
    let method = match (&r.upload, r.head_only) {
        (Some(_), _) => "PUT",
        (None, true) => "HEAD",
        (None, false) => "GET",
    };
    let mut s =
        format!("{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: linerate\r\n", r.url.target, r.url.host);
    if let Some((first, last)) = r.range {
        s.push_str(&format!("Range: bytes={first}-{last}\r\n"));
    }
    if let Some(body) = &r.upload {
        s.push_str(&format!("Content-Length: {}\r\n", body.len));
    }
    s.push_str("\r\n");
    s.into_bytes()
}
