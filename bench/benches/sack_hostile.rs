//! Hostile SACK at scale: does the per-ACK cost or the memory of the recovery scoreboard grow
//! with what a malicious receiver does? (issue #4, the SACK-panic / SACK-slowness class)
//!
//! For 1k, 8k and 64k segments in flight the scoreboard is first shredded into the worst shape a
//! receiver can give it (every other segment SACKed: n/2 one-segment holes), then fed ACKs that
//! each carry 4 hostile blocks drawn from: 1-byte blocks splitting segments inside holes,
//! out-of-window blocks (random sequence numbers half the space away, blocks beyond `snd_nxt`, below `snd_una`),
//! duplicate reports of SACKed segments and blocks straddling `snd_una` — none of which may
//! repair a hole, so the shredded state lasts for the whole measurement (whole-window re-SACKs
//! are in `--bench sack`). Criterion measures the time per ACK; before
//! that, each size prints the heap the scoreboard holds, the heap allocated during 100,000 hostile
//! ACKs (must be 0) and the largest per-ACK work count the scoreboard reports beyond the
//! segments that really changed state. A flat time across
//! sizes and zero bytes allocated are the fixed bound the issue asks for.
//!
//! Run: `cargo bench -p linerate-bench --bench sack_hostile -- --warm-up-time 1 --measurement-time 3`.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use linerate_stack::congestion::PacketSnapshot;
use linerate_stack::recovery::{LossRecovery, RecoveryConfig, SentSegment};
use linerate_stack::time::{Duration, Instant};
use linerate_stack::wire::{SackBlock, SeqNumber};

/// Counts heap bytes and allocations (process-wide; the measured loops run on one thread and
/// nothing else runs meanwhile).
struct CountingAlloc;

static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const MSS: u32 = 1448;
const PATTERNS: usize = 4096;
const MEMORY_ACKS: usize = 100_000;

fn block(l: SeqNumber, r: SeqNumber) -> SackBlock {
    SackBlock { left: l, right: r }
}

/// A scoreboard with `segments` in flight, every other one SACKed; returns it, `snd_una`,
/// `snd_nxt` and the heap bytes it took to build.
fn shredded(segments: u32, now: Instant) -> (LossRecovery, SeqNumber, SeqNumber, u64) {
    let base = SeqNumber(0xFFF0_0000); // the window crosses 2^32
    let before = ALLOCATED_BYTES.load(Ordering::Relaxed);
    let config = RecoveryConfig { capacity: segments as usize + 1, smss: MSS, ..RecoveryConfig::default() };
    let mut lr = LossRecovery::new(config, base);
    for i in 0..segments {
        let seg = SentSegment {
            seq: base + i * MSS,
            len: MSS,
            snapshot: PacketSnapshot::default(),
            ..SentSegment::default()
        };
        lr.on_sent(now, &seg).expect("capacity covers the flight");
    }
    let heap = ALLOCATED_BYTES.load(Ordering::Relaxed) - before;
    let snd_nxt = base + segments * MSS;
    // Four one-segment blocks per ACK, as a real receiver would report them.
    for chunk in (1..segments).step_by(2).collect::<Vec<_>>().chunks(4) {
        let blocks: Vec<SackBlock> =
            chunk.iter().map(|&i| block(base + i * MSS, base + (i + 1) * MSS)).collect();
        lr.on_ack(now, base, &blocks, None, |_| {});
    }
    (lr, base, snd_nxt, heap)
}

/// Pre-generated hostile blocks (so the generator's cost stays out of the measurement).
fn hostile_patterns(una: SeqNumber, snd_nxt: SeqNumber) -> Vec<[SackBlock; 4]> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move |n: u32| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % u64::from(n.max(1))) as u32
    };
    let flight = snd_nxt - una;
    (0..PATTERNS)
        .map(|_| {
            let mut p = [SackBlock::default(); 4];
            for b in p.iter_mut() {
                let hole = una + rnd(flight as u32 / MSS / 2) * 2 * MSS;
                *b = match rnd(6) {
                    // A few bytes inside a hole: splits a segment, SACKs nothing.
                    0 => {
                        let left = hole + 1 + rnd(MSS / 2);
                        block(left, left + 1 + rnd(MSS / 4))
                    }
                    // Random, in the half of the sequence space opposite the window.
                    1 => {
                        let far = una + (1 << 31) + rnd(1 << 30);
                        block(far, far + rnd(1 << 20))
                    }
                    2 => block(snd_nxt + rnd(1 << 20), snd_nxt + (1 << 21)), // beyond snd_nxt
                    3 => block(una - (1 << 20), una - rnd(1 << 19) - 1),     // below snd_una
                    // An already SACKed segment again (a duplicate report).
                    4 => block(hole + MSS, hole + 2 * MSS),
                    _ => block(una - MSS, una + 1), // straddles snd_una (D-SACK-like)
                };
            }
            p
        })
        .collect()
}

/// Prints the memory and work figures for one size.
fn report_memory(segments: u32) {
    let mut now = Instant::from_millis(1);
    let (mut lr, una, snd_nxt, heap) = shredded(segments, now);
    let patterns = hostile_patterns(una, snd_nxt);
    let (bytes_before, allocs_before) =
        (ALLOCATED_BYTES.load(Ordering::Relaxed), ALLOCATIONS.load(Ordering::Relaxed));
    let mut max_work = 0;
    for i in 0..MEMORY_ACKS {
        now += Duration::from_micros(10);
        let out = lr.on_ack(now, una, &patterns[i % PATTERNS], None, |_| {});
        // Work for segments that really changed state is legitimate; the rest is the attack's.
        let touched = u64::from(out.newly_sacked.div_ceil(MSS)) + u64::from(out.newly_acked.div_ceil(MSS));
        max_work = max_work.max(lr.scoreboard().last_ack_work().saturating_sub(2 * touched));
    }
    let grown = ALLOCATED_BYTES.load(Ordering::Relaxed) - bytes_before;
    let allocs = ALLOCATIONS.load(Ordering::Relaxed) - allocs_before;
    let c = lr.scoreboard().counters();
    eprintln!(
        "sack_hostile/{segments}_in_flight: scoreboard heap {heap} B ({:.1} B/segment); {MEMORY_ACKS} hostile ACKs \
         allocated {grown} B in {allocs} allocations; max per-ACK work beyond touched segments {max_work}; ignored blocks {}, partial {}",
        heap as f64 / f64::from(segments),
        c.invalid_blocks,
        c.partial_sacks
    );
    assert_eq!((grown, allocs), (0, 0), "the ACK path must not allocate");
}

fn per_ack(c: &mut Criterion, segments: u32) {
    report_memory(segments);
    let mut now = Instant::from_millis(1);
    let (mut lr, una, snd_nxt, _) = shredded(segments, now);
    let patterns = hostile_patterns(una, snd_nxt);
    let mut i = 0;
    c.bench_function(&format!("sack_hostile/shredded/{segments}_in_flight"), |b| {
        b.iter(|| {
            now += Duration::from_micros(10);
            i = (i + 1) % PATTERNS;
            black_box(lr.on_ack(now, una, black_box(&patterns[i]), None, |s| {
                black_box(s);
            }));
        })
    });
}

fn benches(c: &mut Criterion) {
    for segments in [1024, 8192, 65_536] {
        per_ack(c, segments);
    }
}

criterion_group! {
    name = sack_hostile;
    config = common::criterion();
    targets = benches
}
criterion_main!(sack_hostile);
