//! The sender's per-segment records: the metadata half of the retransmission queue.
//!
//! **Owns** one [`SegmentRecord`] per transmitted segment between `snd_una` and `snd_nxt`, in
//! sequence order, in a ring allocated once at construction. Segments are appended at `snd_nxt`
//! and released from the front as `snd_una` advances; records are never split or merged (a
//! cumulative ACK that lands inside a segment trims its front, which keeps the count bounded by
//! what the sender chose to send). Each record also sits on a *transmission-order* list (slot
//! links inside the ring, no allocation) that RACK walks from the oldest transmission.
//!
//! **Promises:** no allocation after [`SegmentStore::new`]; `push` fails with
//! [`StoreFull`] instead of growing (the sender then simply stops sending new data); lookup by
//! sequence number is a binary search, O(log n); every other operation is O(1). No method panics
//! on any argument.
//!
//! **Does not** hold payload bytes (the engine's send buffer does) or decide anything about loss.

use core::cmp::Ordering;

use super::bits::SlotBits;
use crate::congestion::PacketSnapshot;
use crate::time::Instant;
use crate::wire::SeqNumber;

/// Marks no slot on the transmission-order list.
const NIL: u32 = u32::MAX;

/// The store is at capacity: stop sending new data until an ACK frees a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("segment store full ({capacity} records): wait for an ACK before sending new data")]
pub struct StoreFull {
    pub capacity: usize,
}

/// What the sender remembers about one transmitted segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentRecord {
    /// First sequence number of the segment (moves forward if a cumulative ACK trims it).
    pub start: SeqNumber,
    /// Sequence space covered (payload, plus one for a FIN).
    pub len: u32,
    /// When the segment was first sent.
    pub first_sent: Instant,
    /// When the segment was last (re)transmitted: RACK's `Segment.xmit_ts` (RFC 8985 §6.1).
    pub last_sent: Instant,
    /// TSval carried by the last transmission, if timestamps are in use (RFC 7323 §4.1).
    pub last_tsval: Option<u32>,
    /// How many times the segment was retransmitted.
    pub retransmits: u16,
    /// The delivery-rate snapshot of the last transmission.
    pub snapshot: PacketSnapshot,
    pub(crate) state: SegmentState,
    /// Transmission-order links (slot indices), `NIL` at the ends or when unlinked.
    prev: u32,
    next: u32,
}

/// Scoreboard flags of one record. A record is never both `sacked` and `lost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SegmentState {
    /// Selectively acknowledged (RFC 2018): the receiver holds it.
    pub sacked: bool,
    /// Deemed lost (RACK or RFC 6675 `IsLost`) since its last transmission.
    pub lost: bool,
    /// A retransmission of it is counted in `pipe` (RFC 6675 SetPipe (b)).
    pub retrans_in_flight: bool,
}

impl SegmentRecord {
    /// One past the last sequence number of the segment.
    pub fn end(&self) -> SeqNumber {
        self.start + self.len
    }
    pub fn is_sacked(&self) -> bool {
        self.state.sacked
    }
    pub fn is_lost(&self) -> bool {
        self.state.lost
    }
    pub fn is_retransmitted(&self) -> bool {
        self.retransmits > 0
    }
    pub fn state(&self) -> SegmentState {
        self.state
    }
}

/// Fixed-capacity ring of [`SegmentRecord`]s in sequence order.
#[derive(Debug, Clone)]
pub struct SegmentStore {
    slots: Vec<SegmentRecord>,
    /// Slot of the first (lowest-sequence) record.
    head: usize,
    /// `start` of the record in each slot, kept apart so the binary search touches 4 bytes per
    /// probe instead of a whole record (a cache line or two).
    starts: Vec<u32>,
    /// Slots holding a live, un-SACKed record: SACKed runs are skipped in O(levels).
    unsacked: SlotBits,
    len: usize,
    /// Oldest and newest transmission (slot indices) of the transmission-order list.
    oldest_tx: u32,
    newest_tx: u32,
}

