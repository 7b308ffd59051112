//! Frame output: `poll_transmit` drains the reply queue (ARP, RSTs, ICMP echo replies) and then
//! the ready list of connections, building each frame in place in the device's buffer.
//!
//! TCP frames are written once: Ethernet and IPv4 headers, the TCP header with `emit_header`,
//! then the payload copied from the send buffer with `Checksum::copy_from` (one pass for copy and
//! checksum). The payload may span ring bytes and lent chunks (`SendBuffer::pieces`); a frame
//! whose lent chunk went bad during the copy is rewritten as a RST and the connection is reset
//! (see `tcp/send_source.rs`). A device that refuses a buffer stops the round; the connection
//! stays ready and nothing it planned is marked sent.
//!
//! Bursts (GSO-like): consecutive data segments of one connection in one poll share their
//! header. After the first, `Connection::continues_burst` says whether the previous header with
//! SEQ and flags patched is what `header_for` would build (options, window), and the frame headers are copied from
//! a [`DataHeaderTemplate`] with the IPv4 identification, SEQ, flags and both checksums patched.
//! Every segment is still recorded on its own (loss recovery, the rate estimator, the
//! controller and the pacer see each one), and the frames are byte-identical to the ones the
//! per-segment path builds. After a full-size data segment `Connection::next_in_burst` plans
//! the next one from a few checks instead of `plan_segment`, and `on_burst_segment_sent`
//! records it without repeating what the burst's first segment already did at this `now`
//! (`tcp/burst_tests.rs` holds both to the per-segment path). The template outlives the poll
//! (`Connection::kept_headers`): the next poll's first data segment rebases it to the new ACK,
//! window and timestamps (`DataHeaderTemplate::rebase`) when nothing else in its headers
//! changed, instead of building them again (`transmit/kept_headers_tests.rs` holds it to the
//! path that builds them).

mod pure_ack;

use super::{Engine, ARP_RETRY, ICMP_ECHO_MAX};
use crate::device::{Device, ETHERNET_HEADER_LEN};
use crate::neighbor::NeighborLookup;
use crate::tcp::output::{SegmentKind, SegmentPlan};
use crate::tcp::FourTuple;
use crate::time::Instant;
use crate::wire::{
    self, ArpOperation, ArpPacket, ArpRepr, Checksum, ChecksumMode, DataHeaderTemplate, EtherType,
    EthernetAddress, EthernetFrame, EthernetRepr, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr,
    KeptDataHeaders, SeqNumber, TcpFlags, TcpOptions, TcpRepr,
};
use pure_ack::PureAck;

#[cfg(test)]
mod kept_headers_tests;
#[cfg(test)]
mod test_port;

/// A frame the engine owes someone, independent of any connection.
/// The echo variant carries its data inline: the queue is preallocated and bounded, and boxing
/// would allocate per echo request.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug)]
pub(crate) enum Reply {
    Rst {
        tuple: FourTuple,
        dst: EthernetAddress,
        seq: SeqNumber,
        ack: Option<SeqNumber>,
    },
    /// A stateless SYN-ACK carrying a SYN cookie (RFC 4987 §3.6): nothing is remembered.
    SynAck {
        tuple: FourTuple,
        dst: EthernetAddress,
        seq: SeqNumber,
        ack: SeqNumber,
        window: u16,
        options: TcpOptions,
    },
    Arp {
        repr: ArpRepr,
        dst: EthernetAddress,
    },
    /// An ACK from a compact TIME-WAIT record (see `time_wait`), built when sent.
    TimeWaitAck(super::time_wait::TimeWaitAck),
    ArpRequest {
        target: Ipv4Address,
    },
    Echo {
        dst_ip: Ipv4Address,
        dst: EthernetAddress,
        ident: u16,
        seq_no: u16,
        len: u16,
        data: [u8; ICMP_ECHO_MAX],
    },
}

enum ConnOutcome {
    Idle,
    DeviceFull,
    NoRoute,
}

