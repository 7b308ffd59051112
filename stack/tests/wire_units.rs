//! Hand-written cases for the wire codecs: malformed input of every kind, option edge cases,
//! checksum and fragment detection, sequence-number wrap-around and the pretty printer's text.

use linerate_stack::wire::{
    checksum, pretty_frame, ArpPacket, ArpRepr, ChecksumMode, DstUnreachable, EtherType, EthernetAddress,
    EthernetFrame, EthernetRepr, FastOpenCookie, IcmpQuote, Icmpv4Packet, Icmpv4Repr, IpProtocol,
    Ipv4Address, Ipv4Packet, Ipv4Repr, SackBlock, SackBlocks, SeqNumber, TcpFlags, TcpOptions, TcpPacket,
    TcpRepr, Timestamps, WireError,
};

const SRC: Ipv4Address = Ipv4Address::new(198, 18, 0, 1);
const DST: Ipv4Address = Ipv4Address::new(198, 18, 0, 2);

/// A TCP segment with the given raw option bytes (padded to a multiple of 4 with EOL) and a
/// correct checksum.
fn tcp_with_raw_options(options: &[u8]) -> Vec<u8> {
    let padded = options.len().next_multiple_of(4);
    let mut seg = vec![0u8; 20 + padded];
    seg[0..2].copy_from_slice(&1234u16.to_be_bytes());
    seg[2..4].copy_from_slice(&80u16.to_be_bytes());
    seg[12] = (((20 + padded) / 4) << 4) as u8;
    seg[13] = TcpFlags::SYN.0;
    seg[20..20 + options.len()].copy_from_slice(options);
    TcpPacket::new_unchecked(&mut seg[..]).fill_checksum(SRC, DST);
    seg
}

fn parse_options(options: &[u8]) -> Result<TcpOptions, WireError> {
    let seg = tcp_with_raw_options(options);
    let packet = TcpPacket::new_checked(&seg[..])?;
    TcpRepr::parse(&packet, SRC, DST, ChecksumMode::Compute).map(|r| r.options)
}

#[test]
fn linux_syn_options_parse() {
    // mss 1460, sackOK, TS val 1 ecr 0, nop, wscale 7 — what Linux sends on a SYN.
    let raw = [2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7];
    let opts = parse_options(&raw).unwrap();
    assert_eq!(opts.mss, Some(1460));
    assert!(opts.sack_permitted);
    assert_eq!(opts.timestamps, Some(Timestamps { tsval: 1, tsecr: 0 }));
    assert_eq!(opts.window_scale, Some(7));
    // Our emitter reproduces Linux's byte layout exactly.
    let mut out = [0u8; 40];
    assert_eq!(opts.emit(&mut out), raw.len());
    assert_eq!(&out[..raw.len()], &raw);
}

#[test]
fn malformed_option_lengths_are_rejected() {
    let cases: &[&[u8]] = &[
        &[2, 0],                   // length 0
        &[2, 1],                   // length 1
        &[1, 1, 1, 2],             // kind with no length byte at the end of the header
        &[1, 2, 4, 5],             // MSS running past the options area
        &[99, 8, 0, 0],            // unknown kind running past the area
        &[2, 3, 5],                // MSS with length 3
        &[3, 4, 7, 0],             // window scale with length 4
        &[4, 3, 0],                // SACK-permitted with length 3
        &[5, 2],                   // SACK with no blocks
        &[5, 6, 0, 0, 0, 0],       // SACK with half a block
        &[8, 8, 0, 0, 0, 0, 0, 0], // timestamps with length 8
        &[34, 3, 1],               // TFO cookie of 1 byte
        &[34, 5, 1, 2, 3],         // TFO cookie of 3 bytes
        &[1, 1, 1, 1, 5, 42],      // SACK with 5 blocks (and past the end)
    ];
    for raw in cases {
        assert_eq!(parse_options(raw), Err(WireError::Malformed), "{raw:?}");
    }
}

#[test]
fn unknown_options_are_skipped_by_length() {
    let raw = [
        99, 6, 0xde, 0xad, 0xbe, 0xef, // unknown kind 99 with 4 data bytes
        30, 2, // MPTCP-ish kind, no data
        2, 4, 0x23, 0x28, // mss 9000
    ];
    let opts = parse_options(&raw).unwrap();
    assert_eq!(opts.mss, Some(9000));
    assert_eq!(opts, TcpOptions { mss: Some(9000), ..TcpOptions::default() });
}

#[test]
fn options_after_eol_are_ignored() {
    let raw = [0, 2, 4, 0x05, 0xb4];
    assert_eq!(parse_options(&raw).unwrap(), TcpOptions::default());
}

