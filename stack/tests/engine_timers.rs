//! Crafted-segment tests: retransmission (RFC 6298) after the tail loss probe (RFC 8985 §7),
//! fast retransmit for a peer without SACK (RFC 5681, 6582 partial ACKs), persist (RFC 9293 §3.8.6.1), keepalive (§3.8.4), R2 and the user timeout (§3.8.3).

mod support;
use linerate_stack::engine::Event;
use linerate_stack::tcp::{CongestionAlgorithm, ConnectionError, Keepalive, SocketOptions, State};
use linerate_stack::time::Duration;
use support::*;

#[test]
fn rto_retransmits_with_exponential_backoff() {
    let mut h = Harness::new();
    let c = h.active_open();
    h.engine.write(h.now, c.handle, b"data").unwrap();
    recv!(h, ACK | PSH, seq = c.our_seq);
    // The handshake gave an RTT sample of 0 → RTO = min RTO 200 ms. The peer did not permit
    // SACK, so there is no tail loss probe (RFC 8985 §4 requires SACK): every expiry is an RTO.
    let mut waits = Vec::new();
    for _ in 0..5 {
        waits.push(h.advance_to_timeout().as_millis());
        recv!(h, ACK | PSH, seq = c.our_seq, payload = b"data".to_vec());
    }
    assert_eq!(waits, vec![200, 400, 800, 1600, 3200]);
    assert_eq!(h.engine.stats().tlp_probes, 0);
    assert_eq!(h.engine.stats().retrans_segs, 5);
    assert_eq!(h.engine.stats().timeouts, 5);
    // A new ACK restarts the timer without backoff (RFC 6298 §5.3, Karn: no sample).
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq + 4);
    let info = h.engine.info(h.now, c.handle).unwrap();
    assert_eq!(info.backoff, 0);
    assert_eq!(info.unacked, 0);
    assert!(h.engine.next_timeout().is_none(), "nothing outstanding, no timer");
}

#[test]
fn rtt_sample_sets_srtt_and_rto() {
    let mut h = Harness::new();
    let c = h.active_open();
    h.engine.write(h.now, c.handle, b"data").unwrap();
    recv!(h, ACK | PSH);
    h.advance(Duration::from_millis(100));
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq + 4);
    let info = h.engine.info(h.now, c.handle).unwrap();
    assert!(info.rtt.unwrap() > Duration::from_millis(10));
    assert!(info.rto >= Duration::from_millis(200));
}

#[test]
fn connection_times_out_after_r2_retransmissions() {
    let mut cfg = test_config();
    cfg.tcp.retries2 = 3;
    let mut h = Harness::with_config(cfg);
    let c = h.active_open();
    h.engine.write(h.now, c.handle, b"data").unwrap();
    recv!(h, ACK | PSH);
    // Three RTOs (no tail loss probe without SACK, RFC 8985 §4), then the connection gives up.
    for _ in 0..3 {
        h.advance_to_timeout();
        recv!(h, ACK | PSH);
    }
    h.advance_to_timeout();
    h.recv_nothing();
    assert_eq!(h.engine.state(c.handle).unwrap(), State::Closed);
    assert!(h.events().contains(&Event::Closed { conn: c.handle, error: Some(ConnectionError::TimedOut) }));
}

#[test]
fn user_timeout_overrides_r2() {
    let mut h = Harness::new();
    let c = h.active_open();
    let opts = SocketOptions {
        user_timeout: Some(Duration::from_secs(1)),
        ..h.engine.socket_options(c.handle).unwrap()
    };
    h.engine.set_socket_options(h.now, c.handle, opts).unwrap();
    h.engine.write(h.now, c.handle, b"data").unwrap();
    recv!(h, ACK | PSH);
    for _ in 0..10 {
        h.advance_to_timeout();
        if h.engine.state(c.handle).unwrap() == State::Closed {
            break;
        }
        let _ = h.recv();
    }
    assert!(h
        .events()
        .contains(&Event::Closed { conn: c.handle, error: Some(ConnectionError::UserTimeout) }));
}

#[test]
fn three_duplicate_acks_trigger_fast_retransmit_and_newreno() {
    let mut cfg = test_config();
    cfg.tcp.default_socket.congestion = CongestionAlgorithm::NewReno;
    let mut h = Harness::with_config(cfg);
    let c = h.active_open();
    let data = vec![3u8; 10 * 1460];
    h.engine.write(h.now, c.handle, &data).unwrap();
    let mut sent = 0;
    while h.recv().is_some() {
        sent += 1;
    }
    assert_eq!(sent, 10);
    // Segment 1 lost: segments 2..4 arrive and produce three duplicate ACKs.
    for _ in 0..3 {
        send!(h, ACK, seq = c.peer_seq, ack = c.our_seq);
    }
    recv!(h, ACK, seq = c.our_seq);
    assert_eq!(h.engine.stats().fast_retrans, 1);
    let info = h.engine.info(h.now, c.handle).unwrap();
    assert_eq!(info.ssthresh, 7300, "ssthresh = flight / 2");
    // Partial ACK (up to the second hole at segment 5): retransmit it at once (RFC 6582).
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq + 4 * 1460);
    recv!(h, ACK, seq = c.our_seq + 4 * 1460);
    // Full ACK ends recovery.
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq + 10 * 1460);
    let info = h.engine.info(h.now, c.handle).unwrap();
    assert_eq!(info.cwnd, 7300, "PRR ends recovery at ssthresh (RFC 6937 §3)");
    assert!(!info.in_recovery);
}

