//! Spurious retransmission timeouts ([`super::spurious_rto`]): the Eifel timestamp test, the
//! D-SACK count, the reneging repair, TSval wrap-around and repeated timeouts of one episode.

use super::spurious_rto::ts_before;
use super::test_support::{ack_segments as ack, seg, send_segment, ISS, MSS};
use super::*;

/// A sender whose TSval clock reads `base + ms` (`None`: timestamps off).
#[derive(Clone, Copy)]
struct Clock(Option<u32>);

impl Clock {
    fn tsval(self, ms: u64) -> Option<u32> {
        self.0.map(|b| b.wrapping_add(ms as u32))
    }
}

fn send(r: &mut LossRecovery, clock: Clock, ms: u64, i: u32, is_retransmit: bool) {
    send_segment(r, ms, i, is_retransmit, clock.tsval(ms));
}

/// Ten segments sent at t=0, the first two acknowledged at t=100 ms (SRTT 100 ms); no tail
/// loss probes, so the next timer is the RTO.
fn flight(clock: Clock) -> LossRecovery {
    let config = RecoveryConfig { smss: MSS, tlp: false, ..RecoveryConfig::default() };
    let mut r = LossRecovery::new(config, ISS);
    for i in 0..10 {
        send(&mut r, clock, 0, i, false);
    }
    let out = ack(&mut r, 100, 2, &[], clock.tsval(0));
    assert_eq!(out.newly_acked, 2 * MSS);
    r
}

/// Fires the RTO and resends what the loss window allows (two segments) at the same instant.
fn timeout_and_resend(r: &mut LossRecovery, clock: Clock) -> (u64, TimeoutOutcome) {
    let (t, kind) = r.next_timer().expect("a timer");
    assert_eq!(kind, RecoveryTimer::Rto);
    let out = r.on_timeout(t, kind);
    assert!(out.rto, "{out:?}");
    let ms = t.as_millis();
    for _ in 0..2 {
        let (s, _) = r.next_retransmission(false).expect("a lost segment");
        send(r, clock, ms, (s - ISS) as u32 / MSS, true);
    }
    (ms, out)
}

#[test]
fn ts_before_is_serial_number_arithmetic() {
    assert!(ts_before(1, 2) && !ts_before(2, 1) && !ts_before(7, 7));
    assert!(ts_before(u32::MAX - 5, 3), "across the wrap");
    assert!(!ts_before(3, u32::MAX - 5));
}

#[test]
fn eifel_finds_a_delayed_original_and_undoes_the_timeout() {
    let clock = Clock(Some(5_000));
    let mut r = flight(clock);
    let (rto_ms, _) = timeout_and_resend(&mut r, clock);
    assert_eq!(r.rtt().backoff(), 1);
    assert_eq!(r.scoreboard().lost_pending_segments(), 6, "segments 4..10 await their resend");
    // The originals of 2 and 3 arrive late; the ACK echoes their TSval (sent at t=0).
    let out = ack(&mut r, rto_ms + 50, 4, &[], clock.tsval(0));
    assert!(out.spurious_congestion_event && out.spurious_rto, "{out:?}");
    assert!(!out.recovery_exited, "an undone episode is not also exited");
    assert!(!r.in_recovery());
    assert_eq!(r.rtt().backoff(), 0, "the backoff is cleared");
    assert_eq!(r.scoreboard().lost_bytes(), 0, "the timeout's loss marks are taken back");
    assert_eq!(r.scoreboard().lost_pending_segments(), 0);
    assert_eq!(r.pipe(), 6 * MSS, "segments 4..10 are in flight again");
    assert_eq!(r.next_retransmission(true), None, "the sender goes on with new data");
    // One undo per episode: a forged old echo on the next ACK does nothing more.
    let again = ack(&mut r, rto_ms + 60, 6, &[], clock.tsval(0));
    assert!(!again.spurious_congestion_event, "{again:?}");
}

