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
//! Timers are stored in a slab (`u32` indices, a free list, a generation per entry). A
//! [`TimerHandle`] is (index, generation); a handle whose timer fired or was cancelled no longer
//! resolves (every method given it returns `None` / `false`), even if its entry was reused.
//!
//! # Lazy removal
//!
//! A wheel slot is a FIFO array of *items* `(entry index, stamp)`, kept in 128-byte chunks from
//! a shared pool (`chunks.rs`). The entry holds its current stamp, bumped whenever the timer is
//! placed in a slot and when it is freed; an item whose stamp no longer matches is *garbage*.
//! So cancel frees the timer's entry (which bumps the stamp) and reschedule rewrites the entry
//! and appends a fresh item to its new slot: neither reads or writes another timer, so each
//! costs one cache miss at a million timers, where a doubly linked list also had to reach both
//! neighbours. Each slot counts its live timers and its occupancy bit means "holds a live
//! timer", so garbage never makes [`next_expiry`](TimerWheel::next_expiry) early; the counter
//! updates a cancel or reschedule owes its old slot are queued (up to 32, `removals.rs`) and
//! applied before anything reads them, so that consecutive operations do not wait on each
//! other's misses. Garbage goes when its slot is swept (expired or cascaded), all at once when
//! the slot's last live timer leaves, and otherwise by compacting a slot whose items exceed
//! three times its live timers plus two chunks (30 items).
//!
//! # Memory layout
//!
//! One 32-byte entry per timer (tick, generation, stamp and the value, for values up to 12
//! bytes): everything a cancel or reschedule reads is one cache line. Items are 8 bytes; a slot
//! holds at most `3 × live + 30` of them, so the pool needs at most `live / 5 + 4 × 704` chunks,
//! which [`with_capacity`](TimerWheel::with_capacity) reserves. Walks over a slot issue the
//! entry loads of a whole chunk at once, so their misses overlap. At a million timers the
//! entries are 32 MB and the pool at most 26 MB (about 9 MB in use when garbage is light);
//! [`TimerWheel::memory_regions`] lets a driver back them with huge pages (e.g.
//! `madvise(MADV_HUGEPAGE)` right after `with_capacity`, before the first insert touches them),
//! which `stack` itself cannot do since it makes no syscalls.
//!
//! # Complexity
//!
//! - [`insert`](TimerWheel::insert), [`get`](TimerWheel::get),
//!   [`deadline`](TimerWheel::deadline): O(1). [`cancel`](TimerWheel::cancel),
//!   [`reschedule`](TimerWheel::reschedule): O(1) amortised; every 32nd applies the queued
//!   counter updates (O(32)), and one may compact a slot: O(items in it), amortised O(1) since
//!   at least two thirds of what it walks is garbage that earlier operations left.
//! - [`poll_expired`](TimerWheel::poll_expired): O(1) per yielded timer plus O(1) per cascaded
//!   or dropped item; each timer is cascaded at most `LEVELS - 1` times over its life (in
//!   practice 0–3), and each garbage item is dropped once. A poll that yields nothing is O(1)
//!   amortised.
//! - [`next_expiry`](TimerWheel::next_expiry): O(1) when no removal is queued, else O(32) per
//!   slot it has to look past. Each slot keeps its smallest live expiry tick, exact after
//!   inserts and cascades; only after a cancel or reschedule removed a higher-level slot's
//!   earliest timer does the next call scan that one slot (O(items in it)) and remember the
//!   result. Expiring timers never causes a scan.
//! - No allocation while at most `capacity` timers are live after
//!   [`with_capacity`](TimerWheel::with_capacity), for any mix of operations; without a
//!   reservation, none once the slab and pool reached their high-water marks. The slot tables are
//!   fixed arrays (~21 KiB).
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
//!    reschedule, even if its tick is unchanged. (One exception, by design of the 32-bit
//!    stamps: a timer rescheduled 2^32 times while one of its old items sat unswept in its
//!    current slot may take that item's place among same-tick timers; it still fires exactly
//!    once, in its tick. See `sweep.rs`.)
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

mod chunks;
mod removals;
mod slab;
mod slots;
mod sweep;
mod tick;

#[cfg(test)]
mod tests;

use core::fmt;

use crate::time::{Duration, Instant};

use self::chunks::{ChunkPool, Item, CHUNK_ITEMS};
use self::removals::Removals;
use self::slab::Slab;
use self::slots::{slot_for, slot_start, Slots, FLAT_SLOTS, SLOTS};
use self::tick::TickDivisor;

