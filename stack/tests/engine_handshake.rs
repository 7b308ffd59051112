//! Crafted-segment tests: opening connections (RFC 9293 §3.5, §3.10.7.2-3).

mod support;
use linerate_stack::engine::Event;
use linerate_stack::tcp::{ConnectionError, State};
use linerate_stack::time::Duration;
use support::*;

#[test]
fn passive_open_completes_and_reports_incoming() {
    let mut h = Harness::new();
    let l = h.engine.listen(80, 4, None).unwrap();
    send!(h, SYN, seq = 1000u32, mss = Some(1460u16));
    let synack = recv!(h, SYN | ACK, ack = 1001u32, mss = Some(1460u16));
    assert_eq!(h.engine.stats().passive_opens, 1);
    assert_eq!(h.engine.accept(l).unwrap(), None, "not established yet");
    send!(h, ACK, seq = 1001u32, ack = synack.seq + 1);
    assert_eq!(h.events(), vec![Event::Incoming(l)]);
    let c = h.engine.accept(l).unwrap().unwrap();
    assert_eq!(h.engine.state(c).unwrap(), State::Established);
    assert_eq!(h.engine.stats().curr_estab, 1);
    h.recv_nothing();
}

#[test]
fn active_open_completes_and_reports_connected() {
    let mut h = Harness::new();
    let c = h.active_open();
    assert_eq!(h.engine.state(c.handle).unwrap(), State::Established);
    assert!(h.events().contains(&Event::Connected(c.handle)));
    assert_eq!(h.engine.stats().active_opens, 1);
}

#[test]
fn syn_to_closed_port_gets_rst_ack() {
    let mut h = Harness::new();
    send!(h, SYN, seq = 7u32);
    // RFC 9293 §3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
    recv!(h, RST | ACK, seq = 0u32, ack = 8u32);
    assert_eq!(h.engine.stats().out_rsts, 1);
}

#[test]
fn ack_to_closed_port_gets_rst_with_seq_from_ack() {
    let mut h = Harness::new();
    send!(h, ACK, seq = 7u32, ack = 99u32);
    recv!(h, RST, seq = 99u32);
}

#[test]
fn rst_to_closed_port_is_never_answered() {
    let mut h = Harness::new();
    send!(h, RST, seq = 7u32);
    send!(h, RST | ACK, seq = 7u32, ack = 1u32);
    h.recv_nothing();
}

#[test]
fn ack_to_listener_gets_rst() {
    let mut h = Harness::new();
    h.engine.listen(80, 4, None).unwrap();
    send!(h, ACK, seq = 5u32, ack = 77u32);
    recv!(h, RST, seq = 77u32);
}

#[test]
fn syn_sent_refused_by_rst() {
    let mut h = Harness::new();
    let c = h.engine.connect(h.now, (PEER_IP, 40000), Some(80), None).unwrap();
    let syn = recv!(h, SYN);
    // A RST that does not acknowledge our SYN is ignored (RFC 9293 §3.10.7.3).
    send!(h, RST | ACK, seq = 0u32, ack = syn.seq);
    assert_eq!(h.engine.state(c).unwrap(), State::SynSent);
    send!(h, RST | ACK, seq = 0u32, ack = syn.seq + 1);
    assert_eq!(h.engine.state(c).unwrap(), State::Closed);
    assert!(h.events().contains(&Event::Closed { conn: c, error: Some(ConnectionError::Refused) }));
    assert_eq!(h.engine.stats().attempt_fails, 1);
}

#[test]
fn syn_sent_bad_ack_gets_rst() {
    let mut h = Harness::new();
    h.engine.connect(h.now, (PEER_IP, 40000), Some(80), None).unwrap();
    let syn = recv!(h, SYN);
    send!(h, SYN | ACK, seq = 5000u32, ack = syn.seq + 10);
    recv!(h, RST, seq = syn.seq + 10);
}

#[test]
fn simultaneous_open() {
    let mut h = Harness::new();
    let c = h.engine.connect(h.now, (PEER_IP, 40000), Some(80), None).unwrap();
    let syn = recv!(h, SYN);
    send!(h, SYN, seq = 5000u32, mss = Some(1460u16));
    assert_eq!(h.engine.state(c).unwrap(), State::SynReceived);
    recv!(h, SYN | ACK, seq = syn.seq, ack = 5001u32);
    send!(h, SYN | ACK, seq = 5000u32, ack = syn.seq + 1);
    // The peer's SYN-ACK is a SYN in SYN-RECEIVED at an old sequence number: we answer with
    // an ACK and the peer's ACK completes the handshake.
    send!(h, ACK, seq = 5001u32, ack = syn.seq + 1);
    assert_eq!(h.engine.state(c).unwrap(), State::Established);
}

#[test]
fn syn_is_retransmitted_with_backoff_then_gives_up() {
    let mut h = Harness::new();
    let c = h.engine.connect(h.now, (PEER_IP, 40000), Some(80), None).unwrap();
    let syn = recv!(h, SYN);
    let mut waits = Vec::new();
    for _ in 0..6 {
        waits.push(h.advance_to_timeout().as_millis());
        recv!(h, SYN, seq = syn.seq);
    }
    assert_eq!(waits, vec![1000, 2000, 4000, 8000, 16000, 32000]);
    h.advance_to_timeout();
    h.recv_nothing();
    assert_eq!(h.engine.state(c).unwrap(), State::Closed);
    assert!(h.events().contains(&Event::Closed { conn: c, error: Some(ConnectionError::TimedOut) }));
    h.engine.close(h.now, c).unwrap();
    assert!(h.engine.is_empty());
}