impl SegmentStore {
    /// A store holding at most `capacity` records (at least 1), allocated now and never grown.
    /// A good size is the send buffer divided by the MSS, plus a few for small writes.
    pub fn new(capacity: usize) -> Self {
        let blank = SegmentRecord {
            start: SeqNumber(0),
            len: 0,
            first_sent: Instant::ZERO,
            last_sent: Instant::ZERO,
            last_tsval: None,
            retransmits: 0,
            snapshot: PacketSnapshot::default(),
            state: SegmentState::default(),
            prev: NIL,
            next: NIL,
        };
        let capacity = capacity.clamp(1, NIL as usize - 1);
        SegmentStore {
            slots: vec![blank; capacity],
            starts: vec![0; capacity],
            head: 0,
            unsacked: SlotBits::new(capacity),
            len: 0,
            oldest_tx: NIL,
            newest_tx: NIL,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn is_full(&self) -> bool {
        self.len == self.slots.len()
    }

    fn slot(&self, pos: usize) -> usize {
        let s = self.head + pos;
        if s >= self.slots.len() {
            s - self.slots.len()
        } else {
            s
        }
    }

    /// The record at position `pos` (0 = lowest sequence).
    pub fn get(&self, pos: usize) -> Option<&SegmentRecord> {
        (pos < self.len).then(|| &self.slots[self.slot(pos)])
    }
    pub(crate) fn get_mut(&mut self, pos: usize) -> Option<&mut SegmentRecord> {
        if pos < self.len {
            let s = self.slot(pos);
            Some(&mut self.slots[s])
        } else {
            None
        }
    }
    pub fn front(&self) -> Option<&SegmentRecord> {
        self.get(0)
    }
    pub fn back(&self) -> Option<&SegmentRecord> {
        self.len.checked_sub(1).and_then(|p| self.get(p))
    }
    /// Records in sequence order.
    pub fn iter(&self) -> impl Iterator<Item = &SegmentRecord> + '_ {
        (0..self.len).map(move |p| &self.slots[self.slot(p)])
    }

    /// Sequence number just past the last record (`snd_nxt` as far as the store knows).
    pub fn end_seq(&self) -> Option<SeqNumber> {
        self.back().map(SegmentRecord::end)
    }

    /// Appends a freshly sent segment at the tail, newest on the transmission-order list.
    pub fn push(
        &mut self,
        start: SeqNumber,
        len: u32,
        now: Instant,
        tsval: Option<u32>,
        snapshot: PacketSnapshot,
    ) -> Result<(), StoreFull> {
        if self.is_full() {
            return Err(StoreFull { capacity: self.capacity() });
        }
        let s = self.slot(self.len);
        self.slots[s] = SegmentRecord {
            start,
            len,
            first_sent: now,
            last_sent: now,
            last_tsval: tsval,
            retransmits: 0,
            snapshot,
            state: SegmentState::default(),
            prev: NIL,
            next: NIL,
        };
        self.starts[s] = start.0;
        self.len += 1;
        self.unsacked.insert(s);
        self.link_newest(s);
        Ok(())
    }

    /// Removes and returns the first record (its links are dropped).
    pub(crate) fn pop_front(&mut self) -> Option<SegmentRecord> {
        if self.len == 0 {
            return None;
        }
        let s = self.head;
        self.unlink(s);
        self.unsacked.remove(s);
        self.head = self.slot(1);
        self.len -= 1;
        Some(self.slots[s])
    }

    /// Position of the record containing `seq`, if any. O(log n).
    pub fn position_of(&self, seq: SeqNumber) -> Option<usize> {
        let pos = self.first_ending_after(seq);
        let rec = self.get(pos)?;
        seq_before_or_eq(rec.start, seq).then_some(pos)
    }

    /// The first position whose record ends after `seq` (`len()` if none; 0 if `seq` is below
    /// the front). Binary search over offsets from the front, valid across the 2^32 wrap because
    /// everything stored lies within one window. O(log n).
    pub fn first_ending_after(&self, seq: SeqNumber) -> usize {
        let Some(front) = self.front() else { return 0 };
        let base = front.start;
        if seq < base {
            return 0;
        }
        let target = offset(seq, base);
        // Records tile the window, so the record containing `seq` is the last one starting at or
        // before it: count the records whose start is at or before `seq`.
        let (mut lo, mut hi) = (0usize, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.starts[self.slot(mid)].wrapping_sub(base.0) <= target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        // `lo` records start at or before `seq`; the last of them ends after it unless it is
        // the final record and `seq` lies at or past its end.
        let Some(pos) = lo.checked_sub(1) else { return 0 };
        let rec = &self.slots[self.slot(pos)];
        if offset(rec.end(), base) > target {
            pos
        } else {
            pos + 1
        }
    }

    /// A cumulative ACK landed inside the first record: drop its first `by` bytes.
    pub(crate) fn trim_front(&mut self, by: u32) {
        if self.len == 0 {
            return;
        }
        let s = self.head;
        let rec = &mut self.slots[s];
        let by = by.min(rec.len);
        rec.start += by;
        rec.len -= by;
        self.starts[s] = rec.start.0;
    }

    /// The first position at or after `pos` whose record is not SACKed (`len()` if none).
    /// O(levels) whatever the SACK pattern: a bitmap query, not a walk. `steps` counts work.
    pub(crate) fn next_unsacked(&self, pos: usize, steps: &mut u64) -> usize {
        *steps += 1;
        self.next_marked(&self.unsacked, pos).unwrap_or(self.len)
    }

    /// The first position at or after `pos` whose slot is set in `bits`.
    pub(crate) fn next_marked(&self, bits: &SlotBits, pos: usize) -> Option<usize> {
        if pos >= self.len {
            return None;
        }
        let cap = self.slots.len();
        let (start, end) = (self.head + pos, self.head + self.len);
        if start < cap {
            if let Some(s) = bits.next_set(start, end.min(cap)) {
                return Some(s - self.head);
            }
        }
        if end > cap {
            let from = start.max(cap) - cap;
            if let Some(s) = bits.next_set(from, end - cap) {
                return Some(s + cap - self.head);
            }
        }
        None
    }

    /// Marks the record at `pos` SACKed and takes it off the transmission-order list.
    pub(crate) fn set_sacked(&mut self, pos: usize) {
        if pos >= self.len {
            return;
        }
        let s = self.slot(pos);
        self.slots[s].state.sacked = true;
        self.unsacked.remove(s);
        self.unlink(s);
    }

    /// Slot index of position `pos` (for transmission-order bookkeeping).
    pub(crate) fn slot_of(&self, pos: usize) -> usize {
        self.slot(pos)
    }
    pub(crate) fn by_slot(&self, slot: usize) -> &SegmentRecord {
        &self.slots[slot]
    }
    pub(crate) fn by_slot_mut(&mut self, slot: usize) -> &mut SegmentRecord {
        &mut self.slots[slot]
    }
    /// Position of a live slot.
    pub(crate) fn pos_of_slot(&self, slot: usize) -> usize {
        if slot >= self.head {
            slot - self.head
        } else {
            slot + self.slots.len() - self.head
        }
    }

    /// The oldest transmission still on the transmission-order list.
    pub(crate) fn oldest_tx_slot(&self) -> Option<usize> {
        (self.oldest_tx != NIL).then_some(self.oldest_tx as usize)
    }
    /// The transmission after `slot` on the list.
    pub(crate) fn next_tx_slot(&self, slot: usize) -> Option<usize> {
        let n = self.slots[slot].next;
        (n != NIL).then_some(n as usize)
    }

    /// Moves `slot` to the newest end of the transmission-order list (a retransmission).
    pub(crate) fn relink_newest(&mut self, slot: usize) {
        self.unlink(slot);
        self.link_newest(slot);
    }

    /// Takes `slot` off the transmission-order list (SACKed, or lost awaiting retransmission).
    /// Unlinking an unlinked slot does nothing.
    pub(crate) fn unlink(&mut self, slot: usize) {
        let (prev, next) = (self.slots[slot].prev, self.slots[slot].next);
        let linked = prev != NIL || next != NIL || self.oldest_tx as usize == slot;
        if !linked {
            return;
        }
        if prev != NIL {
            self.slots[prev as usize].next = next;
        } else {
            self.oldest_tx = next;
        }
        if next != NIL {
            self.slots[next as usize].prev = prev;
        } else {
            self.newest_tx = prev;
        }
        self.slots[slot].prev = NIL;
        self.slots[slot].next = NIL;
    }

    fn link_newest(&mut self, slot: usize) {
        let s = slot as u32;
        self.slots[slot].prev = self.newest_tx;
        self.slots[slot].next = NIL;
        if self.newest_tx != NIL {
            self.slots[self.newest_tx as usize].next = s;
        } else {
            self.oldest_tx = s;
        }
        self.newest_tx = s;
    }
}

/// Distance of `seq` from `base` in sequence space (callers keep it within one window).
pub(crate) fn offset(seq: SeqNumber, base: SeqNumber) -> u32 {
    seq.0.wrapping_sub(base.0)
}

/// `a <= b` in sequence space; antipodal numbers count as "not before or equal".
pub(crate) fn seq_before_or_eq(a: SeqNumber, b: SeqNumber) -> bool {
    a <= b
}

/// `!(a < b)`: `a` is at or after `b`, or the two are incomparable (2^31 apart).
pub(crate) fn not_before(a: SeqNumber, b: SeqNumber) -> bool {
    !matches!(a.partial_cmp(&b), Some(Ordering::Less))
}

/// `!(a <= b)`: `a` is after `b`, or the two are incomparable.
pub(crate) fn not_at_or_before(a: SeqNumber, b: SeqNumber) -> bool {
    !matches!(a.partial_cmp(&b), Some(Ordering::Less | Ordering::Equal))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(store: &mut SegmentStore, start: u32, len: u32, at_ms: u64) {
        store
            .push(SeqNumber(start), len, Instant::from_millis(at_ms), None, PacketSnapshot::default())
            .unwrap();
    }

    fn tx_order(store: &SegmentStore) -> Vec<u32> {
        let mut out = Vec::new();
        let mut cur = store.oldest_tx_slot();
        while let Some(s) = cur {
            out.push(store.by_slot(s).start.0);
            cur = store.next_tx_slot(s);
        }
        out
    }

    #[test]
    fn ring_wraps_and_lookup_stays_correct() {
        let mut store = SegmentStore::new(4);
        let mut next = 0xFFFF_FFF0u32;
        for round in 0..10u64 {
            while !store.is_full() {
                push(&mut store, next, 8, round);
                next = next.wrapping_add(8);
            }
            assert!(store.push(SeqNumber(next), 8, Instant::ZERO, None, PacketSnapshot::default()).is_err());
            let front = store.front().unwrap().start;
            for (i, rec) in store.iter().enumerate() {
                assert_eq!(store.position_of(rec.start), Some(i));
                assert_eq!(store.position_of(rec.start + 7), Some(i));
                assert_eq!(rec.start, front + i as u32 * 8);
            }
            assert_eq!(store.position_of(front - 1), None);
            assert_eq!(store.first_ending_after(SeqNumber(next)), store.len());
            store.pop_front();
            store.pop_front();
        }
    }

    #[test]
    fn transmission_order_follows_retransmissions() {
        let mut store = SegmentStore::new(8);
        for i in 0..4 {
            push(&mut store, i * 10, 10, u64::from(i));
        }
        assert_eq!(tx_order(&store), vec![0, 10, 20, 30]);
        let s = store.slot_of(1);
        store.relink_newest(s);
        assert_eq!(tx_order(&store), vec![0, 20, 30, 10]);
        store.set_sacked(2);
        assert_eq!(tx_order(&store), vec![0, 30, 10]);
        store.pop_front();
        assert_eq!(tx_order(&store), vec![30, 10]);
        let mut steps = 0;
        assert_eq!(store.next_unsacked(0, &mut steps), 0);
        assert_eq!(store.next_unsacked(1, &mut steps), 2, "position 1 (seq 20) is SACKed");
        store.trim_front(4);
        assert_eq!(store.front().map(|r| (r.start.0, r.len)), Some((14, 6)));
        assert_eq!(store.position_of(SeqNumber(13)), None);
        assert_eq!(store.position_of(SeqNumber(14)), Some(0));
    }
}
