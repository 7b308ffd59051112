//! The engine: one shard's TCP/IPv4 stack, sans-I/O (quinn-shaped).
//!
//! A driver feeds it frames and `now` ([`Engine::receive_from`] for a whole device burst,
//! [`Engine::receive_run`] when it routes frames itself, [`Engine::receive`] for one), lets it
//! fill transmit buffers ([`Engine::poll_transmit`]), fires its timers
//! ([`Engine::handle_timeout`] at [`Engine::next_timeout`]), and the application drives
//! connections through generation-checked handles ([`api`]) and learns what happened from
//! [`Engine::poll_event`].
//!
//! Ownership and bounds: connections live in a slab (`Vec` + free list) of at most
//! `max_connections`; a connection in TIME-WAIT that the application has let go of becomes a
//! 64-byte record of the bounded TIME-WAIT table instead (`time_wait`), freeing its slot and
//! box; the 4-tuple map is the shared keyed-SipHash `FlowTable` sized for both;
//! each connection holds ONE timer-wheel entry for its earliest deadline; the ready list and the
//! event queue hold each connection at most once; replies (RSTs, ARP, ICMP echo) go through a
//! fixed-size queue. Buffer memory is accounted against `memory_limit` when a connection is
//! created: at the cap new connections are refused (counted in `memory_refused`) and nothing
//! already accepted is touched. Nothing allocates per packet.
//!
//! Decisions: input only marks connections; ACKs and data are decided in `poll_transmit`, so a
//! burst of frames yields one ACK per connection. A connection the application closed is
//! "orphaned" and finished by the engine; one it still holds is freed only on `close`/`abort`.
//!
//! One iteration of a driver loop (the clock is read once per iteration):
//!
//! ```no_run
//! use linerate_stack::device::Device;
//! use linerate_stack::engine::{Engine, EngineConfig, Event};
//! use linerate_stack::time::Instant;
//! use linerate_stack::wire::{EthernetAddress, Ipv4Address};
//!
//! fn iteration<D: Device>(engine: &mut Engine, device: &mut D, now: Instant) {
//!     engine.receive_from(now, device, 64);
//!     engine.handle_timeout(now);
//!     while let Some(event) = engine.poll_event() {
//!         match event {
//!             Event::Readable(c) => {
//!                 let mut buf = [0u8; 4096];
//!                 while let Ok(n) = engine.read(now, c, &mut buf) {
//!                     if n == 0 {
//!                         let _ = engine.close(now, c);
//!                         break;
//!                     }
//!                     let _ = engine.write(now, c, &buf[..n]); // echo
//!                 }
//!             }
//!             Event::Incoming(l) => while let Ok(Some(_conn)) = engine.accept(l) {},
//!             _ => {}
//!         }
//!     }
//!     engine.poll_transmit(now, device);
//!     // Sleep until the next frame or `engine.next_timeout()`.
//! }
//!
//! let cfg = EngineConfig::new(Ipv4Address::new(198, 18, 0, 2), 24, EthernetAddress([2, 0, 0, 0, 0, 2]), 1);
//! let mut engine = Engine::new(cfg, Instant::ZERO);
//! engine.listen(80, 128, None).unwrap();
//! ```

pub mod api;
pub mod events;
mod flows;
pub mod handshake;
mod icmp;
mod receive;
pub mod secrets;
mod time_wait;
mod transmit;

pub use events::Event;
pub use handshake::HandshakeConfig;
pub use receive::ReceiveRun;
pub use time_wait::TIME_WAIT_ENTRY_BYTES;

use crate::ip::Interface;
use crate::isn::IsnGenerator;
use crate::neighbor::{NeighborCache, NeighborConfig};
use crate::stats::Stats;
use crate::tcp::buffer_pool::BufferPool;
use crate::tcp::connection::Connection;
use crate::tcp::input::ChallengeAckLimiter;
use crate::tcp::listener::Listener;
use crate::tcp::timeout::TimeoutOutcome;
use crate::tcp::{ConnectionError, State, TcpConfig};
use crate::time::{Duration, Instant};
use crate::timer::{TimerHandle, TimerWheel, WheelConfig};
use crate::wire::{EthernetAddress, Ipv4Address, KeptDataHeaders};
use events::EventSource;
use flows::Flows;
use secrets::Prng;
use std::collections::VecDeque;
use time_wait::TimeWaitTable;
use transmit::Reply;