#[test]
fn fast_open_cookie_lengths() {
    assert!(FastOpenCookie::new(&[]).unwrap().is_request());
    assert!(FastOpenCookie::new(&[1, 2, 3]).is_none());
    assert!(FastOpenCookie::new(&[0; 17]).is_none());
    let cookie = FastOpenCookie::new(&[9; 16]).unwrap();
    assert_eq!(cookie.as_bytes(), &[9; 16]);
    assert_eq!(parse_options(&[34, 2]).unwrap().fast_open_cookie, FastOpenCookie::new(&[]));
    let opts = parse_options(&[34, 6, 1, 2, 3, 4]).unwrap();
    assert_eq!(opts.fast_open_cookie.unwrap().as_bytes(), &[1, 2, 3, 4]);
}

#[test]
fn sack_blocks_parse_and_emit_linux_layout() {
    let mut blocks = SackBlocks::new();
    for (l, r) in [(100, 200), (300, 400), (0xFFFF_FF00, 0x10)] {
        assert!(blocks.push(SackBlock { left: SeqNumber(l), right: SeqNumber(r) }));
    }
    let opts = TcpOptions {
        timestamps: Some(Timestamps { tsval: 7, tsecr: 8 }),
        sack_blocks: blocks,
        ..TcpOptions::default()
    };
    // nop,nop,TS (12) + nop,nop,sack 3 blocks (4 + 24) = 40: exactly fits.
    assert_eq!(opts.emitted_len(), 40);
    let mut out = [0u8; 40];
    opts.emit(&mut out);
    assert_eq!(&out[..4], &[1, 1, 8, 10]);
    assert_eq!(&out[12..16], &[1, 1, 5, 26]);
    assert_eq!(parse_options(&out).unwrap(), opts);

    // A fourth block does not fit next to timestamps: it is dropped from the end.
    let mut four = opts;
    assert!(four.sack_blocks.push(SackBlock { left: SeqNumber(1), right: SeqNumber(2) }));
    assert!(!four.sack_blocks.push(SackBlock::default()), "capacity is 4");
    assert_eq!(four.emitted_len(), 40);
    assert_eq!(four.sack_blocks_that_fit(), 3);
    assert_eq!(four.canonical(), opts);
}

#[test]
fn tcp_checksum_errors_are_detected() {
    let mut seg = tcp_with_raw_options(&[2, 4, 5, 0xb4]);
    assert!(TcpPacket::new_checked(&seg[..]).unwrap().verify_checksum(SRC, DST));
    // Wrong pseudo-header (a different destination) must fail too.
    let packet = TcpPacket::new_checked(&seg[..]).unwrap();
    assert!(!packet.verify_checksum(SRC, Ipv4Address::new(198, 18, 0, 3)));
    seg[5] ^= 0x01;
    let packet = TcpPacket::new_checked(&seg[..]).unwrap();
    let result = TcpRepr::parse(&packet, SRC, DST, ChecksumMode::Compute);
    assert_eq!(result, Err(WireError::BadChecksum));
    assert!(TcpRepr::parse(&packet, SRC, DST, ChecksumMode::Skip).is_ok());
}

#[test]
fn tcp_header_length_errors() {
    let mut seg = tcp_with_raw_options(&[]);
    seg[12] = 4 << 4; // data offset 16 bytes
    assert_eq!(TcpPacket::new_checked(&seg[..]).err(), Some(WireError::Malformed));
    seg[12] = 6 << 4; // 24 bytes claimed, 20 present
    assert_eq!(TcpPacket::new_checked(&seg[..]).err(), Some(WireError::Truncated));
    assert_eq!(TcpPacket::new_checked(&seg[..19]).err(), Some(WireError::Truncated));
}

fn ipv4_packet(payload_len: usize) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: SRC,
        dst_addr: DST,
        protocol: IpProtocol::Udp,
        payload_len,
        ttl: 64,
        dscp_ecn: 0,
        ident: 0x1234,
        dont_frag: false,
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf), ChecksumMode::Compute);
    buf
}

/// Rewrites a header field and fixes the checksum, so only the field itself is wrong.
fn with_field(mut buf: Vec<u8>, at: usize, bytes: &[u8]) -> Vec<u8> {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
    buf[10..12].copy_from_slice(&[0, 0]);
    let sum = checksum(&buf[..usize::from(buf[0] & 0x0f) * 4]);
    buf[10..12].copy_from_slice(&sum.to_be_bytes());
    buf
}

fn parse_ipv4(buf: &[u8]) -> Result<Ipv4Repr, WireError> {
    Ipv4Repr::parse(&Ipv4Packet::new_checked(buf)?, ChecksumMode::Compute)
}

