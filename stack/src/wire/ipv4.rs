//! IPv4 headers (RFC 791).
//!
//! Parsing validates version, IHL and total length against the buffer, verifies the header
//! checksum when asked, skips options and reports fragments as [`WireError::Fragmented`] (after
//! every other check, so the caller can count well-formed fragments separately). Trailing bytes
//! past `total_len` (Ethernet padding to 60 bytes) are ignored. We never emit options.

use core::fmt;

use super::checksum::header_checksum;
use super::field::{read_u16, write_array, write_u16, write_u8};
use super::{ChecksumMode, Result, WireError};

/// An IPv4 address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Debug)]
pub struct Ipv4Address(pub [u8; 4]);

impl Ipv4Address {
    pub const UNSPECIFIED: Self = Ipv4Address([0; 4]);
    pub const BROADCAST: Self = Ipv4Address([255; 4]);

    pub const fn new(a: u8, b: u8, c: u8, d: u8) -> Self {
        Ipv4Address([a, b, c, d])
    }
    pub fn to_u32(self) -> u32 {
        u32::from_be_bytes(self.0)
    }
    pub fn from_u32(v: u32) -> Self {
        Ipv4Address(v.to_be_bytes())
    }
    /// Not broadcast, multicast or unspecified.
    pub fn is_unicast(&self) -> bool {
        !(self.is_broadcast() || self.is_multicast() || self.is_unspecified())
    }
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }
    /// 224.0.0.0/4 (RFC 5771).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0xf0 == 224
    }
    pub fn is_unspecified(&self) -> bool {
        *self == Self::UNSPECIFIED
    }
    /// 127.0.0.0/8 (RFC 1122 §3.2.1.3).
    pub fn is_loopback(&self) -> bool {
        self.0[0] == 127
    }
}

impl fmt::Display for Ipv4Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

