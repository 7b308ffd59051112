//! `linerate serve`: the HTTP/1.1 file server on the bypass stack, one shard per listed core.
//!
//! Structure: [`run`] attaches to the interface and splits it into shards
//! ([`crate::bypass::ShardedLink`]: the queues dealt round-robin, one engine per shard), gives
//! each shard an [`HttpShard`] listening on the port, and hands them to the shard runtime
//! (`linerate_driver::shard`), which pins one thread per core and runs each shard's
//! run-to-completion loop: receive a burst → hand misdirected frames to their shard → engine
//! timers → HTTP (accept, pump connections, deadlines) → transmit a burst; idle shards sleep in
//! `ppoll(2)` on their AF_XDP sockets. Shards share only the read-only [`Site`].
//!
//! File bodies ([`body`]): 64 KiB and more are mapped ([`mapped`], guarded against truncation)
//! and lent to the engine, which copies them once, straight into NIC frames; each shard has a
//! prefetch thread ([`prefetch`], on the `--io-cores`) that locks the ranges in ahead of sending
//! ([`pagelock`], within a budget) and unmaps finished mappings, so disk waits, page faults and
//! `munmap` stay off the packet loop. Shorter bodies are read into the send ring without waiting
//! for the disk ([`nowait`]); uncached ones are read in by the prefetch thread first.
//!
//! Live counters: [`ServeHandle`] (given to an optional observer before the shards start) reads
//! every shard's engine, hand-off and HTTP counters lock-free while they run, e.g. for a stats
//! socket.
//!
//! SIGINT/SIGTERM: each shard closes its listener and idle keep-alive connections and finishes
//! responses in flight (up to [`ServeOptions::drain_timeout`]), then aborts what is left, then
//! lets closing connections run out (bounded). A panicking shard stops every shard and the
//! process exits with the shard and the panic message. Exit status 0 after a clean shutdown.

pub mod body;
pub mod conn;
pub mod mapped;
pub mod nowait;
pub mod pagelock;
pub mod prefetch;
pub mod shard;

use crate::bypass::{LinkOptions, ShardParts, ShardedLink};
use crate::control::ControlServer;
use crate::http::{HttpConfig, Site};
use anyhow::Context;
use linerate_driver::shard::{
    EngineShard, Mesh, MonotonicClock, RuntimeConfig, RuntimeStats, ShardRuntime, ShardStats, StopHandle,
};
use linerate_stack::tcp::listener::{FastOpenListen, ListenerHandshake, SynCookieMode};
use linerate_stack::tcp::{CongestionAlgorithm, SocketOptions};
use linerate_stack::time::{Clock, Duration};
use prefetch::{PrefetchConfig, Prefetcher};
use shard::{HttpCounters, HttpShard};
use std::path::PathBuf;
use std::sync::Arc;

/// SYN and accept queue bound of each shard's listener.
const BACKLOG: usize = 1024;
/// Frames each ring between two shards holds (hand-off of misdirected frames).
const HANDOFF_RING: usize = 256;

/// How much `serve` reports on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings (there are none yet besides errors).
    Warn,
    /// Plus the summary line at exit.
    Info,
    /// Plus one line per finished connection.
    Debug,
}

impl LogLevel {
    pub fn parse(s: &str) -> anyhow::Result<LogLevel> {
        Ok(match s {
            "error" => LogLevel::Error,
            "warn" => LogLevel::Warn,
            "info" => LogLevel::Info,
            "debug" => LogLevel::Debug,
            _ => anyhow::bail!("--log-level {s:?} must be error, warn, info or debug"),
        })
    }
}

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub link: LinkOptions,
    pub port: u16,
    pub root: PathBuf,
    /// One shard per entry, pinned to that CPU (a CPU may repeat); empty: one shard on the
    /// first CPU this process may use.
    pub cores: Vec<usize>,
    /// CPUs the prefetch threads run on (`--io-cores`); `None`: the CPUs this process may use
    /// that are not in `cores` (unpinned if there are none).
    pub io_cores: Option<Vec<usize>>,
    pub http: HttpConfig,
    pub drain_timeout: Duration,
    pub log_level: LogLevel,
    /// `--syncookies`.
    pub syn_cookies: SynCookieMode,
    /// `--tfo`: server-side TCP Fast Open on the listener.
    pub fast_open: bool,
    /// Congestion controller of every accepted connection (`--cc`).
    pub congestion: CongestionAlgorithm,
    /// BBR's random-loss tolerance (`--bbr-random-loss`, [`SocketOptions::bbr_tolerate_random_loss`]).
    pub bbr_tolerate_random_loss: bool,
    /// Pacing of every accepted connection (`--pacing`, [`SocketOptions::pacing`]).
    pub pacing: bool,
    /// The `linerate stats` socket; `None` means [`crate::control::default_socket_path`].
    pub control_socket: Option<PathBuf>,
}

