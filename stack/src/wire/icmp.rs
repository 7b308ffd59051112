//! ICMPv4 messages (RFC 792): echo request/reply, destination unreachable (with the RFC 1191
//! next-hop MTU for path MTU discovery) and time exceeded. Other types are `Unsupported`.
//!
//! Error messages quote the IP header and at least 8 bytes of the offending datagram
//! (RFC 792; RFC 1812 §4.3.2.3 allows more). The quote is parsed leniently: the quoted header's
//! length and version must be sound, but its checksum and fragment fields are not checked and its
//! `total_len` may exceed what was quoted (it describes the original datagram).

use super::checksum::checksum;
use super::field::{read_u16, write_bytes, write_u16, write_u8};
use super::ipv4::{Ipv4Packet, Ipv4Repr};
use super::{ChecksumMode, Result, WireError};

const TYPE: usize = 0;
const CODE: usize = 1;
const CHECKSUM: usize = 2;
const IDENT: usize = 4;
const SEQ_NO: usize = 6;
const NEXT_HOP_MTU: usize = 6;
const HEADER_LEN: usize = 8;

const TYPE_ECHO_REPLY: u8 = 0;
const TYPE_DST_UNREACHABLE: u8 = 3;
const TYPE_ECHO_REQUEST: u8 = 8;
const TYPE_TIME_EXCEEDED: u8 = 11;

/// Quoted bytes after the IP header that a valid ICMP error carries (RFC 792).
const MIN_QUOTED_PAYLOAD: usize = 8;
const QUOTED_IP_HEADER_LEN: usize = 20;

/// Codes of a destination-unreachable message (RFC 792, RFC 1812 §5.2.7.1).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DstUnreachable {
    NetUnreachable,
    HostUnreachable,
    ProtoUnreachable,
    PortUnreachable,
    /// Fragmentation needed and DF set; carries the next-hop MTU (RFC 1191 §4).
    FragRequired,
    SourceRouteFailed,
    AdminProhibited,
    Other(u8),
}

impl From<u8> for DstUnreachable {
    fn from(code: u8) -> Self {
        match code {
            0 => DstUnreachable::NetUnreachable,
            1 => DstUnreachable::HostUnreachable,
            2 => DstUnreachable::ProtoUnreachable,
            3 => DstUnreachable::PortUnreachable,
            4 => DstUnreachable::FragRequired,
            5 => DstUnreachable::SourceRouteFailed,
            13 => DstUnreachable::AdminProhibited,
            other => DstUnreachable::Other(other),
        }
    }
}

impl From<DstUnreachable> for u8 {
    fn from(reason: DstUnreachable) -> u8 {
        match reason {
            DstUnreachable::NetUnreachable => 0,
            DstUnreachable::HostUnreachable => 1,
            DstUnreachable::ProtoUnreachable => 2,
            DstUnreachable::PortUnreachable => 3,
            DstUnreachable::FragRequired => 4,
            DstUnreachable::SourceRouteFailed => 5,
            DstUnreachable::AdminProhibited => 13,
            DstUnreachable::Other(code) => code,
        }
    }
}

/// Codes of a time-exceeded message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TimeExceeded {
    TtlExpired,
    FragReassembly,
    Other(u8),
}

impl From<u8> for TimeExceeded {
    fn from(code: u8) -> Self {
        match code {
            0 => TimeExceeded::TtlExpired,
            1 => TimeExceeded::FragReassembly,
            other => TimeExceeded::Other(other),
        }
    }
}

impl From<TimeExceeded> for u8 {
    fn from(reason: TimeExceeded) -> u8 {
        match reason {
            TimeExceeded::TtlExpired => 0,
            TimeExceeded::FragReassembly => 1,
            TimeExceeded::Other(code) => code,
        }
    }
}