/// Idle recycled buffers may use up to 1/IDLE_BUFFER_SHARE of `memory_limit` on top of it.
const IDLE_BUFFER_SHARE: usize = 4;

/// How often connections waiting for ARP are retried even without a resolution event.
pub(crate) const ARP_RETRY: Duration = Duration::from_secs(1);

/// Largest ICMP echo payload we answer (a 1500-byte MTU minus IPv4 and ICMP headers).
pub const ICMP_ECHO_MAX: usize = 1472;

/// A connection, as the application names it. Stale handles are detected by the generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnectionHandle {
    pub index: u32,
    pub generation: u32,
}

/// A listener, as the application names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerHandle {
    pub index: u32,
    pub generation: u32,
}

/// Everything an engine needs; secrets and the seed are injected (no OS randomness inside).
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub addr: Ipv4Address,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Address>,
    pub mac: EthernetAddress,
    /// L3 MTU used for our MSS (MTU - 40).
    pub mtu: usize,
    pub tcp: TcpConfig,
    pub max_connections: usize,
    pub max_listeners: usize,
    /// Global cap on connection buffer memory, bytes.
    pub memory_limit: usize,
    pub neighbor_capacity: usize,
    /// Inclusive ephemeral port range for `connect` without a port.
    pub ephemeral_ports: (u16, u16),
    /// RFC 6528 ISN secret.
    pub isn_secret: [u8; 16],
    /// Flow-table hash key.
    pub flow_key: [u8; 16],
    /// Neighbour-cache index hash key.
    pub neighbor_key: [u8; 16],
    /// Seed for the PRNG (timestamp offsets, ephemeral ports).
    pub seed: u64,
    /// Timer-wheel tick.
    pub timer_tick: Duration,
    /// Bounded queue for RSTs, ARP and ICMP replies.
    pub reply_queue: usize,
    /// Most connections kept in TIME-WAIT as compact records (see `time_wait`): each costs 64
    /// bytes plus a flow-table slot; beyond it the oldest is recycled (`time_wait_recycled`).
    /// `None`: [`EngineConfig::default_time_wait_capacity`]. `Some(0)`: no TIME-WAIT for
    /// connections the application has let go of (each is freed at once, counted as recycled).
    pub time_wait_capacity: Option<usize>,
    /// SYN cookies and TCP Fast Open: defaults and secrets.
    pub handshake: HandshakeConfig,
}

impl EngineConfig {
    /// A configuration with Linux-like defaults for `addr`/`mac`; secrets derived from `seed`
    /// (production callers should fill the secrets from a real random source).
    pub fn new(addr: Ipv4Address, prefix_len: u8, mac: EthernetAddress, seed: u64) -> Self {
        let mut rng = Prng::new(seed);
        let mut key = || {
            let mut k = [0u8; 16];
            k[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
            k[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
            k
        };
        EngineConfig {
            addr,
            prefix_len,
            gateway: None,
            mac,
            mtu: 1500,
            tcp: TcpConfig::default(),
            max_connections: 4096,
            max_listeners: 64,
            memory_limit: 1 << 30,
            neighbor_capacity: 256,
            ephemeral_ports: (32768, 60999),
            isn_secret: key(),
            flow_key: key(),
            neighbor_key: key(),
            seed,
            timer_tick: Duration::from_millis(1),
            reply_queue: 64,
            time_wait_capacity: None,
            handshake: HandshakeConfig::new(key(), key()),
        }
    }

    /// Four TIME-WAIT records per connection slot (a server closing first keeps every
    /// connection of the last 2*MSL), at most Linux's `tcp_max_tw_buckets` default of 262,144
    /// (16 MiB of records).
    pub fn default_time_wait_capacity(max_connections: usize) -> usize {
        max_connections.saturating_mul(4).min(262_144)
    }

    /// The TIME-WAIT table's capacity: `time_wait_capacity` or the default.
    pub fn effective_time_wait_capacity(&self) -> usize {
        self.time_wait_capacity.unwrap_or_else(|| Self::default_time_wait_capacity(self.max_connections))
    }
}

/// Errors of the application API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid or stale handle: the connection or listener was closed")]
    InvalidHandle,
    #[error("operation would block: retry after the next Readable/Writable event")]
    WouldBlock,
    #[error("not connected: the connection is not in a state that allows this")]
    NotConnected,
    #[error("the send side was shut down; no more writes")]
    WriteShutdown,
    #[error("address in use: a listener or connection already owns this port/tuple")]
    AddressInUse,
    #[error("no free ephemeral port for this destination; widen ephemeral_ports or close some")]
    NoEphemeralPorts,
    #[error("connection limit reached (max_connections / max_listeners); close some first")]
    ConnectionLimit,
    #[error("engine memory limit reached; lower buffer sizes or raise memory_limit")]
    MemoryLimit,
    #[error("invalid address: the remote must be a unicast IPv4 address and port must be non-zero")]
    InvalidAddress,
    #[error(
        "buffer sizes are fixed once a connection exists; set send_buffer/recv_buffer at listen or connect"
    )]
    BufferResize,
    #[error("connection failed: {0}")]
    Connection(#[from] ConnectionError),
}

