//! The link model's knobs, each checked against what the toy endpoints observe.

mod sim_toys;

use linerate_driver::sim::{Direction, LinkConfig, LossModel, Outcome, Pair, SimRun};
use linerate_stack::time::{Duration, Instant};
use sim_toys::{loss_bursts, Sender, Sink};

const STEPS: u64 = 2_000_000;

fn run(pair: &mut Pair<Sender, Sink>) {
    let outcome = pair.run_to(Instant::MAX, STEPS).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome, Outcome::Idle);
}

fn one_way(run: &SimRun, a_to_b: LinkConfig, sender: Sender) -> Pair<Sender, Sink> {
    run.pair(a_to_b, LinkConfig::default(), sender, Sink::default())
}

#[test]
fn delay_is_exact() {
    let sim = SimRun::new("delay_is_exact", 1);
    let cfg = LinkConfig::default().delay(Duration::from_millis(10));
    let mut pair = one_way(&sim, cfg, Sender::new(100, 100, Duration::from_millis(1)));
    run(&mut pair);
    let arrivals = &pair.b.arrivals;
    assert_eq!(arrivals.len(), 100);
    for (arrival, &(seq, sent_at)) in arrivals.iter().zip(&pair.a.sent) {
        assert_eq!(arrival.seq, seq, "order is kept");
        assert_eq!(arrival.at, sent_at + Duration::from_millis(10));
        assert!(arrival.intact);
    }
    let stats = pair.stats(Direction::AToB);
    assert_eq!((stats.sent_frames, stats.delivered_frames, stats.dropped_total()), (100, 100, 0));
    assert_eq!(stats.delivered_bytes, 100 * 100);
}

#[test]
fn rate_limit_gives_serialization_times_and_queueing_delay() {
    let sim = SimRun::new("rate_limit_gives_serialization_times_and_queueing_delay", 2);
    // 12 Mbit/s: a 1500-byte frame takes exactly 1 ms.
    let cfg = LinkConfig::default().delay(Duration::from_millis(5)).bottleneck(12_000_000, usize::MAX);
    let sender = Sender::new(1500, 10, Duration::from_secs(1)).burst(10);
    let mut pair = one_way(&sim, cfg, sender);
    run(&mut pair);
    let times: Vec<Instant> = pair.b.arrivals.iter().map(|a| a.at).collect();
    let expected: Vec<Instant> = (1..=10).map(|i| Instant::from_millis(5 + i)).collect();
    assert_eq!(times, expected);
    let stats = pair.stats(Direction::AToB);
    assert_eq!(stats.queued_frames, 10);
    assert_eq!(stats.queueing_delay_sum, Duration::from_millis(45));
    assert_eq!(stats.queueing_delay_max, Duration::from_millis(9));
    assert_eq!(stats.mean_queueing_delay(), Duration::from_micros(4_500));
}

#[test]
fn throughput_matches_the_bottleneck_rate() {
    let sim = SimRun::new("throughput_matches_the_bottleneck_rate", 3);
    let rate = 10_000_000;
    let cfg = LinkConfig::default().delay(Duration::from_millis(20)).bottleneck(rate, 64 * 1500);
    // Offer 2x the rate: one 1250-byte frame (1 ms at 10 Mbit/s) every 500 us.
    let mut pair = one_way(&sim, cfg, Sender::new(1250, 4000, Duration::from_micros(500)));
    run(&mut pair);
    let arrivals = &pair.b.arrivals;
    let first = arrivals.first().unwrap().at;
    let last = arrivals.last().unwrap().at;
    let bits = (arrivals.len() as u64 - 1) * 1250 * 8;
    let measured = bits as f64 / (last - first).as_secs_f64();
    assert!((measured - rate as f64).abs() / (rate as f64) < 0.001, "measured {measured} bit/s");
    let stats = pair.stats(Direction::AToB);
    assert!(stats.dropped_queue_full > 1000, "the overloaded queue drops: {stats:?}");
    assert_eq!(stats.delivered_frames + stats.dropped_queue_full, 4000);
    // A full 64-frame queue means about 63 ms of waiting for late frames.
    assert!(stats.queueing_delay_max >= Duration::from_millis(62), "{stats:?}");
}

