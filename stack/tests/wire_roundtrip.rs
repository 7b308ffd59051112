//! Property tests for the wire codecs: `parse(emit(repr)) == repr` for every codec, the fast
//! checksum against a naive reference, and "no parser panics on any bytes".
//!
//! Deterministic: every property runs from the fixed seed `SEED`; on failure proptest prints the
//! minimal failing input (change `SEED` to explore other cases).

use linerate_stack::wire::{
    self, pretty_frame, ArpOperation, ArpPacket, ArpRepr, Checksum, ChecksumMode, DstUnreachable, EtherType,
    EthernetAddress, EthernetFrame, EthernetRepr, FastOpenCookie, IcmpQuote, Icmpv4Packet, Icmpv4Repr,
    IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, SackBlock, SackBlocks, SeqNumber, TcpFlags, TcpOptionIter,
    TcpOptions, TcpPacket, TcpRepr, TimeExceeded, Timestamps,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

const SEED: u64 = 0x11e7_a7e5_eed5_0001;

fn config(cases: u32) -> Config {
    Config { cases, rng_seed: RngSeed::Fixed(SEED), failure_persistence: None, ..Config::default() }
}

// ---------- strategies ----------

fn mac() -> impl Strategy<Value = EthernetAddress> {
    any::<[u8; 6]>().prop_map(EthernetAddress)
}

fn ip() -> impl Strategy<Value = Ipv4Address> {
    any::<[u8; 4]>().prop_map(Ipv4Address)
}

fn ethertype() -> impl Strategy<Value = EtherType> {
    prop_oneof![Just(EtherType::Ipv4), Just(EtherType::Arp), any::<u16>().prop_map(EtherType::from),]
}

fn protocol() -> impl Strategy<Value = IpProtocol> {
    any::<u8>().prop_map(IpProtocol::from)
}

fn ipv4_repr(max_payload: usize) -> impl Strategy<Value = Ipv4Repr> {
    (ip(), ip(), protocol(), 0..=max_payload, any::<u8>(), any::<u8>(), any::<u16>(), any::<bool>()).prop_map(
        |(src_addr, dst_addr, protocol, payload_len, ttl, dscp_ecn, ident, dont_frag)| Ipv4Repr {
            src_addr,
            dst_addr,
            protocol,
            payload_len,
            ttl,
            dscp_ecn,
            ident,
            dont_frag,
        },
    )
}

fn cookie() -> impl Strategy<Value = FastOpenCookie> {
    prop_oneof![
        Just(FastOpenCookie::default()),
        prop::collection::vec(any::<u8>(), 4..=16).prop_map(|v| FastOpenCookie::new(&v).unwrap()),
    ]
}

fn sack_blocks() -> impl Strategy<Value = SackBlocks> {
    prop::collection::vec((any::<u32>(), any::<u32>()), 0..=4).prop_map(|v| {
        let mut blocks = SackBlocks::new();
        for (l, r) in v {
            assert!(blocks.push(SackBlock { left: SeqNumber(l), right: SeqNumber(r) }));
        }
        blocks
    })
}

fn tcp_options() -> impl Strategy<Value = TcpOptions> {
    (
        any::<Option<u16>>(),
        any::<Option<u8>>(),
        any::<bool>(),
        sack_blocks(),
        any::<Option<(u32, u32)>>(),
        prop::option::of(cookie()),
    )
        .prop_map(|(mss, window_scale, sack_permitted, sack_blocks, ts, tfo)| TcpOptions {
            mss,
            window_scale,
            sack_permitted,
            sack_blocks,
            timestamps: ts.map(|(tsval, tsecr)| Timestamps { tsval, tsecr }),
            fast_open_cookie: tfo,
        })
}

/// Everything a `TcpRepr` holds except the payload (which the test owns).
type TcpFields = (u16, u16, u32, u32, u8, u16, u16, TcpOptions);

fn tcp_fields() -> impl Strategy<Value = TcpFields> {
    (
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        any::<u8>(),
        any::<u16>(),
        any::<u16>(),
        tcp_options(),
    )
}

fn tcp_repr<'p>(f: &TcpFields, payload: &'p [u8]) -> TcpRepr<'p> {
    TcpRepr {
        src_port: f.0,
        dst_port: f.1,
        seq_number: SeqNumber(f.2),
        ack_number: SeqNumber(f.3),
        flags: TcpFlags(f.4),
        window_len: f.5,
        urgent_pointer: f.6,
        options: f.7,
        payload,
    }
}

