//! HyStart++ (RFC 9406): leave slow start on a sustained RTT increase, before the queue overflows.
//!
//! **Owns** the per-round minimum-RTT bookkeeping and the phase of the initial slow start:
//! standard slow start, Conservative Slow Start (CSS, growth divided by 4) or done. The caller
//! owns `cwnd`: it reports round starts and RTT samples, asks for the growth divisor and is told
//! when to set `ssthresh = cwnd` (end of CSS).
//!
//! Rounds are counted by the caller from delivered bytes (`RoundCounter`), which is the
//! "windowEnd" of RFC 9406 §4.2 expressed in delivered data instead of sequence numbers.
//!
//! **Promises:** no arithmetic on durations that can overflow (all saturating); never panics.

use crate::time::Duration;

/// RFC 9406 §4.3 constants.
const MIN_RTT_THRESH: Duration = Duration::from_millis(4);
const MAX_RTT_THRESH: Duration = Duration::from_millis(16);
const MIN_RTT_DIVISOR: u64 = 8;
const N_RTT_SAMPLE: u32 = 8;
/// Cwnd growth in CSS is this many times slower than in slow start.
pub const CSS_GROWTH_DIVISOR: u32 = 4;
const CSS_ROUNDS: u32 = 5;

/// Where the initial slow start is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    SlowStart,
    /// Conservative Slow Start, entered when the RTT rose; `rounds` spent in it so far.
    ConservativeSlowStart {
        baseline_min_rtt: Duration,
        rounds: u32,
    },
    /// HyStart++ finished (CSS ended, or a loss ended slow start).
    Done,
}

/// What the caller should do after a HyStart++ step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    /// CSS lasted `CSS_ROUNDS` rounds: set `ssthresh = cwnd` and enter congestion avoidance.
    EnterCongestionAvoidance,
}

/// HyStart++ state for one connection's initial slow start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HyStart {
    phase: Phase,
    last_round_min_rtt: Option<Duration>,
    current_round_min_rtt: Option<Duration>,
    rtt_sample_count: u32,
}

impl Default for HyStart {
    fn default() -> Self {
        Self::new()
    }
}

