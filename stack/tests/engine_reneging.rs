//! A receiver that reneges (RFC 2018 §8): it SACKs out-of-order data, then discards it (FreeBSD
//! and Windows do so under memory pressure; a middlebox that rewrites SACK blocks has the same
//! effect). The sender must not treat SACKed data as delivered until the cumulative ACK covers
//! it: every transfer here completes byte for byte within a bounded virtual time, and the
//! engine counts each reneging it recovered from (`Stats::sack_reneging`).
//!
//! The peer is a small receiver written here (reassembly queue, an ACK with SACK blocks for
//! every segment, RFC 2018 §4 block order) on a two-way link with a fixed delay, played against
//! one real engine on virtual time. A failing case prints its seed.

mod support;
use linerate_stack::engine::EngineConfig;
use linerate_stack::time::{Duration, Instant};
use std::collections::{BTreeMap, VecDeque};
use support::*;

const MSS: usize = 1460;
/// One-way delay of the test link (RTT 20 ms).
const DELAY: Duration = Duration::from_millis(10);

fn sack_config() -> EngineConfig {
    let mut cfg = test_config();
    cfg.tcp.sack = true;
    cfg
}

/// Whether the peer negotiates SACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    Sack,
    /// No SACK: the engine guesses marks from duplicate ACKs (Reno emulation).
    NoSack,
}

/// When the receiver throws its out-of-order queue away.
#[derive(Clone, Copy, Debug)]
enum Renege {
    /// Never: an ordinary SACK receiver (the control case).
    Never,
    /// Just before the segment that fills the first hole is accepted, the first `times` times.
    OnHoleFill { times: u32 },
    /// After each segment, with this probability in parts per thousand (seeded).
    Random { per_mille: u32 },
    /// A lying receiver (or a middlebox forging blocks): the segments it lost are SACKed as if
    /// they had arrived, so only the cumulative ACK tells the truth.
    SackWhatWasLost,
}

/// A reneging receiver: keeps what arrived in order, queues the rest, SACKs what it queued.
struct Receiver {
    /// The sender's first data sequence number.
    base: u32,
    /// Bytes delivered in order (offsets from `base`).
    data: Vec<u8>,
    /// Out-of-order segments by offset.
    ooo: BTreeMap<u32, Vec<u8>>,
    renege: Renege,
    reneged: u32,
    /// Highest offset ever seen, to tell first transmissions from retransmissions.
    highest: u32,
    /// First transmissions to drop on the way (offsets).
    drop_first: Vec<u32>,
    /// Ranges SACKed without having arrived (`Renege::SackWhatWasLost`).
    phantom: Vec<(u32, u32)>,
    rng: u64,
}

impl Receiver {
    fn new(base: u32, renege: Renege, drop_first: Vec<u32>, seed: u64) -> Self {
        Receiver {
            base,
            data: Vec::new(),
            ooo: BTreeMap::new(),
            renege,
            reneged: 0,
            highest: 0,
            drop_first,
            phantom: Vec::new(),
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    fn rand_per_mille(&mut self) -> u32 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % 1000) as u32
    }

    fn rcv_nxt(&self) -> u32 {
        self.data.len() as u32
    }

    /// Merged out-of-order ranges (offsets), in sequence order, with the phantom ones.
    fn ranges(&self) -> Vec<(u32, u32)> {
        let mut all: Vec<(u32, u32)> = self.ooo.iter().map(|(&off, b)| (off, off + b.len() as u32)).collect();
        all.extend(self.phantom.iter().filter(|p| p.0 >= self.rcv_nxt()));
        all.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::new();
        for (off, end) in all {
            match out.last_mut() {
                Some(last) if off <= last.1 => last.1 = last.1.max(end),
                _ => out.push((off, end)),
            }
        }
        out
    }

    /// Takes one data segment; returns the ACK to send, or `None` if the segment was "lost".
    fn on_segment(&mut self, seg: &Seg) -> Option<(u32, Vec<(u32, u32)>)> {
        let off = seg.seq.wrapping_sub(self.base);
        let len = seg.payload.len() as u32;
        if len == 0 {
            return None;
        }
        if off >= self.highest {
            self.highest = off + len;
            if let Some(i) = self.drop_first.iter().position(|&d| d == off) {
                self.drop_first.swap_remove(i);
                if matches!(self.renege, Renege::SackWhatWasLost) {
                    self.phantom.push((off, off + len));
                    self.reneged += 1;
                }
                return None;
            }
        }
        let fills_hole = off <= self.rcv_nxt() && off + len > self.rcv_nxt() && !self.ooo.is_empty();
        let renege_now = match self.renege {
            Renege::Never | Renege::SackWhatWasLost => false,
            Renege::OnHoleFill { times } => fills_hole && self.reneged < times,
            Renege::Random { per_mille } => !self.ooo.is_empty() && self.rand_per_mille() < per_mille,
        };
        if renege_now {
            self.ooo.clear();
            self.reneged += 1;
        }
        if off > self.rcv_nxt() {
            self.ooo.entry(off).or_insert_with(|| seg.payload.clone());
        } else if off + len > self.rcv_nxt() {
            let skip = (self.rcv_nxt() - off) as usize;
            self.data.extend_from_slice(&seg.payload[skip..]);
            self.drain_ooo();
        }
        Some((self.base.wrapping_add(self.rcv_nxt()), self.sack_blocks(off)))
    }

