//! One direction of an in-memory Ethernet link between two engines in one thread: the wire the
//! engine criterion bench (`benches/engine.rs`) and the in-memory shard bench ([`crate::shards_mem`])
//! both run on.
//!
//! Owns the frames in flight and a free list of buffers; buffers are boxed so they move between
//! the two lists by pointer, never by copying 1,514 bytes. Promises: lossless, in order, no
//! allocation once every buffer the peak window needs exists. Must not: drop or reorder a frame
//! (the benches measure the engine, not loss recovery).

use std::collections::VecDeque;

/// Largest Ethernet frame on the link (1500-byte MTU).
pub const FRAME: usize = 1514;

/// One direction of the link: queued frames and free buffers.
#[allow(clippy::vec_box)]
#[derive(Debug, Default)]
pub struct MemWire {
    queued: VecDeque<(Box<[u8; FRAME]>, usize)>,
    free: Vec<Box<[u8; FRAME]>>,
}

impl MemWire {
    /// `Device::transmit` onto this direction: a frame of `len` bytes filled by `fill`, or `None`
    /// when it is larger than the link's frames.
    pub fn transmit<R>(&mut self, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> Option<R> {
        if len > FRAME {
            return None;
        }
        let mut buf = self.free.pop().unwrap_or_else(|| Box::new([0u8; FRAME]));
        let result = fill(&mut buf[..len]);
        self.queued.push_back((buf, len));
        Some(result)
    }

    /// `Device::receive` from this direction: hands up to `budget` queued frames to `handle` in
    /// order and returns how many.
    pub fn receive(&mut self, budget: usize, mut handle: impl FnMut(&mut [u8])) -> usize {
        let mut n = 0;
        while n < budget {
            let Some((mut buf, len)) = self.queued.pop_front() else { break };
            handle(&mut buf[..len]);
            self.free.push(buf);
            n += 1;
        }
        n
    }

    /// The oldest queued frame, left on the wire (see [`MemWire::discard_front`]).
    pub fn front(&self) -> Option<&[u8]> {
        self.queued.front().map(|(buf, len)| &buf[..*len])
    }

    /// Removes the oldest queued frame, recycling its buffer.
    pub fn discard_front(&mut self) {
        if let Some((buf, _)) = self.queued.pop_front() {
            self.free.push(buf);
        }
    }
}
