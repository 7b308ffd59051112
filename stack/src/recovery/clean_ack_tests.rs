//! The ACK fast path ([`LossRecovery::on_clean_ack`]) against the general path: two senders
//! (loss recovery and delivery-rate estimator) take the same random sends (bursts at one
//! instant, idle gaps), retransmissions, loss marks, ACKs (cumulative on a record boundary or
//! inside a record, duplicate, with SACK and D-SACK blocks, with old timestamp echoes) and
//! timer expiries with probes; one tries the fast path first on every ACK without blocks, the
//! other always takes the general path. After every step their outcomes, rate samples, timers,
//! NextSeg answers and whole `Debug` states must be equal.

use proptest::prelude::*;

use super::{AckOutcome, LossDetection, LossRecovery, RecoveryConfig, RecoveryTimer, SentSegment};
use crate::congestion::delivery_rate::DeliveryRateEstimator;
use crate::time::{Duration, Instant};
use crate::wire::{SackBlock, SeqNumber};

const BASE: u32 = 0xFFFF_F000;

#[derive(Debug, Clone)]
enum Op {
    /// New data; the clock moves by `dt_us` first (mostly zero: a burst; sometimes idle).
    Send { len: u32, dt_us: u64 },
    /// Resend the first lost (or the first outstanding) segment.
    Retransmit,
    /// Mark the record at this per mille of the store lost (as RACK or an RTO would).
    MarkLost(u32),
    /// Cumulative ACK: at the end of the record at `advance` per mille of the store when
    /// `on_boundary`, else at `advance` per mille of the flight; optional SACK block above it
    /// (per mille of the flight), or a D-SACK below; timestamp echo `echo_back` ms old.
    Ack { dt_us: u64, advance: u32, on_boundary: bool, sack: Option<(u32, u32)>, dsack: bool, echo_back: u32 },
    /// A duplicate ACK (nothing new).
    DupAck,
    /// Jump to the pending timer's deadline and fire it.
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    let dt = prop_oneof![6 => Just(0u64), 3 => 1u64..400, 1 => 10_000u64..2_000_000];
    prop_oneof![
        10 => (1u32..2000, dt).prop_map(|(len, dt_us)| Op::Send { len, dt_us }),
        1 => Just(Op::Retransmit),
        1 => (0u32..1000).prop_map(Op::MarkLost),
        6 => (
            prop_oneof![Just(0u64), 1u64..600],
            0u32..=1000,
            prop_oneof![4 => Just(true), 1 => Just(false)],
            prop_oneof![4 => Just(None), 1 => proptest::option::of((0u32..1000, 1u32..500))],
            prop_oneof![9 => Just(false), 1 => Just(true)],
            prop_oneof![4 => Just(0u32), 1 => 1u32..5],
        )
            .prop_map(|(dt_us, advance, on_boundary, sack, dsack, echo_back)| Op::Ack {
                dt_us,
                advance,
                on_boundary,
                sack,
                dsack,
                echo_back
            }),
        1 => Just(Op::DupAck),
        1 => Just(Op::Expire),
    ]
}

/// One sender's loss recovery and delivery-rate estimator.
#[derive(Debug, Clone)]
struct Side {
    lr: LossRecovery,
    rate: DeliveryRateEstimator,
}

impl Side {
    fn ack(
        &mut self,
        now: Instant,
        ack: SeqNumber,
        blocks: &[SackBlock],
        tsecr: Option<u32>,
        fast: bool,
    ) -> (AckOutcome, bool) {
        let rate = &mut self.rate;
        if fast && blocks.is_empty() {
            if let Some(out) = self.lr.on_clean_ack(now, ack, tsecr, |s| rate.on_packet_delivered(now, s)) {
                return (out, true);
            }
        }
        (self.lr.on_ack(now, ack, blocks, tsecr, |s| rate.on_packet_delivered(now, s)), false)
    }
}

struct Pair {
    fast: Side,
    general: Side,
    now: Instant,
    snd_nxt: SeqNumber,
    fast_taken: u32,
}

impl Pair {
    fn new(loss_detection: LossDetection) -> Self {
        let config = RecoveryConfig { capacity: 96, smss: 1000, loss_detection, ..RecoveryConfig::default() };
        let side =
            Side { lr: LossRecovery::new(config, SeqNumber(BASE)), rate: DeliveryRateEstimator::new() };
        let now = Instant::from_millis(1000);
        Pair { fast: side.clone(), general: side, now, snd_nxt: SeqNumber(BASE), fast_taken: 0 }
    }

    fn tsval(&self) -> u32 {
        self.now.as_millis() as u32
    }

    fn both<R: PartialEq + core::fmt::Debug>(&mut self, mut f: impl FnMut(&mut Side) -> R) -> R {
        let a = f(&mut self.fast);
        let b = f(&mut self.general);
        assert_eq!(a, b);
        a
    }

    fn send(&mut self, seq: SeqNumber, len: u32, is_retransmit: bool) {
        let (now, tsval) = (self.now, Some(self.tsval()));
        // `both` checks the two agree (a full store refuses both).
        let _ = self.both(|s| {
            let snapshot = s.rate.on_packet_sent(now, s.lr.pipe(), len);
            s.lr.on_sent(now, &SentSegment { seq, len, is_retransmit, tsval, snapshot })
        });
    }

