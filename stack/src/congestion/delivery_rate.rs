//! Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation-02).
//!
//! **Owns** the connection-level delivery counters (`delivered`, `delivered_time`,
//! `first_sent_time`, `lost`, the app-limited marker) and turns the ACK of packets into one
//! [`RateSample`] per ACK. The engine stores a [`PacketSnapshot`] (taken by
//! [`DeliveryRateEstimator::on_packet_sent`]) with each segment in its retransmission queue and
//! hands it back when the segment is cumulatively acked or SACKed.
//!
//! **Promises:** O(1), allocation-free, never panics (saturating counters, `Instant`
//! arithmetic saturates). A sample whose interval is shorter than `min_rtt` is still produced (BBR
//! needs its round-trip bookkeeping) but carries `delivery_rate == 0`, which consumers treat as
//! "no valid rate" (draft §3.3: such samples would over-estimate the rate).
//!
//! **Counts each transmission's delivery once, across a SACK reneging** (RFC 2018 §8). The
//! scoreboard reports a segment's delivery when it is first SACKed and then spends the snapshot
//! it keeps (`bytes` set to 0, `recovery::scoreboard`). A reneging repair
//! (`recovery::reneging`) takes the SACK marks back; a segment the receiver kept after all (a
//! Linux receiver prunes its out-of-order queue from the top) is then cumulatively acked
//! without a resend and adds nothing, while a resent copy carries a fresh snapshot and counts
//! in its own interval (it crossed the path again after the resend, where that interval
//! starts). So `delivered` stays monotone and no sample holds one transmission twice; a spent
//! snapshot may still be a sample's newest packet, whose interval then starts at the original
//! send, before the first count (a diluted rate, never an inflated one). Counted again
//! instead, the kept segments landed in the resent segment's interval: four segments for one
//! in `tests::a_reneging_repair_does_not_count_a_sacked_segment_twice` (40 kB/s for 10), a
//! sample BBR's windowed-max bandwidth filter would keep for ten rounds. Linux does count
//! them again (`tcp_timeout_mark_lost` clears `TCPCB_SACKED_ACKED`, then
//! `tcp_clean_rtx_queue` calls `tcp_count_delivered`) and so invalidates every rate sample
//! from the repair until loss recovery ends (`is_sack_reneg` in `tcp_rate_gen`); the double
//! count stays in its `delivered` and `acked_sacked` (BBR's ACK-aggregation estimate). Here
//! samples stay valid through the repair. A peer without SACK gets the same: a segment the
//! engine guessed delivered from a duplicate ACK, then took back, counts once (as Linux's
//! `tcp_remove_reno_sacks` counts the ACKed segments less the duplicate ACKs already counted).
//!
//! **Does not** decide which packets are delivered, lost or retransmitted; the engine does.

use crate::congestion::rate_from;
use crate::time::{Duration, Instant};

/// What the estimator remembers about one packet, taken at send time (draft §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacketSnapshot {
    /// `C.delivered` when the packet was sent.
    pub delivered: u64,
    /// `C.delivered_time` when the packet was sent.
    pub delivered_time: Instant,
    /// `C.first_sent_time` when the packet was sent: start of its send-rate interval.
    pub first_sent_time: Instant,
    /// When the packet was sent.
    pub sent_time: Instant,
    /// The connection was application-limited when the packet was sent.
    pub is_app_limited: bool,
    /// Bytes in flight just after the packet was sent (BBR `tx_in_flight`).
    pub tx_in_flight: u64,
    /// `C.lost` when the packet was sent.
    pub lost: u64,
    /// Payload bytes of the packet.
    pub bytes: u32,
}

/// The delivery-rate sample produced by one ACK (draft §3.3, plus BBR's loss fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateSample {
    /// Bytes per second over the sample interval; 0 when the interval was too short to trust.
    pub delivery_rate: u64,
    /// Bytes delivered during the sample interval (`C.delivered - P.delivered`).
    pub delivered: u64,
    /// Sample interval: max(send interval, ACK interval).
    pub interval: Duration,
    /// The newest acked packet was sent while application-limited.
    pub is_app_limited: bool,
    /// RTT of the newest acked packet.
    pub rtt: Duration,
    /// `P.delivered` of the newest acked packet: the start of the interval in delivered bytes.
    pub prior_delivered: u64,
    /// Bytes in flight when the newest acked packet was sent.
    pub tx_in_flight: u64,
    /// Bytes marked lost between the newest acked packet's send and this ACK.
    pub lost: u64,
    /// Bytes newly delivered by this ACK.
    pub newly_acked: u64,
    /// Bytes newly marked lost while processing this ACK.
    pub newly_lost: u64,
}

