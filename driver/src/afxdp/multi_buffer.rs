//! AF_XDP multi-buffer (`XDP_USE_SG`, Linux 6.6+): frames larger than one UMEM chunk.
//!
//! The kernel accepts UMEM chunks of at most a page, so a 9,000-byte frame spans three. Transmit
//! keeps the [`linerate_stack::device::Device`] contract of one contiguous buffer per frame: a
//! frame slot is several *adjacent* chunks of the one UMEM mapping, the engine writes the frame
//! into it contiguously, and [`chunk_descriptors`] posts one descriptor per chunk, all but the
//! last flagged `XDP_PKT_CONTD` (copy mode then builds one skb with page fragments). Receive is
//! the other way round: the kernel writes a long frame into as many fill-ring chunks as it needs,
//! each after its own headroom, so the parts are not adjacent; [`Gather`] copies them into one
//! buffer of the largest frame before the engine sees it (a copy per received byte, paid only
//! by frames longer than a chunk).
//!
//! Promises: no allocation after creation; a frame whose parts exceed the buffer, or whose
//! part could not be read, is dropped whole (the caller counts it). Must not: hand out a frame
//! before its last part arrived.

/// Descriptors of a `len`-byte frame written at `base`, `chunk` bytes per descriptor.
pub(crate) fn chunk_descriptors(base: u64, len: usize, chunk: u32) -> impl Iterator<Item = libc::xdp_desc> {
    let chunk = chunk as usize;
    (0..len.div_ceil(chunk)).map(move |i| {
        let offset = i * chunk;
        let part = (len - offset).min(chunk);
        let more = offset + part < len;
        libc::xdp_desc {
            addr: base + offset as u64,
            len: part as u32,
            options: if more { libc::XDP_PKT_CONTD } else { 0 },
        }
    })
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
        let d: Vec<_> = chunk_descriptors(16384, 9014, 4096).collect();
        let parts: Vec<_> = d.iter().map(|d| (d.addr, d.len, d.options)).collect();
        assert_eq!(parts, [(16384, 4096, 1), (20480, 4096, 1), (24576, 822, 0)]);
        let one: Vec<_> = chunk_descriptors(0, 60, 4096).map(|d| (d.len, d.options)).collect();
        assert_eq!(one, [(60, 0)]);
        let exact: Vec<_> = chunk_descriptors(0, 8192, 4096).map(|d| (d.len, d.options)).collect();
        assert_eq!(exact, [(4096, 1), (4096, 0)]);
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
