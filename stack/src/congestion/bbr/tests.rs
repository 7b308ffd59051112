//! BBR state-machine tests on synthetic rate samples. Behaviour on a simulated bottleneck is
//! tested in `stack/tests/congestion_model.rs`.

use super::*;

const MSS: u32 = 1000;
const RATE: u64 = 10_000_000;
const RTT: Duration = Duration::from_millis(50);
/// An RTT sample that crossed a standing queue (30 ms over `RTT`): what congestive loss comes with.
const QUEUED_RTT: Duration = Duration::from_millis(80);

struct Driver {
    bbr: Bbr,
    now: Instant,
    delivered: u64,
}

#[derive(Clone, Copy)]
struct Ack {
    rate: u64,
    rtt: Duration,
    bytes: u64,
    in_flight: u32,
    new_round: bool,
    lost: u64,
    tx_in_flight: u64,
}

impl Default for Ack {
    fn default() -> Self {
        Ack {
            rate: RATE,
            rtt: RTT,
            bytes: 10 * u64::from(MSS),
            in_flight: 100_000,
            new_round: true,
            lost: 0,
            tx_in_flight: 400_000,
        }
    }
}

impl Driver {
    fn new() -> Self {
        Driver::with_random_loss_tolerance(true)
    }

    fn with_random_loss_tolerance(tolerate: bool) -> Self {
        let config = CongestionConfig {
            seed: 42,
            bbr_tolerate_random_loss: tolerate,
            ..CongestionConfig::new(Algorithm::Bbr, MSS)
        };
        let now = Instant::from_millis(1000);
        Driver { bbr: Bbr::new(&config, now), now, delivered: 0 }
    }

    fn ack(&mut self, a: Ack) {
        self.now += Duration::from_millis(10);
        let prior_delivered = if a.new_round { self.delivered } else { 0 };
        self.delivered += a.bytes;
        let rs = RateSample {
            delivery_rate: a.rate,
            delivered: self.delivered - prior_delivered,
            interval: a.rtt,
            is_app_limited: false,
            rtt: a.rtt,
            prior_delivered,
            tx_in_flight: a.tx_in_flight,
            lost: a.lost,
            newly_acked: a.bytes,
            newly_lost: a.lost,
        };
        let ack = AckEvent {
            newly_acked_bytes: a.bytes as u32,
            newly_lost_bytes: a.lost as u32,
            prior_in_flight: a.in_flight + a.bytes as u32,
            in_flight: a.in_flight,
            rtt_sample: Some(a.rtt),
            min_rtt: Some(a.rtt),
            srtt: Some(a.rtt),
            rate_sample: Some(rs),
            ece: false,
        };
        self.bbr.on_ack(self.now, &ack);
    }

    /// Startup with a constant delivery rate: full bandwidth after three flat rounds.
    fn to_probe_bw() -> Self {
        Driver::new().into_probe_bw()
    }

    fn into_probe_bw(mut self) -> Self {
        let d = &mut self;
        for _ in 0..5 {
            d.ack(Ack::default());
        }
        // DOWN finds in-flight below one BDP and moves straight on to CRUISE.
        assert_eq!(d.bbr.state(), State::ProbeBwCruise);
        self
    }

    /// `rounds` rounds of 5 queue-free ACKs of 10 segments each at `rate`, one segment lost on
    /// every `every`-th ACK: random loss at about `1 / (10 · every)`.
    fn random_loss_rounds(&mut self, rounds: usize, every: usize, rate: u64) {
        for r in 0..rounds {
            for i in 0..5 {
                let lost = if (r * 5 + i) % every == 0 { u64::from(MSS) } else { 0 };
                self.ack(Ack { rate, lost, new_round: i == 0, ..Ack::default() });
            }
        }
    }
}

