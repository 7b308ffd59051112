//! The UMEM: the frame memory shared with the kernel, and the ledger of where every frame is.
//!
//! Owns: one anonymous mapping of `frame_count × frame_size` bytes (2 MiB huge pages when the
//! system has them reserved, ordinary pages otherwise) and a per-frame ownership table. Promises:
//! every frame is in exactly one [`FramePlace`] at all times, per-place counts always sum to
//! the frame count, and a frame address that the kernel returns from a place it was never given
//! to is refused (counted) instead of being handed out twice. Must not: allocate after creation.

use std::ptr::NonNull;

use super::error::AfXdpError;

const HUGE_PAGE: usize = 2 << 20;

/// The frame memory, unmapped on drop.
#[derive(Debug)]
pub(crate) struct UmemArea {
    base: NonNull<u8>,
    len: usize,
    frame_size: u32,
    huge_pages: bool,
}

impl UmemArea {
    /// Maps `frame_count` frames of `frame_size` bytes, trying huge pages first when asked.
    pub(crate) fn new(frame_size: u32, frame_count: u32, try_huge: bool) -> Result<Self, AfXdpError> {
        let len = frame_size as usize * frame_count as usize;
        let base_flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE;
        let attempts: &[(i32, bool)] = if try_huge && len.is_multiple_of(HUGE_PAGE) {
            &[(libc::MAP_HUGETLB, true), (0, false)]
        } else {
            &[(0, false)]
        };
        for &(extra, huge_pages) in attempts {
            // SAFETY: anonymous mapping, result checked.
            let addr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    base_flags | extra,
                    -1,
                    0,
                )
            };
            if addr != libc::MAP_FAILED {
                let base = NonNull::new(addr.cast::<u8>()).expect("mmap returned null");
                return Ok(UmemArea { base, len, frame_size, huge_pages });
            }
        }
        Err(AfXdpError::last_os("mapping the UMEM"))
    }

    pub(crate) fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }
    pub(crate) fn len(&self) -> usize {
        self.len
    }
    pub(crate) fn huge_pages(&self) -> bool {
        self.huge_pages
    }

    /// The bytes `[addr, addr + len)` of the UMEM, if they lie inside one frame.
    ///
    /// # Safety
    /// The caller must own the frame (per the ledger) and hold no other reference into it.
    pub(crate) unsafe fn frame_mut(&mut self, addr: u64, len: usize) -> Option<&mut [u8]> {
        let start = usize::try_from(addr).ok()?;
        let frame_end = (start / self.frame_size as usize + 1) * self.frame_size as usize;
        let end = start.checked_add(len)?;
        if end > frame_end || end > self.len {
            return None;
        }
        // SAFETY: in bounds (checked above); exclusivity is the caller's promise.
        Some(unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr().add(start), len) })
    }
}

