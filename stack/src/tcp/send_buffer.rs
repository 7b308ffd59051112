//! The send buffer: the stream from SND.UNA onward (sent-but-unacknowledged bytes followed by
//! not-yet-sent bytes), addressed by sequence number. Bytes live either in a fixed-capacity ring
//! (copied in by `write`/`write_with`) or in memory the application lends (`write_external`:
//! an [`ExternalChunk`] of a [`SendSource`], e.g. a mapped file), in any interleaving.
//!
//! **Owns** the ring (allocated once when the connection is created, within the engine's memory
//! cap, never grown) and, while lent chunks are stored, a bounded queue of extents
//! ([`MAX_EXTENTS`]) that says, in stream order, which bytes are ring bytes and which belong to
//! which chunk. With no chunk stored the queue is empty and the buffer is a plain ring.
//!
//! **Promises:** lent bytes count against the capacity exactly like ring bytes, so windows and
//! back-pressure do not change. Reading a range ([`SendBuffer::pieces`]) allocates nothing and
//! finds the first extent with a binary search over at most [`MAX_EXTENTS`] entries (constant
//! bounded work); retransmission reads the same bytes again. A chunk's source is released (its
//! `Arc` dropped) as soon as its last byte is acknowledged, or when the buffer is released.
//!
//! **Must not** copy lent bytes anywhere but into the frame being built.

use super::send_source::{ExternalChunk, SendSource};
use crate::wire::SeqNumber;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

/// Most extents (runs of ring bytes or lent chunks) stored at once. A chunk that continues the
/// previous one (same source, next offset) extends it instead of taking an entry.
pub const MAX_EXTENTS: usize = 64;

/// Where a run of stream bytes lives.
enum Backing {
    /// In the ring, from index `pos` (wrapping).
    Ring { pos: usize },
    /// In a lent source, from `offset`.
    Lent { source: Arc<dyn SendSource>, offset: usize },
}

/// A run of consecutive stream bytes with one backing.
struct Extent {
    seq: SeqNumber,
    len: usize,
    backing: Backing,
}

impl fmt::Debug for Extent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Extent");
        d.field("seq", &self.seq).field("len", &self.len);
        match &self.backing {
            Backing::Ring { pos } => d.field("ring_pos", pos),
            Backing::Lent { source, offset } => {
                d.field("source", &source.bytes().as_ptr()).field("offset", offset)
            }
        };
        d.finish()
    }
}

/// The connection's outgoing stream. `head_seq` is the sequence number of the first byte stored.
#[derive(Debug)]
pub struct SendBuffer {
    ring: Box<[u8]>,
    /// Ring index of the oldest ring byte stored.
    ring_head: usize,
    /// Ring bytes stored.
    ring_len: usize,
    /// All bytes stored (ring and lent).
    len: usize,
    head_seq: SeqNumber,
    /// Empty unless a lent chunk is stored; then it covers all `len` bytes in order.
    extents: VecDeque<Extent>,
    /// Lent extents in `extents`; when it drops to 0 the queue is cleared.
    lent: usize,
}

impl SendBuffer {
    /// A buffer of `capacity` bytes whose first byte will have sequence number `first_seq`.
    pub fn new(capacity: usize, first_seq: SeqNumber) -> Self {
        Self::with_storage(vec![0u8; capacity].into_boxed_slice(), first_seq)
    }

    /// A buffer over `storage` (e.g. recycled from a closed connection, contents irrelevant: only
    /// bytes written from now on are ever read).
    pub fn with_storage(storage: Box<[u8]>, first_seq: SeqNumber) -> Self {
        SendBuffer {
            ring: storage,
            ring_head: 0,
            ring_len: 0,
            len: 0,
            head_seq: first_seq,
            extents: VecDeque::new(),
            lent: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.ring.len()
    }

    /// Bytes stored (unacknowledged plus unsent, ring and lent).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn free(&self) -> usize {
        self.ring.len() - self.len
    }

    /// Sequence number of the first stored byte.
    pub fn head_seq(&self) -> SeqNumber {
        self.head_seq
    }

    /// Sequence number just past the last stored byte.
    pub fn end_seq(&self) -> SeqNumber {
        self.head_seq + self.len as u32
    }

    /// Lent chunks (extents) stored now.
    pub fn lent_extents(&self) -> usize {
        self.lent
    }

    /// Re-bases an empty buffer (used once the ISN is known).
    pub fn set_head_seq(&mut self, seq: SeqNumber) {
        if self.len == 0 {
            self.head_seq = seq;
        }
    }

    /// Ring index where the next ring byte goes.
    fn ring_tail(&self) -> usize {
        (self.ring_head + self.ring_len) % self.ring.len()
    }

