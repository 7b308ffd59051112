//! The command line: clap definitions and their translation into each command's options.
//! Validation errors are single lines naming the flag and the expected form.

use crate::bypass::{parse_cidr, parse_xdp_mode, LinkOptions};
use crate::lab_cmd::{LabAction, LabArgs};
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use linerate_driver::afxdp::TxChecksum;
use std::net::Ipv4Addr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "linerate", version, about = "Kernel-bypass TCP/IPv4 stack: HTTP file server, client, lab")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, remove or inspect a netns lab (linerate ↔ Linux kernel over a veth pair).
    Lab {
        #[arg(value_parser = ["up", "down", "status"])]
        action: String,
        #[command(flatten)]
        args: LabFlags,
    },
    /// Serve files over HTTP/1.1 on the bypass stack (AF_XDP).
    Serve(ServeFlags),
    /// Download URLs over HTTP/1.1 on the bypass stack.
    Get(GetFlags),
    /// Upload a file with HTTP PUT over the bypass stack.
    Put(PutFlags),
    /// Show a running server's connections (like `ss -ti`) and counters (like `nstat`).
    Stats(StatsFlags),
    /// Build a lab and compare linerate with the kernel serving the same file to curl.
    Demo(DemoFlags),
}

#[derive(Debug, Args)]
pub struct LabFlags {
    #[arg(long, default_value = "lab")]
    pub name: String,
    #[arg(long, default_value_t = 1500)]
    pub mtu: u32,
    #[arg(long, default_value_t = 1)]
    pub queues: u32,
    /// Random loss on the kernel side, in percent (both directions).
    #[arg(long)]
    pub loss: Option<f64>,
    /// Rate limit of the kernel towards linerate, bits per second.
    #[arg(long)]
    pub rate: Option<u64>,
}

/// Flags shared by every command that attaches to an interface.
#[derive(Debug, Args)]
pub struct LinkFlags {
    /// Interface to attach to.
    #[arg(long)]
    pub iface: String,
    /// Our address, ADDR/PREFIX (the kernel must not also hold it).
    #[arg(long)]
    pub ip: String,
    /// Default gateway for destinations outside the prefix.
    #[arg(long)]
    pub gateway: Option<Ipv4Addr>,
    #[arg(long, default_value = "auto")]
    pub xdp_mode: String,
    /// Named network namespace to enter first (e.g. lr-lab-app).
    #[arg(long)]
    pub netns: Option<String>,
    /// Write every frame in and out to this pcap file.
    #[arg(long)]
    pub pcap: Option<PathBuf>,
    /// TCP checksums of sent frames: `software` (the engine computes them) or `offload` (left
    /// partial for the kernel or NIC to complete, through AF_XDP TX metadata; copy mode,
    /// Linux 6.8+, else software). Use `offload` only when the peer is not an XDP program on
    /// the far end of a veth (it would see the checksums uncompleted): a real NIC, or the
    /// kernel stack behind a veth.
    #[arg(long, default_value = "software", value_parser = ["software", "offload"])]
    pub tx_checksum: String,
}

