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
//! - beyond the issue, every loss-based cell under loss is held to [`SPEC_BAND`] of what its own
//!   specification predicts under the cell's loss (`model_vs_mathis`: a round-by-round model of
//!   the RFC algorithm, no engine code), so a controller that follows the Mathis band only by
//!   luck, or misses it only by design, shows which.
//!
//! A second table (`tests/snapshots/cc_goodput_periodic.txt`) repeats the loss-based cells under
//! periodic loss, the process the Mathis constant and RFC 9438 §5.1 are derived for, and holds
//! them to their closed forms (see its test).
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
/// A loss-based cell against its own specification (see [`check_spec`]): the measured cells sit
/// at 0.82–0.99 of it (0.59–0.72 in the ungated 5 % periodic cells); recovery rounds, the 40 ms delayed ACK at small windows and the RACK
/// reordering window only ever cost goodput, so the band is asymmetric. A controller whose
/// growth or reduction is off (CUBIC's C doubled: ×1.19; Reno's β at 0.7: ×2.4) leaves it.
const SPEC_BAND: (f64, f64) = (0.75, 1.05);
/// A delivery-rate sample cannot honestly exceed the bottleneck; 10 % covers ACK-clock noise.
const MAX_BW_OVER_LINK: f64 = 1.1;
/// BBR's largest pacing gain is Startup's 2.89; anything above 3 × the link is a runaway.
const MAX_PACING_OVER_LINK: f64 = 3.0;

/// How the data direction loses frames at the cell's rate `p`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Process {
    /// Each frame independently with probability `p` (the main table).
    Bernoulli,
    /// Exactly one frame in every `1/p`, at a seed-drawn phase: the process the Mathis bound
    /// and RFC 9438 §5.1's response function are derived for (the second table).
    Periodic,
}

#[derive(Debug, Clone, Copy)]
struct Case {
    algorithm: Algorithm,
    rtt: Duration,
    loss: f64,
    process: Process,
    seed: u64,
}

