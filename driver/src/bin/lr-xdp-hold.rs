//! `lr-xdp-hold <netns> <ifname> <ipv4> <native|generic>`: attaches the linerate steering program
//! inside a network namespace, prints `attached <mode>`, and holds it until stdin closes.
//!
//! Exists so tests can prove the kernel detaches the program when its holder dies, however it
//! dies (the BPF link goes with the process's file descriptors).

use std::io::Read;
use std::net::Ipv4Addr;
use std::process::ExitCode;

use linerate_driver::afxdp::{XdpMode, XdpProgram};
use linerate_driver::lab::NetnsEnter;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [ns, ifname, addr, mode] = args.as_slice() else {
        eprintln!("usage: lr-xdp-hold <netns> <ifname> <ipv4> <native|generic>");
        return ExitCode::from(2);
    };
    let Ok(addr) = addr.parse::<Ipv4Addr>() else {
        eprintln!("lr-xdp-hold: {addr} is not an IPv4 address");
        return ExitCode::from(2);
    };
    let mode = if mode == "generic" { XdpMode::Generic } else { XdpMode::Native };
    let program = match NetnsEnter::enter(ns).map_err(|e| e.to_string()).and_then(|inside| {
        let program = XdpProgram::attach(ifname, addr, mode).map_err(|e| e.to_string());
        drop(inside);
        program
    }) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("lr-xdp-hold: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("attached {}", program.mode().as_str());
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    ExitCode::SUCCESS
}
