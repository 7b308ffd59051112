//! Crafted-segment tests of SYN cookies at the engine's listener (RFC 4987 §3.6): round trips
//! with and without timestamps, expiry, a wrong 4-tuple, MSS rounding, forged-ACK floods, and the
//! SYN queue's oldest-first eviction with cookies off.

mod support;
use linerate_stack::tcp::listener::{ListenerHandshake, SynCookieMode};
use linerate_stack::tcp::{State, TcpConfig};
use linerate_stack::time::Duration;
use linerate_stack::ListenerHandle;
use support::*;

fn cookies(h: &mut Harness, backlog: usize, mode: SynCookieMode) -> ListenerHandle {
    let l = h.engine.listen(80, backlog, None).unwrap();
    let handshake = ListenerHandshake { syn_cookies: Some(mode), fast_open: None };
    h.engine.set_listener_handshake(l, handshake).unwrap();
    l
}

fn harness_with_options() -> Harness {
    let mut cfg = test_config();
    cfg.tcp = TcpConfig::default();
    Harness::with_config(cfg)
}

#[test]
fn round_trip_with_timestamps_recovers_window_scale_and_sack() {
    let mut h = harness_with_options();
    let l = cookies(&mut h, 8, SynCookieMode::Always);
    send!(
        h,
        SYN,
        seq = 1000u32,
        mss = Some(1460u16),
        wscale = Some(7u8),
        sack_perm = true,
        ts = Some((500u32, 0u32))
    );
    let synack = recv!(h, SYN | ACK, ack = 1001u32, sack_perm = true);
    assert!(synack.wscale.is_some(), "window scale offered back: {synack:?}");
    let (tsval, tsecr) = synack.ts.expect("timestamps answered");
    assert_eq!(tsecr, 500);
    assert_eq!(h.engine.connection_count(), 0, "a cookie SYN-ACK keeps no state");
    assert_eq!(h.engine.stats().syncookies_sent, 1);

    h.advance(Duration::from_millis(30));
    send!(h, ACK, seq = 1001u32, ack = synack.seq + 1, win = 1000u16, ts = Some((530u32, tsval)));
    assert_eq!(h.engine.stats().syncookies_recv, 1);
    let c = h.engine.accept(l).unwrap().expect("cookie ACK builds the connection");
    let info = h.engine.info(h.now, c).unwrap();
    assert_eq!(info.state, State::Established);
    assert_eq!(info.snd_wscale, 7, "window scale recovered from TSecr");
    assert!(info.sack && info.timestamps);
    assert_eq!(info.snd_wnd, 1000 << 7);
    assert_eq!(info.snd_mss, 1460 - 12, "MSS from the cookie, less the timestamp option");

    // The connection carries data both ways.
    h.engine.write(h.now, c, b"hello").unwrap();
    let data = recv!(h, ACK | PSH, seq = synack.seq + 1, payload = b"hello".to_vec());
    assert!(data.ts.is_some_and(|(v, _)| v >= tsval), "our timestamps stay monotone");
}

#[test]
fn round_trip_without_timestamps_loses_wscale_and_sack_but_works() {
    let mut h = harness_with_options();
    let l = cookies(&mut h, 8, SynCookieMode::Always);
    send!(h, SYN, seq = 1000u32, mss = Some(1460u16), wscale = Some(7u8), sack_perm = true);
    let synack =
        recv!(h, SYN | ACK, ack = 1001u32, wscale = None::<u8>, sack_perm = false, ts = None::<(u32, u32)>);
    send!(h, ACK | PSH, seq = 1001u32, ack = synack.seq + 1, payload = b"request".to_vec());
    let c = h.engine.accept(l).unwrap().expect("established");
    let info = h.engine.info(h.now, c).unwrap();
    assert_eq!((info.snd_wscale, info.rcv_wscale, info.sack, info.timestamps), (0, 0, false, false));
    let mut buf = [0u8; 16];
    assert_eq!(h.engine.read(h.now, c, &mut buf).unwrap(), 7, "data on the cookie ACK is delivered");
    assert_eq!(&buf[..7], b"request");
}

