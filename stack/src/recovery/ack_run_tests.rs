//! The cumulative-ACK fast path ([`Delivery::AckedRun`]) against the general path that releases
//! every record on its own: two scoreboards, RACK states and delivery-rate estimators driven by
//! the same random sends, retransmissions, loss marks, SACKs and cumulative ACKs (clock steps
//! of zero and backwards included) must stay identical, field for field, after every step.

use proptest::prelude::*;

use super::scoreboard::{Delivery, Scoreboard, ScoreboardUpdate};
use super::segments::SegmentRecord;
use super::{Deliveries, Rack};
use crate::congestion::delivery_rate::DeliveryRateEstimator;
use crate::time::{Duration, Instant};
use crate::wire::{SackBlock, SeqNumber};

const BASE: u32 = 0xFFFF_F000;
const MIN_RTT: Duration = Duration::from_micros(300);

#[derive(Debug, Clone)]
enum Op {
    Send {
        len: u32,
        dt_us: u64,
    },
    /// The clock steps back (the run must stop where send times decrease).
    Back(u64),
    /// Cumulative ACK at this per mille of the flight, SACK blocks as (start, len) in per mille.
    Ack {
        advance: u32,
        blocks: Vec<(u32, u32)>,
        echo_back: u32,
    },
    Retransmit(u32),
    MarkLost(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u32..3000, prop_oneof![Just(0u64), 0u64..2000]).prop_map(|(len, dt_us)| Op::Send { len, dt_us }),
        1 => (0u64..500).prop_map(Op::Back),
        4 => (0u32..=1000, proptest::collection::vec((0u32..1000, 0u32..500), 0..=3), 0u32..3)
            .prop_map(|(advance, blocks, echo_back)| Op::Ack { advance, blocks, echo_back }),
        1 => (0u32..1000).prop_map(Op::Retransmit),
        1 => (0u32..1000).prop_map(Op::MarkLost),
    ]
}

/// One sender's loss-recovery state.
#[derive(Debug, Clone)]
struct Side {
    board: Scoreboard,
    rack: Rack,
    rate: DeliveryRateEstimator,
}

impl Side {
    fn new() -> Self {
        Side {
            board: Scoreboard::new(64, 1000, SeqNumber(BASE)),
            rack: Rack::new(),
            rate: DeliveryRateEstimator::new(),
        }
    }

    fn tsval(now: Instant) -> Option<u32> {
        Some(now.as_millis() as u32)
    }

    fn send(&mut self, now: Instant, len: u32) -> bool {
        let snapshot = self.rate.on_packet_sent(now, self.board.pipe(), len);
        let seq = self.board.high_data();
        self.board.on_new_segment(now, seq, len, Self::tsval(now), snapshot).is_ok()
    }

    fn retransmit(&mut self, now: Instant, pos: usize) -> u32 {
        let Some(rec) = self.board.segments().get(pos).copied() else { return 0 };
        let snapshot = self.rate.on_packet_sent(now, self.board.pipe(), rec.len);
        self.board.on_retransmit(now, rec.start, rec.len, Self::tsval(now), snapshot)
    }

    /// One ACK; `runs` picks the production path, otherwise every record goes on its own.
    fn ack(
        &mut self,
        now: Instant,
        ack: SeqNumber,
        blocks: &[SackBlock],
        tsecr: Option<u32>,
        runs: bool,
    ) -> (ScoreboardUpdate, Deliveries, u32) {
        let mut seen = Deliveries::new(now, tsecr, Some(MIN_RTT), None);
        let mut run_reports = 0;
        let Side { board, rack, rate } = self;
        let mut report = |rec: &SegmentRecord, how: Delivery| {
            run_reports += u32::from(matches!(how, Delivery::AckedRun { .. }));
            seen.on_delivered(rack, rec, how, &mut |s| rate.on_packet_delivered(now, s));
        };
        let update = if runs {
            board.on_ack(ack, blocks, report)
        } else {
            board.apply_ack(ack, blocks, &mut report, |b, ack, update, f| {
                while b.release_front(ack, update, f) {}
                b.finish_advance(ack, update);
            })
        };
        (update, seen, run_reports)
    }
}

struct Pair {
    fast: Side,
    general: Side,
    now: Instant,
    runs_seen: u32,
}

