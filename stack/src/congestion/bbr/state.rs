//! BBR's state transitions: Startup → Drain → ProbeBW (DOWN/CRUISE/REFILL/UP) ⇄ ProbeRTT.
//! Each function follows the draft-ietf-ccwg-bbr pseudocode function it is named after.

use super::{
    Bbr, State, DEFAULT_CWND_GAIN, DRAIN_PACING_GAIN, FULL_BW_COUNT, FULL_BW_GROWTH, LOSS_THRESH,
    PROBE_RTT_CWND_GAIN, PROBE_RTT_DURATION, PROBE_UP_CWND_GAIN, STARTUP_CWND_GAIN, STARTUP_FULL_LOSS_COUNT,
    STARTUP_PACING_GAIN, UNBOUNDED,
};
use crate::congestion::RateSample;
use crate::time::{Duration, Instant};

/// ProbeBW waits 2 s plus up to 1 s at random before probing again (`BBRPickProbeWait`).
const PROBE_WAIT_BASE: Duration = Duration::from_secs(2);
const PROBE_WAIT_RANDOM: Duration = Duration::from_secs(1);
/// Upper bound of the Reno-coexistence probe interval, in rounds.
const MAX_RENO_ROUNDS: u64 = 63;

impl Bbr {
    fn set_state(&mut self, state: State, pacing_gain: f64, cwnd_gain: f64) {
        self.state = state;
        self.pacing_gain = pacing_gain;
        self.cwnd_gain = cwnd_gain;
    }

    fn start_round(&mut self) {
        self.round.restart(self.delivered);
    }

    fn reset_full_bw(&mut self) {
        self.full_bw = 0;
        self.full_bw_count = 0;
        self.full_bw_now = false;
    }

    /// `BBRCheckFullBWReached`: the pipe is full once `max_bw` grew less than 25% over three
    /// non-app-limited rounds. Also runs in ProbeBW_UP (after `reset_full_bw`) to end the probe.
    pub(super) fn check_full_bw_reached(&mut self, rs: &RateSample) {
        // A round spent in loss recovery without any sign of a queue was limited by the
        // sender's loss response (packet conservation), not by the pipe: like an app-limited
        // round it says nothing about a bandwidth plateau (without this, random loss ends Startup
        // at a tiny window). Once a queue shows, the pipe is full and the round counts, as in
        // the draft (otherwise ProbeBW_UP under random loss only ends when the buffer overflows).
        let sender_limited = self.in_recovery && !(self.queue_seen[0] || self.queue_seen[1]);
        if self.full_bw_now || !self.round_start || rs.is_app_limited || sender_limited {
            return;
        }
        let max_bw = self.max_bw.best();
        if max_bw as f64 >= self.full_bw as f64 * FULL_BW_GROWTH {
            self.full_bw = max_bw;
            self.full_bw_count = 0;
            return;
        }
        self.full_bw_count += 1;
        self.full_bw_now = self.full_bw_count >= FULL_BW_COUNT;
        if self.full_bw_now {
            self.filled_pipe = true;
        }
    }

    /// `BBRCheckStartupHighLoss`, evaluated at the end of each loss round: too much loss in
    /// Startup means the pipe is full and in-flight is capped at what the round carried.
    pub(super) fn check_startup_high_loss(&mut self) {
        if self.state != State::Startup || self.filled_pipe {
            return;
        }
        let total = self.lost_in_round.saturating_add(self.delivered_in_round);
        let excess = self.lost_in_round.saturating_sub(self.background_loss.allowance(total));
        let loss_rate_high = excess as f64 > LOSS_THRESH * total as f64;
        if self.loss_in_round && self.lossy_acks_in_round >= STARTUP_FULL_LOSS_COUNT && loss_rate_high {
            self.filled_pipe = true;
            let bdp = self.bdp_multiple(self.max_bw.best(), 1.0);
            self.inflight_hi = bdp.max(self.inflight_latest).max(self.min_pipe_cwnd());
        }
    }

    /// `BBRCheckStartupDone`.
    pub(super) fn check_startup_done(&mut self) {
        if self.state == State::Startup && self.filled_pipe {
            self.set_state(State::Drain, DRAIN_PACING_GAIN, STARTUP_CWND_GAIN);
        }
    }