#[test]
fn ipv4_fragments_are_reported_after_other_checks() {
    let more_frags = with_field(ipv4_packet(8), 6, &[0x20, 0x00]);
    assert_eq!(parse_ipv4(&more_frags), Err(WireError::Fragmented));
    let last_frag = with_field(ipv4_packet(8), 6, &[0x00, 0x01]);
    assert_eq!(parse_ipv4(&last_frag), Err(WireError::Fragmented));
    assert_eq!(Ipv4Packet::new_checked(&last_frag[..]).unwrap().frag_offset(), 8);
    // DF alone is not a fragment.
    let df = with_field(ipv4_packet(8), 6, &[0x40, 0x00]);
    assert!(parse_ipv4(&df).unwrap().dont_frag);
    // A corrupted fragment is a checksum error first.
    let mut bad = more_frags.clone();
    bad[8] ^= 1;
    assert_eq!(parse_ipv4(&bad), Err(WireError::BadChecksum));
}

#[test]
fn ipv4_header_errors() {
    let good = ipv4_packet(8);
    assert!(parse_ipv4(&good).is_ok());
    let mut bad_sum = good.clone();
    bad_sum[12] ^= 0x80;
    assert_eq!(parse_ipv4(&bad_sum), Err(WireError::BadChecksum));
    assert!(Ipv4Repr::parse(&Ipv4Packet::new_checked(&bad_sum[..]).unwrap(), ChecksumMode::Skip).is_ok());
    assert_eq!(parse_ipv4(&with_field(good.clone(), 0, &[0x65])), Err(WireError::Malformed));
    assert_eq!(parse_ipv4(&with_field(good.clone(), 0, &[0x44])), Err(WireError::Malformed));
    // IHL 6 but total length 20 + 8: header fits, option bytes are skipped.
    let mut with_option = with_field(good.clone(), 0, &[0x46]);
    with_option.extend_from_slice(&[0; 4]);
    let with_option = with_field(with_option, 2, &32u16.to_be_bytes());
    let repr = parse_ipv4(&with_option).unwrap();
    assert_eq!(repr.payload_len, 8);
    // total_len past the buffer, or shorter than the header.
    assert_eq!(parse_ipv4(&with_field(good.clone(), 2, &29u16.to_be_bytes())), Err(WireError::Truncated));
    assert_eq!(parse_ipv4(&with_field(good.clone(), 2, &19u16.to_be_bytes())), Err(WireError::Malformed));
    assert_eq!(parse_ipv4(&good[..19]), Err(WireError::Truncated));
}

#[test]
fn ipv4_ethernet_padding_is_ignored() {
    let mut buf = ipv4_packet(6);
    buf.extend_from_slice(&[0xee; 20]);
    let packet = Ipv4Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(packet.payload().len(), 6);
    assert_eq!(parse_ipv4(&buf).unwrap().payload_len, 6);
}

#[test]
fn address_classes() {
    assert!(Ipv4Address::new(224, 0, 0, 1).is_multicast());
    assert!(Ipv4Address::BROADCAST.is_broadcast() && !Ipv4Address::BROADCAST.is_unicast());
    assert!(Ipv4Address::UNSPECIFIED.is_unspecified());
    assert!(Ipv4Address::new(127, 0, 0, 1).is_loopback());
    assert!(SRC.is_unicast());
    assert_eq!(Ipv4Address::from_u32(SRC.to_u32()), SRC);
    assert_eq!(SRC.to_string(), "198.18.0.1");
    assert!(EthernetAddress::BROADCAST.is_broadcast() && EthernetAddress::BROADCAST.is_multicast());
    assert!(EthernetAddress([0x01, 0, 0x5e, 0, 0, 1]).is_multicast());
    assert!(EthernetAddress([0x02, 0, 0, 0, 0, 1]).is_unicast());
}

#[test]
fn arp_other_hardware_is_unsupported() {
    let mut buf = [0u8; 28];
    let repr = ArpRepr {
        operation: linerate_stack::wire::ArpOperation::Request,
        source_hardware_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
        source_protocol_addr: SRC,
        target_hardware_addr: EthernetAddress::default(),
        target_protocol_addr: DST,
    };
    repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
    assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()), Ok(repr));
    buf[1] = 6; // IEEE 802 hardware
    assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()), Err(WireError::Unsupported));
    assert_eq!(ArpPacket::new_checked(&buf[..27]).err(), Some(WireError::Truncated));
}

fn parse_icmp(b: &[u8]) -> Result<Icmpv4Repr<'_>, WireError> {
    Icmpv4Repr::parse(&Icmpv4Packet::new_checked(b)?, ChecksumMode::Compute)
}