#[test]
fn an_echo_of_the_retransmission_is_a_genuine_loss() {
    let clock = Clock(Some(5_000));
    let mut r = flight(clock);
    let (rto_ms, _) = timeout_and_resend(&mut r, clock);
    let out = ack(&mut r, rto_ms + 100, 4, &[], clock.tsval(rto_ms));
    assert!(!out.spurious_congestion_event && !out.spurious_rto, "{out:?}");
    assert!(r.in_recovery());
    assert_eq!(r.next_retransmission(false), Some((seg(4), MSS)), "the repair goes on");
    // A later ACK whose echo is newer still undoes nothing.
    send(&mut r, clock, rto_ms + 100, 4, true);
    let out = ack(&mut r, rto_ms + 200, 5, &[], clock.tsval(rto_ms + 100));
    assert!(!out.spurious_congestion_event);
}

#[test]
fn timestamps_across_the_wrap_still_tell_the_original_from_the_retransmission() {
    // The first transmissions carry TSval 2^32 − 40; the retransmissions, a few hundred ms
    // later, have wrapped past zero.
    let clock = Clock(Some(u32::MAX - 40));
    let (mut spurious, mut genuine) = (flight(clock), flight(clock));
    let (rto_ms, _) = timeout_and_resend(&mut spurious, clock);
    timeout_and_resend(&mut genuine, clock);
    assert!(clock.tsval(rto_ms).unwrap() < 1_000, "the retransmission's TSval wrapped");
    let out = ack(&mut spurious, rto_ms + 50, 4, &[], clock.tsval(0));
    assert!(out.spurious_rto, "{out:?}");
    let out = ack(&mut genuine, rto_ms + 50, 4, &[], clock.tsval(rto_ms));
    assert!(!out.spurious_congestion_event, "{out:?}");
}

#[test]
fn without_timestamps_d_sacks_for_every_retransmission_undo_the_timeout() {
    let clock = Clock(None);
    let mut r = flight(clock);
    let (rto_ms, _) = timeout_and_resend(&mut r, clock);
    // The originals of 2 and 3 arrive: cumulative ACK, no echo to test.
    let out = ack(&mut r, rto_ms + 10, 4, &[], None);
    assert!(!out.spurious_congestion_event && r.in_recovery(), "{out:?}");
    // The retransmissions follow: D-SACKs, one per retransmission.
    let out = ack(&mut r, rto_ms + 20, 4, &[(2, 3)], None);
    assert!(out.dsack.is_some() && !out.spurious_congestion_event, "{out:?}");
    let out = ack(&mut r, rto_ms + 21, 4, &[(3, 4)], None);
    assert!(out.spurious_congestion_event && out.spurious_rto, "{out:?}");
    assert!(!r.in_recovery());
    assert_eq!((r.rtt().backoff(), r.scoreboard().lost_bytes()), (0, 0));
    assert_eq!(r.next_retransmission(true), None);
}

#[test]
fn a_d_sack_outside_the_episode_or_too_few_undo_nothing() {
    let clock = Clock(None);
    let mut r = flight(clock);
    let (rto_ms, _) = timeout_and_resend(&mut r, clock);
    // A D-SACK for data below the episode's marker (segment 0, acknowledged before).
    let out = ack(&mut r, rto_ms + 10, 2, &[(0, 1)], None);
    assert!(!out.spurious_congestion_event, "{out:?}");
    let out = ack(&mut r, rto_ms + 20, 4, &[(2, 3)], None);
    assert!(!out.spurious_congestion_event, "one of two retransmissions reported: {out:?}");
    assert!(r.in_recovery());
}

