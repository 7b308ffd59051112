//! The re-arm that a transmit burst skips ([`LossRecovery::on_sent`] after another new segment
//! at the same `now`) against always re-arming: before every send, a copy of the recovery state
//! with the remembered re-arm forgotten takes the same send, and the two must agree on every
//! timer and on their whole state. Random sends (bursts at one instant, a first segment alone,
//! retransmissions), ACKs (at the burst's instant too: a new RTT sample changes the PTO), SACKs,
//! expiries of whichever timer is due, probes and RTO backoff.

use proptest::prelude::*;

use super::{LossRecovery, RecoveryConfig, RecoveryTimer, SentSegment};
use crate::congestion::delivery_rate::DeliveryRateEstimator;
use crate::time::{Duration, Instant};
use crate::wire::{SackBlock, SeqNumber};

const BASE: u32 = 0xFFFF_F000;

#[derive(Debug, Clone)]
enum Op {
    /// New data; the clock moves by `dt_us` first (mostly zero: a burst).
    Send { len: u32, dt_us: u64 },
    /// Resend the first lost (or the first outstanding) segment.
    Retransmit,
    /// Cumulative ACK at this per mille of the flight plus one SACK block above it.
    Ack { dt_us: u64, advance: u32, sack: Option<(u32, u32)> },
    /// Jump to the pending timer's deadline and fire it.
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1u32..2000, prop_oneof![3 => Just(0u64), 1 => 1u64..400]).prop_map(|(len, dt_us)| Op::Send { len, dt_us }),
        1 => Just(Op::Retransmit),
        3 => (prop_oneof![Just(0u64), 1u64..300], 0u32..=1000, proptest::option::of((0u32..1000, 1u32..500)))
            .prop_map(|(dt_us, advance, sack)| Op::Ack { dt_us, advance, sack }),
        1 => Just(Op::Expire),
    ]
}

struct Sender {
    lr: LossRecovery,
    rate: DeliveryRateEstimator,
    now: Instant,
    snd_nxt: SeqNumber,
}

impl Sender {
    /// `seg` through the skipping path and through a copy that always re-arms; both must agree.
    fn send(&mut self, seg: SentSegment) {
        let mut always = self.lr.clone();
        always.rearmed_for_flight_at = None;
        let skipping = self.lr.on_sent(self.now, &seg);
        let rearmed = always.on_sent(self.now, &seg);
        assert_eq!(skipping, rearmed);
        assert_eq!(self.lr.next_timer(), always.next_timer(), "timer after {seg:?}");
        // Everything but the remembered re-arm itself.
        always.rearmed_for_flight_at = self.lr.rearmed_for_flight_at;
        assert_eq!(format!("{:?}", self.lr), format!("{always:?}"));
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Send { len, dt_us } => {
                self.now += Duration::from_micros(dt_us);
                if self.lr.is_full() {
                    return;
                }
                let snapshot = self.rate.on_packet_sent(self.now, self.lr.pipe(), len);
                let tsval = Some(self.now.as_millis() as u32);
                self.send(SentSegment { seq: self.snd_nxt, len, is_retransmit: false, tsval, snapshot });
                self.snd_nxt += len;
            }
            Op::Retransmit => {
                let board = self.lr.scoreboard();
                let Some((seq, len)) =
                    board.first_lost_pending().or(board.segments().front().map(|r| (r.start, r.len)))
                else {
                    return;
                };
                let snapshot = self.rate.on_packet_sent(self.now, self.lr.pipe(), len);
                self.send(SentSegment { seq, len, is_retransmit: true, tsval: None, snapshot });
            }
            Op::Ack { dt_us, advance, sack } => {
                self.now += Duration::from_micros(dt_us);
                let una = self.lr.scoreboard().snd_una();
                let flight = i64::from(self.snd_nxt - una);
                let at = |pm: u32| una + (flight * i64::from(pm.min(1000)) / 1000) as u32;
                let blocks: Vec<SackBlock> =
                    sack.map(|(s, l)| SackBlock { left: at(s), right: at(s + l) }).into_iter().collect();
                let rate = &mut self.rate;
                let now = self.now;
                self.lr.on_ack(now, at(advance), &blocks, None, |s| rate.on_packet_delivered(now, s));
            }
            Op::Expire => {
                let Some((at, kind)) = self.lr.next_timer() else { return };
                self.now = self.now.max(at);
                let out = self.lr.on_timeout(self.now, kind);
                if kind == RecoveryTimer::Tlp && out.probe.is_some() {
                    // The probe: new data, as the engine sends when it has some.
                    self.apply(&Op::Send { len: 1000, dt_us: 0 });
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn skipped_rearm_sets_what_a_rearm_would(ops in proptest::collection::vec(op(), 1..150)) {
        let config = RecoveryConfig { capacity: 96, smss: 1000, ..RecoveryConfig::default() };
        let mut s = Sender {
            lr: LossRecovery::new(config, SeqNumber(BASE)),
            rate: DeliveryRateEstimator::new(),
            now: Instant::from_millis(1000),
            snd_nxt: SeqNumber(BASE),
        };
        for op in &ops {
            s.apply(op);
        }
    }
}

#[test]
fn a_burst_rearms_once_the_flight_has_two_segments() {
    let config = RecoveryConfig { smss: 1000, ..RecoveryConfig::default() };
    let mut s = Sender {
        lr: LossRecovery::new(config, SeqNumber(BASE)),
        rate: DeliveryRateEstimator::new(),
        now: Instant::from_millis(1000),
        snd_nxt: SeqNumber(BASE),
    };
    s.apply(&Op::Send { len: 1000, dt_us: 0 });
    assert_eq!(s.lr.rearmed_for_flight_at, None, "one segment: the PTO adds the delayed-ACK time");
    s.apply(&Op::Send { len: 1000, dt_us: 0 });
    assert_eq!(s.lr.rearmed_for_flight_at, Some(s.now));
    s.apply(&Op::Send { len: 1000, dt_us: 0 });
    assert_eq!(s.lr.rearmed_for_flight_at, Some(s.now), "the third segment skipped the re-arm");
    s.apply(&Op::Ack { dt_us: 0, advance: 300, sack: None });
    assert_eq!(s.lr.rearmed_for_flight_at, None, "an ACK forgets it");
}
