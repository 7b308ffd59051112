//! The connection-reuse lesson (issue #4): over a 200 ms RTT, 100 Mbit/s path, upload 100 objects
//! of 100 KiB, each followed by a 2-byte "OK" from the server before the next one starts
//! (request/response, no pipelining), once on one reused connection and once on 100 fresh
//! connections opened one after the other.
//!
//! The idealised time is what a connection with an already-open window would need: one handshake
//! RTT, then per object one RTT plus the object's serialization time. A reused connection keeps
//! its window between objects (the gaps are one RTT, shorter than the RTO, so no slow-start
//! restart), so only the first objects pay for slow start and a small initial receive window; it
//! must finish within [`IDEAL_FACTOR`] of the ideal and in under half the fresh connections' time,
//! which pay a handshake plus slow start from the initial window for every object.
//!
//! Run: `cargo test --release -p linerate-driver --test cc_reuse -- --nocapture`.

mod cc_support;

use cc_support::*;
use linerate_driver::sim::{serialization_time, Endpoint, SimPort, SimRun};
use linerate_stack::congestion::Algorithm;
use linerate_stack::engine::{ConnectionHandle, Engine, Event, ListenerHandle};
use linerate_stack::time::{Duration, Instant};
use linerate_stack::Error;

const RATE_BPS: u64 = 100_000_000;
const RTT: Duration = Duration::from_millis(200);
const OBJECTS: usize = 100;
const OBJECT: usize = 100 * 1024;
const RESPONSE: &[u8] = b"OK";
/// How far above the idealised time the reused connection may finish.
const IDEAL_FACTOR: f64 = 1.15;
const BUFFER: usize = 4 << 20;

/// The uploading application: one object at a time, waiting for "OK" in between.
struct Uploader {
    engine: Engine,
    reuse: bool,
    conn: Option<ConnectionHandle>,
    object: usize,
    written: usize,
    response: usize,
    done_at: Option<Instant>,
    data: Vec<u8>,
    now: Instant,
}

impl Uploader {
    fn new(seed: u64, reuse: bool) -> Self {
        Uploader {
            engine: Engine::new(engine_config(CLIENT_IP, 1, seed), Instant::ZERO),
            reuse,
            conn: None,
            object: 0,
            written: 0,
            response: 0,
            done_at: None,
            data: vec![0x42; OBJECT],
            now: Instant::ZERO,
        }
    }

    fn run_app(&mut self, now: Instant) {
        while self.engine.poll_event().is_some() {}
        if self.done_at.is_some() {
            return;
        }
        let conn = match self.conn {
            Some(c) => c,
            None => {
                let opts = socket_options(Algorithm::Cubic, BUFFER);
                let c = self.engine.connect(now, (SERVER_IP, PORT), None, Some(opts)).expect("connect");
                self.conn = Some(c);
                c
            }
        };
        while self.written < OBJECT {
            match self.engine.write(now, conn, &self.data[self.written..]) {
                Ok(n) => self.written += n,
                Err(Error::WouldBlock) => return,
                Err(e) => panic!("object {}: write failed: {e}", self.object),
            }
        }
        let mut buf = [0u8; 16];
        while self.response < RESPONSE.len() {
            match self.engine.read(now, conn, &mut buf) {
                Ok(0) => panic!("object {}: server closed before answering", self.object),
                Ok(n) => self.response += n,
                Err(Error::WouldBlock) => return,
                Err(e) => panic!("object {}: read failed: {e}", self.object),
            }
        }
        self.object += 1;
        (self.written, self.response) = (0, 0);
        if !self.reuse || self.object == OBJECTS {
            self.engine.close(now, conn).expect("close");
            self.conn = None;
        }
        if self.object == OBJECTS {
            self.done_at = Some(now);
        } else {
            self.run_app(now);
        }
    }
}

impl Endpoint for Uploader {
    fn poll(&mut self, now: Instant, port: &mut SimPort<'_>) {
        self.now = now;
        while self.engine.receive_from(now, port, 64) > 0 {}
        self.engine.handle_timeout(now);
        self.run_app(now);
        self.engine.poll_transmit(now, port);
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let start = (self.conn.is_none() && self.object == 0).then_some(self.now);
        let pending = self.engine.has_pending_output().then_some(self.now);
        [self.engine.next_timeout(), pending, start].into_iter().flatten().min()
    }
}

/// The server: reads every connection and answers "OK" after each complete object.
struct Acknowledger {
    engine: Engine,
    listener: ListenerHandle,
    /// (connection, bytes read, closed).
    conns: Vec<(ConnectionHandle, usize, bool)>,
    buf: Vec<u8>,
    now: Instant,
}

