//! Scenarios 2–5: bulk download, short connections and keep-alive against each server setup,
//! alternating the setups within every repetition so drift on a shared machine hits them all.
//!
//! Bulk "N flows" is one file fetched as N byte ranges over N connections at once, by curl and
//! by `linerate get --connections N` alike. Scenario 5 (bypass on both ends) is the extra
//! column `linerate<->linerate`: the bypass client (`linerate get` for bulk, the engine-based
//! generator of `load::bypass_gen` for short connections and keep-alive) against the linerate
//! server, next to the kernel client against the kernel servers in the same rows. With
//! `bulk_mtu`, every repetition ends with a pass that sets both lab veth ends to that MTU and runs
//! the 1-flow bulk download against every server again (frames per byte is what limits the
//! bypass server's copy-mode transmit; see docs/PERFORMANCE.md), then restores the MTU.
//! Promises: a setup that cannot run records why, in every row it would have filled; a sample
//! with no completed work is not recorded as a number.

use std::net::SocketAddrV4;

use crate::config::{BenchConfig, OpenLoopRates, BULK, BYPASS_CLIENT, KEEPALIVE, SHORT};
use crate::load::{HttpLoad, LoadJob, LoadResult, OpenLoopLoad, Percentiles};
use crate::recorder::{row, Recorder, RowKey};
use crate::results::Better::{Higher, Lower};
use crate::results::{median, OPEN_LOOP};
use crate::servers::{RunningServer, ServerEnv, ServerKind, PORT};
use crate::topology::Topology;
use linerate_driver::lab::{netns_command, Lab};

pub const SMALL_FILE: &str = "1k.bin";
pub const BULK_FILE: &str = "bulk.bin";
/// The column for scenario 5.
pub const BYPASS_SETUP: &str = "linerate<->linerate";

/// Which part of a repetition a setup runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Every selected scenario at the lab's own MTU.
    Main,
    /// Only the 1-flow bulk download, with the lab at `BenchConfig::bulk_mtu`.
    Mtu,
}

/// The two rows of one bulk case.
fn bulk_rows(case: &str) -> [RowKey; 2] {
    [
        row("2 bulk download", case, "throughput", "Gbit/s", Higher),
        row("2 bulk download", case, "server CPU", "s/GB", Lower),
    ]
}

