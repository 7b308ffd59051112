//! Shared pieces of the congestion-control scenarios (`cc_*.rs`): engines that run several bulk
//! flows at once through one simulated bottleneck, a sink that counts each flow's goodput, the
//! link shapes the scenarios use, the analytic references (Mathis bound, Jain's index) and the
//! snapshot helper. Everything runs on virtual time; every figure is a pure function of the seed.
#![allow(dead_code)]

use linerate_driver::sim::{Endpoint, LinkConfig, Pair, SimPort, SimRun};
use linerate_stack::congestion::Algorithm;
use linerate_stack::engine::{ConnectionHandle, Engine, EngineConfig, Event, ListenerHandle};
use linerate_stack::tcp::SocketOptions;
use linerate_stack::time::{Duration, Instant};
use linerate_stack::wire::{EthernetAddress, Ipv4Address};
use linerate_stack::Error;

pub const CLIENT_IP: Ipv4Address = Ipv4Address::new(198, 18, 0, 1);
pub const SERVER_IP: Ipv4Address = Ipv4Address::new(198, 18, 0, 2);
pub const PORT: u16 = 5001;
/// The segment size the engines settle on over a 1500-byte MTU with timestamps.
pub const MSS: u64 = 1448;
/// Step budget per scenario: far above what 60 s of a 100 Mbit/s link needs.
pub const MAX_STEPS: u64 = 200_000_000;
/// Frames a scenario's pcap keeps (with `LINERATE_PCAP_DIR`): the handshake, slow start and the
/// first recoveries; all of a 30 s, 100 Mbit/s run would be hundreds of megabytes.
pub const PCAP_FRAMES: u64 = 2_000;
/// The three controllers, in table order.
pub const CONTROLLERS: [Algorithm; 3] = [Algorithm::NewReno, Algorithm::Cubic, Algorithm::Bbr];

/// Socket options selecting `algorithm` (with the default pacing: on, and BBR always paces)
/// with send and receive buffers of `buffer` bytes and Nagle off.
pub fn socket_options(algorithm: Algorithm, buffer: usize) -> SocketOptions {
    SocketOptions {
        recv_buffer: buffer,
        send_buffer: buffer,
        nodelay: true,
        congestion: algorithm,
        ..SocketOptions::default()
    }
}

pub fn engine_config(ip: Ipv4Address, mac_last: u8, seed: u64) -> EngineConfig {
    let mut cfg = EngineConfig::new(ip, 24, EthernetAddress([2, 0, 0, 0, 0, mac_last]), seed);
    cfg.tcp.time_wait = Duration::from_secs(60);
    cfg
}

/// A bottleneck of `rate_bps` with a drop-tail queue of `queue_bdp` bandwidth-delay products
/// (at least 16 frames) and a one-way delay of `rtt / 2`.
pub fn bottleneck(rate_bps: u64, rtt: Duration, queue_bdp: f64) -> LinkConfig {
    let queue = (bdp_bytes(rate_bps, rtt) * queue_bdp) as usize;
    LinkConfig::default().delay(rtt.checked_div_or_zero(2)).bottleneck(rate_bps, queue.max(16 * 1514))
}

/// The reverse (ACK) direction: same delay, no bottleneck, lossless.
pub fn ack_path(rtt: Duration) -> LinkConfig {
    LinkConfig::default().delay(rtt.checked_div_or_zero(2))
}

pub fn bdp_bytes(rate_bps: u64, rtt: Duration) -> f64 {
    rate_bps as f64 / 8.0 * rtt.as_secs_f64()
}

/// Payload goodput a single flow can have on a link of `rate_bps` carrying full-size frames
/// (1514 bytes on the wire for `MSS` bytes of payload).
pub fn payload_capacity_bps(rate_bps: u64) -> f64 {
    rate_bps as f64 * MSS as f64 / 1514.0
}