#[test]
fn a_spurious_reneging_repair_is_undone() {
    let clock = Clock(Some(77));
    let mut r = flight(clock);
    // A receiver (or a middlebox) reports a block starting at its own cumulative ACK: the
    // sender suspects reneging (no loss, no fast recovery).
    let out = ack(&mut r, 105, 3, &[(3, 5)], clock.tsval(0));
    assert!(!out.congestion_event && !r.in_recovery(), "{out:?}");
    assert!(r.reneging().deadline().is_some());
    let (t, kind) = r.next_timer().unwrap();
    let out = r.on_timeout(t, kind);
    assert!(out.rto && out.reneged, "{out:?}");
    assert_eq!(r.next_retransmission(false), Some((seg(3), MSS)));
    send(&mut r, clock, t.as_millis(), 3, true);
    // The ACK moving past the SACKed data was only late: it echoes the originals' TSval.
    let out = ack(&mut r, t.as_millis() + 5, 7, &[], clock.tsval(0));
    assert!(out.spurious_congestion_event && out.spurious_rto, "{out:?}");
    assert!(!r.in_recovery());
    assert_eq!(r.rtt().backoff(), 0);
    assert_eq!(r.scoreboard().lost_bytes(), 0, "segments 7..10 are not resent");
    assert_eq!(r.next_retransmission(true), None);
}

#[test]
fn a_reneging_repair_during_a_genuine_fast_recovery_is_not_undone() {
    let clock = Clock(Some(77));
    let mut r = flight(clock);
    // Segment 2 is lost (fast recovery), 3..10 SACKed; its retransmission fills the hole, but
    // the cumulative ACK stops at 3: reneging is suspected and repaired as a timeout.
    let out = ack(&mut r, 110, 2, &[(3, 10)], clock.tsval(0));
    assert!(out.congestion_event);
    send(&mut r, clock, 120, 2, true);
    ack(&mut r, 170, 3, &[(3, 10)], clock.tsval(120));
    let (t, kind) = r.next_timer().unwrap();
    let out = r.on_timeout(t, kind);
    assert!(out.rto && out.reneged, "{out:?}");
    send(&mut r, clock, t.as_millis(), 3, true);
    // The late ACK echoes the fast retransmission, the episode's first: that one was needed,
    // so the episode (whose window the controller saved before fast recovery) stands.
    let out = ack(&mut r, t.as_millis() + 5, 10, &[], clock.tsval(120));
    assert!(!out.spurious_congestion_event, "{out:?}");
}

#[test]
fn a_second_timeout_keeps_the_first_retransmission_as_the_reference() {
    let clock = Clock(Some(1_000));
    let mut r = flight(clock);
    let (first, _) = timeout_and_resend(&mut r, clock);
    let (second, out) = timeout_and_resend(&mut r, clock);
    assert!(out.rto && second > first);
    assert_eq!(r.rtt().backoff(), 2);
    let mut genuine = r.clone();
    // The first retransmission got through: the first timeout was needed, nothing is undone
    // (Linux compares with `retrans_stamp`, the episode's first retransmission, too).
    let out = ack(&mut genuine, second + 10, 4, &[], clock.tsval(first));
    assert!(!out.spurious_congestion_event, "{out:?}");
    assert!(genuine.in_recovery());
    // The originals got through: both timeouts were spurious, one undo covers the episode.
    let out = ack(&mut r, second + 10, 4, &[], clock.tsval(0));
    assert!(out.spurious_congestion_event && out.spurious_rto, "{out:?}");
    assert_eq!((r.rtt().backoff(), r.scoreboard().lost_bytes()), (0, 0));
    assert!(!r.in_recovery());
}

#[test]
fn d_sacks_must_cover_the_retransmissions_of_every_timeout_of_the_episode() {
    let clock = Clock(None);
    let mut r = flight(clock);
    timeout_and_resend(&mut r, clock);
    let (second, _) = timeout_and_resend(&mut r, clock);
    // Four retransmissions (2 and 3, twice); the originals and the first two are reported.
    let out = ack(&mut r, second + 10, 4, &[], None);
    assert!(!out.spurious_congestion_event);
    for (k, block) in [(2, 3), (3, 4), (2, 3)].into_iter().enumerate() {
        let out = ack(&mut r, second + 20 + k as u64, 4, &[block], None);
        assert!(!out.spurious_congestion_event, "D-SACK {k}: {out:?}");
    }
    let out = ack(&mut r, second + 30, 4, &[(3, 4)], None);
    assert!(out.spurious_rto, "{out:?}");
}