impl Case {
    fn loss_model(&self) -> LossModel {
        match self.process {
            Process::Bernoulli => LossModel::Bernoulli { p: self.loss },
            Process::Periodic => {
                let every = (1.0 / self.loss).round() as u64;
                LossModel::Periodic { every, first: self.seed % every }
            }
        }
    }
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

/// Warm-up and measured window. BBR and the lossless cells: 5 s + 15 s at 50 ms, 10 s + 20 s
/// at 200 ms (≥ 100 RTTs measured). A loss-based controller under loss sends a few Mbit/s, so
/// 20 s would hold as few as 6 loss events at 200 ms / 0.1 %; those cells measure 5 s + 60 s
/// at 50 ms and 20 s + 240 s at 200 ms (≥ 30 loss events each, a few wall-clock seconds).
fn window(case: &Case) -> (Instant, Instant) {
    let long = case.loss > 0.0 && case.algorithm != Algorithm::Bbr;
    let (warm_up_s, measured_s) = match (case.rtt <= Duration::from_millis(50), long) {
        (true, false) => (5, 15),
        (false, false) => (10, 20),
        (true, true) => (5, 60),
        (false, true) => (20, 240),
    };
    (Instant::from_millis(warm_up_s * 1_000), Instant::from_millis((warm_up_s + measured_s) * 1_000))
}

fn run_case(case: &Case) -> Outcome {
    let process = if case.process == Process::Periodic { "_periodic" } else { "" };
    let name = format!("cc_goodput_{}_{}ms_{}{process}", case.algorithm, case.rtt.as_millis(), case.loss);
    let run = SimRun::new(&name, case.seed);
    let mut fwd = bottleneck(RATE_BPS, case.rtt, QUEUE_BDP);
    if case.loss > 0.0 {
        fwd = fwd.loss(case.loss_model());
    }
    let buffer = 16 << 20;
    let flow = FlowSpec::endless(case.algorithm, 40_000, Instant::ZERO, buffer);
    let mut sc = Scenario::new(&run, fwd, ack_path(case.rtt), &[flow]);
    let (from, to) = window(case);
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
///   faster than linearly in a long one). The engine measures 1.55 × here over 240 s (73 loss
///   events), 0.91 × that model, and 1.65 × averaged over six seeds of 120 s each
///   (docs/PERFORMANCE.md); under periodic loss it is 1.34 × Mathis, 0.92 × the closed form
///   (`cc_goodput_periodic.txt`). So 1.5 × Mathis is below what a correct RFC 9438 sender does
///   at this BDP under random loss.
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

/// What the controller's own specification predicts for the cell, in bit/s: the closed form
/// for a deterministic loss rate ([`closed_form_bps`]) and the round-by-round model under this
/// cell's Bernoulli loss ([`response_model_bps`]). BBR has neither.
fn predicted_bps(case: &Case) -> Option<(f64, f64)> {
    let model = response_model_bps(case.algorithm, case.rtt, case.loss, RATE_BPS, QUEUE_BDP, case.seed)?;
    Some((closed_form_bps(case), model))
}

/// A loss-based cell against its own specification's prediction `spec_bps` for the cell's loss
/// process (the model under Bernoulli loss, the closed form under periodic loss): the check
/// that the controller implements its response function, beside the Mathis band. The
/// band is `SPEC_BAND` (lossless cells are not checked: the link caps every prediction).
fn check_spec(case: &Case, o: &Outcome, spec_bps: f64, what: &str) -> Result<String, String> {
    let ratio = o.goodput_bps / spec_bps;
    let line = format!(
        "{} rtt {} ms loss {} %: {:.2} × {what} ({:.2} Mbit/s), want in [{}, {}] (seed {})",
        case.algorithm,
        case.rtt.as_millis(),
        case.loss * 100.0,
        ratio,
        spec_bps / 1e6,
        SPEC_BAND.0,
        SPEC_BAND.1,
        o.seed
    );
    if (SPEC_BAND.0..=SPEC_BAND.1).contains(&ratio) {
        Ok(line)
    } else {
        Err(line)
    }
}

#[test]
fn goodput_under_loss_per_controller() {
    let mut cases = Vec::new();
    let mut seed = 4_000;
    for &rtt_ms in &RTTS_MS {
        for &loss in &LOSSES {
            for algorithm in CONTROLLERS {
                seed += 1;
                cases.push(Case {
                    algorithm,
                    rtt: Duration::from_millis(rtt_ms),
                    loss,
                    process: Process::Bernoulli,
                    seed,
                });
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
        let predicted = predicted_bps(case);
        let vs_mathis =
            |bps: Option<f64>| bps.map_or_else(|| "-".to_owned(), |b| format!("{:.2}", b / mathis));
        let (rfc, model) = (vs_mathis(predicted.map(|p| p.0)), vs_mathis(predicted.map(|p| p.1)));
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
        if let Some((_, model)) = predicted.filter(|_| case.loss > 0.0) {
            match check_spec(case, o, model, "its specification under Bernoulli loss") {
                Ok(line) => eprintln!("ok   {line}"),
                Err(line) => {
                    eprintln!("FAIL {line}");
                    failures.push(line);
                }
            }
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

/// The closed form the controller's specification gives for a deterministic loss rate: the
/// Mathis bound itself for NewReno, RFC 9438 §5.1 for CUBIC.
fn closed_form_bps(case: &Case) -> f64 {
    let link = payload_capacity_bps(RATE_BPS);
    match case.algorithm {
        Algorithm::Cubic => rfc9438_bps(case.rtt, case.loss, link),
        _ => mathis_bps(case.rtt, case.loss, link),
    }
}

/// Highest loss rate at which the periodic table holds a cell to its closed form.
const PERIODIC_SPEC_MAX_LOSS: f64 = 0.01;

/// The loss-based controllers under periodic loss, the process both closed forms are derived
/// for (one loss every `1/p` segments: Mathis et al. 1997 §2 for `1.22/√p`, RFC 9438 §5.1 for
/// CUBIC): does each controller follow its own specification's response function, and where
/// does that put it against Mathis? Pinned in `tests/snapshots/cc_goodput_periodic.txt`.
/// Gated: at 0.1 % and 1 % every cell within [`SPEC_BAND`] of its closed form (NewReno: Mathis;
/// CUBIC: RFC 9438 §5.1). Reported: the ratio to Mathis (issue #4's band is gated on the
/// Bernoulli table), and the 5 % cells, where the window is ~5 segments and what the closed
/// forms leave out — the round spent in recovery, the RACK reordering window before a loss is
/// declared, the receiver's 40 ms delayed ACK of an odd last segment, tail losses that wait for
/// a probe — costs a third of the goodput.
#[test]
fn loss_based_controllers_follow_their_response_functions_under_periodic_loss() {
    let mut cases = Vec::new();
    let mut seed = 4_100;
    for &rtt_ms in &RTTS_MS {
        for &loss in LOSSES.iter().filter(|&&p| p > 0.0) {
            for algorithm in [Algorithm::NewReno, Algorithm::Cubic] {
                seed += 1;
                let rtt = Duration::from_millis(rtt_ms);
                cases.push(Case { algorithm, rtt, loss, process: Process::Periodic, seed });
            }
        }
    }
    let outcomes = run_parallel(&cases, run_case);
    let link = payload_capacity_bps(RATE_BPS);
    let mut table = String::from(
        "# controller rtt_ms loss% seed  goodput_mbps  mathis_mbps  vs_mathis  spec_vs_mathis  vs_spec  retrans  timeouts  loss_drops  max_cwnd_kb\n",
    );
    let mut failures = Vec::new();
    for (case, o) in cases.iter().zip(&outcomes) {
        let mathis = mathis_bps(case.rtt, case.loss, link);
        let spec = closed_form_bps(case);
        writeln!(
            table,
            "{:<12} {:>6} {:>5.1} {:>5} {:>13.2} {:>12.2} {:>10.2} {:>15.2} {:>8.2} {:>8} {:>9} {:>11} {:>12}",
            case.algorithm.name(),
            case.rtt.as_millis(),
            case.loss * 100.0,
            o.seed,
            o.goodput_bps / 1e6,
            mathis / 1e6,
            o.goodput_bps / mathis,
            spec / mathis,
            o.goodput_bps / spec,
            o.retrans,
            o.timeouts,
            o.loss_drops,
            o.max_cwnd / 1000,
        )
        .unwrap();
        if let Err(line) = check_bounds(case, o) {
            eprintln!("FAIL {line} (periodic loss)");
            failures.push(line);
        }
        // The closed forms leave out the recovery round and the delayed ACK; at 5 % the window
        // is ~5 segments and they dominate (see the test's doc), so that column only reports.
        let gated = case.loss <= PERIODIC_SPEC_MAX_LOSS;
        match (check_spec(case, o, spec, "its specification's closed form"), gated) {
            (Ok(line), _) => eprintln!("ok   {line} (periodic loss)"),
            (Err(line), false) => eprintln!("info {line} (periodic loss, not gated)"),
            (Err(line), true) => {
                eprintln!("FAIL {line} (periodic loss)");
                failures.push(line);
            }
        }
        match check(case, o) {
            Ok(line) => eprintln!("ok   {line} (periodic loss)"),
            Err(line) => {
                eprintln!("info {line} (periodic loss: the Mathis band is gated on the Bernoulli table)")
            }
        }
    }
    println!("{table}");
    let snapshot = check_snapshot("cc_goodput_periodic.txt", &table);
    assert!(
        failures.is_empty(),
        "{} cell(s) leave their specification's response under periodic loss:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(snapshot.is_none(), "{}", snapshot.unwrap_or_default());
}
