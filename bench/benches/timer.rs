//! Timer wheel cost per operation with one million live timers.
//!
//! Deadlines are log-uniform between 10 µs and 120 s (pacing, RTO, keepalive and TIME_WAIT
//! mixed), so timers sit in every level from 0 to 4. Each criterion iteration is one operation;
//! the bookkeeping that keeps the wheel at ~1 M timers (re-inserting what was cancelled or
//! fired, cancelling what was inserted) runs outside the timed sections, but everything the
//! wheel does because of a timed operation (compacting garbage, cascading) is timed. Victims are
//! drawn uniformly at random from all live timers: no locality a real engine would not have.
//!
//! Two ways to issue operations, because they answer different questions:
//! - `cancel`, `reschedule`, `restart`: back to back, independent of each other, so the CPU
//!   overlaps the cache misses of consecutive operations (throughput: what a burst of ACKs each
//!   restarting a timer costs).
//! - `cancel chained`, `reschedule chained`: the next operation's handle depends on the previous
//!   one's result (through a zero the compiler cannot see), so nothing overlaps and each
//!   operation pays its full miss latency (what one isolated operation costs).
//!
//! - `…, batches of 64`: the same victims (uniformly random, independent), handed to
//!   `cancel_batch` / `reschedule_batch` 64 at a time, as an engine would hand over the timers
//!   of one receive burst; the whole call is timed, one iteration is one operation.
//! - `cancel + insert (churn)` (session 6): a random timer cancelled and a new one inserted,
//!   both timed, time standing still: connections closing and opening.
//! - `restart, prefetched 8 ahead`: single restarts, each preceded by a `prefetch` hint for the
//!   timer restarted 8 operations later (hints timed): a caller that looks connections up a
//!   little before it touches their timers.
//!
//! - `memory floor: touch 1 random entry`, `memory floor chained` (session 7): no wheel, a plain
//!   array of as many 32-byte entries, one random entry read and written per operation, issued
//!   like `cancel` and like `cancel chained`. No single random operation on a structure that
//!   large can cost less on this machine, so these rows say how much of a wheel row is the
//!   memory system and how much the wheel.
//!
//! `restart` is TCP's RTO restart on every ACK: the timer moves later by 10 µs–1 ms, usually
//! staying in its slot. The bench keeps its own copy of every deadline (as the engine does in
//! its connection slot) so computing the new deadline never touches the wheel's memory.
//!
//! `restart, time moving` is the same pattern with the clock running, so that whatever a wheel
//! defers at restart time (re-filing a timer postponed in place) is paid inside the timed
//! section: each timer has its own RTO (log-uniform 200 ms–2 s), a restart re-arms a random
//! timer at `now + rto`, time advances 1 µs per restart (at 1 M timers each is restarted about
//! once a second, so the shorter RTOs often fire first) and the wheel is drained after each
//! chunk of restarts (the expiries, cascades and re-files are timed; re-arming fired timers is
//! not). One iteration is one restart plus its share of the expiry work; the bench prints how
//! many expiries that share was.
//!
//! At one million timers each operation is also measured with the wheel's arrays on transparent
//! huge pages (`madvise(MADV_HUGEPAGE)` over `TimerWheel::memory_regions`, as a driver would do),
//! labelled "huge pages"; the AnonHugePages the process got is printed so a run where the kernel
//! refused them is visible.
//!
//! Times are thread CPU time (see `timed`).
//!
//! Run: `cargo bench -p linerate-bench --bench timer -- --warm-up-time 1 --measurement-time 3`

mod common;

use std::hint::black_box;
use std::time::Duration as WallDuration;

use criterion::{criterion_group, criterion_main, Criterion};
use linerate_stack::time::{Duration, Instant};
use linerate_stack::timer::{TimerHandle, TimerWheel, WheelConfig};

/// Live timer counts and whether to ask for huge pages: one million (the storage, ~40 MB, far
/// exceeds the L2 and the TLB reach, so each operation pays for a few random misses) and ten
/// thousand (cache-resident: the CPU cost).
const SIZES: [(usize, bool); 3] = [(1_000_000, false), (1_000_000, true), (10_000, false)];
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

    /// Log-uniform retransmission timeout in [200 ms, 2 s).
    fn rto(&mut self) -> Duration {
        let exponent = (self.next() % 1_000) as f64 / 1_000.0;
        Duration::from_nanos((200_000_000.0 * 10_f64.powf(exponent)) as u64)
    }

    /// Log-uniform delay in [10 µs, ~120 s).
    fn delay(&mut self) -> Duration {
        let exponent = (self.next() % 1_000) as f64 / 1_000.0 * 7.08; // 10^7.08 * 10 µs ≈ 120 s
        Duration::from_nanos((10_000.0 * 10_f64.powf(exponent)) as u64)
    }
}

