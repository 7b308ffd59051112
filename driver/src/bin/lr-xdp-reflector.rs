//! `lr-xdp-reflector [--secs S] [--sizes 64,1514] [--mode native|generic] [--window N]`:
//! raw AF_XDP throughput on the lab link, no TCP involved.
//!
//! Builds a private lab, runs an AF_XDP generator in the kernel namespace (pinned to the first
//! CPU) and an AF_XDP reflector in the app namespace (pinned to the second), and for each frame
//! size reports the reflected rate in Mpps and Gbit/s (Ethernet bytes without FCS, one
//! direction), plus the cores each side actually ran on. Removes the lab on exit.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use linerate_driver::afxdp::{AfXdpConfig, AfXdpDevice, XdpMode, XdpProgram};
use linerate_driver::lab::traffic::{FlowSpec, Generator, Reflector};
use linerate_driver::lab::{LabConfig, LabGuard};

struct Options {
    secs: u64,
    sizes: Vec<usize>,
    mode: XdpMode,
    window: u32,
}

fn parse_options() -> Result<Options, String> {
    let mut o = Options { secs: 5, sizes: vec![64, 1514], mode: XdpMode::Native, window: 1024 };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |_| format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--secs" => o.secs = value.parse().map_err(bad)?,
            "--window" => o.window = value.parse().map_err(bad)?,
            "--sizes" => {
                o.sizes = value.split(',').map(|s| s.parse().map_err(bad)).collect::<Result<_, _>>()?;
            }
            "--mode" => {
                o.mode = match value.as_str() {
                    "native" => XdpMode::Native,
                    "generic" => XdpMode::Generic,
                    _ => return Err(format!("--mode is native or generic, not {value}")),
                }
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(o)
}

/// Pins the calling thread to `cpu` (modulo the CPU count); returns whether it worked.
fn pin_to(cpu: usize) -> bool {
    let cpus = thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    // SAFETY: cpu_set_t is plain data; sched_setaffinity(0) affects only this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu % cpus, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// CPU time (user + system) the calling thread has used so far.
fn thread_cpu_time() -> Duration {
    // SAFETY: rusage is plain data filled by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn current_cpu() -> i32 {
    // SAFETY: no arguments, no memory touched.
    unsafe { libc::sched_getcpu() }
}

fn open(
    lab: &LabGuard,
    app_side: bool,
    mode: XdpMode,
    config: &AfXdpConfig,
) -> Result<(XdpProgram, AfXdpDevice), String> {
    let (_inside, ifname, addr) = if app_side {
        (lab.enter_app().map_err(|e| e.to_string())?, lab.app_if(), lab.app_addr())
    } else {
        (lab.enter_kern().map_err(|e| e.to_string())?, lab.kern_if(), lab.kern_addr())
    };
    let program = XdpProgram::attach(ifname, addr, mode).map_err(|e| e.to_string())?;
    let device = AfXdpDevice::open(&program, 0, config).map_err(|e| e.to_string())?;
    Ok((program, device))
}

fn run(o: &Options) -> Result<(), String> {
    let lab =
        LabGuard::up(LabConfig { mtu: 1500, ..LabConfig::new(&format!("bench-{}", std::process::id())) })
            .map_err(|e| e.to_string())?;
    let config = AfXdpConfig::default();
    let (_app_prog, mut reflector_dev) = open(&lab, true, o.mode, &config)?;
    let (kern_prog, mut gen_dev) = open(&lab, false, o.mode, &config)?;
    println!(
        "lab {}: XDP {} mode, {} bind, UMEM {} frames x {} B ({} pages)",
        lab.config().name,
        kern_prog.mode().as_str(),
        if gen_dev.zero_copy() { "zero-copy" } else { "copy" },
        config.frame_count,
        config.frame_size,
        if gen_dev.huge_pages() { "2 MiB" } else { "4 KiB" },
    );
    let stop = Arc::new(AtomicBool::new(false));
    let reflector = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let pinned = pin_to(1);
            let (start, cpu0) = (Instant::now(), thread_cpu_time());
            let mut r = Reflector::default();
            while !stop.load(Ordering::Relaxed) {
                r.step(&mut reflector_dev);
            }
            let share = (thread_cpu_time() - cpu0).as_secs_f64() / start.elapsed().as_secs_f64();
            (r.reflected, current_cpu(), pinned, reflector_dev, share)
        })
    };
    let pinned = pin_to(0);
    for &size in &o.sizes {
        let spec = FlowSpec {
            src_mac: gen_dev.mac(),
            dst_mac: reflector_mac(&lab)?,
            src_ip: lab.kern_addr(),
            dst_ip: lab.app_addr(),
            src_port: 40_000,
            dst_port: 7,
            frame_len: size,
        };
        let mut g = Generator::new(spec, o.window);
        let warmup = Instant::now();
        while warmup.elapsed() < Duration::from_millis(300) {
            g.step(&mut gen_dev, true);
        }
        let (received0, start, cpu0) = (g.received, Instant::now(), thread_cpu_time());
        while start.elapsed() < Duration::from_secs(o.secs) {
            g.step(&mut gen_dev, true);
        }
        let (frames, secs) = ((g.received - received0) as f64, start.elapsed().as_secs_f64());
        let cpu_share = (thread_cpu_time() - cpu0).as_secs_f64() / secs;
        let drain = Instant::now();
        while !g.settled() && drain.elapsed() < Duration::from_millis(200) {
            g.step(&mut gen_dev, false);
        }
        println!(
            "{size:>5} B frames: {:.3} Mpps, {:.2} Gbit/s reflected ({} sent, {} lost, generator on CPU {}{}, \
             got {:.0}% of its CPU)",
            frames / secs / 1e6,
            frames * size as f64 * 8.0 / secs / 1e9,
            g.sent,
            g.lost,
            current_cpu(),
            if pinned { ", pinned" } else { "" },
            cpu_share * 100.0,
        );
    }
    stop.store(true, Ordering::Relaxed);
    let (reflected, cpu, pinned, reflector_dev, share) =
        reflector.join().map_err(|_| "reflector thread panicked".to_string())?;
    println!(
        "reflector: {reflected} frames on CPU {cpu}{}, got {:.0}% of its CPU",
        if pinned { ", pinned" } else { "" },
        share * 100.0
    );
    for dev in [&gen_dev, &reflector_dev] {
        dev.check_frame_accounting().map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn reflector_mac(lab: &LabGuard) -> Result<[u8; 6], String> {
    let _inside = lab.enter_app().map_err(|e| e.to_string())?;
    linerate_driver::afxdp::interface_mac(lab.app_if()).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let result = parse_options().and_then(|o| run(&o));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lr-xdp-reflector: {e}");
            ExitCode::FAILURE
        }
    }
}
