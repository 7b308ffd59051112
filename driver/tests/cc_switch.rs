//! Switching the congestion controller on a live connection (like Linux's `TCP_CONGESTION` on
//! an established socket), on the simulated link under loss: CUBIC → BBR → NewReno in the
//! middle of one transfer. After each switch `info` shows the new controller, data keeps
//! flowing, the transfer is byte-exact and both engines end empty.
//!
//! Run: `cargo test --release -p linerate-driver --test cc_switch -- --nocapture`.

mod engine_sim_support;
use engine_sim_support::*;
use linerate_driver::sim::{LinkConfig, LossModel, Pair, SimRun};
use linerate_stack::congestion::Algorithm;
use linerate_stack::engine::ConnectionHandle;
use linerate_stack::tcp::SocketOptions;
use linerate_stack::time::{Duration, Instant};

const SIZE: usize = 12 << 20;
const RATE_BPS: u64 = 50_000_000;
const ONE_WAY: Duration = Duration::from_millis(20);

fn link() -> LinkConfig {
    // One bandwidth-delay product of queue, 0.5 % random loss on data and ACKs.
    let bdp = (RATE_BPS / 8) as usize * 2 * ONE_WAY.as_millis() as usize / 1000;
    LinkConfig::default().delay(ONE_WAY).bottleneck(RATE_BPS, bdp).loss(LossModel::Bernoulli { p: 0.005 })
}

fn sender_conn(pair: &Pair<EngineNode, EngineNode>) -> ConnectionHandle {
    match &pair.a.app {
        App::Sender { conn: Some(c), .. } => *c,
        _ => panic!("the sender has connected by now"),
    }
}

fn received(pair: &Pair<EngineNode, EngineNode>) -> usize {
    match &pair.b.app {
        App::Receiver { received, .. } => *received,
        _ => unreachable!(),
    }
}

/// Runs to `at`, then switches the sender to `to`, checking what `info` shows.
fn switch_at(run: &SimRun, pair: &mut Pair<EngineNode, EngineNode>, at: Instant, to: Algorithm) -> usize {
    pair.run_to(at, 50_000_000).unwrap_or_else(|e| panic!("{e}\n{}", run.reproduce_hint()));
    let (c, now) = (sender_conn(pair), pair.now());
    let engine = &mut pair.a.engine;
    let before = engine.info(now, c).expect("still open");
    let opts = SocketOptions { congestion: to, ..engine.socket_options(c).unwrap() };
    engine.set_socket_options(now, c, opts).expect("switch");
    let after = engine.info(now, c).unwrap();
    println!(
        "{:>5.1} s  {} -> {}: cwnd {} -> {}, ssthresh {} -> {}, pacing {:?} -> {:?}, in recovery {}",
        (now - Instant::ZERO).as_secs_f64(),
        before.congestion,
        after.congestion,
        before.cwnd,
        after.cwnd,
        before.ssthresh,
        after.ssthresh,
        before.pacing_rate,
        after.pacing_rate,
        after.in_recovery,
    );
    assert_eq!(after.congestion, to, "{}", run.reproduce_hint());
    // Pacing is on by default, so every controller paces from the switch on (from the SRTT).
    assert!(after.pacing_rate.is_some(), "{to} paces at once: {after:?}");
    assert_eq!(after.in_recovery, before.in_recovery, "the recovery episode carries over");
    received(pair)
}

#[test]
fn cubic_to_bbr_to_newreno_mid_transfer_under_loss() {
    let run = SimRun::new("cc_switch", 44);
    let opts = SocketOptions {
        send_buffer: 2 << 20,
        recv_buffer: 2 << 20,
        congestion: Algorithm::Cubic,
        ..SocketOptions::default()
    };
    let client = EngineNode::sender(run.seed(), SIZE, opts);
    let server = EngineNode::receiver(run.seed(), opts);
    let mut pair = run.pair(link(), link(), client, server);
    let at_bbr = switch_at(&run, &mut pair, Instant::from_millis(1_000), Algorithm::Bbr);
    let at_reno = switch_at(&run, &mut pair, Instant::from_millis(2_000), Algorithm::NewReno);
    let outcome = pair
        .run_until(Instant::from_millis(600_000), 100_000_000, |p| p.a.finished() && p.b.finished())
        .unwrap_or_else(|e| panic!("{e}\n{}", run.reproduce_hint()));
    let hint = run.reproduce_hint();
    let App::Receiver { received, done_at, .. } = &pair.b.app else { unreachable!() };
    let elapsed = done_at.expect("receiver finished") - Instant::ZERO;
    let stats = pair.a.engine.stats();
    println!(
        "{SIZE} bytes in {elapsed:?}: {at_bbr} under CUBIC, {} under BBR, {} under NewReno; \
         {} retransmitted segments, {} timeouts",
        at_reno - at_bbr,
        SIZE - at_reno,
        stats.retrans_segs,
        stats.timeouts,
    );
    assert!(
        pair.a.error.is_none() && pair.b.error.is_none(),
        "{:?}/{:?}; {hint}",
        pair.a.error,
        pair.b.error
    );
    assert_eq!(*received, SIZE, "byte-exact delivery; {outcome:?}; {hint}");
    assert!(
        at_bbr > 0 && at_reno > at_bbr + (1 << 20) && SIZE > at_reno,
        "every controller moved data; {hint}"
    );
    assert!(stats.retrans_segs > 0, "the link dropped data; {hint}");
    assert!(pair.a.finished() && pair.b.finished(), "both sides closed; {hint}");
    assert!(pair.a.engine.is_empty() && pair.b.engine.is_empty(), "engines empty; {hint}");
}
