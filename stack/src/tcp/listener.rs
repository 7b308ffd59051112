//! A listening endpoint (RFC 9293 LISTEN): a SYN queue bounded by the backlog and an accept queue
//! bounded by the backlog.
//!
//! Overflow follows Linux's defaults (no SYN cookies, `tcp_abort_on_overflow = 0`): a SYN that
//! finds the accept queue full or the SYN queue full is dropped (ListenOverflows/ListenDrops), and
//! a handshake-completing ACK that finds the accept queue full is dropped, leaving the connection
//! in SYN-RECEIVED to be completed by a later retransmission.

use super::config::SocketOptions;
use std::collections::VecDeque;

/// Listener state. Connections are referred to by slab index and generation.
#[derive(Debug)]
pub struct Listener {
    pub port: u16,
    pub backlog: usize,
    pub opts: SocketOptions,
    /// Connections in SYN-RECEIVED that belong to this listener.
    pub syn_queue_len: usize,
    /// Established connections waiting for `accept`, oldest first (preallocated to `backlog`).
    pub accept_queue: VecDeque<(u32, u32)>,
    pub generation: u32,
    /// The application closed the listener; it lingers only until its half-open children go.
    pub closed: bool,
}

impl Listener {
    pub fn new(port: u16, backlog: usize, opts: SocketOptions, generation: u32) -> Self {
        let backlog = backlog.max(1);
        Listener {
            port,
            backlog,
            opts,
            syn_queue_len: 0,
            accept_queue: VecDeque::with_capacity(backlog),
            generation,
            closed: false,
        }
    }

    pub fn accept_queue_full(&self) -> bool {
        self.accept_queue.len() >= self.backlog
    }

    pub fn syn_queue_full(&self) -> bool {
        self.syn_queue_len >= self.backlog
    }
}