impl Drop for UmemArea {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` came from our own successful mmap.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// Where a UMEM frame is. Kernel-owned places are split further by ring occupancy in
/// [`FrameAccounting`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FramePlace {
    /// On our transmit free list.
    Free = 0,
    /// Given to the kernel for receive: in the fill ring, in flight, or in the rx ring.
    RxPosted = 1,
    /// Lent to the engine inside a receive or transmit callback.
    Lent = 2,
    /// Given to the kernel for transmit: in the tx ring, in flight, or in the completion ring.
    TxPosted = 3,
}

const PLACES: usize = 4;

/// Per-frame ownership table with a count per place.
#[derive(Debug)]
pub(crate) struct FrameLedger {
    places: Box<[FramePlace]>,
    counts: [u32; PLACES],
    frame_shift: u32,
    /// Addresses the kernel returned that we had not given it (never expected; counted).
    pub(crate) invalid_returns: u64,
}

impl FrameLedger {
    /// All frames start `Free`.
    pub(crate) fn new(frame_size: u32, frame_count: u32) -> Self {
        let mut counts = [0; PLACES];
        counts[FramePlace::Free as usize] = frame_count;
        FrameLedger {
            places: vec![FramePlace::Free; frame_count as usize].into_boxed_slice(),
            counts,
            frame_shift: frame_size.trailing_zeros(),
            invalid_returns: 0,
        }
    }

    /// The base address of the frame holding `addr`.
    pub(crate) fn frame_base(&self, addr: u64) -> u64 {
        (addr >> self.frame_shift) << self.frame_shift
    }

    /// Moves the frame at `addr` from `from` to `to`; refuses (and counts) if it is not in `from`.
    pub(crate) fn transfer(&mut self, addr: u64, from: FramePlace, to: FramePlace) -> bool {
        let index = (addr >> self.frame_shift) as usize;
        match self.places.get_mut(index) {
            Some(place) if *place == from => {
                *place = to;
                self.counts[from as usize] -= 1;
                self.counts[to as usize] += 1;
                true
            }
            _ => {
                self.invalid_returns += 1;
                false
            }
        }
    }

    pub(crate) fn count(&self, place: FramePlace) -> u32 {
        self.counts[place as usize]
    }

    pub(crate) fn total(&self) -> u32 {
        self.places.len() as u32
    }

    /// Recounts the table and compares it with the running counts.
    pub(crate) fn recount_matches(&self) -> bool {
        let mut counts = [0u32; PLACES];
        for place in self.places.iter() {
            counts[*place as usize] += 1;
        }
        counts == self.counts && counts.iter().sum::<u32>() == self.total()
    }
}

/// A snapshot of where every UMEM frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameAccounting {
    pub total: u32,
    /// On the transmit free list.
    pub free: u32,
    /// In the fill ring, waiting for the kernel to receive into them.
    pub fill_ring: u32,
    /// Taken from the fill ring by the kernel, not yet in the rx ring.
    pub kernel_rx: u32,
    /// In the rx ring, waiting for [`crate::afxdp::AfXdpDevice`] to receive them.
    pub rx_ring: u32,
    /// Lent to the engine (only non-zero inside a callback).
    pub lent: u32,
    /// Written to the tx ring (published or not), not yet taken by the kernel.
    pub tx_ring: u32,
    /// Taken by the kernel for transmit, not yet completed.
    pub kernel_tx: u32,
    /// In the completion ring, waiting to return to the free list.
    pub completion_ring: u32,
}

impl FrameAccounting {
    /// The sum over all places; equals `total` when nothing leaked.
    pub fn placed(&self) -> u32 {
        self.free
            + self.fill_ring
            + self.kernel_rx
            + self.rx_ring
            + self.lent
            + self.tx_ring
            + self.kernel_tx
            + self.completion_ring
    }
}

/// The frame accounting found a frame in no place or in two.
#[derive(Debug, Clone, thiserror::Error)]
#[error("UMEM frame accounting is broken: {reason} ({snapshot:?})")]
pub struct AccountingError {
    pub reason: &'static str,
    pub snapshot: FrameAccounting,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfers_keep_counts_consistent_and_refuse_strangers() {
        let mut ledger = FrameLedger::new(2048, 8);
        assert!(ledger.transfer(0, FramePlace::Free, FramePlace::RxPosted));
        assert!(ledger.transfer(2048 * 3, FramePlace::Free, FramePlace::TxPosted));
        // A frame returned from a place it is not in, or outside the UMEM, is refused.
        assert!(!ledger.transfer(2048 * 3, FramePlace::RxPosted, FramePlace::Lent));
        assert!(!ledger.transfer(2048 * 8, FramePlace::Free, FramePlace::Lent));
        assert_eq!(ledger.invalid_returns, 2);
        assert_eq!(ledger.count(FramePlace::Free), 6);
        assert_eq!(ledger.frame_base(2048 * 5 + 256), 2048 * 5);
        assert!(ledger.recount_matches());
    }
}
