//! Shared pieces of the engine-over-simulator tests: an [`EngineNode`] that plugs a TCP engine
//! plus a tiny application into the simulator's [`Endpoint`], a bulk sender and a verifying
//! receiver, and [`run_transfer`] which moves N bytes and checks that every byte arrived in order,
//! both sides closed cleanly and both engines ended empty (no connection, timer, flow entry or
//! buffer memory left).
#![allow(dead_code)]

use linerate_driver::sim::{Endpoint, LinkConfig, SimPort, SimRun};
use linerate_stack::engine::{ConnectionHandle, Engine, EngineConfig, Event, ListenerHandle};
use linerate_stack::tcp::{ConnectionError, SocketOptions, State};
use linerate_stack::time::{Duration, Instant};
use linerate_stack::wire::{EthernetAddress, Ipv4Address};
use linerate_stack::Error;

pub const CLIENT_IP: Ipv4Address = Ipv4Address::new(198, 18, 0, 1);
pub const SERVER_IP: Ipv4Address = Ipv4Address::new(198, 18, 0, 2);
pub const PORT: u16 = 5001;

/// Deterministic payload byte at offset `i`.
pub fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// What the application on a node does.
pub enum App {
    /// Connects, writes `size` bytes, then closes (or pauses after `pause_after` bytes).
    Sender {
        size: usize,
        sent: usize,
        conn: Option<ConnectionHandle>,
        connected: bool,
        closed: bool,
        opts: SocketOptions,
    },
    /// Accepts one connection and reads everything, verifying the pattern; optionally stops
    /// reading between `stall` times.
    Receiver {
        listener: ListenerHandle,
        conn: Option<ConnectionHandle>,
        received: usize,
        closed: bool,
        done_at: Option<Instant>,
        stall: Option<(Instant, Instant)>,
    },
}

/// One engine plus its application, as a simulator endpoint.
pub struct EngineNode {
    pub engine: Engine,
    pub app: App,
    pub now: Instant,
    pub error: Option<ConnectionError>,
    chunk: Vec<u8>,
}

pub fn engine_config(ip: Ipv4Address, mac_last: u8, seed: u64) -> EngineConfig {
    let mut cfg = EngineConfig::new(ip, 24, EthernetAddress([2, 0, 0, 0, 0, mac_last]), seed);
    cfg.tcp.time_wait = Duration::from_secs(60);
    cfg
}

impl EngineNode {
    pub fn sender(seed: u64, size: usize, opts: SocketOptions) -> Self {
        let engine = Engine::new(engine_config(CLIENT_IP, 1, seed), Instant::ZERO);
        EngineNode {
            engine,
            app: App::Sender { size, sent: 0, conn: None, connected: false, closed: false, opts },
            now: Instant::ZERO,
            error: None,
            chunk: vec![0; 64 * 1024],
        }
    }

    pub fn receiver(seed: u64, opts: SocketOptions) -> Self {
        let mut engine = Engine::new(engine_config(SERVER_IP, 2, seed ^ 0x5eed), Instant::ZERO);
        let listener = engine.listen(PORT, 8, Some(opts)).expect("listen");
        EngineNode {
            engine,
            app: App::Receiver {
                listener,
                conn: None,
                received: 0,
                closed: false,
                done_at: None,
                stall: None,
            },
            now: Instant::ZERO,
            error: None,
            chunk: vec![0; 64 * 1024],
        }
    }

    /// True once the application finished and the engine holds nothing.
    pub fn finished(&self) -> bool {
        let app_done = match &self.app {
            App::Sender { closed, .. } => *closed,
            App::Receiver { closed, .. } => *closed,
        };
        app_done && self.engine.connection_count() == 0
    }

