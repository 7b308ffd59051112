//! Unit-test harness: a sender that transmits rounds of segments and gets them acknowledged one
//! RTT later, feeding a controller through the same events the engine produces.

use crate::congestion::{
    AckEvent, Bbr, CongestionController, Cubic, DeliveryRateEstimator, NewReno, PacketSnapshot, SentPacket,
};
use crate::time::{Duration, Instant};

/// The controller methods the harness needs (all controllers have them as inherent methods).
pub(crate) trait TestCc {
    fn sent(&mut self, now: Instant, p: &SentPacket);
    fn ack(&mut self, now: Instant, a: &AckEvent);
    fn cwnd(&self) -> u32;
}

macro_rules! impl_test_cc {
    ($($t:ty),*) => {$(
        impl TestCc for $t {
            fn sent(&mut self, now: Instant, p: &SentPacket) { self.on_packet_sent(now, p) }
            fn ack(&mut self, now: Instant, a: &AckEvent) { self.on_ack(now, a) }
            fn cwnd(&self) -> u32 { <$t>::cwnd(self) }
        }
    )*};
}
impl_test_cc!(NewReno, Cubic, Bbr, CongestionController);

pub(crate) struct Flow<C> {
    pub cc: C,
    pub now: Instant,
    pub mss: u32,
    pub est: DeliveryRateEstimator,
    pub in_flight: u32,
}

impl<C: TestCc> Flow<C> {
    pub fn new(cc: C, mss: u32) -> Self {
        Flow { cc, now: Instant::from_millis(1000), mss, est: DeliveryRateEstimator::new(), in_flight: 0 }
    }

    pub fn send(&mut self, bytes: u32) -> PacketSnapshot {
        let snap = self.est.on_packet_sent(self.now, self.in_flight, bytes);
        let p = SentPacket {
            bytes,
            in_flight_before: self.in_flight,
            is_app_limited: false,
            is_retransmit: false,
        };
        self.cc.sent(self.now, &p);
        self.in_flight += bytes;
        snap
    }

    /// Acknowledges `packets` in one ACK at the current time.
    pub fn ack(&mut self, packets: &[PacketSnapshot], rtt: Duration) {
        let prior = self.in_flight;
        let mut bytes = 0;
        for p in packets {
            self.est.on_packet_delivered(self.now, p);
            bytes += p.bytes;
        }
        self.in_flight -= bytes;
        let rs = self.est.generate_rate_sample(self.now, None);
        let ack = AckEvent {
            newly_acked_bytes: bytes,
            prior_in_flight: prior,
            in_flight: self.in_flight,
            rtt_sample: Some(rtt),
            min_rtt: Some(rtt),
            srtt: Some(rtt),
            rate_sample: rs,
            ..AckEvent::default()
        };
        self.cc.ack(self.now, &ack);
    }

    /// Sends `segments` full segments now, waits `rtt`, and acknowledges them `per_ack` at a
    /// time (all ACKs at the same instant).
    pub fn round_with(&mut self, rtt: Duration, segments: u32, per_ack: u32) {
        let sent: Vec<_> = (0..segments).map(|_| self.send(self.mss)).collect();
        self.now += rtt;
        for chunk in sent.chunks(per_ack.max(1) as usize) {
            self.ack(chunk, rtt);
        }
    }
}

/// One round that fills the current window.
pub(crate) fn ack_window<C: TestCc>(f: &mut Flow<C>, rtt: Duration, per_ack: u32) {
    let segments = f.cc.cwnd() / f.mss;
    f.round_with(rtt, segments, per_ack);
}