#[test]
fn drop_tail_queue_drops_when_full_and_counts() {
    let sim = SimRun::new("drop_tail_queue_drops_when_full_and_counts", 4);
    let cfg = LinkConfig::default().bottleneck(12_000_000, 3 * 1500);
    let sender = Sender::new(1500, 10, Duration::from_secs(1)).burst(10);
    let mut pair = one_way(&sim, cfg, sender);
    run(&mut pair);
    let seqs: Vec<u64> = pair.b.arrivals.iter().map(|a| a.seq).collect();
    assert_eq!(seqs, vec![0, 1, 2], "the first three fill the queue, the tail is dropped");
    let stats = pair.stats(Direction::AToB);
    assert_eq!(stats.dropped_queue_full, 7);
    assert_eq!(stats.dropped_total(), 7);
}

#[test]
fn frames_over_the_path_mtu_are_dropped_and_counted() {
    let sim = SimRun::new("frames_over_the_path_mtu_are_dropped_and_counted", 5);
    // The port advertises 1500 but the path carries 1400: a PMTU black hole.
    let cfg = LinkConfig::default().mtu(1400).port_mtu(1500);
    let mut pair = one_way(&sim, cfg, Sender::new(1514, 5, Duration::from_millis(1)));
    run(&mut pair);
    assert!(pair.b.arrivals.is_empty());
    assert_eq!(pair.stats(Direction::AToB).dropped_too_big, 5);

    // The port itself refuses frames beyond its own MTU.
    let sim = SimRun::new("frames_over_the_port_mtu_are_refused", 5);
    let mut pair = one_way(&sim, LinkConfig::default(), Sender::new(1515, 1, Duration::from_millis(1)));
    // The toy sender retries every millisecond: stop after a few tries.
    let outcome = pair.run_to(Instant::from_millis(4), 100).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome, Outcome::DeadlineReached);
    assert_eq!(pair.a.refused, 5);
    assert_eq!(pair.stats(Direction::AToB).sent_frames, 0);
}

#[test]
fn bernoulli_loss_rate_is_close_to_p() {
    let sim = SimRun::new("bernoulli_loss_rate_is_close_to_p", 6);
    let p = 0.1;
    let cfg = LinkConfig::default().loss(LossModel::Bernoulli { p });
    let n = 100_000;
    let mut pair = one_way(&sim, cfg, Sender::new(64, n, Duration::from_micros(1)).burst(10));
    run(&mut pair);
    let stats = pair.stats(Direction::AToB);
    let rate = stats.dropped_loss as f64 / n as f64;
    // Standard deviation is sqrt(p(1-p)/n) ~ 0.00095; allow six of them.
    assert!((rate - p).abs() < 0.006, "loss rate {rate}");
    assert_eq!(stats.delivered_frames + stats.dropped_loss, n);
    assert_eq!(pair.b.arrivals.len() as u64, stats.delivered_frames);
    let mean_burst = mean(&loss_bursts(&pair.b.arrivals, n));
    assert!(mean_burst < 1.2, "independent losses rarely come in bursts: {mean_burst}");
}

#[test]
fn periodic_loss_drops_exactly_every_nth_frame_from_its_phase() {
    let sim = SimRun::new("periodic_loss_drops_exactly_every_nth_frame_from_its_phase", 8);
    let (every, first, n) = (1_000u64, 337u64, 100_000u64);
    let cfg = LinkConfig::default().loss(LossModel::Periodic { every, first });
    let mut pair = one_way(&sim, cfg, Sender::new(64, n, Duration::from_micros(1)).burst(10));
    run(&mut pair);
    let mut lost: Vec<u64> = (0..n).collect();
    let arrived: std::collections::HashSet<u64> = pair.b.arrivals.iter().map(|a| a.seq).collect();
    lost.retain(|seq| !arrived.contains(seq));
    let want: Vec<u64> = (first..n).step_by(every as usize).collect();
    assert_eq!(lost, want);
    assert_eq!(pair.stats(Direction::AToB).dropped_loss, want.len() as u64);
}

#[test]
fn periodic_loss_every_zero_never_loses() {
    let sim = SimRun::new("periodic_loss_every_zero_never_loses", 9);
    let cfg = LinkConfig::default().loss(LossModel::Periodic { every: 0, first: 0 });
    let mut pair = one_way(&sim, cfg, Sender::new(64, 1_000, Duration::from_micros(1)));
    run(&mut pair);
    assert_eq!(pair.stats(Direction::AToB).dropped_loss, 0);
    assert_eq!(pair.stats(Direction::AToB).delivered_frames, 1_000);
}

