//! Many short connections through one listener, the way an HTTP/1.1 server sees
//! `Connection: close` clients: the client connects, sends a small request, the server answers
//! 1 KiB and closes first, so every connection leaves a TIME-WAIT entry on the *server*.
//!
//! Regression test for the benchmark stall at ~4,096 connections: TIME-WAIT entries (60 s each)
//! filled the server's connection table (`max_connections`), new SYNs were refused and the
//! clients sat in SYN-SENT. More sequential connections than the table holds must all complete
//! without a single refused SYN or retransmission timeout, and both engines must end empty.
//! Seeds print on failure; `LINERATE_SEED` reproduces.

mod engine_sim_support;
use engine_sim_support::{engine_config, pattern, CLIENT_IP, PORT, SERVER_IP};
use linerate_driver::sim::{Endpoint, LinkConfig, SimPort, SimRun};
use linerate_stack::engine::{ConnectionHandle, Engine, Event, ListenerHandle};
use linerate_stack::time::{Duration, Instant};
use linerate_stack::Error;

const REQUEST: usize = 64;
const RESPONSE: usize = 1024;

/// Opens one connection at a time: request, read the response to EOF, close, next.
struct Client {
    engine: Engine,
    target: u32,
    completed: u32,
    conn: Option<ConnectionHandle>,
    sent: bool,
    received: usize,
    finished_at: Option<Instant>,
    now: Instant,
    buf: Vec<u8>,
}

/// Accepts everything; answers each request with 1 KiB and closes first.
struct Server {
    engine: Engine,
    listener: Option<ListenerHandle>,
    /// Accepted connections still waiting for (part of) their request: (handle, bytes read).
    pending: Vec<(ConnectionHandle, usize)>,
    answered: u32,
    now: Instant,
    buf: Vec<u8>,
}

impl Client {
    fn step(&mut self, now: Instant) {
        while let Some(ev) = self.engine.poll_event() {
            if let Event::Closed { error: Some(e), .. } = ev {
                panic!("client connection {} failed: {e}", self.completed);
            }
        }
        if self.completed == self.target {
            return;
        }
        let c = match self.conn {
            Some(c) => c,
            None => {
                let c = self.engine.connect(now, (SERVER_IP, PORT), None, None).expect("connect");
                (self.conn, self.sent, self.received) = (Some(c), false, 0);
                c
            }
        };
        if !self.sent && self.engine.state(c).is_ok_and(|s| s.is_synchronized()) {
            let request: Vec<u8> = (0..REQUEST).map(pattern).collect();
            assert_eq!(self.engine.write(now, c, &request), Ok(REQUEST));
            self.sent = true;
        }
        loop {
            match self.engine.read(now, c, &mut self.buf) {
                Ok(0) => {
                    assert_eq!(self.received, RESPONSE, "connection {}", self.completed);
                    self.engine.close(now, c).expect("close");
                    self.conn = None;
                    self.completed += 1;
                    if self.completed == self.target {
                        self.finished_at = Some(now);
                    }
                    break;
                }
                Ok(n) => {
                    let at = self.received;
                    assert!(self.buf[..n].iter().enumerate().all(|(j, &b)| b == pattern(at + j)));
                    self.received += n;
                }
                Err(Error::WouldBlock | Error::NotConnected) => break,
                Err(e) => panic!("client read: {e}"),
            }
        }
    }
}

impl Server {
    fn step(&mut self, now: Instant) {
        while let Some(ev) = self.engine.poll_event() {
            match ev {
                Event::Incoming(l) => {
                    while let Some(c) = self.engine.accept(l).expect("listener") {
                        self.pending.push((c, 0));
                    }
                }
                Event::Closed { error: Some(e), .. } => panic!("server connection failed: {e}"),
                _ => {}
            }
        }
        let response: Vec<u8> = (0..RESPONSE).map(pattern).collect();
        let (engine, buf) = (&mut self.engine, &mut self.buf);
        let mut answered = 0;
        self.pending.retain_mut(|(c, got)| {
            while let Ok(n) = engine.read(now, *c, buf) {
                if n == 0 {
                    break;
                }
                *got += n;
            }
            if *got < REQUEST {
                return true;
            }
            assert_eq!(engine.write(now, *c, &response), Ok(RESPONSE));
            engine.close(now, *c).expect("close after the response");
            answered += 1;
            false
        });
        self.answered += answered;
    }
}