    fn run_app(&mut self, now: Instant) {
        while let Some(ev) = self.engine.poll_event() {
            match (&mut self.app, ev) {
                (App::Sender { connected, .. }, Event::Connected(_)) => *connected = true,
                (App::Receiver { listener, conn, .. }, Event::Incoming(_)) => {
                    *conn = self.engine.accept(*listener).expect("listener");
                }
                (_, Event::Closed { error: Some(e), .. }) => self.error = Some(e),
                _ => {}
            }
        }
        match &mut self.app {
            App::Sender { size, sent, conn, connected, closed, opts } => {
                if conn.is_none() {
                    *conn = Some(
                        self.engine.connect(now, (SERVER_IP, PORT), None, Some(*opts)).expect("connect"),
                    );
                }
                let c = conn.expect("connected above");
                while *sent < *size && !*closed {
                    let n = (*size - *sent).min(self.chunk.len());
                    for (j, b) in self.chunk[..n].iter_mut().enumerate() {
                        *b = pattern(*sent + j);
                    }
                    match self.engine.write(now, c, &self.chunk[..n]) {
                        Ok(w) => *sent += w,
                        Err(Error::WouldBlock) => break,
                        Err(e) => panic!("write failed: {e}"),
                    }
                }
                if *sent == *size && *connected && !*closed {
                    self.engine.close(now, c).expect("close");
                    *closed = true;
                }
            }
            App::Receiver { conn, received, closed, done_at, stall, listener } => {
                let Some(c) = *conn else { return };
                if *closed || stall.is_some_and(|(from, to)| now >= from && now < to) {
                    return;
                }
                loop {
                    match self.engine.read(now, c, &mut self.chunk) {
                        Ok(0) => {
                            self.engine.close(now, c).expect("close");
                            self.engine.unlisten(now, *listener).expect("unlisten");
                            *closed = true;
                            *done_at = Some(now);
                            break;
                        }
                        Ok(n) => {
                            for (j, &b) in self.chunk[..n].iter().enumerate() {
                                assert_eq!(b, pattern(*received + j), "byte {} corrupted", *received + j);
                            }
                            *received += n;
                        }
                        Err(Error::WouldBlock) => break,
                        Err(e) => panic!("read failed: {e}"),
                    }
                }
            }
        }
    }

    pub fn state(&self) -> Option<State> {
        match &self.app {
            App::Sender { conn: Some(c), .. } | App::Receiver { conn: Some(c), .. } => {
                self.engine.state(*c).ok()
            }
            _ => None,
        }
    }
}

impl Endpoint for EngineNode {
    fn poll(&mut self, now: Instant, port: &mut SimPort<'_>) {
        self.now = now;
        let burst = linerate_stack::device::Device::capabilities(port).max_burst.max(1);
        while self.engine.receive_from(now, port, burst) > 0 {}
        self.engine.handle_timeout(now);
        self.run_app(now);
        self.engine.poll_transmit(now, port);
        // The application may have been woken by what was just sent (e.g. freed buffer space).
        self.run_app(now);
        self.engine.poll_transmit(now, port);
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let stall_end = match &self.app {
            App::Receiver { stall: Some((_, to)), closed: false, .. } if *to > self.now => Some(*to),
            _ => None,
        };
        let start = matches!(self.app, App::Sender { conn: None, .. }).then_some(self.now);
        let pending = self.engine.has_pending_output().then_some(self.now);
        [self.engine.next_timeout(), stall_end, pending, start].into_iter().flatten().min()
    }
}

/// Outcome of one transfer.
#[derive(Debug, Clone, Copy)]
pub struct TransferResult {
    pub size: usize,
    /// Virtual time until the receiver saw the FIN after the last byte.
    pub elapsed: Duration,
    pub retrans_segs: u64,
    pub timeouts: u64,
}

/// Moves `size` bytes client → server over links `fwd`/`rev`; asserts byte-exact delivery,
/// clean closes and empty engines at the end.
pub fn run_transfer(
    run: &SimRun,
    size: usize,
    fwd: LinkConfig,
    rev: LinkConfig,
    recv_opts: SocketOptions,
) -> TransferResult {
    let seed = run.seed();
    let client = EngineNode::sender(seed, size, recv_opts);
    let server = EngineNode::receiver(seed, recv_opts);
    let mut pair = run.pair(fwd, rev, client, server);
    let outcome = pair
        .run_until(Instant::from_millis(4 * 3600 * 1000), 50_000_000, |p| p.a.finished() && p.b.finished())
        .unwrap_or_else(|e| panic!("{e}\n{}", run.reproduce_hint()));
    let (a, b) = (&pair.a, &pair.b);
    let hint = run.reproduce_hint();
    assert!(a.error.is_none() && b.error.is_none(), "connection failed: {:?}/{:?}; {hint}", a.error, b.error);
    let App::Receiver { received, done_at, .. } = &b.app else { unreachable!() };
    assert_eq!(*received, size, "bytes delivered; outcome {outcome:?}; {hint}");
    assert!(a.finished() && b.finished(), "both sides must end closed: {outcome:?}; {hint}");
    assert!(a.engine.is_empty() && b.engine.is_empty(), "engines must be empty; {hint}");
    TransferResult {
        size,
        elapsed: done_at.expect("receiver finished") - Instant::ZERO,
        retrans_segs: a.engine.stats().retrans_segs,
        timeouts: a.engine.stats().timeouts,
    }
}