#[derive(Debug, Args)]
pub struct ServeFlags {
    #[command(flatten)]
    pub link: LinkFlags,
    #[arg(long, default_value_t = 80)]
    pub port: u16,
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
    /// CPU list, e.g. 2 or 2,3 or 2-5: one shard (engine + NIC queues) per CPU.
    #[arg(long)]
    pub cores: Option<String>,
    /// CPU list for the file prefetch threads (disk reads, page locking, unmapping) [default:
    /// the CPUs not in --cores, unpinned if none is left].
    #[arg(long)]
    pub io_cores: Option<String>,
    /// Congestion control of accepted connections: cubic (RFC 9438), bbr (BBRv3, always
    /// paced) or newreno.
    #[arg(long, default_value = "cubic", value_parser = ["cubic", "bbr", "newreno"])]
    pub cc: String,
    /// BBR's response to random loss: `tolerate` counts as congestion only the loss beyond the
    /// path's background loss rate; `congestion` treats every loss as congestion, exactly as
    /// draft-ietf-ccwg-bbr (the better choice where many flows share a bottleneck and random
    /// loss is rare; see docs/PERFORMANCE.md).
    #[arg(long, default_value = "tolerate", value_parser = ["tolerate", "congestion"])]
    pub bbr_random_loss: String,
    /// Pacing of accepted connections: `on` spreads each window over the RTT (NewReno and CUBIC
    /// at cwnd/srtt x 2 in slow start, x 1.2 after, as Linux under the fq qdisc; evens out
    /// flows sharing a bottleneck); `off` sends as fast as the ACK clock allows. BBR always
    /// paces.
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    pub pacing: String,
    #[arg(long, default_value = "info", value_parser = ["error", "warn", "info", "debug"])]
    pub log_level: String,
    /// After SIGINT/SIGTERM, how long in-flight responses may take to finish (seconds).
    #[arg(long, default_value_t = 30)]
    pub drain_timeout: u64,
    /// SYN cookies: auto (only when the SYN queue is full), always, or off (evict the oldest
    /// half-open connection instead).
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "off"])]
    pub syncookies: String,
    /// Accept TCP Fast Open (RFC 7413): data in the SYN of clients holding our cookie.
    #[arg(long)]
    pub tfo: bool,
    /// Control socket for `linerate stats` [default: /run/linerate/IFACE-PORT.sock].
    #[arg(long)]
    pub control_socket: Option<PathBuf>,
    /// Largest PUT body accepted, in bytes (larger gets 413); 0 refuses uploads (405).
    #[arg(long, default_value_t = 1 << 30)]
    pub max_upload: u64,
    /// Seconds a request head may take from its first byte (slow-loris defence; then 408).
    #[arg(long, default_value_t = 10)]
    pub header_timeout: u64,
    /// Seconds without progress after which a connection is closed.
    #[arg(long, default_value_t = 60)]
    pub idle_timeout: u64,
}

impl ServeFlags {
    /// `--bbr-random-loss` as the socket option `bbr_tolerate_random_loss`.
    pub fn bbr_tolerate_random_loss(&self) -> bool {
        self.bbr_random_loss == "tolerate"
    }

    /// `--pacing` as the socket option `pacing`.
    pub fn pacing(&self) -> bool {
        self.pacing == "on"
    }

    /// The HTTP behaviour these flags ask for.
    pub fn http_config(&self) -> anyhow::Result<crate::http::HttpConfig> {
        use linerate_stack::time::Duration;
        if self.header_timeout == 0 || self.idle_timeout == 0 {
            bail!("--header-timeout and --idle-timeout must be at least 1 second");
        }
        Ok(crate::http::HttpConfig {
            allow_uploads: self.max_upload > 0,
            max_upload_bytes: self.max_upload,
            header_timeout: Duration::from_secs(self.header_timeout),
            idle_timeout: Duration::from_secs(self.idle_timeout),
            ..Default::default()
        })
    }
}

#[derive(Debug, Args)]
pub struct PutFlags {
    /// The local file to upload.
    pub file: PathBuf,
    /// Destination, http://IPv4[:port]/path.
    pub url: String,
    #[command(flatten)]
    pub link: LinkFlags,
}

#[derive(Debug, Args)]
pub struct StatsFlags {
    /// The server's control socket [default: the only one under /run/linerate].
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Redraw every --interval seconds until interrupted.
    #[arg(long)]
    pub watch: bool,
    /// One JSON document per report instead of the tables.
    #[arg(long)]
    pub json: bool,
    /// Seconds between reports with --watch.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
    /// With --watch, stop after this many reports.
    #[arg(long)]
    pub count: Option<u64>,
}

impl StatsFlags {
    pub fn to_options(&self) -> anyhow::Result<crate::control::client::StatsOptions> {
        if !(self.interval.is_finite() && self.interval >= 0.05) {
            bail!("--interval {}: expected seconds, at least 0.05", self.interval);
        }
        Ok(crate::control::client::StatsOptions {
            socket: self.socket.clone(),
            json: self.json,
            watch: self.watch,
            interval: std::time::Duration::from_secs_f64(self.interval),
            count: self.count,
        })
    }
}

#[derive(Debug, Args)]
pub struct GetFlags {
    /// One or more http://IPv4[:port]/path URLs.
    #[arg(required = true)]
    pub urls: Vec<String>,
    /// Output file (one URL) or directory (several URLs); default: the URL's file name.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Parallel ranged connections for one large file.
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    #[command(flatten)]
    pub link: LinkFlags,
}

#[derive(Debug, Args)]
pub struct DemoFlags {
    /// Size of the generated test file in MiB.
    #[arg(long, default_value_t = 64)]
    pub size_mib: u64,
}

