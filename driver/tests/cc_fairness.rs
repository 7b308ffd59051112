//! Two flows sharing one bottleneck: fairness per controller (issue #4).
//!
//! 100 Mbit/s, base RTT 20 ms, drop-tail queue of one BDP; flow 1 starts at 0 s, flow 2 at about
//! 1 s (so it has to take its share from an established flow). Shares are the goodput each
//! receiving application read between 20 s and 30 s. For two flows of the same controller Jain's
//! index must reach ≥ 0.9 within those 30 s, with the engine's default socket options (pacing on).
//!
//! **Several seeds per pair.** The link has no randomness, so a seed alone changes nothing for
//! the loss-based controllers (only ISNs); what moves these lock-step runs is the phase of the
//! second flow against the first. Seed `i` of [`SEEDS`] therefore starts flow 2 at
//! `1 s + i · 125 µs` (eight phases across one 1 ms timer tick; `i = 0` is the original run), and
//! the target must hold for the *worst* seed. Each group prints its min and median.
//!
//! Reported and pinned (in `tests/snapshots/cc_fairness.txt`, regenerate with
//! `LINERATE_UPDATE_SNAPSHOTS=1`) but not held to the target: BBR against CUBIC (how BBRv3 and
//! CUBIC split a shallow buffer is a property of the algorithms; only "both flows get something"
//! is asserted), the loss-based pairs with pacing off (`linerate serve --pacing off`: the
//! drop-tail phase effect below), and the default pairs with 5 µs of per-frame jitter on both
//! directions (the seed draws the jitter; the median must still meet the target). The `drops`
//! columns are each flow's bottleneck drops per 10,000 of its frames over 20-30 s: with AIMD-like
//! flows, equal per-frame loss rates mean equal shares.
//!
//! Why pacing is the default: two unpaced CUBIC flows on this perfectly deterministic drop-tail
//! link share the overflow losses unevenly (Floyd and Jacobson, 1992): with ACK-clocked arrivals
//! the queue only overflows when a flow's window grows by a segment, so the drop goes to
//! whichever flow grows faster at that moment, not in proportion to the frames each sends (the
//! smaller flow loses 2.7 frames per 10,000 and the larger 0.35, 65/30 Mbit/s, Jain 0.85-0.88 at
//! every phase). Paced, the departures of both flows interleave and the loss rates even out.
//!
//! Run: `cargo test --release -p linerate-driver --test cc_fairness -- --nocapture`.

mod cc_support;

use std::fmt::Write as _;

use cc_support::*;
use linerate_driver::sim::{Direction, SimRun};
use linerate_stack::congestion::Algorithm;
use linerate_stack::tcp::SocketOptions;
use linerate_stack::time::{Duration, Instant};

const RATE_BPS: u64 = 100_000_000;
const RTT: Duration = Duration::from_millis(20);
const JAIN_TARGET: f64 = 0.9;
/// Runs per same-controller group (seeds `base..base + SEEDS`, start phases `i · PHASE_STEP`).
const SEEDS: u64 = 8;
/// How far apart the start phases of flow 2 are: eight across two 1 ms timer ticks (phases
/// closer than ~250 µs gave identical runs).
const PHASE_STEP: Duration = Duration::from_micros(250);
/// The "few µs" of jitter of the robustness rows: 1/24 of a frame time, never reorders.
const JITTER: Duration = Duration::from_micros(5);

#[derive(Debug, Clone, Copy)]
struct Case {
    first: Algorithm,
    second: Algorithm,
    seed: u64,
    /// Flow 2 starts this long after 1 s.
    phase: Duration,
    /// Socket option `pacing` of both flows (BBR paces anyway).
    paced: bool,
    /// Per-frame jitter on both link directions.
    jitter: Duration,
}

