//! SACK reneging: a receiver that discards out-of-order data it has already SACKed.
//!
//! RFC 2018 §8 lets a receiver do this (FreeBSD and Windows do under memory pressure; a
//! middlebox rewriting SACK blocks has the same effect), so a SACK is a hint and only the
//! cumulative ACK releases data. The scoreboard already keeps SACKed records until the
//! cumulative ACK passes them; this module makes sure the sender also *resends* them when the
//! receiver lets them go, instead of waiting on marks that will never be acknowledged.
//!
//! **Owns** the reneging check of [`LossRecovery`]: if, after an ACK, the lowest outstanding
//! record is SACKed, the receiver does not hold it (a receiver that had it would have
//! acknowledged past it): the cumulative ACK stopped at SACKed data, or a block claims the very
//! byte the ACK says is missing. Linux looks only at ACKs that advanced `snd_una`; a block
//! starting at the cumulative ACK is as clear a sign, so any ACK counts here (a grace is never
//! pushed back, so looking at every ACK cannot delay the repair). A short grace follows,
//! because an ACK that advances further may be on its way (a receiver or middlebox can split
//! one cumulative step into several ACKs): `max(SRTT/2, 10 ms)`, as Linux waits, never later
//! than the RTO. If the
//! lowest record is still SACKed when the grace ends — or when any RTO fires — the receiver
//! reneged: every SACK mark is cleared, every outstanding record is lost, and the timeout
//! proceeds as an RFC 6298 RTO (RFC 6675 §5.1; RFC 2018 §5 has the sender drop its SACK marks
//! after a timeout for exactly this reason), so retransmission restarts at `snd_una` with the
//! congestion window collapsed. The engine counts each one (`Stats::sack_reneging`). An RTO
//! with no sign of reneging keeps the marks (as Linux does), so only missing data is resent.
//! A spurious repair is undone: the repair is a timeout for [`super::spurious_rto`], so when
//! the ACK that moves past the SACKed data was only late (its echoed TSval is older than the
//! repair's first retransmission, RFC 3522, or D-SACKs report every resent segment, RFC 3708)
//! the window comes back and the segments not yet resent are not (RFC 4015). A repair during
//! a fast recovery whose own retransmission was needed is not undone: the test compares with
//! the episode's first retransmission, as Linux does, and the controller's saved window is
//! the one from before that recovery.
//!
//! **Promises:** the per-ACK check is O(1): two field tests while nothing is suspected and
//! nothing is SACKed, else one look at the lowest record; never a scan of the scoreboard.
//! Clearing the marks is O(n) once per reneging, like the RTO's own marking. A
//! grace started is never pushed back by later ACKs, so a peer cannot postpone the repair. An
//! ACK that leaves the lowest record un-SACKed ends the suspicion. One grace per `snd_una`: a
//! peer that keeps claiming the segment at `snd_una` without ever letting `snd_una` move gets
//! the RTO after the first repair (each RTO clears the marks too), so its repairs, their O(n)
//! work and the R2 count advance at the pace of ordinary timeouts, never once per grace. No
//! allocation, no panic.
//!
//! **Does not** apply to peers without SACK: their marks are the engine's guesses from
//! duplicate ACKs and it takes them back itself (`unsack_front`, `forget_sacks`); the lowest
//! record never keeps such a mark once the engine has handled an ACK, so the check stays quiet.

use super::{LossRecovery, TimeoutOutcome};
use crate::time::{Duration, Instant};
use crate::wire::SeqNumber;

/// The shortest grace between seeing a cumulative ACK stop at SACKed data and acting on it.
pub const MIN_RENEGING_GRACE: Duration = Duration::from_millis(10);

/// State of the reneging check of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reneging {
    /// When the grace after a suspicious ACK ends; `None` when nothing is suspected.
    deadline: Option<Instant>,
    /// Renegings recovered from on this connection.
    count: u64,
    /// `snd_una` at the last repair: no second grace until it moves.
    repaired_at: Option<SeqNumber>,
}

