//! TCP Fast Open (RFC 7413) on the engine: the server side with crafted segments (cookie
//! requests, data in the SYN with a valid, invalid or over-the-bound cookie), the client side
//! against a scripted peer (cookie caching, a server ignoring the data, a middlebox dropping
//! SYNs with data), and two engines against each other where the server application reads the
//! SYN's data before the handshake's third segment exists.

mod support;
use linerate_stack::engine::{Engine, EngineConfig, Event};
use linerate_stack::tcp::listener::{FastOpenListen, ListenerHandshake, SynCookieMode};
use linerate_stack::tcp::State;
use linerate_stack::wire::{
    ChecksumMode, EthernetFrame, EthernetRepr, FastOpenCookie, IpProtocol, Ipv4Packet, Ipv4Repr, TcpOptions,
    TcpPacket, TcpRepr,
};
use linerate_stack::ListenerHandle;
use support::*;

/// Rewrites a TCP frame built by the support code with a Fast Open option added.
fn with_cookie(frame: Vec<u8>, cookie: FastOpenCookie) -> Vec<u8> {
    let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
    let eth_repr =
        EthernetRepr { src_addr: eth.src_addr(), dst_addr: eth.dst_addr(), ethertype: eth.ethertype() };
    let ipp = Ipv4Packet::new_checked(eth.payload()).unwrap();
    let ip = Ipv4Repr::parse(&ipp, ChecksumMode::Compute).unwrap();
    let tp = TcpPacket::new_checked(ipp.payload()).unwrap();
    let mut tcp = TcpRepr::parse(&tp, ip.src_addr, ip.dst_addr, ChecksumMode::Compute).unwrap();
    tcp.options.fast_open_cookie = Some(cookie);
    let ip = Ipv4Repr { payload_len: tcp.buffer_len(), ..ip };
    let mut buf = vec![0u8; 14 + 20 + tcp.buffer_len()];
    eth_repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[14..]), ChecksumMode::Compute);
    tcp.emit(&mut TcpPacket::new_unchecked(&mut buf[34..]), ip.src_addr, ip.dst_addr, ChecksumMode::Compute);
    buf
}

/// The options of a TCP frame.
fn options_of(frame: &[u8]) -> Option<TcpOptions> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let ipp = Ipv4Packet::new_checked(eth.payload()).ok()?;
    let ip = Ipv4Repr::parse(&ipp, ChecksumMode::Compute).ok()?;
    if ip.protocol != IpProtocol::Tcp {
        return None;
    }
    let tp = TcpPacket::new_checked(ipp.payload()).ok()?;
    Some(TcpRepr::parse(&tp, ip.src_addr, ip.dst_addr, ChecksumMode::Compute).ok()?.options)
}

/// Delivers `seg` from the peer with a Fast Open option.
fn send_tfo(h: &mut Harness, seg: Seg, cookie: FastOpenCookie) {
    let frame = tcp_frame(&seg, (PEER_IP, h.peer_port), (OUR_IP, h.local_port), PEER_MAC, OUR_MAC);
    h.send_frame(with_cookie(frame, cookie));
}

/// The next segment the engine sends, with its Fast Open option.
fn recv_tfo(h: &mut Harness) -> (Seg, Option<FastOpenCookie>) {
    if h.dev.tx.is_empty() {
        h.engine.poll_transmit(h.now, &mut h.dev);
    }
    let cookie = h.dev.tx.front().and_then(|f| options_of(f)).and_then(|o| o.fast_open_cookie);
    (h.recv().expect("a segment"), cookie)
}

fn seg(flags: linerate_stack::wire::TcpFlags, seq: u32, ack: u32, payload: &[u8]) -> Seg {
    Seg { seq, ack, payload: payload.to_vec(), mss: Some(1460), ..Seg::new(flags) }
}

fn tfo_listener(h: &mut Harness, max_pending: usize) -> ListenerHandle {
    let l = h.engine.listen(80, 16, None).unwrap();
    let handshake = ListenerHandshake { syn_cookies: None, fast_open: Some(FastOpenListen { max_pending }) };
    h.engine.set_listener_handshake(l, handshake).unwrap();
    l
}

