//! Hierarchical timer wheel: every timer of a shard (pacing, retransmission, delayed ACK,
//! keepalive, TIME_WAIT) in one structure with O(1) insert, cancel and reschedule.
//!
//! # Design
//!
//! Time is cut into ticks of [`WheelConfig::tick`] (default 4 µs). A timer's deadline is rounded
//! **up** to a whole tick, its *expiry tick*. The wheel keeps a *cursor*: the tick it has
//! advanced to. Timers live in 8 levels of 256 slots; level 0 slots hold one tick each, a level
//! `L` slot spans `256^L` ticks, so the levels together cover every `u64` tick (4 µs ticks reach
//! 2.3 million years; 1 ns ticks reach the end of [`Instant`]) with no overflow list. A timer is
//! *filed* in the level of the highest 8-bit digit in which its expiry tick differs from the
//! cursor (the design of tokio's wheel, with 256 slots per level instead of 64), so level 0
//! holds the next ≤ 256 ticks (1 ms at 4 µs) and a 60 s TIME_WAIT at 4 µs sits in level 2. An
//! occupancy bitmap over all slots, in the order the cursor reaches them, plus a bitmap of its
//! non-empty words make the earliest slot two `trailing_zeros`. When the cursor
//! reaches a higher-level slot, that slot's timers are *cascaded*: re-filed relative to the new
//! cursor, which moves each of them down at least one level.
//!
//! Why 256 slots per level rather than 64: every level a timer passes is one more cascade, i.e.
//! one more random read of its entry and one more list append, and at a million timers those
//! are most of what a fired timer costs. With TCP's mix of deadlines (10 µs to minutes,
//! log-uniform) 8-bit digits cut the re-files per fired timer by about a third (session 8, see
//! docs/PERFORMANCE.md); the price is larger slot tables (~292 KiB with 16 chains per slot; ~57 KiB at 64 slots and 8 chains).
//!
//! Timers are stored in a slab (`u32` indices, a free list, a generation per entry); each wheel
//! slot is a set of 16 lists (*chains*, walked side by side so their cache misses overlap, see
//! `slots.rs`) doubly linked through the entries by index, without `unsafe`. A
//! [`TimerHandle`] is (index, generation); a handle whose timer fired or was cancelled no longer
//! resolves (every method given it returns `None` / `false`), even if its entry was reused.
//!
//! ## Postponing in place, cancelling lazily
//!
//! At a million timers what an operation costs is the cache lines it touches, and unlinking
//! from a list touches three (the entry and both neighbours). So the two common operations do
//! not unlink:
//!
//! - **Postpone in place.** A [`reschedule`](TimerWheel::reschedule) to a tick at or after the
//!   start of the slot the timer is filed in (TCP's RTO restart on every ACK is the typical
//!   case: it moves the deadline later) only rewrites the entry's expiry tick; the entry stays
//!   in its slot. When the cursor reaches that slot (expiry or cascade), the wheel sees the
//!   later tick and re-files the entry then, once, however many times it was postponed: the
//!   cost moves from the random access of the reschedule to the slot walk, which reads the
//!   entry anyway. Only a move to before the filed slot's start unlinks and re-files at once.
//! - **Cancel lazily.** [`cancel`](TimerWheel::cancel) kills the entry (its handles go stale,
//!   the value is returned) and leaves it linked as a *zombie*. A slot walk frees the zombies
//!   it meets; when more than a quarter as many zombies as live timers wait (at least 64), the
//!   cancel unlinks a batch of 32 of them with their cache misses overlapped (see
//!   `zombies.rs`). Zombies never fire and are never counted in [`len`](TimerWheel::len).
//! - **Revive zombies.** An [`insert`](TimerWheel::insert) first looks at the few most
//!   recently cancelled zombies for one filed in a slot that starts at or before the new
//!   expiry tick, and if there is one, gives its entry (new generation, so old handles stay
//!   stale) to the new timer where it lies, as if postponed in place. A connection closing and
//!   another opening then cost one entry line in all, and that zombie never needs unlinking.
//!
//! Each slot keeps a lower bound of its live entries' ticks and how many live entries sit at
//! exactly that bound. While a timer is live, the earliest non-empty slot always has one at its
//! bound, so [`next_expiry`](TimerWheel::next_expiry) stays exact: when an operation takes the
//! last such timer away (it fires, or is postponed or cancelled), the wheel *settles* at once:
//! it cleans the earliest slot (frees its zombies, re-files its postponed entries relative to
//! the cursor, recounts the rest) without moving the cursor, until the earliest slot has a
//! live timer at its bound. Only operations on the earliest slot's earliest timers pay for it.
//!
//! # Memory layout
//!
//! One 32-byte entry per timer holds everything an operation on it needs: list links, expiry
//! tick, generation, the slot it is filed in, and the value (so `T` must be `Copy` and should
//! be at most 8 bytes; a larger one makes entries 64 bytes). Validating a handle, postponing,
//! cancelling and reading the value are all one cache line. At a million timers the entries are
//! 32 MB (plus up to a quarter more for zombies), so random operations pay cache and TLB
//! misses; [`TimerWheel::memory_regions`] lets a driver back the reserved arrays with huge pages
//! (e.g. `madvise(MADV_HUGEPAGE)` right after [`with_capacity`](TimerWheel::with_capacity),
//! before the first insert touches them), which `stack` itself cannot do since it makes no
//! syscalls.
//!
//! A caller that knows ahead which timers it will touch can overlap those misses:
//! [`prefetch`](TimerWheel::prefetch) starts loading one entry (issue it when the connection is
//! first looked at, act on the timer later), and [`cancel_batch`](TimerWheel::cancel_batch) /
//! [`reschedule_batch`](TimerWheel::reschedule_batch) prefetch the lines of the operations a
//! few places ahead while applying them in order (see `batch.rs`).
//!
//! # Complexity
//!
//! - [`insert`](TimerWheel::insert), [`reschedule`](TimerWheel::reschedule),
//!   [`get`](TimerWheel::get), [`deadline`](TimerWheel::deadline),
//!   [`next_expiry`](TimerWheel::next_expiry): O(1).
//! - [`cancel`](TimerWheel::cancel): O(1); one cancel in 32 beyond the zombie allowance also
//!   unlinks a batch of 32 zombies.
//! - [`poll_expired`](TimerWheel::poll_expired): O(1) per yielded timer plus O(1) per entry a
//!   slot walk meets (cascaded, re-filed after a postponement, or a zombie freed); each timer is
//!   cascaded at most once per level between two schedules, and re-filed at most once per
//!   postponement (or revival) it had.
//! - Settling (any mutating call): O(1) unless the call removed the last live timer at the
//!   earliest slot's bound; then O(entries of the slots it cleans), as a rescan of that slot.
//! - No allocation once the slab has grown to its high-water mark (live timers plus zombies;
//!   [`with_capacity`](TimerWheel::with_capacity) reserves `capacity` plus the zombie allowance
//!   for it); the slot tables are fixed arrays (~292 KiB).
//!
//! # Ordering guarantee
//!
//! Let `tick` be the configured tick in ns and `c` the cursor ([`TimerWheel::advanced_to`]).
//! Scheduling a timer (by `insert` or `reschedule`) with deadline `d` gives it the expiry tick
//! `k = max(ceil(d / tick), c)`. Then:
//!
//! 1. A timer is due at `now` iff `k * tick <= now` (exact integer arithmetic; a `k * tick` that
//!    overflows `u64` is due only at `now == Instant::MAX`). So a timer never fires before its
//!    deadline, and fires at the first poll whose `now` is at or after the deadline rounded up
//!    to the tick. A deadline already in the past is due at the cursor, i.e. at the next poll.
//! 2. `poll_expired(now)` returns a due timer with the smallest `k`, and `None` when no timer is
//!    due. Timers of the same tick come out in an order that is deterministic (a function of
//!    the calls made) but otherwise unspecified: a postponed timer joins its new tick when the
//!    wheel re-files it, not when it was rescheduled.
//! 3. The cursor only moves forward: to the tick of each timer `poll_expired` returns, and to
//!    `floor(now / tick)` (or `u64::MAX` for `Instant::MAX`) when a poll finds nothing more due.
//!    A timer scheduled into the past is thus never ordered before a timer already yielded.
//! 4. [`next_expiry`](TimerWheel::next_expiry) is exactly `min(k) * tick` over live timers
//!    (saturating at [`Instant::MAX`]), `None` when none is live: a driver that sleeps until it
//!    and then polls neither misses a timer nor wakes early for nothing.
//!
//! # Must not
//!
//! Read a clock (`now` is always passed in), use `unsafe` (except the prefetch instruction in
//! `batch.rs`, which cannot fault and writes nothing), allocate per operation once grown,
//! fire a timer early or a cancelled one at all, or panic on any deadline or `now` (including
//! [`Instant::MAX`] and `now` going backwards, which simply yields nothing new). It does not
//! bound its own number of live timers: callers do (one or a few per connection, and
//! connections are bounded); it does bound its zombies.