#[test]
fn a_forging_peer_gets_at_most_one_undo_per_timeout() {
    let clock = Clock(Some(3));
    let mut r = flight(clock);
    let (mut timeouts, mut undos) = (0u32, 0u32);
    for round in 0..40u64 {
        let (t, kind) = r.next_timer().expect("data is outstanding");
        let out = r.on_timeout(t, kind);
        timeouts += u32::from(out.rto);
        let ms = t.as_millis();
        let mut resent = Vec::new();
        while let (Some((s, _)), true) = (r.next_retransmission(false), resent.len() < 2) {
            let i = (s - ISS) as u32 / MSS;
            send(&mut r, clock, ms, i, true);
            resent.push(i);
        }
        // The liar never lets snd_una move; it D-SACKs each retransmission (first block inside
        // the second, RFC 2883) and echoes the oldest TSval, on several ACKs.
        for k in 0..3 {
            for &i in &resent {
                let out = ack(&mut r, ms + 1 + k, 2, &[(i, i + 1), (i, i + 1)], clock.tsval(0));
                undos += u32::from(out.spurious_rto);
                assert!(!out.ignored, "round {round}: {out:?}");
            }
        }
        assert_eq!(r.scoreboard().segments().len(), 8, "nothing grows");
        assert!(undos <= timeouts, "round {round}: {undos} undos for {timeouts} timeouts");
    }
    assert!(timeouts >= 10 && undos >= 1, "{timeouts} timeouts, {undos} undos");
}

/// [`flight`] without timestamps, F-RTO on (what the engine sets for a SACK peer without them).
fn frto_flight() -> LossRecovery {
    let mut r = flight(Clock(None));
    r.set_frto(true);
    r
}

#[test]
fn frto_undoes_when_a_segment_never_resent_is_acknowledged() {
    let mut r = frto_flight();
    let (rto_ms, _) = timeout_and_resend(&mut r, Clock(None));
    // The originals arrive: the ACK covers 2 and 3 (resent) and 4 (never resent).
    let out = ack(&mut r, rto_ms + 50, 5, &[], None);
    assert!(out.spurious_congestion_event && out.spurious_rto, "{out:?}");
    assert!(!r.in_recovery());
    assert_eq!((r.rtt().backoff(), r.scoreboard().lost_bytes()), (0, 0));
    assert_eq!(r.next_retransmission(true), None);
    // A SACK of an original would have done it too.
    let mut r = frto_flight();
    let (rto_ms, _) = timeout_and_resend(&mut r, Clock(None));
    let out = ack(&mut r, rto_ms + 50, 2, &[(6, 7)], None);
    assert!(out.spurious_rto, "{out:?}");
}

#[test]
fn frto_sees_no_original_when_only_retransmissions_arrive() {
    let mut r = frto_flight();
    let (rto_ms, _) = timeout_and_resend(&mut r, Clock(None));
    let out = ack(&mut r, rto_ms + 50, 4, &[], None);
    assert!(!out.spurious_congestion_event, "only resent segments acknowledged: {out:?}");
    assert!(r.in_recovery());
    // Switched off (a peer without SACK, or timestamps on): the originals prove nothing here.
    let mut r = flight(Clock(None));
    let (rto_ms, _) = timeout_and_resend(&mut r, Clock(None));
    let out = ack(&mut r, rto_ms + 50, 5, &[], None);
    assert!(!out.spurious_congestion_event, "{out:?}");
}

#[test]
fn frto_ends_once_new_data_meets_sacks() {
    let mut r = frto_flight();
    let (rto_ms, _) = timeout_and_resend(&mut r, Clock(None));
    // New data after the timeout (segment 10), SACKed above the hole: the loss is real
    // (RFC 5682 step 3a), the test is over for the episode.
    send(&mut r, Clock(None), rto_ms, 10, false);
    let out = ack(&mut r, rto_ms + 50, 2, &[(10, 11)], None);
    assert!(!out.spurious_congestion_event, "{out:?}");
    let out = ack(&mut r, rto_ms + 60, 6, &[(10, 11)], None);
    assert!(!out.spurious_congestion_event, "no F-RTO verdict after step 3a: {out:?}");
    assert!(r.in_recovery());
}

