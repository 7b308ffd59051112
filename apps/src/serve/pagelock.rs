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

/// The first window of a mapped body, in bytes: what is locked (and checked with `mincore`)
/// before the first byte is lent, so a body starts after one `mlock` of this size.
pub const FIRST_WINDOW: usize = 1 << 20;
/// The largest window: each request of a body doubles its window up to this. Every window
/// costs an `mlock`, a `munlock` (the release step follows the window) and a round trip through
/// the prefetch queue; 4 MiB windows cut those four-fold on a long download (the per-page
/// work of locking, unlocking and unmapping stays), while a short body never locks more than
/// it has. Larger windows gained nothing measurable and lock more per connection (about
/// `WINDOWS_AHEAD + 1` windows plus the engine's unacknowledged bytes: 13 MiB here).
pub const MAX_WINDOW: usize = 4 << 20;
/// Look-ahead of a body whose window is still small: it asks this far beyond the send position.
/// A grown window asks [`WINDOWS_AHEAD`] windows ahead instead, so one connection locks at most
/// `WINDOWS_AHEAD * MAX_WINDOW` plus what the engine holds unacknowledged.
pub const MIN_LOOKAHEAD: u64 = 4 << 20;
/// Windows asked for beyond the send position, once they are large.
pub const WINDOWS_AHEAD: u64 = 2;

/// The window sizes of one mapped body: [`FIRST_WINDOW`], then doubling per window asked, up
/// to [`MAX_WINDOW`]. Pure arithmetic (the shard keeps one per body); the locking itself stays
/// [`lock_window`]'s, so a larger window never lends a byte the prefetcher did not report
/// resident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowGrowth {
    /// The size of the next window asked for.
    next: usize,
}

impl Default for WindowGrowth {
    fn default() -> Self {
        WindowGrowth { next: FIRST_WINDOW }
    }
}

impl WindowGrowth {
    /// The next window's length, at most `left` (bytes up to the look-ahead limit); the one
    /// after is twice as long, up to [`MAX_WINDOW`].
    pub fn take(&mut self, left: u64) -> usize {
        let len = usize::try_from(left).unwrap_or(usize::MAX).min(self.next);
        self.next = (self.next * 2).min(MAX_WINDOW);
        len
    }

    /// The window asked for next (the body releases acknowledged bytes in steps this large).
    pub fn current(&self) -> usize {
        self.next
    }

    /// How far beyond the send position the body asks for windows.
    pub fn lookahead(&self) -> u64 {
        MIN_LOOKAHEAD.max(WINDOWS_AHEAD * self.next as u64)
    }
}

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
    fn windows_grow_geometrically_to_the_bound_and_never_past_what_is_left() {
        let mut w = WindowGrowth::default();
        assert_eq!(w.take(u64::MAX), FIRST_WINDOW);
        assert_eq!(w.take(u64::MAX), 2 * FIRST_WINDOW);
        // A window cut short by the look-ahead or the body's end still grows the next one.
        assert_eq!(w.take(1000), 1000);
        let mut sizes = Vec::new();
        for _ in 0..10 {
            sizes.push(w.take(u64::MAX));
        }
        assert!(sizes.iter().all(|&s| s <= MAX_WINDOW), "{sizes:?}");
        assert_eq!(*sizes.last().unwrap(), MAX_WINDOW);
        assert!(sizes.windows(2).all(|p| p[0] <= p[1]), "never shrinks: {sizes:?}");
        // The look-ahead is bounded too: the most one connection asks for ahead.
        assert_eq!(w.lookahead(), WINDOWS_AHEAD * MAX_WINDOW as u64);
        assert_eq!(WindowGrowth::default().lookahead(), MIN_LOOKAHEAD);
        assert_eq!(w.take(0), 0);
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
