//! RACK-TLP on the simulated link (issue #4, RFC 8985).
//!
//! - Tail loss: a request-sized burst of 20 segments whose last two segments are dropped (the
//!   first transmission only, chosen by sequence number through the link's drop filter). Nothing
//!   follows the burst, so no duplicate ACK or SACK can reveal the loss; only a timer can. A tail
//!   loss probe fires 2·SRTT after the last ACK and the loss is repaired long before the 200 ms
//!   minimum RTO; no retransmission timeout may occur.
//! - Reordering: 2 % of the data segments are held back by a quarter of the base RTT, nothing is
//!   lost (the flow is limited by a receive window below the BDP, so the queue never overflows).
//!   Every retransmission is therefore spurious; once RACK's reordering window has adapted (D-SACK
//!   feedback) there must be none: zero retransmissions between 10 s and 20 s.
//!
//! Run: `cargo test --release -p linerate-driver --test cc_rack -- --nocapture`.

mod cc_support;

use std::sync::{Arc, Mutex};

use cc_support::*;
use linerate_driver::sim::{Direction, Endpoint, FlowKey, LinkConfig, SimPort, SimRun};
use linerate_stack::congestion::Algorithm;
use linerate_stack::engine::{ConnectionHandle, Engine};
use linerate_stack::time::{Duration, Instant};
use linerate_stack::wire::{EthernetFrame, Ipv4Packet, SeqNumber, TcpPacket};

const RATE_BPS: u64 = 100_000_000;
const BURST_SEGMENTS: usize = 20;
const BURST: usize = BURST_SEGMENTS * MSS as usize;
const BURSTS: usize = 10;
const CLIENT_PORT: u16 = 40_000;
/// Linux's and the engine's default minimum RTO: what a repair by timeout would at least cost.
const MIN_RTO: Duration = Duration::from_millis(200);

/// Writes one burst every `gap`, starting at 1 s.
struct Bursts {
    engine: Engine,
    conn: Option<ConnectionHandle>,
    written: usize,
    gap: Duration,
    data: Vec<u8>,
    now: Instant,
}

impl Bursts {
    fn burst_time(&self, k: usize) -> Instant {
        Instant::from_millis(1_000) + Duration::from_nanos(self.gap.as_nanos() * k as u64)
    }
    fn next_burst(&self) -> usize {
        self.written / BURST
    }
}

impl Endpoint for Bursts {
    fn poll(&mut self, now: Instant, port: &mut SimPort<'_>) {
        self.now = now;
        while self.engine.receive_from(now, port, 64) > 0 {}
        self.engine.handle_timeout(now);
        while self.engine.poll_event().is_some() {}
        let conn = *self.conn.get_or_insert_with(|| {
            let opts = socket_options(Algorithm::Cubic, 1 << 20);
            self.engine.connect(now, (SERVER_IP, PORT), Some(CLIENT_PORT), Some(opts)).expect("connect")
        });
        while self.next_burst() < BURSTS && now >= self.burst_time(self.next_burst()) {
            let n = self.engine.write(now, conn, &self.data).expect("the send buffer holds a burst");
            assert_eq!(n, BURST);
            self.written += n;
        }
        self.engine.poll_transmit(now, port);
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let burst = (self.next_burst() < BURSTS).then(|| self.burst_time(self.next_burst()).max(self.now));
        let pending = (self.engine.has_pending_output() || self.conn.is_none()).then_some(self.now);
        [self.engine.next_timeout(), pending, burst].into_iter().flatten().min()
    }
}

/// What the forward drop filter saw of the client's data segments.
#[derive(Debug, Default)]
struct TailLog {
    isn: Option<SeqNumber>,
    /// Relative sequence numbers already seen once (their first transmission).
    seen: Vec<u32>,
    /// Per burst: when the last segment was first sent (and dropped) and first sent again.
    dropped_at: [Option<Instant>; BURSTS],
    resent_at: [Option<Instant>; BURSTS],
}

