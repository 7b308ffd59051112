//! The lab: the Linux kernel on the other end of a veth pair, in network namespaces of our own.
//!
//! Owns: two namespaces per lab, `lr-<name>-app` (where linerate runs; its kernel holds *no*
//! address, our stack owns [`APP_ADDR`]) and `lr-<name>-kern` (the kernel peer at
//! [`KERNEL_ADDR`]), joined by a veth pair [`APP_IF`] ↔ [`KERNEL_IF`] created directly inside
//! them, so labs with different names never collide. Optional impairments live on the kernel
//! side only: random loss (iptables `statistic` DROP, per direction) and a rate limit (tbf on
//! the kernel's egress, i.e. towards linerate).
//!
//! Promises: [`Lab::up`] is idempotent (a complete lab is re-tuned in place; a half-built one is
//! torn down and rebuilt); [`Lab::down`] removes everything even after a crash, since deleting
//! the namespaces deletes the veth pair and every rule inside; [`LabGuard`] runs `down` on drop.
//! The kernel end gets `ethtool -K tx off`: frames then leave it with full checksums (with
//! offload on, veth delivers TCP with only the pseudo-header sum, CHECKSUM_PARTIAL), and TSO goes
//! off with it, so the kernel sends MTU-sized segments rather than 64 KiB super-frames that no
//! UMEM frame could hold. Nothing else is needed for native XDP on our end: on 6.18 it receives
//! the kernel's frames with the peer's GRO off and no XDP program on the peer (checked by the
//! AF_XDP tests; the "peer needs XDP or GRO" rule applies to XDP_REDIRECT *into* a veth, which
//! we never do). IPv6 is off in both namespaces so no router solicitations or MLD reports wander
//! into measurements.
//!
//! Must not: use addresses outside 198.18.0.0/15 or touch namespaces it did not name.
//!
//! ```no_run
//! use linerate_driver::afxdp::{AfXdpConfig, AfXdpDevice, XdpMode, XdpProgram};
//! use linerate_driver::lab::{LabConfig, LabGuard};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let lab = LabGuard::up(LabConfig { queues: 2, ..LabConfig::new("demo") })?; // down on drop
//! let (program, devices) = {
//!     let _inside = lab.enter_app()?; // sockets and links are created in the app namespace
//!     let program = XdpProgram::attach(lab.app_if(), lab.app_addr(), XdpMode::Auto)?;
//!     let devices = AfXdpDevice::open_all(&program, &AfXdpConfig::default())?;
//!     (program, devices)
//! };
//! lab.exec_kern("curl", &["-s", "http://198.18.0.2/"])?; // the kernel as the peer
//! # drop((program, devices));
//! # Ok(())
//! # }
//! ```

mod napi;
mod netns;
mod placement;
pub mod traffic;

use std::net::Ipv4Addr;
use std::process::Command;

pub use napi::NapiInstance;
use netns::checked_output;
pub use netns::{netns_command, netns_run, NetnsEnter};
pub use placement::{EndPlacement, Placement};

/// The kernel peer's address (on [`KERNEL_IF`]).
pub const KERNEL_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// linerate's address (owned by our stack, never configured on [`APP_IF`]).
pub const APP_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub const PREFIX_LEN: u8 = 24;
/// The veth end in the app namespace.
pub const APP_IF: &str = "lr-app";
/// The veth end in the kernel namespace.
pub const KERNEL_IF: &str = "lr-kern";

/// Why a lab operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("invalid lab name {0:?}: use 1-24 characters from [a-z0-9-]")]
    InvalidName(String),
    #[error("invalid lab setting: {0}")]
    InvalidConfig(String),
    #[error("could not run `{command}` ({source}): install iproute2, iptables and ethtool")]
    ToolMissing { command: String, source: std::io::Error },
    #[error("`{command}` failed: {stderr}")]
    CommandFailed { command: String, stderr: String },
    #[error("cannot enter network namespace {ns} ({source}): is the lab up, and are we root?")]
    Netns { ns: String, source: std::io::Error },
}

/// Which way random loss applies, seen from linerate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Frames the kernel sends to linerate.
    ToApp,
    /// Frames linerate sends to the kernel.
    ToKernel,
    Both,
}

/// Random loss on the kernel side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Loss {
    /// Drop probability per packet, in (0, 1).
    pub probability: f64,
    pub direction: Direction,
}