#[test]
fn gilbert_elliott_loss_comes_in_bursts() {
    let sim = SimRun::new("gilbert_elliott_loss_comes_in_bursts", 7);
    let p_bad_to_good = 0.25;
    let loss =
        LossModel::GilbertElliott { p_good_to_bad: 0.01, p_bad_to_good, loss_in_good: 0.0, loss_in_bad: 1.0 };
    let n = 100_000;
    let mut pair = one_way(
        &sim,
        LinkConfig::default().loss(loss),
        Sender::new(64, n, Duration::from_micros(1)).burst(10),
    );
    run(&mut pair);
    let bursts = loss_bursts(&pair.b.arrivals, n);
    let mean_burst = mean(&bursts);
    // Mean stay in the bad state is 1/p_bad_to_good = 4 frames; ~950 bursts give sd ~0.11.
    assert!(
        (mean_burst - 1.0 / p_bad_to_good).abs() < 0.5,
        "mean burst {mean_burst} over {} bursts",
        bursts.len()
    );
    // Stationary bad-state share: 0.01 / (0.01 + 0.25) ~ 3.8%.
    let rate = pair.stats(Direction::AToB).dropped_loss as f64 / n as f64;
    assert!((0.03..0.047).contains(&rate), "loss rate {rate}");
}

#[test]
fn duplication_and_corruption_happen_and_are_counted() {
    let sim = SimRun::new("duplication_and_corruption_happen_and_are_counted", 8);
    let cfg = LinkConfig::default().duplicate_probability(0.1).corrupt_probability(0.05);
    let n = 10_000;
    let mut pair = one_way(&sim, cfg, Sender::new(200, n, Duration::from_micros(10)));
    run(&mut pair);
    let stats = pair.stats(Direction::AToB);
    assert!((800..1200).contains(&stats.duplicated), "{stats:?}");
    assert!((350..650).contains(&stats.corrupted), "{stats:?}");
    assert_eq!(stats.delivered_frames, n + stats.duplicated);
    let arrivals = &pair.b.arrivals;
    assert_eq!(arrivals.len() as u64, stats.delivered_frames);
    // A corrupted frame is damaged once, before duplication: its copy is damaged too.
    let damaged = arrivals.iter().filter(|a| !a.intact).count() as u64;
    assert!(damaged >= stats.corrupted && damaged <= 2 * stats.corrupted, "{damaged} vs {stats:?}");
    let mut seen = vec![0u32; n as usize];
    for a in arrivals.iter().filter(|a| a.intact) {
        seen[a.seq as usize] += 1;
    }
    let twice = seen.iter().filter(|&&c| c == 2).count() as u64;
    assert!(twice <= stats.duplicated && twice + damaged >= stats.duplicated, "{twice} {stats:?}");
    assert!(seen.iter().all(|&c| c <= 2));
}

#[test]
fn jitter_reorders_within_its_bounds() {
    let sim = SimRun::new("jitter_reorders_within_its_bounds", 9);
    let cfg = LinkConfig::default().delay(Duration::from_millis(10)).jitter(Duration::from_millis(5));
    let mut pair = one_way(&sim, cfg, Sender::new(100, 1000, Duration::from_millis(1)));
    run(&mut pair);
    let arrivals = &pair.b.arrivals;
    assert_eq!(arrivals.len(), 1000);
    let out_of_order = arrivals.windows(2).filter(|w| w[1].seq < w[0].seq).count();
    assert!(out_of_order > 100, "jitter of 5 gaps reorders often: {out_of_order}");
    for a in arrivals {
        let sent = Instant::from_millis(a.seq);
        assert!(a.at >= sent + Duration::from_millis(10) && a.at <= sent + Duration::from_millis(15));
    }
}

