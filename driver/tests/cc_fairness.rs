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
//! Extra rows, reported and pinned but not held to the target, show why CUBIC/CUBIC misses it
//! on this link: the same pair paced at `cwnd / srtt`, and unpaced with 30 µs of per-frame
//! jitter on both directions (a quarter of a frame time at 100 Mbit/s: no reordering) for four
//! seeds. The `drops` columns are each flow's bottleneck drops per 10,000 of its frames over
//! 20-30 s: with AIMD-like flows, equal per-frame loss rates mean equal shares.
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
///   the overflow losses unevenly, a drop-tail phase effect (Floyd and Jacobson, 1992): with
///   ACK-clocked arrivals the queue only overflows when a flow's window grows by a segment, so
///   the drop goes to whichever flow grows faster at that moment, not in proportion to the
///   frames each sends. Over 20-30 s the smaller flow loses 2.6 frames per 10,000 and the larger
///   0.4 (65/30 Mbit/s); the shares oscillate with a period of about a minute. Paced, or with
///   30 µs of jitter, the per-frame loss rates mostly even out and so do the shares (extra
///   rows; how timers due in the same tick are ordered is enough to move them).
const KNOWN_MISSES: [(Algorithm, Algorithm); 1] = [(Algorithm::Cubic, Algorithm::Cubic)];

#[derive(Debug, Clone, Copy)]
struct Case {
    first: Algorithm,
    second: Algorithm,
    seed: u64,
    /// Both flows pace at `cwnd / srtt` (BBR paces anyway).
    paced: bool,
    /// Per-frame jitter on both link directions.
    jitter: Duration,
}

impl Case {
    const fn plain(first: Algorithm, second: Algorithm, seed: u64) -> Self {
        Case { first, second, seed, paced: false, jitter: Duration::ZERO }
    }
    /// One of the cases, held to the target (the extra rows are only reported).
    fn is_plain(&self) -> bool {
        !self.paced && self.jitter == Duration::ZERO
    }
    fn variant(&self) -> String {
        match (self.paced, self.jitter.as_micros()) {
            (false, 0) => "-".to_owned(),
            (true, 0) => "paced".to_owned(),
            (false, us) => format!("jitter{us}us"),
            (true, us) => format!("paced+jitter{us}us"),
        }
    }
}

#[derive(Debug, Clone)]
struct Shares {
    goodput_bps: [f64; 2],
    /// Mean queueing delay each flow's frames saw over the whole run.
    queueing: [Duration; 2],
    /// Bottleneck drops per 10,000 frames of each flow, 20-30 s.
    drops_per_10k: [f64; 2],
    seed: u64,
}

fn share(case: &Case) -> Shares {
    // The variant is part of the name: runs that share a seed must not share a pcap file.
    let name = match case.is_plain() {
        true => format!("cc_fairness_{}_{}", case.first, case.second),
        false => format!("cc_fairness_{}_{}_{}", case.first, case.second, case.variant()),
    };
    let run = SimRun::new(&name, case.seed);
    let buffer = 8 << 20;
    let flows = [
        FlowSpec { pacing: case.paced, ..FlowSpec::endless(case.first, 40_001, Instant::ZERO, buffer) },
        FlowSpec {
            pacing: case.paced,
            ..FlowSpec::endless(case.second, 40_002, Instant::from_millis(1_000), buffer)
        },
    ];
    let fwd = bottleneck(RATE_BPS, RTT, 1.0).jitter(case.jitter);
    let mut sc = Scenario::new(&run, fwd, ack_path(RTT).jitter(case.jitter), &flows);
    let flow_stats = |sc: &Scenario, port| {
        sc.pair.link(Direction::AToB).flows().by_src_port(port).copied().unwrap_or_default()
    };
    let a = sc.sample(&run, Instant::from_millis(20_000));
    let before = [flow_stats(&sc, 40_001), flow_stats(&sc, 40_002)];
    let b = sc.sample(&run, Instant::from_millis(30_000));
    let after = [flow_stats(&sc, 40_001), flow_stats(&sc, 40_002)];
    let drops = |i: usize| {
        let frames = after[i].offered_frames.saturating_sub(before[i].offered_frames).max(1);
        let dropped = after[i].dropped_queue_full.saturating_sub(before[i].dropped_queue_full);
        dropped as f64 * 10_000.0 / frames as f64
    };
    Shares {
        goodput_bps: [goodput_bps(&a, &b, 0), goodput_bps(&a, &b, 1)],
        queueing: [after[0].mean_queueing_delay(), after[1].mean_queueing_delay()],
        drops_per_10k: [drops(0), drops(1)],
        seed: run.seed(),
    }
}

#[test]
fn two_flows_share_one_bottleneck() {
    let (cubic, jitter) = (Algorithm::Cubic, Duration::from_micros(30));
    let cases = [
        Case::plain(cubic, cubic, 7_001),
        Case::plain(Algorithm::Bbr, Algorithm::Bbr, 7_002),
        Case::plain(Algorithm::NewReno, Algorithm::NewReno, 7_003),
        Case::plain(Algorithm::Bbr, cubic, 7_004),
        Case::plain(cubic, Algorithm::Bbr, 7_005),
        Case { paced: true, ..Case::plain(cubic, cubic, 7_001) },
        Case { jitter, ..Case::plain(cubic, cubic, 7_001) },
        Case { jitter, ..Case::plain(cubic, cubic, 7_002) },
        Case { jitter, ..Case::plain(cubic, cubic, 7_003) },
        Case { jitter, ..Case::plain(cubic, cubic, 7_004) },
    ];
    let results = run_parallel(&cases, share);
    let mut table = String::from(
        "# flow1    flow2    variant      seed  flow1_mbps  flow2_mbps  jain  flow1_queue_ms  flow2_queue_ms  flow1_drops  flow2_drops\n",
    );
    let mut failures = Vec::new();
    for (case, s) in cases.iter().zip(&results) {
        let j = jain(&s.goodput_bps);
        writeln!(
            table,
            "{:<8} {:<8} {:<11} {:>5} {:>11.2} {:>11.2} {:>5.3} {:>15.2} {:>15.2} {:>12.2} {:>12.2}",
            case.first.name(),
            case.second.name(),
            case.variant(),
            s.seed,
            s.goodput_bps[0] / 1e6,
            s.goodput_bps[1] / 1e6,
            j,
            s.queueing[0].as_secs_f64() * 1e3,
            s.queueing[1].as_secs_f64() * 1e3,
            s.drops_per_10k[0],
            s.drops_per_10k[1],
        )
        .unwrap();
        let what = format!("{}/{} {} (seed {})", case.first, case.second, case.variant(), s.seed);
        if s.goodput_bps.iter().any(|&g| g <= 0.0) {
            failures.push(format!("{what}: a flow got nothing: {:?} bit/s", s.goodput_bps));
        }
        if !case.is_plain() {
            continue;
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
