//! TCP Fast Open and SYN cookies against the Linux kernel, over AF_XDP in the veth lab.
//!
//! Our engine serves a tiny HTTP-ish responder on 198.18.0.2:80 with Fast Open on and SYN
//! cookies in `Auto` mode (backlog 16). From the kernel namespace, with `net.ipv4.tcp_fastopen=1`
//! set there, `curl --tcp-fastopen` fetches twice: the first SYN asks for a cookie, the second
//! carries the request and the server takes it (checked on the wire: every frame our device
//! receives is parsed, and a SYN carrying data must arrive; and in the engine's counters). Then a
//! third namespace, routed through the kernel namespace, floods the listener with spoofed SYNs
//! from 198.19.0.0/16 (raw socket, bounded count and time) while curl fetches again: curl must
//! still succeed. Every namespace is removed on the way out, also on failure.
mod afxdp_util;
use afxdp_util::{open_app, unique, wait_readable};
use linerate_driver::afxdp::{AfXdpConfig, XdpMode};
use linerate_driver::lab::{netns_run, LabConfig, LabGuard, NetnsEnter};
use linerate_stack::device::{Capabilities, Device};
use linerate_stack::engine::{ConnectionHandle, Engine, EngineConfig, Event};
use linerate_stack::tcp::listener::{FastOpenListen, ListenerHandshake};
use linerate_stack::time::Instant;
use linerate_stack::wire::{
    ChecksumMode, EtherType, EthernetAddress, EthernetFrame, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr,
    SeqNumber, TcpFlags, TcpOptions, TcpPacket, TcpRepr,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration as StdDuration;

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
/// Spoofed SYNs the attacker sends at most, and for at most this long.
const FLOOD_MAX: u32 = 30_000;
const FLOOD_TIME: StdDuration = StdDuration::from_secs(4);

/// Counts, on our receive path, SYNs that carry data (what a capture would show).
struct Snoop<'a, D: Device> {
    inner: &'a mut D,
    syns_with_data: u32,
    syns: u32,
}

fn syn_payload_len(frame: &[u8]) -> Option<usize> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EtherType::Ipv4 {
        return None;
    }
    let ipp = Ipv4Packet::new_checked(eth.payload()).ok()?;
    let ip = Ipv4Repr::parse(&ipp, ChecksumMode::Skip).ok()?;
    if ip.protocol != IpProtocol::Tcp {
        return None;
    }
    let tp = TcpPacket::new_checked(ipp.payload()).ok()?;
    let tcp = TcpRepr::parse(&tp, ip.src_addr, ip.dst_addr, ChecksumMode::Skip).ok()?;
    (tcp.flags.syn() && !tcp.flags.ack()).then_some(tcp.payload.len())
}

impl<D: Device> Device for Snoop<'_, D> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn receive<F: FnMut(&mut [u8])>(&mut self, now: Instant, budget: usize, mut handle: F) -> usize {
        let (syns, data) = (&mut self.syns, &mut self.syns_with_data);
        self.inner.receive(now, budget, |frame| {
            if let Some(len) = syn_payload_len(frame) {
                // Spoofed flood SYNs come from 198.19/16 and carry nothing.
                *syns += 1;
                *data += u32::from(len > 0);
            }
            handle(frame)
        })
    }
    fn transmit_capacity(&self) -> usize {
        self.inner.transmit_capacity()
    }
    fn transmit<R, F: FnOnce(&mut [u8]) -> R>(&mut self, now: Instant, len: usize, fill: F) -> Option<R> {
        self.inner.transmit(now, len, fill)
    }
    fn flush(&mut self, now: Instant) {
        self.inner.flush(now)
    }
}

/// The attacker's namespace, joined to the kernel namespace by a veth pair; deleted on drop.
struct AttackerNs {
    name: String,
}

