//! One direction of a simulated link: everything between one port's `flush` and the other port's
//! `receive`.
//!
//! Owns the sending port's TX ring, the wire model (MTU, an optional targeted-drop filter,
//! bottleneck, loss, corruption, duplication, delay, jitter, reorder), the frames in flight ordered
//! by arrival time, the receiving port's RX ring, the buffer pool, the counters and the per-flow
//! table ([`FlowTable`]). Promises: every frame offered is
//! either delivered or counted under exactly one drop reason; results depend only on the
//! configuration, the seed and the sequence of calls (no OS time, no hash-order iteration); ties in
//! arrival time keep send order. Every queue is bounded. It does not know about endpoints or
//! virtual time beyond the `now` it is given.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use linerate_stack::device::ETHERNET_HEADER_LEN;
use linerate_stack::time::{Duration, Instant};

use super::bottleneck::{Bottleneck, QueueLimit};
use super::config::{LinkConfig, LossModel};
use super::flows::{Fate, FlowTable};
use super::pool::FramePool;
use super::rng::SimRng;

/// Frames in flight beyond this are dropped (counted as `dropped_in_flight_limit`): a bound on
/// memory when a runaway sender floods an unlimited-rate link.
pub const MAX_IN_FLIGHT_FRAMES: usize = 1 << 20;

/// What happened on one link direction. Every offered frame ends in `delivered_frames`, one of the
/// `dropped_*` counters, or is still in flight / in the RX ring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames flushed onto the link by the sending port (duplicates not included).
    pub sent_frames: u64,
    pub sent_bytes: u64,
    /// Frames (and their bytes) handed to the receiving endpoint, duplicates included.
    pub delivered_frames: u64,
    pub delivered_bytes: u64,
    /// Lost by the loss model.
    pub dropped_loss: u64,
    /// Refused by the full drop-tail queue of the bottleneck.
    pub dropped_queue_full: u64,
    /// Dropped on purpose by the test's [`DropFilter`].
    pub dropped_filter: u64,
    /// Longer than the path MTU.
    pub dropped_too_big: u64,
    /// Arrived while the receiving port's RX ring was full.
    pub dropped_rx_ring_full: u64,
    /// Over [`MAX_IN_FLIGHT_FRAMES`].
    pub dropped_in_flight_limit: u64,
    /// Extra copies created.
    pub duplicated: u64,
    /// Frames with a flipped bit.
    pub corrupted: u64,
    /// Frames held back by the explicit reorder knob.
    pub held_back: u64,
    /// Frames admitted to the bottleneck, and their total and largest queueing delay.
    pub queued_frames: u64,
    pub queueing_delay_sum: Duration,
    pub queueing_delay_max: Duration,
    /// Frame buffers allocated (stops growing once the pool covers the traffic in flight).
    pub buffers_allocated: u64,
}

impl LinkStats {
    /// Mean time a frame waited in the bottleneck queue (zero when none was queued).
    pub fn mean_queueing_delay(&self) -> Duration {
        self.queueing_delay_sum.checked_div_or_zero(self.queued_frames)
    }

    /// Mean queueing delay of the frames admitted between `earlier` (a snapshot of the same
    /// link) and `self`: the steady-state figure, leaving out a start-up phase.
    pub fn mean_queueing_delay_since(&self, earlier: &LinkStats) -> Duration {
        let frames = self.queued_frames.saturating_sub(earlier.queued_frames);
        let sum = self.queueing_delay_sum.as_nanos().saturating_sub(earlier.queueing_delay_sum.as_nanos());
        Duration::from_nanos(sum).checked_div_or_zero(frames)
    }

    /// Frames dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_loss
            + self.dropped_queue_full
            + self.dropped_filter
            + self.dropped_too_big
            + self.dropped_rx_ring_full
            + self.dropped_in_flight_limit
    }
}

/// A test's hook for deterministic, targeted drops (e.g. "the first transmission of the segment
/// at sequence X"): called with the virtual time, the index of each frame offered to the link
/// (counting from 0, in flush order) and its bytes; `true` drops the frame before it reaches the
/// bottleneck. It may also just watch (record when a segment was sent). It must be a pure
/// function of its inputs and its own state, or the run stops being reproducible.
pub type DropFilter = Box<dyn FnMut(Instant, u64, &[u8]) -> bool + Send>;

/// A [`DropFilter`] slot that can be printed with the link.
struct FilterSlot(Option<DropFilter>);

impl std::fmt::Debug for FilterSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Some(<drop filter>)" } else { "None" })
    }
}

/// A frame on the wire, ordered so that the heap pops the earliest arrival, then the earliest sent.
#[derive(Debug)]
struct InFlight {
    arrival: Instant,
    seq: u64,
    frame: Vec<u8>,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.arrival, self.seq) == (other.arrival, other.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest first.
        (other.arrival, other.seq).cmp(&(self.arrival, self.seq))
    }
}

