//! Spurious fast retransmissions found by the Eifel test ([`super::spurious_recovery`]): the
//! late original, a genuine loss, partial ACKs, loss marks still pending, absent or zero
//! echoes, TSval wrap-around, forged echoes and what RACK learns.

use super::test_support::{ack_segments as ack, send_segment, ISS, MSS};
use super::*;

/// The sender's TSval at `ms`: `base + ms`, wrapping.
fn tsval(base: u32, ms: u64) -> u32 {
    base.wrapping_add(ms as u32)
}

fn send(r: &mut LossRecovery, base: u32, ms: u64, i: u32, is_retransmit: bool) {
    send_segment(r, ms, i, is_retransmit, Some(tsval(base, ms)));
}

/// Ten segments sent at t=0, the first two acknowledged at t=100; then SACKs for `sacked` at
/// t=400 make RACK mark the holes below them lost (a fast-recovery episode), and the first
/// `resend` holes are retransmitted at t=400.
fn recovery(base: u32, sacked: (u32, u32), resend: usize) -> LossRecovery {
    let config = RecoveryConfig { smss: MSS, tlp: false, ..RecoveryConfig::default() };
    let mut r = LossRecovery::new(config, ISS);
    for i in 0..10 {
        send(&mut r, base, 0, i, false);
    }
    assert_eq!(ack(&mut r, 100, 2, &[], Some(tsval(base, 0))).newly_acked, 2 * MSS);
    let out = ack(&mut r, 400, 2, &[sacked], Some(tsval(base, 0)));
    assert!(out.congestion_event && r.in_recovery(), "{out:?}");
    assert!(!r.rack().reordering_seen());
    for _ in 0..resend {
        let (s, _) = r.next_retransmission(false).expect("a lost segment");
        send(&mut r, base, 400, (s - ISS) as u32 / MSS, true);
    }
    r
}

#[test]
fn the_late_original_undoes_fast_recovery_and_teaches_rack_reordering() {
    let base = 5_000;
    let mut r = recovery(base, (3, 10), 1);
    let mult = r.rack().reo_wnd_mult();
    // The original of segment 2 fills the hole: the ACK echoes its TSval (sent at t=0). The
    // peer's cumulative ACK stops at 6 (it acknowledges 6..10 later).
    let out = ack(&mut r, 420, 6, &[(6, 10)], Some(tsval(base, 0)));
    assert!(out.spurious_congestion_event && !out.spurious_rto, "{out:?}");
    assert!(!out.recovery_exited, "an undone episode is not also exited: {out:?}");
    assert!(!r.in_recovery());
    assert!(r.rack().reordering_seen(), "RACK learns the reordering");
    assert_eq!(r.rack().reo_wnd_mult(), mult, "the window grows on D-SACKs only");
    // The D-SACK for the needless retransmission: one step, no second undo.
    let out = ack(&mut r, 450, 6, &[(2, 3), (6, 10)], Some(tsval(base, 400)));
    assert!(!out.spurious_congestion_event, "one undo per episode: {out:?}");
    assert_eq!(r.rack().reo_wnd_mult(), mult + 1, "the D-SACK's step");
}

#[test]
fn a_partial_ack_stopping_short_of_the_retransmission_waits() {
    let base = 5_000;
    let mut r = recovery(base, (3, 10), 1);
    // An ACK at `snd_una` with a new SACK moves nothing: no Eifel test at all.
    let out = ack(&mut r, 410, 2, &[(3, 10)], Some(tsval(base, 0)));
    assert!(!out.spurious_congestion_event);
    // Two holes (2 and 3), both resent: the ACK that fills only 2 with the original's echo
    // proves nothing about 3's retransmission, still outstanding.
    let mut r = recovery(base, (4, 10), 2);
    assert_eq!(r.scoreboard().retrans_bytes(), 2 * MSS);
    let out = ack(&mut r, 410, 3, &[(4, 10)], Some(tsval(base, 0)));
    assert!(!out.spurious_congestion_event && r.in_recovery(), "{out:?}");
    // The original of 3 then arrives too: every retransmission acknowledged, echo still old.
    let out = ack(&mut r, 420, 10, &[], Some(tsval(base, 0)));
    assert!(out.spurious_congestion_event && !out.recovery_exited, "a later ACK decides: {out:?}");
}