/// A wheel at `now` holding `live` timers, and their handles.
fn full_wheel(
    rng: &mut Rng,
    now: Instant,
    (live, huge): (usize, bool),
) -> (TimerWheel<u64>, Vec<TimerHandle>) {
    let mut wheel = TimerWheel::with_capacity(WheelConfig::default(), now, live + CHUNK);
    if huge {
        advise_huge_pages(&wheel);
    }
    let handles = (0..live as u64).map(|i| wheel.insert(now + rng.delay(), i)).collect();
    if huge {
        eprintln!("AnonHugePages after filling the wheel: {}", anon_huge_pages());
    }
    (wheel, handles)
}

/// What a driver would do with the wheel's storage before first use.
fn advise_huge_pages(wheel: &TimerWheel<u64>) {
    for region in wheel.memory_regions() {
        advise_huge_pages_over(region);
    }
}

/// `madvise(MADV_HUGEPAGE)` over the whole pages inside `region`, a live allocation the caller
/// keeps.
fn advise_huge_pages_over(region: std::ops::Range<usize>) {
    const PAGE: usize = 4096;
    let start = region.start.next_multiple_of(PAGE);
    if region.end > start {
        // SAFETY: the range lies inside an allocation the caller owns and keeps; MADV_HUGEPAGE
        // only changes how the kernel backs it, never its contents.
        let rc =
            unsafe { libc::madvise(start as *mut libc::c_void, region.end - start, libc::MADV_HUGEPAGE) };
        if rc != 0 {
            eprintln!("madvise(MADV_HUGEPAGE) failed: {}", std::io::Error::last_os_error());
        }
    }
}

fn anon_huge_pages() -> String {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    let line = rollup.lines().find(|l| l.starts_with("AnonHugePages:")).unwrap_or("unknown");
    line.trim_start_matches("AnonHugePages:").trim().to_string()
}

fn name(op: &str, (live, huge): (usize, bool)) -> String {
    let pages = if huge { ", huge pages" } else { "" };
    match live {
        1_000_000 => format!("timer/{op} (1M live{pages})"),
        _ => format!("timer/{op} ({}k live{pages})", live / 1_000),
    }
}

/// CPU time this thread spent in `section`. Not wall time: on a shared, loaded machine a
/// section is often preempted, and counting other processes' time slices would swamp the
/// per-operation cost (cache pollution by them still shows, as it would in production).
fn timed(section: impl FnOnce()) -> WallDuration {
    let start = thread_cpu_time();
    section();
    thread_cpu_time().saturating_sub(start)
}

/// Runs `iters` operations as timed chunks of at most `CHUNK`: `chunk(n)` prepares `n`
/// operations untimed, times them (with [`timed`]), tidies up untimed and returns the time.
fn chunked(iters: u64, mut chunk: impl FnMut(usize) -> WallDuration) -> WallDuration {
    let mut total = WallDuration::ZERO;
    let mut left = iters as usize;
    while left > 0 {
        let n = left.min(CHUNK);
        total += chunk(n);
        left -= n;
    }
    total
}

fn thread_cpu_time() -> WallDuration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable timespec; this clock exists on every Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    WallDuration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

fn bench_insert_at(c: &mut Criterion, size: (usize, bool)) {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let now = Instant::from_millis(1_000);
    let (mut wheel, _) = full_wheel(&mut rng, now, size);
    let mut fresh = Vec::with_capacity(CHUNK);
    c.bench_function(&name("insert", size), |b| {
        b.iter_custom(|iters| {
            chunked(iters, |n| {
                let deadlines: Vec<Instant> = (0..n).map(|_| now + rng.delay()).collect();
                let spent = timed(|| {
                    for (i, &deadline) in deadlines.iter().enumerate() {
                        fresh.push(wheel.insert(deadline, i as u64));
                    }
                });
                for handle in fresh.drain(..) {
                    wheel.cancel(handle);
                }
                spent
            })
        })
    });
}