/// Independent random streams, one per knob, so enabling one knob leaves the others' draws alone.
#[derive(Debug)]
struct KnobRngs {
    loss: SimRng,
    corrupt: SimRng,
    duplicate: SimRng,
    jitter: SimRng,
    reorder: SimRng,
}

impl KnobRngs {
    fn new(seed: u64) -> Self {
        KnobRngs {
            loss: SimRng::derive(seed, 1),
            corrupt: SimRng::derive(seed, 2),
            duplicate: SimRng::derive(seed, 3),
            jitter: SimRng::derive(seed, 4),
            reorder: SimRng::derive(seed, 5),
        }
    }
}

/// One direction of a simulated link.
#[derive(Debug)]
pub struct Link {
    config: LinkConfig,
    rngs: KnobRngs,
    /// Gilbert–Elliott channel state.
    in_bad_state: bool,
    /// Frames that reached the loss stage so far (the position [`LossModel::Periodic`] counts).
    loss_stage_frames: u64,
    bottleneck: Bottleneck,
    /// Frames transmitted by the sending port and not yet flushed.
    pub(crate) tx_ring: VecDeque<Vec<u8>>,
    in_flight: BinaryHeap<InFlight>,
    /// Frames arrived at the receiving port and not yet received.
    rx_ring: VecDeque<Vec<u8>>,
    pub(crate) pool: FramePool,
    next_seq: u64,
    stats: LinkStats,
    filter: FilterSlot,
    flows: FlowTable,
}

impl Link {
    /// A link direction whose random decisions are all determined by `seed`.
    pub fn new(config: LinkConfig, seed: u64) -> Self {
        let largest = config.mtu.max(config.advertised_mtu()) + ETHERNET_HEADER_LEN;
        Link {
            rngs: KnobRngs::new(seed),
            in_bad_state: false,
            loss_stage_frames: 0,
            bottleneck: Bottleneck::new(),
            tx_ring: VecDeque::new(),
            in_flight: BinaryHeap::new(),
            rx_ring: VecDeque::new(),
            pool: FramePool::new(largest),
            next_seq: 0,
            stats: LinkStats::default(),
            filter: FilterSlot(None),
            flows: FlowTable::default(),
            config,
        }
    }

    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Changes the knobs from now on (e.g. cut the link for a while); frames already in flight
    /// keep their arrival times.
    pub fn set_config(&mut self, config: LinkConfig) {
        self.config = config;
    }

    pub fn stats(&self) -> LinkStats {
        LinkStats { buffers_allocated: self.pool.allocated(), ..self.stats.clone() }
    }

    /// Per-flow counters of the TCP flows seen on this direction.
    pub fn flows(&self) -> &FlowTable {
        &self.flows
    }

    /// Installs (or, with `None`, removes) the targeted-drop filter.
    pub fn set_drop_filter(&mut self, filter: Option<DropFilter>) {
        self.filter = FilterSlot(filter);
    }