/// A token-bucket limit on what the kernel sends to linerate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub bits_per_sec: u64,
    pub burst_bytes: u32,
    /// Longest a packet may wait in the bucket's queue before being dropped.
    pub max_queue_ms: u32,
}

/// What to build.
#[derive(Debug, Clone, PartialEq)]
pub struct LabConfig {
    /// Short name; namespaces are `lr-<name>-app` and `lr-<name>-kern`.
    pub name: String,
    pub mtu: u32,
    /// Queues per veth end (`numtxqueues`/`numrxqueues`).
    pub queues: u32,
    pub loss: Option<Loss>,
    pub rate: Option<RateLimit>,
    /// Which core does each end's receive work (see [`Placement`]).
    pub placement: Placement,
}

impl LabConfig {
    /// A plain lab: MTU 1500, one queue, no impairment, veth's own placement of receive work.
    pub fn new(name: &str) -> Self {
        LabConfig {
            name: name.to_owned(),
            mtu: 1500,
            queues: 1,
            loss: None,
            rate: None,
            placement: Placement::SenderCore,
        }
    }

    fn validate(&self) -> Result<(), LabError> {
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if self.name.is_empty() || self.name.len() > 24 || !self.name.chars().all(ok_char) {
            return Err(LabError::InvalidName(self.name.clone()));
        }
        if !(68..=9000).contains(&self.mtu) {
            return Err(LabError::InvalidConfig(format!("MTU {} is outside 68..=9000", self.mtu)));
        }
        if !(1..=64).contains(&self.queues) {
            return Err(LabError::InvalidConfig(format!("{} queues is outside 1..=64", self.queues)));
        }
        if let Some(loss) = self.loss {
            if !(loss.probability > 0.0 && loss.probability < 1.0) {
                return Err(LabError::InvalidConfig(format!("loss {} is outside (0, 1)", loss.probability)));
            }
        }
        self.placement.validate()?;
        if let Some(rate) = self.rate {
            if rate.bits_per_sec < 8_000 || rate.burst_bytes < self.mtu + 14 {
                return Err(LabError::InvalidConfig(
                    "rate limit needs >= 8 kbit/s and a burst >= one frame".into(),
                ));
            }
        }
        Ok(())
    }
}

/// What exists of a lab right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabStatus {
    pub app_ns: bool,
    pub kern_ns: bool,
    /// Both veth ends exist and are up.
    pub link_up: bool,
    /// An XDP program is attached to the app end.
    pub app_xdp: bool,
    /// An XDP program is attached to the kernel end.
    pub kern_xdp: bool,
}

impl LabStatus {
    pub fn complete(&self) -> bool {
        self.app_ns && self.kern_ns && self.link_up
    }
    pub fn absent(&self) -> bool {
        !self.app_ns && !self.kern_ns
    }
}

impl std::fmt::Display for LabStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let yes = |b: bool| if b { "yes" } else { "no" };
        let state = if self.complete() {
            "up"
        } else if self.absent() {
            "down"
        } else {
            "broken (run `up` to repair or `down` to remove)"
        };
        write!(
            f,
            "{state}: app namespace {}, kernel namespace {}, link up {}, XDP on app end {}, XDP on kernel end {}",
            yes(self.app_ns),
            yes(self.kern_ns),
            yes(self.link_up),
            yes(self.app_xdp),
            yes(self.kern_xdp)
        )
    }
}

/// A lab, identified by its configuration. Creating the value changes nothing; call
/// [`Lab::up`] (or use [`LabGuard::up`]).
#[derive(Debug, Clone)]
pub struct Lab {
    config: LabConfig,
    app_ns: String,
    kern_ns: String,
}

impl Lab {
    pub fn new(config: LabConfig) -> Result<Lab, LabError> {
        config.validate()?;
        let app_ns = format!("lr-{}-app", config.name);
        let kern_ns = format!("lr-{}-kern", config.name);
        Ok(Lab { config, app_ns, kern_ns })
    }

