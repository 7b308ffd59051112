//! Timer storage: a `Vec` of entries addressed by `u32` index, with a free list and a generation
//! counter per slot.
//!
//! Owns: every timer's value, expiry tick and list links. Promises: `alloc`, `free` and `get` are
//! O(1) and never allocate once the `Vec` has grown to the high-water mark of live timers; a
//! handle whose slot has been freed (or freed and reused) never resolves again, because `free`
//! bumps the slot's generation. A slot whose generation would wrap is retired instead of reused,
//! so stale handles cannot alias a later timer even after 2^32 reuses of one slot.
//! Must not: know about levels or slots of the wheel (the `prev`/`next`/`slot` fields are plain
//! data for `slots.rs`), or use `unsafe`.

/// "No entry": the end of a list, an empty slot, an empty free list.
pub(crate) const NIL: u32 = u32::MAX;

/// One timer (or one free slot, when `value` is `None`).
#[derive(Debug)]
pub(crate) struct Entry<T> {
    /// Expiry tick: the wheel orders and places the timer by this value alone.
    pub(crate) tick: u64,
    /// Previous entry in the same wheel slot, or `NIL` at the head.
    pub(crate) prev: u32,
    /// Next entry in the same wheel slot (or in the free list when free), or `NIL`.
    pub(crate) next: u32,
    /// Bumped on every free; a handle must carry the same value to resolve.
    pub(crate) generation: u32,
    /// Flat index (`level * 64 + slot`) of the wheel slot whose list holds this entry.
    pub(crate) slot: u16,
    /// The caller's payload; `None` exactly when the slot is free or retired.
    pub(crate) value: Option<T>,
}

/// The entries plus their free list.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    pub(crate) entries: Vec<Entry<T>>,
    /// Head of the singly linked free list (through `Entry::next`).
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

    /// Stores `value` with expiry `tick`; returns its index and generation. The list fields are
    /// left for the caller to set.
    ///
    /// # Panics
    /// If `u32::MAX - 1` timers are already live (the index space is exhausted).
    #[inline]
    pub(crate) fn alloc(&mut self, tick: u64, value: T) -> (u32, u32) {
        let index = self.free_head;
        if let Some(entry) = self.entries.get_mut(index as usize) {
            self.free_head = entry.next;
            entry.tick = tick;
            entry.value = Some(value);
            self.len += 1;
            return (index, entry.generation);
        }
        let index = u32::try_from(self.entries.len())
            .ok()
            .filter(|&i| i != NIL)
            .expect("timer wheel holds at most u32::MAX - 1 timers");
        self.entries.push(Entry { tick, prev: NIL, next: NIL, generation: 0, slot: 0, value: Some(value) });
        self.len += 1;
        (index, 0)
    }

    /// Releases a live entry (already unlinked from its wheel slot) and returns its value.
    #[inline]
    pub(crate) fn free(&mut self, index: u32) -> Option<T> {
        let entry = self.entries.get_mut(index as usize)?;
        let value = entry.value.take()?;
        self.len -= 1;
        if entry.generation != u32::MAX {
            entry.generation += 1;
            entry.next = self.free_head;
            self.free_head = index;
        }
        Some(value)
    }

    /// The live entry named by (`index`, `generation`), if any.
    #[inline]
    pub(crate) fn get(&self, index: u32, generation: u32) -> Option<&Entry<T>> {
        self.entries
            .get(index as usize)
            .filter(|entry| entry.generation == generation && entry.value.is_some())
    }

    /// Mutable access to the live entry named by (`index`, `generation`), if any.
    #[inline]
    pub(crate) fn get_mut(&mut self, index: u32, generation: u32) -> Option<&mut Entry<T>> {
        self.entries
            .get_mut(index as usize)
            .filter(|entry| entry.generation == generation && entry.value.is_some())
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

    #[test]
    fn freed_slots_are_reused_with_a_new_generation() {
        let mut slab = Slab::with_capacity(2);
        let (a, gen_a) = slab.alloc(1, 'a');
        assert_eq!(slab.free(a), Some('a'));
        assert!(slab.get(a, gen_a).is_none());
        let (b, gen_b) = slab.alloc(2, 'b');
        assert_eq!((b, gen_b), (a, gen_a + 1));
        assert_eq!(slab.free(a), Some('b'));
        assert_eq!(slab.free(a), None, "double free is a no-op");
        assert_eq!(slab.len(), 0);
    }

    #[test]
    fn a_slot_is_retired_instead_of_wrapping_its_generation() {
        let mut slab = Slab::with_capacity(1);
        let (a, _) = slab.alloc(1, 1_u8);
        slab.entries[a as usize].generation = u32::MAX;
        assert_eq!(slab.free(a), Some(1));
        // The retired slot is not on the free list: the next timer gets a fresh slot.
        let (b, gen_b) = slab.alloc(2, 2);
        assert_ne!(b, a);
        assert_eq!(gen_b, 0);
        assert!(slab.get(a, u32::MAX).is_none());
        assert!(slab.get(a, 0).is_none());
    }

    #[test]
    fn clear_frees_live_entries_and_keeps_free_ones() {
        let mut slab = Slab::with_capacity(4);
        let handles: Vec<_> = (0..4).map(|i| slab.alloc(i, i)).collect();
        slab.free(handles[1].0);
        slab.clear();
        assert_eq!(slab.len(), 0);
        assert!(handles.iter().all(|&(i, g)| slab.get(i, g).is_none()));
        let reused: Vec<_> = (0..4).map(|i| slab.alloc(i, i).0).collect();
        assert_eq!(slab.entries.len(), 4, "all four slots were reusable");
        assert_eq!(reused.len(), 4);
    }
}
