//! [`HttpShard`]: the file server's application instance on one shard.
//!
//! Owns this shard's listener (every shard listens on the port; the NIC's RSS decides which
//! shard a client's SYN reaches, and the connection stays there) and the HTTP connections it
//! accepted. Each turn: handle the engine's events (accept, pump each connection that has
//! news), then apply HTTP deadlines (swept every [`SWEEP`]). Publishes [`HttpCounters`].
//!
//! Finished connections go to a bounded pool ([`SPARE_CONNS`]) and the next accepts take them
//! back with their buffers (`conn.rs`): in steady state accepting and finishing a connection
//! allocates nothing, and touches no shared reference count (a pooled connection keeps the
//! site reference it was made with).
//!
//! Shutdown phases (`linerate_driver::shard::ShutdownPhase`): `Drain` closes the listener (new
//! SYNs are refused at once rather than left in a backlog nobody reads) and idle keep-alive
//! connections, and lets responses in flight finish; `CloseListeners` aborts whatever the drain
//! deadline left; `TimeWait` is the engine's (closing connections run out).

use super::conn::{Conn, Step};
use super::prefetch::{Done, FileCounters, Prefetcher};
use super::LogLevel;
use crate::control::{AppCounters, ControlPublisher};
use crate::http::Site;
use linerate_driver::shard::{AppContext, AppPoll, Pod, ShardApp, ShutdownPhase};
use linerate_stack::engine::{ConnectionHandle, Engine, Event, ListenerHandle};
use linerate_stack::time::{Duration, Instant};
use std::sync::Arc;

/// How often HTTP deadlines (header timeout, idle timeout, close linger) are checked.
const SWEEP: Duration = Duration::from_millis(100);
/// Finished connections kept for reuse, each with its 16 KiB staging buffer (4 MiB at most per
/// shard); beyond this they are freed. More than a server's usual concurrency, so a burst of
/// short connections that ends leaves enough for the next.
const SPARE_CONNS: usize = 256;
/// How soon the shard looks again for prefetcher answers while requests are outstanding.
const PREFETCH_POLL: Duration = Duration::from_micros(100);

/// Counters of one shard's HTTP server (summed across shards by the runtime).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct HttpCounters {
    /// Connections accepted.
    pub accepted: u64,
    /// Requests parsed on connections that have finished.
    pub requests: u64,
    /// Connections open now (gauge).
    pub open: u64,
    /// Connections aborted by the shutdown because the drain deadline passed.
    pub aborted_at_shutdown: u64,
    /// How response bodies went into the engine, and the prefetch thread's work for them.
    pub files: FileCounters,
}

// SAFETY: repr(C), u64 fields only (`FileCounters` is repr(C) u64s too).
unsafe impl Pod for HttpCounters {}

impl core::ops::AddAssign for HttpCounters {
    fn add_assign(&mut self, o: Self) {
        self.accepted += o.accepted;
        self.requests += o.requests;
        self.open += o.open;
        self.aborted_at_shutdown += o.aborted_at_shutdown;
        self.files += o.files;
    }
}

/// One shard's HTTP server.
#[derive(Debug)]
pub struct HttpShard {
    site: Arc<Site>,
    listener: Option<ListenerHandle>,
    /// Indexed by the engine's connection slot. Boxed so that moving one in and out of the
    /// pool moves a pointer.
    conns: Vec<Option<Box<Conn>>>,
    /// Finished connections whose buffers the next accepts reuse (at most [`SPARE_CONNS`]).
    /// Boxed like the slots, so taking one moves a pointer, not the whole connection.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<Conn>>,
    counters: HttpCounters,
    next_sweep: Instant,
    draining: bool,
    log_level: LogLevel,
    /// Publishes snapshots for `linerate stats`.
    control: Option<ControlPublisher>,
    /// Brings mapped file bodies into memory ahead of sending (`prefetch.rs`).
    prefetch: Prefetcher,
}

