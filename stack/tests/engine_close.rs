//! Crafted-segment tests: closing (RFC 9293 §3.6): active, passive, simultaneous, half-close,
//! abort, TIME-WAIT and FIN-WAIT-2 timers, and the engine ending empty.

mod support;
use linerate_stack::engine::Event;
use linerate_stack::tcp::{ConnectionError, State};
use linerate_stack::time::Duration;
use support::*;

#[test]
fn active_close_goes_through_fin_wait_and_time_wait() {
    let mut h = Harness::new();
    let c = h.passive_open();
    h.engine.close(h.now, c.handle).unwrap();
    recv!(h, FIN | ACK, seq = c.our_seq, ack = c.peer_seq);
    assert_eq!(
        h.engine.state(c.handle),
        Err(linerate_stack::Error::InvalidHandle),
        "handle released by close"
    );
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq + 1);
    send!(h, FIN | ACK, seq = c.peer_seq, ack = c.our_seq + 1);
    recv!(h, ACK, seq = c.our_seq + 1, ack = c.peer_seq + 1);
    assert_eq!(h.engine.connection_count(), 1, "TIME-WAIT");
    assert_eq!(h.engine.memory_used(), 0, "TIME-WAIT keeps no buffers");
    // A retransmitted FIN in TIME-WAIT is acknowledged again and restarts 2*MSL.
    h.advance(Duration::from_secs(30));
    send!(h, FIN | ACK, seq = c.peer_seq, ack = c.our_seq + 1);
    recv!(h, ACK, ack = c.peer_seq + 1);
    h.advance(Duration::from_secs(59));
    assert_eq!(h.engine.connection_count(), 1);
    h.advance(Duration::from_secs(1));
    assert_eq!(h.engine.connection_count(), 0);
    h.engine.unlisten(h.now, linerate_stack::engine::ListenerHandle { index: 0, generation: 1 }).unwrap();
    assert!(h.engine.is_empty());
}

#[test]
fn passive_close_goes_through_close_wait_and_last_ack() {
    let mut h = Harness::new();
    let c = h.active_open();
    h.events();
    send!(h, FIN | ACK, seq = c.peer_seq, ack = c.our_seq);
    recv!(h, ACK, ack = c.peer_seq + 1);
    assert_eq!(h.engine.state(c.handle).unwrap(), State::CloseWait);
    assert!(h.events().contains(&Event::ReadClosed(c.handle)));
    let mut buf = [0u8; 4];
    assert_eq!(h.engine.read(h.now, c.handle, &mut buf).unwrap(), 0, "EOF");
    h.engine.write(h.now, c.handle, b"bye").unwrap();
    recv!(h, ACK | PSH, payload = b"bye".to_vec());
    h.engine.close(h.now, c.handle).unwrap();
    recv!(h, FIN | ACK, seq = c.our_seq + 3);
    send!(h, ACK, seq = c.peer_seq + 1, ack = c.our_seq + 4);
    assert!(h.engine.is_empty());
}

#[test]
fn fin_piggybacks_on_the_last_data_segment() {
    let mut h = Harness::new();
    let c = h.active_open();
    h.engine.write(h.now, c.handle, b"last words").unwrap();
    h.engine.shutdown_write(h.now, c.handle).unwrap();
    // Output is decided at poll time, so the FIN rides on the data.
    let d = recv!(h, FIN | ACK | PSH, seq = c.our_seq);
    assert_eq!(d.payload, b"last words");
    h.recv_nothing();
    assert_eq!(h.engine.state(c.handle).unwrap(), State::FinWait1);
}

#[test]
fn simultaneous_close_goes_through_closing() {
    let mut h = Harness::new();
    let c = h.active_open();
    h.engine.shutdown_write(h.now, c.handle).unwrap();
    recv!(h, FIN | ACK, seq = c.our_seq);
    send!(h, FIN | ACK, seq = c.peer_seq, ack = c.our_seq);
    assert_eq!(h.engine.state(c.handle).unwrap(), State::Closing);
    recv!(h, ACK, ack = c.peer_seq + 1);
    send!(h, ACK, seq = c.peer_seq + 1, ack = c.our_seq + 1);
    assert_eq!(h.engine.state(c.handle).unwrap(), State::TimeWait);
    h.advance(Duration::from_secs(60));
    assert_eq!(h.engine.state(c.handle).unwrap(), State::Closed);
    assert!(h.events().contains(&Event::Closed { conn: c.handle, error: None }));
    h.engine.close(h.now, c.handle).unwrap();
    assert!(h.engine.is_empty());
}