impl Engine {
    /// Fills the device with every frame that is due; returns how many were queued. Flushes the
    /// device when anything was queued.
    ///
    /// A reply the device refuses is dropped and counted (`tx_control_drops`) and the round
    /// ends: control frames are never retried, so one the device can never take (too big, say)
    /// cannot block the queue; a lost RST or ARP reply is re-triggered by the peer's retransmission.
    pub fn poll_transmit<D: Device>(&mut self, now: Instant, device: &mut D) -> usize {
        // A receive burst that was leaked instead of dropped ends here at the latest.
        self.finish_deferred_update(now);
        let mut sent = 0;
        if !self.transmit_replies(now, device, &mut sent) {
            if sent > 0 {
                device.flush(now);
            }
            return sent;
        }
        let rounds = self.ready.len();
        for _ in 0..rounds {
            let Some(index) = self.ready.pop_front() else { break };
            self.slots[index as usize].in_ready = false;
            let (outcome, n) = self.transmit_connection(now, index, device);
            sent += n;
            match outcome {
                ConnOutcome::Idle => {}
                ConnOutcome::DeviceFull => {
                    self.stats.tx_ring_full += 1;
                    self.slots[index as usize].in_ready = true;
                    self.ready.push_front(index);
                    self.after_update(index, now);
                    break;
                }
                ConnOutcome::NoRoute => {
                    let slot = &mut self.slots[index as usize];
                    if !slot.waiting_arp {
                        slot.waiting_arp = true;
                        self.arp_waiting.push(index);
                    }
                    if self.arp_retry_at.is_none() {
                        self.arp_retry_at = Some(now + ARP_RETRY);
                    }
                }
            }
            self.after_update(index, now);
        }
        // ARP requests queued while routing.
        self.transmit_replies(now, device, &mut sent);
        if sent > 0 {
            device.flush(now);
        }
        sent
    }

    /// Sends queued replies until the queue is empty (true) or the device refuses one, which is
    /// then dropped and counted (false).
    fn transmit_replies<D: Device>(&mut self, now: Instant, device: &mut D, sent: &mut usize) -> bool {
        while let Some(reply) = self.replies.pop_front() {
            if !self.transmit_reply(now, device, &reply) {
                self.stats.tx_ring_full += 1;
                self.stats.tx_control_drops += 1;
                return false;
            }
            *sent += 1;
        }
        true
    }

    fn route(&mut self, now: Instant, index: u32) -> Option<EthernetAddress> {
        let slot = &mut self.slots[index as usize];
        if let Some(mac) = slot.route {
            return Some(mac);
        }
        let remote = slot.conn.as_ref()?.tuple.remote.0;
        let hop = self.iface.next_hop(remote);
        let mac = match self.neighbors.lookup(hop, now) {
            NeighborLookup::Found(mac) => Some(mac),
            NeighborLookup::SendRequest => {
                self.queue_arp_request(hop);
                None
            }
            NeighborLookup::Pending | NeighborLookup::Failed | NeighborLookup::CacheFull => None,
        };
        if mac.is_none() {
            self.stats.arp_unresolved_drops += 1;
        }
        self.slots[index as usize].route = mac;
        mac
    }

    pub(super) fn queue_arp_request(&mut self, target: Ipv4Address) {
        self.queue_reply(Reply::ArpRequest { target });
    }

    /// Sends what the connection has due; its retransmission and persist timers are derived
    /// once, after the last data segment (see `Connection::on_segment_sent_in_burst`).
    fn transmit_connection<D: Device>(
        &mut self,
        now: Instant,
        index: u32,
        device: &mut D,
    ) -> (ConnOutcome, usize) {
        let mut timers_stale = false;
        let out = self.transmit_segments(now, index, device, &mut timers_stale);
        if timers_stale {
            if let Some(conn) = self.slots[index as usize].conn.as_deref_mut() {
                conn.update_send_timers(now);
            }
        }
        out
    }

