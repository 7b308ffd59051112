//! The engine against the kernel's TCP through AF_XDP in the lab, byte-exact both ways: the
//! kernel echoes everything it reads, our engine sends a pattern, reads it back and checks every
//! byte.

use std::io::{Read, Write};
use std::thread;
use std::time::Duration as StdDuration;

use linerate_driver::afxdp::{AfXdpConfig, DeviceStats, XdpMode};
use linerate_driver::lab::{Lab, NetnsEnter};
use linerate_stack::device::{Capabilities, Device};
use linerate_stack::engine::{Engine, EngineConfig, Event};
use linerate_stack::tcp::SocketOptions;
use linerate_stack::time::Instant;
use linerate_stack::wire::{EthernetAddress, Ipv4Address};

use super::{open_app, wait_readable};

pub fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// Sends `size` bytes through the kernel's echo server on port 7000 and checks every byte that
/// comes back; `between_polls` runs once per loop turn (e.g. to drain a capture). Returns the
/// device's counters and capabilities.
pub fn echo_through_engine(
    lab: &Lab,
    mode: XdpMode,
    config: &AfXdpConfig,
    size: usize,
    mut between_polls: impl FnMut(),
) -> (DeviceStats, Capabilities) {
    let (program, mut devices) = open_app(lab, mode, config);
    assert!(program.frags_aware(), "kernel 6.18 loads the frags-aware program");
    let dev = &mut devices[0];
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
    ready_rx.recv_timeout(StdDuration::from_secs(10)).expect("kernel server ready");
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
    let deadline = std::time::Instant::now() + StdDuration::from_secs(60);
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
        between_polls();
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
    (stats, dev.capabilities())
}