    /// `BBRCheckDrainDone`: in-flight is down to one BDP.
    pub(super) fn check_drain_done(&mut self, now: Instant) {
        if self.state == State::Drain && self.in_flight <= self.inflight(self.bw.max(self.max_bw.best()), 1.0)
        {
            self.now = self.now.max(now);
            self.start_probe_bw_down();
        }
    }

    /// `BBRStartProbeBW_DOWN`: a new ProbeBW cycle starts (and the max-bw filter advances).
    pub(super) fn start_probe_bw_down(&mut self) {
        self.reset_congestion_signals();
        self.probe_up_cnt = UNBOUNDED;
        self.pick_probe_wait();
        self.cycle_stamp = self.now;
        self.probe_stopping = true;
        self.start_round();
        self.max_bw.advance();
        self.set_state(State::ProbeBwDown, 0.9, DEFAULT_CWND_GAIN);
    }

    pub(super) fn start_probe_bw_cruise(&mut self) {
        self.set_state(State::ProbeBwCruise, 1.0, DEFAULT_CWND_GAIN);
    }

    pub(super) fn start_probe_bw_refill(&mut self) {
        self.reset_lower_bounds();
        self.probe_up_rounds = 0;
        self.bw_probe_up_acks = 0;
        self.start_round();
        self.set_state(State::ProbeBwRefill, 1.0, DEFAULT_CWND_GAIN);
    }

    pub(super) fn start_probe_bw_up(&mut self) {
        self.start_round();
        self.reset_full_bw();
        self.full_bw = self.max_bw.best();
        self.set_state(State::ProbeBwUp, 1.25, PROBE_UP_CWND_GAIN);
        self.raise_inflight_hi_slope();
    }

    fn reset_congestion_signals(&mut self) {
        self.loss_in_round = false;
        self.bw_latest = 0;
        self.inflight_latest = 0;
    }

    /// `BBRPickProbeWait`: randomised so competing BBR flows do not probe in lockstep.
    fn pick_probe_wait(&mut self) {
        self.rounds_since_bw_probe = self.rng.below(2);
        self.bw_probe_wait = PROBE_WAIT_BASE + self.rng.duration_below(PROBE_WAIT_RANDOM);
    }

    /// `BBRUpdateProbeBWCyclePhase`.
    pub(super) fn update_probe_bw_cycle_phase(&mut self, now: Instant, rs: &RateSample) {
        if !self.filled_pipe {
            return;
        }
        self.adapt_upper_bounds(rs);
        match self.state {
            State::ProbeBwDown => {
                if self.is_time_to_probe_bw(now) {
                    return;
                }
                if self.is_time_to_cruise() {
                    self.start_probe_bw_cruise();
                }
            }
            State::ProbeBwCruise => {
                self.is_time_to_probe_bw(now);
            }
            State::ProbeBwRefill => {
                // One round at the estimated rate refills the pipe; then probe with fresh samples.
                if self.round_start {
                    self.bw_probe_samples = true;
                    self.start_probe_bw_up();
                }
            }
            State::ProbeBwUp => {
                if self.is_time_to_go_down() {
                    self.start_probe_bw_down();
                }
            }
            State::Startup | State::Drain | State::ProbeRtt => {}
        }
    }

    /// `BBRAdaptUpperBounds`: without excessive loss, `inflight_hi` follows what was actually
    /// in flight, and grows while probing up.
    fn adapt_upper_bounds(&mut self, rs: &RateSample) {
        if self.probe_stopping && self.round_start {
            // A round after the probe ended, samples no longer reflect the probe.
            self.bw_probe_samples = false;
            self.probe_stopping = false;
        }
        if self.is_inflight_too_high(rs) || self.inflight_hi == UNBOUNDED {
            return;
        }
        if rs.tx_in_flight > self.inflight_hi {
            self.inflight_hi = rs.tx_in_flight;
        }
        if self.state == State::ProbeBwUp {
            self.probe_inflight_hi_upward(rs);
        }
    }

    /// `BBRProbeInflightHiUpward`: grow `inflight_hi` by a slope that doubles each round.
    fn probe_inflight_hi_upward(&mut self, rs: &RateSample) {
        if !self.is_cwnd_limited() || self.cwnd < self.inflight_hi {
            return;
        }
        self.bw_probe_up_acks = self.bw_probe_up_acks.saturating_add(rs.newly_acked);
        if self.bw_probe_up_acks >= self.probe_up_cnt {
            let delta = self.bw_probe_up_acks / self.probe_up_cnt.max(1);
            self.bw_probe_up_acks -= delta.saturating_mul(self.probe_up_cnt);
            self.inflight_hi = self.inflight_hi.saturating_add(delta.saturating_mul(u64::from(self.mss)));
        }
        if self.round_start {
            self.raise_inflight_hi_slope();
        }
    }

