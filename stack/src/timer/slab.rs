//! Timer storage: one array of 32-byte entries addressed by `u32` index, with a free list and a
//! generation counter per entry.
//!
//! Owns: every timer's list links, expiry tick, generation, filed slot and value. Promises:
//! `alloc`, `release` and `live_mut` are O(1) and never allocate once the array has grown to its
//! high-water mark; a handle whose timer fired or was cancelled never resolves again, because
//! firing and cancelling bump the entry's generation (odd while live, even otherwise) and `alloc`
//! bumps it again. An entry whose generation would wrap is retired instead of reused, so stale
//! handles cannot alias a later timer even after 2^31 reuses of one entry. Must not: know about
//! levels or slots of the wheel (the list fields are plain data for `slots.rs`), or use `unsafe`.
//!
//! Why one entry per line-half: with a million live timers the storage far exceeds the caches,
//! and every random operation pays a miss per cache line it touches. Validating a handle,
//! postponing a timer, cancelling it and returning its value all read and write only the
//! timer's own entry, so each of those is one line (two entries per 64-byte line; the entry is
//! 32-byte aligned so it never straddles two). The cost is that values must be small and `Copy`
//! (the engine's is 8 bytes); a larger `T` makes the entry 64 bytes.
//!
//! An entry is in one of three states:
//! - **live**: odd generation, linked in the wheel slot `flat`, `tick` is its expiry tick;
//! - **zombie**: even generation (cancelled), still linked in slot `flat` until the wheel
//!   reaches that slot or reclaims it; `tick` holds its position in the wheel's zombie list;
//! - **free**: even generation, `flat == UNLINKED`, on the free list through `next`.

/// "No entry": the end of a list, an empty slot, an empty free list.
pub(crate) const NIL: u32 = u32::MAX;

/// The `flat` of an entry that is in no slot list.
pub(crate) const UNLINKED: u16 = u16::MAX;

/// One timer: what every operation on it touches, in half a cache line.
#[derive(Clone, Copy, Debug)]
#[repr(align(32))]
pub(crate) struct Entry<T> {
    /// Live: the expiry tick, which may be later than the slot the entry is filed in
    /// (postponed). Zombie: its index in the zombie list.
    pub(crate) tick: u64,
    /// Previous entry in the same wheel slot, or `NIL` at the head.
    pub(crate) prev: u32,
    /// Next entry in the same wheel slot (or in the free list when free), or `NIL`.
    pub(crate) next: u32,
    /// Odd while live; a handle must carry the current (odd) value to resolve.
    pub(crate) generation: u32,
    /// The flat wheel slot (`level * 64 + slot`) whose list holds the entry, or `UNLINKED`.
    pub(crate) flat: u16,
    /// The caller's payload; stale (never read) unless live.
    pub(crate) value: T,
}

impl<T> Entry<T> {
    #[inline]
    pub(crate) fn is_live(&self) -> bool {
        self.generation % 2 == 1
    }
}

/// The entries plus their free list.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    pub(crate) entries: Vec<Entry<T>>,
    /// Head of the singly linked free list (through `Entry::next`).
    free_head: u32,
    /// Live entries (zombies and free entries excluded).
    pub(crate) len: u32,
}

