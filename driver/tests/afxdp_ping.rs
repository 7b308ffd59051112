//! ARP and ping through AF_XDP: the kernel namespace pings our address with no static neighbour,
//! and either the real engine (`linerate_stack::Engine`) or a minimal responder on
//! [`AfXdpDevice`] answers. Traffic to other addresses must still reach the app namespace's
//! kernel (the steering program passes it). Needs root.

mod afxdp_util;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use std::net::Ipv4Addr;

use afxdp_util::{kernel_ping, open_app, respond_once, unique, wait_readable};
use linerate_driver::afxdp::{AfXdpConfig, AfXdpDevice, XdpMode};
use linerate_driver::lab::{LabConfig, LabGuard};
use linerate_stack::device::Device;

fn ping_through(mode: XdpMode, queues: u32, tag: &str) {
    let lab = LabGuard::up(LabConfig { queues, ..LabConfig::new(&unique(tag)) }).expect("lab up");
    let (program, devices) = open_app(&lab, mode, &AfXdpConfig::default());
    assert_eq!(devices.len(), queues as usize);
    if mode != XdpMode::Auto {
        assert_eq!(program.mode(), mode);
    }
    // A second address on the app namespace's own kernel: its traffic must pass the program.
    lab.exec_app("ip", &["addr", "add", "198.18.0.3/24", "dev", lab.app_if()]).expect("add kernel address");

    let stop = Arc::new(AtomicBool::new(false));
    let responder = {
        let stop = Arc::clone(&stop);
        let addr = lab.app_addr();
        thread::spawn(move || -> Vec<AfXdpDevice> {
            let mut devices = devices;
            let fds: Vec<_> = devices.iter().map(|d| d.raw_fd()).collect();
            let mut replies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if respond_once(&mut devices, addr, &mut replies) == 0 {
                    wait_readable(&fds, 20);
                }
            }
            devices
        })
    };
    let (ours, kernels) = {
        let _inside = lab.enter_kern().expect("enter kernel namespace");
        (kernel_ping(lab.app_addr(), 3, 2000), kernel_ping(Ipv4Addr::new(198, 18, 0, 3), 2, 2000))
    };
    let neighbour = lab.exec_kern("ip", &["neigh", "show", "198.18.0.2"]).unwrap_or_default();
    stop.store(true, Ordering::Relaxed);
    let devices = responder.join().expect("responder thread");

    assert_eq!(ours, 3, "echo replies from 198.18.0.2 (answered through AF_XDP)");
    assert_eq!(kernels, 2, "echo replies from 198.18.0.3 (answered by the app namespace's kernel)");
    // The neighbour entry was learnt from our ARP reply: our MAC, not a static entry.
    let mac = devices[0].mac();
    let mac_text = mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    assert!(neighbour.contains(&mac_text) && !neighbour.contains("PERMANENT"), "{neighbour}");
    let received: u64 = devices.iter().map(|d| d.stats().rx_frames).sum();
    assert!(received >= 4, "3 echo requests and at least one ARP request, got {received}");
    for d in &devices {
        d.check_frame_accounting().expect("frame accounting");
        assert!(!d.zero_copy(), "veth has no zero-copy AF_XDP");
    }
}

#[test]
fn ping_native_single_queue() {
    ping_through(XdpMode::Native, 1, "pn");
}

#[test]
fn ping_generic_single_queue() {
    ping_through(XdpMode::Generic, 1, "pg");
}

#[test]
fn ping_native_multi_queue() {
    ping_through(XdpMode::Native, 2, "pm");
}

