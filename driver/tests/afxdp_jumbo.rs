//! Large frames through AF_XDP: 4,096-byte UMEM frames at the largest MTU they hold (3,826) in
//! the veth lab, with the engine against the kernel's TCP both ways, in native mode (which veth
//! allows above ~3.5 KB only for a frags-aware program) and in generic mode; and the size checks
//! that refuse what cannot work (MTU 9000 included). Needs root.

mod afxdp_util;

use afxdp_util::{open_app, unique, wait_readable};
use linerate_driver::afxdp::{
    frame_size_for_mtu, max_mtu_for_frame, AfXdpConfig, AfXdpDevice, XdpMode, XdpProgram, MAX_MTU,
};
use linerate_driver::lab::{LabConfig, LabGuard, NetnsEnter};
use linerate_stack::device::Device;
use linerate_stack::engine::{Engine, EngineConfig, Event};
use linerate_stack::tcp::SocketOptions;
use linerate_stack::time::Instant;
use linerate_stack::wire::{EthernetAddress, Ipv4Address};
use std::io::{Read, Write};
use std::thread;

const MTU: u32 = MAX_MTU as u32;

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// The kernel echoes everything it reads; our engine sends `size` bytes, reads them back and
/// checks every byte. Returns (frames sent, frames received, payload bytes each way).
fn echo_through_engine(mode: XdpMode, tag: &str, size: usize) -> (u64, u64) {
    let lab = LabGuard::up(LabConfig { mtu: MTU, ..LabConfig::new(&unique(tag)) }).expect("lab up");
    let config = AfXdpConfig::for_mtu(MTU as usize);
    assert_eq!(config.frame_size, 4096);
    let (program, mut devices) = open_app(&lab, mode, &config);
    assert!(program.frags_aware(), "kernel 6.18 loads the frags-aware program");
    let dev = &mut devices[0];
    assert_eq!(dev.capabilities().mtu, MTU as usize);
    let kern = lab.kern_addr();
    let ns = lab.kern_ns().to_owned();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = thread::spawn(move || {
        let _inside = NetnsEnter::enter(&ns).expect("enter");
        let l = std::net::TcpListener::bind((kern, 7000)).expect("bind");
        ready_tx.send(()).expect("ready");
        let (mut s, _) = l.accept().expect("accept");
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0;
        loop {
            let n = s.read(&mut buf).expect("kernel read");
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n]).expect("kernel write");
            total += n;
        }
        total
    });
    ready_rx.recv_timeout(std::time::Duration::from_secs(10)).expect("kernel server ready");
    let mut ecfg = EngineConfig::new(Ipv4Address(lab.app_addr().octets()), 24, EthernetAddress(dev.mac()), 5);
    ecfg.mtu = dev.capabilities().mtu;
    ecfg.tcp.time_wait = linerate_stack::time::Duration::from_millis(100);
    let start = std::time::Instant::now();
    let now = || Instant::from_nanos(start.elapsed().as_nanos() as u64 + 1_000_000);
    let mut e = Engine::new(ecfg, now());
    let opts = SocketOptions { send_buffer: 1 << 20, recv_buffer: 1 << 20, ..SocketOptions::default() };
    let c = e.connect(now(), (Ipv4Address(kern.octets()), 7000), None, Some(opts)).unwrap();
    let data: Vec<u8> = (0..size).map(pattern).collect();
    let (mut sent, mut echoed, mut shut, mut closed) = (0, 0, false, false);
    let mut rbuf = vec![0u8; 1 << 16];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !(closed && e.connection_count() == 0) {
        assert!(std::time::Instant::now() < deadline, "timeout: sent {sent} echoed {echoed} {:?}", e.stats());
        e.receive_from(now(), dev, 64);
        e.handle_timeout(now());
        while let Some(ev) = e.poll_event() {
            if let Event::Closed { error: Some(err), .. } = ev {
                panic!("connection failed: {err}: {:?}", e.stats());
            }
        }
        if !closed {
            while let Some(n) = (sent < size).then(|| e.write(now(), c, &data[sent..]).ok()).flatten() {
                sent += n;
            }
            if sent == size && !shut && e.state(c).is_ok_and(|s| s.is_synchronized()) {
                e.shutdown_write(now(), c).unwrap();
                shut = true;
            }
            while let Ok(n) = e.read(now(), c, &mut rbuf) {
                if n == 0 {
                    e.close(now(), c).unwrap();
                    closed = true;
                    break;
                }
                assert!(rbuf[..n].iter().enumerate().all(|(j, &b)| b == pattern(echoed + j)), "at {echoed}");
                echoed += n;
            }
        }
        e.poll_transmit(now(), dev);
        wait_readable(&[dev.raw_fd()], 1);
    }
    assert_eq!(server.join().unwrap(), size);
    assert_eq!(echoed, size);
    assert!(e.is_empty());
    let stats = dev.stats();
    let kernel = dev.kernel_statistics().expect("xdp statistics");
    println!("{mode:?}: {size} bytes both ways in {:?}; {stats:?}; kernel {kernel:?}", start.elapsed());
    assert_eq!(stats.rx_oversized, 0);
    dev.check_frame_accounting().expect("accounting");
    (stats.tx_frames, stats.rx_frames)
}