#[test]
fn zero_window_is_probed_with_backoff_and_resumes() {
    let mut h = Harness::new();
    let c = h.active_open();
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq, win = 0u16);
    h.engine.write(h.now, c.handle, b"blocked").unwrap();
    h.recv_nothing();
    let mut waits = Vec::new();
    for _ in 0..4 {
        waits.push(h.advance_to_timeout().as_millis());
        // Probe: old sequence number, no data — never a byte outside the window.
        recv!(h, ACK, seq = c.our_seq - 1, payload = Vec::<u8>::new());
        send!(h, ACK, seq = c.peer_seq, ack = c.our_seq, win = 0u16);
    }
    assert!(waits.windows(2).all(|w| w[1] >= w[0]), "backoff: {waits:?}");
    assert_eq!(h.engine.state(c.handle).unwrap(), State::Established, "a zero window may last forever");
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq, win = 1000u16);
    recv!(h, ACK | PSH, seq = c.our_seq, payload = b"blocked".to_vec());
}

#[test]
fn keepalive_probes_then_gives_up() {
    let mut h = Harness::new();
    let c = h.active_open();
    let ka = Keepalive { idle: Duration::from_secs(10), interval: Duration::from_secs(2), count: 3 };
    let opts = SocketOptions { keepalive: Some(ka), ..h.engine.socket_options(c.handle).unwrap() };
    h.engine.set_socket_options(h.now, c.handle, opts).unwrap();
    assert_eq!(h.advance_to_timeout(), Duration::from_secs(10));
    recv!(h, ACK, seq = c.our_seq - 1);
    // An answer resets the count.
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq);
    assert_eq!(h.advance_to_timeout(), Duration::from_secs(10));
    recv!(h, ACK, seq = c.our_seq - 1);
    for _ in 0..3 {
        assert_eq!(h.advance_to_timeout(), Duration::from_secs(2));
        let _ = h.recv();
    }
    assert!(h
        .events()
        .contains(&Event::Closed { conn: c.handle, error: Some(ConnectionError::KeepaliveTimeout) }));
}

#[test]
fn keepalive_is_off_by_default() {
    let mut h = Harness::new();
    h.active_open();
    assert!(h.engine.next_timeout().is_none());
}

#[test]
fn limited_transmit_sends_new_data_on_the_first_two_duplicate_acks() {
    let mut h = Harness::new();
    let c = h.active_open();
    h.engine.write(h.now, c.handle, &vec![1u8; 14 * 1460]).unwrap();
    for _ in 0..10 {
        recv!(h, ACK);
    }
    h.recv_nothing();
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq);
    recv!(h, ACK, seq = c.our_seq + 10 * 1460);
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq);
    recv!(h, ACK, seq = c.our_seq + 11 * 1460);
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq);
    // Third duplicate: fast retransmit of the first segment.
    recv!(h, ACK, seq = c.our_seq);
}

#[test]
fn cwnd_restarts_from_the_initial_window_after_idle() {
    let mut cfg = test_config();
    cfg.tcp.default_socket.slow_start_after_idle = true;
    // Counts what leaves at one instant: the window alone must bound it, not the pacer.
    cfg.tcp.default_socket.pacing = false;
    let mut h = Harness::with_config(cfg);
    let c = h.active_open();
    let mut acked = c.our_seq;
    // Grow cwnd past IW10 with a few acknowledged flights.
    for _ in 0..3 {
        h.engine.write(h.now, c.handle, &vec![7u8; 30 * 1460]).unwrap();
        while let Some(s) = h.recv() {
            acked = s.seq + s.payload.len() as u32;
            send!(h, ACK, seq = c.peer_seq, ack = acked);
        }
    }
    // Drain what is left.
    while h.engine.info(h.now, c.handle).unwrap().send_queue > 0 {
        let s = h.recv().expect("more data");
        send!(h, ACK, seq = c.peer_seq, ack = s.seq + s.payload.len() as u32);
    }
    assert!(h.engine.info(h.now, c.handle).unwrap().cwnd > 14600);
    h.advance(Duration::from_secs(10));
    h.engine.write(h.now, c.handle, &vec![7u8; 60 * 1460]).unwrap();
    let mut burst = 0;
    while h.recv().is_some() {
        burst += 1;
    }
    assert!(burst <= 11, "after idle the flight restarts near IW10, sent {burst}");
    let _ = acked;
}
