//! Our codecs against frames the Linux kernel really sent.
//!
//! The pcaps in `tests/captures/` were recorded by `tests/captures/capture.sh` (three network
//! namespaces, tcpdump on a veth; see the script for the topology). Sequence numbers, ports of
//! the client side and timestamps change on every regeneration, so those are checked by their
//! relations (SYN-ACK acks SYN + 1...); everything the script pins (server ports, MSS from the
//! 1500-byte MTU, the 1000-byte MTU of the middle hop, payloads, ICMP ids) is checked exactly.
//!
//! Beyond parsing, every complete TCP segment and IPv4 header is re-emitted from its parsed
//! representation and must come out byte-for-byte identical: our canonical option order is the
//! one Linux uses.

use linerate_stack::wire::{
    pretty_frame, ArpOperation, ArpPacket, ArpRepr, ChecksumMode, DstUnreachable, EtherType, EthernetAddress,
    EthernetFrame, EthernetRepr, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr,
    SeqNumber, TcpFlags, TcpOption, TcpOptionIter, TcpPacket, TcpRepr,
};

const CLIENT: Ipv4Address = Ipv4Address::new(198, 18, 2, 1);
const SERVER: Ipv4Address = Ipv4Address::new(198, 18, 2, 2);
const FAR_HOST: Ipv4Address = Ipv4Address::new(198, 18, 3, 2);
const MSS: usize = 1448; // 1500 - 20 (IP) - 20 (TCP) - 12 (timestamps)

/// One pcap record: the captured bytes and the length the frame had on the wire.
struct Record<'a> {
    data: &'a [u8],
    orig_len: usize,
}

impl Record<'_> {
    fn is_complete(&self) -> bool {
        self.data.len() == self.orig_len
    }
}

/// A minimal reader for classic pcap files (either byte order, micro- or nanosecond stamps),
/// Ethernet link type only. Panics on anything else: these are our own committed files.
fn read_pcap(file: &[u8]) -> Vec<Record<'_>> {
    let magic = u32::from_le_bytes(file[0..4].try_into().unwrap());
    let le = match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        other => panic!("not a pcap file (magic {other:08x})"),
    };
    let u32_at = |at: usize| {
        let b: [u8; 4] = file[at..at + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    assert_eq!(u32_at(20), 1, "link type must be Ethernet");
    let mut records = Vec::new();
    let mut at = 24;
    while at < file.len() {
        let incl_len = u32_at(at + 8) as usize;
        let orig_len = u32_at(at + 12) as usize;
        let data = &file[at + 16..at + 16 + incl_len];
        records.push(Record { data, orig_len });
        at += 16 + incl_len;
    }
    records
}

/// The Ethernet and IPv4 layers of a frame, both checked (IPv4 checksum verified) and both
/// re-emitted to prove our encoder writes the same header bytes.
fn ipv4_layer(frame: &[u8]) -> (EthernetRepr, Ipv4Repr, &[u8]) {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    let eth_repr = EthernetRepr::parse(&eth).unwrap();
    assert_eq!(eth_repr.ethertype, EtherType::Ipv4);
    let ip = Ipv4Packet::new_checked(eth.payload_ref()).unwrap();
    let ip_repr = Ipv4Repr::parse(&ip, ChecksumMode::Compute).unwrap();
    assert_eq!(ip.header_len(), 20, "Linux sends no IP options here");
    let mut header = [0u8; 20];
    ip_repr.emit(&mut Ipv4Packet::new_unchecked(&mut header[..]), ChecksumMode::Compute);
    assert_eq!(&header[..], &eth.payload_ref()[..20], "re-emitted IPv4 header differs");
    (eth_repr, ip_repr, ip.payload_ref())
}

/// A complete TCP segment: parsed with checksum verification and re-emitted byte for byte.
fn tcp_segment(frame: &[u8]) -> TcpRepr<'_> {
    let (_, ip, segment) = ipv4_layer(frame);
    assert_eq!(ip.protocol, IpProtocol::Tcp);
    let packet = TcpPacket::new_checked(segment).unwrap();
    let repr = TcpRepr::parse(&packet, ip.src_addr, ip.dst_addr, ChecksumMode::Compute).unwrap();
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut TcpPacket::new_unchecked(&mut out[..]), ip.src_addr, ip.dst_addr, ChecksumMode::Compute);
    assert_eq!(out, segment, "re-emitted TCP segment differs: {}", pretty_frame(frame));
    repr
}

