//! BBR's small windowed filters and its PRNG; all fixed-size, no allocation.

use crate::time::{Duration, Instant};

/// Windowed maximum of delivery-rate samples over the current and previous ProbeBW cycle
/// (draft-ietf-ccwg-bbr `MaxBwFilterLen = 2`): two slots, the newer one reset at each cycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MaxBwFilter {
    /// `[current cycle, previous cycle]`, bytes/s.
    slots: [u64; 2],
}

impl MaxBwFilter {
    pub fn update(&mut self, sample: u64) {
        self.slots[0] = self.slots[0].max(sample);
    }
    /// A new ProbeBW cycle starts (`BBR.cycle_count++`).
    pub fn advance(&mut self) {
        self.slots[1] = self.slots[0];
        self.slots[0] = 0;
    }
    pub fn best(&self) -> u64 {
        self.slots[0].max(self.slots[1])
    }
}

/// Rounds per slot of the extra-acked filter: two slots give a window of about 10 rounds
/// (draft `BBRExtraAckedFilterLen = 10`).
const EXTRA_ACKED_SLOT_ROUNDS: u64 = 5;

/// ACK-aggregation estimate (draft "Estimating the Excess Data Delivered Due to ACK
/// Aggregation"): how much more data ACKs delivered than the bandwidth model expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExtraAcked {
    interval_start: Instant,
    delivered: u64,
    slots: [u64; 2],
    slot: usize,
    slot_start_round: u64,
}

impl ExtraAcked {
    pub fn new(now: Instant) -> Self {
        ExtraAcked { interval_start: now, delivered: 0, slots: [0; 2], slot: 0, slot_start_round: 0 }
    }

    /// Restarts the measurement interval (after idle).
    pub fn restart(&mut self, now: Instant) {
        self.interval_start = now;
        self.delivered = 0;
    }

    pub fn update(
        &mut self,
        now: Instant,
        newly_acked: u64,
        bw: u64,
        cwnd: u64,
        round: u64,
        round_start: bool,
    ) {
        if round_start && round.saturating_sub(self.slot_start_round) >= EXTRA_ACKED_SLOT_ROUNDS {
            self.slot ^= 1;
            self.slots[self.slot] = 0;
            self.slot_start_round = round;
        }
        let mut expected = crate::congestion::bytes_in(bw, now - self.interval_start);
        if self.delivered <= expected {
            // The ACK rate caught up with the model: start a new aggregation epoch.
            self.delivered = 0;
            self.interval_start = now;
            expected = 0;
        }
        self.delivered = self.delivered.saturating_add(newly_acked);
        let extra = self.delivered.saturating_sub(expected).min(cwnd);
        self.slots[self.slot] = self.slots[self.slot].max(extra);
    }

    pub fn best(&self) -> u64 {
        self.slots[0].max(self.slots[1])
    }
}

/// xorshift64*: a tiny deterministic PRNG for ProbeBW's randomised wait. Seeded by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // Zero is the one state xorshift never leaves.
        Rng(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `[0, bound)`; 0 for a zero bound.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next_u64() % bound
        }
    }
    /// Uniform duration in `[0, max)`.
    pub fn duration_below(&mut self, max: Duration) -> Duration {
        Duration::from_nanos(self.below(max.as_nanos()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_bw_forgets_after_two_cycles() {
        let mut f = MaxBwFilter::default();
        f.update(100);
        f.advance();
        f.update(50);
        assert_eq!(f.best(), 100);
        f.advance();
        assert_eq!(f.best(), 50);
    }

    #[test]
    fn extra_acked_measures_a_burst_above_the_model() {
        let t0 = Instant::from_millis(100);
        let mut e = ExtraAcked::new(t0);
        // Model: 1 MB/s. 10 KB at t0, 10 KB more 5 ms later: 15 KB more than the 5 KB expected.
        e.update(t0, 10_000, 1_000_000, 1 << 20, 1, true);
        e.update(t0 + Duration::from_millis(5), 10_000, 1_000_000, 1 << 20, 1, false);
        assert_eq!(e.best(), 15_000);
        // Capped at cwnd.
        e.update(t0 + Duration::from_millis(5), 100_000, 1_000_000, 40_000, 1, false);
        assert_eq!(e.best(), 40_000);
        // ACKs arriving slower than the model restart the epoch.
        e.update(t0 + Duration::from_secs(1), 1_000, 1_000_000, 1 << 20, 2, false);
        assert_eq!(e.best(), 40_000, "the window still remembers the burst");
    }

    #[test]
    fn rng_is_deterministic_and_bounded() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..100 {
            let x = a.below(10);
            assert_eq!(x, b.below(10));
            assert!(x < 10);
        }
        assert_eq!(Rng::new(0).below(0), 0);
    }
}
