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
//! Several senders can share the bottleneck (same base RTT) for fairness checks.
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

/// The shared FIFO bottleneck and its statistics.
struct Bottleneck {
    link: Link,
    rng: SplitMix,
    link_free_at: Instant,
    warmup_end: Instant,
    queue_delay_sum: Duration,
    queued_packets: u64,
    max_queue_delay: Duration,
}

impl Bottleneck {
    /// Offers a packet at `now`; returns when its ACK reaches the sender, or `None` if dropped.
    fn offer(&mut self, now: Instant, sender: &mut Report) -> Option<Instant> {
        if self.rng.chance(self.link.random_loss) {
            sender.random_drops += 1;
            return None;
        }
        let backlog = self.link_free_at - now;
        let queued_bytes = backlog.as_nanos() as u128 * u128::from(self.link.rate) / 1_000_000_000;
        let buffer = (self.link.bdp() as f64 * self.link.buffer_bdp) as u128;
        if queued_bytes + u128::from(MSS) > buffer {
            sender.tail_drops += 1;
            return None;
        }
        let depart = self.link_free_at.max(now) + self.link.tx_time(MSS);
        self.link_free_at = depart;
        if now >= self.warmup_end {
            self.queue_delay_sum += backlog;
            self.queued_packets += 1;
            self.max_queue_delay = self.max_queue_delay.max(backlog);
        }
        Some(depart + self.link.base_rtt)
    }
}

/// One bulk sender: the controller plus the engine-side bookkeeping it needs.
struct Sender {
    cc: CongestionController,
    est: DeliveryRateEstimator,
    pacer: Pacer,
    segs: VecDeque<Seg>,
    in_flight: u32,
    next_id: u64,
    srtt: Option<Duration>,
    min_rtt: Option<Duration>,
    recover: Option<u64>,
    last_progress: Instant,
    delivered_after_warmup: u64,
    report: Report,
    last_state: Option<&'static str>,
}

impl Sender {
    fn new(algorithm: Algorithm, now: Instant, seed: u64) -> Self {
        let config = CongestionConfig { seed, ..CongestionConfig::new(algorithm, MSS) };
        let cc = CongestionController::new(&config, now);
        let mut pacer = Pacer::new(MSS, config.pacing_burst_max);
        pacer.set_rate(cc.pacing_rate());
        Sender {
            cc,
            est: DeliveryRateEstimator::new(),
            pacer,
            segs: VecDeque::new(),
            in_flight: 0,
            next_id: 0,
            srtt: None,
            min_rtt: None,
            recover: None,
            last_progress: now,
            delivered_after_warmup: 0,
            report: Report::default(),
            last_state: None,
        }
    }

    fn rto(&self) -> Duration {
        self.srtt.map_or(Duration::from_secs(1), |s| s.saturating_mul(2).max(Duration::from_millis(200)))
    }

    fn can_send(&self, now: Instant) -> bool {
        self.in_flight + MSS <= self.cc.cwnd() && self.pacer.can_send(now)
    }

    /// Earliest time this sender needs attention (pacing release or RTO), if any.
    fn next_wakeup(&self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        if self.in_flight + MSS <= self.cc.cwnd() {
            next = self.pacer.next_release().map(|r| r.max(now + Duration::from_nanos(1)));
        }
        if self.in_flight > 0 {
            let rto_at = self.last_progress + self.rto();
            next = Some(next.map_or(rto_at, |n| n.min(rto_at)));
        }
        next
    }

    /// Sends one segment; returns its id and when its ACK arrives (if it is not dropped).
    fn send_one(&mut self, now: Instant, bottleneck: &mut Bottleneck) -> (u64, Option<Instant>) {
        let snap = self.est.on_packet_sent(now, self.in_flight, MSS);
        let packet = SentPacket { bytes: MSS, in_flight_before: self.in_flight, ..SentPacket::default() };
        self.cc.on_packet_sent(now, &packet);
        self.pacer.on_sent(now, MSS);
        if self.in_flight == 0 {
            self.last_progress = now;
        }
        self.in_flight += MSS;
        let id = self.next_id;
        self.next_id += 1;
        self.segs.push_back(Seg { id, sent: now, snap, state: SegState::InFlight });
        (id, bottleneck.offer(now, &mut self.report))
    }

