//! Segment arrival, RFC 9293 §3.10.7, split by processing step:
//! [`syn_sent`] (§3.10.7.3), then for the other states [`segment_check`] (first check, PAWS of
//! RFC 7323 §5), [`rst`] (second check, RFC 5961 §3), [`syn`] (fourth check, RFC 5961 §4),
//! [`ack`] (fifth check, RFC 5961 §5, RFC 5681/6582/6298), [`data`] (seventh and eighth:
//! text and FIN); [`time_wait`] applies the TIME-WAIT rules to the engine's compact record of a
//! connection the application has let go of. LISTEN is handled by the engine's listener code (§3.10.7.2) and CLOSED by the
//! engine's reset generator (§3.10.7.1).
//!
//! The segment an ESTABLISHED receiver expects next takes [`predicted`] (header prediction),
//! which skips the checks that cannot fail for it and ends where the general path would.
//!
//! Input never transmits: it marks the connection (`ack_now`, `retransmit_head`, ...) and
//! returns an [`InputAction`] for the rare cases the engine must act (send a RST from this
//! tuple, return a half-open connection to LISTEN, reopen from TIME-WAIT).

mod ack;
mod data;
mod predicted;
#[cfg(test)]
mod predicted_tests;
mod rst;
mod segment_check;
mod syn;
mod syn_sent;
pub mod time_wait;

use super::config::TcpConfig;
use super::connection::Connection;
use super::state::State;
use crate::stats::Stats;
use crate::time::{Duration, Instant};
use crate::wire::{SeqNumber, TcpRepr};

/// The TIME-WAIT reopen rule of [`Connection::on_segment`] for RCV.NXT `rcv_nxt` and TS.Recent
/// `ts_recent` (`None`: timestamps not in use); shared with the compact TIME-WAIT record.
fn syn_may_reopen(rcv_nxt: SeqNumber, ts_recent: Option<u32>, seg: &TcpRepr<'_>) -> bool {
    if seg.seq_number - rcv_nxt > 0 {
        return true;
    }
    match (ts_recent, seg.options.timestamps) {
        (Some(recent), Some(new)) => (new.tsval.wrapping_sub(recent) as i32) > 0,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// RFC 5961 §7: a stack-wide budget of challenge ACKs per second.
#[derive(Debug, Clone)]
pub struct ChallengeAckLimiter {
    window_start: Instant,
    sent: u32,
    limit: u32,
}

impl ChallengeAckLimiter {
    pub fn new(limit: u32) -> Self {
        ChallengeAckLimiter { window_start: Instant::ZERO, sent: 0, limit }
    }

    /// True if one more challenge ACK may go out at `now`.
    pub fn allow(&mut self, now: Instant) -> bool {
        if now - self.window_start >= Duration::from_secs(1) {
            self.window_start = now;
            self.sent = 0;
        }
        if self.sent < self.limit {
            self.sent += 1;
            true
        } else {
            false
        }
    }
}

/// Shared state the input path needs beyond the connection itself.
#[derive(Debug)]
pub struct InputContext<'a> {
    pub now: Instant,
    pub cfg: &'a TcpConfig,
    pub stats: &'a mut Stats,
    pub challenge: &'a mut ChallengeAckLimiter,
}

/// What the engine must do after a segment was processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputAction {
    /// Nothing beyond what the connection marked for output.
    None,
    /// Send `<SEQ=seq><CTL=RST>` from this connection's tuple (RFC 9293 §3.10.7.4 fifth check
    /// in SYN-RECEIVED; data after close).
    Reset { seq: SeqNumber },
    /// A passively opened connection was reset in SYN-RECEIVED: forget it silently
    /// (RFC 9293: "return this connection to LISTEN").
    ReturnToListen,
    /// A new SYN hit a TIME-WAIT connection with a higher sequence number: free it and hand the
    /// SYN to the listener (RFC 9293 §3.10.7.4 fourth check note, RFC 6191).
    ReopenFromTimeWait,
}