/// Sets the MTU of both veth ends (nothing may be attached that refuses it: servers are
/// stopped and our XDP program detached between setups).
fn set_lab_mtu(lab: &Lab, mtu: u32) -> anyhow::Result<()> {
    let mtu = mtu.to_string();
    for (ns, dev) in [(lab.app_ns(), lab.app_if()), (lab.kern_ns(), lab.kern_if())] {
        let out = netns_command(ns, "ip").args(["link", "set", "dev", dev, "mtu", &mtu]).output()?;
        anyhow::ensure!(
            out.status.success(),
            "ip link set dev {dev} mtu {mtu}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Which client drives the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Kernel,
    Bypass,
}

#[derive(Debug)]
pub struct HttpRun<'a> {
    pub cfg: &'a BenchConfig,
    pub env: ServerEnv<'a>,
    pub rec: &'a mut Recorder,
    pub notes: &'a mut Vec<String>,
}

impl HttpRun<'_> {
    fn addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.env.topology.server_ip(), PORT)
    }

    fn url(&self, file: &str) -> String {
        format!("http://{}/{file}", self.addr())
    }

    /// The bulk rows of the main pass: (flows, [throughput, server CPU]) per flow count.
    fn bulk_cases(&self) -> Vec<(u32, [RowKey; 2])> {
        let mib = self.cfg.bulk_bytes >> 20;
        let case = |flows: u32| match flows {
            1 => format!("1 flow, {mib} MiB"),
            n => format!("{n} ranged flows, {mib} MiB"),
        };
        self.cfg.bulk_flows.iter().map(|&flows| (flows, bulk_rows(&case(flows)))).collect()
    }

    /// The bulk rows of the large-MTU pass (1 flow), if one was asked for.
    fn mtu_cases(&self) -> Vec<(u32, [RowKey; 2])> {
        let Some(mtu) = self.cfg.bulk_mtu.filter(|_| self.cfg.wants(BULK)) else { return Vec::new() };
        let mib = self.cfg.bulk_bytes >> 20;
        vec![(1, bulk_rows(&format!("1 flow, {mib} MiB, MTU {mtu}")))]
    }

    /// Every row this run fills.
    fn rows(&self) -> Vec<RowKey> {
        let mut rows = Vec::new();
        if self.cfg.wants(BULK) {
            for (_, keys) in self.bulk_cases().into_iter().chain(self.mtu_cases()) {
                rows.extend(keys);
            }
        }
        let case = format!("{} concurrent, GET 1 KiB", self.cfg.short_concurrency);
        if self.cfg.wants(SHORT) {
            rows.push(row("3 short connections", &case, "rate", "conn/s", Higher));
            rows.push(row("3 short connections", &case, "server CPU", "us/conn", Lower));
            rows.push(row("3 short connections", &case, "server side CPU", "us/conn", Lower));
        }
        let case = format!("{} connections, GET 1 KiB", self.cfg.keepalive_connections);
        if self.cfg.wants(KEEPALIVE) {
            rows.push(row("4 keep-alive", &case, "rate", "req/s", Higher));
            for p in ["p50", "p99", "p99.9"] {
                rows.push(row("4 keep-alive", &case, &format!("latency {p}"), "us", Lower));
            }
            // Per server core, as the targets are stated: the rate alone is often the client's.
            rows.push(row("4 keep-alive", &case, "server CPU", "us/req", Lower));
            // The server plus its end's receive path when the lab runs that on the server's core.
            rows.push(row("4 keep-alive", &case, "server side CPU", "us/req", Lower));
            if self.cfg.wrk {
                rows.push(row("4 keep-alive", &case, "wrk rate", "req/s", Higher));
                rows.push(row("4 keep-alive", &case, "wrk latency p99", "us", Lower));
            }
        }
        rows
    }

    /// Marks the main pass's rows (not the large-MTU pass's) as not run for `setup`.
    fn not_run_all(&mut self, setup: &str, reason: &str) {
        let mtu_rows: Vec<RowKey> = self.mtu_cases().into_iter().flat_map(|c| c.1).collect();
        for key in self.rows().into_iter().filter(|k| !mtu_rows.contains(k)) {
            self.rec.not_run(&key, setup, reason);
        }
    }

    /// Runs every repetition over every setup; with `bulk_mtu`, each repetition ends with the
    /// large-MTU bulk pass over the kernel-client setups (the lab's MTU changed and restored).
    pub fn run(&mut self, servers: &[ServerKind]) {
        // Each server's closed-loop keep-alive req/s per repetition: the open loop's yardstick.
        let mut closed: Vec<(ServerKind, Vec<f64>)> = servers.iter().map(|&k| (k, Vec::new())).collect();
        for rep in 1..=self.cfg.repetitions {
            for (&kind, rates) in servers.iter().zip(&mut closed) {
                println!("  rep {rep}/{}: {} (kernel client)", self.cfg.repetitions, kind.label());
                rates.1.extend(self.one_setup(kind, Client::Kernel, rep, Pass::Main));
            }
            if self.cfg.wants(BYPASS_CLIENT) {
                println!("  rep {rep}/{}: {BYPASS_SETUP} (bypass client)", self.cfg.repetitions);
                self.one_setup(ServerKind::Linerate, Client::Bypass, rep, Pass::Main);
            }
            if let Some(mtu) = self.cfg.bulk_mtu.filter(|_| self.cfg.wants(BULK)) {
                self.mtu_pass(servers, rep, mtu);
            }
        }
        if self.cfg.wants(KEEPALIVE) {
            self.open_loop_pass(servers, &closed);
        }
    }

    /// The 1-flow bulk download of every server with the lab at `mtu`.
    fn mtu_pass(&mut self, servers: &[ServerKind], rep: u32, mtu: u32) {
        let cases = self.mtu_cases();
        let Topology::Lab(lab) = self.env.topology else {
            for &kind in servers {
                cases[0]
                    .1
                    .iter()
                    .for_each(|k| self.rec.not_run(k, kind.label(), "the MTU pass runs in the lab only"));
            }
            return;
        };
        let normal = lab.config().mtu;
        if let Err(e) = set_lab_mtu(lab, mtu) {
            let reason = format!("{e:#}");
            println!("    MTU {mtu}: not run: {reason}");
            for &kind in servers {
                cases[0].1.iter().for_each(|k| self.rec.not_run(k, kind.label(), &reason));
            }
            let _ = set_lab_mtu(lab, normal);
            return;
        }
        for &kind in servers {
            println!("  rep {rep}/{}: {} at MTU {mtu} (kernel client)", self.cfg.repetitions, kind.label());
            self.one_setup(kind, Client::Kernel, rep, Pass::Mtu);
        }
        if let Err(e) = set_lab_mtu(lab, normal) {
            self.notes.push(format!("restoring the lab MTU {normal}: {e:#}"));
        }
    }

    /// Runs `pass` against one setup; returns its closed-loop keep-alive req/s if measured.
    fn one_setup(&mut self, kind: ServerKind, client: Client, rep: u32, pass: Pass) -> Option<f64> {
        let setup = if client == Client::Bypass { BYPASS_SETUP } else { kind.label() };
        let not_run = |this: &mut Self, reason: &str| {
            println!("    {setup}: not run: {reason}");
            match pass {
                Pass::Main => this.not_run_all(setup, reason),
                Pass::Mtu => this
                    .mtu_cases()
                    .iter()
                    .flat_map(|c| c.1.iter())
                    .for_each(|k| this.rec.not_run(k, setup, reason)),
            }
        };
        if client == Client::Bypass {
            if let Err(reason) = self.env.linerate.get.clone() {
                not_run(self, &reason);
                return None;
            }
        }
        let server = match self.start_server(kind, client != Client::Bypass) {
            Ok(s) => s,
            Err(reason) => {
                not_run(self, &reason);
                return None;
            }
        };
        match pass {
            Pass::Main if self.cfg.wants(BULK) => self.bulk(&server, client, setup, rep, self.bulk_cases()),
            Pass::Main => {}
            Pass::Mtu => self.bulk(&server, client, setup, rep, self.mtu_cases()),
        }
        let mut keep_alive = None;
        if pass == Pass::Main && (self.cfg.wants(SHORT) || self.cfg.wants(KEEPALIVE)) {
            keep_alive = self.requests(&server, client, setup, rep);
        }
        self.stop_server(kind, server, setup, rep);
        keep_alive
    }

    /// Starts `kind` and waits until it answers a GET of the small file.
    fn start_server(&mut self, kind: ServerKind, kernel_client: bool) -> Result<RunningServer, String> {
        let server = RunningServer::start(kind, &self.env, kernel_client).map_err(|e| format!("{e:#}"))?;
        let probe = LoadJob::Probe { addr: self.addr(), path: format!("/{SMALL_FILE}"), timeout_ms: 5000 };
        match self.env.topology.run_load(&probe, self.cfg.client_core) {
            Ok(_) => Ok(server),
            Err(e) => Err(format!("server did not answer: {e:#}")),
        }
    }

    /// Stops the server (noting if it had died) and takes linerate's XDP program off the link.
    fn stop_server(&mut self, kind: ServerKind, mut server: RunningServer, setup: &str, rep: u32) {
        if !server.alive() {
            self.notes.push(format!("{setup} exited during rep {rep}; see its log in the work directory"));
        }
        drop(server);
        if kind == ServerKind::Linerate {
            if let Err(e) = self.env.topology.detach_server_xdp() {
                self.notes.push(format!("{setup}: {e:#}"));
            }
        }
    }

    /// Runs a load job, returning it only if it completed some work; notes errors.
    fn load(&mut self, job: &LoadJob, setup: &str, what: &str, rep: u32) -> Result<LoadResult, String> {
        let outcome = match self.env.topology.run_load(job, self.cfg.client_core) {
            Ok(r) if r.requests > 0 => {
                if r.errors > 0 {
                    self.notes.push(format!(
                        "{setup}, {what}, rep {rep}: {} errors next to {} completions",
                        r.errors, r.requests
                    ));
                }
                Ok(r)
            }
            Ok(r) => Err(format!("nothing completed ({} errors)", r.errors)),
            Err(e) => Err(format!("{e:#}")),
        };
        // A failed repetition must stay visible even when other repetitions have numbers.
        if let Err(reason) = &outcome {
            self.notes.push(format!("{setup}, {what}, rep {rep}: no sample: {reason}"));
        }
        outcome
    }

    fn bulk(
        &mut self,
        server: &RunningServer,
        client: Client,
        setup: &str,
        rep: u32,
        cases: Vec<(u32, [RowKey; 2])>,
    ) {
        let url = self.url(BULK_FILE);
        for (flows, keys) in cases {
            let job = match client {
                Client::Kernel => LoadJob::Curl {
                    url: url.clone(),
                    size: self.cfg.bulk_bytes,
                    flows,
                    max_secs: self.cfg.bulk_max_secs,
                },
                Client::Bypass => {
                    let (iface, ip) = self.env.topology.client_endpoint();
                    let bin = self.env.linerate.bin.to_string_lossy().into_owned();
                    LoadJob::LinerateGet {
                        bin,
                        url: url.clone(),
                        flows,
                        iface,
                        ip,
                        max_secs: self.cfg.bulk_max_secs,
                    }
                }
            };
            let cpu0 = server.cpu_secs();
            let outcome = self.load_as(client, &job, setup, &keys[0].case, rep);
            match outcome {
                Ok(r) if r.bytes > 0 => {
                    let cpu = server.cpu_secs() - cpu0;
                    println!("    {}: {:.2} Gbit/s, server CPU {cpu:.2} s", keys[0].case, r.gbit_per_sec());
                    self.rec.sample(&keys[0], setup, r.gbit_per_sec());
                    self.rec.sample(&keys[1], setup, cpu / (r.bytes as f64 / 1e9));
                }
                Ok(_) => keys.iter().for_each(|k| self.rec.not_run(k, setup, "no bytes received")),
                Err(reason) => keys.iter().for_each(|k| self.rec.not_run(k, setup, &reason)),
            }
        }
    }

    /// Wraps an HTTP load for `client`: kernel sockets, or our engine over AF_XDP.
    fn http_job(&self, load: HttpLoad, client: Client) -> LoadJob {
        match client {
            Client::Kernel => LoadJob::Http(load),
            Client::Bypass => {
                let (iface, ip) = self.env.topology.client_endpoint();
                LoadJob::BypassHttp { load, iface, ip }
            }
        }
    }

    /// Runs `job` from the bypass client with the client address taken from the kernel meanwhile.
    fn load_as(
        &mut self,
        client: Client,
        job: &LoadJob,
        setup: &str,
        what: &str,
        rep: u32,
    ) -> Result<LoadResult, String> {
        if client == Client::Kernel {
            return self.load(job, setup, what, rep);
        }
        if let Err(e) = self.env.topology.kernel_owns_client_ip(false) {
            self.notes.push(format!("{setup}: {e:#}"));
        }
        let outcome = self.load(job, setup, what, rep);
        if let Err(e) = self.env.topology.kernel_owns_client_ip(true) {
            self.notes.push(format!("{setup}: {e:#}"));
        }
        outcome
    }

    /// Runs `job`, records `values(result, server CPU s, server side CPU s)` into `keys`, and
    /// prints the first value with the cores' busy shares; returns the result if it ran.
    #[allow(clippy::too_many_arguments)]
    fn measure(
        &mut self,
        server: &RunningServer,
        client: Client,
        setup: &str,
        rep: u32,
        keys: &[RowKey],
        job: LoadJob,
        values: &dyn Fn(&LoadResult, f64, f64) -> Vec<f64>,
    ) -> Option<LoadResult> {
        // Cores busy (anything, other load included) only as context for the reader.
        let (server_core, client_core) = (self.cfg.server_core, self.cfg.client_core);
        let busy = || (crate::sys::core_busy_secs(server_core), crate::sys::core_busy_secs(client_core));
        let napi0 = self.env.topology.server_napi_cpu_secs();
        let (cpu0, busy0, started) = (server.cpu_secs(), busy(), std::time::Instant::now());
        match self.load_as(client, &job, setup, &keys[0].case, rep) {
            Ok(r) => {
                let (busy1, wall) = (busy(), started.elapsed().as_secs_f64());
                let cpu = server.cpu_secs() - cpu0;
                let v = values(&r, cpu, cpu + self.env.topology.server_napi_cpu_secs() - napi0);
                println!(
                    "    {} {}: {:.0} {} (cores busy: server {:.0} %, client {:.0} %)",
                    keys[0].scenario,
                    keys[0].metric,
                    v[0],
                    keys[0].unit,
                    100.0 * (busy1.0 - busy0.0) / wall,
                    100.0 * (busy1.1 - busy0.1) / wall
                );
                keys.iter().zip(v).for_each(|(k, v)| self.rec.sample(k, setup, v));
                Some(r)
            }
            Err(reason) => {
                keys.iter().for_each(|k| self.rec.not_run(k, setup, &reason));
                None
            }
        }
    }

    /// Scenarios 3 and 4 (closed loop) against a running server; returns the keep-alive req/s.
    fn requests(&mut self, server: &RunningServer, client: Client, setup: &str, rep: u32) -> Option<f64> {
        let rows: Vec<RowKey> = self.rows().into_iter().filter(|k| !k.scenario.starts_with('2')).collect();
        let path = format!("/{SMALL_FILE}");
        let secs = self.cfg.secs;
        let mut at = 0;
        if self.cfg.wants(SHORT) {
            let load = HttpLoad {
                addr: self.addr(),
                path: path.clone(),
                connections: self.cfg.short_concurrency,
                secs,
                keep_alive: false,
            };
            let per_conn = |r: &LoadResult, cpu: f64, side: f64| {
                let n = r.requests as f64;
                vec![r.per_sec(), cpu / n * 1e6, side / n * 1e6]
            };
            let job = self.http_job(load, client);
            self.measure(server, client, setup, rep, &rows[0..3], job, &per_conn);
            at = 3;
        }
        if !self.cfg.wants(KEEPALIVE) {
            return None;
        }
        let load = HttpLoad {
            addr: self.addr(),
            path,
            connections: self.cfg.keepalive_connections,
            secs,
            keep_alive: true,
        };
        let lat = |r: &LoadResult, cpu: f64, side: f64| {
            let l = r.latency_us.unwrap_or_default();
            let n = r.requests.max(1) as f64;
            vec![r.per_sec(), l.p50, l.p99, l.p999.unwrap_or(f64::NAN), cpu / n * 1e6, side / n * 1e6]
        };
        let job = self.http_job(load, client);
        let keep_alive = self.measure(server, client, setup, rep, &rows[at..at + 6], job, &lat);
        at += 6;
        if self.cfg.wrk && client == Client::Bypass {
            let reason = "wrk runs on kernel sockets only";
            rows[at..at + 2].iter().for_each(|k| self.rec.not_run(k, setup, reason));
        } else if self.cfg.wrk {
            let job = LoadJob::Wrk {
                url: self.url(SMALL_FILE),
                connections: self.cfg.keepalive_connections,
                secs: secs.ceil().max(1.0) as u32,
            };
            let wrk =
                |r: &LoadResult, _: f64, _: f64| vec![r.per_sec(), r.latency_us.unwrap_or_default().p99];
            self.measure(server, client, setup, rep, &rows[at..at + 2], job, &wrk);
        }
        keep_alive.map(|r| r.per_sec())
    }
}

