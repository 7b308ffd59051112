//! The wheel's geometry and its slot lists.
//!
//! Owns: the 8 levels × 256 slots, each slot a set of entry indices kept as [`CHAINS`] lists
//! (*chains*) doubly linked through the entries' `prev`/`next` (entry `i` always in chain
//! `i % CHAINS` of its slot), the number of entries per slot, an occupancy bitmap over all
//! slots with a bitmap of its non-empty words, and per slot a lower bound of its live entries' expiry ticks
//! with the number of live entries at exactly that bound. Promises: `push_back`, `pop_front`,
//! `remove`, `leave`, `retick` and `earliest` are O(1) and allocation-free; each entry's `flat`
//! names the slot holding it; the bound of a slot is its exact minimum whenever
//! [`is_exact`](Slots::is_exact) says so. Must not: decide where a timer goes (that is
//! [`slot_for`], called by the wheel), or read entry values and generations.
//!
//! Why chains: a walk over a slot (a cascade, or firing a level-0 slot) must load each entry to
//! find the next, and at a million timers each load is a cache miss. One list makes those
//! misses a serial chain; `CHAINS` lists walked side by side keep `CHAINS` misses in flight.
//! The order of entries within a slot is not specified (the wheel promises no order among
//! timers of one tick).
//!
//! Geometry: a tick `t` and the wheel's cursor `c` (with `t >= c`) share every bit above the
//! highest bit in which they differ. That bit's 8-bit digit selects the level
//! (`level = highest_differing_bit / 8`) and `t`'s digit at that level selects the slot. Level 0
//! slots hold exactly one tick each; a level-`L` slot spans `256^L` ticks. Eight levels cover all
//! 64 bits of a tick, so no overflow list is needed. Flat slot numbers (`level * 256 + slot`)
//! are in the order the cursor reaches the slots (every tick of level `l` comes before every
//! tick of level `l + 1`, and slots within a level never wrap), which the occupancy bitmap and
//! zombie revival rely on. The code is written for any `SLOT_BITS` up to 8.

use super::slab::{Entry, NIL, UNLINKED};

/// log2 of the slots per level.
pub(crate) const SLOT_BITS: u32 = 8;
/// Slots per level.
pub(crate) const SLOTS: usize = 1 << SLOT_BITS;
/// Levels: ceil(64 / SLOT_BITS), enough for any u64 tick.
pub(crate) const LEVELS: usize = 64_usize.div_ceil(SLOT_BITS as usize);
/// Lists per slot: about the cache misses a core keeps in flight. 16 rather than 8 (session 9,
/// docs/PERFORMANCE.md): at 1 M live timers a walk (expiry, cascade, re-filing postponed timers)
/// keeps twice as many entry misses in flight, about −25 % per fired timer, for ~8 % on a small
/// wheel's cancels (which still cost ~11 ns).
pub(crate) const CHAINS: usize = 16;
/// Slots in all levels.
pub(crate) const FLATS: usize = LEVELS * SLOTS;
/// 64-bit words of the occupancy bitmap over all slots.
const WORDS: usize = FLATS.div_ceil(64);
// One bit of `Slots::words` per word, and `Entry::flat` is a `u16` with `UNLINKED` reserved.
const _: () = assert!(WORDS <= 64 && FLATS < u16::MAX as usize);

/// The chain of slot `flat` that holds (or will hold) entry `index`.
#[inline]
fn chain(flat: usize, index: u32) -> usize {
    flat * CHAINS + index as usize % CHAINS
}

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

/// A chain table of `NIL`s, built on the heap (a `Box::new` of the array would build it on
/// the stack first).
fn chain_table() -> Box<[u32; FLATS * CHAINS]> {
    let table: Box<[u32]> = vec![NIL; FLATS * CHAINS].into_boxed_slice();
    table.try_into().unwrap_or_else(|_| unreachable!("the vector has the array's length"))
}

