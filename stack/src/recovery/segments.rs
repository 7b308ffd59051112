//! The sender's per-segment records: the metadata half of the retransmission queue.
//!
//! **Owns** one [`SegmentRecord`] per transmitted segment between `snd_una` and `snd_nxt`, in
//! sequence order, in a ring. Segments are appended at `snd_nxt` and released from the front as
//! `snd_una` advances; records are never split or merged (a cumulative ACK that lands inside a
//! segment trims its front, which keeps the count bounded by what the sender chose to send).
//! Each record also sits on a *transmission-order* list (slot links inside the ring, no
//! allocation) that RACK walks from the oldest transmission.
//!
//! **Sizing:** the ring is allocated at the first push, with [`INITIAL_RECORDS`] (enough for an
//! initial window and a FIN), and doubles when a push finds it full, up to the bound given to
//! [`SegmentStore::new`]. A
//! short connection that sends one response never pays for the records a 1 MiB window would
//! need (allocating and initialising ~220 KB per connection was 40 % of a short-connection
//! server's CPU). Growing unrolls the ring so the front lands in slot 0; the slot indices of
//! live records change, and [`SegmentStore::push`] returns the [`Relocation`] so holders of
//! slot-indexed state (the scoreboard's lost bits) can follow.
//!
//! **Promises:** allocation only when growing, at most 1 + log2(bound / [`INITIAL_RECORDS`]) times
//! per store, O(records) each (amortised O(1) per push); `push` fails with [`StoreFull`] at the
//! bound instead of growing (the sender then simply stops sending new data); lookup by sequence
//! number is a binary search, O(log n); every other operation is O(1). No method panics on any
//! argument.
//!
//! **Does not** hold payload bytes (the engine's send buffer does) or decide anything about loss.

use core::cmp::Ordering;

use super::bits::SlotBits;
use crate::congestion::PacketSnapshot;
use crate::time::Instant;
use crate::wire::SeqNumber;

/// Marks no slot on the transmission-order list.
const NIL: u32 = u32::MAX;

/// Records a store allocates at first: an initial window of 10 segments (RFC 6928) plus a FIN
/// and a few small writes.
pub const INITIAL_RECORDS: usize = 16;

/// What an unused slot holds.
fn blank() -> SegmentRecord {
    SegmentRecord {
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
    }
}

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
    /// The delivery-rate snapshot of the last transmission; its `bytes` are zeroed once that
    /// transmission's delivery was reported by a SACK (see `congestion::delivery_rate`).
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

/// A growable, bounded ring of [`SegmentRecord`]s in sequence order.
#[derive(Clone)]
pub struct SegmentStore {
    /// The ring; its length is the number of records allocated so far.
    slots: Vec<SegmentRecord>,
    /// Most records the ring may grow to.
    bound: usize,
    /// Slot of the first (lowest-sequence) record.
    head: usize,
    /// `start` of the record in each slot, kept apart so the binary search touches 4 bytes per
    /// probe instead of a whole record (a cache line or two).
    starts: Vec<u32>,
    /// Slots holding a live, un-SACKed record: SACKed runs are skipped in O(levels).
    unsacked: SlotBits,
    /// Slots whose record may not join a clean run ([`Self::clean_run`]): changed since its
    /// push (SACKed, marked lost, retransmitted, trimmed: every mutable access marks it), or
    /// pushed out of line (empty, not at the store's end, a snapshot of another length, sent
    /// earlier than the record pushed before it).
    dirty: SlotBits,
    /// End, send time and snapshot send time of the last push.
    last_push: (SeqNumber, Instant, Instant),
    len: usize,
    /// Oldest and newest transmission (slot indices) of the transmission-order list.
    oldest_tx: u32,
    newest_tx: u32,
}

/// Shows the live records (with their slots), not the free slots, whose contents are stale.
impl core::fmt::Debug for SegmentStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let live = (0..self.len).map(|p| (self.slot(p), &self.slots[self.slot(p)]));
        f.debug_struct("SegmentStore")
            .field("allocated", &self.slots.len())
            .field("bound", &self.bound)
            .field("head", &self.head)
            .field("records", &live.collect::<Vec<_>>())
            .field("unsacked", &self.unsacked)
            .field("dirty", &self.dirty)
            .field("last_push", &self.last_push)
            .field("oldest_tx", &self.oldest_tx)
            .field("newest_tx", &self.newest_tx)
            .finish()
    }
}