mod batch;
mod slab;
mod slots;
mod tick;
mod zombies;

#[cfg(test)]
mod tests;

use core::fmt;

use crate::time::{Duration, Instant};

use self::slab::Slab;
use self::slots::{slot_for, slot_start, Slots};
use self::tick::TickDivisor;
use self::zombies::{allowance, Zombies};

/// Configuration of a [`TimerWheel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WheelConfig {
    /// Granularity: deadlines are rounded up to a multiple of this. Smaller ticks cost more
    /// cascading for long timers; 4 µs serves pacing at tens of µs while a 60 s TIME_WAIT is
    /// cascaded only twice. A zero tick is treated as 1 ns.
    pub tick: Duration,
}

impl Default for WheelConfig {
    fn default() -> Self {
        WheelConfig { tick: Duration::from_micros(4) }
    }
}

/// Names one scheduled timer. Stale once the timer fires or is cancelled.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TimerHandle {
    index: u32,
    generation: u32,
}

/// A hierarchical timer wheel holding a `T` per timer. See the [module docs](self).
pub struct TimerWheel<T> {
    /// Tick length and the instant <-> tick conversions.
    tick: TickDivisor,
    /// The cursor: every slot the wheel holds entries in starts at or after it (so every live
    /// expiry tick is `>= cursor`), and each entry sits in the slot `slot_for(cursor, t)` of the
    /// tick `t` it was filed with.
    cursor: u64,
    slab: Slab<T>,
    slots: Slots,
    zombies: Zombies,
}

