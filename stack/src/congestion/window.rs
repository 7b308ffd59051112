//! The window machinery NewReno and CUBIC share.
//!
//! **Owns** `cwnd`/`ssthresh` and everything that is identical between the two loss-based
//! controllers: slow start with Appropriate Byte Counting (RFC 3465, L = 2) and HyStart++
//! (RFC 9406), the cwnd-limited test that stops growth when the application does not use the
//! window (RFC 7661 §4.3 spirit, RFC 9438 §4.6 requirement), PRR during a reduction (RFC 6937),
//! the RTO collapse, undo of spurious reductions (RFC 3708/2883 style), slow-start restart
//! (RFC 5681 §4.1, off by default) and the optional `cwnd/srtt` pacing rate.
//!
//! The algorithms differ only in the new `ssthresh` on a congestion event and in congestion
//! avoidance growth; those stay in `newreno.rs` and `cubic.rs`.

use crate::congestion::hystart::{HyStart, Verdict};
use crate::congestion::{
    burst_for_rate, clamp_window, rate_from, scale, AckEvent, CongestionConfig, Handover, Prr, RoundCounter,
    SentPacket, MAX_CWND, RESTART_WINDOW_SEGMENTS,
};
use crate::time::Duration;

/// Pacing gains relative to `cwnd/srtt`, Linux's `tcp_pacing_ss_ratio` (200 %) and
/// `tcp_pacing_ca_ratio` (120 %) chosen the same way (`cwnd < ssthresh / 2` is slow start). In
/// slow start the window doubles each round, so the pacer must release twice a round's window
/// per SRTT to keep up with it; afterwards the ACK clock sets the average rate and the 20 %
/// headroom only smooths bursts (window growth, compressed ACKs) without ever becoming the limit.
const PACING_GAIN_SLOW_START: f64 = 2.0;
const PACING_GAIN_AVOIDANCE: f64 = 1.2;
/// RFC 3465 §2.2: at most L·SMSS of growth per ACK in slow start.
const ABC_LIMIT_SEGMENTS: u32 = 2;

/// `cwnd`/`ssthresh` as they were before a reduction, for undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Undo {
    pub cwnd: u32,
    pub ssthresh: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct LossWindow {
    pub mss: u32,
    pub cwnd: u32,
    pub ssthresh: u32,
    initial_window: u32,
    /// HyStart++ for the initial slow start; `None` when disabled.
    hystart: Option<HyStart>,
    round: RoundCounter,
    prr: Prr,
    /// Between `on_congestion_event` and `on_recovery_exit`: PRR sets the window.
    pub in_recovery: bool,
    /// Values before the last reduction, until it is confirmed or undone.
    pub undo: Option<Undo>,
    /// An RTO fired and no new data has been delivered since: further RTOs of the same episode
    /// hold `ssthresh` (RFC 5681 §3.1, "ssthresh is held constant").
    in_rto_episode: bool,
    /// Largest `in_flight` seen since the previous ACK (for the cwnd-limited test).
    max_in_flight: u32,
    /// Bytes acknowledged over the connection's life, and the value up to which the window
    /// counts as used: a window-limited moment keeps growth enabled for one window of ACKs,
    /// because in-flight data naturally drains between sends.
    acked_total: u64,
    limited_until: u64,
    pub srtt: Option<Duration>,
    pub min_rtt: Option<Duration>,
    pacing: bool,
    burst_cap: u32,
    slow_start_after_idle: bool,
}

impl LossWindow {
    pub fn new(config: &CongestionConfig) -> Self {
        LossWindow {
            mss: config.effective_mss(),
            cwnd: config.initial_window(),
            ssthresh: MAX_CWND,
            initial_window: config.initial_window(),
            hystart: config.hystart.then(HyStart::new),
            round: RoundCounter::default(),
            prr: Prr::new(config.prr_mode),
            in_recovery: false,
            undo: None,
            in_rto_episode: false,
            max_in_flight: 0,
            acked_total: 0,
            limited_until: 0,
            srtt: None,
            min_rtt: None,
            pacing: config.pacing,
            burst_cap: config.burst_cap(),
            slow_start_after_idle: config.slow_start_after_idle,
        }
    }

