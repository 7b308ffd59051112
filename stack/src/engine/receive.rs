//! Frame input: Ethernet → ARP / IPv4 → TCP / ICMP, then the connection, the listener
//! (RFC 9293 §3.10.7.2, in `handshake.rs`), a compact TIME-WAIT record (`time_wait`) or the
//! closed-port reset rule (§3.10.7.1).
//!
//! Every frame is parsed in place; nothing here allocates. Every drop bumps one counter.
//!
//! Runs of segments (GRO-like): when consecutive frames of a receive burst belong to one
//! ESTABLISHED connection, each still goes through the full input path, but the engine's
//! per-connection bookkeeping (`after_update`: send timers, the wheel entry, ready list, events)
//! runs once when the run ends — at the next frame for anything else, or when the burst ends
//! ([`Engine::receive_from`] returns, a [`ReceiveRun`] is dropped) — instead of once per
//! segment. Nothing the next segment of the run reads depends on it: the deferral is taken only
//! while the connection stays ESTABLISHED, belongs to no listener and is already counted as
//! established. A driver that routes frames itself (a shard) opens a [`ReceiveRun`] for its
//! burst; [`Engine::receive`] is a burst of one frame.

use super::flows::Flow;
use super::transmit::Reply;
use super::Engine;
use crate::device::Device;
use crate::tcp::input::{InputAction, InputContext};
use crate::tcp::{FourTuple, State};
use crate::time::Instant;
use crate::wire::{
    ArpPacket, ArpRepr, ChecksumMode, EtherType, EthernetAddress, EthernetFrame, IpProtocol, Ipv4Packet,
    Ipv4Repr, SeqNumber, TcpPacket, TcpRepr, WireError,
};

/// One receive burst of an engine, from [`Engine::receive_run`]; ends when dropped. All its
/// frames share one `now`, like the frames of one `receive_from` call.
#[derive(Debug)]
pub struct ReceiveRun<'a> {
    engine: &'a mut Engine,
    now: Instant,
}

impl ReceiveRun<'_> {
    /// Processes one received Ethernet frame as part of this burst.
    pub fn receive(&mut self, frame: &mut [u8]) {
        self.engine.receive_frame(self.now, frame);
    }
}

impl Drop for ReceiveRun<'_> {
    fn drop(&mut self) {
        self.engine.finish_deferred_update(self.now);
    }
}

impl Engine {
    /// Takes up to `budget` frames from `device` and processes them.
    pub fn receive_from<D: Device>(&mut self, now: Instant, device: &mut D, budget: usize) -> usize {
        self.rx_checksum_verified = device.capabilities().rx_checksum_verified;
        let n = device.receive(now, budget, |frame| self.receive_frame(now, frame));
        self.finish_deferred_update(now);
        n
    }

    /// Processes one received Ethernet frame (a burst of one: see [`Engine::receive_run`]).
    pub fn receive(&mut self, now: Instant, frame: &mut [u8]) {
        self.receive_frame(now, frame);
        self.finish_deferred_update(now);
    }

