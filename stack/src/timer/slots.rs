//! The wheel's geometry and the bookkeeping of its slots.
//!
//! Owns: the 11 levels × 64 slots, each slot's item list (see `chunks.rs`), its count of live
//! timers and of items (live plus garbage), one occupancy bitmap per level, one bitmap of
//! non-empty levels, and each slot's smallest expiry tick. Promises: a slot's occupancy bit is
//! set iff it holds a live timer (garbage alone never makes a slot look occupied); `earliest`
//! is O(1); `known_min` is exact whenever it answers (it does unless the slot's minimum was
//! removed since it was last computed; the wheel then rescans that slot once and remembers the
//! result). Must not: decide where a timer goes (that is [`slot_for`], called by the wheel) or
//! touch entries.
//!
//! Geometry: a tick `t` and the wheel's cursor `c` (with `t >= c`) share every bit above the
//! highest bit in which they differ. That bit's 6-bit digit selects the level
//! (`level = highest_differing_bit / 6`) and `t`'s digit at that level selects the slot. Level 0
//! slots hold exactly one tick each; a level-`L` slot spans `64^L` ticks. Eleven levels cover all
//! 64 bits of a tick (the top level only uses 16 of its slots), so no overflow list is needed.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::chunks::ItemList;

/// log2 of the slots per level.
pub(crate) const SLOT_BITS: u32 = 6;
/// Slots per level.
pub(crate) const SLOTS: usize = 1 << SLOT_BITS;
/// Levels: ceil(64 / 6), enough for any u64 tick.
pub(crate) const LEVELS: usize = 64_usize.div_ceil(SLOT_BITS as usize);

/// Flat slot index (`level * SLOTS + slot`) for a timer expiring at `tick`, relative to the
/// wheel's `cursor`. Requires `tick >= cursor`.
#[inline]
pub(crate) fn slot_for(cursor: u64, tick: u64) -> usize {
    debug_assert!(tick >= cursor);
    // OR-ing in the low digit makes equal ticks land on level 0 without a branch.
    let highest = 63 - ((tick ^ cursor) | (SLOTS as u64 - 1)).leading_zeros();
    let level = highest / SLOT_BITS;
    let slot = (tick >> (level * SLOT_BITS)) as usize & (SLOTS - 1);
    level as usize * SLOTS + slot
}

/// First tick covered by `slot` of `level`, for a wheel whose cursor is `cursor`.
#[inline]
pub(crate) fn slot_start(cursor: u64, level: usize, slot: usize) -> u64 {
    let digit_shift = level as u32 * SLOT_BITS;
    let span_bits = digit_shift + SLOT_BITS;
    // The bits above this level's digit are the cursor's; those at and below are the slot's.
    let upper = cursor.checked_shr(span_bits).and_then(|u| u.checked_shl(span_bits)).unwrap_or(0);
    upper | ((slot as u64) << digit_shift)
}

/// Flat slots: `LEVELS * SLOTS`.
pub(crate) const FLAT_SLOTS: usize = LEVELS * SLOTS;

/// Per-slot lists and counters, and the occupancy bitmaps.
#[derive(Debug)]
pub(crate) struct Slots {
    /// Each slot's items, in schedule order.
    pub(crate) lists: [ItemList; FLAT_SLOTS],
    /// Live timers per slot. Zero iff the slot's list is empty: the wheel releases the list
    /// (garbage and all) when the last live timer leaves.
    live: [u32; FLAT_SLOTS],
    /// Items per slot, live ones plus garbage.
    items: [u32; FLAT_SLOTS],
    /// Bit `s` of `occupied[l]` is set iff slot `s` of level `l` holds a live timer.
    occupied: [u64; LEVELS],
    /// Bit `l` is set iff `occupied[l] != 0`.
    levels: u32,
    /// Per occupied slot: a lower bound of its live timers' expiry ticks, exact iff the slot's
    /// bit is set in `min_exact`. Adding a timer keeps it exact; removing the minimum makes it a
    /// bound until the wheel rescans. Atomics (relaxed: plain loads and stores) only so that a
    /// rescan, reached through `&self`, can remember its result without making the wheel
    /// `!Sync`; a lost race between two readers merely clears a bit, which costs a rescan.
    mins: [AtomicU64; FLAT_SLOTS],
    min_exact: [AtomicU64; LEVELS],
}