fn bench_cancel_at(c: &mut Criterion, size: (usize, bool)) {
    let live = size.0;
    let mut rng = Rng(0x2345_6789_abcd_ef12);
    let now = Instant::from_millis(1_000);
    let (mut wheel, mut handles) = full_wheel(&mut rng, now, size);
    c.bench_function(&name("cancel", size), |b| {
        b.iter_custom(|iters| {
            chunked(iters, |n| {
                let picks: Vec<usize> = (0..n).map(|_| rng.next() as usize % live).collect();
                // Gathered untimed: a caller holds its handle, the lookup is not the wheel's cost.
                let victims: Vec<TimerHandle> = picks.iter().map(|&pick| handles[pick]).collect();
                let spent = timed(|| {
                    for &handle in &victims {
                        black_box(wheel.cancel(handle));
                    }
                });
                for &pick in &picks {
                    // A pick drawn twice was already replaced; replacing again is harmless.
                    wheel.cancel(handles[pick]);
                    handles[pick] = wheel.insert(now + rng.delay(), pick as u64);
                }
                spent
            })
        })
    });
}

fn bench_reschedule_at(c: &mut Criterion, size: (usize, bool)) {
    let live = size.0;
    let mut rng = Rng(0x3456_789a_bcde_f123);
    let now = Instant::from_millis(1_000);
    let (mut wheel, handles) = full_wheel(&mut rng, now, size);
    c.bench_function(&name("reschedule", size), |b| {
        b.iter_custom(|iters| {
            chunked(iters, |n| {
                let moves: Vec<(TimerHandle, Instant)> =
                    (0..n).map(|_| (handles[rng.next() as usize % live], now + rng.delay())).collect();
                timed(|| {
                    for &(handle, deadline) in &moves {
                        black_box(wheel.reschedule(handle, deadline));
                    }
                })
            })
        })
    });
}