impl AttackerNs {
    fn up(name: String, kern_ns: &str) -> AttackerNs {
        let guard = AttackerNs { name };
        let ns = guard.name.as_str();
        let ip = |args: &[&str]| {
            let out = std::process::Command::new("ip").args(args).output().expect("ip");
            assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        ip(&["netns", "add", ns]);
        #[rustfmt::skip]
        ip(&["link", "add", "name", "lr-atk", "netns", ns, "type", "veth", "peer", "name", "lr-atk-k", "netns", kern_ns]);
        ip(&["-n", ns, "addr", "add", "198.18.1.2/24", "dev", "lr-atk"]);
        ip(&["-n", ns, "link", "set", "lr-atk", "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        ip(&["-n", ns, "route", "add", "default", "via", "198.18.1.1"]);
        ip(&["-n", kern_ns, "addr", "add", "198.18.1.1/24", "dev", "lr-atk-k"]);
        ip(&["-n", kern_ns, "link", "set", "lr-atk-k", "up"]);
        // SYN-ACKs to the spoofed sources go back to the attacker, never anywhere else.
        ip(&["-n", kern_ns, "route", "add", "198.19.0.0/16", "via", "198.18.1.2"]);
        netns_run(kern_ns, "sysctl", &["-qw", "net.ipv4.ip_forward=1"]).expect("forwarding");
        guard
    }
}

impl Drop for AttackerNs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

/// A spoofed SYN (IPv4 header included) from 198.19.x.y to our server.
fn spoofed_syn(i: u32) -> Vec<u8> {
    let src = Ipv4Address::new(198, 19, (i >> 8) as u8, (i as u8).max(1));
    let dst = Ipv4Address::new(198, 18, 0, 2);
    let tcp = TcpRepr {
        src_port: 1024 + (i % 60_000) as u16,
        dst_port: 80,
        seq_number: SeqNumber(i.wrapping_mul(2_654_435_761)),
        ack_number: SeqNumber(0),
        flags: TcpFlags::SYN,
        window_len: 64_240,
        urgent_pointer: 0,
        options: TcpOptions { mss: Some(1460), ..TcpOptions::default() },
        payload: &[],
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        ttl: 64,
        dscp_ecn: 0,
        ident: i as u16,
        dont_frag: true,
    };
    let mut packet = vec![0u8; 20 + tcp.buffer_len()];
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut packet[..]), ChecksumMode::Compute);
    tcp.emit(&mut TcpPacket::new_unchecked(&mut packet[20..]), src, dst, ChecksumMode::Compute);
    packet
}

/// Sends spoofed SYNs from the attacker namespace until `stop`, `FLOOD_MAX` or `FLOOD_TIME`.
fn flood(ns: String, stop: Arc<AtomicBool>) -> u32 {
    let _inside = NetnsEnter::enter(&ns).expect("enter attacker namespace");
    // SAFETY: plain socket(2); the descriptor is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
    assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
    let dst = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes([198, 18, 0, 2]) },
        sin_zero: [0; 8],
    };
    let start = std::time::Instant::now();
    let mut sent = 0;
    while sent < FLOOD_MAX && start.elapsed() < FLOOD_TIME && !stop.load(Ordering::Relaxed) {
        let packet = spoofed_syn(sent);
        // SAFETY: `packet` and `dst` outlive the call; lengths are theirs.
        let n = unsafe {
            libc::sendto(
                fd,
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&dst as *const libc::sockaddr_in).cast(),
                core::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if n > 0 {
            sent += 1;
        }
        if sent % 256 == 0 {
            // Bounded rate (~10k/s at most): enough to keep the SYN queue full.
            thread::sleep(StdDuration::from_millis(20));
        }
    }
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    sent
}

/// One `curl --tcp-fastopen` from the kernel namespace; returns its body.
fn curl(kern_ns: &str) -> String {
    netns_run(kern_ns, "curl", &["--tcp-fastopen", "-s", "-m", "10", "http://198.18.0.2/"]).unwrap_or_else(
        |e| {
            panic!("curl failed: {e}");
        },
    )
}

struct Responder {
    conns: Vec<(ConnectionHandle, Vec<u8>, bool)>,
}

impl Responder {
    /// Reads each connection; once a full request head is in, answers and closes.
    fn pump(&mut self, e: &mut Engine, now: Instant) {
        let mut buf = [0u8; 2048];
        for (c, req, done) in self.conns.iter_mut().filter(|(_, _, done)| !*done) {
            while let Ok(n) = e.read(now, *c, &mut buf) {
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
            }
            if req.windows(4).any(|w| w == b"\r\n\r\n") {
                e.write(now, *c, RESPONSE).expect("response fits the send buffer");
                e.close(now, *c).expect("close");
                *done = true;
            }
        }
        self.conns.retain(|(_, _, done)| !*done);
    }
}

