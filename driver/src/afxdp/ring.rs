//! Producer and consumer cursors over the four AF_XDP rings (fill, completion, rx, tx).
//!
//! Owns: one mmapped ring each (unmapped on drop). Each ring is a power-of-two array of
//! descriptors plus a producer index, a consumer index and a flags word shared with the kernel.
//! Only one side ever writes each index, so the protocol is: the writer fills descriptors, then
//! publishes the new producer index with `Release`; the reader observes it with `Acquire` before
//! reading the descriptors; the consumer likewise publishes with `Release` after it is done with
//! them. We cache the other side's index and only re-read it when the cache says the ring looks
//! full (producer) or empty (consumer), so a burst touches the shared cache line once.
//!
//! Promises: no method blocks, allocates or makes a syscall; callers batch (reserve/submit,
//! peek/release). Must not: hand out more slots than the cached view proves free or filled.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, Ordering};

/// A shared-memory mapping of one ring, unmapped on drop.
#[derive(Debug)]
struct Mapping {
    addr: NonNull<u8>,
    len: usize,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `addr`/`len` came from a successful mmap that nothing else unmaps.
        unsafe { libc::munmap(self.addr.as_ptr().cast(), self.len) };
    }
}

/// The shared part of a ring: pointers into the mapping, and its geometry.
#[derive(Debug)]
struct RingMemory<T> {
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    descs: NonNull<T>,
    size: u32,
    _mapping: Mapping,
}

impl<T: Copy> RingMemory<T> {
    /// Maps the ring of `size` entries at page offset `pgoff` of socket `fd`.
    fn map(fd: i32, pgoff: u64, size: u32, off: &libc::xdp_ring_offset) -> io::Result<Self> {
        let len = off.desc as usize + size as usize * std::mem::size_of::<T>();
        // SAFETY: mapping a kernel ring of an AF_XDP socket; the result is checked below.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff as libc::off_t,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = addr.cast::<u8>();
        let at = |o: u64| {
            // SAFETY: the kernel reports offsets inside the mapping it created for us.
            NonNull::new(unsafe { base.add(o as usize) }).expect("mmap returned null")
        };
        Ok(RingMemory {
            producer: at(off.producer).cast(),
            consumer: at(off.consumer).cast(),
            flags: at(off.flags).cast(),
            descs: at(off.desc).cast(),
            size,
            _mapping: Mapping { addr: NonNull::new(base).expect("mmap returned null"), len },
        })
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: points into our live mapping; the kernel accesses it atomically too.
        unsafe { self.producer.as_ref() }
    }
    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as above.
        unsafe { self.consumer.as_ref() }
    }
    fn flags(&self) -> &AtomicU32 {
        // SAFETY: as above.
        unsafe { self.flags.as_ref() }
    }
    fn slot(&self, index: u32) -> *mut T {
        // SAFETY: masked index is within the `size`-entry descriptor array.
        unsafe { self.descs.as_ptr().add((index & (self.size - 1)) as usize) }
    }
}

/// A ring we produce into: fill (frame addresses) and tx (descriptors).
#[derive(Debug)]
pub(crate) struct ProducerRing<T> {
    mem: RingMemory<T>,
    /// Next index we will write; published to the kernel by [`ProducerRing::submit`].
    cached_prod: u32,
    /// Last consumer index we read from the kernel.
    cached_cons: u32,
}

impl<T: Copy> ProducerRing<T> {
    pub(crate) fn map(fd: i32, pgoff: u64, size: u32, off: &libc::xdp_ring_offset) -> io::Result<Self> {
        let mem = RingMemory::map(fd, pgoff, size, off)?;
        let cached_prod = mem.producer().load(Ordering::Relaxed);
        let cached_cons = mem.consumer().load(Ordering::Acquire);
        Ok(ProducerRing { mem, cached_prod, cached_cons })
    }

