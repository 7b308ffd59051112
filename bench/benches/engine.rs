//! Engine-to-engine bulk transfer over an in-memory lossless link, one core.
//!
//! Reports bytes/s (criterion's throughput in bytes → Gbit/s) and, in the `per_segment` group,
//! elements = full-size data segments, so criterion's time per element is the ns per segment for
//! the whole path: sender output (header + one-pass copy/checksum), receiver input (parse, verify,
//! reassembly, delayed ACK), the ACK back and its processing. Target: ≤ 150 ns per segment of
//! the engine that feeds the data.
//!
//! **The link** (rows without a suffix) is modelled on a real one: 50 Gbit/s (the issue's
//! target rate), frames serialized one after the other (preamble, FCS and gap counted) and
//! delivered 5 µs after their last bit left, in a FIFO that never drops
//! ([`linerate_bench::mem_wire::Link`]). Both engines poll once per µs of virtual time, each
//! getting what has arrived by then. `16MiB_lossless_1us_rounds` is the model of sessions 1–5:
//! every frame is delivered in the round it was sent and the round is 1 µs, so the RTT is one
//! round and the sender's whole flight is acknowledged before it sends again. That makes every
//! round a restart from nothing in flight (RFC 5681 §4.1: the pacer lets the restart window
//! out and then paces), so the sender sent 11 segments per round whatever the window, an ACK
//! came back for every 11, and the window never grew (never cwnd-limited) — no real link
//! behaves like that. On the link model the flight never drains, the sender is limited by the
//! receive window and the ACK clock, and about 4 segments arrive per 1 µs poll, as on a real
//! 50 Gbit/s link polled every µs. Set `LINERATE_BENCH_DESCRIBE=1` to print rounds, frames
//! each way, cwnd, SRTT and pacing rate of one transfer under each model.
//!
//! The buffers are preallocated and boxed, so no allocation happens per frame once warm. One
//! connection is reused across iterations, so the numbers are steady state (buffers warm).
//!
//! `16MiB_lossless_thread_cpu` is `16MiB_lossless` timed by the thread's CPU time instead of
//! wall time (robust against other processes on a loaded machine; cache pollution still shows).
//! `16MiB_lossless_sender_cpu` and `_receiver_cpu` are the parts of it spent inside the sending
//! engine's calls (ACK input, timers, data output) and inside the receiving engine's calls (data
//! input, timers, ACK output); the rest is the applications' `write`/`read` and the harness.
//! Under callgrind the same split is `Bench::sender_round` / `Bench::receiver_round`.
//!
//! `16MiB_lossless_zero_copy` uses `write_with`/`read_with`: the receiving application reads
//! the data in place, so one of the four payload copies (app → send ring, send ring → frame,
//! frame → receive ring, receive ring → app) is gone.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use linerate_bench::mem_wire::{Link, MemWire};
use linerate_stack::device::{Capabilities, Device};
use linerate_stack::engine::{ConnectionHandle, Engine, EngineConfig, Event};
use linerate_stack::tcp::SocketOptions;
use linerate_stack::time::{Duration, Instant};
use linerate_stack::wire::{EthernetAddress, Ipv4Address};
use std::hint::black_box;

/// The device view of one end: transmits onto `out`, receives from `inc`.
struct Port<'a> {
    out: &'a mut MemWire,
    inc: &'a mut MemWire,
    /// Pretend the NIC verifies and fills checksums (isolates the engine's own cost).
    offload: bool,
}

impl Device for Port<'_> {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            mtu: 1500,
            max_burst: 64,
            rx_checksum_verified: self.offload,
            tx_checksum_offload: self.offload,
        }
    }
    fn receive<F: FnMut(&mut [u8])>(&mut self, now: Instant, budget: usize, handle: F) -> usize {
        self.inc.receive_due(now.as_nanos(), budget, handle)
    }
    fn transmit_capacity(&self) -> usize {
        usize::MAX
    }
    fn transmit<R, F: FnOnce(&mut [u8]) -> R>(&mut self, now: Instant, len: usize, fill: F) -> Option<R> {
        self.out.transmit_at(now.as_nanos(), len, fill)
    }
    fn flush(&mut self, _now: Instant) {}
}

