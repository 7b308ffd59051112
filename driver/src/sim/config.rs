//! What one direction of a simulated link does to frames: the knobs.
//!
//! A [`LinkConfig`] describes, for one direction, the sending port's transmit side (TX ring, MTU it
//! advertises, burst size), the wire in between (bottleneck rate and queue in bytes and/or frames, delay, jitter, reorder,
//! loss, duplication, corruption, path MTU) and the receiving port's RX ring. Plain data with a
//! chaining builder; the defaults are a perfect link: lossless, no delay, unlimited rate, MTU 1500.

use linerate_stack::time::Duration;

/// Which frames the wire loses (after the bottleneck: a lost frame still used its serialization
/// time, as on a real lossy hop downstream of the queue).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum LossModel {
    /// Nothing is lost.
    #[default]
    None,
    /// Each frame is lost independently with probability `p`.
    Bernoulli { p: f64 },
    /// Gilbert–Elliott two-state burst loss. Before each frame the channel may change state
    /// (good→bad with `p_good_to_bad`, bad→good with `p_bad_to_good`); the frame is then lost with
    /// the current state's probability. The mean stay in the bad state is `1 / p_bad_to_good`
    /// frames, so with `loss_in_bad = 1` that is the mean loss-burst length.
    GilbertElliott { p_good_to_bad: f64, p_bad_to_good: f64, loss_in_good: f64, loss_in_bad: f64 },
    /// Deterministic loss: of the frames that pass the bottleneck, counted from 0 over the
    /// link's life, those at `first`, `first + every`, `first + 2·every`, … are lost (none when
    /// `every` is 0). One loss every `1/p` frames is the loss process Mathis et al. (1997)
    /// derived the `1.22/√p` constant for, and RFC 9438 §5.1 its CUBIC response function; a
    /// seed-drawn `first` varies the phase.
    Periodic { every: u64, first: u64 },
}

/// One direction of a link. Fields are public; the methods of the same names set them and chain.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// One-way propagation delay added to every frame after it leaves the bottleneck.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `[0, jitter]` per frame; frames closer together than the
    /// jitter may be reordered.
    pub jitter: Duration,
    /// Probability that a frame is held back by an extra `reorder_delay` (explicit reordering).
    pub reorder_probability: f64,
    /// How long a held-back frame waits beyond its normal arrival time.
    pub reorder_delay: Duration,
    /// Which frames are lost.
    pub loss: LossModel,
    /// Probability that a frame is delivered twice (the copy gets its own jitter).
    pub duplicate_probability: f64,
    /// Probability that one random bit of the frame (past the 14-byte Ethernet header, so the
    /// damage reaches the IP/TCP checksums rather than the MAC filter) is flipped.
    pub corrupt_probability: f64,
    /// Bottleneck rate in bits per second; 0 means unlimited (no serialization time, no queue).
    pub rate_bps: u64,
    /// Drop-tail limit of the bottleneck queue in bytes, counting every frame not yet fully
    /// serialized (including the one on the wire). Only meaningful with a rate.
    pub queue_limit_bytes: usize,
    /// Drop-tail limit of the bottleneck queue in frames (same counting as the byte limit); a
    /// frame is refused when either limit would be exceeded. Only meaningful with a rate.
    pub queue_limit_frames: usize,
    /// Path MTU (L3 bytes): frames longer than `mtu + 14` are dropped and counted as too big.
    pub mtu: usize,
    /// MTU the sending port advertises in its capabilities; `None` means `mtu`. Set it larger than
    /// `mtu` to simulate a path-MTU black hole.
    pub port_mtu: Option<usize>,
    /// Frames per burst the sending port advertises.
    pub max_burst: usize,
    /// Frames the sending port can hold between `transmit` and `flush`.
    pub tx_ring_frames: usize,
    /// Frames the receiving port holds between arrival and `receive`; arrivals beyond it are
    /// dropped and counted.
    pub rx_ring_frames: usize,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            reorder_probability: 0.0,
            reorder_delay: Duration::ZERO,
            loss: LossModel::None,
            duplicate_probability: 0.0,
            corrupt_probability: 0.0,
            rate_bps: 0,
            queue_limit_bytes: usize::MAX,
            queue_limit_frames: usize::MAX,
            mtu: 1500,
            port_mtu: None,
            max_burst: 64,
            tx_ring_frames: 256,
            rx_ring_frames: 4096,
        }
    }
}

impl LinkConfig {
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }
    /// Holds back a fraction `probability` of frames by an extra `extra_delay`.
    pub fn reorder(mut self, probability: f64, extra_delay: Duration) -> Self {
        self.reorder_probability = probability;
        self.reorder_delay = extra_delay;
        self
    }
    pub fn loss(mut self, loss: LossModel) -> Self {
        self.loss = loss;
        self
    }
    pub fn duplicate_probability(mut self, p: f64) -> Self {
        self.duplicate_probability = p;
        self
    }
    pub fn corrupt_probability(mut self, p: f64) -> Self {
        self.corrupt_probability = p;
        self
    }
    /// A bottleneck of `rate_bps` bits per second with a drop-tail queue of `queue_limit_bytes`.
    pub fn bottleneck(mut self, rate_bps: u64, queue_limit_bytes: usize) -> Self {
        self.rate_bps = rate_bps;
        self.queue_limit_bytes = queue_limit_bytes;
        self
    }
    /// Also bounds the bottleneck queue to `frames` frames (routers often count packets).
    pub fn queue_limit_frames(mut self, frames: usize) -> Self {
        self.queue_limit_frames = frames;
        self
    }
    pub fn mtu(mut self, mtu: usize) -> Self {
        self.mtu = mtu;
        self
    }
    pub fn port_mtu(mut self, mtu: usize) -> Self {
        self.port_mtu = Some(mtu);
        self
    }
    pub fn max_burst(mut self, frames: usize) -> Self {
        self.max_burst = frames;
        self
    }
    pub fn tx_ring_frames(mut self, frames: usize) -> Self {
        self.tx_ring_frames = frames;
        self
    }
    pub fn rx_ring_frames(mut self, frames: usize) -> Self {
        self.rx_ring_frames = frames;
        self
    }

    /// The MTU the sending port advertises.
    pub fn advertised_mtu(&self) -> usize {
        self.port_mtu.unwrap_or(self.mtu)
    }
}
