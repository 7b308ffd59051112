//! Test support for crafted-segment engine tests: a tiny in-memory [`Device`] that collects
//! frames, a [`Harness`] that plays "the peer" against one engine on virtual time, and the
//! `send!` / `recv!` macros that keep protocol tests readable:
//!
//! ```ignore
//! send!(h, SYN, seq = 1000, win = 65535, mss = Some(1460));
//! let synack = recv!(h, SYN | ACK, ack = 1001);
//! ```
#![allow(dead_code, unused_macros, unused_imports)]

pub mod link;

use linerate_stack::device::{Capabilities, Device};
use linerate_stack::engine::{ConnectionHandle, Engine, EngineConfig, Event};
use linerate_stack::tcp::TcpConfig;
use linerate_stack::time::{Duration, Instant};
use linerate_stack::wire::{
    ArpOperation, ArpPacket, ArpRepr, ChecksumMode, EtherType, EthernetAddress, EthernetFrame, EthernetRepr,
    IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, SackBlock, SackBlocks, SeqNumber, TcpFlags, TcpOptions,
    TcpPacket, TcpRepr, Timestamps,
};
use std::collections::VecDeque;

pub const ACK: TcpFlags = TcpFlags::ACK;
pub const SYN: TcpFlags = TcpFlags::SYN;
pub const FIN: TcpFlags = TcpFlags::FIN;
pub const RST: TcpFlags = TcpFlags::RST;
pub const PSH: TcpFlags = TcpFlags::PSH;
pub const NONE: TcpFlags = TcpFlags(0);

pub const OUR_IP: Ipv4Address = Ipv4Address::new(198, 18, 0, 1);
pub const PEER_IP: Ipv4Address = Ipv4Address::new(198, 18, 0, 2);
pub const OUR_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
pub const PEER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

/// An in-memory device: `rx` frames are handed to the engine, transmitted frames land in `tx`.
#[derive(Debug, Default)]
pub struct TestDevice {
    pub rx: VecDeque<Vec<u8>>,
    pub tx: VecDeque<Vec<u8>>,
    /// Frames the device accepts before refusing (simulates a full TX ring).
    pub tx_room: Option<usize>,
    pub caps: Capabilities,
}

impl Device for TestDevice {
    fn capabilities(&self) -> Capabilities {
        self.caps
    }
    fn receive<F: FnMut(&mut [u8])>(&mut self, _now: Instant, budget: usize, mut handle: F) -> usize {
        let mut n = 0;
        while n < budget {
            let Some(mut f) = self.rx.pop_front() else { break };
            handle(&mut f);
            n += 1;
        }
        n
    }
    fn transmit_capacity(&self) -> usize {
        self.tx_room.unwrap_or(usize::MAX)
    }
    fn transmit<R, F: FnOnce(&mut [u8]) -> R>(&mut self, _now: Instant, len: usize, fill: F) -> Option<R> {
        if len > self.caps.max_frame_len() || self.tx_room == Some(0) {
            return None;
        }
        if let Some(r) = self.tx_room.as_mut() {
            *r -= 1;
        }
        let mut buf = vec![0u8; len];
        let r = fill(&mut buf);
        self.tx.push_back(buf);
        Some(r)
    }
    fn flush(&mut self, _now: Instant) {}
}

/// A TCP segment as the test writes or reads it (sequence numbers as plain u32).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Seg {
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
    pub win: u16,
    pub payload: Vec<u8>,
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_perm: bool,
    pub ts: Option<(u32, u32)>,
    pub sack: Vec<(u32, u32)>,
    pub src_port: u16,
    pub dst_port: u16,
}

impl std::fmt::Debug for Seg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Seg {{ flags: {:#04x}, seq: {}, ack: {}, win: {}, len: {}",
            self.flags.0,
            self.seq,
            self.ack,
            self.win,
            self.payload.len()
        )?;
        write!(
            f,
            ", mss: {:?}, wscale: {:?}, sackOK: {}, ts: {:?}, sack: {:?} }}",
            self.mss, self.wscale, self.sack_perm, self.ts, self.sack
        )
    }
}

impl Seg {
    pub fn new(flags: TcpFlags) -> Self {
        Seg { flags, win: 65535, ..Seg::default() }
    }
    pub fn len(&self) -> u32 {
        self.payload.len() as u32 + u32::from(self.flags.syn()) + u32::from(self.flags.fin())
    }
}

