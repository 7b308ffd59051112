//! Transmit checksum offload through AF_XDP TX metadata (Linux 6.8+): our TCP frames leave as
//! `CHECKSUM_PARTIAL` skbs, exactly like the kernel's own.
//!
//! Why: in copy mode a frame we send becomes an skb on the peer. Without metadata it is
//! `CHECKSUM_NONE`, so a kernel receiver (GRO, then TCP) sums every payload byte again in
//! software, and we summed it once already while copying it. With metadata the skb says "the
//! checksum is still to be completed from `csum_start`"; the kernel (or a NIC with checksum
//! offload) completes it only if the frame leaves the machine, and a local receiver over veth
//! trusts it as it trusts any locally built segment.
//!
//! How (Documentation/networking/xsk-tx-metadata.rst): the UMEM is registered with
//! `tx_metadata_len` = [`TX_METADATA_LEN`] and the `XDP_UMEM_TX_METADATA_LEN` flag; every
//! transmit descriptor then needs that many bytes in front of its data inside its chunk (the
//! kernel checks it for *every* descriptor, with or without the option), so the driver keeps
//! that headroom in every chunk it transmits from (`multi_buffer::TxLayout`). A frame's first
//! descriptor carries `XDP_TX_METADATA`, and the 16 bytes before its data hold `struct
//! xsk_tx_metadata`: `flags = XDP_TXMD_FLAGS_CHECKSUM`, `csum_start` = the TCP header's offset
//! from the packet start, `csum_offset` = 16 (the checksum field's offset in the TCP header).
//!
//! Which frames: the engine writes the pseudo-header sum into the field of a segment it wants
//! completed (`linerate_stack::wire::tcp::partial_checksum`) and a full checksum otherwise
//! (ARP, ICMP, its connection-less RSTs and SYN-ACKs). [`checksum_request`] marks a frame only
//! when it is IPv4/TCP, unfragmented, exactly as long as its IPv4 total length says, and its
//! field holds exactly that sum. Marking is then always right: if a complete checksum happens to
//! equal the pseudo-header sum, completing it again gives the same value (RFC 1071 arithmetic).
//!
//! Promises: never panics on any frame; no allocation. Must not: mark a frame the kernel would
//! sum past its IPv4 end (link padding), or mark anything on a socket registered without
//! metadata.

use linerate_stack::device::ETHERNET_HEADER_LEN;
use linerate_stack::wire::tcp::partial_checksum;
use linerate_stack::wire::{EtherType, EthernetFrame, IpProtocol, Ipv4Packet};

/// Bytes of `struct xsk_tx_metadata` (`include/uapi/linux/if_xdp.h`): `flags` (u64), then the
/// request's `csum_start` and `csum_offset` (u16 each) in a union padded to 8 bytes.
pub const TX_METADATA_LEN: u32 = 16;

/// Offset of the checksum field in a TCP header (RFC 9293 §3.1).
const TCP_CHECKSUM_OFFSET: u16 = 16;
const TCP_MIN_HEADER: usize = 20;

/// How the TCP checksums of transmitted frames are completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TxChecksum {
    /// Through TX metadata where it is safe (copy mode, Linux 6.8+, the frame fits the slot
    /// with the metadata headroom): the engine leaves TCP checksums partial and the frames
    /// leave as `CHECKSUM_PARTIAL`. Elsewhere the engine computes them (as [`Software`]).
    ///
    /// Not for a veth whose far end runs XDP (AF_XDP or any program reading payload): XDP sees
    /// the frame as sent, its checksum uncompleted (the lab turns `tx` off on the kernel's end
    /// for the same reason).
    ///
    /// [`Software`]: TxChecksum::Software
    Offload,
    /// The engine computes every checksum; no metadata.
    #[default]
    Software,
    /// [`Offload`], but the UMEM is registered with `XDP_UMEM_TX_SW_CSUM`, so the kernel
    /// completes each checksum in software when it builds the skb: every frame leaves complete,
    /// which a capture can verify. For tests and debugging. The kernel sums only the first
    /// buffer of a multi-buffer frame there, so multi-buffer slots fall back to [`Software`].
    ///
    /// [`Offload`]: TxChecksum::Offload
    /// [`Software`]: TxChecksum::Software
    OffloadCompletedByKernel,
}

/// Where the kernel is to complete a frame's checksum: (`csum_start`, `csum_offset`) from the
/// packet start, or `None` when the frame is not an IPv4/TCP segment carrying the pseudo-header
/// sum in its checksum field (see the module comment).
pub(crate) fn checksum_request(frame: &[u8]) -> Option<(u16, u16)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EtherType::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    let fragmented = ip.more_frags() || ip.frag_offset() != 0;
    // Link padding past the IPv4 length would be summed by the kernel: such a frame stays whole.
    if ip.version() != 4
        || ip.protocol() != IpProtocol::Tcp
        || fragmented
        || usize::from(ip.total_len()) != eth.payload().len()
    {
        return None;
    }
    let tcp = ip.payload();
    if tcp.len() < TCP_MIN_HEADER {
        return None;
    }
    let at = usize::from(TCP_CHECKSUM_OFFSET);
    let field = u16::from_be_bytes([tcp[at], tcp[at + 1]]);
    if field != partial_checksum(ip.src_addr(), ip.dst_addr(), tcp.len()) {
        return None;
    }
    Some(((ETHERNET_HEADER_LEN + ip.header_len()) as u16, TCP_CHECKSUM_OFFSET))
}

