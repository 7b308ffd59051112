//! The decoded form of a TCP segment and its parse/emit.

use super::options::TcpOptions;
use super::packet::{TcpPacket, CHECKSUM, MIN_HEADER_LEN};
use super::{SeqNumber, TcpFlags};
use crate::wire::checksum::Checksum;
use crate::wire::field::{write_bytes, write_u16};
use crate::wire::{ChecksumMode, IpProtocol, Ipv4Address, Result, WireError};

/// A decoded TCP segment.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TcpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq_number: SeqNumber,
    /// Meaningful iff `flags.ack()`; carried as-is either way.
    pub ack_number: SeqNumber,
    pub flags: TcpFlags,
    /// The raw field, unscaled.
    pub window_len: u16,
    pub urgent_pointer: u16,
    pub options: TcpOptions,
    pub payload: &'a [u8],
}

impl<'a> TcpRepr<'a> {
    /// Parses a segment and, in `Compute` mode, verifies its checksum with the IPv4
    /// pseudo-header. Unknown options are skipped by length; malformed option lengths are
    /// `Err(Malformed)` (see the options module for the exact rules).
    #[inline]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &TcpPacket<&'a T>,
        src: Ipv4Address,
        dst: Ipv4Address,
        checksum: ChecksumMode,
    ) -> Result<Self> {
        packet.check_len()?;
        if checksum == ChecksumMode::Compute && !packet.verify_checksum(src, dst) {
            return Err(WireError::BadChecksum);
        }
        Ok(TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack_number(),
            flags: packet.flags(),
            window_len: packet.window_len(),
            urgent_pointer: packet.urgent_at(),
            options: TcpOptions::parse(packet.options_ref())?,
            payload: packet.payload_ref(),
        })
    }

    /// 20 + `options.emitted_len()`.
    pub fn header_len(&self) -> usize {
        MIN_HEADER_LEN + self.options.emitted_len()
    }

    /// SEG.LEN of RFC 9293 §3.4: payload bytes plus one each for SYN and FIN, the sequence
    /// space the segment occupies.
    pub fn segment_len(&self) -> usize {
        self.payload.len() + usize::from(self.flags.syn()) + usize::from(self.flags.fin())
    }

    /// `header_len() + payload.len()`.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Writes header, options, payload and (in `Compute` mode) the checksum; `Skip` leaves the
    /// checksum field zero. The buffer should be exactly `buffer_len()` bytes: its length is the
    /// TCP length in the pseudo-header.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut TcpPacket<T>,
        src: Ipv4Address,
        dst: Ipv4Address,
        checksum: ChecksumMode,
    ) {
        let header_len = self.header_len();
        let data = packet.as_mut_bytes();
        debug_assert!(data.len() >= self.buffer_len());
        let (header, payload) = data.split_at_mut(header_len.min(data.len()));
        let mut sum = self.emit_header(header, src, dst, self.payload.len());
        let payload_len = self.payload.len().min(payload.len());
        match checksum {
            ChecksumMode::Compute => {
                sum.copy_from(&mut payload[..payload_len], &self.payload[..payload_len]);
                finish_checksum(header, sum);
            }
            ChecksumMode::Skip => write_bytes(payload, 0, self.payload),
        }
    }

    /// Transmit path: writes only the header and options into `header` (whose length should be
    /// `header_len()`) with a zero checksum field, and returns the partial checksum of that header
    /// plus the pseudo-header for a payload of `payload_len` bytes. The caller copies the payload
    /// with [`Checksum::copy_from`] and stores the result with [`finish_checksum`].
    pub fn emit_header(
        &self,
        header: &mut [u8],
        src: Ipv4Address,
        dst: Ipv4Address,
        payload_len: usize,
    ) -> Checksum {
        let header_len = self.header_len();
        debug_assert!(header.len() >= header_len);
        let mut packet = TcpPacket::new_unchecked(&mut *header);
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number);
        packet.set_header_len(header_len);
        packet.set_flags(self.flags);
        packet.set_window_len(self.window_len);
        packet.set_checksum(0);
        packet.set_urgent_at(self.urgent_pointer);
        if let Some(options) = header.get_mut(MIN_HEADER_LEN..) {
            self.options.emit(options);
        }
        let mut sum = Checksum::new();
        let tcp_len = header_len + payload_len;
        sum.add_pseudo_header(src, dst, IpProtocol::Tcp, 0);
        sum.add_u32(tcp_len as u32);
        sum.add_header(&header[..header_len.min(header.len())]);
        sum
    }
}

