//! The transmit fast path for the headers of a TCP data segment: Ethernet II, a 20-byte IPv4
//! header and a TCP header whose only option is timestamps (RFC 7323 Appendix A layout:
//! NOP, NOP, TS) or that has no options. That is every segment of a bulk transfer.
//!
//! The general emitters go field by field through the views' setters and the options writer and
//! then sum the written bytes; here each header is assembled in a fixed-size array (no bounds
//! checks, no option walk) and stored with one copy. The output is byte-identical to
//! `EthernetRepr::emit` + `Ipv4Repr::emit` + `TcpRepr::emit_header` (property-tested below);
//! anything else (SYN options, SACK blocks, MSS, Fast Open, a short buffer) returns `None` and the
//! caller uses the general emitters.
//!
//! [`DataHeaderTemplate`] keeps a segment's headers for the next segments of its burst, and
//! (in the connection, [`KeptDataHeaders`]) for the next poll, whose ACK, window and
//! timestamps [`DataHeaderTemplate::rebase`] patches in. The engine keeps one more per
//! connection for its bare ACKs (payload 0), patched with
//! [`DataHeaderTemplate::set_acknowledgment`] under a narrower key it vouches for itself
//! (`engine/transmit/pure_ack.rs`).
//!
//! Never panics, never allocates.

use super::checksum::{fold, Checksum};
use super::ethernet::HEADER_LEN as ETHERNET_HEADER_LEN;
use super::tcp::{SeqNumber, TcpFlags, TcpRepr, Timestamps};
use super::{EthernetAddress, EthernetRepr, IpProtocol, Ipv4Repr};

const IPV4_HEADER_LEN: usize = 20;
const TCP_HEADER_LEN: usize = 20;
/// NOP, NOP, kind 8, length 10, TSval, TSecr.
const TIMESTAMPS_LEN: usize = 12;
const WITH_TIMESTAMPS: usize = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + TCP_HEADER_LEN + TIMESTAMPS_LEN;
const WITHOUT_OPTIONS: usize = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + TCP_HEADER_LEN;

/// Writes the Ethernet, IPv4 (checksum filled) and TCP headers (checksum field zero) at the
/// start of `buf` and returns the TCP checksum so far (pseudo-header for a payload of
/// `payload_len` bytes, plus the header), to be continued with the payload as
/// `TcpRepr::emit_header`'s result is. `None`, with nothing written, when the segment's options
/// are not timestamps-only or none, or `buf` is shorter than the headers.
pub fn emit_tcp_data_headers(
    buf: &mut [u8],
    eth: &EthernetRepr,
    ip: &Ipv4Repr,
    tcp: &TcpRepr<'_>,
    payload_len: usize,
) -> Option<Checksum> {
    let o = &tcp.options;
    if o.mss.is_some() || o.window_scale.is_some() || o.sack_permitted || !o.sack_blocks.is_empty() {
        return None;
    }
    if o.fast_open_cookie.is_some() || ip.buffer_len() > usize::from(u16::MAX) {
        return None;
    }
    match o.timestamps {
        Some(ts) => emit::<WITH_TIMESTAMPS>(buf.first_chunk_mut()?, eth, ip, tcp, Some(ts), payload_len),
        None => emit::<WITHOUT_OPTIONS>(buf.first_chunk_mut()?, eth, ip, tcp, None, payload_len),
    }
}