#[test]
fn reorder_knob_holds_frames_back() {
    let sim = SimRun::new("reorder_knob_holds_frames_back", 10);
    let cfg = LinkConfig::default().delay(Duration::from_millis(1)).reorder(0.1, Duration::from_millis(3));
    let mut pair = one_way(&sim, cfg, Sender::new(100, 1000, Duration::from_millis(1)));
    run(&mut pair);
    let stats = pair.stats(Direction::AToB);
    assert!((60..140).contains(&stats.held_back), "{stats:?}");
    let late: Vec<_> = pair.b.arrivals.iter().filter(|a| a.at > Instant::from_millis(a.seq + 1)).collect();
    assert_eq!(late.len() as u64, stats.held_back);
    assert!(late.iter().all(|a| a.at == Instant::from_millis(a.seq + 4)));
    assert!(pair.b.arrivals.windows(2).any(|w| w[1].seq < w[0].seq));
}

#[test]
fn a_full_rx_ring_drops_arrivals() {
    let sim = SimRun::new("a_full_rx_ring_drops_arrivals", 11);
    let cfg = LinkConfig::default().rx_ring_frames(4);
    let mut pair = one_way(&sim, cfg, Sender::new(64, 10, Duration::from_secs(1)).burst(10));
    run(&mut pair);
    assert_eq!(pair.b.arrivals.len(), 4);
    assert_eq!(pair.stats(Direction::AToB).dropped_rx_ring_full, 6);
}

#[test]
fn a_small_receive_budget_is_polled_again_at_the_same_time() {
    let sim = SimRun::new("a_small_receive_budget_is_polled_again_at_the_same_time", 12);
    let sink = Sink { budget: Some(3), ..Sink::default() };
    let mut pair = sim.pair(
        LinkConfig::default(),
        LinkConfig::default(),
        Sender::new(64, 10, Duration::from_secs(1)).burst(10),
        sink,
    );
    run(&mut pair);
    assert_eq!(pair.b.arrivals.len(), 10);
    assert!(pair.b.arrivals.iter().all(|a| a.at == Instant::ZERO));
}

#[test]
fn steady_state_does_not_allocate_per_frame() {
    let sim = SimRun::new("steady_state_does_not_allocate_per_frame", 13);
    let cfg = LinkConfig::default().delay(Duration::from_millis(10)).duplicate_probability(0.05);
    let mut pair = one_way(&sim, cfg, Sender::new(1000, 20_000, Duration::from_micros(100)));
    run(&mut pair);
    // About 100 frames are in flight at once (10 ms / 100 us); the pool covers them and stops.
    let allocated = pair.stats(Direction::AToB).buffers_allocated;
    assert!(allocated < 150, "allocated {allocated} buffers for 20k frames");
}

fn mean(values: &[u64]) -> f64 {
    values.iter().sum::<u64>() as f64 / values.len().max(1) as f64
}

#[test]
fn frame_limit_of_the_queue_drops_small_frames() {
    let sim = SimRun::new("frame_limit_of_the_queue_drops_small_frames", 6);
    let cfg = LinkConfig::default().bottleneck(12_000_000, usize::MAX).queue_limit_frames(4);
    let mut pair = one_way(&sim, cfg, Sender::new(100, 10, Duration::from_secs(1)).burst(10));
    run(&mut pair);
    assert_eq!(pair.b.arrivals.len(), 4, "four frames fit however small they are");
    assert_eq!(pair.stats(Direction::AToB).dropped_queue_full, 6);
}

#[test]
fn drop_filter_drops_exactly_the_chosen_frames_and_sees_the_time() {
    let sim = SimRun::new("drop_filter_drops_exactly_the_chosen_frames_and_sees_the_time", 7);
    let mut pair = one_way(&sim, LinkConfig::default(), Sender::new(100, 10, Duration::from_millis(1)));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    pair.link_mut(Direction::AToB).set_drop_filter(Some(Box::new(move |now, index, _frame| {
        log.lock().unwrap().push(now);
        index % 3 == 0
    })));
    run(&mut pair);
    let seqs: Vec<u64> = pair.b.arrivals.iter().map(|a| a.seq).collect();
    assert_eq!(seqs, vec![1, 2, 4, 5, 7, 8]);
    let stats = pair.stats(Direction::AToB);
    assert_eq!((stats.dropped_filter, stats.dropped_total()), (4, 4));
    let times = seen.lock().unwrap();
    assert_eq!(times.len(), 10);
    assert_eq!(times[9] - times[0], Duration::from_millis(9));
}