/// A slot is compacted once its garbage exceeds `GARBAGE_RATIO` times its live timers plus
/// [`GARBAGE_SLACK`]: the bound on memory (items per slot at most `(1 + GARBAGE_RATIO) × live +
/// GARBAGE_SLACK`) against the amortised cost of compaction (it reads every item's entry, about
/// `(1 + 1 / GARBAGE_RATIO)` entry reads per garbage item reclaimed).
const GARBAGE_RATIO: u64 = 2;
/// See [`GARBAGE_RATIO`]: two chunks' worth, so small slots are never compacted for a few items.
const GARBAGE_SLACK: u64 = 2 * CHUNK_ITEMS as u64;

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
    /// Storage of the slots' item lists.
    pool: ChunkPool,
    /// Slot counter updates owed by cancels and reschedules, applied before the counters are
    /// read (see `removals.rs`).
    removals: Removals,
}

impl<T> TimerWheel<T> {
    /// An empty wheel whose cursor starts at `now`.
    pub fn new(config: WheelConfig, now: Instant) -> Self {
        Self::with_capacity(config, now, 0)
    }

    /// An empty wheel with room for `capacity` live timers: nothing allocates while at most that
    /// many are live, whatever the mix of operations (the chunk pool is reserved for the worst
    /// case of garbage the compaction rule allows).
    pub fn with_capacity(config: WheelConfig, now: Instant, capacity: usize) -> Self {
        let tick = TickDivisor::new(config.tick.as_nanos());
        TimerWheel {
            tick,
            cursor: tick.now_tick(now),
            slab: Slab::with_capacity(capacity),
            slots: Slots::new(),
            pool: ChunkPool::with_capacity(chunks_for(capacity)),
            removals: Removals::new(),
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
        let (index, generation, stamp) = self.slab.alloc(tick, value);
        self.place(Item { index, stamp }, tick);
        TimerHandle { index, generation }
    }

    /// Removes the timer and returns its value, or `None` if the handle is stale (the timer
    /// already fired or was cancelled). Reads and writes only the timer's entry: its slot item
    /// is left behind as garbage (see the module docs).
    #[inline]
    pub fn cancel(&mut self, handle: TimerHandle) -> Option<T> {
        let tick = self.slab.get(handle.index, handle.generation)?.tick;
        let value = self.slab.free(handle.index)?;
        self.leave_slot_later(tick);
        Some(value)
    }

    /// Moves the timer to a new `deadline` (earlier or later), keeping its handle and value.
    /// Counts as a fresh schedule for same-tick ordering. Returns `false` if the handle is stale.
    #[inline]
    pub fn reschedule(&mut self, handle: TimerHandle, deadline: Instant) -> bool {
        let tick = self.expiry_tick(deadline);
        let Some(entry) = self.slab.get_mut(handle.index, handle.generation) else {
            return false;
        };
        let old_tick = core::mem::replace(&mut entry.tick, tick);
        entry.stamp = entry.stamp.wrapping_add(1);
        let item = Item { index: handle.index, stamp: entry.stamp };
        // Placed before leaving the old slot: if it is the same slot, it never looks empty.
        self.place(item, tick);
        self.leave_slot_later(old_tick);
        true
    }

    /// When the timer will fire: its deadline rounded up to the tick (or the cursor, for a
    /// deadline scheduled in the past). `None` if the handle is stale.
    #[inline]
    pub fn deadline(&self, handle: TimerHandle) -> Option<Instant> {
        self.slab.get(handle.index, handle.generation).map(|entry| self.tick_instant(entry.tick))
    }

    /// The timer's value, or `None` if the handle is stale.
    #[inline]
    pub fn get(&self, handle: TimerHandle) -> Option<&T> {
        self.slab.get(handle.index, handle.generation)?.value.as_ref()
    }

    /// The timer's value, mutably, or `None` if the handle is stale.
    #[inline]
    pub fn get_mut(&mut self, handle: TimerHandle) -> Option<&mut T> {
        self.slab.get_mut(handle.index, handle.generation)?.value.as_mut()
    }

    /// The instant the earliest timer is due (its tick-rounded deadline), or `None` if empty.
    /// See the module docs for the cost.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.next_expiry_tick().map(|tick| self.tick_instant(tick))
    }

