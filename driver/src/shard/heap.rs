//! The process heap under the shards: keep freed memory in the shard's arena instead of handing
//! it back to the kernel after every few connections.
//!
//! Why: glibc already gives each shard thread an arena of its own (no allocator lock is shared
//! between shards), but by default it returns the free top of an arena to the kernel as soon as
//! 128 KiB of it are free (`madvise(MADV_DONTNEED)`) and faults the pages in again, one per 4 KiB,
//! when it grows back. The engine allocates per connection (each connection is boxed), so a shard
//! crossed that line every hundred connections or so. Those kernel calls are the one thing two
//! shards of one process share on the connection path: page faults and `madvise` take the
//! process's memory-map lock, and `madvise` sends a TLB-shootdown interrupt to every other core
//! running the process, i.e. to the other shards. Measured with `linerate-bench shards
//! --in-memory` (short passive connections, steady state; docs/PERFORMANCE.md "Shards"): 0.27
//! page faults and 0.009 `madvise` per connection with one shard, 0.36 and 0.009 with two, where
//! the TLB flushes per connection double (0.0095 to 0.019); 7–9 % of the process's CPU was
//! kernel time. With the heap kept: no page fault or syscall per connection (the counts stay at
//! their start-up values however long the run), about 1 % kernel time.
//!
//! Promises: [`retain_freed_memory`] is cheap and idempotent, changes only allocator thresholds
//! (never frees or moves memory), and is a no-op where the C library is not glibc. The memory a
//! shard keeps is bounded by its own peak use (the engine's connection and memory caps).
//! Must not: be called per packet (it is a process-wide setting; the runtime calls it at start).

/// An arena's free top is returned to the kernel only past this (glibc's default: 128 KiB).
pub const TRIM_THRESHOLD: usize = 1 << 30;

/// Allocations below this come from the arena rather than their own `mmap` (glibc's default
/// 128 KiB, raised dynamically unless the trim threshold is set, as here). 32 MiB is the most
/// glibc accepts on 64-bit; it keeps connection rings (up to a few MiB) in the shard's arena,
/// so freeing one is not a `munmap` (a TLB shootdown to every other shard).
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// What [`retain_freed_memory`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeapTuning {
    /// glibc accepted both thresholds.
    Applied,
    /// glibc refused a threshold (the default behaviour stays).
    Refused,
    /// Not glibc: nothing to tune.
    Unsupported,
}

/// Sets the allocator so that shards keep the memory they free (see the module docs).
pub fn retain_freed_memory() -> HeapTuning {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let clamp = |v: usize| libc::c_int::try_from(v).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only changes glibc's thresholds; any int value is accepted or refused
        // (returning 0), never undefined.
        let ok = unsafe {
            libc::mallopt(libc::M_TRIM_THRESHOLD, clamp(TRIM_THRESHOLD)) == 1
                && libc::mallopt(libc::M_MMAP_THRESHOLD, clamp(MMAP_THRESHOLD)) == 1
        };
        if ok {
            HeapTuning::Applied
        } else {
            HeapTuning::Refused
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        HeapTuning::Unsupported
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_accepts_the_thresholds_and_a_second_call_changes_nothing() {
        let expected = if cfg!(all(target_os = "linux", target_env = "gnu")) {
            HeapTuning::Applied
        } else {
            HeapTuning::Unsupported
        };
        assert_eq!(retain_freed_memory(), expected);
        assert_eq!(retain_freed_memory(), expected);
    }
}
