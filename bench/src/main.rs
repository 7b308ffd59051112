//! `linerate-bench`: linerate against the Linux kernel, side by side, in one run.
//!
//! `run` builds the lab (or uses a NIC and a peer), runs the scenarios and writes
//! `bench/results/<date>-<time>-<host>.{json,md}` plus SVG plots; `peer` serves load jobs on the
//! client machine in NIC mode; `load` and `serve-kernel` are the harness's own child processes.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use linerate_bench::config::{BenchConfig, OpenLoopRates};
use linerate_bench::topology::{NicConfig, Topology};

#[derive(Parser, Debug)]
#[command(about = "End-to-end benchmarks: linerate against the Linux kernel, side by side")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the scenarios and write the results.
    Run(Box<RunArgs>),
    /// `linerate serve` with 1 and then 2 shards in a 2-queue lab: conn/s and bulk Gbit/s.
    Shards(ShardArgs),
    /// NIC mode, on the client machine: run load jobs sent by `run --peer`.
    Peer {
        /// Control address to listen on (use a private benchmark network: no authentication).
        #[arg(long)]
        listen: SocketAddr,
    },
    /// Internal: run one load job (JSON) and print its result as JSON.
    Load {
        #[arg(long)]
        core: Option<usize>,
        job: String,
    },
    /// Internal: the kernel-socket HTTP server baseline.
    ServeKernel {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        root: PathBuf,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// CI mode: one repetition, sub-second samples, a 16 MiB bulk file, no criterion benches.
    #[arg(long)]
    quick: bool,
    /// Scenarios to run (1 raw, 2 bulk, 3 short connections, 4 keep-alive, 5 bypass client, 6 engine).
    #[arg(long, value_delimiter = ',')]
    scenarios: Option<Vec<u8>>,
    /// Server setups: linerate, nginx, kernel_server.
    #[arg(long, value_delimiter = ',')]
    servers: Option<Vec<String>>,
    #[arg(long)]
    reps: Option<u32>,
    /// Seconds per timed sample.
    #[arg(long)]
    secs: Option<f64>,
    /// Bulk file size in MiB.
    #[arg(long)]
    bulk_mib: Option<u64>,
    /// Also run scenario 2 (1 flow) with the lab at this MTU (e.g. 9000), for every server, after
    /// each repetition's main pass (lab only).
    #[arg(long, value_parser = clap::value_parser!(u32).range(68..=9000))]
    bulk_mtu: Option<u32>,
    /// The linerate binary (default: <workspace>/target/release/linerate).
    #[arg(long)]
    linerate: Option<PathBuf>,
    #[arg(long, default_value = "auto")]
    xdp_mode: String,
    /// Transmit checksums of `linerate serve` facing the kernel client: `offload` (partial, as
    /// the kernel's own) or `software`.
    #[arg(long, default_value = "software", value_parser = ["offload", "software"])]
    tx_checksum: String,
    /// Output directory (default: <workspace>/bench/results).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    server_core: usize,
    #[arg(long, default_value_t = 0)]
    client_core: usize,
    /// Lab only: where each side's receive work runs. `two-machines`: on the side's own core
    /// (threaded NAPI pinned + RPS on each veth end); `one-machine`: on the sending core, as
    /// veth does by itself (each side then pays the other's receive path).
    #[arg(long, value_enum, default_value_t = LabPlacement::TwoMachines)]
    placement: LabPlacement,
    /// Skip the wrk cross-check.
    #[arg(long)]
    no_wrk: bool,
    /// Scenario 4's open-loop part: offered rates as fractions of the slower server's
    /// closed-loop keep-alive rate in this run (default 0.5,0.8; quick 0.5).
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["open_loop_rates", "no_open_loop"])]
    open_loop_loads: Option<Vec<f64>>,
    /// Scenario 4's open-loop part at these fixed offered rates (requests/s) instead.
    #[arg(long, value_delimiter = ',', conflicts_with = "no_open_loop")]
    open_loop_rates: Option<Vec<f64>>,
    /// Skip scenario 4's open-loop part.
    #[arg(long)]
    no_open_loop: bool,
    /// A note recorded with the results (repeatable), e.g. "machine shared with builds".
    #[arg(long)]
    note: Vec<String>,
    /// NIC mode: the benchmark interface on this (server) machine instead of the lab.
    #[arg(long, requires_all = ["server_ip", "peer", "client_ip", "client_iface"])]
    nic: Option<String>,
    /// NIC mode: the server address with prefix, e.g. 198.19.0.2/24.
    #[arg(long)]
    server_ip: Option<String>,
    /// NIC mode: the peer's address on the benchmark network.
    #[arg(long)]
    client_ip: Option<Ipv4Addr>,
    /// NIC mode: the peer's benchmark interface (for the bypass client).
    #[arg(long)]
    client_iface: Option<String>,
    /// NIC mode: where `linerate-bench peer --listen` runs.
    #[arg(long)]
    peer: Option<SocketAddr>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LabPlacement {
    TwoMachines,
    OneMachine,
}