impl<T: Copy> TimerWheel<T> {
    /// An empty wheel whose cursor starts at `now`.
    pub fn new(config: WheelConfig, now: Instant) -> Self {
        Self::with_capacity(config, now, 0)
    }

    /// An empty wheel with room for `capacity` live timers (plus the zombies they may leave)
    /// before the slab reallocates.
    pub fn with_capacity(config: WheelConfig, now: Instant, capacity: usize) -> Self {
        let tick = TickDivisor::new(config.tick.as_nanos());
        let zombies = if capacity == 0 { 0 } else { allowance(capacity) + 1 };
        TimerWheel {
            tick,
            cursor: tick.now_tick(now),
            slab: Slab::with_capacity(capacity.saturating_add(zombies)),
            slots: Slots::new(),
            zombies: Zombies::with_capacity(zombies),
        }
    }

    /// Schedules `value` to fire at `deadline` (rounded up to the tick; a past deadline fires at
    /// the next poll).
    ///
    /// # Panics
    /// If `u32::MAX - 1` entries are in use (the handle index space is exhausted).
    #[inline]
    pub fn insert(&mut self, deadline: Instant, value: T) -> TimerHandle {
        let tick = self.expiry_tick(deadline);
        if let Some(handle) = self.revive(tick, value) {
            return handle;
        }
        let was_empty = self.slab.len == 0;
        let (index, generation) = self.slab.alloc(tick, value);
        self.slots.push_back(&mut self.slab.entries, index, slot_for(self.cursor, tick));
        // A live timer only adds a holder where it lands, so the earliest slot can only be
        // unsettled if no timer was live before (zombies may then lead the wheel).
        if was_empty {
            self.settle();
        }
        TimerHandle { index, generation }
    }

    /// Gives a recently cancelled entry (a zombie, still linked) to a new timer of expiry
    /// `tick`, if the slot it is filed in starts at or before `tick`: the entry then
    /// stays where it is, like a timer postponed in place (see the module docs), and is
    /// re-filed when the wheel reaches its slot. Neither the cancel nor this insert touched a
    /// list: a connection closed and another opened cost one entry line, and the zombie needs
    /// no unlinking. `None` if there is no such zombie.
    #[inline]
    fn revive(&mut self, tick: u64, value: T) -> Option<TimerHandle> {
        let index = self.zombies.take_filed_by(&mut self.slab.entries, slot_for(self.cursor, tick))?;
        let entry = &mut self.slab.entries[index as usize];
        let flat = entry.flat as usize;
        if entry.generation >= u32::MAX - 1 {
            // It cannot live again: unlink it now and let `release` retire it.
            self.slots.remove(&mut self.slab.entries, index);
            self.slab.release(index);
            self.settle();
            return None;
        }
        entry.generation += 1;
        entry.tick = tick;
        entry.value = value;
        let generation = entry.generation;
        let was_empty = self.slab.len == 0;
        self.slab.len += 1;
        self.slots.revive(flat, tick);
        // As in `insert`: with live timers before, the earliest slot was exact and one more
        // live entry cannot change that.
        if was_empty {
            self.settle();
        }
        Some(TimerHandle { index, generation })
    }