/// Engine-side bookkeeping for one slab slot.
#[derive(Debug)]
struct Slot {
    generation: u32,
    conn: Option<Box<Connection>>,
    timer: Option<(TimerHandle, Instant)>,
    in_ready: bool,
    in_events: bool,
    waiting_arp: bool,
    /// The application holds a handle (active open, or accepted).
    app_owned: bool,
    in_accept_queue: bool,
    counted_estab: bool,
    /// `SendComplete` was raised (our FIN is acknowledged): it is reported once.
    send_complete: bool,
    /// Cached next-hop MAC.
    route: Option<EthernetAddress>,
    /// The connection's bare-ACK frame headers (`transmit/pure_ack.rs`), keyed by next hop
    /// and timestamp layout.
    ack_template: KeptDataHeaders,
}

/// The TCP/IPv4 engine of one shard.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    iface: Interface,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    live: usize,
    flows: Flows,
    listeners: Vec<Option<Listener>>,
    listener_generation: u32,
    listener_events: Vec<bool>,
    wheel: TimerWheel<(u32, u32)>,
    timers_armed: usize,
    ready: VecDeque<u32>,
    events: VecDeque<EventSource>,
    arp_waiting: Vec<u32>,
    /// When connections waiting for ARP are retried (a lost request or reply must not strand them).
    arp_retry_at: Option<Instant>,
    replies: VecDeque<Reply>,
    /// Compact records of TIME-WAIT connections the application let go of (see `time_wait`).
    time_wait: TimeWaitTable,
    neighbors: NeighborCache,
    stats: Stats,
    challenge: ChallengeAckLimiter,
    isn: IsnGenerator,
    rng: Prng,
    memory_used: usize,
    /// Storage of closed connections' rings, reused without zeroing (see `tcp::buffer_pool`).
    buffers: BufferPool,
    ip_ident: u16,
    rx_checksum_verified: bool,
    /// The established connection whose `after_update` is postponed while a run of its
    /// segments is received (see `receive.rs`); run before anything else touches the engine.
    deferred_update: Option<u32>,
    handshake: handshake::Handshake,
    /// Test builds only: `false` keeps `poll_transmit` off the pure-ACK fast path
    /// (`transmit/pure_ack.rs`), so `transmit/pure_ack/tests.rs` can run a reference engine on
    /// the general path. A production engine has no such switch: the fast path is always on.
    #[cfg(test)]
    pure_ack_fast_path: bool,
}

