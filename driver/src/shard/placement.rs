//! Placing shards on an interface: which queues each shard reads, and which source port a
//! shard opens a connection from so that the replies come back to it.
//!
//! Owns the start-up decision ([`Steering::detect`]): with a readable Toeplitz key and
//! indirection table (a real multi-queue NIC), the owner of an active-open flow is the shard
//! whose queue the NIC hashes its replies to ([`SteeringMode::Rss`]); without (veth, virtio) the
//! same rule runs with our own key, and the shard that receives a reply hands it to the owner
//! ([`SteeringMode::HandOff`]). Either way every shard may use the whole ephemeral range and
//! [`ActiveOpener`] picks, per destination, a port whose flow it owns ([`FlowOwners`]): about
//! 1/N of the range per destination and shard.
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
use super::ownership::FlowOwners;
use super::steering::{read_rss, RssConfig};

/// The ephemeral range every shard opens connections from (Linux's default
/// `ip_local_port_range`). Listening ports must lie outside it (see [`super::ownership`]).
pub const EPHEMERAL_PORTS: (u16, u16) = (32768, 60999);

/// How replies to active opens reach the opening shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SteeringMode {
    /// One shard: nothing to steer.
    Single,
    /// The NIC's Toeplitz key and indirection table are known: source ports are chosen so
    /// replies hash to the opener's queue.
    Rss(RssConfig),
    /// RSS unknown (the reason is kept for the start-up line): source ports are chosen by our
    /// own hash, and replies that land on another shard are handed to the owner over the mesh.
    HandOff { reason: String },
}

/// Where every shard sits; built once, then split into per-shard parts.
#[derive(Debug, Clone)]
pub struct Steering {
    shards: usize,
    queues: u32,
    /// The owner rule; `None` with a single shard.
    owners: Option<FlowOwners>,
    mode: SteeringMode,
}

/// Why shards cannot be placed on an interface.
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    #[error("{shards} shards but the interface has {queues} receive queue(s): use at most {queues} cores, or add queues (`ethtool -L`, or `numrxqueues` for a veth)")]
    TooFewQueues { shards: usize, queues: u32 },
    #[error("no shards: the core list is empty")]
    NoShards,
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
    /// An RSS mode with an empty indirection table falls back to hand-off.
    pub fn new(shards: usize, queues: u32, mode: SteeringMode) -> Result<Self, PlacementError> {
        if shards == 0 {
            return Err(PlacementError::NoShards);
        }
        if shards > queues as usize {
            return Err(PlacementError::TooFewQueues { shards, queues });
        }
        if shards == 1 {
            return Ok(Steering { shards, queues, owners: None, mode: SteeringMode::Single });
        }
        let ports = EPHEMERAL_PORTS.0..=EPHEMERAL_PORTS.1;
        let (owners, mode) = match mode {
            SteeringMode::Rss(rss) => match FlowOwners::rss(&rss, shards, ports.clone()) {
                Some(owners) => (owners, SteeringMode::Rss(rss)),
                None => (
                    FlowOwners::software(shards, ports),
                    SteeringMode::HandOff { reason: "the RSS indirection table is empty".into() },
                ),
            },
            other => (FlowOwners::software(shards, ports), other),
        };
        Ok(Steering { shards, queues, owners: Some(owners), mode })
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

    /// The `EngineConfig::ephemeral_ports` of shard `shard`: the whole range for every shard
    /// (the opener, not the engine, decides which port a flow uses; see [`ActiveOpener`]).
    pub fn ephemeral_ports_of(&self, _shard: usize) -> (u16, u16) {
        EPHEMERAL_PORTS
    }

    /// The frame router of shard `shard`.
    pub fn router(&self, shard: usize) -> FlowRouter {
        FlowRouter::new(shard, self.owners.clone())
    }

    /// The active-open port chooser of shard `shard`.
    pub fn opener(&self, shard: usize) -> ActiveOpener {
        ActiveOpener { owners: self.owners.clone(), me: shard, next: EPHEMERAL_PORTS.0 }
    }
}

/// One shard's active opens: picks the source port.
#[derive(Debug, Clone)]
pub struct ActiveOpener {
    /// The owner rule; `None` with a single shard (any free port will do).
    owners: Option<FlowOwners>,
    /// This shard's index.
    me: usize,
    /// Where the next port search starts: ports are used round-robin, so the port tried first
    /// is the one whose last connection ended longest ago (most likely out of TIME-WAIT).
    next: u16,
}

/// How [`ActiveOpener::connect`] chose the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortChoice {
    /// A port whose flow this shard owns (its replies hash to this shard: by the NIC's hash
    /// with RSS, by ours with hand-off).
    Steered,
    /// A single shard: the engine picked any free ephemeral port.
    Any,
}

/// Ports the search may find in use (a connection or TIME-WAIT to the same destination) before
/// it gives up: ports are used round-robin, so many in a row means the shard's share is spent.
const IN_USE_ATTEMPTS: usize = 64;

impl ActiveOpener {
    /// Opens a connection to `remote` from a port whose flow this shard owns. A bounded search:
    /// at most the ephemeral range once (about N hashes per port found, N = shards), and at most
    /// 64 ports found busy. Fails with [`EngineError::NoEphemeralPorts`] when
    /// this shard's share of the ports for `remote` is used up.
    pub fn connect(
        &mut self,
        engine: &mut Engine,
        now: Instant,
        remote: (Ipv4Address, u16),
        opts: Option<SocketOptions>,
    ) -> Result<(ConnectionHandle, PortChoice), EngineError> {
        let Some(owners) = &self.owners else {
            return engine.connect(now, remote, None, opts).map(|h| (h, PortChoice::Any));
        };
        let local = Ipv4Addr::from(engine.config().addr.0);
        let remote_ip = Ipv4Addr::from(remote.0 .0);
        let ports = owners.ports();
        let (first, last) = (*ports.start(), *ports.end());
        let span = u32::from(last - first) + 1;
        let start = if ports.contains(&self.next) { u32::from(self.next - first) } else { 0 };
        let mut in_use = 0;
        for i in 0..span {
            let port = first + ((start + i) % span) as u16;
            if owners.owner(local, port, remote_ip, remote.1) != Some(self.me) {
                continue;
            }
            match engine.connect(now, remote, Some(port), opts) {
                Ok(handle) => {
                    self.next = if port >= last { first } else { port + 1 };
                    return Ok((handle, PortChoice::Steered));
                }
                Err(EngineError::AddressInUse) => {
                    in_use += 1;
                    if in_use >= IN_USE_ATTEMPTS {
                        break;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(EngineError::NoEphemeralPorts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::steering::RSS_KEY_LEN;

    #[test]
    fn queues_are_dealt_round_robin_and_every_shard_has_the_whole_port_range() {
        let s = Steering::new(2, 4, SteeringMode::HandOff { reason: "veth".into() }).unwrap();
        assert_eq!(s.queues_of(0), vec![0, 2]);
        assert_eq!(s.queues_of(1), vec![1, 3]);
        assert_eq!(s.ephemeral_ports_of(0), EPHEMERAL_PORTS);
        assert_eq!(s.ephemeral_ports_of(1), EPHEMERAL_PORTS);
        let empty = SteeringMode::Rss(RssConfig { key: vec![1; 40], indirection: vec![] });
        assert_eq!(Steering::new(2, 2, empty).unwrap().mode_name(), "hand-off");
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
            let remote_ip = Ipv4Addr::new(198, 18, 0, 1);
            assert_eq!(steering.router(0).owner_of(Ipv4Addr::from(ours.0), port, remote_ip, 7000), Some(2));
        }
    }
}
