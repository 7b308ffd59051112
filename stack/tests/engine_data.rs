//! Crafted-segment tests: the data path (RFC 9293 §3.8, RFC 896, RFC 2018/2883, RFC 7323).

mod support;
use linerate_stack::engine::Event;
use linerate_stack::tcp::SocketOptions;
use linerate_stack::time::Duration;
use support::*;

#[test]
fn received_data_is_readable_and_ack_is_delayed() {
    let mut h = Harness::new();
    let c = h.passive_open();
    send!(h, ACK | PSH, seq = c.peer_seq, ack = c.our_seq, payload = b"hello".to_vec());
    assert!(h.events().contains(&Event::Readable(c.handle)));
    let mut buf = [0u8; 16];
    assert_eq!(h.engine.read(h.now, c.handle, &mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"hello");
    h.recv_nothing();
    let waited = h.advance_to_timeout();
    assert_eq!(waited, Duration::from_millis(40));
    recv!(h, ACK, seq = c.our_seq, ack = c.peer_seq + 5);
    assert_eq!(h.engine.stats().delayed_acks, 1);
}

#[test]
fn every_second_full_segment_is_acked_at_once() {
    let mut h = Harness::new();
    let c = h.passive_open();
    let seg = vec![7u8; 1460];
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq, payload = seg.clone());
    h.recv_nothing();
    send!(h, ACK, seq = c.peer_seq + 1460, ack = c.our_seq, payload = seg);
    recv!(h, ACK, ack = c.peer_seq + 2920);
}

#[test]
fn quickack_acks_every_segment() {
    let mut h = Harness::new();
    let c = h.passive_open();
    let opts = SocketOptions { quickack: true, ..h.engine.socket_options(c.handle).unwrap() };
    h.engine.set_socket_options(h.now, c.handle, opts).unwrap();
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq, payload = b"x".to_vec());
    recv!(h, ACK, ack = c.peer_seq + 1);
}

#[test]
fn burst_of_segments_produces_one_ack() {
    let mut h = Harness::new();
    let c = h.passive_open();
    for i in 0..6u32 {
        send!(h, ACK, seq = c.peer_seq + i * 1460, ack = c.our_seq, payload = vec![1u8; 1460]);
    }
    recv!(h, ACK, ack = c.peer_seq + 6 * 1460);
    h.recv_nothing();
}

#[test]
fn written_data_is_sent_and_acked() {
    let mut h = Harness::new();
    let c = h.passive_open();
    assert_eq!(h.engine.write(h.now, c.handle, b"response").unwrap(), 8);
    let s = recv!(h, ACK | PSH, seq = c.our_seq, ack = c.peer_seq);
    assert_eq!(s.payload, b"response");
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq + 8);
    let info = h.engine.info(h.now, c.handle).unwrap();
    assert_eq!(info.bytes_acked, 8);
    assert_eq!(info.unacked, 0);
}

#[test]
fn large_write_is_segmented_by_mss_within_initial_window() {
    let mut h = Harness::new();
    let c = h.passive_open();
    let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    let n = h.engine.write(h.now, c.handle, &data).unwrap();
    assert_eq!(n, 100_000);
    let mut segs = Vec::new();
    while let Some(s) = h.recv() {
        segs.push(s);
    }
    // IW10 with MSS 1460 = 14600 bytes (RFC 6928).
    assert_eq!(segs.len(), 10);
    assert!(segs.iter().all(|s| s.payload.len() == 1460));
    assert_eq!(segs[3].payload[..], data[3 * 1460..4 * 1460]);
}

#[test]
fn nagle_holds_small_segments_until_acked_unless_nodelay() {
    let mut h = Harness::new();
    let c = h.passive_open();
    h.engine.write(h.now, c.handle, b"a").unwrap();
    recv!(h, ACK | PSH, payload = b"a".to_vec());
    h.engine.write(h.now, c.handle, b"b").unwrap();
    h.recv_nothing();
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq + 1);
    recv!(h, ACK | PSH, seq = c.our_seq + 1, payload = b"b".to_vec());
    let opts = SocketOptions { nodelay: true, ..h.engine.socket_options(c.handle).unwrap() };
    h.engine.set_socket_options(h.now, c.handle, opts).unwrap();
    h.engine.write(h.now, c.handle, b"c").unwrap();
    recv!(h, ACK | PSH, seq = c.our_seq + 2, payload = b"c".to_vec());
}

