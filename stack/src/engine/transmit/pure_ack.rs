//! The pure-ACK fast path of `poll_transmit`: a receiver's connection that has nothing to send
//! but an ACK (or window update) sends it without the general planning loop.
//!
//! The general path plans a segment (`plan_segment` walks the probe, retransmission and new-data
//! checks before it reaches the ACK), builds its header (`header_for`), writes the frame, does
//! the per-segment bookkeeping (`on_segment_sent`) and plans again to learn that nothing is
//! left. Here [`Connection::pure_ack_due`] answers the first question with flag tests, the
//! header and the bookkeeping are the ACK-only halves of the same functions
//! (`tcp/ack_output.rs`), the frame's headers are the connection's kept bare-ACK headers
//! (`Slot::ack_template`, the same [`DataHeaderTemplate`] the data path keeps, with no payload)
//! with ACK, window and timestamps patched in by
//! [`DataHeaderTemplate::set_acknowledgment`] and identification and SEQ by its `write`, keyed by
//! next hop and timestamp layout only (the tuple is the connection's, and `pure_ack_due` rules
//! out every other option), and the last question needs no asking: what `pure_ack_due` ruled out the ACK does
//! not bring back, and right after `window_field` moved RCV.ADV no window update is due (it
//! grew to the offer, or the offer is under the SWS threshold above it), so the second plan is
//! always empty (debug builds check `may_plan_more`). Promises: the same frame bytes, the same
//! IPv4 identification sequence and the same connection and engine state as the general path
//! (`tests` compares both after every step). Must not: send anything the general path would
//! not, or touch the route (an unresolved next hop takes the general path, which asks the
//! neighbour cache once).

use super::{tcp_ip_header, write_tcp_frame, HeaderSource, TcpFrame};
use crate::device::{Device, ETHERNET_HEADER_LEN};
use crate::engine::Engine;
use crate::time::Instant;
#[cfg(doc)]
use crate::wire::DataHeaderTemplate;
use crate::wire::{EtherType, EthernetRepr, Ipv4Repr};

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
        let timestamps = tcp.options.timestamps.is_some();
        let tcp_header_len = tcp.header_len();
        let ip = tcp_ip_header(&conn.tuple, tcp_header_len, ident);
        let eth = EthernetRepr { src_addr: src_mac, dst_addr: mac, ethertype: EtherType::Ipv4 };
        let frame = TcpFrame { eth: &eth, ip: &ip, tcp: &tcp, tcp_header_len };
        let total = ETHERNET_HEADER_LEN + Ipv4Repr::HEADER_LEN + tcp_header_len;
        let done = device.transmit(now, total, |buf| {
            // The connection's last bare ACK differs from this one only in the identification,
            // SEQ, ACK, window and timestamp values while the next hop and the timestamp
            // layout stay (the tuple is the connection's, and `pure_ack_due` rules out any
            // other option), so the key is those two and the template needs no repr compare.
            let headers = match template.0.as_mut() {
                Some(t) if t.is_for(mac, timestamps) => {
                    t.set_acknowledgment(&tcp);
                    HeaderSource::Template(t)
                }
                _ => HeaderSource::Keep(template),
            };
            write_tcp_frame(buf, &frame, headers, [], 0, offload);
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
