//! Neighbour resolution: the ARP cache, the ARP responder and the next-hop choice (RFC 826).
//!
//! Owns: [`NeighborCache`] (IPv4 → Ethernet address, with Linux-like states: incomplete,
//! reachable, stale, probe, failed), the reply to ARP requests for our address, the builders of
//! ARP requests/replies/announcements, and [`route`] (on-link destination or gateway).
//!
//! Promises: sans-I/O and deterministic (time is passed in; nothing is sent: the cache tells the
//! caller what to send). Bounded: at most `capacity` entries and a bounded event queue; at
//! capacity the least recently used resolved (or failed) entry is evicted and counted, and
//! entries still being resolved are never evicted. Every operation is O(1) expected; nothing
//! allocates after construction. Never panics on any ARP packet.
//!
//! Must not: emit frames, read a clock, or learn from ARP packets that RFC 826's merge rule says
//! to ignore (a sender we have no entry for, in a packet not aimed at us).

mod arp;
mod cache;
mod route;

#[cfg(test)]
mod tests;

pub use arp::{announcement, reply_to, request};
pub use cache::NeighborCache;
pub use route::{route, NoRoute};

use crate::time::Duration;
use crate::wire::{EthernetAddress, Ipv4Address};

/// Timers and limits of the cache; [`Default`] gives Linux's defaults.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NeighborConfig {
    /// How long a confirmed entry is used without question (Linux `base_reachable_time`, 30 s).
    pub reachable_time: Duration,
    /// Gap between two requests for the same address (Linux `retrans_time`, 1 s).
    pub retrans_interval: Duration,
    /// Requests sent before giving up (Linux `mcast_solicit`/`ucast_solicit`, 3).
    pub max_probes: u8,
    /// How long a failed resolution is remembered, so traffic to a dead host does not flood the
    /// link with requests (the negative cache).
    pub failed_hold: Duration,
    /// How long an unconfirmed (stale) entry is kept before it is dropped and resolved afresh
    /// (Linux `gc_stale_time`, 60 s).
    pub stale_lifetime: Duration,
    /// Secret key of the cache's IP index (SipHash-1-3), so on-link senders cannot pick colliding
    /// addresses. Inject a random key; the zero default is for tests.
    pub hash_key: [u8; 16],
}

impl Default for NeighborConfig {
    fn default() -> Self {
        NeighborConfig {
            reachable_time: Duration::from_secs(30),
            retrans_interval: Duration::from_secs(1),
            max_probes: 3,
            failed_hold: Duration::from_secs(1),
            stale_lifetime: Duration::from_secs(60),
            hash_key: [0; 16],
        }
    }
}

/// What [`NeighborCache::lookup`] tells the caller to do with a packet for a next hop.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NeighborLookup {
    /// Send to this hardware address.
    Found(EthernetAddress),
    /// First use of this address: send an ARP request ([`request`]) now, and hold or drop the
    /// packet until [`NeighborEvent::Resolved`].
    SendRequest,
    /// A request is outstanding; hold or drop the packet.
    Pending,
    /// Resolution failed recently (no reply to `max_probes` requests): fail the send with a
    /// host-unreachable reason. The negative entry lasts `failed_hold`.
    Failed,
    /// The cache is full of entries still being resolved: drop the packet and retry later
    /// (counted in [`NeighborCounters::table_full`]).
    CacheFull,
}

/// Outcomes the engine must learn about without asking (e.g. to release or fail held packets).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NeighborEvent {
    /// An address that was being resolved (or had failed) now has a hardware address.
    Resolved { ip: Ipv4Address, mac: EthernetAddress },
    /// No reply to `max_probes` requests: the address is unreachable. Connects waiting on it can
    /// fail with a host-unreachable reason; established connections need not (Linux keeps them
    /// and lets their retransmissions look the address up again after `failed_hold`).
    Failed { ip: Ipv4Address },
}

/// Monotone counters; never reset by the cache.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct NeighborCounters {
    /// ARP requests the caller was told to send (first requests and retransmissions).
    pub requests_sent: u64,
    /// ARP replies returned by [`NeighborCache::on_arp`].
    pub replies_sent: u64,
    /// Entries evicted to make room.
    pub evictions: u64,
    /// Resolutions that ran out of probes.
    pub failures: u64,
    /// Addresses that went from unresolved to resolved.
    pub resolved: u64,
    /// Entries that could not be created because every slot was being resolved.
    pub table_full: u64,
    /// ARP packets ignored: unknown operation, non-unicast sender hardware address, our own echo.
    pub ignored: u64,
    /// ARP packets from another host claiming our IP address (address conflict, RFC 5227).
    pub conflicts: u64,
    /// Events dropped because nobody drained [`NeighborCache::poll_event`].
    pub events_dropped: u64,
}
