//! Lent send data (`Engine::write_external`) over the simulated link: a sender that interleaves
//! small ring writes (like HTTP heads) with chunks lent from one shared source (like a mapped
//! file body), a receiver that checks every byte. Clean and lossy links, a small send buffer so
//! the ring wraps many times, retransmissions read the lent memory again, and the source is
//! released once everything is acknowledged. A source that goes bad mid-transfer ends the
//! connection with a reset and no wrong byte reaches the receiver.
//! Seeds print on failure; `LINERATE_SEED` reproduces.

mod engine_sim_support;
use engine_sim_support::{engine_config, pattern, CLIENT_IP, PORT, SERVER_IP};
use linerate_driver::sim::{Endpoint, LinkConfig, LossModel, SimPort, SimRun};
use linerate_stack::device::Device;
use linerate_stack::engine::{ConnectionHandle, Engine, Event, ListenerHandle};
use linerate_stack::tcp::{ConnectionError, ExternalChunk, SendSource, SocketOptions};
use linerate_stack::time::{Duration, Instant};
use linerate_stack::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The stream's bytes, lent; `good` can be cleared to simulate a file truncated under its map.
struct Body {
    bytes: Vec<u8>,
    good: AtomicBool,
}

impl SendSource for Body {
    fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    fn is_intact(&self) -> bool {
        self.good.load(Ordering::Relaxed)
    }
}

/// Sends `body.bytes` as alternating runs: `head` bytes copied into the ring, then up to
/// `lent` bytes lent from the body.
struct Sender {
    engine: Engine,
    body: Arc<Body>,
    conn: Option<ConnectionHandle>,
    opts: SocketOptions,
    pos: usize,
    /// Bytes left of the current run and whether it is lent.
    run_left: usize,
    run_lent: bool,
    runs: (usize, usize),
    closed: bool,
    error: Option<ConnectionError>,
    /// Clear `body.good` once this many bytes were queued.
    spoil_at: Option<usize>,
    now: Instant,
}

impl Sender {
    fn pump(&mut self, now: Instant) {
        while let Some(ev) = self.engine.poll_event() {
            if let Event::Closed { conn, error: Some(e) } = ev {
                self.error = Some(e);
                self.closed = true;
                let _ = self.engine.close(now, conn);
            }
        }
        let c = *self.conn.get_or_insert_with(|| {
            self.engine.connect(now, (SERVER_IP, PORT), None, Some(self.opts)).expect("connect")
        });
        let size = self.body.bytes.len();
        while self.pos < size && !self.closed {
            if self.spoil_at.is_some_and(|at| self.pos >= at) {
                self.body.good.store(false, Ordering::Relaxed);
            }
            if self.run_left == 0 {
                self.run_lent = !self.run_lent;
                // Varying lengths so runs land at every ring offset.
                let base = if self.run_lent { self.runs.1 } else { self.runs.0 };
                self.run_left = (base / 2 + pattern(self.pos) as usize * base / 256).max(1);
            }
            let n = self.run_left.min(size - self.pos);
            let result = if self.run_lent {
                let source: Arc<dyn SendSource> = self.body.clone();
                let chunk = ExternalChunk::new(source, self.pos..self.pos + n).expect("in range");
                self.engine.write_external(now, c, &chunk)
            } else {
                let bytes = self.body.bytes[self.pos..self.pos + n].to_vec();
                self.engine.write(now, c, &bytes)
            };
            match result {
                Ok(w) => {
                    self.pos += w;
                    self.run_left -= w;
                }
                Err(Error::WouldBlock) => break,
                Err(_) => {
                    self.closed = true;
                    break;
                }
            }
        }
        if self.pos == size && !self.closed && self.engine.state(c).is_ok_and(|s| s.is_synchronized()) {
            self.engine.close(now, c).expect("close");
            self.closed = true;
        }
    }
}

/// Accepts one connection and keeps every byte it reads.
struct Receiver {
    engine: Engine,
    listener: ListenerHandle,
    conn: Option<ConnectionHandle>,
    got: Vec<u8>,
    eof: bool,
    error: Option<Error>,
    buf: Vec<u8>,
}

impl Receiver {
    fn pump(&mut self, now: Instant) {
        while let Some(ev) = self.engine.poll_event() {
            if let Event::Incoming(_) = ev {
                self.conn = self.engine.accept(self.listener).expect("listener");
            }
        }
        let Some(c) = self.conn else { return };
        while !self.eof && self.error.is_none() {
            match self.engine.read(now, c, &mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    self.engine.close(now, c).expect("close");
                }
                Ok(n) => self.got.extend_from_slice(&self.buf[..n]),
                Err(Error::WouldBlock) => break,
                Err(e) => {
                    self.error = Some(e);
                    let _ = self.engine.close(now, c);
                }
            }
        }
    }
}

/// Drives an engine and its application as a simulator endpoint.
trait Node {
    fn engine(&mut self) -> &mut Engine;
    fn engine_ref(&self) -> &Engine;
    fn pump(&mut self, now: Instant);
    fn pending_start(&self) -> bool {
        false
    }
}

impl Node for Sender {
    fn engine(&mut self) -> &mut Engine {
        &mut self.engine
    }
    fn engine_ref(&self) -> &Engine {
        &self.engine
    }
    fn pump(&mut self, now: Instant) {
        self.now = now;
        Sender::pump(self, now)
    }
    fn pending_start(&self) -> bool {
        self.conn.is_none()
    }
}

impl Node for Receiver {
    fn engine(&mut self) -> &mut Engine {
        &mut self.engine
    }
    fn engine_ref(&self) -> &Engine {
        &self.engine
    }
    fn pump(&mut self, now: Instant) {
        Receiver::pump(self, now)
    }
}

