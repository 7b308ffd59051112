//! Page locks for mapped bodies: which part of each mapping is `mlock`ed, within a per-shard
//! budget of locked bytes.
//!
//! **Why:** the prefetcher reports a range resident, the shard lends it to the engine, and the
//! engine copies it into frames later, and again for a retransmission. A page evicted in
//! between makes that copy wait for the disk on the shard. A locked page cannot be evicted.
//!
//! **Owns** [`LockedSpan`], one contiguous locked range per mapping: windows are locked in send
//! order at its end ([`lock_window`]) and unlocked from its start once the engine has let go of
//! the acknowledged bytes ([`release`]); whatever is still locked when the mapping is unmapped
//! goes with the `munmap`. The bytes are accounted in a gauge shared with the shard (read for
//! `linerate stats`).
//!
//! **Promises:** the gauge never exceeds the budget (only the prefetch thread adds to it, and
//! only after checking); a window beyond the budget, not adjacent to the span, or refused by
//! `mlock` (RLIMIT_MEMLOCK, EPERM) is left unlocked, so the caller falls back to populating it
//! only; every byte added is subtracted again by [`release`] or when the mapping is retired
//! (`prefetch.rs`), so the gauge is zero when no mapped body is in flight.
//!
//! **Must not** run on a shard: `mlock` reads the pages in and waits for the disk.

use super::mapped::FileMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Most bytes one shard keeps locked. A connection locks at most its look-ahead plus what the
/// engine holds unacknowledged (about 5 MiB with the server's 1 MiB send buffer), so this
/// covers about fifty bulk downloads per shard, and it bounds what a crowd of slow clients can
/// pin: past it, windows are only populated, as before locking existed.
pub const LOCK_BUDGET: u64 = 256 << 20;

/// The locked part `[start, end)` of one mapping, page-aligned (the end may be the mapping's
/// end). Written only by the prefetch thread; read by whoever drops the mapping last.
#[derive(Debug, Default)]
pub struct LockedSpan {
    start: AtomicUsize,
    end: AtomicUsize,
}

impl LockedSpan {
    /// Bytes locked now.
    pub fn bytes(&self) -> u64 {
        let (start, end) = self.get();
        (end - start) as u64
    }

    fn get(&self) -> (usize, usize) {
        (self.start.load(Ordering::Relaxed), self.end.load(Ordering::Relaxed))
    }

    fn set(&self, start: usize, end: usize) {
        self.start.store(start, Ordering::Relaxed);
        self.end.store(end, Ordering::Relaxed);
    }
}

/// What [`lock_window`] did with a window.
#[derive(Debug)]
pub enum LockOutcome {
    /// The window is locked (and therefore resident); `added` bytes were newly locked.
    Locked { added: u64 },
    /// Locking it would exceed the budget: not locked.
    OverBudget,
    /// It does not touch the locked span (an earlier window was left unlocked): not locked.
    Detached,
    /// `mlock` refused it: not locked.
    Refused(std::io::Error),
}

/// Locks the page span of `[offset, offset + len)` of `map` if `locked` plus the new bytes stay
/// within `budget`, extending the mapping's span; `locked` is the shard's gauge.
pub fn lock_window(map: &FileMap, offset: usize, len: usize, budget: u64, locked: &AtomicU64) -> LockOutcome {
    let (start, end) = map.page_span(offset, len);
    let (span_start, span_end) = map.locked.get();
    let fresh = span_start == span_end;
    if !fresh && (start > span_end || end <= span_start) {
        let inside = end <= span_end && start >= span_start;
        return if inside { LockOutcome::Locked { added: 0 } } else { LockOutcome::Detached };
    }
    // Only what lies beyond the span is new; the part below its start was released already.
    let from = if fresh { start } else { span_end.max(start) };
    if end <= from {
        return LockOutcome::Locked { added: 0 };
    }
    let add = (end - from) as u64;
    if locked.load(Ordering::Relaxed) + add > budget {
        return LockOutcome::OverBudget;
    }
    if let Err(e) = map.lock_pages(from, end) {
        return LockOutcome::Refused(e);
    }
    locked.fetch_add(add, Ordering::Relaxed);
    map.locked.set(if fresh { from } else { span_start }, end);
    LockOutcome::Locked { added: add }
}

