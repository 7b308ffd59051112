//! CUBIC (RFC 9438), with HyStart++ (RFC 9406) in the initial slow start.
//!
//! **Owns** the cubic epoch state: `W_max`, `K`, the epoch start time, `cwnd_epoch`, the
//! Reno-friendly estimate `W_est` and `cwnd_prior`. Slow start, PRR recovery, RTO collapse,
//! undo and idle restart come from the shared window machinery (`window.rs`).
//!
//! Implemented: the cubic window function `W_cubic(t) = C·(t−K)³ + W_max` with C = 0.4 and
//! `K = ∛((W_max − cwnd_epoch)/C)` (§4.2); the target `W_cubic(t+RTT)` clamped to
//! `[cwnd, 1.5·cwnd]` (§4.2); the Reno-friendly region with α_cubic = 3(1−β)/(1+β) switching to
//! 1 once `W_est` passes `cwnd_prior` (§4.3); concave and convex regions (same formula, §4.4/4.5);
//! multiplicative decrease β = 0.7 of the window in use (§4.6: using cwnd, not FlightSize, is
//! allowed because growth stops when not cwnd-limited); fast convergence (§4.7); RTO (§4.8);
//! spurious-event undo restoring the epoch (§4.9). Window arithmetic is f64 in bytes; every
//! result is clamped before it becomes a `u32`, so no input can produce NaN, infinity or a panic.
//!
//! Not implemented: the "TCP-friendly" fixed-point cube root of Linux (f64 `cbrt` is exact
//! enough and cheap), RFC 9438 §5's optional application-limited epoch handling beyond the
//! cwnd-limited test and idle shift.

use crate::congestion::window::LossWindow;
use crate::congestion::{
    AckEvent, Algorithm, CongestionConfig, CongestionInfo, Handover, LossEvent, SentPacket, MAX_CWND,
};
use crate::time::{Duration, Instant};

/// RFC 9438 §5: C = 0.4 (segments / s³).
pub const C: f64 = 0.4;
/// RFC 9438 §4.6: multiplicative decrease factor.
pub const BETA: f64 = 0.7;
/// RFC 9438 §4.3: Reno-friendly additive increase before `W_est` reaches `cwnd_prior`.
const ALPHA_RENO_FRIENDLY: f64 = 3.0 * (1.0 - BETA) / (1.0 + BETA);
/// Growth cap per RTT: target at most 1.5·cwnd (RFC 9438 §4.2).
const MAX_GROWTH: f64 = 1.5;

/// The epoch state that a spurious-event undo restores.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Epoch {
    /// Window before the last reduction, bytes (`W_max`).
    w_max: f64,
    /// Time from epoch start until the window is back at `W_max`, seconds.
    k: f64,
    /// Start of the current congestion-avoidance epoch; `None` until the first CA ACK.
    start: Option<Instant>,
    /// Window at the start of the epoch, bytes.
    cwnd_epoch: f64,
    /// Reno-friendly estimate, bytes.
    w_est: f64,
    /// Window before the last reduction (α switches to 1 once `W_est` exceeds it), bytes.
    cwnd_prior: f64,
}

#[derive(Debug, Clone)]
pub struct Cubic {
    w: LossWindow,
    epoch: Epoch,
    undo_epoch: Option<Epoch>,
    /// Fractional bytes of growth not yet applied to cwnd.
    credit: f64,
    fast_convergence: bool,
}

impl Cubic {
    pub fn new(config: &CongestionConfig) -> Self {
        Self::with_window(LossWindow::new(config))
    }

    /// CUBIC taking over a live connection (see [`crate::congestion::Handover`]): the epoch
    /// starts empty (`W_max` unknown), so the first congestion-avoidance ACK starts one at the
    /// current window, as after Linux's `bictcp_init`.
    pub fn handover(config: &CongestionConfig, from: &Handover) -> Self {
        Self::with_window(LossWindow::handover(config, from))
    }

    fn with_window(w: LossWindow) -> Self {
        let cwnd = f64::from(w.cwnd);
        Cubic {
            w,
            epoch: Epoch { w_max: 0.0, k: 0.0, start: None, cwnd_epoch: cwnd, w_est: cwnd, cwnd_prior: cwnd },
            undo_epoch: None,
            credit: 0.0,
            fast_convergence: true,
        }
    }

