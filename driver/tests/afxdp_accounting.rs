//! Frame accounting under load: at least a million frames go from an AF_XDP generator in the
//! kernel namespace to an AF_XDP reflector in the app namespace and back, then both devices must
//! show every UMEM frame back in its resting place (receive frames posted, transmit frames
//! free, nothing lent or in flight). Needs root; bounded to well under 60 s.

mod afxdp_util;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use afxdp_util::{open_app, unique, wait_readable};
use linerate_driver::afxdp::{AfXdpConfig, AfXdpDevice, FrameAccounting, XdpMode, XdpProgram};
use linerate_driver::lab::traffic::{FlowSpec, Generator, Reflector};
use linerate_driver::lab::{LabConfig, LabGuard};
use linerate_stack::device::Device;
use linerate_stack::time::Instant as Now;

const FRAMES: u64 = 1_000_000;
const TIME_LIMIT: Duration = Duration::from_secs(45);

/// Flushes until no transmit frame is left in the kernel, then returns the accounting.
fn settle(dev: &mut AfXdpDevice) -> FrameAccounting {
    for _ in 0..10_000 {
        dev.flush(Now::ZERO);
        let acc = dev.check_frame_accounting().expect("frame accounting");
        if acc.tx_ring + acc.kernel_tx + acc.completion_ring == 0 {
            return acc;
        }
        wait_readable(&[dev.raw_fd()], 1);
    }
    panic!("transmit frames never completed: {:?}", dev.check_frame_accounting());
}

/// Every frame is where an idle device keeps it: the receive half posted, the rest free.
fn assert_at_rest(acc: FrameAccounting, config: &AfXdpConfig) {
    let rx_half = (config.frame_count / 2).min(config.ring_size);
    assert_eq!(acc.total, config.frame_count);
    assert_eq!(acc.lent, 0, "{acc:?}");
    assert_eq!(acc.free, config.frame_count - rx_half, "{acc:?}");
    assert_eq!(acc.fill_ring + acc.kernel_rx + acc.rx_ring, rx_half, "{acc:?}");
    assert_eq!(acc.placed(), acc.total, "{acc:?}");
}

#[test]
fn a_million_frames_leave_no_frame_behind() {
    let lab = LabGuard::up(LabConfig::new(&unique("acct"))).expect("lab up");
    let config = AfXdpConfig::default();
    let (_app_program, mut app) = open_app(&lab, XdpMode::Native, &config);
    let mut reflector_dev = app.pop().expect("one app queue");
    let (_kern_program, mut gen_dev) = {
        let _inside = lab.enter_kern().expect("enter kernel namespace");
        let program = XdpProgram::attach(lab.kern_if(), lab.kern_addr(), XdpMode::Native)
            .expect("attach (kernel side)");
        let dev = AfXdpDevice::open(&program, 0, &config).expect("open (kernel side)");
        (program, dev)
    };

    let stop = Arc::new(AtomicBool::new(false));
    let reflector = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut r = Reflector::default();
            while !stop.load(Ordering::Relaxed) {
                if r.step(&mut reflector_dev) == 0 {
                    wait_readable(&[reflector_dev.raw_fd()], 5);
                }
            }
            (r, reflector_dev)
        })
    };

    let spec = FlowSpec {
        src_mac: gen_dev.mac(),
        dst_mac: reflector_mac(&lab),
        src_ip: lab.kern_addr(),
        dst_ip: lab.app_addr(),
        src_port: 40_000,
        dst_port: 7,
        frame_len: 64,
    };
    let mut generator = Generator::new(spec, 512);
    let start = Instant::now();
    while generator.received < FRAMES && start.elapsed() < TIME_LIMIT {
        generator.step(&mut gen_dev, true);
    }
    let drain_start = Instant::now();
    while !generator.settled() && drain_start.elapsed() < Duration::from_secs(1) {
        generator.step(&mut gen_dev, false);
    }
    stop.store(true, Ordering::Relaxed);
    let (reflector, mut reflector_dev) = reflector.join().expect("reflector thread");
    let elapsed = start.elapsed();
    eprintln!(
        "sent {} received {} lost {} reflected {} (dropped {}) in {elapsed:?}",
        generator.sent, generator.received, generator.lost, reflector.reflected, reflector.dropped
    );
    eprintln!(
        "generator {:?} {:?}",
        gen_dev.stats(),
        gen_dev.kernel_statistics().map(|s| (s.rx_dropped, s.rx_ring_full, s.rx_fill_ring_empty_descs))
    );
    eprintln!(
        "reflector {:?} {:?}",
        reflector_dev.stats(),
        reflector_dev.kernel_statistics().map(|s| (s.rx_dropped, s.rx_ring_full, s.rx_fill_ring_empty_descs))
    );
    assert!(
        generator.received >= FRAMES,
        "only {} frames came back within {TIME_LIMIT:?}",
        generator.received
    );
    assert!(reflector.reflected >= FRAMES);

    for dev in [&mut gen_dev, &mut reflector_dev] {
        assert_eq!(dev.stats().invalid_descriptors, 0);
        let acc = settle(dev);
        assert_at_rest(acc, &config);
    }
    assert_eq!(gen_dev.stats().tx_frames, generator.sent);
}

fn reflector_mac(lab: &LabGuard) -> [u8; 6] {
    let _inside = lab.enter_app().expect("enter app namespace");
    linerate_driver::afxdp::interface_mac(lab.app_if()).expect("app MAC")
}