#[test]
fn curl_fast_open_is_accepted_and_a_syn_flood_does_not_stop_curl() {
    let lab = LabGuard::up(LabConfig::new(&unique("tfo"))).expect("lab up");
    let kern_ns = lab.kern_ns().to_owned();
    let attacker = AttackerNs::up(format!("lr-{}-atk", unique("tfo")), &kern_ns);
    netns_run(&kern_ns, "sysctl", &["-qw", "net.ipv4.tcp_fastopen=1"])
        .expect("tcp_fastopen=1 in the kernel ns");
    let (_program, mut devices) = open_app(&lab, XdpMode::Native, &AfXdpConfig::default());
    let dev = &mut devices[0];
    let fd = dev.raw_fd();
    let mut ecfg = EngineConfig::new(Ipv4Address(lab.app_addr().octets()), 24, EthernetAddress(dev.mac()), 5);
    ecfg.tcp.time_wait = linerate_stack::time::Duration::from_millis(100);
    ecfg.reply_queue = 512;
    let start = std::time::Instant::now();
    let now = || Instant::from_nanos(start.elapsed().as_nanos() as u64 + 1_000_000);
    let mut e = Engine::new(ecfg, now());
    let l = e.listen(80, 16, None).unwrap();
    let handshake = ListenerHandshake { syn_cookies: None, fast_open: Some(FastOpenListen::default()) };
    e.set_listener_handshake(l, handshake).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let (ns, atk, stop_flood) = (kern_ns.clone(), attacker.name.clone(), stop.clone());
    let (phase_tx, phase_rx) = std::sync::mpsc::channel::<&'static str>();
    let client = thread::spawn(move || {
        let first = curl(&ns);
        let second = curl(&ns);
        phase_tx.send("flood").unwrap();
        let flooder = thread::spawn(move || flood(atk, stop_flood));
        thread::sleep(StdDuration::from_millis(500));
        let during: Vec<String> = (0..3).map(|_| curl(&ns)).collect();
        let flooded = flooder.join().unwrap();
        (first, second, during, flooded)
    });
    let mut snoop = Snoop { inner: dev, syns_with_data: 0, syns: 0 };
    let mut responder = Responder { conns: Vec::new() };
    let mut data_syns_before_flood = None;
    let deadline = std::time::Instant::now() + StdDuration::from_secs(60);
    while !client.is_finished() {
        if std::time::Instant::now() > deadline {
            stop.store(true, Ordering::Relaxed);
            panic!("timeout; stats {:?}", e.stats());
        }
        e.receive_from(now(), &mut snoop, 64);
        e.handle_timeout(now());
        while let Some(ev) = e.poll_event() {
            if let Event::Incoming(l) = ev {
                while let Ok(Some(c)) = e.accept(l) {
                    responder.conns.push((c, Vec::new(), false));
                }
            }
        }
        responder.pump(&mut e, now());
        e.poll_transmit(now(), &mut snoop);
        if data_syns_before_flood.is_none() && phase_rx.try_recv().is_ok() {
            data_syns_before_flood = Some((snoop.syns_with_data, e.stats().clone()));
        }
        wait_readable(&[fd], 1);
    }
    stop.store(true, Ordering::Relaxed);
    let (first, second, during, flooded) = client.join().expect("curl thread");
    let stats = e.stats();
    println!("flooded {flooded}; syns seen {} with data {}; {stats:?}", snoop.syns, snoop.syns_with_data);
    assert_eq!(first, "ok\n");
    assert_eq!(second, "ok\n");
    let (data_syns, before) = data_syns_before_flood.expect("the flood phase began");
    assert_eq!(before.tfo_cookie_reqs, 1, "the first curl asked for a cookie");
    assert_eq!(before.tfo_passive, 1, "the second curl's data in the SYN was accepted");
    assert_eq!(data_syns, 1, "exactly one SYN carried data on the wire");
    assert!(during.iter().all(|body| body == "ok\n"), "curl under flood: {during:?}");
    assert!(flooded > 1_000, "the flood ran ({flooded} SYNs)");
    assert!(stats.syncookies_sent > 0, "the flood filled the SYN queue and cookies took over");
    assert!(e.connection_count() <= 16 + 8, "no state beyond the backlog: {}", e.connection_count());
}