    /// Cancels the timer and returns its value, or `None` if the handle is stale (the timer
    /// already fired or was cancelled). Writes only the timer's entry, which stays linked as a
    /// zombie (see the module docs); now and then also unlinks a batch of older zombies.
    #[inline]
    pub fn cancel(&mut self, handle: TimerHandle) -> Option<T> {
        // Kept to the fewest instructions: at a million timers the entry is a cache miss, and
        // how many cancels issued back to back overlap their misses is set by how many fit in
        // the CPU's reorder window.
        let entry = self.slab.live_mut(handle.index, handle.generation)?;
        entry.generation += 1;
        let (flat, tick, value) = (entry.flat as usize, entry.tick, entry.value);
        self.zombies.bury(entry, handle.index);
        self.slab.len -= 1;
        // The entry stays linked, so the earliest slot stays the same; it can only have lost
        // its exactness, and only if this was its last live entry at its bound.
        if self.slots.leave(flat, tick) {
            self.settle();
        }
        if self.zombies.len() > allowance(self.slab.len as usize) {
            self.reclaim_zombies();
        }
        Some(value)
    }

    /// Moves the timer to a new `deadline` (earlier or later), keeping its handle and value.
    /// Returns `false` if the handle is stale. A move to at or after the start of the slot the
    /// timer is filed in (any later deadline, typically) only rewrites its expiry tick.
    #[inline]
    pub fn reschedule(&mut self, handle: TimerHandle, deadline: Instant) -> bool {
        // The later move (TCP's RTO restart on every ACK) is kept to the fewest instructions,
        // like `cancel`: the entry is a cache miss at a million timers, and how many restarts
        // overlap their misses is set by how many fit in the CPU's reorder window.
        let tick = self.expiry_tick(deadline);
        let Some(entry) = self.slab.live_mut(handle.index, handle.generation) else {
            return false;
        };
        let old = entry.tick;
        if tick < old {
            self.reschedule_earlier(handle.index, old, tick);
            return true;
        }
        // A live entry's tick is never before the start of the slot it is filed in, so a later
        // tick is too: postpone in place; the walk that reaches the slot re-files the entry.
        entry.tick = tick;
        // Leaving `old` is all the slot's bound can notice: `tick > old >= bound` joins nothing.
        if tick != old && self.slots.leave(entry.flat as usize, old) {
            self.settle_cold();
        }
        true
    }

    /// [`reschedule`](Self::reschedule) of live entry `index` from tick `old` to the earlier
    /// `tick`. Out of line: it touches up to three more lines, so its call costs nothing
    /// noticeable, and keeping it out keeps the later move small.
    #[inline(never)]
    fn reschedule_earlier(&mut self, index: u32, old: u64, tick: u64) {
        let entry = &mut self.slab.entries[index as usize];
        entry.tick = tick;
        let flat = entry.flat as usize;
        let filed_start = slot_start(self.cursor, flat / slots::SLOTS, flat % slots::SLOTS);
        // Only the entry's leaving its old tick can unsettle the wheel (as in `cancel`): a
        // join lowers or keeps a bound, and filing into an empty slot makes it exact.
        let unsettled = if tick >= filed_start {
            // Still in the filed slot's range: only the slot's bound changes.
            self.slots.retick(flat, old, tick)
        } else {
            let unsettled = self.slots.leave(flat, old);
            self.slots.remove(&mut self.slab.entries, index);
            self.slots.push_back(&mut self.slab.entries, index, slot_for(self.cursor, tick));
            unsettled
        };
        if unsettled {
            self.settle();
        }
    }

    /// When the timer will fire: its deadline rounded up to the tick (or the cursor, for a
    /// deadline scheduled in the past). `None` if the handle is stale.
    #[inline]
    pub fn deadline(&self, handle: TimerHandle) -> Option<Instant> {
        self.slab.live(handle.index, handle.generation).map(|entry| self.tick_instant(entry.tick))
    }

