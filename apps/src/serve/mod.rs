//! `linerate serve`: the HTTP/1.1 file server on the bypass stack, one shard, run to completion.
//!
//! Each loop iteration reads the clock once, then: receive a burst → engine timers → the
//! application events (accept, pump each connection that has news) → HTTP deadlines (swept every
//! [`SWEEP`]) → transmit a burst. With nothing to do it sleeps in `poll(2)` on the AF_XDP sockets
//! until the next frame or deadline rather than spinning.
//!
//! SIGINT/SIGTERM: the listener closes (no new connections), idle keep-alive connections are
//! closed, responses in flight are finished, and the loop ends when every connection is gone or
//! [`ServeOptions::drain_timeout`] passes. Exit status 0 either way.

pub mod conn;

use crate::bypass::{Bypass, LinkOptions};
use crate::http::{HttpConfig, Site};
use crate::kernel_server::pin_to_core;
use anyhow::Context;
use conn::{Conn, Step};
use linerate_driver::shard::signal::{install_shutdown_handlers, shutdown_requested};
use linerate_stack::engine::{ConnectionHandle, Event, ListenerHandle};
use linerate_stack::tcp::{CongestionAlgorithm, SocketOptions};
use linerate_stack::time::{Duration, Instant};
use std::path::PathBuf;
use std::sync::Arc;

/// How often HTTP deadlines (header timeout, idle timeout, close linger) are checked.
const SWEEP: Duration = Duration::from_millis(100);
/// Largest file chunk copied into a send buffer at once.
const SCRATCH: usize = 256 * 1024;
/// SYN and accept queue bound of the listener.
const BACKLOG: usize = 1024;

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
    /// CPUs offered; the single shard runs on the first.
    pub cores: Vec<usize>,
    pub http: HttpConfig,
    pub drain_timeout: Duration,
    pub log_level: LogLevel,
    /// Congestion controller of every accepted connection (`--cc`).
    pub congestion: CongestionAlgorithm,
}

/// Runs the server until SIGINT/SIGTERM; prints one startup line on stdout.
pub fn run(opts: &ServeOptions) -> anyhow::Result<()> {
    install_shutdown_handlers()?;
    if let Some(&core) = opts.cores.first() {
        pin_to_core(core)?;
    }
    // The root is checked before anything is attached, so a typo leaves the interface alone.
    let root_ok = std::fs::metadata(&opts.root).map(|m| m.is_dir()).unwrap_or(false);
    if !root_ok {
        anyhow::bail!("--root {}: not a readable directory", opts.root.display());
    }
    let bypass = Bypass::open(&opts.link)?;
    let site = Site::open(&opts.root, opts.http, bypass.clock.unix_nanos_at_zero())
        .with_context(|| format!("cannot serve {}", opts.root.display()))?;
    let mut server = Server::new(bypass, Arc::new(site), opts)?;
    println!("{}", server.startup_line(opts));
    std::io::Write::flush(&mut std::io::stdout())?;
    server.run(opts.drain_timeout);
    if opts.log_level < LogLevel::Info {
        return Ok(());
    }
    let s = server.bypass.engine.stats();
    let xdp = server.bypass.nic.kernel_drops();
    eprintln!(
        "linerate serve: stopped after {} connections, {} requests; segments in {} out {} retransmitted {} \
         (fast retransmits {}, timeouts {}); \
         listen drops {} (overflows {}), memory refusals {}, AF_XDP drops {xdp}, transmit refusals {}",
        server.accepted,
        server.requests,
        s.in_segs,
        s.out_segs,
        s.retrans_segs,
        s.fast_retrans,
        s.timeouts,
        s.listen_drops,
        s.listen_overflows,
        s.memory_refused,
        s.tx_ring_full
    );
    Ok(())
}

struct Server {
    bypass: Bypass,
    site: Arc<Site>,
    listener: Option<ListenerHandle>,
    /// Indexed by the engine's connection slot.
    conns: Vec<Option<Conn>>,
    open: usize,
    scratch: Vec<u8>,
    accepted: u64,
    requests: u64,
    log_level: LogLevel,
}

impl Server {
    fn new(mut bypass: Bypass, site: Arc<Site>, opts: &ServeOptions) -> anyhow::Result<Server> {
        let sockopts =
            SocketOptions { send_buffer: 1 << 20, congestion: opts.congestion, ..SocketOptions::default() };
        let listener = bypass
            .engine
            .listen(opts.port, BACKLOG, Some(sockopts))
            .with_context(|| format!("cannot listen on port {}", opts.port))?;
        Ok(Server {
            bypass,
            site,
            listener: Some(listener),
            conns: Vec::new(),
            open: 0,
            scratch: vec![0u8; SCRATCH],
            accepted: 0,
            requests: 0,
            log_level: opts.log_level,
        })
    }