/// (sequence number, payload length, SYN) of a frame from the client, if it is one.
fn client_segment(frame: &[u8]) -> Option<(SeqNumber, usize, bool)> {
    let (key, len) = FlowKey::parse(frame)?;
    if key.src.1 != CLIENT_PORT {
        return None;
    }
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    Some((tcp.seq_number(), len, tcp.flags().syn()))
}

impl TailLog {
    /// Drops the first transmission of the last two segments of every burst.
    fn filter(&mut self, now: Instant, frame: &[u8]) -> bool {
        let Some((seq, len, syn)) = client_segment(frame) else { return false };
        if syn {
            self.isn = Some(seq);
            return false;
        }
        let (Some(isn), true) = (self.isn, len > 0) else { return false };
        let rel = (seq - isn - 1) as u32;
        let burst = rel as usize / BURST;
        let offset = rel as usize % BURST;
        let first_time = !self.seen.contains(&rel);
        if first_time {
            self.seen.push(rel);
        }
        if burst >= BURSTS || offset < BURST - 2 * MSS as usize {
            return false;
        }
        let last = offset == BURST - MSS as usize;
        if first_time {
            if last {
                self.dropped_at[burst] = Some(now);
            }
            return true;
        }
        if last && self.resent_at[burst].is_none() {
            self.resent_at[burst] = Some(now);
        }
        false
    }
}

#[test]
fn tail_loss_is_repaired_by_a_probe_not_an_rto() {
    let run = SimRun::new("cc_rack_tail_loss", 9_000);
    let rtt = Duration::from_millis(20);
    let client = Bursts {
        engine: Engine::new(engine_config(CLIENT_IP, 1, run.seed()), Instant::ZERO),
        conn: None,
        written: 0,
        gap: Duration::from_millis(500),
        data: vec![0x42; BURST],
        now: Instant::ZERO,
    };
    let mut pair =
        pair(&run, bottleneck(RATE_BPS, rtt, 1.0), ack_path(rtt), client, Sink::new(run.seed(), 1 << 20));
    let log = Arc::new(Mutex::new(TailLog::default()));
    let acks = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let (l, a) = (log.clone(), acks.clone());
    pair.link_mut(Direction::AToB)
        .set_drop_filter(Some(Box::new(move |now, _, f| l.lock().unwrap().filter(now, f))));
    pair.link_mut(Direction::BToA).set_drop_filter(Some(Box::new(move |now, _, _| {
        a.lock().unwrap().push(now);
        false
    })));
    let mut repaired = Vec::new();
    for k in 0..BURSTS {
        let end = ((k + 1) * BURST) as u64;
        pair.run_until(Instant::from_millis(60_000), MAX_STEPS, |p| p.b.received_total() >= end)
            .unwrap_or_else(|e| panic!("{e}\n{}", run.reproduce_hint()));
        assert!(pair.b.received_total() >= end, "burst {k} never completed; {}", run.reproduce_hint());
        repaired.push(pair.now() - pair.a.burst_time(k));
    }
    let conn = pair.a.conn.expect("connected");
    let srtt = pair.a.engine.info(pair.now(), conn).expect("open").rtt.expect("an RTT sample");
    let stats = pair.a.engine.stats().clone();
    let log = log.lock().unwrap();
    let acks = acks.lock().unwrap();
    println!(
        "# RTT {} ms, SRTT {:.1} ms; per burst: repair time after the write, probe delay after the last ACK",
        rtt.as_millis(),
        srtt.as_secs_f64() * 1e3
    );
    let mut failures = Vec::new();
    for (k, &repaired) in repaired.iter().enumerate() {
        let (Some(dropped), Some(resent)) = (log.dropped_at[k], log.resent_at[k]) else {
            failures.push(format!("burst {k}: the tail segment was not dropped and resent ({:?})", log));
            continue;
        };
        // ACKs are not delayed by the reverse link beyond its propagation delay.
        let last_ack = acks.iter().map(|&t| t + rtt.checked_div_or_zero(2)).filter(|&t| t <= resent).max();
        let probe_delay = last_ack.map(|t| resent - t).unwrap_or(resent - dropped);
        println!(
            "burst {k}: repaired after {:>6.1} ms, resent {:>6.1} ms after the drop, {:>5.1} ms ({:.2} SRTT) after the last ACK",
            repaired.as_secs_f64() * 1e3,
            (resent - dropped).as_secs_f64() * 1e3,
            probe_delay.as_secs_f64() * 1e3,
            probe_delay.as_secs_f64() / srtt.as_secs_f64()
        );
        if repaired >= MIN_RTO {
            failures.push(format!("burst {k}: repaired only after {:?} (≥ the minimum RTO)", repaired));
        }
        if probe_delay.as_secs_f64() > 2.5 * srtt.as_secs_f64() + 0.002 {
            failures.push(format!(
                "burst {k}: probe {probe_delay:?} after the last ACK, more than ~2·SRTT ({srtt:?})"
            ));
        }
    }
    println!(
        "timeouts {}, tail loss probes {} (recovered {}), retransmitted segments {}, RACK-lost bytes {}",
        stats.timeouts, stats.tlp_probes, stats.tlp_recovered, stats.retrans_segs, stats.rack_lost_bytes
    );
    if stats.tlp_probes < BURSTS as u64 {
        failures.push(format!("only {} tail loss probes for {BURSTS} tail losses", stats.tlp_probes));
    }
    if stats.timeouts != 0 {
        failures.push(format!(
            "{} retransmission timeout(s); the probe should have repaired every tail",
            stats.timeouts
        ));
    }
    assert!(failures.is_empty(), "{}\n{}", failures.join("\n"), run.reproduce_hint());
}