impl Reneging {
    /// Renegings recovered from (SACK marks cleared) on this connection.
    pub fn count(&self) -> u64 {
        self.count
    }
    /// The end of the grace, if a cumulative ACK stopped at SACKed data.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

/// How long to wait for an ACK that moves past the SACKed record: half an SRTT, at least
/// [`MIN_RENEGING_GRACE`] (before the first sample, the minimum).
pub fn reneging_grace(srtt: Option<Duration>) -> Duration {
    srtt.map_or(MIN_RENEGING_GRACE, |s| Duration::from_nanos(s.as_nanos() / 2).max(MIN_RENEGING_GRACE))
}

impl LossRecovery {
    /// The reneging check of one ACK, after the scoreboard applied it (O(1)).
    #[inline]
    pub(super) fn check_reneging(&mut self, now: Instant) {
        // The fast path: nothing suspected and nothing SACKed, so nothing to suspect.
        if self.reneging.deadline.is_none() && self.board.sacked_segments() == 0 {
            return;
        }
        if !self.front_is_sacked() {
            self.reneging.deadline = None;
        } else if self.reneging.deadline.is_none() && self.reneging.repaired_at != Some(self.board.snd_una())
        {
            // Once repaired at this `snd_una`, a peer claiming the same segment again waits for
            // the RTO (which clears the marks too): repairs go at the pace of timeouts.
            self.reneging.deadline = Some(now + reneging_grace(self.rtt.srtt()));
        }
    }

    /// The end of the grace while the suspicion stands, for [`Self::next_timer`] (it fires as
    /// [`super::RecoveryTimer::Rto`]).
    pub(super) fn reneging_deadline(&self) -> Option<Instant> {
        self.reneging.deadline.filter(|_| self.front_is_sacked())
    }

    /// The grace ended with the lowest record still SACKed: time to treat it as an RTO.
    pub(super) fn reneging_due(&self, now: Instant) -> bool {
        self.reneging_deadline().is_some_and(|t| t <= now)
    }

    /// On any RTO, before the outstanding records are marked lost: if the lowest one is SACKed
    /// the receiver reneged, so every SACK mark goes (RFC 2018 §8) and the retransmission
    /// starts at `snd_una`. Returns the bytes un-SACKed (now lost) and says so in `out`.
    pub(super) fn forget_reneged_sacks(&mut self, out: &mut TimeoutOutcome) -> u32 {
        self.reneging.deadline = None;
        if !self.front_is_sacked() {
            return 0;
        }
        self.reneging.count += 1;
        self.reneging.repaired_at = Some(self.board.snd_una());
        out.reneged = true;
        self.board.forget_sacks()
    }

    /// The reneging check's state (for `ss -ti`-like diagnostics and tests).
    pub fn reneging(&self) -> &Reneging {
        &self.reneging
    }