/// The TCP header of a possibly truncated frame (snaplen 96), without checksums.
fn tcp_header_only(frame: &[u8]) -> TcpRepr<'_> {
    let ip = Ipv4Packet::new_unchecked(&frame[14..]);
    assert_eq!(ip.protocol(), IpProtocol::Tcp);
    let packet = TcpPacket::new_checked(&frame[14 + ip.header_len()..]).unwrap();
    TcpRepr::parse(&packet, ip.src_addr(), ip.dst_addr(), ChecksumMode::Skip).unwrap()
}

fn option_kinds(options: &[u8]) -> Vec<u8> {
    TcpOptionIter::new(options)
        .map(|o| match o.unwrap() {
            TcpOption::EndOfList => 0,
            TcpOption::NoOperation => 1,
            TcpOption::MaxSegmentSize(_) => 2,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 4,
            TcpOption::Sack(_) => 5,
            TcpOption::Timestamps(_) => 8,
            TcpOption::FastOpen(_) => 34,
            TcpOption::Unknown { kind, .. } => kind,
        })
        .collect()
}

#[test]
fn tcp_handshake_data_fin_and_rst() {
    let file = include_bytes!("captures/tcp_handshake.pcap");
    let records = read_pcap(file);
    assert_eq!(records.len(), 10);
    assert!(records.iter().all(Record::is_complete));
    let segs: Vec<TcpRepr<'_>> = records.iter().map(|r| tcp_segment(r.data)).collect();

    let syn = &segs[0];
    assert_eq!(syn.flags, TcpFlags::SYN);
    assert_eq!(syn.dst_port, 7000);
    assert_eq!(syn.options.mss, Some(1460));
    assert!(syn.options.sack_permitted);
    let ts = syn.options.timestamps.expect("SYN carries timestamps");
    assert_eq!(ts.tsecr, 0);
    assert!(matches!(syn.options.window_scale, Some(1..=14)));
    let syn_options = TcpPacket::new_checked(&records[0].data[34..]).unwrap();
    // Linux's SYN layout: mss, sackOK, TS, nop, wscale.
    assert_eq!(option_kinds(syn_options.options()), [2, 4, 8, 1, 3]);

    let syn_ack = &segs[1];
    assert_eq!(syn_ack.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!((syn_ack.src_port, syn_ack.dst_port), (7000, syn.src_port));
    assert_eq!(syn_ack.ack_number, syn.seq_number + 1);
    assert_eq!(syn_ack.options.timestamps.unwrap().tsecr, ts.tsval);
    assert!(syn_ack.options.sack_permitted && syn_ack.options.mss == Some(1460));

    let ack = &segs[2];
    assert_eq!(ack.flags, TcpFlags::ACK);
    assert_eq!(ack.ack_number, syn_ack.seq_number + 1);
    assert!(ack.options.mss.is_none() && ack.options.timestamps.is_some());

    let data = &segs[3];
    assert_eq!(data.flags, TcpFlags::PSH | TcpFlags::ACK);
    assert_eq!(data.payload, b"hello linerate\n");
    assert_eq!(data.seq_number, syn.seq_number + 1);

    let fins: Vec<&TcpRepr<'_>> = segs.iter().filter(|s| s.flags.fin()).collect();
    assert_eq!(fins.len(), 2, "one FIN each way");
    assert_eq!(fins[0].seq_number, data.seq_number + data.payload.len() as u32);
    assert_eq!(fins[1].src_port, 7000);
    assert_eq!(segs[7].ack_number, fins[1].seq_number + 1, "last ACK covers the server's FIN");

    let (syn2, rst) = (&segs[8], &segs[9]);
    assert_eq!((syn2.flags, syn2.dst_port), (TcpFlags::SYN, 7001));
    assert_eq!(rst.flags, TcpFlags::RST | TcpFlags::ACK);
    assert_eq!(rst.ack_number, syn2.seq_number + 1);
    assert_eq!((rst.seq_number, rst.window_len), (SeqNumber(0), 0));
    assert!(rst.options.timestamps.is_none());

    let text = pretty_frame(records[0].data).to_string();
    assert!(
        text.starts_with(&format!("198.18.2.1.{} > 198.18.2.2.7000: Flags [S], seq ", syn.src_port)),
        "{text}"
    );
    assert!(text.contains(",nop,wscale ") && text.contains("options [mss 1460,sackOK,TS val "), "{text}");
    let text = pretty_frame(records[9].data).to_string();
    assert!(text.contains("Flags [R.], seq 0, ack ") && text.ends_with("win 0, length 0"), "{text}");
}

#[test]
fn tcp_sack_blocks_after_one_dropped_segment() {
    let file = include_bytes!("captures/tcp_sack.pcap");
    let records = read_pcap(file);
    let from_client = |s: &&TcpRepr<'_>| s.dst_port == 7002;
    let mut segs = Vec::new();
    for r in &records {
        // Data segments are cut at 96 bytes; everything else was captured whole.
        segs.push(if r.is_complete() { tcp_segment(r.data) } else { tcp_header_only(r.data) });
    }
    let truncated = records.iter().filter(|r| !r.is_complete()).count();
    assert!(truncated >= 20, "the bulk data segments are truncated by the snaplen");

    let with_sack: Vec<&TcpRepr<'_>> = segs.iter().filter(|s| !s.options.sack_blocks.is_empty()).collect();
    assert!(with_sack.len() >= 3, "duplicate ACKs carry SACK blocks");
    let hole = with_sack[0].ack_number;
    let mut last_right = hole;
    for dup in &with_sack {
        assert_eq!(dup.src_port, 7002);
        assert_eq!(dup.ack_number, hole, "all duplicate ACKs ack the start of the hole");
        let blocks = dup.options.sack_blocks.as_slice();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].left, hole + MSS as u32, "exactly one segment is missing");
        assert!(blocks[0].right > last_right, "the block grows as data arrives");
        assert_eq!((blocks[0].right - blocks[0].left) as usize % MSS, 0);
        last_right = blocks[0].right;
        assert!(dup.options.timestamps.is_some());
    }
    // The dropped segment was sent twice: once lost, once retransmitted after the SACKs.
    let copies = segs.iter().filter(from_client).filter(|s| s.seq_number == hole).count();
    assert_eq!(copies, 2, "original and retransmission of the dropped segment");
    let text = pretty_frame(
        records
            .iter()
            .find(|r| {
                let s = tcp_header_only(r.data);
                !s.options.sack_blocks.is_empty()
            })
            .unwrap()
            .data,
    )
    .to_string();
    assert!(text.contains(&format!(",nop,nop,sack 1 {{{}:", hole + MSS as u32)), "{text}");
}

