//! Earliest-departure-time pacing, in the spirit of Carousel (Saeed et al., SIGCOMM 2017).
//!
//! **Owns** one connection's `next_departure` timestamp: each transmission pushes it forward by
//! `bytes / rate`, and a packet may leave once `now >= next_departure`. No token refill loop and
//! no spinning: when the pacer says "not yet", [`Pacer::next_release`] is the instant to put on
//! the engine's timer wheel.
//!
//! **Burst allowance.** After a pause the pacer lets `next_departure` lag `now` by at most one
//! burst's worth of time, so up to about `burst` bytes can go back to back. The burst is about
//! 1 ms of data at the current rate, at least two segments and at most `max_burst` (64 KiB by
//! default, Linux's `tcp_tso_autosize` rule): at high rates pacing then never limits a fast link,
//! at low rates it spreads single segments.
//!
//! **Timer granularity.** Releases come from a timer wheel that may deliver them up to one tick
//! late ([`Pacer::set_timer_granularity`]). The catch-up allowance is therefore at least one
//! tick: the lateness costs no sending time, so a flow paced at any rate keeps that rate and
//! leaves in bursts of about one tick's worth of data (or one burst, whichever is larger).
//!
//! **Restart window.** When a loss-based connection sends its first data, or sends again after
//! everything it sent was acknowledged, the engine grants the restart window (RFC 5681 §4.1:
//! `RW = min(IW, cwnd)`, with RFC 6928's ten segments as IW) with [`Pacer::on_restart`]: that
//! much may leave back to back at that instant, only the rest is paced. An idle connection's
//! path queue has drained, and RFC 5681 already bounds a restart burst by RW; without the grant,
//! a flow that answers requests (its window larger than each response) would spread every
//! response over up to half an RTT (`cwnd / srtt` × 2 is about the response's own rate). Linux
//! leaves a connection's first ten segments unpaced for the same reason. BBR restarts from idle
//! through its own model (paced at its bandwidth estimate) and gets no grant.
//!
//! **Promises:** saturating arithmetic only; never panics; a zero rate is treated as "no pacing"
//! rather than "never send".

use crate::congestion::burst_for_rate;
use crate::time::{Duration, Instant};

/// Earliest-departure-time pacer of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacer {
    /// Bytes per second; `None` disables pacing.
    rate: Option<u64>,
    /// Earliest time the next packet may leave.
    next_departure: Instant,
    mss: u32,
    max_burst: u32,
    /// How late the timer that delivers releases may be (the engine's wheel tick).
    granularity: Duration,
    /// Bytes that may still leave unpaced, granted by [`Pacer::on_restart`] ...
    restart_credit: u32,
    /// ... at this instant only (a grant left over does not carry to later sends).
    restart_at: Instant,
    /// The catch-up allowance at the current rate: one burst's time or the timer granularity,
    /// whichever is longer (derived from the fields above, kept so that a send costs one
    /// division at most).
    slack: Duration,
    /// The last packet length sent at the current rate and its time on the wire at that rate
    /// (a burst is a run of equal lengths).
    last_cost: (u32, Duration),
}

impl Pacer {
    /// An unpaced pacer for segments of `mss` bytes; bursts never exceed `max_burst` bytes.
    pub fn new(mss: u32, max_burst: u32) -> Self {
        let mss = mss.max(1);
        Pacer {
            rate: None,
            next_departure: Instant::ZERO,
            mss,
            max_burst: max_burst.max(2 * mss),
            granularity: Duration::ZERO,
            restart_credit: 0,
            restart_at: Instant::ZERO,
            slack: Duration::ZERO,
            last_cost: (0, Duration::ZERO),
        }
    }

    /// Releases are delivered by a timer of this granularity (see the module docs).
    pub fn set_timer_granularity(&mut self, tick: Duration) {
        self.granularity = tick;
        self.update_slack();
    }