#[test]
fn out_of_order_data_is_acked_immediately_and_reassembled() {
    let mut h = Harness::new();
    let c = h.passive_open();
    send!(h, ACK, seq = c.peer_seq + 3, ack = c.our_seq, payload = b"def".to_vec());
    recv!(h, ACK, ack = c.peer_seq);
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq, payload = b"abc".to_vec());
    recv!(h, ACK, ack = c.peer_seq + 6);
    let mut buf = [0u8; 8];
    assert_eq!(h.engine.read(h.now, c.handle, &mut buf).unwrap(), 6);
    assert_eq!(&buf[..6], b"abcdef");
}

#[test]
fn duplicate_data_is_acked_immediately() {
    let mut h = Harness::new();
    let c = h.passive_open();
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq, payload = b"abc".to_vec());
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq, payload = b"abc".to_vec());
    recv!(h, ACK, ack = c.peer_seq + 3);
}

#[test]
fn sequence_numbers_wrap_around_2_pow_32() {
    let mut h = Harness::new();
    h.engine.listen(80, 4, None).unwrap();
    let iss = u32::MAX - 2;
    send!(h, SYN, seq = iss);
    let synack = recv!(h, SYN | ACK, ack = iss.wrapping_add(1));
    send!(h, ACK, seq = iss.wrapping_add(1), ack = synack.seq + 1);
    send!(h, ACK, seq = iss.wrapping_add(1), ack = synack.seq + 1, payload = vec![9u8; 1460]);
    send!(h, ACK, seq = iss.wrapping_add(1461), ack = synack.seq + 1, payload = vec![9u8; 1460]);
    recv!(h, ACK, ack = iss.wrapping_add(2921));
}

fn sack_harness() -> (Harness, Conn) {
    let mut cfg = test_config();
    cfg.tcp.sack = true;
    let mut h = Harness::with_config(cfg);
    h.engine.listen(80, 4, None).unwrap();
    send!(h, SYN, seq = 1000u32, mss = Some(1460u16), sack_perm = true);
    let synack = recv!(h, SYN | ACK, sack_perm = true);
    send!(h, ACK, seq = 1001u32, ack = synack.seq + 1);
    let l = linerate_stack::engine::ListenerHandle { index: 0, generation: 1 };
    let handle = h.engine.accept(l).unwrap().unwrap();
    (h, Conn { handle, our_seq: synack.seq + 1, peer_seq: 1001 })
}

#[test]
fn sack_blocks_report_out_of_order_ranges_most_recent_first() {
    let (mut h, c) = sack_harness();
    let p = c.peer_seq;
    send!(h, ACK, seq = p + 10, ack = c.our_seq, payload = vec![1u8; 10]);
    recv!(h, ACK, ack = p, sack = vec![(p + 10, p + 20)]);
    send!(h, ACK, seq = p + 30, ack = c.our_seq, payload = vec![1u8; 10]);
    recv!(h, ACK, ack = p, sack = vec![(p + 30, p + 40), (p + 10, p + 20)]);
    send!(h, ACK, seq = p, ack = c.our_seq, payload = vec![1u8; 10]);
    recv!(h, ACK, ack = p + 20, sack = vec![(p + 30, p + 40)]);
}

#[test]
fn duplicate_segment_is_reported_with_dsack() {
    let (mut h, c) = sack_harness();
    let p = c.peer_seq;
    send!(h, ACK, seq = p, ack = c.our_seq, payload = vec![1u8; 10]);
    send!(h, ACK, seq = p, ack = c.our_seq, payload = vec![1u8; 10]);
    // RFC 2883: the first block is the duplicate, below the cumulative ACK.
    recv!(h, ACK, ack = p + 10, sack = vec![(p, p + 10)]);
    assert_eq!(h.engine.stats().dsack_sent, 1);
}

#[test]
fn window_scale_and_timestamps_are_negotiated() {
    let mut cfg = test_config();
    cfg.tcp.window_scaling = true;
    cfg.tcp.timestamps = true;
    let mut h = Harness::with_config(cfg);
    let l = h
        .engine
        .listen(80, 4, Some(SocketOptions { recv_buffer: 1 << 20, ..SocketOptions::default() }))
        .unwrap();
    send!(h, SYN, seq = 1000u32, mss = Some(1460u16), wscale = Some(7u8), ts = Some((500u32, 0u32)));
    let synack = recv!(h, SYN | ACK, wscale = Some(5u8));
    let (tsval, tsecr) = synack.ts.expect("timestamps on the SYN-ACK");
    assert_eq!(tsecr, 500);
    send!(h, ACK, seq = 1001u32, ack = synack.seq + 1, win = 100u16, ts = Some((501u32, tsval)));
    let c = h.engine.accept(l).unwrap().unwrap();
    let info = h.engine.info(h.now, c).unwrap();
    assert_eq!(info.snd_wscale, 7);
    assert_eq!(info.snd_wnd, 100 << 7);
    assert_eq!(info.snd_mss, 1460 - 12);
    assert!(info.timestamps);
    h.engine.write(h.now, c, b"x").unwrap();
    let s = recv!(h, ACK | PSH);
    assert_eq!(s.ts.unwrap().1, 501, "TSecr echoes TS.Recent");
}