    pub fn config(&self) -> &LabConfig {
        &self.config
    }
    pub fn app_ns(&self) -> &str {
        &self.app_ns
    }
    pub fn kern_ns(&self) -> &str {
        &self.kern_ns
    }
    pub fn app_if(&self) -> &'static str {
        APP_IF
    }
    pub fn kern_if(&self) -> &'static str {
        KERNEL_IF
    }
    pub fn app_addr(&self) -> Ipv4Addr {
        APP_ADDR
    }
    pub fn kern_addr(&self) -> Ipv4Addr {
        KERNEL_ADDR
    }

    /// Builds the lab, or re-applies the impairments of a complete one. Idempotent.
    pub fn up(&self) -> Result<(), LabError> {
        let status = self.status()?;
        if !status.complete() {
            if !status.absent() {
                self.down()?;
            }
            self.create()?;
        }
        self.apply_impairments()?;
        self.apply_placement()
    }

    /// (Re-)applies [`LabConfig::placement`] to both ends: RPS masks, GRO and threaded NAPI with
    /// each NAPI thread pinned to its end's core. Idempotent; [`Lab::up`] calls it.
    pub fn apply_placement(&self) -> Result<(), LabError> {
        self.apply_placement_as(self.config.placement)
    }

    /// Applies `placement` instead of the configured one, for a while (the configuration is
    /// unchanged; [`Lab::apply_placement`] goes back to it).
    pub fn apply_placement_as(&self, placement: Placement) -> Result<(), LabError> {
        placement.validate()?;
        for end in self.ends() {
            placement::apply(placement, &end, self.config.queues)?;
        }
        Ok(())
    }

    /// What the kernel holds for the placement, app end first.
    pub fn placement_state(&self) -> Result<[EndPlacement; 2], LabError> {
        let [app, kern] = self.ends();
        let q = self.config.queues;
        Ok([placement::read_back(&app, q)?, placement::read_back(&kern, q)?])
    }

    /// The NAPI instances of the app end (`app_side`) or the kernel end, with their threads in
    /// threaded mode. One netlink dump; spawns nothing.
    pub fn napi_instances(&self, app_side: bool) -> Result<Vec<NapiInstance>, LabError> {
        let [app, kern] = self.ends();
        placement::napi_of(if app_side { &app } else { &kern })
    }

    fn ends(&self) -> [placement::End<'_>; 2] {
        [
            placement::End {
                ns: &self.app_ns,
                ifname: APP_IF,
                app_side: true,
                peer_ns: &self.kern_ns,
                peer_if: KERNEL_IF,
            },
            placement::End {
                ns: &self.kern_ns,
                ifname: KERNEL_IF,
                app_side: false,
                peer_ns: &self.app_ns,
                peer_if: APP_IF,
            },
        ]
    }

    /// Removes both namespaces (and with them the veth pair and every rule). Succeeds when
    /// nothing is left, including when nothing was there.
    pub fn down(&self) -> Result<(), LabError> {
        for ns in [&self.app_ns, &self.kern_ns] {
            if namespace_exists(ns)? {
                ip(&["netns", "del", ns])?;
            }
        }
        Ok(())
    }

    pub fn status(&self) -> Result<LabStatus, LabError> {
        let app_ns = namespace_exists(&self.app_ns)?;
        let kern_ns = namespace_exists(&self.kern_ns)?;
        let link = |ns: &str, dev: &str| -> Option<String> {
            let out = Command::new("ip").args(["-n", ns, "-d", "link", "show", "dev", dev]).output().ok()?;
            out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let app = if app_ns { link(&self.app_ns, APP_IF) } else { None };
        let kern = if kern_ns { link(&self.kern_ns, KERNEL_IF) } else { None };
        let is_up = |l: &Option<String>| l.as_deref().is_some_and(|s| s.contains(",UP") || s.contains("<UP"));
        let has_xdp = |l: &Option<String>| l.as_deref().is_some_and(|s| s.contains("prog/xdp"));
        Ok(LabStatus {
            app_ns,
            kern_ns,
            link_up: is_up(&app) && is_up(&kern),
            app_xdp: has_xdp(&app),
            kern_xdp: has_xdp(&kern),
        })
    }

    /// Runs `program args...` in the kernel namespace; returns stdout.
    pub fn exec_kern(&self, program: &str, args: &[&str]) -> Result<String, LabError> {
        netns_run(&self.kern_ns, program, args)
    }

    /// Runs `program args...` in the app namespace; returns stdout.
    pub fn exec_app(&self, program: &str, args: &[&str]) -> Result<String, LabError> {
        netns_run(&self.app_ns, program, args)
    }

    /// Moves the calling thread into the app namespace (to open AF_XDP sockets there).
    pub fn enter_app(&self) -> Result<NetnsEnter, LabError> {
        NetnsEnter::enter(&self.app_ns)
    }

    /// Moves the calling thread into the kernel namespace.
    pub fn enter_kern(&self) -> Result<NetnsEnter, LabError> {
        NetnsEnter::enter(&self.kern_ns)
    }

    fn create(&self) -> Result<(), LabError> {
        let (app, kern) = (self.app_ns.as_str(), self.kern_ns.as_str());
        ip(&["netns", "add", app])?;
        ip(&["netns", "add", kern])?;
        let q = self.config.queues.to_string();
        let mtu = self.config.mtu.to_string();
        #[rustfmt::skip]
        ip(&[
            "link", "add", "name", APP_IF, "netns", app, "numtxqueues", &q, "numrxqueues", &q,
            "type", "veth", "peer", "name", KERNEL_IF, "netns", kern, "numtxqueues", &q, "numrxqueues", &q,
        ])?;
        for (ns, dev) in [(app, APP_IF), (kern, KERNEL_IF)] {
            let sysctl = ["-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"];
            netns_run(ns, "sysctl", &sysctl)?;
            ip(&["-n", ns, "link", "set", "dev", "lo", "up"])?;
            ip(&["-n", ns, "link", "set", "dev", dev, "mtu", &mtu, "up"])?;
        }
        let cidr = format!("{KERNEL_ADDR}/{PREFIX_LEN}");
        ip(&["-n", kern, "addr", "add", &cidr, "dev", KERNEL_IF])?;
        // Full checksums from the kernel, and (TSO goes off too) MTU-sized TCP segments.
        netns_run(kern, "ethtool", &["-K", KERNEL_IF, "tx", "off"])?;
        Ok(())
    }

    fn apply_impairments(&self) -> Result<(), LabError> {
        let kern = self.kern_ns.as_str();
        netns_run(kern, "iptables", &["-F", "INPUT"])?;
        netns_run(kern, "iptables", &["-F", "OUTPUT"])?;
        if let Some(loss) = self.config.loss {
            let p = format!("{}", loss.probability);
            let rule = |chain: &str, dir: &str| {
                #[rustfmt::skip]
                let args = ["-A", chain, dir, KERNEL_IF, "-m", "statistic", "--mode", "random",
                            "--probability", &p, "-j", "DROP"];
                netns_run(kern, "iptables", &args).map(drop)
            };
            if matches!(loss.direction, Direction::ToKernel | Direction::Both) {
                rule("INPUT", "-i")?;
            }
            if matches!(loss.direction, Direction::ToApp | Direction::Both) {
                rule("OUTPUT", "-o")?;
            }
        }
        match self.config.rate {
            Some(rate) => {
                let (r, b, l) = (
                    format!("{}bit", rate.bits_per_sec),
                    rate.burst_bytes.to_string(),
                    format!("{}ms", rate.max_queue_ms),
                );
                #[rustfmt::skip]
                ip_tc(kern, &["qdisc", "replace", "dev", KERNEL_IF, "root", "tbf", "rate", &r, "burst", &b, "latency", &l])?;
            }
            None => {
                // Back to the default qdisc; "no qdisc to delete" is fine.
                let _ = ip_tc(kern, &["qdisc", "del", "dev", KERNEL_IF, "root"]);
            }
        }
        Ok(())
    }
}

/// A lab that goes down when this guard drops (also on panic), for tests and benches.
#[derive(Debug)]
pub struct LabGuard {
    lab: Lab,
}

impl LabGuard {
    /// Builds the lab and returns the guard that will remove it.
    pub fn up(config: LabConfig) -> Result<LabGuard, LabError> {
        let lab = Lab::new(config)?;
        let guard = LabGuard { lab };
        guard.lab.up()?;
        Ok(guard)
    }
}

impl std::ops::Deref for LabGuard {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.lab
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        if let Err(e) = self.lab.down() {
            eprintln!("lab {}: cleanup failed: {e}", self.lab.config.name);
        }
    }
}

fn ip(args: &[&str]) -> Result<String, LabError> {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    checked_output(cmd, format!("ip {}", args.join(" ")))
}

fn ip_tc(ns: &str, args: &[&str]) -> Result<String, LabError> {
    netns_run(ns, "tc", args)
}

fn namespace_exists(ns: &str) -> Result<bool, LabError> {
    Ok(std::path::Path::new("/run/netns").join(ns).exists())
}