    /// Sets the rate (from the controller's `pacing_rate()` after each ACK); `None` or zero
    /// switches pacing off.
    pub fn set_rate(&mut self, rate: Option<u64>) {
        let rate = rate.filter(|&r| r > 0);
        if rate != self.rate {
            self.rate = rate;
            self.last_cost = (0, Duration::ZERO);
            self.update_slack();
        }
    }

    /// Recomputes [`Pacer::slack`] after the rate or the granularity changed.
    fn update_slack(&mut self) {
        if let Some(rate) = self.rate {
            self.slack = Self::time_to_send(u64::from(self.burst()), rate).max(self.granularity);
        }
    }

    /// `time_to_send(bytes, rate)`, remembered for the last length sent.
    fn cost(&mut self, bytes: u32, rate: u64) -> Duration {
        if self.last_cost.0 != bytes {
            self.last_cost = (bytes, Self::time_to_send(u64::from(bytes), rate));
        }
        self.last_cost.1
    }

    pub fn rate(&self) -> Option<u64> {
        self.rate
    }

    /// Bytes the pacer lets out back to back at the current rate (unpaced: `max_burst`).
    pub fn burst(&self) -> u32 {
        match self.rate {
            Some(rate) => burst_for_rate(rate, self.mss, self.max_burst),
            None => self.max_burst,
        }
    }

    /// Whether a packet may leave at `now`.
    pub fn can_send(&self, now: Instant) -> bool {
        self.rate.is_none()
            || (self.restart_credit > 0 && now == self.restart_at)
            || now >= self.next_departure
    }

    /// The connection starts sending at `now` from nothing in flight (its first data, or after
    /// everything was acknowledged): `restart_window` bytes may leave back to back at `now`
    /// (see the module docs). Call it before the [`Pacer::on_sent`] of the first packet.
    pub fn on_restart(&mut self, now: Instant, restart_window: u32) {
        self.restart_credit = restart_window;
        self.restart_at = now;
    }

    /// Records a transmission of `bytes` at `now`.
    pub fn on_sent(&mut self, now: Instant, bytes: u32) {
        let Some(rate) = self.rate else { return };
        if self.restart_credit > 0 && now != self.restart_at {
            self.restart_credit = 0;
        }
        if self.restart_credit > 0 {
            // Pacing resumes from the end of the restart burst, with no catch-up before it.
            self.restart_credit = self.restart_credit.saturating_sub(bytes);
            self.next_departure = self.next_departure.max(now);
            return;
        }
        // A sender that was idle, slow or woken late may catch up by one burst or one timer
        // tick, no more (the EDT "slack").
        let base = self.next_departure.max(now - self.slack);
        self.next_departure = base + self.cost(bytes, rate);
    }

    /// When the next packet may leave: `None` when unpaced. The instant may be in the past,
    /// meaning "now".
    pub fn next_release(&self) -> Option<Instant> {
        self.rate.map(|_| self.next_departure)
    }

