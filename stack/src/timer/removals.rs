//! Removals from slot counters, deferred: the few bookkeeping writes a cancel or reschedule
//! makes to the slot it leaves, queued in a small fixed buffer and applied in bulk.
//!
//! Owns: up to [`PENDING`] `(slot, tick)` pairs. Promises: O(1) push, no allocation, iteration in
//! push order. Must not: apply anything itself (the wheel does, in `flush_removals`).
//!
//! Why defer: a cancel learns which slot to uncount from the timer's entry, which at a million
//! timers is a cache miss. Updating that slot's counters at once is a read-modify-write at an
//! address that depends on the miss; the CPU then cannot tell whether the next operation's
//! counter reads alias it, and (having been burnt before) waits, so back-to-back operations
//! wait for each other's misses. Queued here, each operation's only write that depends on the
//! miss goes to an address known in advance, and the counters are updated later from data in
//! cache. Anything that reads the counters (polling, compaction, `next_expiry`) first applies
//! the queue or, behind `&self`, takes it into account.

/// Removals queued before they are applied.
pub(crate) const PENDING: usize = 32;

/// A live timer with expiry `tick` left flat slot `flat`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Removal {
    pub(crate) tick: u64,
    pub(crate) flat: u32,
}

/// The queue.
#[derive(Debug)]
pub(crate) struct Removals {
    queue: [Removal; PENDING],
    len: usize,
}

impl Removals {
    pub(crate) fn new() -> Self {
        Removals { queue: [Removal::default(); PENDING], len: 0 }
    }

    /// Queues a removal; returns true if the queue is now full and must be applied.
    #[inline(always)]
    pub(crate) fn push(&mut self, flat: usize, tick: u64) -> bool {
        self.queue[self.len] = Removal { tick, flat: flat as u32 };
        self.len += 1;
        self.len == PENDING
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[Removal] {
        &self.queue[..self.len]
    }

    /// Empties the queue, returning what was in it.
    #[inline]
    pub(crate) fn take(&mut self) -> ([Removal; PENDING], usize) {
        let len = core::mem::replace(&mut self.len, 0);
        (self.queue, len)
    }

    /// How many queued removals leave slot `flat`.
    pub(crate) fn count_for(&self, flat: usize) -> u32 {
        self.as_slice().iter().filter(|r| r.flat as usize == flat).count() as u32
    }

    /// Whether a queued removal takes a timer with expiry `tick` out of slot `flat`.
    pub(crate) fn removes_tick(&self, flat: usize, tick: u64) -> bool {
        self.as_slice().iter().any(|r| r.flat as usize == flat && r.tick == tick)
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }
}
