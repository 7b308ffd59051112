//! The kernel-bypass data path shared by `serve` and `get`: enter the namespace, attach the XDP
//! steering program for our address, open an AF_XDP socket on every queue, and build one engine
//! over them ([`Bypass`], the client's single loop) or one engine per shard ([`ShardedLink`],
//! the server's shards, run by `linerate_driver::shard`).
//!
//! Owns the [`Bypass`] value (program, queues, engine, clock) and the driver half of the
//! run-to-completion loop: receive a burst, fire due timers, transmit a burst, and sleep in
//! `poll(2)` until the next frame or engine deadline when there is nothing to do. The
//! application half (what to do with events) belongs to the caller. Errors are single lines
//! that say what to fix (privilege, interface, address).

pub mod clock;
pub mod nic;
pub mod shards;

pub use clock::Clock;
pub use nic::{Capture, Nic};
pub use shards::{ShardParts, ShardedLink};

use anyhow::{bail, Context};
use linerate_driver::afxdp::{interface_mtu, AfXdpConfig, AfXdpDevice, TxChecksum, XdpMode, XdpProgram};
use linerate_driver::lab::NetnsEnter;
use linerate_stack::engine::{Engine, EngineConfig};
use linerate_stack::time::{Duration, Instant};
use linerate_stack::wire::{EthernetAddress, Ipv4Address};
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Frames taken from the queues per loop iteration.
const RX_BUDGET: usize = 256;

/// Where and how to attach.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    pub iface: String,
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
    pub xdp_mode: XdpMode,
    /// Named network namespace (`/run/netns/NAME`) to enter first.
    pub netns: Option<String>,
    pub pcap: Option<PathBuf>,
    /// How TCP checksums of sent frames are completed (`--tx-checksum`).
    pub tx_checksum: TxChecksum,
}

/// Parses `A.B.C.D/PREFIX`.
pub fn parse_cidr(s: &str) -> anyhow::Result<(Ipv4Addr, u8)> {
    let Some((addr, prefix)) = s.split_once('/') else {
        bail!("address {s:?} needs a prefix length, e.g. 198.18.0.2/24");
    };
    let addr: Ipv4Addr = addr
        .parse()
        .with_context(|| format!("{addr:?} is not an IPv4 address (expected e.g. 198.18.0.2/24)"))?;
    let prefix: u8 = match prefix.parse() {
        Ok(p) if (1..=32).contains(&p) => p,
        _ => bail!("prefix length {prefix:?} must be a number from 1 to 32"),
    };
    if addr.is_unspecified() || addr.is_multicast() || addr.is_broadcast() {
        bail!("{addr} is not a unicast address");
    }
    Ok((addr, prefix))
}

/// Parses `auto|native|generic`.
pub fn parse_xdp_mode(s: &str) -> anyhow::Result<XdpMode> {
    Ok(match s {
        "auto" => XdpMode::Auto,
        "native" => XdpMode::Native,
        "generic" => XdpMode::Generic,
        _ => bail!("--xdp-mode {s:?} must be auto, native or generic"),
    })
}

/// The AF_XDP configuration for `iface` (call inside its namespace): UMEM frames sized by the
/// interface's MTU (2,048 bytes up to MTU 1,778, 4,096 up to 3,826, multi-buffer slots of up to
/// 16 KiB above: MTU 9000 works), so the engine's MSS follows the MTU. An MTU no frame carries
/// is refused here, before anything is attached. Transmit checksums as `tx_checksum` asks.
pub(crate) fn afxdp_config(iface: &str, tx_checksum: TxChecksum) -> anyhow::Result<AfXdpConfig> {
    let mtu = interface_mtu(iface).with_context(|| format!("--iface {iface}"))?;
    let config = AfXdpConfig { tx_checksum, ..AfXdpConfig::for_mtu(mtu) };
    config.validate(mtu).with_context(|| {
        format!(
            "--iface {iface} has MTU {mtu}, which linerate cannot use (fix: `ip link set dev {iface} mtu {}`)",
            linerate_driver::afxdp::MAX_MTU
        )
    })?;
    Ok(config)
}

/// Fills `buf` from the kernel's random source (engine secrets, seed).
fn os_random(buf: &mut [u8]) -> anyhow::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: writes at most `rest.len()` bytes into `rest`.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            return Err(std::io::Error::last_os_error()).context("getrandom");
        }
        filled += n as usize;
    }
    Ok(())
}

/// The engine configuration for a link whose first queue is `queue`: our address, MAC, MTU,
/// fresh random secrets and seed. `isn_secret` is given when several engines (shards) must
/// number connections from one RFC 6528 secret.
pub(crate) fn engine_config(
    opts: &LinkOptions,
    queue: &AfXdpDevice,
    isn_secret: Option<[u8; 16]>,
) -> anyhow::Result<EngineConfig> {
    let mac = EthernetAddress(queue.mac());
    let mtu = {
        use linerate_stack::device::Device;
        queue.capabilities().mtu
    };
    let mut secret = [0u8; 40];
    os_random(&mut secret)?;
    let seed = u64::from_le_bytes(secret[32..].try_into().expect("8 bytes"));
    let mut cfg = EngineConfig::new(Ipv4Address(opts.addr.octets()), opts.prefix_len, mac, seed);
    cfg.isn_secret = isn_secret.unwrap_or_else(|| secret[..16].try_into().expect("16 bytes"));
    cfg.flow_key.copy_from_slice(&secret[16..32]);
    cfg.gateway = opts.gateway.map(|g| Ipv4Address(g.octets()));
    cfg.mtu = mtu;
    Ok(cfg)
}