impl Engine {
    /// Creates an engine; all bounded structures are allocated here.
    pub fn new(cfg: EngineConfig, now: Instant) -> Self {
        let max = cfg.max_connections.max(1);
        let time_wait_capacity = cfg.effective_time_wait_capacity();
        Engine {
            iface: Interface { addr: cfg.addr, prefix_len: cfg.prefix_len, gateway: cfg.gateway },
            slots: Vec::with_capacity(max),
            free_slots: Vec::with_capacity(max),
            live: 0,
            flows: Flows::new(max + time_wait_capacity, cfg.flow_key),
            listeners: Vec::with_capacity(cfg.max_listeners),
            listener_generation: 0,
            listener_events: Vec::with_capacity(cfg.max_listeners),
            wheel: TimerWheel::with_capacity(WheelConfig { tick: cfg.timer_tick }, now, max),
            timers_armed: 0,
            ready: VecDeque::with_capacity(max),
            events: VecDeque::with_capacity(max + cfg.max_listeners),
            arp_waiting: Vec::with_capacity(max),
            arp_retry_at: None,
            replies: VecDeque::with_capacity(cfg.reply_queue),
            time_wait: TimeWaitTable::new(time_wait_capacity),
            neighbors: NeighborCache::new(
                cfg.neighbor_capacity,
                NeighborConfig { hash_key: cfg.neighbor_key, ..NeighborConfig::default() },
            ),
            stats: Stats::default(),
            challenge: ChallengeAckLimiter::new(cfg.tcp.challenge_ack_limit),
            isn: IsnGenerator::new(cfg.isn_secret),
            rng: Prng::new(cfg.seed),
            memory_used: 0,
            buffers: BufferPool::new(cfg.memory_limit / IDLE_BUFFER_SHARE),
            ip_ident: 0,
            rx_checksum_verified: false,
            deferred_update: None,
            handshake: handshake::Handshake::new(&cfg.handshake, now),
            #[cfg(test)]
            pure_ack_fast_path: true,
            cfg,
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Stack-wide counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The recycled connection-buffer storage (how much is idle, how often it was reused).
    pub fn buffer_pool(&self) -> &BufferPool {
        &self.buffers
    }

    /// Connections in any state, including TIME-WAIT (full or compact) and unreleased CLOSED.
    pub fn connection_count(&self) -> usize {
        self.live + self.time_wait.len()
    }

    /// Connections holding a full TCB in the slab (at most `max_connections`).
    pub fn slab_connection_count(&self) -> usize {
        self.live
    }

    /// Connections in TIME-WAIT kept as compact records (see [`EngineConfig::time_wait_capacity`]).
    pub fn time_wait_count(&self) -> usize {
        self.time_wait.len()
    }

    /// Buffer memory currently accounted.
    pub fn memory_used(&self) -> usize {
        self.memory_used
    }

    /// True when no connection, flow entry, timer, queued reply, buffer memory or listener
    /// remains: the end state every simulation asserts.
    pub fn is_empty(&self) -> bool {
        self.live == 0
            && self.time_wait.is_empty()
            && self.flows.is_empty()
            && self.timers_armed == 0
            && self.memory_used == 0
            && self.replies.is_empty()
            && self.listeners.iter().all(Option::is_none)
    }

    /// True when `poll_transmit` has frames to send right now (ready connections or replies):
    /// a driver whose device refused frames should poll again without waiting for a timer.
    pub fn has_pending_output(&self) -> bool {
        !self.ready.is_empty() || !self.replies.is_empty()
    }

    /// When the engine next wants `handle_timeout`.
    pub fn next_timeout(&self) -> Option<Instant> {
        let time_wait = self.time_wait.next_expiry();
        [self.wheel.next_expiry(), self.arp_retry_at, self.neighbors.next_timeout(), time_wait]
            .into_iter()
            .flatten()
            .min()
    }

    /// Fires every per-connection timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // A receive burst that was leaked instead of dropped ends here at the latest.
        self.finish_deferred_update(now);
        while let Some(ip) = self.neighbors.poll_retransmit(now) {
            self.queue_arp_request(ip);
        }
        self.neighbor_events(now);
        if self.arp_retry_at.is_some_and(|t| t <= now) {
            self.arp_retry_at = None;
            self.wake_arp_waiters(now);
        }
        while let Some((_, (index, generation))) = self.wheel.poll_expired(now) {
            let Some(slot) = self.slots.get_mut(index as usize) else { continue };
            if slot.generation != generation {
                continue;
            }
            slot.timer = None;
            self.timers_armed -= 1;
            let Some(conn) = slot.conn.as_mut() else { continue };
            if conn.on_timers(now, &self.cfg.tcp, &mut self.stats) == TimeoutOutcome::ReachedR1 {
                // RFC 9293 §3.8.3 R1 "negative advice": stop trusting the connection's cached
                // next hop; the neighbour cache's own reachability state (which probes stale
                // entries while still using them) decides from now on.
                slot.route = None;
            }
            self.after_update(index, now);
        }
        self.expire_time_wait(now);
    }

    /// The next application event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        use crate::tcp::connection::event_bits as b;
        while let Some(&src) = self.events.front() {
            match src {
                EventSource::Listener(i) => {
                    self.events.pop_front();
                    self.listener_events[i as usize] = false;
                    if let Some(l) = self.listeners[i as usize].as_ref() {
                        if !l.accept_queue.is_empty() {
                            return Some(Event::Incoming(ListenerHandle {
                                index: i,
                                generation: l.generation,
                            }));
                        }
                    }
                }
                EventSource::Connection(i) => {
                    let slot = &mut self.slots[i as usize];
                    let h = ConnectionHandle { index: i, generation: slot.generation };
                    let conn = match slot.conn.as_mut() {
                        Some(c) if c.events != 0 && slot.app_owned && !c.orphaned => c,
                        _ => {
                            slot.in_events = false;
                            self.events.pop_front();
                            continue;
                        }
                    };
                    for (bit, ev) in [
                        (b::CONNECTED, Event::Connected(h)),
                        (b::READABLE, Event::Readable(h)),
                        (b::WRITABLE, Event::Writable(h)),
                        (b::READ_CLOSED, Event::ReadClosed(h)),
                        (b::SEND_COMPLETE, Event::SendComplete(h)),
                        (b::CLOSED, Event::Closed { conn: h, error: conn.error }),
                    ] {
                        if conn.events & bit != 0 {
                            conn.events &= !bit;
                            return Some(ev);
                        }
                    }
                }
            }
        }
        None
    }

