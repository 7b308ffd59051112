//! Timer storage: one array of entries addressed by `u32` index, with a free list, a
//! generation per entry (names the timer's life) and a stamp (names its latest schedule).
//!
//! Owns: every timer's expiry tick, generation, stamp and value. Promises: `alloc`, `free` and
//! `live` are O(1) and never allocate once the array has grown to the high-water mark of live
//! timers; a handle whose entry has been freed (or freed and reused) never resolves again,
//! because both `alloc` and `free` bump the entry's generation (odd while live, even while
//! free). An entry whose generation would wrap is retired instead of reused, so stale handles
//! cannot alias a later timer even after 2^31 reuses of one entry. Must not: know about levels
//! or slots of the wheel, or use `unsafe`.
//!
//! Why one 32-byte entry (for an 8-byte value): with a million live timers the storage far
//! exceeds the L2 cache, and a random cancel or reschedule pays one miss per cache line it
//! touches. Everything those operations read (generation, tick, stamp, value) shares one line,
//! so each of them costs a single miss; the wheel's slot lists hold `(index, stamp)` items
//! elsewhere and are never touched by a cancel (see `chunks.rs`).

/// "No entry": the end of a list, an empty free list.
pub(crate) const NIL: u32 = u32::MAX;

/// One timer (or a free entry).
#[derive(Debug)]
pub(crate) struct Entry<T> {
    /// Expiry tick while live; the next free entry's index while free.
    pub(crate) tick: u64,
    /// Odd while a timer lives here, even while free; a handle must carry the current value.
    pub(crate) generation: u32,
    /// Bumped every time the timer is (re)placed in a wheel slot and when it is freed: a slot
    /// item carrying an older stamp is garbage. Never reset, so an item from an earlier life of
    /// the entry is garbage too (up to wrapping, which the wheel tolerates; see `mod.rs`).
    pub(crate) stamp: u32,
    /// The caller's payload; `None` exactly when the entry is free or retired.
    pub(crate) value: Option<T>,
}

/// The entries plus their free list.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    pub(crate) entries: Vec<Entry<T>>,
    /// Head of the singly linked free list (through `Entry::tick`).
    free_head: u32,
    /// Live entries.
    len: u32,
}

impl<T> Slab<T> {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        // More than `NIL` entries are unaddressable; do not reserve memory we can never use.
        let capacity = capacity.min(NIL as usize);
        Slab { entries: Vec::with_capacity(capacity), free_head: NIL, len: 0 }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    /// The address range of the reserved entries, capacity included.
    pub(crate) fn region(&self) -> core::ops::Range<usize> {
        let start = self.entries.as_ptr() as usize;
        start..start + self.entries.capacity() * core::mem::size_of::<Entry<T>>()
    }

    /// Stores `value` with expiry `tick`; returns its index, generation and new stamp.
    ///
    /// # Panics
    /// If `u32::MAX - 1` timers are already live (the index space is exhausted).
    #[inline]
    pub(crate) fn alloc(&mut self, tick: u64, value: T) -> (u32, u32, u32) {
        let index = self.free_head;
        self.len += 1;
        if let Some(entry) = self.entries.get_mut(index as usize) {
            self.free_head = entry.tick as u32;
            entry.tick = tick;
            entry.generation += 1;
            entry.stamp = entry.stamp.wrapping_add(1);
            entry.value = Some(value);
            return (index, entry.generation, entry.stamp);
        }
        let index = u32::try_from(self.entries.len())
            .ok()
            .filter(|&i| i != NIL)
            .expect("timer wheel holds at most u32::MAX - 1 timers");
        self.entries.push(Entry { tick, generation: 1, stamp: 0, value: Some(value) });
        (index, 1, 0)
    }

    /// Releases a live entry and returns its value; its slot item becomes garbage.
    #[inline]
    pub(crate) fn free(&mut self, index: u32) -> Option<T> {
        let entry = self.entries.get_mut(index as usize)?;
        let value = entry.value.take()?;
        self.len -= 1;
        entry.generation += 1;
        entry.stamp = entry.stamp.wrapping_add(1);
        // Live generations are odd and at most `u32::MAX - 2`, so this never wraps; an entry
        // whose next life would need `u32::MAX` or more is retired (left off the free list).
        if entry.generation < u32::MAX - 1 {
            entry.tick = u64::from(self.free_head);
            self.free_head = index;
        }
        Some(value)
    }