    /// Moves queued segments that became in-order into `data`.
    fn drain_ooo(&mut self) {
        while let Some((&off, _)) = self.ooo.first_key_value() {
            if off > self.rcv_nxt() {
                break;
            }
            let bytes = self.ooo.remove(&off).unwrap_or_default();
            let end = off + bytes.len() as u32;
            if end > self.rcv_nxt() {
                let skip = (self.rcv_nxt() - off) as usize;
                self.data.extend_from_slice(&bytes[skip..]);
            }
        }
    }

    /// RFC 2018 §4: the block holding the segment just received first, then the others (up to
    /// four blocks without timestamps).
    fn sack_blocks(&self, just: u32) -> Vec<(u32, u32)> {
        let ranges = self.ranges();
        let first = ranges.iter().position(|&(l, r)| l <= just && just < r);
        let order = first.into_iter().chain((0..ranges.len()).rev().filter(|&i| Some(i) != first));
        order
            .take(4)
            .map(|i| (self.base.wrapping_add(ranges[i].0), self.base.wrapping_add(ranges[i].1)))
            .collect()
    }
}

/// Active open, with SACK permitted by the peer if `peer` says so; one RTT of the test link.
fn open(h: &mut Harness, peer: Peer) -> Conn {
    let handle = h.engine.connect(h.now, (PEER_IP, h.peer_port), Some(h.local_port), None).expect("connect");
    let syn = recv!(h, SYN);
    assert!(syn.sack_perm, "we offer SACK");
    h.advance(DELAY + DELAY);
    let sack_perm = peer == Peer::Sack;
    send!(h, SYN | ACK, seq = 5000u32, ack = syn.seq + 1, mss = Some(MSS as u16), sack_perm = sack_perm);
    recv!(h, ACK, seq = syn.seq + 1, ack = 5001u32);
    Conn { handle, our_seq: syn.seq + 1, peer_seq: 5001 }
}

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(131) ^ (i >> 9)) as u8
}

struct Outcome {
    elapsed: Duration,
    reneged: u32,
    sack_reneging: u64,
    timeouts: u64,
}

/// Sends `size` bytes through the link to `rx`; panics (with the seed) unless every byte
/// arrives intact and is acknowledged within `limit` of virtual time.
fn transfer(seed: u64, size: usize, renege: Renege, drop_first: Vec<u32>, limit: Duration) -> Outcome {
    transfer_with(Peer::Sack, seed, size, renege, drop_first, limit)
}

fn transfer_with(
    peer: Peer,
    seed: u64,
    size: usize,
    renege: Renege,
    drop_first: Vec<u32>,
    limit: Duration,
) -> Outcome {
    let mut h = Harness::with_config(sack_config());
    let c = open(&mut h, peer);
    let mut rx = Receiver::new(c.our_seq, renege, drop_first, seed);
    let start = h.now;
    let (mut to_peer, mut to_engine) = (VecDeque::<(Instant, Seg)>::new(), VecDeque::<(Instant, Seg)>::new());
    let mut written = 0;
    let mut acked_all = false;
    while !acked_all {
        while written < size {
            let n = (size - written).min(64 * 1024);
            let chunk: Vec<u8> = (written..written + n).map(pattern).collect();
            match h.engine.write(h.now, c.handle, &chunk) {
                Ok(0) | Err(linerate_stack::Error::WouldBlock) => break,
                Ok(w) => written += w,
                Err(e) => panic!("seed {seed}: write failed: {e}"),
            }
        }
        while let Some(s) = h.recv() {
            to_peer.push_back((h.now + DELAY, s));
        }
        let next = [to_peer.front().map(|f| f.0), to_engine.front().map(|f| f.0), h.engine.next_timeout()]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next else { panic!("seed {seed}: nothing left to happen") };
        assert!(
            next - start <= limit,
            "seed {seed}: transfer of {size} bytes stalled: receiver has {} (+{} queued), reneged {} \
             times, sender {:?}, stats {:?}",
            rx.data.len(),
            rx.ooo.len(),
            rx.reneged,
            h.engine.info(h.now, c.handle),
            h.engine.stats()
        );
        h.now = h.now.max(next);
        while to_peer.front().is_some_and(|f| f.0 <= h.now) {
            let (_, seg) = to_peer.pop_front().unwrap();
            if let Some((ack, sack)) = rx.on_segment(&seg) {
                let mut a = Seg::new(ACK);
                (a.seq, a.ack) = (c.peer_seq, ack);
                if peer == Peer::Sack {
                    a.sack = sack;
                }
                to_engine.push_back((h.now + DELAY, a));
            }
        }
        while to_engine.front().is_some_and(|f| f.0 <= h.now) {
            let (_, seg) = to_engine.pop_front().unwrap();
            h.send(&seg);
        }
        h.engine.handle_timeout(h.now);
        let info = h.engine.info(h.now, c.handle).expect("connection alive");
        acked_all = written == size && info.unacked == 0 && rx.data.len() == size;
    }
    for (i, &b) in rx.data.iter().enumerate() {
        assert_eq!(b, pattern(i), "seed {seed}: corrupted byte at {i}");
    }
    let stats = h.engine.stats();
    // One connection: its own count (`ss -ti`-like info) must agree with the stack's.
    let info = h.engine.info(h.now, c.handle).expect("connection alive");
    assert_eq!(info.sack_reneging, stats.sack_reneging, "seed {seed}: per-connection reneging count");
    eprintln!(
        "seed {seed}: {size} bytes in {:?}, receiver reneged {} times, sender detected {}, \
         timeouts {}, fast retransmits {}, retransmitted {} segments",
        h.now - start,
        rx.reneged,
        stats.sack_reneging,
        stats.timeouts,
        stats.fast_retrans,
        stats.retrans_segs
    );
    Outcome {
        elapsed: h.now - start,
        reneged: rx.reneged,
        sack_reneging: stats.sack_reneging,
        timeouts: stats.timeouts,
    }
}