#[test]
fn paws_drops_old_timestamps_with_an_ack() {
    let mut cfg = test_config();
    cfg.tcp.timestamps = true;
    let mut h = Harness::with_config(cfg);
    let l = h.engine.listen(80, 4, None).unwrap();
    send!(h, SYN, seq = 1000u32, ts = Some((500u32, 0u32)));
    let synack = recv!(h, SYN | ACK);
    let tsval = synack.ts.unwrap().0;
    send!(h, ACK, seq = 1001u32, ack = synack.seq + 1, ts = Some((600u32, tsval)));
    let c = h.engine.accept(l).unwrap().unwrap();
    send!(h, ACK, seq = 1001u32, ack = synack.seq + 1, payload = b"old".to_vec(), ts = Some((550u32, tsval)));
    recv!(h, ACK, ack = 1001u32);
    assert_eq!(h.engine.stats().paws_drops, 1);
    assert_eq!(h.engine.readable_len(c).unwrap(), 0);
}

#[test]
fn write_back_pressure_and_writable_event() {
    let mut h = Harness::new();
    h.engine.listen(80, 4, Some(SocketOptions { send_buffer: 4000, ..SocketOptions::default() })).unwrap();
    send!(h, SYN, seq = 1000u32, mss = Some(1000u16));
    let synack = recv!(h, SYN | ACK);
    send!(h, ACK, seq = 1001u32, ack = synack.seq + 1);
    let l = linerate_stack::engine::ListenerHandle { index: 0, generation: 1 };
    let c = h.engine.accept(l).unwrap().unwrap();
    h.events();
    assert_eq!(h.engine.write(h.now, c, &[0u8; 10_000]).unwrap(), 4000);
    assert_eq!(h.engine.write(h.now, c, &[0u8; 10]), Err(linerate_stack::Error::WouldBlock));
    for _ in 0..4 {
        assert!(h.recv().is_some_and(|s| s.payload.len() == 1000));
    }
    send!(h, ACK, seq = 1001u32, ack = synack.seq + 1 + 3000);
    assert!(h.events().contains(&linerate_stack::Event::Writable(c)));
}

#[test]
fn full_segments_never_exceed_the_mtu_even_with_sack_blocks() {
    let mut cfg = test_config();
    cfg.tcp.sack = true;
    cfg.tcp.timestamps = true;
    let mut h = Harness::with_config(cfg);
    let c = h.engine.connect(h.now, (PEER_IP, 40000), Some(80), None).unwrap();
    let syn = recv!(h, SYN);
    send!(
        h,
        SYN | ACK,
        seq = 5000u32,
        ack = syn.seq + 1,
        mss = Some(1460u16),
        sack_perm = true,
        ts = Some((1u32, 0u32))
    );
    recv!(h, ACK);
    // Out-of-order data from the peer leaves SACK ranges to report...
    for i in 0..3u32 {
        send!(
            h,
            ACK,
            seq = 5001 + 100 + i * 20,
            ack = syn.seq + 1,
            payload = vec![1u8; 10],
            ts = Some((2u32, 0u32))
        );
        let _ = h.recv();
    }
    // ...and a full-sized data segment must still fit in 1500 bytes.
    h.engine.write(h.now, c, &vec![2u8; 5000]).unwrap();
    let s = recv!(h, ACK);
    assert_eq!(s.payload.len(), 1448);
    assert!(s.sack.is_empty(), "SACK blocks give way to data: {s:?}");
    assert!(h.dev.tx.iter().all(|f| f.len() <= 1514));
}

#[test]
fn a_device_with_a_smaller_mtu_gets_smaller_segments() {
    let mut h = Harness::new();
    h.dev.caps.mtu = 1000;
    let c = h.active_open();
    h.engine.write(h.now, c.handle, &vec![3u8; 3000]).unwrap();
    let s = recv!(h, ACK);
    assert_eq!(s.payload.len(), 960);
}
