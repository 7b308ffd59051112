//! Connection lookup: the 4-tuple and a bounded, keyed hash table from 4-tuples to connections.
//!
//! Owns: [`FourTuple`] (the identity of a TCP connection, RFC 9293 §3.3.2 "socket pair") and
//! [`FlowTable`], the per-shard map from a segment's 4-tuple to the engine's connection handle.
//!
//! Promises: lookups are O(1) expected and the hash is keyed by a caller-injected secret
//! (SipHash-1-3), so a peer that can choose its address and port cannot build colliding 4-tuples
//! and turn lookups into linear scans. The table never allocates after construction and never grows:
//! its capacity is fixed by the caller, and an insert into a full table fails with
//! [`FlowTableFull`] instead of evicting anything.
//!
//! Must not: read any clock or random source (the secret is injected), or panic on any key.

mod table;

pub use table::{FlowTable, FlowTableFull, Iter, IterMut};

use crate::wire::Ipv4Address;

/// The socket pair of a TCP connection as seen from this host (RFC 9293 §3.3.2).
///
/// "Local" is always this host, so the tuple of an incoming segment is
/// `(dst_addr, dst_port, src_addr, src_port)` of that segment.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct FourTuple {
    pub local_addr: Ipv4Address,
    pub local_port: u16,
    pub remote_addr: Ipv4Address,
    pub remote_port: u16,
}

impl FourTuple {
    /// Length of [`FourTuple::to_bytes`].
    pub const BYTES: usize = 12;

    pub const fn new(
        local_addr: Ipv4Address,
        local_port: u16,
        remote_addr: Ipv4Address,
        remote_port: u16,
    ) -> Self {
        FourTuple { local_addr, local_port, remote_addr, remote_port }
    }

    /// The canonical byte string fed to every keyed hash of a tuple (flow table, ISN, SYN cookie):
    /// local address, local port, remote address, remote port, all in network byte order.
    pub fn to_bytes(&self) -> [u8; Self::BYTES] {
        let mut b = [0u8; Self::BYTES];
        b[0..4].copy_from_slice(&self.local_addr.0);
        b[4..6].copy_from_slice(&self.local_port.to_be_bytes());
        b[6..10].copy_from_slice(&self.remote_addr.0);
        b[10..12].copy_from_slice(&self.remote_port.to_be_bytes());
        b
    }

    /// The tuple whose [`FourTuple::to_bytes`] is `b`.
    pub fn from_bytes(b: [u8; Self::BYTES]) -> Self {
        let port = |at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
        let addr = |at: usize| Ipv4Address([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        FourTuple::new(addr(0), port(4), addr(6), port(10))
    }

    /// The same connection seen from the other end.
    pub fn reversed(&self) -> Self {
        FourTuple::new(self.remote_addr, self.remote_port, self.local_addr, self.local_port)
    }
}
