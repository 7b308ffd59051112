//! Goodput under random loss, per controller, pinned as a snapshot
//! (`tests/snapshots/cc_goodput.txt`; regenerate with `LINERATE_UPDATE_SNAPSHOTS=1`).
//!
//! One endless flow over a 100 Mbit/s bottleneck with a one-BDP drop-tail queue, RTT 50 ms and
//! 200 ms, Bernoulli loss 0 / 0.1 / 1 / 5 % on the data direction (ACKs are not lost). Goodput is
//! what the receiving application read during the steady part of the run (after a warm-up that
//! covers slow start), so the start-up does not dilute it. "Link" below means the payload capacity
//! of the link (1448 payload bytes per 1514-byte frame: 95.6 Mbit/s). Issue #4 asks:
//! - BBR keeps ≥ 90 % of link·(1−p) up to 1 % loss and ≥ 75 % at 5 %;
//! - CUBIC and NewReno stay within a factor 1.5 of the Mathis bound `MSS/RTT · 1.22/√p`
//!   (capped by the link; at 0 % loss the bound is the link itself and only the lower side counts).
//!
//! Every cell also checks the engine's estimates, sampled once a second: BBR's bandwidth estimate
//! never above 1.1 × the link, no pacing rate above 3 × the link.
//!
//! Run: `cargo test --release -p linerate-driver --test cc_goodput -- --nocapture` (the table is
//! printed). Cases run on two threads; every cell is a pure function of its seed, printed in the
//! table and reproducible with `LINERATE_SEED` (which then applies to every cell). Retransmissions,
//! timeouts and drops in the table are counted over the measured window only.

mod cc_support;

use std::fmt::Write as _;

use cc_support::*;
use linerate_driver::sim::{Direction, LossModel, SimRun};
use linerate_stack::congestion::Algorithm;
use linerate_stack::time::{Duration, Instant};

const RATE_BPS: u64 = 100_000_000;
/// Drop-tail queue of the bottleneck, in bandwidth-delay products.
const QUEUE_BDP: f64 = 1.0;
const LOSSES: [f64; 4] = [0.0, 0.001, 0.01, 0.05];
const RTTS_MS: [u64; 2] = [50, 200];
/// "Within a factor 1.5 of Mathis", both ways.
const MATHIS_FACTOR: f64 = 1.5;
/// A delivery-rate sample cannot honestly exceed the bottleneck; 10 % covers ACK-clock noise.
const MAX_BW_OVER_LINK: f64 = 1.1;
/// BBR's largest pacing gain is Startup's 2.89; anything above 3 × the link is a runaway.
const MAX_PACING_OVER_LINK: f64 = 3.0;

#[derive(Debug, Clone, Copy)]
struct Case {
    algorithm: Algorithm,
    rtt: Duration,
    loss: f64,
    seed: u64,
}

#[derive(Debug, Clone, Copy)]
struct Outcome {
    goodput_bps: f64,
    retrans: u64,
    timeouts: u64,
    queue_drops: u64,
    loss_drops: u64,
    /// Largest congestion window, pacing rate (bit/s) and BBR bandwidth estimate (bit/s) seen at
    /// the once-a-second samples of the measured window.
    max_cwnd: u32,
    max_pacing_bps: f64,
    max_bw_bps: f64,
    seed: u64,
}

/// Warm-up and measured window: 5 s + 15 s at 50 ms, 10 s + 20 s at 200 ms (≥ 100 RTTs measured).
fn window(rtt: Duration) -> (Instant, Instant) {
    if rtt <= Duration::from_millis(50) {
        (Instant::from_millis(5_000), Instant::from_millis(20_000))
    } else {
        (Instant::from_millis(10_000), Instant::from_millis(30_000))
    }
}

