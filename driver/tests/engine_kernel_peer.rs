//! The engine against the Linux kernel over AF_XDP in the veth lab: our engine as the active
//! opener against a kernel echo server (clean and with 2 % loss both ways), and a kernel client
//! against an engine listener. Byte-exact both ways; the engine must be empty at the end.
mod afxdp_util;
use afxdp_util::{open_app, unique, wait_readable};
use linerate_driver::afxdp::{AfXdpConfig, XdpMode};
use linerate_driver::lab::{LabConfig, LabGuard, NetnsEnter};
use linerate_stack::engine::{Engine, EngineConfig, Event};
use linerate_stack::tcp::SocketOptions;
use linerate_stack::time::Instant;
use linerate_stack::wire::{EthernetAddress, Ipv4Address};
use std::io::{Read, Write};
use std::thread;

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

fn run(size: usize, loss: bool) {
    let mut cfg = LabConfig::new(&unique(if loss { "ekl" } else { "ekc" }));
    if loss {
        cfg.loss = Some(linerate_driver::lab::Loss {
            probability: 0.02,
            direction: linerate_driver::lab::Direction::Both,
        });
    }
    let lab = LabGuard::up(cfg).expect("lab up");
    let (_program, mut devices) = open_app(&lab, XdpMode::Native, &AfXdpConfig::default());
    let dev = &mut devices[0];
    let kern = lab.kern_addr();
    let ns = lab.kern_ns().to_owned();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = thread::spawn(move || {
        let _inside = NetnsEnter::enter(&ns).expect("enter");
        let l = std::net::TcpListener::bind((kern, 7000)).expect("bind");
        ready_tx.send(()).expect("ready");
        let (mut s, _) = l.accept().expect("accept");
        let mut buf = vec![0u8; 65536];
        let mut got = Vec::new();
        loop {
            let n = s.read(&mut buf).expect("kernel read");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        s.write_all(&got).expect("kernel write");
        drop(s);
        got.len()
    });
    ready_rx.recv_timeout(std::time::Duration::from_secs(10)).expect("kernel server ready");
    let app = lab.app_addr().octets();
    let mut ecfg = EngineConfig::new(Ipv4Address(app), 24, EthernetAddress(dev.mac()), 9);
    ecfg.tcp.time_wait = linerate_stack::time::Duration::from_millis(100);
    let start = std::time::Instant::now();
    let now = || Instant::from_nanos(start.elapsed().as_nanos() as u64 + 1_000_000);
    let mut e = Engine::new(ecfg, now());
    let opts = SocketOptions { send_buffer: 1 << 20, recv_buffer: 1 << 20, ..SocketOptions::default() };
    let c = e.connect(now(), (Ipv4Address(kern.octets()), 7000), None, Some(opts)).unwrap();
    let (mut sent, mut echoed, mut shut, mut closed) = (0usize, 0usize, false, false);
    let mut rbuf = vec![0u8; 65536];
    let chunk: Vec<u8> = (0..size).map(pattern).collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !(closed && e.connection_count() == 0) {
        assert!(
            std::time::Instant::now() < deadline,
            "timeout: sent {sent} echoed {echoed} stats {:?} info {:?}",
            e.stats(),
            e.info(now(), c)
        );
        e.receive_from(now(), dev, 64);
        e.handle_timeout(now());
        while let Some(ev) = e.poll_event() {
            if let Event::Closed { error: Some(err), .. } = ev {
                panic!("connection failed: {err}: {:?}", e.stats());
            }
        }
        if !closed {
            while sent < size {
                match e.write(now(), c, &chunk[sent..]) {
                    Ok(n) => sent += n,
                    Err(_) => break,
                }
            }
            if sent == size && !shut && e.state(c).is_ok_and(|s| s.is_synchronized()) {
                e.shutdown_write(now(), c).unwrap();
                shut = true;
            }
            loop {
                match e.read(now(), c, &mut rbuf) {
                    Ok(0) => {
                        e.close(now(), c).unwrap();
                        closed = true;
                        break;
                    }
                    Ok(n) => {
                        for (j, &b) in rbuf[..n].iter().enumerate() {
                            assert_eq!(b, pattern(echoed + j), "byte {}", echoed + j);
                        }
                        echoed += n;
                    }
                    Err(_) => break,
                }
            }
        }
        e.poll_transmit(now(), dev);
        wait_readable(&[dev.raw_fd()], 1);
    }
    assert_eq!(server.join().unwrap(), size);
    assert_eq!(echoed, size);
    println!("{size} bytes both ways in {:?}; stats {:?}", start.elapsed(), e.stats());
    assert!(e.is_empty());
}

#[test]
fn kernel_echo_clean() {
    run(4 << 20, false);
}

#[test]
fn kernel_echo_lossy() {
    run(1 << 20, true);
}

#[test]
fn kernel_client_to_engine_listener() {
    let lab = LabGuard::up(LabConfig::new(&unique("el"))).expect("lab up");
    let (_program, mut devices) = open_app(&lab, XdpMode::Native, &AfXdpConfig::default());
    let dev = &mut devices[0];
    let app = lab.app_addr();
    let ns = lab.kern_ns().to_owned();
    let size = 2 << 20;
    let mut ecfg = EngineConfig::new(Ipv4Address(app.octets()), 24, EthernetAddress(dev.mac()), 11);
    ecfg.tcp.time_wait = linerate_stack::time::Duration::from_millis(100);
    let start = std::time::Instant::now();
    let now = || Instant::from_nanos(start.elapsed().as_nanos() as u64 + 1_000_000);
    let mut e = Engine::new(ecfg, now());
    let l = e.listen(8080, 8, None).unwrap();
    let client = thread::spawn(move || {
        let _inside = NetnsEnter::enter(&ns).expect("enter");
        let mut s = std::net::TcpStream::connect((app, 8080)).expect("kernel connect");
        let data: Vec<u8> = (0..size).map(pattern).collect();
        s.write_all(&data).expect("write");
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).expect("read back");
        assert_eq!(back.len(), size);
        assert!(back.iter().enumerate().all(|(i, &b)| b == pattern(i)));
    });
    let mut conn = None;
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 65536];
    let mut eof = false;
    let mut closed = false;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !closed || e.connection_count() > 0 {
        assert!(std::time::Instant::now() < deadline, "timeout {:?}", e.stats());
        e.receive_from(now(), dev, 64);
        e.handle_timeout(now());
        while let Some(ev) = e.poll_event() {
            match ev {
                Event::Incoming(_) => conn = e.accept(l).unwrap(),
                Event::Closed { error: Some(err), .. } => panic!("{err}"),
                _ => {}
            }
        }
        if let (Some(c), false) = (conn, closed) {
            while !eof {
                match e.read(now(), c, &mut buf) {
                    Ok(0) => eof = true,
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                    Err(_) => break,
                }
            }
            while !pending.is_empty() {
                match e.write(now(), c, &pending) {
                    Ok(n) => {
                        pending.drain(..n);
                    }
                    Err(_) => break,
                }
            }
            if eof && pending.is_empty() {
                e.close(now(), c).unwrap();
                closed = true;
            }
        }
        e.poll_transmit(now(), dev);
        wait_readable(&[dev.raw_fd()], 1);
    }
    client.join().unwrap();
    e.unlisten(now(), l).unwrap();
    println!("passive echo of {size} in {:?}: {:?}", start.elapsed(), e.stats());
    assert!(e.is_empty());
}
