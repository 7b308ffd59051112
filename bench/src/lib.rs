//! linerate-bench: criterion micro-benchmarks live in `benches/`; this library is the
//! end-to-end harness behind the `linerate-bench` binary (issue 9): linerate against the Linux
//! kernel, side by side, in one run.
//!
//! The parts, by job: [`topology`] places servers and clients (netns lab or real NIC plus a
//! peer), [`servers`] starts and meters the servers under test, [`load`] is every client-side
//! job, [`raw`], [`http_scenarios`] and [`engine`] are the scenarios ([`shards`], 1 vs 2 server
//! shards, runs on its own as `linerate-bench shards`; [`shards_mem`] is its `--in-memory` mode), [`recorder`] and
//! [`results`] hold the numbers, [`report`] writes JSON, Markdown and SVG. [`run`] ties them.

pub mod config;
pub mod cpu_window;
pub mod engine;
pub mod http_scenarios;
pub mod load;
pub mod mem_wire;
pub mod raw;
pub mod recorder;
pub mod report;
pub mod results;
pub mod servers;
pub mod shards;
pub mod shards_mem;
pub mod single_flow;
pub mod sys;
pub mod topology;

use std::path::PathBuf;

use config::{BenchConfig, BULK, BYPASS_CLIENT, ENGINE, KEEPALIVE, RAW, SHORT};
use recorder::{row, Recorder, RowKey};
use results::Better::{Higher, Lower};
use results::{Pinning, Report, RunInfo};
use servers::{LinerateCaps, ServerEnv, ServerKind};
use topology::Topology;

/// Runs every selected scenario and returns the finished report (not yet written).
pub fn run(cfg: &BenchConfig, topology: &Topology, extra_notes: &[String]) -> anyhow::Result<Report> {
    let started = sys::utc_now();
    let caps = LinerateCaps::probe(&cfg.linerate_bin);
    if let Err(reason) = &caps.serve {
        println!("linerate server: {reason}; its side is recorded as not run");
    }
    let pinning = vec![
        Pinning {
            role: "servers (linerate, nginx worker, kernel_server); AF_XDP reflector; single-flow sender (engine, iperf3 server)".into(),
            cores: cfg.server_core.to_string(),
        },
        Pinning {
            role: "load generators (curl, kernel and bypass generators, wrk); AF_XDP generator; single-flow receiver (engine, iperf3 client)".into(),
            cores: cfg.client_core.to_string(),
        },
    ];
    for p in &pinning {
        println!("pinning: {} -> core {}", p.role, p.cores);
    }
    let mut rec = Recorder::default();
    let mut notes: Vec<String> = extra_notes.to_vec();
    notes.push(
        "server CPU is the on-CPU time of the server's threads and its children's (schedstat); kernel work done \
         for it in softirq on other tasks' time is not in it; server side CPU adds the server end's NAPI thread, \
         which does the server's receive path in the two-machine lab placement"
            .into(),
    );
    if cfg.wants(RAW) {
        // Scenario 1's threads busy-poll: it keeps veth's own placement (see Topology::busy_polling).
        if let Err(e) = topology.busy_polling(true) {
            notes.push(format!("scenario 1: {e:#}"));
        }
        raw_scenario(cfg, topology, &mut rec, &mut notes);
        topology.busy_polling(false)?;
        if cfg.two_machines {
            notes.push("scenario 1 ran with the one-machine placement (busy-polling threads)".into());
        }
    }
    if [BULK, SHORT, KEEPALIVE, BYPASS_CLIENT].iter().any(|&s| cfg.wants(s)) {
        http_scenarios(cfg, topology, &caps, &mut rec, &mut notes)?;
    }
    if cfg.wants(ENGINE) {
        engine_scenario(cfg, &mut rec);
    }
    let mut report = Report {
        run: RunInfo {
            started,
            host: sys::hostname(),
            kernel: sys::kernel_release(),
            cpu_model: sys::cpu_model(),
            cores: sys::core_count(),
            git_commit: sys::git_commit(&cfg.workspace),
            topology: topology.describe(),
            quick: cfg.quick,
            repetitions: cfg.repetitions,
            pinning,
            notes,
        },
        results: rec.finish(),
    };
    report.finish();
    Ok(report)
}

