//! The pure-ACK fast path of `poll_transmit`: a receiver's connection that has nothing to send
//! but an ACK (or window update) sends it without the general planning loop.
//!
//! The general path plans a segment (`plan_segment` walks the probe, retransmission and new-data
//! checks before it reaches the ACK), builds its header (`header_for`), writes the frame, does
//! the per-segment bookkeeping (`on_segment_sent`) and plans again to learn that nothing is
//! left. Here [`Connection::pure_ack_due`] answers the first question with flag tests, the
//! header and the bookkeeping are the ACK-only halves of the same functions, and
//! [`Connection::may_plan_more`] the last question. Promises: the same frame bytes, the same
//! IPv4 identification sequence and the same connection and engine state as the general path
//! (`pure_ack_tests` compares both after every poll). Must not: send anything the general path
//! would not, or touch the route (an unresolved next hop takes the general path, which asks
//! the neighbour cache once).

use super::{write_tcp_frame, HeaderSource, TcpFrame};
use crate::device::{Device, ETHERNET_HEADER_LEN};
use crate::engine::Engine;
use crate::time::Instant;
use crate::wire::{EtherType, EthernetRepr, IpProtocol, Ipv4Repr};

#[cfg(test)]
mod tests;

/// What the fast path did for a connection.
pub(super) enum PureAck {
    /// Not a pure ACK (or no cached route): the general path decides, nothing was touched.
    NotTaken,
    /// The ACK was sent; `more` when the general path must still plan (it may find more).
    Sent { more: bool },
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
        let (true, Some(mac), Some(conn)) = (self.pure_ack_fast_path, slot.route, slot.conn.as_deref())
        else {
            return PureAck::NotTaken;
        };
        if !conn.pure_ack_due() {
            return PureAck::NotTaken;
        }
        let offload = device.capabilities().tx_checksum_offload;
        let ident = self.next_ident();
        let src_mac = self.cfg.mac;
        let Some(conn) = self.slots[index as usize].conn.as_deref_mut() else {
            return PureAck::NotTaken;
        };
        let tcp = conn.pure_ack_header(now);
        let tcp_header_len = tcp.header_len();
        let ip = Ipv4Repr {
            src_addr: conn.tuple.local.0,
            dst_addr: conn.tuple.remote.0,
            protocol: IpProtocol::Tcp,
            payload_len: tcp_header_len,
            ttl: 64,
            dscp_ecn: 0,
            ident,
            dont_frag: true,
        };
        let eth = EthernetRepr { src_addr: src_mac, dst_addr: mac, ethertype: EtherType::Ipv4 };
        let total = ETHERNET_HEADER_LEN + Ipv4Repr::HEADER_LEN + tcp_header_len;
        let done = device.transmit(now, total, |buf| {
            let frame = TcpFrame { eth: &eth, ip: &ip, tcp: &tcp, tcp_header_len };
            write_tcp_frame(buf, &frame, HeaderSource::Build, [], 0, offload);
        });
        if done.is_none() {
            return PureAck::DeviceFull;
        }
        conn.on_pure_ack_sent(now, &mut self.stats);
        PureAck::Sent { more: conn.may_plan_more() }
    }
}