/// Builds a complete Ethernet/IPv4/TCP frame from the peer to us.
pub fn tcp_frame(
    seg: &Seg,
    src: (Ipv4Address, u16),
    dst: (Ipv4Address, u16),
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
) -> Vec<u8> {
    let mut sack_blocks = SackBlocks::new();
    for &(l, r) in &seg.sack {
        sack_blocks.push(SackBlock { left: SeqNumber(l), right: SeqNumber(r) });
    }
    let tcp = TcpRepr {
        src_port: src.1,
        dst_port: dst.1,
        seq_number: SeqNumber(seg.seq),
        ack_number: SeqNumber(seg.ack),
        flags: seg.flags,
        window_len: seg.win,
        urgent_pointer: 0,
        options: TcpOptions {
            mss: seg.mss,
            window_scale: seg.wscale,
            sack_permitted: seg.sack_perm,
            sack_blocks,
            timestamps: seg.ts.map(|(tsval, tsecr)| Timestamps { tsval, tsecr }),
            fast_open_cookie: None,
        },
        payload: &seg.payload,
    };
    let ip = Ipv4Repr {
        src_addr: src.0,
        dst_addr: dst.0,
        protocol: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        ttl: 64,
        dscp_ecn: 0,
        ident: 1,
        dont_frag: true,
    };
    let mut buf = vec![0u8; 14 + 20 + tcp.buffer_len()];
    let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
    EthernetRepr { src_addr: src_mac, dst_addr: dst_mac, ethertype: EtherType::Ipv4 }.emit(&mut eth);
    let mut ipp = Ipv4Packet::new_unchecked(&mut buf[14..]);
    ip.emit(&mut ipp, ChecksumMode::Compute);
    let mut tcpp = TcpPacket::new_unchecked(&mut buf[34..]);
    tcp.emit(&mut tcpp, src.0, dst.0, ChecksumMode::Compute);
    buf
}

/// Parses a frame we sent, if it is TCP.
pub fn parse_tcp(frame: &[u8]) -> Option<(Ipv4Repr, Seg)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EtherType::Ipv4 {
        return None;
    }
    let ipp = Ipv4Packet::new_checked(eth.payload()).ok()?;
    let ip = Ipv4Repr::parse(&ipp, ChecksumMode::Compute).ok()?;
    if ip.protocol != IpProtocol::Tcp {
        return None;
    }
    let tp = TcpPacket::new_checked(ipp.payload()).ok()?;
    let t = TcpRepr::parse(&tp, ip.src_addr, ip.dst_addr, ChecksumMode::Compute)
        .expect("engine sent a bad TCP checksum");
    let seg = Seg {
        flags: t.flags,
        seq: t.seq_number.0,
        ack: if t.flags.ack() { t.ack_number.0 } else { 0 },
        win: t.window_len,
        payload: t.payload.to_vec(),
        mss: t.options.mss,
        wscale: t.options.window_scale,
        sack_perm: t.options.sack_permitted,
        ts: t.options.timestamps.map(|t| (t.tsval, t.tsecr)),
        sack: t.options.sack_blocks.as_slice().iter().map(|b| (b.left.0, b.right.0)).collect(),
        src_port: t.src_port,
        dst_port: t.dst_port,
    };
    Some((ip, seg))
}

/// One engine at 198.18.0.1 and a scripted peer at 198.18.0.2:`peer_port`.
pub struct Harness {
    pub engine: Engine,
    pub dev: TestDevice,
    pub now: Instant,
    pub local_port: u16,
    pub peer_port: u16,
    /// Every frame the engine sent that was not TCP (ARP, ICMP), for inspection.
    pub other: Vec<Vec<u8>>,
}