/// A complete ICMP message, checksums verified at both layers.
fn icmp_message(frame: &[u8]) -> (Ipv4Repr, Icmpv4Repr<'_>) {
    let (_, ip, payload) = ipv4_layer(frame);
    assert_eq!(ip.protocol, IpProtocol::Icmp);
    let packet = Icmpv4Packet::new_checked(payload).unwrap();
    (ip, Icmpv4Repr::parse(&packet, ChecksumMode::Compute).unwrap())
}

#[test]
fn arp_and_icmp() {
    let file = include_bytes!("captures/arp_icmp.pcap");
    let records = read_pcap(file);
    assert_eq!(records.len(), 8);
    assert!(records.iter().all(Record::is_complete));

    // ARP request and reply.
    let arp = |frame: &[u8]| {
        let eth = EthernetFrame::new_checked(frame).unwrap();
        assert_eq!(eth.ethertype(), EtherType::Arp);
        let repr = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap()).unwrap();
        (EthernetRepr::parse(&eth).unwrap(), repr)
    };
    let (req_eth, request) = arp(records[0].data);
    let (reply_eth, reply) = arp(records[1].data);
    assert_eq!(req_eth.dst_addr, EthernetAddress::BROADCAST);
    assert_eq!(request.operation, ArpOperation::Request);
    assert_eq!((request.source_protocol_addr, request.target_protocol_addr), (CLIENT, SERVER));
    assert_eq!(request.source_hardware_addr, req_eth.src_addr);
    assert_eq!(reply.operation, ArpOperation::Reply);
    assert_eq!((reply.source_protocol_addr, reply.target_protocol_addr), (SERVER, CLIENT));
    assert_eq!(reply.source_hardware_addr, reply_eth.src_addr);
    assert_eq!(reply.target_hardware_addr, request.source_hardware_addr);
    assert_eq!(reply_eth.dst_addr, req_eth.src_addr);
    let text = pretty_frame(records[0].data).to_string();
    assert_eq!(text, "ARP, Request who-has 198.18.2.2 tell 198.18.2.1, length 28");

    let icmp = icmp_message;
    let echo_data: &[u8] = b"linerate-echo-16";
    let (ip, echo) = icmp(records[2].data);
    assert_eq!((ip.src_addr, ip.dst_addr), (CLIENT, SERVER));
    assert_eq!(echo, Icmpv4Repr::EchoRequest { ident: 0x4c52, seq_no: 1, data: echo_data });
    let (ip, echo_reply) = icmp(records[3].data);
    assert_eq!((ip.src_addr, ip.dst_addr), (SERVER, CLIENT));
    assert_eq!(echo_reply, Icmpv4Repr::EchoReply { ident: 0x4c52, seq_no: 1, data: echo_data });
    assert_eq!(
        pretty_frame(records[3].data).to_string(),
        "198.18.2.2 > 198.18.2.1: ICMP echo reply, id 19538, seq 1, length 24"
    );

    // UDP to a closed port on B: port unreachable quoting our datagram.
    let (_, udp, udp_payload) = ipv4_layer(records[4].data);
    assert_eq!(udp.protocol, IpProtocol::Udp);
    let (_, unreachable) = icmp(records[5].data);
    let Icmpv4Repr::DstUnreachable { reason, next_hop_mtu, quote } = unreachable else {
        panic!("expected destination unreachable, got {unreachable:?}");
    };
    assert_eq!((reason, next_hop_mtu), (DstUnreachable::PortUnreachable, 0));
    assert_eq!(quote.header, udp, "the quote carries the original IP header");
    assert_eq!(quote.payload, udp_payload, "small datagrams are quoted whole");
    assert_eq!(&quote.payload[2..4], &9u16.to_be_bytes());
    assert_eq!(
        pretty_frame(records[5].data).to_string(),
        "198.18.2.2 > 198.18.2.1: ICMP 198.18.2.2 udp port 9 unreachable, length 52"
    );

    // A DF datagram towards C does not fit B's 1000-byte link: fragmentation needed.
    let (_, big, _) = ipv4_layer(records[6].data);
    assert!(big.dont_frag && big.dst_addr == FAR_HOST && big.payload_len == 1208);
    let (ip, frag_needed) = icmp(records[7].data);
    assert_eq!(ip.src_addr, SERVER, "the router in the middle reports it");
    let Icmpv4Repr::DstUnreachable { reason, next_hop_mtu, quote } = frag_needed else {
        panic!("expected destination unreachable, got {frag_needed:?}");
    };
    assert_eq!((reason, next_hop_mtu), (DstUnreachable::FragRequired, 1000));
    assert_eq!(quote.header.dst_addr, FAR_HOST);
    assert_eq!(quote.header.payload_len, 1208, "payload_len is the original datagram's");
    assert!(quote.payload.len() >= 8 && quote.payload.len() < 1208, "only a prefix is quoted");
    assert_eq!(
        pretty_frame(records[7].data).to_string(),
        "198.18.2.2 > 198.18.2.1: ICMP 198.18.3.2 unreachable - need to frag (mtu 1000), length 556"
    );
}
