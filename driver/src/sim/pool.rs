//! Recycled frame buffers for one link direction.
//!
//! Owns a bounded free list of `Vec<u8>` buffers, each allocated once with room for the largest
//! frame. A frame is taken at `transmit`, travels through the link and comes back here after
//! `receive` (or when it is dropped), so a simulation in steady state allocates nothing per frame.
//! Promises that a lent buffer never holds a previous frame's bytes: it is filled with
//! [`POISON_BYTE`] like a recycled UMEM frame would hold stale data, so an engine that forgets to
//! write a field sends visible garbage instead of lucky zeroes.

/// What a freshly lent transmit buffer contains in every byte.
pub const POISON_BYTE: u8 = 0x5a;

/// How many idle buffers a pool keeps; more are freed (bounds memory after a burst).
const MAX_FREE_BUFFERS: usize = 8192;

#[derive(Debug)]
pub(crate) struct FramePool {
    free: Vec<Vec<u8>>,
    /// Capacity each new buffer is allocated with, so resizing a recycled one never reallocates.
    buffer_capacity: usize,
    /// Buffers allocated over the pool's life (steady state: stops growing).
    allocated: u64,
}

impl FramePool {
    pub(crate) fn new(buffer_capacity: usize) -> Self {
        FramePool { free: Vec::new(), buffer_capacity, allocated: 0 }
    }

    /// A buffer of exactly `len` poisoned bytes.
    pub(crate) fn take(&mut self, len: usize) -> Vec<u8> {
        let mut buf = match self.free.pop() {
            Some(buf) => buf,
            None => {
                self.allocated += 1;
                Vec::with_capacity(self.buffer_capacity.max(len))
            }
        };
        buf.clear();
        buf.resize(len, POISON_BYTE);
        buf
    }

    /// A buffer holding a copy of `frame`.
    pub(crate) fn copy_of(&mut self, frame: &[u8]) -> Vec<u8> {
        let mut buf = self.take(0);
        buf.extend_from_slice(frame);
        buf
    }

    pub(crate) fn give(&mut self, buf: Vec<u8>) {
        if self.free.len() < MAX_FREE_BUFFERS {
            self.free.push(buf);
        }
    }

    pub(crate) fn allocated(&self) -> u64 {
        self.allocated
    }
}
