//! The ACK fast path: the bulk sender's common ACK, a pure cumulative acknowledgment of a clean
//! flight, processed with only the steps it needs (the idea of header prediction, RFC 9293 §3.10
//! leaves the order of work to the implementation; Linux's `tcp_ack` splits the same way on
//! `FLAG_SLOWPATH`).
//!
//! **Owns** [`LossRecovery::on_clean_ack`]: when no recovery episode, tail loss probe, lost or
//! SACKed segment is pending (so no SACK state, reneging included, has anything to say about
//! the ACK), RACK alone marks losses, and the ACK carries no SACK block and ends
//! exactly a run of two or more clean records (never SACKed, lost or retransmitted, sent in
//! order), it releases the run in one step, takes the one RTT sample and the one delivery
//! report, restarts the retransmission timer and re-arms the loss timer.
//!
//! **Promises:** the same [`AckOutcome`] and the same state, field for field, as
//! [`LossRecovery::on_ack`] on that ACK (`clean_ack_tests` drives both with random flights);
//! anything else returns `None` having changed nothing, and the caller takes the general path.
//! What it skips is what that ACK provably leaves alone: SACK block validation, the search
//! for a second run or a front to trim (the next record starts at the ACK), recovery exit,
//! D-SACK undo, the TLP verdict (no probe outstanding) and, with nothing lost, NextSeg.

use super::scoreboard::Delivery;
use super::segments::SegmentRecord;
use super::{AckOutcome, Deliveries, LossDetection, LossRecovery};
use crate::congestion::PacketSnapshot;
use crate::time::Instant;
use crate::wire::SeqNumber;

impl LossRecovery {
    /// [`Self::on_ack`] for an ACK without SACK blocks, if it is the common bulk ACK described
    /// in the module docs; `None` (nothing changed) otherwise. With `Some`, nothing is lost and
    /// no episode runs unless the outcome says so (`newly_lost`, `congestion_event`), so
    /// [`Self::next_retransmission`] has nothing to offer while `newly_lost` is zero.
    #[inline]
    pub fn on_clean_ack(
        &mut self,
        now: Instant,
        ack: SeqNumber,
        tsecr: Option<u32>,
        mut on_delivered: impl FnMut(&PacketSnapshot),
    ) -> Option<AckOutcome> {
        if self.episode.is_some()
            || self.tlp.end_seq.is_some()
            || self.config.loss_detection != LossDetection::Rack
            || self.board.lost_bytes() != 0
            || self.board.sacked_segments() != 0
        {
            return None;
        }
        let prior_in_flight = self.board.pipe();
        // No episode runs, so no F-RTO test either.
        let mut seen = Deliveries::new(now, tsecr, self.rtt.min_rtt(), None);
        let rack = &mut self.rack;
        let update = self.board.on_clean_ack(ack, |rec: &SegmentRecord, how: Delivery| {
            seen.on_delivered(rack, rec, how, &mut on_delivered);
        })?;
        self.rearmed_for_flight_at = None;
        self.tlp.probe_pending = false;
        if let Some((_, r)) = seen.sample {
            self.rtt.on_sample(now, r);
        }
        // RFC 6298 §5.3, as in the general path.
        self.rto_started = Some(now);
        self.rtt.reset_backoff();
        self.rack.update_reo_wnd(ack, self.board.high_data(), false, false);
        let (lost, entered) = self.detect_losses(now);
        let out = AckOutcome {
            newly_acked: update.newly_acked,
            delivered: update.delivered,
            newly_lost: lost,
            rtt_sample: seen.sample.map(|(_, r)| r),
            prior_in_flight,
            in_flight: self.board.pipe(),
            congestion_event: entered,
            ..AckOutcome::default()
        };
        self.rearm(now, true);
        Some(out)
    }
}
