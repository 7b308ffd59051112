//! The full mesh of rings between shards: shard `i` can hand a message to any shard `j`.
//!
//! Owns: for N shards, N·(N−1) [SPSC rings](super::ring), one per ordered pair, and a drop
//! counter per outbound link. Each shard gets one [`ShardLinks`] holding the producer ends of its
//! N−1 outbound rings and the consumer ends of its N−1 inbound rings; it moves into that shard's
//! thread and nothing else touches it, so sending and draining need no lock.
//!
//! Promises: [`ShardLinks::send`] never blocks or allocates; a full ring (or a bad destination)
//! gives the message back and counts it, per link. [`ShardLinks::drain`] delivers each sender's
//! messages in the order they were sent and is bounded: it takes at most one ring's capacity from
//! each inbound ring per call, so a fast sender cannot keep a shard in `drain` forever.
//! Must not: know what the messages mean (hand-off of frames, accept balancing, stats requests
//! are the caller's business).

use super::ring::{self, Consumer, Producer};

/// Builds the mesh.
#[derive(Debug)]
pub struct Mesh;

impl Mesh {
    /// Creates the rings for `n` shards, each holding up to `capacity` messages, and returns the
    /// links of shard 0, 1, …, n−1 in order. Allocates here only.
    #[allow(clippy::new_ret_no_self)]
    pub fn new<T: Send>(n: usize, capacity: usize) -> Vec<ShardLinks<T>> {
        let mut outbound: Vec<Vec<Option<Producer<T>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        let mut inbound: Vec<Vec<(usize, Consumer<T>)>> = (0..n).map(|_| Vec::new()).collect();
        for (from, row) in outbound.iter_mut().enumerate() {
            for to in (0..n).filter(|&to| to != from) {
                let (producer, consumer) = ring::channel(capacity);
                row[to] = Some(producer);
                inbound[to].push((from, consumer));
            }
        }
        outbound
            .into_iter()
            .zip(inbound)
            .enumerate()
            .map(|(id, (outbound, inbound))| ShardLinks {
                id,
                links: outbound.into_iter().map(|p| p.map(Link::new)).collect(),
                inbound,
                next_inbound: 0,
                misrouted: 0,
            })
            .collect()
    }
}

/// One outbound ring with its counters.
#[derive(Debug)]
struct Link<T> {
    /// Producer end of the ring to the destination shard.
    producer: Producer<T>,
    /// Messages accepted by the ring.
    sent: u64,
    /// Messages given back because the ring was full.
    dropped: u64,
}

impl<T> Link<T> {
    fn new(producer: Producer<T>) -> Self {
        Link { producer, sent: 0, dropped: 0 }
    }
}

/// Counters of one outbound link (this shard → `to`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Messages the ring accepted.
    pub sent: u64,
    /// Messages refused because the ring was full.
    pub dropped: u64,
}

/// One shard's ends of the mesh.
#[derive(Debug)]
pub struct ShardLinks<T> {
    /// This shard's index.
    id: usize,
    /// Outbound links indexed by destination shard; `None` at `id` (no ring to oneself).
    links: Vec<Option<Link<T>>>,
    /// Inbound rings with their sender's index, in increasing sender order.
    inbound: Vec<(usize, Consumer<T>)>,
    /// Inbound ring `drain` starts at next, rotated so no sender is always served first.
    next_inbound: usize,
    /// Messages given back because the destination was this shard itself or did not exist.
    misrouted: u64,
}

impl<T: Send> ShardLinks<T> {
    /// This shard's index.
    pub fn id(&self) -> usize {
        self.id
    }

    /// Number of shards in the mesh.
    pub fn shards(&self) -> usize {
        self.links.len()
    }

    /// Queues `msg` for shard `to`. Gives the message back if that ring is full (counted as a
    /// drop on that link) or if `to` is this shard or out of range (counted as misrouted).
    #[inline]
    pub fn send(&mut self, to: usize, msg: T) -> Result<(), T> {
        let Some(Some(link)) = self.links.get_mut(to) else {
            self.misrouted += 1;
            return Err(msg);
        };
        match link.producer.push(msg) {
            Ok(()) => {
                link.sent += 1;
                Ok(())
            }
            Err(msg) => {
                link.dropped += 1;
                Err(msg)
            }
        }
    }

    /// Hands every message queued for this shard to `f(from, msg)`, oldest first per sender,
    /// taking at most one ring's capacity from each sender. Returns how many were delivered.
    pub fn drain(&mut self, mut f: impl FnMut(usize, T)) -> usize {
        let n = self.inbound.len();
        let mut delivered = 0;
        for k in 0..n {
            let (from, consumer) = &mut self.inbound[(self.next_inbound + k) % n];
            let from = *from;
            let max = consumer.capacity();
            delivered += consumer.pop_batch(max, |msg| f(from, msg));
        }
        if n > 0 {
            self.next_inbound = (self.next_inbound + 1) % n;
        }
        delivered
    }

    /// Counters of the link to shard `to` (zero for this shard itself or an unknown shard).
    pub fn link_stats(&self, to: usize) -> LinkStats {
        match self.links.get(to) {
            Some(Some(link)) => LinkStats { sent: link.sent, dropped: link.dropped },
            _ => LinkStats::default(),
        }
    }

    /// Sum of every outbound link's counters.
    pub fn total_stats(&self) -> LinkStats {
        self.links.iter().flatten().fold(LinkStats::default(), |acc, l| LinkStats {
            sent: acc.sent + l.sent,
            dropped: acc.dropped + l.dropped,
        })
    }

    /// Messages refused because they were addressed to this shard or to no shard.
    pub fn misrouted(&self) -> u64 {
        self.misrouted
    }
}
