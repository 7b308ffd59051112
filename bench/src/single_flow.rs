//! Scenario 1, second half: one TCP flow over the same lab link the raw ceiling measured, first
//! through our engine on both ends (AF_XDP sender in the app namespace on the server core,
//! AF_XDP receiver in the kernel namespace on the client core), then through the kernel's own
//! TCP (iperf3, pinned the same way). Issue 6 asks for the engine at ≥ 90 % of the reflector's
//! frame rate at the same frame size (1,514 B frames: MSS 1,448 with timestamps).
//!
//! Promises: bounded (a warm-up, `secs` measured, a fixed grace for setup); the kernel owns an
//! address only while its own TCP is measured; both engines' XDP programs are detached when
//! their threads end. Must not: run outside the lab.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use linerate_app::bypass::{Bypass, LinkOptions};
use linerate_driver::afxdp::{AfXdpDevice, DeviceStats, TxChecksum, XdpMode};
use linerate_driver::lab::{netns_command, Lab};
use linerate_stack::engine::Event;
use linerate_stack::tcp::SocketOptions;
use linerate_stack::wire::Ipv4Address;

use crate::cpu_window::{gettid, Window, WindowReport};

const PORT: u16 = 5201;
const WARMUP: Duration = Duration::from_millis(500);
/// Ethernet + IPv4 + TCP with the timestamp option: what each data frame adds to its payload.
const FRAME_OVERHEAD: u64 = 14 + 20 + 32;

/// One single-flow measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowSample {
    /// Payload bytes per second, in Gbit/s.
    pub goodput_gbit: f64,
    /// Data frames per second (millions); `None` where the tool does not count frames.
    pub mpps: Option<f64>,
    /// Frames on the wire (payload plus headers), Gbit/s; comparable with the reflector's.
    pub wire_gbit: Option<f64>,
    pub retransmits: u64,
    /// The smaller share of the window the sender or the receiver ran (engine only; see
    /// [`WindowReport::slowest_thread_share`]).
    pub slowest_thread_share: Option<f64>,
}

/// What the receiving engine has counted so far, shared with the sender's thread.
#[derive(Debug, Default)]
struct Progress {
    bytes: AtomicU64,
    frames: AtomicU64,
    /// The receiver's transmitted frames (ACKs), tx kicks (`sendto`) and rx wakeups.
    acks: AtomicU64,
    tx_kicks: AtomicU64,
    rx_wakeups: AtomicU64,
    listening: AtomicBool,
    /// The receiver thread's kernel id (for the CPU window).
    receiver_tid: AtomicI32,
}

/// Sum of the device counters of every queue of a bypass link.
fn device_stats(b: &Bypass) -> DeviceStats {
    b.nic.queues().iter().map(AfXdpDevice::stats).fold(DeviceStats::default(), |a, s| DeviceStats {
        rx_frames: a.rx_frames + s.rx_frames,
        tx_frames: a.tx_frames + s.tx_frames,
        tx_kicks: a.tx_kicks + s.tx_kicks,
        tx_kicks_again: a.tx_kicks_again + s.tx_kicks_again,
        tx_kicks_stalled: a.tx_kicks_stalled + s.tx_kicks_stalled,
        rx_wakeups: a.rx_wakeups + s.rx_wakeups,
        ..a
    })
}

/// Syscalls and ACKs per data frame over the measured window, printed with the sample: the
/// engine path should kick no more often than the reflector does per frame.
fn print_io(sender: (DeviceStats, DeviceStats), receiver: [(u64, u64); 4]) {
    let (s0, s1) = sender;
    let [data, acks, kicks, wakeups] = receiver.map(|(a, b)| (b - a) as f64);
    let data = data.max(1.0);
    println!(
        "    engine I/O per data frame: sender {:.3} sendto ({:.3} EAGAIN, {:.3} of them moved nothing), {:.3} rx wakeups, {:.3} frames out; receiver {:.3} ACKs, {:.3} sendto, {:.3} rx wakeups",
        (s1.tx_kicks - s0.tx_kicks) as f64 / data,
        (s1.tx_kicks_again - s0.tx_kicks_again) as f64 / data,
        (s1.tx_kicks_stalled - s0.tx_kicks_stalled) as f64 / data,
        (s1.rx_wakeups - s0.rx_wakeups) as f64 / data,
        (s1.tx_frames - s0.tx_frames) as f64 / data,
        acks / data,
        kicks / data,
        wakeups / data,
    );
}

