//! The pure-ACK fast path of `poll_transmit`: a receiver's connection that has nothing to send
//! but an ACK (or window update) sends it without the general planning loop.
//!
//! The general path plans a segment (`plan_segment` walks the probe, retransmission and new-data
//! checks before it reaches the ACK), builds its header (`header_for`), writes the frame, does
//! the per-segment bookkeeping (`on_segment_sent`) and plans again to learn that nothing is
//! left. Here [`Connection::pure_ack_due`] answers the first question with flag tests, the
//! header and the bookkeeping are the ACK-only halves of the same functions
//! (`tcp/ack_output.rs`), the frame is a per-connection [`AckTemplate`] with the changing fields
//! patched, and the last question needs no asking: what `pure_ack_due` ruled out the ACK does
//! not bring back, and right after `window_field` moved RCV.ADV no window update is due (it
//! grew to the offer, or the offer is under the SWS threshold above it), so the second plan is
//! always empty (debug builds check `may_plan_more`). Promises: the same frame bytes, the same
//! IPv4 identification sequence and the same connection and engine state as the general path
//! (`tests` compares both after every step). Must not: send anything the general path would
//! not, or touch the route (an unresolved next hop takes the general path, which asks the
//! neighbour cache once).

use super::{write_tcp_frame, HeaderSource, TcpFrame};
use crate::device::{Device, ETHERNET_HEADER_LEN};
use crate::engine::Engine;
use crate::time::Instant;
use crate::wire::{
    Checksum, EtherType, EthernetAddress, EthernetRepr, IpProtocol, Ipv4Repr, TcpRepr, ACK_AT, IDENT_AT,
    IP_CHECKSUM_AT, SEQ_AT, TS_VALUES_AT, WINDOW_AT,
};

#[cfg(test)]
mod tests;

/// What the fast path did for a connection.
pub(super) enum PureAck {
    /// Not a pure ACK (or no cached route): the general path decides, nothing was touched.
    NotTaken,
    /// The ACK was sent, and the connection has nothing more to send.
    Sent,
    /// The device refused the frame: as the general path leaves it (RCV.ADV moved, the
    /// identification used, nothing marked sent).
    DeviceFull,
}

impl Engine {
    /// Sends connection `index`'s ACK when it is all the connection has to send.
    pub(super) fn transmit_pure_ack<D: Device>(
        &mut self,
        now: Instant,
        index: u32,
        device: &mut D,
    ) -> PureAck {
        let slot = &self.slots[index as usize];
        let (true, Some(mac), Some(conn)) = (self.pure_ack_fast_path(), slot.route, slot.conn.as_deref())
        else {
            return PureAck::NotTaken;
        };
        if !conn.pure_ack_due() {
            return PureAck::NotTaken;
        }
        let offload = device.capabilities().tx_checksum_offload;
        let ident = self.next_ident();
        let src_mac = self.cfg.mac;
        // The slot's fields apart: the connection and its template are used together, in place.
        let slot = &mut self.slots[index as usize];
        let (Some(conn), template) = (slot.conn.as_deref_mut(), &mut slot.ack_template) else {
            return PureAck::NotTaken;
        };
        let tcp = conn.pure_ack_header(now);
        let tcp_header_len = if tcp.options.timestamps.is_some() { TCP_WITH_TIMESTAMPS } else { TCP_BARE };
        let total = TCP_AT + tcp_header_len;
        let (src_addr, dst_addr) = (conn.tuple.local.0, conn.tuple.remote.0);
        let done = device.transmit(now, total, |buf| {
            if let Some(t) = template.as_ref().filter(|t| t.dst_mac == mac && t.len == total) {
                if t.write(buf, ident, &tcp, offload).is_some() {
                    return;
                }
            }
            let ip = Ipv4Repr {
                src_addr,
                dst_addr,
                protocol: IpProtocol::Tcp,
                payload_len: tcp_header_len,
                ttl: 64,
                dscp_ecn: 0,
                ident,
                dont_frag: true,
            };
            let eth = EthernetRepr { src_addr: src_mac, dst_addr: mac, ethertype: EtherType::Ipv4 };
            let frame = TcpFrame { eth: &eth, ip: &ip, tcp: &tcp, tcp_header_len };
            write_tcp_frame(buf, &frame, HeaderSource::Build, [], 0, offload);
            *template = AckTemplate::capture(buf, mac, offload);
        });
        if done.is_none() {
            return PureAck::DeviceFull;
        }
        conn.on_pure_ack_sent(now, &mut self.stats);
        debug_assert!(!conn.may_plan_more(), "a pure ACK left more to send");
        PureAck::Sent
    }
}

impl Engine {
    /// Whether the fast path may be taken: always, but in the tests' reference engine.
    #[cfg(not(test))]
    #[inline(always)]
    fn pure_ack_fast_path(&self) -> bool {
        true
    }

    #[cfg(test)]
    fn pure_ack_fast_path(&self) -> bool {
        self.pure_ack_fast_path
    }
}

/// Ethernet, IPv4 and TCP header (timestamps: NOP, NOP, TS) of a bare ACK.
const TCP_WITH_TIMESTAMPS: usize = 32;
const TCP_BARE: usize = 20;
const IP_AT: usize = ETHERNET_HEADER_LEN;
const TCP_AT: usize = IP_AT + Ipv4Repr::HEADER_LEN;
const FRAME_MAX: usize = TCP_AT + TCP_WITH_TIMESTAMPS;
const TCP_CHECKSUM_AT: usize = TCP_AT + 16;
/// NOP, NOP, kind 8, length 10 (RFC 7323 Appendix A), then TSval and TSecr.
const TS_LAYOUT: [u8; 4] = [1, 1, 8, 10];
const TSVAL_AT: usize = TS_VALUES_AT;
const TSECR_AT: usize = TS_VALUES_AT + 4;

