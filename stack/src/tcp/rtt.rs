//! Round-trip time estimation and the retransmission timeout, RFC 6298.
//!
//! Owns SRTT, RTTVAR and RTO for one connection. Samples come from one timed segment per round
//! trip (Karn's algorithm, §3: samples from retransmitted segments are never taken — the caller
//! clears the timed segment on retransmission). Backoff (§5.5) is kept separately so the base RTO
//! survives it; a new sample resets the backoff (§5.7 analogue, as Linux does on a valid ACK).

use crate::time::Duration;

/// RFC 6298 estimator. All arithmetic in nanoseconds, saturating.
#[derive(Clone, Copy, Debug)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    min_rtt: Duration,
    latest: Duration,
    rto: Duration,
    min_rto: Duration,
    max_rto: Duration,
    /// Number of consecutive backoffs applied to the RTO (§5.5).
    backoff: u32,
}

/// Clock granularity G of RFC 6298 §2: our clock is nanoseconds, but treat 1 ms as G so RTTVAR
/// never collapses to zero on a perfectly regular simulated link.
const GRANULARITY: Duration = Duration::from_millis(1);

impl RttEstimator {
    /// §2.1: before any sample, RTO = `initial_rto` (1 s), bounded by min/max.
    pub fn new(initial_rto: Duration, min_rto: Duration, max_rto: Duration) -> Self {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            min_rtt: Duration::MAX,
            latest: Duration::ZERO,
            rto: initial_rto.max(min_rto).min(max_rto),
            min_rto,
            max_rto,
            backoff: 0,
        }
    }

    /// §2.2 / §2.3: folds in one RTT measurement and recomputes RTO; clears the backoff.
    pub fn on_sample(&mut self, r: Duration) {
        self.latest = r;
        self.min_rtt = self.min_rtt.min(r);
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = Duration::from_nanos(r.as_nanos() / 2);
            }
            Some(srtt) => {
                // RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'|; SRTT <- 7/8 SRTT + 1/8 R'.
                let diff = if srtt > r { srtt - r } else { r - srtt };
                self.rttvar = Duration::from_nanos((self.rttvar.as_nanos() / 4) * 3 + diff.as_nanos() / 4);
                self.srtt = Some(Duration::from_nanos((srtt.as_nanos() / 8) * 7 + r.as_nanos() / 8));
            }
        }
        let srtt = self.srtt.unwrap_or(r);
        // RTO <- SRTT + max(G, K*RTTVAR), K = 4; §2.4 minimum, §2.5 maximum.
        let rto = srtt + GRANULARITY.max(self.rttvar.saturating_mul(4));
        self.rto = rto.max(self.min_rto).min(self.max_rto);
        self.backoff = 0;
    }

    /// §5.5: doubles the timer on each expiry ("back off the timer"), bounded by the maximum.
    pub fn back_off(&mut self) {
        self.backoff = self.backoff.saturating_add(1);
    }

    /// Clears the backoff without a sample (e.g. an ACK of new data after a timeout, §5.7).
    pub fn reset_backoff(&mut self) {
        self.backoff = 0;
    }

    /// The current RTO including backoff.
    pub fn rto(&self) -> Duration {
        let shift = self.backoff.min(30);
        self.rto.saturating_mul(1u64 << shift).min(self.max_rto)
    }

    /// The RTO without backoff.
    pub fn base_rto(&self) -> Duration {
        self.rto
    }

    pub fn backoff(&self) -> u32 {
        self.backoff
    }

    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }

    /// Smallest sample seen (zero-free; `Duration::MAX` before any sample).
    pub fn min_rtt(&self) -> Duration {
        self.min_rtt
    }

    pub fn latest(&self) -> Duration {
        self.latest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est() -> RttEstimator {
        RttEstimator::new(Duration::from_secs(1), Duration::from_millis(200), Duration::from_secs(120))
    }

    #[test]
    fn initial_rto_is_one_second() {
        assert_eq!(est().rto(), Duration::from_secs(1));
    }

    #[test]
    fn first_sample_sets_srtt_and_half_rttvar() {
        let mut e = est();
        e.on_sample(Duration::from_millis(100));
        assert_eq!(e.srtt(), Some(Duration::from_millis(100)));
        assert_eq!(e.rttvar(), Duration::from_millis(50));
        assert_eq!(e.rto(), Duration::from_millis(300));
    }

    #[test]
    fn rto_is_clamped_to_min_and_max() {
        let mut e = est();
        e.on_sample(Duration::from_micros(100));
        assert_eq!(e.rto(), Duration::from_millis(200));
        e.on_sample(Duration::from_secs(500));
        assert_eq!(e.rto(), Duration::from_secs(120));
    }

    #[test]
    fn backoff_doubles_until_max_and_sample_resets_it() {
        let mut e = est();
        e.on_sample(Duration::from_millis(100));
        e.back_off();
        assert_eq!(e.rto(), Duration::from_millis(600));
        for _ in 0..40 {
            e.back_off();
        }
        assert_eq!(e.rto(), Duration::from_secs(120));
        e.on_sample(Duration::from_millis(100));
        assert_eq!(e.backoff(), 0);
    }

    #[test]
    fn subsequent_samples_follow_the_ewma() {
        let mut e = est();
        e.on_sample(Duration::from_millis(100));
        e.on_sample(Duration::from_millis(200));
        // rttvar = 3/4*50 + 1/4*100 = 62.5; srtt = 7/8*100 + 1/8*200 = 112.5
        assert_eq!(e.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(e.rttvar(), Duration::from_micros(62_500));
    }
}