impl Case {
    /// The `i`-th run of a group.
    fn nth(first: Algorithm, second: Algorithm, base_seed: u64, i: u64) -> Self {
        Case {
            first,
            second,
            seed: base_seed + i,
            phase: Duration::from_nanos(PHASE_STEP.as_nanos() * i),
            paced: SocketOptions::default().pacing,
            jitter: Duration::ZERO,
        }
    }
    /// The scenario with the default options: held to the target.
    fn is_default(&self) -> bool {
        self.paced == SocketOptions::default().pacing && self.jitter == Duration::ZERO
    }
    fn variant(&self) -> String {
        let pacing = match self.paced == SocketOptions::default().pacing {
            true => "default",
            false => "unpaced",
        };
        match self.jitter.as_micros() {
            0 => pacing.to_owned(),
            us => format!("{pacing}+jit{us}us"),
        }
    }
    fn group(&self) -> String {
        format!("{}/{} {}", self.first, self.second, self.variant())
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
    let name = format!("cc_fairness_{}_{}_{}", case.first, case.second, case.variant());
    let run = SimRun::new(&name, case.seed);
    let buffer = 8 << 20;
    let start2 = Instant::from_millis(1_000) + case.phase;
    let flows = [
        FlowSpec { pacing: case.paced, ..FlowSpec::endless(case.first, 40_001, Instant::ZERO, buffer) },
        FlowSpec { pacing: case.paced, ..FlowSpec::endless(case.second, 40_002, start2, buffer) },
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

/// Every run of the test, group by group (a group is consecutive cases with one `group()`).
fn cases() -> Vec<Case> {
    use Algorithm::{Bbr, Cubic, NewReno};
    let group = |first, second, base, f: &dyn Fn(Case) -> Case| {
        (0..SEEDS).map(move |i| f(Case::nth(first, second, base, i))).collect::<Vec<_>>()
    };
    let same = |c: Case| c;
    let unpaced = |c: Case| Case { paced: false, ..c };
    let jittered = |c: Case| Case { jitter: JITTER, ..c };
    let mut cases = Vec::new();
    cases.extend(group(Cubic, Cubic, 7_001, &same));
    cases.extend(group(NewReno, NewReno, 7_101, &same));
    cases.extend(group(Bbr, Bbr, 7_201, &same));
    cases.push(Case::nth(Bbr, Cubic, 7_004, 0));
    cases.push(Case::nth(Cubic, Bbr, 7_005, 0));
    cases.extend(group(Cubic, Cubic, 7_001, &unpaced));
    cases.extend(group(NewReno, NewReno, 7_101, &unpaced));
    cases.extend(group(Cubic, Cubic, 7_301, &jittered));
    cases.extend(group(NewReno, NewReno, 7_401, &jittered));
    cases
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => 0.0,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

#[test]
fn two_flows_share_one_bottleneck() {
    let cases = cases();
    let results = run_parallel(&cases, share);
    let mut table = String::from(
        "# flow1    flow2    variant          seed  phase_us  flow1_mbps  flow2_mbps  jain  flow1_queue_ms  flow2_queue_ms  flow1_drops  flow2_drops\n",
    );
    let mut failures = Vec::new();
    for (case, s) in cases.iter().zip(&results) {
        writeln!(
            table,
            "{:<8} {:<8} {:<15} {:>5} {:>9} {:>11.2} {:>11.2} {:>5.3} {:>15.2} {:>15.2} {:>12.2} {:>12.2}",
            case.first.name(),
            case.second.name(),
            case.variant(),
            s.seed,
            case.phase.as_micros(),
            s.goodput_bps[0] / 1e6,
            s.goodput_bps[1] / 1e6,
            jain(&s.goodput_bps),
            s.queueing[0].as_secs_f64() * 1e3,
            s.queueing[1].as_secs_f64() * 1e3,
            s.drops_per_10k[0],
            s.drops_per_10k[1],
        )
        .unwrap();
        if s.goodput_bps.iter().any(|&g| g <= 0.0) {
            let what = format!("{} (seed {})", case.group(), s.seed);
            failures.push(format!("{what}: a flow got nothing: {:?} bit/s", s.goodput_bps));
        }
    }
    table.push_str("# group                          runs  jain_min  jain_median  held to\n");
    let mut start = 0;
    while start < cases.len() {
        let group = cases[start].group();
        let len = cases[start..].iter().take_while(|c| c.group() == group).count();
        let (members, shares) = (&cases[start..start + len], &results[start..start + len]);
        start += len;
        let first = &members[0];
        let jains: Vec<f64> = shares.iter().map(|s| jain(&s.goodput_bps)).collect();
        let (min, med) = (jains.iter().copied().fold(f64::INFINITY, f64::min), median(jains.clone()));
        // The target for every seed of the default runs; the median for jittered ones.
        let held = match (first.first == first.second, first.is_default(), first.paced) {
            (true, true, _) => "min",
            (true, false, true) => "median",
            _ => "-",
        };
        writeln!(table, "# {group:<30} {len:>4} {min:>9.3} {med:>12.3}  {held}").unwrap();
        match held {
            "min" if min < JAIN_TARGET => {
                let worst = shares[jains.iter().position(|&j| j == min).unwrap_or(0)].seed;
                failures.push(format!(
                    "{group}: Jain's index {min:.3} < {JAIN_TARGET} over 20-30 s at seed {worst}"
                ));
            }
            "median" if med < JAIN_TARGET => {
                failures.push(format!("{group}: median Jain's index {med:.3} < {JAIN_TARGET}"));
            }
            _ => {}
        }
    }
    println!("{table}");
    let snapshot = check_snapshot("cc_fairness.txt", &table);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(snapshot.is_none(), "{}", snapshot.unwrap_or_default());
}