/// A connection's bare-ACK frame as the general writer last built it, with the fields that
/// change from one ACK to the next (IPv4 identification, SEQ, ACK, window, TSval, TSecr and both
/// checksums) left to patch: the rest (addresses, ports, lengths, flags, option layout) is fixed
/// for the connection's next hop and whether it uses timestamps, which is the template's key.
/// The checksums are the stored sums of the fixed words plus the new fields (RFC 1071 sums
/// are order-free; neither ever folds to zero, as each holds a non-zero fixed word), so the
/// bytes are what the general writer would write (`tests` compares every frame).
#[derive(Clone, Copy, Debug)]
pub(in crate::engine) struct AckTemplate {
    bytes: [u8; FRAME_MAX],
    /// Frame length: with or without timestamps.
    len: usize,
    /// The next hop it was built for.
    dst_mac: EthernetAddress,
    /// IPv4 header without identification and checksum.
    ip_sum: Checksum,
    /// Pseudo-header and TCP header without SEQ, ACK, window, checksum and timestamps.
    tcp_sum: Checksum,
}

impl AckTemplate {
    /// The template of the bare ACK frame the general writer just wrote in `buf`, or `None` for
    /// any other layout and under `offload` (the device completes that checksum field).
    fn capture(buf: &[u8], dst_mac: EthernetAddress, offload: bool) -> Option<AckTemplate> {
        let len = buf.len();
        let with_ts = match len.checked_sub(TCP_AT) {
            Some(TCP_WITH_TIMESTAMPS) => true,
            Some(TCP_BARE) => false,
            _ => return None,
        };
        if offload || (with_ts && buf[TCP_AT + TCP_BARE..TSVAL_AT] != TS_LAYOUT) {
            return None;
        }
        let mut bytes = [0u8; FRAME_MAX];
        bytes[..len].copy_from_slice(buf);
        let mut zeroed = bytes;
        for at in [IDENT_AT, IP_CHECKSUM_AT, WINDOW_AT, TCP_CHECKSUM_AT] {
            zeroed[at..at + 2].fill(0);
        }
        for at in [SEQ_AT, ACK_AT, TSVAL_AT, TSECR_AT] {
            zeroed[at..at + 4].fill(0);
        }
        let mut ip_sum = Checksum::new();
        ip_sum.add_header(&zeroed[IP_AT..TCP_AT]);
        let mut tcp_sum = Checksum::new();
        // Pseudo-header (RFC 9293 §3.1): the addresses are the IPv4 header's last 8 bytes.
        tcp_sum.add_header(&zeroed[TCP_AT - 8..TCP_AT]);
        tcp_sum.add_u16(u16::from(u8::from(IpProtocol::Tcp)));
        tcp_sum.add_u16((len - TCP_AT) as u16);
        tcp_sum.add_header(&zeroed[TCP_AT..len]);
        Some(AckTemplate { bytes, len, dst_mac, ip_sum, tcp_sum })
    }

    /// Writes the ACK `tcp` with identification `ident` into `buf` (exactly `self.len` bytes);
    /// `None`, with nothing written, when `buf` has another length, `tcp`'s timestamps do not
    /// match the template's layout, or the device completes checksums (`offload`).
    #[inline]
    fn write(&self, buf: &mut [u8], ident: u16, tcp: &TcpRepr<'_>, offload: bool) -> Option<()> {
        let with_ts = self.len == TCP_AT + TCP_WITH_TIMESTAMPS;
        if offload || buf.len() != self.len || tcp.options.timestamps.is_some() != with_ts {
            return None;
        }
        // Fixed sizes, so the copy is a few vector moves rather than a `memcpy` call.
        if with_ts {
            *buf.first_chunk_mut::<FRAME_MAX>()? = self.bytes;
        } else {
            *buf.first_chunk_mut::<{ TCP_AT + TCP_BARE }>()? = *self.bytes.first_chunk()?;
        }
        let mut ip_sum = self.ip_sum;
        ip_sum.add_u16(ident);
        buf[IDENT_AT..IDENT_AT + 2].copy_from_slice(&ident.to_be_bytes());
        buf[IP_CHECKSUM_AT..IP_CHECKSUM_AT + 2].copy_from_slice(&ip_sum.finish().to_be_bytes());
        let mut sum = self.tcp_sum;
        let (seq, ack) = (tcp.seq_number.0, tcp.ack_number.0);
        sum.add_u32(seq);
        sum.add_u32(ack);
        sum.add_u16(tcp.window_len);
        buf[SEQ_AT..SEQ_AT + 4].copy_from_slice(&seq.to_be_bytes());
        buf[ACK_AT..ACK_AT + 4].copy_from_slice(&ack.to_be_bytes());
        buf[WINDOW_AT..WINDOW_AT + 2].copy_from_slice(&tcp.window_len.to_be_bytes());
        if let Some(ts) = tcp.options.timestamps {
            sum.add_u32(ts.tsval);
            sum.add_u32(ts.tsecr);
            buf[TSVAL_AT..TSVAL_AT + 4].copy_from_slice(&ts.tsval.to_be_bytes());
            buf[TSECR_AT..TSECR_AT + 4].copy_from_slice(&ts.tsecr.to_be_bytes());
        }
        buf[TCP_CHECKSUM_AT..TCP_CHECKSUM_AT + 2].copy_from_slice(&sum.finish().to_be_bytes());
        Some(())
    }
}
