//! The neighbour cache: states, the two intrusive lists (LRU and probe schedule) and timers.
//!
//! Each entry sits in exactly one list. Resolved and failed entries are in the LRU list (head =
//! most recently used), the eviction candidates. Entries waiting for a reply (incomplete, probe)
//! are in the probe list, ordered by next deadline: every deadline is `now + retrans_interval`
//! with a non-decreasing `now`, so appending keeps the list sorted and the next timeout is its
//! head. Stale and failed entries need no timer: they are checked when looked up.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;

use siphasher::sip::SipHasher13;

use super::{NeighborConfig, NeighborCounters, NeighborEvent, NeighborLookup};
use crate::time::Instant;
use crate::wire::{EthernetAddress, Ipv4Address};

const NIL: u32 = u32::MAX;

/// Linux-like neighbour states (see `ip neigh`); DELAY is folded into PROBE: a stale entry that
/// is used is probed after one retransmit interval while traffic keeps flowing to the known
/// address (unless [`NeighborCache::confirm`] or an ARP reply confirms it first).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum State {
    /// Requests sent, no reply yet.
    Incomplete { probes: u8, next_probe: Instant },
    /// Confirmed at `confirmed`; trusted until `confirmed + reachable_time`, stale after.
    Reachable { mac: EthernetAddress, confirmed: Instant },
    /// Learned without confirmation (an unsolicited ARP) at `since`.
    Stale { mac: EthernetAddress, since: Instant },
    /// Stale and in use: still sent to, while requests re-confirm it.
    Probe { mac: EthernetAddress, probes: u8, next_probe: Instant },
    /// Out of probes; answered as failed until `until`.
    Failed { until: Instant },
}

impl State {
    fn is_probing(&self) -> bool {
        matches!(self, State::Incomplete { .. } | State::Probe { .. })
    }
}

#[derive(Debug)]
struct Entry {
    ip: Ipv4Address,
    state: State,
    prev: u32,
    next: u32,
}

#[derive(Clone, Copy, Debug)]
struct List {
    head: u32,
    tail: u32,
}

const EMPTY: List = List { head: NIL, tail: NIL };

/// `BuildHasher` for the IP index: SipHash-1-3 under the configured key.
#[derive(Clone, Copy)]
struct KeyedSip(SipHasher13);

impl BuildHasher for KeyedSip {
    type Hasher = SipHasher13;
    fn build_hasher(&self) -> SipHasher13 {
        self.0
    }
}

/// Bounded ARP cache and responder state. See the module docs of [`crate::neighbor`].
pub struct NeighborCache {
    pub(super) config: NeighborConfig,
    capacity: usize,
    entries: Vec<Entry>,
    free: Vec<u32>,
    index: HashMap<Ipv4Address, u32, KeyedSip>,
    lru: List,
    probing: List,
    events: VecDeque<NeighborEvent>,
    event_capacity: usize,
    pub(super) counters: NeighborCounters,
}

impl NeighborCache {
    /// A cache of at most `capacity` entries (capped at 2^24). Allocates everything now.
    pub fn new(capacity: usize, config: NeighborConfig) -> Self {
        let capacity = capacity.min(1 << 24);
        let hasher = KeyedSip(SipHasher13::new_with_key(&config.hash_key));
        NeighborCache {
            config,
            capacity,
            entries: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            // Twice the entries: hashbrown then always rehashes tombstones in place (it only
            // reallocates when more than half its capacity is live), so churn never allocates.
            index: HashMap::with_capacity_and_hasher(capacity * 2, hasher),
            lru: EMPTY,
            probing: EMPTY,
            events: VecDeque::with_capacity(capacity.max(1)),
            event_capacity: capacity.max(1),
            counters: NeighborCounters::default(),
        }
    }

    pub fn config(&self) -> &NeighborConfig {
        &self.config
    }

