//! Loss recovery with a peer that does not negotiate SACK. The sender then guesses SACK marks
//! from duplicate ACKs (one more segment above the hole per duplicate), and those guesses can be
//! wrong: a duplicated or reordered frame also makes a duplicate ACK. Regression tests for a
//! sender that kept a wrong guess on the segment at SND.UNA and, on every RTO, resent the segment
//! after it while the receiver kept asking for SND.UNA (RFC 6298 §5.4: "retransmit the earliest
//! segment that has not been acknowledged").

mod support;
use support::*;

const MSS: u32 = 1460;

fn seg_start(c: &Conn, i: u32) -> u32 {
    c.our_seq + i * MSS
}

/// Active open without SACK (the harness's peer offers none) and ten segments on the wire.
fn open_with_flight(h: &mut Harness) -> Conn {
    let c = h.active_open();
    h.engine.write(h.now, c.handle, &vec![7u8; (10 * MSS) as usize]).unwrap();
    let sent: Vec<Seg> = std::iter::from_fn(|| h.recv()).collect();
    assert_eq!(sent.len(), 10, "IW10");
    assert!(!h.engine.info(h.now, c.handle).unwrap().sack, "the peer offered no SACK");
    c
}

/// A pure ACK from the peer with the same window: a duplicate ACK when `ack` is SND.UNA.
fn ack(h: &mut Harness, c: &Conn, ack: u32) {
    send!(h, ACK, seq = c.peer_seq, ack = ack);
}

/// Fires timers until the engine sends a segment; returns it.
fn next_after_timeout(h: &mut Harness) -> Seg {
    for _ in 0..8 {
        h.advance_to_timeout();
        if let Some(s) = h.recv() {
            return s;
        }
    }
    panic!("nothing sent after eight timeouts");
}

/// Fires timers until the engine sends; returns the starts of everything it sent then.
fn rto_burst(h: &mut Harness) -> Vec<u32> {
    let first = next_after_timeout(h);
    std::iter::once(first).chain(std::iter::from_fn(|| h.recv())).map(|s| s.seq).collect()
}

/// Segments resent in sequence order, none skipped.
fn assert_go_back_n(starts: &[u32]) {
    for pair in starts.windows(2) {
        assert_eq!(pair[1], pair[0] + MSS, "resent out of order or with a gap: {starts:?}");
    }
}

#[test]
fn after_a_partial_ack_the_rto_resends_snd_una_not_the_guessed_segment_after_it() {
    let mut h = Harness::new();
    let c = open_with_flight(&mut h);
    // One duplicate ACK: the emulation guesses segment 1 arrived. It did not.
    ack(&mut h, &c, seg_start(&c, 0));
    assert_eq!(h.engine.info(h.now, c.handle).unwrap().sacked, 1);
    let burst = rto_burst(&mut h);
    assert_eq!(burst[0], seg_start(&c, 0), "the RTO resends SND.UNA");
    assert_go_back_n(&burst);
    // Segment 0 arrives; the receiver still misses segment 1.
    ack(&mut h, &c, seg_start(&c, 1));
    let next: Vec<u32> = std::iter::from_fn(|| h.recv()).map(|s| s.seq).collect();
    assert_eq!(next.first(), Some(&seg_start(&c, 1)), "NewReno resends the new SND.UNA (RFC 6582 §3.2)");
    // All of that is lost too: each timeout resends SND.UNA first.
    for round in 0..3 {
        let burst = rto_burst(&mut h);
        assert_eq!(burst[0], seg_start(&c, 1), "RTO {round} resends SND.UNA");
        assert_go_back_n(&burst);
    }
    // The transfer completes.
    ack(&mut h, &c, seg_start(&c, 10));
    let info = h.engine.info(h.now, c.handle).unwrap();
    assert_eq!((info.unacked, info.sacked, info.lost, info.backoff), (0, 0, 0, 0), "{info:?}");
    assert_eq!(h.engine.next_timeout(), None, "nothing outstanding, no timer");
}

#[test]
fn an_rto_forgets_every_guessed_sack_mark() {
    let mut h = Harness::new();
    let c = open_with_flight(&mut h);
    // Two duplicate ACKs (below DupThresh): segments 1 and 2 are guessed to have arrived.
    ack(&mut h, &c, seg_start(&c, 0));
    ack(&mut h, &c, seg_start(&c, 0));
    let info = h.engine.info(h.now, c.handle).unwrap();
    assert_eq!((info.sacked, info.in_recovery), (2, false), "{info:?}");
    let burst = rto_burst(&mut h);
    assert_eq!(burst[0], seg_start(&c, 0));
    assert_go_back_n(&burst);
    // Without SACK the receiver told nothing above SND.UNA: everything is lost, nothing SACKed.
    let info = h.engine.info(h.now, c.handle).unwrap();
    assert_eq!(info.sacked, 0, "{info:?}");
    assert_eq!(info.lost, 10 * MSS, "{info:?}");
    // Go-back-N from SND.UNA: 1 and 2 come right after 0, in order.
    ack(&mut h, &c, seg_start(&c, 1));
    let resent: Vec<u32> = std::iter::from_fn(|| h.recv()).map(|s| s.seq).collect();
    assert_eq!(resent.first(), Some(&seg_start(&c, 1)), "{resent:?}");
    ack(&mut h, &c, seg_start(&c, 2));
    let resent: Vec<u32> = std::iter::from_fn(|| h.recv()).map(|s| s.seq).collect();
    assert!(resent.contains(&seg_start(&c, 2)), "{resent:?}");
}

#[test]
fn a_cumulative_ack_stopping_at_a_guessed_segment_takes_the_guess_back() {
    let mut h = Harness::new();
    let c = open_with_flight(&mut h);
    // One duplicate ACK guesses segment 1; then segment 0 arrives late (reordering) and the
    // cumulative ACK stops at segment 1: it did not arrive.
    ack(&mut h, &c, seg_start(&c, 0));
    ack(&mut h, &c, seg_start(&c, 1));
    let info = h.engine.info(h.now, c.handle).unwrap();
    assert_eq!((info.sacked, info.in_recovery), (0, false), "{info:?}");
    std::iter::from_fn(|| h.recv()).for_each(drop);
    // Three duplicate ACKs for segment 1: fast retransmit of segment 1 (RFC 5681 §3.2).
    for _ in 0..3 {
        ack(&mut h, &c, seg_start(&c, 1));
    }
    let rtx: Vec<u32> = std::iter::from_fn(|| h.recv()).map(|s| s.seq).collect();
    assert_eq!(rtx.first(), Some(&seg_start(&c, 1)), "fast retransmit of SND.UNA: {rtx:?}");
    assert!(h.engine.info(h.now, c.handle).unwrap().in_recovery);
}