pub fn test_config() -> EngineConfig {
    let mut cfg = EngineConfig::new(OUR_IP, 24, OUR_MAC, 42);
    cfg.tcp = TcpConfig { timestamps: false, window_scaling: false, sack: false, ..TcpConfig::default() };
    cfg
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(test_config())
    }

    pub fn with_config(cfg: EngineConfig) -> Self {
        let now = Instant::from_millis(1_000);
        let mut h = Harness {
            engine: Engine::new(cfg, now),
            dev: TestDevice::default(),
            now,
            local_port: 80,
            peer_port: 40000,
            other: Vec::new(),
        };
        h.teach_peer_mac();
        h
    }

    /// The peer ARPs for us first, so the engine knows its MAC.
    pub fn teach_peer_mac(&mut self) {
        let arp = ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: PEER_MAC,
            source_protocol_addr: PEER_IP,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: OUR_IP,
        };
        let mut buf = vec![0u8; 14 + 28];
        let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
        EthernetRepr { src_addr: PEER_MAC, dst_addr: EthernetAddress::BROADCAST, ethertype: EtherType::Arp }
            .emit(&mut eth);
        let mut p = ArpPacket::new_unchecked(&mut buf[14..]);
        arp.emit(&mut p);
        self.engine.receive(self.now, &mut buf);
        self.flush_other();
    }

    fn flush_other(&mut self) {
        self.engine.poll_transmit(self.now, &mut self.dev);
        while let Some(f) = self.dev.tx.pop_front() {
            self.other.push(f);
        }
    }

    /// Delivers a segment from the peer.
    pub fn send(&mut self, seg: &Seg) {
        let mut f = tcp_frame(seg, (PEER_IP, self.peer_port), (OUR_IP, self.local_port), PEER_MAC, OUR_MAC);
        self.engine.receive(self.now, &mut f);
    }

    /// Delivers a raw frame.
    pub fn send_frame(&mut self, mut frame: Vec<u8>) {
        self.engine.receive(self.now, &mut frame);
    }

    /// The next TCP segment the engine sends (polling transmit first).
    pub fn recv(&mut self) -> Option<Seg> {
        if self.dev.tx.is_empty() {
            self.engine.poll_transmit(self.now, &mut self.dev);
        }
        while let Some(f) = self.dev.tx.pop_front() {
            match parse_tcp(&f) {
                Some((ip, seg)) => {
                    assert_eq!(ip.dst_addr, PEER_IP);
                    assert!(ip.dont_frag, "DF must be set on everything we send");
                    return Some(seg);
                }
                None => self.other.push(f),
            }
        }
        None
    }

    /// Asserts the engine has nothing to send.
    pub fn recv_nothing(&mut self) {
        if let Some(s) = self.recv() {
            panic!("expected no segment, got {s:?}");
        }
    }

    /// Moves virtual time forward and fires due timers.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.engine.handle_timeout(self.now);
    }

    /// Advances to the engine's next timeout (fails if none).
    pub fn advance_to_timeout(&mut self) -> Duration {
        let t = self.engine.next_timeout().expect("engine has no timer armed");
        let d = t - self.now;
        self.now = self.now.max(t);
        self.engine.handle_timeout(self.now);
        d
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.engine.poll_event()).collect()
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

/// `send!(h, SYN, seq = 1000, mss = Some(1460))`: builds a segment and delivers it.
#[macro_export]
macro_rules! send {
    ($h:expr, $flags:expr $(, $field:ident = $val:expr)* $(,)?) => {{
        #[allow(unused_mut)]
        let mut seg = $crate::support::Seg::new($flags);
        $( seg.$field = ($val).into(); )*
        $h.send(&seg);
    }};
}

/// `recv!(h, SYN | ACK, ack = 1001)`: asserts the next segment's flags and fields; returns it.
#[macro_export]
macro_rules! recv {
    ($h:expr, $flags:expr $(, $field:ident = $val:expr)* $(,)?) => {{
        let s = $h.recv().expect("expected a segment, engine sent nothing");
        assert_eq!(s.flags, $flags, "flags of {:?}", s);
        $( {
            let mut expected = s.clone();
            expected.$field = ($val).into();
            assert_eq!(s.$field, expected.$field, "field `{}` of {:?}", stringify!($field), s);
        } )*
        s
    }};
}

/// A connection set up by the harness, with both sides' sequence numbers tracked by the test.
#[derive(Clone, Copy, Debug)]
pub struct Conn {
    pub handle: ConnectionHandle,
    /// Our (engine's) next sequence number as the peer expects it.
    pub our_seq: u32,
    /// The peer's next sequence number.
    pub peer_seq: u32,
}

pub const PEER_ISS: u32 = 1000;

impl Harness {
    /// LISTEN on 80, 3-way handshake from the peer, accept. Returns the ESTABLISHED connection.
    pub fn passive_open(&mut self) -> Conn {
        let l = self.engine.listen(self.local_port, 16, None).expect("listen");
        send!(self, SYN, seq = PEER_ISS, win = 65535u16, mss = Some(1460u16));
        let synack = recv!(self, SYN | ACK, ack = PEER_ISS + 1);
        send!(self, ACK, seq = PEER_ISS + 1, ack = synack.seq + 1);
        let handle = self.engine.accept(l).expect("listener").expect("accept queue has the connection");
        Conn { handle, our_seq: synack.seq + 1, peer_seq: PEER_ISS + 1 }
    }

    /// connect() from port 80 to the peer, SYN-ACK from the peer, our ACK. ESTABLISHED.
    pub fn active_open(&mut self) -> Conn {
        let handle = self
            .engine
            .connect(self.now, (PEER_IP, self.peer_port), Some(self.local_port), None)
            .expect("connect");
        let syn = recv!(self, SYN);
        send!(self, SYN | ACK, seq = 5000u32, ack = syn.seq + 1, mss = Some(1460u16));
        recv!(self, ACK, seq = syn.seq + 1, ack = 5001u32);
        Conn { handle, our_seq: syn.seq + 1, peer_seq: 5001 }
    }
}
