//! The send buffer: a fixed-capacity ring of bytes from SND.UNA onward (sent-but-unacknowledged
//! bytes followed by not-yet-sent bytes), addressed by sequence number.
//!
//! Allocated once when the connection is created (within the engine's memory cap) and never
//! grown: `write` accepts what fits and the rest is back-pressure. Retransmission reads the same
//! bytes again, so there is no per-segment copy or allocation. Per-segment records (send time,
//! delivered count for rate sampling) are a seam for the next issue's RACK/BBR work; NewReno only
//! needs the byte ring plus the connection's single timed segment.

use crate::wire::SeqNumber;

/// Fixed ring of outgoing bytes. `head_seq` is the sequence number of the first byte stored.
#[derive(Debug)]
pub struct SendBuffer {
    buf: Box<[u8]>,
    head: usize,
    len: usize,
    head_seq: SeqNumber,
}

impl SendBuffer {
    /// A buffer of `capacity` bytes whose first byte will have sequence number `first_seq`.
    pub fn new(capacity: usize, first_seq: SeqNumber) -> Self {
        Self::with_storage(vec![0u8; capacity].into_boxed_slice(), first_seq)
    }

    /// A buffer over `storage` (e.g. recycled from a closed connection, contents irrelevant: only
    /// bytes written from now on are ever read).
    pub fn with_storage(storage: Box<[u8]>, first_seq: SeqNumber) -> Self {
        SendBuffer { buf: storage, head: 0, len: 0, head_seq: first_seq }
    }

    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Bytes stored (unacknowledged plus unsent).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn free(&self) -> usize {
        self.buf.len() - self.len
    }

    /// Sequence number of the first stored byte.
    pub fn head_seq(&self) -> SeqNumber {
        self.head_seq
    }

    /// Sequence number just past the last stored byte.
    pub fn end_seq(&self) -> SeqNumber {
        self.head_seq + self.len as u32
    }

    /// Re-bases an empty buffer (used once the ISN is known).
    pub fn set_head_seq(&mut self, seq: SeqNumber) {
        if self.len == 0 {
            self.head_seq = seq;
        }
    }

    /// Appends as much of `data` as fits; returns the number of bytes taken.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let cap = self.buf.len();
        let n = data.len().min(self.free());
        if n == 0 {
            return 0;
        }
        let tail = (self.head + self.len) % cap;
        let first = n.min(cap - tail);
        self.buf[tail..tail + first].copy_from_slice(&data[..first]);
        self.buf[..n - first].copy_from_slice(&data[first..n]);
        self.len += n;
        n
    }

    /// Lets `fill` write up to `max` bytes straight into the ring (no staging copy): it gets the
    /// first contiguous free piece (shorter than `max` where the ring wraps or is nearly full)
    /// and returns how many bytes it wrote; those become part of the stream. Returns that count.
    pub fn write_with(&mut self, max: usize, fill: impl FnOnce(&mut [u8]) -> usize) -> usize {
        let cap = self.buf.len();
        let n = max.min(self.free());
        if n == 0 {
            return 0;
        }
        let tail = (self.head + self.len) % cap;
        let piece = n.min(cap - tail);
        let wrote = fill(&mut self.buf[tail..tail + piece]).min(piece);
        self.len += wrote;
        wrote
    }

    /// Drops every byte before `seq` (a cumulative ACK); returns how many were dropped.
    pub fn ack_to(&mut self, seq: SeqNumber) -> usize {
        let dist = seq - self.head_seq;
        if dist <= 0 {
            return 0;
        }
        let n = (dist as usize).min(self.len);
        if self.buf.is_empty() {
            return 0;
        }
        self.head = (self.head + n) % self.buf.len();
        self.len -= n;
        self.head_seq += n as u32;
        if self.len == 0 {
            // Bytes are addressed from `head_seq`, so an empty ring may restart at offset 0:
            // request/response traffic then reuses the same few cache-hot pages instead of
            // walking (and first-touch faulting) the whole ring.
            self.head = 0;
        }
        n
    }

    /// The stored bytes `[seq, seq + len)` as at most two slices (the ring may wrap). Bytes
    /// outside the stored range are not returned: the result may be shorter than `len`.
    pub fn slices(&self, seq: SeqNumber, len: usize) -> (&[u8], &[u8]) {
        let off = seq - self.head_seq;
        if off < 0 || off as usize >= self.len || self.buf.is_empty() {
            return (&[], &[]);
        }
        let off = off as usize;
        let len = len.min(self.len - off);
        let cap = self.buf.len();
        let start = (self.head + off) % cap;
        let first = len.min(cap - start);
        (&self.buf[start..start + first], &self.buf[..len - first])
    }

    /// Gives up the storage (TIME-WAIT keeps no buffers) so it can be recycled; the buffer is
    /// empty with capacity 0 afterwards.
    pub fn release(&mut self) -> Box<[u8]> {
        self.head = 0;
        self.len = 0;
        core::mem::take(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_ack_and_read_across_the_wrap() {
        let mut b = SendBuffer::new(8, SeqNumber(u32::MAX - 2));
        assert_eq!(b.write(b"abcdef"), 6);
        assert_eq!(b.ack_to(SeqNumber(u32::MAX - 2) + 4), 4);
        assert_eq!(b.write(b"ghijklmn"), 6);
        let (a, c) = b.slices(SeqNumber(u32::MAX - 2) + 4, 100);
        assert_eq!([a, c].concat(), b"efghijkl");
        assert_eq!(b.end_seq(), SeqNumber(u32::MAX - 2) + 12);
        let (a, c) = b.slices(SeqNumber(u32::MAX - 2) + 6, 3);
        assert_eq!([a, c].concat(), b"ghi");
    }

    #[test]
    fn write_with_fills_the_ring_in_place_piece_by_piece() {
        let mut b = SendBuffer::new(8, SeqNumber(0));
        b.write(b"abcdef");
        b.ack_to(SeqNumber(4));
        // Free space: 2 bytes at the end of the ring, then 4 at its start.
        assert_eq!(
            b.write_with(100, |buf| {
                assert_eq!(buf.len(), 2);
                buf.copy_from_slice(b"gh");
                2
            }),
            2
        );
        assert_eq!(
            b.write_with(3, |buf| {
                assert_eq!(buf.len(), 3);
                buf[..1].copy_from_slice(b"i");
                1
            }),
            1
        );
        // A closure claiming more than it was given is clamped.
        assert_eq!(b.write_with(100, |buf| buf.len() + 5), 3);
        assert_eq!(b.write_with(100, |_| unreachable!("buffer is full")), 0);
        let (x, y) = b.slices(SeqNumber(4), 5);
        assert_eq!(&[x, y].concat()[..5], b"efghi");
    }

    #[test]
    fn ack_beyond_the_end_drops_only_what_is_stored() {
        let mut b = SendBuffer::new(8, SeqNumber(100));
        b.write(b"abc");
        assert_eq!(b.ack_to(SeqNumber(200)), 3);
        assert_eq!(b.ack_to(SeqNumber(50)), 0);
        assert!(b.is_empty());
    }
}