    fn conn(&self, h: ConnectionHandle) -> Result<&Connection, Error> {
        match self.slots.get(h.index as usize) {
            Some(s) if s.generation == h.generation && s.app_owned => match s.conn.as_deref() {
                Some(c) if !c.orphaned => Ok(c),
                _ => Err(Error::InvalidHandle),
            },
            _ => Err(Error::InvalidHandle),
        }
    }

    fn conn_mut(&mut self, h: ConnectionHandle) -> Result<&mut Connection, Error> {
        match self.slots.get_mut(h.index as usize) {
            Some(s) if s.generation == h.generation && s.app_owned => match s.conn.as_deref_mut() {
                Some(c) if !c.orphaned => Ok(c),
                _ => Err(Error::InvalidHandle),
            },
            _ => Err(Error::InvalidHandle),
        }
    }

    /// Places a new connection in the slab and the flow table.
    fn insert_connection(&mut self, mut conn: Connection, app_owned: bool) -> u32 {
        conn.set_pacing_timer_granularity(self.cfg.timer_tick);
        let tuple = conn.tuple;
        self.memory_used += conn.memory;
        self.live += 1;
        let index = match self.free_slots.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    conn: None,
                    timer: None,
                    in_ready: false,
                    in_events: false,
                    waiting_arp: false,
                    app_owned: false,
                    in_accept_queue: false,
                    counted_estab: false,
                    send_complete: false,
                    route: None,
                    ack_template: KeptDataHeaders::default(),
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.conn = Some(Box::new(conn));
        slot.app_owned = app_owned;
        slot.in_accept_queue = false;
        slot.send_complete = false;
        slot.route = None;
        slot.ack_template = KeptDataHeaders::default();
        // Cannot fail: `admits` keeps live connections (one entry each) within the capacity.
        let inserted = self.flows.insert(tuple, index);
        debug_assert!(inserted, "flow table sized to max_connections");
        index
    }

    /// True if a connection with these buffers fits under the connection and memory caps.
    fn admits(&self, opts: &crate::tcp::SocketOptions) -> bool {
        self.live < self.cfg.max_connections
            && self.memory_used + Connection::memory_for(opts) <= self.cfg.memory_limit
    }

