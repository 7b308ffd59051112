//! Two flows sharing one bottleneck: fairness per controller (issue #4).
//!
//! 100 Mbit/s, base RTT 20 ms, drop-tail queue of one BDP; flow 1 starts at 0 s, flow 2 at 1 s
//! (so it has to take its share from an established flow). Shares are the goodput each receiving
//! application read between 20 s and 30 s. For two flows of the same controller Jain's index must
//! reach ≥ 0.9 within those 30 s; BBR against CUBIC is reported (printed and pinned in
//! `tests/snapshots/cc_fairness.txt`, regenerate with `LINERATE_UPDATE_SNAPSHOTS=1`) with only
//! "both flows get something" asserted: how BBRv3 and CUBIC split a shallow buffer is a property
//! of the algorithms, not a pass/fail target.
//!
//! Run: `cargo test --release -p linerate-driver --test cc_fairness -- --nocapture`.

mod cc_support;

use std::fmt::Write as _;

use cc_support::*;
use linerate_driver::sim::{Direction, SimRun};
use linerate_stack::congestion::Algorithm;
use linerate_stack::time::{Duration, Instant};

const RATE_BPS: u64 = 100_000_000;
const RTT: Duration = Duration::from_millis(20);
const JAIN_TARGET: f64 = 0.9;

/// Same-controller pairs that miss the Jain target today (the issue stays open for them); still
/// pinned by the snapshot, and a pair listed here that starts meeting the target fails the test
/// until it is removed.
/// - CUBIC/CUBIC: two unpaced CUBIC flows on this perfectly deterministic drop-tail link share
///   the overflow losses unevenly (a phase effect) and their shares oscillate with a period of
///   about a minute (65/30 Mbit/s over 20-30 s, 50/45 around 60 s). Earlier runs met the target
///   only because the receiver dropped segments that needed more than 16 out-of-order ranges,
///   which happened to penalise the larger flow.
const KNOWN_MISSES: [(Algorithm, Algorithm); 1] = [(Algorithm::Cubic, Algorithm::Cubic)];

#[derive(Debug, Clone, Copy)]
struct Case {
    first: Algorithm,
    second: Algorithm,
    seed: u64,
}

#[derive(Debug, Clone)]
struct Shares {
    goodput_bps: [f64; 2],
    /// Mean queueing delay each flow's frames saw over the whole run.
    queueing: [Duration; 2],
    seed: u64,
}

fn share(case: &Case) -> Shares {
    let run = SimRun::new(&format!("cc_fairness_{}_{}", case.first, case.second), case.seed);
    let buffer = 8 << 20;
    let flows = [
        FlowSpec::endless(case.first, 40_001, Instant::ZERO, buffer),
        FlowSpec::endless(case.second, 40_002, Instant::from_millis(1_000), buffer),
    ];
    let mut sc = Scenario::new(&run, bottleneck(RATE_BPS, RTT, 1.0), ack_path(RTT), &flows);
    let a = sc.sample(&run, Instant::from_millis(20_000));
    let b = sc.sample(&run, Instant::from_millis(30_000));
    let link = sc.pair.link(Direction::AToB).flows();
    let queueing = |port| link.by_src_port(port).map(|f| f.mean_queueing_delay()).unwrap_or_default();
    Shares {
        goodput_bps: [goodput_bps(&a, &b, 0), goodput_bps(&a, &b, 1)],
        queueing: [queueing(40_001), queueing(40_002)],
        seed: run.seed(),
    }
}

#[test]
fn two_flows_share_one_bottleneck() {
    let cases = [
        Case { first: Algorithm::Cubic, second: Algorithm::Cubic, seed: 7_001 },
        Case { first: Algorithm::Bbr, second: Algorithm::Bbr, seed: 7_002 },
        Case { first: Algorithm::NewReno, second: Algorithm::NewReno, seed: 7_003 },
        Case { first: Algorithm::Bbr, second: Algorithm::Cubic, seed: 7_004 },
        Case { first: Algorithm::Cubic, second: Algorithm::Bbr, seed: 7_005 },
    ];
    let results = run_parallel(&cases, share);
    let mut table = String::from(
        "# flow1    flow2    seed  flow1_mbps  flow2_mbps  jain  flow1_queue_ms  flow2_queue_ms\n",
    );
    let mut failures = Vec::new();
    for (case, s) in cases.iter().zip(&results) {
        let j = jain(&s.goodput_bps);
        writeln!(
            table,
            "{:<8} {:<8} {:>5} {:>11.2} {:>11.2} {:>5.3} {:>15.2} {:>15.2}",
            case.first.name(),
            case.second.name(),
            s.seed,
            s.goodput_bps[0] / 1e6,
            s.goodput_bps[1] / 1e6,
            j,
            s.queueing[0].as_secs_f64() * 1e3,
            s.queueing[1].as_secs_f64() * 1e3,
        )
        .unwrap();
        let what = format!("{}/{} (seed {})", case.first, case.second, s.seed);
        if s.goodput_bps.iter().any(|&g| g <= 0.0) {
            failures.push(format!("{what}: a flow got nothing: {:?} bit/s", s.goodput_bps));
        }
        let known_miss = KNOWN_MISSES.contains(&(case.first, case.second));
        match (case.first == case.second, j >= JAIN_TARGET, known_miss) {
            (true, false, false) => {
                failures.push(format!("{what}: Jain's index {j:.3} < {JAIN_TARGET} over 20-30 s"));
            }
            (true, false, true) => eprintln!("MISS {what}: Jain's index {j:.3} (known, see KNOWN_MISSES)"),
            (true, true, true) => failures.push(format!(
                "{what}: Jain's index {j:.3} now meets the target, remove it from KNOWN_MISSES"
            )),
            _ => {}
        }
    }
    println!("{table}");
    let snapshot = check_snapshot("cc_fairness.txt", &table);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(snapshot.is_none(), "{}", snapshot.unwrap_or_default());
}