    fn transmit_segments<D: Device>(
        &mut self,
        now: Instant,
        index: u32,
        device: &mut D,
        timers_stale: &mut bool,
    ) -> (ConnOutcome, usize) {
        let mut sent = 0;
        match self.transmit_pure_ack(now, index, device) {
            PureAck::NotTaken => {}
            PureAck::Sent => return (ConnOutcome::Idle, 1),
            PureAck::DeviceFull => return (ConnOutcome::DeviceFull, 0),
        }
        let caps = device.capabilities();
        let (src_mac, offload) = (self.cfg.mac, caps.tx_checksum_offload);
        let device_mss = caps.mtu.saturating_sub(40) as u32;
        let mut eth_header = None;
        let mut burst: Option<Burst> = None;
        // The next full-size segment of a burst, planned without `plan_segment`.
        let mut continued: Option<SegmentPlan> = None;
        loop {
            let is_continued = continued.is_some();
            let plan = match continued.take() {
                Some(plan) => Some(plan),
                None => self.slots[index as usize].conn.as_ref().and_then(|c| c.plan_segment()),
            };
            let Some(plan) = plan else {
                return (ConnOutcome::Idle, sent);
            };
            if eth_header.is_none() {
                let Some(mac) = self.route(now, index) else { return (ConnOutcome::NoRoute, sent) };
                eth_header =
                    Some(EthernetRepr { src_addr: src_mac, dst_addr: mac, ethertype: EtherType::Ipv4 });
            }
            // Built once per poll (the route is per connection): only borrowed per frame.
            let Some(eth) = eth_header.as_ref() else { return (ConnOutcome::NoRoute, sent) };
            let ident = self.next_ident();
            let Some(conn) = self.slots[index as usize].conn.as_deref_mut() else {
                return (ConnOutcome::Idle, sent);
            };
            let b = match burst.as_mut() {
                Some(b) if conn.continues_burst(&b.plan, &b.header, &plan) => {
                    b.plan = plan;
                    b.header.seq_number = plan.seq;
                    b.header.flags = plan.flags;
                    b
                }
                _ => {
                    let header = conn.header_for(&plan, now);
                    let header_len = header.header_len();
                    burst.insert(Burst { plan, header, header_len, template: false })
                }
            };
            let tcp_len = b.header_len + plan.len as usize;
            if Ipv4Repr::HEADER_LEN + tcp_len > caps.mtu && plan.len > 0 && device_mss < conn.snd_mss {
                // The device carries less than our configured MTU: segment for the device.
                conn.set_path_mss(device_mss);
                burst = None;
                continued = None;
                continue;
            }
            let ip = tcp_ip_header(&conn.tuple, tcp_len, ident);
            // Data riding on a SYN (Fast Open) starts after the SYN's sequence number.
            let data_seq = plan.seq + u32::from(plan.flags.syn());
            let mut payload = conn.sndbuf.pieces(data_seq, plan.len as usize);
            let total = ETHERNET_HEADER_LEN + Ipv4Repr::HEADER_LEN + tcp_len;
            let reset_seq = conn.snd_nxt;
            let headers = match (b.template, conn.kept_headers.0.as_ref()) {
                (true, Some(template)) => HeaderSource::Template(template),
                _ if plan.kind == SegmentKind::Data => HeaderSource::Keep(&mut conn.kept_headers),
                _ => HeaderSource::Build,
            };
            let header = &b.header;
            let done = device.transmit(now, total, |buf| {
                let frame = TcpFrame { eth, ip: &ip, tcp: header, tcp_header_len: b.header_len };
                let kept = write_tcp_frame(buf, &frame, headers, &mut payload, plan.len as usize, offload);
                // Lent memory can go bad while it is copied (a file truncated under its mapping
                // reads as zeros): checked after the copy, and such a frame leaves as a RST.
                let intact = payload.intact();
                if !intact {
                    write_reset_over(buf, eth, &ip, header, reset_seq);
                }
                (intact, kept)
            });
            match done {
                None => return (ConnOutcome::DeviceFull, sent),
                Some((false, _)) => {
                    if core::mem::take(timers_stale) {
                        conn.update_send_timers(now);
                    }
                    self.reset_for_lost_source(now, index);
                    return (ConnOutcome::Idle, sent + 1);
                }
                Some((true, kept)) => b.template |= kept,
            }
            if is_continued {
                conn.on_burst_segment_sent(&plan, now, &mut self.stats);
            } else if plan.kind == SegmentKind::Data {
                conn.on_segment_sent_in_burst(&plan, now, &mut self.stats);
                *timers_stale = true;
            } else {
                conn.on_segment_sent(&plan, now, &mut self.stats);
                *timers_stale = false;
            }
            if plan.kind == SegmentKind::Data {
                continued = conn.next_in_burst(&plan);
            }
            sent += 1;
        }
    }

    fn next_ident(&mut self) -> u16 {
        self.ip_ident = self.ip_ident.wrapping_add(1);
        self.ip_ident
    }