    /// Re-establishes every engine invariant after a connection changed: gauge, listener queues,
    /// buffer release, freeing, events, ready list, timer-wheel entry.
    fn after_update(&mut self, index: u32, now: Instant) {
        let slot = &mut self.slots[index as usize];
        let Some(conn) = slot.conn.as_deref_mut() else { return };
        if !matches!(conn.state, State::Closed | State::TimeWait) {
            conn.update_send_timers(now);
        }
        // The usual case (a counted ESTABLISHED connection outside the listener's queues, with
        // no FIN of ours queued) changes nothing in the gauge, the listener, the buffers, the
        // slab or the flow table: only the events, the ready list and the timer remain.
        let settled = conn.state == State::Established
            && slot.counted_estab
            && conn.listener.is_none()
            && !conn.fin_queued;
        if settled || self.after_state_change(index, now) {
            self.queue_for_output(index);
        }
    }

    /// `after_update`'s lifecycle part: the SendComplete event, the established gauge, the
    /// listener's queues, buffer release, freeing or compacting the connection, the flow entry
    /// of a closed one. False when the slot no longer holds the connection.
    fn after_state_change(&mut self, index: u32, now: Instant) -> bool {
        let slot = &mut self.slots[index as usize];
        let Some(conn) = slot.conn.as_deref_mut() else { return false };
        if !slot.send_complete && conn.fin_acked() {
            slot.send_complete = true;
            conn.raise(crate::tcp::connection::event_bits::SEND_COMPLETE);
        }
        let estab = conn.state.counts_as_established();
        if estab != slot.counted_estab {
            slot.counted_estab = estab;
            if estab {
                self.stats.curr_estab += 1;
            } else {
                self.stats.curr_estab -= 1;
            }
        }
        if let Some(lid) = conn.listener {
            if conn.state != State::SynReceived {
                conn.listener = None;
                let fast_open_child = core::mem::take(&mut conn.fast_open.pending);
                if let Some(l) = self.listeners[lid as usize].as_mut() {
                    l.child_left_syn_queue(fast_open_child);
                    // A Fast Open child joined the accept queue at SYN time.
                    let queued = slot.in_accept_queue || slot.app_owned;
                    if conn.state != State::Closed && !l.closed && !queued {
                        l.accept_queue.push_back((index, slot.generation));
                        slot.in_accept_queue = true;
                        if !self.listener_events[lid as usize] {
                            self.listener_events[lid as usize] = true;
                            self.events.push_back(EventSource::Listener(lid));
                        }
                    }
                }
                self.release_listener_if_done(lid);
            }
        }
        let slot = &mut self.slots[index as usize];
        let Some(conn) = slot.conn.as_deref_mut() else { return false };
        let entered_time_wait =
            conn.memory > 0 && conn.state == State::TimeWait && (conn.orphaned || conn.rcvbuf.is_empty());
        if entered_time_wait {
            self.memory_used -= conn.release_buffers(&mut self.buffers);
        }
        let unowned = !slot.app_owned && !slot.in_accept_queue;
        if conn.state == State::Closed && (conn.orphaned || unowned) {
            self.free(index);
            return false;
        }
        let let_go = conn.orphaned || unowned;
        if conn.state == State::TimeWait && let_go && !slot.waiting_arp && self.compact_time_wait(index, now)
        {
            return false;
        }
        let slot = &mut self.slots[index as usize];
        let Some(conn) = slot.conn.as_deref_mut() else { return false };
        if conn.state == State::Closed && self.flows.get(&conn.tuple) == Some(&index) {
            // The application still holds the handle, but the tuple is free again: segments
            // for it are now answered as for a closed port (RFC 9293 §3.10.7.1).
            self.flows.remove(&conn.tuple);
        }
        true
    }

    /// `after_update`'s last part: the connection's events, its place in the ready list and
    /// its timer-wheel entry.
    fn queue_for_output(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        let Some(conn) = slot.conn.as_deref_mut() else { return };
        if slot.app_owned && !conn.orphaned && conn.events != 0 && !slot.in_events {
            slot.in_events = true;
            self.events.push_back(EventSource::Connection(index));
        }
        if !slot.in_ready && !slot.waiting_arp && Self::has_output(conn) {
            slot.in_ready = true;
            self.ready.push_back(index);
        }
        self.sync_timer(index);
    }