    /// The timer's value, or `None` if the handle is stale.
    #[inline]
    pub fn get(&self, handle: TimerHandle) -> Option<&T> {
        self.slab.live(handle.index, handle.generation).map(|entry| &entry.value)
    }

    /// The timer's value, mutably, or `None` if the handle is stale.
    #[inline]
    pub fn get_mut(&mut self, handle: TimerHandle) -> Option<&mut T> {
        self.slab.live_mut(handle.index, handle.generation).map(|entry| &mut entry.value)
    }

    /// The instant the earliest timer is due (its tick-rounded deadline), or `None` if no
    /// timer is live. O(1): the wheel keeps its earliest slot's minimum exact (see `settle`).
    pub fn next_expiry(&self) -> Option<Instant> {
        if self.slab.len == 0 {
            return None;
        }
        let (level, slot) = self.slots.earliest()?;
        let flat = level * slots::SLOTS + slot;
        debug_assert!(self.slots.is_exact(flat), "the earliest slot is settled");
        Some(self.tick_instant(self.slots.min_tick(flat)))
    }

    /// Removes and returns a timer due at `now` with the earliest tick (see the module docs),
    /// or `None` when nothing (more) is due. Call repeatedly to drain.
    pub fn poll_expired(&mut self, now: Instant) -> Option<(TimerHandle, T)> {
        let now_tick = self.tick.now_tick(now);
        loop {
            let Some((level, slot)) = self.slots.earliest() else {
                self.cursor = self.cursor.max(now_tick);
                return None;
            };
            let start = slot_start(self.cursor, level, slot);
            if start > now_tick {
                // Every entry is filed at or after `start`, so moving the cursor up to
                // `now_tick` keeps each one in the level and slot it already occupies.
                self.cursor = self.cursor.max(now_tick);
                self.settle();
                return None;
            }
            self.cursor = start;
            if level == 0 {
                if let Some(fired) = self.pop_front(slot) {
                    return Some(fired);
                }
            } else {
                self.cascade(level * slots::SLOTS + slot);
            }
        }
    }

    /// Drains every timer due at `now`, in order, into `fire`; returns how many fired. `fire`
    /// cannot touch the wheel; to re-arm timers while draining, loop on
    /// [`poll_expired`](Self::poll_expired) instead.
    pub fn expire(&mut self, now: Instant, mut fire: impl FnMut(TimerHandle, T)) -> usize {
        let mut fired = 0;
        while let Some((handle, value)) = self.poll_expired(now) {
            fire(handle, value);
            fired += 1;
        }
        fired
    }

    /// Live timers (zombies excluded).
    #[inline]
    pub fn len(&self) -> usize {
        self.slab.len as usize
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.slab.len == 0
    }

    /// Cancelled timers still linked in their slots, waiting to be freed. At most a quarter of
    /// the peak number of live timers (or 64). For tests and statistics.
    pub fn zombies(&self) -> usize {
        self.zombies.len()
    }

    /// Entries the slab can hold (live timers plus zombies) before it reallocates.
    pub fn capacity(&self) -> usize {
        self.slab.capacity()
    }

    /// Where the timer storage lives: the address ranges (`start..end`, capacity included) of
    /// the entries and of the zombie list. The hook for a driver that wants them on huge pages:
    /// advise the kernel over these ranges after [`with_capacity`](Self::with_capacity) and
    /// before inserting. The ranges change only if the wheel grows past its capacity.
    pub fn memory_regions(&self) -> [core::ops::Range<usize>; 2] {
        [self.slab.region(), self.zombies.region()]
    }

    /// The configured tick (after replacing zero by 1 ns).
    pub fn tick(&self) -> Duration {
        Duration::from_nanos(self.tick.nanos())
    }

    /// The cursor as an instant: timers scheduled before it are due at it. See the ordering
    /// guarantee in the module docs.
    pub fn advanced_to(&self) -> Instant {
        self.tick_instant(self.cursor)
    }

    /// Cancels every timer; all outstanding handles become stale. Keeps the allocation and the
    /// cursor. O(capacity).
    pub fn clear(&mut self) {
        self.slab.clear();
        self.slots.clear();
        self.zombies.clear();
    }

