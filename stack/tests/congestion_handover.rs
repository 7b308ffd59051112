//! Property test: a controller taking over a live connection (`CongestionController::handover`,
//! the `TCP_CONGESTION` switch) from any state a predecessor could hand it — including absurd
//! windows, thresholds, flight sizes and RTTs — never panics, keeps cwnd in `[floor, MAX_CWND]`,
//! paces at a positive rate when it paces, and stays within bounds through the ACKs, recovery
//! exit and further switches that follow.
//!
//! Deterministic: a fixed proptest seed drives 1,500 cases, each against all three controllers.

use linerate_stack::congestion::{
    AckEvent, Algorithm, CongestionConfig, CongestionController, Handover, LossEvent, MAX_CWND,
};
use linerate_stack::time::{Duration, Instant};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

const SEED: [u8; 32] = *b"linerate cc handover fuzz seed01";
const ALGORITHMS: [Algorithm; 3] = [Algorithm::NewReno, Algorithm::Cubic, Algorithm::Bbr];

fn window() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), 1..5_000u32, 5_000..10_000_000u32, Just(MAX_CWND), any::<u32>()]
}

fn rtt() -> impl Strategy<Value = Option<Duration>> {
    proptest::option::of(
        prop_oneof![Just(0u64), 1..1_000_000_000u64, any::<u64>()].prop_map(Duration::from_nanos),
    )
}

fn handover() -> impl Strategy<Value = Handover> {
    (window(), window(), any::<bool>(), window(), window(), window(), rtt(), rtt()).prop_map(
        |(cwnd, ssthresh, in_recovery, flight_size, in_flight, lost_bytes, srtt, min_rtt)| Handover {
            cwnd,
            ssthresh,
            in_recovery,
            flight_size,
            in_flight,
            lost_bytes,
            srtt,
            min_rtt,
        },
    )
}

fn check(cc: &CongestionController, mss: u32, pacing: bool) -> Result<(), TestCaseError> {
    let floor = if cc.algorithm() == Algorithm::Bbr { 4 * mss } else { 2 * mss };
    prop_assert!((floor..=MAX_CWND).contains(&cc.cwnd()), "{:?}: cwnd {}", cc.algorithm(), cc.cwnd());
    prop_assert!(cc.ssthresh() <= MAX_CWND);
    if cc.algorithm() == Algorithm::Bbr || pacing && cc.pacing_rate().is_some() {
        prop_assert!(cc.pacing_rate().is_some_and(|r| r > 0), "{:?}", cc.info());
    }
    if !pacing && cc.algorithm() != Algorithm::Bbr {
        prop_assert_eq!(cc.pacing_rate(), None);
    }
    Ok(())
}

#[test]
fn any_handover_keeps_the_controller_sane() {
    let config = Config { cases: 1_500, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &SEED));
    let strategy = (handover(), prop_oneof![Just(1460u32), 1..70_000u32], any::<bool>(), 0..3usize, window());
    let result = runner.run(&strategy, |(from, mss, pacing, next, acked)| {
        for algorithm in ALGORITHMS {
            let config = CongestionConfig { pacing, ..CongestionConfig::new(algorithm, mss) };
            let mss = config.effective_mss();
            let mut now = Instant::from_millis(1_000);
            let mut cc = CongestionController::handover(&config, now, &from);
            prop_assert_eq!(cc.algorithm(), algorithm);
            check(&cc, mss, pacing)?;
            now += Duration::from_millis(10);
            let ack = AckEvent {
                newly_acked_bytes: acked,
                prior_in_flight: from.in_flight,
                in_flight: from.in_flight.saturating_sub(acked),
                rtt_sample: from.min_rtt,
                min_rtt: from.min_rtt,
                srtt: from.srtt,
                ..AckEvent::default()
            };
            cc.on_ack(now, &ack);
            check(&cc, mss, pacing)?;
            if from.in_recovery {
                cc.on_recovery_exit(now);
                prop_assert!(!cc.in_recovery());
                check(&cc, mss, pacing)?;
            }
            let loss = LossEvent {
                lost_bytes: acked,
                flight_size: from.flight_size,
                in_flight: ack.in_flight,
                is_persistent: false,
            };
            cc.on_congestion_event(now, &loss);
            check(&cc, mss, pacing)?;
            // And on to another controller, from whatever state this one is in.
            let successor = CongestionConfig { algorithm: ALGORITHMS[next], ..config };
            let state = Handover { srtt: from.srtt, min_rtt: from.min_rtt, ..cc.handover_state() };
            let cc = CongestionController::handover(&successor, now, &state);
            check(&cc, mss, pacing)?;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}\nfixed seed {SEED:?}");
    }
}