    /// Opens a receive burst: frames given to [`ReceiveRun::receive`] are processed exactly as
    /// by [`Engine::receive`], except that the bookkeeping of a run of consecutive segments of
    /// one connection is done once, when the run ends (see the module text). The burst ends
    /// when the returned value is dropped. For drivers that look at every frame before handing
    /// it to the engine; a driver that hands over a whole [`Device`] uses `receive_from`.
    pub fn receive_run(&mut self, now: Instant) -> ReceiveRun<'_> {
        ReceiveRun { engine: self, now }
    }

    /// Ends a run of segments: the postponed bookkeeping of its connection runs now.
    pub(super) fn finish_deferred_update(&mut self, now: Instant) {
        if let Some(index) = self.deferred_update.take() {
            self.after_update(index, now);
        }
    }

    fn receive_frame(&mut self, now: Instant, frame: &mut [u8]) {
        let Ok(eth) = EthernetFrame::new_checked(&frame[..]) else {
            self.stats.eth_drops += 1;
            return;
        };
        let dst = eth.dst_addr();
        if dst != self.cfg.mac && !dst.is_broadcast() {
            self.stats.eth_drops += 1;
            return;
        }
        let src = eth.src_addr();
        match eth.ethertype() {
            EtherType::Arp => self.receive_arp(now, eth.payload()),
            EtherType::Ipv4 => self.receive_ipv4(now, src, eth.payload()),
            EtherType::Unknown(_) => self.stats.eth_drops += 1,
        }
    }

    pub(super) fn checksum_mode(&self) -> ChecksumMode {
        if self.rx_checksum_verified {
            ChecksumMode::Skip
        } else {
            ChecksumMode::Compute
        }
    }

    fn receive_arp(&mut self, now: Instant, bytes: &[u8]) {
        self.finish_deferred_update(now);
        self.stats.arp_in += 1;
        let Ok(pkt) = ArpPacket::new_checked(bytes) else { return };
        let Ok(arp) = ArpRepr::parse(&pkt) else { return };
        // RFC 826 merge rule, learning and the reply are the neighbour cache's job.
        if let Some(reply) = self.neighbors.on_arp(now, &arp, self.cfg.addr, self.cfg.mac) {
            self.queue_reply(Reply::Arp { repr: reply, dst: arp.source_hardware_addr });
        }
        self.neighbor_events(now);
    }

    /// Connections waiting for a next hop are retried whenever a resolution ends.
    pub(super) fn neighbor_events(&mut self, now: Instant) {
        let mut any = false;
        while self.neighbors.poll_event().is_some() {
            any = true;
        }
        if any {
            self.wake_arp_waiters(now);
        }
    }

    pub(super) fn wake_arp_waiters(&mut self, now: Instant) {
        let waiting = core::mem::take(&mut self.arp_waiting);
        for &i in &waiting {
            self.slots[i as usize].waiting_arp = false;
            self.slots[i as usize].route = None;
            self.after_update(i, now);
        }
        self.arp_waiting = waiting;
        self.arp_waiting.clear();
    }

    fn receive_ipv4(&mut self, now: Instant, src_mac: EthernetAddress, bytes: &[u8]) {
        self.stats.ip_in_receives += 1;
        let Ok(pkt) = Ipv4Packet::new_checked(bytes) else {
            self.stats.ip_in_hdr_errors += 1;
            return;
        };
        let ip = match Ipv4Repr::parse(&pkt, self.checksum_mode()) {
            Ok(ip) => ip,
            Err(WireError::Fragmented) => return self.stats.ip_frag_drops += 1,
            Err(WireError::BadChecksum) => {
                self.stats.in_csum_errors += 1;
                return self.stats.ip_in_hdr_errors += 1;
            }
            Err(_) => return self.stats.ip_in_hdr_errors += 1,
        };
        if ip.dst_addr != self.cfg.addr {
            self.stats.ip_in_addr_errors += 1;
            return;
        }
        match ip.protocol {
            IpProtocol::Tcp => self.receive_tcp(now, src_mac, &ip, pkt.payload()),
            IpProtocol::Icmp => {
                self.finish_deferred_update(now);
                self.receive_icmp(now, src_mac, &ip, pkt.payload())
            }
            _ => self.stats.ip_in_unknown_protos += 1,
        }
    }

    fn receive_tcp(&mut self, now: Instant, src_mac: EthernetAddress, ip: &Ipv4Repr, bytes: &[u8]) {
        self.stats.in_segs += 1;
        let Ok(pkt) = TcpPacket::new_checked(bytes) else {
            self.stats.in_errs += 1;
            return;
        };
        let tuple = FourTuple { local: (ip.dst_addr, pkt.dst_port()), remote: (ip.src_addr, pkt.src_port()) };
        let flow = self.flows.lookup(&tuple);
        let index = match flow {
            Some(Flow::Connection(i)) => Some(i),
            _ => None,
        };
        if let Some(i) = index {
            self.prefetch_timer(i);
        }
        let mut mode = self.checksum_mode();
        if let (ChecksumMode::Compute, Some(i)) = (mode, index) {
            match self.verify_into_ring(i, &pkt, ip) {
                Some(true) => mode = ChecksumMode::Skip,
                Some(false) => {
                    self.stats.in_csum_errors += 1;
                    return self.stats.in_errs += 1;
                }
                None => {}
            }
        }
        let seg = match TcpRepr::parse(&pkt, ip.src_addr, ip.dst_addr, mode) {
            Ok(seg) => seg,
            Err(WireError::BadChecksum) => {
                self.stats.in_csum_errors += 1;
                return self.stats.in_errs += 1;
            }
            Err(_) => {
                self.discard_staged(index);
                return self.stats.in_errs += 1;
            }
        };
        if !ip.src_addr.is_unicast() || seg.src_port == 0 || seg.dst_port == 0 {
            self.discard_staged(index);
            self.stats.in_errs += 1;
            return;
        }
        match flow {
            Some(Flow::Connection(i)) => {
                self.segment_to_connection(now, src_mac, i, tuple, &seg);
                self.discard_staged(index);
            }
            Some(Flow::TimeWait(id)) => self.segment_to_time_wait(now, src_mac, id, tuple, &seg),
            None => self.segment_without_connection(now, src_mac, tuple, &seg),
        }
    }

    /// The fused receive path: for in-order data on a connection, verifies the TCP checksum
    /// while copying the payload into the receive ring's free space (one pass over the payload
    /// instead of a verify pass and a copy pass). `Some(true)`: verified and staged, the
    /// connection's `insert` commits it without another copy; `Some(false)`: bad checksum, the
    /// readable contents and RCV.NXT are untouched; `None`: not applicable, verify as usual.
    fn verify_into_ring(&mut self, index: u32, pkt: &TcpPacket<&[u8]>, ip: &Ipv4Repr) -> Option<bool> {
        let conn = self.slots[index as usize].conn.as_deref_mut()?;
        let payload = pkt.payload_ref();
        if payload.is_empty() || !conn.state.can_receive_data() || pkt.seq_number() != conn.rcv_nxt {
            return None;
        }
        let mut sum = pkt.header_sum(ip.src_addr, ip.dst_addr);
        if !conn.rcvbuf.stage(conn.rcv_nxt, payload, &mut sum) {
            return None;
        }
        let good = sum.finish() == 0;
        if !good {
            conn.rcvbuf.discard_staged();
        }
        Some(good)
    }

    /// Staged bytes belong to exactly one segment: forget them once it has been processed.
    fn discard_staged(&mut self, index: Option<u32>) {
        if let Some(conn) = index.and_then(|i| self.slots[i as usize].conn.as_deref_mut()) {
            conn.rcvbuf.discard_staged();
        }
    }

    fn dispatch_segment(
        &mut self,
        now: Instant,
        src_mac: EthernetAddress,
        tuple: FourTuple,
        seg: &TcpRepr<'_>,
    ) {
        match self.flows.lookup(&tuple) {
            Some(Flow::Connection(index)) => self.segment_to_connection(now, src_mac, index, tuple, seg),
            Some(Flow::TimeWait(id)) => self.segment_to_time_wait(now, src_mac, id, tuple, seg),
            None => self.segment_without_connection(now, src_mac, tuple, seg),
        }
    }

    /// LISTEN (RFC 9293 §3.10.7.2) or CLOSED (§3.10.7.1).
    pub(super) fn segment_without_connection(
        &mut self,
        now: Instant,
        src_mac: EthernetAddress,
        tuple: FourTuple,
        seg: &TcpRepr<'_>,
    ) {
        self.finish_deferred_update(now);
        match self.listener_for(tuple.local.1) {
            Some(lid) => self.segment_to_listener(now, src_mac, lid, tuple, seg),
            None => {
                self.stats.no_port += 1;
                self.reset_for(src_mac, tuple, seg);
            }
        }
    }

    /// RFC 9293 §3.10.7.1 (CLOSED) and the first checks of LISTEN: answer with a reset whose
    /// numbers make it acceptable to the sender; never answer a RST.
    pub(super) fn reset_for(&mut self, dst: EthernetAddress, tuple: FourTuple, seg: &TcpRepr<'_>) {
        if seg.flags.rst() {
            return;
        }
        let reply = if seg.flags.ack() {
            Reply::Rst { tuple, dst, seq: seg.ack_number, ack: None }
        } else {
            let len = seg.payload.len() as u32 + u32::from(seg.flags.syn()) + u32::from(seg.flags.fin());
            Reply::Rst { tuple, dst, seq: SeqNumber(0), ack: Some(seg.seq_number + len) }
        };
        self.queue_reply(reply);
    }

    pub(super) fn segment_to_connection(
        &mut self,
        now: Instant,
        src_mac: EthernetAddress,
        index: u32,
        tuple: FourTuple,
        seg: &TcpRepr<'_>,
    ) {
        if self.deferred_update.is_some_and(|d| d != index) {
            self.finish_deferred_update(now);
        }
        let slot = &mut self.slots[index as usize];
        let Some(conn) = slot.conn.as_deref_mut() else { return };
        if let (State::SynReceived, Some(lid)) = (conn.state, conn.listener) {
            // A Fast Open child is in the accept queue already.
            let full = !conn.fast_open.pending
                && self.listeners[lid as usize].as_ref().is_some_and(|l| l.accept_queue_full());
            if full && seg.flags.ack() && !seg.flags.rst() && !seg.flags.syn() {
                // Linux default (tcp_abort_on_overflow = 0): drop the final ACK; our SYN-ACK
                // retransmission will complete the handshake once there is room.
                self.stats.listen_overflows += 1;
                self.stats.listen_drops += 1;
                return;
            }
        }
        let fast_open_client = Self::fast_open_client_before(conn);
        let mut ctx =
            InputContext { now, cfg: &self.cfg.tcp, stats: &mut self.stats, challenge: &mut self.challenge };
        let action = conn.on_segment(seg, &mut ctx);
        if let Some(sent) = fast_open_client {
            self.fast_open_client_after(index, seg, sent);
        }
        match action {
            InputAction::None => {}
            InputAction::Reset { seq } => {
                self.queue_reply(super::transmit::Reply::Rst { tuple, dst: src_mac, seq, ack: None });
            }
            InputAction::ReturnToListen => {}
            InputAction::ReopenFromTimeWait => {
                self.free(index);
                return self.dispatch_segment(now, src_mac, tuple, seg);
            }
        }
        if action == InputAction::None && fast_open_client.is_none() && self.run_may_continue(index) {
            self.deferred_update = Some(index);
        } else {
            if self.deferred_update == Some(index) {
                self.deferred_update = None;
            }
            self.after_update(index, now);
        }
    }

    /// Whether `after_update` may wait for the end of this connection's run of segments: it
    /// stays ESTABLISHED, has no listener to report to and is already counted, so the update
    /// would only refresh timers, the ready list and events, which the next segment never reads.
    fn run_may_continue(&self, index: u32) -> bool {
        let slot = &self.slots[index as usize];
        slot.counted_estab
            && slot.conn.as_deref().is_some_and(|c| c.state == State::Established && c.listener.is_none())
    }

    /// Our MSS: MTU minus the IPv4 and TCP headers (RFC 9293 §3.7.1).
    pub(super) fn our_mss(&self) -> u32 {
        (self.cfg.mtu.saturating_sub(40)).clamp(88, 65535) as u32
    }

    /// Queues `reply`; false (dropped and counted) when the queue is full.
    pub(super) fn queue_reply(&mut self, reply: Reply) -> bool {
        if self.replies.len() >= self.cfg.reply_queue {
            self.stats.reply_queue_drops += 1;
            return false;
        }
        self.replies.push_back(reply);
        true
    }
}
