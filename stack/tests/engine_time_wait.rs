//! Crafted-segment tests: compact TIME-WAIT records (RFC 9293 §3.10.7.4 in TIME-WAIT).
//!
//! A connection in TIME-WAIT that the application has closed becomes a 64-byte record; one
//! the application still holds stays a full connection. The first test plays the same
//! segments against both forms and requires byte-identical frames; the others check each rule
//! on the record alone, expiry, table-full recycling, and the memory it takes.

mod support;
use linerate_stack::engine::{EngineConfig, TIME_WAIT_ENTRY_BYTES};
use linerate_stack::tcp::connection::Connection;
use linerate_stack::tcp::{State, TcpConfig};
use linerate_stack::time::Duration;
use support::*;

/// Timestamps, window scaling and SACK on: every field of a TIME-WAIT ACK is exercised.
fn full_options_config() -> EngineConfig {
    let mut cfg = test_config();
    cfg.tcp = TcpConfig { timestamps: true, window_scaling: true, sack: true, ..TcpConfig::default() };
    cfg
}

/// The peer's timestamp clock (TSval), advanced by each segment the test sends.
struct Peer {
    tsval: u32,
    our_tsval: u32,
}

/// Passive open with all options; then either the application closes (`close`: the compact
/// record) or only shuts down its send side and keeps the handle (the full connection); the
/// peer ACKs our FIN and sends its own, which we ACK: TIME-WAIT.
fn into_time_wait(h: &mut Harness, close: bool) -> (Conn, Peer) {
    let l = h.engine.listen(h.local_port, 16, None).expect("listen");
    send!(
        h,
        SYN,
        seq = PEER_ISS,
        mss = Some(1460u16),
        wscale = Some(7u8),
        sack_perm = true,
        ts = Some((100u32, 0u32))
    );
    let synack = recv!(h, SYN | ACK, ack = PEER_ISS + 1);
    let our_ts = synack.ts.expect("timestamps negotiated").0;
    send!(h, ACK, seq = PEER_ISS + 1, ack = synack.seq + 1, ts = Some((101u32, our_ts)));
    let handle = h.engine.accept(l).unwrap().expect("accepted");
    let c = Conn { handle, our_seq: synack.seq + 1, peer_seq: PEER_ISS + 1 };
    if close {
        h.engine.close(h.now, c.handle).unwrap();
    } else {
        h.engine.shutdown_write(h.now, c.handle).unwrap();
    }
    let fin = recv!(h, FIN | ACK, seq = c.our_seq);
    let our_ts = fin.ts.unwrap().0;
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq + 1, ts = Some((102u32, our_ts)));
    send!(h, FIN | ACK, seq = c.peer_seq, ack = c.our_seq + 1, ts = Some((103u32, our_ts)));
    let ack = recv!(h, ACK, seq = c.our_seq + 1, ack = c.peer_seq + 1);
    h.recv_nothing();
    (c, Peer { tsval: 103, our_tsval: ack.ts.unwrap().0 })
}

/// Every frame the engine sends now.
fn frames(h: &mut Harness) -> Vec<Vec<u8>> {
    h.engine.poll_transmit(h.now, &mut h.dev);
    h.dev.tx.drain(..).collect()
}