/// One iteration = one timer fired, in a driver loop that jumps time to `next_expiry` whenever
/// nothing is due (so the cost of cascades and of `next_expiry` is included).
fn bench_expire_at(c: &mut Criterion, size: (usize, bool)) {
    let mut rng = Rng(0x4567_89ab_cdef_1234);
    let mut now = Instant::from_millis(1_000);
    let (mut wheel, _) = full_wheel(&mut rng, now, size);
    c.bench_function(&name("expire", size), |b| {
        b.iter_custom(|iters| {
            chunked(iters, |n| {
                let spent = timed(|| {
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
                spent
            })
        })
    });
}

/// Like `cancel`, but each cancel's victim index depends on the previous cancel's result.
fn bench_cancel_chained_at(c: &mut Criterion, size: (usize, bool)) {
    let live = size.0;
    let mut rng = Rng(0x5678_9abc_def1_2345);
    let now = Instant::from_millis(1_000);
    let (mut wheel, mut handles) = full_wheel(&mut rng, now, size);
    let zero = black_box(0_usize);
    c.bench_function(&name("cancel chained", size), |b| {
        b.iter_custom(|iters| {
            chunked(iters, |n| {
                let picks: Vec<usize> = (0..n).map(|_| rng.next() as usize % live).collect();
                let victims: Vec<TimerHandle> = picks.iter().map(|&pick| handles[pick]).collect();
                let spent = timed(|| {
                    let mut i = 0;
                    for _ in 0..n {
                        // `value & zero` is 0, but only once the cancel has returned the value.
                        let value = wheel.cancel(victims[i]).unwrap_or(0);
                        i += 1 + (value as usize & zero);
                    }
                });
                for &pick in &picks {
                    wheel.cancel(handles[pick]);
                    handles[pick] = wheel.insert(now + rng.delay(), pick as u64);
                }
                spent
            })
        })
    });
}

/// Like `reschedule`, but each move's index depends on the previous move's result: the deadline
/// and the value read back from the moved entry (a read of the line the move just loaded).
fn bench_reschedule_chained_at(c: &mut Criterion, size: (usize, bool)) {
    let live = size.0;
    let mut rng = Rng(0x6789_abcd_ef12_3456);
    let now = Instant::from_millis(1_000);
    let (mut wheel, handles) = full_wheel(&mut rng, now, size);
    let zero = black_box(0_usize);
    c.bench_function(&name("reschedule chained", size), |b| {
        b.iter_custom(|iters| {
            chunked(iters, |n| {
                let moves: Vec<(TimerHandle, Instant)> =
                    (0..n).map(|_| (handles[rng.next() as usize % live], now + rng.delay())).collect();
                timed(|| {
                    let mut i = 0;
                    for _ in 0..n {
                        let (handle, deadline) = moves[i];
                        let moved = wheel.reschedule(handle, deadline);
                        // `moved` is known after a predicted branch, before the entry arrives
                        // (session 8): chain through the value read back from the entry too
                        // (not the deadline, which store forwarding hands over at once).
                        let read = wheel.get(handle).map_or(0, |&value| value as usize);
                        i += 1 + ((usize::from(moved) | read) & zero);
                    }
                })
            })
        })
    });
}

/// TCP's RTO restart: a random live timer moves 10 µs–1 ms later.
fn bench_restart_at(c: &mut Criterion, size: (usize, bool)) {
    let mut rng = Rng(0x789a_bcde_f123_4567);
    let now = Instant::from_millis(1_000);
    let (mut wheel, handles) = full_wheel(&mut rng, now, size);
    // The caller's own record of each deadline, as the engine keeps one per connection.
    let mut deadlines: Vec<Instant> = handles.iter().map(|&h| wheel.deadline(h).expect("live")).collect();
    c.bench_function(&name("restart", size), |b| {
        b.iter_custom(|iters| {
            chunked(iters, |n| {
                let moves = restarts(&mut rng, &handles, &mut deadlines, n);
                timed(|| {
                    for &(handle, deadline) in &moves {
                        black_box(wheel.reschedule(handle, deadline));
                    }
                })
            })
        })
    });
}

/// TCP's RTO restart with time moving: each restart re-arms a random timer one period from now,
/// time advances 1 µs per restart, and the expiry work that follows (including anything the
/// wheel deferred at restart time) is timed too.
fn bench_restart_moving_at(c: &mut Criterion, size: (usize, bool)) {
    let live = size.0;
    let mut rng = Rng(0x89ab_cdef_1234_5678);
    let mut now = Instant::from_millis(1_000);
    let periods: Vec<Duration> = (0..live).map(|_| rng.rto()).collect();
    let mut wheel = TimerWheel::with_capacity(WheelConfig::default(), now, live + CHUNK);
    if size.1 {
        advise_huge_pages(&wheel);
    }
    let mut handles: Vec<TimerHandle> =
        periods.iter().enumerate().map(|(i, &p)| wheel.insert(now + p, i as u64)).collect();
    let mut fired = Vec::with_capacity(CHUNK);
    let (mut restarts, mut expiries) = (0_u64, 0_u64);
    c.bench_function(&name("restart, time moving", size), |b| {
        b.iter_custom(|iters| {
            chunked(iters, |n| {
                let moves: Vec<(TimerHandle, Instant)> = (0..n)
                    .map(|k| {
                        let pick = rng.next() as usize % live;
                        (handles[pick], now + Duration::from_micros(k as u64) + periods[pick])
                    })
                    .collect();
                let end = now + Duration::from_micros(n as u64);
                let spent = timed(|| {
                    for &(handle, deadline) in &moves {
                        black_box(wheel.reschedule(handle, deadline));
                    }
                    while let Some((_, pick)) = wheel.poll_expired(end) {
                        fired.push(pick);
                    }
                });
                now = end;
                restarts += n as u64;
                expiries += fired.len() as u64;
                for pick in fired.drain(..) {
                    handles[pick as usize] = wheel.insert(now + periods[pick as usize], pick);
                }
                spent
            })
        })
    });
    eprintln!("restart, time moving: {expiries} expiries for {restarts} restarts");
}

/// Operations per batch in the `batches of` rows: a receive burst's worth of connections.
const BATCH: usize = 64;

/// `cancel`, but `BATCH` victims at a time through `cancel_batch`.
fn bench_cancel_batched_at(c: &mut Criterion, size: (usize, bool)) {
    let live = size.0;
    let mut rng = Rng(0x9abc_def1_2345_6789);
    let now = Instant::from_millis(1_000);
    let (mut wheel, mut handles) = full_wheel(&mut rng, now, size);
    c.bench_function(&name(&format!("cancel, batches of {BATCH}"), size), |b| {
        b.iter_custom(|iters| {
            chunked(iters, |n| {
                let picks: Vec<usize> = (0..n).map(|_| rng.next() as usize % live).collect();
                let victims: Vec<TimerHandle> = picks.iter().map(|&pick| handles[pick]).collect();
                let spent = timed(|| {
                    for batch in victims.chunks(BATCH) {
                        black_box(wheel.cancel_batch(batch, |i, value| {
                            black_box((i, value));
                        }));
                    }
                });
                for &pick in &picks {
                    wheel.cancel(handles[pick]);
                    handles[pick] = wheel.insert(now + rng.delay(), pick as u64);
                }
                spent
            })
        })
    });
}

/// `reschedule`, but `BATCH` moves at a time through `reschedule_batch`.
fn bench_reschedule_batched_at(c: &mut Criterion, size: (usize, bool)) {
    let live = size.0;
    let mut rng = Rng(0xabcd_ef12_3456_789a);
    let now = Instant::from_millis(1_000);
    let (mut wheel, handles) = full_wheel(&mut rng, now, size);
    c.bench_function(&name(&format!("reschedule, batches of {BATCH}"), size), |b| {
        b.iter_custom(|iters| {
            chunked(iters, |n| {
                let moves: Vec<(TimerHandle, Instant)> =
                    (0..n).map(|_| (handles[rng.next() as usize % live], now + rng.delay())).collect();
                timed(|| {
                    for batch in moves.chunks(BATCH) {
                        black_box(wheel.reschedule_batch(batch, |i| panic!("move {i} was stale")));
                    }
                })
            })
        })
    });
}

/// `restart` (RTO restarts, 10 µs–1 ms later), `BATCH` at a time through `reschedule_batch`.
fn bench_restart_batched_at(c: &mut Criterion, size: (usize, bool)) {
    let mut rng = Rng(0xbcde_f123_4567_89ab);
    let now = Instant::from_millis(1_000);
    let (mut wheel, handles) = full_wheel(&mut rng, now, size);
    let mut deadlines: Vec<Instant> = handles.iter().map(|&h| wheel.deadline(h).expect("live")).collect();
    c.bench_function(&name(&format!("restart, batches of {BATCH}"), size), |b| {
        b.iter_custom(|iters| {
            chunked(iters, |n| {
                let moves = restarts(&mut rng, &handles, &mut deadlines, n);
                timed(|| {
                    for batch in moves.chunks(BATCH) {
                        black_box(wheel.reschedule_batch(batch, |i| panic!("move {i} was stale")));
                    }
                })
            })
        })
    });
}

/// How far ahead the `prefetched` row hints: about the operations a receive burst handles
/// between looking a connection up and restarting its timer.
const PREFETCH_AHEAD: usize = 8;

/// `restart`, one at a time, but each operation first hints the wheel (`prefetch`) about the
/// timer it will restart `PREFETCH_AHEAD` operations later. The hints are timed.
fn bench_restart_prefetched_at(c: &mut Criterion, size: (usize, bool)) {
    let mut rng = Rng(0xcdef_1234_5678_9abc);
    let now = Instant::from_millis(1_000);
    let (mut wheel, handles) = full_wheel(&mut rng, now, size);
    let mut deadlines: Vec<Instant> = handles.iter().map(|&h| wheel.deadline(h).expect("live")).collect();
    c.bench_function(&name(&format!("restart, prefetched {PREFETCH_AHEAD} ahead"), size), |b| {
        b.iter_custom(|iters| {
            chunked(iters, |n| {
                let moves = restarts(&mut rng, &handles, &mut deadlines, n);
                timed(|| {
                    for &(handle, _) in moves.iter().take(PREFETCH_AHEAD) {
                        wheel.prefetch(handle);
                    }
                    for (i, &(handle, deadline)) in moves.iter().enumerate() {
                        if let Some(&(ahead, _)) = moves.get(i + PREFETCH_AHEAD) {
                            wheel.prefetch(ahead);
                        }
                        black_box(wheel.reschedule(handle, deadline));
                    }
                })
            })
        })
    });
}

/// Connection churn: one iteration closes a random connection (cancels its timer) and opens
/// another (inserts a timer at a random deadline in its place), both timed, time standing
/// still. With revival the insert often takes a zombie the cancels just left.
fn bench_churn_at(c: &mut Criterion, size: (usize, bool)) {
    let live = size.0;
    let mut rng = Rng(0xbcde_f123_4567_89ab);
    let now = Instant::from_millis(1_000);
    let (mut wheel, mut handles) = full_wheel(&mut rng, now, size);
    let mut fresh = Vec::with_capacity(CHUNK);
    c.bench_function(&name("cancel + insert (churn)", size), |b| {
        b.iter_custom(|iters| {
            chunked(iters, |n| {
                let picks: Vec<usize> = (0..n).map(|_| rng.next() as usize % live).collect();
                // Gathered untimed, as in `cancel`: the caller's lookup is not the wheel's cost.
                let ops: Vec<(TimerHandle, Instant)> =
                    picks.iter().map(|&pick| (handles[pick], now + rng.delay())).collect();
                let spent = timed(|| {
                    for (i, &(handle, deadline)) in ops.iter().enumerate() {
                        black_box(wheel.cancel(handle));
                        fresh.push(wheel.insert(deadline, i as u64));
                    }
                });
                for ((&pick, &(victim, _)), handle) in picks.iter().zip(&ops).zip(fresh.drain(..)) {
                    // A pick drawn twice replaced its first replacement: cancel that one.
                    let old = core::mem::replace(&mut handles[pick], handle);
                    if old != victim {
                        wheel.cancel(old);
                    }
                }
                spent
            })
        })
    });
}

/// `n` RTO restarts of random timers: each moves 10 µs–1 ms past the caller's own record of
/// its deadline (computing it never touches the wheel).
fn restarts(
    rng: &mut Rng,
    handles: &[TimerHandle],
    deadlines: &mut [Instant],
    n: usize,
) -> Vec<(TimerHandle, Instant)> {
    (0..n)
        .map(|_| {
            let pick = rng.next() as usize % handles.len();
            deadlines[pick] += Duration::from_micros(10 + rng.next() % 990);
            (handles[pick], deadlines[pick])
        })
        .collect()
}

/// The memory floor under every single random operation: the same number of 32-byte entries as
/// the wheel holds, one random entry read and written per operation (what validating a handle
/// and updating its entry must do at least), nothing else. `touch` applies one operation to the
/// picked entries in order and is either independent (like `cancel`) or chained (like
/// `cancel chained`). A wheel operation cannot cost less than its row here, so the gap to it is
/// the wheel's own.
fn bench_memory_floor_at(
    c: &mut Criterion,
    size: (usize, bool),
    op: &str,
    touch: fn(&mut [[u64; 4]], &[usize]),
) {
    let live = size.0;
    let mut rng = Rng(0x9abc_def1_2345_6789);
    let mut entries = vec![[0_u64; 4]; live + CHUNK];
    if size.1 {
        let start = entries.as_ptr() as usize;
        advise_huge_pages_over(start..start + std::mem::size_of_val(entries.as_slice()));
    }
    for (i, entry) in entries.iter_mut().enumerate() {
        entry[0] = i as u64; // fault every page in before timing, as filling the wheel does
    }
    c.bench_function(&name(op, size), |b| {
        b.iter_custom(|iters| {
            chunked(iters, |n| {
                let picks: Vec<usize> = (0..n).map(|_| rng.next() as usize % live).collect();
                let entries = entries.as_mut_slice();
                timed(|| touch(entries, &picks))
            })
        })
    });
}

fn touch_independent(entries: &mut [[u64; 4]], picks: &[usize]) {
    for &pick in picks {
        let entry = &mut entries[pick];
        entry[1] = entry[1].wrapping_add(1);
    }
}

fn touch_chained(entries: &mut [[u64; 4]], picks: &[usize]) {
    let zero = black_box(0_usize);
    let mut carry = 0;
    for &pick in picks {
        let entry = &mut entries[pick + carry];
        entry[1] = entry[1].wrapping_add(1);
        // Zero, but only once this entry has been read: the next address waits for it.
        carry = entry[1] as usize & zero;
    }
}

fn bench_memory_floor_independent_at(c: &mut Criterion, size: (usize, bool)) {
    bench_memory_floor_at(c, size, "memory floor: touch 1 random entry", touch_independent);
}

fn bench_memory_floor_chained_at(c: &mut Criterion, size: (usize, bool)) {
    bench_memory_floor_at(c, size, "memory floor chained", touch_chained);
}

/// Every operation at every size.
fn bench_all_sizes(c: &mut Criterion) {
    type Op = fn(&mut Criterion, (usize, bool));
    let ops: [Op; 15] = [
        bench_memory_floor_independent_at,
        bench_memory_floor_chained_at,
        bench_insert_at,
        bench_cancel_at,
        bench_cancel_batched_at,
        bench_reschedule_at,
        bench_reschedule_batched_at,
        bench_restart_at,
        bench_restart_batched_at,
        bench_restart_prefetched_at,
        bench_restart_moving_at,
        bench_cancel_chained_at,
        bench_reschedule_chained_at,
        bench_expire_at,
        bench_churn_at,
    ];
    for op in ops {
        for size in SIZES {
            op(c, size);
        }
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench_all_sizes
}
criterion_main!(benches);
