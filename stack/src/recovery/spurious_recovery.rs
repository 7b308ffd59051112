//! Spurious fast retransmissions found by timestamps: the RFC 3522 Eifel test applied to a
//! fast-recovery episode, as Linux applies `tcp_packet_delayed` in `tcp_try_undo_partial` and
//! `tcp_try_undo_recovery`.
//!
//! Reordering deeper than RACK's window (RFC 8985) makes the sender resend a segment the
//! network only held back. The D-SACK for the resent copy (RFC 3708, [`LossRecovery`]'s
//! `check_undo`) proves that one retransmission trip later; with timestamps the proof comes
//! with the late original itself: it fills the hole, so the receiver's TS.Recent, and the echo
//! of the ACK that moves `snd_una` over it, is the original's TSval (RFC 7323 §4.3), older
//! than the retransmission's. Had the retransmission filled the hole, the echo would be its
//! TSval or newer (TS.Recent only grows).
//!
//! **Owns** the test of a fast-recovery episode's undo bookkeeping on each ACK that advances
//! `snd_una` while the episode runs. The episode is spurious when
//! - it retransmitted something (the bookkeeping holds the first retransmission's TSval,
//!   `Undo::first_tsval`, recorded on the retransmission for either kind of episode);
//! - `snd_una` reached the highest end of the episode's retransmissions: every retransmitted
//!   segment is cumulatively acknowledged, so a partial ACK that moves over older data but not
//!   over a retransmitted segment proves nothing (its echo is an original's, whatever
//!   happened to the retransmission). This is Linux's partial-undo condition (no
//!   retransmission out, `retrans_out == 0`), counted from the cumulative ACK only;
//! - no segment is still marked lost (a segment marked lost and not resent yet is a loss
//!   signal the late original does not explain; Linux instead takes every loss mark back);
//! - the ACK echoes a non-zero TSecr older than the first retransmission's TSval (RFC 7323
//!   §5.2 serial-number comparison, so 2^32 wrap-around is fine).
//!
//! A later ACK of the same episode is tested again (the first proof may come when a
//! retransmission is still outstanding); the first ACK that passes consumes the bookkeeping.
//!
//! **Response**, the D-SACK undo's: the engine calls `on_spurious_congestion_event` and counts
//! `Stats::spurious_retrans_undone`; here the episode ends (Linux returns to the open state,
//! `tcp_try_keep_open`), so the ACK reports no recovery exit as well. RACK learns that the
//! path reorders (`Rack::on_reordering`: its window then applies in recovery too), as Linux's
//! partial undo records it (`tcp_check_sack_reordering` counts `reord_seen`; its
//! `tcp_try_undo_recovery` records nothing). The window multiplier is left to the D-SACK for
//! the same retransmission, which follows one retransmission trip later (RFC 8985 §6.2 step 4
//! names D-SACKs; Linux's `tcp_rack_update_reo_wnd` reads only them): stepping it here too
//! would count one piece of evidence twice whenever the D-SACK lands in the next round.
//!
//! **Promises:** O(1) per ACK (the caller tests it only when undo bookkeeping and an episode
//! exist); one undo per episode, so a peer forging old echoes undoes at most each reduction it
//! caused, as with the timeout's Eifel test and in Linux; no allocation, no panic.
//!
//! **Does not** undo an episode that retransmitted nothing (Linux does once `snd_una`
//! advances: without a retransmission there is no TSval to compare, and the D-SACK path
//! cannot decide it either), nor take loss marks back (it needs none left), nor act without
//! timestamps (then only D-SACKs decide).

use super::segments::not_before;
use super::spurious_rto::echo_before;
use super::{LossRecovery, Undo};

impl LossRecovery {
    /// The Eifel test of the fast-recovery episode running (bookkeeping `undo`): the consumed
    /// bookkeeping if the ACK just processed proves every retransmission of it unnecessary.
    pub(super) fn check_eifel_recovery(&mut self, undo: Undo, tsecr: Option<u32>) -> Option<Undo> {
        let spurious = undo.retransmitted
            && not_before(self.board.snd_una(), undo.retrans_high)
            && self.board.lost_bytes() == 0
            && echo_before(tsecr, undo.first_tsval);
        if !spurious {
            return None;
        }
        self.undo = None;
        self.episode = None;
        Some(undo)
    }
}
