//! `linerate-bench shards`: how `linerate serve` scales from 1 to 2 shards on this machine.
//!
//! Owns its own 2-queue lab (the main harness's lab has one queue) and runs, for each shard
//! count and repetition, the same client work: short connections (our epoll generator, GET 1 KiB,
//! close after each) and a bulk download (ranged curls), each as **two** load processes pinned to
//! cores 0 and 1, so the client is identical in both setups and the kernel spreads its
//! connections over both veth queues. One shard runs on core 1; two shards on cores 0 and 1.
//! On a 2-core machine the client therefore shares cores with the shards in both setups (and
//! with the veth softirq work, which runs on the sending CPU): the ratio measures what the whole
//! machine does with one vs. two shards, not the shards alone. Prints a Markdown table.
//! `linerate-bench shards --in-memory` ([`crate::shards_mem`]) measures the shards alone.
//!
//! Must not: touch anything outside the lab it builds (removed on drop).

use std::net::SocketAddrV4;

use anyhow::Context;
use linerate_driver::lab::{netns_run, LabConfig, LabGuard};

use crate::load::{HttpLoad, LoadJob, LoadResult};
use crate::servers::{write_test_file, ControlSocket};
use crate::topology::Topology;

/// Knobs of the shard run.
#[derive(Debug, Clone)]
pub struct ShardBench {
    pub linerate_bin: std::path::PathBuf,
    pub repetitions: u32,
    /// Seconds per short-connection sample.
    pub secs: f64,
    /// Bulk file size.
    pub bulk_bytes: u64,
    /// Concurrent connections per load process (two processes).
    pub concurrency: u32,
    /// Ranged curl flows per load process for the bulk download.
    pub flows: u32,
}

/// One measured sample.
#[derive(Debug, Clone, Copy)]
struct Sample {
    conn_per_sec: f64,
    gbit_per_sec: f64,
    /// Server CPU (all shard threads) per connection, microseconds.
    cpu_us_per_conn: f64,
    /// Server CPU per GB of bulk download, seconds.
    cpu_s_per_gb: f64,
    errors: u64,
}

const SMALL: &str = "1k.bin";
const BULK: &str = "bulk.bin";
const CLIENT_CORES: [usize; 2] = [0, 1];

