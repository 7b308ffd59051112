//! AF_XDP socket set-up on veth: zero-copy is refused with a clear error (copy mode works),
//! a queue can be reopened right after it was closed, busy-polling options are accepted, and
//! bad configurations are refused before touching the kernel. Needs root.

mod afxdp_util;

use afxdp_util::unique;
use linerate_driver::afxdp::{AfXdpConfig, AfXdpDevice, AfXdpError, BindMode, BusyPoll, XdpMode, XdpProgram};
use linerate_driver::lab::{LabConfig, LabGuard};
use linerate_stack::device::Device;

#[test]
fn veth_refuses_zero_copy_and_auto_falls_back_to_copy() {
    let lab = LabGuard::up(LabConfig::new(&unique("zc"))).expect("lab up");
    let _inside = lab.enter_app().expect("enter app namespace");
    let program = XdpProgram::attach(lab.app_if(), lab.app_addr(), XdpMode::Native).expect("attach");
    let zc = AfXdpConfig { bind: BindMode::ZeroCopy, ..AfXdpConfig::default() };
    let err = AfXdpDevice::open(&program, 0, &zc).expect_err("veth has no zero-copy");
    assert!(matches!(err, AfXdpError::ZeroCopyUnsupported { .. }), "{err}");
    let dev = AfXdpDevice::open(&program, 0, &AfXdpConfig::default()).expect("auto bind");
    assert!(!dev.zero_copy());
}

#[test]
fn a_queue_can_be_reopened_right_after_closing() {
    let lab = LabGuard::up(LabConfig::new(&unique("rb"))).expect("lab up");
    let _inside = lab.enter_app().expect("enter app namespace");
    let program = XdpProgram::attach(lab.app_if(), lab.app_addr(), XdpMode::Native).expect("attach");
    for round in 0..5 {
        let dev = AfXdpDevice::open(&program, 0, &AfXdpConfig::default())
            .unwrap_or_else(|e| panic!("reopen round {round}: {e}"));
        dev.check_frame_accounting().expect("accounting");
    }
    // A queue with a live socket is really busy: the second bind is refused, not stolen.
    let _first = AfXdpDevice::open(&program, 0, &AfXdpConfig::default()).expect("open");
    let err = AfXdpDevice::open(&program, 0, &AfXdpConfig::default()).expect_err("queue in use");
    assert!(matches!(err, AfXdpError::QueueBusy { .. }), "{err}");
}

#[test]
fn busy_polling_and_large_frames_are_accepted() {
    let lab = LabGuard::up(LabConfig { mtu: 3000, ..LabConfig::new(&unique("bp")) }).expect("lab up");
    let _inside = lab.enter_app().expect("enter app namespace");
    let program = XdpProgram::attach(lab.app_if(), lab.app_addr(), XdpMode::Generic).expect("attach");
    let config = AfXdpConfig {
        frame_size: 4096,
        frame_count: 1024,
        ring_size: 512,
        busy_poll: Some(BusyPoll { timeout_us: 20, budget: 64 }),
        ..AfXdpConfig::default()
    };
    let dev = AfXdpDevice::open(&program, 0, &config).expect("open with busy polling");
    assert_eq!(dev.capabilities().mtu, 3000);
    let acc = dev.check_frame_accounting().expect("accounting");
    assert_eq!(acc.total, 1024);
    assert_eq!(acc.free, 1024 - 512);
}

#[test]
fn bad_configurations_are_refused_with_a_reason() {
    let lab = LabGuard::up(LabConfig { mtu: 3000, ..LabConfig::new(&unique("bc")) }).expect("lab up");
    let _inside = lab.enter_app().expect("enter app namespace");
    let program = XdpProgram::attach(lab.app_if(), lab.app_addr(), XdpMode::Native).expect("attach");
    let cases = [
        (AfXdpConfig { frame_size: 3000, ..AfXdpConfig::default() }, "frame_size"),
        (AfXdpConfig { frame_count: 1000, ..AfXdpConfig::default() }, "frame_count"),
        (AfXdpConfig::default(), "use frame_size 4096"), // MTU 3000 does not fit 2048-byte frames
    ];
    for (config, needle) in cases {
        let err = AfXdpDevice::open(&program, 0, &config).expect_err(needle);
        assert!(err.to_string().contains(needle), "{err}");
    }
    let err = AfXdpDevice::open(&program, 7, &AfXdpConfig { frame_size: 4096, ..AfXdpConfig::default() })
        .expect_err("queue 7 of a single-queue veth");
    assert!(matches!(err, AfXdpError::NoSuchQueue { queue: 7, queues: 1, .. }), "{err}");
}
