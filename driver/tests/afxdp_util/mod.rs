//! Shared helpers of the AF_XDP and lab tests: unique lab names, opening devices inside the app
//! namespace, waiting for frames, and a tiny hand-written ARP/ICMP responder.
//!
//! The responder is deliberately minimal (the real engine takes this over): it answers ARP
//! requests for our address and ICMP echo requests to it, and ignores everything else.

#![allow(dead_code)] // each test binary uses a different subset

pub mod echo;

use std::net::Ipv4Addr;
use std::os::fd::RawFd;

use linerate_driver::afxdp::{AfXdpConfig, AfXdpDevice, XdpMode, XdpProgram};
use linerate_driver::lab::Lab;
use linerate_stack::device::Device;
use linerate_stack::time::Instant;

/// A lab name no other test (or concurrent test run) uses.
pub fn unique(tag: &str) -> String {
    format!("{tag}-{}", std::process::id())
}

/// Attaches the steering program to the app end and opens a device per queue, from inside the
/// app namespace (the calling thread returns to its namespace afterwards).
pub fn open_app(lab: &Lab, mode: XdpMode, config: &AfXdpConfig) -> (XdpProgram, Vec<AfXdpDevice>) {
    let _inside = lab.enter_app().expect("enter app namespace");
    let program = XdpProgram::attach(lab.app_if(), lab.app_addr(), mode).expect("attach XDP program");
    let devices = AfXdpDevice::open_all(&program, config).expect("open AF_XDP devices");
    (program, devices)
}

/// Waits up to `timeout_ms` for any of `fds` to become readable (no sleeping: poll(2) returns as
/// soon as a frame arrives).
pub fn wait_readable(fds: &[RawFd], timeout_ms: i32) {
    let mut pfds: Vec<libc::pollfd> =
        fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    // SAFETY: `pfds` is a valid array of pollfd for the duration of the call.
    unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
}

/// Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from(chunk[0]) << 8
        };
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Builds the reply to `frame` if it is an ARP request for `our_ip` or an ICMP echo request to
/// it; `None` for anything else (or anything malformed).
pub fn reply_to(frame: &[u8], our_mac: [u8; 6], our_ip: Ipv4Addr) -> Option<Vec<u8>> {
    if frame.len() < 14 {
        return None;
    }
    match u16::from_be_bytes([frame[12], frame[13]]) {
        0x0806 => arp_reply(frame, our_mac, our_ip),
        0x0800 => icmp_echo_reply(frame, our_mac, our_ip),
        _ => None,
    }
}

fn arp_reply(frame: &[u8], our_mac: [u8; 6], our_ip: Ipv4Addr) -> Option<Vec<u8>> {
    let arp = frame.get(14..42)?;
    // Ethernet/IPv4 request (RFC 826) for our address.
    if arp[0..8] != [0, 1, 8, 0, 6, 4, 0, 1] || arp[24..28] != our_ip.octets() {
        return None;
    }
    let (sha, spa) = (&arp[8..14], &arp[14..18]);
    let mut out = Vec::with_capacity(42);
    out.extend_from_slice(sha);
    out.extend_from_slice(&our_mac);
    out.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 2]);
    out.extend_from_slice(&our_mac);
    out.extend_from_slice(&our_ip.octets());
    out.extend_from_slice(sha);
    out.extend_from_slice(spa);
    Some(out)
}

