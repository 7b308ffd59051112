//! Property test: random send / ACK+SACK / retransmit / timer sequences against a simple model
//! (the set of SACKed byte offsets). Invariants: records tile `snd_una..snd_nxt`; a SACKed record
//! lies wholly in bytes the receiver reported; a block covering a whole record marks it; no record
//! is both lost and SACKed; `pipe` equals RFC 6675 SetPipe recomputed from the records; the byte
//! counters (lost ones included) match the records; a timer is armed whenever data is
//! outstanding. ACKs echo no TSecr, any TSecr (a forging peer) or an old TSval, so spurious
//! timeout undos (`recovery::spurious_rto`, which take loss marks back) happen along the way.

use std::collections::BTreeSet;

use linerate_stack::congestion::PacketSnapshot;
use linerate_stack::recovery::{LossDetection, LossRecovery, RecoveryConfig, SentSegment};
use linerate_stack::time::{Duration, Instant};
use linerate_stack::wire::{SackBlock, SeqNumber};
use proptest::prelude::*;

/// The TSecr an ACK carries: none, any value (a forging peer), or the TSval sent this many ms
/// ago (a plausible echo, old enough to pass the Eifel test of a spurious timeout, RFC 3522).
#[derive(Debug, Clone, Copy)]
enum Echo {
    None,
    Raw(u32),
    Back(u64),
}

#[derive(Debug, Clone)]
enum Op {
    Send(u32),
    /// Advance `snd_una` by this fraction (per mille) of the flight; blocks as (start, len)
    /// in per-mille of the flight, some reaching past `snd_nxt` or below `snd_una`.
    Ack {
        advance: u32,
        blocks: Vec<(i32, u32)>,
        echo: Echo,
    },
    Retransmit,
    FireTimer,
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u32..=300).prop_map(Op::Send),
        4 => (
            prop_oneof![Just(0u32), 0u32..=1000],
            proptest::collection::vec((-200i32..1200, 0u32..600), 0..=4),
            prop_oneof![Just(Echo::None), any::<u32>().prop_map(Echo::Raw), (0u64..3000).prop_map(Echo::Back)],
        )
            .prop_map(|(advance, blocks, echo)| Op::Ack { advance, blocks, echo }),
        2 => Just(Op::Retransmit),
        1 => Just(Op::FireTimer),
        1 => (0u64..300).prop_map(Op::Wait),
    ]
}

struct Harness {
    lr: LossRecovery,
    base: SeqNumber,
    /// Model: SACKed byte offsets from `base`, within the current window.
    sacked: BTreeSet<u32>,
    now: Instant,
}

impl Harness {
    /// The sender's TSval clock: milliseconds, from a base near the 2^32 wrap.
    fn tsval(&self) -> u32 {
        (self.now.as_millis() as u32).wrapping_add(u32::MAX - 2_000)
    }

    fn off(&self, s: SeqNumber) -> u32 {
        s.0.wrapping_sub(self.base.0)
    }

