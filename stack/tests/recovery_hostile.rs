//! A hostile receiver (the SACK-panic / SACK-slowness class): thousands of tiny holes, blocks
//! that split segments, blocks beyond `snd_nxt`, wildly out-of-window blocks, and huge blocks
//! re-covering long SACKed runs. Per-ACK work must stay within O(blocks · log n) plus O(1) per
//! segment newly acknowledged or SACKed, and nothing may allocate.
//!
//! The counting allocator counts per thread, so the test harness's own threads do not count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use linerate_stack::congestion::PacketSnapshot;
use linerate_stack::recovery::{LossRecovery, RecoveryConfig, SentSegment};
use linerate_stack::time::{Duration, Instant};
use linerate_stack::wire::{SackBlock, SeqNumber};

struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: the slot may be gone while the thread is being torn down.
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
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

/// xorshift64: deterministic, seeded.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const SEG: u32 = 100;
const SEGMENTS: u32 = 8192;
const ACKS: usize = 20_000;

#[test]
fn hostile_sack_patterns_cost_bounded_work_and_no_memory() {
    let seed = 0x5EED_0000_0000_0001u64;
    let base = SeqNumber(0xFFFF_0000); // the flight crosses 2^32
    let config = RecoveryConfig { capacity: SEGMENTS as usize, smss: SEG, ..RecoveryConfig::default() };
    let mut lr = LossRecovery::new(config, base);
    let mut now = Instant::from_millis(1);
    for i in 0..SEGMENTS {
        let seg = SentSegment {
            seq: base + i * SEG,
            len: SEG,
            snapshot: PacketSnapshot::default(),
            ..SentSegment::default()
        };
        lr.on_sent(now, &seg).unwrap();
    }
    let capacity = lr.scoreboard().segments().capacity();
    let log_n = u64::from(usize::BITS - (SEGMENTS as usize).leading_zeros());
    let mut rng = Rng(seed);
    let mut max_work = 0;
    let mut ack = base;
    let allocations_before = allocations();
    for i in 0..ACKS {
        now += Duration::from_micros(10);
        let snd_nxt = lr.scoreboard().high_data();
        let flight = (snd_nxt - ack) as u32;
        let mut blocks = [SackBlock::default(); 4];
        for b in blocks.iter_mut() {
            let off = rng.below(u64::from(flight)) as u32;
            // Long blocks (which SACK everything they cover) only in the last quarter, so the
            // holes and split segments get their turn first.
            let kinds = if i < ACKS * 3 / 4 { 5 } else { 6 };
            let (l, r) = match rng.below(kinds) {
                0 => (ack + off, ack + off + 1 + rng.below(60) as u32), // splits a segment
                1 => (ack + off / SEG * SEG, ack + off / SEG * SEG + SEG), // one segment: a hole pattern
                2 => (snd_nxt - 50, snd_nxt + 1000),                    // beyond snd_nxt
                3 => (ack + off / SEG * SEG, ack + (off / SEG * SEG + 3 * SEG).min(flight)),
                4 => (SeqNumber(rng.next() as u32), SeqNumber(rng.next() as u32)), // anywhere
                _ => (ack, snd_nxt), // everything again: long SACKed runs re-covered
            };
            *b = SackBlock { left: l, right: r };
        }
        // Rarely advance the cumulative ACK a little.
        if i % 500 == 499 {
            let step = (rng.below(20) as u32 * SEG).min((snd_nxt - ack) as u32);
            ack += step;
        }
        let out = lr.on_ack(now, ack, &blocks, None, |_| {});
        let work = lr.scoreboard().last_ack_work();
        let touched =
            u64::from(out.newly_sacked.div_ceil(SEG)) + u64::from(out.newly_acked.div_ceil(SEG)) + 1;
        let bound = 4 + 4 * (log_n + 8) + 2 * touched;
        assert!(work <= bound, "seed {seed:#x} ack #{i}: work {work} > bound {bound} (touched {touched})");
        max_work = max_work.max(work.saturating_sub(2 * touched));
        while let Some((seq, len)) = lr.next_retransmission(false) {
            let seg = SentSegment { seq, len, is_retransmit: true, ..SentSegment::default() };
            lr.on_sent(now, &seg).unwrap();
        }
    }
    assert_eq!(allocations(), allocations_before, "no allocation on the ACK path");
    assert_eq!(lr.scoreboard().segments().capacity(), capacity);
    let c = lr.scoreboard().counters();
    assert!(c.invalid_blocks > 1000 && c.partial_sacks > 1000, "the hostile patterns were exercised: {c:?}");
    assert!(lr.scoreboard().sacked_segments() <= SEGMENTS);
    println!("max per-ACK work beyond touched segments: {max_work} (log n = {log_n}); counters {c:?}");
}
