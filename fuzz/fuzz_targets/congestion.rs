//! Any bytes as a sequence of congestion-control events (sent, acked, lost, congestion event,
//! recovery exit, RTO, spurious undo, idle restart, time passes), replayed against NewReno, CUBIC
//! and BBR: no panic, and after every event the window stays in `[floor, MAX_CWND]`, a pacing rate
//! (when there is one) is positive, the send quantum is positive and the `ss -ti` view agrees.
//! The coverage-guided counterpart of `stack/tests/congestion_fuzz.rs` (which draws from fixed
//! distributions); both feed the engine's delivery-rate estimator so BBR sees real rate samples.
#![no_main]

use std::collections::VecDeque;

use libfuzzer_sys::fuzz_target;
use linerate_stack::congestion::{
    AckEvent, Algorithm, CongestionConfig, CongestionController, DeliveryRateEstimator, LossEvent,
    PacketSnapshot, SentPacket, MAX_CWND,
};
use linerate_stack::time::{Duration, Instant};

/// Reads little-endian numbers off the input; zeros once it is exhausted.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }
    /// A duration biased towards realistic values: the top bits pick the scale.
    fn nanos(&mut self) -> u64 {
        let raw = self.u64();
        match raw >> 62 {
            0 => raw % 1_000_000,
            1 => raw % 1_000_000_000,
            2 => raw % 100_000_000_000,
            _ => raw,
        }
    }
}

struct Harness {
    cc: CongestionController,
    floor: u32,
    now: Instant,
    est: DeliveryRateEstimator,
    outstanding: VecDeque<PacketSnapshot>,
    in_flight: u32,
}

impl Harness {
    fn new(algorithm: Algorithm, setup: &[u8; 4]) -> Self {
        let config = CongestionConfig {
            algorithm,
            mss: if setup[0] & 1 == 0 { 1448 } else { u32::from(setup[1]) << 4 },
            initial_window_segments: u32::from(setup[2] % 64),
            pacing: setup[3] & 1 != 0,
            slow_start_after_idle: setup[3] & 2 != 0,
            hystart: setup[3] & 4 != 0,
            seed: u64::from_le_bytes([setup[0], setup[1], setup[2], setup[3], 0, 0, 0, 0]),
            ..CongestionConfig::default()
        };
        let mss = config.effective_mss();
        let floor = if algorithm == Algorithm::Bbr { 4 * mss } else { 2 * mss };
        let now = Instant::from_millis(1);
        Harness {
            cc: CongestionController::new(&config, now),
            floor,
            now,
            est: DeliveryRateEstimator::new(),
            outstanding: VecDeque::new(),
            in_flight: 0,
        }
    }

    fn send(&mut self, bytes: u32, app_limited: bool) {
        if app_limited {
            self.est.on_app_limited(self.in_flight);
        }
        let snapshot = self.est.on_packet_sent(self.now, self.in_flight, bytes);
        let packet = SentPacket {
            bytes,
            in_flight_before: self.in_flight,
            is_app_limited: app_limited,
            is_retransmit: false,
        };
        self.cc.on_packet_sent(self.now, &packet);
        self.in_flight = self.in_flight.saturating_add(bytes);
        if self.outstanding.len() < 4096 {
            self.outstanding.push_back(snapshot);
        }
    }

    fn ack(&mut self, delivered: usize, lost: usize, rtt: Option<Duration>, ece: bool) {
        let prior_in_flight = self.in_flight;
        let mut lost_bytes = 0u32;
        for p in self.outstanding.drain(..lost.min(self.outstanding.len())) {
            self.est.on_packet_lost(p.bytes);
            lost_bytes = lost_bytes.saturating_add(p.bytes);
        }
        let mut acked = 0u32;
        for p in self.outstanding.drain(..delivered.min(self.outstanding.len())) {
            self.est.on_packet_delivered(self.now, &p);
            acked = acked.saturating_add(p.bytes);
        }
        self.in_flight = self.in_flight.saturating_sub(lost_bytes).saturating_sub(acked);
        let ack = AckEvent {
            newly_acked_bytes: acked,
            newly_lost_bytes: lost_bytes,
            prior_in_flight,
            in_flight: self.in_flight,
            rtt_sample: rtt,
            min_rtt: rtt,
            srtt: rtt,
            rate_sample: self.est.generate_rate_sample(self.now, rtt),
            ece,
        };
        self.cc.on_ack(self.now, &ack);
    }

    fn apply(&mut self, input: &mut Input<'_>) {
        match input.u8() % 9 {
            0 => self.now += Duration::from_nanos(input.nanos()),
            1 | 2 => {
                let bytes = if input.u8() & 1 == 0 { 1448 } else { input.u32() % 100_000 };
                let app_limited = input.u8() & 1 != 0;
                self.send(bytes, app_limited);
            }
            3 | 4 => {
                let (delivered, lost) = (usize::from(input.u8() % 48), usize::from(input.u8() % 4));
                let rtt = (input.u8() & 1 != 0).then(|| Duration::from_nanos(input.nanos()));
                let ece = input.u8() & 1 != 0;
                self.ack(delivered, lost, rtt, ece);
            }
            5 => {
                let lost_bytes = if input.u8() & 1 == 0 { 1448 } else { 0 };
                let loss = LossEvent {
                    lost_bytes,
                    flight_size: self.in_flight,
                    in_flight: self.in_flight.saturating_sub(lost_bytes),
                    is_persistent: input.u8() & 1 != 0,
                };
                self.cc.on_congestion_event(self.now, &loss);
            }
            6 => self.cc.on_recovery_exit(self.now),
            7 => {
                self.cc.on_retransmit_timeout(self.now);
                for p in self.outstanding.drain(..) {
                    self.est.on_packet_lost(p.bytes);
                }
                self.in_flight = 0;
            }
            _ => {
                if input.u8() & 1 == 0 {
                    self.cc.on_spurious_congestion_event();
                } else {
                    let (idle, rto) = (input.nanos(), input.nanos());
                    self.cc.on_idle_restart(self.now, Duration::from_nanos(idle), Duration::from_nanos(rto));
                }
            }
        }
    }

    fn check(&self, algorithm: Algorithm, step: usize) {
        let cwnd = self.cc.cwnd();
        assert!(
            cwnd >= self.floor && cwnd <= MAX_CWND,
            "{algorithm} step {step}: cwnd {cwnd}, floor {}",
            self.floor
        );
        if let Some(rate) = self.cc.pacing_rate() {
            assert!(rate > 0, "{algorithm} step {step}: zero pacing rate");
        }
        assert!(self.cc.send_quantum() > 0, "{algorithm} step {step}: zero send quantum");
        let info = self.cc.info();
        assert_eq!(info.cwnd, cwnd);
        assert_eq!(info.pacing_rate, self.cc.pacing_rate());
        assert!(info.pacing_gain.is_none_or(f64::is_finite) && info.cwnd_gain.is_none_or(f64::is_finite));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((setup, ops)) = data.split_first_chunk::<4>() else { return };
    for algorithm in [Algorithm::NewReno, Algorithm::Cubic, Algorithm::Bbr] {
        let mut h = Harness::new(algorithm, setup);
        h.check(algorithm, 0);
        let mut input = Input(ops);
        let mut step = 0;
        while !input.0.is_empty() && step < 4096 {
            h.apply(&mut input);
            step += 1;
            h.check(algorithm, step);
        }
    }
});