/// RFC 1071 the slow way: big-endian pairs, odd byte padded, end-around carry, complement.
fn naive_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in data.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Cuts `data` at the given (unsorted, possibly repeated) points.
fn split_at_points<'d>(data: &'d [u8], points: &[usize]) -> Vec<&'d [u8]> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (data.len() + 1)).collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for cut in cuts {
        pieces.push(&data[start..cut]);
        start = cut;
    }
    pieces.push(&data[start..]);
    pieces
}

// ---------- round trips ----------

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn ethernet_roundtrip(src in mac(), dst in mac(), ethertype in ethertype(), extra in 0usize..64) {
        let repr = EthernetRepr { src_addr: src, dst_addr: dst, ethertype };
        let mut buf = vec![0u8; repr.buffer_len() + extra];
        repr.emit(&mut EthernetFrame::new_unchecked(&mut buf));
        let frame = EthernetFrame::new_checked(&buf).unwrap();
        prop_assert_eq!(EthernetRepr::parse(&frame).unwrap(), repr);
        prop_assert_eq!(frame.payload().len(), extra);
    }

    #[test]
    fn arp_roundtrip(op in any::<u16>(), sha in mac(), spa in ip(), tha in mac(), tpa in ip()) {
        let repr = ArpRepr {
            operation: ArpOperation::from(op),
            source_hardware_addr: sha,
            source_protocol_addr: spa,
            target_hardware_addr: tha,
            target_protocol_addr: tpa,
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut ArpPacket::new_unchecked(&mut buf));
        prop_assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&buf).unwrap()).unwrap(), repr);
    }

    #[test]
    fn ipv4_roundtrip(repr in ipv4_repr(1500), padding in 0usize..46) {
        let mut buf = vec![0xa5u8; repr.buffer_len() + padding];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf), ChecksumMode::Compute);
        let packet = Ipv4Packet::new_checked(&buf).unwrap();
        prop_assert!(packet.verify_checksum());
        prop_assert_eq!(Ipv4Repr::parse(&packet, ChecksumMode::Compute).unwrap(), repr);
        prop_assert_eq!(packet.payload().len(), repr.payload_len, "padding must be excluded");
    }

    #[test]
    fn icmp_echo_roundtrip(request in any::<bool>(), ident in any::<u16>(), seq_no in any::<u16>(),
                           data in prop::collection::vec(any::<u8>(), 0..128)) {
        let repr = if request {
            Icmpv4Repr::EchoRequest { ident, seq_no, data: &data }
        } else {
            Icmpv4Repr::EchoReply { ident, seq_no, data: &data }
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf), ChecksumMode::Compute);
        let packet = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(Icmpv4Repr::parse(&packet, ChecksumMode::Compute).unwrap(), repr);
    }

    #[test]
    fn icmp_error_roundtrip(unreachable in any::<bool>(), code in any::<u8>(), mtu in any::<u16>(),
                            header in ipv4_repr(0), extra in 0usize..2000,
                            quoted in prop::collection::vec(any::<u8>(), 8..64)) {
        let header = Ipv4Repr { payload_len: quoted.len() + extra, ..header };
        let quote = IcmpQuote { header, payload: &quoted };
        let repr = if unreachable {
            let reason = DstUnreachable::from(code);
            let next_hop_mtu = if reason == DstUnreachable::FragRequired { mtu } else { 0 };
            Icmpv4Repr::DstUnreachable { reason, next_hop_mtu, quote }
        } else {
            Icmpv4Repr::TimeExceeded { reason: TimeExceeded::from(code), quote }
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf), ChecksumMode::Compute);
        let packet = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(Icmpv4Repr::parse(&packet, ChecksumMode::Compute).unwrap(), repr);
    }

    #[test]
    fn tcp_roundtrip(fields in tcp_fields(), payload in prop::collection::vec(any::<u8>(), 0..300),
                     src in ip(), dst in ip()) {
        let repr = tcp_repr(&fields, &payload);
        let options_len = repr.options.emitted_len();
        prop_assert!(options_len <= 40 && options_len.is_multiple_of(4), "options len {}", options_len);
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut TcpPacket::new_unchecked(&mut buf), src, dst, ChecksumMode::Compute);
        let packet = TcpPacket::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(packet.header_len(), repr.header_len());
        let parsed = TcpRepr::parse(&packet, src, dst, ChecksumMode::Compute).unwrap();
        let expected = TcpRepr { options: repr.options.canonical(), ..repr };
        prop_assert_eq!(parsed, expected);
        // Dropping SACK blocks only happens when they cannot fit.
        let fit = repr.options.sack_blocks_that_fit();
        if fit < repr.options.sack_blocks.len() {
            let one_more = if fit == 0 { 12 } else { 8 };
            prop_assert!(options_len + one_more > 40, "a block was dropped that would fit");
        }
    }

    /// The transmit path (header, then copy-and-checksum of the payload) writes the same bytes.
    #[test]
    fn tcp_emit_header_matches_emit(fields in tcp_fields(),
                                    payload in prop::collection::vec(any::<u8>(), 0..300),
                                    src in ip(), dst in ip()) {
        let repr = tcp_repr(&fields, &payload);
        let mut whole = vec![0u8; repr.buffer_len()];
        repr.emit(&mut TcpPacket::new_unchecked(&mut whole), src, dst, ChecksumMode::Compute);

        let mut split = vec![0u8; repr.buffer_len()];
        let (header, body) = split.split_at_mut(repr.header_len());
        let mut sum = repr.emit_header(header, src, dst, payload.len());
        sum.copy_from(body, &payload);
        wire::finish_checksum(header, sum);
        prop_assert_eq!(whole, split);
    }
}