fn raw_scenario(cfg: &BenchConfig, topology: &Topology, rec: &mut Recorder, notes: &mut Vec<String>) {
    const SETUP: &str = "linerate AF_XDP";
    let sizes = [64usize, 1514];
    let keys: Vec<_> = sizes
        .iter()
        .flat_map(|s| {
            let case = format!("{s} B frames");
            [
                row("1 raw ceiling", &case, "reflected", "Mpps", Higher),
                row("1 raw ceiling", &case, "reflected", "Gbit/s", Higher),
            ]
        })
        .collect();
    let flow = FlowRows::new();
    let Topology::Lab(lab) = topology else {
        keys.iter().for_each(|k| rec.not_run(k, SETUP, "the raw ceiling runs in the lab only"));
        flow.not_run(rec, "the single-flow comparison runs in the lab only");
        return;
    };
    let cores = (cfg.client_core, cfg.server_core);
    let mut shares = Vec::new();
    for rep in 1..=cfg.repetitions {
        // The reflector and the engine alternate which goes first (ABBA), and the reflector's
        // 1514 B sample is always next to the engine's: a drift within the run (a neighbour
        // starting, the host warming up) then biases neither side of the ratio.
        let engine_first = rep % 2 == 0;
        let mut engine_mpps = None;
        if engine_first {
            engine_mpps = flow.measure_engine(cfg, topology, lab, rec, notes);
        }
        println!("  rep {rep}/{}: raw AF_XDP reflector", cfg.repetitions);
        let order: Vec<usize> = if engine_first { vec![1, 0] } else { vec![0, 1] };
        let ordered: Vec<usize> = order.iter().map(|&i| sizes[i]).collect();
        let mut reflected_1514 = None;
        match raw::measure(lab, &ordered, cfg.raw_secs, cores) {
            Ok(samples) => {
                for s in &samples {
                    println!(
                        "    {} B: {:.3} Mpps, {:.2} Gbit/s ({} lost)",
                        s.frame_len, s.mpps, s.gbit_per_sec, s.lost
                    );
                    let i = sizes.iter().position(|&l| l == s.frame_len).unwrap_or(0);
                    rec.sample(&keys[2 * i], SETUP, s.mpps);
                    rec.sample(&keys[2 * i + 1], SETUP, s.gbit_per_sec);
                    if s.frame_len == 1514 {
                        reflected_1514 = Some((s.mpps, s.slowest_thread_share));
                    }
                }
            }
            Err(e) => {
                let reason = format!("{e:#}");
                println!("    not run: {reason}");
                notes.push(format!("raw ceiling rep {rep}: {reason}"));
                keys.iter().for_each(|k| rec.not_run(k, SETUP, &reason));
            }
        }
        if !engine_first {
            engine_mpps = flow.measure_engine(cfg, topology, lab, rec, notes);
        }
        match (engine_mpps, reflected_1514) {
            (Some((e, e_cpu)), Some((r, r_cpu))) if r > 0.0 => {
                let share = 100.0 * e / r;
                let first = if engine_first { "engine" } else { "reflector" };
                // Per CPU-second of the slower thread of each pair: what the ratio would be if
                // both pairs had got the same share of their cores (a cross-check under load).
                let per_cpu = match (e_cpu, r_cpu) {
                    (Some(ec), Some(rc)) => format!(", {:.1} % per CPU-second", share * rc / ec),
                    _ => String::new(),
                };
                println!(
                    "    pair {rep} ({first} first): engine / reflector = {e:.3} / {r:.3} Mpps = {share:.1} %{per_cpu}"
                );
                rec.sample(&flow.share, FlowRows::ENGINE, share);
                let slowest = e_cpu.zip(r_cpu).map(|(ec, rc)| ec.min(rc));
                shares.push(PairShare { share, slowest_thread: slowest });
            }
            (Some(_), _) => {
                rec.not_run(&flow.share, FlowRows::ENGINE, "no reflector sample in this repetition")
            }
            _ => {}
        }
        flow.measure_kernel(cfg, topology, lab, rec, notes);
    }
    if let Some(note) = share_spread(&shares) {
        println!("  {note}");
        notes.push(note);
    }
}

/// One scenario-1 pair: engine / reflector in percent, and the smallest share of its window
/// any of the pair's four threads ran (`None` when it could not be read).
#[derive(Debug, Clone, Copy, PartialEq)]
struct PairShare {
    share: f64,
    slowest_thread: Option<f64>,
}

/// A pair whose four threads each ran at least this share of their windows measured the
/// paths, not the scheduler.
const UNDISTURBED: f64 = 0.9;

