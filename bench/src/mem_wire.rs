//! One direction of an in-memory Ethernet link between two engines in one thread: the wire the
//! engine criterion bench (`benches/engine.rs`) and the in-memory shard bench ([`crate::shards_mem`])
//! both run on.
//!
//! Owns the frames in flight and a free list of buffers; buffers are boxed so they move between
//! the two lists by pointer, never by copying 1,514 bytes. Optionally models a real link
//! ([`MemWire::with_link`]): frames are serialized one after the other at the line rate (a FIFO
//! that never drops) and arrive a propagation delay after their last bit left. Promises:
//! lossless, in order, no allocation once every buffer the peak window needs exists. Must not:
//! drop or reorder a frame (the benches measure the engine, not loss recovery).

use std::collections::VecDeque;

/// Largest Ethernet frame on the link (1500-byte MTU).
pub const FRAME: usize = 1514;

/// Preamble and start delimiter (8), FCS (4) and inter-frame gap (12) that every Ethernet frame
/// costs on a real wire besides its own bytes.
pub const WIRE_OVERHEAD: u64 = 24;

/// A real link's timing: line rate and one-way propagation delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub bits_per_sec: u64,
    pub delay_nanos: u64,
}

impl Link {
    /// Nanoseconds a frame of `len` bytes occupies the wire.
    pub fn wire_nanos(&self, len: usize) -> u64 {
        ((len as u64 + WIRE_OVERHEAD) * 8 * 1_000_000_000).div_ceil(self.bits_per_sec.max(1))
    }
}

/// One direction of the link: queued frames (with the instant, in nanoseconds of the caller's
/// clock, at which each has fully arrived) and free buffers.
#[allow(clippy::vec_box)]
#[derive(Debug, Default)]
pub struct MemWire {
    queued: VecDeque<(Box<[u8; FRAME]>, usize, u64)>,
    free: Vec<Box<[u8; FRAME]>>,
    link: Option<Link>,
    /// When the last queued frame's last bit leaves the sender (serialization of the FIFO).
    busy_until: u64,
    /// Frames ever transmitted onto this direction.
    frames: u64,
    /// Their bytes (Ethernet header included, no preamble or gap).
    bytes: u64,
}

impl MemWire {
    /// A direction with a real link's timing: use [`MemWire::transmit_at`] and
    /// [`MemWire::receive_due`] with the caller's clock.
    pub fn with_link(link: Link) -> Self {
        MemWire { link: Some(link), ..MemWire::default() }
    }

    /// `Device::transmit` onto this direction: a frame of `len` bytes filled by `fill`, or `None`
    /// when it is larger than the link's frames. Without a link model it is due at once.
    pub fn transmit<R>(&mut self, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> Option<R> {
        self.transmit_at(0, len, fill)
    }

    /// [`MemWire::transmit`] at `now` (nanoseconds): with a link model the frame starts when the
    /// frames before it have left and arrives its wire time plus the delay later.
    pub fn transmit_at<R>(&mut self, now: u64, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> Option<R> {
        if len > FRAME {
            return None;
        }
        let mut buf = self.free.pop().unwrap_or_else(|| Box::new([0u8; FRAME]));
        let result = fill(&mut buf[..len]);
        let due = match self.link {
            Some(link) => {
                self.busy_until = self.busy_until.max(now) + link.wire_nanos(len);
                self.busy_until + link.delay_nanos
            }
            None => 0,
        };
        self.queued.push_back((buf, len, due));
        self.frames += 1;
        self.bytes += len as u64;
        Some(result)
    }

    /// `Device::receive` from this direction: hands up to `budget` queued frames to `handle` in
    /// order and returns how many.
    pub fn receive(&mut self, budget: usize, handle: impl FnMut(&mut [u8])) -> usize {
        self.receive_due(u64::MAX, budget, handle)
    }

    /// [`MemWire::receive`] of the frames that have arrived by `now` (nanoseconds).
    pub fn receive_due(&mut self, now: u64, budget: usize, mut handle: impl FnMut(&mut [u8])) -> usize {
        let mut n = 0;
        while n < budget {
            match self.queued.front() {
                Some(&(_, _, due)) if due <= now => {}
                _ => break,
            }
            let Some((mut buf, len, _)) = self.queued.pop_front() else { break };
            handle(&mut buf[..len]);
            self.free.push(buf);
            n += 1;
        }
        n
    }

    /// Frames ever transmitted onto this direction (a counter the benches read per round).
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Bytes of those frames, Ethernet header included.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The oldest queued frame, left on the wire (see [`MemWire::discard_front`]).
    pub fn front(&self) -> Option<&[u8]> {
        self.queued.front().map(|(buf, len, _)| &buf[..*len])
    }

    /// Removes the oldest queued frame, recycling its buffer.
    pub fn discard_front(&mut self) {
        if let Some((buf, _, _)) = self.queued.pop_front() {
            self.free.push(buf);
        }
    }
}
