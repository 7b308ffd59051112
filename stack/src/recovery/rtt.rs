//! Round-trip time estimation and the retransmission timeout (RFC 6298), plus the windowed
//! minimum RTT that RACK's reordering window and TLP's checks use (RFC 8985 §6.1).
//!
//! **Owns** SRTT, RTTVAR, the base RTO and its exponential backoff (§5.5, kept apart so the
//! base survives), and `min_rtt`. Samples are chosen by the caller (Karn's algorithm, §3).
//! **Promises:** saturating arithmetic, no panic, no allocation.

use crate::time::{Duration, Instant};

/// RTO bounds and the minimum-RTT window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttConfig {
    /// RTO before any sample (RFC 6298 §2.1: 1 s).
    pub initial_rto: Duration,
    /// Lower bound of the RTO (RFC 6298 §2.4 says 1 s; Linux uses 200 ms).
    pub min_rto: Duration,
    /// Upper bound of the RTO, backoff included (RFC 6298 §2.5: at least 60 s).
    pub max_rto: Duration,
    /// How long a minimum RTT sample stays valid before a larger one may replace it.
    pub min_rtt_window: Duration,
}

impl Default for RttConfig {
    fn default() -> Self {
        RttConfig {
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(120),
            min_rtt_window: Duration::from_secs(300),
        }
    }
}

/// RFC 6298 estimator of one connection.
#[derive(Debug, Clone)]
pub struct RttEstimator {
    config: RttConfig,
    srtt: Option<Duration>,
    rttvar: Duration,
    base_rto: Duration,
    backoff: u32,
    min_rtt: Option<(Duration, Instant)>,
    latest: Option<Duration>,
}

impl RttEstimator {
    pub fn new(config: RttConfig) -> Self {
        RttEstimator {
            config,
            srtt: None,
            rttvar: Duration::ZERO,
            base_rto: config.initial_rto,
            backoff: 0,
            min_rtt: None,
            latest: None,
        }
    }

    /// RFC 6298 §2.2/§2.3 with α = 1/8, β = 1/4; a valid sample also clears the backoff.
    pub fn on_sample(&mut self, now: Instant, r: Duration) {
        self.latest = Some(r);
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r.checked_div_or_zero(2);
            }
            Some(srtt) => {
                let diff = if srtt > r { srtt - r } else { r - srtt };
                self.rttvar = (self.rttvar.saturating_mul(3) + diff).checked_div_or_zero(4);
                self.srtt = Some((srtt.saturating_mul(7) + r).checked_div_or_zero(8));
            }
        }
        let srtt = self.srtt.unwrap_or(r);
        // RFC 6298 §2.3 with the minimum applied to the variance term, as Linux does
        // (`srtt + max(4·rttvar, min_rto)`): a floor on the whole RTO would put it a hair above
        // SRTT on a steady long path (200.1 ms on a 200 ms path), firing spuriously at the
        // slightest queueing. `max_rto` still bounds the result.
        let var = self.rttvar.saturating_mul(4).max(self.config.min_rto);
        self.base_rto = clamp(srtt + var, self.config.min_rto, self.config.max_rto);
        self.backoff = 0;
        let expired = self
            .min_rtt
            .is_some_and(|(_, at)| now.saturating_duration_since(at) > self.config.min_rtt_window);
        if self.min_rtt.is_none_or(|(m, _)| r <= m) || expired {
            self.min_rtt = Some((r, now));
        }
    }

    /// RFC 6298 §5.5: doubles the RTO, up to `max_rto`.
    pub fn back_off(&mut self) {
        self.backoff = self.backoff.saturating_add(1).min(30);
    }
    /// Clears the backoff without a sample (RFC 6298 §5.7: after the handshake's timeouts,
    /// data starts from the base RTO, as Linux does on a valid ACK).
    pub fn reset_backoff(&mut self) {
        self.backoff = 0;
    }
    /// The RTO without backoff.
    pub fn base_rto(&self) -> Duration {
        self.base_rto
    }
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }
    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt.map(|(m, _)| m)
    }
    pub fn latest(&self) -> Option<Duration> {
        self.latest
    }
    pub fn backoff(&self) -> u32 {
        self.backoff
    }
    /// The current RTO, backoff included.
    pub fn rto(&self) -> Duration {
        clamp(
            self.base_rto.saturating_mul(1 << self.backoff.min(30)),
            self.config.min_rto,
            self.config.max_rto,
        )
    }
}

fn clamp(d: Duration, lo: Duration, hi: Duration) -> Duration {
    if d < lo {
        lo
    } else if d > hi {
        hi
    } else {
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6298_estimates_backoff_and_min_rtt() {
        let mut rtt = RttEstimator::new(RttConfig::default());
        assert_eq!(rtt.rto(), Duration::from_secs(1));
        let t = Instant::from_millis(10);
        rtt.on_sample(t, Duration::from_millis(100));
        assert_eq!((rtt.srtt(), rtt.rttvar()), (Some(Duration::from_millis(100)), Duration::from_millis(50)));
        assert_eq!(rtt.rto(), Duration::from_millis(300));
        rtt.on_sample(t, Duration::from_millis(200));
        // RTTVAR = 3/4·50 + 1/4·100 = 62.5 ms; SRTT = 7/8·100 + 1/8·200 = 112.5 ms.
        assert_eq!(rtt.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(rtt.rttvar(), Duration::from_micros(62_500));
        assert_eq!(rtt.min_rtt(), Some(Duration::from_millis(100)));
        rtt.back_off();
        rtt.back_off();
        assert_eq!(rtt.rto(), Duration::from_millis(362_500 * 4 / 1000));
        for _ in 0..40 {
            rtt.back_off();
        }
        assert_eq!(rtt.rto(), Duration::from_secs(120));
        // After the window, a larger sample replaces the minimum.
        rtt.on_sample(t + Duration::from_secs(301), Duration::from_millis(150));
        assert_eq!(rtt.min_rtt(), Some(Duration::from_millis(150)));
        assert_eq!(rtt.backoff(), 0);
    }
}
