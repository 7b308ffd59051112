//! A listening endpoint (RFC 9293 LISTEN): a SYN queue and an accept queue, both bounded by the
//! backlog, plus the listener's handshake defences (SYN cookies, TCP Fast Open).
//!
//! Owns: the queue bookkeeping and the per-listener handshake options. The engine's handshake
//! code (`engine/handshake.rs`) decides what a SYN or a cookie ACK does with them.
//!
//! Overflow follows Linux's defaults: a SYN that finds the accept queue full is dropped
//! (ListenOverflows/ListenDrops), and a handshake-completing ACK that finds it full is dropped,
//! leaving the connection in SYN-RECEIVED to be completed by a later retransmission
//! (`tcp_abort_on_overflow = 0`). A full SYN queue is where the modes differ:
//!
//! - SYN cookies `Auto` (the default) or `Always`: the SYN is answered statelessly with a cookie
//!   SYN-ACK (RFC 4987 §3.6), so the queue never grows past the backlog and nobody is refused.
//! - SYN cookies `Off`: the *oldest* half-open connection is evicted to make room. Justification:
//!   a real client answers our SYN-ACK within one round trip, so under a flood the entries that
//!   have waited longest are the ones most likely spoofed; evicting them keeps the newest arrivals
//!   (which include every legitimate client) alive for the longest possible time, it is
//!   deterministic (tests and simulations stay reproducible, unlike random eviction), and it costs
//!   O(1) amortised with the FIFO below. Linux instead drops the new SYN, which under a sustained
//!   flood refuses every legitimate client until the spoofed entries time out (~63 s).
//!
//! Must not: touch connections itself (entries are slab indices checked by generation by the
//! engine) or allocate after construction.

use super::config::SocketOptions;
use crate::time::Instant;
use std::collections::VecDeque;

/// When a listener answers SYNs with SYN cookies instead of keeping state (RFC 4987 §3.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SynCookieMode {
    /// Only while this listener's SYN queue is full (or the engine is at its connection or
    /// memory cap); Linux's `tcp_syncookies = 1`.
    #[default]
    Auto,
    /// Every SYN gets a cookie and no half-open state (`tcp_syncookies = 2`).
    Always,
    /// Never; a full SYN queue evicts its oldest entry.
    Off,
}

impl core::str::FromStr for SynCookieMode {
    type Err = UnknownSynCookieMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(SynCookieMode::Auto),
            "always" => Ok(SynCookieMode::Always),
            "off" => Ok(SynCookieMode::Off),
            _ => Err(UnknownSynCookieMode),
        }
    }
}

/// A SYN cookie mode name that is not `auto`, `always` or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown SYN cookie mode: use auto, always or off")]
pub struct UnknownSynCookieMode;

/// Server-side TCP Fast Open for one listener (RFC 7413 §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FastOpenListen {
    /// Most TFO children at once that are readable but still in SYN-RECEIVED (RFC 7413 §5.1
    /// "PendingFastOpenRequests"); beyond it, SYNs with data fall back to a normal handshake.
    pub max_pending: usize,
}

impl Default for FastOpenListen {
    fn default() -> Self {
        FastOpenListen { max_pending: 64 }
    }
}

/// Handshake options of one listener, set with `Engine::set_listener_handshake`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ListenerHandshake {
    /// `None`: the engine's default (`HandshakeConfig::syn_cookies`).
    pub syn_cookies: Option<SynCookieMode>,
    /// `None`: Fast Open off (the default, RFC 7413 §4.2 "MUST be disabled by default").
    pub fast_open: Option<FastOpenListen>,
}

/// Listener state. Connections are referred to by slab index and generation.
#[derive(Debug)]
pub struct Listener {
    pub port: u16,
    pub backlog: usize,
    pub opts: SocketOptions,
    /// Connections in SYN-RECEIVED that belong to this listener (Fast Open children included).
    pub syn_queue_len: usize,
    /// Half-open connections oldest first, for eviction. Entries whose connection moved on are
    /// skipped lazily and compacted away when the FIFO reaches twice the backlog, so it stays
    /// bounded without a per-packet scan.
    pub syn_queue: VecDeque<(u32, u32)>,
    /// Established connections waiting for `accept`, oldest first (preallocated to `backlog`).
    /// Fast Open children join it at SYN time, still in SYN-RECEIVED.
    pub accept_queue: VecDeque<(u32, u32)>,
    pub generation: u32,
    /// The application closed the listener; it lingers only until its half-open children go.
    pub closed: bool,
    pub handshake: ListenerHandshake,
    /// Fast Open children still in SYN-RECEIVED.
    pub fast_open_pending: usize,
    /// When this listener last sent a SYN cookie: in `Auto` mode only ACKs arriving within a
    /// cookie's lifetime after that are checked as cookies (Linux `tcp_synq_no_recent_overflow`).
    pub last_cookie_sent: Option<Instant>,
}

impl Listener {
    pub fn new(port: u16, backlog: usize, opts: SocketOptions, generation: u32) -> Self {
        let backlog = backlog.max(1);
        Listener {
            port,
            backlog,
            opts,
            syn_queue_len: 0,
            syn_queue: VecDeque::with_capacity(2 * backlog),
            accept_queue: VecDeque::with_capacity(backlog),
            generation,
            closed: false,
            handshake: ListenerHandshake::default(),
            fast_open_pending: 0,
            last_cookie_sent: None,
        }
    }

    pub fn accept_queue_full(&self) -> bool {
        self.accept_queue.len() >= self.backlog
    }

    pub fn syn_queue_full(&self) -> bool {
        self.syn_queue_len >= self.backlog
    }

    /// A child left SYN-RECEIVED (established, or freed): one less half-open, and one less
    /// pending Fast Open child if it was one.
    pub fn child_left_syn_queue(&mut self, fast_open_pending: bool) {
        self.syn_queue_len -= 1;
        if fast_open_pending {
            self.fast_open_pending -= 1;
        }
    }

    /// Fast Open is on and below its pending bound.
    pub fn fast_open_has_room(&self) -> bool {
        self.handshake.fast_open.is_some_and(|f| self.fast_open_pending < f.max_pending)
    }

    /// Records a new half-open connection for eviction order. `is_live` says whether an entry
    /// still names one of this listener's half-open connections; it is called only when the FIFO
    /// is at twice the backlog (amortised O(1) per SYN).
    pub fn push_half_open(&mut self, entry: (u32, u32), mut is_live: impl FnMut((u32, u32)) -> bool) {
        if self.syn_queue.len() >= 2 * self.backlog {
            self.syn_queue.retain(|&e| is_live(e));
        }
        if self.syn_queue.len() < 2 * self.backlog {
            self.syn_queue.push_back(entry);
        }
    }
}
