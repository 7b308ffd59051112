//! The two ends of the in-memory shard bench's traffic, written against the engine API only so
//! that either end can run as the shard's application or as its peer.
//!
//! * [`Server`]: a GET-like responder on [`SERVER_PORT`]. A short request gets a 1 KiB response
//!   (header included in [`SHORT_RESPONSE_LEN`]); a bulk request gets an endless stream until
//!   the client closes. The server closes when the client does (the client closes first, so
//!   TIME-WAIT is the client's).
//! * [`Client`]: a load generator that keeps `concurrency` connections in flight. Short mode:
//!   connect, send the request, read the whole response, close, count, open the next. Bulk
//!   mode: `concurrency` connections that each read the stream forever.
//!
//! Both count into a [`LoadCells`], written by the one thread that drives them (relaxed stores,
//! once per poll) and read by the bench's main thread while the shards run.
//! Must not: allocate per connection or per frame (connection slots are preallocated).

use std::sync::atomic::{AtomicU64, Ordering};

use linerate_driver::shard::{AppContext, AppPoll, Pod, ShardApp, ShutdownPhase};
use linerate_stack::engine::{ConnectionHandle, Engine, Error as EngineError, Event, ListenerHandle};
use linerate_stack::tcp::SocketOptions;
use linerate_stack::time::Instant;
use linerate_stack::wire::Ipv4Address;

/// The port the server listens on.
pub const SERVER_PORT: u16 = 80;
/// Requests are the same length, so the server knows when one is complete without parsing.
const SHORT_REQUEST: &[u8] = b"GET /1k HTTP/1.1\r\nHost: b\r\n\r\n";
const BULK_REQUEST: &[u8] = b"GET /bk HTTP/1.1\r\nHost: b\r\n\r\n";
const REQUEST_LEN: usize = SHORT_REQUEST.len();
const _: () =
    assert!(SHORT_REQUEST.len() == BULK_REQUEST.len() && SHORT_REQUEST[KIND_AT] != BULK_REQUEST[KIND_AT]);
/// Where the two requests differ.
const KIND_AT: usize = 5;
const SHORT_HEADER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n";
/// Bytes of a short response: header and a 1 KiB body.
pub const SHORT_RESPONSE_LEN: usize = SHORT_HEADER.len() + 1024;
/// What the bulk stream repeats (the server copies it into the send ring: one payload copy, as
/// `serve` does from the page cache).
static PATTERN: [u8; 16 * 1024] = [b'x'; 16 * 1024];

/// Counters of one side, shared with the main thread. One writer (the shard's thread). Aligned
/// to two cache lines so two shards' cells never share one (the stores are every poll).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct LoadCells {
    /// Short connections completed (whole response read, then closed).
    pub completed: AtomicU64,
    /// Payload bytes the client read.
    pub bytes: AtomicU64,
    /// Connections that ended before their response was complete, or refused opens.
    pub errors: AtomicU64,
    /// Connections the server accepted.
    pub accepted: AtomicU64,
    /// The CPU the shard's thread found itself on at its first poll (the pinning, observed).
    pub cpu: AtomicU64,
}

/// Plain counters kept by the driving thread and published into [`LoadCells`] (and, for the
/// shard's side, in the shard's stats snapshot).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Counts {
    pub completed: u64,
    pub bytes: u64,
    pub errors: u64,
    pub accepted: u64,
}

// SAFETY: `repr(C)` struct of `u64`s only: no padding, every bit pattern valid.
unsafe impl Pod for Counts {}

impl core::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.completed += o.completed;
        self.bytes += o.bytes;
        self.errors += o.errors;
        self.accepted += o.accepted;
    }
}

impl Counts {
    fn publish(&self, cells: &LoadCells) {
        cells.completed.store(self.completed, Ordering::Relaxed);
        cells.bytes.store(self.bytes, Ordering::Relaxed);
        cells.errors.store(self.errors, Ordering::Relaxed);
        cells.accepted.store(self.accepted, Ordering::Relaxed);
    }
}

/// Socket buffers of both ends. Bulk: large enough not to be window-bound on a lossless link.
/// Short: small, as each connection allocates its buffers when it opens.
pub fn socket_options(kind: LoadKind) -> SocketOptions {
    let size = if kind == LoadKind::Bulk { 1 << 20 } else { 16 * 1024 };
    SocketOptions { nodelay: true, send_buffer: size, recv_buffer: size, ..SocketOptions::default() }
}

/// A connection slot indexed by the handle's index; the generation tells a stale event apart.
fn slot<T>(slots: &mut [Option<(ConnectionHandle, T)>], h: ConnectionHandle) -> Option<&mut T> {
    match slots.get_mut(h.index as usize) {
        Some(Some((held, state))) if *held == h => Some(state),
        _ => None,
    }
}

/// What the server knows about one connection.
#[derive(Debug, Clone, Copy)]
struct Served {
    request_seen: usize,
    bulk: bool,
    responded: bool,
}

/// The GET-like responder.
#[derive(Debug)]
pub struct Server {
    listener: ListenerHandle,
    conns: Vec<Option<(ConnectionHandle, Served)>>,
    counts: Counts,
}

