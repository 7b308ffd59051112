//! Per-shard statistics that other threads read without stopping the shard.
//!
//! Owns: one [`StatsPublisher`]/[`StatsReader`] pair per shard around a sequence lock whose data
//! words are themselves atomics. The shard (the only writer) publishes a whole `Copy` snapshot
//! with [`StatsPublisher::publish`]: a handful of relaxed stores, no lock, no syscall, no RMW.
//! Readers on any thread get a snapshot that was published as a whole (never half of one
//! publication and half of another) with [`StatsReader::read`], lock-free: a read that overlaps a
//! publication is retried. [`sum`] aggregates across shards.
//!
//! Why atomic words rather than the classic seqlock over plain memory: a plain-memory reader
//! races with the writer, which the Rust memory model calls undefined behaviour even when the
//! torn copy is thrown away. Copying through `AtomicU64`s (relaxed) keeps every access defined,
//! costs the same on x86 and ARM64, and lets loom check the protocol (tests/shard_loom.rs). The
//! price is the [`Pod`] bound: the snapshot type must have no padding, so it can be split into
//! words and put back together.
//!
//! Ordering (Boehm, "Can seqlocks get along with programming language memory models?", 2012):
//! the writer stores an odd sequence, a release fence, the words, then the next even sequence with
//! release; the reader loads the sequence with acquire, the words, an acquire fence, and the
//! sequence again, and keeps the copy only if both loads saw the same even value.

use core::marker::PhantomData;
use core::mem::{size_of, MaybeUninit};
use core::ops::AddAssign;

use super::sync::{fence, spin_hint, Arc, AtomicU64, CachePadded, Ordering};

/// A plain-data snapshot: `Copy`, no padding bytes, every bit pattern a valid value.
///
/// # Safety
/// Implement only for types with no padding and no invalid bit patterns, such as integers,
/// arrays of them, and `#[repr(C)]` structs whose fields are all the same integer type (a struct
/// of `u64` counters is the usual case).
pub unsafe trait Pod: Copy + Send + 'static {}

// SAFETY: integers have no padding and accept every bit pattern.
unsafe impl Pod for u8 {}
// SAFETY: as above.
unsafe impl Pod for u16 {}
// SAFETY: as above.
unsafe impl Pod for u32 {}
// SAFETY: as above.
unsafe impl Pod for u64 {}
// SAFETY: as above.
unsafe impl Pod for usize {}
// SAFETY: zero-sized: no bytes at all.
unsafe impl Pod for () {}
// SAFETY: arrays lay elements out back to back with no padding between them.
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}

/// The cell both handles point to.
#[derive(Debug)]
struct SeqCell<T> {
    /// Odd while a publication is in progress; bumped by 2 per publication.
    seq: CachePadded<AtomicU64>,
    /// The snapshot's bytes, split into native-endian words (the last one zero-padded).
    words: Box<[AtomicU64]>,
    /// The snapshot type the words hold (`fn() -> T`: the cell is `Send + Sync` whatever `T` is,
    /// since it stores only atomics).
    _snapshot: PhantomData<fn() -> T>,
}

/// The shard's end: publishes snapshots. Not `Clone`: a seqlock has exactly one writer.
#[derive(Debug)]
pub struct StatsPublisher<T> {
    /// The shared cell.
    cell: Arc<SeqCell<T>>,
    /// The last even sequence this writer stored; only this writer changes `cell.seq`.
    seq: u64,
}

/// A reader's end: cheap to clone, usable from any thread.
#[derive(Debug)]
pub struct StatsReader<T> {
    /// The shared cell.
    cell: Arc<SeqCell<T>>,
}

impl<T> Clone for StatsReader<T> {
    fn clone(&self) -> Self {
        StatsReader { cell: self.cell.clone() }
    }
}

/// Creates a publisher/reader pair holding `initial`. Allocates here only.
pub fn stats_cell<T: Pod>(initial: T) -> (StatsPublisher<T>, StatsReader<T>) {
    let n_words = size_of::<T>().div_ceil(8);
    let words = (0..n_words).map(|_| AtomicU64::new(0)).collect();
    let cell = Arc::new(SeqCell { seq: CachePadded(AtomicU64::new(0)), words, _snapshot: PhantomData });
    let mut publisher = StatsPublisher { cell: cell.clone(), seq: 0 };
    publisher.store_words(&initial);
    (publisher, StatsReader { cell })
}

/// Word `i` of `value`'s bytes.
#[inline]
fn word_of<T: Pod>(value: &T, i: usize) -> u64 {
    let offset = i * 8;
    let len = (size_of::<T>() - offset).min(8);
    let mut bytes = [0u8; 8];
    // SAFETY: `offset + len <= size_of::<T>()`, and `T: Pod` has no padding, so every byte read
    // is initialised.
    unsafe {
        core::ptr::copy_nonoverlapping((value as *const T as *const u8).add(offset), bytes.as_mut_ptr(), len)
    };
    u64::from_ne_bytes(bytes)
}

impl<T: Pod> StatsPublisher<T> {
    fn store_words(&mut self, value: &T) {
        for (i, word) in self.cell.words.iter().enumerate() {
            word.store(word_of(value, i), Ordering::Relaxed);
        }
    }

    /// Makes `value` the snapshot readers see. Wait-free: never waits for a reader.
    #[inline]
    pub fn publish(&mut self, value: &T) {
        self.cell.seq.store(self.seq.wrapping_add(1), Ordering::Relaxed);
        // Orders the odd sequence before the word stores for any reader that sees a new word.
        fence(Ordering::Release);
        self.store_words(value);
        self.seq = self.seq.wrapping_add(2);
        self.cell.seq.store(self.seq, Ordering::Release);
    }

    /// A reader for this cell.
    pub fn reader(&self) -> StatsReader<T> {
        StatsReader { cell: self.cell.clone() }
    }
}

impl<T: Pod> StatsReader<T> {
    /// One attempt: the current snapshot, or `None` if a publication overlapped the read.
    pub fn try_read(&self) -> Option<T> {
        let cell = &*self.cell;
        let before = cell.seq.load(Ordering::Acquire);
        if before & 1 == 1 {
            return None;
        }
        let mut out = MaybeUninit::<T>::uninit();
        let dst = out.as_mut_ptr() as *mut u8;
        for (i, word) in cell.words.iter().enumerate() {
            let bytes = word.load(Ordering::Relaxed).to_ne_bytes();
            let offset = i * 8;
            let len = (size_of::<T>() - offset).min(8);
            // SAFETY: `offset + len <= size_of::<T>()`: we write inside `out`.
            unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), dst.add(offset), len) };
        }
        // Orders the word loads before the second sequence load.
        fence(Ordering::Acquire);
        if cell.seq.load(Ordering::Relaxed) != before {
            return None;
        }
        // SAFETY: every byte of `out` was written above, and `T: Pod` accepts any bit pattern.
        Some(unsafe { out.assume_init() })
    }

    /// The current snapshot, retrying while publications overlap the read. Lock-free: it can
    /// only retry while the shard keeps publishing, and a publication is a few stores long.
    pub fn read(&self) -> T {
        loop {
            if let Some(value) = self.try_read() {
                return value;
            }
            spin_hint();
        }
    }
}

/// The sum of every reader's current snapshot: totals across shards.
pub fn sum<T: Pod + Default + AddAssign>(readers: &[StatsReader<T>]) -> T {
    readers.iter().fold(T::default(), |mut acc, reader| {
        acc += reader.read();
        acc
    })
}
