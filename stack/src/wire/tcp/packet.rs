//! The zero-copy view of a TCP segment (RFC 9293 §3.1 header format).

use super::{SeqNumber, TcpFlags};
use crate::wire::checksum::Checksum;
use crate::wire::field::{read_u16, read_u32, write_u16, write_u32, write_u8};
use crate::wire::{IpProtocol, Ipv4Address, Result, WireError};

pub(super) const SRC_PORT: usize = 0;
pub(super) const DST_PORT: usize = 2;
pub(super) const SEQ_NUM: usize = 4;
pub(super) const ACK_NUM: usize = 8;
pub(super) const DATA_OFFSET: usize = 12;
pub(super) const FLAGS: usize = 13;
pub(super) const WINDOW: usize = 14;
pub(super) const CHECKSUM: usize = 16;
pub(super) const URGENT: usize = 18;
pub(super) const MIN_HEADER_LEN: usize = 20;

/// A read/write view of a TCP segment: header, options and payload.
///
/// The buffer is exactly the segment (the IPv4 payload); its length is the TCP length of the
/// pseudo-header.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps `buffer` without checking it; accessors may panic on a short or inconsistent buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// `Truncated` if the buffer cannot hold the fixed header or the data offset's header;
    /// `Malformed` if the data offset is below 5 words.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let header_len = self.header_len();
        if header_len < MIN_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if len < header_len {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), SRC_PORT)
    }
    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), DST_PORT)
    }
    #[inline]
    pub fn seq_number(&self) -> SeqNumber {
        SeqNumber(read_u32(self.buffer.as_ref(), SEQ_NUM))
    }
    #[inline]
    pub fn ack_number(&self) -> SeqNumber {
        SeqNumber(read_u32(self.buffer.as_ref(), ACK_NUM))
    }
    /// Data offset in bytes (20..=60).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[DATA_OFFSET] >> 4) * 4
    }
    /// The eight flag bits (the reserved bits, NS/AE included, are ignored).
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[FLAGS])
    }
    /// The raw, unscaled window field.
    #[inline]
    pub fn window_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), WINDOW)
    }
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), CHECKSUM)
    }
    #[inline]
    pub fn urgent_at(&self) -> u16 {
        read_u16(self.buffer.as_ref(), URGENT)
    }
    /// The options area (may end with EOL and padding).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
    /// True if the segment and the IPv4 pseudo-header sum to zero (RFC 9293 §3.1).
    pub fn verify_checksum(&self, src: Ipv4Address, dst: Ipv4Address) -> bool {
        let mut sum = self.header_sum(src, dst);
        sum.add_bytes(self.payload());
        sum.finish() == 0
    }

    /// The running checksum of the pseudo-header and the header with its options (RFC 9293
    /// §3.1), to be continued with the payload: the receive path adds the payload while copying
    /// it ([`Checksum::copy_from`]) and the segment is good iff the finished sum is 0. The header
    /// length is a multiple of 4, so the payload starts on a word boundary.
    #[inline]
    pub fn header_sum(&self, src: Ipv4Address, dst: Ipv4Address) -> Checksum {
        let data = self.buffer.as_ref();
        let mut sum = Checksum::new();
        sum.add_pseudo_header(src, dst, IpProtocol::Tcp, 0);
        // The length may exceed u16 only in a bogus buffer, which then fails the check.
        sum.add_u32(data.len() as u32);
        sum.add_header(&data[..self.header_len()]);
        sum
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> TcpPacket<&'a T> {
    /// The options, borrowed for the lifetime of the underlying buffer rather than the view.
    #[inline]
    pub fn options_ref(&self) -> &'a [u8] {
        let data = self.buffer.as_ref();
        &data[MIN_HEADER_LEN..usize::from(data[DATA_OFFSET] >> 4) * 4]
    }
    /// The payload, borrowed for the lifetime of the underlying buffer rather than the view.
    #[inline]
    pub fn payload_ref(&self) -> &'a [u8] {
        let data = self.buffer.as_ref();
        &data[usize::from(data[DATA_OFFSET] >> 4) * 4..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    pub fn set_src_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), SRC_PORT, v);
    }
    pub fn set_dst_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), DST_PORT, v);
    }
    pub fn set_seq_number(&mut self, v: SeqNumber) {
        write_u32(self.buffer.as_mut(), SEQ_NUM, v.0);
    }
    pub fn set_ack_number(&mut self, v: SeqNumber) {
        write_u32(self.buffer.as_mut(), ACK_NUM, v.0);
    }
    /// Sets the data offset from a header length in bytes (a multiple of 4, <= 60); clears the
    /// reserved bits.
    pub fn set_header_len(&mut self, header_len: usize) {
        let words = (header_len / 4).min(15) as u8;
        write_u8(self.buffer.as_mut(), DATA_OFFSET, words << 4);
    }
    pub fn set_flags(&mut self, flags: TcpFlags) {
        write_u8(self.buffer.as_mut(), FLAGS, flags.0);
    }
    pub fn set_window_len(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), WINDOW, v);
    }
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), CHECKSUM, v);
    }
    pub fn set_urgent_at(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), URGENT, v);
    }
    /// The whole buffer, for callers that lay out header and payload themselves.
    pub fn as_mut_bytes(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
    /// The payload after the data offset; empty if the buffer is shorter than the header.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let data = self.buffer.as_mut();
        let header_len = data.get(DATA_OFFSET).map_or(0, |b| usize::from(b >> 4) * 4);
        data.get_mut(header_len..).unwrap_or_default()
    }
    /// Recomputes the checksum over the whole buffer with the pseudo-header.
    pub fn fill_checksum(&mut self, src: Ipv4Address, dst: Ipv4Address) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        let mut sum = Checksum::new();
        sum.add_pseudo_header(src, dst, IpProtocol::Tcp, 0);
        sum.add_u32(data.len() as u32);
        sum.add_bytes(data);
        self.set_checksum(sum.finish());
    }
}