/// Mathis et al. (1997): a Reno flow's throughput `MSS/RTT · sqrt(3/2) / sqrt(p)` in bit/s,
/// capped by `cap_bps`; the cap alone when `p` is 0.
pub fn mathis_bps(rtt: Duration, p: f64, cap_bps: f64) -> f64 {
    if p <= 0.0 {
        return cap_bps;
    }
    let bound = MSS as f64 * 8.0 / rtt.as_secs_f64() * 1.22 / p.sqrt();
    bound.min(cap_bps)
}

/// RFC 9438 §5.1: CUBIC's average window under a deterministic loss rate `p`, in segments,
/// `max(AVG_W_cubic, AVG_W_est)` with `AVG_W_cubic = ⁴√(C·(3+β)/(4·(1−β))) · RTT^¾ / p^¾`
/// (C = 0.4, β = 0.7) and the Reno-friendly `AVG_W_est = √(3/(2p))`; as bit/s capped by
/// `cap_bps`, the link itself when `p` is 0.
pub fn rfc9438_bps(rtt: Duration, p: f64, cap_bps: f64) -> f64 {
    if p <= 0.0 {
        return cap_bps;
    }
    let (c, beta, rtt_s) = (0.4f64, 0.7f64, rtt.as_secs_f64());
    let cubic = (c * (3.0 + beta) / (4.0 * (1.0 - beta))).powf(0.25) * rtt_s.powf(0.75) / p.powf(0.75);
    let reno_friendly = (3.0 / (2.0 * p)).sqrt();
    (cubic.max(reno_friendly) * MSS as f64 * 8.0 / rtt_s).min(cap_bps)
}

/// splitmix64: the Monte Carlo below needs a few uniform draws and no crate.
struct SplitMix(u64);

impl SplitMix {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Segments sent up to and including the next one lost, each lost with probability `p`.
    fn until_loss(&mut self, p: f64) -> f64 {
        ((1.0 - self.unit()).ln() / (1.0 - p).ln()).ceil().max(1.0)
    }
}

/// The controller's own response to random (Bernoulli) loss, as a round-by-round model of the
/// specification with none of the engine's code: NewReno AIMD(1, 0.5) and RFC 9438 CUBIC (cubic
/// and Reno-friendly regions, fast convergence, growth capped at 1.5·cwnd per round), one
/// reduction per round with a loss, slow start until the first. A round lasts `rtt` stretched by
/// the queue once the window exceeds the path's BDP; a window beyond `queue_bdp` extra BDPs
/// overflows the drop-tail queue. Average goodput over 200,000 rounds after 10,000 of warm-up,
/// in bit/s; `None` for BBR (its model is the engine's).
pub fn response_model_bps(
    algorithm: Algorithm,
    rtt: Duration,
    p: f64,
    rate_bps: u64,
    queue_bdp: f64,
    seed: u64,
) -> Option<f64> {
    const ROUNDS: u32 = 210_000;
    const WARM_UP: u32 = 10_000;
    let (c, beta) = (0.4f64, 0.7f64);
    let cubic = match algorithm {
        Algorithm::Cubic => true,
        Algorithm::NewReno => false,
        Algorithm::Bbr => return None,
    };
    let rtt_s = rtt.as_secs_f64();
    let bdp = bdp_bytes(rate_bps, rtt) / 1514.0;
    let pipe = bdp * (1.0 + queue_bdp);
    let mut rng = SplitMix(seed);
    let mut to_loss = if p > 0.0 { rng.until_loss(p) } else { f64::INFINITY };
    let (mut cwnd, mut slow_start) = (10.0f64, true);
    let (mut w_max, mut k, mut t, mut w_est, mut prior) = (0.0f64, 0.0f64, 0.0f64, cwnd, cwnd);
    let (mut segments, mut seconds) = (0.0f64, 0.0f64);
    for round in 0..ROUNDS {
        let sent = cwnd.floor().max(1.0);
        let duration = rtt_s * (sent / bdp).max(1.0);
        if round >= WARM_UP {
            segments += sent;
            seconds += duration;
        }
        let lost = to_loss <= sent || sent > pipe;
        if to_loss <= sent {
            to_loss = rng.until_loss(p);
        } else {
            to_loss -= sent;
        }
        if lost {
            slow_start = false;
            if cubic {
                w_max = if cwnd < w_max { cwnd * (1.0 + beta) / 2.0 } else { cwnd };
                prior = cwnd;
                cwnd = (cwnd * beta).max(2.0);
                k = ((w_max - cwnd).max(0.0) / c).cbrt();
                (t, w_est) = (0.0, cwnd);
            } else {
                cwnd = (cwnd / 2.0).max(2.0);
            }
        } else if slow_start {
            cwnd *= 2.0;
        } else if cubic {
            t += duration;
            let w_cubic = |t: f64| c * (t - k).powi(3) + w_max;
            w_est += if w_est >= prior { 1.0 } else { 3.0 * (1.0 - beta) / (1.0 + beta) };
            cwnd = if w_cubic(t) < w_est { w_est } else { w_cubic(t + duration).clamp(cwnd, 1.5 * cwnd) };
        } else {
            cwnd += 1.0;
        }
    }
    Some(segments * MSS as f64 * 8.0 / seconds)
}

