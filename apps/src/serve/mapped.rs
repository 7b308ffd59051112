//! Read-only file mappings lent to the engine as send data, made safe against truncation.
//!
//! **Owns** [`FileMap`] (one `mmap(PROT_READ, MAP_SHARED)` of a response's file, a
//! [`SendSource`] the engine copies straight into NIC frames; its page locks are `pagelock.rs`'s)
//! and the process-wide SIGBUS guard.
//!
//! **Why a guard:** a file truncated while mapped makes every read of the lost pages raise
//! SIGBUS, which kills the process. The guard is a SIGBUS handler (`SA_SIGINFO`, only
//! async-signal-safe work: atomics and one `mmap`) that looks the faulting address up in a
//! fixed registry of live mappings. For a registered mapping it maps an anonymous zero page over
//! the faulting page (so the interrupted copy completes, reading zeros) and raises that
//! mapping's *poisoned* flag. [`FileMap::is_intact`] reads the flag, and the engine checks it
//! after every copy out of lent memory: a frame that read poisoned memory leaves as a RST and the
//! connection is reset, so no zero byte is delivered as file data and the server lives on. A
//! fault outside every registered mapping restores the previous handler and returns, so the
//! fault repeats and behaves exactly as without the guard (the default action: core dump).
//!
//! **Promises:** registration and lookup are lock-free and allocation-free (a static array of
//! [`MAX_MAPPINGS`] slots); a full registry makes [`FileMap::new`] fail (the caller then uses
//! `pread`), it never maps unguarded. When the last `Arc` of a [`FileMap`] is dropped (the
//! connection's, the engine's send buffer's, or the prefetcher's) its [`Mapping`] moves to the
//! prefetch thread ([`FileMap::retire_to`]), which unmaps it: `munmap` and its TLB shootdown
//! stay off the shard. The registry slot is freed only after the unmap, wherever it runs, so
//! the guard covers the region for as long as it is mapped.
//!
//! **Must not** be read for pages that are not resident: a page-cache miss is a disk wait on
//! the reading thread. The shard only lends ranges the prefetcher reported resident
//! ([`super::prefetch`]).

use super::pagelock::LockedSpan;
use super::prefetch::Retirer;
use linerate_stack::tcp::SendSource;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Mappings guarded at once (each large-body response in progress holds one).
pub const MAX_MAPPINGS: usize = 4096;

/// A registry slot is free when `start` is 0; `CLAIMED` while a registration fills it in.
const CLAIMED: usize = usize::MAX;

struct Slot {
    start: AtomicUsize,
    len: AtomicUsize,
    poisoned: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE_SLOT: Slot =
    Slot { start: AtomicUsize::new(0), len: AtomicUsize::new(0), poisoned: AtomicBool::new(false) };
static SLOTS: [Slot; MAX_MAPPINGS] = [FREE_SLOT; MAX_MAPPINGS];
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);
/// The SIGBUS action before ours (restored for faults that are not ours).
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// Installs the SIGBUS guard once per process. Returns whether it is in place.
pub fn install_guard() -> bool {
    PREVIOUS
        .get_or_init(|| {
            // SAFETY: sysconf has no preconditions.
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            if page > 0 {
                PAGE_SIZE.store(page as usize, Ordering::Relaxed);
            }
            // SAFETY: zeroed sigactions are valid; `on_sigbus` has the SA_SIGINFO signature and
            // does only async-signal-safe work. Until PREVIOUS is set the handler falls back to
            // SIG_DFL for faults that are not ours, which is what the previous action of a
            // process that installed nothing is.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_sigbus as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO;
                libc::sigemptyset(&mut action.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(libc::SIGBUS, &action, &mut old) != 0 {
                    old.sa_sigaction = usize::MAX;
                }
                old
            }
        })
        .sa_sigaction
        != usize::MAX
}