struct Endp<N>(N, Instant);

impl<N: Node> Endpoint for Endp<N> {
    fn poll(&mut self, now: Instant, port: &mut SimPort<'_>) {
        self.1 = now;
        let burst = port.capabilities().max_burst.max(1);
        while self.0.engine().receive_from(now, port, burst) > 0 {}
        self.0.engine().handle_timeout(now);
        for _ in 0..2 {
            self.0.pump(now);
            self.0.engine().poll_transmit(now, port);
        }
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let e = self.0.engine_ref();
        let pending = (e.has_pending_output() || self.0.pending_start()).then_some(self.1);
        [e.next_timeout(), pending].into_iter().flatten().min()
    }
}

struct Setup {
    size: usize,
    runs: (usize, usize),
    buffer: usize,
    link: LinkConfig,
    spoil_at: Option<usize>,
}

fn run(name: &str, seed: u64, s: Setup) -> (Endp<Sender>, Endp<Receiver>, Arc<Body>) {
    let run = SimRun::new(name, seed);
    let seed = run.seed();
    let opts = SocketOptions { send_buffer: s.buffer, recv_buffer: s.buffer, ..SocketOptions::default() };
    let body = Arc::new(Body { bytes: (0..s.size).map(pattern).collect(), good: AtomicBool::new(true) });
    let sender = Sender {
        engine: Engine::new(engine_config(CLIENT_IP, 1, seed), Instant::ZERO),
        body: body.clone(),
        conn: None,
        opts,
        pos: 0,
        run_left: 0,
        run_lent: true,
        runs: s.runs,
        closed: false,
        error: None,
        spoil_at: s.spoil_at,
        now: Instant::ZERO,
    };
    let mut engine = Engine::new(engine_config(SERVER_IP, 2, seed ^ 0x5eed), Instant::ZERO);
    let listener = engine.listen(PORT, 8, Some(opts)).expect("listen");
    let receiver = Receiver {
        engine,
        listener,
        conn: None,
        got: Vec::new(),
        eof: false,
        error: None,
        buf: vec![0; 65536],
    };
    let mut pair =
        run.pair(s.link.clone(), s.link, Endp(sender, Instant::ZERO), Endp(receiver, Instant::ZERO));
    let hint = run.reproduce_hint();
    pair.run_until(Instant::from_millis(3600 * 1000), 20_000_000, |p| {
        p.a.0.closed && p.a.0.engine.is_empty() && (p.b.0.eof || p.b.0.error.is_some())
    })
    .unwrap_or_else(|e| panic!("{e}\n{hint}"));
    let (a, b) = (pair.a, pair.b);
    // Every received byte is the stream's byte at that offset (never a zero from a bad source).
    let good = a.0.body.bytes.len().min(b.0.got.len());
    assert_eq!(b.0.got.len(), good, "more bytes than sent; {hint}");
    if let Some(i) = (0..good).find(|&i| b.0.got[i] != a.0.body.bytes[i]) {
        panic!("byte {i} differs; {hint}");
    }
    (a, b, body)
}

fn link(loss: f64) -> LinkConfig {
    LinkConfig::default()
        .delay(Duration::from_millis(2))
        .bottleneck(200_000_000, 256 * 1514)
        .loss(LossModel::Bernoulli { p: loss })
}

#[test]
fn interleaved_ring_and_lent_bytes_arrive_exactly() {
    for (i, (size, runs)) in
        [(1usize, (1, 1)), (5000, (100, 1400)), (1 << 20, (300, 20_000)), (1 << 20, (1, 3))]
            .into_iter()
            .enumerate()
    {
        let setup = Setup { size, runs, buffer: 64 * 1024, link: link(0.0), spoil_at: None };
        let (a, b, body) = run(&format!("external_clean_{i}"), 10 + i as u64, setup);
        assert_eq!((b.0.got.len(), b.0.eof, a.0.error), (size, true, None));
        // Everything acknowledged and freed: the engine let go of the source.
        assert_eq!(Arc::strong_count(&body), 2, "sender's copy and ours only");
    }
}

#[test]
fn lent_bytes_are_retransmitted_from_the_source_under_loss() {
    for (i, p) in [0.02, 0.08].into_iter().enumerate() {
        let setup =
            Setup { size: 2 << 20, runs: (200, 50_000), buffer: 128 * 1024, link: link(p), spoil_at: None };
        let (a, b, body) = run(&format!("external_loss_{p}"), 20 + i as u64, setup);
        assert_eq!((b.0.got.len(), b.0.eof, a.0.error), (2 << 20, true, None));
        assert!(a.0.engine.stats().retrans_segs > 0, "loss {p} must cause retransmissions");
        assert_eq!(Arc::strong_count(&body), 2);
    }
}

#[test]
fn a_source_gone_bad_resets_the_connection_instead_of_sending_it() {
    let setup = Setup {
        size: 1 << 20,
        runs: (100, 30_000),
        buffer: 64 * 1024,
        link: link(0.01),
        spoil_at: Some(300_000),
    };
    let (a, b, body) = run("external_spoiled", 30, setup);
    assert_eq!(a.0.error, Some(ConnectionError::Aborted));
    assert!(
        matches!(b.0.error, Some(Error::Connection(ConnectionError::Reset))),
        "receiver must see a reset, got {:?} after {} bytes",
        b.0.error,
        b.0.got.len()
    );
    assert!(!b.0.eof && b.0.got.len() < 1 << 20);
    assert!(a.0.engine.stats().out_rsts >= 1);
    assert_eq!(Arc::strong_count(&body), 2, "a reset connection releases its lent chunks");
}
