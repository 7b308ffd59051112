//! `linerate-bench shards --in-memory`: how the shard runtime itself scales from 1 to 2 shards,
//! with the peer taken out of the picture.
//!
//! Each shard is the production [`EngineShard`] (run loop, rings, counters, stats snapshots,
//! routing, hand-off) pinned to its own core, but its NIC queue is a [`PeerLink`]: an in-memory
//! link to a peer engine stepped by the same shard thread. Per core the work is therefore one
//! shard plus one peer, and the peer's cost is the same in the 1- and 2-shard setups, so the
//! ratio says whether the shards scale, not whether a shared client keeps up (the veth run's
//! problem: its kernel clients share the two cores with the shards).
//!
//! Three workloads, each run with 1 shard (core 1) and 2 shards (cores 0 and 1), interleaved per
//! repetition: short connections (passive opens on the shards, GET-like 1 KiB response, client
//! closes first), bulk downloads (shards stream to the peers), and short connections the shards
//! open themselves (active opens). The last also runs with each peer's frames delivered to the
//! *other* shard's queue, so every reply is handed off over the mesh: the cost of the hand-off
//! path when it is forced. Cross-shard frames are counted from the published shard stats.
//!
//! The client side of every connection is given a 2 ms TIME-WAIT: the bench measures the
//! per-core work, not the TIME-WAIT table (a real 60 s TIME-WAIT caps any fixed table; see
//! docs/PERFORMANCE.md). Must not: sleep in the shards, or share anything between shards beyond
//! what production shares (the mesh, the stats cells, the stop flags).

mod peer;
mod roles;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant as WallInstant;

use anyhow::Context;
use linerate_driver::shard::{
    ring, EngineShard, HandOffFrame, Mesh, MonotonicClock, RuntimeConfig, ShardRuntime, ShardStats, Steering,
    SteeringMode,
};
use linerate_stack::engine::{Engine, EngineConfig};
use linerate_stack::time::{Clock, Duration};
use linerate_stack::wire::{EthernetAddress, Ipv4Address};

use peer::{Peer, PeerLink};
use roles::{BenchApp, Client, LoadCells, LoadKind, Server, ShardSide, SERVER_PORT};

/// Knobs of the in-memory run.
#[derive(Debug, Clone)]
pub struct InMemoryBench {
    pub repetitions: u32,
    /// Measured seconds per sample (after a warm-up of a fifth of it).
    pub secs: f64,
    /// Short connections in flight per shard.
    pub concurrency: u32,
    /// Bulk downloads per shard.
    pub flows: u32,
    /// Run only the setups whose label contains this text.
    pub only: Option<String>,
    /// The core of the 1-shard setups; `None` alternates between core 1 (even repetitions) and
    /// core 0 (odd ones), so that whatever else runs on one of the cores biases neither side.
    pub one_shard_core: Option<usize>,
    /// `RuntimeConfig::retain_freed_memory` of every sample (false: glibc's default trimming).
    pub retain_freed_memory: bool,
}

/// What runs on the shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    /// Peers open short connections to the shards.
    PassiveShort,
    /// Peers download from the shards.
    PassiveBulk,
    /// Shards open short connections to the peers; `crossed` delivers each peer's frames to
    /// the other shard (forced hand-off).
    ActiveShort { crossed: bool },
}

/// One measured configuration.
#[derive(Debug, Clone, Copy)]
struct Setup {
    label: &'static str,
    workload: Workload,
    cores: &'static [usize],
    /// Each shard in a runtime of its own (no mesh, no steering): two single-shard processes'
    /// worth of work in one, the machine's own scaling without anything shards share.
    independent: bool,
}