extern "C" fn on_sigbus(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE_SIZE.load(Ordering::Relaxed);
    for slot in &SLOTS {
        let start = slot.start.load(Ordering::Acquire);
        if start == 0 || start == CLAIMED {
            continue;
        }
        if addr < start || addr - start >= slot.len.load(Ordering::Acquire) {
            continue;
        }
        let at = addr & !(page - 1);
        // SAFETY: `at` is a page inside a live mapping of ours (the faulting thread reads it
        // and holds an Arc of it); replacing that page with a private zero page is what we want.
        let zero = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if zero != libc::MAP_FAILED {
            slot.poisoned.store(true, Ordering::Release);
            return;
        }
        break;
    }
    // Not ours (or the zero page could not be mapped): behave as if we were never installed.
    // SAFETY: sigaction and signal are async-signal-safe; OnceLock::get is an atomic load.
    unsafe {
        match PREVIOUS.get() {
            Some(old) => libc::sigaction(libc::SIGBUS, old, ptr::null_mut()),
            None => libc::signal(libc::SIGBUS, libc::SIG_DFL) as libc::c_int,
        };
    }
}

/// A guarded read-only mapping: the raw region and its registry slot. Dropping it unmaps the
/// region and only then frees the slot (so the guard never maps a zero page into address space
/// someone else may reuse). Moving it to another thread moves the unmap there ([`super::prefetch`]
/// unmaps off the shard).
#[derive(Debug)]
pub struct Mapping {
    ptr: *const u8,
    len: usize,
    slot: usize,
}

// SAFETY: the region is read-only and owned by this value alone; unmapping it from any thread
// is fine.
unsafe impl Send for Mapping {}
// SAFETY: shared reads of read-only memory.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Nothing mapped: what a [`FileMap`] leaves behind when its mapping moved out.
    const EMPTY: Mapping = Mapping { ptr: ptr::null(), len: 0, slot: usize::MAX };

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        // SAFETY: our own mapping, unmapped once (also drops any page locks on it); the slot is
        // freed only afterwards.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
        SLOTS[self.slot].start.store(0, Ordering::Release);
    }
}

/// A guarded read-only mapping of `len` bytes of a file, lent to the engine as send data.
#[derive(Debug)]
pub struct FileMap {
    mapping: Mapping,
    /// The page-locked part (written by the prefetch thread only, `pagelock.rs`).
    pub(super) locked: LockedSpan,
    /// Where the mapping goes to be unmapped when the last reference drops; `None`: unmapped
    /// by whichever thread drops it.
    retire: Option<Retirer>,
}

// SAFETY: the mapping is read-only and lives until drop; the pointer is never written through.
unsafe impl Send for FileMap {}
// SAFETY: as above; shared reads of read-only memory.
unsafe impl Sync for FileMap {}