/// The rows of one open-loop case of scenario 4.
fn open_loop_rows(case: &str) -> [RowKey; 11] {
    let r = |metric: &str, unit: &str, better| row("4 keep-alive", case, metric, unit, better);
    [
        r("offered rate", "req/s", Higher),
        r("achieved rate", "req/s", Higher),
        r("latency p50", "us", Lower),
        r("latency p99", "us", Lower),
        r("latency p99.9", "us", Lower),
        // The two parts of the response time, so a reader sees which side was late.
        r("send delay p99", "us", Lower),
        r("service p99", "us", Lower),
        r("server side CPU", "us/req", Lower),
        // The generator thread: near the client core's capacity, latency is partly the client's.
        r("client CPU", "us/req", Lower),
        // Time the generator waited for its core: other load on the client core, not a server.
        r("client run-queue wait", "ms/s", Lower),
        // The same for the server's threads (all of them, summed) on the server core.
        r("server run-queue wait", "ms/s", Lower),
    ]
}

/// One open-loop case: its table label and offered rate (`None`: it cannot run, see the note).
#[derive(Debug, Clone, PartialEq)]
pub struct OpenLoopCase {
    pub case: String,
    pub rate_per_sec: Option<f64>,
}

/// The open-loop cases of a run and a note saying where their rates came from.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenLoopPlan {
    pub cases: Vec<OpenLoopCase>,
    pub note: String,
}