fn options(lab: &Lab, app_side: bool) -> LinkOptions {
    let (iface, addr, ns) = if app_side {
        (lab.app_if(), lab.app_addr(), lab.app_ns())
    } else {
        (lab.kern_if(), lab.kern_addr(), lab.kern_ns())
    };
    LinkOptions {
        iface: iface.to_owned(),
        addr,
        prefix_len: 24,
        gateway: None,
        xdp_mode: XdpMode::Native,
        netns: Some(ns.to_owned()),
        pcap: None,
        // Both ends run XDP on the same veth: partial checksums would reach the other's XDP.
        tx_checksum: TxChecksum::Software,
    }
}

fn buffers() -> SocketOptions {
    SocketOptions { send_buffer: 4 << 20, recv_buffer: 4 << 20, ..SocketOptions::default() }
}

/// Engine → engine over AF_XDP on both ends. The caller has removed the kernel namespace's
/// address (our receiver takes it over).
pub fn engine(lab: &Lab, secs: f64, cores: (usize, usize)) -> anyhow::Result<FlowSample> {
    let (client_core, server_core) = cores;
    let progress = Arc::new(Progress::default());
    let stop = Arc::new(AtomicBool::new(false));
    let receiver = {
        let (progress, stop, link) = (Arc::clone(&progress), Arc::clone(&stop), options(lab, false));
        thread::spawn(move || receive(&link, client_core, &progress, &stop))
    };
    // Its own thread: pinning must not stick to the caller (whose children inherit it).
    let sender = {
        let (progress, link) = (Arc::clone(&progress), options(lab, true));
        thread::spawn(move || send(&link, (server_core, client_core), secs, &progress))
    };
    let sent = sender.join().map_err(|_| anyhow::anyhow!("sender thread panicked"))?;
    stop.store(true, Ordering::Relaxed);
    let received = receiver.join().map_err(|_| anyhow::anyhow!("receiver thread panicked"))?;
    received.context("engine receiver")?;
    sent.context("engine sender")
}

fn receive(link: &LinkOptions, core: usize, progress: &Progress, stop: &AtomicBool) -> anyhow::Result<()> {
    crate::sys::pin_to(core)?;
    progress.receiver_tid.store(gettid(), Ordering::Release);
    let mut b = Bypass::open(link)?;
    let l = b.engine.listen(PORT, 8, Some(buffers()))?;
    progress.listening.store(true, Ordering::Release);
    let mut conn = None;
    let mut scratch = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let now = b.clock.now();
        b.receive(now);
        while let Some(ev) = b.engine.poll_event() {
            if let Event::Incoming(_) = ev {
                conn = b.engine.accept(l)?.or(conn);
            }
        }
        if let Some(c) = conn {
            while let Ok(n) = b.engine.read(now, c, &mut scratch) {
                if n == 0 {
                    break;
                }
                bytes += n as u64;
            }
        }
        b.transmit(now);
        progress.bytes.store(bytes, Ordering::Relaxed);
        let stats = device_stats(&b);
        progress.frames.store(stats.rx_frames, Ordering::Relaxed);
        progress.acks.store(stats.tx_frames, Ordering::Relaxed);
        progress.tx_kicks.store(stats.tx_kicks, Ordering::Relaxed);
        progress.rx_wakeups.store(stats.rx_wakeups, Ordering::Relaxed);
    }
    // Where lost data went: the socket's own drops (full rx ring, empty fill ring) or the link.
    println!(
        "    engine receiver: {} frames dropped by the kernel at our AF_XDP socket",
        b.nic.kernel_drops()
    );
    Ok(())
}