impl FileMap {
    /// Maps the first `len` bytes (`len > 0`) of `file`, guarded. Fails when the guard cannot
    /// be installed, the registry is full, or `mmap` fails; nothing is left mapped then.
    pub fn new(file: &impl AsFd, len: usize) -> io::Result<FileMap> {
        if len == 0 || !install_guard() {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "no SIGBUS guard for mappings"));
        }
        let slot = SLOTS
            .iter()
            .position(|s| s.start.compare_exchange(0, CLAIMED, Ordering::AcqRel, Ordering::Relaxed).is_ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::OutOfMemory, "mapping registry full"))?;
        let fd = file.as_fd().as_raw_fd();
        // SAFETY: a fresh read-only shared mapping chosen by the kernel; checked below.
        let ptr = unsafe { libc::mmap(ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, fd, 0) };
        if ptr == libc::MAP_FAILED {
            let err = io::Error::last_os_error();
            SLOTS[slot].start.store(0, Ordering::Release);
            return Err(err);
        }
        let s = &SLOTS[slot];
        s.len.store(len, Ordering::Relaxed);
        s.poisoned.store(false, Ordering::Relaxed);
        s.start.store(ptr as usize, Ordering::Release);
        Ok(FileMap {
            mapping: Mapping { ptr: ptr as *const u8, len, slot },
            locked: LockedSpan::default(),
            retire: None,
        })
    }

    /// Unmaps through `retire` (off this thread) when the last reference drops.
    pub fn retire_to(mut self, retire: Retirer) -> FileMap {
        self.retire = Some(retire);
        self
    }

    pub fn len(&self) -> usize {
        self.mapping.len
    }

    pub fn is_empty(&self) -> bool {
        self.mapping.len == 0
    }

    /// Marks the mapping bad (e.g. the prefetcher found the file shorter than promised).
    pub fn poison(&self) {
        SLOTS[self.mapping.slot].poisoned.store(true, Ordering::Release);
    }

    /// Asks the kernel to read `[offset, offset + len)` in and map it into our page tables,
    /// blocking this thread (never call it on a shard). `Err` when part of the range is beyond
    /// the end of the file now (it was truncated).
    pub fn populate(&self, offset: usize, len: usize) -> io::Result<()> {
        let (start, len) = self.page_range(offset, len);
        if len == 0 {
            return Ok(());
        }
        loop {
            // SAFETY: the range lies inside our live mapping.
            let at = unsafe { self.mapping.ptr.add(start) } as *mut libc::c_void;
            // SAFETY: as above; madvise only reads the range in.
            if unsafe { libc::madvise(at, len, libc::MADV_POPULATE_READ) } == 0 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR | libc::EAGAIN) => continue,
                Some(libc::EINVAL) => break,
                _ => return Err(err),
            }
        }
        // Kernels before 5.14: start readahead, then touch one byte per page (a truncation
        // during the touch is caught by the guard and shows as `is_intact() == false`).
        // SAFETY: as above.
        unsafe { libc::madvise(self.mapping.ptr.add(start) as *mut libc::c_void, len, libc::MADV_WILLNEED) };
        let page = PAGE_SIZE.load(Ordering::Relaxed);
        for at in (start..start + len).step_by(page) {
            // SAFETY: inside the mapping; a volatile read so the touch is not optimised away.
            unsafe { ptr::read_volatile(self.mapping.ptr.add(at)) };
        }
        if self.is_intact() {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file truncated while mapped"))
        }
    }

    /// Locks the page-aligned `[start, end)` (from [`FileMap::page_span`]) into memory, reading
    /// it in first: `mlock(2)`, which blocks this thread like [`FileMap::populate`]. On failure
    /// (RLIMIT_MEMLOCK, EPERM, or part of the range beyond the end of the file) nothing stays
    /// locked.
    pub fn lock_pages(&self, start: usize, end: usize) -> io::Result<()> {
        if start >= end || end > self.mapping.len {
            return Ok(());
        }
        // SAFETY: the range lies inside our live mapping.
        let at = unsafe { self.mapping.ptr.add(start) } as *const libc::c_void;
        // SAFETY: as above; mlock only changes how the pages are kept.
        if unsafe { libc::mlock(at, end - start) } == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        // mlock marks the whole range before it faults pages in, so a failure part-way leaves
        // it marked: undo that.
        self.unlock_pages(start, end);
        Err(err)
    }

    /// Unlocks the page-aligned `[start, end)` (the pages stay cached; they may be evicted).
    pub fn unlock_pages(&self, start: usize, end: usize) {
        if start >= end || end > self.mapping.len {
            return;
        }
        // SAFETY: the range lies inside our live mapping.
        let at = unsafe { self.mapping.ptr.add(start) } as *const libc::c_void;
        // SAFETY: as above. It cannot fail for a range inside a mapping of ours.
        unsafe { libc::munlock(at, end - start) };
    }

    /// The page-aligned span `[start, end)` covering `[offset, offset + len)`, clipped to the
    /// mapping (`end` may be the mapping's unaligned end).
    pub fn page_span(&self, offset: usize, len: usize) -> (usize, usize) {
        let (start, span) = self.page_range(offset, len);
        let page = PAGE_SIZE.load(Ordering::Relaxed);
        (start, (start + span).next_multiple_of(page).min(self.mapping.len))
    }

    /// How many bytes from `offset` (up to `len`) are resident in the page cache now
    /// (`mincore`); `scratch` is reused for the per-page answer.
    pub fn resident_prefix(&self, offset: usize, len: usize, scratch: &mut Vec<u8>) -> usize {
        let (start, span) = self.page_range(offset, len);
        let end = start + span;
        if offset >= end {
            return 0;
        }
        let page = PAGE_SIZE.load(Ordering::Relaxed);
        scratch.clear();
        scratch.resize(span.div_ceil(page), 0);
        // SAFETY: the range lies inside our mapping and `scratch` has one byte per page.
        let r = unsafe {
            libc::mincore(self.mapping.ptr.add(start) as *mut libc::c_void, span, scratch.as_mut_ptr())
        };
        if r != 0 {
            return 0;
        }
        let pages = scratch.iter().take_while(|&&b| b & 1 == 1).count();
        (start + pages * page).min(end).saturating_sub(offset)
    }

    /// The page-aligned span covering `[offset, offset + len)`, clipped to the mapping.
    fn page_range(&self, offset: usize, len: usize) -> (usize, usize) {
        let page = PAGE_SIZE.load(Ordering::Relaxed);
        let end = offset.saturating_add(len).min(self.mapping.len);
        let start = offset.min(end) & !(page - 1);
        (start, end - start)
    }
}

