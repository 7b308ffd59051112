//! Spurious retransmission timeouts: detecting them (RFC 3522 Eifel, RFC 3708 D-SACK) and
//! undoing them (RFC 4015 Eifel response, as Linux's `tcp_try_undo_loss` does).
//!
//! A delay spike longer than the RTO (a Wi-Fi or cellular hand-over, a route change, a peer
//! that stalls) fires the timeout although nothing was lost; so does a SACK-reneging repair
//! ([`super::reneging`]) when the ACK that moves past the SACKed data was only late. Without an
//! undo the window collapses to the loss window and the whole flight is resent for nothing.
//!
//! **Owns** the timeout side of [`LossRecovery`]'s undo bookkeeping:
//! - *Start*: a timeout outside any recovery episode starts fresh bookkeeping (`snd_una` as
//!   the D-SACK marker, no retransmission yet). A second timeout of the same episode, or a
//!   timeout during fast recovery, keeps the episode's bookkeeping, as Linux's
//!   `tcp_enter_loss` keeps `undo_marker`, `undo_retrans` and `retrans_stamp` when it does not
//!   reduce `ssthresh` again: the test still compares against the episode's *first*
//!   retransmission, and an undo restores the window from before the first reduction (the
//!   controllers keep that one too: `LossWindow::rto_recomputes_ssthresh`, BBR's
//!   `save_cwnd`). Only the time of the latest timeout moves (what it marked lost).
//! - *Eifel* (RFC 3522 §2, Linux `tcp_packet_delayed`): on every ACK that advances `snd_una`
//!   while the timeout episode runs (Linux tries on each, RFC 3522 on the first; TS.Recent
//!   only grows, so later ACKs never echo an older value than the first did), the timeout was
//!   spurious when the echoed TSecr is older than the TSval of the episode's first
//!   retransmission (serial-number comparison, RFC 7323 §5.2, so 2^32 wrap-around is fine):
//!   the original transmission got through. If nothing was retransmitted at all since the
//!   timeout, an ACK advancing `snd_una` can only be for an original either (Linux too).
//! - *D-SACK* (RFC 3708, for peers without timestamps): each retransmission of the episode is
//!   counted; when every one has been reported by a D-SACK, the timeout was spurious. This
//!   also works after the episode ended (as Linux's `tcp_try_undo_dsack`), then only the
//!   window is restored.
//! - *Response* (RFC 4015 §2, Linux `tcp_undo_cwnd_reduction(unmark_loss)`): the engine calls
//!   `on_spurious_congestion_event` ([`super::AckOutcome::spurious_rto`]); here the RTO
//!   backoff is cleared, the episode ends, and every segment the timeout marked lost that was
//!   not resent yet is outstanding again ([`super::Scoreboard::unmark_lost`]), so the sender
//!   goes on with new data. Segments already resent stay as they are (their retransmissions
//!   are in flight; D-SACKs will say so).
//!
//! **Promises:** per ACK, one field test while no undo bookkeeping exists, otherwise O(1); the
//! unmarking walk is O(n), once per undo, like the timeout's own marking. One undo per
//! episode: the bookkeeping is consumed by the undo, so a peer forging TSecr or D-SACKs can
//! trigger at most what it could in Linux, one undo per timeout; the undo clears the backoff
//! but not the R2 retry count (only an ACK of new data does that), so a peer that never lets
//! `snd_una` move still reaches R2 and is dropped. No allocation, no panic.
//!
//! **Does not** implement F-RTO (RFC 5682): detection here needs timestamps or D-SACK.

use super::{LossRecovery, Undo};
use crate::time::Instant;

impl LossRecovery {
    /// The undo bookkeeping of a timeout firing at `now` (before the episode is replaced).
    pub(super) fn start_rto_undo(&mut self, now: Instant) {
        match self.undo.as_mut() {
            Some(undo) if self.episode.is_some() => undo.rto_at = Some(now),
            _ => self.undo = Some(Undo::new(self.board.snd_una(), Some(now))),
        }
    }

    /// RFC 3522 on an ACK that advanced `snd_una`: the consumed bookkeeping if the timeout
    /// episode still running turned out spurious.
    pub(super) fn check_eifel(&mut self, tsecr: Option<u32>) -> Option<Undo> {
        let undo = self.undo?;
        undo.rto_at?;
        self.episode?;
        let delayed = if !undo.retransmitted {
            true
        } else {
            matches!((tsecr, undo.first_tsval), (Some(echo), Some(first)) if ts_before(echo, first))
        };
        if delayed {
            self.undo = None;
            return Some(undo);
        }
        None
    }

    /// RFC 4015 response to a timeout (latest one fired at `fired_at`) found spurious.
    pub(super) fn undo_timeout(&mut self, fired_at: Instant) {
        self.rtt.reset_backoff();
        if self.episode.take().is_some() {
            self.board.unmark_lost(fired_at);
        }
    }
}

/// `a` is older than `b` in 32-bit serial-number arithmetic (RFC 7323 §5.2, RFC 1982).
pub(super) fn ts_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
