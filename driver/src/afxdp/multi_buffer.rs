//! AF_XDP multi-buffer (`XDP_USE_SG`, Linux 6.6+): frames larger than one UMEM chunk.
//!
//! The kernel accepts UMEM chunks of at most a page, so a 9,000-byte frame spans three. Transmit
//! keeps the [`linerate_stack::device::Device`] contract of one contiguous buffer per frame: a
//! frame slot is several *adjacent* chunks of the one UMEM mapping, the engine writes the frame
//! into it contiguously, and [`TxLayout::descriptors`] posts one descriptor per chunk, all but
//! the last flagged `XDP_PKT_CONTD` (copy mode then builds one skb with page fragments). With TX
//! metadata every chunk must keep `tx_metadata_len` bytes free at its start, so
//! [`TxLayout::spread`] moves the parts after the first forward by that much per chunk (a
//! `memmove` of the bytes past the first chunk, in cache, instead of a checksum of every byte on
//! both ends). Receive is the other way round: the kernel writes a long frame into as many
//! fill-ring chunks as it needs, each after its own headroom, so the parts are not adjacent;
//! [`Gather`] copies them into one buffer of the largest frame before the engine sees it (a copy
//! per received byte, paid only by frames longer than a chunk).
//!
//! Promises: no allocation after creation; a frame whose parts exceed the buffer, or whose
//! part could not be read, is dropped whole (the caller counts it). Must not: hand out a frame
//! before its last part arrived.

/// Where a transmitted frame lies in its slot: `headroom` bytes at the start of every chunk
/// stay free (the TX metadata room the kernel requires in front of every descriptor once the
/// UMEM has `tx_metadata_len`; 0 without metadata), and each chunk carries the next `chunk -
/// headroom` bytes of the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TxLayout {
    chunk: u32,
    headroom: u32,
}

impl TxLayout {
    pub(crate) fn new(chunk: u32, headroom: u32) -> Self {
        debug_assert!(headroom < chunk);
        TxLayout { chunk, headroom }
    }

    /// Bytes in front of the frame's first byte in its first chunk (where the metadata goes).
    pub(crate) fn headroom(&self) -> usize {
        self.headroom as usize
    }

    /// Frame bytes one chunk carries.
    fn part(&self) -> usize {
        (self.chunk - self.headroom) as usize
    }

    /// Descriptors (chunks) a `len`-byte frame takes.
    pub(crate) fn descriptors_for(&self, len: usize) -> u32 {
        len.div_ceil(self.part()) as u32
    }

    /// Whether frames of up to `max_len` bytes fit a slot of `slot` bytes, both as written
    /// (contiguously after the headroom) and once spread over the chunks.
    pub(crate) fn fits(&self, slot: u32, max_len: usize) -> bool {
        let spread = self.descriptors_for(max_len) as usize * self.chunk as usize;
        self.headroom() + max_len <= slot as usize && spread <= slot as usize
    }

    /// Bytes of the slot a `len`-byte frame touches, from the slot start (as written, and once
    /// spread: both end at the same place or before this).
    pub(crate) fn slot_len(&self, len: usize) -> usize {
        let parts = self.descriptors_for(len).max(1) as usize;
        (parts - 1) * self.chunk as usize + self.headroom() + (len - (parts - 1) * self.part())
    }

    /// Moves a frame written contiguously at `headroom` in `slot` so that part `i` starts
    /// `headroom` bytes into chunk `i` (nothing moves without headroom or beyond one chunk).
    /// Later parts move first, so no part is overwritten before it moved.
    pub(crate) fn spread(&self, slot: &mut [u8], len: usize) {
        if self.headroom == 0 {
            return;
        }
        let (chunk, part, h) = (self.chunk as usize, self.part(), self.headroom());
        for i in (1..self.descriptors_for(len) as usize).rev() {
            let n = (len - i * part).min(part);
            let from = h + i * part;
            slot.copy_within(from..from + n, i * chunk + h);
        }
    }

    /// Descriptors of a `len`-byte frame in the slot at `base` (after [`TxLayout::spread`]), all
    /// but the last flagged `XDP_PKT_CONTD`; the first also carries `first_options`.
    pub(crate) fn descriptors(
        &self,
        base: u64,
        len: usize,
        first_options: u32,
    ) -> impl Iterator<Item = libc::xdp_desc> {
        let (chunk, part, h) = (u64::from(self.chunk), self.part(), u64::from(self.headroom));
        (0..self.descriptors_for(len) as usize).map(move |i| {
            let offset = i * part;
            let this = (len - offset).min(part);
            let more = offset + this < len;
            let mut options = if more { libc::XDP_PKT_CONTD } else { 0 };
            if i == 0 {
                options |= first_options;
            }
            libc::xdp_desc { addr: base + i as u64 * chunk + h, len: this as u32, options }
        })
    }
}

/// What [`Gather::push`] made of a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GatherStep {
    /// More parts follow.
    Pending,
    /// The frame is whole: [`Gather::frame_mut`] holds `len` bytes.
    Complete(usize),
    /// The frame ended and was dropped (too long, or a part was unreadable).
    Dropped,
}

/// The buffer one received multi-buffer frame is assembled in.
#[derive(Debug)]
pub(crate) struct Gather {
    buf: Box<[u8]>,
    len: usize,
    /// A frame is being assembled (its first part arrived, its last has not).
    active: bool,
    /// The frame being assembled will be dropped at its last part.
    dropping: bool,
}

impl Gather {
    /// A buffer for frames of up to `max_frame_len` bytes (0 when multi-buffer is off).
    pub(crate) fn new(max_frame_len: usize) -> Self {
        Gather { buf: vec![0; max_frame_len].into_boxed_slice(), len: 0, active: false, dropping: false }
    }