    fn apply(&mut self, op: &Op) {
        let una = self.off(self.lr.scoreboard().snd_una());
        let nxt = self.off(self.lr.scoreboard().high_data());
        let flight = nxt - una;
        match op {
            Op::Send(len) => {
                let seg = SentSegment {
                    seq: self.base + nxt,
                    len: *len,
                    tsval: Some(self.tsval()),
                    snapshot: PacketSnapshot::default(),
                    ..SentSegment::default()
                };
                let _ = self.lr.on_sent(self.now, &seg);
            }
            Op::Ack { advance, blocks, echo } => {
                let ack = una + (u64::from(flight) * u64::from(*advance) / 1000) as u32;
                let scale = |pm: i64| (i64::from(una) + i64::from(flight) * pm / 1000) as u32;
                let wire: Vec<SackBlock> = blocks
                    .iter()
                    .map(|&(s, l)| SackBlock {
                        left: self.base + scale(i64::from(s)),
                        right: self.base + scale(i64::from(s) + i64::from(l)),
                    })
                    .collect();
                self.now += Duration::from_millis(1);
                let tsecr = match *echo {
                    Echo::None => None,
                    Echo::Raw(v) => Some(v),
                    Echo::Back(ms) => Some(self.tsval().wrapping_sub(ms as u32)),
                };
                self.lr.on_ack(self.now, self.base + ack, &wire, tsecr, |_| {});
                for (i, b) in wire.iter().enumerate() {
                    let ack_seq = self.base + ack;
                    let (l_rel, r_rel) = (b.left - ack_seq, b.right - ack_seq);
                    if !(l_rel < r_rel && r_rel > 0 && r_rel as u32 <= nxt - ack) {
                        continue;
                    }
                    let (l, r) = (ack + l_rel.max(0) as u32, ack + r_rel as u32);
                    self.sacked.extend(l..r);
                    // A block (other than a possible D-SACK in first place) covering a whole record marks it.
                    if i > 0 {
                        for rec in self.lr.scoreboard().segments().iter() {
                            let (s, e) = (self.off(rec.start), self.off(rec.end()));
                            assert!(
                                !(l <= s && e <= r) || rec.is_sacked(),
                                "record {s}..{e} inside block {l}..{r} not SACKed"
                            );
                        }
                    }
                }
                let una = self.off(self.lr.scoreboard().snd_una());
                self.sacked = self.sacked.split_off(&una);
            }
            Op::Retransmit => {
                if let Some((seq, len)) = self.lr.next_retransmission(false) {
                    let tsval = Some(self.tsval());
                    let seg = SentSegment { seq, len, is_retransmit: true, tsval, ..SentSegment::default() };
                    self.lr.on_sent(self.now, &seg).unwrap();
                }
            }
            Op::FireTimer => {
                if let Some((at, kind)) = self.lr.next_timer() {
                    self.now = self.now.max(at);
                    let out = self.lr.on_timeout(self.now, kind);
                    if let Some(Some((seq, len))) = out.probe {
                        let tsval = Some(self.tsval());
                        let seg =
                            SentSegment { seq, len, is_retransmit: true, tsval, ..SentSegment::default() };
                        self.lr.on_sent(self.now, &seg).unwrap();
                    }
                }
            }
            Op::Wait(ms) => self.now += Duration::from_millis(*ms),
        }
    }

    fn check(&self) {
        let sb = self.lr.scoreboard();
        let (una, nxt) = (self.off(sb.snd_una()), self.off(sb.high_data()));
        let mut expect = una;
        let (mut pipe, mut sacked_bytes, mut flight) = (0u32, 0u32, 0u32);
        let (mut lost_bytes, mut lost_pending) = (0u32, 0usize);
        for rec in sb.segments().iter() {
            let (s, e) = (self.off(rec.start), self.off(rec.end()));
            assert_eq!(s, expect, "records tile the window");
            expect = e;
            let st = rec.state();
            assert!(!(st.sacked && st.lost), "record {s}..{e} both lost and SACKed");
            if st.sacked {
                assert!(
                    (s..e).all(|b| self.sacked.contains(&b)),
                    "record {s}..{e} SACKed without the receiver saying so"
                );
                sacked_bytes += rec.len;
            } else {
                pipe += if st.lost { 0 } else { rec.len } + if st.retrans_in_flight { rec.len } else { 0 };
                lost_bytes += if st.lost { rec.len } else { 0 };
                lost_pending += usize::from(st.lost && !st.retrans_in_flight);
            }
            flight += rec.len;
        }
        assert!(sb.segments().is_empty() || expect == nxt);
        assert_eq!(sb.pipe(), pipe, "pipe is SetPipe");
        assert_eq!(sb.sacked_bytes(), sacked_bytes);
        assert_eq!(sb.lost_bytes(), lost_bytes, "lost bytes match the records");
        assert_eq!(sb.lost_pending_segments(), lost_pending, "lost, not yet resent");
        assert_eq!(sb.flight_size(), flight);
        assert!(sb.sacked_bytes() <= sb.flight_size());
        assert_eq!(
            self.lr.next_timer().is_some(),
            !sb.segments().is_empty(),
            "a timer guards outstanding data"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn scoreboard_matches_the_model(
        base in prop_oneof![Just(0xFFFF_F000u32), any::<u32>()],
        dupthresh in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..200),
    ) {
        let loss_detection = if dupthresh { LossDetection::RackAndDupThresh } else { LossDetection::Rack };
        let config = RecoveryConfig { capacity: 64, smss: 200, loss_detection, ..RecoveryConfig::default() };
        let mut h = Harness { lr: LossRecovery::new(config, SeqNumber(base)), base: SeqNumber(base), sacked: BTreeSet::new(), now: Instant::from_millis(5) };
        for op in &ops {
            h.apply(op);
            h.check();
        }
    }
}