/// `cores`: the sender's own, then the receiver's.
fn send(
    link: &LinkOptions,
    cores: (usize, usize),
    secs: f64,
    progress: &Progress,
) -> anyhow::Result<FlowSample> {
    crate::sys::pin_to(cores.0)?;
    let mut b = Bypass::open(link)?;
    let setup_deadline = Instant::now() + Duration::from_secs(5);
    while !progress.listening.load(Ordering::Acquire) {
        anyhow::ensure!(Instant::now() < setup_deadline, "the receiver did not start");
        thread::yield_now();
    }
    let server = (Ipv4Address(link_peer(link).octets()), PORT);
    let c = b.engine.connect(b.clock.now(), server, None, Some(buffers()))?;
    let data = vec![0x5au8; 256 * 1024];
    let start = Instant::now();
    let mut mark: Option<(Instant, u64, u64)> = None;
    let receiver_io = || {
        [&progress.frames, &progress.acks, &progress.tx_kicks, &progress.rx_wakeups]
            .map(|c| c.load(Ordering::Relaxed))
    };
    let (mut sender0, mut receiver0) = (DeviceStats::default(), [0u64; 4]);
    let mut window = None;
    let sample = loop {
        let now = b.clock.now();
        b.receive(now);
        while let Some(ev) = b.engine.poll_event() {
            if let Event::Closed { error: Some(e), .. } = ev {
                anyhow::bail!("the flow failed: {e}");
            }
        }
        while let Ok(n) = b.engine.write(now, c, &data) {
            if n == 0 {
                break;
            }
        }
        b.transmit(now);
        let elapsed = start.elapsed();
        anyhow::ensure!(elapsed < WARMUP + Duration::from_secs_f64(secs) + Duration::from_secs(10), "no end");
        let counters = || (progress.bytes.load(Ordering::Relaxed), progress.frames.load(Ordering::Relaxed));
        match mark {
            None if elapsed >= WARMUP => {
                let (bytes, frames) = counters();
                anyhow::ensure!(bytes > 0, "nothing arrived during the warm-up: {:?}", b.engine.stats());
                mark = Some((Instant::now(), bytes, frames));
                (sender0, receiver0) = (device_stats(&b), receiver_io());
                let threads =
                    [("sender", gettid()), ("receiver", progress.receiver_tid.load(Ordering::Acquire))];
                window = Some(Window::start(&threads, &[cores.1, cores.0]));
            }
            Some((t0, b0, f0)) if t0.elapsed().as_secs_f64() >= secs => {
                let (bytes, frames) = counters();
                let dt = t0.elapsed().as_secs_f64();
                let (db, df) = ((bytes - b0) as f64, (frames - f0) as f64);
                let receiver1 = receiver_io();
                print_io((sender0, device_stats(&b)), core::array::from_fn(|i| (receiver0[i], receiver1[i])));
                let cpu = window.as_ref().map(Window::finish);
                if let Some(cpu) = &cpu {
                    println!("    engine CPU: {cpu}");
                }
                break FlowSample {
                    goodput_gbit: db * 8.0 / dt / 1e9,
                    mpps: Some(df / dt / 1e6),
                    wire_gbit: Some((db + df * FRAME_OVERHEAD as f64) * 8.0 / dt / 1e9),
                    retransmits: b.engine.stats().retrans_segs,
                    slowest_thread_share: cpu.as_ref().and_then(WindowReport::slowest_thread_share),
                };
            }
            _ => {}
        }
    };
    let _ = b.engine.abort(b.clock.now(), c);
    b.transmit(b.clock.now());
    Ok(sample)
}

/// The other end of the lab link from `link`'s address.
fn link_peer(link: &LinkOptions) -> std::net::Ipv4Addr {
    let o = link.addr.octets();
    std::net::Ipv4Addr::new(o[0], o[1], o[2], if o[3] == 1 { 2 } else { 1 })
}

/// The kernel's TCP: `iperf3` server in the app namespace (which must own the app address),
/// client in the kernel namespace, each pinned with `-A`.
pub fn kernel(lab: &Lab, secs: f64, cores: (usize, usize)) -> anyhow::Result<FlowSample> {
    let (client_core, server_core) = cores;
    let app = lab.app_addr().to_string();
    let mut server = netns_command(lab.app_ns(), "iperf3");
    server.args(["-s", "-1", "-B", &app, "-A", &server_core.to_string()]);
    let mut server = ServerProcess(
        server
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("cannot start iperf3 (install it: apt-get install iperf3)")?,
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let listening = || {
        let out = netns_command(lab.app_ns(), "ss").args(["-Hltn", "sport = :5201"]).output();
        out.is_ok_and(|o| !o.stdout.is_empty())
    };
    while !listening() {
        anyhow::ensure!(Instant::now() < deadline, "iperf3 server did not start");
        thread::sleep(Duration::from_millis(20));
    }
    let t = format!("{}", secs.ceil().max(1.0) as u64);
    let out = netns_command(lab.kern_ns(), "iperf3")
        .args(["-c", &app, "-t", &t, "-J", "-O", "1", "-A", &client_core.to_string()])
        .output()
        .context("cannot run the iperf3 client")?;
    let _ = server.0.wait();
    anyhow::ensure!(out.status.success(), "iperf3 client failed: {}", String::from_utf8_lossy(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("iperf3 -J output")?;
    let received = &v["end"]["sum_received"];
    let bps = received["bits_per_second"].as_f64().context("iperf3: no end.sum_received")?;
    let retransmits = v["end"]["sum_sent"]["retransmits"].as_u64().unwrap_or(0);
    Ok(FlowSample {
        goodput_gbit: bps / 1e9,
        mpps: None,
        wire_gbit: None,
        retransmits,
        slowest_thread_share: None,
    })
}

/// iperf3's server, killed if still running when dropped.
struct ServerProcess(std::process::Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