    fn on_ack(&mut self, now: Instant, id: u64, warmup_end: Instant) {
        let Some(front) = self.segs.front().map(|s| s.id) else { return };
        let Some(index) = id.checked_sub(front).map(|i| i as usize) else { return };
        if self.segs.get(index).is_none_or(|s| s.state != SegState::InFlight) {
            return; // Already declared lost: a spurious loss, the data still arrived.
        }
        let prior_in_flight = self.in_flight;
        let flight_size = (self.next_id - front) as u32 * MSS;
        let seg = &mut self.segs[index];
        seg.state = SegState::Acked;
        let (sent, snap) = (seg.sent, seg.snap);
        self.in_flight -= MSS;
        self.est.on_packet_delivered(now, &snap);
        let rtt = now - sent;
        self.srtt =
            Some(self.srtt.map_or(rtt, |s| Duration::from_nanos((s.as_nanos() * 7 + rtt.as_nanos()) / 8)));
        self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
        if now >= warmup_end {
            self.delivered_after_warmup += u64::from(MSS);
        }
        let lost_bytes = self.detect_losses(id);
        let rate_sample = self.est.generate_rate_sample(now, self.min_rtt);
        if lost_bytes > 0 && self.recover.is_none() {
            self.recover = Some(self.next_id - 1);
            let loss = LossEvent { lost_bytes, flight_size, in_flight: self.in_flight, is_persistent: false };
            self.cc.on_congestion_event(now, &loss);
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
        self.cc.on_ack(now, &ack);
        if self.recover.is_some_and(|r| id >= r) {
            self.recover = None;
            self.cc.on_recovery_exit(now);
        }
        self.last_progress = now;
        while self.segs.front().is_some_and(|s| s.state != SegState::InFlight) {
            self.segs.pop_front();
        }
        self.track_state();
    }

    /// RFC 6675 DupThresh: a segment is lost once three later segments were acknowledged.
    fn detect_losses(&mut self, acked_id: u64) -> u32 {
        let mut lost_bytes = 0;
        for s in self.segs.iter_mut() {
            if s.id + 3 > acked_id {
                break;
            }
            if s.state == SegState::InFlight {
                s.state = SegState::Lost;
                self.in_flight -= MSS;
                self.est.on_packet_lost(MSS);
                lost_bytes += MSS;
            }
        }
        lost_bytes
    }

    fn check_rto(&mut self, now: Instant) {
        if self.in_flight == 0 || now < self.last_progress + self.rto() {
            return;
        }
        self.report.rtos += 1;
        self.cc.on_retransmit_timeout(now);
        for s in self.segs.iter_mut().filter(|s| s.state == SegState::InFlight) {
            s.state = SegState::Lost;
            self.est.on_packet_lost(MSS);
        }
        self.segs.clear();
        self.in_flight = 0;
        self.recover = Some(self.next_id);
        self.last_progress = now;
    }

    fn track_state(&mut self) {
        if let Some(state) = self.cc.info().bbr_state {
            if state == "probe_rtt" && self.last_state != Some("probe_rtt") {
                self.report.probe_rtt_entries += 1;
            }
            self.report.states.insert(state);
            self.last_state = Some(state);
        }
    }
}

/// Bulk senders sharing one bottleneck (same base RTT, so ACKs arrive in send order).
struct Sim {
    now: Instant,
    bottleneck: Bottleneck,
    senders: Vec<Sender>,
    acks: VecDeque<(Instant, usize, u64)>,
}

impl Sim {
    fn new(algorithms: &[Algorithm], link: Link, seed: u64) -> Self {
        let now = Instant::from_millis(1);
        let senders = algorithms
            .iter()
            .enumerate()
            .map(|(i, &a)| Sender::new(a, now, seed.wrapping_add(i as u64)))
            .collect();
        let bottleneck = Bottleneck {
            link,
            rng: SplitMix(seed),
            link_free_at: now,
            warmup_end: now + Duration::from_secs(3),
            queue_delay_sum: Duration::ZERO,
            queued_packets: 0,
            max_queue_delay: Duration::ZERO,
        };
        Sim { now, bottleneck, senders, acks: VecDeque::new() }
    }