/// Fresh random bytes for a secret shared by every shard's engine.
pub(crate) fn random_secret() -> anyhow::Result<[u8; 16]> {
    let mut secret = [0u8; 16];
    os_random(&mut secret)?;
    Ok(secret)
}

/// A running attachment: the steering program, the queues and the engine over them.
#[derive(Debug)]
pub struct Bypass {
    pub engine: Engine,
    pub nic: Nic,
    pub clock: Clock,
    program: XdpProgram,
    // Keeps this thread in the namespace the sockets were opened in (dropped last).
    _netns: Option<NetnsEnter>,
}

impl Bypass {
    /// Enters the namespace, attaches and opens every queue.
    pub fn open(opts: &LinkOptions) -> anyhow::Result<Bypass> {
        let netns = match &opts.netns {
            Some(ns) => Some(NetnsEnter::enter(ns).with_context(|| format!("--netns {ns}"))?),
            None => None,
        };
        let config = afxdp_config(&opts.iface, opts.tx_checksum)?;
        let program = XdpProgram::attach(&opts.iface, opts.addr, opts.xdp_mode)
            .with_context(|| format!("--iface {}", opts.iface))?;
        let queues = AfXdpDevice::open_all(&program, &config)?;
        if queues.is_empty() {
            bail!("interface {} reports no receive queues", opts.iface);
        }
        let clock = Clock::new();
        let capture = match &opts.pcap {
            Some(path) => Some(
                Capture::create(path, clock.unix_nanos_at_zero())
                    .with_context(|| format!("cannot create pcap file {}", path.display()))?,
            ),
            None => None,
        };
        let cfg = engine_config(opts, &queues[0], None)?;
        let engine = Engine::new(cfg, clock.now());
        Ok(Bypass { engine, nic: Nic::new(queues, capture), clock, program, _netns: netns })
    }

    /// The mode the XDP program runs in.
    pub fn xdp_mode(&self) -> XdpMode {
        self.program.mode()
    }

    pub fn ifname(&self) -> &str {
        self.program.ifname()
    }

    /// Receives a burst and fires due timers; returns frames received.
    pub fn receive(&mut self, now: Instant) -> usize {
        let n = self.engine.receive_from(now, &mut self.nic, RX_BUDGET);
        if self.engine.next_timeout().is_some_and(|t| t <= now) {
            self.engine.handle_timeout(now);
        }
        n
    }

    /// Transmits everything due; returns frames queued.
    pub fn transmit(&mut self, now: Instant) -> usize {
        self.engine.poll_transmit(now, &mut self.nic)
    }

    /// Sleeps until a frame arrives, the engine's next deadline, or `app_deadline`, whichever
    /// comes first; returns at once if the engine still has output to send.
    pub fn wait(&mut self, now: Instant, app_deadline: Option<Instant>) {
        if self.engine.has_pending_output() {
            return;
        }
        let deadline = match (self.engine.next_timeout(), app_deadline) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(now + Duration::from_millis(100)),
        };
        if deadline > now {
            // Round up so a sub-millisecond deadline does not turn into a busy loop of 0 ms polls.
            let d = deadline.saturating_duration_since(now);
            self.nic.wait(Duration::from_millis(d.as_millis() + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linerate_driver::lab::{LabConfig, LabGuard};
    use linerate_stack::device::Device;

    fn options(lab: &LabGuard) -> LinkOptions {
        LinkOptions {
            iface: lab.app_if().to_owned(),
            addr: lab.app_addr(),
            prefix_len: linerate_driver::lab::PREFIX_LEN,
            gateway: None,
            xdp_mode: XdpMode::Auto,
            netns: Some(lab.app_ns().to_owned()),
            pcap: None,
            tx_checksum: TxChecksum::Software,
        }
    }

    /// Needs root (CI runs as root): a jumbo lab, multi-buffer frames.
    #[test]
    fn frames_follow_the_interface_mtu() {
        let name = format!("bmtu-{}", std::process::id());
        let lab = LabGuard::up(LabConfig { mtu: 9000, ..LabConfig::new(&name) }).expect("lab up");
        let bypass = Bypass::open(&options(&lab)).expect("open at MTU 9000");
        assert_eq!(bypass.nic.capabilities().mtu, 9000);
        assert_eq!(bypass.xdp_mode(), XdpMode::Native, "the frags-aware program attaches natively");
    }

    #[test]
    fn an_mtu_no_frame_carries_is_refused_with_the_fix() {
        let name = format!("bbig-{}", std::process::id());
        let lab = LabGuard::up(LabConfig::new(&name)).expect("lab up");
        // veth takes MTUs up to 65,535; the lab itself stops at 9000.
        lab.exec_app("ip", &["link", "set", "dev", lab.app_if(), "mtu", "20000"]).expect("set MTU");
        let err = ShardedLink::open(&options(&lab), 1, Instant::ZERO, 0).expect_err("MTU 20000");
        let text = format!("{err:#}");
        assert!(text.contains("has MTU 20000"), "{text}");
        assert!(text.contains("mtu 16370"), "{text}");
    }
}
