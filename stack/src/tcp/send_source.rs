//! External send data: memory the application lends the send buffer instead of copying it in.
//!
//! **Owns** the [`SendSource`] trait (a read-only byte region with an owner, e.g. a file
//! mapping) and [`ExternalChunk`] (a checked range of one source). The send buffer keeps an
//! `Arc` of the source for as long as any of the chunk's bytes are unacknowledged, reads the bytes
//! straight into NIC frames (the one copy, with the checksum summed on the way) and reads them
//! again for retransmissions.
//!
//! **Promises:** a chunk's range is checked once, when it is made; afterwards every read of it
//! is in bounds. The engine asks [`SendSource::is_intact`] after each copy and never lets bytes
//! from a source that is no longer intact leave as data (the segment becomes a RST instead, see
//! `engine/transmit.rs`).
//!
//! **Must not:** do I/O. `bytes` must be a plain memory read; a source whose memory may be
//! missing (a file mapping that can page-fault to disk) must make sure it is resident before it
//! is lent, or the engine's thread waits for the disk.

use core::fmt;
use core::ops::Range;
use std::sync::Arc;

/// Read-only memory the send buffer may read at any time while it holds the source.
///
/// `Send + Sync` because an engine may be built on one thread and run on another.
pub trait SendSource: Send + Sync {
    /// The whole region. Must return the same address and length every time.
    fn bytes(&self) -> &[u8];

    /// False once the region may no longer hold its real content (for a file mapping: the file
    /// was truncated under it and the missing pages now read as zeros). Checked after every
    /// copy out of the region; the default is a region that cannot go bad.
    fn is_intact(&self) -> bool {
        true
    }
}

/// `len` bytes of `source` starting at `offset`, in range by construction.
#[derive(Clone)]
pub struct ExternalChunk {
    source: Arc<dyn SendSource>,
    offset: usize,
    len: usize,
}

impl ExternalChunk {
    /// The bytes `range` of `source`; `None` when the range is reversed or leaves the region.
    pub fn new(source: Arc<dyn SendSource>, range: Range<usize>) -> Option<Self> {
        if range.start > range.end || range.end > source.bytes().len() {
            return None;
        }
        Some(ExternalChunk { source, offset: range.start, len: range.end - range.start })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offset of the first byte within the source.
    pub fn offset(&self) -> usize {
        self.offset
    }

    pub fn source(&self) -> &Arc<dyn SendSource> {
        &self.source
    }

    /// Drops the first `n` bytes (e.g. the part a write took).
    pub fn advance(&mut self, n: usize) {
        let n = n.min(self.len);
        self.offset += n;
        self.len -= n;
    }

    /// The chunk's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.source.bytes()[self.offset..self.offset + self.len]
    }
}

impl fmt::Debug for ExternalChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalChunk")
            .field("source", &self.source.bytes().as_ptr())
            .field("offset", &self.offset)
            .field("len", &self.len)
            .finish()
    }
}

/// A source over owned bytes (tests, and data an application already holds in memory).
impl SendSource for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked_once_and_advance_clamps() {
        let src: Arc<dyn SendSource> = Arc::new(b"hello world".to_vec());
        assert!(ExternalChunk::new(src.clone(), 3..12).is_none());
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = 5..4;
        assert!(ExternalChunk::new(src.clone(), reversed).is_none());
        let mut c = ExternalChunk::new(src, 6..11).unwrap();
        assert_eq!(c.bytes(), b"world");
        c.advance(2);
        assert_eq!((c.offset(), c.bytes()), (8, &b"rld"[..]));
        c.advance(100);
        assert!(c.is_empty());
    }
}