    /// `K` in seconds for a window of `w_max` bytes and an epoch starting at `cwnd_epoch`
    /// (RFC 9438 eq. 2); zero when the epoch already starts at or above `W_max`.
    pub fn k_seconds(w_max: f64, cwnd_epoch: f64, mss: u32) -> f64 {
        let gap_segments = (w_max - cwnd_epoch) / f64::from(mss.max(1));
        if gap_segments.is_finite() && gap_segments > 0.0 {
            (gap_segments / C).cbrt()
        } else {
            0.0
        }
    }

    /// `W_cubic(t)` in bytes (RFC 9438 eq. 1), finite for every finite input.
    fn w_cubic(&self, t: f64) -> f64 {
        let mss = f64::from(self.w.mss);
        let dt = t - self.epoch.k;
        let w = C * dt * dt * dt * mss + self.epoch.w_max;
        w.clamp(0.0, f64::from(MAX_CWND))
    }

    pub fn on_packet_sent(&mut self, _now: Instant, packet: &SentPacket) {
        self.w.on_packet_sent(packet);
    }

    pub fn on_ack(&mut self, now: Instant, ack: &AckEvent) {
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
        self.congestion_avoidance(now, acked);
    }

    /// RFC 9438 §4.2–4.5: one congestion-avoidance step for `acked` bytes.
    fn congestion_avoidance(&mut self, now: Instant, acked: u32) {
        let mss = f64::from(self.w.mss);
        let cwnd = f64::from(self.w.cwnd);
        if self.epoch.start.is_none() {
            self.start_epoch(now, cwnd);
        }
        let start = self.epoch.start.unwrap_or(now);
        let t = (now - start).as_secs_f64();
        let rtt = self.w.srtt.or(self.w.min_rtt).unwrap_or(Duration::ZERO).as_secs_f64();
        let acked = f64::from(acked);

        // Reno-friendly estimate (§4.3), in bytes.
        let alpha = if self.epoch.w_est >= self.epoch.cwnd_prior { 1.0 } else { ALPHA_RENO_FRIENDLY };
        self.epoch.w_est = (self.epoch.w_est + alpha * mss * acked / cwnd).min(f64::from(MAX_CWND));

        let increase = if self.w_cubic(t) < self.epoch.w_est {
            // Reno-friendly region: follow W_est.
            (self.epoch.w_est - cwnd).max(0.0)
        } else {
            // Concave/convex regions: close (target − cwnd) over one window of ACKs.
            let target = self.w_cubic(t + rtt).clamp(cwnd, MAX_GROWTH * cwnd);
            (target - cwnd) * acked / cwnd
        };
        self.credit += increase;
        if self.credit >= 1.0 {
            let whole = self.credit.floor();
            self.credit -= whole;
            self.w.set_cwnd(self.w.cwnd as u64 + whole as u64);
        }
    }

    fn start_epoch(&mut self, now: Instant, cwnd: f64) {
        self.epoch.start = Some(now);
        self.epoch.cwnd_epoch = cwnd;
        self.epoch.w_est = cwnd;
        self.credit = 0.0;
        if self.epoch.w_max < cwnd {
            // Leaving slow start without a loss (or growing past the old maximum): the plateau
            // is here, K = 0 and the window is in the convex region.
            self.epoch.w_max = cwnd;
        }
        self.epoch.k = Self::k_seconds(self.epoch.w_max, cwnd, self.w.mss);
    }

    /// §4.6 and §4.7: remember `W_max` (reduced further under fast convergence) and start a new
    /// epoch after the reduction. Returns the new `ssthresh`.
    fn reduce(&mut self) -> u64 {
        let cwnd = f64::from(self.w.cwnd);
        self.undo_epoch = Some(self.epoch);
        self.epoch.cwnd_prior = cwnd;
        self.epoch.w_max =
            if self.fast_convergence && cwnd < self.epoch.w_max { cwnd * (1.0 + BETA) / 2.0 } else { cwnd };
        self.epoch.start = None;
        self.credit = 0.0;
        (cwnd * BETA) as u64
    }

    pub fn on_congestion_event(&mut self, now: Instant, loss: &LossEvent) {
        if loss.is_persistent {
            self.on_retransmit_timeout(now);
            return;
        }
        if self.w.in_recovery {
            return;
        }
        let ssthresh = self.reduce();
        self.w.enter_recovery(ssthresh, loss.flight_size, loss.in_flight);
    }

    pub fn on_recovery_exit(&mut self, _now: Instant) {
        self.w.exit_recovery();
    }