#[test]
fn starts_in_startup_with_the_initial_pacing_rate() {
    let d = Driver::new();
    assert_eq!(d.bbr.state(), State::Startup);
    assert!(d.bbr.in_slow_start());
    // 10 segments per 1 ms × 2.77.
    assert_eq!(d.bbr.pacing_rate(), Some(27_700_000));
    assert_eq!(d.bbr.cwnd(), 10 * MSS);
    assert_eq!(d.bbr.info().bbr_state, Some("startup"));
}

#[test]
fn leaves_startup_after_three_rounds_without_growth_and_drains() {
    let mut d = Driver::new();
    d.ack(Ack { in_flight: 900_000, ..Ack::default() });
    for round in 1..=3 {
        assert_eq!(d.bbr.state(), State::Startup, "round {round}");
        d.ack(Ack { in_flight: 900_000, ..Ack::default() });
    }
    // In flight (900 KB) above one BDP (500 KB): drain first.
    assert_eq!(d.bbr.state(), State::Drain);
    assert!(d.bbr.info().pacing_gain.unwrap() < 1.0);
    d.ack(Ack { in_flight: 600_000, new_round: false, ..Ack::default() });
    assert_eq!(d.bbr.state(), State::Drain, "still above one BDP");
    // At one BDP, Drain ends; ProbeBW_DOWN sees no queue and moves on to CRUISE.
    d.ack(Ack { in_flight: 500_000, new_round: false, ..Ack::default() });
    assert_eq!(d.bbr.state(), State::ProbeBwCruise);
    assert_eq!(d.bbr.bw(), RATE);
    assert_eq!(d.bbr.min_rtt(), Some(RTT));
    // Pacing at bw × 99% margin.
    assert_eq!(d.bbr.pacing_rate(), Some(9_900_000));
}

#[test]
fn growing_bandwidth_keeps_startup_going() {
    let mut d = Driver::new();
    for i in 0..10 {
        d.ack(Ack { rate: RATE << i, ..Ack::default() });
        assert_eq!(d.bbr.state(), State::Startup);
    }
    assert!(d.bbr.cwnd() > 10 * MSS);
}

#[test]
fn probe_bw_cycles_through_cruise_refill_and_up() {
    let mut d = Driver::to_probe_bw();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..800 {
        d.ack(Ack::default());
        seen.insert(d.bbr.state().name());
    }
    for state in ["probe_bw_down", "probe_bw_cruise", "probe_bw_refill", "probe_bw_up"] {
        assert!(seen.contains(state), "never entered {state}: {seen:?}");
    }
}

#[test]
fn probe_rtt_after_five_seconds_without_a_new_min_rtt() {
    let mut d = Driver::to_probe_bw();
    let start = d.now;
    // RTT samples now all above the 50 ms minimum.
    while d.bbr.state() != State::ProbeRtt {
        d.ack(Ack { rtt: Duration::from_millis(60), ..Ack::default() });
        assert!(d.now - start < Duration::from_secs(6), "no ProbeRTT within 6 s");
    }
    assert!(d.now - start >= Duration::from_millis(4900));
    // The window drops to half a BDP (250 KB at 10 MB/s × 50 ms).
    d.ack(Ack { rtt: Duration::from_millis(60), in_flight: 200_000, new_round: false, ..Ack::default() });
    assert!(d.bbr.cwnd() <= 250_000, "cwnd {}", d.bbr.cwnd());
    // 200 ms plus a round later it is back in ProbeBW with the window restored.
    for _ in 0..25 {
        d.ack(Ack { rtt: Duration::from_millis(50), in_flight: 200_000, ..Ack::default() });
    }
    assert_eq!(d.bbr.state(), State::ProbeBwCruise);
    assert!(d.bbr.cwnd() > 250_000);
}