#[test]
fn a_compact_record_answers_byte_for_byte_like_the_full_connection() {
    let mut full = Harness::with_config(full_options_config());
    let mut compact = Harness::with_config(full_options_config());
    let (c, peer) = into_time_wait(&mut full, false);
    let (c2, _) = into_time_wait(&mut compact, true);
    assert_eq!((c.our_seq, c.peer_seq), (c2.our_seq, c2.peer_seq));
    assert_eq!(full.engine.state(c.handle).unwrap(), State::TimeWait);
    assert_eq!((full.engine.slab_connection_count(), full.engine.time_wait_count()), (1, 0));
    assert_eq!((compact.engine.slab_connection_count(), compact.engine.time_wait_count()), (0, 1));
    let (rcv_nxt, snd_nxt, ts, ecr) = (c.peer_seq + 1, c.our_seq + 1, peer.tsval, peer.our_tsval);
    let ack = |seq: u32, ack: u32, tsval: u32| {
        let mut s = Seg::new(ACK);
        (s.seq, s.ack, s.ts) = (seq, ack, Some((tsval, ecr)));
        s
    };
    let with = |mut s: Seg, flags, payload: &[u8]| {
        s.flags = flags;
        s.payload = payload.to_vec();
        s
    };
    let script: Vec<(&str, Seg, usize)> = vec![
        ("retransmitted FIN", with(ack(c.peer_seq, snd_nxt, ts + 1), FIN | ACK, b""), 1),
        ("acceptable pure ACK", ack(rcv_nxt, snd_nxt, ts + 2), 0),
        ("duplicate data: D-SACK", with(ack(c.peer_seq - 4, snd_nxt, ts + 3), ACK | PSH, b"dup!"), 1),
        ("PAWS: old timestamp", ack(rcv_nxt, snd_nxt, ts - 50), 1),
        ("ACK of unsent data", ack(rcv_nxt, snd_nxt + 1000, ts + 4), 1),
        ("data beyond the window", with(ack(rcv_nxt + 1_000_000, snd_nxt, ts + 5), ACK | PSH, b"far"), 1),
        ("RST in the window, not at RCV.NXT", with(ack(rcv_nxt + 1, 0, ts + 6), RST, b""), 1),
        ("RST outside the window", with(ack(rcv_nxt + 1_000_000, 0, ts + 6), RST, b""), 0),
        ("SYN at RCV.NXT with an older timestamp", with(ack(rcv_nxt, 0, ts - 60), SYN, b""), 1),
        ("SYN below RCV.NXT, older timestamp", with(ack(rcv_nxt - 9, 0, ts - 60), SYN, b""), 1),
        ("segment without ACK", with(ack(rcv_nxt, 0, ts + 7), PSH, b"x"), 0),
        ("acceptable FIN", with(ack(rcv_nxt, snd_nxt, ts + 8), FIN | ACK, b""), 1),
        ("RST at RCV.NXT ends TIME-WAIT", with(ack(rcv_nxt, 0, ts + 9), RST, b""), 0),
        ("then the tuple is closed", ack(rcv_nxt, snd_nxt, ts + 10), 1),
    ];
    for (step, (label, seg, expected)) in script.into_iter().enumerate() {
        for h in [&mut full, &mut compact] {
            h.now += Duration::from_millis(7);
            h.send(&seg);
        }
        let (a, b) = (frames(&mut full), frames(&mut compact));
        assert_eq!(a.len(), expected, "step {step} {label}: full connection sent {} frames", a.len());
        assert_eq!(a, b, "step {step} {label}: frames differ");
    }
    let (fs, cs) = (full.engine.stats(), compact.engine.stats());
    for (name, f, c) in [
        ("paws_drops", fs.paws_drops, cs.paws_drops),
        ("out_of_window", fs.out_of_window, cs.out_of_window),
        ("challenge_acks", fs.challenge_acks, cs.challenge_acks),
        ("bad_acks", fs.bad_acks, cs.bad_acks),
        ("dsack_sent", fs.dsack_sent, cs.dsack_sent),
        ("out_segs", fs.out_segs, cs.out_segs),
        ("out_rsts", fs.out_rsts, cs.out_rsts),
    ] {
        assert_eq!(f, c, "{name}");
    }
    assert!(fs.paws_drops == 1 && fs.dsack_sent == 1 && fs.challenge_acks == 2 && fs.bad_acks == 1, "{fs:?}");
    assert_eq!(compact.engine.connection_count(), 0);
}

#[test]
fn retransmitted_fin_is_acked_again_and_restarts_two_msl() {
    let mut h = Harness::with_config(full_options_config());
    let (c, peer) = into_time_wait(&mut h, true);
    assert_eq!((h.engine.slab_connection_count(), h.engine.time_wait_count()), (0, 1));
    assert_eq!(h.engine.connection_count(), 1, "a compact TIME-WAIT still counts as a connection");
    h.advance(Duration::from_secs(30));
    send!(h, FIN | ACK, seq = c.peer_seq, ack = c.our_seq + 1, ts = Some((peer.tsval + 1, peer.our_tsval)));
    let again = recv!(h, ACK, seq = c.our_seq + 1, ack = c.peer_seq + 1, sack = Vec::<(u32, u32)>::new());
    // TSval follows our clock; TS.Recent stays (the FIN is below RCV.NXT: RFC 7323 §4.3).
    assert_eq!(again.ts.unwrap(), (peer.our_tsval + 30_000, peer.tsval));
    h.advance(Duration::from_secs(59));
    assert_eq!(h.engine.time_wait_count(), 1, "2*MSL restarted by the FIN");
    h.advance(Duration::from_secs(1));
    assert_eq!(h.engine.time_wait_count(), 0);
    assert_eq!(h.engine.connection_count(), 0);
}