const SETUPS: [Setup; 8] = [
    Setup {
        label: "short, passive, 1 shard",
        workload: Workload::PassiveShort,
        cores: &[1],
        independent: false,
    },
    Setup {
        label: "short, passive, 2 shards",
        workload: Workload::PassiveShort,
        cores: &[0, 1],
        independent: false,
    },
    Setup { label: "bulk, 1 shard", workload: Workload::PassiveBulk, cores: &[1], independent: false },
    Setup { label: "bulk, 2 shards", workload: Workload::PassiveBulk, cores: &[0, 1], independent: false },
    Setup {
        label: "short, active, 1 shard",
        workload: Workload::ActiveShort { crossed: false },
        cores: &[1],
        independent: false,
    },
    Setup {
        label: "short, active, 2 shards",
        workload: Workload::ActiveShort { crossed: false },
        cores: &[0, 1],
        independent: false,
    },
    Setup {
        label: "short, active, 2 shards, replies to the other shard",
        workload: Workload::ActiveShort { crossed: true },
        cores: &[0, 1],
        independent: false,
    },
    Setup {
        label: "short, passive, 2 independent 1-shard runtimes",
        workload: Workload::PassiveShort,
        cores: &[0, 1],
        independent: true,
    },
];

/// (label, base setup, compared setup): the ratios the bench reports.
const RATIOS: [(&str, usize, usize); 7] = [
    ("short connections, passive opens: 2 shards / 1", 0, 1),
    ("bulk: 2 shards / 1", 2, 3),
    ("short connections, active opens: 2 shards / 1", 4, 5),
    ("short connections, active opens, every reply handed off: 2 shards / 1", 4, 6),
    ("2 shards, active opens: every reply handed off / replies on the home queue", 5, 6),
    ("short connections, passive opens: 2 independent runtimes / 1 shard (the machine alone)", 0, 7),
    ("short connections, passive opens: 2 shards / 2 independent runtimes (what shards share)", 7, 1),
];

/// One sample of one setup.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    conn_per_sec: f64,
    gbit_per_sec: f64,
    /// Process CPU seconds per wall second during the window (how many cores the shards got).
    cores_used: f64,
    /// Frames handed between shards during the window.
    handed_off: u64,
    /// Frames received from the shards' own queues during the window.
    rx_frames: u64,
    errors: u64,
    /// Loop iterations per second, all shards.
    iterations_per_sec: f64,
    /// Length of the measured window.
    secs: f64,
    /// Connections completed from start to stop, warm-up and shutdown included (the
    /// denominator for instruction counts of the whole process, e.g. under callgrind).
    lifetime_completed: u64,
}

const SHARD_IP: Ipv4Address = Ipv4Address::new(198, 18, 0, 1);
const PEER_IP: Ipv4Address = Ipv4Address::new(198, 18, 0, 2);
const HANDOFF_RING: usize = 256;
/// Frames in flight from a peer to a shard (the "NIC queue").
const QUEUE_RING: usize = 1024;
const CLIENT_TIME_WAIT: Duration = Duration::from_millis(2);

/// Runs every setup `repetitions` times, interleaved, and returns the Markdown report.
pub fn run(cfg: &InMemoryBench) -> anyhow::Result<String> {
    let allowed = core_affinity::get_core_ids().unwrap_or_default().len();
    anyhow::ensure!(
        allowed >= 2,
        "the in-memory shard bench needs cores 0 and 1 (this process may use {allowed})"
    );
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); SETUPS.len()];
    let mut loads = Vec::new();
    let wanted = |i: usize| cfg.only.as_ref().is_none_or(|only| SETUPS[i].label.contains(only.as_str()));
    anyhow::ensure!((0..SETUPS.len()).any(wanted), "--only {:?} matches no setup", cfg.only);
    println!(
        "  pinning (core_affinity, checked with sched_getcpu in each shard): 1 shard: shard 0 on core {}; 2 shards: shard 0 on core 0, shard 1 on core 1",
        one_shard_pin(cfg)
    );
    for rep in 0..cfg.repetitions {
        let load = loadavg();
        println!("  rep {}/{} (load average {load})", rep + 1, cfg.repetitions);
        loads.push(load);
        // Alternate which of each 1-vs-2 pair runs first, so a drifting machine load biases
        // neither side.
        let mut order: Vec<usize> = (0..SETUPS.len()).collect();
        if rep % 2 == 1 {
            for pair in order.chunks_mut(2).filter(|p| p.len() == 2) {
                pair.swap(0, 1);
            }
        }
        for i in order.into_iter().filter(|&i| wanted(i)) {
            let one = [cfg.one_shard_core.unwrap_or(if rep % 2 == 0 { 1 } else { 0 })];
            let cores = if SETUPS[i].cores.len() == 1 { &one[..] } else { SETUPS[i].cores };
            let s = measure(&SETUPS[i], cores, cfg)?;
            println!(
                "    {:<52} {:>8.0} conn/s {:>6.2} Gbit/s  cores used {:.2}  handed off {}  errors {}  (whole run: {} connections)",
                SETUPS[i].label, s.conn_per_sec, s.gbit_per_sec, s.cores_used, s.handed_off, s.errors, s.lifetime_completed
            );
            samples[i].push(s);
        }
    }
    loads.push(loadavg());
    Ok(table(cfg, &samples, &loads))
}

