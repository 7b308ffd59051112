//! A one-line, tcpdump-like description of an Ethernet frame, for logs and test failures.
//!
//! Never panics and never allocates: every layer goes through the checked views, and anything
//! that fails to parse prints as `malformed <layer> (<reason>)` instead. Checksums are not
//! verified (like tcpdump without `-vv`).

use core::fmt;

use super::tcp::{TcpOption, TcpOptionIter, TcpPacket};
use super::{
    ArpOperation, ArpPacket, ArpRepr, ChecksumMode, DstUnreachable, EtherType, EthernetFrame, IcmpQuote,
    Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Packet, WireError,
};

/// Formats a frame on `Display`; see [`pretty_frame`].
#[derive(Debug, Clone, Copy)]
pub struct PrettyFrame<'a> {
    frame: &'a [u8],
}

/// One-line tcpdump-like text for an Ethernet frame, e.g.
/// `198.18.0.1.80 > 198.18.0.2.40000: Flags [S.], seq 1000, ack 2001, win 65535, options [mss
/// 1460,sackOK,TS val 1 ecr 2,nop,wscale 7], length 0`.
pub fn pretty_frame(frame: &[u8]) -> PrettyFrame<'_> {
    PrettyFrame { frame }
}

impl fmt::Display for PrettyFrame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let frame = match EthernetFrame::new_checked(self.frame) {
            Ok(frame) => frame,
            Err(e) => return malformed(f, "ethernet", e),
        };
        match frame.ethertype() {
            EtherType::Ipv4 => fmt_ipv4(f, frame.payload_ref()),
            EtherType::Arp => fmt_arp(f, frame.payload_ref()),
            EtherType::Unknown(t) => write!(
                f,
                "{} > {}, ethertype 0x{t:04x}, length {}",
                frame.src_addr(),
                frame.dst_addr(),
                self.frame.len()
            ),
        }
    }
}

fn malformed(f: &mut fmt::Formatter<'_>, layer: &str, e: WireError) -> fmt::Result {
    let reason = match e {
        WireError::Truncated => "truncated",
        WireError::Malformed => "bad field",
        WireError::BadChecksum => "bad checksum",
        WireError::Fragmented => "fragment",
        WireError::Unsupported => "unsupported",
    };
    write!(f, "malformed {layer} ({reason})")
}

fn fmt_arp(f: &mut fmt::Formatter<'_>, data: &[u8]) -> fmt::Result {
    let packet = match ArpPacket::new_checked(data) {
        Ok(p) => p,
        Err(e) => return malformed(f, "arp", e),
    };
    let repr = match ArpRepr::parse(&packet) {
        Ok(r) => r,
        Err(_) => {
            return write!(
                f,
                "ARP, htype {} ptype 0x{:04x}, length {}",
                packet.hardware_type(),
                packet.protocol_type(),
                data.len()
            )
        }
    };
    match repr.operation {
        ArpOperation::Request => write!(
            f,
            "ARP, Request who-has {} tell {}",
            repr.target_protocol_addr, repr.source_protocol_addr
        )?,
        ArpOperation::Reply => {
            write!(f, "ARP, Reply {} is-at {}", repr.source_protocol_addr, repr.source_hardware_addr)?
        }
        ArpOperation::Unknown(op) => write!(f, "ARP, op {op}")?,
    }
    write!(f, ", length {}", data.len())
}

fn fmt_ipv4(f: &mut fmt::Formatter<'_>, data: &[u8]) -> fmt::Result {
    let packet = match Ipv4Packet::new_checked(data) {
        Ok(p) => p,
        Err(e) => return malformed(f, "ipv4", e),
    };
    if packet.version() != 4 {
        return malformed(f, "ipv4", WireError::Malformed);
    }
    let (src, dst) = (packet.src_addr(), packet.dst_addr());
    let payload = packet.payload_ref();
    if packet.more_frags() || packet.frag_offset() != 0 {
        return write!(
            f,
            "{src} > {dst}: frag id {} offset {}{}, length {}",
            packet.ident(),
            packet.frag_offset(),
            if packet.more_frags() { "+" } else { "" },
            payload.len()
        );
    }
    match packet.protocol() {
        IpProtocol::Tcp => fmt_tcp(f, src, dst, payload),
        IpProtocol::Icmp => {
            write!(f, "{src} > {dst}: ")?;
            fmt_icmp(f, payload)
        }
        IpProtocol::Udp if payload.len() >= 8 => {
            let port = |at: usize| u16::from_be_bytes([payload[at], payload[at + 1]]);
            write!(f, "{src}.{} > {dst}.{}: UDP, length {}", port(0), port(2), payload.len() - 8)
        }
        other => write!(f, "{src} > {dst}: ip-proto-{}, length {}", u8::from(other), payload.len()),
    }
}