    /// `bytes / rate` rounded up to the next nanosecond, saturating.
    fn time_to_send(bytes: u64, rate: u64) -> Duration {
        let rate = rate.max(1);
        let nanos = match bytes.checked_mul(1_000_000_000) {
            Some(scaled) => scaled.div_ceil(rate),
            None => {
                let wide = (u128::from(bytes) * 1_000_000_000).div_ceil(u128::from(rate));
                u64::try_from(wide).unwrap_or(u64::MAX)
            }
        };
        Duration::from_nanos(nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1500;

    #[test]
    fn unpaced_always_sends() {
        let mut p = Pacer::new(MSS, 65536);
        assert!(p.can_send(Instant::ZERO));
        p.on_sent(Instant::ZERO, 1_000_000);
        assert!(p.can_send(Instant::ZERO));
        assert_eq!(p.next_release(), None);
        p.set_rate(Some(0));
        assert!(p.can_send(Instant::ZERO));
    }

    #[test]
    fn releases_at_the_rate_spacing_after_the_burst() {
        // 1.5 MB/s: 1 ms per segment; burst at this rate is max(2 MSS, 1.5 KB) = 2 segments.
        let mut p = Pacer::new(MSS, 65536);
        p.set_rate(Some(1_500_000));
        let mut now = Instant::from_secs_for_test(10);
        let mut sent_at = Vec::new();
        for _ in 0..20 {
            if !p.can_send(now) {
                now = p.next_release().unwrap();
            }
            assert!(p.can_send(now));
            p.on_sent(now, MSS);
            sent_at.push(now);
        }
        // The first few go back to back (burst), then exactly 1 ms apart.
        let back_to_back = sent_at.windows(2).take_while(|w| w[0] == w[1]).count();
        assert!((1..=3).contains(&back_to_back), "burst of {back_to_back}");
        for w in sent_at[back_to_back + 1..].windows(2) {
            assert_eq!(w[1] - w[0], Duration::from_millis(1));
        }
    }

    #[test]
    fn high_rate_allows_64k_bursts() {
        // 10 Gbit/s: 1 ms is 1.25 MB, so the burst is the 64 KiB cap.
        let mut p = Pacer::new(MSS, 65536);
        p.set_rate(Some(1_250_000_000));
        assert_eq!(p.burst(), 65536);
        let now = Instant::from_secs_for_test(1);
        let mut sent = 0;
        while p.can_send(now) {
            p.on_sent(now, MSS);
            sent += MSS;
        }
        assert!((65536..=65536 + 2 * MSS).contains(&sent), "burst {sent}");
        // The rest of the budget returns in 1.2 us per segment.
        let release = p.next_release().unwrap();
        assert!(release - now <= Duration::from_micros(2));
    }

    #[test]
    fn idle_time_does_not_accumulate_beyond_one_burst() {
        let mut p = Pacer::new(MSS, 65536);
        p.set_rate(Some(1_500_000));
        p.on_sent(Instant::ZERO, MSS);
        let later = Instant::from_secs_for_test(100);
        let mut n = 0;
        while p.can_send(later) {
            p.on_sent(later, MSS);
            n += 1;
        }
        assert!(n <= 3, "{n} packets after a long idle");
    }

    #[test]
    fn releases_delivered_a_tick_late_lose_no_sending_time() {
        // 10 Gbit/s with a 1 ms timer: the 64 KiB burst is 52 us, far below one tick.
        let tick = Duration::from_millis(1);
        let rate = 1_250_000_000;
        let mut sent_by_tick = Vec::new();
        for granularity in [Duration::ZERO, tick] {
            let mut p = Pacer::new(MSS, 65536);
            p.set_rate(Some(rate));
            p.set_timer_granularity(granularity);
            let mut now = Instant::from_millis(1);
            let mut sent = 0u64;
            for _ in 0..100 {
                while p.can_send(now) {
                    p.on_sent(now, MSS);
                    sent += u64::from(MSS);
                }
                // The wheel rounds the release up to the next tick.
                now += tick;
            }
            sent_by_tick.push(sent);
        }
        // Without the granularity only one burst per tick leaves (0.5 Gbit/s); with it, the rate.
        assert!(sent_by_tick[0] < 70_000 * 100, "{sent_by_tick:?}");
        let expected = rate / 10;
        assert!(sent_by_tick[1].abs_diff(expected) < expected / 50, "{sent_by_tick:?}");
    }

    #[test]
    fn restart_window_leaves_back_to_back_then_pacing_resumes() {
        // 1.5 MB/s: 1 ms per segment; a restart grants 10 segments.
        let mut p = Pacer::new(MSS, 65536);
        p.set_rate(Some(1_500_000));
        let now = Instant::from_secs_for_test(10);
        p.on_sent(now, MSS);
        let later = Instant::from_secs_for_test(11);
        p.on_restart(later, 10 * MSS);
        let mut burst = 0;
        while p.can_send(later) {
            p.on_sent(later, MSS);
            burst += 1;
        }
        // The grant, plus the one segment the pacer's own catch-up allows.
        assert_eq!(burst, 11);
        assert_eq!(p.next_release(), Some(later + Duration::from_millis(1)));
        // Without a restart, the same pause gives only the usual burst.
        let mut q = Pacer::new(MSS, 65536);
        q.set_rate(Some(1_500_000));
        q.on_sent(now, MSS);
        let mut n = 0;
        while q.can_send(later) {
            q.on_sent(later, MSS);
            n += 1;
        }
        assert!(n <= 3, "{n}");
        // A grant is for its instant only: what is left of it does not carry over.
        let mut r = Pacer::new(MSS, 65536);
        r.set_rate(Some(1_500_000));
        r.on_sent(now, MSS);
        r.on_restart(later, 10 * MSS);
        r.on_sent(later, MSS);
        let after = later + Duration::from_micros(100);
        assert!(r.can_send(after), "the pacer's own one-burst catch-up");
        r.on_sent(after, MSS);
        r.on_sent(after, MSS);
        assert!(!r.can_send(after), "no grant left at a later instant");
        // Unpaced, a grant changes nothing.
        let mut u = Pacer::new(MSS, 65536);
        u.on_restart(later, 10 * MSS);
        u.on_sent(later, MSS);
        assert_eq!(u.next_release(), None);
    }

    #[test]
    fn absurd_inputs_saturate() {
        let mut p = Pacer::new(0, 0);
        p.set_rate(Some(1));
        p.on_sent(Instant::MAX, u32::MAX);
        p.on_sent(Instant::ZERO, u32::MAX);
        assert_eq!(p.next_release(), Some(Instant::MAX));
        p.set_rate(Some(u64::MAX));
        p.on_sent(Instant::MAX, 1);
        p.on_restart(Instant::MAX, u32::MAX);
        p.on_sent(Instant::MAX, u32::MAX);
        p.on_sent(Instant::MAX, u32::MAX);
        assert!(p.can_send(Instant::MAX));
    }

    /// What `on_sent` computes with no remembered values: the catch-up slack and the packet's
    /// time recomputed from the rate on every send (the pacer before it kept them).
    fn departure_by_formula(p: &Pacer, before: Instant, now: Instant, bytes: u32) -> Instant {
        let rate = p.rate.expect("paced");
        let slack = Pacer::time_to_send(u64::from(p.burst()), rate).max(p.granularity);
        before.max(now - slack) + Pacer::time_to_send(u64::from(bytes), rate)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]
        /// The remembered slack and per-length send time give the departures the formula gives,
        /// through rate changes (including back to a rate seen before), granularity changes,
        /// restarts and mixed lengths.
        #[test]
        fn remembered_costs_match_the_formula(
            ops in proptest::collection::vec((0u8..5, 0u64..3_000_000_000, 0u32..70_000), 1..200),
        ) {
            let mut p = Pacer::new(MSS, 65536);
            let mut now = Instant::from_millis(5);
            for (op, x, y) in ops {
                match op {
                    0 => p.set_rate(Some(x % 4).filter(|&r| r > 0).map(|r| r * x / 4 + 1).or(Some(x + 1))),
                    1 => p.set_timer_granularity(Duration::from_nanos(x % 2_000_000)),
                    2 => p.on_restart(now, y),
                    3 => now += Duration::from_nanos(x % 100_000),
                    _ => {
                        let bytes = if y % 3 == 0 { MSS } else { y };
                        let (before, credit) = (p.next_departure, p.restart_credit > 0 && now == p.restart_at);
                        p.on_sent(now, bytes);
                        if p.rate.is_some() && !credit {
                            proptest::prop_assert_eq!(p.next_departure, departure_by_formula(&p, before, now, bytes));
                        }
                    }
                }
            }
        }
    }

    trait ForTest {
        fn from_secs_for_test(s: u64) -> Instant;
    }
    impl ForTest for Instant {
        fn from_secs_for_test(s: u64) -> Instant {
            Instant::from_millis(s * 1000)
        }
    }
}