/// The per-pair ratios of scenario 1 with their spread, and the same for the undisturbed pairs
/// only: the median alone hides whether the target is met in every pair or only on average,
/// and a pair whose threads waited for their cores says nothing about the target.
fn share_spread(pairs: &[PairShare]) -> Option<String> {
    let summary = |shares: &[f64]| -> Option<String> {
        let median = results::median(shares)?;
        let (lo, hi) =
            shares.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &s| (lo.min(s), hi.max(s)));
        let met = shares.iter().filter(|&&s| s >= 90.0).count();
        Some(format!("median {median:.1} %, range {lo:.1}–{hi:.1} %, ≥ 90 % in {met} of {}", shares.len()))
    };
    let all: Vec<f64> = pairs.iter().map(|p| p.share).collect();
    let list: Vec<String> = all.iter().map(|s| format!("{s:.1}")).collect();
    let undisturbed: Vec<f64> = pairs
        .iter()
        .filter(|p| p.slowest_thread.is_some_and(|t| t >= UNDISTURBED))
        .map(|p| p.share)
        .collect();
    let clean = match summary(&undisturbed) {
        Some(s) => format!("pairs whose threads all ran ≥ 90 % of their windows: {s}"),
        None => {
            let ran: Vec<f64> = pairs.iter().filter_map(|p| p.slowest_thread).map(|t| 100.0 * t).collect();
            let (lo, hi) = ran.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &t| (lo.min(t), hi.max(t)));
            if ran.is_empty() {
                "no pair's CPU share could be read".to_owned()
            } else {
                format!(
                    "no pair ran undisturbed (slowest thread ran {lo:.0}–{hi:.0} % of its window): these ratios measure the scheduler, not the target"
                )
            }
        }
    };
    Some(format!(
        "scenario 1 engine / reflector per pair, in repetition order: {} %; {}; {clean}",
        list.join(", "),
        summary(&all)?
    ))
}

/// The rows of the single-flow comparison (engine vs reflector vs kernel TCP, same link).
struct FlowRows {
    mpps: RowKey,
    wire: RowKey,
    share: RowKey,
    goodput: RowKey,
}

impl FlowRows {
    const ENGINE: &'static str = "linerate engine";
    const KERNEL: &'static str = "kernel (iperf3)";

    fn new() -> FlowRows {
        let case = "1514 B frames";
        FlowRows {
            mpps: row("1 raw ceiling", case, "engine single flow", "Mpps", Higher),
            wire: row("1 raw ceiling", case, "engine single flow", "Gbit/s", Higher),
            share: row("1 raw ceiling", case, "engine / reflector", "%", Higher),
            goodput: row("1 single flow", "1 flow, MTU 1500", "goodput", "Gbit/s", Higher),
        }
    }

    fn not_run(&self, rec: &mut Recorder, reason: &str) {
        self.engine_not_run(rec, reason);
        rec.not_run(&self.goodput, Self::KERNEL, reason);
    }

    fn engine_not_run(&self, rec: &mut Recorder, reason: &str) {
        for k in [&self.mpps, &self.wire, &self.share, &self.goodput] {
            rec.not_run(k, Self::ENGINE, reason);
        }
    }

    /// The engine → engine flow; returns its data frame rate (Mpps) when it ran.
    fn measure_engine(
        &self,
        cfg: &BenchConfig,
        topology: &Topology,
        lab: &linerate_driver::lab::Lab,
        rec: &mut Recorder,
        notes: &mut Vec<String>,
    ) -> Option<(f64, Option<f64>)> {
        let cores = (cfg.client_core, cfg.server_core);
        let secs = cfg.raw_secs.max(1.0);
        // Our receiver takes over the kernel namespace's address while the engine runs.
        let engine =
            topology.kernel_owns_client_ip(false).and_then(|()| single_flow::engine(lab, secs, cores));
        let restored = topology.kernel_owns_client_ip(true);
        match engine.and_then(|s| restored.map(|()| s)) {
            Ok(s) => {
                let mpps = s.mpps.unwrap_or(0.0);
                println!(
                    "    engine single flow: {:.2} Gbit/s goodput, {mpps:.3} Mpps, {} retransmitted",
                    s.goodput_gbit, s.retransmits
                );
                rec.sample(&self.mpps, Self::ENGINE, mpps);
                rec.sample(&self.wire, Self::ENGINE, s.wire_gbit.unwrap_or(0.0));
                rec.sample(&self.goodput, Self::ENGINE, s.goodput_gbit);
                Some((mpps, s.slowest_thread_share))
            }
            Err(e) => {
                let reason = format!("{e:#}");
                println!("    engine single flow not run: {reason}");
                notes.push(format!("engine single flow: {reason}"));
                self.engine_not_run(rec, &reason);
                None
            }
        }
    }

