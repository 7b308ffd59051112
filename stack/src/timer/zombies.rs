//! Cancelled timers that are still linked in their slot ("zombies"), and their reclamation.
//!
//! Owns: the list of zombie indices and the slots they are filed in (each zombie's `tick`
//! field holds its position in this list, so a zombie found by a slot walk leaves the list in
//! O(1)). Promises: a cancel writes only the cancelled entry and appends here; a zombie is
//! revived in place by an insert whose tick its slot can hold (see
//! [`Zombies::take_filed_by`]), or unlinked and freed either when the wheel reaches its slot
//! (the walk was going to read its line anyway) or, once there are more than [`allowance`] of
//! them, in batches of [`BATCH`] whose cache misses overlap. So there are
//! never more than `allowance(peak live timers)` zombies, which bounds the slab at
//! `peak + allowance(peak)` entries. Must not: allocate once grown, or fire a zombie.

use super::batch::prefetch_entry;
use super::slab::Entry;
use super::TimerWheel;

/// Zombies unlinked per reclaim: enough that their misses overlap (a core tracks 10–16
/// outstanding misses), few enough that one cancel now and then pays a bounded extra.
pub(crate) const BATCH: usize = 32;

/// How many zombies may wait for their slot while `live` timers are live: a quarter on top of
/// the live ones, and never fewer than two batches.
#[inline]
pub(crate) fn allowance(live: usize) -> usize {
    (live / 4).max(2 * BATCH)
}

/// Newest zombies an insert looks at for one it can revive (see [`Zombies::take_filed_by`]).
const REVIVE_TRIES: usize = 4;

/// One zombie: its entry and the slot it is filed in (copied here so that choosing a zombie to
/// revive reads only this list, not the entries).
#[derive(Clone, Copy, Debug)]
struct Buried {
    index: u32,
    flat: u32,
}

/// The zombie list.
#[derive(Debug, Default)]
pub(crate) struct Zombies {
    list: Vec<Buried>,
}

impl Zombies {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Zombies { list: Vec::with_capacity(capacity) }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// Records the just-killed, still linked `entry`, whose index is `index`, as a zombie.
    #[inline]
    pub(crate) fn bury<T>(&mut self, entry: &mut Entry<T>, index: u32) {
        entry.tick = self.list.len() as u64;
        self.list.push(Buried { index, flat: u32::from(entry.flat) });
    }

    /// Takes, among the few most recently cancelled zombies (the likeliest to be cached still),
    /// the newest one filed in a slot at or before flat slot `flat` (`level * 64 + slot`), and
    /// returns its index: it is no longer a zombie but still linked, for the caller to revive.
    ///
    /// Flat slot order is the order the cursor reaches the slots in (lower levels first; see
    /// `slots.rs`), so such a zombie's slot starts no later than any tick filed in `flat`.
    #[inline]
    pub(crate) fn take_filed_by<T>(&mut self, entries: &mut [Entry<T>], flat: usize) -> Option<u32> {
        let newest = self.list.len().checked_sub(1)?;
        let position = (newest.saturating_sub(REVIVE_TRIES - 1)..=newest)
            .rev()
            .find(|&position| self.list[position].flat as usize <= flat)?;
        let index = self.list.swap_remove(position).index;
        if let Some(moved) = self.list.get(position) {
            entries[moved.index as usize].tick = position as u64;
        }
        Some(index)
    }

    /// Forgets zombie `index`, which a slot walk has just unlinked.
    #[inline]
    pub(crate) fn exhume<T>(&mut self, entries: &mut [Entry<T>], index: u32) {
        let position = entries[index as usize].tick as usize;
        self.list.swap_remove(position);
        if let Some(moved) = self.list.get(position) {
            entries[moved.index as usize].tick = position as u64;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.list.clear();
    }

    pub(crate) fn region(&self) -> core::ops::Range<usize> {
        let start = self.list.as_ptr() as usize;
        start..start + self.list.capacity() * core::mem::size_of::<Buried>()
    }
}

impl<T: Copy> TimerWheel<T> {
    /// Unlinks and frees up to [`BATCH`] zombies, the most recently cancelled first (their
    /// lines are the likeliest to be cached still).
    ///
    /// Unlinking one zombie reads it and writes both list neighbours, three random lines at a
    /// million timers. Done one by one, each unlink would wait for its own misses; here every
    /// zombie line is prefetched first, then every neighbour line (read from the zombies), so
    /// a batch pays about two miss latencies plus the time to stream 64 lines, instead of one
    /// latency per line. The unlinks themselves then run in list order on cached lines, which
    /// also handles zombies that are each other's neighbours.
    #[cold]
    #[inline(never)]
    pub(super) fn reclaim_zombies(&mut self) {
        let TimerWheel { slab, slots, zombies, .. } = self;
        let keep = zombies.list.len().saturating_sub(BATCH);
        let batch = &zombies.list[keep..];
        let entries = &slab.entries;
        for &Buried { index, .. } in batch {
            prefetch_entry(&entries[index as usize]);
        }
        for &Buried { index, .. } in batch {
            let Entry { prev, next, .. } = entries[index as usize];
            // `NIL` is past the end.
            for neighbour in [prev, next] {
                if let Some(line) = entries.get(neighbour as usize) {
                    prefetch_entry(line);
                }
            }
        }
        for &Buried { index, .. } in batch {
            slots.remove(&mut slab.entries, index);
            slab.release(index);
        }
        zombies.list.truncate(keep);
        // Unlinking may have emptied the earliest slot; the next one need not be exact.
        self.settle();
    }
}