impl Slots {
    pub(crate) fn new() -> Self {
        Slots {
            lists: [ItemList::EMPTY; FLAT_SLOTS],
            live: [0; FLAT_SLOTS],
            items: [0; FLAT_SLOTS],
            occupied: [0; LEVELS],
            levels: 0,
            mins: [const { AtomicU64::new(0) }; FLAT_SLOTS],
            min_exact: [const { AtomicU64::new(0) }; LEVELS],
        }
    }

    /// The lowest level holding a live timer and its lowest such slot. Because every tick in
    /// level `l` is earlier than every tick in level `l + 1`, and slots within a level never
    /// wrap (see the module docs), this slot holds the earliest timers of the wheel.
    #[inline]
    pub(crate) fn earliest(&self) -> Option<(usize, usize)> {
        if self.levels == 0 {
            return None;
        }
        let level = self.levels.trailing_zeros() as usize;
        let slot = self.occupied[level].trailing_zeros() as usize;
        Some((level, slot))
    }

    /// Like [`earliest`](Self::earliest), ignoring the slots whose bits are set in `except`.
    #[inline]
    pub(crate) fn earliest_except(&self, except: &[u64; LEVELS]) -> Option<(usize, usize)> {
        let mut levels = self.levels;
        while levels != 0 {
            let level = levels.trailing_zeros() as usize;
            let occupied = self.occupied[level] & !except[level];
            if occupied != 0 {
                return Some((level, occupied.trailing_zeros() as usize));
            }
            levels &= levels - 1;
        }
        None
    }

    #[inline]
    pub(crate) fn live(&self, flat: usize) -> u32 {
        self.live[flat]
    }

    #[inline]
    pub(crate) fn items(&self, flat: usize) -> u32 {
        self.items[flat]
    }

    /// Every slot's item count (for the memory bound's tests).
    #[cfg(test)]
    pub(crate) fn total_items(&self) -> u64 {
        self.items.iter().map(|&n| u64::from(n)).sum()
    }

    /// Counts a live timer with expiry `tick` just pushed onto slot `flat`'s list.
    #[inline(always)]
    pub(crate) fn add(&mut self, flat: usize, tick: u64) {
        self.items[flat] += 1;
        self.live[flat] += 1;
        if self.live[flat] == 1 {
            self.mark_occupied(flat);
            self.mins[flat].store(tick, Relaxed);
            self.set_exact(flat);
        } else if tick < self.mins[flat].load(Relaxed) {
            // Below an inexact bound is below every live tick in the slot: exact again.
            self.mins[flat].store(tick, Relaxed);
            self.set_exact(flat);
        }
    }

    /// Uncounts a live timer with expiry `tick` that left slot `flat` (its item stays, as
    /// garbage). Returns true if the slot holds no live timer any more: the caller must then
    /// release its list and call [`reset`](Self::reset).
    #[inline]
    pub(crate) fn remove_live(&mut self, flat: usize, tick: u64) -> bool {
        self.live[flat] -= 1;
        if tick == self.mins[flat].load(Relaxed) {
            let level = flat / SLOTS;
            let exact = self.min_exact[level].load(Relaxed);
            self.min_exact[level].store(exact & !(1 << (flat % SLOTS)), Relaxed);
        }
        self.live[flat] == 0
    }

    /// Records that slot `flat`'s list now holds `items` items (after a compaction).
    #[inline]
    pub(crate) fn set_items(&mut self, flat: usize, items: u32) {
        self.items[flat] = items;
    }

    /// Counts an item taken off the front of slot `flat`'s list.
    #[inline]
    pub(crate) fn popped(&mut self, flat: usize) {
        self.items[flat] -= 1;
    }

