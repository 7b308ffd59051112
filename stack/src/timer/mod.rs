//! Hierarchical timer wheel: every timer of a shard (pacing, retransmission, delayed ACK,
//! keepalive, TIME_WAIT) in one structure with O(1) insert, cancel and reschedule.
//!
//! # Design
//!
//! Time is cut into ticks of [`WheelConfig::tick`] (default 4 µs). A timer's deadline is rounded
//! **up** to a whole tick, its *expiry tick*. The wheel keeps a *cursor*: the tick it has
//! advanced to. Timers live in 11 levels of 64 slots; level 0 slots hold one tick each, a level
//! `L` slot spans `64^L` ticks, so the levels together cover every `u64` tick (4 µs ticks reach
//! 2.3 million years; 1 ns ticks reach the end of [`Instant`]) with no overflow list. A timer goes
//! to the level of the highest 6-bit digit in which its expiry tick differs from the cursor (the
//! design of tokio's wheel), so level 0 holds the next ≤ 64 ticks and a 60 s TIME_WAIT at 4 µs
//! sits in level 3. Each level has a `u64` occupancy bitmap and the wheel a bitmap of non-empty
//! levels, so the earliest slot is two `trailing_zeros`. When the cursor reaches a higher-level
//! slot, that slot's timers are *cascaded*: re-placed relative to the new cursor, which moves
//! each of them down at least one level. A timer is cascaded at most once per level.
//!
//! Timers are stored in a slab (`u32` indices, a free list, a generation per entry); each wheel
//! slot is a FIFO list doubly linked through the entries by index, so cancel unlinks in O(1)
//! without `unsafe`. A [`TimerHandle`] is (index, generation); a handle whose timer fired or was
//! cancelled no longer resolves (every method given it returns `None` / `false`), even if its
//! entry was reused.
//!
//! # Memory layout
//!
//! The slab is three parallel arrays: a 16-byte link per entry (prev, next and expiry tick; the
//! slot is recomputed from the tick and the cursor), a 4-byte generation per entry, and the
//! values. Cancel and reschedule read a generation and three links (the entry's and its two
//! neighbours'), plus the value a cancel returns; cascades read only links. At a million timers the links are 16 MB, so what limits
//! random cancels is cache and TLB misses; [`TimerWheel::memory_regions`] lets a driver back the
//! reserved arrays with huge pages (e.g. `madvise(MADV_HUGEPAGE)` right after
//! [`with_capacity`](TimerWheel::with_capacity), before the first insert touches them), which
//! `stack` itself cannot do since it makes no syscalls.
//!
//! # Complexity
//!
//! - [`insert`](TimerWheel::insert), [`cancel`](TimerWheel::cancel),
//!   [`reschedule`](TimerWheel::reschedule), [`get`](TimerWheel::get),
//!   [`deadline`](TimerWheel::deadline): O(1).
//! - [`poll_expired`](TimerWheel::poll_expired): O(1) per yielded timer plus O(1) per cascade
//!   step; each timer is cascaded at most `LEVELS - 1` times over its life (in practice 0–3).
//!   A poll that yields nothing is O(1) amortised.
//! - [`next_expiry`](TimerWheel::next_expiry): O(1). Each slot keeps its smallest expiry tick,
//!   kept exact by inserts and cascades; only after a cancel or reschedule removed a higher-level
//!   slot's earliest timer does the next call scan that one slot (O(timers in it)) and remember
//!   the result. Expiring timers never causes a scan.
//! - No allocation once the slab has grown to the peak number of live timers (reserve it with
//!   [`with_capacity`](TimerWheel::with_capacity)); the slot tables are fixed arrays (~11 KiB).
//!
//! # Ordering guarantee
//!
//! Let `tick` be the configured tick in ns and `c` the cursor ([`TimerWheel::advanced_to`]).
//! Scheduling a timer (by `insert` or `reschedule`) with deadline `d` gives it the key
//! `(k, s)` where `k = max(ceil(d / tick), c)` and `s` is a counter that every `insert` and
//! `reschedule` increments. Then:
//!
//! 1. A timer is due at `now` iff `k * tick <= now` (exact integer arithmetic; a `k * tick` that
//!    overflows `u64` is due only at `now == Instant::MAX`). So a timer never fires before its
//!    deadline, and fires at the first poll whose `now` is at or after the deadline rounded up
//!    to the tick. A deadline already in the past is due at the cursor, i.e. at the next poll.
//! 2. `poll_expired(now)` returns the due timer with the smallest `(k, s)`, and `None` when no
//!    timer is due. Timers in the same tick therefore come out in schedule order (FIFO), not by
//!    their exact nanosecond deadlines; a rescheduled timer counts as scheduled at the
//!    reschedule, even if its tick is unchanged.
//! 3. The cursor only moves forward: to the tick of each timer `poll_expired` returns, and to
//!    `floor(now / tick)` (or `u64::MAX` for `Instant::MAX`) when a poll finds nothing more due.
//!    A timer scheduled into the past is thus never ordered before a timer already yielded.
//! 4. [`next_expiry`](TimerWheel::next_expiry) is exactly `min(k) * tick` (saturating at
//!    [`Instant::MAX`]): a driver that sleeps until it and then polls neither misses a timer nor
//!    wakes early for nothing.
//!
//! # Must not
//!
//! Read a clock (`now` is always passed in), use `unsafe`, allocate per operation once grown,
//! fire a timer early, or panic on any deadline or `now` (including [`Instant::MAX`] and `now`
//! going backwards, which simply yields nothing new). It does not bound its own size: callers
//! bound the number of timers (one or a few per connection, and connections are bounded).