    /// Removes and returns the earliest timer due at `now`, in the order defined in the module
    /// docs, or `None` when nothing (more) is due. Call repeatedly to drain.
    pub fn poll_expired(&mut self, now: Instant) -> Option<(TimerHandle, T)> {
        if !self.removals.is_empty() {
            self.flush_removals();
        }
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
            if level > 0 {
                // The cursor is now this slot's start: its timers move down a level or more.
                self.cascade(level * SLOTS + slot);
            } else if let Some(expired) = self.pop_due(slot) {
                return Some(expired);
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

    /// Live timers.
    #[inline]
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.slab.len() == 0
    }

    /// Timers the wheel can hold before it reallocates: the slab's capacity (the chunk pool
    /// is reserved to match, see [`with_capacity`](Self::with_capacity)).
    pub fn capacity(&self) -> usize {
        self.slab.capacity()
    }

    /// Where the timer storage lives: the address ranges (`start..end`, capacity included) of
    /// the entry array and the chunk pool. The hook for a driver that wants them on huge pages:
    /// advise the kernel over these ranges after [`with_capacity`](Self::with_capacity) and
    /// before inserting. The ranges change only if the wheel grows past its capacity.
    pub fn memory_regions(&self) -> [core::ops::Range<usize>; 2] {
        [self.slab.region(), self.pool.region()]
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
        self.pool.clear();
        self.removals.clear();
    }

    /// Appends `item`, whose entry expires at `tick`, to the slot that tick belongs in.
    #[inline(always)]
    fn place(&mut self, item: Item, tick: u64) {
        let flat = slot_for(self.cursor, tick);
        self.pool.push(&mut self.slots.lists[flat], item);
        self.slots.add(flat, tick);
    }

    /// Queues the uncounting of a live timer with expiry `tick` from its slot, whose item for it
    /// is now garbage. The slot is not stored: by the cursor invariant it is
    /// `slot_for(cursor, tick)`, and the cursor does not move before the queue is applied.
    #[inline(always)]
    fn leave_slot_later(&mut self, tick: u64) {
        if self.removals.push(slot_for(self.cursor, tick), tick) {
            self.flush_removals();
        }
    }

    /// Applies the queued removals: uncounts each timer, frees a slot's storage when its last
    /// live timer has left, then compacts the slots where garbage dominates. Compaction comes
    /// last because it recounts a slot from its items, which would count a queued removal twice.
    fn flush_removals(&mut self) {
        let (queue, len) = self.removals.take();
        for removal in &queue[..len] {
            let flat = removal.flat as usize;
            if self.slots.remove_live(flat, removal.tick) {
                self.pool.release(&mut self.slots.lists[flat]);
                self.slots.reset(flat);
            }
        }
        for removal in &queue[..len] {
            self.compact_if_mostly_garbage(removal.flat as usize);
        }
    }

    #[inline]
    fn compact_if_mostly_garbage(&mut self, flat: usize) {
        let (items, live) = (u64::from(self.slots.items(flat)), u64::from(self.slots.live(flat)));
        if items > (1 + GARBAGE_RATIO) * live + GARBAGE_SLACK {
            self.compact_slot(flat);
        }
    }

    fn next_expiry_tick(&self) -> Option<u64> {
        // Slots that look occupied only because their last live timers' removals are queued.
        let mut emptied = [0_u64; slots::LEVELS];
        loop {
            let (level, slot) = self.slots.earliest_except(&emptied)?;
            let flat = level * SLOTS + slot;
            if !self.removals.is_empty() && self.removals.count_for(flat) == self.slots.live(flat) {
                emptied[level] |= 1 << slot;
                continue;
            }
            let start = slot_start(self.cursor, level, slot);
            if level == 0 {
                return Some(start);
            }
            let known = self.slots.known_min(flat).filter(|&min| !self.removals.removes_tick(flat, min));
            return Some(known.unwrap_or_else(|| {
                let min = self.rescan_min(flat, start);
                self.slots.remember_min(flat, min);
                min
            }));
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

/// Chunks needed for `live` timers in the worst case: per occupied slot at most
/// `(1 + GARBAGE_RATIO) × live + GARBAGE_SLACK` items (the compaction rule, checked after every
/// operation that can create garbage), spread over two partial chunks at the ends; one more
/// slot's worth for the slot being re-placed. Zero for zero.
fn chunks_for(live: usize) -> usize {
    if live == 0 {
        return 0;
    }
    let occupied = (live + 1).min(FLAT_SLOTS) as u64;
    let items = (1 + GARBAGE_RATIO) * live as u64 + occupied * GARBAGE_SLACK;
    usize::try_from(items / CHUNK_ITEMS as u64 + 2 * occupied).unwrap_or(usize::MAX)
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
