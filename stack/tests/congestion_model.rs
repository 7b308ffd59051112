//! A packet-level model of one bulk flow through a bottleneck, driving the congestion
//! controllers through the same seam the engine uses (no engine needed).
//!
//! Model: the sender transmits whenever `in_flight + MSS <= cwnd` and the pacer allows; each
//! packet is dropped at random (Bernoulli, seeded PRNG) or enters a FIFO bottleneck of rate R
//! with a byte-limited tail-drop buffer; its ACK returns one propagation RTT after it leaves the
//! bottleneck. The receiver ACKs every packet (SACK-like: the sender knows which packet arrived);
//! a packet is declared lost once three later packets are acknowledged (RFC 6675 DupThresh),
//! recovery lasts until the packet that was `snd_nxt` at loss detection is acknowledged, and an
//! RTO fires after `max(200 ms, 2·srtt)` without progress.
//!
//! Run with `--nocapture` to see the table.

use std::collections::{BTreeSet, VecDeque};

use linerate_stack::congestion::{
    AckEvent, Algorithm, CongestionConfig, CongestionController, DeliveryRateEstimator, LossEvent, Pacer,
    PacketSnapshot, SentPacket,
};
use linerate_stack::time::{Duration, Instant};

const MSS: u32 = 1448;

/// splitmix64: the tiny seeded PRNG of the model.
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

#[derive(Clone, Copy)]
struct Link {
    /// Bottleneck rate, bytes/s.
    rate: u64,
    base_rtt: Duration,
    /// Buffer in multiples of the BDP.
    buffer_bdp: f64,
    random_loss: f64,
}