/// The real engine answers: the kernel resolves 198.18.0.2 by ARP (the engine's reply) and its
/// echo requests come back from the engine's ICMP path, with no static neighbour anywhere.
fn ping_the_engine(mode: XdpMode, tag: &str) {
    use linerate_stack::engine::{Engine, EngineConfig};
    use linerate_stack::wire::{EthernetAddress, Ipv4Address};
    let lab = LabGuard::up(LabConfig::new(&unique(tag))).expect("lab up");
    let (_program, devices) = open_app(&lab, mode, &AfXdpConfig::default());
    let stop = Arc::new(AtomicBool::new(false));
    let engine = {
        let stop = Arc::clone(&stop);
        let addr = Ipv4Address(lab.app_addr().octets());
        thread::spawn(move || {
            let mut dev = devices.into_iter().next().expect("one queue");
            let start = std::time::Instant::now();
            let now =
                || linerate_stack::time::Instant::from_nanos(start.elapsed().as_nanos() as u64 + 1_000_000);
            let mut e = Engine::new(EngineConfig::new(addr, 24, EthernetAddress(dev.mac()), 6), now());
            while !stop.load(Ordering::Relaxed) {
                e.receive_from(now(), &mut dev, 64);
                e.handle_timeout(now());
                e.poll_transmit(now(), &mut dev);
                wait_readable(&[dev.raw_fd()], 5);
            }
            (e, dev)
        })
    };
    let answered = {
        let _inside = lab.enter_kern().expect("enter kernel namespace");
        kernel_ping(lab.app_addr(), 5, 2000)
    };
    let neighbour = lab.exec_kern("ip", &["neigh", "show", "198.18.0.2"]).unwrap_or_default();
    stop.store(true, Ordering::Relaxed);
    let (e, dev) = engine.join().expect("engine thread");
    let stats = e.stats();
    assert_eq!(answered, 5, "echo replies from the engine; engine stats {stats:?}");
    assert_eq!(stats.icmp_out_echo_reps, 5, "{stats:?}");
    assert!(stats.arp_in >= 1 && stats.arp_replies_sent >= 1, "the engine answered ARP: {stats:?}");
    let mac = dev.mac().iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    assert!(neighbour.contains(&mac) && !neighbour.contains("PERMANENT"), "learnt, not static: {neighbour}");
    assert!(e.is_empty(), "pings leave nothing behind in the engine");
    dev.check_frame_accounting().expect("frame accounting");
}

#[test]
fn ping_the_engine_native() {
    ping_the_engine(XdpMode::Native, "pen");
}

#[test]
fn ping_the_engine_generic() {
    ping_the_engine(XdpMode::Generic, "peg");
}

/// Sums a TCP segment with its IPv4 pseudo-header (RFC 9293 §3.1); zero when the checksum is valid.
fn tcp_checksum_residue(ip: &[u8]) -> u16 {
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let segment = &ip[ihl..total];
    let mut pseudo = Vec::with_capacity(12 + segment.len());
    pseudo.extend_from_slice(&ip[12..20]);
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(segment.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(segment);
    afxdp_util::checksum(&pseudo)
}

/// The lab turns transmit checksum offload off on the kernel end, so a SYN from the kernel
/// reaches AF_XDP with a complete TCP checksum (not a CHECKSUM_PARTIAL pseudo-header sum).
#[test]
fn kernel_tcp_arrives_with_full_checksum() {
    let lab = LabGuard::up(LabConfig::new(&unique("cs"))).expect("lab up");
    let (_program, mut devices) = open_app(&lab, XdpMode::Native, &AfXdpConfig::default());
    let dev = &mut devices[0];
    let connector = {
        let (ns, addr) = (lab.kern_ns().to_owned(), std::net::SocketAddr::from((lab.app_addr(), 80)));
        thread::spawn(move || {
            let _inside = linerate_driver::lab::NetnsEnter::enter(&ns).expect("enter kernel namespace");
            // Nobody answers the SYN (beyond ARP), so this times out; we only want the SYN.
            let _ = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(1500));
        })
    };
    let mut replies = Vec::new();
    let mut syn = None;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while syn.is_none() && std::time::Instant::now() < deadline {
        let mac = dev.mac();
        replies.clear();
        dev.receive(linerate_stack::time::Instant::ZERO, 64, |f| {
            if f.len() >= 54 && f[12..14] == [8, 0] && f[23] == 6 {
                syn = Some(f[14..].to_vec());
            } else if let Some(r) = afxdp_util::reply_to(f, mac, lab.app_addr()) {
                replies.push(r);
            }
        });
        for r in &replies {
            dev.transmit(linerate_stack::time::Instant::ZERO, r.len(), |b| b.copy_from_slice(r));
        }
        dev.flush(linerate_stack::time::Instant::ZERO);
        wait_readable(&[dev.raw_fd()], 20);
    }
    connector.join().expect("connector thread");
    let syn = syn.expect("a SYN from the kernel reached AF_XDP");
    assert_eq!(syn[33] & 0x02, 0x02, "SYN flag");
    assert_eq!(tcp_checksum_residue(&syn), 0, "TCP checksum of the kernel's SYN is complete");
}

