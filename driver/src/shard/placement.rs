//! Placing shards on an interface: which queues each shard reads, which ports it opens
//! connections from, and how it picks a source port so the replies come back to it.
//!
//! Owns the start-up decision ([`Steering::detect`]): with a readable Toeplitz key and
//! indirection table (a real multi-queue NIC), active opens pick a source port whose reply hash
//! lands on one of the opener's queues ([`SteeringMode::Rss`]); without (veth, virtio), replies
//! land wherever the peer's kernel sends them and the receiving shard hands them to the opener
//! ([`SteeringMode::HandOff`]). In both modes shard `i` opens connections only from slice `i` of
//! the ephemeral range ([`PortPartition`]), so the owner of any frame is a pure function of its
//! local port and hand-off is always a correct safety net (with RSS it simply never fires).
//!
//! Queues are dealt round-robin: shard `i` reads every queue `q` with `q % shards == i`.
//!
//! Must not: run the ethtool ioctl anywhere but start-up; share anything mutable between shards
//! ([`ActiveOpener`] is per shard).

use std::net::Ipv4Addr;

use linerate_stack::engine::{ConnectionHandle, Engine, Error as EngineError};
use linerate_stack::tcp::SocketOptions;
use linerate_stack::time::Instant;
use linerate_stack::wire::Ipv4Address;

use super::handoff::FlowRouter;
use super::steering::{choose_source_port, read_rss, PartitionError, PortPartition, RssConfig};

/// The ephemeral range split among shards (Linux's default `ip_local_port_range`).
pub const EPHEMERAL_PORTS: (u16, u16) = (32768, 60999);

/// How replies to active opens reach the opening shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SteeringMode {
    /// One shard: nothing to steer.
    Single,
    /// The NIC's Toeplitz key and indirection table are known: source ports are chosen so
    /// replies hash to the opener's queue.
    Rss(RssConfig),
    /// RSS unknown (the reason is kept for the start-up line): misdirected frames are handed to
    /// the owner of their local port over the mesh.
    HandOff { reason: String },
}

/// Where every shard sits; built once, then split into per-shard parts.
#[derive(Debug, Clone)]
pub struct Steering {
    shards: usize,
    queues: u32,
    partition: Option<PortPartition>,
    mode: SteeringMode,
}

/// Why shards cannot be placed on an interface.
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    #[error("{shards} shards but the interface has {queues} receive queue(s): use at most {queues} cores, or add queues (`ethtool -L`, or `numrxqueues` for a veth)")]
    TooFewQueues { shards: usize, queues: u32 },
    #[error("no shards: the core list is empty")]
    NoShards,
    #[error(transparent)]
    Ports(#[from] PartitionError),
}

impl Steering {
    /// Reads the RSS setup of `ifname` (call inside its namespace) and places `shards` shards on
    /// its `queues` receive queues.
    pub fn detect(ifname: &str, shards: usize, queues: u32) -> Result<Self, PlacementError> {
        let mode = match read_rss(ifname) {
            Ok(rss) => SteeringMode::Rss(rss),
            Err(e) => SteeringMode::HandOff { reason: e.to_string() },
        };
        Self::new(shards, queues, mode)
    }

    /// Places `shards` shards on `queues` queues with an explicit mode (tests, or a known NIC).
    pub fn new(shards: usize, queues: u32, mode: SteeringMode) -> Result<Self, PlacementError> {
        if shards == 0 {
            return Err(PlacementError::NoShards);
        }
        if shards > queues as usize {
            return Err(PlacementError::TooFewQueues { shards, queues });
        }
        if shards == 1 {
            return Ok(Steering { shards, queues, partition: None, mode: SteeringMode::Single });
        }
        let partition = PortPartition::new(EPHEMERAL_PORTS.0..=EPHEMERAL_PORTS.1, shards)?;
        Ok(Steering { shards, queues, partition: Some(partition), mode })
    }

    pub fn shards(&self) -> usize {
        self.shards
    }

    pub fn mode(&self) -> &SteeringMode {
        &self.mode
    }

    /// A short name for the start-up line: `single`, `rss` or `hand-off`.
    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            SteeringMode::Single => "single",
            SteeringMode::Rss(_) => "rss",
            SteeringMode::HandOff { .. } => "hand-off",
        }
    }

    /// The receive queues shard `shard` reads.
    pub fn queues_of(&self, shard: usize) -> Vec<u32> {
        (0..self.queues).filter(|q| *q as usize % self.shards == shard).collect()
    }

    /// The `EngineConfig::ephemeral_ports` of shard `shard`: its slice of the range.
    pub fn ephemeral_ports_of(&self, shard: usize) -> (u16, u16) {
        match self.partition {
            Some(p) => {
                let ports = p.ports_of(shard);
                (*ports.start(), *ports.end())
            }
            None => EPHEMERAL_PORTS,
        }
    }

    /// The frame router of shard `shard`.
    pub fn router(&self, shard: usize) -> FlowRouter {
        FlowRouter::new(shard, self.partition)
    }

    /// The active-open port chooser of shard `shard`.
    pub fn opener(&self, shard: usize) -> ActiveOpener {
        let rss = match &self.mode {
            SteeringMode::Rss(rss) => Some((rss.clone(), self.queues_of(shard))),
            _ => None,
        };
        let (first, last) = self.ephemeral_ports_of(shard);
        ActiveOpener { rss, first, last, next: first }
    }
}

