//! Which shard owns an active-open flow: the one whose queue the flow's replies hash to.
//!
//! One rule for every frame and every port choice. A flow to one of our ephemeral ports is ours
//! because some shard opened it, and that shard chose the port so that the reply's RSS hash
//! (`remote_ip, local_ip, remote_port, local_port`, see [`super::steering`]) selects an
//! indirection-table entry whose queue it reads. So the owner of such a frame is a pure function
//! of its 4-tuple, which both the opener ([`super::placement::ActiveOpener`]) and every
//! receiving shard ([`super::handoff::FlowRouter`]) compute the same way:
//!
//! * **RSS known** ([`FlowOwners::rss`]): the NIC's key and table. Replies land on the owner's
//!   queue by themselves; the router's check only confirms it (and catches a table changed
//!   behind our back, by handing the frame off instead of resetting the connection).
//! * **RSS unknown** ([`FlowOwners::software`], veth): the same hash with a fixed key of ours and
//!   a table dealt round-robin. The NIC puts replies on whatever queue it likes; the receiving
//!   shard computes the owner and hands the frame over the mesh.
//!
//! Either way each shard can use about 1/N of the ephemeral range *per destination* (the ports
//! whose hash it owns), where the older port-slice scheme left 1/N² with RSS (a port had to be in
//! the shard's slice *and* hash home). Ports outside the ephemeral range belong to listeners:
//! their flows stay on the shard where the SYN landed, so listening ports must not be ephemeral.
//!
//! Promises: [`FlowOwners::owner`] is 12 table loads, never panics, never allocates; every
//! ephemeral port of every 4-tuple has exactly one owner. Must not: be shared mutably between
//! shards (each shard holds its own copy, 12 KiB of table).

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use super::steering::{RssConfig, ToeplitzTable, RSS_KEY_LEN};

/// The key of the software hash: the Microsoft RSS specification's sample key, which spreads
/// the port bits well (every low-order hash bit depends on several port bits).
const SOFTWARE_KEY: [u8; RSS_KEY_LEN] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0,
    0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42,
    0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// Entries of the software indirection table (the usual NIC default).
const SOFTWARE_TABLE: usize = 128;

/// The owner rule of one set of shards; cloned into each shard.
#[derive(Debug, Clone)]
pub struct FlowOwners {
    hasher: ToeplitzTable,
    /// The shard owning each indirection-table entry (the entry's queue, dealt round-robin:
    /// shard `q % shards` reads queue `q`).
    shard_of_entry: Box<[u16]>,
    /// Local ports of active opens; frames to any other port belong to listeners.
    ports: RangeInclusive<u16>,
    shards: usize,
}

impl FlowOwners {
    /// The NIC's own rule: its key and indirection table, queue `q` read by shard `q % shards`.
    /// `None` for an empty table or no shards (nothing can be owned).
    pub fn rss(rss: &RssConfig, shards: usize, ports: RangeInclusive<u16>) -> Option<Self> {
        if rss.indirection.is_empty() || shards == 0 {
            return None;
        }
        let shard_of_entry = rss.indirection.iter().map(|&q| (q as usize % shards) as u16).collect();
        Some(FlowOwners { hasher: ToeplitzTable::new(&rss.key), shard_of_entry, ports, shards })
    }

    /// Our own rule for devices whose RSS is unknown: a fixed key and a round-robin table.
    pub fn software(shards: usize, ports: RangeInclusive<u16>) -> Self {
        let shards = shards.max(1);
        let shard_of_entry = (0..SOFTWARE_TABLE).map(|i| (i % shards) as u16).collect();
        FlowOwners { hasher: ToeplitzTable::new(&SOFTWARE_KEY), shard_of_entry, ports, shards }
    }

    /// Number of shards the rule spreads flows over.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// The ports active opens use.
    pub fn ports(&self) -> RangeInclusive<u16> {
        self.ports.clone()
    }

    /// The shard owning the flow `local:local_port <-> remote:remote_port`, or `None` when
    /// `local_port` is not ephemeral (a listener's flow: it stays where it landed).
    #[inline]
    pub fn owner(
        &self,
        local: Ipv4Addr,
        local_port: u16,
        remote: Ipv4Addr,
        remote_port: u16,
    ) -> Option<usize> {
        if !self.ports.contains(&local_port) {
            return None;
        }
        // The reply's hash: the peer is its source.
        let hash = self.hasher.hash_ipv4_tcp(remote, local, remote_port, local_port);
        let entry = hash as usize % self.shard_of_entry.len();
        Some(usize::from(self.shard_of_entry[entry]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::steering::hash_ipv4_tcp;

    #[test]
    fn the_table_hash_is_the_toeplitz_hash() {
        let key: Vec<u8> = (0..RSS_KEY_LEN as u8).map(|i| i.wrapping_mul(97) ^ 0x35).collect();
        let table = ToeplitzTable::new(&key);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = x.to_be_bytes();
            let (src, dst) = (Ipv4Addr::new(b[0], b[1], b[2], b[3]), Ipv4Addr::new(b[4], b[5], b[6], b[7]));
            let (sp, dp) = ((x >> 16) as u16, (x >> 40) as u16);
            assert_eq!(
                table.hash_ipv4_tcp(src, dst, sp, dp),
                hash_ipv4_tcp(&key, src, dst, sp, dp),
                "{x:#x}"
            );
        }
    }

    #[test]
    fn listener_ports_have_no_owner_and_rss_follows_the_table() {
        let owners = FlowOwners::software(4, 32768..=60999);
        let (us, them) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2));
        assert_eq!(owners.owner(us, 80, them, 40000), None);
        assert!(owners.owner(us, 40000, them, 80).is_some_and(|s| s < 4));
        let rss = RssConfig { key: SOFTWARE_KEY.to_vec(), indirection: (0..128).map(|i| i % 8).collect() };
        let by_nic = FlowOwners::rss(&rss, 4, 32768..=60999).unwrap();
        for port in 32768..33768 {
            let queue = rss.queue_for_flow(us, port, them, 80).unwrap();
            assert_eq!(by_nic.owner(us, port, them, 80), Some(queue as usize % 4));
        }
        assert!(FlowOwners::rss(&RssConfig { key: vec![], indirection: vec![] }, 4, 1..=2).is_none());
    }
}
