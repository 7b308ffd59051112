//! Timer storage: three parallel arrays addressed by `u32` index, with a free list and a
//! generation counter per entry.
//!
//! Owns: every timer's list links, expiry tick and value. Promises: `alloc`, `free` and `live`
//! are O(1) and never allocate once the arrays have grown to the high-water mark of live timers;
//! a handle whose entry has been freed (or freed and reused) never resolves again, because
//! both `alloc` and `free` bump the entry's generation (odd while live, even while free). An
//! entry whose generation would wrap is retired instead of reused, so stale handles cannot alias
//! a later timer even after 2^31 reuses of one entry. Must not: know about levels or slots of
//! the wheel (the [`Link`] fields are plain data for `slots.rs`), or use `unsafe`.
//!
//! Why three arrays: with a million live timers the storage far exceeds the caches, and every
//! random cancel or reschedule pays a miss per entry it touches (itself and its two list
//! neighbours). What list operations read sits in a dense 16-byte [`Link`] (prev, next, tick;
//! four per cache line, 16 MB per million timers); the generations that validate handles are a
//! separate 4-byte array (4 MB per million, mostly cache-resident); values are touched only to
//! store, return or lend them, never by list walks.

/// "No entry": the end of a list, an empty slot, an empty free list.
pub(crate) const NIL: u32 = u32::MAX;

/// The hot part of one entry: what cancel, reschedule, cascades and list walks touch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Link {
    /// Previous entry in the same wheel slot, or `NIL` at the head.
    pub(crate) prev: u32,
    /// Next entry in the same wheel slot (or in the free list when free), or `NIL`.
    pub(crate) next: u32,
    /// Expiry tick: the wheel orders and places the timer by this value alone (the slot holding
    /// it is a function of this tick and the wheel's cursor, so it is not stored).
    pub(crate) tick: u64,
}

/// The entries plus their free list.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    pub(crate) links: Vec<Link>,
    /// Per entry: odd while a timer lives in it, even while free; a handle must carry the
    /// current (odd) value to resolve.
    generations: Vec<u32>,
    /// The caller's payload; `None` exactly when the entry is free or retired.
    values: Vec<Option<T>>,
    /// Head of the singly linked free list (through `Link::next`).
    free_head: u32,
    /// Live entries.
    len: u32,
}

impl<T> Slab<T> {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        // More than `NIL` entries are unaddressable; do not reserve memory we can never use.
        let capacity = capacity.min(NIL as usize);
        Slab {
            links: Vec::with_capacity(capacity),
            generations: Vec::with_capacity(capacity),
            values: Vec::with_capacity(capacity),
            free_head: NIL,
            len: 0,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.links.capacity().min(self.generations.capacity()).min(self.values.capacity())
    }

    /// The address ranges of the reserved storage (links, generations, values), capacity
    /// included.
    pub(crate) fn regions(&self) -> [core::ops::Range<usize>; 3] {
        fn region<E>(v: &Vec<E>) -> core::ops::Range<usize> {
            let start = v.as_ptr() as usize;
            start..start + v.capacity() * core::mem::size_of::<E>()
        }
        [region(&self.links), region(&self.generations), region(&self.values)]
    }

    /// Stores `value` with expiry `tick`; returns its index and generation. The list fields are
    /// left for the caller to set.
    ///
    /// # Panics
    /// If `u32::MAX - 1` timers are already live (the index space is exhausted).
    #[inline]
    pub(crate) fn alloc(&mut self, tick: u64, value: T) -> (u32, u32) {
        let index = self.free_head;
        if let Some(link) = self.links.get_mut(index as usize) {
            self.free_head = link.next;
            link.tick = tick;
            let generation = &mut self.generations[index as usize];
            *generation += 1;
            self.values[index as usize] = Some(value);
            self.len += 1;
            return (index, *generation);
        }
        let index = u32::try_from(self.links.len())
            .ok()
            .filter(|&i| i != NIL)
            .expect("timer wheel holds at most u32::MAX - 1 timers");
        self.links.push(Link { prev: NIL, next: NIL, tick });
        self.generations.push(1);
        self.values.push(Some(value));
        self.len += 1;
        (index, 1)
    }

