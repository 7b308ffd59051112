//! A device for the transmit tests (test builds only): frames queued for the engine, frames
//! it sent, and how many more it may send before the device refuses (a full TX ring).
//!
//! Transmit buffers start as garbage, so a frame writer that leaves any byte unwritten shows up
//! as a difference between two engines that should agree.

use std::collections::VecDeque;

use crate::device::{Capabilities, Device};
use crate::time::Instant;

#[derive(Default)]
pub(super) struct TestPort {
    /// Frames waiting to be received, oldest first.
    pub(super) inbox: VecDeque<Vec<u8>>,
    /// Frames the engine transmitted, in order.
    pub(super) outbox: Vec<Vec<u8>>,
    /// Frames the device still accepts; 0 refuses every transmit.
    pub(super) room: usize,
    /// The device computes TCP/IP checksums on transmit.
    pub(super) offload: bool,
    /// The device verified received checksums (the peer's frames carry partial sums).
    pub(super) verified: bool,
}

impl Device for TestPort {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            tx_checksum_offload: self.offload,
            rx_checksum_verified: self.verified,
            ..Capabilities::default()
        }
    }
    fn receive<F: FnMut(&mut [u8])>(&mut self, _now: Instant, budget: usize, mut handle: F) -> usize {
        let mut n = 0;
        while n < budget {
            let Some(mut frame) = self.inbox.pop_front() else { break };
            handle(&mut frame);
            n += 1;
        }
        n
    }
    fn transmit_capacity(&self) -> usize {
        self.room
    }
    fn transmit<R, F: FnOnce(&mut [u8]) -> R>(&mut self, _now: Instant, len: usize, fill: F) -> Option<R> {
        if self.room == 0 || len > self.capabilities().max_frame_len() {
            return None;
        }
        self.room -= 1;
        let mut frame = vec![0xa5; len];
        let r = fill(&mut frame);
        self.outbox.push(frame);
        Some(r)
    }
    fn flush(&mut self, _now: Instant) {}
}
