//! Property test: random event sequences (sends, ACKs with and without losses, congestion events,
//! recovery exits, RTOs, spurious-loss undo, idle restarts, time jumps from 0 to `u64::MAX` ns,
//! absurd RTT samples and raw out-of-range event fields) never panic any controller, keep cwnd in
//! `[floor, MAX_CWND]` and keep the pacing rate positive when there is one.
//!
//! Deterministic: a fixed proptest seed (printed on failure) drives 2,500 sequences, each run
//! against all three controllers.

use std::collections::VecDeque;

use linerate_stack::congestion::{
    AckEvent, Algorithm, CongestionConfig, CongestionController, DeliveryRateEstimator, LossEvent,
    PacketSnapshot, PrrMode, RateSample, SentPacket, MAX_CWND,
};
use linerate_stack::time::{Duration, Instant};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

const SEED: [u8; 32] = *b"linerate congestion fuzz seed 01";
const CASES: u32 = 2_500;

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    Send { bytes: u32, app_limited: bool },
    Ack { packets: u8, lose: u8, rtt: Option<u64>, ece: bool, with_sample: bool },
    Congestion { persistent: bool, ecn: bool },
    RecoveryExit,
    Rto,
    Spurious,
    IdleRestart { idle: u64, rto: u64 },
    RawAck { fields: [u32; 4], times: [u64; 3], counters: [u64; 5], ece: bool },
    RawLoss { fields: [u32; 3], persistent: bool },
}

fn nanos() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        1..1_000_000u64,
        1_000_000..100_000_000_000u64,
        (u64::MAX / 2)..=u64::MAX,
        any::<u64>(),
    ]
}

fn bytes() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), 1..100_000u32, Just(u32::MAX), any::<u32>()]
}

fn counter() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), 1..10_000_000u64, Just(u64::MAX), any::<u64>()]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => nanos().prop_map(Op::Advance),
        8 => (prop_oneof![Just(1460u32), 1..70_000u32, bytes()], any::<bool>())
            .prop_map(|(bytes, app_limited)| Op::Send { bytes, app_limited }),
        8 => (0..40u8, 0..4u8, proptest::option::of(nanos()), any::<bool>(), any::<bool>())
            .prop_map(|(packets, lose, rtt, ece, with_sample)| Op::Ack { packets, lose, rtt, ece, with_sample }),
        2 => (any::<bool>(), any::<bool>()).prop_map(|(persistent, ecn)| Op::Congestion { persistent, ecn }),
        2 => Just(Op::RecoveryExit),
        1 => Just(Op::Rto),
        1 => Just(Op::Spurious),
        1 => (nanos(), nanos()).prop_map(|(idle, rto)| Op::IdleRestart { idle, rto }),
        2 => ([bytes(), bytes(), bytes(), bytes()], [nanos(), nanos(), nanos()],
              [counter(), counter(), counter(), counter(), counter()], any::<bool>())
            .prop_map(|(fields, times, counters, ece)| Op::RawAck { fields, times, counters, ece }),
        1 => ([bytes(), bytes(), bytes()], any::<bool>())
            .prop_map(|(fields, persistent)| Op::RawLoss { fields, persistent }),
    ]
}

#[derive(Debug, Clone)]
struct Setup {
    mss: u32,
    iw: u32,
    pacing: bool,
    slow_start_after_idle: bool,
    hystart: bool,
    crb: bool,
    seed: u64,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        prop_oneof![Just(1460u32), Just(0u32), 1..100_000u32],
        prop_oneof![Just(10u32), 0..1_000u32, any::<u32>()],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(mss, iw, pacing, slow_start_after_idle, hystart, crb, seed)| Setup {
            mss,
            iw,
            pacing,
            slow_start_after_idle,
            hystart,
            crb,
            seed,
        })
}

/// A loose engine stand-in: keeps snapshots of what is outstanding so ACKs carry realistic
/// rate samples, next to the raw ops that feed arbitrary values.
struct Harness {
    cc: CongestionController,
    floor: u32,
    now: Instant,
    est: DeliveryRateEstimator,
    outstanding: VecDeque<PacketSnapshot>,
    in_flight: u32,
}

