//! [`TimeWaitTable`]: a bounded slab of compact TIME-WAIT records, kept in expiry order.
//!
//! Every TIME-WAIT lasts the same 2*MSL, so the order records enter is the order they expire:
//! an intrusive doubly-linked FIFO through the slab (oldest first) gives the next expiry, the
//! record to recycle when the table is full, and an O(1) move to the back when a retransmitted
//! FIN restarts a record's timer. No timer-wheel entry per record, no stale entries to skip.
//!
//! Promises: at most `capacity` records; the slab is reserved once (pages are touched as it
//! fills) and freed entries are reused through a free list, so nothing allocates afterwards;
//! every operation is O(1); expiries along the FIFO never decrease (an insert earlier than the
//! newest record is held until that one's expiry: a record may outlive its 2*MSL slightly,
//! never end early). Must not: know about the flow table or the engine.

use crate::tcp::input::time_wait::TimeWaitRecord;
use crate::time::Instant;

/// End of a list.
const NIL: u32 = u32::MAX;
/// `prev` of an entry on the free list.
const FREED: u32 = u32::MAX - 1;

/// One slab entry: the record, when it expires and its FIFO links (64 bytes).
#[derive(Debug)]
struct Entry {
    record: TimeWaitRecord,
    expiry: Instant,
    /// Older neighbour in the FIFO, `NIL` at the head, `FREED` when on the free list.
    prev: u32,
    /// Newer neighbour in the FIFO (`NIL` at the tail), or the next free entry.
    next: u32,
}

/// Bytes one TIME-WAIT connection costs in the table (the flow-table slot comes on top).
pub const TIME_WAIT_ENTRY_BYTES: usize = core::mem::size_of::<Entry>();
const _: () = assert!(TIME_WAIT_ENTRY_BYTES <= 64, "a TIME-WAIT entry must stay within one cache line");

/// Compact TIME-WAIT records by id (the slab index), oldest first.
#[derive(Debug)]
pub(crate) struct TimeWaitTable {
    entries: Vec<Entry>,
    capacity: usize,
    len: usize,
    head: u32,
    tail: u32,
    free: u32,
}

impl TimeWaitTable {
    /// A table for at most `capacity` records (0: none are kept).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.min(FREED as usize);
        TimeWaitTable {
            entries: Vec::with_capacity(capacity),
            capacity,
            len: 0,
            head: NIL,
            tail: NIL,
            free: NIL,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len >= self.capacity
    }

    /// Adds `record` as the newest, expiring at `expiry` (or the newest record's expiry if
    /// later); `None` when the table is full.
    pub(crate) fn insert(&mut self, record: TimeWaitRecord, expiry: Instant) -> Option<u32> {
        if self.is_full() {
            return None;
        }
        let entry = Entry { record, expiry, prev: NIL, next: NIL };
        let id = if self.free != NIL {
            let id = self.free;
            self.free = self.entries[id as usize].next;
            self.entries[id as usize] = entry;
            id
        } else {
            self.entries.push(entry);
            (self.entries.len() - 1) as u32
        };
        self.len += 1;
        self.link_newest(id, expiry);
        Some(id)
    }

    pub(crate) fn get(&self, id: u32) -> Option<&TimeWaitRecord> {
        self.entries.get(id as usize).filter(|e| e.prev != FREED).map(|e| &e.record)
    }

    pub(crate) fn get_mut(&mut self, id: u32) -> Option<&mut TimeWaitRecord> {
        self.entries.get_mut(id as usize).filter(|e| e.prev != FREED).map(|e| &mut e.record)
    }

    /// Removes record `id`.
    pub(crate) fn remove(&mut self, id: u32) -> Option<TimeWaitRecord> {
        self.get(id)?;
        self.unlink(id);
        let entry = &mut self.entries[id as usize];
        entry.prev = FREED;
        entry.next = self.free;
        entry.record.ack_queued = false;
        self.free = id;
        self.len -= 1;
        Some(entry.record)
    }