impl<T: Copy> Slab<T> {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        // More than `NIL` entries are unaddressable; do not reserve memory we can never use.
        let capacity = capacity.min(NIL as usize);
        Slab { entries: Vec::with_capacity(capacity), free_head: NIL, len: 0 }
    }

    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    /// The address range of the reserved storage, capacity included.
    pub(crate) fn region(&self) -> core::ops::Range<usize> {
        let start = self.entries.as_ptr() as usize;
        start..start + self.entries.capacity() * core::mem::size_of::<Entry<T>>()
    }

    /// Stores a live timer with expiry `tick`; returns its index and generation. The list fields
    /// are left for the caller to set.
    ///
    /// # Panics
    /// If `u32::MAX - 1` entries are in use (the index space is exhausted).
    #[inline]
    pub(crate) fn alloc(&mut self, tick: u64, value: T) -> (u32, u32) {
        self.len += 1;
        let index = self.free_head;
        if let Some(entry) = self.entries.get_mut(index as usize) {
            self.free_head = entry.next;
            entry.tick = tick;
            entry.generation += 1;
            entry.value = value;
            return (index, entry.generation);
        }
        let index = u32::try_from(self.entries.len())
            .ok()
            .filter(|&i| i != NIL)
            .expect("timer wheel holds at most u32::MAX - 1 timers");
        self.entries.push(Entry { tick, prev: NIL, next: NIL, generation: 1, flat: UNLINKED, value });
        (index, 1)
    }

    /// The live entry named by (`index`, `generation`), if any. Touches only that entry.
    ///
    /// Liveness is checked on the asked-for generation (odd), which is known before the entry
    /// arrives from memory, rather than on the entry's.
    #[inline]
    pub(crate) fn live_mut(&mut self, index: u32, generation: u32) -> Option<&mut Entry<T>> {
        let odd = generation % 2 == 1;
        self.entries.get_mut(index as usize).filter(|e| odd && e.generation == generation)
    }

    /// Shared access to the live entry named by (`index`, `generation`), if any.
    #[inline]
    pub(crate) fn live(&self, index: u32, generation: u32) -> Option<&Entry<T>> {
        let odd = generation % 2 == 1;
        self.entries.get(index as usize).filter(|e| odd && e.generation == generation)
    }

    /// Ends the life of live entry `index` (fired or cancelled): its handles go stale, the
    /// entry stays where it is.
    #[inline]
    pub(crate) fn kill(&mut self, index: u32) -> T {
        let entry = &mut self.entries[index as usize];
        debug_assert!(entry.is_live());
        entry.generation += 1;
        self.len -= 1;
        entry.value
    }

    /// Puts a dead, already unlinked entry on the free list.
    #[inline]
    pub(crate) fn release(&mut self, index: u32) {
        let entry = &mut self.entries[index as usize];
        debug_assert!(!entry.is_live());
        entry.flat = UNLINKED;
        // Live generations are odd and at most `u32::MAX - 2`, so `alloc` never wraps; an entry
        // whose next life would need `u32::MAX` or more is retired (left off the free list).
        if entry.generation < u32::MAX - 1 {
            entry.next = self.free_head;
            self.free_head = index;
        }
    }

    /// Kills every live entry and frees every entry, keeping the allocation. O(capacity).
    ///
    /// Entries are freed in place rather than truncated so that handles issued before the clear
    /// stay stale.
    pub(crate) fn clear(&mut self) {
        self.free_head = NIL;
        self.len = 0;
        for index in (0..self.entries.len() as u32).rev() {
            let entry = &mut self.entries[index as usize];
            entry.generation += u32::from(entry.is_live());
            self.release(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two entries per 64-byte cache line for the engine's and the bench's values.
    #[test]
    fn an_entry_is_half_a_cache_line() {
        assert_eq!(core::mem::size_of::<Entry<(u32, u32)>>(), 32);
        assert_eq!(core::mem::size_of::<Entry<u64>>(), 32);
        assert_eq!(core::mem::align_of::<Entry<u8>>(), 32);
    }

    #[test]
    fn freed_entries_are_reused_with_a_new_generation() {
        let mut slab = Slab::with_capacity(2);
        let (a, gen_a) = slab.alloc(1, 'a');
        assert!(slab.live(a, gen_a).is_some());
        assert_eq!(slab.kill(a), 'a');
        slab.release(a);
        assert!(slab.live(a, gen_a).is_none());
        assert!(slab.live(a, gen_a + 1).is_none(), "an even generation is never live");
        let (b, gen_b) = slab.alloc(2, 'b');
        assert_eq!((b, gen_b), (a, gen_a + 2));
        assert_eq!(slab.live(b, gen_b).map(|e| e.value), Some('b'));
        assert_eq!(slab.len, 1);
    }

    #[test]
    fn an_entry_is_retired_instead_of_wrapping_its_generation() {
        let mut slab = Slab::with_capacity(1);
        let (a, _) = slab.alloc(1, 1_u8);
        slab.entries[a as usize].generation = u32::MAX - 2;
        assert_eq!(slab.kill(a), 1);
        slab.release(a);
        // The retired entry is not on the free list: the next timer gets a fresh one.
        let (b, gen_b) = slab.alloc(2, 2);
        assert_ne!(b, a);
        assert_eq!(gen_b, 1);
        assert!(slab.live(a, u32::MAX - 2).is_none());
        assert!(slab.live(a, u32::MAX).is_none());
    }

    #[test]
    fn clear_frees_live_entries_and_keeps_free_ones() {
        let mut slab = Slab::with_capacity(4);
        let handles: Vec<_> = (0..4).map(|i| slab.alloc(i, i)).collect();
        slab.kill(handles[1].0);
        slab.release(handles[1].0);
        slab.clear();
        assert_eq!(slab.len, 0);
        assert!(handles.iter().all(|&(i, g)| slab.live(i, g).is_none()));
        let reused: Vec<_> = (0..4).map(|i| slab.alloc(i, i).0).collect();
        assert_eq!(slab.entries.len(), 4, "all four entries were reusable");
        assert_eq!(reused, [0, 1, 2, 3], "in index order");
    }

    #[test]
    fn region_covers_the_reserved_capacity() {
        let slab = Slab::<u64>::with_capacity(1_000);
        let region = slab.region();
        assert_eq!(region.len(), slab.entries.capacity() * 32);
        assert_eq!(region.start % 32, 0, "entries never straddle a cache line");
    }
}
