//! Per-ACK cost of loss recovery (SACK scoreboard + RACK + RTT + timers) with 1k and 64k
//! segments in flight, for a receiver with holes (4 SACK blocks per ACK) and for a hostile
//! receiver (tiny splitting blocks, out-of-window blocks, whole-window re-SACKs).

mod common;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use linerate_stack::congestion::PacketSnapshot;
use linerate_stack::recovery::{LossRecovery, RecoveryConfig, SentSegment};
use linerate_stack::time::{Duration, Instant};
use linerate_stack::wire::{SackBlock, SeqNumber};

const MSS: u32 = 1448;

fn filled(segments: u32, now: Instant) -> (LossRecovery, SeqNumber) {
    let base = SeqNumber(0xFFF0_0000);
    let config = RecoveryConfig { capacity: segments as usize + 2, smss: MSS, ..RecoveryConfig::default() };
    let mut lr = LossRecovery::new(config, base);
    for i in 0..segments {
        let seg = SentSegment {
            seq: base + i * MSS,
            len: MSS,
            snapshot: PacketSnapshot::default(),
            ..SentSegment::default()
        };
        lr.on_sent(now, &seg).unwrap();
    }
    (lr, base + segments * MSS)
}

fn block(l: SeqNumber, r: SeqNumber) -> SackBlock {
    SackBlock { left: l, right: r }
}

/// Steady state of an honest receiver with holes: segments alternate between ones that arrive
/// at once (odd index, SACKed) and ones lost until later (even index). Each step sends one of
/// each and receives an ACK whose cumulative point moves past the oldest hole and the SACKed
/// segment above it, stopping at the next hole (never on SACKed data, which would be
/// reneging), with 4 one-segment SACK blocks for the newest arrivals (RFC 2018 §4 order).
fn holes(c: &mut Criterion, segments: u32) {
    let mut now = Instant::from_millis(1);
    let (mut lr, mut snd_nxt) = filled(segments, now);
    let mut una = lr.scoreboard().snd_una();
    c.bench_function(&format!("sack/4_blocks/{segments}_in_flight"), |b| {
        b.iter(|| {
            now += Duration::from_micros(10);
            for _ in 0..2 {
                let seg = SentSegment { seq: snd_nxt, len: MSS, ..SentSegment::default() };
                lr.on_sent(now, &seg).unwrap();
                snd_nxt += MSS;
            }
            una += 2 * MSS;
            // The newest segment (odd index) arrived; so did every second one below it.
            let arrived = |k: u32| block(snd_nxt - (2 * k + 1) * MSS, snd_nxt - 2 * k * MSS);
            let blocks = [arrived(0), arrived(1), arrived(2), arrived(3)];
            black_box(lr.on_ack(now, una, black_box(&blocks), None, |s| {
                black_box(s);
            }));
        })
    });
    assert_eq!(lr.reneging().count(), 0, "the honest pattern must never look like reneging");
}

/// A hostile receiver cycling through pre-generated patterns, `snd_una` fixed.
fn hostile(c: &mut Criterion, segments: u32) {
    let mut now = Instant::from_millis(1);
    let (mut lr, snd_nxt) = filled(segments, now);
    let una = lr.scoreboard().snd_una();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move |n: u32| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % u64::from(n.max(1))) as u32
    };
    let flight = segments * MSS;
    let patterns: Vec<[SackBlock; 4]> = (0..4096)
        .map(|_| {
            let mut p = [SackBlock::default(); 4];
            for b in p.iter_mut() {
                let off = rnd(flight);
                *b = match rnd(4) {
                    0 => block(una + off, una + off + 1 + rnd(64)),
                    1 => block(snd_nxt - 10, snd_nxt + 100_000),
                    2 => block(SeqNumber(rnd(u32::MAX)), SeqNumber(rnd(u32::MAX))),
                    _ => block(una, snd_nxt),
                };
            }
            p
        })
        .collect();
    let mut i = 0;
    c.bench_function(&format!("sack/hostile/{segments}_in_flight"), |b| {
        b.iter(|| {
            now += Duration::from_micros(10);
            i = (i + 1) % patterns.len();
            black_box(lr.on_ack(now, una, black_box(&patterns[i]), None, |s| {
                black_box(s);
            }));
        })
    });
}

fn benches(c: &mut Criterion) {
    holes(c, 1024);
    holes(c, 65_536);
    hostile(c, 1024);
    hostile(c, 65_536);
}

criterion_group! {
    name = sack;
    config = common::criterion();
    targets = benches
}
criterion_main!(sack);