#[test]
fn expired_cookie_is_refused_with_rst_and_no_state() {
    let mut h = Harness::new();
    cookies(&mut h, 8, SynCookieMode::Always);
    send!(h, SYN, seq = 1000u32, mss = Some(1460u16));
    let synack = recv!(h, SYN | ACK);
    h.advance(Duration::from_secs(200));
    send!(h, ACK, seq = 1001u32, ack = synack.seq + 1);
    recv!(h, RST, seq = synack.seq + 1);
    assert_eq!(h.engine.stats().syncookies_failed, 1);
    assert_eq!(h.engine.connection_count(), 0);
}

#[test]
fn cookie_is_still_good_after_a_minute() {
    let mut h = Harness::new();
    let l = cookies(&mut h, 8, SynCookieMode::Always);
    send!(h, SYN, seq = 1000u32, mss = Some(1460u16));
    let synack = recv!(h, SYN | ACK);
    h.advance(Duration::from_secs(60));
    send!(h, ACK, seq = 1001u32, ack = synack.seq + 1);
    assert!(h.engine.accept(l).unwrap().is_some());
}

#[test]
fn cookie_from_another_four_tuple_fails() {
    let mut h = Harness::new();
    cookies(&mut h, 8, SynCookieMode::Always);
    send!(h, SYN, seq = 1000u32, mss = Some(1460u16));
    let synack = recv!(h, SYN | ACK);
    h.peer_port += 1;
    send!(h, ACK, seq = 1001u32, ack = synack.seq + 1);
    recv!(h, RST, seq = synack.seq + 1);
    // The right tuple but another client ISN fails too.
    h.peer_port -= 1;
    send!(h, ACK, seq = 2001u32, ack = synack.seq + 1);
    recv!(h, RST);
    assert_eq!(h.engine.stats().syncookies_failed, 2);
    assert_eq!(h.engine.connection_count(), 0);
}

#[test]
fn mss_is_rounded_down_to_the_cookie_table() {
    for (offered, expected) in
        [(1460u16, 1460u32), (1459, 1440), (1300, 1300), (1299, 1200), (500, 536), (9000, 1460)]
    {
        let mut h = Harness::new();
        let l = cookies(&mut h, 8, SynCookieMode::Always);
        send!(h, SYN, seq = 1000u32, mss = Some(offered));
        let synack = recv!(h, SYN | ACK, mss = Some(1460u16));
        send!(h, ACK, seq = 1001u32, ack = synack.seq + 1);
        let c = h.engine.accept(l).unwrap().expect("established");
        // 9000 rounds to 8960, then our own path MSS (1460) bounds it.
        assert_eq!(h.engine.info(h.now, c).unwrap().snd_mss, expected, "client MSS {offered}");
    }
}

#[test]
fn forged_ack_flood_creates_no_state() {
    let mut h = Harness::new();
    let l = cookies(&mut h, 2, SynCookieMode::Auto);
    // Fill the SYN queue so the listener is in cookie mode.
    for i in 0..3u16 {
        h.peer_port = 41000 + i;
        send!(h, SYN, seq = 1000u32);
    }
    while h.recv().is_some() {}
    assert_eq!(h.engine.stats().syncookies_sent, 1);
    let (live, memory) = (h.engine.connection_count(), h.engine.memory_used());
    let mut x = 0x1234_5678_9abc_def0u64;
    for i in 0..20_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        h.peer_port = 1024 + (x % 30_000) as u16; // never one of the half-open tuples
        send!(h, ACK, seq = (x >> 32) as u32, ack = x as u32);
        if i % 64 == 0 {
            while h.recv().is_some() {}
        }
    }
    assert_eq!(h.engine.stats().syncookies_failed, 20_000);
    assert_eq!(h.engine.stats().syncookies_recv, 0);
    assert_eq!(h.engine.connection_count(), live);
    assert_eq!(h.engine.memory_used(), memory);
    assert_eq!(h.engine.syn_queue_len(l).unwrap(), 2);
    assert_eq!(h.engine.accept(l).unwrap(), None);
}

