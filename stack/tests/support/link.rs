//! A small deterministic two-engine link for engine tests (the full-featured simulator lives in
//! `linerate-driver::sim`): per-direction delay, jitter (which reorders), loss, duplication,
//! corruption and an optional bottleneck rate with a bounded queue. Virtual time jumps to the
//! next frame arrival or engine timeout.

use super::TestDevice;
use linerate_stack::engine::{ConnectionHandle, Engine, EngineConfig, Event};
use linerate_stack::tcp::SocketOptions;
use linerate_stack::time::{Duration, Instant};
use linerate_stack::wire::{EthernetAddress, Ipv4Address};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Clone, Copy, Debug)]
pub struct LinkParams {
    pub delay: Duration,
    pub jitter: Duration,
    /// Probabilities in parts per million.
    pub loss_ppm: u32,
    pub dup_ppm: u32,
    pub corrupt_ppm: u32,
    /// Bottleneck in bits per second (0 = unlimited) and its queue limit in time.
    pub rate_bps: u64,
    pub queue: Duration,
}

impl Default for LinkParams {
    fn default() -> Self {
        LinkParams {
            delay: Duration::from_millis(5),
            jitter: Duration::ZERO,
            loss_ppm: 0,
            dup_ppm: 0,
            corrupt_ppm: 0,
            rate_bps: 0,
            queue: Duration::from_millis(50),
        }
    }
}

pub const A_IP: Ipv4Address = Ipv4Address::new(198, 18, 1, 1);
pub const B_IP: Ipv4Address = Ipv4Address::new(198, 18, 1, 2);

pub struct Link {
    pub a: Engine,
    pub b: Engine,
    dev: [TestDevice; 2],
    pub now: Instant,
    params: LinkParams,
    flying: BinaryHeap<(Reverse<Instant>, u64, usize, Vec<u8>)>,
    busy_until: [Instant; 2],
    counter: u64,
    rng: u64,
    pub seed: u64,
}

impl Link {
    pub fn new(seed: u64, params: LinkParams, tweak: impl Fn(&mut EngineConfig)) -> Self {
        let now = Instant::from_millis(10);
        let mut ca = EngineConfig::new(A_IP, 24, EthernetAddress([2, 0, 0, 0, 1, 1]), seed);
        let mut cb = EngineConfig::new(B_IP, 24, EthernetAddress([2, 0, 0, 0, 1, 2]), seed ^ 0xffff);
        tweak(&mut ca);
        tweak(&mut cb);
        Link {
            a: Engine::new(ca, now),
            b: Engine::new(cb, now),
            dev: [TestDevice::default(), TestDevice::default()],
            now,
            params,
            flying: BinaryHeap::new(),
            busy_until: [now, now],
            counter: 0,
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            seed,
        }
    }

    fn rand_ppm(&mut self) -> u32 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % 1_000_000) as u32
    }

    fn send(&mut self, from: usize, mut frame: Vec<u8>) {
        let p = self.params;
        if self.rand_ppm() < p.loss_ppm {
            return;
        }
        let mut depart = self.now;
        if let Some(ns) = (frame.len() as u64 * 8 * 1_000_000_000).checked_div(p.rate_bps) {
            let start = self.busy_until[from].max(self.now);
            if start - self.now > p.queue {
                return; // tail drop at the bottleneck
            }
            let tx = Duration::from_nanos(ns);
            self.busy_until[from] = start + tx;
            depart = start + tx;
        }
        let jitter = if p.jitter.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_nanos(u64::from(self.rand_ppm()) % p.jitter.as_nanos())
        };
        if self.rand_ppm() < p.corrupt_ppm {
            let i = (self.rand_ppm() as usize) % frame.len();
            frame[i] ^= 0x5a;
        }
        let at = depart + p.delay + jitter;
        if self.rand_ppm() < p.dup_ppm {
            self.counter += 1;
            self.flying.push((Reverse(at + Duration::from_micros(10)), self.counter, from, frame.clone()));
        }
        self.counter += 1;
        self.flying.push((Reverse(at), self.counter, from, frame));
    }

    /// Moves every queued frame onto the wire; returns true if anything moved.
    fn pump(&mut self) -> bool {
        let mut moved = false;
        self.a.poll_transmit(self.now, &mut self.dev[0]);
        self.b.poll_transmit(self.now, &mut self.dev[1]);
        for from in 0..2 {
            while let Some(f) = self.dev[from].tx.pop_front() {
                self.send(from, f);
                moved = true;
            }
        }
        moved
    }

    /// Runs until `done` or `limit` of virtual time passes. `app` runs after every step.
    pub fn run(&mut self, limit: Duration, mut app: impl FnMut(&mut Link) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            if app(self) {
                return true;
            }
            self.pump();
            let next = [self.flying.peek().map(|f| f.0 .0), self.a.next_timeout(), self.b.next_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else { return app(self) };
            if next > end {
                return false;
            }
            self.now = self.now.max(next);
            while self.flying.peek().is_some_and(|f| f.0 .0 <= self.now) {
                let (_, _, from, mut f) = self.flying.pop().unwrap();
                if from == 0 {
                    self.b.receive(self.now, &mut f);
                } else {
                    self.a.receive(self.now, &mut f);
                }
            }
            self.a.handle_timeout(self.now);
            self.b.handle_timeout(self.now);
        }
    }
}