impl SegmentStore {
    /// A store holding at most `capacity` records (at least 1). Allocates nothing until the
    /// first push, which allocates [`INITIAL_RECORDS`] (or `capacity` if smaller); grows on demand.
    /// A good bound is the send buffer divided by the MSS, plus a few for small writes.
    pub fn new(capacity: usize) -> Self {
        SegmentStore {
            slots: Vec::new(),
            bound: capacity.clamp(1, NIL as usize - 1),
            starts: Vec::new(),
            head: 0,
            unsacked: SlotBits::new(0),
            dirty: SlotBits::new(0),
            last_push: (SeqNumber(0), Instant::ZERO, Instant::ZERO),
            len: 0,
            oldest_tx: NIL,
            newest_tx: NIL,
        }
    }

    /// Most records the store can hold.
    pub fn capacity(&self) -> usize {
        self.bound
    }
    /// Records allocated so far (slot indices are below this).
    pub fn allocated(&self) -> usize {
        self.slots.len()
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// At the bound: a push would fail.
    pub fn is_full(&self) -> bool {
        self.len >= self.bound
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
    /// The record at `pos`, to change: it is no longer clean.
    pub(crate) fn get_mut(&mut self, pos: usize) -> Option<&mut SegmentRecord> {
        if pos < self.len {
            let s = self.slot(pos);
            self.dirty.insert(s);
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
    /// Grows the ring first if every allocated slot is live; then returns how slots moved.
    /// Inlined into the caller, so the record is written once instead of copied through layers.
    #[inline]
    pub fn push(
        &mut self,
        start: SeqNumber,
        len: u32,
        now: Instant,
        tsval: Option<u32>,
        snapshot: PacketSnapshot,
    ) -> Result<Option<Relocation>, StoreFull> {
        if self.is_full() {
            return Err(StoreFull { capacity: self.capacity() });
        }
        let (end, sent, snapshot_sent) = self.last_push;
        let in_line = len > 0
            && snapshot.bytes == len
            && start == end
            && now >= sent
            && snapshot.sent_time >= snapshot_sent;
        self.last_push = (start + len, now, snapshot.sent_time);
        let moved = (self.len == self.slots.len()).then(|| self.grow());
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
        // A free slot's mark is always clear: records leave with theirs cleared.
        if !in_line {
            self.dirty.insert(s);
        }
        self.link_newest(s);
        Ok(moved)
    }

    /// Doubles the ring (from [`INITIAL_RECORDS`], up to the bound), unrolled so the front record
    /// lands in slot 0. Only called when every slot is live, so the unrolled ring is exactly the
    /// records in order.
    fn grow(&mut self) -> Relocation {
        let old_len = self.slots.len();
        let new_len = old_len.saturating_mul(2).max(INITIAL_RECORDS).min(self.bound);
        let moved = Relocation { head: self.head, old_len, new_len };
        self.slots.rotate_left(self.head);
        self.starts.rotate_left(self.head);
        for rec in &mut self.slots {
            rec.prev = moved.link(rec.prev);
            rec.next = moved.link(rec.next);
        }
        self.slots.resize(new_len, blank());
        self.starts.resize(new_len, 0);
        self.unsacked = moved.bits(&self.unsacked);
        self.dirty = moved.bits(&self.dirty);
        self.oldest_tx = moved.link(self.oldest_tx);
        self.newest_tx = moved.link(self.newest_tx);
        self.head = 0;
        moved
    }

    /// Removes the first record (its links are dropped); false if there was none. Callers
    /// read the record first (`front`): returning it would copy it once more per ACKed segment.
    pub(crate) fn pop_front(&mut self) -> bool {
        if self.len == 0 {
            return false;
        }
        let s = self.head;
        self.unlink(s);
        self.unsacked.remove(s);
        self.dirty.remove(s);
        self.head = self.slot(1);
        self.len -= 1;
        true
    }

    /// The longest run of *clean* records at the front that `ack` wholly covers: never SACKed,
    /// lost, retransmitted or trimmed, pushed in line (each at the end of the one before, sent
    /// no earlier, its snapshot of its own length). Such records are the oldest transmissions,
    /// in order (a record sent before one of them has a lower sequence, so it is in the run
    /// too, or was retransmitted and is not clean), and only the run's first and newest record
    /// matter to RACK and the delivery-rate estimator (see [`super::scoreboard`]).
    /// [`Self::pop_run`] releases it in one step. O(log n): a binary search and a bitmap query.
    pub(crate) fn clean_run(&self, ack: SeqNumber) -> CleanRun {
        let Some(front) = self.front() else { return CleanRun::default() };
        if self.oldest_tx as usize != self.head {
            return CleanRun::default();
        }
        let covered = self.first_ending_after(ack);
        // Only a mark among the covered records can end the run sooner.
        let n = self.next_marked_before(&self.dirty, covered).unwrap_or(covered);
        let Some(last) = n.checked_sub(1).and_then(|p| self.get(p)) else { return CleanRun::default() };
        // In-line records tile the sequence space, each snapshot as long as its record.
        let bytes = offset(last.end(), front.start);
        CleanRun { segments: n, bytes, snapshot_bytes: bytes }
    }

    /// Releases the first `n` records, which [`Self::clean_run`] found to be the `n` oldest
    /// transmissions in order: the transmission-order list loses its first `n` entries at once
    /// and the un-SACKed marks go with one range clear (two if the run wraps). The freed slots
    /// keep stale list links: nothing reads a free slot's links, and `push` rewrites them.
    pub(crate) fn pop_run(&mut self, n: usize) {
        let n = n.min(self.len);
        let Some(last) = n.checked_sub(1) else { return };
        let after = self.slots[self.slot(last)].next;
        // The run occupies at most two contiguous stretches of the ring.
        let (start, cap) = (self.head, self.slots.len());
        self.unsacked.remove_range(start, (start + n).min(cap));
        if start + n > cap {
            self.unsacked.remove_range(0, start + n - cap);
        }
        self.oldest_tx = after;
        if after == NIL {
            self.newest_tx = NIL;
        } else {
            self.slots[after as usize].prev = NIL;
        }
        self.head = self.slot(n);
        self.len -= n;
    }

    /// Position of the record containing `seq`, if any. O(log n).
    pub fn position_of(&self, seq: SeqNumber) -> Option<usize> {
        let pos = self.first_ending_after(seq);
        let rec = self.get(pos)?;
        seq_before_or_eq(rec.start, seq).then_some(pos)
    }

    /// The first position whose record ends after `seq` (`len()` if none; 0 if `seq` is below
    /// the front). Search over offsets from the front, valid across the 2^32 wrap because
    /// everything stored lies within one window. O(log k) for a `seq` in the k-th record:
    /// cumulative ACKs cover a few records at the front (or the whole flight, checked first),
    /// so the search gallops from the front (probing 1, 2, 4, … records ahead) and bisects the
    /// last step.
    pub fn first_ending_after(&self, seq: SeqNumber) -> usize {
        let Some(front) = self.front() else { return 0 };
        let base = front.start;
        if seq < base {
            return 0;
        }
        let target = offset(seq, base);
        // Records tile the window, so the record containing `seq` is the last one starting at or
        // before it: count the records whose start is at or before `seq`. The front's does; an
        // ACK of the whole flight covers the newest one too.
        let newest = self.starts[self.slot(self.len - 1)].wrapping_sub(base.0);
        let (mut lo, mut hi) = if newest <= target {
            (self.len, self.len)
        } else if let Some(count) = self.count_if_equal_lengths(front.len, target) {
            (count, count)
        } else {
            (1, self.len - 1)
        };
        let mut step = 1;
        while lo < hi {
            let probe = lo + step - 1;
            if probe >= hi {
                break;
            }
            if self.starts[self.slot(probe)].wrapping_sub(base.0) <= target {
                lo = probe + 1;
                step *= 2;
            } else {
                hi = probe;
                break;
            }
        }
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

    /// How many records start at or before offset `target` (from the front's start), if the
    /// records from the front are `len` long as far as `target`: a bulk flight's are, so the
    /// count is then `target / len + 1`, checked against the two starts around it. `None` when
    /// the check fails (the caller searches) or the answer is the last record (checked apart).
    fn count_if_equal_lengths(&self, len: u32, target: u32) -> Option<usize> {
        let guess = target.checked_div(len)? as usize;
        let next = guess + 1;
        if next >= self.len {
            return None;
        }
        let base = self.starts[self.head];
        let starts_at = |pos: usize| self.starts[self.slot(pos)].wrapping_sub(base);
        (starts_at(guess) <= target && starts_at(next) > target).then_some(next)
    }

    /// A cumulative ACK landed inside the first record: drop its first `by` bytes.
    pub(crate) fn trim_front(&mut self, by: u32) {
        if self.len == 0 {
            return;
        }
        let s = self.head;
        self.dirty.insert(s);
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
        self.marked_between(bits, pos, self.len)
    }

    /// The first position before `end` whose slot is set in `bits`.
    fn next_marked_before(&self, bits: &SlotBits, end: usize) -> Option<usize> {
        self.marked_between(bits, 0, end)
    }

    /// The first position in `pos..end` (positions, clamped to `len()`) whose slot is set.
    fn marked_between(&self, bits: &SlotBits, pos: usize, end: usize) -> Option<usize> {
        let end = end.min(self.len);
        // No marks at all is the usual case (no dirty record, nothing lost): skip the levels.
        if pos >= end || bits.count() == 0 {
            return None;
        }
        let cap = self.slots.len();
        let (start, end) = (self.head + pos, self.head + end);
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
        self.dirty.insert(s);
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
    /// The record in `slot`, to change: it is no longer clean.
    pub(crate) fn by_slot_mut(&mut self, slot: usize) -> &mut SegmentRecord {
        self.dirty.insert(slot);
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

    /// Moves `slot` to the oldest end of the transmission-order list: a loss mark taken back
    /// by a timeout's undo (see [`super::Scoreboard::unmark_lost`]).
    pub(crate) fn relink_oldest(&mut self, slot: usize) {
        self.unlink(slot);
        let s = slot as u32;
        self.slots[slot].prev = NIL;
        self.slots[slot].next = self.oldest_tx;
        if self.oldest_tx != NIL {
            self.slots[self.oldest_tx as usize].prev = s;
        } else {
            self.newest_tx = s;
        }
        self.oldest_tx = s;
    }

    /// Takes the SACK mark off the record at `pos` (a guess proved wrong, see
    /// [`super::Scoreboard::unsack`]); it rejoins the transmission-order list as the newest.
    pub(crate) fn clear_sacked(&mut self, pos: usize) {
        let Some(rec) = self.get_mut(pos) else { return };
        rec.state.sacked = false;
        let s = self.slot(pos);
        self.unsacked.insert(s);
        self.relink_newest(s);
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

/// A run of clean records at the front of the store (see [`SegmentStore::clean_run`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct CleanRun {
    /// Records in the run (0: the front record is not clean).
    pub segments: usize,
    /// Sequence space the run covers.
    pub bytes: u32,
    /// Sum of the records' snapshot `bytes` (differs from `bytes` if the front was trimmed).
    pub snapshot_bytes: u32,
}

/// How a growing ring moved its slots: old slot `s` is now slot `(s - head) mod old_len`, and
/// there are `new_len` slots. Holders of slot-indexed state must apply it.
#[must_use = "slot-indexed state must follow the records to their new slots"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relocation {
    head: usize,
    old_len: usize,
    new_len: usize,
}

impl Relocation {
    /// Where old slot `slot` now is.
    pub fn slot(&self, slot: usize) -> usize {
        if slot >= self.head {
            slot - self.head
        } else {
            slot + self.old_len - self.head
        }
    }

    fn link(&self, link: u32) -> u32 {
        if link == NIL {
            NIL
        } else {
            self.slot(link as usize) as u32
        }
    }

    /// `bits` over the old slots, moved to the new slots (and the new length).
    pub fn bits(&self, bits: &SlotBits) -> SlotBits {
        let mut out = SlotBits::new(self.new_len);
        let mut from = 0;
        while let Some(s) = bits.next_set(from, self.old_len) {
            out.insert(self.slot(s));
            from = s + 1;
        }
        out
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
mod tests;