    pub fn on_retransmit_timeout(&mut self, _now: Instant) {
        let ssthresh = if self.w.rto_recomputes_ssthresh() { self.reduce() } else { 0 };
        self.epoch.start = None;
        // Should the timeout prove spurious (RFC 4015), the undo restores W_max and the window
        // but starts a new epoch: the stall that fired the timer (an RTO at least) was no
        // congestion-avoidance time, and counting it would jump the cubic function ahead (as
        // the idle shift in `on_idle_restart` avoids).
        if let Some(saved) = self.undo_epoch.as_mut() {
            saved.start = None;
        }
        self.w.on_rto(ssthresh);
    }

    /// §4.9: restore cwnd, ssthresh and the whole epoch saved at the reduction.
    /// RFC 5681 §4.1 slow-start restart on or off (a socket option changed).
    pub fn set_slow_start_after_idle(&mut self, on: bool) {
        self.w.set_slow_start_after_idle(on);
    }

    /// Pacing at `cwnd / srtt` on or off (a socket option changed).
    pub fn set_pacing(&mut self, on: bool) {
        self.w.set_pacing(on);
    }

    pub fn on_spurious_congestion_event(&mut self) {
        if self.w.undo() {
            if let Some(epoch) = self.undo_epoch.take() {
                self.epoch = epoch;
            }
        }
    }