impl Acknowledger {
    fn new(seed: u64) -> Self {
        let mut engine = Engine::new(engine_config(SERVER_IP, 2, seed ^ 0x5eed), Instant::ZERO);
        let listener =
            engine.listen(PORT, 64, Some(socket_options(Algorithm::Cubic, BUFFER))).expect("listen");
        Acknowledger { engine, listener, conns: Vec::new(), buf: vec![0; 256 * 1024], now: Instant::ZERO }
    }

    fn run_app(&mut self, now: Instant) {
        while let Some(ev) = self.engine.poll_event() {
            if let Event::Incoming(_) = ev {
                while let Some(c) = self.engine.accept(self.listener).expect("listener") {
                    self.conns.push((c, 0, false));
                }
            }
        }
        for c in self.conns.iter_mut().filter(|c| !c.2) {
            loop {
                match self.engine.read(now, c.0, &mut self.buf) {
                    Ok(0) => {
                        let _ = self.engine.close(now, c.0);
                        c.2 = true;
                        break;
                    }
                    Ok(n) => {
                        let objects_before = c.1 / OBJECT;
                        c.1 += n;
                        for _ in objects_before..c.1 / OBJECT {
                            let w = self.engine.write(now, c.0, RESPONSE).expect("answer");
                            assert_eq!(w, RESPONSE.len());
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        self.conns.retain(|c| !c.2);
    }
}

impl Endpoint for Acknowledger {
    fn poll(&mut self, now: Instant, port: &mut SimPort<'_>) {
        self.now = now;
        while self.engine.receive_from(now, port, 64) > 0 {}
        self.engine.handle_timeout(now);
        self.run_app(now);
        self.engine.poll_transmit(now, port);
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let pending = self.engine.has_pending_output().then_some(self.now);
        [self.engine.next_timeout(), pending].into_iter().flatten().min()
    }
}

fn upload_all(reuse: bool) -> (Duration, u64) {
    let name = if reuse { "cc_reuse_reused" } else { "cc_reuse_fresh" };
    let run = SimRun::new(name, 8_000);
    let fwd = bottleneck(RATE_BPS, RTT, 1.0);
    let mut pair =
        pair(&run, fwd, ack_path(RTT), Uploader::new(run.seed(), reuse), Acknowledger::new(run.seed()));
    pair.run_until(Instant::from_millis(3_600_000), MAX_STEPS, |p| p.a.done_at.is_some())
        .unwrap_or_else(|e| panic!("{e}\n{}", run.reproduce_hint()));
    let done = pair.a.done_at.unwrap_or_else(|| panic!("uploads did not finish; {}", run.reproduce_hint()));
    (done - Instant::ZERO, pair.a.engine.stats().active_opens)
}

/// One handshake, then per object one RTT and its serialization at the bottleneck (full frames of
/// `MSS` payload plus 66 bytes of Ethernet/IP/TCP-with-timestamps headers).
fn ideal() -> Duration {
    let frames = OBJECT.div_ceil(MSS as usize);
    let per_object = RTT + serialization_time(OBJECT + frames * 66, RATE_BPS);
    RTT + Duration::from_nanos(per_object.as_nanos() * OBJECTS as u64)
}

#[test]
fn one_reused_connection_beats_a_hundred_fresh_ones() {
    let results = run_parallel(&[true, false], |&reuse| upload_all(reuse));
    let ((reused, opens_reused), (fresh, opens_fresh)) = (results[0], results[1]);
    let ideal = ideal();
    println!("# {OBJECTS} x {} KiB uploads, RTT {} ms, 100 Mbit/s", OBJECT / 1024, RTT.as_millis());
    println!("ideal  {:>8.2} s", ideal.as_secs_f64());
    println!(
        "reused {:>8.2} s  ({:.3} x ideal, {opens_reused} connection)",
        reused.as_secs_f64(),
        reused.as_secs_f64() / ideal.as_secs_f64()
    );
    println!(
        "fresh  {:>8.2} s  ({:.3} x ideal, {opens_fresh} connections)",
        fresh.as_secs_f64(),
        fresh.as_secs_f64() / ideal.as_secs_f64()
    );
    assert_eq!((opens_reused, opens_fresh), (1, OBJECTS as u64));
    assert!(
        reused.as_secs_f64() <= IDEAL_FACTOR * ideal.as_secs_f64(),
        "reused connection took {reused:?}, more than {IDEAL_FACTOR} x the ideal {ideal:?}"
    );
    assert!(
        reused.as_secs_f64() < 0.5 * fresh.as_secs_f64(),
        "reused connection took {reused:?}, not under half of the fresh connections' {fresh:?}"
    );
}