fn run_case(case: &Case) -> Outcome {
    let name = format!("cc_goodput_{}_{}ms_{}", case.algorithm, case.rtt.as_millis(), case.loss);
    let run = SimRun::new(&name, case.seed);
    let mut fwd = bottleneck(RATE_BPS, case.rtt, QUEUE_BDP);
    if case.loss > 0.0 {
        fwd = fwd.loss(LossModel::Bernoulli { p: case.loss });
    }
    let buffer = 16 << 20;
    let flow = FlowSpec::endless(case.algorithm, 40_000, Instant::ZERO, buffer);
    let mut sc = Scenario::new(&run, fwd, ack_path(case.rtt), &[flow]);
    let (from, to) = window(case.rtt);
    let a = sc.sample(&run, from);
    let (stats_a, link_a) = (sc.pair.a.engine.stats().clone(), sc.pair.stats(Direction::AToB));
    let (mut max_cwnd, mut max_pacing_bps, mut max_bw_bps) = (0, 0.0f64, 0.0f64);
    let mut at = from;
    let b = loop {
        at = (at + Duration::from_secs(1)).min(to);
        let b = sc.sample(&run, at);
        let conn = sc.pair.a.connection(0).expect("connected");
        let info = sc.pair.a.engine.info(at, conn).expect("the flow is open");
        max_cwnd = max_cwnd.max(info.cwnd);
        max_pacing_bps = max_pacing_bps.max(info.pacing_rate.unwrap_or(0) as f64 * 8.0);
        max_bw_bps = max_bw_bps.max(info.bbr_bw.unwrap_or(0) as f64 * 8.0);
        if at == to {
            break b;
        }
    };
    let (stats_b, link_b) = (sc.pair.a.engine.stats(), sc.pair.stats(Direction::AToB));
    Outcome {
        goodput_bps: goodput_bps(&a, &b, 0),
        retrans: stats_b.retrans_segs - stats_a.retrans_segs,
        timeouts: stats_b.timeouts - stats_a.timeouts,
        queue_drops: link_b.dropped_queue_full - link_a.dropped_queue_full,
        loss_drops: link_b.dropped_loss - link_a.dropped_loss,
        max_cwnd,
        max_pacing_bps,
        max_bw_bps,
        seed: run.seed(),
    }
}

/// The requirement for one cell: `Err(description)` when missed.
fn check(case: &Case, o: &Outcome) -> Result<String, String> {
    let link = payload_capacity_bps(RATE_BPS);
    let got = o.goodput_bps;
    let (ok, want) = if case.algorithm == Algorithm::Bbr {
        let share = if case.loss <= 0.01 { 0.90 } else { 0.75 };
        let floor = share * link * (1.0 - case.loss);
        (got >= floor, format!("≥ {:.1} Mbit/s ({:.0} % of link·(1−p))", floor / 1e6, share * 100.0))
    } else {
        let bound = mathis_bps(case.rtt, case.loss, link);
        let (lo, hi) =
            (bound / MATHIS_FACTOR, if case.loss > 0.0 { bound * MATHIS_FACTOR } else { f64::MAX });
        let hi_text = if hi == f64::MAX { "link".to_owned() } else { format!("{:.2}", hi / 1e6) };
        (
            got >= lo && got <= hi,
            format!("in [{:.2}, {hi_text}] Mbit/s (Mathis {:.2} ÷/× 1.5)", lo / 1e6, bound / 1e6),
        )
    };
    let line = format!(
        "{} rtt {} ms loss {} %: {:.2} Mbit/s, want {want} (seed {})",
        case.algorithm,
        case.rtt.as_millis(),
        case.loss * 100.0,
        got / 1e6,
        o.seed
    );
    if ok {
        Ok(line)
    } else {
        Err(line)
    }
}

/// Sanity of the engine's estimates, whatever the goodput: a bandwidth estimate above the
/// bottleneck or a pacing rate far beyond it means the delivery-rate sampling is wrong.
fn check_bounds(case: &Case, o: &Outcome) -> Result<(), String> {
    let link = payload_capacity_bps(RATE_BPS);
    let what = format!(
        "{} rtt {} ms loss {} % (seed {})",
        case.algorithm,
        case.rtt.as_millis(),
        case.loss * 100.0,
        o.seed
    );
    if o.max_bw_bps > MAX_BW_OVER_LINK * link {
        return Err(format!(
            "{what}: BBR bandwidth estimate {:.1} Mbit/s above the {:.1} Mbit/s link",
            o.max_bw_bps / 1e6,
            link / 1e6
        ));
    }
    if o.max_pacing_bps > MAX_PACING_OVER_LINK * RATE_BPS as f64 {
        return Err(format!(
            "{what}: pacing rate {:.1} Mbit/s, more than {MAX_PACING_OVER_LINK} x the link",
            o.max_pacing_bps / 1e6
        ));
    }
    Ok(())
}

/// Cells that miss issue #4's target today (the issue stays open for them), as (controller,
/// RTT in ms, loss in %). They are still pinned exactly by the snapshot, so any change shows; a
/// cell listed here that starts meeting its target fails the test until it is removed, so the
/// list stays true.
/// - CUBIC at 200 ms / 0.1 %: *above* the band, as its specification predicts. CUBIC's
///   response function beats Reno's once the BDP is large (RFC 9438 §5.1): the closed form for
///   a deterministic loss rate gives 1.45 × Mathis here (`rfc_vs_mathis`), and the same
///   algorithm under this cell's Bernoulli loss averages 1.71 × in the round-by-round model
///   (`model_vs_mathis`; random loss spreads the loss intervals, and CUBIC's window grows
///   faster than linearly in a long one). The engine measures 1.59 × here and 1.65 × averaged
///   over six seeds and 120 s each (docs/PERFORMANCE.md), so 1.5 × Mathis is below what a
///   correct RFC 9438 sender does at this BDP.
///
/// BBR meets every cell since its loss response separates random from congestive loss (see
/// `stack/src/congestion/bbr/loss_filter.rs`); with `bbr_tolerate_random_loss = false` (the
/// draft's response) it collapses at 1–5 % as the draft predicts.
const KNOWN_MISSES: [(&str, u64, f64); 1] = [("cubic", 200, 0.1)];