/// One shard's active opens: picks the source port.
#[derive(Debug, Clone)]
pub struct ActiveOpener {
    /// The key/table and this shard's queues, when RSS is known.
    rss: Option<(RssConfig, Vec<u32>)>,
    /// This shard's port slice.
    first: u16,
    last: u16,
    /// Where the next RSS port search starts (spreads ports over the slice).
    next: u16,
}

/// How [`ActiveOpener::connect`] chose the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortChoice {
    /// A port whose replies hash to this shard's queue.
    Steered,
    /// A port of this shard's slice chosen by the engine (hand-off delivers misdirected replies).
    Partitioned,
}

/// How many steered candidate ports are tried when the engine says one is in use.
const STEERED_ATTEMPTS: usize = 8;

impl ActiveOpener {
    /// Opens a connection to `remote` from a port this shard owns. With RSS, the port's reply
    /// hash lands on this shard's queue; otherwise (or if no such port is free) the engine picks
    /// from the shard's slice. A bounded search: at most the slice once per attempt.
    pub fn connect(
        &mut self,
        engine: &mut Engine,
        now: Instant,
        remote: (Ipv4Address, u16),
        opts: Option<SocketOptions>,
    ) -> Result<(ConnectionHandle, PortChoice), EngineError> {
        if let Some((rss, queues)) = &self.rss {
            let local = Ipv4Addr::from(engine.config().addr.0);
            let remote_ip = Ipv4Addr::from(remote.0 .0);
            for _ in 0..STEERED_ATTEMPTS {
                let found = queues.iter().find_map(|&q| {
                    choose_source_port(local, remote_ip, remote.1, q, rss, self.first..=self.last, self.next)
                });
                let Some(port) = found else { break };
                self.next = if port >= self.last { self.first } else { port + 1 };
                match engine.connect(now, remote, Some(port), opts) {
                    Ok(handle) => return Ok((handle, PortChoice::Steered)),
                    Err(EngineError::AddressInUse) => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        engine.connect(now, remote, None, opts).map(|h| (h, PortChoice::Partitioned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::steering::RSS_KEY_LEN;

    #[test]
    fn queues_are_dealt_round_robin_and_ports_partitioned() {
        let s = Steering::new(2, 4, SteeringMode::HandOff { reason: "veth".into() }).unwrap();
        assert_eq!(s.queues_of(0), vec![0, 2]);
        assert_eq!(s.queues_of(1), vec![1, 3]);
        let (a, b) = (s.ephemeral_ports_of(0), s.ephemeral_ports_of(1));
        assert_eq!(a.0, EPHEMERAL_PORTS.0);
        assert_eq!(a.1 + 1, b.0);
        assert!(matches!(
            Steering::new(5, 4, SteeringMode::Single),
            Err(PlacementError::TooFewQueues { .. })
        ));
        assert_eq!(Steering::new(1, 4, SteeringMode::Single).unwrap().queues_of(0), vec![0, 1, 2, 3]);
    }

    #[test]
    fn rss_opens_pick_ports_whose_replies_hash_to_the_opener() {
        let key: Vec<u8> = (0..RSS_KEY_LEN as u8).map(|i| i.wrapping_mul(37) ^ 0x6d).collect();
        let rss = RssConfig { key, indirection: (0..128).map(|i| i % 4).collect() };
        let steering = Steering::new(4, 4, SteeringMode::Rss(rss.clone())).unwrap();
        let ours = Ipv4Address::new(198, 18, 0, 2);
        let cfg = linerate_stack::engine::EngineConfig::new(
            ours,
            24,
            linerate_stack::wire::EthernetAddress([2, 0, 0, 0, 0, 2]),
            1,
        );
        let mut engine = Engine::new(cfg, Instant::ZERO);
        let mut opener = steering.opener(2);
        let remote = (Ipv4Address::new(198, 18, 0, 1), 7000);
        for _ in 0..20 {
            let (h, choice) = opener.connect(&mut engine, Instant::ZERO, remote, None).unwrap();
            assert_eq!(choice, PortChoice::Steered);
            let port = engine.info(Instant::ZERO, h).unwrap().tuple.local.1;
            let queue = rss.queue_for_flow(Ipv4Addr::from(ours.0), port, Ipv4Addr::new(198, 18, 0, 1), 7000);
            assert_eq!(queue, Some(2));
            assert_eq!(steering.router(0).owner_of_port(port), Some(2));
        }
    }
}
