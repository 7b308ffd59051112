//! Crafted-frame tests: ARP, ICMP echo and errors, IPv4 fragments (RFC 826, 792, 1191,
//! RFC 9293 MUST-56).

mod support;
use linerate_stack::tcp::State;
use linerate_stack::wire::{
    ArpOperation, ArpPacket, ArpRepr, ChecksumMode, DstUnreachable, EtherType, EthernetAddress,
    EthernetFrame, EthernetRepr, IcmpQuote, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr,
};
use support::*;

fn icmp_frame(icmp: &Icmpv4Repr<'_>) -> Vec<u8> {
    let ip = Ipv4Repr {
        src_addr: PEER_IP,
        dst_addr: OUR_IP,
        protocol: IpProtocol::Icmp,
        payload_len: icmp.buffer_len(),
        ttl: 64,
        dscp_ecn: 0,
        ident: 9,
        dont_frag: false,
    };
    let mut buf = vec![0u8; 14 + ip.buffer_len()];
    let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
    EthernetRepr { src_addr: PEER_MAC, dst_addr: OUR_MAC, ethertype: EtherType::Ipv4 }.emit(&mut eth);
    let mut p = Ipv4Packet::new_unchecked(&mut buf[14..]);
    ip.emit(&mut p, ChecksumMode::Compute);
    let mut m = Icmpv4Packet::new_unchecked(&mut buf[34..]);
    icmp.emit(&mut m, ChecksumMode::Compute);
    buf
}

#[test]
fn arp_request_for_us_is_answered() {
    let h = Harness::new();
    assert_eq!(h.other.len(), 1);
    let eth = EthernetFrame::new_checked(&h.other[0][..]).unwrap();
    assert_eq!(eth.ethertype(), EtherType::Arp);
    let arp = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap()).unwrap();
    assert_eq!(arp.operation, ArpOperation::Reply);
    assert_eq!(arp.source_hardware_addr, OUR_MAC);
    assert_eq!(arp.target_protocol_addr, PEER_IP);
}

#[test]
fn connect_to_unknown_neighbour_arps_first_then_sends_syn() {
    let mut cfg = test_config();
    cfg.addr = OUR_IP;
    let mut h = Harness::with_config(cfg);
    let other = linerate_stack::wire::Ipv4Address::new(198, 18, 0, 9);
    h.engine.connect(h.now, (other, 80), None, None).unwrap();
    assert!(h.recv().is_none());
    let req = h.other.pop().expect("an ARP request");
    let eth = EthernetFrame::new_checked(&req[..]).unwrap();
    assert!(eth.dst_addr().is_broadcast());
    let arp = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap()).unwrap();
    assert_eq!((arp.operation, arp.target_protocol_addr), (ArpOperation::Request, other));
    let mac = EthernetAddress([2, 0, 0, 0, 0, 9]);
    let reply = ArpRepr {
        operation: ArpOperation::Reply,
        source_hardware_addr: mac,
        source_protocol_addr: other,
        target_hardware_addr: OUR_MAC,
        target_protocol_addr: OUR_IP,
    };
    let mut buf = vec![0u8; 42];
    let mut e = EthernetFrame::new_unchecked(&mut buf[..]);
    EthernetRepr { src_addr: mac, dst_addr: OUR_MAC, ethertype: EtherType::Arp }.emit(&mut e);
    reply.emit(&mut ArpPacket::new_unchecked(&mut buf[14..]));
    h.send_frame(buf);
    h.engine.poll_transmit(h.now, &mut h.dev);
    let syn = h.dev.tx.pop_front().expect("the SYN after resolution");
    assert_eq!(EthernetFrame::new_checked(&syn[..]).unwrap().dst_addr(), mac);
}

#[test]
fn icmp_echo_is_answered() {
    let mut h = Harness::new();
    h.other.clear();
    h.send_frame(icmp_frame(&Icmpv4Repr::EchoRequest { ident: 7, seq_no: 3, data: b"ping!" }));
    assert!(h.recv().is_none());
    let f = h.other.pop().expect("echo reply");
    let eth = EthernetFrame::new_checked(&f[..]).unwrap();
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    let repr =
        Icmpv4Repr::parse(&Icmpv4Packet::new_checked(ip.payload()).unwrap(), ChecksumMode::Compute).unwrap();
    assert_eq!(repr, Icmpv4Repr::EchoReply { ident: 7, seq_no: 3, data: b"ping!" });
    assert_eq!(h.engine.stats().icmp_out_echo_reps, 1);
}

fn quote_for(c: &Conn, h: &Harness, seq: u32) -> Vec<u8> {
    let mut q = Vec::new();
    q.extend_from_slice(&h.local_port.to_be_bytes());
    q.extend_from_slice(&h.peer_port.to_be_bytes());
    q.extend_from_slice(&seq.to_be_bytes());
    let _ = c;
    q
}