/// The IPv4 protocol field.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IpProtocol {
    Icmp,
    Tcp,
    Udp,
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(v: u8) -> Self {
        match v {
            1 => IpProtocol::Icmp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            other => IpProtocol::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(p: IpProtocol) -> u8 {
        match p {
            IpProtocol::Icmp => 1,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Unknown(other) => other,
        }
    }
}

const VER_IHL: usize = 0;
const DSCP_ECN: usize = 1;
const TOTAL_LEN: usize = 2;
const IDENT: usize = 4;
const FLAGS_FRAG: usize = 6;
const TTL: usize = 8;
const PROTOCOL: usize = 9;
const CHECKSUM: usize = 10;
const SRC: usize = 12;
const DST: usize = 16;
const MIN_HEADER_LEN: usize = 20;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A read/write view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer` without checking it; accessors may panic on a short or inconsistent buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the fixed header, the IHL-sized header and `total_len` all fit the buffer and
    /// that `header_len <= total_len`. `Truncated` when the buffer is short, `Malformed` when the
    /// fields contradict each other (IHL < 5, total length shorter than the header).
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let header_len = self.header_len();
        let total_len = self.total_len() as usize;
        if header_len < MIN_HEADER_LEN || total_len < header_len {
            return Err(WireError::Malformed);
        }
        if len < header_len || len < total_len {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[VER_IHL] >> 4
    }
    /// IHL in bytes (20..=60).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[VER_IHL] & 0x0f) * 4
    }
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[DSCP_ECN]
    }
    #[inline]
    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), TOTAL_LEN)
    }
    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), IDENT)
    }
    pub fn dont_frag(&self) -> bool {
        read_u16(self.buffer.as_ref(), FLAGS_FRAG) & FLAG_DF != 0
    }
    pub fn more_frags(&self) -> bool {
        read_u16(self.buffer.as_ref(), FLAGS_FRAG) & FLAG_MF != 0
    }
    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (read_u16(self.buffer.as_ref(), FLAGS_FRAG) & FRAG_OFFSET_MASK) << 3
    }
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[TTL]
    }
    pub fn protocol(&self) -> IpProtocol {
        self.buffer.as_ref()[PROTOCOL].into()
    }
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), CHECKSUM)
    }
    pub fn src_addr(&self) -> Ipv4Address {
        Ipv4Address(read_addr(self.buffer.as_ref(), SRC))
    }
    pub fn dst_addr(&self) -> Ipv4Address {
        Ipv4Address(read_addr(self.buffer.as_ref(), DST))
    }
    /// The options bytes between the fixed header and `header_len`.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }
    /// The payload: from `header_len` to `total_len` (trailing link padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
    /// True if the header (options included) sums to zero (RFC 791 §3.1, "Header Checksum").
    pub fn verify_checksum(&self) -> bool {
        header_checksum(&self.buffer.as_ref()[..self.header_len()]) == 0
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv4Packet<&'a T> {
    /// The payload, borrowed for the lifetime of the underlying buffer rather than the view.
    pub fn payload_ref(&self) -> &'a [u8] {
        let data = self.buffer.as_ref();
        &data[usize::from(data[VER_IHL] & 0x0f) * 4..usize::from(read_u16(data, TOTAL_LEN))]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version 4 and the IHL from a header length in bytes (a multiple of 4, <= 60).
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        let ihl = (header_len / 4).min(15) as u8;
        write_u8(self.buffer.as_mut(), VER_IHL, 0x40 | ihl);
    }
    pub fn set_dscp_ecn(&mut self, v: u8) {
        write_u8(self.buffer.as_mut(), DSCP_ECN, v);
    }
    pub fn set_total_len(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), TOTAL_LEN, v);
    }
    pub fn set_ident(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), IDENT, v);
    }
    /// Sets DF/MF and the offset (in bytes, a multiple of 8) in one write.
    pub fn set_flags_and_frag_offset(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut v = (offset >> 3) & FRAG_OFFSET_MASK;
        if dont_frag {
            v |= FLAG_DF;
        }
        if more_frags {
            v |= FLAG_MF;
        }
        write_u16(self.buffer.as_mut(), FLAGS_FRAG, v);
    }
    pub fn set_ttl(&mut self, v: u8) {
        write_u8(self.buffer.as_mut(), TTL, v);
    }
    pub fn set_protocol(&mut self, v: IpProtocol) {
        write_u8(self.buffer.as_mut(), PROTOCOL, v.into());
    }
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), CHECKSUM, v);
    }
    pub fn set_src_addr(&mut self, a: Ipv4Address) {
        write_array(self.buffer.as_mut(), SRC, a.0);
    }
    pub fn set_dst_addr(&mut self, a: Ipv4Address) {
        write_array(self.buffer.as_mut(), DST, a.0);
    }
    /// Recomputes the header checksum over `header_len` bytes (or what the buffer holds of them).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let header_len = self.header_len_or_zero();
        let data = self.buffer.as_ref();
        let sum = header_checksum(&data[..header_len.min(data.len())]);
        self.set_checksum(sum);
    }
    /// The payload after the IHL-sized header, up to the end of the buffer; empty if too short.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let header_len = self.header_len_or_zero();
        self.buffer.as_mut().get_mut(header_len..).unwrap_or_default()
    }

    fn header_len_or_zero(&self) -> usize {
        self.buffer.as_ref().first().map_or(0, |b| usize::from(b & 0x0f) * 4)
    }
}

fn read_addr(data: &[u8], at: usize) -> [u8; 4] {
    [data[at], data[at + 1], data[at + 2], data[at + 3]]
}

/// The decoded header of an unfragmented IPv4 packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ipv4Repr {
    pub src_addr: Ipv4Address,
    pub dst_addr: Ipv4Address,
    pub protocol: IpProtocol,
    /// Payload bytes after the header (`total_len - header_len`).
    pub payload_len: usize,
    pub ttl: u8,
    /// The whole second byte: DSCP (6 bits) and ECN (2 bits, RFC 3168).
    pub dscp_ecn: u8,
    pub ident: u16,
    pub dont_frag: bool,
}

impl Ipv4Repr {
    /// We never emit options.
    pub const HEADER_LEN: usize = MIN_HEADER_LEN;

    /// Validates and decodes a header. Options are skipped; a fragment (MF set or offset != 0)
    /// returns `Err(Fragmented)` once everything else has been checked.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>, checksum: ChecksumMode) -> Result<Self> {
        packet.check_len()?;
        if let Some(header) = packet.buffer.as_ref().first_chunk::<MIN_HEADER_LEN>() {
            if header[VER_IHL] == 0x45 {
                return Self::parse_without_options(header, checksum);
            }
        }
        Self::parse_general(packet, checksum)
    }

    /// `parse` for any header length (options skipped).
    fn parse_general<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>, checksum: ChecksumMode) -> Result<Self> {
        if packet.version() != 4 {
            return Err(WireError::Malformed);
        }
        if checksum == ChecksumMode::Compute && !packet.verify_checksum() {
            return Err(WireError::BadChecksum);
        }
        if packet.more_frags() || packet.frag_offset() != 0 {
            return Err(WireError::Fragmented);
        }
        Ok(Self::from_header_fields(packet))
    }

    /// The common case, version 4 without options (the first byte is 0x45), decoded from a
    /// fixed-size array: no bounds checks, same checks and errors in the same order as `parse`.
    #[inline]
    fn parse_without_options(h: &[u8; MIN_HEADER_LEN], checksum_mode: ChecksumMode) -> Result<Self> {
        if checksum_mode == ChecksumMode::Compute && header_checksum(h) != 0 {
            return Err(WireError::BadChecksum);
        }
        let field = |at: usize| u16::from_be_bytes([h[at], h[at + 1]]);
        let flags_frag = field(FLAGS_FRAG);
        if flags_frag & (FLAG_MF | FRAG_OFFSET_MASK) != 0 {
            return Err(WireError::Fragmented);
        }
        Ok(Ipv4Repr {
            src_addr: Ipv4Address([h[SRC], h[SRC + 1], h[SRC + 2], h[SRC + 3]]),
            dst_addr: Ipv4Address([h[DST], h[DST + 1], h[DST + 2], h[DST + 3]]),
            protocol: h[PROTOCOL].into(),
            payload_len: usize::from(field(TOTAL_LEN)).saturating_sub(MIN_HEADER_LEN),
            ttl: h[TTL],
            dscp_ecn: h[DSCP_ECN],
            ident: field(IDENT),
            dont_frag: flags_frag & FLAG_DF != 0,
        })
    }

    /// Decodes the fields of a header whose length was already validated, ignoring fragments and
    /// the checksum (also used for the datagram quoted inside ICMP errors).
    pub(crate) fn from_header_fields<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Self {
        Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: usize::from(packet.total_len()).saturating_sub(packet.header_len()),
            ttl: packet.ttl(),
            dscp_ecn: packet.dscp_ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
        }
    }

    /// Header plus payload.
    pub fn buffer_len(&self) -> usize {
        Self::HEADER_LEN + self.payload_len
    }

    /// Writes the 20-byte header (not the payload). `total_len` saturates at 65535 if
    /// `payload_len` is too large (debug builds assert). With `ChecksumMode::Skip` the checksum
    /// field is left zero for the NIC to fill.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>, checksum: ChecksumMode) {
        debug_assert!(packet.buffer.as_ref().len() >= Self::HEADER_LEN);
        debug_assert!(self.buffer_len() <= usize::from(u16::MAX));
        packet.set_version_and_header_len(Self::HEADER_LEN);
        packet.set_dscp_ecn(self.dscp_ecn);
        packet.set_total_len(u16::try_from(self.buffer_len()).unwrap_or(u16::MAX));
        packet.set_ident(self.ident);
        packet.set_flags_and_frag_offset(self.dont_frag, false, 0);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        match checksum {
            ChecksumMode::Compute => packet.fill_checksum(),
            ChecksumMode::Skip => packet.set_checksum(0),
        }
    }
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;
    use proptest::prelude::*;

    /// A 20-byte header starting 0x45 with random fields, total length and checksum made
    /// consistent or not, then random payload.
    fn header_like() -> impl Strategy<Value = Vec<u8>> {
        (any::<[u8; 20]>(), proptest::collection::vec(any::<u8>(), 0..40), any::<bool>(), any::<bool>())
            .prop_map(|(mut h, payload, fix_len, fix_sum)| {
                h[VER_IHL] = 0x45;
                if fix_len {
                    h[TOTAL_LEN..TOTAL_LEN + 2].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
                }
                if fix_sum {
                    h[CHECKSUM..CHECKSUM + 2].copy_from_slice(&[0, 0]);
                    let sum = crate::wire::checksum(&h);
                    h[CHECKSUM..CHECKSUM + 2].copy_from_slice(&sum.to_be_bytes());
                }
                let mut v = h.to_vec();
                v.extend_from_slice(&payload);
                v
            })
    }

    proptest! {
        /// The option-less shortcut gives the same result (value or error) as the general parse.
        #[test]
        fn fast_path_matches_the_general_parse(
            bytes in prop_oneof![header_like(), proptest::collection::vec(any::<u8>(), 0..80)],
            verify in any::<bool>(),
        ) {
            let mode = if verify { ChecksumMode::Compute } else { ChecksumMode::Skip };
            let packet = Ipv4Packet::new_unchecked(&bytes[..]);
            let general = packet.check_len().and_then(|()| Ipv4Repr::parse_general(&packet, mode));
            prop_assert_eq!(Ipv4Repr::parse(&packet, mode), general);
        }
    }
}