impl Pair {
    fn apply(&mut self, op: &Op) {
        let now = self.now;
        match op {
            Op::Send { len, dt_us } => {
                self.now = now.saturating_add(Duration::from_micros(*dt_us));
                assert_eq!(self.fast.send(self.now, *len), self.general.send(self.now, *len));
            }
            Op::Back(us) => self.now = Instant::from_micros(now.as_micros().saturating_sub(*us)),
            Op::Retransmit(pm) | Op::MarkLost(pm) => {
                let pos = self.fast.board.segments().len() * *pm as usize / 1000;
                if matches!(op, Op::Retransmit(_)) {
                    assert_eq!(self.fast.retransmit(now, pos), self.general.retransmit(now, pos));
                } else if pos < self.fast.board.segments().len() {
                    assert_eq!(self.fast.board.mark_lost(pos), self.general.board.mark_lost(pos));
                }
            }
            Op::Ack { advance, blocks, echo_back } => {
                self.now = now.saturating_add(Duration::from_micros(700));
                let una = self.fast.board.snd_una();
                let flight = self.fast.board.high_data() - una;
                let at = |pm: u32| una + (i64::from(flight) * i64::from(pm) / 1000) as u32;
                let ack = at(*advance);
                let blocks: Vec<SackBlock> =
                    blocks.iter().map(|&(s, l)| SackBlock { left: at(s), right: at(s + l) }).collect();
                let tsecr = Side::tsval(self.now).map(|t| t.wrapping_sub(*echo_back));
                let (fast_update, fast_seen, runs) = self.fast.ack(self.now, ack, &blocks, tsecr, true);
                let (general_update, general_seen, _) =
                    self.general.ack(self.now, ack, &blocks, tsecr, false);
                self.runs_seen += runs;
                assert_eq!(fast_update, general_update);
                assert_eq!(fast_seen, general_seen, "Karn sample");
                let fast_rs = self.fast.rate.generate_rate_sample(self.now, Some(MIN_RTT));
                let general_rs = self.general.rate.generate_rate_sample(self.now, Some(MIN_RTT));
                assert_eq!(fast_rs, general_rs, "rate sample");
                // RACK walks the transmission-order list the run was cut from.
                let reo_wnd = Duration::from_micros(200);
                let fast_lost = self.fast.rack.detect_loss(self.now, &mut self.fast.board, reo_wnd);
                let general_lost = self.general.rack.detect_loss(self.now, &mut self.general.board, reo_wnd);
                assert_eq!(fast_lost, general_lost, "RACK loss marks");
            }
        }
        assert_eq!(format!("{:?}", self.fast), format!("{:?}", self.general), "after {op:?}");
    }
}

fn pair() -> Pair {
    Pair { fast: Side::new(), general: Side::new(), now: Instant::from_millis(1000), runs_seen: 0 }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn runs_end_where_the_general_path_ends(ops in proptest::collection::vec(op(), 1..120)) {
        let mut p = pair();
        for op in &ops {
            p.apply(op);
        }
    }
}

#[test]
fn a_clean_flight_is_released_as_one_run() {
    let mut p = pair();
    for i in 0..20 {
        p.apply(&Op::Send { len: 1000, dt_us: i % 2 });
    }
    p.apply(&Op::MarkLost(500));
    p.apply(&Op::Ack { advance: 400, blocks: vec![], echo_back: 0 });
    assert_eq!(p.runs_seen, 1, "records 0..8 in one report");
    assert_eq!(p.fast.board.segments().len(), 12);
    p.apply(&Op::Ack { advance: 1000, blocks: vec![], echo_back: 0 });
    assert_eq!(p.runs_seen, 3, "the lost record 10 splits the rest: 8..10, then 11..20");
    assert!(p.fast.board.segments().is_empty());
}

#[test]
fn a_clock_step_back_splits_the_run() {
    let mut p = pair();
    for _ in 0..3 {
        p.apply(&Op::Send { len: 1000, dt_us: 100 });
    }
    p.apply(&Op::Back(250));
    for _ in 0..3 {
        p.apply(&Op::Send { len: 1000, dt_us: 100 });
    }
    p.apply(&Op::Ack { advance: 1000, blocks: vec![], echo_back: 0 });
    assert_eq!(p.runs_seen, 2, "0..3 and 3..6: the send time decreases at 3");
}