/// A read/write view of an ICMPv4 message.
#[derive(Debug, Clone)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps `buffer` without checking it; accessors may panic if it is shorter than 8 bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// `Err(Truncated)` if the buffer cannot hold the 8-byte header.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[TYPE]
    }
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[CODE]
    }
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), CHECKSUM)
    }
    /// Echo identifier (bytes 4..6).
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), IDENT)
    }
    /// Echo sequence number (bytes 6..8).
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(self.buffer.as_ref(), SEQ_NO)
    }
    /// Next-hop MTU of a fragmentation-needed message (bytes 6..8, RFC 1191 §4).
    pub fn next_hop_mtu(&self) -> u16 {
        read_u16(self.buffer.as_ref(), NEXT_HOP_MTU)
    }
    /// Everything after the 8-byte header (echo data or the quoted datagram).
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
    /// True if the whole message sums to zero.
    pub fn verify_checksum(&self) -> bool {
        checksum(self.buffer.as_ref()) == 0
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Icmpv4Packet<&'a T> {
    /// The data, borrowed for the lifetime of the underlying buffer rather than the view.
    pub fn data_ref(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    pub fn set_msg_type(&mut self, v: u8) {
        write_u8(self.buffer.as_mut(), TYPE, v);
    }
    pub fn set_msg_code(&mut self, v: u8) {
        write_u8(self.buffer.as_mut(), CODE, v);
    }
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), CHECKSUM, v);
    }
    /// Sets the 4 bytes after the checksum (echo ident/seq, or unused + next-hop MTU).
    pub fn set_rest_of_header(&mut self, high: u16, low: u16) {
        write_u16(self.buffer.as_mut(), IDENT, high);
        write_u16(self.buffer.as_mut(), SEQ_NO, low);
    }
    /// Everything after the header; empty if the buffer is shorter than the header.
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut().get_mut(HEADER_LEN..).unwrap_or_default()
    }
    /// Recomputes the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum(self.buffer.as_ref());
        self.set_checksum(sum);
    }
}

/// The IP header and first bytes of the datagram quoted by an ICMP error.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct IcmpQuote<'a> {
    /// The quoted header; `payload_len` is the *original* datagram's, from its `total_len`.
    pub header: Ipv4Repr,
    /// The quoted bytes after the IP header (>= 8 when valid: enough for TCP/UDP ports and the
    /// TCP sequence number).
    pub payload: &'a [u8],
}

impl<'a> IcmpQuote<'a> {
    /// Parses a quote leniently (see the module docs). `Truncated` if fewer than 8 bytes follow
    /// the quoted header; `Malformed` on a bad version, IHL or total length.
    fn parse(data: &'a [u8]) -> Result<Self> {
        let packet = Ipv4Packet::new_unchecked(data);
        if data.len() < QUOTED_IP_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let header_len = packet.header_len();
        if packet.version() != 4
            || header_len < QUOTED_IP_HEADER_LEN
            || usize::from(packet.total_len()) < header_len
        {
            return Err(WireError::Malformed);
        }
        if data.len() < header_len {
            return Err(WireError::Truncated);
        }
        // Bytes past the original datagram's end are padding, not part of the quote.
        let end = data.len().min(usize::from(packet.total_len()));
        let payload = &data[header_len..end];
        if payload.len() < MIN_QUOTED_PAYLOAD {
            return Err(WireError::Truncated);
        }
        Ok(IcmpQuote { header: Ipv4Repr::from_header_fields(&packet), payload })
    }

    fn buffer_len(&self) -> usize {
        QUOTED_IP_HEADER_LEN + self.payload.len()
    }

    fn emit(&self, data: &mut [u8]) {
        self.header.emit(&mut Ipv4Packet::new_unchecked(&mut *data), ChecksumMode::Compute);
        write_bytes(data, QUOTED_IP_HEADER_LEN, self.payload);
    }
}