mod slab;
mod slots;
mod tick;

#[cfg(test)]
mod tests;

use core::fmt;

use crate::time::{Duration, Instant};

use self::slab::{Link, Slab, NIL};
use self::slots::{slot_for, slot_start, Slots};
use self::tick::TickDivisor;

/// Configuration of a [`TimerWheel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WheelConfig {
    /// Granularity: deadlines are rounded up to a multiple of this. Smaller ticks cost more
    /// cascading for long timers; 4 µs serves pacing at tens of µs while a 60 s TIME_WAIT is
    /// cascaded only three times. A zero tick is treated as 1 ns.
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
    /// The cursor: every stored expiry tick is `>= cursor`, and each timer sits in the slot
    /// `slot_for(cursor, tick)`.
    cursor: u64,
    slab: Slab<T>,
    slots: Slots,
}

impl<T> TimerWheel<T> {
    /// An empty wheel whose cursor starts at `now`.
    pub fn new(config: WheelConfig, now: Instant) -> Self {
        Self::with_capacity(config, now, 0)
    }

    /// An empty wheel with room for `capacity` timers before the slab reallocates.
    pub fn with_capacity(config: WheelConfig, now: Instant, capacity: usize) -> Self {
        let tick = TickDivisor::new(config.tick.as_nanos());
        TimerWheel {
            tick,
            cursor: tick.now_tick(now),
            slab: Slab::with_capacity(capacity),
            slots: Slots::new(),
        }
    }

    /// Schedules `value` to fire at `deadline` (rounded up to the tick; a past deadline fires at
    /// the next poll).
    ///
    /// # Panics
    /// If `u32::MAX - 1` timers are already live (the handle index space is exhausted).
    #[inline]
    pub fn insert(&mut self, deadline: Instant, value: T) -> TimerHandle {
        let tick = self.expiry_tick(deadline);
        let (index, generation) = self.slab.alloc(tick, value);
        self.slots.push_back(&mut self.slab.links, index, slot_for(self.cursor, tick));
        TimerHandle { index, generation }
    }

    /// Removes the timer and returns its value, or `None` if the handle is stale (the timer
    /// already fired or was cancelled).
    #[inline]
    pub fn cancel(&mut self, handle: TimerHandle) -> Option<T> {
        if !self.slab.live(handle.index, handle.generation) {
            return None;
        }
        self.unlink(handle.index);
        self.slab.free(handle.index)
    }

    /// Moves the timer to a new `deadline` (earlier or later), keeping its handle and value.
    /// Counts as a fresh schedule for same-tick ordering. Returns `false` if the handle is stale.
    #[inline]
    pub fn reschedule(&mut self, handle: TimerHandle, deadline: Instant) -> bool {
        let tick = self.expiry_tick(deadline);
        if !self.slab.live(handle.index, handle.generation) {
            return false;
        }
        self.unlink(handle.index);
        self.slab.links[handle.index as usize].tick = tick;
        self.slots.push_back(&mut self.slab.links, handle.index, slot_for(self.cursor, tick));
        true
    }

    /// When the timer will fire: its deadline rounded up to the tick (or the cursor, for a
    /// deadline scheduled in the past). `None` if the handle is stale.
    #[inline]
    pub fn deadline(&self, handle: TimerHandle) -> Option<Instant> {
        let live = self.slab.live(handle.index, handle.generation);
        live.then(|| self.tick_instant(self.slab.links[handle.index as usize].tick))
    }