impl HyStart {
    pub fn new() -> Self {
        HyStart {
            phase: Phase::SlowStart,
            last_round_min_rtt: None,
            current_round_min_rtt: None,
            rtt_sample_count: 0,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Divisor of the slow-start increase: 1 in slow start, [`CSS_GROWTH_DIVISOR`] in CSS.
    pub fn growth_divisor(&self) -> u32 {
        match self.phase {
            Phase::ConservativeSlowStart { .. } => CSS_GROWTH_DIVISOR,
            _ => 1,
        }
    }

    /// A new round started (RFC 9406 §4.2: the ACK covered the previous round's windowEnd).
    pub fn on_round_start(&mut self) -> Verdict {
        if self.phase == Phase::Done {
            return Verdict::Continue;
        }
        self.last_round_min_rtt = self.current_round_min_rtt;
        self.current_round_min_rtt = None;
        self.rtt_sample_count = 0;
        if let Phase::ConservativeSlowStart { baseline_min_rtt, rounds } = self.phase {
            let rounds = rounds + 1;
            if rounds >= CSS_ROUNDS {
                self.phase = Phase::Done;
                return Verdict::EnterCongestionAvoidance;
            }
            self.phase = Phase::ConservativeSlowStart { baseline_min_rtt, rounds };
        }
        Verdict::Continue
    }

    /// An RTT sample arrived on an ACK during slow start or CSS (RFC 9406 §4.2).
    pub fn on_rtt_sample(&mut self, rtt: Duration) {
        if self.phase == Phase::Done {
            return;
        }
        let current = self.current_round_min_rtt.map_or(rtt, |m| m.min(rtt));
        self.current_round_min_rtt = Some(current);
        self.rtt_sample_count = self.rtt_sample_count.saturating_add(1);
        if self.rtt_sample_count < N_RTT_SAMPLE {
            return;
        }
        match self.phase {
            Phase::SlowStart => {
                let Some(last) = self.last_round_min_rtt else { return };
                let thresh = last.checked_div_or_zero(MIN_RTT_DIVISOR).clamp(MIN_RTT_THRESH, MAX_RTT_THRESH);
                if current >= last + thresh {
                    self.phase = Phase::ConservativeSlowStart { baseline_min_rtt: current, rounds: 0 };
                }
            }
            Phase::ConservativeSlowStart { baseline_min_rtt, .. } => {
                // The RTT came back down: the increase was spurious, resume slow start.
                if current < baseline_min_rtt {
                    self.phase = Phase::SlowStart;
                }
            }
            Phase::Done => {}
        }
    }

    /// Slow start ended for another reason (loss, ECN, RTO): HyStart++ is over for good; later
    /// slow starts use the standard algorithm (RFC 9406 §4.3, initial slow start only).
    pub fn finish(&mut self) {
        self.phase = Phase::Done;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `rounds` rounds of 16 RTT samples each, with the round's RTT from `rtt_of_round`.
    fn run(hs: &mut HyStart, rounds: u32, rtt_of_round: impl Fn(u32) -> Duration) -> Option<u32> {
        for r in 0..rounds {
            if hs.on_round_start() == Verdict::EnterCongestionAvoidance {
                return Some(r);
            }
            for _ in 0..16 {
                hs.on_rtt_sample(rtt_of_round(r));
            }
        }
        None
    }

    #[test]
    fn flat_rtt_stays_in_slow_start() {
        let mut hs = HyStart::new();
        assert_eq!(run(&mut hs, 50, |_| Duration::from_millis(40)), None);
        assert_eq!(hs.phase(), Phase::SlowStart);
        assert_eq!(hs.growth_divisor(), 1);
    }

    #[test]
    fn rtt_increase_enters_css_then_congestion_avoidance() {
        let mut hs = HyStart::new();
        // 40 ms base; from round 5 the queue adds 10 ms per round (threshold is 5 ms).
        let rtt = |r: u32| Duration::from_millis(40 + 10 * u64::from(r.saturating_sub(4)));
        assert_eq!(run(&mut hs, 6, rtt), None);
        assert!(matches!(hs.phase(), Phase::ConservativeSlowStart { .. }));
        assert_eq!(hs.growth_divisor(), CSS_GROWTH_DIVISOR);
        let exit = run(&mut hs, 10, |r| rtt(r + 6));
        assert_eq!(exit, Some(CSS_ROUNDS - 1));
        assert_eq!(hs.phase(), Phase::Done);
    }

    #[test]
    fn small_increase_below_threshold_is_ignored() {
        let mut hs = HyStart::new();
        // 3 ms per round on a 40 ms base: below the 5 ms threshold (40/8).
        let rtt = |r: u32| Duration::from_millis(40 + if r > 3 { 3 } else { 0 });
        assert_eq!(run(&mut hs, 10, rtt), None);
        assert_eq!(hs.phase(), Phase::SlowStart);
    }

    #[test]
    fn spurious_increase_returns_to_slow_start() {
        let mut hs = HyStart::new();
        let rtt = |r: u32| Duration::from_millis(if r == 3 { 80 } else { 40 });
        run(&mut hs, 4, rtt);
        assert!(matches!(hs.phase(), Phase::ConservativeSlowStart { .. }));
        run(&mut hs, 1, |_| Duration::from_millis(40));
        assert_eq!(hs.phase(), Phase::SlowStart);
    }

    #[test]
    fn absurd_samples_do_not_panic() {
        let mut hs = HyStart::new();
        run(&mut hs, 3, |r| if r == 1 { Duration::MAX } else { Duration::ZERO });
        run(&mut hs, 3, |_| Duration::MAX);
        hs.finish();
        assert_eq!(hs.on_round_start(), Verdict::Continue);
    }
}