    /// Appends as much of `data` as fits; returns the number of bytes taken.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let mut taken = 0;
        while taken < data.len() {
            let rest = &data[taken..];
            let n = self.write_with(rest.len(), |piece| {
                piece.copy_from_slice(&rest[..piece.len()]);
                piece.len()
            });
            if n == 0 {
                break;
            }
            taken += n;
        }
        taken
    }

    /// Lets `fill` write up to `max` bytes straight into the ring (no staging copy): it gets the
    /// first contiguous free piece (shorter than `max` where the ring wraps or is nearly full)
    /// and returns how many bytes it wrote; those become part of the stream. Returns that count.
    /// `fill` is not called when nothing can be taken (no room, or a full extent queue).
    pub fn write_with(&mut self, max: usize, fill: impl FnOnce(&mut [u8]) -> usize) -> usize {
        let n = max.min(self.free());
        let extends_ring_run =
            matches!(self.extents.back(), None | Some(Extent { backing: Backing::Ring { .. }, .. }));
        if n == 0 || (self.lent > 0 && !extends_ring_run && self.extents.len() == MAX_EXTENTS) {
            return 0;
        }
        let tail = self.ring_tail();
        let piece = n.min(self.ring.len() - tail);
        let wrote = fill(&mut self.ring[tail..tail + piece]).min(piece);
        if wrote == 0 {
            return 0;
        }
        if self.lent > 0 {
            match self.extents.back_mut() {
                Some(last @ Extent { backing: Backing::Ring { .. }, .. }) => last.len += wrote,
                _ => {
                    let seq = self.end_seq();
                    self.extents.push_back(Extent { seq, len: wrote, backing: Backing::Ring { pos: tail } });
                }
            }
        }
        self.ring_len += wrote;
        self.len += wrote;
        wrote
    }

    /// Appends as much of `chunk` as fits without copying it: the buffer keeps a reference to
    /// the source until those bytes are acknowledged. Returns the number of bytes taken (0 when
    /// the buffer is full or the extent queue is full and the chunk does not continue the last
    /// one).
    pub fn write_external(&mut self, chunk: &ExternalChunk) -> usize {
        let n = chunk.len().min(self.free());
        if n == 0 {
            return 0;
        }
        if let Some(Extent { len, backing: Backing::Lent { source, offset }, .. }) = self.extents.back_mut() {
            if Arc::ptr_eq(source, chunk.source()) && *offset + *len == chunk.offset() {
                *len += n;
                self.len += n;
                return n;
            }
        }
        let ring_run = (self.lent == 0 && self.ring_len > 0) as usize;
        if self.extents.len() + ring_run + 1 > MAX_EXTENTS {
            return 0;
        }
        if self.extents.capacity() == 0 {
            self.extents.reserve_exact(MAX_EXTENTS);
        }
        if ring_run == 1 {
            // Until now the ring held the whole stream: describe it as the first extent.
            let (seq, len, pos) = (self.head_seq, self.ring_len, self.ring_head);
            self.extents.push_back(Extent { seq, len, backing: Backing::Ring { pos } });
        }
        let seq = self.end_seq();
        let backing = Backing::Lent { source: chunk.source().clone(), offset: chunk.offset() };
        self.extents.push_back(Extent { seq, len: n, backing });
        self.lent += 1;
        self.len += n;
        n
    }

    /// Drops every byte before `seq` (a cumulative ACK); returns how many were dropped. Lent
    /// chunks whose last byte is dropped are released.
    pub fn ack_to(&mut self, seq: SeqNumber) -> usize {
        let dist = seq - self.head_seq;
        if dist <= 0 || self.ring.is_empty() {
            return 0;
        }
        let n = (dist as usize).min(self.len);
        self.head_seq += n as u32;
        self.len -= n;
        if self.lent == 0 {
            self.drop_ring_bytes(n);
            return n;
        }
        let mut left = n;
        while left > 0 {
            let Some(front) = self.extents.front_mut() else { break };
            let take = left.min(front.len);
            front.seq += take as u32;
            front.len -= take;
            let ring_bytes = match &mut front.backing {
                Backing::Ring { pos } => {
                    *pos = (*pos + take) % self.ring.len();
                    take
                }
                Backing::Lent { offset, .. } => {
                    *offset += take;
                    0
                }
            };
            if front.len == 0 {
                if let Some(Extent { backing: Backing::Lent { .. }, .. }) = self.extents.pop_front() {
                    self.lent -= 1;
                }
            }
            self.drop_ring_bytes(ring_bytes);
            left -= take;
        }
        if self.lent == 0 {
            // Only ring bytes are left (at most one run, starting at `ring_head`).
            self.extents.clear();
        }
        n
    }

    fn drop_ring_bytes(&mut self, n: usize) {
        self.ring_head = (self.ring_head + n) % self.ring.len();
        self.ring_len -= n;
        if self.ring_len == 0 {
            // Ring bytes are addressed through `ring_head`, so an empty ring may restart at
            // offset 0: request/response traffic then reuses the same few cache-hot pages
            // instead of walking (and first-touch faulting) the whole ring.
            self.ring_head = 0;
        }
    }

    /// The stored bytes `[seq, seq + len)` as contiguous pieces in stream order (the ring may
    /// wrap; lent chunks are separate pieces). Bytes outside the stored range are not returned:
    /// the pieces may add up to less than `len`.
    #[inline]
    pub fn pieces(&self, seq: SeqNumber, len: usize) -> Pieces<'_> {
        let off = seq - self.head_seq;
        if off < 0 || off as usize >= self.len || self.ring.is_empty() {
            return Pieces { buf: self, off: 0, left: 0, extent: 0, first: 0, read_any: false };
        }
        let off = off as usize;
        let extent = if self.lent == 0 {
            0
        } else {
            // Extent offsets from `head_seq` increase along the queue.
            self.extents.partition_point(|e| (e.seq - self.head_seq) as usize + e.len <= off)
        };
        Pieces { buf: self, off, left: len.min(self.len - off), extent, first: extent, read_any: false }
    }

    /// Discards every stored byte and releases every lent source, keeping the ring (for a
    /// connection that was reset and will send nothing more).
    pub fn discard(&mut self) {
        self.head_seq += self.len as u32;
        self.ring_head = 0;
        self.ring_len = 0;
        self.len = 0;
        self.extents.clear();
        self.lent = 0;
    }

    /// Gives up the storage (TIME-WAIT keeps no buffers) so it can be recycled and releases every
    /// lent chunk; the buffer is empty with capacity 0 afterwards.
    pub fn release(&mut self) -> Box<[u8]> {
        self.ring_head = 0;
        self.ring_len = 0;
        self.len = 0;
        self.extents = VecDeque::new();
        self.lent = 0;
        core::mem::take(&mut self.ring)
    }
}