    /// When the next frame in flight arrives at the receiving port.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.in_flight.peek().map(|f| f.arrival)
    }

    /// Frames in flight (sent, not yet arrived).
    pub fn in_flight_frames(&self) -> usize {
        self.in_flight.len()
    }

    /// Frames waiting in the receiving port's RX ring.
    pub fn rx_ring_frames(&self) -> usize {
        self.rx_ring.len()
    }

    /// Frames waiting in the sending port's TX ring for a flush.
    pub fn tx_ring_frames(&self) -> usize {
        self.tx_ring.len()
    }

    /// Whether the receiving port has a frame to receive at `now`.
    pub fn has_arrivals(&self, now: Instant) -> bool {
        !self.rx_ring.is_empty() || self.next_arrival().is_some_and(|t| t <= now)
    }

    /// Bytes in the bottleneck queue at `now`, for congestion tests.
    pub fn queued_bytes(&mut self, now: Instant) -> usize {
        self.bottleneck.backlog_bytes(now)
    }

    /// Frames in the bottleneck queue at `now`.
    pub fn queued_frames(&mut self, now: Instant) -> usize {
        self.bottleneck.backlog_frames(now)
    }

    /// Puts one frame on the wire at `now`: MTU check, drop filter, bottleneck, loss,
    /// corruption, duplication, then delay, jitter and reorder decide when it arrives.
    pub(crate) fn send(&mut self, now: Instant, mut frame: Vec<u8>) {
        let len = frame.len();
        let index = self.stats.sent_frames;
        self.stats.sent_frames += 1;
        self.stats.sent_bytes += len as u64;
        if len > self.config.mtu + ETHERNET_HEADER_LEN {
            self.stats.dropped_too_big += 1;
            self.flows.record(&frame, Fate::TooBig);
            return self.pool.give(frame);
        }
        if self.filter.0.as_mut().is_some_and(|drop| drop(now, index, &frame)) {
            self.stats.dropped_filter += 1;
            self.flows.record(&frame, Fate::Filtered);
            return self.pool.give(frame);
        }
        let cfg = &self.config;
        let limit = QueueLimit { bytes: cfg.queue_limit_bytes, frames: cfg.queue_limit_frames };
        let Some(admitted) = self.bottleneck.admit(now, len, cfg.rate_bps, limit) else {
            self.stats.dropped_queue_full += 1;
            self.flows.record(&frame, Fate::QueueFull);
            return self.pool.give(frame);
        };
        if cfg.rate_bps != 0 {
            self.stats.queued_frames += 1;
            self.stats.queueing_delay_sum += admitted.queueing_delay;
            self.stats.queueing_delay_max = self.stats.queueing_delay_max.max(admitted.queueing_delay);
        }
        let lost = self.lose();
        self.flows.record(&frame, Fate::Admitted { queueing_delay: admitted.queueing_delay, lost });
        if lost {
            self.stats.dropped_loss += 1;
            return self.pool.give(frame);
        }
        if self.rngs.corrupt.bernoulli(self.config.corrupt_probability) {
            self.corrupt(&mut frame);
        }
        if self.rngs.duplicate.bernoulli(self.config.duplicate_probability) {
            self.stats.duplicated += 1;
            let copy = self.pool.copy_of(&frame);
            self.schedule(admitted.departure, copy);
        }
        self.schedule(admitted.departure, frame);
    }

    /// Moves every frame that has arrived by `now` into the RX ring (dropping what does not fit,
    /// as a NIC does when its ring is full) and returns the oldest one.
    pub(crate) fn pop_arrived(&mut self, now: Instant) -> Option<Vec<u8>> {
        while self.in_flight.peek().is_some_and(|f| f.arrival <= now) {
            let Some(arrived) = self.in_flight.pop() else { break };
            if self.rx_ring.len() >= self.config.rx_ring_frames {
                self.stats.dropped_rx_ring_full += 1;
                self.pool.give(arrived.frame);
            } else {
                self.rx_ring.push_back(arrived.frame);
            }
        }
        self.rx_ring.pop_front()
    }

    /// Counts a frame handed to the receiving endpoint and takes its buffer back.
    pub(crate) fn delivered(&mut self, frame: Vec<u8>) {
        self.stats.delivered_frames += 1;
        self.stats.delivered_bytes += frame.len() as u64;
        self.pool.give(frame);
    }

    fn lose(&mut self) -> bool {
        let position = self.loss_stage_frames;
        self.loss_stage_frames += 1;
        let rng = &mut self.rngs.loss;
        match self.config.loss {
            LossModel::None => false,
            LossModel::Bernoulli { p } => rng.bernoulli(p),
            LossModel::GilbertElliott { p_good_to_bad, p_bad_to_good, loss_in_good, loss_in_bad } => {
                let flip = if self.in_bad_state { p_bad_to_good } else { p_good_to_bad };
                if rng.bernoulli(flip) {
                    self.in_bad_state = !self.in_bad_state;
                }
                rng.bernoulli(if self.in_bad_state { loss_in_bad } else { loss_in_good })
            }
            LossModel::Periodic { every, first } => {
                every != 0 && position >= first && (position - first).is_multiple_of(every)
            }
        }
    }

    fn corrupt(&mut self, frame: &mut [u8]) {
        let first = if frame.len() > ETHERNET_HEADER_LEN { ETHERNET_HEADER_LEN } else { 0 };
        let span = (frame.len() - first) as u64;
        if span == 0 {
            return;
        }
        let byte = first + self.rngs.corrupt.below(span) as usize;
        let bit = self.rngs.corrupt.below(8);
        frame[byte] ^= 1 << bit;
        self.stats.corrupted += 1;
    }

    fn schedule(&mut self, departure: Instant, frame: Vec<u8>) {
        if self.in_flight.len() >= MAX_IN_FLIGHT_FRAMES {
            self.stats.dropped_in_flight_limit += 1;
            return self.pool.give(frame);
        }
        let jitter = self.config.jitter.as_nanos();
        let mut arrival = departure + self.config.delay;
        if jitter != 0 {
            arrival += Duration::from_nanos(self.rngs.jitter.range(0..=jitter));
        }
        if self.rngs.reorder.bernoulli(self.config.reorder_probability) {
            self.stats.held_back += 1;
            arrival += self.config.reorder_delay;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight.push(InFlight { arrival, seq, frame });
    }
}