impl Server {
    /// A server on `listener`, with room for `max_connections` connection slots.
    pub fn new(listener: ListenerHandle, max_connections: usize) -> Self {
        Server { listener, conns: vec![None; max_connections], counts: Counts::default() }
    }

    /// Handles every pending event; true if there was any.
    pub fn poll(&mut self, engine: &mut Engine, now: Instant) -> bool {
        let mut busy = false;
        while let Some(event) = engine.poll_event() {
            busy = true;
            match event {
                Event::Incoming(l) => {
                    while let Ok(Some(h)) = engine.accept(l) {
                        self.counts.accepted += 1;
                        if let Some(s) = self.conns.get_mut(h.index as usize) {
                            *s = Some((h, Served { request_seen: 0, bulk: false, responded: false }));
                        }
                        self.pump(engine, now, h);
                    }
                }
                Event::Connected(h) | Event::Readable(h) | Event::Writable(h) => self.pump(engine, now, h),
                Event::ReadClosed(h) | Event::Closed { conn: h, .. } => self.finish(engine, now, h),
                Event::SendComplete(_) => {}
            }
        }
        busy
    }

    /// Reads the request, then writes the response (short) or as much stream as fits (bulk).
    fn pump(&mut self, engine: &mut Engine, now: Instant, h: ConnectionHandle) {
        let Some(s) = slot(&mut self.conns, h) else { return };
        while s.request_seen < REQUEST_LEN {
            let seen = s.request_seen;
            let mut bulk = s.bulk;
            let read = engine.read_with(now, h, REQUEST_LEN - seen, |data| {
                if seen <= KIND_AT && KIND_AT < seen + data.len() {
                    bulk = data[KIND_AT - seen] == BULK_REQUEST[KIND_AT];
                }
                data.len()
            });
            match read {
                Ok(n) if n > 0 => {
                    s.request_seen += n;
                    s.bulk = bulk;
                }
                _ => return,
            }
        }
        if !s.bulk {
            if !s.responded {
                s.responded = true;
                let header = engine.write(now, h, SHORT_HEADER);
                let body = engine.write(now, h, &PATTERN[..1024]);
                if header != Ok(SHORT_HEADER.len()) || body != Ok(1024) {
                    self.counts.errors += 1;
                }
            }
            return;
        }
        loop {
            let fill = |buf: &mut [u8]| {
                let n = buf.len().min(PATTERN.len());
                buf[..n].copy_from_slice(&PATTERN[..n]);
                n
            };
            match engine.write_with(now, h, usize::MAX, fill) {
                Ok(n) if n > 0 => {}
                _ => return,
            }
        }
    }

    /// The client closed (or the connection ended): close our side and free the slot.
    fn finish(&mut self, engine: &mut Engine, now: Instant, h: ConnectionHandle) {
        if let Some(s) = self.conns.get_mut(h.index as usize) {
            if matches!(s, Some((held, _)) if *held == h) {
                *s = None;
                let _ = engine.close(now, h);
            }
        }
    }

    /// The listener, for the shutdown.
    pub fn listener(&self) -> ListenerHandle {
        self.listener
    }

    pub fn publish(&self, cells: &LoadCells) {
        self.counts.publish(cells);
    }
}

/// How the client opens a connection: the shard's [`AppContext::connect`] (its port slice and
/// steering) or the bare engine's.
pub trait Opener {
    fn engine(&mut self) -> &mut Engine;
    fn now(&self) -> Instant;
    fn open(
        &mut self,
        remote: (Ipv4Address, u16),
        opts: SocketOptions,
    ) -> Result<ConnectionHandle, EngineError>;
}

/// An engine without a shard around it (the peer's).
#[derive(Debug)]
pub struct BareOpener<'a> {
    pub engine: &'a mut Engine,
    pub now: Instant,
}

impl Opener for BareOpener<'_> {
    fn engine(&mut self) -> &mut Engine {
        self.engine
    }
    fn now(&self) -> Instant {
        self.now
    }
    fn open(
        &mut self,
        remote: (Ipv4Address, u16),
        opts: SocketOptions,
    ) -> Result<ConnectionHandle, EngineError> {
        self.engine.connect(self.now, remote, None, Some(opts))
    }
}

impl Opener for AppContext<'_> {
    fn engine(&mut self) -> &mut Engine {
        self.engine
    }
    fn now(&self) -> Instant {
        self.now
    }
    fn open(
        &mut self,
        remote: (Ipv4Address, u16),
        opts: SocketOptions,
    ) -> Result<ConnectionHandle, EngineError> {
        self.connect(remote, Some(opts))
    }
}

/// The client's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadKind {
    /// One request per connection, closed after the 1 KiB response.
    Short,
    /// Endless downloads, one per connection.
    Bulk,
}

/// The load generator.
#[derive(Debug)]
pub struct Client {
    server: (Ipv4Address, u16),
    kind: LoadKind,
    concurrency: usize,
    open: usize,
    /// Bytes of the response read so far, per connection.
    conns: Vec<Option<(ConnectionHandle, usize)>>,
    counts: Counts,
}