#[test]
fn quarter_rtt_reordering_causes_no_spurious_retransmission_once_adapted() {
    let run = SimRun::new("cc_rack_reordering", 9_100);
    let rtt = Duration::from_millis(40);
    let fwd = bottleneck(RATE_BPS, rtt, 4.0).reorder(0.02, Duration::from_millis(10));
    // A 256 KiB window is about half the 500 kB BDP: the queue stays empty, nothing is lost.
    let flow = FlowSpec::endless(Algorithm::Cubic, CLIENT_PORT, Instant::ZERO, 256 * 1024);
    let mut sc = Scenario::new(&run, fwd, LinkConfig::default().delay(Duration::from_millis(20)), &[flow]);
    let a = sc.sample(&run, Instant::from_millis(10_000));
    let early = sc.pair.a.engine.stats().retrans_segs;
    let b = sc.sample(&run, Instant::from_millis(20_000));
    let stats = sc.pair.a.engine.stats().clone();
    let link = sc.pair.stats(Direction::AToB);
    let late = stats.retrans_segs - early;
    let conn = sc.pair.a.connection(0).expect("connected");
    let info = sc.pair.a.engine.info(sc.pair.now(), conn).expect("open");
    println!(
        "held back {} of {} segments by 10 ms (RTT 40 ms); goodput {:.1} Mbit/s; spurious retransmissions: \
         {early} in 0-10 s, {late} in 10-20 s; D-SACKs sent by the receiver {}; undone recoveries {}; \
         reordering seen {}, reo_wnd multiplier {}",
        link.held_back,
        link.sent_frames,
        goodput_bps(&a, &b, 0) / 1e6,
        sc.pair.b.engine.stats().dsack_sent,
        stats.spurious_retrans_undone,
        info.reordering_seen,
        info.reo_wnd_mult
    );
    assert_eq!(link.dropped_total(), 0, "the scenario must lose nothing: {link:?}");
    assert!(link.held_back > 500, "too little reordering to mean anything: {link:?}");
    assert_eq!(
        late,
        0,
        "{late} spurious retransmissions after the reordering window adapted; {}",
        run.reproduce_hint()
    );
}