fn fmt_tcp(
    f: &mut fmt::Formatter<'_>,
    src: super::Ipv4Address,
    dst: super::Ipv4Address,
    data: &[u8],
) -> fmt::Result {
    let packet = match TcpPacket::new_checked(data) {
        Ok(p) => p,
        Err(e) => return malformed(f, "tcp", e),
    };
    let flags = packet.flags();
    let seq = packet.seq_number();
    let len = packet.payload().len();
    write!(f, "{src}.{} > {dst}.{}: Flags [{flags}], seq {seq}", packet.src_port(), packet.dst_port())?;
    if len > 0 {
        write!(f, ":{}", seq + len as u32)?;
    }
    if flags.ack() {
        write!(f, ", ack {}", packet.ack_number())?;
    }
    write!(f, ", win {}", packet.window_len())?;
    if flags.urg() {
        write!(f, ", urg {}", packet.urgent_at())?;
    }
    if !packet.options().is_empty() {
        f.write_str(", options [")?;
        fmt_tcp_options(f, packet.options())?;
        f.write_str("]")?;
    }
    write!(f, ", length {len}")
}

fn fmt_tcp_options(f: &mut fmt::Formatter<'_>, options: &[u8]) -> fmt::Result {
    for (i, option) in TcpOptionIter::new(options).enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        match option {
            Err(_) => return f.write_str("malformed"),
            Ok(TcpOption::EndOfList) => f.write_str("eol")?,
            Ok(TcpOption::NoOperation) => f.write_str("nop")?,
            Ok(TcpOption::MaxSegmentSize(mss)) => write!(f, "mss {mss}")?,
            Ok(TcpOption::WindowScale(shift)) => write!(f, "wscale {shift}")?,
            Ok(TcpOption::SackPermitted) => f.write_str("sackOK")?,
            Ok(TcpOption::Sack(blocks)) => {
                write!(f, "sack {} ", blocks.len())?;
                for b in blocks.as_slice() {
                    write!(f, "{{{}:{}}}", b.left, b.right)?;
                }
            }
            Ok(TcpOption::Timestamps(ts)) => write!(f, "TS val {} ecr {}", ts.tsval, ts.tsecr)?,
            Ok(TcpOption::FastOpen(cookie)) if cookie.is_request() => f.write_str("tfo cookiereq")?,
            Ok(TcpOption::FastOpen(cookie)) => {
                f.write_str("tfo cookie ")?;
                for b in cookie.as_bytes() {
                    write!(f, "{b:02x}")?;
                }
            }
            Ok(TcpOption::Unknown { kind, data }) => write!(f, "opt-{kind}:{}", data.len())?,
        }
    }
    Ok(())
}

fn fmt_icmp(f: &mut fmt::Formatter<'_>, data: &[u8]) -> fmt::Result {
    let packet = match Icmpv4Packet::new_checked(data) {
        Ok(p) => p,
        Err(e) => return malformed(f, "icmp", e),
    };
    let len = data.len();
    match Icmpv4Repr::parse(&packet, ChecksumMode::Skip) {
        Ok(Icmpv4Repr::EchoRequest { ident, seq_no, .. }) => {
            write!(f, "ICMP echo request, id {ident}, seq {seq_no}, length {len}")
        }
        Ok(Icmpv4Repr::EchoReply { ident, seq_no, .. }) => {
            write!(f, "ICMP echo reply, id {ident}, seq {seq_no}, length {len}")
        }
        Ok(Icmpv4Repr::DstUnreachable { reason: DstUnreachable::FragRequired, next_hop_mtu, quote }) => {
            write!(
                f,
                "ICMP {} unreachable - need to frag (mtu {next_hop_mtu}), length {len}",
                quote.header.dst_addr
            )
        }
        Ok(Icmpv4Repr::DstUnreachable { reason: DstUnreachable::PortUnreachable, quote, .. }) => {
            write!(f, "ICMP {} ", quote.header.dst_addr)?;
            fmt_quoted_port(f, &quote)?;
            write!(f, "unreachable, length {len}")
        }
        Ok(Icmpv4Repr::DstUnreachable { reason, quote, .. }) => {
            write!(f, "ICMP {} unreachable ({reason:?}), length {len}", quote.header.dst_addr)
        }
        Ok(Icmpv4Repr::TimeExceeded { reason, .. }) => {
            write!(f, "ICMP time exceeded ({reason:?}), length {len}")
        }
        Err(WireError::Unsupported) => {
            write!(f, "ICMP type {} code {}, length {len}", packet.msg_type(), packet.msg_code())
        }
        Err(e) => malformed(f, "icmp", e),
    }
}

/// `udp port 9 ` / `tcp port 80 ` for quotes that carry ports.
fn fmt_quoted_port(f: &mut fmt::Formatter<'_>, quote: &IcmpQuote<'_>) -> fmt::Result {
    let Some(&[_, _, hi, lo]) = quote.payload.get(..4) else {
        return Ok(());
    };
    let dst_port = u16::from_be_bytes([hi, lo]);
    match quote.header.protocol {
        IpProtocol::Udp => write!(f, "udp port {dst_port} "),
        IpProtocol::Tcp => write!(f, "tcp port {dst_port} "),
        _ => Ok(()),
    }
}