/// Jain's fairness index of `xs`: 1 when all are equal, 1/n when one takes everything.
pub fn jain(xs: &[f64]) -> f64 {
    let sum: f64 = xs.iter().sum();
    let squares: f64 = xs.iter().map(|x| x * x).sum();
    if squares == 0.0 {
        return 0.0;
    }
    sum * sum / (xs.len() as f64 * squares)
}

/// One bulk flow of a [`Client`].
#[derive(Debug, Clone, Copy)]
pub struct FlowSpec {
    pub algorithm: Algorithm,
    /// When the flow connects.
    pub start: Instant,
    /// Its source port (how the sink and the link tell flows apart).
    pub local_port: u16,
    /// Bytes to send before closing; `u64::MAX` sends until the run ends.
    pub bytes: u64,
    pub buffer: usize,
    /// Pace a loss-based controller at `cwnd / srtt` × 2 or × 1.2 (the default; BBR always
    /// paces).
    pub pacing: bool,
}

impl FlowSpec {
    /// An endless flow of `algorithm` from port `local_port`, starting at `start`.
    pub fn endless(algorithm: Algorithm, local_port: u16, start: Instant, buffer: usize) -> Self {
        FlowSpec {
            algorithm,
            start,
            local_port,
            bytes: u64::MAX,
            buffer,
            pacing: SocketOptions::default().pacing,
        }
    }
}

struct ClientFlow {
    spec: FlowSpec,
    conn: Option<ConnectionHandle>,
    written: u64,
    closed: bool,
}

/// An engine running bulk senders.
pub struct Client {
    pub engine: Engine,
    flows: Vec<ClientFlow>,
    chunk: Vec<u8>,
    now: Instant,
}

impl Client {
    pub fn new(seed: u64, flows: &[FlowSpec]) -> Self {
        Self::with_config(engine_config(CLIENT_IP, 1, seed), flows)
    }

    /// A client on an engine the scenario configured (e.g. without timestamps); the default
    /// socket options are set as in [`Self::new`].
    pub fn with_config(mut cfg: EngineConfig, flows: &[FlowSpec]) -> Self {
        cfg.tcp.default_socket = socket_options(Algorithm::NewReno, 1 << 20);
        Client {
            engine: Engine::new(cfg, Instant::ZERO),
            flows: flows
                .iter()
                .map(|&spec| ClientFlow { spec, conn: None, written: 0, closed: false })
                .collect(),
            chunk: vec![0x42; 256 * 1024],
            now: Instant::ZERO,
        }
    }