    /// Whether `conn` has a segment to send (`plan_segment` is `Some`). A pending ACK answers
    /// it without planning: every synchronized state sends an ACK when `ack_now` is set, so the
    /// receiver's ready check after a run of data costs a flag test instead of a plan (tail
    /// probe, retransmission and new-data checks first). So does an idle connection: without
    /// any of `wants_output`'s flags and without a window update due, nothing can be planned
    /// (the receiver's check after its ACK went out, and after each odd segment).
    #[inline]
    fn has_output(conn: &Connection) -> bool {
        if conn.ack_now && !matches!(conn.state, State::Closed | State::Listen | State::SynSent) {
            debug_assert!(conn.plan_segment().is_some(), "ack_now without a plan in {:?}", conn.state);
            return true;
        }
        if !conn.may_plan_more() {
            debug_assert!(conn.plan_segment().is_none(), "a plan without output flags in {:?}", conn.state);
            return false;
        }
        conn.plan_segment().is_some()
    }

    /// Starts loading connection `index`'s timer-wheel entry, which `sync_timer` will most
    /// likely move once the segment has been processed (an RTO restart on each ACK): with many
    /// connections that entry is a cache miss, which then overlaps with the segment's own work
    /// instead of stalling the update. Changes nothing.
    #[inline]
    pub(super) fn prefetch_timer(&self, index: u32) {
        if let Some((timer, _)) = self.slots.get(index as usize).and_then(|slot| slot.timer) {
            self.wheel.prefetch(timer);
        }
    }

    /// Keeps exactly one wheel entry per connection, at its earliest deadline.
    fn sync_timer(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        let want = slot.conn.as_ref().and_then(|c| c.timers.earliest());
        match (slot.timer, want) {
            (None, None) => {}
            (Some((h, _)), None) => {
                self.wheel.cancel(h);
                slot.timer = None;
                self.timers_armed -= 1;
            }
            (None, Some(at)) => {
                let h = self.wheel.insert(at, (index, slot.generation));
                slot.timer = Some((h, at));
                self.timers_armed += 1;
            }
            (Some((h, old)), Some(at)) => {
                if old != at {
                    let h = if self.wheel.reschedule(h, at) {
                        h
                    } else {
                        self.wheel.insert(at, (index, slot.generation))
                    };
                    slot.timer = Some((h, at));
                }
            }
        }
    }

    /// Removes a connection completely: flow entry, timer, memory, slot.
    fn free(&mut self, index: u32) {
        if self.deferred_update == Some(index) {
            self.deferred_update = None;
        }
        let slot = &mut self.slots[index as usize];
        let Some(mut conn) = slot.conn.take() else { return };
        if let Some((h, _)) = slot.timer.take() {
            self.wheel.cancel(h);
            self.timers_armed -= 1;
        }
        if slot.counted_estab {
            slot.counted_estab = false;
            self.stats.curr_estab -= 1;
        }
        slot.generation = slot.generation.wrapping_add(1);
        slot.app_owned = false;
        slot.in_accept_queue = false;
        slot.route = None;
        slot.ack_template = KeptDataHeaders::default();
        // `in_ready`, `in_events` and `waiting_arp` entries are skipped lazily by generation/None.
        self.memory_used -= conn.release_buffers(&mut self.buffers);
        if self.flows.get(&conn.tuple) == Some(&index) {
            self.flows.remove(&conn.tuple);
        }
        if let Some(lid) = conn.listener.take() {
            if let Some(l) = self.listeners[lid as usize].as_mut() {
                l.child_left_syn_queue(conn.fast_open.pending);
            }
            self.release_listener_if_done(lid);
        }
        self.live -= 1;
        self.free_slots.push(index);
    }

    fn release_listener_if_done(&mut self, lid: u32) {
        if let Some(l) = self.listeners[lid as usize].as_ref() {
            if l.closed && l.syn_queue_len == 0 && l.accept_queue.is_empty() {
                self.listeners[lid as usize] = None;
            }
        }
    }

    fn listener_for(&self, port: u16) -> Option<u32> {
        self.listeners
            .iter()
            .position(|l| l.as_ref().is_some_and(|l| l.port == port && !l.closed))
            .map(|i| i as u32)
    }

    /// Marks the connection's error if it ends here by the application's hand.
    fn note_abort(conn: &mut Connection) {
        if conn.error.is_none() {
            conn.error = Some(ConnectionError::Aborted);
        }
    }
}

/// A shard moves its engine onto its pinned thread: the engine must be `Send`.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<Engine>();
};