    pub fn counters(&self) -> &NeighborCounters {
        &self.counters
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The hardware address to use for `ip` (a next hop from [`super::route`]) at `now`.
    ///
    /// `SendRequest` is returned once per resolution (the caller sends [`super::request`]); later
    /// requests come from [`NeighborCache::poll_retransmit`].
    pub fn lookup(&mut self, ip: Ipv4Address, now: Instant) -> NeighborLookup {
        if let Some(&idx) = self.index.get(&ip) {
            match self.entries[idx as usize].state {
                State::Incomplete { .. } => return NeighborLookup::Pending,
                State::Probe { mac, .. } => return NeighborLookup::Found(mac),
                State::Reachable { mac, confirmed } => {
                    if now < confirmed + self.config.reachable_time {
                        self.touch(idx);
                        return NeighborLookup::Found(mac);
                    }
                    let since = confirmed + self.config.reachable_time;
                    if let Some(found) = self.use_stale(idx, mac, since, now) {
                        return found;
                    }
                }
                State::Stale { mac, since } => {
                    if let Some(found) = self.use_stale(idx, mac, since, now) {
                        return found;
                    }
                }
                State::Failed { until } if now < until => return NeighborLookup::Failed,
                State::Failed { .. } => self.remove_index(idx),
            }
        }
        self.start_resolution(ip, now)
    }

    /// A stale entry in use: re-probe it while still sending to `mac`, unless it is so old that it
    /// is dropped (`stale_lifetime`) and the caller must resolve afresh (`None`).
    fn use_stale(
        &mut self,
        idx: u32,
        mac: EthernetAddress,
        since: Instant,
        now: Instant,
    ) -> Option<NeighborLookup> {
        if now >= since + self.config.stale_lifetime {
            self.remove_index(idx);
            return None;
        }
        // Linux waits in DELAY before probing so an upper-layer confirmation can make the probe
        // unnecessary; waiting one retransmit interval also keeps the probe list sorted.
        let next_probe = now + self.config.retrans_interval;
        self.set_state(idx, State::Probe { mac, probes: 0, next_probe });
        Some(NeighborLookup::Found(mac))
    }

    fn start_resolution(&mut self, ip: Ipv4Address, now: Instant) -> NeighborLookup {
        let next_probe = now + self.config.retrans_interval;
        let state = State::Incomplete { probes: 1, next_probe };
        if self.insert(ip, state).is_none() {
            return NeighborLookup::CacheFull;
        }
        self.counters.requests_sent += 1;
        NeighborLookup::SendRequest
    }

    /// Upper-layer reachability confirmation (RFC 4861 §7.3.1's idea, Linux `neigh_confirm`):
    /// the engine saw `ip` acknowledge new data, so its entry is fresh without an ARP exchange.
    pub fn confirm(&mut self, ip: Ipv4Address, now: Instant) {
        let Some(&idx) = self.index.get(&ip) else { return };
        match self.entries[idx as usize].state {
            State::Reachable { mac, .. } | State::Stale { mac, .. } | State::Probe { mac, .. } => {
                self.set_state(idx, State::Reachable { mac, confirmed: now });
            }
            State::Incomplete { .. } | State::Failed { .. } => {}
        }
    }

    /// The next address to send an ARP request for, if a retransmission is due at `now`.
    /// Call until `None`; resolutions out of probes turn `Failed` here.
    pub fn poll_retransmit(&mut self, now: Instant) -> Option<Ipv4Address> {
        loop {
            let idx = self.probing.head;
            if idx == NIL {
                return None;
            }
            let entry = &self.entries[idx as usize];
            // Only probing states are linked into the probe list (see `link`).
            let (probes, next_probe) = probe_schedule(entry.state)?;
            if next_probe > now {
                return None;
            }
            let ip = entry.ip;
            if probes >= self.config.max_probes {
                self.fail(idx, now);
                continue;
            }
            let next_probe = now + self.config.retrans_interval;
            let state = match entry.state {
                State::Probe { mac, .. } => State::Probe { mac, probes: probes + 1, next_probe },
                _ => State::Incomplete { probes: probes + 1, next_probe },
            };
            self.set_state(idx, state);
            self.counters.requests_sent += 1;
            return Some(ip);
        }
    }

    fn fail(&mut self, idx: u32, now: Instant) {
        let ip = self.entries[idx as usize].ip;
        self.set_state(idx, State::Failed { until: now + self.config.failed_hold });
        self.counters.failures += 1;
        self.push_event(NeighborEvent::Failed { ip });
    }

    /// When [`NeighborCache::poll_retransmit`] next has work (a retransmission or a failure).
    pub fn next_timeout(&self) -> Option<Instant> {
        match self.probing.head {
            NIL => None,
            idx => probe_schedule(self.entries[idx as usize].state).map(|(_, at)| at),
        }
    }

    /// The next resolution outcome, oldest first.
    pub fn poll_event(&mut self) -> Option<NeighborEvent> {
        self.events.pop_front()
    }

    /// Forgets `ip` (e.g. an administrator flushed it).
    pub fn remove(&mut self, ip: Ipv4Address) -> bool {
        match self.index.get(&ip) {
            Some(&idx) => {
                self.remove_index(idx);
                true
            }
            None => false,
        }
    }

    /// The current state of `ip`, for diagnostics and tests.
    pub(super) fn state(&self, ip: Ipv4Address) -> Option<State> {
        self.index.get(&ip).map(|&idx| self.entries[idx as usize].state)
    }

    /// The hardware address held for `ip` in any usable state, without side effects.
    pub fn peek(&self, ip: Ipv4Address) -> Option<EthernetAddress> {
        match self.state(ip)? {
            State::Reachable { mac, .. } | State::Stale { mac, .. } | State::Probe { mac, .. } => Some(mac),
            State::Incomplete { .. } | State::Failed { .. } => None,
        }
    }

    pub(super) fn index_of(&self, ip: Ipv4Address) -> Option<u32> {
        self.index.get(&ip).copied()
    }

    pub(super) fn state_at(&self, idx: u32) -> State {
        self.entries[idx as usize].state
    }

    pub(super) fn ip_at(&self, idx: u32) -> Ipv4Address {
        self.entries[idx as usize].ip
    }

    pub(super) fn push_event(&mut self, event: NeighborEvent) {
        if self.events.len() >= self.event_capacity {
            self.events.pop_front();
            self.counters.events_dropped += 1;
        }
        self.events.push_back(event);
    }

    /// Creates an entry, evicting the least recently used resolved entry if full. `None` (and
    /// counted) when every entry is still being resolved.
    pub(super) fn insert(&mut self, ip: Ipv4Address, state: State) -> Option<u32> {
        let idx = match self.free.pop() {
            Some(idx) => idx,
            None if self.entries.len() < self.capacity => {
                self.entries.push(Entry { ip, state, prev: NIL, next: NIL });
                (self.entries.len() - 1) as u32
            }
            None if self.lru.tail != NIL => {
                let victim = self.lru.tail;
                self.detach(victim);
                self.counters.evictions += 1;
                victim
            }
            None => {
                self.counters.table_full += 1;
                return None;
            }
        };
        let entry = &mut self.entries[idx as usize];
        *entry = Entry { ip, state, prev: NIL, next: NIL };
        self.index.insert(ip, idx);
        self.link(idx);
        Some(idx)
    }

    fn remove_index(&mut self, idx: u32) {
        self.detach(idx);
        self.free.push(idx);
    }

    /// Takes an entry out of its list and the index; the slot is then unused.
    fn detach(&mut self, idx: u32) {
        self.unlink(idx);
        let ip = self.entries[idx as usize].ip;
        self.index.remove(&ip);
    }

    /// Changes an entry's state, moving it to the list (and position) the new state belongs in.
    pub(super) fn set_state(&mut self, idx: u32, state: State) {
        self.unlink(idx);
        self.entries[idx as usize].state = state;
        self.link(idx);
    }

    fn touch(&mut self, idx: u32) {
        self.unlink(idx);
        self.link(idx);
    }

    /// Probing entries go to the back of the probe list (latest deadline); failed entries to the
    /// LRU tail (evicted first); resolved entries to the LRU head.
    fn link(&mut self, idx: u32) {
        let state = self.entries[idx as usize].state;
        if state.is_probing() {
            let mut list = self.probing;
            self.push_back(&mut list, idx);
            self.probing = list;
        } else {
            let mut list = self.lru;
            match state {
                State::Failed { .. } => self.push_back(&mut list, idx),
                _ => self.push_front(&mut list, idx),
            }
            self.lru = list;
        }
    }

    fn unlink(&mut self, idx: u32) {
        let entry = &self.entries[idx as usize];
        let (prev, next) = (entry.prev, entry.next);
        let list = if entry.state.is_probing() { &mut self.probing } else { &mut self.lru };
        if prev == NIL {
            list.head = next;
        } else {
            self.entries[prev as usize].next = next;
        }
        if next == NIL {
            list.tail = prev;
        } else {
            self.entries[next as usize].prev = prev;
        }
        let entry = &mut self.entries[idx as usize];
        entry.prev = NIL;
        entry.next = NIL;
    }

    fn push_front(&mut self, list: &mut List, idx: u32) {
        self.entries[idx as usize].next = list.head;
        self.entries[idx as usize].prev = NIL;
        match list.head {
            NIL => list.tail = idx,
            head => self.entries[head as usize].prev = idx,
        }
        list.head = idx;
    }

    fn push_back(&mut self, list: &mut List, idx: u32) {
        self.entries[idx as usize].prev = list.tail;
        self.entries[idx as usize].next = NIL;
        match list.tail {
            NIL => list.head = idx,
            tail => self.entries[tail as usize].next = idx,
        }
        list.tail = idx;
    }
}

/// Requests sent so far and the next deadline of a probing state.
fn probe_schedule(state: State) -> Option<(u8, Instant)> {
    match state {
        State::Incomplete { probes, next_probe } | State::Probe { probes, next_probe, .. } => {
            Some((probes, next_probe))
        }
        _ => None,
    }
}

impl core::fmt::Debug for NeighborCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NeighborCache")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
impl NeighborCache {
    /// Walks both lists and the index; panics on any broken link, misplaced state or lost entry.
    pub(super) fn check_invariants(&self) {
        let mut seen = 0;
        for (list, probing) in [(self.lru, false), (self.probing, true)] {
            let (mut prev, mut idx, mut last_deadline) = (NIL, list.head, Instant::ZERO);
            while idx != NIL {
                let e = &self.entries[idx as usize];
                assert_eq!(e.prev, prev, "broken back link at {idx}");
                assert_eq!(e.state.is_probing(), probing, "{:?} in the wrong list", e.state);
                assert_eq!(self.index.get(&e.ip), Some(&idx), "index disagrees for {}", e.ip);
                if let Some((_, at)) = probe_schedule(e.state) {
                    assert!(at >= last_deadline, "probe list out of order");
                    last_deadline = at;
                }
                seen += 1;
                assert!(seen <= self.capacity, "cycle");
                (prev, idx) = (idx, e.next);
            }
            assert_eq!(list.tail, prev, "tail is not the last entry");
        }
        assert_eq!(seen, self.index.len());
        assert_eq!(seen + self.free.len(), self.entries.len());
        assert!(self.entries.len() <= self.capacity);
        assert!(self.events.len() <= self.event_capacity);
    }
}