/// Runs the 1- and 2-shard setups alternately and prints the table.
pub fn run(cfg: &ShardBench) -> anyhow::Result<String> {
    let name = format!("bsh-{}", std::process::id());
    let guard = LabGuard::up(LabConfig { queues: 2, ..LabConfig::new(&name) }).context("lab up (root?)")?;
    for ns in [guard.kern_ns(), guard.app_ns()] {
        netns_run(
            ns,
            "sysctl",
            &["-qw", "net.ipv4.ip_local_port_range=1024 65000", "net.ipv4.tcp_tw_reuse=1"],
        )?;
    }
    let topology = Topology::Lab(guard);
    let work = std::env::temp_dir().join(format!("linerate-bench-shards-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    write_test_file(&work, SMALL, 1024)?;
    write_test_file(&work, BULK, cfg.bulk_bytes)?;
    let setups: [(&str, &str); 2] = [("1 shard", "1"), ("2 shards", "0,1")];
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); setups.len()];
    for rep in 1..=cfg.repetitions {
        for (i, (label, cores)) in setups.iter().enumerate() {
            println!("  rep {rep}/{}: {label} (cores {cores})", cfg.repetitions);
            let sample = one_setup(cfg, &topology, &work, cores)?;
            println!(
                "    {:.0} conn/s ({:.0} us CPU/conn), {:.2} Gbit/s ({:.2} s CPU/GB), {} client errors",
                sample.conn_per_sec,
                sample.cpu_us_per_conn,
                sample.gbit_per_sec,
                sample.cpu_s_per_gb,
                sample.errors
            );
            samples[i].push(sample);
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(table(cfg, &setups, &samples))
}

fn one_setup(
    cfg: &ShardBench,
    topology: &Topology,
    root: &std::path::Path,
    cores: &str,
) -> anyhow::Result<Sample> {
    let control = ControlSocket::new_in(&std::env::temp_dir());
    let mut server = topology
        .server_command(&cfg.linerate_bin.to_string_lossy())
        .args(["serve", "--iface", &topology.server_iface(), "--ip", &topology.server_cidr(), "--port", "80"])
        .args(["--cores", cores, "--xdp-mode", "native", "--log-level", "error", "--drain-timeout", "2"])
        .arg("--root")
        .arg(root)
        .arg("--control-socket")
        .arg(control.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("cannot start linerate serve")?;
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().context("stdout")?),
        &mut line,
    )?;
    println!("    {}", line.trim());
    let addr = SocketAddrV4::new(topology.server_ip(), 80);
    let result = (|| {
        topology.run_load(&LoadJob::Probe { addr, path: format!("/{SMALL}"), timeout_ms: 5000 }, 0)?;
        let short = LoadJob::Http(HttpLoad {
            addr,
            path: format!("/{SMALL}"),
            connections: cfg.concurrency,
            secs: cfg.secs,
            keep_alive: false,
        });
        let pid = server.id();
        let cpu0 = crate::sys::tree_cpu_secs(pid);
        let short = on_both_cores(topology, &short)?;
        let cpu1 = crate::sys::tree_cpu_secs(pid);
        let bulk = LoadJob::Curl {
            url: format!("http://{addr}/{BULK}"),
            size: cfg.bulk_bytes,
            flows: cfg.flows,
            max_secs: 60.0,
        };
        let bulk = on_both_cores(topology, &bulk)?;
        let cpu2 = crate::sys::tree_cpu_secs(pid);
        let connections = short.iter().map(|r| r.requests).sum::<u64>().max(1) as f64;
        let bytes = bulk.iter().map(|r| r.bytes).sum::<u64>().max(1) as f64;
        Ok(Sample {
            cpu_us_per_conn: (cpu1 - cpu0) / connections * 1e6,
            cpu_s_per_gb: (cpu2 - cpu1) / (bytes / 1e9),
            conn_per_sec: short.iter().map(LoadResult::per_sec).sum(),
            gbit_per_sec: bulk.iter().map(|r| r.bytes).sum::<u64>() as f64 * 8.0
                / bulk.iter().map(|r| r.secs).fold(0.0, f64::max)
                / 1e9,
            errors: short.iter().chain(&bulk).map(|r| r.errors).sum(),
        })
    })();
    // SAFETY: signalling our own child by pid.
    unsafe { libc::kill(server.id() as libc::pid_t, libc::SIGTERM) };
    let _ = server.wait();
    result
}

/// Runs `job` twice at once, pinned to each client core.
fn on_both_cores(topology: &Topology, job: &LoadJob) -> anyhow::Result<Vec<LoadResult>> {
    std::thread::scope(|s| {
        let handles: Vec<_> =
            CLIENT_CORES.iter().map(|&core| s.spawn(move || topology.run_load(job, core))).collect();
        handles.into_iter().map(|h| h.join().map_err(|_| anyhow::anyhow!("load thread panicked"))?).collect()
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn table(cfg: &ShardBench, setups: &[(&str, &str)], samples: &[Vec<Sample>]) -> String {
    let med = |i: usize, f: fn(&Sample) -> f64| median(samples[i].iter().map(f).collect());
    let mut out = format!(
        "| setup (server cores) | conn/s (2×{} concurrent, GET 1 KiB) | server CPU µs/conn | bulk Gbit/s (2×{} ranged curls, {} MiB) | server CPU s/GB | client errors |\n|---|---|---|---|---|---|\n",
        cfg.concurrency,
        cfg.flows,
        cfg.bulk_bytes >> 20
    );
    for (i, (label, cores)) in setups.iter().enumerate() {
        let errors: u64 = samples[i].iter().map(|s| s.errors).sum();
        out += &format!(
            "| {label} ({cores}) | {:.0} | {:.0} | {:.2} | {:.2} | {errors} |\n",
            med(i, |s| s.conn_per_sec),
            med(i, |s| s.cpu_us_per_conn),
            med(i, |s| s.gbit_per_sec),
            med(i, |s| s.cpu_s_per_gb)
        );
    }
    out += &format!(
        "| ratio 2 / 1 | {:.2}× | | {:.2}× | | |\n\nMedians of {} repetition(s); client load processes pinned to cores 0 and 1 in both setups.\n",
        med(1, |s| s.conn_per_sec) / med(0, |s| s.conn_per_sec),
        med(1, |s| s.gbit_per_sec) / med(0, |s| s.gbit_per_sec),
        cfg.repetitions
    );
    out
}