impl Connection {
    /// Processes one arriving segment addressed to this connection. The engine re-derives the
    /// send timers afterwards (`update_send_timers`, in its `after_update`).
    pub fn on_segment(&mut self, seg: &TcpRepr<'_>, ctx: &mut InputContext<'_>) -> InputAction {
        if self.predicts(seg) {
            self.on_predicted_segment(seg, ctx);
            return InputAction::None;
        }
        self.on_segment_general(seg, ctx)
    }

    /// Every step of RFC 9293 §3.10.7.4 for any segment in any state but LISTEN/CLOSED.
    fn on_segment_general(&mut self, seg: &TcpRepr<'_>, ctx: &mut InputContext<'_>) -> InputAction {
        self.counters.segs_in += 1;
        match self.state {
            State::Closed | State::Listen => return InputAction::None,
            State::SynSent => return self.on_segment_syn_sent(seg, ctx),
            _ => {}
        }
        if self.state == State::SynReceived
            && seg.flags.syn()
            && !seg.flags.ack()
            && seg.seq_number == self.irs
        {
            // Our SYN-ACK was lost: the peer retransmitted its SYN. Answer with the SYN-ACK again.
            self.snd_nxt = self.iss;
            return InputAction::None;
        }
        let new_syn = seg.flags.syn() && !seg.flags.ack() && !seg.flags.rst();
        if self.state == State::TimeWait && new_syn && self.syn_may_reopen(seg) {
            return InputAction::ReopenFromTimeWait;
        }
        if !self.check_segment(seg, ctx) {
            return InputAction::None;
        }
        self.last_recv = ctx.now;
        self.keepalive_probes = 0;
        if seg.flags.rst() {
            return self.on_rst(seg, ctx);
        }
        if seg.flags.syn() {
            self.on_syn_in_window(ctx);
            return InputAction::None;
        }
        if !seg.flags.ack() {
            return InputAction::None;
        }
        match self.on_ack(seg, ctx) {
            ack::AckOutcome::Continue => {}
            ack::AckOutcome::Drop => return InputAction::None,
            ack::AckOutcome::Reset(seq) => return InputAction::Reset { seq },
            ack::AckOutcome::Closed => return InputAction::None,
        }
        if let Some(action) = self.on_text(seg, ctx) {
            return action;
        }
        self.on_fin(seg, ctx);
        self.update_send_timers(ctx.now);
        self.update_keepalive(ctx.now);
        InputAction::None
    }

    /// Whether a new SYN may end this TIME-WAIT and open a new incarnation: an ISN above
    /// RCV.NXT (RFC 9293 §3.10.7.4 fourth check note, RFC 1122 §4.2.2.13), or, by RFC 6191 §2,
    /// a timestamp newer than TS.Recent whatever the ISN (a client whose ISNs are not monotonic
    /// per 4-tuple is then not held up for 2*MSL), or no timestamp when the old incarnation had
    /// them (no old duplicate of it can lack one). RFC 6191 would refuse an ISN above RCV.NXT
    /// with an older timestamp; it is still accepted, because a client that picks a random
    /// timestamp offset per connection (as this stack does, RFC 7323 §5.4) would otherwise be
    /// refused half the time (its SYN answered with an ACK, a RST and a retry a second later).
    fn syn_may_reopen(&self, seg: &TcpRepr<'_>) -> bool {
        syn_may_reopen(self.rcv_nxt, self.ts.map(|t| t.recent), seg)
    }

    /// RFC 5961 §3.2/§4.2: a challenge ACK, subject to the stack-wide rate limit.
    pub(crate) fn challenge_ack(&mut self, ctx: &mut InputContext<'_>) {
        if ctx.challenge.allow(ctx.now) {
            self.ack_now = true;
            ctx.stats.challenge_acks += 1;
        } else {
            ctx.stats.challenge_acks_limited += 1;
        }
    }
}
