//! What an engine shard publishes: the engine's counters, the shard's own (hand-off, steering),
//! and the application's, as one plain-data snapshot for the [seqlock](super::stats).
//!
//! Owns the snapshot types. Promises: every type here is all-`u64` `repr(C)`, so it is [`Pod`]
//! and sums across shards with `+=`. Must not: hold anything but counters.

use core::mem::{align_of, size_of};
use core::ops::AddAssign;

use linerate_stack::stats::Stats;

use super::stats::Pod;

/// Words in the engine's [`Stats`].
const ENGINE_WORDS: usize = size_of::<Stats>() / 8;

// `Stats` is documented as `repr(C)` with only `u64` fields; these catch a field of another
// width (which would add padding or change the word count).
const _: () = assert!(size_of::<Stats>().is_multiple_of(8) && align_of::<Stats>() == 8);

/// The engine's [`Stats`] as plain words, so it can cross threads through the seqlock.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct EngineCounters([u64; ENGINE_WORDS]);

impl core::fmt::Debug for EngineCounters {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.to_stats().fmt(f)
    }
}

impl Default for EngineCounters {
    fn default() -> Self {
        EngineCounters([0; ENGINE_WORDS])
    }
}

impl From<&Stats> for EngineCounters {
    fn from(stats: &Stats) -> Self {
        // SAFETY: `Stats` is `repr(C)` with only `u64` fields (its documented contract, and the
        // size/alignment assertion above), so its bytes are exactly `ENGINE_WORDS` initialised
        // `u64`s.
        EngineCounters(unsafe { core::ptr::read(stats as *const Stats as *const [u64; ENGINE_WORDS]) })
    }
}

impl EngineCounters {
    /// The counters as the engine's own type.
    pub fn to_stats(&self) -> Stats {
        // SAFETY: as in `from`: every field of `Stats` is a `u64`, for which any bits are valid.
        unsafe { core::ptr::read(self.0.as_ptr() as *const Stats) }
    }
}

impl AddAssign for EngineCounters {
    fn add_assign(&mut self, rhs: Self) {
        for (a, b) in self.0.iter_mut().zip(rhs.0) {
            *a += b;
        }
    }
}

/// Counters of the shard itself (not of its engine or application).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ShardCounters {
    /// Frames taken from this shard's own queues.
    pub rx_frames: u64,
    /// Frames that belonged to another shard and were handed to it.
    pub handed_off: u64,
    /// Frames (or ARP copies) dropped because the ring to their shard was full.
    pub handoff_ring_full: u64,
    /// Frames that belonged to another shard but were too long to copy, dropped.
    pub handoff_oversized: u64,
    /// Frames other shards handed to this one.
    pub handoff_received: u64,
    /// ARP replies copied to the other shards (one per destination shard).
    pub arp_copies: u64,
    /// Active opens from a port whose flow this shard owns (replies hash to it: by the NIC's
    /// hash with RSS, by ours with hand-off).
    pub opens_steered: u64,
    /// Active opens of a single shard, from any free port the engine picked.
    pub opens_any_port: u64,
}

impl AddAssign for ShardCounters {
    fn add_assign(&mut self, o: Self) {
        self.rx_frames += o.rx_frames;
        self.handed_off += o.handed_off;
        self.handoff_ring_full += o.handoff_ring_full;
        self.handoff_oversized += o.handoff_oversized;
        self.handoff_received += o.handoff_received;
        self.arp_copies += o.arp_copies;
        self.opens_steered += o.opens_steered;
        self.opens_any_port += o.opens_any_port;
    }
}

/// One engine shard's published snapshot; `A` is the application's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ShardStats<A> {
    pub engine: EngineCounters,
    pub shard: ShardCounters,
    pub app: A,
}

impl<A> ShardStats<A> {
    /// Evaluated (at compile time) by every `EngineShard` with application counters `A`: the
    /// snapshot has no padding only if `A`'s size is a whole number of 8-byte words.
    pub(crate) const NO_PADDING: () = assert!(
        size_of::<ShardStats<A>>()
            == size_of::<EngineCounters>() + size_of::<ShardCounters>() + size_of::<A>(),
        "application counters must be a whole number of u64 words (e.g. a repr(C) struct of u64)"
    );
}

// SAFETY: each part is Pod and all-`u64` or `A`; `NO_PADDING` (checked for every `A` an
// `EngineShard` publishes) proves the `repr(C)` layout adds no padding around `A`.
unsafe impl<A: Pod> Pod for ShardStats<A> {}
// SAFETY: `repr(C)` array of `u64`.
unsafe impl Pod for EngineCounters {}
// SAFETY: `repr(C)` struct of `u64`s only.
unsafe impl Pod for ShardCounters {}

impl<A: AddAssign> AddAssign for ShardStats<A> {
    fn add_assign(&mut self, o: Self) {
        self.engine += o.engine;
        self.shard += o.shard;
        self.app += o.app;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_counters_round_trip_and_sum() {
        let stats = Stats { in_segs: 3, passive_opens: 2, reply_queue_drops: 9, ..Stats::default() };
        let mut a = EngineCounters::from(&stats);
        assert_eq!(a.to_stats(), stats);
        a += EngineCounters::from(&stats);
        let sum = a.to_stats();
        assert_eq!((sum.in_segs, sum.passive_opens, sum.reply_queue_drops), (6, 4, 18));
    }
}