    pub fn on_idle_restart(&mut self, _now: Instant, idle: Duration, rto: Duration) {
        if self.w.idle_restart(idle, rto) {
            self.epoch.start = None;
        } else if let Some(start) = self.epoch.start {
            // Idle time is not congestion-avoidance time: shift the epoch so the cubic function
            // does not jump ahead after a pause (as Linux does on CA_EVENT_TX_START).
            self.epoch.start = Some(start + idle);
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
    /// `W_max` in bytes (0 before the first congestion event or slow-start exit).
    pub fn w_max(&self) -> f64 {
        self.epoch.w_max
    }
    pub fn info(&self) -> CongestionInfo {
        CongestionInfo {
            algorithm: Algorithm::Cubic,
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
    use crate::congestion::test_util::Flow;

    const MSS: u32 = 1000;

    fn cubic(cwnd_segments: u32) -> Flow<Cubic> {
        let config = CongestionConfig::new(Algorithm::Cubic, MSS);
        let mut cc = Cubic::new(&config);
        cc.w.cwnd = cwnd_segments * MSS;
        cc.w.ssthresh = cwnd_segments * MSS;
        Flow::new(cc, MSS)
    }

    /// A loss at `cwnd_segments`, recovery, then rounds of full windows with ACKs of 10 segments.
    fn after_loss(cwnd_segments: u32) -> Flow<Cubic> {
        let mut f = cubic(cwnd_segments);
        let now = f.now;
        let flight = cwnd_segments * MSS;
        f.cc.on_congestion_event(
            now,
            &LossEvent {
                lost_bytes: MSS,
                flight_size: flight,
                in_flight: flight - MSS,
                is_persistent: false,
            },
        );
        f.cc.on_recovery_exit(now);
        f
    }

    #[test]
    fn k_formula() {
        // W_max = 100 segments, cwnd_epoch = 70: K = cbrt(30 / 0.4) = cbrt(75).
        let k = Cubic::k_seconds(100_000.0, 70_000.0, MSS);
        assert!((k - 75f64.cbrt()).abs() < 1e-9);
        assert_eq!(Cubic::k_seconds(1.0, 2.0, MSS), 0.0);
        assert_eq!(Cubic::k_seconds(f64::NAN, 2.0, 0), 0.0);
    }

    #[test]
    fn loss_sets_w_max_and_beta_reduction() {
        let f = after_loss(100);
        assert_eq!(f.cc.ssthresh(), 70 * MSS);
        assert_eq!(f.cc.cwnd(), 70 * MSS);
        assert_eq!(f.cc.w_max(), 100_000.0);
    }

    #[test]
    fn fast_convergence_lowers_w_max_on_a_shrinking_peak() {
        let mut f = after_loss(100);
        // Second loss at 80 segments, below the previous W_max of 100.
        f.cc.w.cwnd = 80 * MSS;
        let now = f.now;
        f.cc.on_congestion_event(
            now,
            &LossEvent { lost_bytes: MSS, flight_size: 80 * MSS, in_flight: 79 * MSS, is_persistent: false },
        );
        assert_eq!(f.cc.w_max(), 80_000.0 * (1.0 + BETA) / 2.0);
        assert_eq!(f.cc.ssthresh(), 56 * MSS);
    }

    #[test]
    fn window_follows_the_cubic_function() {
        // Large window and long RTT so the cubic region dominates the Reno-friendly one.
        let rtt = Duration::from_millis(100);
        let mut f = after_loss(10_000);
        let k = Cubic::k_seconds(10_000_000.0, 7_000_000.0, MSS);
        let start = f.now;
        for _ in 0..300 {
            let segments = f.cc.cwnd() / MSS;
            f.round_with(rtt, segments, 10);
            // After a round ending at t, cwnd ~ W_cubic(t + RTT) (the per-round target).
            let t = (f.now - start).as_secs_f64();
            let expected = (C * (t - k).powi(3) * 1000.0 + 10_000_000.0).max(7_000_000.0);
            let got = f64::from(f.cc.cwnd());
            // Within 1% (targets are one RTT ahead; growth is spread over the round).
            assert!((got - expected).abs() / expected < 0.01, "t={t:.1}s cwnd {got} expected {expected}");
        }
        assert!(f.cc.cwnd() > 10_000 * MSS, "convex region reached");
    }

    #[test]
    fn reno_friendly_region_on_short_rtt() {
        // Small window, 1 ms RTT: the cubic curve is nearly flat over many RTTs, W_est wins.
        let rtt = Duration::from_millis(1);
        let mut f = after_loss(20);
        for _ in 0..100 {
            let segments = f.cc.cwnd() / MSS;
            f.round_with(rtt, segments, 1);
        }
        // W_est grows α = 0.53 segment per round from 14 to cwnd_prior = 20, then 1 per round:
        // ~108 segments after 100 rounds, while W_cubic(0.1 s) is still ~15 segments.
        let expected = 20.0 + (100.0 - 6.0 / ALPHA_RENO_FRIENDLY);
        let got = f64::from(f.cc.cwnd()) / f64::from(MSS);
        assert!((got - expected).abs() < 3.0, "cwnd {got} segments, W_est {expected}");
    }

    #[test]
    fn undo_restores_the_epoch() {
        let mut f = after_loss(100);
        f.cc.on_spurious_congestion_event();
        assert_eq!(f.cc.cwnd(), 100 * MSS);
        assert_eq!(f.cc.w_max(), 0.0);
    }

    #[test]
    fn hystart_leaves_slow_start_on_rising_rtt_without_a_loss() {
        let config = CongestionConfig::new(Algorithm::Cubic, MSS);
        let mut f = Flow::new(Cubic::new(&config), MSS);
        // Flat 40 ms for 4 rounds (slow start doubles), then the queue adds 10 ms per round.
        for round in 0..12u64 {
            let rtt = Duration::from_millis(40 + 10 * round.saturating_sub(3));
            let segments = f.cc.cwnd() / MSS;
            f.round_with(rtt, segments, 1);
        }
        assert!(!f.cc.in_slow_start(), "still in slow start at cwnd {}", f.cc.cwnd());
        let exit = f.cc.ssthresh();
        // Exit came after CSS: more than the 160 segments slow start reached, far less than
        // another 8 doublings would give.
        assert!(exit > 160 * MSS && exit < 2_000 * MSS, "ssthresh {exit}");
        assert_eq!(f.cc.w_max(), f64::from(exit), "CA epoch starts at the exit point, K = 0");
    }

    #[test]
    fn hystart_keeps_slow_start_on_flat_rtt() {
        let config = CongestionConfig::new(Algorithm::Cubic, MSS);
        let mut f = Flow::new(Cubic::new(&config), MSS);
        for _ in 0..8 {
            let segments = f.cc.cwnd() / MSS;
            f.round_with(Duration::from_millis(40), segments, 1);
        }
        assert!(f.cc.in_slow_start());
        assert_eq!(f.cc.cwnd(), 10 * 256 * MSS);
    }

    #[test]
    fn huge_times_and_windows_stay_finite() {
        let mut f = after_loss(10_000);
        let segments = f.cc.cwnd() / MSS;
        f.round_with(Duration::from_secs(1_000_000_000), segments, 1000);
        assert!(f.cc.cwnd() <= MAX_CWND);
        f.cc.w.cwnd = MAX_CWND;
        f.round_with(Duration::MAX, 10, 1);
        assert_eq!(f.cc.cwnd(), MAX_CWND);
    }
}