/// Heads, tails and occupancy of every slot.
#[derive(Debug)]
pub(crate) struct Slots {
    /// First entry of each chain (`flat * CHAINS + chain`), or `NIL`. The two chain tables
    /// (128 KiB) are boxed: inline, an engine holding the wheel overflowed a 2 MiB test-thread
    /// stack. The per-slot tables stay inline: `cancel` and `reschedule` read them, and the
    /// pointer load a box adds cost a cancel at 1 M live ~20 % (session 8).
    heads: Box<[u32; FLATS * CHAINS]>,
    /// Last entry of each chain, or `NIL`.
    tails: Box<[u32; FLATS * CHAINS]>,
    /// Entries (live and zombie) per slot, over all its chains.
    counts: [u32; FLATS],
    /// Bit `c` of `nonempty[flat]` is set iff chain `c` of slot `flat` is non-empty: finding the
    /// next chain to pop or the chains to walk is a bit scan, not a branch per chain (on the
    /// nearly empty slots of a small wheel, those branches mispredicted ~3 times per fired timer).
    nonempty: [u16; FLATS],
    /// Bit `flat % 64` of `occupied[flat / 64]` is set iff slot `flat` is non-empty. Flat
    /// order is the order the cursor reaches slots in, so the first set bit is the earliest slot.
    occupied: [u64; WORDS],
    /// Bit `w` is set iff `occupied[w] != 0`.
    words: u64,
    /// Per non-empty slot: a lower bound of the expiry ticks of its live entries (the smallest
    /// tick appended or moved into it since it was last empty). Entries postponed, cancelled or
    /// moved out never raise it: that would need a scan.
    mins: [u64; FLATS],
    /// Per non-empty slot: how many live entries have exactly the tick `mins`, so the bound is
    /// the slot's exact minimum iff this is non-zero. Kept exact by every caller: `push_back`
    /// counts, and the wheel reports every live entry that leaves (`leave`) or changes its tick
    /// in place (`retick`).
    holders: [u32; FLATS],
    /// The chain `pop_front` tries first; it moves on after every pop so that consecutive pops
    /// take turns over the chains (see `pop_front`).
    rotor: usize,
}

impl Slots {
    pub(crate) fn new() -> Self {
        Slots {
            heads: chain_table(),
            tails: chain_table(),
            counts: [0; FLATS],
            nonempty: [0; FLATS],
            occupied: [0; WORDS],
            words: 0,
            mins: [0; FLATS],
            holders: [0; FLATS],
            rotor: 0,
        }
    }

    /// The lowest non-empty level and its lowest non-empty slot. Because every tick in level `l`
    /// is earlier than every tick in level `l + 1`, and slots within a level never wrap (see the
    /// module docs), this slot is the first one the cursor reaches.
    #[inline]
    pub(crate) fn earliest(&self) -> Option<(usize, usize)> {
        if self.words == 0 {
            return None;
        }
        let word = self.words.trailing_zeros() as usize;
        let flat = word * 64 + self.occupied[word].trailing_zeros() as usize;
        Some((flat / SLOTS, flat % SLOTS))
    }

    /// A lower bound of the expiry ticks of the live entries in the non-empty slot `flat`,
    /// exact iff [`is_exact`](Self::is_exact). O(1).
    #[inline]
    pub(crate) fn min_tick(&self, flat: usize) -> u64 {
        self.mins[flat]
    }

    /// Whether `min_tick(flat)` is the tick of some live entry of slot `flat`.
    #[inline]
    pub(crate) fn is_exact(&self, flat: usize) -> bool {
        self.holders[flat] != 0
    }

    /// Accounts for a live entry of tick `tick` that leaves slot `flat` (fired, cancelled or
    /// moved out) or stops having that tick. Returns whether the slot's bound just stopped
    /// being exact (its last live entry at the bound left), the only way an operation on a
    /// slot's entries can unsettle the wheel.
    #[inline]
    pub(crate) fn leave(&mut self, flat: usize, tick: u64) -> bool {
        if tick == self.mins[flat] {
            self.holders[flat] -= 1;
            return self.holders[flat] == 0;
        }
        false
    }

    /// Accounts for a live entry of slot `flat` whose tick changes in place from `old` to `new`;
    /// true if leaving `old` took the slot's last live entry at its bound (see [`Self::leave`]),
    /// even if `new` then restored it.
    #[inline]
    pub(crate) fn retick(&mut self, flat: usize, old: u64, new: u64) -> bool {
        let left_last = self.leave(flat, old);
        self.join(flat, new);
        left_last
    }