/// Unlocks the whole pages of `map` before `upto` (the engine released those bytes); returns
/// the bytes unlocked, already taken off `locked`.
pub fn release(map: &FileMap, upto: usize, locked: &AtomicU64) -> u64 {
    let (start, end) = map.locked.get();
    // Whole pages only: the page holding byte `upto` may still be sent.
    let to = if upto >= map.len() { end } else { map.page_span(upto, 0).0.min(end) };
    if to <= start {
        return 0;
    }
    map.unlock_pages(start, to);
    map.locked.set(to, end);
    let n = (to - start) as u64;
    locked.fetch_sub(n, Ordering::Relaxed);
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const PAGE: usize = 4096;

    fn mapped(name: &str, len: usize) -> (std::path::PathBuf, FileMap) {
        let path = std::env::temp_dir().join(format!("linerate-pagelock-{name}-{}", std::process::id()));
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&vec![3u8; len]).unwrap();
        let f = std::fs::File::open(&path).unwrap();
        let map = FileMap::new(&f, len).unwrap();
        (path, map)
    }

    #[test]
    fn windows_lock_in_order_and_release_from_the_start_to_zero() {
        let (path, map) = mapped("order", 64 * PAGE + 100);
        let gauge = AtomicU64::new(0);
        // An unaligned first window locks its whole pages.
        assert!(matches!(lock_window(&map, 100, 8 * PAGE, u64::MAX, &gauge), LockOutcome::Locked { .. }));
        assert_eq!(gauge.load(Ordering::Relaxed), 9 * PAGE as u64);
        // The next window shares a page with the first: only the new pages count.
        assert!(matches!(
            lock_window(&map, 100 + 8 * PAGE, 8 * PAGE, u64::MAX, &gauge),
            LockOutcome::Locked { .. }
        ));
        assert_eq!(gauge.load(Ordering::Relaxed), 17 * PAGE as u64);
        assert_eq!(map.locked.bytes(), 17 * PAGE as u64);
        // Asking again for a locked range adds nothing.
        assert!(matches!(lock_window(&map, PAGE, PAGE, u64::MAX, &gauge), LockOutcome::Locked { .. }));
        assert_eq!(gauge.load(Ordering::Relaxed), 17 * PAGE as u64);
        // Released bytes unlock whole pages only: the page holding byte `upto` stays locked.
        assert_eq!(release(&map, 5 * PAGE + 10, &gauge), 5 * PAGE as u64);
        assert_eq!(gauge.load(Ordering::Relaxed), 12 * PAGE as u64);
        assert_eq!(release(&map, 3 * PAGE, &gauge), 0, "releasing less again is a no-op");
        // The mapping's last partial page is part of the span and released with the end.
        assert!(matches!(
            lock_window(&map, 17 * PAGE, 64 * PAGE, u64::MAX, &gauge),
            LockOutcome::Locked { .. }
        ));
        let before = gauge.load(Ordering::Relaxed);
        assert_eq!(release(&map, 64 * PAGE + 100, &gauge), before);
        assert_eq!(gauge.load(Ordering::Relaxed), 0);
        assert_eq!(map.locked.bytes(), 0);
        // A released mapping starts a new span wherever the next window is.
        assert!(matches!(lock_window(&map, 40 * PAGE, PAGE, u64::MAX, &gauge), LockOutcome::Locked { .. }));
        assert_eq!(gauge.load(Ordering::Relaxed), PAGE as u64);
        drop(map);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn the_budget_is_never_exceeded_and_a_skipped_window_detaches_the_next() {
        let (path, map) = mapped("budget", 32 * PAGE);
        let gauge = AtomicU64::new(0);
        let budget = 6 * PAGE as u64;
        assert!(matches!(lock_window(&map, 0, 4 * PAGE, budget, &gauge), LockOutcome::Locked { .. }));
        assert!(matches!(lock_window(&map, 4 * PAGE, 4 * PAGE, budget, &gauge), LockOutcome::OverBudget));
        assert_eq!(gauge.load(Ordering::Relaxed), 4 * PAGE as u64);
        // The window after the skipped one would leave a hole in the span.
        assert!(matches!(lock_window(&map, 8 * PAGE, PAGE, budget, &gauge), LockOutcome::Detached));
        // Once the engine released everything locked, locking starts again.
        release(&map, 8 * PAGE, &gauge);
        assert!(matches!(lock_window(&map, 8 * PAGE, 2 * PAGE, budget, &gauge), LockOutcome::Locked { .. }));
        assert_eq!(gauge.load(Ordering::Relaxed), 2 * PAGE as u64);
        drop(map);
        std::fs::remove_file(path).unwrap();
    }

    /// Drops CAP_IPC_LOCK from this thread's effective set (capabilities are per thread), so
    /// RLIMIT_MEMLOCK applies to it as to an unprivileged server.
    fn drop_ipc_lock() {
        const CAP_IPC_LOCK: u32 = 14;
        let mut header = [0x2008_0522u32, 0]; // _LINUX_CAPABILITY_VERSION_3, this thread
        let mut data = [0u32; 6]; // two {effective, permitted, inheritable}
                                  // SAFETY: capget/capset with a v3 header and room for two data structs.
        unsafe {
            assert_eq!(libc::syscall(libc::SYS_capget, header.as_mut_ptr(), data.as_mut_ptr()), 0);
            data[0] &= !(1 << CAP_IPC_LOCK);
            assert_eq!(libc::syscall(libc::SYS_capset, header.as_mut_ptr(), data.as_ptr()), 0);
        }
    }

    #[test]
    fn a_refused_mlock_is_reported_and_leaves_nothing_locked() {
        let (path, map) = mapped("refused", 64 * PAGE);
        let gauge = AtomicU64::new(0);
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: reading and lowering (then restoring) our own soft limit.
        unsafe { assert_eq!(libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit), 0) };
        let low = libc::rlimit { rlim_cur: PAGE as libc::rlim_t, ..limit };
        let outcome = std::thread::scope(|s| {
            s.spawn(|| {
                drop_ipc_lock();
                // SAFETY: as above. Threads that keep CAP_IPC_LOCK are not limited by it.
                unsafe { assert_eq!(libc::setrlimit(libc::RLIMIT_MEMLOCK, &low), 0) };
                let outcome = lock_window(&map, 0, 16 * PAGE, u64::MAX, &gauge);
                // SAFETY: as above.
                unsafe { assert_eq!(libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit), 0) };
                outcome
            })
            .join()
            .unwrap()
        });
        assert!(matches!(outcome, LockOutcome::Refused(_)), "{outcome:?}");
        assert_eq!((gauge.load(Ordering::Relaxed), map.locked.bytes()), (0, 0));
        // The mapping is still usable and lockable by a thread that may lock.
        assert!(matches!(lock_window(&map, 0, 16 * PAGE, u64::MAX, &gauge), LockOutcome::Locked { .. }));
        drop(map);
        std::fs::remove_file(path).unwrap();
    }
}