/// Payload bytes per frame above what a 1,500-byte MTU allows, both ways: the frames were large.
/// (Each way also carries ACK-only frames, so the average is below the 3,786-byte MSS.)
fn assert_large(size: usize, (tx, rx): (u64, u64)) {
    let (per_tx, per_rx) = (size as u64 / tx, size as u64 / rx);
    assert!(per_tx > 1800 && per_rx > 1800, "{per_tx} / {per_rx} payload bytes per frame");
}

#[test]
fn engine_echo_at_the_largest_mtu_native_frags_aware() {
    let size = 8 << 20;
    assert_large(size, echo_through_engine(XdpMode::Native, "jn", size));
}

#[test]
fn engine_echo_at_the_largest_mtu_generic() {
    let size = 8 << 20;
    assert_large(size, echo_through_engine(XdpMode::Generic, "jg", size));
}

#[test]
fn frame_sizes_follow_the_mtu() {
    assert_eq!(frame_size_for_mtu(1500), Some(2048));
    assert_eq!(frame_size_for_mtu(max_mtu_for_frame(2048)), Some(2048));
    assert_eq!(frame_size_for_mtu(max_mtu_for_frame(2048) + 1), Some(4096));
    assert_eq!((MAX_MTU, frame_size_for_mtu(3826)), (3826, Some(4096)));
    assert_eq!(frame_size_for_mtu(3827), None);
    assert_eq!(AfXdpConfig::for_mtu(1500).frame_size, AfXdpConfig::default().frame_size);
    let large = AfXdpConfig::for_mtu(3000);
    assert_eq!((large.frame_size, large.frame_count), (4096, 2048), "same UMEM bytes as the default");
    large.validate(3826).expect("valid");
}

#[test]
fn impossible_frame_sizes_are_refused_with_the_fix() {
    let large = AfXdpConfig::for_mtu(MAX_MTU);
    let cases = [
        (AfXdpConfig::default(), 3000, "use frame_size 4096"),
        (AfXdpConfig { frame_size: 8192, ..large.clone() }, 3000, "must be 2048 or 4096"),
        (AfXdpConfig { frame_size: 3072, ..large.clone() }, 1500, "must be 2048 or 4096"),
        (large.clone(), 3827, "set the interface MTU to 3826 or less"),
        (AfXdpConfig::for_mtu(9000), 9000, "no UMEM frame holds it"),
    ];
    for (config, mtu, needle) in cases {
        let err = config.validate(mtu).expect_err(needle);
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
}

#[test]
fn a_jumbo_lab_is_refused_before_any_socket_exists() {
    let lab = LabGuard::up(LabConfig { mtu: 9000, ..LabConfig::new(&unique("j9")) }).expect("lab up");
    let _inside = lab.enter_app().expect("enter");
    // The frags-aware program attaches natively even at MTU 9000; the socket is what cannot.
    let program = XdpProgram::attach(lab.app_if(), lab.app_addr(), XdpMode::Native).expect("attach");
    assert_eq!(program.mode(), XdpMode::Native);
    let err = AfXdpDevice::open(&program, 0, &AfXdpConfig::for_mtu(9000)).expect_err("MTU 9000");
    assert!(err.to_string().contains("MTU 9000 does not fit 4096-byte frames"), "{err}");
}
