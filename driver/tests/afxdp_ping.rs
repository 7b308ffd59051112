//! ARP and ping through AF_XDP: the kernel namespace pings our address with no static neighbour,
//! and a minimal responder on [`AfXdpDevice`] answers. Traffic to other addresses must still
//! reach the app namespace's kernel (the steering program passes it). Needs root.

mod afxdp_util;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use std::net::Ipv4Addr;

use afxdp_util::{kernel_ping, open_app, respond_once, unique, wait_readable};
use linerate_driver::afxdp::{AfXdpConfig, AfXdpDevice, XdpMode};
use linerate_driver::lab::{LabConfig, LabGuard};

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