/// Where a transfer's time went: the time-stamp counter read around each engine's share of a
/// round (when `on`). A thread-CPU clock read costs ~760 ns on this VM (a system call), more
/// than a round's work; `rdtsc` costs ~40 ns. The shares are applied to the transfer's thread
/// CPU time (see [`Bench::metered`]), so preemption counts against neither engine in particular.
#[derive(Debug, Default)]
struct Meter {
    on: bool,
    sender: u64,
    receiver: u64,
    rounds: u64,
}

impl Meter {
    fn read(&self) -> u64 {
        if self.on {
            ticks()
        } else {
            0
        }
    }
}

/// A cheap monotonic tick count (the time-stamp counter on x86-64).
#[cfg(target_arch = "x86_64")]
fn ticks() -> u64 {
    // SAFETY: `rdtsc` exists on every x86-64 CPU and has no memory effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
fn ticks() -> u64 {
    use std::sync::OnceLock;
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_nanos() as u64
}

struct Bench {
    a: Engine,
    b: Engine,
    ab: MemWire,
    ba: MemWire,
    now: Instant,
    meter: Meter,
    chunk: Vec<u8>,
    sink: Vec<u8>,
    offload: bool,
}

impl Bench {
    fn new(offload: bool, link: Option<Link>) -> Self {
        let now = Instant::from_millis(1);
        let ip_a = Ipv4Address::new(198, 18, 0, 1);
        let ip_b = Ipv4Address::new(198, 18, 0, 2);
        Bench {
            a: Engine::new(EngineConfig::new(ip_a, 24, EthernetAddress([2, 0, 0, 0, 0, 1]), 1), now),
            b: Engine::new(EngineConfig::new(ip_b, 24, EthernetAddress([2, 0, 0, 0, 0, 2]), 2), now),
            ab: link.map_or_else(MemWire::default, MemWire::with_link),
            ba: link.map_or_else(MemWire::default, MemWire::with_link),
            now,
            meter: Meter::default(),
            chunk: vec![0x5a; 256 * 1024],
            sink: vec![0; 256 * 1024],
            offload,
        }
    }

    /// One round of both engines' poll loops, 1 µs after the previous one: the sender engine
    /// (ACKs in, timers, data out), then the receiver engine (data in, timers, ACKs out).
    fn round(&mut self) {
        self.now += Duration::from_micros(1);
        let now = self.now;
        let t0 = self.meter.read();
        self.sender_round(now);
        let t1 = self.meter.read();
        self.receiver_round(now);
        let t2 = self.meter.read();
        self.meter.sender += t1.saturating_sub(t0);
        self.meter.receiver += t2.saturating_sub(t1);
        self.meter.rounds += 1;
    }

    /// The sending engine's share of a round (its own function, so callgrind shows it apart).
    #[inline(never)]
    fn sender_round(&mut self, now: Instant) {
        let mut pa = Port { out: &mut self.ab, inc: &mut self.ba, offload: self.offload };
        while self.a.receive_from(now, &mut pa, 64) > 0 {}
        self.a.handle_timeout(now);
        self.a.poll_transmit(now, &mut pa);
    }

    /// The receiving engine's share of a round.
    #[inline(never)]
    fn receiver_round(&mut self, now: Instant) {
        let mut pb = Port { out: &mut self.ba, inc: &mut self.ab, offload: self.offload };
        while self.b.receive_from(now, &mut pb, 64) > 0 {}
        self.b.handle_timeout(now);
        self.b.poll_transmit(now, &mut pb);
    }

    /// Opens the connection that every iteration reuses (steady state: buffers warm).
    fn connect(&mut self) -> (ConnectionHandle, ConnectionHandle) {
        let opts = SocketOptions { send_buffer: 4 << 20, recv_buffer: 4 << 20, ..SocketOptions::default() };
        let l = self.b.listen(5001, 8, Some(opts)).unwrap();
        let c = self.a.connect(self.now, (Ipv4Address::new(198, 18, 0, 2), 5001), None, Some(opts)).unwrap();
        loop {
            self.round();
            while self.a.poll_event().is_some() {}
            while let Some(ev) = self.b.poll_event() {
                if let Event::Incoming(_) = ev {
                    let s = self.b.accept(l).unwrap().unwrap();
                    return (c, s);
                }
            }
        }
    }

    /// Moves `size` bytes a → b over the open connection with `write`/`read` (each a copy
    /// between the application's buffer and the engine's ring).
    fn transfer(&mut self, (c, s): (ConnectionHandle, ConnectionHandle), size: usize) -> usize {
        let (mut sent, mut received) = (0usize, 0usize);
        while received < size {
            self.round();
            while sent < size {
                match self.a.write(self.now, c, &self.chunk[..(size - sent).min(self.chunk.len())]) {
                    Ok(n) => sent += n,
                    Err(_) => break,
                }
            }
            while let Ok(n) = self.b.read(self.now, s, &mut self.sink) {
                if n == 0 {
                    break;
                }
                received += n;
            }
        }
        black_box(received)
    }

    /// [`Bench::transfer`] with the meter on: returns the thread CPU time of the transfer
    /// spent inside the sending and inside the receiving engine's calls (each engine's share
    /// of the transfer's ticks, times its thread CPU time).
    fn metered(
        &mut self,
        conn: (ConnectionHandle, ConnectionHandle),
        size: usize,
    ) -> (std::time::Duration, std::time::Duration) {
        let before = (self.meter.sender, self.meter.receiver);
        let start = ticks();
        let cpu = thread_cpu(|| self.transfer(conn, size));
        let total = ticks().saturating_sub(start).max(1) as f64;
        let share = |part: u64| cpu.mul_f64(part as f64 / total);
        (share(self.meter.sender - before.0), share(self.meter.receiver - before.1))
    }

    /// The same transfer with the zero-copy calls: the sender fills its send ring in place
    /// (from `chunk`, standing in for a `pread` from the page cache: one copy, as with `write`)
    /// and the receiver consumes data inside the receive ring, so the copy into the
    /// application's buffer is gone.
    fn transfer_zero_copy(&mut self, (c, s): (ConnectionHandle, ConnectionHandle), size: usize) -> usize {
        let (mut sent, mut received) = (0usize, 0usize);
        while received < size {
            self.round();
            while sent < size {
                let chunk = &self.chunk;
                let fill = |buf: &mut [u8]| {
                    let n = buf.len().min(chunk.len());
                    buf[..n].copy_from_slice(&chunk[..n]);
                    n
                };
                match self.a.write_with(self.now, c, size - sent, fill) {
                    Ok(n) if n > 0 => sent += n,
                    _ => break,
                }
            }
            while let Ok(n) = self.b.read_with(self.now, s, usize::MAX, |data| black_box(data).len()) {
                if n == 0 {
                    break;
                }
                received += n;
            }
        }
        black_box(received)
    }
}

/// The link of the rows without a suffix: 50 Gbit/s (the target rate), 5 µs one way.
const LINK: Option<Link> = Some(Link { bits_per_sec: 50_000_000_000, delay_nanos: 5_000 });

fn bulk(c: &mut Criterion) {
    let size: usize = 16 << 20;
    let segments = size.div_ceil(1448) as u64;
    // Extra transfers outside criterion's timing, so only on request (they would also show in a
    // callgrind profile's `Bench::round`).
    if std::env::var_os("LINERATE_BENCH_DESCRIBE").is_some() {
        for link in [LINK, None] {
            describe(link, size);
        }
    }
    let mut bench = Bench::new(false, LINK);
    let conn = bench.connect();
    let mut group = c.benchmark_group("engine_bulk");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(size as u64));
    group.bench_function("16MiB_lossless", |b| b.iter(|| bench.transfer(conn, size)));
    group.finish();
    let mut group = c.benchmark_group("engine_per_segment");
    group.sample_size(10);
    group.throughput(Throughput::Elements(segments));
    group.bench_function("16MiB_lossless", |b| b.iter(|| bench.transfer(conn, size)));
    // The same transfer timed by this thread's CPU time rather than wall time: on the shared,
    // loaded machine, wall time mostly measures preemption by other processes.
    group.bench_function("16MiB_lossless_thread_cpu", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| thread_cpu(|| bench.transfer(conn, size))).sum())
    });
    // Only the CPU time inside the sending engine's calls (ACK input, timers, data output), then
    // only the receiving engine's (data input, timers, ACK output); the rest is the
    // application's `write`/`read` and the harness.
    bench.meter.on = true;
    group.bench_function("16MiB_lossless_sender_cpu", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| bench.metered(conn, size).0).sum())
    });
    group.bench_function("16MiB_lossless_receiver_cpu", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| bench.metered(conn, size).1).sum())
    });
    bench.meter.on = false;
    let mut fixed_step = Bench::new(false, None);
    let conn = fixed_step.connect();
    group.bench_function("16MiB_lossless_1us_rounds", |b| b.iter(|| fixed_step.transfer(conn, size)));
    let mut offloaded = Bench::new(true, LINK);
    let conn = offloaded.connect();
    group.bench_function("16MiB_lossless_checksum_offload", |b| b.iter(|| offloaded.transfer(conn, size)));
    let mut zero_copy = Bench::new(false, LINK);
    let conn = zero_copy.connect();
    group.bench_function("16MiB_lossless_zero_copy", |b| b.iter(|| zero_copy.transfer_zero_copy(conn, size)));
    group.finish();
}