// ---------- checksum ----------

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn checksum_matches_naive(data in prop::collection::vec(any::<u8>(), 0..3000)) {
        prop_assert_eq!(wire::checksum(&data), naive_checksum(&data));
    }

    #[test]
    fn chained_add_bytes_equals_one_shot(data in prop::collection::vec(any::<u8>(), 0..3000),
                                         points in prop::collection::vec(any::<usize>(), 0..8)) {
        let mut sum = Checksum::new();
        for piece in split_at_points(&data, &points) {
            sum.add_bytes(piece);
        }
        prop_assert_eq!(sum.finish(), naive_checksum(&data));
    }

    #[test]
    fn chained_copy_from_copies_and_sums(data in prop::collection::vec(any::<u8>(), 0..3000),
                                         points in prop::collection::vec(any::<usize>(), 0..8),
                                         mix in any::<u8>()) {
        let mut out = vec![0u8; data.len()];
        let mut sum = Checksum::new();
        let mut at = 0;
        for (i, piece) in split_at_points(&data, &points).into_iter().enumerate() {
            // Alternate between copy_from and add_bytes to check they share parity state.
            if mix >> (i % 8) & 1 == 1 {
                sum.copy_from(&mut out[at..at + piece.len()], piece);
            } else {
                out[at..at + piece.len()].copy_from_slice(piece);
                sum.add_bytes(piece);
            }
            at += piece.len();
        }
        prop_assert_eq!(&out, &data);
        prop_assert_eq!(sum.finish(), naive_checksum(&data));
    }

    /// RFC 1624: updating one 16-bit word gives the recomputed checksum (up to the +0/-0 pair).
    #[test]
    fn incremental_update_matches(mut data in prop::collection::vec(any::<u8>(), 2..600),
                                  word in any::<usize>(), new in any::<u16>()) {
        let at = (word % (data.len() / 2)) * 2;
        let before = wire::checksum(&data);
        let old = u16::from_be_bytes([data[at], data[at + 1]]);
        data[at..at + 2].copy_from_slice(&new.to_be_bytes());
        let updated = wire::update(before, old, new);
        let recomputed = wire::checksum(&data);
        let same = updated == recomputed
            || (updated ^ recomputed == 0xffff && (updated == 0 || recomputed == 0));
        prop_assert!(same, "updated {:04x} recomputed {:04x}", updated, recomputed);
    }

    #[test]
    fn pseudo_header_words(src in ip(), dst in ip(), len in any::<u16>()) {
        let mut sum = Checksum::new();
        sum.add_pseudo_header(src, dst, IpProtocol::Tcp, len);
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&src.0);
        bytes.extend_from_slice(&dst.0);
        bytes.extend_from_slice(&[0, 6]);
        bytes.extend_from_slice(&len.to_be_bytes());
        prop_assert_eq!(sum.finish(), naive_checksum(&bytes));
    }
}

// ---------- no panics on any bytes ----------