#[test]
fn half_close_keeps_receiving() {
    let mut h = Harness::new();
    let c = h.active_open();
    h.engine.shutdown_write(h.now, c.handle).unwrap();
    recv!(h, FIN | ACK);
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq + 1);
    assert_eq!(h.engine.state(c.handle).unwrap(), State::FinWait2);
    assert_eq!(h.engine.write(h.now, c.handle, b"x"), Err(linerate_stack::Error::WriteShutdown));
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq + 1, payload = vec![5u8; 3000]);
    let mut buf = vec![0u8; 4000];
    assert_eq!(h.engine.read(h.now, c.handle, &mut buf).unwrap(), 3000);
    send!(h, FIN | ACK, seq = c.peer_seq + 3000, ack = c.our_seq + 1);
    assert_eq!(h.engine.state(c.handle).unwrap(), State::TimeWait);
}

#[test]
fn orphaned_fin_wait_2_times_out_after_60s() {
    let mut h = Harness::new();
    let c = h.active_open();
    h.engine.close(h.now, c.handle).unwrap();
    recv!(h, FIN | ACK);
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq + 1);
    assert_eq!(h.engine.connection_count(), 1);
    h.advance(Duration::from_secs(60));
    assert!(h.engine.is_empty());
}

#[test]
fn data_after_close_is_answered_with_rst() {
    let mut h = Harness::new();
    let c = h.active_open();
    h.engine.close(h.now, c.handle).unwrap();
    recv!(h, FIN | ACK);
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq + 1, payload = b"late".to_vec());
    recv!(h, RST, seq = c.our_seq + 1);
    assert!(h.engine.is_empty());
    assert_eq!(h.engine.stats().abort_on_data, 1);
}

#[test]
fn close_with_unread_data_resets() {
    let mut h = Harness::new();
    let c = h.active_open();
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq, payload = b"unread".to_vec());
    h.engine.close(h.now, c.handle).unwrap();
    recv!(h, RST, seq = c.our_seq);
    assert!(h.engine.is_empty());
}

#[test]
fn abort_sends_rst_and_frees_everything() {
    let mut h = Harness::new();
    let c = h.active_open();
    h.engine.write(h.now, c.handle, b"pending").unwrap();
    recv!(h, ACK | PSH);
    h.engine.abort(h.now, c.handle).unwrap();
    recv!(h, RST, seq = c.our_seq + 7);
    assert!(h.engine.is_empty());
    assert_eq!(h.engine.stats().estab_resets, 1);
}

#[test]
fn peer_reset_is_reported_and_handle_stays_until_close() {
    let mut h = Harness::new();
    let c = h.active_open();
    send!(h, RST, seq = c.peer_seq);
    assert_eq!(h.engine.state(c.handle).unwrap(), State::Closed);
    assert!(h.events().contains(&Event::Closed { conn: c.handle, error: Some(ConnectionError::Reset) }));
    let mut buf = [0u8; 4];
    assert_eq!(
        h.engine.read(h.now, c.handle, &mut buf),
        Err(linerate_stack::Error::Connection(ConnectionError::Reset))
    );
    h.engine.close(h.now, c.handle).unwrap();
    assert!(h.engine.is_empty());
    assert_eq!(h.engine.stats().estab_resets, 1);
}

#[test]
fn new_syn_reopens_a_time_wait_connection() {
    let mut h = Harness::new();
    let c = h.passive_open();
    h.engine.close(h.now, c.handle).unwrap();
    recv!(h, FIN | ACK);
    send!(h, FIN | ACK, seq = c.peer_seq, ack = c.our_seq + 1);
    recv!(h, ACK);
    send!(h, SYN, seq = c.peer_seq + 100_000);
    recv!(h, SYN | ACK, ack = c.peer_seq + 100_001);
}

#[test]
fn closed_but_unreleased_connection_frees_its_tuple() {
    let mut h = Harness::new();
    let c = h.active_open();
    send!(h, RST, seq = c.peer_seq);
    // The handle is still held, but the tuple behaves as a closed port now.
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq);
    recv!(h, RST, seq = c.our_seq);
    // And the same local port can be used again for a new connection.
    let again = h.engine.connect(h.now, (PEER_IP, 40000), Some(80), None).unwrap();
    recv!(h, SYN);
    h.engine.close(h.now, c.handle).unwrap();
    assert_eq!(h.engine.state(again).unwrap(), State::SynSent);
}
