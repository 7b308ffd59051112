//! The receive buffer: a fixed-capacity ring holding in-order bytes not yet read by the
//! application, followed (at their sequence offsets) by out-of-order bytes, plus a bounded list of
//! out-of-order ranges that yields SACK and D-SACK blocks (RFC 2018, RFC 2883).
//!
//! Promises: never allocates after creation; never stores a byte outside `[RCV.NXT, RCV.NXT +
//! free)`, so out-of-order data always lies inside what the window could have offered; at most
//! [`MAX_OOO_RANGES`] ranges are tracked — a segment that would need another range is dropped and
//! reported (it was never SACKed, so dropping it is not reneging).
//!
//! Staging ([`RecvBuffer::stage`]) lets the input path verify a segment's checksum while copying
//! its payload into the ring, one pass instead of two: the bytes land in free space at RCV.NXT,
//! where nothing is readable, and become readable only through a later [`RecvBuffer::insert`]
//! of the same segment, which then skips its own copy. A segment that fails the checksum is
//! simply never inserted.

use crate::wire::{Checksum, SackBlock, SackBlocks, SeqNumber};

/// Out-of-order ranges tracked at once (Linux has no fixed limit, but bounds memory instead).
/// Every random loss in flight opens one range: 5 % loss on a 100 Mbit/s × 200 ms path keeps
/// about 100 open, and a segment that needs one more is dropped (so is everything after it
/// until a hole fills), which a sender sees as a burst of hundreds of losses. 256 ranges cost
/// 3 KiB per connection.
pub const MAX_OOO_RANGES: usize = 256;

#[derive(Clone, Copy, Debug, Default)]
struct OooRange {
    left: SeqNumber,
    right: SeqNumber,
    /// Recency stamp: RFC 2018 §4 puts the block holding the latest segment first.
    stamp: u32,
}

/// What inserting one segment did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InsertOutcome {
    /// In-order bytes made readable (RCV.NXT advanced by this much).
    pub advanced: usize,
    /// The segment (or part of it) was stored out of order.
    pub out_of_order: bool,
    /// The segment filled (part of) a hole, so stored out-of-order data became in order.
    pub filled_hole: bool,
    /// The segment was dropped: beyond the buffer, or no free out-of-order range.
    pub dropped: bool,
    /// A duplicate range to report as the first SACK block (RFC 2883 D-SACK).
    pub dsack: Option<SackBlock>,
}

/// Fixed ring of incoming bytes with bounded out-of-order tracking.
#[derive(Debug)]
pub struct RecvBuffer {
    buf: Box<[u8]>,
    head: usize,
    len: usize,
    ranges: [OooRange; MAX_OOO_RANGES],
    nranges: usize,
    stamp: u32,
    /// Bytes copied by [`RecvBuffer::stage`] into free space but not yet inserted:
    /// (their sequence number, ring position, length). Only ever used by the `insert` right after.
    staged: Option<Staged>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Staged {
    seq: SeqNumber,
    at: usize,
    len: usize,
}

impl RecvBuffer {
    pub fn new(capacity: usize) -> Self {
        Self::with_storage(vec![0u8; capacity].into_boxed_slice())
    }

    /// A buffer over `storage` (e.g. recycled from a closed connection, contents irrelevant: only
    /// bytes received from now on are ever read).
    pub fn with_storage(storage: Box<[u8]>) -> Self {
        RecvBuffer {
            buf: storage,
            head: 0,
            len: 0,
            ranges: [OooRange::default(); MAX_OOO_RANGES],
            nranges: 0,
            stamp: 0,
            staged: None,
        }
    }

    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// In-order bytes waiting for the application.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Space from RCV.NXT to the end of the buffer: the most the window may offer.
    pub fn free(&self) -> usize {
        self.buf.len() - self.len
    }

    pub fn has_out_of_order(&self) -> bool {
        self.nranges > 0
    }