    /// Accounts for an entry of slot `flat` (a zombie) that becomes live again with expiry
    /// `tick`, at or after the slot's start. A tick past the slot's end is a postponed entry:
    /// it stays above the bound (which lies inside the slot), so it is not counted, and the
    /// walk that reaches the slot re-files it.
    #[inline]
    pub(crate) fn revive(&mut self, flat: usize, tick: u64) {
        self.join(flat, tick);
    }

    /// Accounts for a live entry of tick `tick` in the non-empty slot `flat`.
    #[inline]
    fn join(&mut self, flat: usize, tick: u64) {
        let min = self.mins[flat];
        if tick < min {
            // Below a lower bound is below every live tick: exact again.
            self.mins[flat] = tick;
            self.holders[flat] = 1;
        } else if tick == min {
            self.holders[flat] += 1;
        }
    }

    /// The last entry of the chain of slot `flat` that entry `index` would join, or `NIL`.
    #[inline]
    pub(crate) fn tail(&self, flat: usize, index: u32) -> u32 {
        self.tails[chain(flat, index)]
    }

    /// Appends live entry `index` (its tick already set) to its chain of slot `flat`.
    #[inline]
    pub(crate) fn push_back<T>(&mut self, entries: &mut [Entry<T>], index: u32, flat: usize) {
        let chain = chain(flat, index);
        let tail = self.tails[chain];
        let entry = &mut entries[index as usize];
        entry.prev = tail;
        entry.next = NIL;
        entry.flat = flat as u16;
        let tick = entry.tick;
        if tail == NIL {
            self.heads[chain] = index;
            self.nonempty[flat] |= 1 << (chain % CHAINS);
        } else {
            entries[tail as usize].next = index;
        }
        self.tails[chain] = index;
        if self.counts[flat] == 0 {
            self.mark_occupied(flat);
            self.mins[flat] = tick;
            self.holders[flat] = 1;
        } else {
            self.join(flat, tick);
        }
        self.counts[flat] += 1;
    }

    /// Unlinks the first entry of one chain of the non-empty slot `flat` and returns it. The
    /// caller accounts for it with `leave` if it is live.
    ///
    /// Successive pops take turns over the chains, and each pop prefetches the new head of the
    /// chain it took from, so a run of pops from one slot (firing a level-0 slot) finds each
    /// entry loaded while it served the other chains, instead of waiting for one miss per pop.
    #[inline]
    pub(crate) fn pop_front<T>(&mut self, entries: &mut [Entry<T>], flat: usize) -> u32 {
        debug_assert!(self.counts[flat] > 0);
        let base = flat * CHAINS;
        // The first non-empty chain at or after the rotor, cyclically.
        let turn = self.nonempty[flat].rotate_right(self.rotor as u32).trailing_zeros() as usize;
        let chain = base + (self.rotor + turn) % CHAINS;
        self.rotor = (chain - base + 1) % CHAINS;
        let index = self.heads[chain];
        let next = entries[index as usize].next;
        self.heads[chain] = next;
        if next == NIL {
            self.tails[chain] = NIL;
            self.nonempty[flat] &= !(1 << (chain - base));
        } else {
            let head = &mut entries[next as usize];
            head.prev = NIL;
            super::batch::prefetch_entry(head);
        }
        entries[index as usize].flat = UNLINKED;
        self.counts[flat] -= 1;
        if self.counts[flat] == 0 {
            self.mark_empty(flat);
        }
        index
    }

    /// Unlinks entry `index` from the slot that holds it. The caller accounts for it with
    /// `leave` if it is live.
    #[inline]
    pub(crate) fn remove<T>(&mut self, entries: &mut [Entry<T>], index: u32) {
        let entry = &mut entries[index as usize];
        let (prev, next, flat) = (entry.prev, entry.next, entry.flat as usize);
        entry.flat = UNLINKED;
        let chain = chain(flat, index);
        if prev == NIL {
            self.heads[chain] = next;
        } else {
            entries[prev as usize].next = next;
        }
        if next == NIL {
            self.tails[chain] = prev;
            if prev == NIL {
                self.nonempty[flat] &= !(1 << (chain % CHAINS));
            }
        } else {
            entries[next as usize].prev = prev;
        }
        self.counts[flat] -= 1;
        if self.counts[flat] == 0 {
            self.mark_empty(flat);
        }
    }