/// What a shard of the server publishes.
pub type ServeStats = ShardStats<HttpCounters>;

/// A running server seen from outside its shards: live counters and the stop switch.
#[derive(Debug)]
pub struct ServeHandle<'a> {
    runtime: &'a ShardRuntime<ServeStats>,
}

impl ServeHandle<'_> {
    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.runtime.shards()
    }
    /// Counters of every shard summed, read without stopping them.
    pub fn total(&self) -> ServeStats {
        self.runtime.work_stats()
    }
    /// Counters of one shard.
    pub fn shard(&self, shard: usize) -> Option<ServeStats> {
        self.runtime.shard_work_stats(shard)
    }
    /// Starts the same phased shutdown as SIGTERM.
    pub fn stop_handle(&self) -> StopHandle {
        self.runtime.stop_handle()
    }
}

/// Runs the server until SIGINT/SIGTERM; prints one startup line on stdout.
pub fn run(opts: &ServeOptions) -> anyhow::Result<()> {
    run_observed(opts, |_| {})
}

/// [`run`], calling `observe` on the main thread once the shards run (it may keep reading the
/// handle until the server stops, e.g. serving a stats socket, and must return for `run` to end).
pub fn run_observed(opts: &ServeOptions, observe: impl FnOnce(&ServeHandle<'_>)) -> anyhow::Result<()> {
    // The root is checked before anything is attached, so a typo leaves the interface alone.
    let root_ok = std::fs::metadata(&opts.root).map(|m| m.is_dir()).unwrap_or(false);
    if !root_ok {
        anyhow::bail!("--root {}: not a readable directory", opts.root.display());
    }
    let cores = match opts.cores.as_slice() {
        [] => vec![first_allowed_core()?],
        cores => cores.to_vec(),
    };
    let io_cores = io_cores(opts.io_cores.as_deref(), &cores)?;
    let clock = MonotonicClock::new();
    let unix_at_zero = crate::bypass::clock::unix_nanos_at_monotonic_zero();
    let (link, parts) = ShardedLink::open(&opts.link, cores.len(), clock.now(), unix_at_zero)?;
    let site = Arc::new(
        Site::open(&opts.root, opts.http, unix_at_zero)
            .with_context(|| format!("cannot serve {}", opts.root.display()))?,
    );
    let control_path = opts.control_socket.clone().unwrap_or_else(|| {
        crate::control::default_socket_path(opts.link.netns.as_deref(), &opts.link.iface, opts.port)
    });
    let control = ControlServer::start(&control_path, cores.len())?;
    let startup = format!(
        "{} io-cores {} control {}",
        startup_line(opts, &link, &parts, &cores),
        cpu_list(&io_cores),
        control.path().display()
    );
    let prefetch = PrefetchConfig { io_cores, lock_budget: pagelock::LOCK_BUDGET };
    let works = build_shards(opts, &link, parts, &site, &control, &prefetch)?;
    let config = RuntimeConfig { drain_deadline: opts.drain_timeout, ..RuntimeConfig::default() };
    let runtime = ShardRuntime::start_each(config, &cores, works)?;
    println!("{startup}");
    std::io::Write::flush(&mut std::io::stdout())?;
    observe(&ServeHandle { runtime: &runtime });
    let stats = runtime.join()?;
    drop(control);
    drop(link);
    if opts.log_level >= LogLevel::Info {
        report(&stats);
    }
    Ok(())
}

/// The prefetch threads' CPUs: the ones asked for (each must be allowed), or by default the
/// allowed ones no shard uses; empty means unpinned.
fn io_cores(asked: Option<&[usize]>, shard_cores: &[usize]) -> anyhow::Result<Vec<usize>> {
    let allowed = core_ids();
    match asked {
        Some(cores) => match cores.iter().find(|c| !allowed.contains(c)) {
            Some(c) => {
                anyhow::bail!("--io-cores: this process may not run on CPU {c} (allowed: {allowed:?})")
            }
            None => Ok(cores.to_vec()),
        },
        None => Ok(allowed.into_iter().filter(|c| !shard_cores.contains(c)).collect()),
    }
}

/// `0,2,3` for a CPU list, or `unpinned` for none.
fn cpu_list(cores: &[usize]) -> String {
    if cores.is_empty() {
        return "unpinned".to_owned();
    }
    cores.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

fn first_allowed_core() -> anyhow::Result<usize> {
    let cores = core_ids();
    cores.first().copied().context("this process may run on no CPU (check its affinity)")
}

/// The CPUs this process may run on.
fn core_ids() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed; pid 0 is this thread.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Vec::new();
    }
    // SAFETY: CPU_ISSET reads the set we own, with an index below CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
}

