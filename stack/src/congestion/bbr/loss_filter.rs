//! Random-loss tolerance: a bounded, documented deviation from draft-ietf-ccwg-bbr.
//!
//! The draft reads every loss as a congestion signal: any loss in a round outside bandwidth
//! probing cuts `bw_lo`/`inflight_lo` toward the latest delivery (§5.5.10.3), a loss rate above
//! `LossThresh` (2 %) ends a probe and bounds `inflight_hi` (§5.5.10.2), and ends Startup. On a
//! path that drops packets at random (a lossy radio hop, a dirty fibre, an overloaded middlebox),
//! those cuts repeat every round: at 1 % the lower bounds ratchet down until the next probe, and
//! at a few percent `inflight_hi` collapses to a fraction of the BDP (the draft itself says it
//! aims to tolerate "1 % loss per round trip", no more).
//!
//! **Owns** an estimate of the path's *background* loss rate: the share of bytes lost among
//! those reported in rounds whose ACKs all show no standing queue (every RTT within
//! [`queue_slack`] of `min_rtt`, in that round and the one before). A drop-tail bottleneck only
//! drops when its queue is full, so loss in a round that never saw a queue did not come from
//! congestion; a round with any queued sample is left out entirely (competing flows keep a
//! shared queue busy, and letting their drops in would make every flow tolerate them). The
//! counters decay by halving once they cover [`WINDOW_SEGMENTS`] segments, so the estimate
//! follows a path that changes.
//!
//! **Promises:** [`BackgroundLoss::allowance`] is the loss volume that random loss alone
//! explains for a given volume of data (mean plus three standard deviations, so a congestion
//! signal has to stand out of the noise); BBR subtracts it before applying the draft's tests.
//! With no loss on queue-free ACKs (or with the filter disabled) the allowance is exactly zero
//! and BBR behaves as the draft says. Fixed size, O(1), no allocation, never panics.
//!
//! A drop in `min_rtt` by more than the slack resets the estimate: the rounds it came from were
//! judged against a minimum that included a standing queue (a flow that starts while others
//! keep the bottleneck queue full learns its true base RTT only later).
//!
//! **Limits (measured, see docs/PERFORMANCE.md):** several BBR flows that keep a shared queue
//! busy can still see drops on rounds that look queue-free to them (a late joiner's `min_rtt`
//! includes the standing queue until the queue drains; a queue shallower than the slack is
//! invisible), learn that loss as background and then tolerate it: 8 flows on a 0.25-BDP
//! buffer lose 5.6 % of their segments instead of 0.6 % with the draft's response. Set
//! `bbr_tolerate_random_loss = false` where many flows share a bottleneck and random loss is
//! rare (a data centre).

use crate::time::Duration;

/// The counters halve once they cover this many segments (about 10 rounds at 100 Mbit/s and
/// 200 ms, 40 rounds at 50 ms): enough samples for a 0.1 % rate to show, short enough to follow
/// a path whose loss rate changes.
pub(crate) const WINDOW_SEGMENTS: u64 = 16_384;
/// Standard deviations of slack granted above the mean random loss.
const NOISE_SIGMAS: f64 = 3.0;

/// Queueing delay below which an RTT sample counts as "no standing queue": a sixteenth of
/// `min_rtt`, or three send quanta at the estimated rate (pacing releases a quantum at a time,
/// so a quantum or two of transient queue is normal), whichever is larger.
pub(crate) fn queue_slack(min_rtt: Duration, send_quantum: u32, rate: u64) -> Duration {
    let nanos = u128::from(3 * u64::from(send_quantum)) * 1_000_000_000 / u128::from(rate.max(1));
    let bursts = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
    min_rtt.checked_div_or_zero(16).max(bursts)
}

/// Decayed byte counters of queue-free ACKs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BackgroundLoss {
    enabled: bool,
    mss: u64,
    /// Bytes newly marked lost on queue-free ACKs.
    lost: u64,
    /// Bytes delivered plus lost on queue-free ACKs.
    total: u64,
    /// The current round's share, committed at its end only if the round stayed queue-free.
    round_lost: u64,
    round_total: u64,
}

impl BackgroundLoss {
    pub fn new(enabled: bool, mss: u32) -> Self {
        BackgroundLoss {
            enabled,
            mss: u64::from(mss.max(1)),
            lost: 0,
            total: 0,
            round_lost: 0,
            round_total: 0,
        }
    }

