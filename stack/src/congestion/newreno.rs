//! NewReno: RFC 5681 slow start and congestion avoidance, RFC 6582 recovery sizing.
//!
//! **Owns** the window arithmetic only: slow start with ABC (RFC 3465, L = 2) and optional
//! HyStart++, congestion avoidance by byte counting (+1 MSS per window acknowledged, RFC 5681
//! §3.1 / RFC 3465 §2.1), `ssthresh = max(FlightSize/2, 2·SMSS)` on a congestion event (RFC 5681
//! eq. 4, RFC 6582 §3.2 step 3), PRR during recovery and `cwnd = ssthresh` when it ends (RFC 6582
//! "full acknowledgment", RFC 6937). PRR takes the place of RFC 6582's window inflation and
//! partial-ACK deflation (as in Linux); the engine still tracks the recovery
//! point (`recover`) and retransmits on partial ACKs; see the seam in [`crate::congestion`].
//!
//! **Promises:** cwnd in `[2·MSS, MAX_CWND]`; never panics.

use crate::congestion::window::LossWindow;
use crate::congestion::{
    AckEvent, Algorithm, CongestionConfig, CongestionInfo, Handover, LossEvent, SentPacket,
};
use crate::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct NewReno {
    w: LossWindow,
    /// Bytes acknowledged in congestion avoidance since cwnd last grew.
    bytes_acked: u32,
}

impl NewReno {
    pub fn new(config: &CongestionConfig) -> Self {
        NewReno { w: LossWindow::new(config), bytes_acked: 0 }
    }

    /// NewReno taking over a live connection (see [`crate::congestion::Handover`]).
    pub fn handover(config: &CongestionConfig, from: &Handover) -> Self {
        NewReno { w: LossWindow::handover(config, from), bytes_acked: 0 }
    }

    pub fn on_packet_sent(&mut self, _now: Instant, packet: &SentPacket) {
        self.w.on_packet_sent(packet);
    }

    pub fn on_ack(&mut self, _now: Instant, ack: &AckEvent) {
        if !self.w.on_ack_common(ack) {
            return;
        }
        let mut acked = ack.newly_acked_bytes;
        if self.w.in_slow_start() {
            acked = self.w.slow_start(acked);
            if acked == 0 {
                return;
            }
        }
        self.congestion_avoidance(acked);
    }

    /// RFC 5681 §3.1 byte counting: one MSS per cwnd of acknowledged data.
    fn congestion_avoidance(&mut self, acked: u32) {
        self.bytes_acked = self.bytes_acked.saturating_add(acked);
        if self.bytes_acked >= self.w.cwnd {
            self.bytes_acked -= self.w.cwnd;
            // Never carry more than one window: a huge ACK grows cwnd by one MSS, not many.
            self.bytes_acked = self.bytes_acked.min(self.w.cwnd);
            self.w.set_cwnd(u64::from(self.w.cwnd) + u64::from(self.w.mss));
        }
    }

    pub fn on_congestion_event(&mut self, _now: Instant, loss: &LossEvent) {
        if loss.is_persistent {
            self.on_retransmit_timeout(_now);
            return;
        }
        if self.w.in_recovery {
            return;
        }
        self.bytes_acked = 0;
        self.w.enter_recovery(u64::from(loss.flight_size / 2), loss.flight_size, loss.in_flight);
    }

    pub fn on_recovery_exit(&mut self, _now: Instant) {
        self.w.exit_recovery();
    }

    pub fn on_retransmit_timeout(&mut self, _now: Instant) {
        self.bytes_acked = 0;
        // FlightSize is not known here; the window in use is the best stand-in (Linux too).
        self.w.on_rto(u64::from(self.w.cwnd / 2));
    }

    /// RFC 5681 §4.1 slow-start restart on or off (a socket option changed).
    pub fn set_slow_start_after_idle(&mut self, on: bool) {
        self.w.set_slow_start_after_idle(on);
    }

    /// Pacing at `cwnd / srtt` on or off (a socket option changed).
    pub fn set_pacing(&mut self, on: bool) {
        self.w.set_pacing(on);
    }

    pub fn on_spurious_congestion_event(&mut self) {
        self.w.undo();
    }

    pub fn on_idle_restart(&mut self, _now: Instant, idle: Duration, rto: Duration) {
        if self.w.idle_restart(idle, rto) {
            self.bytes_acked = 0;
        }
    }