impl Harness {
    fn new(algorithm: Algorithm, s: &Setup) -> Self {
        let config = CongestionConfig {
            algorithm,
            mss: s.mss,
            initial_window_segments: s.iw,
            pacing: s.pacing,
            slow_start_after_idle: s.slow_start_after_idle,
            hystart: s.hystart,
            prr_mode: if s.crb {
                PrrMode::ConservativeReductionBound
            } else {
                PrrMode::SlowStartReductionBound
            },
            seed: s.seed,
            ..CongestionConfig::default()
        };
        let mss = config.effective_mss();
        let floor = if algorithm == Algorithm::Bbr { 4 * mss } else { 2 * mss };
        let now = Instant::from_millis(1);
        Harness {
            cc: CongestionController::new(&config, now),
            floor,
            now,
            est: DeliveryRateEstimator::new(),
            outstanding: VecDeque::new(),
            in_flight: 0,
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Advance(d) => self.now += Duration::from_nanos(d),
            Op::Send { bytes, app_limited } => {
                if app_limited {
                    self.est.on_app_limited(self.in_flight);
                }
                let snap = self.est.on_packet_sent(self.now, self.in_flight, bytes);
                let packet = SentPacket {
                    bytes,
                    in_flight_before: self.in_flight,
                    is_app_limited: app_limited,
                    is_retransmit: false,
                };
                self.cc.on_packet_sent(self.now, &packet);
                self.in_flight = self.in_flight.saturating_add(bytes);
                if self.outstanding.len() < 4096 {
                    self.outstanding.push_back(snap);
                }
            }
            Op::Ack { packets, lose, rtt, ece, with_sample } => {
                self.ack(packets, lose, rtt, ece, with_sample)
            }
            Op::Congestion { persistent, ecn } => {
                let loss = LossEvent {
                    lost_bytes: if ecn { 0 } else { 1460 },
                    flight_size: self.in_flight,
                    in_flight: self.in_flight.saturating_sub(1460),
                    is_persistent: persistent,
                };
                self.cc.on_congestion_event(self.now, &loss);
            }
            Op::RecoveryExit => self.cc.on_recovery_exit(self.now),
            Op::Rto => {
                self.cc.on_retransmit_timeout(self.now);
                for p in self.outstanding.drain(..) {
                    self.est.on_packet_lost(p.bytes);
                }
                self.in_flight = 0;
            }
            Op::Spurious => self.cc.on_spurious_congestion_event(),
            Op::IdleRestart { idle, rto } => {
                self.cc.on_idle_restart(self.now, Duration::from_nanos(idle), Duration::from_nanos(rto))
            }
            Op::RawAck { fields, times, counters, ece } => {
                let rs = RateSample {
                    delivery_rate: counters[0],
                    delivered: counters[1],
                    interval: Duration::from_nanos(times[2]),
                    is_app_limited: ece,
                    rtt: Duration::from_nanos(times[0]),
                    prior_delivered: counters[2],
                    tx_in_flight: counters[3],
                    lost: counters[4],
                    newly_acked: u64::from(fields[0]),
                    newly_lost: u64::from(fields[1]),
                };
                let ack = AckEvent {
                    newly_acked_bytes: fields[0],
                    newly_lost_bytes: fields[1],
                    prior_in_flight: fields[2],
                    in_flight: fields[3],
                    rtt_sample: Some(Duration::from_nanos(times[0])),
                    min_rtt: Some(Duration::from_nanos(times[1])),
                    srtt: Some(Duration::from_nanos(times[2])),
                    rate_sample: Some(rs),
                    ece,
                };
                self.cc.on_ack(self.now, &ack);
            }
            Op::RawLoss { fields, persistent } => {
                let loss = LossEvent {
                    lost_bytes: fields[0],
                    flight_size: fields[1],
                    in_flight: fields[2],
                    is_persistent: persistent,
                };
                self.cc.on_congestion_event(self.now, &loss);
            }
        }
    }

    fn ack(&mut self, packets: u8, lose: u8, rtt: Option<u64>, ece: bool, with_sample: bool) {
        let prior_in_flight = self.in_flight;
        let mut lost = 0u32;
        for p in self.outstanding.drain(..usize::from(lose).min(self.outstanding.len())) {
            self.est.on_packet_lost(p.bytes);
            lost = lost.saturating_add(p.bytes);
        }
        let mut acked = 0u32;
        for p in self.outstanding.drain(..usize::from(packets).min(self.outstanding.len())) {
            self.est.on_packet_delivered(self.now, &p);
            acked = acked.saturating_add(p.bytes);
        }
        self.in_flight = self.in_flight.saturating_sub(lost).saturating_sub(acked);
        let rtt = rtt.map(Duration::from_nanos);
        let rate_sample = self.est.generate_rate_sample(self.now, rtt).filter(|_| with_sample);
        let ack = AckEvent {
            newly_acked_bytes: acked,
            newly_lost_bytes: lost,
            prior_in_flight,
            in_flight: self.in_flight,
            rtt_sample: rtt,
            min_rtt: rtt,
            srtt: rtt,
            rate_sample,
            ece,
        };
        self.cc.on_ack(self.now, &ack);
    }