/// Derives the offered rates: fixed, or fractions of the lowest of the servers' closed-loop
/// keep-alive medians (`closed`: setup label and median, `None` where it did not run), so every
/// server is offered exactly the same rate. Empty when the open loop is off.
pub fn open_loop_plan(
    rates: &OpenLoopRates,
    connections: u32,
    closed: &[(&str, Option<f64>)],
) -> OpenLoopPlan {
    let label = |what: String| format!("{connections} connections, GET 1 KiB, {OPEN_LOOP} at {what}");
    match rates {
        OpenLoopRates::Off => OpenLoopPlan { cases: Vec::new(), note: String::new() },
        OpenLoopRates::Fixed(r) => OpenLoopPlan {
            cases: r
                .iter()
                .map(|&r| OpenLoopCase { case: label(format!("{r:.0} req/s")), rate_per_sec: Some(r) })
                .collect(),
            note: format!("scenario 4 open loop: fixed offered rates {r:?} req/s (--open-loop-rates)"),
        },
        OpenLoopRates::OfSlowest(fractions) => {
            let slowest = closed
                .iter()
                .filter_map(|&(setup, m)| m.filter(|m| *m > 0.0).map(|m| (setup, m)))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            let cases = fractions.iter().map(|f| OpenLoopCase {
                case: label(format!("{:.0} % of the slowest closed loop", f * 100.0)),
                rate_per_sec: slowest.map(|(_, base)| (f * base).round().max(1.0)),
            });
            let cases: Vec<OpenLoopCase> = cases.collect();
            let note = match slowest {
                Some((setup, base)) => {
                    let offered: Vec<String> = cases
                        .iter()
                        .zip(fractions)
                        .map(|(c, f)| format!("{:.0} % = {:.0}", f * 100.0, c.rate_per_sec.unwrap_or(0.0)))
                        .collect();
                    format!(
                        "scenario 4 open loop: offered {} req/s to every server, of {setup}'s closed-loop \
                         keep-alive median {base:.0} req/s (the slowest this run); latency counted from each \
                         request's due time on a fixed round-robin timetable",
                        offered.join(", ")
                    )
                }
                None => "scenario 4 open loop: no server has a closed-loop keep-alive rate to derive the \
                         offered rate from (pass --open-loop-rates)"
                    .to_owned(),
            };
            OpenLoopPlan { cases, note }
        }
    }
}