impl HttpShard {
    /// `listener` is this shard's listening socket on the served port; `prefetch` is this
    /// shard's prefetch thread.
    pub fn new(site: Arc<Site>, listener: ListenerHandle, log_level: LogLevel, prefetch: Prefetcher) -> Self {
        HttpShard {
            prefetch,
            site,
            listener: Some(listener),
            conns: Vec::new(),
            spare: Vec::with_capacity(SPARE_CONNS),
            counters: HttpCounters::default(),
            next_sweep: Instant::ZERO,
            draining: false,
            log_level,
            control: None,
        }
    }

    /// Publishes this shard's connections and counters to the control socket.
    pub fn with_control(mut self, publisher: ControlPublisher) -> Self {
        self.control = Some(publisher);
        self
    }

    /// Hands a snapshot to the control thread when one is due (never blocks).
    fn publish_control(&mut self, now: Instant, engine: &Engine) {
        let Some(control) = self.control.as_mut().filter(|c| c.due(now)) else { return };
        let c = &self.counters;
        let files = self.prefetch.counters();
        let app = AppCounters { open: c.open, accepted: c.accepted, requests: c.requests, files };
        control.publish(now, engine, self.conns.iter().flatten().map(|c| c.handle), app);
    }

    fn accept_all(&mut self, now: Instant, engine: &mut Engine, l: ListenerHandle) {
        while let Ok(Some(h)) = engine.accept(l) {
            let i = h.index as usize;
            if self.conns.len() <= i {
                self.conns.resize_with(i + 1, || None);
            }
            if let Some(stale) = self.conns[i].take() {
                // The engine reused the slot, so the old connection is gone: account for it.
                self.recycle(now, stale);
            }
            let conn = match self.spare.pop() {
                Some(mut conn) => {
                    conn.reopen(h, now);
                    conn
                }
                None => Box::new(Conn::new(h, &self.site, now)),
            };
            self.conns[i] = Some(conn);
            self.counters.open += 1;
            self.counters.accepted += 1;
            // Data may have arrived with the handshake's last ACK, before we held the handle.
            self.pump(now, engine, h);
        }
    }

    fn pump(&mut self, now: Instant, engine: &mut Engine, h: ConnectionHandle) {
        let Some(slot) = self.conns.get_mut(h.index as usize) else { return };
        let Some(conn) = slot.as_mut().filter(|c| c.handle == h) else { return };
        let step = conn.pump(now, engine, &mut self.prefetch);
        self.settle(now, h.index as usize, step);
    }

    /// Hands the prefetcher's answers to their connections and pumps them.
    fn take_prefetched(&mut self, now: Instant, engine: &mut Engine) -> bool {
        let mut any = false;
        while let Some(done) = self.prefetch.poll_done() {
            any = true;
            let h = done.conn();
            let Some(conn) = self.conns.get_mut(h.index as usize).and_then(Option::as_mut) else { continue };
            if conn.handle != h {
                continue;
            }
            let wake = match done {
                Done::Open { token, opened, .. } => conn.on_opened(now, token, opened),
                Done::Upload { answer, .. } => {
                    conn.on_upload_answer(now, answer);
                    let peak = conn.most_upload_buffers() as u64;
                    let counts = &mut self.prefetch.counts;
                    counts.upload_buffers_peak = counts.upload_buffers_peak.max(peak);
                    true
                }
                done => conn.on_prefetched(&done, &mut self.prefetch.counts),
            };
            if wake {
                self.pump(now, engine, h);
            }
        }
        any
    }

    fn settle(&mut self, now: Instant, i: usize, step: Step) {
        if step != Step::Finished {
            return;
        }
        if let Some(conn) = self.conns[i].take() {
            if self.log_level >= LogLevel::Debug {
                eprintln!("linerate serve: connection {i} done after {} request(s)", conn.requests());
            }
            self.recycle(now, conn);
        }
    }

