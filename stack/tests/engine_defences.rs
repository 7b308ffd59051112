//! Crafted-segment tests: RFC 5961 (blind RST/SYN/data injection) and the acceptability rules
//! of RFC 9293 §3.10.7.4, plus hostile frames.

mod support;
use linerate_stack::tcp::State;
use linerate_stack::time::Duration;
use support::*;

#[test]
fn exact_rst_resets() {
    let mut h = Harness::new();
    let c = h.active_open();
    send!(h, RST, seq = c.peer_seq);
    assert_eq!(h.engine.state(c.handle).unwrap(), State::Closed);
}

#[test]
fn in_window_rst_gets_a_challenge_ack() {
    let mut h = Harness::new();
    let c = h.active_open();
    send!(h, RST, seq = c.peer_seq + 100);
    assert_eq!(h.engine.state(c.handle).unwrap(), State::Established);
    recv!(h, ACK, seq = c.our_seq, ack = c.peer_seq);
    assert_eq!(h.engine.stats().challenge_acks, 1);
}

#[test]
fn out_of_window_rst_is_ignored() {
    let mut h = Harness::new();
    let c = h.active_open();
    send!(h, RST, seq = c.peer_seq.wrapping_add(10_000_000));
    send!(h, RST, seq = c.peer_seq.wrapping_sub(1));
    assert_eq!(h.engine.state(c.handle).unwrap(), State::Established);
    h.recv_nothing();
}

#[test]
fn syn_in_established_gets_a_challenge_ack() {
    let mut h = Harness::new();
    let c = h.active_open();
    send!(h, SYN, seq = c.peer_seq + 5);
    recv!(h, ACK, seq = c.our_seq, ack = c.peer_seq);
    assert_eq!(h.engine.state(c.handle).unwrap(), State::Established);
    // Even an out-of-window SYN only draws an ACK.
    send!(h, SYN, seq = c.peer_seq.wrapping_add(1 << 30));
    recv!(h, ACK, ack = c.peer_seq);
    assert_eq!(h.engine.state(c.handle).unwrap(), State::Established);
}

#[test]
fn challenge_acks_are_rate_limited() {
    let mut cfg = test_config();
    cfg.tcp.challenge_ack_limit = 2;
    let mut h = Harness::with_config(cfg);
    let c = h.active_open();
    for i in 0..5 {
        send!(h, RST, seq = c.peer_seq + 10 + i);
        let _ = h.recv();
    }
    assert_eq!(h.engine.stats().challenge_acks, 2);
    assert_eq!(h.engine.stats().challenge_acks_limited, 3);
    h.advance(Duration::from_secs(1));
    send!(h, RST, seq = c.peer_seq + 10);
    recv!(h, ACK);
}

#[test]
fn ack_of_unsent_data_is_dropped_with_an_ack() {
    let mut h = Harness::new();
    let c = h.active_open();
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq + 1000, payload = b"data".to_vec());
    recv!(h, ACK, seq = c.our_seq, ack = c.peer_seq);
    assert_eq!(h.engine.readable_len(c.handle).unwrap(), 0, "segment dropped, data not accepted");
    assert_eq!(h.engine.stats().bad_acks, 1);
}

#[test]
fn ack_too_old_is_dropped_with_an_ack() {
    let mut h = Harness::new();
    let c = h.active_open();
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq.wrapping_sub(1 << 20));
    recv!(h, ACK, ack = c.peer_seq);
}

#[test]
fn out_of_window_data_is_acked_not_accepted() {
    let mut h = Harness::new();
    let c = h.active_open();
    send!(h, ACK, seq = c.peer_seq + 1_000_000, ack = c.our_seq, payload = b"far".to_vec());
    recv!(h, ACK, ack = c.peer_seq);
    assert_eq!(h.engine.stats().out_of_window, 1);
}

#[test]
fn segment_without_ack_in_established_is_dropped() {
    let mut h = Harness::new();
    let c = h.active_open();
    send!(h, NONE, seq = c.peer_seq, payload = b"noack".to_vec());
    h.recv_nothing();
    assert_eq!(h.engine.readable_len(c.handle).unwrap(), 0);
}

#[test]
fn bad_checksum_is_counted_and_dropped() {
    let mut h = Harness::new();
    let c = h.active_open();
    let seg = Seg {
        flags: ACK,
        seq: c.peer_seq,
        ack: c.our_seq,
        win: 1000,
        payload: b"x".to_vec(),
        ..Seg::default()
    };
    let mut f = tcp_frame(&seg, (PEER_IP, 40000), (OUR_IP, 80), PEER_MAC, OUR_MAC);
    let n = f.len();
    f[n - 1] ^= 0xff;
    h.send_frame(f);
    assert_eq!(h.engine.stats().in_csum_errors, 1);
    assert_eq!(h.engine.readable_len(c.handle).unwrap(), 0);
}

#[test]
fn garbage_frames_never_panic_and_never_allocate_state() {
    let mut h = Harness::new();
    let c = h.active_open();
    let template = tcp_frame(
        &Seg {
            flags: ACK,
            seq: c.peer_seq,
            ack: c.our_seq,
            win: 1000,
            payload: b"abc".to_vec(),
            ..Seg::default()
        },
        (PEER_IP, 40000),
        (OUR_IP, 80),
        PEER_MAC,
        OUR_MAC,
    );
    let mut x: u64 = 0x1234_5678;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut f = template.clone();
        let flips = (x % 4) as usize + 1;
        for k in 0..flips {
            let pos = ((x >> (8 * k)) as usize) % f.len();
            f[pos] = (x >> (16 + k)) as u8;
        }
        f.truncate(((x >> 40) as usize % (f.len() + 1)).max(1));
        h.send_frame(f);
        while h.recv().is_some() {}
    }
    assert!(h.engine.connection_count() <= 1);
}