#[test]
fn synack_is_retransmitted_five_times_then_dropped() {
    let mut h = Harness::new();
    let l = h.engine.listen(80, 4, None).unwrap();
    send!(h, SYN, seq = 1000u32);
    let synack = recv!(h, SYN | ACK);
    for _ in 0..5 {
        h.advance_to_timeout();
        recv!(h, SYN | ACK, seq = synack.seq);
    }
    h.advance_to_timeout();
    h.recv_nothing();
    assert_eq!(h.engine.connection_count(), 0);
    h.engine.unlisten(h.now, l).unwrap();
    assert!(h.engine.is_empty());
}

#[test]
fn retransmitted_syn_in_syn_received_repeats_the_synack() {
    let mut h = Harness::new();
    h.engine.listen(80, 4, None).unwrap();
    send!(h, SYN, seq = 1000u32);
    let first = recv!(h, SYN | ACK);
    send!(h, SYN, seq = 1000u32);
    recv!(h, SYN | ACK, seq = first.seq, ack = 1001u32);
}

#[test]
fn bad_ack_in_syn_received_gets_rst() {
    let mut h = Harness::new();
    h.engine.listen(80, 4, None).unwrap();
    send!(h, SYN, seq = 1000u32);
    let synack = recv!(h, SYN | ACK);
    send!(h, ACK, seq = 1001u32, ack = synack.seq + 5);
    recv!(h, RST, seq = synack.seq + 5);
}

#[test]
fn rst_in_syn_received_returns_to_listen_silently() {
    let mut h = Harness::new();
    h.engine.listen(80, 4, None).unwrap();
    send!(h, SYN, seq = 1000u32);
    recv!(h, SYN | ACK);
    send!(h, RST, seq = 1001u32);
    assert_eq!(h.engine.connection_count(), 0);
    h.recv_nothing();
    // The listener still works.
    send!(h, SYN, seq = 2000u32);
    recv!(h, SYN | ACK, ack = 2001u32);
}

#[test]
fn accept_queue_overflow_drops_syn_and_final_ack() {
    let mut h = Harness::new();
    let l = h.engine.listen(80, 1, None).unwrap();
    send!(h, SYN, seq = 1000u32);
    let a = recv!(h, SYN | ACK);
    send!(h, ACK, seq = 1001u32, ack = a.seq + 1);
    // Queue (backlog 1) is now full: a new SYN is dropped.
    h.peer_port = 40001;
    send!(h, SYN, seq = 3000u32);
    h.recv_nothing();
    assert_eq!(h.engine.stats().listen_overflows, 1);
    assert_eq!(h.engine.stats().listen_drops, 1);
    assert!(h.engine.accept(l).unwrap().is_some());
    let _ = Duration::ZERO;
}

#[test]
fn syn_queue_is_bounded_by_backlog() {
    let mut h = Harness::new();
    h.engine.listen(80, 2, None).unwrap();
    for i in 0..5u16 {
        h.peer_port = 41000 + i;
        send!(h, SYN, seq = 1000u32);
    }
    let mut synacks = 0;
    while h.recv().is_some() {
        synacks += 1;
    }
    assert_eq!(synacks, 2);
    assert_eq!(h.engine.stats().listen_drops, 3);
    assert_eq!(h.engine.connection_count(), 2);
}

#[test]
fn memory_cap_refuses_new_connections_and_keeps_existing_ones() {
    let mut cfg = test_config();
    // Buffers plus the loss-recovery segment records of one connection.
    let per_conn = linerate_stack::tcp::connection::Connection::memory_for(
        &linerate_stack::tcp::SocketOptions::default(),
    );
    cfg.memory_limit = per_conn * 2;
    let mut h = Harness::with_config(cfg);
    let c = h.passive_open();
    h.peer_port = 40001;
    send!(h, SYN, seq = 7000u32);
    recv!(h, SYN | ACK, ack = 7001u32);
    // Both slots of memory are taken: a third SYN and a connect are refused and counted.
    h.peer_port = 40002;
    send!(h, SYN, seq = 9000u32);
    h.recv_nothing();
    assert_eq!(h.engine.connect(h.now, (PEER_IP, 9), None, None), Err(linerate_stack::Error::MemoryLimit));
    assert_eq!(h.engine.stats().memory_refused, 2);
    // The established connection still works.
    h.peer_port = 40000;
    send!(h, ACK | PSH, seq = c.peer_seq, ack = c.our_seq, payload = b"still here".to_vec());
    assert_eq!(h.engine.readable_len(c.handle).unwrap(), 10);
}

#[test]
fn unlisten_resets_queued_connections_and_frees_everything() {
    let mut h = Harness::new();
    let l = h.engine.listen(80, 4, None).unwrap();
    send!(h, SYN, seq = 1000u32);
    let synack = recv!(h, SYN | ACK);
    send!(h, ACK, seq = 1001u32, ack = synack.seq + 1);
    h.peer_port = 40001;
    send!(h, SYN, seq = 5000u32);
    recv!(h, SYN | ACK);
    h.engine.unlisten(h.now, l).unwrap();
    recv!(h, RST, seq = synack.seq + 1);
    assert!(h.engine.is_empty());
    assert_eq!(h.engine.accept(l), Err(linerate_stack::Error::InvalidHandle));
}