    /// Releases a live entry (already unlinked from its wheel slot) and returns its value.
    #[inline]
    pub(crate) fn free(&mut self, index: u32) -> Option<T> {
        let value = self.values.get_mut(index as usize)?.take()?;
        self.len -= 1;
        let generation = &mut self.generations[index as usize];
        *generation += 1;
        // Live generations are odd and at most `u32::MAX - 2`, so this never wraps; an entry
        // whose next life would need `u32::MAX` or more is retired (left off the free list).
        if *generation < u32::MAX - 1 {
            self.links[index as usize].next = self.free_head;
            self.free_head = index;
        }
        Some(value)
    }

    /// Whether (`index`, `generation`) names a live entry. Reads only the generation array.
    #[inline]
    pub(crate) fn live(&self, index: u32, generation: u32) -> bool {
        generation % 2 == 1 && self.generations.get(index as usize) == Some(&generation)
    }

    /// The generation of entry `index` (odd if it is live).
    #[inline]
    pub(crate) fn generation(&self, index: u32) -> u32 {
        self.generations[index as usize]
    }

    /// The value of a live entry named by (`index`, `generation`), if any.
    #[inline]
    pub(crate) fn value(&self, index: u32, generation: u32) -> Option<&T> {
        if !self.live(index, generation) {
            return None;
        }
        self.values[index as usize].as_ref()
    }

    /// Mutable access to the value of the live entry named by (`index`, `generation`), if any.
    #[inline]
    pub(crate) fn value_mut(&mut self, index: u32, generation: u32) -> Option<&mut T> {
        if !self.live(index, generation) {
            return None;
        }
        self.values[index as usize].as_mut()
    }

    /// Frees every live entry (dropping its value), keeping the allocation. O(capacity).
    ///
    /// Entries are freed in place rather than truncated so that handles issued before the clear
    /// stay stale.
    pub(crate) fn clear(&mut self) {
        for index in 0..self.links.len() as u32 {
            drop(self.free(index));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four links per 64-byte cache line: the whole point of the split.
    #[test]
    fn a_link_is_sixteen_bytes() {
        assert_eq!(core::mem::size_of::<Link>(), 16);
    }

    #[test]
    fn freed_entries_are_reused_with_a_new_generation() {
        let mut slab = Slab::with_capacity(2);
        let (a, gen_a) = slab.alloc(1, 'a');
        assert!(slab.live(a, gen_a));
        assert_eq!(slab.free(a), Some('a'));
        assert!(!slab.live(a, gen_a));
        assert!(!slab.live(a, gen_a + 1), "an even generation is never live");
        let (b, gen_b) = slab.alloc(2, 'b');
        assert_eq!((b, gen_b), (a, gen_a + 2));
        assert_eq!(slab.value(b, gen_b), Some(&'b'));
        assert_eq!(slab.free(a), Some('b'));
        assert_eq!(slab.free(a), None, "double free is a no-op");
        assert_eq!(slab.len(), 0);
    }

    #[test]
    fn an_entry_is_retired_instead_of_wrapping_its_generation() {
        let mut slab = Slab::with_capacity(1);
        let (a, _) = slab.alloc(1, 1_u8);
        slab.generations[a as usize] = u32::MAX - 2;
        assert_eq!(slab.free(a), Some(1));
        // The retired entry is not on the free list: the next timer gets a fresh one.
        let (b, gen_b) = slab.alloc(2, 2);
        assert_ne!(b, a);
        assert_eq!(gen_b, 1);
        assert!(!slab.live(a, u32::MAX - 2));
        assert!(!slab.live(a, u32::MAX));
    }

    #[test]
    fn clear_frees_live_entries_and_keeps_free_ones() {
        let mut slab = Slab::with_capacity(4);
        let handles: Vec<_> = (0..4).map(|i| slab.alloc(i, i)).collect();
        slab.free(handles[1].0);
        slab.clear();
        assert_eq!(slab.len(), 0);
        assert!(handles.iter().all(|&(i, g)| slab.value(i, g).is_none()));
        let reused: Vec<_> = (0..4).map(|i| slab.alloc(i, i).0).collect();
        assert_eq!(slab.links.len(), 4, "all four entries were reusable");
        assert_eq!(reused.len(), 4);
    }

    #[test]
    fn regions_cover_the_reserved_capacity() {
        let slab = Slab::<u64>::with_capacity(1_000);
        let [links, generations, values] = slab.regions();
        assert_eq!(links.len(), slab.links.capacity() * 16);
        assert_eq!(generations.len(), slab.generations.capacity() * 4);
        assert!(values.len() >= 1_000 * 16);
    }
}