    /// Free slots, re-reading the kernel's consumer index only if fewer than `want` look free.
    pub(crate) fn free(&mut self, want: u32) -> u32 {
        let free = self.mem.size - self.cached_prod.wrapping_sub(self.cached_cons);
        if free >= want {
            return free;
        }
        // Acquire: the kernel finished reading the slots it released before we reuse them.
        self.cached_cons = self.mem.consumer().load(Ordering::Acquire);
        self.mem.size - self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// Writes one entry at the next unpublished slot. The caller has checked [`Self::free`].
    pub(crate) fn push(&mut self, value: T) {
        debug_assert!(self.cached_prod.wrapping_sub(self.cached_cons) < self.mem.size);
        // SAFETY: the slot is free (not yet published, and released by the kernel).
        unsafe { self.mem.slot(self.cached_prod).write(value) };
        self.cached_prod = self.cached_prod.wrapping_add(1);
    }

    /// Entries pushed but not yet published.
    pub(crate) fn unpublished(&self) -> u32 {
        self.cached_prod.wrapping_sub(self.mem.producer().load(Ordering::Relaxed))
    }

    /// Publishes every pushed entry to the kernel.
    pub(crate) fn submit(&mut self) {
        // Release: descriptor writes become visible before the new producer index.
        self.mem.producer().store(self.cached_prod, Ordering::Release);
    }

    /// Whether the kernel asked to be woken (`XDP_RING_NEED_WAKEUP`) to process this ring.
    pub(crate) fn needs_wakeup(&self) -> bool {
        // Order our producer store before the flag load, pairing with the kernel's barrier
        // between setting the flag and re-checking the ring, so no wakeup is lost.
        fence(Ordering::SeqCst);
        self.mem.flags().load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    /// Entries the kernel has not consumed yet (published or not). Read-only and racy by
    /// nature: the kernel may consume more right after.
    pub(crate) fn outstanding(&self) -> u32 {
        self.cached_prod.wrapping_sub(self.mem.consumer().load(Ordering::Acquire))
    }

    pub(crate) fn size(&self) -> u32 {
        self.mem.size
    }

    /// Of the entries the kernel has not consumed, how many satisfy `pred` (a scan, for the
    /// accounting check only; racy like [`Self::outstanding`]).
    pub(crate) fn outstanding_matching(&self, pred: impl Fn(T) -> bool) -> u32 {
        let start = self.cached_prod.wrapping_sub(self.outstanding().min(self.mem.size));
        // SAFETY: slots between the consumer and our producer hold entries we wrote.
        (0..self.outstanding().min(self.mem.size))
            .filter(|&i| pred(unsafe { self.mem.slot(start.wrapping_add(i)).read() }))
            .count() as u32
    }
}

/// A ring we consume from: rx (descriptors) and completion (frame addresses).
#[derive(Debug)]
pub(crate) struct ConsumerRing<T> {
    mem: RingMemory<T>,
    /// Last producer index we read from the kernel.
    cached_prod: u32,
    /// Next index we will read; published by [`ConsumerRing::release`].
    cached_cons: u32,
}

impl<T: Copy> ConsumerRing<T> {
    pub(crate) fn map(fd: i32, pgoff: u64, size: u32, off: &libc::xdp_ring_offset) -> io::Result<Self> {
        let mem = RingMemory::map(fd, pgoff, size, off)?;
        let cached_cons = mem.consumer().load(Ordering::Relaxed);
        let cached_prod = mem.producer().load(Ordering::Acquire);
        Ok(ConsumerRing { mem, cached_prod, cached_cons })
    }

    /// Up to `max` filled entries, re-reading the kernel's producer index only when the cache
    /// holds fewer than `max`.
    pub(crate) fn peek(&mut self, max: u32) -> u32 {
        let mut ready = self.cached_prod.wrapping_sub(self.cached_cons);
        if ready < max {
            // Acquire: the kernel's descriptor writes are visible before we read them.
            self.cached_prod = self.mem.producer().load(Ordering::Acquire);
            ready = self.cached_prod.wrapping_sub(self.cached_cons);
        }
        ready.min(max)
    }

    /// Entry `i` of the peeked batch (`i` < the last [`Self::peek`] result).
    pub(crate) fn read(&self, i: u32) -> T {
        // SAFETY: the slot was published by the kernel and not yet released by us.
        unsafe { self.mem.slot(self.cached_cons.wrapping_add(i)).read() }
    }

    /// Gives the first `n` peeked entries back to the kernel.
    pub(crate) fn release(&mut self, n: u32) {
        self.cached_cons = self.cached_cons.wrapping_add(n);
        // Release: we are done reading these slots before the kernel may overwrite them.
        self.mem.consumer().store(self.cached_cons, Ordering::Release);
    }

    /// Filled entries not yet consumed. Read-only and racy: the kernel may add more.
    pub(crate) fn filled(&self) -> u32 {
        self.mem.producer().load(Ordering::Acquire).wrapping_sub(self.cached_cons)
    }

    /// Of the filled entries, how many satisfy `pred` (a scan, for the accounting check only).
    pub(crate) fn filled_matching(&self, pred: impl Fn(T) -> bool) -> u32 {
        let filled = self.filled().min(self.mem.size);
        // SAFETY: the kernel published these slots and we have not released them.
        (0..filled)
            .filter(|&i| pred(unsafe { self.mem.slot(self.cached_cons.wrapping_add(i)).read() }))
            .count() as u32
    }
}