fn offsets(segments: &[u32]) -> Vec<u32> {
    segments.iter().map(|&i| i * MSS as u32).collect()
}

#[test]
fn ordinary_sack_receiver_control() {
    let out = transfer(1, 400 * MSS, Renege::Never, offsets(&[10, 60, 61, 200]), Duration::from_secs(5));
    assert_eq!((out.reneged, out.sack_reneging, out.timeouts), (0, 0, 0));
}

#[test]
fn receiver_reneging_once_on_hole_fill_is_repaired() {
    let limit = Duration::from_secs(5);
    let control = transfer(2, 400 * MSS, Renege::Never, offsets(&[10]), limit);
    let out = transfer(2, 400 * MSS, Renege::OnHoleFill { times: 1 }, offsets(&[10]), limit);
    assert_eq!(out.reneged, 1);
    assert_eq!(out.sack_reneging, 1, "one reneging detected and counted");
    assert_eq!(out.timeouts, 1, "the repair is one RTO-like event, not a series of timeouts");
    // The cost: a grace of max(SRTT/2, 10 ms), then the reneged flight again from a collapsed
    // window — a few round trips, never an RTO backoff series.
    let extra = out.elapsed.saturating_sub(control.elapsed);
    assert!(
        extra <= Duration::from_millis(300),
        "{:?} vs {:?} without reneging",
        out.elapsed,
        control.elapsed
    );
}

#[test]
fn receiver_sacking_what_it_lost_is_repaired() {
    let drops = offsets(&[10, 11, 90, 200]);
    let out = transfer(5, 400 * MSS, Renege::SackWhatWasLost, drops, Duration::from_secs(5));
    assert_eq!(out.reneged, 4, "four segments lost and SACKed all the same");
    // Each lie is caught at least once; ACKs still carrying it after the repair can make the
    // next segment look reneged once more (the liar did claim it), never an endless series.
    assert!((1..=8).contains(&out.sack_reneging), "{} renegings", out.sack_reneging);
}

#[test]
fn peer_without_sack_never_looks_like_reneging() {
    let drops = offsets(&[10, 60, 61, 200]);
    let out = transfer_with(Peer::NoSack, 4, 400 * MSS, Renege::Never, drops, Duration::from_secs(10));
    assert_eq!(out.sack_reneging, 0, "the engine's own guessed marks are not reneging");
}

#[test]
fn receiver_reneging_on_every_hole_fill_is_repaired() {
    let drops = offsets(&[10, 50, 90, 91, 150, 220, 300]);
    let out = transfer(3, 400 * MSS, Renege::OnHoleFill { times: u32::MAX }, drops, Duration::from_secs(10));
    assert!(out.reneged >= 3, "the receiver reneged {} times", out.reneged);
    assert!(out.sack_reneging >= 1 && out.sack_reneging <= u64::from(out.reneged));
}

#[test]
fn receiver_reneging_at_random_is_repaired() {
    for seed in 10..18u64 {
        let drops = offsets(&[7, 8, 40, 41, 42, 100, 160, 161, 250]);
        let out = transfer(seed, 300 * MSS, Renege::Random { per_mille: 30 }, drops, Duration::from_secs(20));
        assert!(out.sack_reneging <= u64::from(out.reneged), "seed {seed}: counted more than happened");
    }
}