impl Link {
    fn bdp(&self) -> u64 {
        self.rate * self.base_rtt.as_nanos() / 1_000_000_000
    }
    fn tx_time(&self, bytes: u32) -> Duration {
        Duration::from_nanos(u64::from(bytes) * 1_000_000_000 / self.rate)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum SegState {
    InFlight,
    Acked,
    Lost,
}

struct Seg {
    id: u64,
    sent: Instant,
    snap: PacketSnapshot,
    state: SegState,
}

#[derive(Debug, Default)]
struct Report {
    /// Delivered bytes after warm-up over link capacity.
    utilisation: f64,
    /// Mean queueing delay of packets entering the bottleneck after warm-up.
    avg_queue_delay: Duration,
    max_queue_delay: Duration,
    tail_drops: u64,
    random_drops: u64,
    rtos: u64,
    states: BTreeSet<&'static str>,
    probe_rtt_entries: u64,
    final_bw: Option<u64>,
}

struct Sim {
    link: Link,
    cc: CongestionController,
    est: DeliveryRateEstimator,
    pacer: Pacer,
    rng: SplitMix,
    now: Instant,
    segs: VecDeque<Seg>,
    acks: VecDeque<(Instant, u64)>,
    link_free_at: Instant,
    in_flight: u32,
    next_id: u64,
    srtt: Option<Duration>,
    min_rtt: Option<Duration>,
    recover: Option<u64>,
    last_progress: Instant,
    warmup_end: Instant,
    delivered_after_warmup: u64,
    queue_delay_sum: Duration,
    queued_packets: u64,
    report: Report,
    last_state: Option<&'static str>,
}

impl Sim {
    fn new(algorithm: Algorithm, link: Link, seed: u64) -> Self {
        let now = Instant::from_millis(1);
        let config = CongestionConfig { seed, ..CongestionConfig::new(algorithm, MSS) };
        let cc = CongestionController::new(&config, now);
        let mut pacer = Pacer::new(MSS, config.pacing_burst_max);
        pacer.set_rate(cc.pacing_rate());
        Sim {
            link,
            cc,
            est: DeliveryRateEstimator::new(),
            pacer,
            rng: SplitMix(seed),
            now,
            segs: VecDeque::new(),
            acks: VecDeque::new(),
            link_free_at: now,
            in_flight: 0,
            next_id: 0,
            srtt: None,
            min_rtt: None,
            recover: None,
            last_progress: now,
            warmup_end: now + Duration::from_secs(3),
            delivered_after_warmup: 0,
            queue_delay_sum: Duration::ZERO,
            queued_packets: 0,
            report: Report::default(),
            last_state: None,
        }
    }

    fn rto(&self) -> Duration {
        self.srtt.map_or(Duration::from_secs(1), |s| s.saturating_mul(2).max(Duration::from_millis(200)))
    }

    fn send_one(&mut self) {
        let snap = self.est.on_packet_sent(self.now, self.in_flight, MSS);
        let packet = SentPacket { bytes: MSS, in_flight_before: self.in_flight, ..SentPacket::default() };
        self.cc.on_packet_sent(self.now, &packet);
        self.pacer.on_sent(self.now, MSS);
        if self.in_flight == 0 {
            self.last_progress = self.now;
        }
        self.in_flight += MSS;
        let id = self.next_id;
        self.next_id += 1;
        self.segs.push_back(Seg { id, sent: self.now, snap, state: SegState::InFlight });
        if self.rng.chance(self.link.random_loss) {
            self.report.random_drops += 1;
            return;
        }
        let backlog = self.link_free_at - self.now;
        let queued_bytes = backlog.as_nanos() as u128 * u128::from(self.link.rate) / 1_000_000_000;
        let buffer = (self.link.bdp() as f64 * self.link.buffer_bdp) as u128;
        if queued_bytes + u128::from(MSS) > buffer {
            self.report.tail_drops += 1;
            return;
        }
        let start = self.link_free_at.max(self.now);
        let depart = start + self.link.tx_time(MSS);
        self.link_free_at = depart;
        if self.now >= self.warmup_end {
            self.queue_delay_sum += backlog;
            self.queued_packets += 1;
            self.report.max_queue_delay = self.report.max_queue_delay.max(backlog);
        }
        self.acks.push_back((depart + self.link.base_rtt, id));
    }

    fn on_ack(&mut self, id: u64) {
        let Some(front) = self.segs.front().map(|s| s.id) else { return };
        let Some(index) = id.checked_sub(front).map(|i| i as usize) else { return };
        if self.segs.get(index).map_or(true, |s| s.state != SegState::InFlight) {
            return; // Already declared lost: a spurious loss, the data still arrived.
        }
        let prior_in_flight = self.in_flight;
        let flight_size = (self.next_id - front) as u32 * MSS;
        let seg = &mut self.segs[index];
        seg.state = SegState::Acked;
        let (sent, snap) = (seg.sent, seg.snap);
        self.in_flight -= MSS;
        self.est.on_packet_delivered(self.now, &snap);
        let rtt = self.now - sent;
        self.srtt =
            Some(self.srtt.map_or(rtt, |s| Duration::from_nanos((s.as_nanos() * 7 + rtt.as_nanos()) / 8)));
        self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
        if self.now >= self.warmup_end {
            self.delivered_after_warmup += u64::from(MSS);
        }
        let mut lost_bytes = 0;
        for s in self.segs.iter_mut() {
            if s.id + 3 > id {
                break;
            }
            if s.state == SegState::InFlight {
                s.state = SegState::Lost;
                self.in_flight -= MSS;
                self.est.on_packet_lost(MSS);
                lost_bytes += MSS;
            }
        }
        let rate_sample = self.est.generate_rate_sample(self.now, self.min_rtt);
        if lost_bytes > 0 && self.recover.is_none() {
            self.recover = Some(self.next_id - 1);
            let loss = LossEvent { lost_bytes, flight_size, in_flight: self.in_flight, is_persistent: false };
            self.cc.on_congestion_event(self.now, &loss);
        }
        let ack = AckEvent {
            newly_acked_bytes: MSS,
            newly_lost_bytes: lost_bytes,
            prior_in_flight,
            in_flight: self.in_flight,
            rtt_sample: Some(rtt),
            min_rtt: self.min_rtt,
            srtt: self.srtt,
            rate_sample,
            ece: false,
        };
        self.cc.on_ack(self.now, &ack);
        if self.recover.is_some_and(|r| id >= r) {
            self.recover = None;
            self.cc.on_recovery_exit(self.now);
        }
        self.last_progress = self.now;
        while self.segs.front().is_some_and(|s| s.state != SegState::InFlight) {
            self.segs.pop_front();
        }
        self.track_state();
    }

    fn on_rto(&mut self) {
        self.report.rtos += 1;
        self.cc.on_retransmit_timeout(self.now);
        for s in self.segs.iter_mut().filter(|s| s.state == SegState::InFlight) {
            s.state = SegState::Lost;
            self.est.on_packet_lost(MSS);
        }
        self.segs.clear();
        self.in_flight = 0;
        self.recover = Some(self.next_id);
        self.last_progress = self.now;
    }

    fn track_state(&mut self) {
        let info = self.cc.info();
        if let Some(state) = info.bbr_state {
            if state == "probe_rtt" && self.last_state != Some("probe_rtt") {
                self.report.probe_rtt_entries += 1;
            }
            self.report.states.insert(state);
            self.last_state = Some(state);
        }
    }

    fn run(mut self, duration: Duration) -> Report {
        let end = self.now + duration;
        while self.now < end {
            self.pacer.set_rate(self.cc.pacing_rate());
            while self.in_flight + MSS <= self.cc.cwnd() && self.pacer.can_send(self.now) {
                self.send_one();
            }
            let mut next = end;
            if let Some(&(t, _)) = self.acks.front() {
                next = next.min(t);
            }
            if self.in_flight + MSS <= self.cc.cwnd() {
                if let Some(release) = self.pacer.next_release() {
                    next = next.min(release.max(self.now + Duration::from_nanos(1)));
                }
            }
            if self.in_flight > 0 {
                next = next.min(self.last_progress + self.rto());
            }
            self.now = next.max(self.now);
            while let Some(&(t, id)) = self.acks.front() {
                if t > self.now {
                    break;
                }
                self.acks.pop_front();
                self.on_ack(id);
            }
            if self.in_flight > 0 && self.now >= self.last_progress + self.rto() {
                self.on_rto();
            }
        }
        let measured = duration.saturating_sub(Duration::from_secs(3)).as_secs_f64();
        self.report.utilisation = self.delivered_after_warmup as f64 / (self.link.rate as f64 * measured);
        self.report.avg_queue_delay = self.queue_delay_sum.checked_div_or_zero(self.queued_packets.max(1));
        self.report.final_bw = self.cc.info().bw;
        self.report
    }
}

fn simulate(algorithm: Algorithm, link: Link, seconds: u64, seed: u64) -> Report {
    let report = Sim::new(algorithm, link, seed).run(Duration::from_secs(seconds));
    println!(
        "{:>8} buffer {:>4.1} BDP loss {:>5.2}%: utilisation {:>5.1}%  avg queue {:>9}  max queue {:>9}  \
         tail drops {:>6}  random drops {:>5}  RTOs {:>3}  ProbeRTTs {:>2}  bw {:?}",
        algorithm.name(),
        link.buffer_bdp,
        link.random_loss * 100.0,
        report.utilisation * 100.0,
        format!("{:?}", report.avg_queue_delay),
        format!("{:?}", report.max_queue_delay),
        report.tail_drops,
        report.random_drops,
        report.rtos,
        report.probe_rtt_entries,
        report.final_bw,
    );
    report
}

/// 80 Mbit/s, 40 ms: BDP 400 KB (~276 segments).
const LINK: Link =
    Link { rate: 10_000_000, base_rtt: Duration::from_millis(40), buffer_bdp: 4.0, random_loss: 0.0 };

#[test]
fn bbr_keeps_the_queue_short_where_cubic_fills_a_deep_buffer() {
    let bbr = simulate(Algorithm::Bbr, LINK, 20, 1);
    let cubic = simulate(Algorithm::Cubic, LINK, 20, 1);
    let reno = simulate(Algorithm::NewReno, LINK, 20, 1);
    for (name, r) in [("bbr", &bbr), ("cubic", &cubic), ("newreno", &reno)] {
        assert!(r.utilisation > 0.9, "{name} uses only {:.1}% of the link", r.utilisation * 100.0);
    }
    assert!(bbr.avg_queue_delay < LINK.base_rtt, "BBR queues {:?} on average", bbr.avg_queue_delay);
    assert!(cubic.avg_queue_delay > LINK.base_rtt, "CUBIC queues only {:?}", cubic.avg_queue_delay);
    assert!(cubic.tail_drops > 0, "CUBIC never filled the buffer");
    assert!(bbr.avg_queue_delay.as_nanos() * 3 < cubic.avg_queue_delay.as_nanos());
}

#[test]
fn bbr_reaches_probe_bw_and_estimates_the_bottleneck() {
    let report = simulate(Algorithm::Bbr, LINK, 12, 2);
    for state in ["startup", "drain", "probe_bw_cruise", "probe_bw_up", "probe_rtt"] {
        assert!(report.states.contains(state), "never in {state}: {:?}", report.states);
    }
    // ProbeRTT at most every 5 s: the model's RTT never drops below the first sample.
    assert!((1..=3).contains(&report.probe_rtt_entries), "{} ProbeRTTs", report.probe_rtt_entries);
    let bw = report.final_bw.unwrap();
    assert!(bw.abs_diff(LINK.rate) < LINK.rate / 10, "bw estimate {bw}");
}

#[test]
fn random_loss_below_bbr_threshold_hurts_cubic_more() {
    let link = Link { buffer_bdp: 1.0, random_loss: 0.01, ..LINK };
    let bbr = simulate(Algorithm::Bbr, link, 15, 3);
    let cubic = simulate(Algorithm::Cubic, link, 15, 3);
    assert!(bbr.utilisation > cubic.utilisation, "bbr {:.2} cubic {:.2}", bbr.utilisation, cubic.utilisation);
}

#[test]
fn shallow_buffer_all_controllers_stay_stable() {
    let link = Link { buffer_bdp: 0.25, ..LINK };
    for algorithm in [Algorithm::NewReno, Algorithm::Cubic, Algorithm::Bbr] {
        let r = simulate(algorithm, link, 10, 4);
        assert!(r.utilisation > 0.6, "{algorithm}: {:.2}", r.utilisation);
        assert!(r.rtos < 5, "{algorithm}: {} RTOs", r.rtos);
    }
}