    /// Whether a frame is half assembled (its next part must come here too).
    pub(crate) fn active(&self) -> bool {
        self.active
    }

    /// Appends one part (`None`: it could not be read); `more` is its `XDP_PKT_CONTD` flag.
    pub(crate) fn push(&mut self, part: Option<&[u8]>, more: bool) -> GatherStep {
        self.active = true;
        match part {
            Some(bytes) if !self.dropping && self.len + bytes.len() <= self.buf.len() => {
                self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
                self.len += bytes.len();
            }
            _ => self.dropping = true,
        }
        if more {
            return GatherStep::Pending;
        }
        let step = if self.dropping { GatherStep::Dropped } else { GatherStep::Complete(self.len) };
        (self.len, self.active, self.dropping) = (0, false, false);
        step
    }

    /// The assembled frame after [`GatherStep::Complete`]`(len)`.
    pub(crate) fn frame_mut(&mut self, len: usize) -> &mut [u8] {
        &mut self.buf[..len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_cover_the_frame_and_chain_all_but_the_last() {
        let plain = TxLayout::new(4096, 0);
        let d: Vec<_> = plain.descriptors(16384, 9014, 0).map(|d| (d.addr, d.len, d.options)).collect();
        assert_eq!(d, [(16384, 4096, 1), (20480, 4096, 1), (24576, 822, 0)]);
        let one: Vec<_> = plain.descriptors(0, 60, 0).map(|d| (d.len, d.options)).collect();
        assert_eq!(one, [(60, 0)]);
        let exact: Vec<_> = plain.descriptors(0, 8192, 0).map(|d| (d.len, d.options)).collect();
        assert_eq!(exact, [(4096, 1), (4096, 0)]);
    }

    #[test]
    fn with_headroom_every_chunk_keeps_it_and_only_the_first_carries_the_metadata_flag() {
        let meta = libc::XDP_TX_METADATA;
        let layout = TxLayout::new(4096, 16);
        let d: Vec<_> = layout.descriptors(16384, 9014, meta).map(|d| (d.addr, d.len, d.options)).collect();
        let contd = libc::XDP_PKT_CONTD;
        assert_eq!(d, [(16400, 4080, contd | meta), (20496, 4080, contd), (24592, 854, 0)]);
        for desc in layout.descriptors(16384, 9014, meta) {
            // The kernel's rule for every descriptor: `tx_metadata_len` bytes before it, and it
            // ends inside the same chunk.
            let offset = desc.addr % 4096;
            assert!(offset >= 16 && offset + u64::from(desc.len) <= 4096);
        }
        let single = TxLayout::new(2048, 16);
        let one: Vec<_> = single.descriptors(2048, 1514, meta).map(|d| (d.addr, d.len, d.options)).collect();
        assert_eq!(one, [(2064, 1514, meta)]);
        assert!(single.fits(2048, 1514 + 14) && single.fits(2048, 2032) && !single.fits(2048, 2033));
        assert!(
            layout.fits(16384, 9014) && layout.fits(16384, 4 * 4080) && !layout.fits(16384, 4 * 4080 + 1)
        );
        assert!(!layout.fits(8192, 8178 + 14), "MTU 8178 needs the whole 8 KiB slot");
    }

    #[test]
    fn spreading_puts_each_part_where_its_descriptor_points() {
        let layout = TxLayout::new(4096, 16);
        for len in [60, 4080, 4081, 8160, 9014, 16320] {
            let frame: Vec<u8> = (0..len).map(|i| (i * 31 + i / 4096) as u8).collect();
            let mut slot = vec![0xeeu8; 16384];
            assert!(layout.slot_len(len) <= slot.len() && layout.headroom() + len <= slot.len());
            slot[16..16 + len].copy_from_slice(&frame);
            layout.spread(&mut slot, len);
            let mut gathered = Vec::new();
            for d in layout.descriptors(0, len, 0) {
                gathered.extend_from_slice(&slot[d.addr as usize..d.addr as usize + d.len as usize]);
            }
            assert_eq!(gathered, frame, "len {len}");
            let last = layout.descriptors(0, len, 0).last().unwrap();
            assert_eq!(layout.slot_len(len), (last.addr + u64::from(last.len)) as usize);
        }
        // Without headroom nothing moves.
        let mut slot: Vec<u8> = (0..16384).map(|i| i as u8).collect();
        let before = slot.clone();
        TxLayout::new(4096, 0).spread(&mut slot, 9014);
        assert_eq!(slot, before);
    }

    #[test]
    fn gathers_parts_and_drops_whole_frames_that_overflow_or_break() {
        let mut g = Gather::new(10);
        assert_eq!(g.push(Some(b"abcd"), true), GatherStep::Pending);
        assert!(g.active());
        assert_eq!(g.push(Some(b"efg"), false), GatherStep::Complete(7));
        assert_eq!(g.frame_mut(7), b"abcdefg");
        assert!(!g.active());
        // Too long: dropped at its last part, and the next frame starts clean.
        assert_eq!(g.push(Some(b"abcdefgh"), true), GatherStep::Pending);
        assert_eq!(g.push(Some(b"ijk"), true), GatherStep::Pending);
        assert_eq!(g.push(Some(b"l"), false), GatherStep::Dropped);
        assert_eq!(g.push(None, true), GatherStep::Pending);
        assert_eq!(g.push(Some(b"x"), false), GatherStep::Dropped);
        assert_eq!(g.push(Some(b"xy"), false), GatherStep::Complete(2));
    }
}