    /// Copies in-order bytes into `out`; returns how many.
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len);
        if n == 0 {
            return 0;
        }
        let cap = self.buf.len();
        let first = n.min(cap - self.head);
        out[..first].copy_from_slice(&self.buf[self.head..self.head + first]);
        out[first..n].copy_from_slice(&self.buf[..n - first]);
        self.head = self.position(n);
        self.len -= n;
        self.rewind_if_empty();
        n
    }

    /// Lends the first contiguous run of in-order bytes (at most `max`; shorter where the ring
    /// wraps) to `consume`, which returns how many it used; those are removed, the rest stay.
    /// Lets the application process data in place instead of copying it out first.
    pub fn read_with(&mut self, max: usize, consume: impl FnOnce(&[u8]) -> usize) -> usize {
        let n = max.min(self.len);
        if n == 0 {
            return 0;
        }
        let cap = self.buf.len();
        let piece = n.min(cap - self.head);
        let used = consume(&self.buf[self.head..self.head + piece]).min(piece);
        self.head = self.position(used);
        self.len -= used;
        self.rewind_if_empty();
        used
    }

    /// The ring index `offset` bytes after the head, for `offset <= capacity`: the head is
    /// always below the capacity, so one compare wraps it (no division on the per-segment path).
    #[inline]
    fn position(&self, offset: usize) -> usize {
        debug_assert!(self.head < self.buf.len().max(1) && offset <= self.buf.len());
        let at = self.head + offset;
        if at >= self.buf.len() {
            at - self.buf.len()
        } else {
            at
        }
    }

    /// With nothing stored (in order or not), the ring may restart at offset 0, so small
    /// requests keep landing in the same cache-hot bytes instead of walking the whole ring.
    fn rewind_if_empty(&mut self) {
        if self.len == 0 && self.nranges == 0 {
            self.head = 0;
        }
    }

    /// Copies the in-order payload `data` starting at `seq` (= RCV.NXT) into free space and adds
    /// it to `sum` in the same pass. Nothing becomes readable: an `insert` of the same bytes
    /// commits them without copying again; any other call forgets them.
    ///
    /// Returns false, copying and summing nothing, when the bytes cannot be staged: empty, more
    /// than the free space, or out-of-order data is held (which staging could overwrite).
    pub fn stage(&mut self, seq: SeqNumber, data: &[u8], sum: &mut Checksum) -> bool {
        self.staged = None;
        if data.is_empty() || data.len() > self.free() || self.nranges > 0 {
            return false;
        }
        let cap = self.buf.len();
        let at = self.position(self.len);
        let first = data.len().min(cap - at);
        sum.copy_from(&mut self.buf[at..at + first], &data[..first]);
        if first < data.len() {
            sum.copy_from(&mut self.buf[..data.len() - first], &data[first..]);
        }
        self.staged = Some(Staged { seq, at, len: data.len() });
        true
    }

    /// Forgets staged bytes (their segment was dropped); the readable contents are unchanged.
    pub fn discard_staged(&mut self) {
        self.staged = None;
    }

    /// Stores segment data starting at `seq`, advancing `rcv_nxt` over whatever becomes in order.
    pub fn insert(&mut self, rcv_nxt: &mut SeqNumber, seq: SeqNumber, data: &[u8]) -> InsertOutcome {
        let staged = self.staged.take();
        // The fused receive path's usual segment: staged at the end of the in-order bytes, at
        // RCV.NXT, fitting, with nothing held out of order. Of `insert_general` only the commit
        // remains (no duplicate, no trim, no range, no copy, no hole to merge).
        let n = data.len();
        if let Some(s) = staged {
            let fits = n > 0 && n <= s.len && n <= self.free() && self.nranges == 0;
            if fits && seq == *rcv_nxt && s.seq == seq && s.at == self.position(self.len) {
                self.len += n;
                *rcv_nxt = seq + n as u32;
                return InsertOutcome { advanced: n, ..InsertOutcome::default() };
            }
        }
        self.insert_general(staged, rcv_nxt, seq, data)
    }

    /// `insert` for any segment; `staged` is what `stage` copied for it, if anything.
    fn insert_general(
        &mut self,
        staged: Option<Staged>,
        rcv_nxt: &mut SeqNumber,
        seq: SeqNumber,
        data: &[u8],
    ) -> InsertOutcome {
        let mut out = InsertOutcome::default();
        let end = seq + data.len() as u32;
        if data.is_empty() {
            return out;
        }
        if end - *rcv_nxt <= 0 {
            out.dsack = Some(SackBlock { left: seq, right: end });
            return out;
        }
        let (seq, data) = if seq - *rcv_nxt < 0 {
            out.dsack = Some(SackBlock { left: seq, right: *rcv_nxt });
            let skip = (*rcv_nxt - seq) as usize;
            (*rcv_nxt, &data[skip..])
        } else {
            (seq, data)
        };
        let off = (seq - *rcv_nxt) as usize;
        let room = self.free();
        if off >= room {
            out.dropped = true;
            return out;
        }
        let data = &data[..data.len().min(room - off)];
        let end = seq + data.len() as u32;
        if off > 0 {
            if self.ranges[..self.nranges].iter().any(|r| r.left - seq <= 0 && end - r.right <= 0) {
                out.dsack = Some(SackBlock { left: seq, right: end });
                return out;
            }
            if !self.add_range(seq, end) {
                out.dropped = true;
                return out;
            }
            out.out_of_order = true;
        }
        let at = self.position(self.len);
        let already_there =
            off == 0 && staged.is_some_and(|s| s.seq == seq && s.at == at && s.len >= data.len());
        if !already_there {
            self.copy_in(self.len + off, data);
        }
        if off == 0 {
            self.len += data.len();
            *rcv_nxt = end;
            out.advanced = data.len();
            out.filled_hole = self.merge_in_order(rcv_nxt, &mut out.advanced);
        }
        out
    }

    fn copy_in(&mut self, offset_from_head: usize, data: &[u8]) {
        let cap = self.buf.len();
        let start = self.position(offset_from_head);
        let first = data.len().min(cap - start);
        self.buf[start..start + first].copy_from_slice(&data[..first]);
        self.buf[..data.len() - first].copy_from_slice(&data[first..]);
    }

    /// Adds `[left, right)` merging with overlapping or adjacent ranges; false if no slot is free.
    fn add_range(&mut self, mut left: SeqNumber, mut right: SeqNumber) -> bool {
        let mut i = 0;
        let mut merged = false;
        while i < self.nranges {
            let r = self.ranges[i];
            if r.left - right <= 0 && left - r.right <= 0 {
                left = left.min(r.left);
                right = right.max(r.right);
                self.remove_range(i);
                merged = true;
            } else {
                i += 1;
            }
        }
        if !merged && self.nranges == MAX_OOO_RANGES {
            return false;
        }
        self.stamp = self.stamp.wrapping_add(1);
        self.ranges[self.nranges] = OooRange { left, right, stamp: self.stamp };
        self.nranges += 1;
        true
    }

    fn remove_range(&mut self, i: usize) {
        self.ranges[i] = self.ranges[self.nranges - 1];
        self.nranges -= 1;
    }

    /// Absorbs ranges that now touch RCV.NXT; true if any did.
    fn merge_in_order(&mut self, rcv_nxt: &mut SeqNumber, advanced: &mut usize) -> bool {
        let mut any = false;
        loop {
            let Some(i) = self.ranges[..self.nranges].iter().position(|r| r.left - *rcv_nxt <= 0) else {
                return any;
            };
            let r = self.ranges[i];
            self.remove_range(i);
            any = true;
            let gain = r.right - *rcv_nxt;
            if gain > 0 {
                self.len += gain as usize;
                *advanced += gain as usize;
                *rcv_nxt = r.right;
            }
        }
    }

    /// Fills `out` with an optional D-SACK block followed by the out-of-order ranges, most recent
    /// first, at most `max` blocks in total (RFC 2018 §4, RFC 2883 §4).
    pub fn sack_blocks(&self, dsack: Option<SackBlock>, max: usize, out: &mut SackBlocks) {
        let mut n = 0;
        if let Some(d) = dsack {
            if n < max && out.push(d) {
                n += 1;
            }
        }
        let mut order = [0usize; MAX_OOO_RANGES];
        for (i, slot) in order.iter_mut().enumerate().take(self.nranges) {
            *slot = i;
        }
        let order = &mut order[..self.nranges];
        order.sort_by_key(|&i| core::cmp::Reverse(self.ranges[i].stamp));
        for &i in order.iter() {
            if n >= max {
                break;
            }
            let r = self.ranges[i];
            if out.push(SackBlock { left: r.left, right: r.right }) {
                n += 1;
            }
        }
    }

    /// Gives up the storage (TIME-WAIT keeps no buffers) so it can be recycled.
    pub fn release(&mut self) -> Box<[u8]> {
        self.head = 0;
        self.len = 0;
        self.nranges = 0;
        self.staged = None;
        core::mem::take(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `insert`'s committed-stage shortcut against `insert_general`: two buffers take the
        /// same stages, inserts (in order, ahead, behind, overlapping, too long), reads and
        /// discards; the outcomes, RCV.NXT and the whole buffers (bytes included) stay equal.
        #[test]
        fn staged_commit_matches_the_general_insert(
            cap in 1usize..64,
            start in any::<u32>(),
            ops in prop::collection::vec(
                (0u8..4, prop_oneof![Just(0i32), -20i32..40], 0usize..40, any::<bool>(), any::<u8>()),
                1..60,
            ),
        ) {
            let (mut a, mut b) = (RecvBuffer::new(cap), RecvBuffer::new(cap));
            let (mut na, mut nb) = (SeqNumber(start), SeqNumber(start));
            for (kind, at, len, stage, fill) in ops {
                let data: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
                let seq = na + at as u32;
                match kind {
                    0 => {
                        let mut out = [0u8; 64];
                        let n = len.min(out.len());
                        prop_assert_eq!(a.read(&mut out[..n]), b.read(&mut out[..n]));
                    }
                    1 => {
                        a.discard_staged();
                        b.discard_staged();
                    }
                    _ => {
                        if stage {
                            let (mut sa, mut sb) = (Checksum::new(), Checksum::new());
                            // Stage exactly what arrives, or (sometimes) other bytes at RCV.NXT.
                            let staged_seq = if kind == 2 { seq } else { na };
                            prop_assert_eq!(a.stage(staged_seq, &data, &mut sa), b.stage(staged_seq, &data, &mut sb));
                        }
                        let oa = a.insert(&mut na, seq, &data);
                        let staged = b.staged.take();
                        let ob = b.insert_general(staged, &mut nb, seq, &data);
                        prop_assert_eq!(oa, ob);
                        prop_assert_eq!(na, nb);
                    }
                }
                prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
            }
        }
    }

    fn blocks(b: &RecvBuffer, dsack: Option<SackBlock>) -> Vec<(u32, u32)> {
        let mut out = SackBlocks::new();
        b.sack_blocks(dsack, 4, &mut out);
        out.as_slice().iter().map(|s| (s.left.0, s.right.0)).collect()
    }

    #[test]
    fn in_order_then_read() {
        let mut b = RecvBuffer::new(8);
        let mut nxt = SeqNumber(u32::MAX - 1);
        let o = b.insert(&mut nxt, SeqNumber(u32::MAX - 1), b"abcd");
        assert_eq!(o.advanced, 4);
        assert_eq!(nxt, SeqNumber(2));
        let mut out = [0u8; 3];
        assert_eq!(b.read(&mut out), 3);
        assert_eq!(&out, b"abc");
        assert_eq!(b.free(), 7);
    }

    #[test]
    fn read_with_lends_contiguous_pieces_and_consumes_only_what_was_used() {
        let mut b = RecvBuffer::new(8);
        let mut nxt = SeqNumber(0);
        b.insert(&mut nxt, SeqNumber(0), b"abcdef");
        let mut out = [0u8; 4];
        b.read(&mut out);
        b.insert(&mut nxt, SeqNumber(6), b"ghij"); // wraps: "gh" at the end, "ij" at the start
        assert_eq!(
            b.read_with(100, |d| {
                assert_eq!(d, b"efgh");
                1 // peek most of it, consume one byte
            }),
            1
        );
        assert_eq!(
            b.read_with(2, |d| {
                assert_eq!(d, b"fg");
                0
            }),
            0
        );
        assert_eq!(b.read_with(100, |d| d.len() + 9), 3);
        assert_eq!(
            b.read_with(100, |d| {
                assert_eq!(d, b"ij");
                2
            }),
            2
        );
        assert!(b.is_empty());
        assert_eq!(b.read_with(100, |_| unreachable!("nothing to read")), 0);
    }

    #[test]
    fn out_of_order_is_sacked_and_merged_when_the_hole_fills() {
        let mut b = RecvBuffer::new(64);
        let mut nxt = SeqNumber(100);
        let o = b.insert(&mut nxt, SeqNumber(110), b"klmno");
        assert!(o.out_of_order);
        b.insert(&mut nxt, SeqNumber(120), b"uv");
        assert_eq!(blocks(&b, None), vec![(120, 122), (110, 115)]);
        let o = b.insert(&mut nxt, SeqNumber(100), b"abcdefghij");
        assert!(o.filled_hole);
        assert_eq!(o.advanced, 15);
        assert_eq!(nxt, SeqNumber(115));
        assert_eq!(blocks(&b, None), vec![(120, 122)]);
        let mut out = [0u8; 32];
        assert_eq!(b.read(&mut out), 15);
        assert_eq!(&out[..15], b"abcdefghijklmno");
    }

    #[test]
    fn duplicates_produce_dsack() {
        let mut b = RecvBuffer::new(64);
        let mut nxt = SeqNumber(0);
        b.insert(&mut nxt, SeqNumber(0), b"abcd");
        let o = b.insert(&mut nxt, SeqNumber(0), b"ab");
        assert_eq!(o.dsack, Some(SackBlock { left: SeqNumber(0), right: SeqNumber(2) }));
        b.insert(&mut nxt, SeqNumber(10), b"xyz");
        let o = b.insert(&mut nxt, SeqNumber(10), b"xy");
        assert_eq!(o.dsack, Some(SackBlock { left: SeqNumber(10), right: SeqNumber(12) }));
        assert_eq!(blocks(&b, o.dsack), vec![(10, 12), (10, 13)]);
    }

    #[test]
    fn data_beyond_the_buffer_is_trimmed_or_dropped() {
        let mut b = RecvBuffer::new(4);
        let mut nxt = SeqNumber(0);
        let o = b.insert(&mut nxt, SeqNumber(0), b"abcdef");
        assert_eq!(o.advanced, 4);
        let o = b.insert(&mut nxt, SeqNumber(4), b"ef");
        assert!(o.dropped);
    }

    #[test]
    fn range_slots_are_bounded() {
        let mut b = RecvBuffer::new(1 << 16);
        let mut nxt = SeqNumber(0);
        for i in 0..MAX_OOO_RANGES as u32 {
            assert!(b.insert(&mut nxt, SeqNumber(10 + i * 10), b"x").out_of_order);
        }
        assert!(b.insert(&mut nxt, SeqNumber(5000), b"x").dropped);
        // adjacent data still merges into an existing range
        assert!(b.insert(&mut nxt, SeqNumber(11), b"y").out_of_order);
    }

    fn contents(b: &mut RecvBuffer) -> Vec<u8> {
        let mut out = vec![0u8; b.len()];
        b.read(&mut out);
        out
    }

    #[test]
    fn staged_bytes_across_the_wrap_become_readable_only_through_insert() {
        let mut b = RecvBuffer::new(8);
        let mut nxt = SeqNumber(0);
        b.insert(&mut nxt, SeqNumber(0), b"abcdef");
        let mut out = [0u8; 5];
        b.read(&mut out); // head at 5, "f" readable, free space wraps
        let mut sum = Checksum::new();
        assert!(b.stage(nxt, b"ghijk", &mut sum));
        let mut reference = Checksum::new();
        reference.add_bytes(b"ghijk");
        assert_eq!(sum.finish(), reference.finish(), "staging sums what it copies");
        assert_eq!(b.len(), 1, "staged bytes are not readable");
        let o = b.insert(&mut nxt, SeqNumber(6), b"ghijk");
        assert_eq!(o.advanced, 5);
        assert_eq!(contents(&mut b), b"fghijk");
    }

    #[test]
    fn discarded_staging_is_never_committed() {
        let mut b = RecvBuffer::new(16);
        let mut nxt = SeqNumber(100);
        assert!(b.stage(nxt, b"wrong", &mut Checksum::new()));
        b.discard_staged();
        assert_eq!(b.len(), 0);
        b.insert(&mut nxt, SeqNumber(100), b"right");
        assert_eq!(contents(&mut b), b"right");
        // A stage at another sequence number does not stand in for the insert either.
        assert!(b.stage(SeqNumber(1), b"wrong", &mut Checksum::new()));
        b.insert(&mut nxt, SeqNumber(105), b"again");
        assert_eq!(contents(&mut b), b"again");
    }

    #[test]
    fn staging_refuses_when_out_of_order_data_or_too_little_room() {
        let mut b = RecvBuffer::new(8);
        let mut nxt = SeqNumber(0);
        let mut sum = Checksum::new();
        assert!(!b.stage(nxt, b"123456789", &mut sum));
        assert!(!b.stage(nxt, b"", &mut sum));
        b.insert(&mut nxt, SeqNumber(2), b"cd");
        assert!(!b.stage(nxt, b"xy", &mut sum), "would overwrite held out-of-order bytes");
        assert_eq!(sum.finish(), Checksum::new().finish(), "nothing summed when refused");
        b.insert(&mut nxt, SeqNumber(0), b"ab");
        assert_eq!(contents(&mut b), b"abcd");
    }
}