#[test]
fn acceptable_rst_removes_the_record() {
    let mut h = Harness::with_config(full_options_config());
    let (c, peer) = into_time_wait(&mut h, true);
    send!(h, RST, seq = c.peer_seq + 1, ts = Some((peer.tsval + 1, 0u32)));
    h.recv_nothing();
    assert_eq!(h.engine.connection_count(), 0);
    // The tuple now goes to the listener: an ACK there is answered with a RST.
    send!(h, ACK, seq = c.peer_seq + 1, ack = c.our_seq + 1);
    recv!(h, RST, seq = c.our_seq + 1);
}

#[test]
fn syn_with_newer_timestamp_reopens_even_below_rcv_nxt() {
    let mut h = Harness::with_config(full_options_config());
    let (c, peer) = into_time_wait(&mut h, true);
    h.advance(Duration::from_secs(1));
    // RFC 6191: a newer timestamp lets a lower ISN reopen.
    send!(h, SYN, seq = c.peer_seq - 500, mss = Some(1460u16), ts = Some((peer.tsval + 10, 0u32)));
    recv!(h, SYN | ACK, ack = c.peer_seq - 499);
    assert_eq!((h.engine.slab_connection_count(), h.engine.time_wait_count()), (1, 0));
}

#[test]
fn syn_with_older_timestamp_and_lower_isn_gets_the_ack() {
    let mut h = Harness::with_config(full_options_config());
    let (c, peer) = into_time_wait(&mut h, true);
    send!(h, SYN, seq = c.peer_seq - 500, ts = Some((peer.tsval - 10, 0u32)));
    recv!(h, ACK, seq = c.our_seq + 1, ack = c.peer_seq + 1);
    assert_eq!(h.engine.time_wait_count(), 1, "the record stays");
    // A higher ISN reopens whatever the timestamp (as the full connection does).
    send!(h, SYN, seq = c.peer_seq + 100_000, ts = Some((peer.tsval - 10, 0u32)));
    recv!(h, SYN | ACK, ack = c.peer_seq + 100_001);
}

#[test]
fn old_data_on_a_record_is_acked_and_new_data_ignored() {
    let mut h = Harness::new();
    let l = h.engine.listen(80, 16, None).unwrap();
    send!(h, SYN, seq = PEER_ISS, mss = Some(1460u16));
    let synack = recv!(h, SYN | ACK);
    send!(h, ACK, seq = PEER_ISS + 1, ack = synack.seq + 1);
    let handle = h.engine.accept(l).unwrap().unwrap();
    h.engine.close(h.now, handle).unwrap();
    recv!(h, FIN | ACK);
    send!(h, FIN | ACK, seq = PEER_ISS + 1, ack = synack.seq + 2);
    recv!(h, ACK, ack = PEER_ISS + 2);
    assert_eq!(h.engine.time_wait_count(), 1);
    // Data entirely below RCV.NXT (a retransmission): unacceptable, answered with an ACK.
    send!(h, ACK | PSH, seq = PEER_ISS - 3, ack = synack.seq + 2, payload = b"old!".to_vec());
    recv!(h, ACK, seq = synack.seq + 2, ack = PEER_ISS + 2);
    // Data at RCV.NXT after the FIN: acceptable, its text ignored (RFC 9293 §3.10.7.4 seventh
    // step), nothing sent, as the full connection does.
    send!(h, ACK | PSH, seq = PEER_ISS + 2, ack = synack.seq + 2, payload = b"late".to_vec());
    h.recv_nothing();
    assert_eq!(h.engine.time_wait_count(), 1);
    assert_eq!(h.engine.stats().out_rsts, 0);
}

#[test]
fn expiry_frees_the_tuple_and_the_engine_ends_empty() {
    let mut h = Harness::with_config(full_options_config());
    let (c, _) = into_time_wait(&mut h, true);
    let waited = h.advance_to_timeout();
    assert_eq!(waited, Duration::from_secs(60), "the record's 2*MSL is the engine's next timeout");
    assert_eq!(h.engine.connection_count(), 0);
    assert_eq!(h.engine.next_timeout(), None);
    send!(h, ACK, seq = c.peer_seq + 1, ack = c.our_seq + 1);
    recv!(h, RST, seq = c.our_seq + 1);
    let l = linerate_stack::engine::ListenerHandle { index: 0, generation: 1 };
    h.engine.unlisten(h.now, l).unwrap();
    assert!(h.engine.is_empty());
}