    fn startup_line(&self, opts: &ServeOptions) -> String {
        let core = match opts.cores.as_slice() {
            [] => "any core".to_owned(),
            [c] => format!("core {c}"),
            [c, ..] => format!("core {c} (1 shard: multi-core sharding is not implemented yet)"),
        };
        let link = &opts.link;
        format!(
            "linerate serve: iface {} xdp {} queues {} {core} address {}/{} port {} root {}",
            self.bypass.ifname(),
            self.bypass.xdp_mode().as_str(),
            self.bypass.nic.queues().len(),
            link.addr,
            link.prefix_len,
            opts.port,
            opts.root.display()
        )
    }

    fn run(&mut self, drain_timeout: Duration) {
        let mut next_sweep = Instant::ZERO;
        let mut drain_until: Option<Instant> = None;
        loop {
            let now = self.bypass.clock.now();
            let rx = self.bypass.receive(now);
            let mut busy = self.handle_events(now);
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + SWEEP;
            }
            if drain_until.is_none() && shutdown_requested() {
                drain_until = Some(now + drain_timeout);
                if let Some(l) = self.listener.take() {
                    let _ = self.bypass.engine.unlisten(now, l);
                }
            }
            if let Some(until) = drain_until {
                busy |= self.close_idle(now);
                if self.open == 0 || now >= until {
                    self.bypass.transmit(now);
                    break;
                }
            }
            let tx = self.bypass.transmit(now);
            if rx == 0 && tx == 0 && !busy {
                self.bypass.wait(now, Some(next_sweep));
            }
        }
        self.bypass.nic.flush_capture();
    }

    /// Handles every pending engine event; true if any arrived.
    fn handle_events(&mut self, now: Instant) -> bool {
        let mut any = false;
        while let Some(event) = self.bypass.engine.poll_event() {
            any = true;
            match event {
                Event::Incoming(l) => self.accept_all(now, l),
                Event::Connected(h)
                | Event::Readable(h)
                | Event::Writable(h)
                | Event::ReadClosed(h)
                | Event::SendComplete(h)
                | Event::Closed { conn: h, .. } => self.pump(now, h),
            }
        }
        any
    }

    fn accept_all(&mut self, now: Instant, l: ListenerHandle) {
        while let Ok(Some(h)) = self.bypass.engine.accept(l) {
            let i = h.index as usize;
            if self.conns.len() <= i {
                self.conns.resize_with(i + 1, || None);
            }
            if let Some(stale) = self.conns[i].take() {
                // The engine reused the slot, so the old connection is gone: account for it.
                self.requests += stale.requests();
                self.open -= 1;
            }
            self.conns[i] = Some(Conn::new(h, self.site.clone(), now));
            self.open += 1;
            self.accepted += 1;
            // Data may have arrived with the handshake's last ACK, before we held the handle.
            self.pump(now, h);
        }
    }

    fn pump(&mut self, now: Instant, h: ConnectionHandle) {
        let Some(slot) = self.conns.get_mut(h.index as usize) else { return };
        let Some(conn) = slot.as_mut().filter(|c| c.handle == h) else { return };
        let step = conn.pump(now, &mut self.bypass.engine, &mut self.scratch);
        self.settle(h.index as usize, step);
    }

    fn settle(&mut self, i: usize, step: Step) {
        if step == Step::Finished {
            if let Some(conn) = self.conns[i].take() {
                self.requests += conn.requests();
                self.open -= 1;
                if self.log_level >= LogLevel::Debug {
                    eprintln!("linerate serve: connection {i} done after {} request(s)", conn.requests());
                }
            }
        }
    }

    /// Applies due HTTP deadlines and re-checks closing connections.
    fn sweep(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            let Some(conn) = self.conns[i].as_mut() else { continue };
            // Open connections are driven by events; only deadlines and FIN acknowledgments
            // (which raise no event) need a look here.
            let step = match conn.next_deadline() {
                Some(t) if t <= now => conn.on_timeout(now, &mut self.bypass.engine, &mut self.scratch),
                _ if conn.is_closing() => conn.pump(now, &mut self.bypass.engine, &mut self.scratch),
                _ => continue,
            };
            self.settle(i, step);
        }
    }

    /// Draining: starts closing connections with nothing in progress. True if any was closed.
    fn close_idle(&mut self, now: Instant) -> bool {
        let mut any = false;
        for i in 0..self.conns.len() {
            let Some(conn) = self.conns[i].as_mut() else { continue };
            if conn.is_idle() {
                let step = conn.close_idle(now, &mut self.bypass.engine);
                self.settle(i, step);
                any = true;
            }
        }
        any
    }
}
