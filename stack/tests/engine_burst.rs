//! The burst transmit path (engine/transmit.rs, GSO-like): consecutive data segments of one
//! connection in one `poll_transmit` reuse the previous header (`Connection::header_after`) and
//! copy the frame headers from a template with SEQ, flags and the IPv4 identification patched.
//! Its frames must be byte-for-byte the ones the per-segment path builds. The per-segment path
//! is forced by a device that takes one frame per poll (every frame is then the first of its
//! poll), at the same virtual time; the only field allowed to differ is the IPv4
//! identification (a refused frame consumes one), so it and the IPv4 header checksum are
//! compared after normalising, and both checksums are verified on every frame.

mod support;
use proptest::prelude::*;
use support::*;

/// What the peer does before the application writes.
#[derive(Clone, Copy, Debug)]
struct Case {
    timestamps: bool,
    sack: bool,
    peer_mss: u16,
    peer_window: u16,
    written: usize,
    /// The peer sends data above a hole first, so our segments carry SACK blocks.
    out_of_order: bool,
    /// The peer repeats a segment we already have, so our next segment carries a D-SACK.
    duplicate: bool,
    /// Our FIN follows the data.
    close: bool,
}

fn harness(case: &Case) -> (Harness, Conn) {
    let mut cfg = test_config();
    cfg.tcp.timestamps = case.timestamps;
    cfg.tcp.sack = case.sack;
    let mut h = Harness::with_config(cfg);
    let l = h.engine.listen(h.local_port, 16, None).expect("listen");
    let ts = case.timestamps.then_some((7u32, 0u32));
    send!(
        h,
        SYN,
        seq = PEER_ISS,
        win = case.peer_window,
        mss = Some(case.peer_mss),
        sack_perm = case.sack,
        ts = ts
    );
    let synack = recv!(h, SYN | ACK, ack = PEER_ISS + 1);
    let echo = synack.ts.map(|(tsval, _)| (8u32, tsval));
    send!(h, ACK, seq = PEER_ISS + 1, ack = synack.seq + 1, win = case.peer_window, ts = echo);
    let handle = h.engine.accept(l).expect("listener").expect("accepted");
    let c = Conn { handle, our_seq: synack.seq + 1, peer_seq: PEER_ISS + 1 };
    let ack = c.our_seq;
    if case.duplicate {
        for _ in 0..2 {
            send!(
                h,
                ACK,
                seq = c.peer_seq,
                ack = ack,
                win = case.peer_window,
                ts = echo,
                payload = vec![1u8; 10]
            );
        }
    }
    if case.out_of_order {
        let seq = c.peer_seq + 10 + 100;
        send!(h, ACK, seq = seq, ack = ack, win = case.peer_window, ts = echo, payload = vec![2u8; 50]);
    }
    (h, c)
}

/// Every frame the engine sends after the application writes, polled either once (bursts) or
/// one frame per poll (the per-segment path).
fn frames(case: &Case, one_per_poll: bool) -> Vec<Vec<u8>> {
    let (mut h, c) = harness(case);
    let data: Vec<u8> = (0..case.written).map(|i| (i as u8).wrapping_mul(13)).collect();
    let n = h.engine.write(h.now, c.handle, &data).expect("write");
    assert!(n > 0);
    if case.close {
        h.engine.close(h.now, c.handle).expect("close");
    }
    if one_per_poll {
        loop {
            h.dev.tx_room = Some(1);
            if h.engine.poll_transmit(h.now, &mut h.dev) == 0 {
                break;
            }
        }
    } else {
        h.engine.poll_transmit(h.now, &mut h.dev);
    }
    h.dev.tx.drain(..).collect()
}

/// The frame with the IPv4 identification and header checksum zeroed, after checking both
/// checksums.
fn normalised(frame: &[u8]) -> Vec<u8> {
    assert!(parse_tcp(frame).is_some(), "not a valid TCP frame");
    let mut f = frame.to_vec();
    f[18..20].fill(0);
    f[24..26].fill(0);
    f
}

fn check(case: &Case) -> Result<(), TestCaseError> {
    let burst = frames(case, false);
    let single = frames(case, true);
    prop_assert!(!burst.is_empty());
    prop_assert_eq!(burst.len(), single.len(), "frame counts differ for {:?}", case);
    for (i, (a, b)) in burst.iter().zip(&single).enumerate() {
        prop_assert_eq!(normalised(a), normalised(b), "frame {} differs for {:?}", i, case);
    }
    // The identification still counts up by one per frame within the burst.
    for pair in burst.windows(2) {
        let id = |f: &[u8]| u16::from_be_bytes([f[18], f[19]]);
        prop_assert_eq!(id(&pair[1]), id(&pair[0]).wrapping_add(1));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn bursts_are_byte_identical_to_per_segment_frames(
        timestamps in any::<bool>(),
        sack in any::<bool>(),
        peer_mss in prop_oneof![Just(1460u16), 536u16..1460],
        peer_window in prop_oneof![Just(65535u16), 1000u16..65535],
        written in 1usize..30_000,
        whole_segments in prop_oneof![Just(None), (1usize..12).prop_map(Some)],
        out_of_order in any::<bool>(),
        duplicate in any::<bool>(),
        close in any::<bool>(),
    ) {
        // Often a whole number of full-size segments, so the last one of a burst (PSH, FIN)
        // is full-size too and its flags differ from the burst's first.
        let mss = usize::from(peer_mss.min(1460)) - if timestamps { 12 } else { 0 };
        let written = whole_segments.map_or(written, |n| n * mss);
        check(&Case { timestamps, sack, peer_mss, peer_window, written, out_of_order, duplicate, close })?;
    }
}

#[test]
fn a_full_window_of_segments_goes_out_in_one_poll() {
    let case = Case {
        timestamps: true,
        sack: true,
        peer_mss: 1460,
        peer_window: 65535,
        written: 20_000,
        out_of_order: false,
        duplicate: false,
        close: false,
    };
    let burst = frames(&case, false);
    // The initial window (10 segments) in one burst, every one full-size but the last.
    assert_eq!(burst.len(), 10);
    check(&case).unwrap();
}