/// Writes `struct xsk_tx_metadata` asking for a checksum from `csum_start`, stored `csum_offset`
/// bytes further. Every byte is written (the frame may hold an older frame's metadata, and the
/// kernel refuses unknown flags).
pub(crate) fn write_checksum_request(
    meta: &mut [u8; TX_METADATA_LEN as usize],
    csum_start: u16,
    csum_offset: u16,
) {
    meta[0..8].copy_from_slice(&u64::from(libc::XDP_TXMD_FLAGS_CHECKSUM).to_ne_bytes());
    meta[8..10].copy_from_slice(&csum_start.to_ne_bytes());
    meta[10..12].copy_from_slice(&csum_offset.to_ne_bytes());
    meta[12..16].fill(0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use linerate_stack::wire::Ipv4Address;

    const IPV4_MIN_HEADER: usize = 20;
    use linerate_stack::wire::tcp::store_partial_checksum;
    use linerate_stack::wire::{checksum, Checksum};

    /// An Ethernet/IPv4/TCP frame with `payload` bytes, its TCP checksum field left zero.
    fn tcp_frame(payload: usize) -> Vec<u8> {
        let total = IPV4_MIN_HEADER + TCP_MIN_HEADER + payload;
        let mut f = vec![0u8; ETHERNET_HEADER_LEN + total];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[ETHERNET_HEADER_LEN..];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[198, 18, 0, 2]);
        ip[16..20].copy_from_slice(&[198, 18, 0, 1]);
        let sum = checksum(&ip[..IPV4_MIN_HEADER]);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        let tcp = &mut ip[IPV4_MIN_HEADER..];
        tcp[0..4].copy_from_slice(&[0, 80, 0x9c, 0x40]);
        tcp[12] = 5 << 4;
        tcp[13] = 0x18;
        for (i, b) in tcp[TCP_MIN_HEADER..].iter_mut().enumerate() {
            *b = (i * 13 + 1) as u8;
        }
        f
    }

    fn partial(mut f: Vec<u8>) -> Vec<u8> {
        let tcp_len = f.len() - ETHERNET_HEADER_LEN - IPV4_MIN_HEADER;
        let tcp = &mut f[ETHERNET_HEADER_LEN + IPV4_MIN_HEADER..];
        store_partial_checksum(tcp, Ipv4Address([198, 18, 0, 2]), Ipv4Address([198, 18, 0, 1]), tcp_len);
        f
    }

    /// What the kernel's `skb_checksum_help` does with the request.
    fn complete(f: &mut [u8], (start, offset): (u16, u16)) {
        let mut sum = Checksum::new();
        sum.add_bytes(&f[usize::from(start)..]);
        let at = usize::from(start + offset);
        f[at..at + 2].copy_from_slice(&sum.finish().to_be_bytes());
    }

    fn tcp_checksum_ok(f: &[u8]) -> bool {
        let ip = &f[ETHERNET_HEADER_LEN..];
        let mut sum = Checksum::new();
        sum.add_bytes(&ip[12..20]);
        sum.add_u16(6);
        sum.add_u16((ip.len() - IPV4_MIN_HEADER) as u16);
        sum.add_bytes(&ip[IPV4_MIN_HEADER..]);
        sum.finish() == 0
    }

    #[test]
    fn the_metadata_layout_is_the_kernels_struct() {
        assert_eq!(std::mem::size_of::<libc::xsk_tx_metadata>(), TX_METADATA_LEN as usize);
        let mut bytes = [0xa5u8; TX_METADATA_LEN as usize];
        write_checksum_request(&mut bytes, 34, 16);
        // SAFETY: plain old data of the same size, read unaligned.
        let meta: libc::xsk_tx_metadata = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        assert_eq!(meta.flags, u64::from(libc::XDP_TXMD_FLAGS_CHECKSUM));
        // SAFETY: the request member is the one written.
        let request = unsafe { meta.xsk_tx_metadata_union.request };
        assert_eq!((request.csum_start, request.csum_offset), (34, 16));
        assert_eq!(bytes[12..16], [0; 4], "the rest of the union is cleared");
    }

    #[test]
    fn partial_tcp_frames_are_marked_and_completing_them_gives_the_right_checksum() {
        for payload in [0, 1, 7, 1448, 8948] {
            let mut f = partial(tcp_frame(payload));
            let request = checksum_request(&f).expect("a partial TCP frame is marked");
            assert_eq!(request, (34, 16));
            assert!(!tcp_checksum_ok(&f));
            complete(&mut f, request);
            assert!(tcp_checksum_ok(&f), "payload {payload}");
        }
    }

    #[test]
    fn complete_or_foreign_frames_are_left_alone() {
        let mut full = partial(tcp_frame(100));
        let request = checksum_request(&full).unwrap();
        complete(&mut full, request);
        assert!(tcp_checksum_ok(&full));
        assert_eq!(checksum_request(&full), None, "a complete checksum is not the pseudo-header sum");
        let good = partial(tcp_frame(10));
        type Spoil = fn(&mut Vec<u8>);
        let variants: [(&str, Spoil); 6] = [
            ("not IPv4", |f| f[12..14].copy_from_slice(&[0x86, 0xdd])),
            ("UDP", |f| f[ETHERNET_HEADER_LEN + 9] = 17),
            ("fragment", |f| f[ETHERNET_HEADER_LEN + 6] = 0x20),
            ("link padding", |f| f.extend_from_slice(&[0; 6])),
            ("truncated", |f| f.truncate(ETHERNET_HEADER_LEN + 30)),
            ("IHL below 5", |f| f[ETHERNET_HEADER_LEN] = 0x44),
        ];
        for (what, spoil) in variants {
            let mut f = good.clone();
            spoil(&mut f);
            assert_eq!(checksum_request(&f), None, "{what}");
        }
        for len in 0..60 {
            assert_eq!(checksum_request(&good[..len.min(good.len())]), None, "{len} bytes");
        }
    }
}