    pub fn cwnd(&self) -> u32 {
        self.w.cwnd
    }
    pub fn ssthresh(&self) -> u32 {
        self.w.ssthresh
    }
    pub fn pacing_rate(&self) -> Option<u64> {
        self.w.pacing_rate()
    }
    /// See [`CongestionController::restart_window`](super::CongestionController::restart_window).
    pub fn restart_window(&self) -> u32 {
        self.w.restart_window()
    }
    pub fn send_quantum(&self) -> u32 {
        self.w.send_quantum()
    }
    pub fn in_slow_start(&self) -> bool {
        self.w.in_slow_start()
    }
    pub fn in_recovery(&self) -> bool {
        self.w.in_recovery
    }
    pub fn info(&self) -> CongestionInfo {
        CongestionInfo {
            algorithm: Algorithm::NewReno,
            cwnd: self.cwnd(),
            ssthresh: self.ssthresh(),
            pacing_rate: self.pacing_rate(),
            in_slow_start: self.in_slow_start(),
            in_recovery: self.in_recovery(),
            bbr_state: None,
            min_rtt: self.w.min_rtt,
            bw: None,
            pacing_gain: None,
            cwnd_gain: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::congestion::test_util::{ack_window, Flow};

    const MSS: u32 = 1000;

    fn reno() -> Flow<NewReno> {
        let mut config = CongestionConfig::new(Algorithm::NewReno, MSS);
        config.initial_window_segments = 2;
        Flow::new(NewReno::new(&config), MSS)
    }

    #[test]
    fn slow_start_doubles_per_rtt() {
        let mut f = reno();
        for round in 0..6 {
            let before = f.cc.cwnd();
            ack_window(&mut f, Duration::from_millis(50), 1);
            assert_eq!(f.cc.cwnd(), 2 * before, "round {round}");
        }
        assert_eq!(f.cc.cwnd(), 128 * MSS);
    }

    #[test]
    fn abc_limits_growth_to_two_segments_per_ack() {
        let mut f = reno();
        // One stretch ACK covering 2 segments of a 2-segment window, then a huge one.
        ack_window(&mut f, Duration::from_millis(50), 2);
        assert_eq!(f.cc.cwnd(), 4 * MSS);
        ack_window(&mut f, Duration::from_millis(50), 4);
        assert_eq!(f.cc.cwnd(), 6 * MSS);
    }

    #[test]
    fn congestion_avoidance_adds_one_mss_per_rtt() {
        let mut f = reno();
        f.cc.w.ssthresh = 20 * MSS;
        f.cc.w.cwnd = 20 * MSS;
        for round in 0..10 {
            ack_window(&mut f, Duration::from_millis(50), 1);
            assert_eq!(f.cc.cwnd(), (21 + round) * MSS);
        }
    }

    #[test]
    fn loss_halves_flight_and_recovery_exit_sets_ssthresh() {
        let mut f = reno();
        f.cc.w.ssthresh = 20 * MSS;
        f.cc.w.cwnd = 20 * MSS;
        let now = f.now;
        f.cc.on_congestion_event(
            now,
            &LossEvent { lost_bytes: MSS, flight_size: 20 * MSS, in_flight: 19 * MSS, is_persistent: false },
        );
        assert_eq!(f.cc.ssthresh(), 10 * MSS);
        assert!(f.cc.in_recovery());
        // A second event in the same window changes nothing.
        f.cc.on_congestion_event(
            now,
            &LossEvent { lost_bytes: MSS, flight_size: 18 * MSS, in_flight: 10 * MSS, is_persistent: false },
        );
        assert_eq!(f.cc.ssthresh(), 10 * MSS);
        f.cc.on_recovery_exit(now);
        assert_eq!(f.cc.cwnd(), 10 * MSS);
        assert!(!f.cc.in_recovery());
        // Undo restores the pre-loss window.
        f.cc.on_spurious_congestion_event();
        assert_eq!((f.cc.cwnd(), f.cc.ssthresh()), (20 * MSS, 20 * MSS));
    }

    #[test]
    fn rto_collapses_to_two_segments_and_holds_ssthresh_on_backoff() {
        let mut f = reno();
        f.cc.w.ssthresh = 40 * MSS;
        f.cc.w.cwnd = 40 * MSS;
        f.cc.on_retransmit_timeout(f.now);
        assert_eq!((f.cc.cwnd(), f.cc.ssthresh()), (2 * MSS, 20 * MSS));
        f.cc.on_retransmit_timeout(f.now);
        assert_eq!((f.cc.cwnd(), f.cc.ssthresh()), (2 * MSS, 20 * MSS));
        assert!(f.cc.in_slow_start());
    }

    #[test]
    fn idle_restart_only_when_configured() {
        let mut config = CongestionConfig::new(Algorithm::NewReno, MSS);
        let mut cc = NewReno::new(&config);
        cc.w.cwnd = 100 * MSS;
        let (idle, rto) = (Duration::from_secs(5), Duration::from_secs(1));
        cc.on_idle_restart(Instant::ZERO, idle, rto);
        assert_eq!(cc.cwnd(), 100 * MSS);
        config.slow_start_after_idle = true;
        let mut cc = NewReno::new(&config);
        cc.w.cwnd = 100 * MSS;
        cc.on_idle_restart(Instant::ZERO, Duration::from_millis(500), rto);
        assert_eq!(cc.cwnd(), 100 * MSS, "shorter than the RTO: no restart");
        cc.on_idle_restart(Instant::ZERO, idle, rto);
        assert_eq!(cc.cwnd(), 10 * MSS);
    }

    #[test]
    fn app_limited_sender_does_not_grow_the_window() {
        let mut f = reno();
        f.cc.w.ssthresh = 20 * MSS;
        f.cc.w.cwnd = 20 * MSS;
        // Only 5 segments in flight per round: cwnd must stay put.
        for _ in 0..10 {
            f.round_with(Duration::from_millis(50), 5, 1);
        }
        assert_eq!(f.cc.cwnd(), 20 * MSS);
    }
}