/// Iterator over the contiguous pieces of a stored range ([`SendBuffer::pieces`]).
#[derive(Debug)]
pub struct Pieces<'a> {
    buf: &'a SendBuffer,
    /// Offset from `head_seq` of the next byte.
    off: usize,
    left: usize,
    /// Extent holding `off` (when lent chunks are stored).
    extent: usize,
    /// Extent of the range's first byte.
    first: usize,
    /// Whether any piece was returned.
    read_any: bool,
}

impl Pieces<'_> {
    /// After the pieces were read: true when every lent chunk they came from is still intact
    /// ([`SendSource::is_intact`]), i.e. the bytes read were the source's real content.
    #[inline]
    pub fn intact(&self) -> bool {
        let buf = self.buf;
        if buf.lent == 0 || !self.read_any {
            return true;
        }
        // `extent` holds the last byte read (it only moves on while bytes are left).
        (self.first..=self.extent).all(|i| match buf.extents.get(i) {
            Some(Extent { backing: Backing::Lent { source, .. }, .. }) => source.is_intact(),
            _ => true,
        })
    }
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let buf = self.buf;
        let cap = buf.ring.len();
        self.read_any = true;
        if buf.lent == 0 {
            // Both terms are below `cap` (every stored byte is in the ring): no division.
            let start = wrap(buf.ring_head + self.off, cap);
            let piece = &buf.ring[start..start + self.left.min(cap - start)];
            self.off += piece.len();
            self.left -= piece.len();
            return Some(piece);
        }
        let e = buf.extents.get(self.extent)?;
        let within = self.off - (e.seq - buf.head_seq) as usize;
        let n = self.left.min(e.len - within);
        let piece: &'a [u8] = match &e.backing {
            Backing::Ring { pos } => {
                let start = (pos + within) % cap;
                &buf.ring[start..start + n.min(cap - start)]
            }
            Backing::Lent { source, offset } => &source.bytes()[offset + within..offset + within + n],
        };
        self.off += piece.len();
        self.left -= piece.len();
        if within + piece.len() == e.len && self.left > 0 {
            self.extent += 1;
        }
        Some(piece)
    }
}

/// `i mod cap` for an `i` that is usually below `2 * cap` (one compare instead of a division).
fn wrap(i: usize, cap: usize) -> usize {
    if i < cap {
        i
    } else if i - cap < cap {
        i - cap
    } else {
        i % cap
    }
}

#[cfg(test)]
#[path = "send_buffer_tests.rs"]
mod tests;
