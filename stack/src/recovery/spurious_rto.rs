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
//!   retransmission (serial-number comparison, RFC 7323 §5.2, so 2^32 wrap-around is fine;
//!   an echo of zero is no evidence):
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
//! - *F-RTO* (RFC 5682 §3.1, SACK variant, the detection of step 3b as Linux applies it), for
//!   SACK peers without timestamps ([`LossRecovery::set_frto`]): an ACK that newly
//!   acknowledges or SACKs a segment sent before the timeout and never retransmitted proves
//!   that not everything was lost, so the timeout was spurious. Not for a timeout during fast
//!   recovery or a reneging repair; over for the episode once new data sent after the timeout
//!   meets SACKs or duplicate ACKs (step 3a). Step 2b, as Linux's `tcp_process_loss`
//!   (`REXMIT_NEW`): while no new data went out since the timeout, an ACK that advances
//!   `snd_una` makes [`LossRecovery::next_retransmission`] offer nothing until the next ACK
//!   when the sender has new data the peer's window takes, so new segments (as many as the
//!   window allows, as Linux; RFC 5682 says up to two) go out instead of more
//!   retransmissions: their SACKs decide step 3a, the originals' ACKs step 3b. Without new
//!   data (or window) the sender resends as RTO recovery does and the test stays open (Linux
//!   ends it there; the originals' ACKs are still proof).
//!
//! **Does not** use F-RTO for peers without SACK: their cumulative ACK after a repaired hole
//! covers data never resent, which would look like originals arriving.

use super::scoreboard::ScoreboardUpdate;
use super::segments::not_at_or_before;
use super::{LossRecovery, Undo};
use crate::time::Instant;
use crate::wire::SeqNumber;

impl LossRecovery {
    /// Turns F-RTO detection on or off: only for peers that send real SACK information and
    /// no timestamps (with timestamps, Eifel decides). Off until the engine says so.
    pub fn set_frto(&mut self, on: bool) {
        self.rearmed_for_flight_at = None;
        self.frto = on;
    }

    /// The undo bookkeeping of a timeout firing at `now` (before the episode is replaced).
    /// F-RTO applies to a timeout that starts an episode (not one during fast recovery) and is
    /// not a reneging repair (the marks it cleared came back as SACKs would look like
    /// originals arriving), and to its repeated timeouts (RFC 5682 §3.2).
    pub(super) fn start_rto_undo(&mut self, now: Instant, reneged: bool) {
        match self.undo.as_mut() {
            Some(undo) if self.episode.is_some() => {
                undo.rto_at = Some(now);
                undo.frto &= !reneged;
            }
            _ => {
                let mut undo = Undo::new(self.board.snd_una(), Some(now));
                undo.frto = self.frto && !reneged;
                self.undo = Some(undo);
            }
        }
    }

    /// The recovery point of the timeout episode an F-RTO test may still decide (one field
    /// test when no undo bookkeeping exists).
    pub(super) fn frto_point(&self) -> Option<SeqNumber> {
        let undo = self.undo.as_ref()?;
        let episode = self.episode?;
        (undo.frto && undo.rto_at.is_some()).then_some(episode.point)
    }

    /// RFC 5682 §3.1 step 3b, as Linux's `tcp_process_loss` applies it: the ACK newly
    /// acknowledged or SACKed a segment sent before the timeout and never retransmitted, so
    /// not everything was lost: the timeout was spurious. Once new data went out after the
    /// timeout, an ACK with SACK information or no progress that is not such proof says the
    /// loss was real (step 3a) and the test is over for the episode. Before that, an ACK that
    /// advances `snd_una` lets new data go first (step 2b).
    pub(super) fn check_frto(&mut self, original_delivered: bool, update: &ScoreboardUpdate) -> Option<Undo> {
        let point = self.frto_point()?;
        if original_delivered {
            return self.undo.take();
        }
        let new_data_sent = not_at_or_before(self.board.high_data(), point);
        if new_data_sent && (update.newly_sacked > 0 || update.newly_acked == 0) {
            if let Some(undo) = self.undo.as_mut() {
                undo.frto = false;
            }
        } else if !new_data_sent && update.newly_acked > 0 {
            self.frto_new_data = true;
        }
        None
    }

    /// RFC 3522 on an ACK that advanced `snd_una`: the consumed bookkeeping if the episode
    /// still running (a timeout's, or fast recovery's: [`super::spurious_recovery`]) turned
    /// out spurious.
    pub(super) fn check_eifel(&mut self, tsecr: Option<u32>) -> Option<Undo> {
        let undo = self.undo?;
        self.episode?;
        if undo.rto_at.is_none() {
            return self.check_eifel_recovery(undo, tsecr);
        }
        let delayed = !undo.retransmitted || echo_before(tsecr, undo.first_tsval);
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

/// The ACK's echoed timestamp is older than the first retransmission's TSval `first`. A TSecr
/// of zero says nothing (RFC 7323 §3.2: the echo may be zero when no TSval was seen; Linux's
/// `tcp_tsopt_ecr_before` also requires a non-zero echo).
pub(super) fn echo_before(tsecr: Option<u32>, first: Option<u32>) -> bool {
    matches!((tsecr, first), (Some(echo), Some(first)) if echo != 0 && ts_before(echo, first))
}