    /// Takes the first entry of level-0 slot `slot`, whose tick the cursor is at: fires it if
    /// it is due, else frees it (a zombie) or re-files it (postponed) and returns `None`.
    #[inline]
    fn pop_front(&mut self, slot: usize) -> Option<(TimerHandle, T)> {
        let index = self.slots.pop_front(&mut self.slab.entries, slot);
        let entry = &self.slab.entries[index as usize];
        if !entry.is_live() {
            self.zombies.exhume(&mut self.slab.entries, index);
            self.slab.release(index);
            return None;
        }
        if entry.tick > self.cursor {
            let flat = slot_for(self.cursor, entry.tick);
            self.slots.push_back(&mut self.slab.entries, index, flat);
            return None;
        }
        self.slots.leave(slot, entry.tick);
        let value = self.slab.kill(index);
        let generation = self.slab.entries[index as usize].generation - 1;
        self.slab.release(index);
        self.settle();
        Some((TimerHandle { index, generation }, value))
    }

    /// Re-files every live entry of slot `flat` by its expiry tick relative to the cursor, and
    /// frees its zombies. Called when the cursor has just moved to the start of a higher-level
    /// slot (a cascade: entries move down) and by `settle_slow` on a slot at or after the
    /// cursor (entries still in its range go back into it, postponed ones move on).
    ///
    /// The slot's chains are walked side by side, one entry of each per round, and each step
    /// prefetches the chain's next entry: the misses of up to `CHAINS` entries overlap instead
    /// of forming one serial chain. An entry's `next` is read before it is re-filed (which
    /// rewrites its links); re-filing only writes entries already walked or outside this slot.
    fn cascade(&mut self, flat: usize) {
        let (mut chains, mut walking) = self.slots.take(flat);
        while walking > 0 {
            // One entry of each chain still being walked; a finished chain's place is taken by
            // the last one, which is then served in the same round.
            let mut chain = 0;
            while chain < walking {
                let index = chains[chain];
                let entry = &self.slab.entries[index as usize];
                let (next, tick, live) = (entry.next, entry.tick, entry.is_live());
                match self.slab.entries.get(next as usize) {
                    Some(ahead) => {
                        batch::prefetch_entry(ahead);
                        chains[chain] = next;
                        chain += 1;
                    }
                    None => {
                        walking -= 1;
                        chains[chain] = chains[walking];
                    }
                }
                if live {
                    self.slots.push_back(&mut self.slab.entries, index, slot_for(self.cursor, tick));
                } else {
                    self.zombies.exhume(&mut self.slab.entries, index);
                    self.slab.release(index);
                }
            }
        }
    }

    /// Restores what makes [`next_expiry`](Self::next_expiry) exact: while a timer is live, the
    /// earliest non-empty slot has a live entry at its bound. O(1) when it already has (the
    /// common case: only an operation on that slot's earliest timers can break it).
    #[inline]
    fn settle(&mut self) {
        if self.slab.len == 0 {
            return;
        }
        if let Some((level, slot)) = self.slots.earliest() {
            if !self.slots.is_exact(level * slots::SLOTS + slot) {
                self.settle_slow();
            }
        }
    }

    /// [`settle`](Self::settle) for the fast paths, where the wheel seldom needs it: out of
    /// line so that the check stays a compare and a call.
    #[cold]
    #[inline(never)]
    fn settle_cold(&mut self) {
        self.settle();
    }

    /// Cleans earliest slots until one has a live entry at its bound: frees their zombies,
    /// re-files their postponed entries into later slots and recounts what stays. The cursor
    /// does not move (a slot ahead of it can be cleaned because entries are re-filed relative
    /// to the cursor), and each entry moved or freed here is work its slot walk would have done.
    #[inline(never)]
    fn settle_slow(&mut self) {
        while let Some((level, slot)) = self.slots.earliest() {
            let flat = level * slots::SLOTS + slot;
            if self.slots.is_exact(flat) {
                return;
            }
            self.cascade(flat);
        }
    }

    /// The expiry tick for `deadline`: rounded up, and never before the cursor.
    #[inline]
    fn expiry_tick(&self, deadline: Instant) -> u64 {
        self.tick.ceil(deadline.as_nanos()).max(self.cursor)
    }

    #[inline]
    fn tick_instant(&self, tick: u64) -> Instant {
        self.tick.instant(tick)
    }
}

impl<T: Copy> fmt::Debug for TimerWheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerWheel")
            .field("tick", &self.tick())
            .field("advanced_to", &self.advanced_to())
            .field("len", &self.len())
            .field("zombies", &self.zombies())
            .field("next_expiry", &self.next_expiry())
            .finish()
    }
}