/// Runs every parser and the pretty printer over `bytes` at every layer.
fn parse_everything(bytes: &[u8]) {
    let (a, b) = (Ipv4Address::new(198, 18, 0, 1), Ipv4Address::new(198, 18, 0, 2));
    let _ = pretty_frame(bytes).to_string();
    if let Ok(frame) = EthernetFrame::new_checked(bytes) {
        let _ = EthernetRepr::parse(&frame);
        let _ = (frame.src_addr(), frame.dst_addr(), frame.ethertype(), frame.payload());
    }
    if let Ok(p) = ArpPacket::new_checked(bytes) {
        let _ = ArpRepr::parse(&p);
        let _ = (p.source_hardware_addr(), p.target_protocol_addr(), p.operation());
    }
    if let Ok(p) = Ipv4Packet::new_checked(bytes) {
        for mode in [ChecksumMode::Compute, ChecksumMode::Skip] {
            let _ = Ipv4Repr::parse(&p, mode);
        }
        let _ = (p.payload(), p.options(), p.verify_checksum(), p.frag_offset());
    }
    if let Ok(p) = Icmpv4Packet::new_checked(bytes) {
        for mode in [ChecksumMode::Compute, ChecksumMode::Skip] {
            let _ = Icmpv4Repr::parse(&p, mode);
        }
    }
    if let Ok(p) = TcpPacket::new_checked(bytes) {
        for mode in [ChecksumMode::Compute, ChecksumMode::Skip] {
            let _ = TcpRepr::parse(&p, a, b, mode);
        }
        let _ = (p.options(), p.payload(), p.flags(), p.verify_checksum(a, b));
    }
    for option in TcpOptionIter::new(bytes) {
        let _ = option;
    }
    let _ = TcpOptions::parse(bytes);
}

/// A valid Ethernet/IPv4/TCP frame to mutate, so random flips reach the deep layers.
fn valid_tcp_frame(fields: &TcpFields, payload: &[u8]) -> Vec<u8> {
    let (src, dst) = (Ipv4Address::new(198, 18, 0, 1), Ipv4Address::new(198, 18, 0, 2));
    let tcp = tcp_repr(fields, payload);
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        ttl: 64,
        dscp_ecn: 0,
        ident: 1,
        dont_frag: true,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
        dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
        ethertype: EtherType::Ipv4,
    };
    let mut buf = vec![0u8; 14 + ip.buffer_len()];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut buf));
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[14..]), ChecksumMode::Compute);
    tcp.emit(&mut TcpPacket::new_unchecked(&mut buf[34..]), src, dst, ChecksumMode::Compute);
    buf
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        parse_everything(&bytes);
    }

    #[test]
    fn mutated_frames_never_panic(fields in tcp_fields(),
                                  payload in prop::collection::vec(any::<u8>(), 0..40),
                                  flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
                                  cut in any::<usize>()) {
        let mut frame = valid_tcp_frame(&fields, &payload);
        prop_assert!(!pretty_frame(&frame).to_string().starts_with("malformed"));
        for (at, value) in flips {
            let len = frame.len();
            frame[at % len] = value;
        }
        parse_everything(&frame);
        parse_everything(&frame[..cut % (frame.len() + 1)]);
        parse_everything(&frame[14..]);
        parse_everything(&frame[34..]);
    }

    /// Setters on buffers that are too short drop the writes instead of panicking (`emit` also
    /// debug-asserts its length, so only setters are exercised here).
    #[test]
    fn setters_never_panic_on_short_buffers(len in 0usize..60, value in any::<u32>()) {
        let mut buf = vec![0u8; len];
        let mut tcp = TcpPacket::new_unchecked(&mut buf[..]);
        tcp.set_seq_number(SeqNumber(value));
        tcp.set_window_len(value as u16);
        tcp.set_flags(TcpFlags::SYN);
        let _ = tcp.payload_mut();
        let mut ip = Ipv4Packet::new_unchecked(&mut buf[..]);
        ip.set_dst_addr(Ipv4Address::from_u32(value));
        ip.fill_checksum();
        let _ = ip.payload_mut();
        let mut icmp = Icmpv4Packet::new_unchecked(&mut buf[..]);
        icmp.fill_checksum();
        let _ = icmp.data_mut();
        let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
        eth.set_src_addr(EthernetAddress::BROADCAST);
        let _ = eth.payload_mut();
    }
}
