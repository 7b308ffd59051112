//! The AF_PACKET fallback device answers ARP and ping in the lab, like the AF_XDP device does.
//! Needs root.

mod afxdp_util;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use afxdp_util::{kernel_ping, respond_on, unique, wait_readable};
use linerate_driver::afxdp::AfPacketDevice;
use linerate_driver::lab::{LabConfig, LabGuard};
use linerate_stack::device::Device;

#[test]
fn af_packet_answers_arp_and_ping() {
    let lab = LabGuard::up(LabConfig::new(&unique("ap"))).expect("lab up");
    let mut dev = {
        let _inside = lab.enter_app().expect("enter app namespace");
        AfPacketDevice::open(lab.app_if(), 32).expect("open AF_PACKET")
    };
    assert_eq!(dev.capabilities().mtu, 1500);
    let stop = Arc::new(AtomicBool::new(false));
    let responder = {
        let (stop, addr) = (Arc::clone(&stop), lab.app_addr());
        thread::spawn(move || {
            let (mut replies, mac) = (Vec::new(), dev.mac());
            while !stop.load(Ordering::Relaxed) {
                if respond_on(&mut dev, mac, addr, &mut replies) == 0 {
                    wait_readable(&[dev.raw_fd()], 20);
                }
            }
            dev
        })
    };
    let answered = {
        let _inside = lab.enter_kern().expect("enter kernel namespace");
        kernel_ping(lab.app_addr(), 3, 2000)
    };
    stop.store(true, Ordering::Relaxed);
    let dev = responder.join().expect("responder thread");
    assert_eq!(answered, 3);
    let stats = dev.stats();
    assert!(stats.rx_frames >= 4 && stats.tx_frames >= 4, "{stats:?}");
    assert_eq!(stats.tx_dropped + stats.rx_truncated, 0, "{stats:?}");
}