macro_rules! endpoint {
    ($node:ty) => {
        impl Endpoint for $node {
            fn poll(&mut self, now: Instant, port: &mut SimPort<'_>) {
                self.now = now;
                while self.engine.receive_from(now, port, 64) > 0 {}
                self.engine.handle_timeout(now);
                self.step(now);
                self.engine.poll_transmit(now, port);
                self.step(now);
                self.engine.poll_transmit(now, port);
            }
            fn next_wakeup(&self) -> Option<Instant> {
                let pending = self.engine.has_pending_output().then_some(self.now);
                [self.engine.next_timeout(), pending, self.start()].into_iter().flatten().min()
            }
        }
    };
}
endpoint!(Client);
endpoint!(Server);

impl Client {
    fn start(&self) -> Option<Instant> {
        (self.conn.is_none() && self.completed < self.target).then_some(self.now)
    }
}
impl Server {
    fn start(&self) -> Option<Instant> {
        None
    }
}

#[test]
fn six_thousand_sequential_short_connections_through_one_listener() {
    let run = SimRun::new("engine_sim_short_conns", 41);
    let seed = run.seed();
    let client_cfg = engine_config(CLIENT_IP, 1, seed);
    let mut server_cfg = engine_config(SERVER_IP, 2, seed ^ 0x5eed);
    let table = server_cfg.max_connections;
    // TIME-WAIT records for half the table (the default holds four times the table): the
    // overflow must be recycled.
    server_cfg.time_wait_capacity = Some(table / 2);
    let target = (table as u32) * 3 / 2; // well past the table size
    let mut server_engine = Engine::new(server_cfg, Instant::ZERO);
    let listener = server_engine.listen(PORT, 128, None).expect("listen");
    let client = Client {
        engine: Engine::new(client_cfg, Instant::ZERO),
        target,
        completed: 0,
        conn: None,
        sent: false,
        received: 0,
        finished_at: None,
        now: Instant::ZERO,
        buf: vec![0; 4096],
    };
    let server = Server {
        engine: server_engine,
        listener: Some(listener),
        pending: Vec::new(),
        answered: 0,
        now: Instant::ZERO,
        buf: vec![0; 4096],
    };
    let link = LinkConfig::default().delay(Duration::from_micros(50));
    let mut pair = run.pair(link.clone(), link, client, server);
    let hint = run.reproduce_hint();
    // Every connection takes a few 100 µs round trips: far less than one TIME-WAIT (60 s).
    let deadline = Instant::ZERO + Duration::from_secs(30);
    pair.run_until(deadline, 20_000_000, |p| p.a.finished_at.is_some())
        .unwrap_or_else(|e| panic!("{e}\n{hint}"));
    let (done, stats) = (pair.a.completed, pair.b.engine.stats().clone());
    assert_eq!(
        done,
        target,
        "only {done} of {target} connections completed by {:?}; server holds {} connections; \
         server stats {stats:?}; {hint}",
        pair.now(),
        pair.b.engine.connection_count()
    );
    assert_eq!(pair.b.answered, target);
    assert_eq!(stats.listen_drops, 0, "refused SYNs: {stats:?}; {hint}");
    assert_eq!(stats.memory_refused, 0, "{stats:?}; {hint}");
    assert_eq!(pair.a.engine.stats().timeouts, 0, "the client had to retransmit; {hint}");
    // Some tuples are reused by the client while still in TIME-WAIT at the server (reopened,
    // RFC 9293 §3.10.7.4); the rest of the overflow must have been recycled.
    assert!(stats.time_wait_recycled > 0, "{stats:?}");
    assert!(pair.b.engine.connection_count() <= table);

    // Close the listener and let the remaining TIME-WAIT entries expire: both engines empty.
    let l = pair.b.listener.take().expect("listener");
    let now = pair.now();
    pair.b.engine.unlisten(now, l).expect("unlisten");
    pair.run_until(Instant::MAX, 1_000_000, |p| p.a.engine.is_empty() && p.b.engine.is_empty())
        .unwrap_or_else(|e| panic!("{e}\n{hint}"));
    assert!(pair.a.engine.is_empty(), "client engine not empty; {hint}");
    assert!(
        pair.b.engine.is_empty(),
        "server engine not empty: {}; {hint}",
        pair.b.engine.connection_count()
    );
}
