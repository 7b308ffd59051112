//! One end of a simulated link, as the engine sees it: a [`Device`].
//!
//! A `SimPort` borrows the two link directions that meet at one end (the outgoing one it transmits
//! on, the incoming one it receives from) and, optionally, the run's capture, for the duration of
//! one endpoint poll. It owns nothing itself, so it cannot outlive the poll and the same links can
//! be lent to either side in turn. It promises the `Device` contract: frames handed over only once
//! their arrival time has come, in arrival order; transmit buffers of exactly the asked length
//! (poisoned, see [`super::POISON_BYTE`]); nothing leaves before `flush`; the TX ring is
//! bounded. Checksums are neither verified on receive nor offloaded on transmit.

use linerate_stack::device::{Capabilities, Device};
use linerate_stack::time::Instant;

use super::capture::Capture;
use super::link::Link;

/// One end of a simulated link.
#[derive(Debug)]
pub struct SimPort<'a> {
    outgoing: &'a mut Link,
    incoming: &'a mut Link,
    capture: Option<&'a mut Capture>,
}

impl<'a> SimPort<'a> {
    /// The port that transmits on `outgoing` and receives from `incoming`.
    pub fn new(outgoing: &'a mut Link, incoming: &'a mut Link) -> Self {
        SimPort { outgoing, incoming, capture: None }
    }

    /// Records frames this port flushes (and, if the capture asks, receives) into `capture`.
    pub fn with_capture(mut self, capture: Option<&'a mut Capture>) -> Self {
        self.capture = capture;
        self
    }

    /// The direction this port transmits on.
    pub fn outgoing(&self) -> &Link {
        self.outgoing
    }

    /// The direction this port receives from.
    pub fn incoming(&self) -> &Link {
        self.incoming
    }
}

impl Device for SimPort<'_> {
    fn capabilities(&self) -> Capabilities {
        let cfg = self.outgoing.config();
        Capabilities {
            mtu: cfg.advertised_mtu(),
            max_burst: cfg.max_burst,
            rx_checksum_verified: false,
            tx_checksum_offload: false,
        }
    }

    fn receive<F>(&mut self, now: Instant, budget: usize, mut handle: F) -> usize
    where
        F: FnMut(&mut [u8]),
    {
        let mut handed = 0;
        while handed < budget {
            let Some(mut frame) = self.incoming.pop_arrived(now) else { break };
            if let Some(capture) = self.capture.as_deref_mut() {
                capture.delivered(now, &frame);
            }
            handle(&mut frame);
            self.incoming.delivered(frame);
            handed += 1;
        }
        handed
    }

    fn transmit_capacity(&self) -> usize {
        self.outgoing.config().tx_ring_frames.saturating_sub(self.outgoing.tx_ring.len())
    }

    fn transmit<R, F>(&mut self, _now: Instant, len: usize, fill: F) -> Option<R>
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        if len > self.capabilities().max_frame_len() || self.transmit_capacity() == 0 {
            return None;
        }
        let mut frame = self.outgoing.pool.take(len);
        let result = fill(&mut frame);
        self.outgoing.tx_ring.push_back(frame);
        Some(result)
    }

    fn flush(&mut self, now: Instant) {
        while let Some(frame) = self.outgoing.tx_ring.pop_front() {
            if let Some(capture) = self.capture.as_deref_mut() {
                capture.sent(now, &frame);
            }
            self.outgoing.send(now, frame);
        }
    }
}