    /// The window machinery of a controller taking over a live connection: `cwnd`, `ssthresh`
    /// and the RTT estimates carry over; HyStart++ runs only if the first slow start still
    /// does; a recovery episode in progress continues with PRR toward `ssthresh` (RFC 6937
    /// restarted at this point); nothing can be undone.
    pub fn handover(config: &CongestionConfig, from: &Handover) -> Self {
        let mut w = LossWindow::new(config);
        w.set_cwnd(u64::from(from.cwnd));
        w.ssthresh = clamp_window(u64::from(from.ssthresh), w.min_cwnd());
        if w.ssthresh < MAX_CWND {
            w.end_slow_start();
        }
        w.srtt = from.srtt;
        w.min_rtt = from.min_rtt;
        w.max_in_flight = from.in_flight;
        if from.in_recovery {
            w.end_slow_start();
            w.prr.enter(from.flight_size.max(from.in_flight));
            w.in_recovery = true;
        }
        w
    }

    pub fn set_slow_start_after_idle(&mut self, on: bool) {
        self.slow_start_after_idle = on;
    }

    pub fn set_pacing(&mut self, on: bool) {
        self.pacing = on;
    }

    pub fn min_cwnd(&self) -> u32 {
        2 * self.mss
    }

    pub fn set_cwnd(&mut self, bytes: u64) {
        self.cwnd = clamp_window(bytes, self.min_cwnd());
    }

    pub fn in_slow_start(&self) -> bool {
        self.cwnd < self.ssthresh
    }

    pub fn on_packet_sent(&mut self, packet: &SentPacket) {
        let after = packet.in_flight_before.saturating_add(packet.bytes);
        self.max_in_flight = self.max_in_flight.max(after);
        if self.in_recovery {
            self.prr.on_sent(packet.bytes);
        }
    }

    /// Common part of every ACK. Returns `true` when the controller should grow the window
    /// (not in recovery, window actually used, something delivered).
    pub fn on_ack_common(&mut self, ack: &AckEvent) -> bool {
        if ack.srtt.is_some() {
            self.srtt = ack.srtt;
        }
        if ack.min_rtt.is_some() {
            self.min_rtt = ack.min_rtt;
        }
        if ack.newly_acked_bytes > 0 {
            self.in_rto_episode = false;
        }
        self.acked_total = self.acked_total.saturating_add(u64::from(ack.newly_acked_bytes));
        if self.is_cwnd_limited(ack.prior_in_flight) {
            self.limited_until = self.acked_total.saturating_add(u64::from(self.cwnd));
        }
        let cwnd_limited = self.acked_total <= self.limited_until;
        self.max_in_flight = ack.in_flight;
        if self.in_recovery {
            // RFC 6937 §3: cwnd = pipe + sndcnt on every ACK during the reduction.
            let sndcnt = self.prr.sndcnt(ack.newly_acked_bytes, ack.in_flight, self.ssthresh, self.mss);
            self.set_cwnd(u64::from(ack.in_flight) + u64::from(sndcnt));
            return false;
        }
        if let (Some(hs), Some(rs)) = (self.hystart.as_mut(), ack.rate_sample.as_ref()) {
            if self.cwnd < self.ssthresh
                && self.round.on_ack(rs)
                && hs.on_round_start() == Verdict::EnterCongestionAvoidance
            {
                self.ssthresh = self.cwnd;
            }
        }
        if let (Some(hs), Some(rtt)) = (self.hystart.as_mut(), ack.rtt_sample) {
            if self.cwnd < self.ssthresh {
                hs.on_rtt_sample(rtt);
            }
        }
        cwnd_limited && ack.newly_acked_bytes > 0
    }

    /// Growth is allowed only when the sender was limited by the window: in slow start when it
    /// used at least half of it (Linux's rule, allowing for ACK-clocked doubling), in congestion
    /// avoidance when less than one segment of it was left unused.
    fn is_cwnd_limited(&self, prior_in_flight: u32) -> bool {
        let used = self.max_in_flight.max(prior_in_flight);
        if self.in_slow_start() {
            u64::from(used) * 2 >= u64::from(self.cwnd)
        } else {
            used.saturating_add(self.mss) > self.cwnd
        }
    }

    /// Slow start with ABC and HyStart++; returns the acked bytes left over once `cwnd` reached
    /// `ssthresh`, for congestion avoidance (RFC 5681 §3.1, RFC 3465 §2.2, RFC 9406 §4.2).
    pub fn slow_start(&mut self, newly_acked: u32) -> u32 {
        let limit = ABC_LIMIT_SEGMENTS.saturating_mul(self.mss);
        let divisor = self.hystart.as_ref().map_or(1, HyStart::growth_divisor);
        let increase = newly_acked.min(limit) / divisor;
        let room = self.ssthresh.saturating_sub(self.cwnd);
        if increase >= room {
            self.set_cwnd(u64::from(self.ssthresh));
            newly_acked.saturating_sub(room.saturating_mul(divisor))
        } else {
            self.set_cwnd(u64::from(self.cwnd) + u64::from(increase));
            0
        }
    }