#[derive(Args, Debug)]
struct ShardArgs {
    #[arg(long, default_value_t = 3)]
    reps: u32,
    /// Seconds per short-connection sample.
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
    /// Bulk file size in MiB.
    #[arg(long, default_value_t = 256)]
    bulk_mib: u64,
    /// Concurrent short connections per load process (two processes).
    #[arg(long, default_value_t = 32)]
    concurrency: u32,
    /// Ranged curl flows per load process (two processes).
    #[arg(long, default_value_t = 4)]
    flows: u32,
    /// The linerate binary (default: <workspace>/target/release/linerate).
    #[arg(long)]
    linerate: Option<PathBuf>,
    /// Measure the shard runtime alone: each shard's queue is an in-memory link to a peer
    /// engine on the shard's own core (no lab, no kernel clients); `--concurrency` and
    /// `--flows` are per shard, `--secs` per sample, `--bulk-mib` unused.
    #[arg(long)]
    in_memory: bool,
    /// `--in-memory` only: run just the setups whose label contains this text (e.g. "passive").
    #[arg(long)]
    only: Option<String>,
    /// `--in-memory` only: the core of the 1-shard setups (default: 1 and 0 alternating per
    /// repetition); two such processes at once, one per core, show the machine's own scaling.
    #[arg(long)]
    one_shard_core: Option<usize>,
    /// `--in-memory` only: leave glibc's heap trimming on (the shards' default turns it off);
    /// shows what per-connection page faults and `madvise` cost.
    #[arg(long)]
    default_heap: bool,
}

fn config(a: &RunArgs) -> BenchConfig {
    let ws = linerate_bench::default_workspace();
    let mut c = if a.quick { BenchConfig::quick(ws) } else { BenchConfig::full(ws) };
    if let Some(s) = &a.scenarios {
        c.scenarios = s.clone();
    }
    if let Some(s) = &a.servers {
        c.servers = s.clone();
    }
    c.repetitions = a.reps.unwrap_or(c.repetitions).max(1);
    c.secs = a.secs.unwrap_or(c.secs).clamp(0.1, 600.0);
    c.bulk_bytes = a.bulk_mib.map_or(c.bulk_bytes, |m| m.max(1) << 20);
    c.bulk_mtu = a.bulk_mtu;
    c.linerate_bin = a.linerate.clone().unwrap_or(c.linerate_bin);
    c.out_dir = a.out.clone().unwrap_or(c.out_dir);
    c.xdp_mode = a.xdp_mode.clone();
    c.tx_checksum = a.tx_checksum.clone();
    c.server_core = a.server_core;
    c.client_core = a.client_core;
    c.two_machines = a.placement == LabPlacement::TwoMachines;
    c.wrk = !a.no_wrk;
    let positive = |v: &Vec<f64>| v.iter().copied().filter(|x| x.is_finite() && *x > 0.0).collect();
    if a.no_open_loop {
        c.open_loop = OpenLoopRates::Off;
    } else if let Some(rates) = &a.open_loop_rates {
        c.open_loop = OpenLoopRates::Fixed(positive(rates));
    } else if let Some(loads) = &a.open_loop_loads {
        c.open_loop = OpenLoopRates::OfSlowest(positive(loads));
    }
    c
}