    /// Accounts for a connection that is gone and keeps its buffers if the pool has room.
    fn recycle(&mut self, now: Instant, mut conn: Box<Conn>) {
        self.counters.requests += conn.requests();
        self.counters.open -= 1;
        if self.spare.len() < SPARE_CONNS {
            conn.retire(now);
            self.spare.push(conn);
        }
    }

    /// Applies due HTTP deadlines and re-checks closing connections.
    fn sweep(&mut self, now: Instant, engine: &mut Engine) {
        for i in 0..self.conns.len() {
            let Some(conn) = self.conns[i].as_mut() else { continue };
            // Open connections are driven by events; only deadlines and FIN acknowledgments
            // (which raise no event) need a look here.
            let step = match conn.next_deadline() {
                Some(t) if t <= now => conn.on_timeout(now, engine, &mut self.prefetch),
                _ if conn.is_closing() || conn.wants_prefetch() => conn.pump(now, engine, &mut self.prefetch),
                _ => continue,
            };
            self.settle(now, i, step);
        }
    }

    /// Draining: starts closing connections with nothing in progress. True if any was closed.
    fn close_idle(&mut self, now: Instant, engine: &mut Engine) -> bool {
        let mut any = false;
        for i in 0..self.conns.len() {
            let Some(conn) = self.conns[i].as_mut() else { continue };
            if conn.is_idle() {
                let step = conn.close_idle(now, engine);
                self.settle(now, i, step);
                any = true;
            }
        }
        any
    }
}

impl ShardApp for HttpShard {
    type Stats = HttpCounters;

    fn poll(&mut self, cx: &mut AppContext<'_>) -> AppPoll {
        let now = cx.now;
        let mut busy = false;
        while let Some(event) = cx.engine.poll_event() {
            busy = true;
            match event {
                Event::Incoming(l) => self.accept_all(now, cx.engine, l),
                Event::Connected(h)
                | Event::Readable(h)
                | Event::Writable(h)
                | Event::ReadClosed(h)
                | Event::SendComplete(h)
                | Event::Closed { conn: h, .. } => self.pump(now, cx.engine, h),
            }
        }
        busy |= self.take_prefetched(now, cx.engine);
        if now >= self.next_sweep {
            self.sweep(now, cx.engine);
            self.next_sweep = now + SWEEP;
        }
        if self.draining {
            busy |= self.close_idle(now, cx.engine);
        }
        self.publish_control(now, cx.engine);
        let next_wake = match self.prefetch.outstanding() {
            0 => self.next_sweep,
            _ => self.next_sweep.min(now + PREFETCH_POLL),
        };
        AppPoll { busy, next_wake: Some(next_wake) }
    }

    fn begin_shutdown(&mut self, phase: ShutdownPhase, cx: &mut AppContext<'_>) {
        match phase {
            ShutdownPhase::Drain => {
                self.draining = true;
                if let Some(l) = self.listener.take() {
                    let _ = cx.engine.unlisten(cx.now, l);
                }
                self.close_idle(cx.now, cx.engine);
            }
            ShutdownPhase::CloseListeners => {
                for slot in &mut self.conns {
                    if let Some(conn) = slot.take() {
                        let _ = cx.engine.abort(cx.now, conn.handle);
                        self.counters.requests += conn.requests();
                        self.counters.open -= 1;
                        self.counters.aborted_at_shutdown += 1;
                    }
                }
            }
            ShutdownPhase::TimeWait => {}
        }
    }

    fn is_drained(&self, phase: ShutdownPhase) -> bool {
        match phase {
            ShutdownPhase::Drain | ShutdownPhase::CloseListeners => self.counters.open == 0,
            ShutdownPhase::TimeWait => true,
        }
    }

    fn stats(&self) -> HttpCounters {
        HttpCounters { files: self.prefetch.counters(), ..self.counters }
    }
}