    fn ack_at(&self, advance: u32, on_boundary: bool) -> SeqNumber {
        let board = self.fast.lr.scoreboard();
        let una = board.snd_una();
        let n = board.segments().len();
        if on_boundary && n > 0 {
            let pos = (n * advance.min(1000) as usize / 1000).min(n - 1);
            return board.segments().get(pos).map_or(una, |r| r.end());
        }
        let flight = i64::from(self.snd_nxt - una);
        una + (flight * i64::from(advance.min(1000)) / 1000) as u32
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Send { len, dt_us } => {
                self.now += Duration::from_micros(dt_us);
                if self.fast.lr.is_full() {
                    return;
                }
                self.send(self.snd_nxt, len, false);
                self.snd_nxt += len;
            }
            Op::Retransmit => {
                let board = self.fast.lr.scoreboard();
                let next = board.first_lost_pending().or(board.segments().front().map(|r| (r.start, r.len)));
                if let Some((seq, len)) = next {
                    self.send(seq, len, true);
                }
            }
            Op::MarkLost(pm) => {
                let n = self.fast.lr.scoreboard().segments().len();
                if n > 0 {
                    let pos = n * pm as usize / 1000;
                    let lost = self.both(|s| s.lr.board.mark_lost(pos));
                    self.both(|s| s.rate.on_packet_lost(lost));
                }
            }
            Op::Ack { dt_us, advance, on_boundary, sack, dsack, echo_back } => {
                self.now += Duration::from_micros(dt_us);
                let ack = self.ack_at(advance, on_boundary);
                let una = self.fast.lr.scoreboard().snd_una();
                let mut blocks = Vec::new();
                if dsack && una - SeqNumber(BASE) > 0 {
                    blocks.push(SackBlock { left: una - 1, right: una });
                }
                if let Some((s, l)) = sack {
                    let (left, right) = (self.ack_at(s, false), self.ack_at(s + l, false));
                    blocks.push(SackBlock { left, right });
                }
                let tsecr = Some(self.tsval().wrapping_sub(echo_back));
                self.ack(ack, &blocks, tsecr);
            }
            Op::DupAck => {
                let una = self.fast.lr.scoreboard().snd_una();
                self.ack(una, &[], Some(self.tsval()));
            }
            Op::Expire => {
                let Some((at, kind)) = self.fast.lr.next_timer() else { return };
                self.now = self.now.max(at);
                let now = self.now;
                let out = self.both(|s| {
                    let out = s.lr.on_timeout(now, kind);
                    s.rate.on_packet_lost(out.newly_lost);
                    out
                });
                if kind == RecoveryTimer::Tlp && out.probe.is_some() {
                    self.apply(&Op::Send { len: 1000, dt_us: 0 });
                }
            }
        }
        self.check();
    }

    fn ack(&mut self, ack: SeqNumber, blocks: &[SackBlock], tsecr: Option<u32>) {
        let now = self.now;
        let (fast, taken) = self.fast.ack(now, ack, blocks, tsecr, true);
        let (general, _) = self.general.ack(now, ack, blocks, tsecr, false);
        assert_eq!(fast, general, "outcome of the ACK at {ack:?} (fast path taken: {taken})");
        let min_rtt = self.fast.lr.rtt().min_rtt();
        let samples = (
            self.fast.rate.generate_rate_sample(now, min_rtt),
            self.general.rate.generate_rate_sample(now, min_rtt),
        );
        assert_eq!(samples.0, samples.1, "rate sample");
        if taken {
            self.fast_taken += 1;
            if fast.newly_lost == 0 {
                // What lets the sender skip NextSeg after the fast path.
                assert_eq!(self.fast.lr.clone().next_retransmission(false), None);
                assert_eq!(self.fast.lr.clone().next_retransmission(true), None);
            }
        }
    }

    fn check(&mut self) {
        assert_eq!(self.fast.lr.next_timer(), self.general.lr.next_timer(), "timers");
        for new_data in [false, true] {
            let a = self.fast.lr.clone().next_retransmission(new_data);
            assert_eq!(a, self.general.lr.clone().next_retransmission(new_data), "NextSeg");
        }
        assert_eq!(format!("{:?}", self.fast), format!("{:?}", self.general));
    }
}

fn detection() -> impl Strategy<Value = LossDetection> {
    prop_oneof![
        6 => Just(LossDetection::Rack),
        1 => Just(LossDetection::RackAndDupThresh),
        1 => Just(LossDetection::DupThresh),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn fast_path_ends_where_the_general_path_does(
        detection in detection(),
        ops in proptest::collection::vec(op(), 1..200),
    ) {
        let mut pair = Pair::new(detection);
        for op in &ops {
            pair.apply(op);
        }
    }
}

#[test]
fn a_clean_bulk_flight_takes_the_fast_path() {
    let mut pair = Pair::new(LossDetection::Rack);
    // The first record after an empty store is not known to be in line: a general ACK.
    pair.apply(&Op::Send { len: 1000, dt_us: 0 });
    pair.apply(&Op::Ack {
        dt_us: 80,
        advance: 1000,
        on_boundary: true,
        sack: None,
        dsack: false,
        echo_back: 0,
    });
    for round in 0..50u32 {
        for _ in 0..4 {
            pair.apply(&Op::Send { len: 1000, dt_us: 0 });
        }
        let ack =
            Op::Ack { dt_us: 80, advance: 1000, on_boundary: true, sack: None, dsack: false, echo_back: 0 };
        let before = pair.fast_taken;
        pair.apply(&Op::Send { len: 1000, dt_us: 1 });
        pair.apply(&ack);
        assert_eq!(pair.fast_taken, before + 1, "round {round}");
    }
    // A SACK block, a duplicate and a one-record ACK go the general way.
    pair.apply(&Op::Send { len: 1000, dt_us: 0 });
    pair.apply(&Op::Send { len: 1000, dt_us: 0 });
    let before = pair.fast_taken;
    pair.apply(&Op::Ack { dt_us: 10, advance: 0, on_boundary: true, sack: None, dsack: false, echo_back: 0 });
    pair.apply(&Op::DupAck);
    assert_eq!(pair.fast_taken, before);
}