fn topology(a: &RunArgs, cfg: &BenchConfig) -> anyhow::Result<Topology> {
    let Some(iface) = &a.nic else { return Topology::lab(cfg.lab_placement()) };
    let cidr = a.server_ip.as_deref().context("--nic needs --server-ip ADDR/PREFIX")?;
    let (ip, prefix) = cidr.split_once('/').context("--server-ip is ADDR/PREFIX")?;
    Ok(Topology::Nic(NicConfig {
        iface: iface.clone(),
        server_ip: ip.parse().context("--server-ip address")?,
        prefix: prefix.parse().context("--server-ip prefix")?,
        client_ip: a.client_ip.context("--nic needs --client-ip")?,
        client_iface: a.client_iface.clone().context("--nic needs --client-iface")?,
        control: a.peer.context("--nic needs --peer")?,
    }))
}

fn run(a: &RunArgs) -> anyhow::Result<()> {
    let cfg = config(a);
    let topology = topology(a, &cfg)?;
    println!(
        "linerate-bench: {}, scenarios {:?}, {} repetition(s)",
        topology.describe(),
        cfg.scenarios,
        cfg.repetitions
    );
    let report = linerate_bench::run(&cfg, &topology, &a.note)?;
    drop(topology); // the lab goes down before we write
    let base = linerate_bench::report::base_name(&report);
    let written = linerate_bench::report::write_all(&report, &cfg.out_dir, &base)?;
    println!("\n{}", linerate_bench::report::markdown::render(&report));
    println!("wrote {}", written.json.display());
    println!("wrote {}", written.markdown.display());
    println!(
        "wrote {}, {} and {}",
        written.ratios_svg.display(),
        written.latency_svg.display(),
        written.open_loop_svg.display()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Run(a) => run(&a),
        Cmd::Shards(a) if a.in_memory => {
            let cfg = linerate_bench::shards_mem::InMemoryBench {
                repetitions: a.reps.max(1),
                secs: a.secs.clamp(0.1, 60.0),
                concurrency: a.concurrency.max(1),
                flows: a.flows.max(1),
                only: a.only,
                one_shard_core: a.one_shard_core,
                retain_freed_memory: !a.default_heap,
            };
            println!("{}", linerate_bench::shards_mem::run(&cfg)?);
            Ok(())
        }
        Cmd::Shards(a) => {
            let cfg = linerate_bench::shards::ShardBench {
                linerate_bin: a
                    .linerate
                    .unwrap_or_else(|| linerate_bench::default_workspace().join("target/release/linerate")),
                repetitions: a.reps.max(1),
                secs: a.secs.clamp(0.1, 600.0),
                bulk_bytes: a.bulk_mib.max(1) << 20,
                concurrency: a.concurrency.max(1),
                flows: a.flows.max(1),
            };
            println!("{}", linerate_bench::shards::run(&cfg)?);
            Ok(())
        }
        Cmd::Peer { listen } => linerate_bench::topology::serve_peer(listen),
        Cmd::Load { core, job } => {
            let job = serde_json::from_str(&job).context("bad job JSON")?;
            let result = linerate_bench::load::run_job(&job, core)?;
            println!("{}", serde_json::to_string(&result)?);
            Ok(())
        }
        Cmd::ServeKernel { listen, root } => {
            let config = linerate_app::kernel_server::KernelServerConfig::new(listen, root);
            let server = linerate_app::kernel_server::KernelServer::bind(config)?;
            println!("kernel_server listening on {}", server.local_addr()?);
            // Runs until the harness sends SIGTERM.
            server.run(&AtomicBool::new(false)).map(drop)
        }
    }
}