#[test]
fn icmp_errors() {
    let mut echo = [8u8, 0, 0, 0, 0, 1, 0, 2, b'h', b'i'];
    let sum = checksum(&echo);
    echo[2..4].copy_from_slice(&sum.to_be_bytes());
    let parse = parse_icmp;
    assert_eq!(parse(&echo), Ok(Icmpv4Repr::EchoRequest { ident: 1, seq_no: 2, data: b"hi" }));
    let mut corrupt = echo;
    corrupt[9] ^= 1;
    assert_eq!(parse(&corrupt), Err(WireError::BadChecksum));
    let mut timestamp = echo;
    timestamp[0] = 13;
    let sum = {
        timestamp[2..4].copy_from_slice(&[0, 0]);
        checksum(&timestamp)
    };
    timestamp[2..4].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(parse(&timestamp), Err(WireError::Unsupported));
    assert_eq!(parse(&echo[..7]), Err(WireError::Truncated));

    // A quote with fewer than 8 bytes after the IP header is truncated.
    let quoted = [0u8; 8];
    let header = Ipv4Repr { payload_len: 8, ..parse_ipv4(&ipv4_packet(8)).unwrap() };
    let repr = Icmpv4Repr::DstUnreachable {
        reason: DstUnreachable::FragRequired,
        next_hop_mtu: 1000,
        quote: IcmpQuote { header, payload: &quoted },
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), ChecksumMode::Compute);
    assert_eq!(parse(&buf), Ok(repr));
    let short = &mut buf[..buf.len() - 1].to_vec();
    short[2..4].copy_from_slice(&[0, 0]);
    let sum = checksum(short);
    short[2..4].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(parse(short), Err(WireError::Truncated));
}

#[test]
fn seq_numbers_wrap() {
    assert!(SeqNumber(0xFFFF_FFF0) < SeqNumber(0x10));
    assert!(SeqNumber(0x10) > SeqNumber(0xFFFF_FFF0));
    assert_eq!(SeqNumber(0x10) - SeqNumber(0xFFFF_FFF0), 0x20);
    assert_eq!(SeqNumber(0xFFFF_FFFF) + 1, SeqNumber(0));
    assert!(SeqNumber(5).in_window(SeqNumber(0xFFFF_FFFA), 16));
    assert!(!SeqNumber(10).in_window(SeqNumber(0xFFFF_FFFA), 16));
    assert_eq!(SeqNumber(3).max(SeqNumber(0xFFFF_FFFE)), SeqNumber(3));
    assert_eq!(SeqNumber(3).min(SeqNumber(0xFFFF_FFFE)), SeqNumber(0xFFFF_FFFE));
}

#[test]
fn pretty_prints_the_contract_example() {
    let opts = TcpOptions {
        mss: Some(1460),
        sack_permitted: true,
        timestamps: Some(Timestamps { tsval: 1, tsecr: 2 }),
        window_scale: Some(7),
        ..TcpOptions::default()
    };
    let tcp = TcpRepr {
        src_port: 80,
        dst_port: 40000,
        seq_number: SeqNumber(1000),
        ack_number: SeqNumber(2001),
        flags: TcpFlags::SYN | TcpFlags::ACK,
        window_len: 65535,
        urgent_pointer: 0,
        options: opts,
        payload: &[],
    };
    let ip = Ipv4Repr {
        src_addr: SRC,
        dst_addr: DST,
        protocol: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        ttl: 64,
        dscp_ecn: 0,
        ident: 0,
        dont_frag: true,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
        dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
        ethertype: EtherType::Ipv4,
    };
    let mut frame = vec![0u8; 14 + ip.buffer_len()];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut frame[..]));
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut frame[14..]), ChecksumMode::Compute);
    tcp.emit(&mut TcpPacket::new_unchecked(&mut frame[34..]), SRC, DST, ChecksumMode::Compute);
    assert_eq!(
        pretty_frame(&frame).to_string(),
        "198.18.0.1.80 > 198.18.0.2.40000: Flags [S.], seq 1000, ack 2001, win 65535, \
         options [mss 1460,sackOK,TS val 1 ecr 2,nop,wscale 7], length 0"
    );
    assert_eq!(pretty_frame(&frame[..10]).to_string(), "malformed ethernet (truncated)");
    assert_eq!(pretty_frame(&frame[..40]).to_string(), "malformed ipv4 (truncated)");
}

#[test]
fn segment_len_counts_syn_and_fin() {
    let mut seg = TcpRepr {
        src_port: 1,
        dst_port: 2,
        seq_number: SeqNumber(0),
        ack_number: SeqNumber(0),
        flags: TcpFlags::SYN,
        window_len: 0,
        urgent_pointer: 0,
        options: TcpOptions::default(),
        payload: b"abc",
    };
    assert_eq!(seg.segment_len(), 4);
    seg.flags = TcpFlags::FIN | TcpFlags::ACK;
    assert_eq!(seg.segment_len(), 4);
    seg.flags = TcpFlags::ACK;
    assert_eq!(seg.segment_len(), 3);
}