#[test]
fn loss_above_two_percent_while_probing_sets_inflight_hi_and_stops_the_probe() {
    let mut d = Driver::to_probe_bw();
    d.bbr.start_probe_bw_refill();
    d.ack(Ack::default());
    assert_eq!(d.bbr.state(), State::ProbeBwUp);
    assert_eq!(d.bbr.inflight_hi(), None);
    // 1% loss: below the threshold, nothing happens.
    d.ack(Ack { lost: 4_000, rtt: QUEUED_RTT, new_round: false, ..Ack::default() });
    assert_eq!((d.bbr.state(), d.bbr.inflight_hi()), (State::ProbeBwUp, None));
    // 5% of what was in flight: too high.
    d.ack(Ack { lost: 20_000, rtt: QUEUED_RTT, new_round: false, ..Ack::default() });
    assert!(matches!(d.bbr.state(), State::ProbeBwDown | State::ProbeBwCruise), "{:?}", d.bbr.state());
    assert_eq!(d.bbr.inflight_hi(), Some(400_000));
    assert!(d.bbr.cwnd() <= 400_000);
}

#[test]
fn loss_round_outside_probing_cuts_bw_lo_by_beta() {
    let mut d = Driver::to_probe_bw();
    d.bbr.start_probe_bw_cruise();
    d.ack(Ack { rate: RATE / 2, new_round: true, ..Ack::default() });
    d.ack(Ack { rate: RATE / 2, lost: 1_000, rtt: QUEUED_RTT, new_round: false, ..Ack::default() });
    assert_eq!(d.bbr.bw(), RATE, "lower bounds move once per loss round");
    d.ack(Ack { rate: RATE / 2, new_round: true, ..Ack::default() });
    // bw_lo = max(bw_latest = 5 MB/s, 0.7 × 10 MB/s).
    assert_eq!(d.bbr.bw(), 7_000_000);
}

#[test]
fn recovery_conserves_packets_then_restores_the_window() {
    let mut d = Driver::to_probe_bw();
    let before = d.bbr.cwnd();
    let now = d.now;
    d.bbr.on_congestion_event(
        now,
        &LossEvent { lost_bytes: 1000, flight_size: 300_000, in_flight: 299_000, is_persistent: false },
    );
    assert!(d.bbr.in_recovery());
    assert_eq!(d.bbr.cwnd(), 300_000);
    d.ack(Ack { in_flight: 290_000, new_round: false, ..Ack::default() });
    assert!(d.bbr.cwnd() >= 300_000, "packet conservation keeps in_flight + acked");
    d.bbr.on_recovery_exit(d.now);
    assert!(d.bbr.cwnd() >= before.min(300_000));
    assert!(!d.bbr.in_recovery());
}

#[test]
fn rto_collapses_to_four_segments_and_undo_restores() {
    let mut d = Driver::to_probe_bw();
    let before = d.bbr.cwnd();
    d.bbr.on_retransmit_timeout(d.now);
    assert_eq!(d.bbr.cwnd(), 4 * MSS);
    d.bbr.on_spurious_congestion_event();
    assert_eq!(d.bbr.cwnd(), before);
}

#[test]
fn random_loss_without_a_queue_leaves_the_model_alone() {
    // About 1% loss (one segment in every tenth ACK of ten), every RTT sample at min_rtt.
    // The delivery rate dips to 60% meanwhile: the draft would follow it down.
    let mut d = Driver::to_probe_bw();
    d.random_loss_rounds(8, 10, RATE * 6 / 10);
    assert!(d.bbr.state().is_probe_bw(), "{:?}", d.bbr.state());
    assert_eq!(d.bbr.bw(), RATE, "no bw_lo cut for loss the background explains");
    assert_eq!(d.bbr.inflight_hi(), None);
}

#[test]
fn the_draft_loss_response_cuts_on_the_same_random_loss() {
    let mut d = Driver::with_random_loss_tolerance(false).into_probe_bw();
    d.random_loss_rounds(8, 10, RATE * 6 / 10);
    // Every loss round outside probing: bw_lo = max(bw_latest, 0.7 · bw_lo) → 6 MB/s.
    assert_eq!(d.bbr.state(), State::ProbeBwCruise);
    assert_eq!(d.bbr.bw(), RATE * 6 / 10);
}

