//! The fused receive path (engine/receive.rs `verify_into_ring`): the TCP checksum of in-order
//! data is verified while the payload is copied into the receive ring. A segment that fails
//! must be dropped and counted, and nothing of it may become readable.

mod support;
use support::*;

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn corrupt(seg: &Seg, at_from_end: usize) -> Vec<u8> {
    let mut f = tcp_frame(seg, (PEER_IP, 40000), (OUR_IP, 80), PEER_MAC, OUR_MAC);
    let n = f.len();
    f[n - at_from_end] ^= 0x5a;
    f
}

fn read_all(h: &mut Harness, c: &Conn) -> Vec<u8> {
    let mut out = vec![0u8; 1 << 16];
    let n = h.engine.read(h.now, c.handle, &mut out).unwrap();
    out.truncate(n);
    out
}

#[test]
fn bad_checksum_on_in_order_data_is_dropped_counted_and_never_readable() {
    let mut h = Harness::new();
    let c = h.active_open();
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq, payload = b"hello".to_vec());
    assert_eq!(h.engine.readable_len(c.handle).unwrap(), 5);
    let (csum_before, errs_before) = (h.engine.stats().in_csum_errors, h.engine.stats().in_errs);
    let bad = Seg {
        flags: ACK,
        seq: c.peer_seq + 5,
        ack: c.our_seq,
        win: 1000,
        payload: pattern(1, 1448),
        ..Seg::default()
    };
    h.send_frame(corrupt(&bad, 700));
    assert_eq!(h.engine.stats().in_csum_errors, csum_before + 1);
    assert_eq!(h.engine.stats().in_errs, errs_before + 1);
    assert_eq!(h.engine.readable_len(c.handle).unwrap(), 5, "nothing of the bad segment is readable");
    // The peer retransmits different bytes at the same sequence number: those are what arrive.
    let good = Seg { payload: pattern(2, 1448), ..bad };
    h.send(&good);
    let got = read_all(&mut h, &c);
    assert_eq!(&got[..5], b"hello");
    assert_eq!(&got[5..], &pattern(2, 1448)[..]);
}

#[test]
fn a_staged_segment_that_input_rejects_is_not_committed() {
    let mut h = Harness::new();
    let c = h.active_open();
    // Good checksum, so it is staged, but without ACK it is dropped by the input rules.
    send!(h, NONE, seq = c.peer_seq, payload = pattern(3, 1000));
    assert_eq!(h.engine.readable_len(c.handle).unwrap(), 0);
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq, payload = pattern(4, 1000));
    assert_eq!(read_all(&mut h, &c), pattern(4, 1000));
}

#[test]
fn bad_checksum_leaves_held_out_of_order_data_intact() {
    let mut h = Harness::new();
    let c = h.active_open();
    send!(h, ACK, seq = c.peer_seq + 100, ack = c.our_seq, payload = pattern(5, 200));
    let bad = Seg {
        flags: ACK,
        seq: c.peer_seq,
        ack: c.our_seq,
        win: 1000,
        payload: pattern(6, 300),
        ..Seg::default()
    };
    let csum_before = h.engine.stats().in_csum_errors;
    h.send_frame(corrupt(&bad, 1));
    assert_eq!(h.engine.stats().in_csum_errors, csum_before + 1);
    assert_eq!(h.engine.readable_len(c.handle).unwrap(), 0);
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq, payload = pattern(7, 100));
    let got = read_all(&mut h, &c);
    assert_eq!(got.len(), 300);
    assert_eq!(&got[..100], &pattern(7, 100)[..]);
    assert_eq!(&got[100..], &pattern(5, 200)[..]);
}

#[test]
fn many_in_order_segments_with_every_other_one_corrupted_deliver_exactly_the_good_bytes() {
    let mut h = Harness::new();
    let c = h.active_open();
    let mut expected = Vec::new();
    let mut seq = c.peer_seq;
    let mut delivered = Vec::new();
    for i in 0..200u32 {
        let len = 1 + (i as usize * 97) % 1448;
        let seg = Seg {
            flags: ACK,
            seq,
            ack: c.our_seq,
            win: 1000,
            payload: pattern(i as u8, len),
            ..Seg::default()
        };
        // Corrupt a different byte each time (header, payload start, payload end).
        h.send_frame(corrupt(&seg, 1 + (i as usize * 13) % (len + 20)));
        h.send(&seg);
        expected.extend_from_slice(&seg.payload);
        seq += len as u32;
        if i % 7 == 0 {
            delivered.extend(read_all(&mut h, &c));
        }
    }
    delivered.extend(read_all(&mut h, &c));
    assert_eq!(h.engine.stats().in_csum_errors, 200);
    assert_eq!(delivered, expected);
}
