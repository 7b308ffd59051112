//! Timer wheel cost per operation with one million live timers.
//!
//! Deadlines are log-uniform between 10 µs and 120 s (pacing, RTO, keepalive and TIME_WAIT
//! mixed), so timers sit in every level from 0 to 4. Each criterion iteration is one operation;
//! the bookkeeping that keeps the wheel at ~1 M timers (re-inserting what was cancelled or
//! fired, cancelling what was inserted) runs outside the timed sections.
//!
//! Run: `cargo bench -p linerate-bench --bench timer -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::Duration as WallDuration;

use criterion::{criterion_group, criterion_main, Criterion};
use linerate_stack::time::{Duration, Instant};
use linerate_stack::timer::{TimerHandle, TimerWheel, WheelConfig};

/// Live timer counts: one million (the slab, ~40 MB, far exceeds the caches, so each operation
/// pays for a few random cache misses) and ten thousand (cache-resident: the CPU cost).
const SIZES: [usize; 2] = [1_000_000, 10_000];
/// Operations per timed section: large enough that reading the wall clock is noise.
const CHUNK: usize = 4_096;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Log-uniform delay in [10 µs, ~120 s).
    fn delay(&mut self) -> Duration {
        let exponent = (self.next() % 1_000) as f64 / 1_000.0 * 7.08; // 10^7.08 * 10 µs ≈ 120 s
        Duration::from_nanos((10_000.0 * 10_f64.powf(exponent)) as u64)
    }
}

/// A wheel at `now` holding `live` timers, and their handles.
fn full_wheel(rng: &mut Rng, now: Instant, live: usize) -> (TimerWheel<u64>, Vec<TimerHandle>) {
    let mut wheel = TimerWheel::with_capacity(WheelConfig::default(), now, live + CHUNK);
    let handles = (0..live as u64).map(|i| wheel.insert(now + rng.delay(), i)).collect();
    (wheel, handles)
}

fn name(op: &str, live: usize) -> String {
    match live {
        1_000_000 => format!("timer/{op} (1M live)"),
        _ => format!("timer/{op} ({}k live)", live / 1_000),
    }
}

fn timed(section: impl FnOnce()) -> WallDuration {
    let start = std::time::Instant::now();
    section();
    start.elapsed()
}

fn bench_insert(c: &mut Criterion) {
    for live in SIZES {
        bench_insert_at(c, live);
    }
}

fn bench_insert_at(c: &mut Criterion, live: usize) {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let now = Instant::from_millis(1_000);
    let (mut wheel, _) = full_wheel(&mut rng, now, live);
    let mut fresh = Vec::with_capacity(CHUNK);
    c.bench_function(&name("insert", live), |b| {
        b.iter_custom(|iters| {
            let mut total = WallDuration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                let n = left.min(CHUNK);
                let deadlines: Vec<Instant> = (0..n).map(|_| now + rng.delay()).collect();
                total += timed(|| {
                    for (i, &deadline) in deadlines.iter().enumerate() {
                        fresh.push(wheel.insert(deadline, i as u64));
                    }
                });
                for handle in fresh.drain(..) {
                    wheel.cancel(handle);
                }
                left -= n;
            }
            total
        })
    });
}

fn bench_cancel(c: &mut Criterion) {
    for live in SIZES {
        bench_cancel_at(c, live);
    }
}

fn bench_cancel_at(c: &mut Criterion, live: usize) {
    let mut rng = Rng(0x2345_6789_abcd_ef12);
    let now = Instant::from_millis(1_000);
    let (mut wheel, mut handles) = full_wheel(&mut rng, now, live);
    c.bench_function(&name("cancel", live), |b| {
        b.iter_custom(|iters| {
            let mut total = WallDuration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                let n = left.min(CHUNK);
                let picks: Vec<usize> = (0..n).map(|_| rng.next() as usize % live).collect();
                // Gathered untimed: a caller holds its handle, the lookup is not the wheel's cost.
                let victims: Vec<TimerHandle> = picks.iter().map(|&pick| handles[pick]).collect();
                total += timed(|| {
                    for &handle in &victims {
                        black_box(wheel.cancel(handle));
                    }
                });
                for &pick in &picks {
                    // A pick drawn twice was already replaced; replacing again is harmless.
                    wheel.cancel(handles[pick]);
                    handles[pick] = wheel.insert(now + rng.delay(), pick as u64);
                }
                left -= n;
            }
            total
        })
    });
}

fn bench_reschedule(c: &mut Criterion) {
    for live in SIZES {
        bench_reschedule_at(c, live);
    }
}

fn bench_reschedule_at(c: &mut Criterion, live: usize) {
    let mut rng = Rng(0x3456_789a_bcde_f123);
    let now = Instant::from_millis(1_000);
    let (mut wheel, handles) = full_wheel(&mut rng, now, live);
    c.bench_function(&name("reschedule", live), |b| {
        b.iter_custom(|iters| {
            let mut total = WallDuration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                let n = left.min(CHUNK);
                let moves: Vec<(TimerHandle, Instant)> =
                    (0..n).map(|_| (handles[rng.next() as usize % live], now + rng.delay())).collect();
                total += timed(|| {
                    for &(handle, deadline) in &moves {
                        black_box(wheel.reschedule(handle, deadline));
                    }
                });
                left -= n;
            }
            total
        })
    });
}

/// One iteration = one timer fired, in a driver loop that jumps time to `next_expiry` whenever
/// nothing is due (so the cost of cascades and of `next_expiry` is included).
fn bench_expire(c: &mut Criterion) {
    for live in SIZES {
        bench_expire_at(c, live);
    }
}

fn bench_expire_at(c: &mut Criterion, live: usize) {
    let mut rng = Rng(0x4567_89ab_cdef_1234);
    let mut now = Instant::from_millis(1_000);
    let (mut wheel, _) = full_wheel(&mut rng, now, live);
    c.bench_function(&name("expire", live), |b| {
        b.iter_custom(|iters| {
            let mut total = WallDuration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                let n = left.min(CHUNK);
                total += timed(|| {
                    let mut fired = 0;
                    while fired < n {
                        match wheel.poll_expired(now) {
                            Some(expired) => {
                                black_box(expired);
                                fired += 1;
                            }
                            None => now = wheel.next_expiry().expect("the wheel is never empty"),
                        }
                    }
                });
                for i in 0..n {
                    wheel.insert(now + rng.delay(), i as u64);
                }
                left -= n;
            }
            total
        })
    });
}

criterion_group!(benches, bench_insert, bench_cancel, bench_reschedule, bench_expire);
criterion_main!(benches);
