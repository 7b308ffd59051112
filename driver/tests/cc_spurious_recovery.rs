//! Spurious fast retransmissions on the simulated link (RFC 3522 for fast recovery, RFC 3708):
//! how soon each detector undoes a reduction caused by reordering deeper than RACK's window.
//!
//! A CUBIC flow at 50 ms RTT, limited by a 64 KiB receive window (about half the BDP, so the
//! queue never overflows and nothing is lost), over a forward link that holds one frame in
//! `1 / HOLD_EVERY` back by 30 ms. RACK's first reordering window is a quarter of the minimum
//! RTT (12.5 ms), so the first held frames are declared lost and resent; each time the late
//! original follows.
//! - With timestamps, the ACK that the late original releases echoes its TSval, older than the
//!   retransmission's: the Eifel test undoes the reduction then, about one retransmission trip
//!   before the D-SACK for the resent copy could.
//! - Without timestamps, the D-SACK for the resent copy undoes it (unchanged by the Eifel work:
//!   the figures of this case are the same as before it).
//! - Control: the same flow with timestamps on, no reordering and 1 % of the forward frames
//!   lost: every fast retransmission repairs a real loss, nothing may be undone.
//!
//! Each case prints, per undone episode, the time from the fast retransmission to the undo.
//! Run: `cargo test --release -p linerate-driver --test cc_spurious_recovery -- --nocapture`.

mod cc_support;

use cc_support::*;
use linerate_driver::sim::{Direction, LossModel, SimRun};
use linerate_stack::congestion::Algorithm;
use linerate_stack::time::{Duration, Instant};

const RATE_BPS: u64 = 20_000_000;
const RTT: Duration = Duration::from_millis(50);
const HOLD: Duration = Duration::from_millis(30);
/// One frame in this many is held back by [`HOLD`] (the link's reorder knob, seeded).
const HOLD_EVERY: f64 = 500.0;
const CLIENT_PORT: u16 = 42_000;
const WINDOW: usize = 64 * 1024;
const END: Instant = Instant::from_millis(20_000);

#[derive(Debug)]
struct Outcome {
    /// Fast retransmissions, undone episodes, D-SACKs the sender received.
    fast_retrans: u64,
    undone: u64,
    dsacks: u64,
    /// Per undone episode: the first fast retransmission since the previous undo to this one
    /// (nothing is lost in the reordering runs, so every fast retransmission is spurious).
    to_undo: Vec<Duration>,
    held_back: u64,
    dropped: u64,
    goodput_mbps: f64,
}

impl Outcome {
    fn mean_ms(&self) -> f64 {
        let sum: f64 = self.to_undo.iter().map(|d| d.as_secs_f64() * 1e3).sum();
        sum / self.to_undo.len().max(1) as f64
    }
}

fn run(name: &str, seed: u64, timestamps: bool, reorder: bool) -> (SimRun, Outcome) {
    let run = SimRun::new(name, seed);
    let mut fwd = bottleneck(RATE_BPS, RTT, 4.0);
    fwd = if reorder {
        fwd.reorder(1.0 / HOLD_EVERY, HOLD)
    } else {
        fwd.loss(LossModel::Bernoulli { p: 0.01 })
    };
    let mut cfg = engine_config(CLIENT_IP, 1, run.seed());
    cfg.tcp.timestamps = timestamps;
    let flow = FlowSpec::endless(Algorithm::Cubic, CLIENT_PORT, Instant::ZERO, 1 << 20);
    let client = Client::with_config(cfg, &[flow]);
    let mut p = pair(&run, fwd, ack_path(RTT), client, Sink::new(run.seed(), WINDOW));
    let fail = |e| panic!("{e}\n{}", run.reproduce_hint());
    let mut to_undo = Vec::new();
    let mut first_retransmit: Option<Instant> = None;
    while p.now() < END {
        let s = p.a.engine.stats();
        let (fr, un) = (s.fast_retrans, s.spurious_retrans_undone);
        p.run_until(END, MAX_STEPS, |p| {
            let s = p.a.engine.stats();
            s.fast_retrans != fr || s.spurious_retrans_undone != un
        })
        .unwrap_or_else(fail);
        let s = p.a.engine.stats();
        if s.fast_retrans > fr && first_retransmit.is_none() {
            first_retransmit = Some(p.now());
        }
        if s.spurious_retrans_undone > un {
            to_undo.extend(first_retransmit.take().map(|t| p.now() - t));
        }
    }
    let conn = p.a.connection(0).expect("connected");
    let info = p.a.engine.info(p.now(), conn).expect("open");
    let stats = p.a.engine.stats().clone();
    let link = p.stats(Direction::AToB);
    let outcome = Outcome {
        fast_retrans: stats.fast_retrans,
        undone: stats.spurious_retrans_undone,
        dsacks: info.dsack_received,
        to_undo,
        held_back: link.held_back,
        dropped: link.dropped_total(),
        goodput_mbps: p.b.received_total() as f64 * 8.0 / (END - Instant::ZERO).as_secs_f64() / 1e6,
    };
    let times: Vec<String> =
        outcome.to_undo.iter().map(|d| format!("{:.1}", d.as_secs_f64() * 1e3)).collect();
    println!(
        "{name} (timestamps {timestamps}, {}): fast retransmissions {}, undone {} (mean {:.1} ms after the \
         retransmission: [{}]), D-SACKs {}, held back {}, dropped {}, goodput {:.2} Mbit/s, \
         reordering seen {}, reo_wnd multiplier {}",
        if reorder { "reordering" } else { "1 % loss" },
        outcome.fast_retrans,
        outcome.undone,
        outcome.mean_ms(),
        times.join(" "),
        outcome.dsacks,
        outcome.held_back,
        outcome.dropped,
        outcome.goodput_mbps,
        info.reordering_seen,
        info.reo_wnd_mult
    );
    (run, outcome)
}

#[test]
fn the_eifel_test_undoes_a_reordered_fast_retransmit_before_the_d_sack() {
    let (run_ts, eifel) = run("cc_spurious_recovery_eifel", 11_000, true, true);
    let (run_dsack, dsack) = run("cc_spurious_recovery_dsack", 11_000, false, true);
    for (run, o) in [(&run_ts, &eifel), (&run_dsack, &dsack)] {
        let hint = run.reproduce_hint();
        assert_eq!(o.dropped, 0, "the scenario must lose nothing: {o:?}\n{hint}");
        assert!(o.held_back >= 20, "too little reordering to mean anything: {o:?}\n{hint}");
        assert!(!o.to_undo.is_empty(), "reordering beyond RACK's window must be undone: {o:?}\n{hint}");
    }
    // The late original's ACK comes about one retransmission trip (an RTT) before the D-SACK.
    assert!(
        eifel.mean_ms() + 20.0 < dsack.mean_ms(),
        "Eifel {:.1} ms vs D-SACK {:.1} ms after the retransmission: {eifel:?} {dsack:?}\n{}",
        eifel.mean_ms(),
        dsack.mean_ms(),
        run_ts.reproduce_hint()
    );
    assert!(eifel.mean_ms() < RTT.as_secs_f64() * 1e3, "{eifel:?}\n{}", run_ts.reproduce_hint());
}

#[test]
fn genuine_losses_with_timestamps_are_never_undone() {
    let (run, o) = run("cc_spurious_recovery_loss", 11_100, true, false);
    let hint = run.reproduce_hint();
    assert!(o.dropped >= 20 && o.fast_retrans >= 20, "losses to repair: {o:?}\n{hint}");
    assert_eq!(o.undone, 0, "a real loss stays a loss: {o:?}\n{hint}");
}
