//! Crafted-segment tests of the application API: zero-copy `write_with`/`read_with`,
//! back-pressure and `Writable`, `SendComplete`, events that happen before `accept`, and control
//! frames the device refuses.

mod support;
use linerate_stack::engine::{ConnectionHandle, Event, ListenerHandle};
use linerate_stack::tcp::{ConnectionError, SocketOptions};
use linerate_stack::Error;
use support::*;

/// A passive open whose listener uses `opts`; returns the accepted connection.
fn open_with(h: &mut Harness, opts: SocketOptions) -> Conn {
    let l = h.engine.listen(h.local_port, 4, Some(opts)).unwrap();
    send!(h, SYN, seq = PEER_ISS, mss = Some(1000u16));
    let synack = recv!(h, SYN | ACK);
    send!(h, ACK, seq = PEER_ISS + 1, ack = synack.seq + 1);
    let handle = h.engine.accept(l).unwrap().unwrap();
    h.events();
    Conn { handle, our_seq: synack.seq + 1, peer_seq: PEER_ISS + 1 }
}

/// Handshake from the peer without accepting; returns the listener and our next sequence.
fn handshake_only(h: &mut Harness) -> (ListenerHandle, u32) {
    let l = h.engine.listen(h.local_port, 4, None).unwrap();
    send!(h, SYN, seq = PEER_ISS, mss = Some(1000u16));
    let synack = recv!(h, SYN | ACK);
    send!(h, ACK, seq = PEER_ISS + 1, ack = synack.seq + 1);
    (l, synack.seq + 1)
}

fn writable(h: &mut Harness, c: ConnectionHandle) -> bool {
    h.events().contains(&Event::Writable(c))
}

#[test]
fn write_with_fills_the_send_ring_and_the_segment_carries_it() {
    let mut h = Harness::new();
    let c = h.passive_open();
    let n = h
        .engine
        .write_with(h.now, c.handle, 5, |buf| {
            buf.copy_from_slice(b"hello");
            5
        })
        .unwrap();
    assert_eq!(n, 5);
    let seg = recv!(h, ACK | PSH, seq = c.our_seq);
    assert_eq!(seg.payload, b"hello");
    // A closure that writes nothing is not back-pressure: no error, no Writable armed.
    assert_eq!(h.engine.write_with(h.now, c.handle, 100, |_| 0), Ok(0));
}

#[test]
fn read_with_peeks_and_consumes_in_place() {
    let mut h = Harness::new();
    let c = h.passive_open();
    send!(h, ACK | PSH, seq = c.peer_seq, ack = c.our_seq, payload = b"abcdef".to_vec());
    let peeked = h.engine.read_with(h.now, c.handle, 100, |d| {
        assert_eq!(d, b"abcdef");
        0
    });
    assert_eq!(peeked, Ok(0));
    assert_eq!(h.engine.readable_len(c.handle).unwrap(), 6);
    assert_eq!(h.engine.read_with(h.now, c.handle, 4, |d| d.len()), Ok(4));
    let mut rest = [0u8; 8];
    assert_eq!(h.engine.read(h.now, c.handle, &mut rest).unwrap(), 2);
    assert_eq!(&rest[..2], b"ef");
    assert_eq!(h.engine.read_with(h.now, c.handle, 100, |_| unreachable!()), Err(Error::WouldBlock));
    send!(h, ACK | FIN, seq = c.peer_seq + 6, ack = c.our_seq);
    assert_eq!(h.engine.read_with(h.now, c.handle, 100, |_| unreachable!()), Ok(0));
}

#[test]
fn writable_follows_a_short_write_and_a_refused_write() {
    let mut h = Harness::new();
    let c = open_with(&mut h, SocketOptions { send_buffer: 4000, ..SocketOptions::default() });
    // Short write: 4000 of 5000 taken.
    assert_eq!(h.engine.write(h.now, c.handle, &[1u8; 5000]).unwrap(), 4000);
    for _ in 0..4 {
        assert!(h.recv().is_some_and(|s| s.payload.len() == 1000));
    }
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq + 1000);
    assert!(!writable(&mut h, c.handle), "a quarter of the buffer free is not yet worth waking for");
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq + 2000);
    assert!(writable(&mut h, c.handle));
    // The edge is reported once per blocked episode.
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq + 3000);
    assert!(!writable(&mut h, c.handle));

    // Refused write (buffer full, nothing taken), through the zero-copy call this time.
    assert_eq!(h.engine.write_with(h.now, c.handle, 10_000, |b| b.len()).unwrap(), 3000);
    assert_eq!(h.engine.write_with(h.now, c.handle, 10, |_| unreachable!()), Err(Error::WouldBlock));
    assert_eq!(h.engine.write(h.now, c.handle, b"x"), Err(Error::WouldBlock));
    while h.recv().is_some() {}
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq + 6000);
    assert!(writable(&mut h, c.handle));
}

#[test]
fn send_complete_is_reported_once_our_fin_is_acknowledged() {
    let mut h = Harness::new();
    let c = h.passive_open();
    h.engine.write(h.now, c.handle, b"response").unwrap();
    h.engine.shutdown_write(h.now, c.handle).unwrap();
    let seg = recv!(h, ACK | PSH | FIN, seq = c.our_seq);
    assert_eq!(seg.payload, b"response");
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq + 8);
    assert!(!h.events().contains(&Event::SendComplete(c.handle)), "data acked, FIN not yet");
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq + 9);
    assert_eq!(h.events(), vec![Event::SendComplete(c.handle)]);
    // The peer closes too: Closed follows, SendComplete is not repeated.
    send!(h, ACK | FIN, seq = c.peer_seq, ack = c.our_seq + 9);
    let events = h.events();
    assert!(!events.contains(&Event::SendComplete(c.handle)));
    assert!(events.contains(&Event::ReadClosed(c.handle)));
}