impl LabFlags {
    pub fn to_args(&self) -> LabArgs {
        LabArgs {
            name: self.name.clone(),
            mtu: self.mtu,
            queues: self.queues,
            loss_percent: self.loss,
            rate_bits: self.rate,
        }
    }
}

pub fn lab_action(s: &str) -> LabAction {
    match s {
        "up" => LabAction::Up,
        "down" => LabAction::Down,
        _ => LabAction::Status,
    }
}

impl LinkFlags {
    pub fn to_options(&self) -> anyhow::Result<LinkOptions> {
        let (addr, prefix_len) = parse_cidr(&self.ip).context("--ip")?;
        Ok(LinkOptions {
            iface: self.iface.clone(),
            addr,
            prefix_len,
            gateway: self.gateway,
            xdp_mode: parse_xdp_mode(&self.xdp_mode)?,
            netns: self.netns.clone(),
            pcap: self.pcap.clone(),
            tx_checksum: match self.tx_checksum.as_str() {
                "offload" => TxChecksum::Offload,
                _ => TxChecksum::Software,
            },
        })
    }
}

/// Parses a CPU list: `2`, `2,3`, `2-5`, `0,4-6`.
pub fn parse_cores(s: &str) -> anyhow::Result<Vec<usize>> {
    parse_cpu_list("--cores", s)
}

/// Parses `--io-cores` (a CPU list like `--cores`).
pub fn parse_io_cores(s: &str) -> anyhow::Result<Vec<usize>> {
    parse_cpu_list("--io-cores", s)
}

fn parse_cpu_list(flag: &str, s: &str) -> anyhow::Result<Vec<usize>> {
    let mut cores = Vec::new();
    for part in s.split(',') {
        let bad = || format!("{flag} {s:?}: expected a list like 2 or 2,3 or 2-5");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().with_context(bad)?, b.parse().with_context(bad)?);
                if a > b || b - a > 1024 {
                    bail!("{}", bad());
                }
                cores.extend(a..=b);
            }
            None => cores.push(part.parse().with_context(bad)?),
        }
    }
    Ok(cores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_lists() {
        assert_eq!(parse_cores("2").unwrap(), vec![2]);
        assert_eq!(parse_cores("0,4-6").unwrap(), vec![0, 4, 5, 6]);
        assert!(parse_cores("3-1").is_err());
        assert!(parse_cores("x").is_err());
        assert_eq!(parse_io_cores("1,3").unwrap(), vec![1, 3]);
        assert!(parse_io_cores("1-").unwrap_err().to_string().starts_with("--io-cores"));
    }

    #[test]
    fn bbr_random_loss_flag() {
        let serve = |extra: &[&str]| {
            let base = ["linerate", "serve", "--iface", "veth0", "--ip", "198.18.0.2/24"];
            match Cli::try_parse_from(base.iter().chain(extra)).map(|c| c.command) {
                Ok(Command::Serve(f)) => Ok(f.bbr_tolerate_random_loss()),
                Ok(_) => unreachable!(),
                Err(e) => Err(e),
            }
        };
        assert!(serve(&[]).unwrap(), "tolerant by default");
        assert!(!serve(&["--bbr-random-loss", "congestion"]).unwrap());
        assert!(serve(&["--bbr-random-loss", "maybe"]).is_err());
    }

    #[test]
    fn pacing_flag() {
        let serve = |extra: &[&str]| {
            let base = ["linerate", "serve", "--iface", "veth0", "--ip", "198.18.0.2/24"];
            match Cli::try_parse_from(base.iter().chain(extra)).map(|c| c.command) {
                Ok(Command::Serve(f)) => Ok(f.pacing()),
                Ok(_) => unreachable!(),
                Err(e) => Err(e),
            }
        };
        assert!(serve(&[]).unwrap(), "paced by default");
        assert!(!serve(&["--pacing", "off"]).unwrap());
        assert!(serve(&["--pacing", "sometimes"]).is_err());
    }

    #[test]
    fn cidr() {
        assert_eq!(parse_cidr("198.18.0.2/24").unwrap(), (Ipv4Addr::new(198, 18, 0, 2), 24));
        assert!(parse_cidr("198.18.0.2").is_err());
        assert!(parse_cidr("198.18.0.2/33").is_err());
        assert!(parse_cidr("nope/24").is_err());
    }
}