impl HttpRun<'_> {
    /// Scenario 4's open-loop part, after every repetition of the closed-loop part: each
    /// server again, at the same offered rates, the order of the servers reversed every other
    /// repetition. Kernel client only (the bypass client has no open-loop generator).
    fn open_loop_pass(&mut self, servers: &[ServerKind], closed: &[(ServerKind, Vec<f64>)]) {
        let medians: Vec<(&str, Option<f64>)> = closed.iter().map(|(k, v)| (k.label(), median(v))).collect();
        let plan = open_loop_plan(&self.cfg.open_loop, self.cfg.keepalive_connections, &medians);
        if plan.cases.is_empty() {
            return;
        }
        println!("  {}", plan.note);
        self.notes.push(plan.note.clone());
        let reps = self.cfg.repetitions;
        for rep in 1..=reps {
            let mut order = servers.to_vec();
            if rep % 2 == 0 {
                order.reverse();
            }
            for kind in order {
                let setup = kind.label();
                println!("  rep {rep}/{reps}: {setup}, open loop (kernel client)");
                let mut runnable = Vec::new();
                for c in &plan.cases {
                    match c.rate_per_sec {
                        Some(rate) => runnable.push((c.case.clone(), rate)),
                        None => open_loop_rows(&c.case)
                            .iter()
                            .for_each(|k| self.rec.not_run(k, setup, &plan.note)),
                    }
                }
                if runnable.is_empty() {
                    continue;
                }
                let server = match self.start_server(kind, true) {
                    Ok(s) => s,
                    Err(reason) => {
                        println!("    {setup}: not run: {reason}");
                        for (case, _) in &runnable {
                            open_loop_rows(case).iter().for_each(|k| self.rec.not_run(k, setup, &reason));
                        }
                        continue;
                    }
                };
                for (case, rate) in &runnable {
                    self.open_loop_sample(&server, setup, rep, case, *rate);
                }
                self.stop_server(kind, server, setup, rep);
            }
        }
    }

    fn open_loop_sample(&mut self, server: &RunningServer, setup: &str, rep: u32, case: &str, rate: f64) {
        let keys = open_loop_rows(case);
        let load = OpenLoopLoad {
            addr: self.addr(),
            path: format!("/{SMALL_FILE}"),
            connections: self.cfg.keepalive_connections,
            secs: self.cfg.secs,
            rate_per_sec: rate,
        };
        let (waited0, started) = (crate::sys::tree_run_queue_secs(server.pid()), std::time::Instant::now());
        let values = |r: &LoadResult, _: f64, side: f64| {
            // Over the whole job, start-up included: its wall time, not the load's window.
            let server_waited = (crate::sys::tree_run_queue_secs(server.pid()) - waited0)
                / started.elapsed().as_secs_f64().max(1e-9);
            let ol = r.open_loop.clone().unwrap_or_default();
            let l = r.latency_us.unwrap_or_default();
            let p99 = |p: Option<Percentiles>| p.map_or(f64::NAN, |p| p.p99);
            let n = r.requests.max(1) as f64;
            vec![
                ol.offered_per_sec,
                r.per_sec(),
                l.p50,
                l.p99,
                l.p999.unwrap_or(f64::NAN),
                p99(ol.send_delay_us),
                p99(ol.service_us),
                side / n * 1e6,
                ol.cpu_secs / n * 1e6,
                ol.run_queue_secs / r.secs.max(1e-9) * 1e3,
                server_waited * 1e3,
            ]
        };
        let job = LoadJob::OpenLoop(load);
        let Some(r) = self.measure(server, Client::Kernel, setup, rep, &keys, job, &values) else { return };
        let ol = r.open_loop.clone().unwrap_or_default();
        let l = r.latency_us.unwrap_or_default();
        println!(
            "      achieved {:.0} req/s, latency p50 {:.0} / p99 {:.0} / p99.9 {:.0} us, send delay p99 {:.0} us, \
             service p99 {:.0} us, unfinished {}, client CPU {:.1} us/req, client run-queue wait {:.0} ms/s",
            r.per_sec(),
            l.p50,
            l.p99,
            l.p999.unwrap_or(f64::NAN),
            ol.send_delay_us.map_or(f64::NAN, |p| p.p99),
            ol.service_us.map_or(f64::NAN, |p| p.p99),
            ol.unfinished,
            ol.cpu_secs / r.requests.max(1) as f64 * 1e6,
            ol.run_queue_secs / r.secs.max(1e-9) * 1e3
        );
        if ol.unfinished > 0 {
            self.notes.push(format!(
                "{setup}, {case}, rep {rep}: {} of {} requests unfinished at the end (in the latency with their \
                 wait so far): the server or the client did not keep up with the offered rate",
                ol.unfinished, ol.scheduled
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loop_rates_come_from_the_slowest_server_and_are_the_same_for_all() {
        let closed = [("linerate", Some(80_000.0)), ("nginx", Some(48_000.0)), ("kernel_server", None)];
        let plan = open_loop_plan(&OpenLoopRates::OfSlowest(vec![0.5, 0.8]), 64, &closed);
        let rates: Vec<Option<f64>> = plan.cases.iter().map(|c| c.rate_per_sec).collect();
        assert_eq!(rates, [Some(24_000.0), Some(38_400.0)]);
        assert_eq!(
            plan.cases[0].case,
            "64 connections, GET 1 KiB, open loop at 50 % of the slowest closed loop"
        );
        assert!(plan.note.contains("nginx's closed-loop keep-alive median 48000"), "{}", plan.note);

        let none = open_loop_plan(&OpenLoopRates::OfSlowest(vec![0.5]), 64, &[("nginx", None)]);
        assert_eq!(none.cases.len(), 1);
        assert_eq!(none.cases[0].rate_per_sec, None);
        assert!(none.note.contains("--open-loop-rates"));

        let fixed = open_loop_plan(&OpenLoopRates::Fixed(vec![1000.0]), 8, &[]);
        assert_eq!(fixed.cases[0].case, "8 connections, GET 1 KiB, open loop at 1000 req/s");
        assert_eq!(fixed.cases[0].rate_per_sec, Some(1000.0));
        assert!(open_loop_plan(&OpenLoopRates::Off, 64, &closed).cases.is_empty());
    }
}