#[inline(always)]
fn emit<const N: usize>(
    h: &mut [u8; N],
    eth: &EthernetRepr,
    ip: &Ipv4Repr,
    tcp: &TcpRepr<'_>,
    ts: Option<Timestamps>,
    payload_len: usize,
) -> Option<Checksum> {
    // Every byte of `h` is written below (the device buffer may hold an older frame).
    h[0..6].copy_from_slice(&eth.dst_addr.0);
    h[6..12].copy_from_slice(&eth.src_addr.0);
    h[12..14].copy_from_slice(&u16::from(eth.ethertype).to_be_bytes());

    let ipv4 = ETHERNET_HEADER_LEN;
    // `buffer_len() <= u16::MAX` was checked by the caller.
    let [len_hi, len_lo] = (ip.buffer_len() as u16).to_be_bytes();
    let [id_hi, id_lo] = ip.ident.to_be_bytes();
    let df = if ip.dont_frag { 0x40 } else { 0 };
    let mut ip_header =
        [0x45, ip.dscp_ecn, len_hi, len_lo, id_hi, id_lo, df, 0, ip.ttl, u8::from(ip.protocol), 0, 0];
    let [s0, s1, s2, s3] = ip.src_addr.0;
    let [d0, d1, d2, d3] = ip.dst_addr.0;
    let addresses = [s0, s1, s2, s3, d0, d1, d2, d3];
    let ip_sum = !fold(words_sum(&ip_header) + words_sum(&addresses));
    ip_header[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    h[ipv4..ipv4 + 12].copy_from_slice(&ip_header);
    h[ipv4 + 12..ipv4 + 20].copy_from_slice(&addresses);

    let t = ipv4 + IPV4_HEADER_LEN;
    let tcp_header_len = N - t;
    let mut fixed = [0u8; TCP_HEADER_LEN];
    fixed[0..2].copy_from_slice(&tcp.src_port.to_be_bytes());
    fixed[2..4].copy_from_slice(&tcp.dst_port.to_be_bytes());
    fixed[4..8].copy_from_slice(&tcp.seq_number.0.to_be_bytes());
    fixed[8..12].copy_from_slice(&tcp.ack_number.0.to_be_bytes());
    fixed[12] = ((tcp_header_len / 4) as u8) << 4;
    fixed[13] = tcp.flags.0;
    fixed[14..16].copy_from_slice(&tcp.window_len.to_be_bytes());
    fixed[18..20].copy_from_slice(&tcp.urgent_pointer.to_be_bytes());
    h[t..t + TCP_HEADER_LEN].copy_from_slice(&fixed);
    let mut words = words_sum(&fixed);
    if let Some(ts) = ts {
        let mut option = [1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0];
        option[4..8].copy_from_slice(&ts.tsval.to_be_bytes());
        option[8..12].copy_from_slice(&ts.tsecr.to_be_bytes());
        h[t + TCP_HEADER_LEN..].copy_from_slice(&option[..N - t - TCP_HEADER_LEN]);
        words += words_sum(&option);
    }
    let mut sum = Checksum::new();
    // The pseudo-header addresses are the same bytes as in the IPv4 header.
    sum.add_u16(fold(words_sum(&addresses) + words));
    sum.add_u16(u16::from(u8::from(IpProtocol::Tcp)));
    sum.add_u32((tcp_header_len + payload_len) as u32);
    Some(sum)
}

/// The headers of one connection's data segments, kept after the first segment of a burst
/// (GSO-like) so that the rest of the burst copies them instead of assembling them again.
///
/// Within a burst every segment has the same addresses, ports, ACK, window, options and payload
/// length; only the IPv4 identification, the sequence number and the flags change. The stored
/// sums leave those three fields out, and [`DataHeaderTemplate::write`] adds them back (RFC 1624
/// incremental update), so its output is byte-identical to [`emit_tcp_data_headers`] with the
/// new fields (property-tested below).
#[derive(Clone, Copy, Debug)]
pub struct DataHeaderTemplate {
    bytes: [u8; WITH_TIMESTAMPS],
    len: usize,
    payload_len: usize,
    /// What the headers were built from, IPv4 identification zeroed: a later poll's headers
    /// may reuse them only when these are equal ([`DataHeaderTemplate::rebase`]).
    eth: EthernetRepr,
    ip: Ipv4Repr,
    /// IPv4 header sum without the identification (folded, never zero: it holds 0x4500).
    ip_sum: u64,
    /// Pseudo-header and TCP header sum without the sequence number and the flags.
    tcp_sum: Checksum,
}

// Offsets in an Ethernet + IPv4 (no options) + TCP frame.
const IDENT_AT: usize = ETHERNET_HEADER_LEN + 4;
const IP_CHECKSUM_AT: usize = ETHERNET_HEADER_LEN + 10;
const SEQ_AT: usize = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + 4;
const FLAGS_AT: usize = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + 13;
const PORTS_AT: usize = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN;
const ACK_AT: usize = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + 8;
const WINDOW_AT: usize = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + 14;
const URGENT_AT: usize = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + 18;
/// TSval and TSecr, after NOP, NOP, kind and length.
const TS_VALUES_AT: usize = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + TCP_HEADER_LEN + 4;

impl DataHeaderTemplate {
    /// Writes the headers as [`emit_tcp_data_headers`] does (same result, same `None` cases)
    /// and keeps them as the template for the burst's next segments.
    pub fn emit(
        buf: &mut [u8],
        eth: &EthernetRepr,
        ip: &Ipv4Repr,
        tcp: &TcpRepr<'_>,
        payload_len: usize,
    ) -> Option<(Checksum, Self)> {
        let sum = emit_tcp_data_headers(buf, eth, ip, tcp, payload_len)?;
        let len = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + tcp.header_len();
        let mut bytes = [0u8; WITH_TIMESTAMPS];
        bytes[..len].copy_from_slice(buf.get(..len)?);
        // One's complement subtraction is addition of the complement.
        let stored = u16::from_be_bytes([bytes[IP_CHECKSUM_AT], bytes[IP_CHECKSUM_AT + 1]]);
        let ip_sum = u64::from(fold(u64::from(!stored) + u64::from(!ip.ident)));
        let mut tcp_sum = sum;
        tcp_sum.add_u16(!(tcp.seq_number.0 >> 16) as u16);
        tcp_sum.add_u16(!(tcp.seq_number.0 as u16));
        tcp_sum.add_u16(!u16::from(tcp.flags.0));
        let ip = Ipv4Repr { ident: 0, ..*ip };
        Some((sum, DataHeaderTemplate { bytes, len, payload_len, eth: *eth, ip, ip_sum, tcp_sum }))
    }

    /// Makes the template the one [`Self::emit`] would build from `eth`, `ip`, `tcp` and
    /// `payload_len` (the identification, SEQ and flags are [`Self::write`]'s), if those differ
    /// from the template's only in the ACK number, the window and the timestamp values: a
    /// connection's next poll, after the peer's ACK moved them. False, with nothing changed,
    /// for any other difference.
    pub fn rebase(
        &mut self,
        eth: &EthernetRepr,
        ip: &Ipv4Repr,
        tcp: &TcpRepr<'_>,
        payload_len: usize,
    ) -> bool {
        let o = &tcp.options;
        let simple = o.mss.is_none()
            && o.window_scale.is_none()
            && !o.sack_permitted
            && o.sack_blocks.is_empty()
            && o.fast_open_cookie.is_none();
        let same = simple
            && payload_len == self.payload_len
            && o.timestamps.is_some() == (self.len == WITH_TIMESTAMPS)
            && *eth == self.eth
            && Ipv4Repr { ident: 0, ..*ip } == self.ip
            && self.bytes[PORTS_AT..PORTS_AT + 2] == tcp.src_port.to_be_bytes()
            && self.bytes[PORTS_AT + 2..PORTS_AT + 4] == tcp.dst_port.to_be_bytes()
            && self.bytes[URGENT_AT..URGENT_AT + 2] == tcp.urgent_pointer.to_be_bytes();
        if same {
            self.set_acknowledgment(tcp);
        }
        same
    }

    /// Whether the headers go to next hop `dst_mac` and carry timestamps exactly when
    /// `timestamps`: with the connection and the layout fixed by the caller, the only key
    /// [`Self::set_acknowledgment`] needs (the engine's bare-ACK template).
    #[inline]
    pub fn is_for(&self, dst_mac: EthernetAddress, timestamps: bool) -> bool {
        self.eth.dst_addr == dst_mac && timestamps == (self.len == WITH_TIMESTAMPS)
    }

    /// Patches in `tcp`'s ACK number, window and timestamp values and the stored TCP sum (RFC
    /// 1624: one's complement subtraction is addition of the complement). The caller vouches
    /// that every other field is the template's ([`Self::rebase`] checks it; the bare-ACK path
    /// knows it from [`Self::is_for`] and its connection).
    #[inline]
    pub fn set_acknowledgment(&mut self, tcp: &TcpRepr<'_>) {
        // Absent timestamps leave those bytes zero (the template then ends before them).
        let (tsval, tsecr) = tcp.options.timestamps.map_or((0, 0), |ts| (ts.tsval, ts.tsecr));
        let b = &mut self.bytes;
        let old = u64::from(read_u32(b, ACK_AT))
            + u64::from(u16::from_be_bytes([b[WINDOW_AT], b[WINDOW_AT + 1]]))
            + u64::from(read_u32(b, TS_VALUES_AT))
            + u64::from(read_u32(b, TS_VALUES_AT + 4));
        let new =
            u64::from(tcp.ack_number.0) + u64::from(tcp.window_len) + u64::from(tsval) + u64::from(tsecr);
        b[ACK_AT..ACK_AT + 4].copy_from_slice(&tcp.ack_number.0.to_be_bytes());
        b[WINDOW_AT..WINDOW_AT + 2].copy_from_slice(&tcp.window_len.to_be_bytes());
        b[TS_VALUES_AT..TS_VALUES_AT + 4].copy_from_slice(&tsval.to_be_bytes());
        b[TS_VALUES_AT + 4..TS_VALUES_AT + 8].copy_from_slice(&tsecr.to_be_bytes());
        // Whole 32-bit values are congruent to the sum of their halves modulo 0xffff.
        self.tcp_sum.add_u16(!fold(old));
        self.tcp_sum.add_u16(fold(new));
    }

    /// Writes the headers of the next segment of the burst (identification `ident`, sequence
    /// number `seq`, `flags`, `payload_len` bytes of payload, which must be the template's) and
    /// returns the TCP checksum so far, as [`emit_tcp_data_headers`] does. `None`, with nothing
    /// written, for another payload length or a short buffer.
    pub fn write(
        &self,
        buf: &mut [u8],
        ident: u16,
        seq: SeqNumber,
        flags: TcpFlags,
        payload_len: usize,
    ) -> Option<Checksum> {
        if payload_len != self.payload_len {
            return None;
        }
        if self.len == WITH_TIMESTAMPS {
            self.patch::<WITH_TIMESTAMPS>(buf.first_chunk_mut()?, ident, seq, flags);
        } else {
            self.patch::<WITHOUT_OPTIONS>(buf.first_chunk_mut()?, ident, seq, flags);
        }
        let mut sum = self.tcp_sum;
        sum.add_u32(seq.0);
        sum.add_u16(u16::from(flags.0));
        Some(sum)
    }

    /// Fixed sizes, so the copy is a few vector moves and the stores need no bounds checks.
    #[inline(always)]
    fn patch<const N: usize>(&self, h: &mut [u8; N], ident: u16, seq: SeqNumber, flags: TcpFlags) {
        let Some(bytes) = self.bytes.first_chunk::<N>() else { return };
        *h = *bytes;
        h[IDENT_AT..IDENT_AT + 2].copy_from_slice(&ident.to_be_bytes());
        let ip_checksum = !fold(self.ip_sum + u64::from(ident));
        h[IP_CHECKSUM_AT..IP_CHECKSUM_AT + 2].copy_from_slice(&ip_checksum.to_be_bytes());
        h[SEQ_AT..SEQ_AT + 4].copy_from_slice(&seq.0.to_be_bytes());
        h[FLAGS_AT] = flags.0;
    }
}

/// The big-endian 32-bit word at the constant offset `at`.
#[inline(always)]
fn read_u32(bytes: &[u8; WITH_TIMESTAMPS], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// A connection's [`DataHeaderTemplate`] kept from one poll to the next, so the first segment
/// of a burst can [`DataHeaderTemplate::rebase`] it instead of building its headers again.
/// A cache: the frames are the same with or without it, so its `Debug` shows nothing of it
/// (two connections in the same state compare equal whatever they cached).
#[derive(Clone, Copy, Default)]
pub struct KeptDataHeaders(pub Option<DataHeaderTemplate>);

impl core::fmt::Debug for KeptDataHeaders {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("KeptDataHeaders")
    }
}

/// The sum of `bytes` (a multiple of 4 long) as big-endian 32-bit words: congruent modulo 0xffff
/// to the sum of its 16-bit words. Fixed sizes, so the loop unrolls into a few loads and adds.
#[inline(always)]
fn words_sum<const N: usize>(bytes: &[u8; N]) -> u64 {
    bytes.chunks_exact(4).map(|w| u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tcp::{finish_checksum, SackBlock, SackBlocks, SeqNumber, TcpFlags, TcpOptions};
    use crate::wire::{ChecksumMode, EtherType, EthernetAddress, EthernetFrame, Ipv4Address, Ipv4Packet};
    use proptest::prelude::*;

    /// The general emitters, as the transmit path used them before this module.
    fn general(
        buf: &mut [u8],
        eth: &EthernetRepr,
        ip: &Ipv4Repr,
        tcp: &TcpRepr<'_>,
        payload_len: usize,
    ) -> Checksum {
        eth.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        let rest = &mut buf[ETHERNET_HEADER_LEN..];
        ip.emit(&mut Ipv4Packet::new_unchecked(&mut rest[..]), ChecksumMode::Compute);
        let header = &mut rest[IPV4_HEADER_LEN..IPV4_HEADER_LEN + tcp.header_len()];
        tcp.emit_header(header, ip.src_addr, ip.dst_addr, payload_len)
    }

    prop_compose! {
        fn segment()(
            macs in any::<([u8; 6], [u8; 6])>(),
            addrs in any::<([u8; 4], [u8; 4])>(),
            ports in any::<(u16, u16)>(),
            numbers in any::<(u32, u32)>(),
            flags in any::<u8>(),
            window in any::<u16>(),
            urgent in any::<u16>(),
            ts in proptest::option::of(any::<(u32, u32)>()),
            ip_fields in any::<(u16, u8, u8, bool)>(),
            payload_len in 0usize..1500,
            extra in 0u8..4,
        ) -> (EthernetRepr, Ipv4Repr, TcpRepr<'static>, usize) {
            let mut options = TcpOptions {
                timestamps: ts.map(|(tsval, tsecr)| Timestamps { tsval, tsecr }),
                ..TcpOptions::default()
            };
            // Now and then an option the fast path must refuse.
            match extra {
                1 => options.mss = Some(1460),
                2 => {
                    let mut blocks = SackBlocks::new();
                    blocks.push(SackBlock { left: SeqNumber(numbers.0), right: SeqNumber(numbers.1) });
                    options.sack_blocks = blocks;
                }
                _ => {}
            }
            let tcp = TcpRepr {
                src_port: ports.0,
                dst_port: ports.1,
                seq_number: SeqNumber(numbers.0),
                ack_number: SeqNumber(numbers.1),
                flags: TcpFlags(flags),
                window_len: window,
                urgent_pointer: urgent,
                options,
                payload: &[],
            };
            let (ident, ttl, dscp_ecn, dont_frag) = ip_fields;
            let ip = Ipv4Repr {
                src_addr: Ipv4Address(addrs.0),
                dst_addr: Ipv4Address(addrs.1),
                protocol: IpProtocol::Tcp,
                payload_len: tcp.header_len() + payload_len,
                ttl,
                dscp_ecn,
                ident,
                dont_frag,
            };
            let eth = EthernetRepr {
                src_addr: EthernetAddress(macs.0),
                dst_addr: EthernetAddress(macs.1),
                ethertype: EtherType::Ipv4,
            };
            (eth, ip, tcp, payload_len)
        }
    }

    proptest! {
        /// Byte-identical headers and the same checksum, once finished over the same payload,
        /// as the general emitters; refused (buffer untouched) exactly when options other than
        /// timestamps are present.
        #[test]
        fn fast_headers_match_the_general_emitters((eth, ip, tcp, payload_len) in segment(), fill in any::<u8>()) {
            let total = ETHERNET_HEADER_LEN + ip.buffer_len();
            let payload: Vec<u8> = (0..payload_len).map(|i| (i as u8) ^ fill).collect();
            let mut fast = vec![fill; total];
            let mut slow = vec![fill; total];
            let simple = tcp.options.mss.is_none() && tcp.options.sack_blocks.is_empty();
            let got = emit_tcp_data_headers(&mut fast, &eth, &ip, &tcp, payload_len);
            prop_assert_eq!(got.is_some(), simple);
            let Some(mut fast_sum) = got else {
                prop_assert!(fast.iter().all(|&b| b == fill));
                return Ok(());
            };
            let mut slow_sum = general(&mut slow, &eth, &ip, &tcp, payload_len);
            let start = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN;
            let header_end = start + tcp.header_len();
            fast_sum.add_bytes(&payload);
            slow_sum.add_bytes(&payload);
            finish_checksum(&mut fast[start..header_end], fast_sum);
            finish_checksum(&mut slow[start..header_end], slow_sum);
            prop_assert_eq!(&fast[..header_end], &slow[..header_end]);
        }
    }

    proptest! {
        /// A template patched with another identification, SEQ and flags writes the same bytes
        /// and the same checksum (finished over the same payload) as the fixed-layout writer
        /// given those fields; another payload length or a short buffer is refused.
        #[test]
        fn template_matches_the_writer(
            (eth, ip, tcp, payload_len) in segment(),
            next in any::<(u16, u32, u8)>(),
            fill in any::<u8>(),
        ) {
            let total = ETHERNET_HEADER_LEN + ip.buffer_len();
            let mut first = vec![fill; total];
            let Some((_, template)) = DataHeaderTemplate::emit(&mut first, &eth, &ip, &tcp, payload_len) else {
                prop_assert!(emit_tcp_data_headers(&mut first, &eth, &ip, &tcp, payload_len).is_none());
                return Ok(());
            };
            let (ident, seq, flags) = (next.0, SeqNumber(next.1), TcpFlags(next.2));
            let ip2 = Ipv4Repr { ident, ..ip };
            let tcp2 = TcpRepr { seq_number: seq, flags, ..tcp };
            let payload: Vec<u8> = (0..payload_len).map(|i| (i as u8).wrapping_mul(7) ^ fill).collect();
            let (mut patched, written) = both_writers(&template, (&eth, &ip2, &tcp2), &payload, fill, total);
            let header_end = patched.len();
            prop_assert_eq!(&patched, &written);
            prop_assert!(template.write(&mut patched, ident, seq, flags, payload_len + 1).is_none());
            prop_assert!(template.write(&mut patched[..header_end - 1], ident, seq, flags, payload_len).is_none());
        }
    }

    /// The headers of segment `(eth, ip, tcp)` carrying `payload` as `template.write` patches
    /// them (identification, SEQ and flags taken from `ip` and `tcp`) and as
    /// `emit_tcp_data_headers` builds them, each with its TCP checksum completed, written over
    /// buffers of `total` bytes pre-filled differently; each returned up to the header's end.
    fn both_writers(
        template: &DataHeaderTemplate,
        (eth, ip, tcp): (&EthernetRepr, &Ipv4Repr, &TcpRepr<'_>),
        payload: &[u8],
        fill: u8,
        total: usize,
    ) -> (Vec<u8>, Vec<u8>) {
        let mut patched = vec![fill; total];
        let mut written = vec![fill.wrapping_add(1); total];
        let mut patched_sum =
            template.write(&mut patched, ip.ident, tcp.seq_number, tcp.flags, payload.len()).unwrap();
        let mut written_sum = emit_tcp_data_headers(&mut written, eth, ip, tcp, payload.len()).unwrap();
        patched_sum.add_bytes(payload);
        written_sum.add_bytes(payload);
        let start = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN;
        let header_end = start + tcp.header_len();
        finish_checksum(&mut patched[start..header_end], patched_sum);
        finish_checksum(&mut written[start..header_end], written_sum);
        patched.truncate(header_end);
        written.truncate(header_end);
        (patched, written)
    }

    /// `segment`'s headers with one field other than the ones `rebase` patches changed.
    fn other_field_changed(
        (eth, ip, tcp, payload_len): (EthernetRepr, Ipv4Repr, TcpRepr<'static>, usize),
        which: u8,
        x: u8,
    ) -> (EthernetRepr, Ipv4Repr, TcpRepr<'static>, usize) {
        let x = x.max(1);
        let (mut eth, mut ip, mut tcp, mut payload_len) = (eth, ip, tcp, payload_len);
        match which % 9 {
            0 => eth.dst_addr.0[5] ^= x,
            1 => eth.src_addr.0[0] ^= x,
            2 => ip.ttl ^= x,
            3 => ip.dscp_ecn ^= x,
            4 => ip.dst_addr.0[3] ^= x,
            5 => tcp.src_port ^= u16::from(x),
            6 => tcp.urgent_pointer ^= u16::from(x) << 8,
            7 => {
                payload_len += usize::from(x);
                ip.payload_len += usize::from(x);
            }
            _ => {
                // Timestamps appear or go: the header length changes with them.
                tcp.options.timestamps = if tcp.options.timestamps.is_some() {
                    None
                } else {
                    Some(Timestamps { tsval: 1, tsecr: 2 })
                };
                ip.payload_len = tcp.header_len() + payload_len;
            }
        }
        (eth, ip, tcp, payload_len)
    }

    proptest! {
        /// A template rebased to another ACK, window and timestamps (a connection's next poll),
        /// then written with another identification, SEQ and flags, gives the same bytes and
        /// checksum as the fixed-layout writer given all of them, across any number of
        /// rebases; any other difference (addresses, TTL, ports, urgent pointer, payload
        /// length, options) is refused and leaves the template as it was.
        #[test]
        fn rebased_template_matches_the_writer(
            first in segment(),
            polls in proptest::collection::vec(
                (any::<(u32, u16, u32, u32)>(), any::<(u16, u32, u8)>(), proptest::option::of(any::<(u8, u8)>())),
                1..6,
            ),
            fill in any::<u8>(),
        ) {
            let (eth, ip, tcp, payload_len) = first;
            let total = ETHERNET_HEADER_LEN + ip.buffer_len();
            let mut buf = vec![fill; total + 300];
            let Some((_, mut template)) = DataHeaderTemplate::emit(&mut buf, &eth, &ip, &tcp, payload_len) else {
                return Ok(());
            };
            let payload: Vec<u8> = (0..payload_len).map(|i| (i as u8).wrapping_mul(13) ^ fill).collect();
            let (mut cur_tcp, mut cur_ip) = (tcp, ip);
            for ((ack, window, tsval, tsecr), (ident, seq, flags), change) in polls {
                let mut options = cur_tcp.options;
                if options.timestamps.is_some() {
                    options.timestamps = Some(Timestamps { tsval, tsecr });
                }
                let tcp2 = TcpRepr {
                    ack_number: SeqNumber(ack),
                    window_len: window,
                    seq_number: SeqNumber(seq),
                    flags: TcpFlags(flags),
                    options,
                    ..cur_tcp
                };
                let ip2 = Ipv4Repr { ident, ..cur_ip };
                let (e, i, t, p) = match change {
                    Some((which, x)) => other_field_changed((eth, ip2, tcp2, payload_len), which, x),
                    None => (eth, ip2, tcp2, payload_len),
                };
                let before = format!("{template:?}");
                if change.is_some() {
                    prop_assert!(!template.rebase(&e, &i, &t, p));
                    prop_assert_eq!(before, format!("{template:?}"));
                    continue;
                }
                prop_assert!(template.rebase(&e, &i, &t, p));
                let (patched, written) = both_writers(&template, (&e, &i, &t), &payload[..p], fill, total);
                prop_assert_eq!(patched, written);
                (cur_tcp, cur_ip) = (t, i);
            }
        }
    }

    #[test]
    fn short_buffer_is_refused() {
        let tcp = TcpRepr {
            src_port: 1,
            dst_port: 2,
            seq_number: SeqNumber(3),
            ack_number: SeqNumber(4),
            flags: TcpFlags::ACK,
            window_len: 5,
            urgent_pointer: 0,
            options: TcpOptions::default(),
            payload: &[],
        };
        let ip = Ipv4Repr {
            src_addr: Ipv4Address::new(198, 18, 0, 1),
            dst_addr: Ipv4Address::new(198, 18, 0, 2),
            protocol: IpProtocol::Tcp,
            payload_len: 20,
            ttl: 64,
            dscp_ecn: 0,
            ident: 7,
            dont_frag: true,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EtherType::Ipv4,
        };
        let mut buf = [0u8; WITHOUT_OPTIONS - 1];
        assert!(emit_tcp_data_headers(&mut buf, &eth, &ip, &tcp, 0).is_none());
        let mut buf = [0u8; WITHOUT_OPTIONS];
        assert!(emit_tcp_data_headers(&mut buf, &eth, &ip, &tcp, 0).is_some());
    }
}
