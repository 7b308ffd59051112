//! ICMPv4 input (RFC 792, RFC 1122 §3.2.2, RFC 9293 §3.9.1.4 / MUST-56, RFC 5927): decides what
//! a received ICMP message means for us. Pure: the engine applies the result.
//!
//! - Echo request → an echo reply with the same identifier, sequence and data.
//! - Destination unreachable "fragmentation needed" → lower the path MSS of the quoted
//!   connection (RFC 1191), if the quoted sequence number is one we have outstanding (RFC 5927
//!   §4.1 check against blind attacks).
//! - Every other destination-unreachable / time-exceeded → a soft error reported to the
//!   connection; it never aborts an established connection.

use super::SoftError;
use crate::tcp::FourTuple;
use crate::wire::{
    ChecksumMode, DstUnreachable, IcmpQuote, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Address, SeqNumber,
};

/// Smallest path MTU we accept from an ICMP message (Linux min_pmtu is 552; RFC 791 minimum 68).
pub const MIN_PATH_MTU: u16 = 552;

/// What an ICMP message asks of us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpAction<'a> {
    EchoReply {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    /// Lower the path MTU of `tuple` to `mtu` if `seq` is outstanding.
    PathMtu {
        tuple: FourTuple,
        seq: SeqNumber,
        mtu: u16,
    },
    SoftError {
        tuple: FourTuple,
        seq: SeqNumber,
        error: SoftError,
    },
    /// Understood, nothing to do (echo replies to us, errors about non-TCP traffic).
    Ignore,
    /// Malformed or unsupported: counted as InErrors.
    Invalid,
}

/// Interprets an ICMP message sent to `our_addr`.
pub fn classify<'a>(bytes: &'a [u8], our_addr: Ipv4Address, checksum: ChecksumMode) -> IcmpAction<'a> {
    let Ok(pkt) = Icmpv4Packet::new_checked(bytes) else { return IcmpAction::Invalid };
    let Ok(repr) = Icmpv4Repr::parse(&pkt, checksum) else { return IcmpAction::Invalid };
    match repr {
        Icmpv4Repr::EchoRequest { ident, seq_no, data } => IcmpAction::EchoReply { ident, seq_no, data },
        Icmpv4Repr::EchoReply { .. } => IcmpAction::Ignore,
        Icmpv4Repr::DstUnreachable { reason, next_hop_mtu, quote } => {
            let Some((tuple, seq)) = quoted_tcp(&quote, our_addr) else { return IcmpAction::Ignore };
            if reason == DstUnreachable::FragRequired {
                IcmpAction::PathMtu { tuple, seq, mtu: next_hop_mtu.max(MIN_PATH_MTU) }
            } else {
                IcmpAction::SoftError { tuple, seq, error: SoftError::DstUnreachable(reason) }
            }
        }
        Icmpv4Repr::TimeExceeded { reason, quote } => match quoted_tcp(&quote, our_addr) {
            Some((tuple, seq)) => {
                IcmpAction::SoftError { tuple, seq, error: SoftError::TimeExceeded(reason) }
            }
            None => IcmpAction::Ignore,
        },
    }
}

/// The connection a quoted TCP header belongs to: ports and sequence number are in the first
/// 8 quoted bytes (RFC 792).
fn quoted_tcp(quote: &IcmpQuote<'_>, our_addr: Ipv4Address) -> Option<(FourTuple, SeqNumber)> {
    if quote.header.protocol != IpProtocol::Tcp
        || quote.header.src_addr != our_addr
        || quote.payload.len() < 8
    {
        return None;
    }
    let p = quote.payload;
    let src_port = u16::from_be_bytes([p[0], p[1]]);
    let dst_port = u16::from_be_bytes([p[2], p[3]]);
    let seq = SeqNumber(u32::from_be_bytes([p[4], p[5], p[6], p[7]]));
    Some((FourTuple { local: (our_addr, src_port), remote: (quote.header.dst_addr, dst_port) }, seq))
}