impl RateSample {
    /// `C.delivered` after this ACK.
    pub fn total_delivered(&self) -> u64 {
        self.prior_delivered.saturating_add(self.delivered)
    }
}

/// Connection-level delivery-rate state (draft §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliveryRateEstimator {
    /// Total bytes delivered (cumulatively acked or SACKed) so far.
    delivered: u64,
    /// When `delivered` last changed (or the connection restarted from idle).
    delivered_time: Instant,
    /// Send time of the newest packet delivered so far: start of the next send interval.
    first_sent_time: Instant,
    /// Total bytes marked lost so far.
    lost: u64,
    /// Non-zero while app-limited: the `delivered` value at which the app-limited phase ends.
    app_limited_until: u64,
    /// The sample being built for the current ACK.
    pending: Option<Pending>,
}

/// Per-ACK accumulation (the draft's `rs` while packets are being processed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    newest: PacketSnapshot,
    newly_acked: u64,
    newly_lost: u64,
}

impl DeliveryRateEstimator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the snapshot of a packet about to be sent (draft §3.2, `OnPacketSent`).
    /// `in_flight_before` is the bytes in flight before it.
    pub fn on_packet_sent(&mut self, now: Instant, in_flight_before: u32, bytes: u32) -> PacketSnapshot {
        if in_flight_before == 0 {
            // Restarting from idle: the intervals start now, not at the last ACK.
            self.first_sent_time = now;
            self.delivered_time = now;
        }
        PacketSnapshot {
            delivered: self.delivered,
            delivered_time: self.delivered_time,
            first_sent_time: self.first_sent_time,
            sent_time: now,
            is_app_limited: self.app_limited_until != 0,
            tx_in_flight: u64::from(in_flight_before).saturating_add(u64::from(bytes)),
            lost: self.lost,
            bytes,
        }
    }

    /// The application ran out of data with `in_flight` bytes outstanding (draft §3.4): samples
    /// taken until that data is delivered are marked app-limited.
    pub fn on_app_limited(&mut self, in_flight: u32) {
        self.app_limited_until = self.delivered.saturating_add(u64::from(in_flight)).max(1);
    }

    pub fn is_app_limited(&self) -> bool {
        self.app_limited_until != 0
    }

    /// A packet was delivered (cumulatively acked or SACKed for the first time) by the ACK being
    /// processed (draft §3.3, `UpdateRateSample`).
    pub fn on_packet_delivered(&mut self, now: Instant, packet: &PacketSnapshot) {
        self.delivered = self.delivered.saturating_add(u64::from(packet.bytes));
        self.delivered_time = now;
        let pending = self.pending.get_or_insert(Pending { newest: *packet, newly_acked: 0, newly_lost: 0 });
        pending.newly_acked = pending.newly_acked.saturating_add(u64::from(packet.bytes));
        // The sample follows the most recently *sent* of the delivered packets.
        if packet.sent_time >= pending.newest.sent_time {
            pending.newest = *packet;
            // The next interval starts when this packet was sent.
            self.first_sent_time = packet.sent_time;
        }
    }

    /// `bytes` were marked lost while processing the current ACK.
    pub fn on_packet_lost(&mut self, bytes: u32) {
        self.lost = self.lost.saturating_add(u64::from(bytes));
        if let Some(p) = self.pending.as_mut() {
            p.newly_lost = p.newly_lost.saturating_add(u64::from(bytes));
        }
    }

    /// Finishes the current ACK (draft §3.3, `GenerateRateSample`). `None` when it delivered
    /// nothing.
    pub fn generate_rate_sample(&mut self, now: Instant, min_rtt: Option<Duration>) -> Option<RateSample> {
        if self.app_limited_until != 0 && self.delivered > self.app_limited_until {
            self.app_limited_until = 0;
        }
        let p = self.pending.take()?;
        let send_elapsed = p.newest.sent_time - p.newest.first_sent_time;
        let ack_elapsed = self.delivered_time - p.newest.delivered_time;
        let interval = send_elapsed.max(ack_elapsed);
        let delivered = self.delivered.saturating_sub(p.newest.delivered);
        // Intervals shorter than min_rtt come from compressed ACKs and would over-estimate.
        let trusted = min_rtt.is_none_or(|m| interval >= m);
        let delivery_rate = if trusted { rate_from(delivered, interval).unwrap_or(0) } else { 0 };
        Some(RateSample {
            delivery_rate,
            delivered,
            interval,
            is_app_limited: p.newest.is_app_limited,
            rtt: now - p.newest.sent_time,
            prior_delivered: p.newest.delivered,
            tx_in_flight: p.newest.tx_in_flight,
            lost: self.lost.saturating_sub(p.newest.lost),
            newly_acked: p.newly_acked,
            newly_lost: p.newly_lost,
        })
    }

    /// Total bytes delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }
    /// Total bytes marked lost so far.
    pub fn lost(&self) -> u64 {
        self.lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;

    /// A synthetic ACK clock: a window of `window` packets, a bottleneck delivering one packet
    /// every `spacing`, RTT `rtt`. Returns the rate samples.
    fn ack_clock(
        window: u32,
        spacing: Duration,
        rtt: Duration,
        acks: usize,
        app_limited_at: Option<usize>,
    ) -> Vec<RateSample> {
        let mut est = DeliveryRateEstimator::new();
        let mut now = Instant::from_millis(1000);
        let mut in_flight_queue = std::collections::VecDeque::new();
        for _ in 0..window {
            let in_flight = in_flight_queue.len() as u32 * MSS;
            in_flight_queue.push_back(est.on_packet_sent(now, in_flight, MSS));
        }
        now += rtt;
        let mut samples = Vec::new();
        for i in 0..acks {
            let pkt = in_flight_queue.pop_front().unwrap();
            est.on_packet_delivered(now, &pkt);
            samples.push(est.generate_rate_sample(now, Some(rtt.checked_div_or_zero(2))).unwrap());
            if app_limited_at == Some(i) {
                est.on_app_limited(in_flight_queue.len() as u32 * MSS);
            }
            let in_flight = in_flight_queue.len() as u32 * MSS;
            in_flight_queue.push_back(est.on_packet_sent(now, in_flight, MSS));
            now += spacing;
        }
        samples
    }

    #[test]
    fn steady_ack_clock_gives_the_bottleneck_rate() {
        // One 1000-byte packet per ms = 1 MB/s.
        let spacing = Duration::from_millis(1);
        let samples = ack_clock(20, spacing, Duration::from_millis(20), 200, None);
        for s in &samples[40..] {
            assert!(!s.is_app_limited);
            let err = s.delivery_rate.abs_diff(1_000_000);
            assert!(err <= 1_000_000 / 50, "rate {} interval {:?}", s.delivery_rate, s.interval);
            assert_eq!(s.newly_acked, u64::from(MSS));
            assert_eq!(s.rtt, Duration::from_millis(20));
        }
    }

    #[test]
    fn samples_after_app_limited_are_marked_until_the_data_is_delivered() {
        let spacing = Duration::from_millis(1);
        let samples = ack_clock(10, spacing, Duration::from_millis(10), 60, Some(30));
        // Packets sent before the mark give normal samples; packets sent after it, until the
        // data outstanding at the mark is delivered, give app-limited samples; then it clears.
        assert!(samples[..40].iter().all(|s| !s.is_app_limited));
        let marked = samples.iter().filter(|s| s.is_app_limited).count();
        assert!((9..=11).contains(&marked), "{marked} app-limited samples");
        assert!(!samples.last().unwrap().is_app_limited);
        let mut est = DeliveryRateEstimator::new();
        let now = Instant::from_millis(5);
        est.on_app_limited(0);
        let p = est.on_packet_sent(now, 0, MSS);
        assert!(p.is_app_limited);
        est.on_packet_delivered(now + Duration::from_millis(10), &p);
        let s = est.generate_rate_sample(now + Duration::from_millis(10), None).unwrap();
        assert!(s.is_app_limited);
        assert!(!est.is_app_limited(), "marker clears once delivered passes it");
    }

    #[test]
    fn short_intervals_are_not_trusted() {
        let mut est = DeliveryRateEstimator::new();
        let t0 = Instant::from_millis(1);
        let a = est.on_packet_sent(t0, 0, MSS);
        let b = est.on_packet_sent(t0, MSS, MSS);
        let t1 = t0 + Duration::from_millis(10);
        est.on_packet_delivered(t1, &a);
        est.on_packet_delivered(t1, &b);
        let s = est.generate_rate_sample(t1, Some(Duration::from_millis(50))).unwrap();
        assert_eq!(s.delivery_rate, 0);
        assert_eq!(s.newly_acked, 2 * u64::from(MSS));
        assert_eq!(s.total_delivered(), 2 * u64::from(MSS));
        assert!(est.generate_rate_sample(t1, None).is_none());
    }

    /// A SACK reneging (RFC 2018 §8) as the estimator sees it through [`LossRecovery`]: ten
    /// segments sent at once, segment 1 lost and 2..9 SACKed (delivered, and counted), then the
    /// hole filled but the cumulative ACK stopping at segment 2 (the receiver let 2..9 go). The
    /// repair un-SACKs 2..9 and marks them lost. The receiver had in fact kept 3..5 (a Linux
    /// receiver prunes its out-of-order queue from the top), so the ACK of the resent segment 2
    /// covers 2..5: of those, only the resent 2 crossed the path since it was sent.
    #[test]
    fn a_reneging_repair_does_not_count_a_sacked_segment_twice() {
        use crate::recovery::{LossRecovery, RecoveryConfig, RecoveryTimer, SentSegment};
        use crate::wire::{SackBlock, SeqNumber};

        let seg = |i: u32| SeqNumber(10_000) + i * MSS;
        let mut est = DeliveryRateEstimator::new();
        let mut lr = LossRecovery::new(RecoveryConfig { smss: MSS, ..RecoveryConfig::default() }, seg(0));
        let t0 = Instant::from_millis(1);
        for i in 0..10 {
            let snapshot = est.on_packet_sent(t0, i * MSS, MSS);
            lr.on_sent(t0, &SentSegment { seq: seg(i), len: MSS, snapshot, ..SentSegment::default() })
                .unwrap();
        }
        let ack = |lr: &mut LossRecovery, est: &mut DeliveryRateEstimator, now, to, blocks: &[(u32, u32)]| {
            let blocks: Vec<SackBlock> =
                blocks.iter().map(|&(l, h)| SackBlock { left: seg(l), right: seg(h) }).collect();
            lr.on_ack(now, seg(to), &blocks, None, |p| est.on_packet_delivered(now, p));
            est.generate_rate_sample(now, None)
        };
        ack(&mut lr, &mut est, t0 + Duration::from_millis(100), 1, &[(2, 10)]);
        ack(&mut lr, &mut est, t0 + Duration::from_millis(200), 2, &[]);
        assert_eq!(est.delivered(), 10 * u64::from(MSS), "every segment delivered once");
        let repair = lr.reneging().deadline().expect("the ACK stopped at SACKed data");
        assert!(lr.on_timeout(repair, RecoveryTimer::Rto).reneged);

        let snapshot = est.on_packet_sent(repair, 0, MSS);
        let resent =
            SentSegment { seq: seg(2), len: MSS, is_retransmit: true, snapshot, ..SentSegment::default() };
        lr.on_sent(repair, &resent).unwrap();
        let s = ack(&mut lr, &mut est, repair + Duration::from_millis(100), 6, &[]).unwrap();
        assert_eq!(s.newly_acked, u64::from(MSS), "3..5 were counted when they were SACKed");
        assert_eq!(s.delivered, u64::from(MSS), "only the resent segment crossed in this interval");
        assert_eq!(s.delivery_rate, 10_000, "1000 bytes in 100 ms");
        assert_eq!(est.delivered(), 11 * u64::from(MSS), "ten segments, and segment 2 twice");
    }

    #[test]
    fn losses_are_attributed_to_the_sample() {
        let mut est = DeliveryRateEstimator::new();
        let t0 = Instant::from_millis(1);
        let pkts: Vec<_> = (0..4).map(|i| est.on_packet_sent(t0, i * MSS, MSS)).collect();
        let t1 = t0 + Duration::from_millis(10);
        est.on_packet_delivered(t1, &pkts[3]);
        est.on_packet_lost(MSS);
        let s = est.generate_rate_sample(t1, None).unwrap();
        assert_eq!((s.lost, s.newly_lost, s.tx_in_flight), (1000, 1000, 4000));
        assert_eq!(est.lost(), 1000);
    }
}