    fn run(mut self, duration: Duration) -> Vec<Report> {
        let end = self.now + duration;
        while self.now < end {
            for (i, sender) in self.senders.iter_mut().enumerate() {
                sender.pacer.set_rate(sender.cc.pacing_rate());
                while sender.can_send(self.now) {
                    if let (id, Some(ack_at)) = sender.send_one(self.now, &mut self.bottleneck) {
                        self.acks.push_back((ack_at, i, id));
                    }
                }
            }
            let mut next = end;
            if let Some(&(t, _, _)) = self.acks.front() {
                next = next.min(t);
            }
            for sender in &self.senders {
                if let Some(t) = sender.next_wakeup(self.now) {
                    next = next.min(t);
                }
            }
            self.now = next.max(self.now);
            let warmup_end = self.bottleneck.warmup_end;
            while let Some(&(t, i, id)) = self.acks.front() {
                if t > self.now {
                    break;
                }
                self.acks.pop_front();
                self.senders[i].on_ack(self.now, id, warmup_end);
            }
            for sender in &mut self.senders {
                sender.check_rto(self.now);
            }
        }
        self.finish(duration)
    }

    fn finish(self, duration: Duration) -> Vec<Report> {
        let measured = duration.saturating_sub(Duration::from_secs(3)).as_secs_f64();
        let capacity = self.bottleneck.link.rate as f64 * measured;
        let avg_queue =
            self.bottleneck.queue_delay_sum.checked_div_or_zero(self.bottleneck.queued_packets.max(1));
        self.senders
            .into_iter()
            .map(|s| {
                let mut r = s.report;
                r.utilisation = s.delivered_after_warmup as f64 / capacity;
                r.avg_queue_delay = avg_queue;
                r.max_queue_delay = self.bottleneck.max_queue_delay;
                r.final_bw = s.cc.info().bw;
                r
            })
            .collect()
    }
}

fn print_row(algorithm: Algorithm, link: Link, report: &Report) {
    println!(
        "{:>8} buffer {:>4.2} BDP loss {:>4.2}%: utilisation {:>5.1}%  avg queue {:>9}  max queue {:>9}  \
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
}

fn simulate(algorithm: Algorithm, link: Link, seconds: u64, seed: u64) -> Report {
    let report = Sim::new(&[algorithm], link, seed).run(Duration::from_secs(seconds)).remove(0);
    print_row(algorithm, link, &report);
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

fn share(algorithms: &[Algorithm], link: Link, seconds: u64, seed: u64) -> Vec<Report> {
    let reports = Sim::new(algorithms, link, seed).run(Duration::from_secs(seconds));
    for (a, r) in algorithms.iter().zip(&reports) {
        print_row(*a, link, r);
    }
    let total: f64 = reports.iter().map(|r| r.utilisation).sum();
    println!("  total {:.1}%  Jain index {:.3}", total * 100.0, jain(&reports));
    reports
}

/// Jain's fairness index of the flows' throughputs: 1 is a perfectly even split.
fn jain(reports: &[Report]) -> f64 {
    let total: f64 = reports.iter().map(|r| r.utilisation).sum();
    let squares: f64 = reports.iter().map(|r| r.utilisation * r.utilisation).sum();
    total * total / (reports.len() as f64 * squares)
}

#[test]
fn two_flows_of_the_same_controller_share_the_link() {
    let link = Link { buffer_bdp: 2.0, ..LINK };
    for algorithm in [Algorithm::Cubic, Algorithm::Bbr] {
        let reports = share(&[algorithm, algorithm], link, 30, 5);
        let total: f64 = reports.iter().map(|r| r.utilisation).sum();
        assert!(total > 0.9, "{algorithm}: total utilisation {total:.2}");
        assert!(jain(&reports) > 0.8, "{algorithm}: Jain index {:.3}", jain(&reports));
    }
    share(&[Algorithm::Bbr, Algorithm::Cubic], link, 30, 5);
}