    /// Marks slot `flat` empty: no live timer, no item. Its list must have been released or
    /// detached.
    #[inline]
    pub(crate) fn reset(&mut self, flat: usize) {
        debug_assert!(self.lists[flat].is_empty());
        self.live[flat] = 0;
        self.items[flat] = 0;
        self.mark_empty(flat);
    }

    /// Takes slot `flat`'s whole list and marks the slot empty.
    #[inline]
    pub(crate) fn detach(&mut self, flat: usize) -> ItemList {
        let list = core::mem::replace(&mut self.lists[flat], ItemList::EMPTY);
        self.reset(flat);
        list
    }

    /// The smallest live expiry tick of occupied slot `flat`, if it is known exactly.
    #[inline]
    pub(crate) fn known_min(&self, flat: usize) -> Option<u64> {
        let exact = self.min_exact[flat / SLOTS].load(Relaxed) & 1 << (flat % SLOTS) != 0;
        exact.then(|| self.mins[flat].load(Relaxed))
    }

    /// Remembers `min`, found by a rescan, as slot `flat`'s exact minimum.
    pub(crate) fn remember_min(&self, flat: usize, min: u64) {
        self.mins[flat].store(min, Relaxed);
        let level = flat / SLOTS;
        self.min_exact[level].store(self.min_exact[level].load(Relaxed) | 1 << (flat % SLOTS), Relaxed);
    }

    /// Empties every slot (the caller clears the chunk pool).
    pub(crate) fn clear(&mut self) {
        *self = Slots::new();
    }

    #[inline]
    fn set_exact(&mut self, flat: usize) {
        let level = flat / SLOTS;
        let exact = self.min_exact[level].load(Relaxed);
        self.min_exact[level].store(exact | 1 << (flat % SLOTS), Relaxed);
    }

    #[inline]
    fn mark_occupied(&mut self, flat: usize) {
        let level = flat / SLOTS;
        self.occupied[level] |= 1 << (flat % SLOTS);
        self.levels |= 1 << level;
    }

    #[inline]
    fn mark_empty(&mut self, flat: usize) {
        let level = flat / SLOTS;
        self.occupied[level] &= !(1 << (flat % SLOTS));
        if self.occupied[level] == 0 {
            self.levels &= !(1 << level);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_and_near_ticks_land_on_level_zero() {
        assert_eq!(slot_for(0, 0), 0);
        assert_eq!(slot_for(100, 100), 100 % 64);
        assert_eq!(slot_for(64, 127), 63);
    }

    #[test]
    fn level_is_the_highest_differing_digit() {
        // 63 -> 64 crosses a level-1 digit.
        assert_eq!(slot_for(63, 64), SLOTS + 1);
        assert_eq!(slot_for(0, 1 << 12), 2 * SLOTS + 1);
        assert_eq!(slot_for(0, u64::MAX), (LEVELS - 1) * SLOTS + 15);
        assert_eq!(slot_for(u64::MAX - 1, u64::MAX), 63);
    }

    #[test]
    fn slot_start_keeps_cursor_upper_bits() {
        assert_eq!(slot_start(0x1234_5678, 0, 5), 0x1234_5640 | 5);
        assert_eq!(slot_start(0x1234_5678, 1, 2), (0x1234_5678 & !0xfff) | (2 << 6));
        assert_eq!(slot_start(7, LEVELS - 1, 15), 15 << 60);
    }

    #[test]
    fn every_tick_lies_in_the_slot_it_maps_to() {
        let cursors = [0_u64, 1, 63, 64, 4095, 1 << 40, u64::MAX - 70, u64::MAX];
        for &cursor in &cursors {
            for shift in 0..64 {
                let tick = cursor.saturating_add(1_u64 << shift).max(cursor);
                let flat = slot_for(cursor, tick);
                let (level, slot) = (flat / SLOTS, flat % SLOTS);
                let start = slot_start(cursor, level, slot);
                let span = 1_u128 << (level as u32 * SLOT_BITS);
                assert!(start <= tick && u128::from(tick) < u128::from(start) + span, "{cursor} {tick}");
                if level > 0 {
                    assert!(start > cursor, "a higher-level slot starts after the cursor");
                }
            }
        }
    }
}