    /// The kernel's own TCP (iperf3) on the same link.
    fn measure_kernel(
        &self,
        cfg: &BenchConfig,
        topology: &Topology,
        lab: &linerate_driver::lab::Lab,
        rec: &mut Recorder,
        notes: &mut Vec<String>,
    ) {
        let cores = (cfg.client_core, cfg.server_core);
        let secs = cfg.raw_secs.max(1.0);
        let kernel =
            topology.kernel_owns_server_ip(true).and_then(|()| single_flow::kernel(lab, secs, cores));
        if let Err(e) = topology.kernel_owns_server_ip(false) {
            notes.push(format!("single flow: {e:#}"));
        }
        match kernel {
            Ok(s) => {
                println!(
                    "    kernel single flow (iperf3): {:.2} Gbit/s, {} retransmitted",
                    s.goodput_gbit, s.retransmits
                );
                rec.sample(&self.goodput, Self::KERNEL, s.goodput_gbit);
            }
            Err(e) => {
                let reason = format!("{e:#}");
                println!("    kernel single flow not run: {reason}");
                rec.not_run(&self.goodput, Self::KERNEL, &reason);
            }
        }
    }
}

fn http_scenarios(
    cfg: &BenchConfig,
    topology: &Topology,
    caps: &LinerateCaps,
    rec: &mut Recorder,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let work = std::env::temp_dir().join(format!("linerate-bench-{}", std::process::id()));
    let root = work.join("www");
    std::fs::create_dir_all(&root)?;
    servers::write_test_file(&root, http_scenarios::SMALL_FILE, 1024)?;
    if cfg.wants(BULK) || cfg.wants(BYPASS_CLIENT) {
        servers::write_test_file(&root, http_scenarios::BULK_FILE, cfg.bulk_bytes)?;
    }
    let kinds: Vec<ServerKind> = cfg.servers.iter().filter_map(|s| ServerKind::parse(s)).collect();
    let env = ServerEnv {
        topology,
        root: &root,
        work: &work,
        core: cfg.server_core,
        linerate: caps,
        xdp_mode: &cfg.xdp_mode,
        tx_checksum: &cfg.tx_checksum,
    };
    let mut run = http_scenarios::HttpRun { cfg, env, rec, notes };
    run.run(&kinds);
    let _ = std::fs::remove_file(root.join(http_scenarios::BULK_FILE));
    // Keep the logs only if something went wrong; they are small.
    if notes.iter().any(|n| n.contains("exited")) {
        notes.push(format!("server logs kept in {}", work.display()));
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(())
}

fn engine_scenario(cfg: &BenchConfig, rec: &mut Recorder) {
    const SETUP: &str = "linerate in-memory";
    for name in &cfg.engine_benches {
        println!("  criterion bench `{name}`");
        let key =
            |id: &str, metric: &str, unit: &str, better| row("6 engine ceiling", id, metric, unit, better);
        match engine::run_bench(&cfg.workspace, name, cfg.quick) {
            Err(reason) => {
                println!("    not run: {reason}");
                rec.not_run(&key(name, "time", "ns", Lower), SETUP, &reason);
            }
            Ok(Err(e)) => rec.not_run(&key(name, "time", "ns", Lower), SETUP, &format!("{e:#}")),
            Ok(Ok(estimates)) => {
                for e in estimates {
                    rec.sample(&key(&e.id, "time", "ns", Lower), SETUP, e.nanos);
                    if let Some((v, unit)) = e.throughput {
                        rec.sample(&key(&e.id, "throughput", &unit, Higher), SETUP, v);
                    }
                }
            }
        }
    }
}

/// The workspace this binary was built from (for git and cargo), unless told otherwise.
pub fn default_workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{share_spread, PairShare};

    #[test]
    fn share_spread_lists_every_pair_and_the_undisturbed_ones() {
        assert_eq!(share_spread(&[]), None);
        let pair = |share, slowest| PairShare { share, slowest_thread: slowest };
        let pairs = [pair(82.5, Some(0.95)), pair(95.0, Some(0.2)), pair(70.2, None), pair(91.5, Some(0.99))];
        let note = share_spread(&pairs).unwrap();
        assert!(note.contains(": 82.5, 95.0, 70.2, 91.5 %"), "{note}");
        assert!(note.contains("median 87.0 %, range 70.2–95.0 %, ≥ 90 % in 2 of 4"), "{note}");
        assert!(
            note.contains("≥ 90 % of their windows: median 87.0 %, range 82.5–91.5 %, ≥ 90 % in 1 of 2"),
            "{note}"
        );
        let loaded = share_spread(&[pair(40.0, Some(0.2)), pair(130.0, Some(0.3))]).unwrap();
        assert!(
            loaded.contains("no pair ran undisturbed (slowest thread ran 20–30 % of its window)"),
            "{loaded}"
        );
    }
}
