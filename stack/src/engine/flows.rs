//! The engine's 4-tuple → connection map: the shared keyed-SipHash [`FlowTable`] of
//! [`crate::flow`] (bounded, O(1), no allocation after construction), addressed with the TCP
//! layer's [`FourTuple`]. Also the one place that converts a tuple for the RFC 6528 ISN
//! generator of [`crate::isn`], so both hash the same canonical bytes. Per-segment lookups go
//! through a one-entry cache of the last hit, so a bulk flow costs one tuple compare, not a hash.

use crate::flow::{self, FlowTable};
use crate::isn::IsnGenerator;
use crate::tcp::FourTuple;
use crate::time::Instant;
use crate::wire::SeqNumber;

/// The key the shared flow table and ISN generator use for `t`.
pub(crate) fn flow_key(t: &FourTuple) -> flow::FourTuple {
    flow::FourTuple::new(t.local.0, t.local.1, t.remote.0, t.remote.1)
}

/// RFC 6528 ISN for `t` at `now`.
pub(crate) fn isn(generator: &IsnGenerator, now: Instant, t: &FourTuple) -> SeqNumber {
    generator.isn(now, &flow_key(t))
}

/// Connection slab indices by 4-tuple.
pub(crate) struct Flows {
    table: FlowTable<u32>,
    /// The last tuple found by [`Flows::lookup`] and its index: a burst of segments usually
    /// belongs to one flow, so the keyed hash is skipped while the tuple repeats. Always an
    /// entry of `table` (cleared when that entry goes).
    last: Option<(FourTuple, u32)>,
}

impl core::fmt::Debug for Flows {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Flows").field("len", &self.table.len()).finish()
    }
}

impl Flows {
    pub(crate) fn new(capacity: usize, key: [u8; 16]) -> Self {
        Flows { table: FlowTable::new(capacity, key), last: None }
    }

    /// The per-segment lookup: like `get`, remembering the hit for the next segment. The
    /// remembered hit is checked inline (it is most segments of a bulk flow); the keyed hash
    /// stays out of line.
    #[inline]
    pub(crate) fn lookup(&mut self, t: &FourTuple) -> Option<u32> {
        match self.last {
            Some((tuple, index)) if tuple == *t => Some(index),
            _ => self.lookup_in_table(t),
        }
    }

    fn lookup_in_table(&mut self, t: &FourTuple) -> Option<u32> {
        let index = *self.table.get(&flow_key(t))?;
        self.last = Some((*t, index));
        Some(index)
    }

    pub(crate) fn get(&self, t: &FourTuple) -> Option<&u32> {
        self.table.get(&flow_key(t))
    }

    pub(crate) fn contains_key(&self, t: &FourTuple) -> bool {
        self.table.contains_key(&flow_key(t))
    }

    /// False when the table is full (the engine's admission checks keep that from happening).
    pub(crate) fn insert(&mut self, t: FourTuple, index: u32) -> bool {
        self.forget(&t);
        self.table.insert(flow_key(&t), index).is_ok()
    }

    pub(crate) fn remove(&mut self, t: &FourTuple) -> Option<u32> {
        self.forget(t);
        self.table.remove(&flow_key(t))
    }

    fn forget(&mut self, t: &FourTuple) {
        if self.last.is_some_and(|(tuple, _)| tuple == *t) {
            self.last = None;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}
