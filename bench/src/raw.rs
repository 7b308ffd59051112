//! Scenario 1, the raw ceiling: how many frames per second AF_XDP moves through the lab link
//! with no TCP at all — an AF_XDP generator in the kernel namespace (client core) and an AF_XDP
//! reflector in the app namespace (server core), from `linerate_driver::lab::traffic`.
//!
//! Promises: both XDP programs are detached when this returns (they drop with the devices);
//! each size runs for a bounded time plus a 300 ms warm-up and a 200 ms drain.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cpu_window::{gettid, Window};
use linerate_driver::afxdp::{interface_mac, AfXdpConfig, AfXdpDevice, XdpMode, XdpProgram};
use linerate_driver::lab::traffic::{FlowSpec, Generator, Reflector};
use linerate_driver::lab::Lab;

/// One frame size's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawSample {
    pub frame_len: usize,
    pub mpps: f64,
    pub gbit_per_sec: f64,
    pub lost: u64,
    /// Share of one core the generator thread got while measuring: far below 1 means the
    /// machine was busy and the number says more about it than about AF_XDP.
    pub generator_cpu_share: f64,
    /// The smaller share of the window the generator or the reflector ran (see
    /// [`crate::cpu_window::WindowReport::slowest_thread_share`]).
    pub slowest_thread_share: Option<f64>,
}

fn open(lab: &Lab, app_side: bool, mode: XdpMode) -> anyhow::Result<(XdpProgram, AfXdpDevice)> {
    let (_inside, ifname, addr) = if app_side {
        (lab.enter_app()?, lab.app_if(), lab.app_addr())
    } else {
        (lab.enter_kern()?, lab.kern_if(), lab.kern_addr())
    };
    let program = XdpProgram::attach(ifname, addr, mode)?;
    let device = AfXdpDevice::open(&program, 0, &AfXdpConfig::default())?;
    Ok((program, device))
}

/// Runs the generator/reflector pair for each of `sizes` (Ethernet bytes without FCS).
pub fn measure(
    lab: &Lab,
    sizes: &[usize],
    secs: f64,
    cores: (usize, usize),
) -> anyhow::Result<Vec<RawSample>> {
    let (client_core, server_core) = cores;
    let (_app_prog, mut reflector_dev) = open(lab, true, XdpMode::Native).context("reflector side")?;
    let (_kern_prog, mut gen_dev) = open(lab, false, XdpMode::Native).context("generator side")?;
    let dst_mac = {
        let _inside = lab.enter_app()?;
        interface_mac(lab.app_if())?
    };
    let stop = Arc::new(AtomicBool::new(false));
    let reflector_tid = Arc::new(AtomicI32::new(0));
    let reflector = {
        let (stop, tid) = (Arc::clone(&stop), Arc::clone(&reflector_tid));
        thread::spawn(move || {
            let _ = crate::sys::pin_to(server_core);
            tid.store(gettid(), Ordering::Release);
            let mut r = Reflector::default();
            while !stop.load(Ordering::Relaxed) {
                r.step(&mut reflector_dev);
            }
            reflector_dev
        })
    };
    let spec = |frame_len| FlowSpec {
        src_mac: gen_dev.mac(),
        dst_mac,
        src_ip: lab.kern_addr(),
        dst_ip: lab.app_addr(),
        src_port: 40_000,
        dst_port: 7,
        frame_len,
    };
    let specs: Vec<FlowSpec> = sizes.iter().map(|&s| spec(s)).collect();
    let generator = thread::spawn(move || {
        crate::sys::pin_to(client_core)?;
        // The reflector's thread id, once it has started (it runs until `stop`).
        let started = Instant::now();
        while reflector_tid.load(Ordering::Acquire) == 0 && started.elapsed() < Duration::from_secs(2) {
            thread::yield_now();
        }
        let watch =
            Watch { reflector_tid: reflector_tid.load(Ordering::Acquire), cores: [client_core, server_core] };
        let samples = specs.iter().map(|s| generate(&mut gen_dev, *s, secs, &watch)).collect::<Vec<_>>();
        anyhow::Ok((samples, gen_dev))
    });
    let generated = generator.join().map_err(|_| anyhow::anyhow!("generator thread panicked"));
    stop.store(true, Ordering::Relaxed);
    let reflector_dev = reflector.join().map_err(|_| anyhow::anyhow!("reflector thread panicked"))?;
    let (samples, gen_dev) = generated??;
    let r = reflector_dev.stats();
    println!(
        "    reflector I/O per frame (whole run): {:.3} sendto, {:.3} rx wakeups",
        r.tx_kicks as f64 / r.tx_frames.max(1) as f64,
        r.rx_wakeups as f64 / r.rx_frames.max(1) as f64
    );
    for dev in [&gen_dev, &reflector_dev] {
        dev.check_frame_accounting().map_err(|e| anyhow::anyhow!("frame accounting: {e}"))?;
    }
    Ok(samples)
}

/// The reflector's thread and both pinned cores, watched during each measured window.
struct Watch {
    reflector_tid: i32,
    cores: [usize; 2],
}

fn generate(dev: &mut AfXdpDevice, spec: FlowSpec, secs: f64, watch: &Watch) -> RawSample {
    let mut g = Generator::new(spec, 1024);
    let warmup = Instant::now();
    while warmup.elapsed() < Duration::from_millis(300) {
        g.step(dev, true);
    }
    let (received0, start, cpu0) = (g.received, Instant::now(), crate::sys::thread_cpu_secs());
    let io0 = dev.stats();
    let window = Window::start(&[("generator", gettid()), ("reflector", watch.reflector_tid)], &watch.cores);
    while start.elapsed().as_secs_f64() < secs {
        g.step(dev, true);
    }
    let (frames, elapsed) = ((g.received - received0) as f64, start.elapsed().as_secs_f64());
    let generator_cpu_share = (crate::sys::thread_cpu_secs() - cpu0) / elapsed;
    let io1 = dev.stats();
    let cpu = window.finish();
    println!("    {} B CPU: {cpu}", spec.frame_len);
    println!(
        "    {} B generator I/O per reflected frame: {:.3} sendto, {:.3} rx wakeups",
        spec.frame_len,
        (io1.tx_kicks - io0.tx_kicks) as f64 / frames.max(1.0),
        (io1.rx_wakeups - io0.rx_wakeups) as f64 / frames.max(1.0),
    );
    let drain = Instant::now();
    while !g.settled() && drain.elapsed() < Duration::from_millis(200) {
        g.step(dev, false);
    }
    RawSample {
        frame_len: spec.frame_len,
        mpps: frames / elapsed / 1e6,
        gbit_per_sec: frames * spec.frame_len as f64 * 8.0 / elapsed / 1e9,
        lost: g.lost,
        generator_cpu_share,
        slowest_thread_share: cpu.slowest_thread_share(),
    }
}