/// Deterministic payload byte at offset `i`.
pub fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 11)) as u8
}

/// Result of one bulk transfer.
#[derive(Debug)]
pub struct Transfer {
    /// Time until the receiver had every byte.
    pub elapsed: Duration,
    /// Time until both engines were empty (includes TIME-WAIT).
    pub total: Duration,
    pub retrans: u64,
    pub received: usize,
}

/// A sends `size` bytes to B, both close; asserts byte-exact delivery and empty engines at the end.
pub fn bulk_transfer(link: &mut Link, size: usize, opts: SocketOptions, limit: Duration) -> Transfer {
    let start = link.now;
    let l = link.b.listen(5001, 16, Some(opts)).unwrap();
    let c = link.a.connect(link.now, (B_IP, 5001), None, Some(opts)).unwrap();
    let mut sent = 0usize;
    let mut server: Option<ConnectionHandle> = None;
    let mut received = 0usize;
    let mut buf = vec![0u8; 65536];
    let mut chunk = vec![0u8; 65536];
    let mut client_closed = false;
    let mut server_closed = false;
    let mut connected = false;
    let mut done_at = None;
    let seed = link.seed;
    let ok = link.run(limit, |k| {
        while let Some(ev) = k.a.poll_event() {
            match ev {
                Event::Connected(_) => connected = true,
                Event::Closed { error: Some(e), .. } => panic!("seed {seed}: client connection failed: {e}"),
                _ => {}
            }
        }
        while sent < size && !client_closed {
            let n = (size - sent).min(chunk.len());
            for (j, b) in chunk[..n].iter_mut().enumerate() {
                *b = pattern(sent + j);
            }
            match k.a.write(k.now, c, &chunk[..n]) {
                Ok(w) => sent += w,
                Err(linerate_stack::Error::WouldBlock) => break,
                Err(e) => panic!("seed {seed}: write failed: {e}"),
            }
        }
        if sent == size && connected && !client_closed {
            k.a.close(k.now, c).unwrap();
            client_closed = true;
        }
        while let Some(ev) = k.b.poll_event() {
            match ev {
                Event::Incoming(_) => server = k.b.accept(l).unwrap(),
                Event::Closed { error: Some(e), .. } => panic!("seed {seed}: server connection failed: {e}"),
                _ => {}
            }
        }
        if let (Some(s), false) = (server, server_closed) {
            loop {
                match k.b.read(k.now, s, &mut buf) {
                    Ok(0) => {
                        k.b.close(k.now, s).unwrap();
                        server_closed = true;
                        break;
                    }
                    Ok(n) => {
                        for (j, &b) in buf[..n].iter().enumerate() {
                            assert_eq!(
                                b,
                                pattern(received + j),
                                "seed {seed}: corrupted byte at {}",
                                received + j
                            );
                        }
                        received += n;
                        if received == size {
                            done_at = Some(k.now);
                        }
                    }
                    Err(linerate_stack::Error::WouldBlock) => break,
                    Err(e) => panic!("seed {seed}: read failed: {e}"),
                }
            }
        }
        client_closed && server_closed && k.a.connection_count() == 0 && k.b.connection_count() == 0
    });
    assert!(
        ok,
        "seed {seed}: transfer of {size} bytes did not finish: received {received}, a={:?}",
        link.a.stats()
    );
    assert_eq!(received, size, "seed {seed}");
    link.b.unlisten(link.now, l).unwrap();
    assert!(link.a.is_empty() && link.b.is_empty(), "seed {seed}: engines not empty");
    let elapsed = done_at.map(|t| t - start).unwrap_or(Duration::ZERO);
    Transfer { elapsed, total: link.now - start, retrans: link.a.stats().retrans_segs, received }
}