/// Stores the finished `sum` into the checksum field of a TCP header.
pub fn finish_checksum(header: &mut [u8], sum: Checksum) {
    write_u16(header, CHECKSUM, sum.finish());
}

/// The value a TCP checksum field holds while a device is to complete it (Linux
/// `CHECKSUM_PARTIAL`, AF_XDP `XDP_TXMD_FLAGS_CHECKSUM`): the folded one's complement sum of the
/// pseudo-header alone (RFC 9293 §3.1) for a segment of `tcp_len` bytes, *not* complemented. The
/// device sums everything from the TCP header on, this field included, and stores the complement
/// of the total, which is then the RFC 1071 checksum of pseudo-header, header and payload.
pub fn partial_checksum(src: Ipv4Address, dst: Ipv4Address, tcp_len: usize) -> u16 {
    let mut sum = Checksum::new();
    sum.add_pseudo_header(src, dst, IpProtocol::Tcp, tcp_len as u16);
    !sum.finish()
}

/// Stores [`partial_checksum`] into the checksum field of a TCP header, for a device that
/// completes the checksum on transmit.
pub fn store_partial_checksum(header: &mut [u8], src: Ipv4Address, dst: Ipv4Address, tcp_len: usize) {
    write_u16(header, CHECKSUM, partial_checksum(src, dst, tcp_len));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a device does with a `CHECKSUM_PARTIAL` segment: sums from the TCP header on (the
    /// field included) and stores the complement.
    fn complete_like_a_device(segment: &mut [u8]) {
        let mut sum = Checksum::new();
        sum.add_bytes(segment);
        write_u16(segment, CHECKSUM, sum.finish());
    }

    #[test]
    fn a_partial_checksum_completed_by_the_device_is_the_full_checksum() {
        let (src, dst) = (Ipv4Address([198, 18, 0, 2]), Ipv4Address([198, 18, 0, 1]));
        for payload_len in [0usize, 1, 2, 3, 1448, 8948] {
            let payload: Vec<u8> = (0..payload_len).map(|i| (i * 7 + 3) as u8).collect();
            let repr = TcpRepr {
                src_port: 80,
                dst_port: 40000 + payload_len as u16,
                seq_number: SeqNumber(0xdead_beef),
                ack_number: SeqNumber(0x0102_0304),
                flags: TcpFlags::ACK | TcpFlags::PSH,
                window_len: 512,
                urgent_pointer: 0,
                options: TcpOptions::default(),
                payload: &payload,
            };
            let mut full = vec![0u8; repr.buffer_len()];
            repr.emit(&mut TcpPacket::new_unchecked(&mut full[..]), src, dst, ChecksumMode::Compute);
            let mut partial = full.clone();
            let tcp_len = partial.len();
            store_partial_checksum(&mut partial, src, dst, tcp_len);
            assert_ne!(partial, full, "the field differs before the device completes it");
            complete_like_a_device(&mut partial);
            assert_eq!(partial, full, "payload {payload_len}");
            let parsed = TcpRepr::parse(
                &TcpPacket::new_checked(&partial[..]).unwrap(),
                src,
                dst,
                ChecksumMode::Compute,
            );
            assert!(parsed.is_ok(), "payload {payload_len}");
        }
    }
}