impl Client {
    pub fn new(server: Ipv4Address, kind: LoadKind, concurrency: usize, max_connections: usize) -> Self {
        Client {
            server: (server, SERVER_PORT),
            kind,
            concurrency,
            open: 0,
            conns: vec![None; max_connections],
            counts: Counts::default(),
        }
    }

    /// Opens connections up to the concurrency and handles every pending event.
    pub fn poll<O: Opener>(&mut self, o: &mut O) -> bool {
        let mut busy = self.refill(o);
        while let Some(event) = o.engine().poll_event() {
            busy = true;
            match event {
                Event::Readable(h) | Event::ReadClosed(h) => self.read(o, h),
                Event::Closed { conn, .. } => self.fail(o, conn),
                _ => {}
            }
        }
        busy | self.refill(o)
    }

    fn refill<O: Opener>(&mut self, o: &mut O) -> bool {
        let mut opened = false;
        while self.open < self.concurrency {
            let request = if self.kind == LoadKind::Short { SHORT_REQUEST } else { BULK_REQUEST };
            let h = match o.open(self.server, socket_options(self.kind)) {
                Ok(h) => h,
                Err(_) => {
                    self.counts.errors += 1;
                    break;
                }
            };
            let now = o.now();
            // Queued before the handshake completes; it leaves with the first ACK.
            let _ = o.engine().write(now, h, request);
            match self.conns.get_mut(h.index as usize) {
                Some(s) => *s = Some((h, 0)),
                None => {
                    let _ = o.engine().abort(now, h);
                    self.counts.errors += 1;
                    break;
                }
            }
            self.open += 1;
            opened = true;
        }
        opened
    }

    fn read<O: Opener>(&mut self, o: &mut O, h: ConnectionHandle) {
        let now = o.now();
        let Some(seen) = slot(&mut self.conns, h) else { return };
        let mut ended = false;
        loop {
            match o.engine().read_with(now, h, usize::MAX, |data| data.len()) {
                Ok(0) => {
                    ended = true;
                    break;
                }
                Ok(n) => *seen += n,
                Err(EngineError::WouldBlock) => break,
                Err(_) => {
                    ended = true;
                    break;
                }
            }
        }
        let seen = *seen;
        match self.kind {
            LoadKind::Short if seen >= SHORT_RESPONSE_LEN => {
                self.counts.bytes += seen as u64;
                self.counts.completed += u64::from(seen == SHORT_RESPONSE_LEN);
                self.counts.errors += u64::from(seen != SHORT_RESPONSE_LEN);
                self.release(o, h);
            }
            _ if ended => self.fail(o, h),
            LoadKind::Short => {}
            LoadKind::Bulk => {
                self.counts.bytes += seen as u64;
                if let Some(s) = slot(&mut self.conns, h) {
                    *s = 0;
                }
            }
        }
    }

    /// A connection that ended before its response did.
    fn fail<O: Opener>(&mut self, o: &mut O, h: ConnectionHandle) {
        if slot(&mut self.conns, h).is_some() {
            self.counts.errors += 1;
            self.release(o, h);
        }
    }

    fn release<O: Opener>(&mut self, o: &mut O, h: ConnectionHandle) {
        self.conns[h.index as usize] = None;
        self.open -= 1;
        let now = o.now();
        let _ = o.engine().close(now, h);
    }

    pub fn publish(&self, cells: &LoadCells) {
        self.counts.publish(cells);
    }
}

/// A [`Server`] or [`Client`] as the shard's application.
#[derive(Debug)]
pub enum BenchApp {
    Server(Server),
    Client(Client),
}

/// The shard's application with its counters.
#[derive(Debug)]
pub struct ShardSide {
    pub app: BenchApp,
    pub cells: std::sync::Arc<LoadCells>,
    /// The CPU was recorded in `cells`.
    pub cpu_seen: bool,
}

impl ShardApp for ShardSide {
    type Stats = Counts;

    fn poll(&mut self, cx: &mut AppContext<'_>) -> AppPoll {
        if !self.cpu_seen {
            self.cpu_seen = true;
            self.cells.cpu.store(crate::sys::current_cpu() as u64, Ordering::Relaxed);
        }
        let busy = match &mut self.app {
            BenchApp::Server(s) => {
                let busy = s.poll(cx.engine, cx.now);
                s.publish(&self.cells);
                busy
            }
            BenchApp::Client(c) => {
                let busy = c.poll(cx);
                c.publish(&self.cells);
                busy
            }
        };
        AppPoll { busy, next_wake: None }
    }

    fn begin_shutdown(&mut self, phase: ShutdownPhase, cx: &mut AppContext<'_>) {
        if let (ShutdownPhase::CloseListeners, BenchApp::Server(s)) = (phase, &self.app) {
            let _ = cx.engine.unlisten(cx.now, s.listener());
        }
    }

    fn is_drained(&self, _phase: ShutdownPhase) -> bool {
        true
    }

    fn stats(&self) -> Counts {
        match &self.app {
            BenchApp::Server(s) => s.counts,
            BenchApp::Client(c) => c.counts,
        }
    }
}