/// One [`EngineShard`] per part, each listening on the port.
fn build_shards(
    opts: &ServeOptions,
    link: &ShardedLink,
    parts: Vec<ShardParts>,
    site: &Arc<Site>,
    control: &ControlServer,
    prefetch: &PrefetchConfig,
) -> anyhow::Result<Vec<EngineShard<crate::bypass::Nic, HttpShard>>> {
    let steering = link.steering();
    let sockopts = SocketOptions {
        send_buffer: 1 << 20,
        congestion: opts.congestion,
        bbr_tolerate_random_loss: opts.bbr_tolerate_random_loss,
        pacing: opts.pacing,
        ..SocketOptions::default()
    };
    let mut links = Mesh::new(parts.len(), HANDOFF_RING).into_iter();
    let mut works = Vec::with_capacity(parts.len());
    for (shard, mut part) in parts.into_iter().enumerate() {
        let listener = part
            .engine
            .listen(opts.port, BACKLOG, Some(sockopts))
            .with_context(|| format!("cannot listen on port {}", opts.port))?;
        let handshake = ListenerHandshake {
            syn_cookies: Some(opts.syn_cookies),
            fast_open: opts.fast_open.then(FastOpenListen::default),
        };
        part.engine.set_listener_handshake(listener, handshake)?;
        let prefetcher = Prefetcher::spawn(format!("lr-prefetch-{shard}"), prefetch).with_context(|| {
            format!("cannot start the file prefetch thread on --io-cores {}", cpu_list(&prefetch.io_cores))
        })?;
        let app = HttpShard::new(site.clone(), listener, opts.log_level, prefetcher)
            .with_control(control.publisher(shard));
        let links = links.next().context("one mesh end per shard")?;
        works.push(EngineShard::new(
            part.engine,
            part.nic,
            links,
            steering.router(shard),
            steering.opener(shard),
            app,
        ));
    }
    Ok(works)
}

fn startup_line(opts: &ServeOptions, link: &ShardedLink, parts: &[ShardParts], cores: &[usize]) -> String {
    let shards: Vec<String> =
        parts.iter().zip(cores).map(|(p, core)| format!("{core}:{:?}", p.queues)).collect();
    format!(
        "linerate serve: iface {} xdp {} queues {} shards {} (core:queues {}) steering {} address {}/{} port {} root {}",
        link.ifname(),
        link.xdp_mode().as_str(),
        link.rx_queues(),
        parts.len(),
        shards.join(" "),
        link.steering().mode_name(),
        opts.link.addr,
        opts.link.prefix_len,
        opts.port,
        opts.root.display()
    )
}

/// The summary on stderr at exit: totals, then one line per shard when there are several.
fn report(stats: &RuntimeStats<ServeStats>) {
    let total = &stats.total;
    let s = total.engine.to_stats();
    eprintln!(
        "linerate serve: stopped after {} connections, {} requests; segments in {} out {} retransmitted {} \
         (fast retransmits {}, timeouts {}); listen drops {} (overflows {}), memory refusals {}, \
         transmit refusals {}; SYN cookies sent {} validated {} failed {}; Fast Open accepted {} \
         fell back {}; frames handed off {} (ring full {}); bodies lent {} read {} cut short {}; \
         reads deferred {} blocking {}; bytes locked {} (now {}), not locked: over budget {} refused {}; \
         unmaps off shard {} inline {}; files opened off shard {}; upload jobs off shard {} (buffers at most {})",
        total.app.accepted,
        total.app.requests,
        s.in_segs,
        s.out_segs,
        s.retrans_segs,
        s.fast_retrans,
        s.timeouts,
        s.listen_drops,
        s.listen_overflows,
        s.memory_refused,
        s.tx_ring_full,
        s.syncookies_sent,
        s.syncookies_recv,
        s.syncookies_failed,
        s.tfo_passive,
        s.tfo_passive_fail,
        total.shard.handed_off,
        total.shard.handoff_ring_full,
        total.app.files.lent,
        total.app.files.read,
        total.app.files.cut,
        total.app.files.reads_deferred,
        total.app.files.reads_blocking,
        total.app.files.locked_total,
        total.app.files.locked_bytes,
        total.app.files.lock_over_budget,
        total.app.files.lock_failed,
        total.app.files.unmaps_off_shard,
        total.app.files.unmaps_inline,
        total.app.files.opens_off_shard,
        total.app.files.upload_jobs,
        total.app.files.upload_buffers_peak,
    );
    if stats.shards.len() < 2 {
        return;
    }
    for summary in &stats.shards {
        let w = &summary.work;
        eprintln!(
            "linerate serve: shard {} core {}: connections {} requests {} rx frames {} handed off {} received {} ring full {}",
            summary.shard,
            summary.core,
            w.app.accepted,
            w.app.requests,
            w.shard.rx_frames,
            w.shard.handed_off,
            w.shard.handoff_received,
            w.shard.handoff_ring_full,
        );
    }
}
