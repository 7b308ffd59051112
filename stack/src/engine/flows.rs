//! The engine's 4-tuple → connection map: the shared keyed-SipHash [`FlowTable`] of
//! [`crate::flow`] (bounded, O(1), no allocation after construction), addressed with the TCP
//! layer's [`FourTuple`]. A value names either a connection slab index or a compact TIME-WAIT
//! record (tagged in the top bit), so one lookup per segment finds either ([`Flow`]). Also the one place that converts a tuple for the RFC 6528 ISN
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

/// Top bit of a flow-table value: the rest is a TIME-WAIT record id, not a slab index (both
/// stay below 2^30, the flow table's own limit).
const TIME_WAIT_TAG: u32 = 1 << 31;

/// What a 4-tuple leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// A connection in the slab.
    Connection(u32),
    /// A compact TIME-WAIT record (see `time_wait`).
    TimeWait(u32),
}

impl Flow {
    fn from_value(value: u32) -> Self {
        if value & TIME_WAIT_TAG != 0 {
            Flow::TimeWait(value & !TIME_WAIT_TAG)
        } else {
            Flow::Connection(value)
        }
    }
}

/// Connection slab indices and TIME-WAIT record ids by 4-tuple.
pub(crate) struct Flows {
    table: FlowTable<u32>,
    /// The last tuple found by [`Flows::lookup`] and its value: a burst of segments usually
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
    pub(crate) fn lookup(&mut self, t: &FourTuple) -> Option<Flow> {
        match self.last {
            Some((tuple, value)) if tuple == *t => Some(Flow::from_value(value)),
            _ => self.lookup_in_table(t),
        }
    }

    fn lookup_in_table(&mut self, t: &FourTuple) -> Option<Flow> {
        let value = *self.table.get(&flow_key(t))?;
        self.last = Some((*t, value));
        Some(Flow::from_value(value))
    }

    /// The connection slab index of `t` (`None` for a TIME-WAIT record too).
    pub(crate) fn get(&self, t: &FourTuple) -> Option<&u32> {
        self.table.get(&flow_key(t)).filter(|&&v| v & TIME_WAIT_TAG == 0)
    }

    /// Whether `t` is in use, by a connection or a TIME-WAIT record.
    pub(crate) fn contains_key(&self, t: &FourTuple) -> bool {
        self.table.contains_key(&flow_key(t))
    }

    /// Points `t` at TIME-WAIT record `id` (replacing its connection's entry).
    pub(crate) fn insert_time_wait(&mut self, t: FourTuple, id: u32) -> bool {
        self.insert(t, id | TIME_WAIT_TAG)
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
