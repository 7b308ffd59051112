//! Pacing over the simulated link: releases come from the engine's timer wheel, and at high
//! rates they leave in bursts of about one timer tick, so a paced flow still fills a fast link;
//! on a slower path every controller moves the data byte-exact with pacing on.
//! Seeds print on failure; `LINERATE_SEED` reproduces, `LINERATE_PCAP_DIR` leaves pcaps.

mod engine_sim_support;
use engine_sim_support::*;
use linerate_driver::sim::{LinkConfig, LossModel, SimRun};
use linerate_stack::tcp::{CongestionAlgorithm, SocketOptions};
use linerate_stack::time::Duration;

fn opts(congestion: CongestionAlgorithm) -> SocketOptions {
    SocketOptions {
        recv_buffer: 4 << 20,
        send_buffer: 4 << 20,
        congestion,
        pacing: true,
        ..SocketOptions::default()
    }
}

#[test]
fn paced_flows_still_fill_a_ten_gigabit_link() {
    for (i, cc) in [CongestionAlgorithm::Bbr, CongestionAlgorithm::Cubic].into_iter().enumerate() {
        let run = SimRun::new(&format!("engine_sim_paced_10g_{cc}"), 900 + i as u64);
        let l = LinkConfig::default().delay(Duration::from_micros(50)).bottleneck(10_000_000_000, 256 * 1514);
        let r = run_transfer(&run, 32 << 20, l.clone(), l, opts(cc));
        let gbps = (32u64 << 23) as f64 / r.elapsed.as_secs_f64() / 1e9;
        // One 64 KiB burst per 1 ms tick would cap this at 0.5 Gbit/s.
        assert!(
            gbps > 2.0,
            "{cc} paced: 32 MiB over 10 Gbit/s at {gbps:.2} Gbit/s; {}",
            run.reproduce_hint()
        );
    }
}

#[test]
fn every_controller_paced_survives_loss() {
    let all = [CongestionAlgorithm::NewReno, CongestionAlgorithm::Cubic, CongestionAlgorithm::Bbr];
    for (i, cc) in all.into_iter().enumerate() {
        let run = SimRun::new(&format!("engine_sim_paced_loss_{cc}"), 910 + i as u64);
        let l = LinkConfig::default()
            .delay(Duration::from_millis(10))
            .bottleneck(100_000_000, 256 * 1514)
            .loss(LossModel::Bernoulli { p: 0.01 });
        let r = run_transfer(&run, 4 << 20, l.clone(), l, opts(cc));
        assert!(r.elapsed < Duration::from_secs(30), "{cc}: {r:?}; {}", run.reproduce_hint());
    }
}
