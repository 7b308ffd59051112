//! Operations on many timers at once, and the hint that lets a caller start one early.
//!
//! Owns no state. Promises: [`TimerWheel::cancel_batch`] and [`TimerWheel::reschedule_batch`]
//! have exactly the effect and the results of the same single operations issued in slice order
//! (same wheel state afterwards, same values returned), and [`TimerWheel::prefetch`] changes
//! nothing but what is in the CPU's caches. Must not: reorder, merge or skip operations, or
//! allocate.
//!
//! Why: at a million timers the entries (32 MB) are far outside the caches, so a random
//! operation waits for a DRAM miss on its entry, and a reschedule that moves a timer to an
//! earlier slot waits for two more (its list neighbours). Issued one after another, a core only
//! overlaps the misses of the few operations its reorder window holds. A batch is a software
//! pipeline instead: while it applies operation `i`, it prefetches the entry of operation
//! `i + 2 * AHEAD` and, for a reschedule, the other lines operation `i + AHEAD` will write
//! (read from its entry, prefetched `AHEAD` operations earlier: its list neighbours and
//! the tail of the destination slot). So each operation finds its lines cached, and about
//! `2 * AHEAD` misses are in flight at any time.
//!
//! On x86_64 the hint is the `PREFETCHT0` instruction, the one `unsafe` call of the wheel: it
//! cannot fault and writes nothing, and unlike a plain load it retires at once, so the
//! operations in between keep running while the line arrives. Elsewhere it is a plain load
//! whose value is kept by `black_box` (which overlaps only as far as the reorder window).

use super::slab::Entry;
use super::slots::{slot_for, slot_start, SLOTS};
use super::{TimerHandle, TimerWheel};
use crate::time::Instant;

/// Operations between prefetching a line and using it: at ~20–40 ns of work per operation,
/// enough to cover a DRAM miss (100–200 ns on the VMs measured), and `2 * AHEAD` lines in
/// flight are about what a core can keep outstanding.
const AHEAD: usize = 8;

/// Asks the CPU to bring `entry`'s cache line in, without waiting for it.
#[inline(always)]
pub(super) fn prefetch_entry<T>(entry: &Entry<T>) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 CPU has; the prefetch instruction
    // never faults and writes no memory, and the address comes from a live reference.
    unsafe {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((entry as *const Entry<T>).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    core::hint::black_box(entry.generation);
}

impl<T: Copy> TimerWheel<T> {
    /// Starts loading the timer's entry into the cache, so that an operation on `handle` issued
    /// a little later (after other work, ideally a few hundred ns) does not wait for memory.
    /// Changes nothing; a stale or foreign handle is harmless.
    #[inline]
    pub fn prefetch(&self, handle: TimerHandle) {
        if let Some(entry) = self.slab.entries.get(handle.index as usize) {
            prefetch_entry(entry);
        }
    }

    /// Cancels every timer of `handles`, in order, with the results of as many
    /// [`cancel`](Self::cancel) calls: `cancelled(i, value)` is called for each `handles[i]`
    /// that was live. Returns how many were. The same handle twice cancels once.
    pub fn cancel_batch(&mut self, handles: &[TimerHandle], mut cancelled: impl FnMut(usize, T)) -> usize {
        for &handle in handles.iter().take(AHEAD) {
            self.prefetch(handle);
        }
        let mut count = 0;
        for (i, &handle) in handles.iter().enumerate() {
            if let Some(&ahead) = handles.get(i + AHEAD) {
                self.prefetch(ahead);
            }
            if let Some(value) = self.cancel(handle) {
                cancelled(i, value);
                count += 1;
            }
        }
        count
    }

    /// Moves every timer of `moves` to its new deadline, in order, with the results of as many
    /// [`reschedule`](Self::reschedule) calls: `stale(i)` is called for each `moves[i]` whose
    /// handle no longer resolves. Returns how many moved. TCP's RTO restarts of one receive
    /// burst are the typical batch.
    pub fn reschedule_batch(
        &mut self,
        moves: &[(TimerHandle, Instant)],
        mut stale: impl FnMut(usize),
    ) -> usize {
        for &(handle, _) in moves.iter().take(2 * AHEAD) {
            self.prefetch(handle);
        }
        for &(handle, deadline) in moves.iter().take(AHEAD) {
            self.prefetch_move(handle, deadline);
        }
        let mut count = 0;
        for (i, &(handle, deadline)) in moves.iter().enumerate() {
            if let Some(&(far, _)) = moves.get(i + 2 * AHEAD) {
                self.prefetch(far);
            }
            if let Some(&(near, near_deadline)) = moves.get(i + AHEAD) {
                self.prefetch_move(near, near_deadline);
            }
            if self.reschedule(handle, deadline) {
                count += 1;
            } else {
                stale(i);
            }
        }
        count
    }

    /// Prefetches the lines a reschedule of `handle` to `deadline` will write besides its
    /// entry (which it reads, so that should be cached already): if the move is to before the
    /// timer's filed slot, its two list neighbours and the tail of the slot it will join. Only
    /// a hint: moves applied in between may change the picture.
    #[inline]
    fn prefetch_move(&self, handle: TimerHandle, deadline: Instant) {
        let Some(entry) = self.slab.live(handle.index, handle.generation) else { return };
        let tick = self.expiry_tick(deadline);
        let flat = entry.flat as usize;
        if tick >= slot_start(self.cursor, flat / SLOTS, flat % SLOTS) {
            return;
        }
        let entries = &self.slab.entries;
        for neighbour in [entry.prev, entry.next, self.slots.tail(slot_for(self.cursor, tick), handle.index)]
        {
            // `NIL` is past the end, like any index that is not an entry.
            if let Some(line) = entries.get(neighbour as usize) {
                prefetch_entry(line);
            }
        }
    }
}