    /// The live entry named by (`index`, `generation`), if any.
    #[inline]
    pub(crate) fn get(&self, index: u32, generation: u32) -> Option<&Entry<T>> {
        let entry = self.entries.get(index as usize)?;
        (generation % 2 == 1 && entry.generation == generation).then_some(entry)
    }

    /// The live entry named by (`index`, `generation`), mutably, if any.
    #[inline]
    pub(crate) fn get_mut(&mut self, index: u32, generation: u32) -> Option<&mut Entry<T>> {
        let entry = self.entries.get_mut(index as usize)?;
        (generation % 2 == 1 && entry.generation == generation).then_some(entry)
    }

    /// Frees every live entry (dropping its value), keeping the allocation. O(capacity).
    ///
    /// Entries are freed in place rather than truncated so that handles issued before the clear
    /// stay stale.
    pub(crate) fn clear(&mut self) {
        for index in 0..self.entries.len() as u32 {
            drop(self.free(index));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two entries per 64-byte cache line for the engine's `(u32, u32)` and for `u64`.
    #[test]
    fn an_entry_is_thirty_two_bytes_for_small_values() {
        assert_eq!(core::mem::size_of::<Entry<(u32, u32)>>(), 32);
        assert_eq!(core::mem::size_of::<Entry<u64>>(), 32);
    }

    #[test]
    fn freed_entries_are_reused_with_a_new_generation_and_stamp() {
        let mut slab = Slab::with_capacity(2);
        let (a, gen_a, stamp_a) = slab.alloc(1, 'a');
        assert!(slab.get(a, gen_a).is_some());
        assert_eq!(slab.free(a), Some('a'));
        assert!(slab.get(a, gen_a).is_none());
        assert!(slab.get(a, gen_a + 1).is_none(), "an even generation is never live");
        let (b, gen_b, stamp_b) = slab.alloc(2, 'b');
        assert_eq!((b, gen_b), (a, gen_a + 2));
        assert_ne!(stamp_b, stamp_a, "items of the earlier life are garbage");
        assert_eq!(slab.get(b, gen_b).and_then(|e| e.value), Some('b'));
        assert_eq!(slab.free(a), Some('b'));
        assert_eq!(slab.free(a), None, "double free is a no-op");
        assert_eq!(slab.len(), 0);
    }

    #[test]
    fn an_entry_is_retired_instead_of_wrapping_its_generation() {
        let mut slab = Slab::with_capacity(1);
        let (a, _, _) = slab.alloc(1, 1_u8);
        slab.entries[a as usize].generation = u32::MAX - 2;
        assert_eq!(slab.free(a), Some(1));
        // The retired entry is not on the free list: the next timer gets a fresh one.
        let (b, gen_b, _) = slab.alloc(2, 2);
        assert_ne!(b, a);
        assert_eq!(gen_b, 1);
        assert!(slab.get(a, u32::MAX - 2).is_none());
        assert!(slab.get(a, u32::MAX).is_none());
    }

    #[test]
    fn clear_frees_live_entries_and_keeps_free_ones() {
        let mut slab = Slab::with_capacity(4);
        let handles: Vec<_> = (0..4).map(|i| slab.alloc(i, i)).collect();
        slab.free(handles[1].0);
        slab.clear();
        assert_eq!(slab.len(), 0);
        assert!(handles.iter().all(|&(i, g, _)| slab.get(i, g).is_none()));
        let reused: Vec<_> = (0..4).map(|i| slab.alloc(i, i).0).collect();
        assert_eq!(slab.entries.len(), 4, "all four entries were reusable");
        assert_eq!(reused.len(), 4);
    }

    #[test]
    fn region_covers_the_reserved_capacity() {
        let slab = Slab::<u64>::with_capacity(1_000);
        assert_eq!(slab.region().len(), slab.entries.capacity() * 32);
    }
}