/// Only TCP, ICMP and ARP for our address are steered: UDP to our address goes to the kernel.
/// The kernel sends UDP datagrams, then a SYN; AF_XDP must see the SYN and none of the UDP.
#[test]
fn udp_to_our_address_is_not_steered() {
    let lab = LabGuard::up(LabConfig::new(&unique("ud"))).expect("lab up");
    let (_program, mut devices) = open_app(&lab, XdpMode::Native, &AfXdpConfig::default());
    let dev = &mut devices[0];
    let sender = {
        let ns = lab.kern_ns().to_owned();
        let addr = std::net::SocketAddr::from((lab.app_addr(), 9));
        thread::spawn(move || {
            let _inside = linerate_driver::lab::NetnsEnter::enter(&ns).expect("enter kernel namespace");
            let udp = std::net::UdpSocket::bind("198.18.0.1:0").expect("udp socket");
            for _ in 0..5 {
                udp.send_to(b"not for AF_XDP", addr).expect("send UDP");
            }
            // The SYN leaves after the datagrams: one socket-less queue per neighbour, in order.
            let _ = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(800));
        })
    };
    let (mut udp_seen, mut syn_seen) = (0, false);
    let mut replies = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while !syn_seen && std::time::Instant::now() < deadline {
        let mac = dev.mac();
        replies.clear();
        dev.receive(linerate_stack::time::Instant::ZERO, 64, |f| {
            if f.len() >= 34 && f[12..14] == [8, 0] && f[23] == 17 {
                udp_seen += 1;
            } else if f.len() >= 34 && f[12..14] == [8, 0] && f[23] == 6 {
                syn_seen = true;
            } else if let Some(r) = afxdp_util::reply_to(f, mac, lab.app_addr()) {
                replies.push(r);
            }
        });
        for r in &replies {
            dev.transmit(linerate_stack::time::Instant::ZERO, r.len(), |b| b.copy_from_slice(r));
        }
        dev.flush(linerate_stack::time::Instant::ZERO);
        wait_readable(&[dev.raw_fd()], 20);
    }
    sender.join().expect("sender thread");
    assert!(syn_seen, "the SYN sent after the UDP datagrams reached AF_XDP");
    assert_eq!(udp_seen, 0, "UDP to our address must be passed to the kernel, not steered");
    // ...and the app namespace's kernel got them: it owns no 198.18.0.2, so it counts them as
    // address errors (proof the datagrams were on the wire and passed, not lost before XDP).
    let snmp = lab.exec_app("cat", &["/proc/net/snmp"]).expect("snmp");
    assert!(ip_in_addr_errors(&snmp) >= 5, "{snmp}");
}

fn ip_in_addr_errors(snmp: &str) -> u64 {
    let mut ip_lines = snmp.lines().filter(|l| l.starts_with("Ip:"));
    let (names, values) = (ip_lines.next().unwrap_or(""), ip_lines.next().unwrap_or(""));
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "InAddrErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// On a multi-queue veth in native mode, the kernel's flows arrive spread over the rx queues:
/// a device bound to queue 0 alone would miss some, which is why `open_all` binds one per queue.
#[test]
fn multi_queue_veth_spreads_flows_over_queues() {
    let lab = LabGuard::up(LabConfig { queues: 4, ..LabConfig::new(&unique("mq")) }).expect("lab up");
    let (_program, mut devices) = open_app(&lab, XdpMode::Native, &AfXdpConfig::default());
    assert_eq!(devices.len(), 4);
    let connector = {
        let ns = lab.kern_ns().to_owned();
        let addr = lab.app_addr();
        thread::spawn(move || {
            let _inside = linerate_driver::lab::NetnsEnter::enter(&ns).expect("enter kernel namespace");
            // Non-blocking connects: each SYN goes out at once, on the queue its flow hashes to.
            for port in 1000..1032u16 {
                let target = std::net::SocketAddr::from((addr, port));
                // Nobody accepts: each attempt times out, but its SYN is already on its way.
                let _ = std::net::TcpStream::connect_timeout(&target, std::time::Duration::from_millis(1));
            }
        })
    };
    let mut syns = [0u32; 4];
    let mut replies = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while syns.iter().sum::<u32>() < 32 && std::time::Instant::now() < deadline {
        for (q, dev) in devices.iter_mut().enumerate() {
            let mac = dev.mac();
            replies.clear();
            dev.receive(linerate_stack::time::Instant::ZERO, 64, |f| {
                if f.len() >= 54 && f[12..14] == [8, 0] && f[23] == 6 && f[47] & 0x02 != 0 {
                    syns[q] += 1;
                } else if let Some(r) = afxdp_util::reply_to(f, mac, lab.app_addr()) {
                    replies.push(r);
                }
            });
            for r in &replies {
                dev.transmit(linerate_stack::time::Instant::ZERO, r.len(), |b| b.copy_from_slice(r));
            }
            dev.flush(linerate_stack::time::Instant::ZERO);
        }
        let fds: Vec<_> = devices.iter().map(|d| d.raw_fd()).collect();
        wait_readable(&fds, 10);
    }
    connector.join().expect("connector thread");
    eprintln!("SYNs per rx queue: {syns:?}");
    assert!(syns.iter().sum::<u32>() >= 32, "SYNs per queue: {syns:?}");
    assert!(syns.iter().filter(|&&n| n > 0).count() >= 2, "all flows on one queue: {syns:?}");
}