#[test]
fn switching_the_tolerance_off_on_a_live_flow_restores_the_draft_response() {
    let mut d = Driver::to_probe_bw();
    d.random_loss_rounds(8, 10, RATE * 6 / 10);
    assert_eq!(d.bbr.bw(), RATE, "tolerated");
    // The socket option changes: the learned background is forgotten, the same loss now cuts.
    d.bbr.set_tolerate_random_loss(false);
    assert!(!d.bbr.tolerates_random_loss());
    d.random_loss_rounds(8, 10, RATE * 6 / 10);
    assert_eq!(d.bbr.bw(), RATE * 6 / 10);
}

#[test]
fn congestive_loss_above_the_background_still_cuts() {
    let mut d = Driver::to_probe_bw();
    d.random_loss_rounds(8, 10, RATE);
    assert_eq!((d.bbr.state(), d.bbr.bw()), (State::ProbeBwCruise, RATE));
    // A round at half the rate with 20% loss, reported by ACKs that crossed a queue.
    for i in 0..5 {
        d.ack(Ack {
            rate: RATE / 2,
            lost: 2 * u64::from(MSS),
            rtt: QUEUED_RTT,
            new_round: i == 0,
            ..Ack::default()
        });
    }
    d.ack(Ack { rate: RATE / 2, ..Ack::default() });
    assert_eq!(d.bbr.bw(), 7_000_000, "bw_lo = max(5 MB/s, 0.7 × 10 MB/s)");
}

#[test]
fn background_loss_does_not_end_a_probe_but_excess_loss_does() {
    // About 5% background loss learned while cruising.
    let mut d = Driver::to_probe_bw();
    d.random_loss_rounds(40, 2, RATE);
    d.bbr.start_probe_bw_refill();
    d.ack(Ack::default());
    assert_eq!(d.bbr.state(), State::ProbeBwUp);
    // 5% of in flight lost, with a queue: what the background explains, the probe goes on.
    d.ack(Ack { lost: 20_000, rtt: QUEUED_RTT, new_round: false, ..Ack::default() });
    assert_eq!((d.bbr.state(), d.bbr.inflight_hi()), (State::ProbeBwUp, None));
    // 15%: well above background + 2%: too high.
    d.ack(Ack { lost: 60_000, rtt: QUEUED_RTT, new_round: false, ..Ack::default() });
    assert!(matches!(d.bbr.state(), State::ProbeBwDown | State::ProbeBwCruise), "{:?}", d.bbr.state());
    assert_eq!(d.bbr.inflight_hi(), Some(400_000));
}

#[test]
fn startup_rides_through_random_loss_while_bandwidth_grows() {
    let mut d = Driver::new();
    for i in 0..8 {
        // 5% loss every round, on ACKs that saw no queue, while the delivery rate doubles.
        for j in 0..20 {
            let lost = if j % 2 == 0 { u64::from(MSS) } else { 0 };
            d.ack(Ack { rate: RATE << i, lost, new_round: j == 0, ..Ack::default() });
        }
        assert_eq!(d.bbr.state(), State::Startup, "round {i}");
    }
    assert_eq!(d.bbr.inflight_hi(), None);
}

#[test]
fn a_lower_min_rtt_discards_background_learned_against_the_old_one() {
    // The flow started into a standing queue: every sample is 80 ms, min_rtt 80 ms, and the
    // loss it sees looks queue-free.
    let mut d = Driver::new();
    for i in 0..6 {
        for j in 0..5 {
            let lost = if j == 0 { u64::from(MSS) } else { 0 };
            d.ack(Ack { rate: RATE << i, rtt: QUEUED_RTT, lost, new_round: j == 0, ..Ack::default() });
        }
    }
    assert!(d.bbr.background_loss.rate() > 0.0);
    // The queue drains: the true 50 ms shows, so those rounds were not queue-free after all.
    d.ack(Ack { rate: RATE << 5, rtt: RTT, ..Ack::default() });
    assert_eq!(d.bbr.min_rtt(), Some(RTT));
    assert_eq!(d.bbr.background_loss.rate(), 0.0);
}
