//! The two-machine placement of the lab (`Placement::PerSide`): the kernel holds what was asked
//! (RPS masks, threaded NAPI, each NAPI thread allowed on its end's core only, read back from
//! sysfs, netlink and the scheduler), TCP still flows both ways through it, and the app end's
//! NAPI thread is the one that did the app side's receive work. Re-tuning to the one-machine
//! placement undoes it. Needs root; a few seconds.

use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpListener, TcpStream};
use std::time::Duration;

use linerate_driver::lab::{EndPlacement, Lab, LabConfig, LabGuard, NetnsEnter, Placement, APP_ADDR, APP_IF};

const PORT: u16 = 5201;
const BYTES: usize = 4 << 20;

fn unique(tag: &str) -> String {
    format!("{tag}-{}", std::process::id())
}

fn cores() -> (usize, usize) {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    // One core: both ends on it (the placement is still applied and checked).
    ((n > 1) as usize, 0)
}

/// On-CPU nanoseconds of thread `pid` so far.
fn runtime_ns(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).expect("schedstat");
    text.split_whitespace().next().and_then(|v| v.parse().ok()).expect("schedstat value")
}

/// `rps`: whether frames into this end bypass NAPI (its peer sends with TSO), so RPS must move
/// them to `core`.
fn assert_pinned(end: &EndPlacement, core: usize, rps: bool) {
    let mask = if rps { format!("{:x}", 1u64 << core) } else { String::new() };
    assert!(end.rps_cpus.iter().all(|m| m.trim_start_matches('0') == mask), "{end:?}");
    assert!(end.threaded, "{end:?}");
    assert!(!end.napi_threads.is_empty(), "GRO on must give {} a NAPI instance: {end:?}", end.ifname);
    for (napi, allowed) in &end.napi_threads {
        // The thread netlink named is a NAPI thread of this interface (its name keeps the id
        // of the instance it was made for; a re-added instance may get a new id).
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", napi.pid.expect("threaded"))).unwrap();
        assert!(comm.starts_with(&format!("napi/{}-", end.ifname)), "{comm} {end:?}");
        assert_eq!(allowed, &[core], "{end:?}");
    }
}

/// Sends `BYTES` from the kernel end to a kernel socket on the app end, which echoes them back.
fn echo_through(lab: &Lab) {
    // Sockets stay in the namespace they were created in, whichever thread uses them later.
    let listener = {
        let _inside = NetnsEnter::enter(lab.app_ns()).expect("enter app");
        TcpListener::bind(SocketAddrV4::new(APP_ADDR, PORT)).expect("bind in the app namespace")
    };
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = vec![0u8; 64 << 10];
        let mut echoed = 0;
        while echoed < BYTES {
            let n = s.read(&mut buf).expect("server read");
            assert!(n > 0, "client closed early");
            s.write_all(&buf[..n]).expect("server write");
            echoed += n;
        }
    });
    let client = {
        let _inside = NetnsEnter::enter(lab.kern_ns()).expect("enter kern");
        TcpStream::connect_timeout(&SocketAddrV4::new(APP_ADDR, PORT).into(), Duration::from_secs(5))
            .expect("connect from the kernel namespace")
    };
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = client.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let mut client = client;
        let chunk: Vec<u8> = (0..64 << 10).map(|i| (i % 251) as u8).collect();
        for _ in 0..BYTES / chunk.len() {
            client.write_all(&chunk).expect("client write");
        }
    });
    let mut got = vec![0u8; BYTES];
    reader.read_exact(&mut got).expect("echo back");
    assert!(got.iter().enumerate().all(|(i, &b)| b == ((i % (64 << 10)) % 251) as u8), "echo corrupted");
    writer.join().unwrap();
    server.join().unwrap();
}

#[test]
fn two_machine_placement_is_applied_and_traffic_flows_both_ways() {
    let (app_core, kern_core) = cores();
    let placement = Placement::PerSide { app_core, kern_core };
    let lab = LabGuard::up(LabConfig { placement, ..LabConfig::new(&unique("place")) }).expect("lab up");
    let [app, kern] = lab.placement_state().expect("read back");
    println!("{app:?}\n{kern:?}");
    assert_eq!(app.ifname, APP_IF);
    // The kernel end sends without TSO (frames into the app end take NAPI); the app end with.
    assert_pinned(&app, app_core, false);
    assert_pinned(&kern, kern_core, true);

    // A kernel socket on the app end so both directions run kernel TCP through the placement.
    lab.exec_app("ip", &["addr", "add", &format!("{APP_ADDR}/24"), "dev", APP_IF]).expect("app address");
    let napi_pid = app.napi_threads[0].0.pid.unwrap();
    let before = runtime_ns(napi_pid);
    echo_through(&lab);
    // The kernel end sends without TSO (the lab turns tx offloads off), so its frames take
    // veth's NAPI path into the app end: the pinned thread, not the sender, received them.
    let ran = runtime_ns(napi_pid) - before;
    assert!(ran > 0, "the app end's NAPI thread did no work");

    // Up again is idempotent and keeps the pinning (same threads).
    lab.up().expect("second up");
    let [again, _] = lab.placement_state().expect("read back");
    assert_eq!(again.napi_threads, app.napi_threads);

    // For a while veth's own placement (busy-polling benchmarks), then back: new NAPI
    // threads, pinned again.
    lab.apply_placement_as(Placement::SenderCore).expect("one machine for a while");
    let [app_1m, kern_1m] = lab.placement_state().expect("read back");
    assert!(app_1m.napi_threads.is_empty() && kern_1m.napi_threads.is_empty(), "{app_1m:?} {kern_1m:?}");
    assert!(!app_1m.threaded && !kern_1m.threaded, "{app_1m:?} {kern_1m:?}");
    lab.apply_placement().expect("back to two machines");
    let [app, kern] = lab.placement_state().expect("read back");
    assert_pinned(&app, app_core, false);
    assert_pinned(&kern, kern_core, true);
}

#[test]
fn retuning_to_one_machine_undoes_the_placement() {
    let name = unique("unplace");
    let placement = Placement::PerSide { app_core: cores().0, kern_core: 0 };
    let lab = LabGuard::up(LabConfig { placement, ..LabConfig::new(&name) }).expect("lab up");
    let plain = Lab::new(LabConfig::new(&name)).expect("config");
    plain.up().expect("re-tune");
    for end in plain.placement_state().expect("read back") {
        assert!(end.rps_cpus.iter().all(|m| m.trim_start_matches('0').is_empty()), "{end:?}");
        assert!(end.napi_threads.is_empty(), "GRO off and no XDP: no NAPI left: {end:?}");
    }
    let gro = plain.exec_app("ethtool", &["-k", APP_IF]).expect("ethtool -k");
    assert!(gro.contains("generic-receive-offload: off"), "{gro}");
    drop(lab);
}

#[test]
fn placement_cores_must_exist() {
    let placement = Placement::PerSide { app_core: 4096, kern_core: 0 };
    assert!(Lab::new(LabConfig { placement, ..LabConfig::new("ok") }).is_err());
}