#[test]
fn auto_mode_answers_with_cookies_only_when_the_syn_queue_is_full() {
    let mut h = Harness::new();
    let l = cookies(&mut h, 2, SynCookieMode::Auto);
    for i in 0..2u16 {
        h.peer_port = 41000 + i;
        send!(h, SYN, seq = 1000u32);
        recv!(h, SYN | ACK);
    }
    assert_eq!(h.engine.stats().syncookies_sent, 0);
    assert_eq!(h.engine.connection_count(), 2);
    // Queue full: a legitimate client gets a cookie and still connects.
    h.peer_port = 42000;
    send!(h, SYN, seq = 7000u32, mss = Some(1460u16));
    let synack = recv!(h, SYN | ACK, ack = 7001u32);
    assert_eq!(h.engine.stats().syncookies_sent, 1);
    assert_eq!(h.engine.connection_count(), 2);
    send!(h, ACK, seq = 7001u32, ack = synack.seq + 1);
    let c = h.engine.accept(l).unwrap().expect("the cookie client is accepted");
    assert_eq!(h.engine.state(c).unwrap(), State::Established);
    assert_eq!(h.engine.syn_queue_len(l).unwrap(), 2, "the half-open entries are untouched");
}

#[test]
fn auto_mode_without_recent_cookies_resets_stray_acks_without_counting_them() {
    let mut h = Harness::new();
    cookies(&mut h, 2, SynCookieMode::Auto);
    send!(h, ACK, seq = 5u32, ack = 77u32);
    recv!(h, RST, seq = 77u32);
    assert_eq!(h.engine.stats().syncookies_failed, 0);
}

#[test]
fn cookies_off_evicts_the_oldest_half_open_connection() {
    let mut h = Harness::new();
    let l = cookies(&mut h, 2, SynCookieMode::Off);
    let mut synacks = Vec::new();
    for i in 0..5u16 {
        h.peer_port = 41000 + i;
        send!(h, SYN, seq = 1000u32);
        synacks.push(recv!(h, SYN | ACK));
    }
    assert_eq!(h.engine.stats().syn_queue_evictions, 3);
    assert_eq!(h.engine.stats().syncookies_sent, 0);
    assert_eq!(h.engine.connection_count(), 2);
    assert_eq!(h.engine.syn_queue_len(l).unwrap(), 2);
    // The oldest were evicted: the first client's ACK meets LISTEN and is reset.
    h.peer_port = 41000;
    send!(h, ACK, seq = 1001u32, ack = synacks[0].seq + 1);
    recv!(h, RST);
    // The newest is still there and completes.
    h.peer_port = 41004;
    send!(h, ACK, seq = 1001u32, ack = synacks[4].seq + 1);
    assert!(h.engine.accept(l).unwrap().is_some());
}

#[test]
fn half_open_connections_retry_the_syn_ack_with_backoff_then_go() {
    let mut h = Harness::new();
    let l = cookies(&mut h, 4, SynCookieMode::Auto);
    send!(h, SYN, seq = 1000u32);
    recv!(h, SYN | ACK);
    let mut gaps = Vec::new();
    loop {
        let gap = h.advance_to_timeout();
        match h.recv() {
            Some(s) => {
                assert!(s.flags.syn() && s.flags.ack());
                gaps.push(gap.as_secs_f64().round() as u64);
            }
            None => break,
        }
    }
    assert_eq!(gaps, vec![1, 2, 4, 8, 16], "tcp_synack_retries = 5, doubling from 1 s");
    assert_eq!(h.engine.syn_queue_len(l).unwrap(), 0);
    assert_eq!(h.engine.connection_count(), 0);
}
