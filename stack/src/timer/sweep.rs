//! Walking a slot's items: expiring the front of a level-0 slot, cascading a whole slot,
//! compacting one in place, and rescanning one for its earliest timer.
//!
//! Owns: the rule that decides whether an item is live, and the batching that keeps these walks
//! from paying one cache miss after another. Promises: every walk keeps item order (so schedule
//! order within a tick survives cascades and compaction), drops garbage, and never reads an
//! entry twice for validity without a reason (a repeat check happens only after a write).
//! Must not: allocate beyond what the chunk pool's pushes do, or use `unsafe`.
//!
//! An item `(index, stamp)` in the slot that starts at tick `start` on level `L` is live iff its
//! entry is live, carries that stamp, and expires within that slot's span (`tick >> 6L ==
//! start >> 6L`). The span check makes a stale item harmless even if the entry's 32-bit stamp
//! has wrapped around to the item's value: the entry lives elsewhere, or here, in which case its
//! current item is here too and whichever of the two is reached first moves or fires the timer
//! and bumps the stamp, which kills the other (the only effect: the timer's place among others
//! expiring in the same tick may be the older one's, after 2^32 reschedules of one timer while
//! the older item sat unswept).

use super::chunks::{Item, CHUNK_ITEMS};
use super::slab::Entry;
use super::slots::{slot_for, slot_start, SLOTS, SLOT_BITS};
use super::{TimerHandle, TimerWheel};

/// How far ahead of the item being expired the wheel touches the next entries, so their misses
/// overlap with the work on the current one.
const LOOKAHEAD: usize = 4;

/// Whether `item`, found in the slot whose span is `tick >> shift == start >> shift`, names its
/// entry's current schedule.
#[inline]
fn is_live<T>(entry: &Entry<T>, item: Item, shift: u32, start: u64) -> bool {
    entry.generation % 2 == 1 && entry.stamp == item.stamp && entry.tick >> shift == start >> shift
}

impl<T> TimerWheel<T> {
    /// Removes the first live timer of level-0 slot `slot` (the cursor is at its tick), dropping
    /// the garbage in front of it. `None` only if the slot held no live item, which the slot
    /// counters rule out; the slot is then emptied so the caller's loop moves on.
    #[inline]
    pub(super) fn pop_due(&mut self, slot: usize) -> Option<(TimerHandle, T)> {
        let start = self.cursor;
        loop {
            let Some(item) = self.pool.pop_front(&mut self.slots.lists[slot]) else {
                self.slots.reset(slot);
                return None;
            };
            self.slots.popped(slot);
            if let Some(ahead) = self.pool.peek_ahead(&self.slots.lists[slot], LOOKAHEAD) {
                // A load whose result is needed (black_box) but not waited for: the entry is in
                // cache by the time it is popped. A prefetch instruction would need `unsafe`.
                core::hint::black_box(self.slab.entries.get(ahead.index as usize).map(|e| e.stamp));
            }
            let Some(entry) = self.slab.entries.get(item.index as usize) else { continue };
            if !is_live(entry, item, 0, start) {
                continue;
            }
            let generation = entry.generation;
            let value = self.slab.free(item.index)?;
            if self.slots.remove_live(slot, start) {
                self.pool.release(&mut self.slots.lists[slot]);
                self.slots.reset(slot);
            } else {
                self.compact_if_mostly_garbage(slot);
            }
            return Some((TimerHandle { index: item.index, generation }, value));
        }
    }

    /// Re-places every live timer of slot `flat` relative to the cursor, dropping its garbage:
    /// the cascade, called once the cursor moved to a higher-level slot's start (each timer moves
    /// down at least one level, into slots that are empty since every lower level was). The walk
    /// goes front to back and appends, so schedule order within a tick is kept. Each timer gets
    /// a new stamp, so a stale item with a wrapped stamp can never be placed twice.
    pub(super) fn cascade(&mut self, flat: usize) {
        let shift = (flat / SLOTS) as u32 * SLOT_BITS;
        let start = slot_start(self.cursor, flat / SLOTS, flat % SLOTS);
        let mut list = self.slots.detach(flat);
        let mut batch = [Item::default(); CHUNK_ITEMS];
        loop {
            // The chunk is freed before its items are pushed, so pushes reuse it.
            let n = self.pool.pop_chunk(&mut list, &mut batch);
            if n == 0 {
                return;
            }
            // First the entry loads of the whole chunk, independent of each other so the CPU
            // overlaps their misses; then the moves, on entries now in cache.
            let mut live = 0_u32;
            for (i, &item) in batch[..n].iter().enumerate() {
                let entry = self.slab.entries.get(item.index as usize);
                live |= u32::from(entry.is_some_and(|e| is_live(e, item, shift, start))) << i;
            }
            while live != 0 {
                let item = batch[live.trailing_zeros() as usize];
                live &= live - 1;
                let entry = &mut self.slab.entries[item.index as usize];
                if entry.stamp != item.stamp {
                    continue;
                }
                entry.stamp = entry.stamp.wrapping_add(1);
                let (tick, moved) = (entry.tick, Item { index: item.index, stamp: entry.stamp });
                let to = slot_for(self.cursor, tick);
                self.pool.push(&mut self.slots.lists[to], moved);
                self.slots.add(to, tick);
            }
        }
    }

    /// Drops the garbage of slot `flat`, keeping its live items in order where they are. Reads
    /// entries but writes none, and leaves the slot's live count and minimum as they were (its
    /// set of live timers does not change).
    pub(super) fn compact_slot(&mut self, flat: usize) {
        let shift = (flat / SLOTS) as u32 * SLOT_BITS;
        let start = slot_start(self.cursor, flat / SLOTS, flat % SLOTS);
        let entries = &self.slab.entries;
        let kept = self.pool.retain(&mut self.slots.lists[flat], |items| {
            let mut live = 0_u32;
            for (i, &item) in items.iter().enumerate() {
                let entry = entries.get(item.index as usize);
                live |= u32::from(entry.is_some_and(|e| is_live(e, item, shift, start))) << i;
            }
            live
        });
        self.slots.set_items(flat, kept);
        if kept == 0 {
            self.slots.reset(flat);
        }
    }

    /// The earliest expiry tick among the live timers of occupied higher-level slot `flat`,
    /// which starts at tick `start`. O(items in the slot); the caller remembers the result.
    pub(super) fn rescan_min(&self, flat: usize, start: u64) -> u64 {
        let shift = (flat / SLOTS) as u32 * SLOT_BITS;
        let mut min = u64::MAX;
        self.pool.for_each(&self.slots.lists[flat], |items| {
            for &item in items {
                if let Some(entry) = self.slab.entries.get(item.index as usize) {
                    if is_live(entry, item, shift, start) {
                        min = min.min(entry.tick);
                    }
                }
            }
        });
        min
    }
}