    /// The flow's connection, once it connected.
    pub fn connection(&self, flow: usize) -> Option<ConnectionHandle> {
        self.flows[flow].conn
    }

    fn run_app(&mut self, now: Instant) {
        while self.engine.poll_event().is_some() {}
        for f in &mut self.flows {
            if f.conn.is_none() && now >= f.spec.start {
                let opts = SocketOptions {
                    pacing: f.spec.pacing,
                    ..socket_options(f.spec.algorithm, f.spec.buffer)
                };
                let conn = self.engine.connect(now, (SERVER_IP, PORT), Some(f.spec.local_port), Some(opts));
                f.conn = Some(conn.expect("connect"));
            }
            let Some(conn) = f.conn else { continue };
            while f.written < f.spec.bytes && !f.closed {
                let n = (f.spec.bytes - f.written).min(self.chunk.len() as u64) as usize;
                match self.engine.write(now, conn, &self.chunk[..n]) {
                    Ok(w) => f.written += w as u64,
                    Err(Error::WouldBlock) => break,
                    Err(e) => panic!("flow from port {}: write failed: {e}", f.spec.local_port),
                }
            }
            if f.written == f.spec.bytes && !f.closed {
                self.engine.close(now, conn).expect("close");
                f.closed = true;
            }
        }
    }
}

impl Endpoint for Client {
    fn poll(&mut self, now: Instant, port: &mut SimPort<'_>) {
        self.now = now;
        while self.engine.receive_from(now, port, 64) > 0 {}
        self.engine.handle_timeout(now);
        self.run_app(now);
        self.engine.poll_transmit(now, port);
        self.run_app(now);
        self.engine.poll_transmit(now, port);
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let start = self.flows.iter().filter(|f| f.conn.is_none()).map(|f| f.spec.start.max(self.now)).min();
        let pending = self.engine.has_pending_output().then_some(self.now);
        [self.engine.next_timeout(), pending, start].into_iter().flatten().min()
    }
}

/// An engine accepting every connection on [`PORT`] and reading everything, counting the bytes
/// each flow (by its source port) delivered to the application.
pub struct Sink {
    pub engine: Engine,
    listener: ListenerHandle,
    /// (connection, peer's port, bytes read, end of stream seen).
    conns: Vec<(ConnectionHandle, u16, u64, bool)>,
    buf: Vec<u8>,
    now: Instant,
}

impl Sink {
    pub fn new(seed: u64, buffer: usize) -> Self {
        let mut engine = Engine::new(engine_config(SERVER_IP, 2, seed ^ 0x5eed), Instant::ZERO);
        let listener =
            engine.listen(PORT, 64, Some(socket_options(Algorithm::NewReno, buffer))).expect("listen");
        Sink { engine, listener, conns: Vec::new(), buf: vec![0; 256 * 1024], now: Instant::ZERO }
    }

    /// Bytes the application read from the flow whose source port is `port`.
    pub fn received(&self, port: u16) -> u64 {
        self.conns.iter().filter(|c| c.1 == port).map(|c| c.2).sum()
    }

    pub fn received_total(&self) -> u64 {
        self.conns.iter().map(|c| c.2).sum()
    }

    fn run_app(&mut self, now: Instant) {
        while let Some(ev) = self.engine.poll_event() {
            if let Event::Incoming(_) = ev {
                while let Some(conn) = self.engine.accept(self.listener).expect("listener") {
                    let port = self.engine.info(now, conn).expect("accepted").tuple.remote.1;
                    self.conns.push((conn, port, 0, false));
                }
            }
        }
        for c in &mut self.conns {
            while !c.3 {
                match self.engine.read(now, c.0, &mut self.buf) {
                    Ok(0) => {
                        let _ = self.engine.close(now, c.0);
                        c.3 = true;
                    }
                    Ok(n) => c.2 += n as u64,
                    Err(_) => break,
                }
            }
        }
    }
}