    fn transmit_reply<D: Device>(&mut self, now: Instant, device: &mut D, reply: &Reply) -> bool {
        let ident = self.next_ident();
        let (our_mac, our_ip) = (self.cfg.mac, self.cfg.addr);
        match *reply {
            Reply::Rst { tuple, dst, seq, ack } => {
                let mut flags = TcpFlags::RST;
                if ack.is_some() {
                    flags |= TcpFlags::ACK;
                }
                let ack = ack.unwrap_or(SeqNumber(0));
                let ok = self.transmit_control(now, device, ident, tuple, dst, (seq, ack, flags, 0), None);
                if ok {
                    self.stats.out_rsts += 1;
                }
                ok
            }
            Reply::SynAck { tuple, dst, seq, ack, window, options } => {
                let flags = TcpFlags::SYN | TcpFlags::ACK;
                let control = (seq, ack, flags, window);
                let ok = self.transmit_control(now, device, ident, tuple, dst, control, Some(options));
                if ok {
                    self.stats.syncookies_sent += 1;
                }
                ok
            }
            Reply::TimeWaitAck(ack) => self.transmit_time_wait_ack(now, device, ident, &ack),
            Reply::Arp { repr, dst } => {
                let ok = self.transmit_arp(now, device, &repr, dst);
                if ok {
                    self.stats.arp_replies_sent += 1;
                }
                ok
            }
            Reply::ArpRequest { target } => {
                let repr = ArpRepr {
                    operation: ArpOperation::Request,
                    source_hardware_addr: our_mac,
                    source_protocol_addr: our_ip,
                    target_hardware_addr: EthernetAddress([0; 6]),
                    target_protocol_addr: target,
                };
                let ok = self.transmit_arp(now, device, &repr, EthernetAddress::BROADCAST);
                if ok {
                    self.stats.arp_requests_sent += 1;
                }
                ok
            }
            Reply::Echo { dst_ip, dst, ident: echo_id, seq_no, len, data } => {
                let icmp =
                    wire::Icmpv4Repr::EchoReply { ident: echo_id, seq_no, data: &data[..len as usize] };
                self.transmit_echo(now, device, ident, dst_ip, dst, &icmp)
            }
        }
    }

    /// A connection-less TCP segment (RST, cookie SYN-ACK): `control` is (SEQ, ACK, flags,
    /// window).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn transmit_control<D: Device>(
        &mut self,
        now: Instant,
        device: &mut D,
        ident: u16,
        tuple: FourTuple,
        dst: EthernetAddress,
        control: (SeqNumber, SeqNumber, TcpFlags, u16),
        options: Option<TcpOptions>,
    ) -> bool {
        let our_mac = self.cfg.mac;
        let (seq, ack, flags, window_len) = control;
        let tcp = TcpRepr {
            src_port: tuple.local.1,
            dst_port: tuple.remote.1,
            seq_number: seq,
            ack_number: ack,
            flags,
            window_len,
            urgent_pointer: 0,
            options: options.unwrap_or_default(),
            payload: &[],
        };
        let ip = tcp_ip_header(&tuple, tcp.header_len(), ident);
        let eth = EthernetRepr { src_addr: our_mac, dst_addr: dst, ethertype: EtherType::Ipv4 };
        let total = ETHERNET_HEADER_LEN + Ipv4Repr::HEADER_LEN + tcp.header_len();
        let ok = device.transmit(now, total, |buf| {
            let frame = TcpFrame { eth: &eth, ip: &ip, tcp: &tcp, tcp_header_len: tcp.header_len() };
            write_tcp_frame(buf, &frame, HeaderSource::Build, [], 0, false);
        });
        if ok.is_some() {
            self.stats.out_segs += 1;
        }
        ok.is_some()
    }

    fn transmit_echo<D: Device>(
        &mut self,
        now: Instant,
        device: &mut D,
        ident: u16,
        dst_ip: Ipv4Address,
        dst: EthernetAddress,
        icmp: &wire::Icmpv4Repr<'_>,
    ) -> bool {
        let (our_mac, our_ip) = (self.cfg.mac, self.cfg.addr);
        let ip = Ipv4Repr {
            src_addr: our_ip,
            dst_addr: dst_ip,
            protocol: IpProtocol::Icmp,
            payload_len: icmp.buffer_len(),
            ttl: 64,
            dscp_ecn: 0,
            ident,
            dont_frag: true,
        };
        let eth = EthernetRepr { src_addr: our_mac, dst_addr: dst, ethertype: EtherType::Ipv4 };
        let total = ETHERNET_HEADER_LEN + ip.buffer_len();
        let ok = device.transmit(now, total, |buf| {
            let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
            eth.emit(&mut frame);
            let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
            ip.emit(&mut packet, ChecksumMode::Compute);
            let mut msg = wire::Icmpv4Packet::new_unchecked(packet.payload_mut());
            icmp.emit(&mut msg, ChecksumMode::Compute);
        });
        if ok.is_some() {
            self.stats.icmp_out_echo_reps += 1;
        }
        ok.is_some()
    }

    fn transmit_arp<D: Device>(
        &mut self,
        now: Instant,
        device: &mut D,
        repr: &ArpRepr,
        dst: EthernetAddress,
    ) -> bool {
        let eth = EthernetRepr { src_addr: self.cfg.mac, dst_addr: dst, ethertype: EtherType::Arp };
        let total = ETHERNET_HEADER_LEN + repr.buffer_len();
        device
            .transmit(now, total, |buf| {
                let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
                eth.emit(&mut frame);
                let mut packet = ArpPacket::new_unchecked(frame.payload_mut());
                repr.emit(&mut packet);
            })
            .is_some()
    }
}