fn icmp_echo_reply(frame: &[u8], our_mac: [u8; 6], our_ip: Ipv4Addr) -> Option<Vec<u8>> {
    let ip = frame.get(14..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    if ip[0] >> 4 != 4
        || ihl < 20
        || total < ihl + 8
        || total > ip.len()
        || ip[9] != 1
        || ip[16..20] != our_ip.octets()
    {
        return None;
    }
    if ip[ihl] != 8 {
        return None; // not an echo request
    }
    let mut out = frame[..14 + total].to_vec();
    out.copy_within(6..12, 0);
    out[6..12].copy_from_slice(&our_mac);
    let ip = &mut out[14..];
    let src: [u8; 4] = ip[12..16].try_into().ok()?;
    ip[12..16].copy_from_slice(&our_ip.octets());
    ip[16..20].copy_from_slice(&src);
    ip[8] = 64;
    ip[10..12].fill(0);
    let sum = checksum(&ip[..ihl]);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let icmp = &mut ip[ihl..total];
    icmp[0] = 0;
    icmp[2..4].fill(0);
    let sum = checksum(icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    Some(out)
}

/// One responder pass over any device: answers what it can. Returns frames received.
pub fn respond_on<D: Device>(
    dev: &mut D,
    mac: [u8; 6],
    our_ip: Ipv4Addr,
    replies: &mut Vec<Vec<u8>>,
) -> usize {
    replies.clear();
    let received = dev.receive(Instant::ZERO, 64, |frame| {
        if let Some(r) = reply_to(frame, mac, our_ip) {
            replies.push(r);
        }
    });
    for r in replies.iter() {
        dev.transmit(Instant::ZERO, r.len(), |buf| buf.copy_from_slice(r)).expect("transmit a reply");
    }
    dev.flush(Instant::ZERO);
    received
}

/// One responder pass over every device: answers what it can. Returns frames received.
pub fn respond_once(devices: &mut [AfXdpDevice], our_ip: Ipv4Addr, replies: &mut Vec<Vec<u8>>) -> usize {
    devices
        .iter_mut()
        .map(|dev| {
            let mac = dev.mac();
            respond_on(dev, mac, our_ip, replies)
        })
        .sum()
}

/// `ping` for machines without the binary: sends `count` ICMP echo requests to `dst` from the
/// calling thread's network namespace through a raw socket (so the kernel resolves the neighbour
/// itself) and returns how many matching replies came back, waiting at most `timeout_ms` each.
pub fn kernel_ping(dst: Ipv4Addr, count: u16, timeout_ms: u64) -> u16 {
    // SAFETY: plain socket(2); checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::IPPROTO_ICMP) };
    assert!(fd >= 0, "raw ICMP socket: {}", std::io::Error::last_os_error());
    let ident = (std::process::id() as u16) ^ 0x5a5a;
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(dst.octets()) },
        sin_zero: [0; 8],
    };
    let mut answered = 0;
    for seq in 0..count {
        let mut req = vec![8u8, 0, 0, 0];
        req.extend_from_slice(&ident.to_be_bytes());
        req.extend_from_slice(&seq.to_be_bytes());
        req.extend_from_slice(b"linerate afxdp ping test payload");
        let sum = checksum(&req);
        req[2..4].copy_from_slice(&sum.to_be_bytes());
        // SAFETY: valid buffer and sockaddr_in of the sizes passed.
        let sent = unsafe {
            libc::sendto(fd, req.as_ptr().cast(), req.len(), 0, (&sin as *const libc::sockaddr_in).cast(), 16)
        };
        assert_eq!(sent, req.len() as isize, "sendto: {}", std::io::Error::last_os_error());
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(timeout_ms);
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            wait_readable(&[fd], left.as_millis() as i32 + 1);
            let mut buf = [0u8; 2048];
            // SAFETY: valid writable buffer.
            let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
            if n <= 0 {
                continue;
            }
            let pkt = &buf[..n as usize];
            let ihl = usize::from(pkt[0] & 0x0f) * 4;
            let Some(icmp) = pkt.get(ihl..ihl + 8) else { continue };
            let from_dst = pkt[12..16] == dst.octets();
            if from_dst
                && icmp[0] == 0
                && icmp[4..6] == ident.to_be_bytes()
                && icmp[6..8] == seq.to_be_bytes()
            {
                assert_eq!(checksum(&pkt[ihl..]), 0, "echo reply checksum");
                answered += 1;
                break;
            }
        }
    }
    // SAFETY: closing the descriptor we opened.
    unsafe { libc::close(fd) };
    answered
}