impl Endpoint for Sink {
    fn poll(&mut self, now: Instant, port: &mut SimPort<'_>) {
        self.now = now;
        while self.engine.receive_from(now, port, 64) > 0 {}
        self.engine.handle_timeout(now);
        self.run_app(now);
        self.engine.poll_transmit(now, port);
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let pending = self.engine.has_pending_output().then_some(self.now);
        [self.engine.next_timeout(), pending].into_iter().flatten().min()
    }
}

/// Several flows through one bottleneck, sampled at fixed instants.
pub struct Scenario {
    pub pair: Pair<Client, Sink>,
    pub ports: Vec<u16>,
}

/// [`SimRun::pair`] with the capture (if any) limited to [`PCAP_FRAMES`].
pub fn pair<A: Endpoint, B: Endpoint>(
    run: &SimRun,
    fwd: LinkConfig,
    rev: LinkConfig,
    a: A,
    b: B,
) -> Pair<A, B> {
    let mut pair = run.pair(fwd, rev, a, b);
    let capture = pair.take_capture().map(|c| c.limit_frames(PCAP_FRAMES));
    pair.with_capture(capture)
}

/// Per-flow bytes delivered at one instant.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Instant,
    pub received: Vec<u64>,
}

impl Scenario {
    pub fn new(run: &SimRun, fwd: LinkConfig, rev: LinkConfig, flows: &[FlowSpec]) -> Self {
        let buffer = flows.iter().map(|f| f.buffer).max().unwrap_or(1 << 20);
        let client = Client::new(run.seed(), flows);
        let sink = Sink::new(run.seed(), buffer);
        Scenario {
            pair: pair(run, fwd, rev, client, sink),
            ports: flows.iter().map(|f| f.local_port).collect(),
        }
    }

    /// Runs to `at` and records what each flow delivered so far.
    pub fn sample(&mut self, run: &SimRun, at: Instant) -> Sample {
        self.pair.run_to(at, MAX_STEPS).unwrap_or_else(|e| panic!("{e}\n{}", run.reproduce_hint()));
        let received = self.ports.iter().map(|&p| self.pair.b.received(p)).collect();
        Sample { at, received }
    }
}

/// Goodput of flow `i` between two samples, in bit/s.
pub fn goodput_bps(from: &Sample, to: &Sample, i: usize) -> f64 {
    let bytes = to.received[i].saturating_sub(from.received[i]);
    bytes as f64 * 8.0 / (to.at - from.at).as_secs_f64()
}

/// Compares `table` with the pinned snapshot `name` under `tests/snapshots/`, or rewrites it
/// when `LINERATE_UPDATE_SNAPSHOTS` is set. Returns a description of the difference, if any.
pub fn check_snapshot(name: &str, table: &str) -> Option<String> {
    let path = format!("{}/tests/snapshots/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("LINERATE_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, table).expect("write snapshot");
        return None;
    }
    match std::fs::read_to_string(&path) {
        Ok(expected) if expected == table => None,
        Ok(expected) => Some(format!(
            "{path} changed; if intended, regenerate with LINERATE_UPDATE_SNAPSHOTS=1\n--- pinned\n{expected}--- now\n{table}"
        )),
        Err(_) => Some(format!("missing {path}; create it with LINERATE_UPDATE_SNAPSHOTS=1")),
    }
}

/// Runs `cases` on two worker threads (the machine's cores); results come back in case order,
/// so tables do not depend on scheduling.
pub fn run_parallel<C: Sync, R: Send>(cases: &[C], work: impl Fn(&C) -> R + Sync) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<R>>> =
        cases.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(case) = cases.get(i) else { break };
                let r = work(case);
                *results[i].lock().unwrap() = Some(r);
            });
        }
    });
    results.into_iter().map(|m| m.into_inner().unwrap().expect("every case ran")).collect()
}