/// Prints what one transfer under `clock` looks like on the wire: rounds, frames each way,
/// data segments per round, virtual time taken and the sender's view (cwnd, SRTT, pacing rate).
fn describe(link: Option<Link>, size: usize) {
    let mut bench = Bench::new(false, link);
    let conn = bench.connect();
    for which in ["first", "second"] {
        let (rounds, data, acks, start) =
            (bench.meter.rounds, bench.ab.frames(), bench.ba.frames(), bench.now);
        bench.transfer(conn, size);
        let rounds = bench.meter.rounds - rounds;
        let (data, acks) = (bench.ab.frames() - data, bench.ba.frames() - acks);
        let elapsed = bench.now - start;
        let info = bench.a.info(bench.now, conn.0).expect("the sender's connection is open");
        let rate =
            info.pacing_rate.map_or("unpaced".to_string(), |r| format!("{:.1} Gbit/s", r as f64 * 8e-9));
        eprintln!(
            "link {link:?}, {which} 16 MiB: {rounds} rounds, {data} frames a->b / {acks} b->a ({:.1} a->b \
             per round), virtual {:.0} us ({:.1} Gbit/s); then cwnd {} KiB, ssthresh {} KiB, snd_wnd {} \
             KiB, srtt {:?}, pacing {rate}",
            data as f64 / rounds as f64,
            elapsed.as_micros() as f64,
            size as f64 * 8.0 / elapsed.as_micros() as f64 * 1e-3,
            info.cwnd / 1024,
            info.ssthresh / 1024,
            info.snd_wnd / 1024,
            info.rtt,
        );
    }
}

/// CPU time this thread spent in `section` (`CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu<R>(section: impl FnOnce() -> R) -> std::time::Duration {
    let start = thread_cpu_now();
    black_box(section());
    thread_cpu_now().saturating_sub(start)
}

fn thread_cpu_now() -> std::time::Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable timespec; this clock exists on every Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    std::time::Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bulk
}
criterion_main!(benches);