#[test]
fn frto_does_not_judge_a_reneging_repair_or_a_timeout_in_fast_recovery() {
    // A reneging repair clears SACK marks; the ACKs that follow cover segments never resent.
    let mut r = frto_flight();
    ack(&mut r, 105, 3, &[(3, 5)], None);
    let (t, kind) = r.next_timer().unwrap();
    assert!(r.on_timeout(t, kind).reneged);
    send(&mut r, Clock(None), t.as_millis(), 3, true);
    let out = ack(&mut r, t.as_millis() + 5, 7, &[], None);
    assert!(!out.spurious_congestion_event, "{out:?}");
    // A timeout during fast recovery (Linux: F-RTO only outside recovery).
    let mut r = frto_flight();
    assert!(ack(&mut r, 400, 2, &[(4, 10)], None).congestion_event);
    send(&mut r, Clock(None), 400, 2, true);
    let (t, kind) = r.next_timer().unwrap();
    assert!(r.on_timeout(t, kind).rto);
    send(&mut r, Clock(None), t.as_millis(), 2, true);
    // Segment 3 was never resent nor SACKed: the ACK covering it is no F-RTO verdict here.
    let out = ack(&mut r, t.as_millis() + 50, 4, &[], None);
    assert!(!out.spurious_congestion_event, "{out:?}");
}

#[test]
fn frto_step_2b_sends_new_data_before_more_retransmissions() {
    let mut r = frto_flight();
    let (rto_ms, _) = timeout_and_resend(&mut r, Clock(None));
    assert_eq!(r.next_retransmission(true), Some((seg(4), MSS)), "before any ACK: RTO recovery");
    // The first ACK after the timeout advances SND.UNA over the resent 2 only (step 2b).
    let out = ack(&mut r, rto_ms + 50, 3, &[], None);
    assert!(!out.spurious_congestion_event && r.in_recovery(), "{out:?}");
    assert_eq!(r.next_retransmission(true), None, "new data goes first");
    assert_eq!(r.next_retransmission(false), Some((seg(4), MSS)), "without new data: resend");
    send(&mut r, Clock(None), rto_ms + 50, 10, false);
    send(&mut r, Clock(None), rto_ms + 50, 11, false);
    assert_eq!(r.next_retransmission(true), None, "no retransmission until the next ACK");
    // Step 3a: the next ACK SACKs the new segments above the hole: the loss was real, and
    // conventional recovery goes on.
    let out = ack(&mut r, rto_ms + 100, 4, &[(10, 12)], None);
    assert!(!out.spurious_congestion_event, "{out:?}");
    assert_eq!(r.next_retransmission(true), Some((seg(4), MSS)));
    // Without F-RTO the same ACK sequence resends at once.
    let mut r = flight(Clock(None));
    let (rto_ms, _) = timeout_and_resend(&mut r, Clock(None));
    ack(&mut r, rto_ms + 50, 3, &[], None);
    assert_eq!(r.next_retransmission(true), Some((seg(4), MSS)));
}

#[test]
fn frto_step_2b_then_the_originals_prove_the_timeout_spurious() {
    let mut r = frto_flight();
    let (rto_ms, _) = timeout_and_resend(&mut r, Clock(None));
    ack(&mut r, rto_ms + 50, 3, &[], None);
    send(&mut r, Clock(None), rto_ms + 50, 10, false);
    send(&mut r, Clock(None), rto_ms + 50, 11, false);
    // Step 3b: the next ACK covers 4 and 5, never resent.
    let out = ack(&mut r, rto_ms + 60, 6, &[], None);
    assert!(out.spurious_congestion_event && out.spurious_rto, "{out:?}");
    assert_eq!(r.next_retransmission(true), None, "the sender goes on with new data");
}