#[test]
fn data_and_fin_before_accept_are_reported_after_accept() {
    let mut h = Harness::new();
    let (l, our_seq) = handshake_only(&mut h);
    send!(h, ACK | PSH, seq = PEER_ISS + 1, ack = our_seq, payload = b"GET /".to_vec());
    send!(h, ACK | FIN, seq = PEER_ISS + 6, ack = our_seq);
    assert_eq!(h.events().len(), 1, "only Incoming before accept");
    let c = h.engine.accept(l).unwrap().unwrap();
    let events = h.events();
    assert!(events.contains(&Event::Readable(c)), "{events:?}");
    assert!(events.contains(&Event::ReadClosed(c)), "{events:?}");
    let mut buf = [0u8; 16];
    assert_eq!(h.engine.read(h.now, c, &mut buf).unwrap(), 5);
    assert_eq!(h.engine.read(h.now, c, &mut buf).unwrap(), 0);
}

#[test]
fn reset_before_accept_is_reported_as_closed_after_accept() {
    // Linux keeps a reset child in the accept queue: accept succeeds and the socket reports
    // ECONNRESET. We do the same, so the application sees why the connection is gone.
    let mut h = Harness::new();
    let (l, our_seq) = handshake_only(&mut h);
    send!(h, RST, seq = PEER_ISS + 1);
    let c = h.engine.accept(l).unwrap().unwrap();
    assert_eq!(h.events(), vec![Event::Closed { conn: c, error: Some(ConnectionError::Reset) }]);
    let mut buf = [0u8; 4];
    assert_eq!(h.engine.read(h.now, c, &mut buf), Err(Error::Connection(ConnectionError::Reset)));
    // The tuple is free again: a segment for it is answered like one to a closed port.
    send!(h, ACK, seq = PEER_ISS + 1, ack = our_seq, payload = b"late".to_vec());
    recv!(h, RST, seq = our_seq);
    h.engine.close(h.now, c).unwrap();
    h.engine.unlisten(h.now, l).unwrap();
    assert!(h.engine.is_empty());
}

#[test]
fn refused_control_frames_are_dropped_and_counted_not_retried() {
    let mut h = Harness::new();
    let c = h.passive_open();
    h.dev.tx_room = Some(0);
    // Two segments to a closed port: each wants a RST.
    for port in [81u16, 82] {
        let seg = Seg { seq: 7, ack: 9, ..Seg::new(ACK) };
        h.send_frame(tcp_frame(&seg, (PEER_IP, 40001), (OUR_IP, port), PEER_MAC, OUR_MAC));
    }
    h.engine.write(h.now, c.handle, b"data").unwrap();
    assert_eq!(h.engine.poll_transmit(h.now, &mut h.dev), 0);
    assert_eq!(h.engine.stats().tx_control_drops, 1);
    assert_eq!(h.engine.poll_transmit(h.now, &mut h.dev), 0);
    assert_eq!(h.engine.stats().tx_control_drops, 2);
    // The queue is empty now: the data segment is no longer held up behind the RSTs.
    h.dev.tx_room = None;
    let seg = recv!(h, ACK | PSH, seq = c.our_seq);
    assert_eq!(seg.payload, b"data");
    assert_eq!(h.engine.stats().out_rsts, 0);
}

#[test]
fn open_to_a_broadcast_or_multicast_address_is_refused() {
    // RFC 9293 MUST-46: reject an OPEN call to an invalid (broadcast/multicast) address.
    let mut h = Harness::new();
    for ip in [
        linerate_stack::wire::Ipv4Address::BROADCAST,
        linerate_stack::wire::Ipv4Address::new(224, 0, 0, 1),
        linerate_stack::wire::Ipv4Address::new(0, 0, 0, 0),
    ] {
        assert_eq!(h.engine.connect(h.now, (ip, 80), None, None), Err(Error::InvalidAddress));
    }
    assert!(h.engine.is_empty());
}

#[test]
fn syns_from_or_to_broadcast_and_multicast_addresses_are_dropped_silently() {
    // RFC 9293 MUST-63 (SYN from an invalid source) and MUST-57 (segment to a broadcast or
    // multicast destination): no SYN-ACK, no RST, no state, and a counter.
    let mut h = Harness::new();
    let l = h.engine.listen(80, 4, None).unwrap();
    let syn = Seg { seq: PEER_ISS, ..Seg::new(SYN) };
    let bcast = linerate_stack::wire::Ipv4Address::BROADCAST;
    let mcast = linerate_stack::wire::Ipv4Address::new(224, 0, 0, 9);
    let subnet_bcast = linerate_stack::wire::Ipv4Address::new(198, 18, 0, 255);
    for src in [bcast, mcast] {
        h.send_frame(tcp_frame(&syn, (src, 40000), (OUR_IP, 80), PEER_MAC, OUR_MAC));
    }
    assert_eq!(h.engine.stats().in_errs, 2);
    for dst in [bcast, mcast, subnet_bcast] {
        h.send_frame(tcp_frame(&syn, (PEER_IP, 40000), (dst, 80), PEER_MAC, OUR_MAC));
    }
    assert_eq!(h.engine.stats().ip_in_addr_errors, 3);
    h.recv_nothing();
    assert_eq!(h.engine.connection_count(), 0);
    assert_eq!(h.engine.accept(l), Ok(None));
}