/// The previous segment one connection sent in this poll: where a burst continues from.
struct Burst {
    plan: SegmentPlan,
    header: TcpRepr<'static>,
    header_len: usize,
    /// The connection's kept headers are this burst's (it was a data segment the
    /// fixed-layout writer could build, or whose kept headers could be rebased).
    template: bool,
}

/// The IPv4 header of every TCP segment the engine sends for `tuple` (`tcp_len` bytes of TCP
/// header and payload): TTL 64 (RFC 1700's default, Linux's `ip_default_ttl`), DSCP/ECN 0,
/// Don't Fragment set for path MTU discovery (RFC 1191). One definition, so the bare-ACK
/// template's key (`pure_ack.rs`: next hop and timestamp layout) can rely on the rest being
/// the connection's.
pub(super) fn tcp_ip_header(tuple: &FourTuple, tcp_len: usize, ident: u16) -> Ipv4Repr {
    Ipv4Repr {
        src_addr: tuple.local.0,
        dst_addr: tuple.remote.0,
        protocol: IpProtocol::Tcp,
        payload_len: tcp_len,
        ttl: 64,
        dscp_ecn: 0,
        ident,
        dont_frag: true,
    }
}

/// How a frame's headers are written.
enum HeaderSource<'t> {
    /// From the reprs.
    Build,
    /// From the previous poll's kept headers rebased (`DataHeaderTemplate::rebase`), else
    /// from the reprs; either way kept as the template for the burst's next segments.
    Keep(&'t mut KeptDataHeaders),
    /// Copied from the previous segment's, with identification, SEQ and flags patched.
    Template(&'t DataHeaderTemplate),
}

/// The headers of one TCP frame.
struct TcpFrame<'a> {
    eth: &'a EthernetRepr,
    ip: &'a Ipv4Repr,
    tcp: &'a TcpRepr<'a>,
    /// `tcp.header_len()`, computed once per burst.
    tcp_header_len: usize,
}