fn quoted_header() -> Ipv4Repr {
    Ipv4Repr {
        src_addr: OUR_IP,
        dst_addr: PEER_IP,
        protocol: IpProtocol::Tcp,
        payload_len: 1480,
        ttl: 63,
        dscp_ecn: 0,
        ident: 1,
        dont_frag: true,
    }
}

#[test]
fn fragmentation_needed_lowers_the_path_mss_and_resends() {
    let mut h = Harness::new();
    let c = h.active_open();
    h.engine.write(h.now, c.handle, &vec![1u8; 3000]).unwrap();
    recv!(h, ACK);
    recv!(h, ACK);
    let q = quote_for(&c, &h, c.our_seq);
    h.send_frame(icmp_frame(&Icmpv4Repr::DstUnreachable {
        reason: DstUnreachable::FragRequired,
        next_hop_mtu: 1000,
        quote: IcmpQuote { header: quoted_header(), payload: &q },
    }));
    assert_eq!(h.engine.info(h.now, c.handle).unwrap().snd_mss, 960);
    let s = recv!(h, ACK, seq = c.our_seq);
    assert_eq!(s.payload.len(), 960);
}

#[test]
fn icmp_errors_are_soft_for_established_connections() {
    let mut h = Harness::new();
    let c = h.active_open();
    h.engine.write(h.now, c.handle, b"x").unwrap();
    recv!(h, ACK | PSH);
    let q = quote_for(&c, &h, c.our_seq);
    h.send_frame(icmp_frame(&Icmpv4Repr::DstUnreachable {
        reason: DstUnreachable::PortUnreachable,
        next_hop_mtu: 0,
        quote: IcmpQuote { header: quoted_header(), payload: &q },
    }));
    assert_eq!(h.engine.state(c.handle).unwrap(), State::Established);
    assert!(h.engine.soft_error(c.handle).unwrap().is_some());
    // An error quoting a sequence number we never sent is ignored (RFC 5927).
    let before = h.engine.stats().icmp_in_errors;
    let q = quote_for(&c, &h, c.our_seq.wrapping_add(1 << 30));
    h.send_frame(icmp_frame(&Icmpv4Repr::DstUnreachable {
        reason: DstUnreachable::FragRequired,
        next_hop_mtu: 600,
        quote: IcmpQuote { header: quoted_header(), payload: &q },
    }));
    assert_eq!(h.engine.stats().icmp_in_errors, before + 1);
    assert_eq!(h.engine.info(h.now, c.handle).unwrap().snd_mss, 1460);
}

#[test]
fn ip_fragments_are_dropped_and_counted() {
    let mut h = Harness::new();
    let c = h.active_open();
    let seg = Seg {
        flags: ACK,
        seq: c.peer_seq,
        ack: c.our_seq,
        win: 1000,
        payload: b"frag".to_vec(),
        ..Seg::default()
    };
    let mut f = tcp_frame(&seg, (PEER_IP, 40000), (OUR_IP, 80), PEER_MAC, OUR_MAC);
    // Set MF and recompute the IPv4 header checksum.
    f[14 + 6] |= 0x20;
    f[14 + 10] = 0;
    f[14 + 11] = 0;
    let sum = linerate_stack::wire::checksum(&f[14..34]);
    f[14 + 10..14 + 12].copy_from_slice(&sum.to_be_bytes());
    h.send_frame(f);
    assert_eq!(h.engine.stats().ip_frag_drops, 1);
    assert_eq!(h.engine.readable_len(c.handle).unwrap(), 0);
}

/// With a SACK-less peer, SACK marks guessed from duplicate ACKs do not survive a path-MTU drop
/// (like an RTO, RFC 6298 §5.4): everything is resent from SND.UNA, the first segment included.
#[test]
fn fragmentation_needed_forgets_guessed_sack_marks_of_a_sackless_peer() {
    let mut h = Harness::new();
    let c = h.active_open();
    h.engine.write(h.now, c.handle, &vec![1u8; 3000]).unwrap();
    recv!(h, ACK);
    recv!(h, ACK);
    // One duplicate ACK: the emulation guesses that the segment after SND.UNA arrived.
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq);
    let info = h.engine.info(h.now, c.handle).unwrap();
    assert_eq!((info.sack, info.sacked), (false, 1), "{info:?}");
    let q = quote_for(&c, &h, c.our_seq);
    h.send_frame(icmp_frame(&Icmpv4Repr::DstUnreachable {
        reason: DstUnreachable::FragRequired,
        next_hop_mtu: 1000,
        quote: IcmpQuote { header: quoted_header(), payload: &q },
    }));
    let info = h.engine.info(h.now, c.handle).unwrap();
    assert_eq!(info.sacked, 0, "no guess survives the MTU drop: {info:?}");
    let s = recv!(h, ACK, seq = c.our_seq);
    assert_eq!(s.payload.len(), 960);
}