#[test]
fn a_segment_still_marked_lost_blocks_the_undo() {
    let base = 5_000;
    // Holes 2 and 3, only 2 resent (the window allowed one): 3 is lost and pending.
    let mut r = recovery(base, (4, 10), 1);
    assert_eq!(r.scoreboard().lost_pending_segments(), 1);
    let out = ack(&mut r, 410, 3, &[(4, 10)], Some(tsval(base, 0)));
    assert!(!out.spurious_congestion_event && r.in_recovery(), "{out:?}");
}

#[test]
fn an_echo_of_the_retransmission_is_a_genuine_loss() {
    let base = 5_000;
    let mut r = recovery(base, (3, 10), 1);
    let out = ack(&mut r, 450, 10, &[], Some(tsval(base, 400)));
    assert!(!out.spurious_congestion_event, "{out:?}");
    assert!(out.recovery_exited && !r.rack().reordering_seen());
}

#[test]
fn no_echo_or_a_zero_echo_is_no_evidence() {
    let base = 5_000;
    for tsecr in [None, Some(0)] {
        let mut r = recovery(base, (3, 10), 1);
        let out = ack(&mut r, 420, 10, &[], tsecr);
        assert!(!out.spurious_congestion_event, "{tsecr:?}: {out:?}");
        assert!(out.recovery_exited);
    }
}

#[test]
fn timestamps_across_the_wrap_still_tell_the_original_from_the_retransmission() {
    // Originals at TSval 2^32 − 40; the retransmission at t=400 has wrapped to 360.
    let base = u32::MAX - 39;
    assert!(tsval(base, 400) < tsval(base, 0));
    let mut r = recovery(base, (3, 10), 1);
    let out = ack(&mut r, 420, 10, &[], Some(tsval(base, 0)));
    assert!(out.spurious_congestion_event, "the original's echo, before the wrap: {out:?}");
    let mut r = recovery(base, (3, 10), 1);
    let out = ack(&mut r, 420, 10, &[], Some(tsval(base, 400)));
    assert!(!out.spurious_congestion_event, "the retransmission's echo, after the wrap: {out:?}");
}

#[test]
fn a_forging_peer_gets_at_most_one_undo_per_episode() {
    let base = 5_000;
    let mut r = recovery(base, (3, 10), 1);
    let out = ack(&mut r, 410, 10, &[], Some(tsval(base, 0)));
    assert!(out.spurious_congestion_event);
    for i in 10..14 {
        send(&mut r, base, 420, i, false);
    }
    for (ms, to) in [(430, 11), (440, 12)] {
        let out = ack(&mut r, ms, to, &[], Some(tsval(base, 0)));
        assert!(!out.spurious_congestion_event, "no episode, no undo: {out:?}");
    }
}

#[test]
fn a_rescue_retransmission_still_out_blocks_the_undo() {
    let base = 5_000;
    // Hole 2 lost and resent; 9, never SACKed and not lost, goes out as the RFC 6675 rule-4
    // rescue retransmission.
    let mut r = recovery(base, (3, 9), 2);
    assert_eq!(r.scoreboard().lost_bytes(), MSS, "only 2 is lost");
    assert_eq!(r.scoreboard().retrans_bytes(), 2 * MSS, "2 and 9 are resent");
    // The original of 2 arrives: nothing is marked lost any more, but 9's copy is out.
    let out = ack(&mut r, 410, 9, &[], Some(tsval(base, 0)));
    assert_eq!(r.scoreboard().lost_bytes(), 0);
    assert!(!out.spurious_congestion_event && r.in_recovery(), "{out:?}");
    let out = ack(&mut r, 420, 10, &[], Some(tsval(base, 0)));
    assert!(out.spurious_congestion_event && !out.recovery_exited, "{out:?}");
}