fn known_miss(case: &Case) -> bool {
    KNOWN_MISSES.iter().any(|&(name, rtt_ms, loss_pct)| {
        name == case.algorithm.name()
            && rtt_ms == case.rtt.as_millis()
            && (loss_pct - case.loss * 100.0).abs() < 1e-9
    })
}

/// What the controller's own specification predicts for the cell, as a ratio to the Mathis
/// bound: the closed form (NewReno: Mathis itself; CUBIC: RFC 9438 §5.1, deterministic loss)
/// and the round-by-round model under this cell's Bernoulli loss ([`response_model_bps`]).
/// BBR has neither ("-").
fn predicted_vs_mathis(case: &Case) -> (String, String) {
    let link = payload_capacity_bps(RATE_BPS);
    let mathis = mathis_bps(case.rtt, case.loss, link);
    let closed_form = match case.algorithm {
        Algorithm::NewReno => mathis,
        Algorithm::Cubic => rfc9438_bps(case.rtt, case.loss, link),
        Algorithm::Bbr => return ("-".to_owned(), "-".to_owned()),
    };
    let model = response_model_bps(case.algorithm, case.rtt, case.loss, RATE_BPS, QUEUE_BDP, case.seed)
        .map_or_else(|| "-".to_owned(), |bps| format!("{:.2}", bps / mathis));
    (format!("{:.2}", closed_form / mathis), model)
}

#[test]
fn goodput_under_loss_per_controller() {
    let mut cases = Vec::new();
    let mut seed = 4_000;
    for &rtt_ms in &RTTS_MS {
        for &loss in &LOSSES {
            for algorithm in CONTROLLERS {
                seed += 1;
                cases.push(Case { algorithm, rtt: Duration::from_millis(rtt_ms), loss, seed });
            }
        }
    }
    let outcomes = run_parallel(&cases, run_case);

    let link = payload_capacity_bps(RATE_BPS);
    let mut table = String::from(
        "# controller rtt_ms loss% seed  goodput_mbps  mathis_mbps  vs_mathis  rfc_vs_mathis  model_vs_mathis  vs_link(1-p)  retrans  timeouts  queue_drops  loss_drops  max_cwnd_kb  max_pacing_mbps  max_bw_mbps\n",
    );
    let mut failures = Vec::new();
    for (case, o) in cases.iter().zip(&outcomes) {
        let mathis = mathis_bps(case.rtt, case.loss, link);
        let (rfc, model) = predicted_vs_mathis(case);
        writeln!(
            table,
            "{:<12} {:>6} {:>5.1} {:>5} {:>13.2} {:>12.2} {:>10.2} {:>14} {:>16} {:>13.2} {:>8} {:>9} {:>12} {:>11} {:>12} {:>16.2} {:>12.2}",
            case.algorithm.name(),
            case.rtt.as_millis(),
            case.loss * 100.0,
            o.seed,
            o.goodput_bps / 1e6,
            mathis / 1e6,
            o.goodput_bps / mathis,
            rfc,
            model,
            o.goodput_bps / (link * (1.0 - case.loss)),
            o.retrans,
            o.timeouts,
            o.queue_drops,
            o.loss_drops,
            o.max_cwnd / 1000,
            o.max_pacing_bps / 1e6,
            o.max_bw_bps / 1e6,
        )
        .unwrap();
        if let Err(line) = check_bounds(case, o) {
            eprintln!("FAIL {line}");
            failures.push(line);
        }
        match (check(case, o), known_miss(case)) {
            (Ok(line), false) => eprintln!("ok   {line}"),
            (Err(line), true) => eprintln!("MISS {line} (known, see KNOWN_MISSES)"),
            (Ok(line), true) => {
                let line = format!("{line}: now meets its target, remove it from KNOWN_MISSES");
                eprintln!("FAIL {line}");
                failures.push(line);
            }
            (Err(line), false) => {
                eprintln!("FAIL {line}");
                failures.push(line);
            }
        }
    }
    println!("{table}");
    let snapshot = check_snapshot("cc_goodput.txt", &table);
    assert!(
        failures.is_empty(),
        "{} cell(s) miss issue #4's goodput targets:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(snapshot.is_none(), "{}", snapshot.unwrap_or_default());
}
