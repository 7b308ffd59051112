//! Crafted-segment tests for a peer with a small receive buffer (RFC 9293 §3.8.6.2.1 sender
//! silly-window avoidance, §3.10.7.4 send-window update): a window-only update (same ACK number,
//! larger window) releases data at once and is not taken for a duplicate ACK; a tail below the
//! MSS and below half the largest window offered waits only for the next ACK; a window smaller
//! than one MSS is used whole when nothing is in flight.

mod support;
use support::*;

const MSS: u32 = 1460;

fn payload_len(s: &Seg) -> u32 {
    s.payload.len() as u32
}

#[test]
fn window_only_update_releases_data_at_once() {
    let mut h = Harness::new();
    let c = h.active_open();
    // Linux with SO_RCVBUF 4096 offers about two segments.
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq, win = 2920u16);
    h.engine.write(h.now, c.handle, &vec![7u8; 20 * MSS as usize]).unwrap();
    let a = recv!(h, ACK, seq = c.our_seq);
    let b = recv!(h, ACK, seq = c.our_seq + MSS);
    assert_eq!((payload_len(&a), payload_len(&b)), (MSS, MSS));
    h.recv_nothing();
    // Everything acknowledged, but the reader has not drained the buffer: window 0.
    let una = c.our_seq + 2 * MSS;
    send!(h, ACK, seq = c.peer_seq, ack = una, win = 0u16);
    h.recv_nothing();
    // The application reads: a pure window update, same ACK number, window reopened. It must
    // release a full window now, not after a persist timeout or a duplicate-ACK reaction.
    send!(h, ACK, seq = c.peer_seq, ack = una, win = 2920u16);
    let a = recv!(h, ACK, seq = una);
    let b = recv!(h, ACK, seq = una + MSS);
    assert_eq!((payload_len(&a), payload_len(&b)), (MSS, MSS));
    h.recv_nothing();
    let stats = h.engine.stats();
    assert_eq!((stats.retrans_segs, stats.window_probes), (0, 0), "{stats:?}");
    // Three more window-only updates growing the window by one segment each: one new
    // segment each, never a retransmission (they are not duplicate ACKs: the window changed).
    let una2 = una + 2 * MSS;
    send!(h, ACK, seq = c.peer_seq, ack = una2, win = 0u16);
    for k in 1..=2u32 {
        send!(h, ACK, seq = c.peer_seq, ack = una2, win = (k * MSS) as u16);
        recv!(h, ACK, seq = una2 + (k - 1) * MSS, payload = vec![7u8; MSS as usize]);
        h.recv_nothing();
    }
    assert_eq!(h.engine.stats().retrans_segs, 0);
}

#[test]
fn sub_mss_tail_waits_for_the_ack_not_a_timer() {
    let mut h = Harness::new();
    let c = h.active_open();
    // The handshake offered 65535, so half the largest window is far above anything here.
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq, win = 4096u16);
    h.engine.write(h.now, c.handle, &vec![1u8; 10 * MSS as usize]).unwrap();
    recv!(h, ACK, seq = c.our_seq, payload = vec![1u8; MSS as usize]);
    recv!(h, ACK, seq = c.our_seq + MSS, payload = vec![1u8; MSS as usize]);
    // 1176 bytes of window left: below the MSS and below half of 65535 with data in flight.
    h.recv_nothing();
    // The ACK of both segments (window 4096 again) releases the next two full segments.
    let una = c.our_seq + 2 * MSS;
    send!(h, ACK, seq = c.peer_seq, ack = una, win = 4096u16);
    recv!(h, ACK, seq = una, payload = vec![1u8; MSS as usize]);
    recv!(h, ACK, seq = una + MSS, payload = vec![1u8; MSS as usize]);
    h.recv_nothing();
}

#[test]
fn window_below_one_mss_is_used_whole_when_idle() {
    let mut h = Harness::new();
    let c = h.active_open();
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq, win = 1000u16);
    h.engine.write(h.now, c.handle, &vec![3u8; 5000]).unwrap();
    // Nothing in flight and the window is what limits: send it (else nothing would ever go).
    recv!(h, ACK, seq = c.our_seq, payload = vec![3u8; 1000]);
    h.recv_nothing();
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq + 1000, win = 1000u16);
    recv!(h, ACK, seq = c.our_seq + 1000, payload = vec![3u8; 1000]);
}