/// Where the 1-shard setups run, for the report.
fn one_shard_pin(cfg: &InMemoryBench) -> String {
    match cfg.one_shard_core {
        Some(core) => core.to_string(),
        None => "1 and 0, alternating per repetition".into(),
    }
}

/// The 1-minute load average from /proc/loadavg.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn engine_config(ip: Ipv4Address, last_mac_byte: u8, seed: u64, client: bool) -> EngineConfig {
    let mut c = EngineConfig::new(ip, 24, EthernetAddress([2, 0, 0, 0, 0, last_mac_byte]), seed);
    c.max_connections = 8192;
    if client {
        c.tcp.time_wait = CLIENT_TIME_WAIT;
    }
    c
}

/// The shards of a setup, the counters of each shard's client side, and each shard's own.
type Built = (Vec<Shard>, Vec<Arc<LoadCells>>, Vec<Arc<LoadCells>>);

/// One shard of the bench.
type Shard = EngineShard<PeerLink, ShardSide>;

/// Builds the shards of `setup` and the counters of each shard's client side.
fn build(setup: &Setup, cfg: &InMemoryBench) -> anyhow::Result<Built> {
    let n = setup.cores.len();
    // Shards per runtime: independent shards each get a single-shard runtime of their own.
    let per = if setup.independent { 1 } else { n };
    let mode = if per == 1 {
        SteeringMode::Single
    } else {
        SteeringMode::HandOff { reason: "in-memory link".into() }
    };
    let steering = Steering::new(per, per as u32, mode)?;
    let crossed = matches!(setup.workload, Workload::ActiveShort { crossed: true });
    // Queue ring `j` is read by shard `j`; peer `i` writes to ring `dest(i)`.
    let (mut producers, consumers): (Vec<_>, Vec<_>) =
        (0..n).map(|_| ring::channel::<HandOffFrame>(QUEUE_RING)).map(|(p, c)| (Some(p), c)).unzip();
    let mut consumers = consumers.into_iter();
    let mut links = (0..n / per).flat_map(|_| Mesh::new(per, HANDOFF_RING)).collect::<Vec<_>>().into_iter();
    let now = MonotonicClock::new().now();
    let mut works = Vec::with_capacity(n);
    let mut client_cells = Vec::with_capacity(n);
    let mut shard_cells = Vec::with_capacity(n);
    for i in 0..n {
        let seed = 1 + i as u64;
        // The shard's index inside its runtime.
        let local = i % per;
        let active = matches!(setup.workload, Workload::ActiveShort { .. });
        let mut shard_cfg = engine_config(SHARD_IP, 1, seed, active);
        shard_cfg.ephemeral_ports = steering.ephemeral_ports_of(local);
        let mut shard_engine = Engine::new(shard_cfg, now);
        let mut peer_engine = Engine::new(engine_config(PEER_IP, 2, 100 + seed, !active), now);
        let cells = Arc::new(LoadCells::default());
        shard_cells.push(cells.clone());
        let peer_cells = Arc::new(LoadCells::default());
        let max = shard_engine.config().max_connections;
        let (app, role) = match setup.workload {
            Workload::PassiveShort | Workload::PassiveBulk => {
                let kind =
                    if setup.workload == Workload::PassiveBulk { LoadKind::Bulk } else { LoadKind::Short };
                let conc = if kind == LoadKind::Bulk { cfg.flows } else { cfg.concurrency } as usize;
                let l = shard_engine.listen(SERVER_PORT, 1024, Some(roles::socket_options(kind)))?;
                client_cells.push(peer_cells.clone());
                (BenchApp::Server(Server::new(l, max)), Peer::Client(Client::new(SHARD_IP, kind, conc, max)))
            }
            Workload::ActiveShort { .. } => {
                let l =
                    peer_engine.listen(SERVER_PORT, 1024, Some(roles::socket_options(LoadKind::Short)))?;
                client_cells.push(cells.clone());
                let client = Client::new(PEER_IP, LoadKind::Short, cfg.concurrency as usize, max);
                (BenchApp::Client(client), Peer::Server(Server::new(l, max)))
            }
        };
        let dest = if crossed { (i + 1) % n } else { i };
        let out = producers[dest].take().context("each queue ring has one writer")?;
        let inbound = consumers.next().context("one queue ring per shard")?;
        let device = PeerLink::new(peer_engine, role, peer_cells, out, inbound);
        works.push(EngineShard::new(
            shard_engine,
            device,
            links.next().context("one mesh end per shard")?,
            steering.router(local),
            steering.opener(local),
            ShardSide { app, cells, cpu_seen: false },
        ));
    }
    Ok((works, client_cells, shard_cells))
}