    /// Starts a reduction with the algorithm's new `ssthresh` (RFC 5681 §3.2, RFC 6937 §3).
    pub fn enter_recovery(&mut self, new_ssthresh: u64, flight_size: u32, in_flight: u32) {
        self.end_slow_start();
        self.undo = Some(Undo { cwnd: self.cwnd, ssthresh: self.ssthresh });
        self.ssthresh = clamp_window(new_ssthresh, self.min_cwnd());
        self.prr.enter(flight_size.max(in_flight));
        self.in_recovery = true;
        // Room for the fast retransmit; PRR takes over from the next ACK.
        self.set_cwnd(u64::from(in_flight) + u64::from(self.mss));
    }

    /// RFC 6937 §3: at the end of recovery the window is `ssthresh`.
    pub fn exit_recovery(&mut self) -> bool {
        if !self.in_recovery {
            return false;
        }
        self.in_recovery = false;
        self.set_cwnd(u64::from(self.ssthresh));
        true
    }

    /// Retransmission timeout (RFC 5681 §3.1 eq. 4 and loss window). The loss window is two
    /// segments, not RFC 5681's one: a single segment waits out the receiver's delayed-ACK
    /// timer, which is why RFC 9002 §7.2 also chose two. The same floor holds everywhere.
    /// `new_ssthresh` is used only when [`Self::rto_recomputes_ssthresh`] says so.
    pub fn on_rto(&mut self, new_ssthresh: u64) {
        self.end_slow_start();
        if self.rto_recomputes_ssthresh() {
            self.undo = Some(Undo { cwnd: self.cwnd, ssthresh: self.ssthresh });
            self.ssthresh = clamp_window(new_ssthresh, self.min_cwnd());
        }
        self.in_recovery = false;
        self.in_rto_episode = true;
        self.set_cwnd(0);
    }

    /// A timeout during fast recovery keeps the `ssthresh` that recovery already reduced, and a
    /// repeated timeout of the same episode holds it (RFC 5681 §3.1; Linux `tcp_enter_loss`).
    pub fn rto_recomputes_ssthresh(&self) -> bool {
        !self.in_recovery && !self.in_rto_episode
    }

    /// Restores the window saved at the last reduction (RFC 3708 / RFC 4015 style response to
    /// a spurious retransmission, Linux `tcp_undo_cwnd_reduction`). Returns whether it did.
    pub fn undo(&mut self) -> bool {
        let Some(u) = self.undo.take() else { return false };
        self.in_recovery = false;
        self.in_rto_episode = false;
        self.cwnd = self.cwnd.max(u.cwnd);
        self.ssthresh = self.ssthresh.max(u.ssthresh);
        true
    }

    /// RFC 5681 §4.1: after an idle period longer than the RTO, restart from
    /// `min(IW, cwnd)`, only when configured. Returns whether it did.
    pub fn idle_restart(&mut self, idle: Duration, rto: Duration) -> bool {
        if !self.slow_start_after_idle || idle <= rto || self.in_recovery {
            return false;
        }
        // Keep 3/4 of the old window as ssthresh so slow start climbs back to it quickly
        // (Linux `tcp_cwnd_restart`).
        self.ssthresh = self.ssthresh.max(scale(u64::from(self.cwnd), 0.75) as u32);
        self.set_cwnd(u64::from(self.cwnd.min(self.initial_window)));
        true
    }

    fn end_slow_start(&mut self) {
        if let Some(hs) = self.hystart.as_mut() {
            hs.finish();
        }
    }

    /// `cwnd / srtt` × gain, when pacing is configured and an RTT is known.
    pub fn pacing_rate(&self) -> Option<u64> {
        if !self.pacing {
            return None;
        }
        let srtt = self.srtt.or(self.min_rtt)?;
        let base = rate_from(u64::from(self.cwnd), srtt.max(Duration::from_micros(1)))?;
        let gain = if self.cwnd < self.ssthresh / 2 { PACING_GAIN_SLOW_START } else { PACING_GAIN_AVOIDANCE };
        Some(scale(base, gain).max(1))
    }

    /// RFC 5681 §4.1 `RW = min(IW, cwnd)` with IW = 10 segments (RFC 6928).
    pub fn restart_window(&self) -> u32 {
        self.cwnd.min(RESTART_WINDOW_SEGMENTS.saturating_mul(self.mss))
    }

    pub fn send_quantum(&self) -> u32 {
        match self.pacing_rate() {
            Some(rate) => burst_for_rate(rate, self.mss, self.burst_cap),
            None => self.burst_cap,
        }
    }
}