/// A cookie request and the handshake completed; returns the cookie.
fn get_cookie(h: &mut Harness, l: ListenerHandle) -> FastOpenCookie {
    send_tfo(h, seg(SYN, 1000, 0, b""), FastOpenCookie::default());
    let (synack, cookie) = recv_tfo(h);
    let cookie = cookie.expect("a cookie request is answered with a cookie");
    assert_eq!(cookie.as_bytes().len(), 8);
    send!(h, ACK, seq = 1001u32, ack = synack.seq + 1);
    h.engine.accept(l).unwrap().expect("first connection established");
    cookie
}

#[test]
fn server_hands_out_a_cookie_then_takes_data_in_the_syn() {
    let mut h = Harness::new();
    let l = tfo_listener(&mut h, 8);
    let cookie = get_cookie(&mut h, l);
    assert_eq!(h.engine.stats().tfo_cookie_reqs, 1);

    h.peer_port = 40001;
    send_tfo(&mut h, seg(SYN, 5000, 0, b"GET / HTTP/1.1\r\n\r\n"), cookie);
    // Before the third segment: the child is in the accept queue and its data is readable.
    let events = h.events();
    assert!(events.contains(&Event::Incoming(l)), "{events:?}");
    let c = h.engine.accept(l).unwrap().expect("the TFO child is accept-able at once");
    assert_eq!(h.engine.state(c).unwrap(), State::SynReceived);
    let mut buf = [0u8; 64];
    assert_eq!(h.engine.read(h.now, c, &mut buf).unwrap(), 18);
    assert_eq!(&buf[..18], b"GET / HTTP/1.1\r\n\r\n");
    // The SYN-ACK acknowledges the data too.
    let (synack, no_cookie) = recv_tfo(&mut h);
    assert!(synack.flags.syn() && synack.flags.ack());
    assert_eq!(synack.ack, 5001 + 18);
    assert_eq!(no_cookie, None);
    assert_eq!(h.engine.stats().tfo_passive, 1);
    // The third segment establishes it; the answer can then flow.
    h.engine.write(h.now, c, b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
    send!(h, ACK, seq = 5001u32 + 18, ack = synack.seq + 1);
    assert_eq!(h.engine.state(c).unwrap(), State::Established);
    recv!(h, ACK | PSH, payload = b"HTTP/1.1 200 OK\r\n\r\n".to_vec());
}

#[test]
fn invalid_cookie_falls_back_and_gets_a_fresh_cookie() {
    let mut h = Harness::new();
    let l = tfo_listener(&mut h, 8);
    let good = get_cookie(&mut h, l);
    h.peer_port = 40001;
    send_tfo(&mut h, seg(SYN, 5000, 0, b"data"), FastOpenCookie::new(&[0xAA; 8]).unwrap());
    let (synack, fresh) = recv_tfo(&mut h);
    assert_eq!(synack.ack, 5001, "only the SYN is acknowledged");
    assert_eq!(fresh, Some(good), "a fresh cookie for this client");
    assert_eq!(h.engine.accept(l).unwrap(), None, "a normal handshake: nothing to accept yet");
    assert_eq!(h.engine.stats().tfo_passive_fail, 1);
    // The client sends the data again after the handshake.
    send!(h, ACK | PSH, seq = 5001u32, ack = synack.seq + 1, payload = b"data".to_vec());
    let c = h.engine.accept(l).unwrap().expect("established");
    assert_eq!(h.engine.readable_len(c).unwrap(), 4);
}

#[test]
fn a_cookie_from_another_address_is_invalid() {
    let mut h = Harness::new();
    let l = tfo_listener(&mut h, 8);
    let cookie = get_cookie(&mut h, l);
    let frame = tcp_frame(&seg(SYN, 5000, 0, b"x"), (OTHER_IP, 40001), (OUR_IP, 80), PEER_MAC, OUR_MAC);
    h.send_frame(with_cookie(frame, cookie));
    assert_eq!(h.engine.stats().tfo_passive_fail, 1);
    assert_eq!(h.engine.stats().tfo_passive, 0);
}

const OTHER_IP: linerate_stack::wire::Ipv4Address = linerate_stack::wire::Ipv4Address::new(198, 18, 0, 3);

#[test]
fn pending_fast_open_children_are_bounded() {
    let mut h = Harness::new();
    let l = tfo_listener(&mut h, 1);
    let cookie = get_cookie(&mut h, l);
    h.peer_port = 40001;
    send_tfo(&mut h, seg(SYN, 5000, 0, b"one"), cookie);
    assert_eq!(recv_tfo(&mut h).0.ack, 5004);
    h.peer_port = 40002;
    send_tfo(&mut h, seg(SYN, 6000, 0, b"two"), cookie);
    assert_eq!(recv_tfo(&mut h).0.ack, 6001, "over the bound: the SYN only");
    assert_eq!(h.engine.stats().tfo_pending_overflow, 1);
    assert_eq!(h.engine.stats().tfo_passive, 1);
}

#[test]
fn with_syn_cookies_in_force_syn_data_is_not_taken() {
    let mut h = Harness::new();
    let l = h.engine.listen(80, 16, None).unwrap();
    let handshake = ListenerHandshake {
        syn_cookies: Some(SynCookieMode::Always),
        fast_open: Some(FastOpenListen::default()),
    };
    h.engine.set_listener_handshake(l, handshake).unwrap();
    send_tfo(&mut h, seg(SYN, 5000, 0, b"data"), FastOpenCookie::new(&[1; 8]).unwrap());
    assert_eq!(recv_tfo(&mut h).0.ack, 5001);
    assert_eq!(h.engine.connection_count(), 0);
}

// ---- client side against a scripted server ----

fn client_first_connection(h: &mut Harness, server_cookie: FastOpenCookie) {
    let (c, n) = h.engine.connect_fast_open(h.now, (PEER_IP, 80), Some(40000), None, b"hello").unwrap();
    assert_eq!(n, 5);
    let (syn, request) = recv_tfo(h);
    assert!(syn.payload.is_empty(), "no cookie yet: no data in the SYN");
    assert_eq!(request, Some(FastOpenCookie::default()), "a cookie request");
    let frame =
        tcp_frame(&seg(SYN | ACK, 9000, syn.seq + 1, b""), (PEER_IP, 80), (OUR_IP, 40000), PEER_MAC, OUR_MAC);
    h.send_frame(with_cookie(frame, server_cookie));
    recv!(h, ACK | PSH, payload = b"hello".to_vec());
    assert!(h.engine.has_fast_open_cookie(PEER_IP));
    h.engine.abort(h.now, c).unwrap();
    let _ = h.recv();
}

#[test]
fn client_caches_the_cookie_and_sends_data_in_the_next_syn() {
    let mut h = Harness::new();
    let cookie = FastOpenCookie::new(&[7; 8]).unwrap();
    client_first_connection(&mut h, cookie);
    let (c, _) = h.engine.connect_fast_open(h.now, (PEER_IP, 80), Some(40001), None, b"GET /").unwrap();
    let (syn, sent_cookie) = recv_tfo(&mut h);
    assert_eq!(syn.flags, SYN);
    assert_eq!(syn.payload, b"GET /");
    assert_eq!(sent_cookie, Some(cookie));
    let synack = seg(SYN | ACK, 9000, syn.seq + 1 + 5, b"");
    h.send_frame(tcp_frame(&synack, (PEER_IP, 80), (OUR_IP, 40001), PEER_MAC, OUR_MAC));
    recv!(h, ACK, seq = syn.seq + 6, ack = 9001u32, payload = Vec::new());
    h.recv_nothing();
    assert_eq!(h.engine.state(c).unwrap(), State::Established);
    assert_eq!(h.engine.stats().tfo_active, 1);
}

#[test]
fn client_resends_data_the_server_ignored() {
    let mut h = Harness::new();
    let cookie = FastOpenCookie::new(&[7; 8]).unwrap();
    client_first_connection(&mut h, cookie);
    h.engine.connect_fast_open(h.now, (PEER_IP, 80), Some(40001), None, b"GET /").unwrap();
    let (syn, _) = recv_tfo(&mut h);
    assert_eq!(syn.payload, b"GET /");
    // The server acknowledges only the SYN (and hands out a new cookie).
    let fresh = FastOpenCookie::new(&[9; 8]).unwrap();
    let frame =
        tcp_frame(&seg(SYN | ACK, 9000, syn.seq + 1, b""), (PEER_IP, 80), (OUR_IP, 40001), PEER_MAC, OUR_MAC);
    h.send_frame(with_cookie(frame, fresh));
    recv!(h, ACK | PSH, seq = syn.seq + 1, payload = b"GET /".to_vec());
    assert_eq!(h.engine.stats().tfo_active_fail, 1);
    assert!(h.engine.has_fast_open_cookie(PEER_IP), "the new cookie replaces the old");
}

#[test]
fn a_middlebox_dropping_syns_with_data_causes_fallback_not_a_hang() {
    let mut h = Harness::new();
    client_first_connection(&mut h, FastOpenCookie::new(&[7; 8]).unwrap());
    let (c, _) = h.engine.connect_fast_open(h.now, (PEER_IP, 80), Some(40001), None, b"GET /").unwrap();
    let (syn, _) = recv_tfo(&mut h);
    assert_eq!(syn.payload, b"GET /");
    // Dropped. The retransmission is a bare SYN without the option.
    h.advance_to_timeout();
    let (retry, option) = recv_tfo(&mut h);
    assert_eq!((retry.flags, retry.seq, retry.payload.len()), (SYN, syn.seq, 0));
    assert_eq!(option, None);
    let synack = seg(SYN | ACK, 9000, syn.seq + 1, b"");
    h.send_frame(tcp_frame(&synack, (PEER_IP, 80), (OUR_IP, 40001), PEER_MAC, OUR_MAC));
    recv!(h, ACK | PSH, seq = syn.seq + 1, payload = b"GET /".to_vec());
    assert_eq!(h.engine.state(c).unwrap(), State::Established);
    assert_eq!(h.engine.stats().tfo_active_fail, 1);
    assert!(!h.engine.has_fast_open_cookie(PEER_IP), "that server's SYN data is not tried again");
    // The next connect sends a cookie request with no data.
    h.engine.connect_fast_open(h.now, (PEER_IP, 80), Some(40002), None, b"again").unwrap();
    let (syn, option) = recv_tfo(&mut h);
    assert!(syn.payload.is_empty());
    assert_eq!(option, Some(FastOpenCookie::default()));
}

// ---- two engines ----

/// Moves every frame each engine has to send to the other one, until both are quiet.
fn shuttle(
    client: &mut (Engine, TestDevice),
    server: &mut (Engine, TestDevice),
    now: linerate_stack::time::Instant,
) {
    for _ in 0..32 {
        client.0.poll_transmit(now, &mut client.1);
        server.0.poll_transmit(now, &mut server.1);
        if client.1.tx.is_empty() && server.1.tx.is_empty() {
            return;
        }
        while let Some(mut f) = client.1.tx.pop_front() {
            server.0.receive(now, &mut f);
        }
        while let Some(mut f) = server.1.tx.pop_front() {
            client.0.receive(now, &mut f);
        }
    }
    panic!("the engines keep talking");
}

#[test]
fn engine_to_engine_second_connection_is_read_before_the_handshake_completes() {
    let now = linerate_stack::time::Instant::from_millis(1_000);
    let mut server = (Engine::new(test_config(), now), TestDevice::default());
    let mut ccfg = EngineConfig::new(PEER_IP, 24, PEER_MAC, 7);
    ccfg.tcp = test_config().tcp;
    let mut client = (Engine::new(ccfg, now), TestDevice::default());
    let l = server.0.listen(80, 16, None).unwrap();
    let handshake = ListenerHandshake { syn_cookies: None, fast_open: Some(FastOpenListen::default()) };
    server.0.set_listener_handshake(l, handshake).unwrap();

    let (first, _) = client.0.connect_fast_open(now, (OUR_IP, 80), None, None, b"one").unwrap();
    shuttle(&mut client, &mut server, now);
    assert!(client.0.has_fast_open_cookie(OUR_IP));
    assert_eq!(client.0.state(first).unwrap(), State::Established);

    client.0.connect_fast_open(now, (OUR_IP, 80), None, None, b"two").unwrap();
    client.0.poll_transmit(now, &mut client.1);
    let syn = client.1.tx.pop_front().expect("the SYN");
    assert_eq!(parse_tcp(&syn).unwrap().1.payload, b"two");
    server.0.receive(now, &mut syn.clone());
    // Only the SYN has reached the server; the SYN-ACK has not even been sent.
    let mut accepted = Vec::new();
    while let Some(c) = server.0.accept(l).unwrap() {
        let mut buf = [0u8; 8];
        let n = server.0.read(now, c, &mut buf).unwrap();
        accepted.push((server.0.state(c).unwrap(), buf[..n].to_vec()));
    }
    assert_eq!(accepted, vec![(State::Established, b"one".to_vec()), (State::SynReceived, b"two".to_vec())]);
    let stats = server.0.stats();
    assert_eq!((stats.tfo_passive, stats.tfo_cookie_reqs), (1, 1));
    shuttle(&mut client, &mut server, now);
    assert_eq!(client.0.stats().tfo_active, 1);
}

#[test]
fn rotated_key_keeps_old_cookies_valid_for_the_grace_period() {
    let mut cfg = test_config();
    cfg.handshake.fast_open_grace = linerate_stack::time::Duration::from_secs(60);
    let mut h = Harness::with_config(cfg);
    let l = tfo_listener(&mut h, 8);
    let old = get_cookie(&mut h, l);
    h.engine.rotate_fast_open_key(h.now, *b"a-brand-new-key!");
    h.peer_port = 40001;
    send_tfo(&mut h, seg(SYN, 5000, 0, b"in grace"), old);
    assert_eq!(recv_tfo(&mut h).0.ack, 5001 + 8, "the old key is still accepted");
    h.advance(linerate_stack::time::Duration::from_secs(61));
    while h.recv().is_some() {}
    h.peer_port = 40002;
    send_tfo(&mut h, seg(SYN, 6000, 0, b"too late"), old);
    let (synack, fresh) = recv_tfo(&mut h);
    assert_eq!(synack.ack, 6001, "after the grace period: a normal handshake");
    assert!(fresh.is_some_and(|c| c != old), "with a cookie under the new key");
}

#[test]
fn a_cached_cookie_survives_a_connect_without_data() {
    let mut h = Harness::new();
    let cookie = FastOpenCookie::new(&[7; 8]).unwrap();
    client_first_connection(&mut h, cookie);
    h.engine.connect_fast_open(h.now, (PEER_IP, 80), Some(40001), None, b"").unwrap();
    let (syn, sent) = recv_tfo(&mut h);
    assert_eq!((syn.payload.len(), sent), (0, Some(cookie)));
    let synack = seg(SYN | ACK, 9000, syn.seq + 1, b"");
    h.send_frame(tcp_frame(&synack, (PEER_IP, 80), (OUR_IP, 40001), PEER_MAC, OUR_MAC));
    recv!(h, ACK);
    assert!(h.engine.has_fast_open_cookie(PEER_IP));
    assert_eq!((h.engine.stats().tfo_active, h.engine.stats().tfo_active_fail), (0, 0));
}

#[test]
fn fast_open_data_is_reported_readable_right_after_accept() {
    let mut h = Harness::new();
    let l = tfo_listener(&mut h, 8);
    let cookie = get_cookie(&mut h, l);
    let _ = h.events();
    h.peer_port = 40001;
    send_tfo(&mut h, seg(SYN, 5000, 0, b"early"), cookie);
    assert_eq!(h.events(), vec![Event::Incoming(l)]);
    let c = h.engine.accept(l).unwrap().expect("TFO child");
    assert_eq!(h.events(), vec![Event::Readable(c)]);
}
