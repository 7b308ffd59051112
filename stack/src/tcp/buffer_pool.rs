//! Recycled byte storage for connection send and receive rings.
//!
//! **Owns** boxed byte slices that closed connections gave back, grouped by exact size (a server
//! uses one or two buffer sizes, so a handful of size classes covers it).
//!
//! **Why:** a fresh `vec![0; n]` for every connection means the allocator hands back heap memory
//! it must zero: with a 1 MiB send ring and a 256 KiB receive ring that `memset` was three
//! quarters of a short-connection server's CPU. A recycled ring needs no zeroing, because the
//! rings only ever expose bytes written since they were (re)initialised: `SendBuffer` reads within
//! `[head, head+len)` and `RecvBuffer` returns only in-order bytes it received or tracked
//! out-of-order ranges — stale bytes from an earlier connection are never readable.
//!
//! **Promises:** bounded: at most `max_bytes` are kept and at most [`MAX_SIZE_CLASSES`] sizes;
//! anything beyond is freed at once. `take` is O(classes); `give` is amortised O(classes).
//!
//! **Does not** count toward the engine's memory cap: the cap bounds what live connections hold,
//! and what the pool keeps is bounded by `max_bytes` on its own.

/// Distinct buffer sizes remembered; others are freed.
pub const MAX_SIZE_CLASSES: usize = 4;

#[derive(Debug)]
struct SizeClass {
    size: usize,
    free: Vec<Box<[u8]>>,
}

/// Free lists of connection buffers, by size.
#[derive(Debug)]
pub struct BufferPool {
    classes: Vec<SizeClass>,
    pooled_bytes: usize,
    max_bytes: usize,
    reused: u64,
}

impl BufferPool {
    /// A pool that keeps at most `max_bytes` of idle buffers (0 disables pooling).
    pub fn new(max_bytes: usize) -> Self {
        BufferPool { classes: Vec::with_capacity(MAX_SIZE_CLASSES), pooled_bytes: 0, max_bytes, reused: 0 }
    }

    /// A buffer of exactly `size` bytes: a recycled one (contents unspecified) if available,
    /// otherwise a new zeroed allocation.
    pub fn take(&mut self, size: usize) -> Box<[u8]> {
        if size == 0 {
            return Box::new([]);
        }
        if let Some(buf) = self.classes.iter_mut().find(|c| c.size == size).and_then(|c| c.free.pop()) {
            self.pooled_bytes -= size;
            self.reused += 1;
            return buf;
        }
        vec![0u8; size].into_boxed_slice()
    }

    /// Returns a buffer for reuse; it is freed instead when the pool is at its bound.
    pub fn give(&mut self, buf: Box<[u8]>) {
        let size = buf.len();
        if size == 0 || self.pooled_bytes + size > self.max_bytes {
            return;
        }
        let i = match self.classes.iter().position(|c| c.size == size) {
            Some(i) => i,
            None if self.classes.len() < MAX_SIZE_CLASSES => {
                self.classes.push(SizeClass { size, free: Vec::new() });
                self.classes.len() - 1
            }
            None => return,
        };
        self.classes[i].free.push(buf);
        self.pooled_bytes += size;
    }

    /// Bytes held idle in the pool.
    pub fn pooled_bytes(&self) -> usize {
        self.pooled_bytes
    }

    /// How many `take`s were served from the pool.
    pub fn reused(&self) -> u64 {
        self.reused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_buffer_is_reused_for_the_same_size_only() {
        let mut pool = BufferPool::new(1 << 20);
        let mut a = pool.take(4096);
        a[0] = 7;
        let ptr = a.as_ptr();
        pool.give(a);
        assert_eq!(pool.pooled_bytes(), 4096);
        let other = pool.take(8192);
        assert_eq!(other.len(), 8192);
        assert_eq!(pool.reused(), 0);
        let again = pool.take(4096);
        assert_eq!(again.as_ptr(), ptr);
        assert_eq!((pool.reused(), pool.pooled_bytes()), (1, 0));
    }

    #[test]
    fn the_pool_is_bounded_in_bytes_and_size_classes() {
        let mut pool = BufferPool::new(10_000);
        for _ in 0..5 {
            let b = pool.take(4000);
            pool.give(b);
            let c = vec![0u8; 4000].into_boxed_slice();
            pool.give(c);
        }
        assert!(pool.pooled_bytes() <= 10_000);
        let mut pool = BufferPool::new(usize::MAX);
        for size in 1..=MAX_SIZE_CLASSES + 3 {
            pool.give(vec![0u8; size].into_boxed_slice());
        }
        assert_eq!(pool.classes.len(), MAX_SIZE_CLASSES);
        let disabled = &mut BufferPool::new(0);
        disabled.give(vec![0u8; 10].into_boxed_slice());
        assert_eq!(disabled.pooled_bytes(), 0);
    }
}