    /// Detaches every chain of slot `flat` and returns the heads of the non-empty ones, in the
    /// first `n` places of the array, and `n`; the entries keep their `next` links so the
    /// caller can walk them (and must re-file or free every one).
    #[inline]
    pub(crate) fn take(&mut self, flat: usize) -> ([u32; CHAINS], usize) {
        let mut heads = [NIL; CHAINS];
        let mut n = 0;
        let mut mask = self.nonempty[flat];
        if mask != 0 {
            let base = flat * CHAINS;
            while mask != 0 {
                let chain = base + mask.trailing_zeros() as usize;
                mask &= mask - 1;
                heads[n] = self.heads[chain];
                n += 1;
                self.heads[chain] = NIL;
                self.tails[chain] = NIL;
            }
            self.nonempty[flat] = 0;
            self.counts[flat] = 0;
            self.mark_empty(flat);
        }
        (heads, n)
    }

    /// Empties every slot.
    pub(crate) fn clear(&mut self) {
        self.heads.fill(NIL);
        self.tails.fill(NIL);
        self.counts = [0; FLATS];
        self.nonempty = [0; FLATS];
        self.occupied = [0; WORDS];
        self.words = 0;
        self.rotor = 0;
    }

    #[inline]
    fn mark_occupied(&mut self, flat: usize) {
        let word = flat / 64;
        self.occupied[word] |= 1 << (flat % 64);
        self.words |= 1 << word;
    }

    #[inline]
    fn mark_empty(&mut self, flat: usize) {
        let word = flat / 64;
        self.occupied[word] &= !(1 << (flat % 64));
        if self.occupied[word] == 0 {
            self.words &= !(1 << word);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_and_near_ticks_land_on_level_zero() {
        assert_eq!(slot_for(0, 0), 0);
        assert_eq!(slot_for(300, 300), 300 % 256);
        assert_eq!(slot_for(256, 511), 255);
    }

    #[test]
    fn level_is_the_highest_differing_digit() {
        // 255 -> 256 crosses a level-1 digit.
        assert_eq!(slot_for(255, 256), SLOTS + 1);
        assert_eq!(slot_for(0, 1 << 16), 2 * SLOTS + 1);
        assert_eq!(slot_for(0, u64::MAX), (LEVELS - 1) * SLOTS + 255);
        assert_eq!(slot_for(u64::MAX - 1, u64::MAX), 255);
    }

    #[test]
    fn slot_start_keeps_cursor_upper_bits() {
        assert_eq!(slot_start(0x1234_5678, 0, 5), 0x1234_5600 | 5);
        assert_eq!(slot_start(0x1234_5678, 1, 2), (0x1234_5678 & !0xffff) | (2 << 8));
        assert_eq!(slot_start(7, LEVELS - 1, 15), 15 << 56);
    }

    /// Flat order is the order the cursor reaches slots in, so the earliest non-empty slot is
    /// the first set bit of the occupancy bitmap, across words and levels.
    #[test]
    fn earliest_is_the_first_occupied_slot_in_flat_order() {
        let mut slots = Slots::new();
        assert_eq!(slots.earliest(), None);
        for flat in [FLATS - 1, 3 * SLOTS + 200, SLOTS + 70, SLOTS + 5] {
            slots.mark_occupied(flat);
        }
        assert_eq!(slots.earliest(), Some((1, 5)));
        slots.mark_empty(SLOTS + 5);
        assert_eq!(slots.earliest(), Some((1, 70)));
        slots.mark_empty(SLOTS + 70);
        assert_eq!(slots.earliest(), Some((3, 200)));
        slots.mark_empty(3 * SLOTS + 200);
        assert_eq!(slots.earliest(), Some((LEVELS - 1, SLOTS - 1)));
        slots.mark_empty(FLATS - 1);
        assert_eq!(slots.earliest(), None);
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