    /// The timer's value, or `None` if the handle is stale.
    #[inline]
    pub fn get(&self, handle: TimerHandle) -> Option<&T> {
        self.slab.value(handle.index, handle.generation)
    }

    /// The timer's value, mutably, or `None` if the handle is stale.
    #[inline]
    pub fn get_mut(&mut self, handle: TimerHandle) -> Option<&mut T> {
        self.slab.value_mut(handle.index, handle.generation)
    }

    /// The instant the earliest timer is due (its tick-rounded deadline), or `None` if empty.
    /// See the module docs for the cost.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.next_expiry_tick().map(|tick| self.tick_instant(tick))
    }

    /// Removes and returns the earliest timer due at `now`, in the order defined in the module
    /// docs, or `None` when nothing (more) is due. Call repeatedly to drain.
    pub fn poll_expired(&mut self, now: Instant) -> Option<(TimerHandle, T)> {
        let now_tick = self.tick.now_tick(now);
        loop {
            let Some((level, slot)) = self.slots.earliest() else {
                self.cursor = self.cursor.max(now_tick);
                return None;
            };
            let start = slot_start(self.cursor, level, slot);
            if start > now_tick {
                // Every timer is at or after `start`, so moving the cursor up to `now_tick` keeps
                // each one in the level and slot it already occupies.
                self.cursor = self.cursor.max(now_tick);
                return None;
            }
            self.cursor = start;
            if level == 0 {
                return Some(self.pop_front(slot));
            }
            self.cascade(level * slots::SLOTS + slot);
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

    /// Live timers.
    #[inline]
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.slab.len() == 0
    }

    /// Timers the slab can hold before it reallocates.
    pub fn capacity(&self) -> usize {
        self.slab.capacity()
    }

    /// Where the timer storage lives: the address ranges (`start..end`, capacity included) of
    /// the three arrays the slab reserved. The hook for a driver that wants them on huge pages:
    /// advise the kernel over these ranges after [`with_capacity`](Self::with_capacity) and
    /// before inserting. The ranges change only if the wheel grows past its capacity.
    pub fn memory_regions(&self) -> [core::ops::Range<usize>; 3] {
        self.slab.regions()
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

    /// Cancels every timer, dropping the values; all outstanding handles become stale. Keeps the
    /// allocation and the cursor. O(capacity).
    pub fn clear(&mut self) {
        self.slab.clear();
        self.slots.clear();
    }

    /// Removes the first timer of level-0 slot `slot`; the cursor is already at its tick.
    #[inline]
    fn pop_front(&mut self, slot: usize) -> (TimerHandle, T) {
        let index = self.slots.head(slot);
        self.slots.remove(&mut self.slab.links, index, slot);
        let generation = self.slab.generation(index);
        let value = self.slab.free(index).expect("a listed entry is live");
        (TimerHandle { index, generation }, value)
    }

    /// Re-places every timer of the higher-level slot `flat` relative to the cursor, which has
    /// just moved to that slot's start. Walking the list front to back and appending keeps
    /// schedule order within each tick; the target slots are empty (all lower levels were).
    fn cascade(&mut self, flat: usize) {
        let mut index = self.slots.take(flat);
        while index != NIL {
            let Link { next, tick, .. } = self.slab.links[index as usize];
            self.slots.push_back(&mut self.slab.links, index, slot_for(self.cursor, tick));
            index = next;
        }
    }

    /// Removes live entry `index` from its slot list. The slot is not stored: by the cursor
    /// invariant it is `slot_for(cursor, tick)`.
    #[inline]
    fn unlink(&mut self, index: u32) {
        let flat = slot_for(self.cursor, self.slab.links[index as usize].tick);
        self.slots.remove(&mut self.slab.links, index, flat);
    }

    fn next_expiry_tick(&self) -> Option<u64> {
        let (level, slot) = self.slots.earliest()?;
        if level == 0 {
            return Some(slot_start(self.cursor, 0, slot));
        }
        Some(self.slots.min_tick(&self.slab.links, level * slots::SLOTS + slot))
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

impl<T> fmt::Debug for TimerWheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerWheel")
            .field("tick", &self.tick())
            .field("advanced_to", &self.advanced_to())
            .field("len", &self.len())
            .field("next_expiry", &self.next_expiry())
            .finish()
    }
}