/// Writes a whole TCP/IPv4/Ethernet frame: headers, then the `payload_len` payload bytes
/// (`payload`'s pieces in order) copied with the checksum computed in the same pass. True when
/// `headers` asked to keep them and the kept template now holds them.
fn write_tcp_frame<'p>(
    buf: &mut [u8],
    frame: &TcpFrame<'_>,
    headers: HeaderSource<'_>,
    payload: impl IntoIterator<Item = &'p [u8]>,
    payload_len: usize,
    offload: bool,
) -> bool {
    let (eth, ip, tcp) = (frame.eth, frame.ip, frame.tcp);
    let (mut sum, kept) = match headers {
        HeaderSource::Template(t) => match t.write(buf, ip.ident, tcp.seq_number, tcp.flags, payload_len) {
            Some(sum) => (sum, false),
            None => (write_tcp_headers(buf, eth, ip, tcp, payload_len), false),
        },
        HeaderSource::Keep(kept) => match keep_headers(buf, kept, frame, payload_len) {
            Some(sum) => (sum, true),
            None => (write_tcp_headers(buf, eth, ip, tcp, payload_len), false),
        },
        HeaderSource::Build => (write_tcp_headers(buf, eth, ip, tcp, payload_len), false),
    };
    let tcp_buf = &mut buf[ETHERNET_HEADER_LEN + Ipv4Repr::HEADER_LEN..];
    let (header, out) = tcp_buf.split_at_mut(frame.tcp_header_len);
    let mut at = 0;
    for piece in payload {
        let dst = &mut out[at..at + piece.len()];
        if offload {
            dst.copy_from_slice(piece);
        } else {
            sum.copy_from(dst, piece);
        }
        at += piece.len();
    }
    if offload {
        // The device completes it (CHECKSUM_PARTIAL): the field holds the pseudo-header sum.
        wire::tcp::store_partial_checksum(header, ip.src_addr, ip.dst_addr, ip.payload_len);
    } else {
        wire::tcp::finish_checksum(header, sum);
    }
    kept
}

/// Writes a data frame's headers from the connection's kept template, rebased to this
/// frame's ACK, window and timestamps when nothing else in them changed (the first segment
/// of a poll, most often), or builds them and keeps them. `None` (nothing kept, nothing
/// written) when the fixed-layout writer cannot build them.
fn keep_headers(
    buf: &mut [u8],
    kept: &mut KeptDataHeaders,
    frame: &TcpFrame<'_>,
    payload_len: usize,
) -> Option<Checksum> {
    let (eth, ip, tcp) = (frame.eth, frame.ip, frame.tcp);
    if let Some(t) = kept.0.as_mut() {
        if t.rebase(eth, ip, tcp, payload_len) {
            if let Some(sum) = t.write(buf, ip.ident, tcp.seq_number, tcp.flags, payload_len) {
                return Some(sum);
            }
        }
    }
    let (sum, template) = DataHeaderTemplate::emit(buf, eth, ip, tcp, payload_len)?;
    kept.0 = Some(template);
    Some(sum)
}

/// Overwrites a data frame already built in `buf` with a bare RST for the same connection
/// (sequence number `seq`); the rest of the buffer becomes zero link padding, which receivers
/// drop by the IPv4 total length. Used when the payload's lent source went bad mid-copy: the
/// device has lent the buffer and cannot take it back.
fn write_reset_over(buf: &mut [u8], eth: &EthernetRepr, ip: &Ipv4Repr, data: &TcpRepr<'_>, seq: SeqNumber) {
    buf.fill(0);
    let tcp = TcpRepr {
        seq_number: seq,
        ack_number: SeqNumber(0),
        flags: TcpFlags::RST,
        window_len: 0,
        urgent_pointer: 0,
        options: TcpOptions::default(),
        payload: &[],
        ..*data
    };
    let ip = Ipv4Repr { payload_len: tcp.header_len(), ..*ip };
    let frame = TcpFrame { eth, ip: &ip, tcp: &tcp, tcp_header_len: tcp.header_len() };
    write_tcp_frame(buf, &frame, HeaderSource::Build, [], 0, false);
}

/// Writes the Ethernet, IPv4 and TCP headers of a frame (TCP checksum field zero) and returns
/// the TCP checksum of pseudo-header and header, to be continued with the payload. Data
/// segments (timestamps or no options) take the fixed-layout writer; anything else the general
/// emitters. Both write the same bytes.
fn write_tcp_headers(
    buf: &mut [u8],
    eth: &EthernetRepr,
    ip: &Ipv4Repr,
    tcp: &TcpRepr<'_>,
    payload_len: usize,
) -> Checksum {
    if let Some(sum) = wire::emit_tcp_data_headers(buf, eth, ip, tcp, payload_len) {
        return sum;
    }
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    let rest = &mut buf[ETHERNET_HEADER_LEN..];
    let mut packet = Ipv4Packet::new_unchecked(&mut rest[..]);
    ip.emit(&mut packet, ChecksumMode::Compute);
    let tcp_buf = &mut rest[Ipv4Repr::HEADER_LEN..];
    let header = &mut tcp_buf[..tcp.header_len()];
    tcp.emit_header(header, ip.src_addr, ip.dst_addr, payload_len)
}
