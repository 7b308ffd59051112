//! [`ShardedLink`]: one interface split among N shards — the steering program, an AF_XDP
//! socket (with its own UMEM) on every queue, the queues dealt to the shards, and one engine
//! configuration per shard with its slice of the ephemeral ports.
//!
//! Owns the attachment for as long as the shards run (dropping it detaches the program). The
//! shards' parts ([`ShardParts`]) move into their threads; nothing here is touched afterwards.
//! Engines share one ISN secret (RFC 6528 numbering stays one function of the 4-tuple whichever
//! shard opens) and get their own flow key and seed.

use super::{afxdp_config, engine_config, random_secret, Capture, LinkOptions, Nic};
use anyhow::{bail, Context};
use linerate_driver::afxdp::{AfXdpDevice, XdpMode, XdpProgram};
use linerate_driver::lab::NetnsEnter;
use linerate_driver::shard::{Steering, SteeringMode};
use linerate_stack::engine::{Engine, EngineConfig};
use linerate_stack::time::Instant;
use std::path::{Path, PathBuf};

/// Connections (TIME_WAIT included) each shard's engine holds. A server closes first and so
/// keeps TIME_WAIT for 60 s: the engine's default 4,096 would cap a shard at ~68 new
/// connections per second sustained (and refuse SYNs once full). Slots cost a few hundred bytes
/// each until used, and TIME_WAIT connections hold no buffers.
pub const SERVER_MAX_CONNECTIONS: usize = 32_768;

/// What one shard gets: its engine and its queues.
#[derive(Debug)]
pub struct ShardParts {
    pub engine: Engine,
    pub nic: Nic,
    /// The receive queues in `nic`, for the start-up line.
    pub queues: Vec<u32>,
}

/// The interface as N shards see it.
#[derive(Debug)]
pub struct ShardedLink {
    steering: Steering,
    program: XdpProgram,
    // Keeps this thread in the namespace the sockets were opened in (dropped last).
    _netns: Option<NetnsEnter>,
}

/// `path` for shard `shard` of `shards`: unchanged for one shard, `NAME.<shard>` otherwise.
fn capture_path(path: &Path, shard: usize, shards: usize) -> PathBuf {
    if shards == 1 {
        return path.to_owned();
    }
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{shard}"));
    PathBuf::from(name)
}

impl ShardedLink {
    /// Attaches to `opts.iface`, opens every queue and places `shards` shards on them. Engines
    /// start at `now`; `unix_nanos_at_zero` stamps pcap captures (`Instant::ZERO`'s wall time).
    pub fn open(
        opts: &LinkOptions,
        shards: usize,
        now: Instant,
        unix_nanos_at_zero: u64,
    ) -> anyhow::Result<(ShardedLink, Vec<ShardParts>)> {
        let netns = match &opts.netns {
            Some(ns) => Some(NetnsEnter::enter(ns).with_context(|| format!("--netns {ns}"))?),
            None => None,
        };
        let config = afxdp_config(&opts.iface, opts.tx_checksum)?;
        let program = XdpProgram::attach(&opts.iface, opts.addr, opts.xdp_mode)
            .with_context(|| format!("--iface {}", opts.iface))?;
        let steering = Steering::detect(&opts.iface, shards, program.rx_queues())
            .with_context(|| format!("--cores for --iface {}", opts.iface))?;
        let queues = AfXdpDevice::open_all(&program, &config)?;
        if queues.is_empty() {
            bail!("interface {} reports no receive queues", opts.iface);
        }
        // One secret of each kind for every shard: a SYN cookie or Fast Open cookie issued by
        // one shard must validate on whichever shard the client's next segment reaches.
        let isn_secret = random_secret()?;
        let (syn_cookie_secret, fast_open_key) = (random_secret()?, random_secret()?);
        let mut dealt: Vec<Vec<AfXdpDevice>> = (0..shards).map(|_| Vec::new()).collect();
        for queue in queues {
            dealt[queue.queue() as usize % shards].push(queue);
        }
        let mut parts = Vec::with_capacity(shards);
        for (shard, queues) in dealt.into_iter().enumerate() {
            let mut cfg: EngineConfig = engine_config(opts, &queues[0], Some(isn_secret))?;
            cfg.ephemeral_ports = steering.ephemeral_ports_of(shard);
            cfg.max_connections = SERVER_MAX_CONNECTIONS;
            cfg.handshake.syn_cookie_secret = syn_cookie_secret;
            cfg.handshake.fast_open_key = fast_open_key;
            let capture = match &opts.pcap {
                Some(path) => {
                    let path = capture_path(path, shard, shards);
                    let capture = Capture::create(&path, unix_nanos_at_zero)
                        .with_context(|| format!("cannot create pcap file {}", path.display()))?;
                    Some(capture)
                }
                None => None,
            };
            let queue_ids = queues.iter().map(AfXdpDevice::queue).collect();
            parts.push(ShardParts {
                engine: Engine::new(cfg, now),
                nic: Nic::new(queues, capture),
                queues: queue_ids,
            });
        }
        Ok((ShardedLink { steering, program, _netns: netns }, parts))
    }

    pub fn steering(&self) -> &Steering {
        &self.steering
    }

    /// Why hand-off is in use, if it is (e.g. the device exposes no RSS key).
    pub fn hand_off_reason(&self) -> Option<&str> {
        match self.steering.mode() {
            SteeringMode::HandOff { reason } => Some(reason),
            _ => None,
        }
    }

    pub fn xdp_mode(&self) -> XdpMode {
        self.program.mode()
    }

    pub fn ifname(&self) -> &str {
        self.program.ifname()
    }

    pub fn rx_queues(&self) -> u32 {
        self.program.rx_queues()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_get_one_file_per_shard() {
        assert_eq!(capture_path(Path::new("x.pcap"), 0, 1), PathBuf::from("x.pcap"));
        assert_eq!(capture_path(Path::new("x.pcap"), 1, 2), PathBuf::from("x.pcap.1"));
    }
}