    /// `BBRRaiseInflightHiSlope`: `2^rounds` segments of growth per round.
    fn raise_inflight_hi_slope(&mut self) {
        let growth_this_round = 1u64 << self.probe_up_rounds;
        self.probe_up_rounds = (self.probe_up_rounds + 1).min(30);
        self.probe_up_cnt = (self.cwnd / growth_this_round).max(1);
    }

    pub(super) fn is_cwnd_limited(&self) -> bool {
        self.cwnd_limited[0] || self.cwnd_limited[1]
    }

    /// `BBRIsTimeToProbeBW`: after the randomised wait, or sooner if a Reno flow would have
    /// probed by now (`BBRIsRenoCoexistenceProbeTime`).
    fn is_time_to_probe_bw(&mut self, now: Instant) -> bool {
        let waited = now > self.cycle_stamp + self.bw_probe_wait;
        let reno_rounds = (self.target_inflight() / u64::from(self.mss)).min(MAX_RENO_ROUNDS);
        if waited || self.rounds_since_bw_probe >= reno_rounds {
            self.start_probe_bw_refill();
            return true;
        }
        false
    }

    /// `BBRIsTimeToCruise`: the queue made while probing has drained.
    fn is_time_to_cruise(&self) -> bool {
        if self.in_flight > self.inflight_with_headroom() {
            return false;
        }
        self.in_flight <= self.inflight(self.max_bw.best(), 1.0)
    }

    /// `BBRIsTimeToGoDown`: the probe hit `inflight_hi`, or bandwidth stopped growing.
    fn is_time_to_go_down(&mut self) -> bool {
        if self.is_cwnd_limited() && self.cwnd >= self.inflight_hi {
            self.reset_full_bw();
            self.full_bw = self.max_bw.best();
        } else if self.full_bw_now {
            return true;
        }
        false
    }

    /// `BBRCheckProbeRTT`.
    pub(super) fn check_probe_rtt(&mut self, now: Instant, rs: &RateSample) {
        if self.state != State::ProbeRtt && self.probe_rtt_expired && !self.idle_restart {
            self.enter_probe_rtt();
            self.save_cwnd();
            self.probe_rtt_done_stamp = None;
            self.probe_stopping = true;
            self.start_round();
        }
        if self.state == State::ProbeRtt {
            self.handle_probe_rtt(now);
        }
        if rs.delivered > 0 {
            self.idle_restart = false;
        }
    }

    fn enter_probe_rtt(&mut self) {
        self.set_state(State::ProbeRtt, 1.0, PROBE_RTT_CWND_GAIN);
    }

    /// `BBRHandleProbeRTT`: hold in-flight at the ProbeRTT window for 200 ms and one round.
    fn handle_probe_rtt(&mut self, now: Instant) {
        match self.probe_rtt_done_stamp {
            None => {
                if self.in_flight <= self.probe_rtt_cwnd() {
                    self.probe_rtt_done_stamp = Some(now + PROBE_RTT_DURATION);
                    self.probe_rtt_round_done = false;
                    self.start_round();
                }
            }
            Some(_) => {
                if self.round_start {
                    self.probe_rtt_round_done = true;
                }
                if self.probe_rtt_round_done {
                    self.check_probe_rtt_done(now);
                }
            }
        }
    }

    /// `BBRCheckProbeRTTDone`.
    pub(super) fn check_probe_rtt_done(&mut self, now: Instant) {
        if self.probe_rtt_done_stamp.is_some_and(|done| now > done) {
            // Schedule the next ProbeRTT 5 s from now.
            self.probe_rtt_min_stamp = now;
            self.restore_cwnd();
            self.exit_probe_rtt();
        }
    }

    /// `BBRExitProbeRTT`.
    fn exit_probe_rtt(&mut self) {
        self.reset_lower_bounds();
        self.probe_rtt_done_stamp = None;
        if self.filled_pipe {
            self.start_probe_bw_down();
            self.start_probe_bw_cruise();
        } else {
            self.set_state(State::Startup, STARTUP_PACING_GAIN, STARTUP_CWND_GAIN);
        }
    }
}
