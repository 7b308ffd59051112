//! The engine's 4-tuple → connection map: the shared keyed-SipHash [`FlowTable`] of
//! [`crate::flow`] (bounded, O(1), no allocation after construction), addressed with the TCP
//! layer's [`FourTuple`]. Also the one place that converts a tuple for the RFC 6528 ISN
//! generator of [`crate::isn`], so both hash the same canonical bytes.

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
}

impl core::fmt::Debug for Flows {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Flows").field("len", &self.table.len()).finish()
    }
}

impl Flows {
    pub(crate) fn new(capacity: usize, key: [u8; 16]) -> Self {
        Flows { table: FlowTable::new(capacity, key) }
    }

    pub(crate) fn get(&self, t: &FourTuple) -> Option<&u32> {
        self.table.get(&flow_key(t))
    }

    pub(crate) fn contains_key(&self, t: &FourTuple) -> bool {
        self.table.contains_key(&flow_key(t))
    }

    /// False when the table is full (the engine's admission checks keep that from happening).
    pub(crate) fn insert(&mut self, t: FourTuple, index: u32) -> bool {
        self.table.insert(flow_key(&t), index).is_ok()
    }

    pub(crate) fn remove(&mut self, t: &FourTuple) -> Option<u32> {
        self.table.remove(&flow_key(t))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}
