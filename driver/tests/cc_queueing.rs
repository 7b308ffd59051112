//! Queueing delay behind a deep buffer: the bufferbloat check of issue #4.
//!
//! One endless flow over a 100 Mbit/s bottleneck, base RTT 50 ms, drop-tail queue of 4 BDP
//! (2.5 MB, 200 ms of queueing when full), no random loss. The link measures how long every data
//! frame waited in the queue; the mean is taken over the steady part (5 s to 20 s). BBR, which
//! paces at its bottleneck-bandwidth estimate and caps inflight near one BDP, must keep the mean
//! under one base RTT; CUBIC, which only backs off on loss, fills the buffer (its mean must exceed
//! one base RTT and be at least twice BBR's). NewReno is printed for reference.
//!
//! Run: `cargo test --release -p linerate-driver --test cc_queueing -- --nocapture`.

mod cc_support;

use cc_support::*;
use linerate_driver::sim::{Direction, SimRun};
use linerate_stack::congestion::Algorithm;
use linerate_stack::time::{Duration, Instant};

const RATE_BPS: u64 = 100_000_000;
const RTT: Duration = Duration::from_millis(50);
const QUEUE_BDP: f64 = 4.0;

#[derive(Debug, Clone, Copy)]
struct Queueing {
    mean: Duration,
    max: Duration,
    goodput_bps: f64,
    queue_drops: u64,
    seed: u64,
}

fn measure(algorithm: &Algorithm) -> Queueing {
    let run = SimRun::new(&format!("cc_queueing_{algorithm}"), 6_000);
    let flow = FlowSpec::endless(*algorithm, 40_000, Instant::ZERO, 16 << 20);
    let mut sc = Scenario::new(&run, bottleneck(RATE_BPS, RTT, QUEUE_BDP), ack_path(RTT), &[flow]);
    let a = sc.sample(&run, Instant::from_millis(5_000));
    let link_a = sc.pair.stats(Direction::AToB);
    let b = sc.sample(&run, Instant::from_millis(20_000));
    let link_b = sc.pair.stats(Direction::AToB);
    Queueing {
        mean: link_b.mean_queueing_delay_since(&link_a),
        max: link_b.queueing_delay_max,
        goodput_bps: goodput_bps(&a, &b, 0),
        queue_drops: link_b.dropped_queue_full - link_a.dropped_queue_full,
        seed: run.seed(),
    }
}

#[test]
fn bbr_keeps_the_deep_buffer_empty_cubic_fills_it() {
    let algorithms = [Algorithm::Bbr, Algorithm::Cubic, Algorithm::NewReno];
    let results = run_parallel(&algorithms, measure);
    println!("# 100 Mbit/s, base RTT {} ms, drop-tail queue {QUEUE_BDP} BDP", RTT.as_millis());
    println!("# controller  seed  mean_queueing_ms  max_queueing_ms  goodput_mbps  queue_drops");
    for (alg, q) in algorithms.iter().zip(&results) {
        println!(
            "{:<12} {:>5} {:>17.1} {:>16.1} {:>13.2} {:>12}",
            alg.name(),
            q.seed,
            q.mean.as_secs_f64() * 1e3,
            q.max.as_secs_f64() * 1e3,
            q.goodput_bps / 1e6,
            q.queue_drops
        );
    }
    let (bbr, cubic) = (results[0], results[1]);
    let mut failures = Vec::new();
    if bbr.mean >= RTT {
        failures.push(format!("BBR mean queueing delay {:?} is not under one base RTT ({RTT:?})", bbr.mean));
    }
    if cubic.mean < RTT || cubic.mean.as_nanos() < 2 * bbr.mean.as_nanos() {
        failures.push(format!(
            "CUBIC mean queueing delay {:?} should exceed one base RTT and twice BBR's {:?}",
            cubic.mean, bbr.mean
        ));
    }
    assert!(failures.is_empty(), "{} (seed {})", failures.join("; "), bbr.seed);
}