    fn front_is_sacked(&self) -> bool {
        self.board.segments().front().is_some_and(|r| r.is_sacked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::test_support::{ack_segments, at, seg, send_segment, ISS, MSS};
    use crate::recovery::{RecoveryConfig, RecoveryTimer, SentSegment};

    /// Ten segments sent at t=0, the first ACK at t=100 ms (SRTT 100 ms).
    fn flight() -> LossRecovery {
        let mut r = LossRecovery::new(RecoveryConfig { smss: MSS, ..RecoveryConfig::default() }, ISS);
        for i in 0..10 {
            send_segment(&mut r, 0, i, false, None);
        }
        r
    }

    fn ack(r: &mut LossRecovery, ms: u64, ack: u32, blocks: &[(u32, u32)]) {
        ack_segments(r, ms, ack, blocks, None);
    }

    /// Segment 1 is lost, 2..10 SACKed; then the receiver fills the hole but drops 2..10.
    fn reneged_flight() -> LossRecovery {
        let mut r = flight();
        ack(&mut r, 100, 1, &[(2, 10)]);
        assert_eq!(r.scoreboard().sacked_segments(), 8);
        ack(&mut r, 200, 2, &[]);
        r
    }

    #[test]
    fn grace_is_half_srtt_with_a_floor() {
        assert_eq!(reneging_grace(None), MIN_RENEGING_GRACE);
        assert_eq!(reneging_grace(Some(Duration::from_millis(100))), Duration::from_millis(50));
        assert_eq!(reneging_grace(Some(Duration::from_millis(4))), MIN_RENEGING_GRACE);
    }

    #[test]
    fn ack_stopping_at_sacked_data_arms_the_grace_then_resends_from_snd_una() {
        let mut r = reneged_flight();
        let grace = reneging_grace(r.rtt().srtt());
        let deadline = at(200) + grace;
        assert_eq!(r.reneging().deadline(), Some(deadline));
        assert_eq!(r.next_timer(), Some((deadline, RecoveryTimer::Rto)));
        // A later ACK that still stops at SACKed data does not push the grace back.
        ack(&mut r, 210, 2, &[]);
        assert_eq!(r.next_timer(), Some((deadline, RecoveryTimer::Rto)));
        // Not yet due: nothing happens.
        assert!(!r.on_timeout(deadline - Duration::from_millis(1), RecoveryTimer::Rto).rto);
        let out = r.on_timeout(deadline, RecoveryTimer::Rto);
        assert!(out.rto && out.reneged, "{out:?}");
        assert_eq!(out.newly_lost, 8 * MSS, "every reneged segment is lost");
        assert_eq!(r.reneging().count(), 1);
        assert_eq!(r.scoreboard().sacked_segments(), 0);
        assert_eq!(r.scoreboard().sacked_bytes(), 0);
        assert!(r.in_recovery());
        let resent: Vec<_> = (2..10)
            .map(|i| {
                let (s, l) = r.next_retransmission(false).expect("a retransmission");
                r.on_sent(
                    at(250),
                    &SentSegment { seq: s, len: l, is_retransmit: true, ..Default::default() },
                )
                .unwrap();
                assert_eq!(s, seg(i));
                s
            })
            .collect();
        assert_eq!(resent.len(), 8);
        assert_eq!(r.next_retransmission(false), None);
        // The retransmissions arrive: everything is acknowledged.
        ack(&mut r, 300, 10, &[]);
        assert!(r.scoreboard().segments().is_empty() && !r.in_recovery());
        assert_eq!(r.next_timer(), None);
    }

    #[test]
    fn an_ack_moving_past_the_sacked_data_ends_the_suspicion() {
        let mut r = reneged_flight();
        assert!(r.reneging().deadline().is_some());
        ack(&mut r, 205, 10, &[]);
        assert_eq!(r.reneging().deadline(), None);
        assert_eq!(r.reneging().count(), 0);
        // Partly: the receiver split its cumulative step; the next record is not SACKed.
        let mut r = flight();
        ack(&mut r, 100, 1, &[(2, 4)]);
        ack(&mut r, 200, 2, &[(3, 4)]);
        assert!(r.reneging().deadline().is_some());
        let grace_end = r.reneging().deadline();
        ack(&mut r, 201, 4, &[]);
        assert_eq!(r.reneging().deadline(), None);
        assert_ne!(r.next_timer().map(|t| t.0), grace_end, "the grace timer is gone");
        assert_eq!(r.reneging().count(), 0);
    }

    #[test]
    fn plain_acks_and_holes_do_not_look_like_reneging() {
        let mut r = flight();
        ack(&mut r, 100, 2, &[(4, 6)]);
        ack(&mut r, 110, 3, &[(4, 6)]);
        assert_eq!(r.reneging().deadline(), None);
        ack(&mut r, 120, 6, &[]);
        assert_eq!(r.reneging().deadline(), None);
        assert_eq!(r.reneging().count(), 0);
    }

    #[test]
    fn a_block_claiming_the_byte_at_snd_una_is_reneging_too() {
        let mut r = flight();
        ack(&mut r, 100, 1, &[(3, 10)]);
        // A lying receiver (or a middlebox forging blocks): a block starting at its own
        // cumulative ACK. `snd_una` did not move; the grace starts all the same.
        ack(&mut r, 110, 1, &[(1, 10)]);
        assert_eq!(r.scoreboard().segments().front().map(|f| f.is_sacked()), Some(true));
        let deadline = at(110) + reneging_grace(r.rtt().srtt());
        assert_eq!(r.next_timer(), Some((deadline, RecoveryTimer::Rto)));
        let out = r.on_timeout(deadline, RecoveryTimer::Rto);
        assert!(out.rto && out.reneged);
        assert_eq!((r.scoreboard().sacked_segments(), r.reneging().count()), (0, 1));
        assert_eq!(r.next_retransmission(false), Some((seg(1), MSS)));
    }

    #[test]
    fn a_peer_that_never_lets_snd_una_move_gets_rtos_not_a_grace_each_time() {
        let mut r = flight();
        ack(&mut r, 100, 1, &[(3, 10)]);
        let (mut fired, mut first_grace) = (Vec::new(), None);
        let mut now = at(110);
        for _ in 0..4 {
            // The liar claims the segment at snd_una again; its retransmission never counts.
            ack(&mut r, now.as_millis(), 1, &[(1, 10)]);
            first_grace = first_grace.or(Some(reneging_grace(r.rtt().srtt())));
            let (t, kind) = r.next_timer().unwrap();
            let out = r.on_timeout(t, kind);
            if out.rto {
                assert!(out.reneged, "{out:?}");
                fired.push(t - now);
                let (s, l) = r.next_retransmission(false).unwrap();
                r.on_sent(t, &SentSegment { seq: s, len: l, is_retransmit: true, ..Default::default() })
                    .unwrap();
            }
            now = t + Duration::from_millis(1);
        }
        assert_eq!(r.reneging().count(), fired.len() as u64);
        // The first repair after the grace, later ones only after an RTO (200 ms at least).
        assert_eq!(Some(fired[0]), first_grace);
        assert!(fired[1..].iter().all(|&d| d >= Duration::from_millis(199)), "{fired:?}");
        // Progress gives the next reneging its quick repair again.
        ack(&mut r, now.as_millis(), 2, &[(2, 10)]);
        let grace_end = at(now.as_millis()) + reneging_grace(r.rtt().srtt());
        assert_eq!(r.next_timer(), Some((grace_end, RecoveryTimer::Rto)));
    }

    #[test]
    fn an_rto_due_before_the_grace_ends_clears_the_marks() {
        let mut r = flight();
        ack(&mut r, 100, 1, &[(3, 10)]);
        // Segments 1 and 2 are resent (so the lie below gives no RTT sample that would move
        // the RTO); the other timers run until the RTO is next.
        for i in 1..3 {
            let rtx = SentSegment { seq: seg(i), len: MSS, is_retransmit: true, ..Default::default() };
            r.on_sent(at(100), &rtx).unwrap();
        }
        let rto_at = loop {
            let (t, kind) = r.next_timer().unwrap();
            if kind == RecoveryTimer::Rto {
                break t;
            }
            if let Some(Some((s, l))) = r.on_timeout(t, kind).probe {
                r.on_sent(t, &SentSegment { seq: s, len: l, is_retransmit: true, ..Default::default() })
                    .unwrap();
            }
        };
        let lie_at = rto_at - Duration::from_millis(1);
        ack(&mut r, lie_at.as_millis(), 1, &[(1, 10)]);
        assert!(r.reneging().deadline().is_some_and(|d| d > rto_at));
        assert_eq!(r.next_timer(), Some((rto_at, RecoveryTimer::Rto)));
        let out = r.on_timeout(rto_at, RecoveryTimer::Rto);
        assert!(out.rto && out.reneged, "{out:?}");
        assert_eq!((r.scoreboard().sacked_segments(), r.reneging().count()), (0, 1));
        assert_eq!(r.reneging().deadline(), None);
        assert_eq!(r.next_retransmission(false), Some((seg(1), MSS)));
    }

    #[test]
    fn an_rto_without_reneging_keeps_the_sack_marks() {
        let mut r = flight();
        ack(&mut r, 100, 1, &[(3, 10)]);
        let out = loop {
            let (t, kind) = r.next_timer().unwrap();
            let out = r.on_timeout(t, kind);
            if out.rto {
                break out;
            }
            if let Some(probe) = out.probe {
                let (s, l) = probe.unwrap();
                r.on_sent(t, &SentSegment { seq: s, len: l, is_retransmit: true, ..Default::default() })
                    .unwrap();
            }
        };
        assert!(!out.reneged);
        assert_eq!((r.scoreboard().sacked_segments(), r.reneging().count()), (7, 0));
        assert_eq!(r.next_retransmission(false), Some((seg(1), MSS)));
    }
}