impl SendSource for FileMap {
    fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes until drop. Pages lost to a truncation read
        // as zeros (the guard), which `is_intact` reports.
        unsafe { std::slice::from_raw_parts(self.mapping.ptr, self.mapping.len) }
    }

    fn is_intact(&self) -> bool {
        !SLOTS[self.mapping.slot].poisoned.load(Ordering::Acquire)
    }
}

impl Drop for FileMap {
    fn drop(&mut self) {
        let mapping = std::mem::replace(&mut self.mapping, Mapping::EMPTY);
        let locked = self.locked.bytes();
        match &self.retire {
            Some(retire) => retire.retire(mapping, locked),
            // Unmapped here; nobody accounts for locks on a mapping without a prefetcher.
            None => drop(mapping),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_file(name: &str, bytes: &[u8]) -> (std::path::PathBuf, std::fs::File) {
        let path = std::env::temp_dir().join(format!("linerate-mapped-{name}-{}", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        f.write_all(bytes).unwrap();
        (path, f)
    }

    #[test]
    fn a_truncated_mapping_reads_zeros_and_is_poisoned_instead_of_killing_us() {
        let page = PAGE_SIZE.load(Ordering::Relaxed).max(4096);
        let data: Vec<u8> = (0..3 * page).map(|i| (i % 251) as u8 + 1).collect();
        let (path, file) = temp_file("truncate", &data);
        let map = FileMap::new(&file, data.len()).unwrap();
        assert_eq!(map.bytes(), &data[..]);
        assert!(map.is_intact());
        file.set_len(page as u64).unwrap();
        // The first page is still the file; the lost pages fault and read as zeros.
        assert_eq!(&map.bytes()[..page], &data[..page]);
        assert!(map.is_intact());
        // SAFETY: inside the mapping; volatile so the faulting read really happens.
        let tail = unsafe { ptr::read_volatile(map.bytes().as_ptr().add(2 * page + 5)) };
        assert_eq!(tail, 0);
        assert!(!map.is_intact(), "the guard must poison the mapping");
        assert!(map.populate(0, 3 * page).is_err(), "populating past the end fails");
        drop(map);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn populate_then_mincore_reports_the_range_resident() {
        let data = vec![7u8; 64 * 1024 + 17];
        let (path, file) = temp_file("resident", &data);
        let map = FileMap::new(&file, data.len()).unwrap();
        map.populate(4096, 40_000).unwrap();
        let mut scratch = Vec::new();
        assert!(map.resident_prefix(4096, 40_000, &mut scratch) == 40_000);
        assert_eq!(map.resident_prefix(data.len(), 10, &mut scratch), 0);
        assert!(map.is_intact());
        drop(map);
        std::fs::remove_file(path).unwrap();
    }
}