    fn check(&self, step: usize) -> Result<(), TestCaseError> {
        let cwnd = self.cc.cwnd();
        prop_assert!(
            cwnd >= self.floor && cwnd <= MAX_CWND,
            "step {}: cwnd {} floor {}",
            step,
            cwnd,
            self.floor
        );
        if let Some(rate) = self.cc.pacing_rate() {
            prop_assert!(rate > 0, "step {}: zero pacing rate", step);
        }
        prop_assert!(self.cc.send_quantum() > 0);
        let info = self.cc.info();
        prop_assert_eq!(info.cwnd, cwnd);
        prop_assert!(info.pacing_gain.is_none_or(f64::is_finite));
        Ok(())
    }
}

#[test]
fn random_event_sequences_keep_every_controller_in_bounds() {
    let config = Config { cases: CASES, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &SEED));
    let strategy = (setup(), proptest::collection::vec(op(), 1..160));
    let result = runner.run(&strategy, |(setup, ops)| {
        for algorithm in [Algorithm::NewReno, Algorithm::Cubic, Algorithm::Bbr] {
            let mut h = Harness::new(algorithm, &setup);
            h.check(0)?;
            for (step, op) in ops.iter().enumerate() {
                h.apply(op);
                h.check(step + 1).map_err(|e| TestCaseError::fail(format!("{algorithm}: {e}")))?;
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("proptest seed {:?}: {e}", std::str::from_utf8(&SEED).unwrap_or("?"));
    }
}

#[derive(Debug, Clone)]
enum ToolOp {
    Advance(u64),
    SetRate(Option<u64>),
    Send(u32),
    Deliver(u8),
    Lose(u8),
    AppLimited,
    Sample(Option<u64>),
}

fn tool_op() -> impl Strategy<Value = ToolOp> {
    prop_oneof![
        nanos().prop_map(ToolOp::Advance),
        proptest::option::of(counter()).prop_map(ToolOp::SetRate),
        bytes().prop_map(ToolOp::Send),
        (0..8u8).prop_map(ToolOp::Deliver),
        (0..4u8).prop_map(ToolOp::Lose),
        Just(ToolOp::AppLimited),
        proptest::option::of(nanos()).prop_map(ToolOp::Sample),
    ]
}

/// The pacer and the delivery-rate estimator under random use: no panic, the pacer never
/// releases before its departure time, samples never claim more than was delivered.
#[test]
fn pacer_and_rate_estimator_survive_random_use() {
    let config = Config { cases: 2_000, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &SEED));
    let result = runner.run(&proptest::collection::vec(tool_op(), 1..200), |ops| {
        let mut now = Instant::ZERO;
        let mut pacer = linerate_stack::congestion::Pacer::new(1460, 65536);
        let mut est = DeliveryRateEstimator::new();
        let mut outstanding: VecDeque<PacketSnapshot> = VecDeque::new();
        let mut in_flight = 0u32;
        for op in ops {
            match op {
                ToolOp::Advance(d) => now += Duration::from_nanos(d),
                ToolOp::SetRate(rate) => pacer.set_rate(rate),
                ToolOp::Send(bytes) => {
                    if pacer.can_send(now) {
                        pacer.on_sent(now, bytes);
                    } else {
                        prop_assert!(pacer.next_release().is_some_and(|t| t > now));
                    }
                    if outstanding.len() < 1024 {
                        outstanding.push_back(est.on_packet_sent(now, in_flight, bytes));
                        in_flight = in_flight.saturating_add(bytes);
                    }
                }
                ToolOp::Deliver(n) => {
                    for p in outstanding.drain(..usize::from(n).min(outstanding.len())) {
                        est.on_packet_delivered(now, &p);
                        in_flight = in_flight.saturating_sub(p.bytes);
                    }
                }
                ToolOp::Lose(n) => {
                    for p in outstanding.drain(..usize::from(n).min(outstanding.len())) {
                        est.on_packet_lost(p.bytes);
                        in_flight = in_flight.saturating_sub(p.bytes);
                    }
                }
                ToolOp::AppLimited => est.on_app_limited(in_flight),
                ToolOp::Sample(min_rtt) => {
                    if let Some(rs) = est.generate_rate_sample(now, min_rtt.map(Duration::from_nanos)) {
                        prop_assert_eq!(rs.total_delivered(), est.delivered());
                        prop_assert!(rs.newly_acked <= est.delivered());
                        prop_assert!(rs.lost <= est.lost());
                    }
                }
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("proptest seed {:?}: {e}", std::str::from_utf8(&SEED).unwrap_or("?"));
    }
}