/// Totals of the client counters and of the shards' published stats at one moment.
#[derive(Debug, Clone, Copy)]
struct Reading {
    at: WallInstant,
    cpu: f64,
    completed: u64,
    bytes: u64,
    errors: u64,
    stats: ShardStats<roles::Counts>,
    iterations: u64,
}

/// CPU time (user + system) of every thread of this process so far, in seconds.
fn process_cpu_secs() -> f64 {
    // SAFETY: rusage is plain data that the kernel fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

type Runtime = ShardRuntime<ShardStats<roles::Counts>>;

fn read(runtimes: &[Runtime], cells: &[Arc<LoadCells>]) -> Reading {
    let sum = |f: fn(&LoadCells) -> u64| cells.iter().map(|c| f(c)).sum::<u64>();
    let mut stats = ShardStats::default();
    for runtime in runtimes {
        stats += runtime.work_stats();
    }
    Reading {
        at: WallInstant::now(),
        cpu: process_cpu_secs(),
        completed: sum(|c| c.completed.load(Ordering::Relaxed)),
        bytes: sum(|c| c.bytes.load(Ordering::Relaxed)),
        errors: sum(|c| c.errors.load(Ordering::Relaxed)),
        stats,
        iterations: runtimes.iter().map(|r| r.loop_stats().iterations).sum(),
    }
}

/// Starts the shards: one runtime for all, or one per shard for independent setups.
fn start(
    setup: &Setup,
    config: RuntimeConfig,
    cores: &[usize],
    works: Vec<Shard>,
) -> anyhow::Result<Vec<Runtime>> {
    if !setup.independent {
        return Ok(vec![ShardRuntime::start_each(config, cores, works)?]);
    }
    let mut runtimes = Vec::with_capacity(works.len());
    for (work, &core) in works.into_iter().zip(cores) {
        match ShardRuntime::start_each(config, &[core], vec![work]) {
            Ok(runtime) => runtimes.push(runtime),
            Err(e) => {
                for runtime in runtimes {
                    runtime.request_stop();
                    let _ = runtime.join();
                }
                return Err(e.into());
            }
        }
    }
    Ok(runtimes)
}

/// Warm-up before the measured window: long enough for the engines' tables and the buffer pool
/// to reach their steady state (fresh memory faults in at first), at least half a second.
fn warm_up_secs(secs: f64) -> f64 {
    (secs / 5.0).max(0.5)
}

/// Runs `setup` on `cores` (one per shard; `setup.cores` in the bench).
fn measure(setup: &Setup, cores: &[usize], cfg: &InMemoryBench) -> anyhow::Result<Sample> {
    anyhow::ensure!(cores.len() == setup.cores.len(), "one core per shard");
    let (works, cells, shard_cells) = build(setup, cfg)?;
    let config = RuntimeConfig {
        handle_signals: false,
        drain_deadline: Duration::from_millis(20),
        close_deadline: Duration::from_millis(20),
        time_wait_deadline: Duration::from_millis(20),
        retain_freed_memory: cfg.retain_freed_memory,
        ..RuntimeConfig::default()
    };
    let runtimes = start(setup, config, cores, works)?;
    std::thread::sleep(std::time::Duration::from_secs_f64(warm_up_secs(cfg.secs)));
    let a = read(&runtimes, &cells);
    std::thread::sleep(std::time::Duration::from_secs_f64(cfg.secs));
    let b = read(&runtimes, &cells);
    runtimes.iter().for_each(Runtime::request_stop);
    let mut ran_on = Vec::with_capacity(cores.len());
    for runtime in runtimes {
        let joined = runtime.join().map_err(|e| anyhow::anyhow!("{e}"))?;
        ran_on.extend(joined.shards.iter().map(|s| s.core));
    }
    let lifetime_completed = cells.iter().map(|c| c.completed.load(Ordering::Relaxed)).sum();
    for (shard, (cell, &core)) in shard_cells.iter().zip(cores).enumerate() {
        let seen = cell.cpu.load(Ordering::Relaxed);
        anyhow::ensure!(
            ran_on.get(shard) == Some(&core) && seen == core as u64,
            "shard {shard} was to run on core {core} but ran on {seen}"
        );
    }
    let secs = (b.at - a.at).as_secs_f64();
    Ok(Sample {
        conn_per_sec: (b.completed - a.completed) as f64 / secs,
        gbit_per_sec: (b.bytes - a.bytes) as f64 * 8.0 / secs / 1e9,
        cores_used: (b.cpu - a.cpu) / secs,
        handed_off: b.stats.shard.handed_off - a.stats.shard.handed_off,
        rx_frames: b.stats.shard.rx_frames - a.stats.shard.rx_frames,
        errors: b.errors,
        iterations_per_sec: (b.iterations - a.iterations) as f64 / secs,
        secs,
        lifetime_completed,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn table(cfg: &InMemoryBench, samples: &[Vec<Sample>], loads: &[String]) -> String {
    let med = |i: usize, f: &dyn Fn(&Sample) -> f64| median(samples[i].iter().map(f).collect());
    let mut out = format!(
        "In-memory shards: each shard pinned (core_affinity) to its core with its own peer engine stepped by the same thread; {} concurrent short connections or {} downloads per shard; {} repetition(s) of {:.1} s after {:.1} s of warm-up, 1 and 2 shards interleaved (the pair's order alternating), 1 shard on core {}; heap {}; load average (1 min) at each repetition: {}.\n\n",
        cfg.concurrency,
        cfg.flows,
        cfg.repetitions,
        cfg.secs,
        warm_up_secs(cfg.secs),
        one_shard_pin(cfg),
        if cfg.retain_freed_memory { "kept by the shards (the default)" } else { "glibc's default trimming (--default-heap)" },
        loads.join(", ")
    );
    out += "| setup (shard → core) | conn/s | Gbit/s | cores used | CPU µs/conn (range) or (s/GB) | frames handed off/s | handed off / received | loop iterations/s | errors |\n|---|---|---|---|---|---|---|---|---|\n";
    for (i, setup) in SETUPS.iter().enumerate().filter(|(i, _)| !samples[*i].is_empty()) {
        let pins: Vec<String> = if setup.cores.len() == 1 {
            vec![format!("0→{}", one_shard_pin(cfg))]
        } else {
            setup.cores.iter().enumerate().map(|(s, c)| format!("{s}→{c}")).collect()
        };
        let errors: u64 = samples[i].iter().map(|s| s.errors).sum();
        let cpu = if setup.workload == Workload::PassiveBulk {
            format!("({:.2})", med(i, &|s| s.cores_used / (s.gbit_per_sec / 8.0)))
        } else {
            let per_conn: Vec<f64> = samples[i].iter().map(|s| s.cores_used / s.conn_per_sec * 1e6).collect();
            let lo = per_conn.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = per_conn.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            format!("{:.1} ({lo:.1}–{hi:.1})", median(per_conn))
        };
        out += &format!(
            "| {} ({}) | {:.0} | {:.2} | {:.2} | {cpu} | {:.0} | {:.2} | {:.0} | {errors} |\n",
            setup.label,
            pins.join(" "),
            med(i, &|s| s.conn_per_sec),
            med(i, &|s| s.gbit_per_sec),
            med(i, &|s| s.cores_used),
            med(i, &|s| s.handed_off as f64 / s.secs),
            med(i, &|s| s.handed_off as f64 / (s.rx_frames.max(1)) as f64),
            med(i, &|s| s.iterations_per_sec),
        );
    }
    out +=
        "\n| ratio | median of per-repetition ratios | range | same, per CPU-second |\n|---|---|---|---|\n";
    for (label, base, other) in RATIOS {
        if samples[base].is_empty() || samples[other].is_empty() {
            continue;
        }
        let metric = |s: &Sample| {
            if SETUPS[base].workload == Workload::PassiveBulk {
                s.gbit_per_sec
            } else {
                s.conn_per_sec
            }
        };
        let ratios: Vec<f64> =
            samples[base].iter().zip(&samples[other]).map(|(a, b)| metric(b) / metric(a)).collect();
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // Work per CPU-second: what the ratio would be if the machine's other load did not
        // take CPU from the shards (for 2 / 1: 2.0 = no per-shard cost from a second shard).
        let per_cpu = |i: usize| med(i, &|s| metric(s) / s.cores_used);
        let scale = SETUPS[other].cores.len() as f64 / SETUPS[base].cores.len() as f64;
        out += &format!(
            "| {label} | **{:.2}×** | {lo:.2}–{hi:.2} | {:.2}× |\n",
            median(ratios),
            per_cpu(other) / per_cpu(base) * scale
        );
    }
    out + &starved_note(samples)
}

/// A warning when the machine did not give the shards their cores (median CPU per shard below
/// 90 %): the wall-time ratios then measure the scheduler's share, not the shards.
fn starved_note(samples: &[Vec<Sample>]) -> String {
    let starved: Vec<String> = SETUPS
        .iter()
        .zip(samples)
        .filter(|(_, s)| !s.is_empty())
        .filter_map(|(setup, s)| {
            let per_shard = median(s.iter().map(|x| x.cores_used).collect()) / setup.cores.len() as f64;
            (per_shard < 0.9)
                .then(|| format!("{} ({:.0} % of a core per shard)", setup.label, per_shard * 100.0))
        })
        .collect();
    if starved.is_empty() {
        return String::new();
    }
    format!(
        "\nThe shards did not get their cores: {}. Other load took the rest, so the wall-time ratios measure the scheduler; the per-CPU-second column does not depend on it. Rerun on idle cores for the wall-time figure.\n",
        starved.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every workload completes connections without errors; passive opens cross no shard
    /// boundary; crossed replies are all handed off. Both shards share the first core this
    /// process may use, so the test runs on any machine (it checks behaviour, not speed).
    #[test]
    fn every_workload_makes_progress_and_only_forced_replies_cross_shards() {
        let core = core_affinity::get_core_ids().unwrap_or_default().first().map_or(0, |c| c.id);
        let cfg = InMemoryBench {
            repetitions: 1,
            secs: 0.3,
            concurrency: 8,
            flows: 2,
            only: None,
            one_shard_core: Some(core),
            retain_freed_memory: true,
        };
        for setup in &SETUPS {
            let cores = vec![core; setup.cores.len()];
            let s = measure(setup, &cores, &cfg).unwrap();
            let label = setup.label;
            assert_eq!(s.errors, 0, "{label}: {s:?}");
            if setup.workload == Workload::PassiveBulk {
                assert!(s.gbit_per_sec > 0.0, "{label}: {s:?}");
            } else {
                assert!(s.conn_per_sec > 0.0, "{label}: {s:?}");
            }
            let crossed = setup.workload == Workload::ActiveShort { crossed: true };
            assert_eq!(s.handed_off > 0, crossed, "{label}: {s:?}");
        }
    }
}