/// A decoded ICMPv4 message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Icmpv4Repr<'a> {
    EchoRequest {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    EchoReply {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    DstUnreachable {
        reason: DstUnreachable,
        /// 0 unless `reason` is `FragRequired` (RFC 1191 §4; 0 from an old router means "unknown").
        next_hop_mtu: u16,
        quote: IcmpQuote<'a>,
    },
    TimeExceeded {
        reason: TimeExceeded,
        quote: IcmpQuote<'a>,
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Decodes a message, verifying its checksum in `Compute` mode. Other types → `Unsupported`.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Icmpv4Packet<&'a T>,
        checksum: ChecksumMode,
    ) -> Result<Self> {
        packet.check_len()?;
        if checksum == ChecksumMode::Compute && !packet.verify_checksum() {
            return Err(WireError::BadChecksum);
        }
        let data = packet.data_ref();
        let (ident, seq_no) = (packet.echo_ident(), packet.echo_seq_no());
        match (packet.msg_type(), packet.msg_code()) {
            (TYPE_ECHO_REQUEST, 0) => Ok(Icmpv4Repr::EchoRequest { ident, seq_no, data }),
            (TYPE_ECHO_REPLY, 0) => Ok(Icmpv4Repr::EchoReply { ident, seq_no, data }),
            (TYPE_DST_UNREACHABLE, code) => {
                let reason = DstUnreachable::from(code);
                let next_hop_mtu = match reason {
                    DstUnreachable::FragRequired => packet.next_hop_mtu(),
                    _ => 0,
                };
                Ok(Icmpv4Repr::DstUnreachable { reason, next_hop_mtu, quote: IcmpQuote::parse(data)? })
            }
            (TYPE_TIME_EXCEEDED, code) => {
                Ok(Icmpv4Repr::TimeExceeded { reason: code.into(), quote: IcmpQuote::parse(data)? })
            }
            _ => Err(WireError::Unsupported),
        }
    }

    /// Header plus data (or quote).
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match self {
                Icmpv4Repr::EchoRequest { data, .. } | Icmpv4Repr::EchoReply { data, .. } => data.len(),
                Icmpv4Repr::DstUnreachable { quote, .. } | Icmpv4Repr::TimeExceeded { quote, .. } => {
                    quote.buffer_len()
                }
            }
    }

    /// Writes the whole message. The checksum covers the whole buffer, so the buffer should be
    /// exactly `buffer_len()` long; `Skip` leaves the field zero.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv4Packet<T>, checksum: ChecksumMode) {
        debug_assert!(packet.buffer.as_ref().len() >= self.buffer_len());
        match *self {
            Icmpv4Repr::EchoRequest { ident, seq_no, data } => {
                packet.set_msg_type(TYPE_ECHO_REQUEST);
                packet.set_msg_code(0);
                packet.set_rest_of_header(ident, seq_no);
                write_bytes(packet.data_mut(), 0, data);
            }
            Icmpv4Repr::EchoReply { ident, seq_no, data } => {
                packet.set_msg_type(TYPE_ECHO_REPLY);
                packet.set_msg_code(0);
                packet.set_rest_of_header(ident, seq_no);
                write_bytes(packet.data_mut(), 0, data);
            }
            Icmpv4Repr::DstUnreachable { reason, next_hop_mtu, quote } => {
                packet.set_msg_type(TYPE_DST_UNREACHABLE);
                packet.set_msg_code(reason.into());
                let mtu = match reason {
                    DstUnreachable::FragRequired => next_hop_mtu,
                    _ => 0,
                };
                packet.set_rest_of_header(0, mtu);
                quote.emit(packet.data_mut());
            }
            Icmpv4Repr::TimeExceeded { reason, quote } => {
                packet.set_msg_type(TYPE_TIME_EXCEEDED);
                packet.set_msg_code(reason.into());
                packet.set_rest_of_header(0, 0);
                quote.emit(packet.data_mut());
            }
        }
        match checksum {
            ChecksumMode::Compute => packet.fill_checksum(),
            ChecksumMode::Skip => packet.set_checksum(0),
        }
    }
}