/// One short connection from peer port `port`: handshake, the application closes, FINs cross.
fn short_connection(h: &mut Harness, l: linerate_stack::engine::ListenerHandle, local: u16, port: u16) {
    h.local_port = local;
    h.peer_port = port;
    send!(h, SYN, seq = PEER_ISS, mss = Some(1460u16));
    let synack = recv!(h, SYN | ACK);
    send!(h, ACK, seq = PEER_ISS + 1, ack = synack.seq + 1);
    let handle = h.engine.accept(l).unwrap().expect("accepted");
    h.engine.close(h.now, handle).unwrap();
    recv!(h, FIN | ACK);
    send!(h, FIN | ACK, seq = PEER_ISS + 1, ack = synack.seq + 2);
    recv!(h, ACK);
}

#[test]
fn a_full_table_recycles_its_oldest_record() {
    let mut cfg = test_config();
    cfg.time_wait_capacity = Some(2);
    let mut h = Harness::with_config(cfg);
    let l = h.engine.listen(80, 16, None).unwrap();
    for port in [40001, 40002, 40003] {
        short_connection(&mut h, l, 80, port);
        h.advance(Duration::from_millis(10));
    }
    assert_eq!(h.engine.time_wait_count(), 2);
    assert_eq!(h.engine.stats().time_wait_recycled, 1);
    // The oldest (port 40001) is gone: its tuple is the listener's again.
    h.peer_port = 40001;
    send!(h, ACK, seq = PEER_ISS + 2, ack = 1u32);
    recv!(h, RST);
    // The newest is still in TIME-WAIT: a retransmitted FIN is ACKed.
    h.peer_port = 40003;
    send!(h, FIN | ACK, seq = PEER_ISS + 1, ack = 1u32);
    recv!(h, ACK, ack = PEER_ISS + 2);
}

#[test]
fn time_wait_capacity_zero_skips_time_wait() {
    let mut cfg = test_config();
    cfg.time_wait_capacity = Some(0);
    let mut h = Harness::with_config(cfg);
    let l = h.engine.listen(80, 16, None).unwrap();
    short_connection(&mut h, l, 80, 40001);
    assert_eq!(h.engine.connection_count(), 0);
    assert_eq!(h.engine.stats().time_wait_recycled, 1);
}

/// 100,000 closed short connections sit in TIME-WAIT at once on an engine with 64 connection
/// slots: the slab is empty, every one is a 64-byte record.
#[test]
fn a_hundred_thousand_time_waits_take_sixty_four_bytes_each() {
    const N: usize = 100_000;
    let mut cfg = test_config();
    cfg.max_connections = 64;
    cfg.time_wait_capacity = Some(N);
    let mut h = Harness::with_config(cfg);
    let listeners = [h.engine.listen(80, 16, None).unwrap(), h.engine.listen(81, 16, None).unwrap()];
    for i in 0..N {
        let (l, local) = if i % 2 == 0 { (listeners[0], 80) } else { (listeners[1], 81) };
        short_connection(&mut h, l, local, 1024 + (i / 2) as u16);
        assert_eq!(h.engine.slab_connection_count(), 0, "connection {i} left the slab at once");
    }
    assert_eq!(h.engine.time_wait_count(), N);
    assert_eq!(h.engine.connection_count(), N);
    assert_eq!(h.engine.stats().time_wait_recycled, 0);
    assert_eq!(h.engine.memory_used(), 0);
    assert_eq!(TIME_WAIT_ENTRY_BYTES, 64);
    let full = core::mem::size_of::<Connection>();
    println!("bytes per TIME-WAIT connection: {TIME_WAIT_ENTRY_BYTES} (record) vs {full} (Connection box)");
    assert!(full >= 16 * TIME_WAIT_ENTRY_BYTES, "a Connection is {full} bytes");
    // All expire together, 2*MSL after the last one entered.
    h.advance(Duration::from_secs(61));
    assert_eq!(h.engine.connection_count(), 0);
}

#[test]
fn a_held_time_wait_connection_converts_when_the_application_lets_go() {
    let mut h = Harness::with_config(full_options_config());
    let (c, _) = into_time_wait(&mut h, false);
    assert_eq!(h.engine.state(c.handle).unwrap(), State::TimeWait);
    assert_eq!((h.engine.slab_connection_count(), h.engine.time_wait_count()), (1, 0), "held: full TCB");
    h.advance(Duration::from_secs(20));
    h.engine.close(h.now, c.handle).unwrap();
    h.recv_nothing();
    assert_eq!((h.engine.slab_connection_count(), h.engine.time_wait_count()), (0, 1), "closed: a record");
    // The record keeps the connection's 2*MSL deadline, not a new one.
    assert_eq!(h.advance_to_timeout(), Duration::from_secs(40));
    assert_eq!(h.engine.connection_count(), 0);
}
