//! The command line: clap definitions and their translation into each command's options.
//! Validation errors are single lines naming the flag and the expected form.

use crate::bypass::{parse_cidr, parse_xdp_mode, LinkOptions};
use crate::lab_cmd::{LabAction, LabArgs};
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
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
}

#[derive(Debug, Args)]
pub struct ServeFlags {
    #[command(flatten)]
    pub link: LinkFlags,
    #[arg(long, default_value_t = 80)]
    pub port: u16,
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
    /// CPU list, e.g. 2 or 2,3 or 2-5 (one shard for now, on the first).
    #[arg(long)]
    pub cores: Option<String>,
    /// Congestion control of accepted connections: cubic (RFC 9438), bbr (BBRv3, always
    /// paced) or newreno.
    #[arg(long, default_value = "cubic", value_parser = ["cubic", "bbr", "newreno"])]
    pub cc: String,
    #[arg(long, default_value = "info", value_parser = ["error", "warn", "info", "debug"])]
    pub log_level: String,
    /// After SIGINT/SIGTERM, how long in-flight responses may take to finish (seconds).
    #[arg(long, default_value_t = 30)]
    pub drain_timeout: u64,
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
        })
    }
}

/// Parses a CPU list: `2`, `2,3`, `2-5`, `0,4-6`.
pub fn parse_cores(s: &str) -> anyhow::Result<Vec<usize>> {
    let mut cores = Vec::new();
    for part in s.split(',') {
        let bad = || format!("--cores {s:?}: expected a list like 2 or 2,3 or 2-5");
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
    }

    #[test]
    fn cidr() {
        assert_eq!(parse_cidr("198.18.0.2/24").unwrap(), (Ipv4Addr::new(198, 18, 0, 2), 24));
        assert!(parse_cidr("198.18.0.2").is_err());
        assert!(parse_cidr("198.18.0.2/33").is_err());
        assert!(parse_cidr("nope/24").is_err());
    }
}