    /// One ACK of the current round: `delivered` and `lost` bytes.
    pub fn on_ack(&mut self, delivered: u64, lost: u64) {
        if !self.enabled {
            return;
        }
        self.round_lost = self.round_lost.saturating_add(lost);
        self.round_total = self.round_total.saturating_add(delivered).saturating_add(lost);
    }

    /// The round ended; `queue_free` when none of its RTT samples (nor the previous round's)
    /// crossed a standing queue: only then does it count.
    pub fn end_round(&mut self, queue_free: bool) {
        if queue_free {
            self.lost = self.lost.saturating_add(self.round_lost);
            self.total = self.total.saturating_add(self.round_total);
            while self.total > WINDOW_SEGMENTS.saturating_mul(self.mss) {
                self.lost /= 2;
                self.total /= 2;
            }
        }
        self.round_lost = 0;
        self.round_total = 0;
    }

    /// Estimated background loss rate in `[0, 1]`.
    pub fn rate(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            (self.lost as f64 / self.total as f64).clamp(0.0, 1.0)
        }
    }

    /// Switches the tolerance on or off (a socket option changed). Turning it off forgets the
    /// estimate, so every loss counts again at once, as in the draft.
    pub fn set_enabled(&mut self, on: bool) {
        if on != self.enabled {
            *self = BackgroundLoss::new(on, self.mss as u32);
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Forgets the estimate: the rounds it came from were judged against a wrong `min_rtt`.
    pub fn reset(&mut self) {
        *self = BackgroundLoss::new(self.enabled, self.mss as u32);
    }

    /// Bytes of loss that background loss explains among `volume` bytes: `p·v + 3·σ` with the
    /// binomial σ counted in segments. Zero while no queue-free loss was seen.
    pub fn allowance(&self, volume: u64) -> u64 {
        let p = self.rate();
        if p == 0.0 {
            return 0;
        }
        let segments = volume as f64 / self.mss as f64;
        let sigma = (segments * p * (1.0 - p)).sqrt();
        let allowed = (segments * p + NOISE_SIGMAS * sigma) * self.mss as f64;
        allowed.min(volume as f64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;

    #[test]
    fn no_queue_free_loss_means_no_allowance() {
        let mut b = BackgroundLoss::new(true, MSS);
        b.on_ack(100_000, 0);
        b.end_round(true);
        b.on_ack(0, 50_000);
        b.end_round(false);
        assert_eq!(b.rate(), 0.0);
        assert_eq!(b.allowance(1 << 30), 0);
    }

    #[test]
    fn disabled_filter_never_allows_loss() {
        let mut b = BackgroundLoss::new(false, MSS);
        b.on_ack(99_000, 1_000);
        b.end_round(true);
        assert_eq!(b.allowance(1_000_000), 0);
    }

    #[test]
    fn allowance_covers_the_mean_plus_noise() {
        let mut b = BackgroundLoss::new(true, MSS);
        for _ in 0..1_000 {
            b.on_ack(99_000, 1_000);
            b.end_round(true);
        }
        assert!((b.rate() - 0.01).abs() < 1e-3, "{}", b.rate());
        // 1000 segments at 1 %: mean 10, sigma ~3.1, allowance ~19.4 segments.
        let a = b.allowance(1_000_000);
        assert!((18_000..21_000).contains(&a), "{a}");
        assert!(b.total <= WINDOW_SEGMENTS * u64::from(MSS), "the window is bounded");
        assert!(b.allowance(500) <= 500);
    }

    #[test]
    fn estimate_follows_a_changing_path() {
        let mut b = BackgroundLoss::new(true, MSS);
        for _ in 0..2_000 {
            b.on_ack(95_000, 5_000);
            b.end_round(true);
        }
        for _ in 0..2_000 {
            b.on_ack(100_000, 0);
            b.end_round(true);
        }
        assert!(b.rate() < 0.005, "{}", b.rate());
    }

    #[test]
    fn slack_is_a_fraction_of_min_rtt_or_a_few_bursts() {
        let rtt = Duration::from_millis(160);
        assert_eq!(queue_slack(rtt, 12_500, 12_500_000), Duration::from_millis(10));
        assert_eq!(queue_slack(Duration::from_millis(16), 12_500, 12_500_000), Duration::from_millis(3));
        assert!(queue_slack(rtt, 3_000, 0) > Duration::from_secs(1), "zero rate: huge, no panic");
    }
}