    /// Record `id` now expires at `expiry` and becomes the newest (a restarted 2*MSL).
    pub(crate) fn restart(&mut self, id: u32, expiry: Instant) {
        if self.get(id).is_some() {
            self.unlink(id);
            self.link_newest(id, expiry);
        }
    }

    /// When the oldest record expires.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        (self.head != NIL).then(|| self.entries[self.head as usize].expiry)
    }

    /// The oldest record and its id, if it has expired at `now`.
    pub(crate) fn oldest_expired(&self, now: Instant) -> Option<u32> {
        self.next_expiry().filter(|&at| at <= now).map(|_| self.head)
    }

    /// The oldest record's id (the one to recycle when the table is full).
    pub(crate) fn oldest(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    fn link_newest(&mut self, id: u32, expiry: Instant) {
        let tail = self.tail;
        let expiry = match tail {
            NIL => expiry,
            t => expiry.max(self.entries[t as usize].expiry),
        };
        let entry = &mut self.entries[id as usize];
        entry.expiry = expiry;
        entry.prev = tail;
        entry.next = NIL;
        match tail {
            NIL => self.head = id,
            t => self.entries[t as usize].next = id,
        }
        self.tail = id;
    }

    fn unlink(&mut self, id: u32) {
        let (prev, next) = {
            let e = &self.entries[id as usize];
            (e.prev, e.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.entries[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.entries[n as usize].prev = prev,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::FourTuple;
    use crate::time::Duration;
    use crate::wire::{Ipv4Address, SeqNumber};

    fn record(port: u16) -> TimeWaitRecord {
        TimeWaitRecord {
            tuple: FourTuple {
                local: (Ipv4Address::new(198, 18, 0, 1), 80),
                remote: (Ipv4Address::new(198, 18, 0, 2), port),
            },
            snd_nxt: SeqNumber(1),
            rcv_nxt: SeqNumber(2),
            rcv_wnd: 0,
            max_snd_wnd: 0,
            ts_recent: 0,
            ts_offset: 0,
            ts_recent_age_secs: 0,
            window_field: 0,
            timestamps: false,
            sack_ok: false,
            ack_queued: false,
        }
    }

    fn at(s: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(s)
    }

    #[test]
    fn entry_is_sixty_four_bytes() {
        assert_eq!(TIME_WAIT_ENTRY_BYTES, 64);
        assert_eq!(core::mem::size_of::<TimeWaitRecord>(), 48);
    }

    #[test]
    fn fifo_order_restart_and_reuse() {
        let mut t = TimeWaitTable::new(3);
        let a = t.insert(record(1), at(10)).unwrap();
        let b = t.insert(record(2), at(11)).unwrap();
        let c = t.insert(record(3), at(12)).unwrap();
        assert!(t.is_full() && t.insert(record(4), at(13)).is_none());
        assert_eq!((t.oldest(), t.next_expiry()), (Some(a), Some(at(10))));
        t.restart(a, at(20));
        assert_eq!((t.oldest(), t.next_expiry()), (Some(b), Some(at(11))));
        assert_eq!(t.oldest_expired(at(10)), None);
        assert_eq!(t.oldest_expired(at(11)), Some(b));
        assert_eq!(t.remove(b).map(|r| r.tuple.remote.1), Some(2));
        assert_eq!(t.remove(b), None, "a removed id is gone");
        assert_eq!(t.oldest(), Some(c));
        t.remove(c).unwrap();
        assert_eq!((t.oldest(), t.next_expiry()), (Some(a), Some(at(20))));
        // Freed entries are reused; an earlier expiry waits for the newest record's.
        let d = t.insert(record(5), at(15)).unwrap();
        assert!(d == b || d == c);
        t.remove(a).unwrap();
        assert_eq!((t.oldest(), t.next_expiry(), t.len()), (Some(d), Some(at(20)), 1));
        t.remove(d).unwrap();
        assert!(t.is_empty() && t.oldest().is_none() && t.next_expiry().is_none());
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let mut t = TimeWaitTable::new(0);
        assert!(t.insert(record(1), at(1)).is_none());
        assert!(t.is_full() && t.is_empty());
    }
}
