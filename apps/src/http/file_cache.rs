//! [`OpenFileCache`]: recently opened files, shared by every connection of a [`super::Site`].
//!
//! **Why:** serving a small file took four system calls per request (`openat2`, `statx`,
//! `pread`, `close`); on a keep-alive benchmark the three around the read were about an eighth
//! of the server's CPU. A cached [`FileBody`] is served again without opening anything, like
//! nginx's `open_file_cache`.
//!
//! **Owns** at most [`BUCKETS`] open files, one per bucket of a direct-mapped table keyed by the
//! decoded request path (a colliding path simply replaces the entry). Each bucket has its own
//! lock, held only to compare and clone an `Arc`, never across a system call, so shards rarely
//! meet on one.
//!
//! **Promises:** an entry is served only if it was opened less than `ttl` ago and no upload was
//! committed through this cache's owner since ([`OpenFileCache::invalidate_all`]); a file
//! changed by someone else is therefore seen at most `ttl` late, and a file replaced by rename
//! keeps being served whole from the old inode until then (never a mix of the two). Lookups
//! that fail (404, 403, directories without an index) are never cached. A zero `ttl` disables
//! the cache. Never panics: a poisoned lock counts as a miss.
//!
//! Files of at most [`super::files::SMALL_BODY_MAX`] bytes opened with [`Root::open_file_kept`]
//! carry their content, read together with the metadata at the open: a cached entry then
//! serves its responses from memory with no system call, under the same promise (the bytes
//! are those of the open, so at most `ttl` old, and always the ones `Content-Length` and the
//! ETag describe). Memory: at most [`BUCKETS`] x `SMALL_BODY_MAX` (1 MiB) of file bytes held
//! by the table, plus one file per connection still sending a response from an evicted entry.
//!
//! **Does not** resolve paths itself: every open goes through [`Root::open_file`], which keeps
//! the confinement to the root. [`OpenFileCache::lookup`] and [`OpenFileCache::fill`] split a
//! miss in two so the open can run on another thread (`linerate serve` opens on the shard's
//! prefetch thread, so a cold directory or inode never stalls the packet loop).

use super::files::{FileBody, FileError, Root};
use linerate_stack::time::{Duration, Instant};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Files kept open at most.
pub const BUCKETS: usize = 64;

#[derive(Debug)]
struct Entry {
    path: Box<[u8]>,
    file: Arc<FileBody>,
    opened: Instant,
    generation: u64,
}

/// What [`OpenFileCache::lookup`] found.
#[derive(Debug)]
pub enum Lookup {
    Hit(Arc<FileBody>),
    Miss(Miss),
}

/// A lookup that found nothing trusted: carries what [`OpenFileCache::fill`] needs to cache the
/// file once it is open.
#[derive(Debug, Clone, Copy)]
pub struct Miss {
    generation: u64,
    opened: Instant,
}

/// Cache counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileCacheStats {
    pub hits: u64,
    pub misses: u64,
}

/// A bounded table of open files; see the module documentation.
#[derive(Debug)]
pub struct OpenFileCache {
    buckets: Box<[Mutex<Option<Entry>>]>,
    ttl: Duration,
    /// Bumped by every invalidation; entries from an older generation are stale.
    generation: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl OpenFileCache {
    /// A cache whose entries are trusted for `ttl` after their open (zero: never cached).
    pub fn new(ttl: Duration) -> Self {
        OpenFileCache {
            buckets: (0..BUCKETS).map(|_| Mutex::new(None)).collect(),
            ttl,
            generation: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The file a decoded request path names: the cached one if still trusted at `now`,
    /// otherwise freshly opened through `root` (and cached).
    pub fn open(&self, root: &Root, path: &[u8], now: Instant) -> Result<Arc<FileBody>, FileError> {
        match self.lookup(path, now) {
            Lookup::Hit(file) => Ok(file),
            Lookup::Miss(miss) => Ok(self.fill(miss, path, root.open_file(path)?)),
        }
    }

    /// The cached file for `path` if still trusted at `now`; otherwise a [`Miss`] to open it
    /// elsewhere (another thread) and hand back to [`OpenFileCache::fill`]. Makes no system call.
    pub fn lookup(&self, path: &[u8], now: Instant) -> Lookup {
        let generation = self.generation.load(Ordering::Acquire);
        let miss = Miss { generation, opened: now };
        if self.ttl == Duration::ZERO {
            return Lookup::Miss(miss);
        }
        if let Ok(slot) = self.buckets[bucket_of(path)].lock() {
            if let Some(e) = slot.as_ref() {
                let fresh = now.saturating_duration_since(e.opened) < self.ttl && now >= e.opened;
                if fresh && e.generation == generation && *e.path == *path {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Lookup::Hit(e.file.clone());
                }
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        Lookup::Miss(miss)
    }

    /// Caches `file`, opened for `path` after `miss`, and returns it shared. The entry dates
    /// from the lookup (before the open), and an invalidation since the lookup leaves it stale:
    /// a file opened before an upload committed is never served after it from the cache.
    pub fn fill(&self, miss: Miss, path: &[u8], file: FileBody) -> Arc<FileBody> {
        let file = Arc::new(file);
        if self.ttl == Duration::ZERO {
            return file;
        }
        if let Ok(mut slot) = self.buckets[bucket_of(path)].lock() {
            let entry = Entry {
                path: path.into(),
                file: file.clone(),
                opened: miss.opened,
                generation: miss.generation,
            };
            // Whatever was there is dropped after the lock is released (closing a file is a
            // system call): swap it out first.
            let old = slot.replace(entry);
            drop(slot);
            drop(old);
        }
        file
    }

    /// Forgets every entry (lazily): call after changing a file under the root.
    pub fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn stats(&self) -> FileCacheStats {
        FileCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}

/// FNV-1a over the path, folded to a bucket index.
fn bucket_of(path: &[u8]) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in path {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h as usize) % BUCKETS
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::http::ResolveMode;

    /// A temporary directory, removed on drop (also used by `files.rs`'s tests).
    pub(crate) struct TempRoot(pub(crate) std::path::PathBuf);
    impl TempRoot {
        pub(crate) fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("linerate-fcache-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempRoot(dir)
        }
    }
    impl Drop for TempRoot {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn read_all(f: &FileBody) -> Vec<u8> {
        let mut buf = vec![0u8; f.len() as usize];
        let n = f.read_at(0, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn entries_are_reused_until_the_ttl_or_an_invalidation() {
        let t = TempRoot::new("ttl");
        std::fs::write(t.0.join("a"), b"first").unwrap();
        let root = Root::open(&t.0, ResolveMode::default()).unwrap();
        let cache = OpenFileCache::new(Duration::from_secs(1));
        let t0 = Instant::ZERO + Duration::from_secs(5);
        let a = cache.open(&root, b"/a", t0).unwrap();
        // Replaced by rename: the cached (old) inode is still served whole within the TTL.
        std::fs::write(t.0.join("a.new"), b"second!").unwrap();
        std::fs::rename(t.0.join("a.new"), t.0.join("a")).unwrap();
        let again = cache.open(&root, b"/a", t0 + Duration::from_millis(999)).unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        assert_eq!(read_all(&again), b"first");
        let later = cache.open(&root, b"/a", t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(read_all(&later), b"second!");
        assert_eq!(cache.stats(), FileCacheStats { hits: 1, misses: 2 });
        cache.invalidate_all();
        let fresh = cache.open(&root, b"/a", t0 + Duration::from_secs(1)).unwrap();
        assert!(!Arc::ptr_eq(&later, &fresh));
        // A clock that went backwards is not trusted either.
        let back = cache.open(&root, b"/a", t0).unwrap();
        assert!(!Arc::ptr_eq(&fresh, &back));
    }

    #[test]
    fn kept_bytes_are_served_until_the_ttl_then_the_new_content() {
        let t = TempRoot::new("kept");
        std::fs::write(t.0.join("a"), vec![b'o'; 1024]).unwrap();
        let root = Root::open(&t.0, ResolveMode::default()).unwrap();
        let cache = OpenFileCache::new(Duration::from_secs(1));
        let open = |now: Instant| match cache.lookup(b"/a", now) {
            Lookup::Hit(f) => f,
            Lookup::Miss(miss) => cache.fill(miss, b"/a", root.open_file_kept(b"/a").unwrap()),
        };
        let t0 = Instant::ZERO + Duration::from_secs(5);
        let first = open(t0);
        assert_eq!(first.kept_bytes(), Some(&[b'o'; 1024][..]));
        // Replaced by rename with a longer file, then rewritten in place: within the TTL every
        // response is the whole old content, matching the old length and ETag.
        std::fs::write(t.0.join("a.new"), vec![b'n'; 1500]).unwrap();
        std::fs::rename(t.0.join("a.new"), t.0.join("a")).unwrap();
        for ms in [1, 500, 999] {
            let f = open(t0 + Duration::from_millis(ms));
            assert!(Arc::ptr_eq(&f, &first));
            assert_eq!((f.len(), read_all(&f)), (1024, vec![b'o'; 1024]));
        }
        let later = open(t0 + Duration::from_secs(1));
        assert_eq!(later.kept_bytes(), Some(&[b'n'; 1500][..]));
        assert_eq!(later.len(), 1500);
        assert_ne!(later.etag(), first.etag());
        // An upload through the server invalidates at once.
        std::fs::write(t.0.join("a"), b"uploaded").unwrap();
        cache.invalidate_all();
        assert_eq!(open(t0 + Duration::from_secs(1)).kept_bytes(), Some(&b"uploaded"[..]));
    }

    #[test]
    fn failures_are_not_cached_and_zero_ttl_disables() {
        let t = TempRoot::new("miss");
        let root = Root::open(&t.0, ResolveMode::default()).unwrap();
        let cache = OpenFileCache::new(Duration::from_secs(60));
        assert!(matches!(cache.open(&root, b"/late", Instant::ZERO), Err(FileError::NotFound)));
        std::fs::write(t.0.join("late"), b"here").unwrap();
        assert_eq!(read_all(&cache.open(&root, b"/late", Instant::ZERO).unwrap()), b"here");
        let off = OpenFileCache::new(Duration::ZERO);
        let x = off.open(&root, b"/late", Instant::ZERO).unwrap();
        let y = off.open(&root, b"/late", Instant::ZERO).unwrap();
        assert!(!Arc::ptr_eq(&x, &y));
        assert_eq!(off.stats(), FileCacheStats::default());
    }

    #[test]
    fn colliding_paths_replace_each_other_and_stay_bounded() {
        let t = TempRoot::new("bound");
        let root = Root::open(&t.0, ResolveMode::default()).unwrap();
        for i in 0..3 * BUCKETS {
            std::fs::write(t.0.join(format!("f{i}")), format!("{i}")).unwrap();
        }
        let cache = OpenFileCache::new(Duration::from_secs(60));
        for i in 0..3 * BUCKETS {
            let path = format!("/f{i}");
            let f = cache.open(&root, path.as_bytes(), Instant::ZERO).unwrap();
            assert_eq!(read_all(&f), i.to_string().as_bytes());
        }
        let held = cache.buckets.iter().filter(|b| b.lock().unwrap().is_some()).count();
        assert!(held <= BUCKETS);
        for i in 0..3 * BUCKETS {
            let path = format!("/f{i}");
            let f = cache.open(&root, path.as_bytes(), Instant::ZERO).unwrap();
            assert_eq!(read_all(&f), i.to_string().as_bytes(), "never another path's file");
        }
    }

    #[test]
    fn an_open_that_straddles_an_invalidation_is_not_trusted() {
        let t = TempRoot::new("split");
        std::fs::write(t.0.join("a"), b"old").unwrap();
        let root = Root::open(&t.0, ResolveMode::default()).unwrap();
        let cache = OpenFileCache::new(Duration::from_secs(60));
        let Lookup::Miss(miss) = cache.lookup(b"/a", Instant::ZERO) else { panic!("empty cache hit") };
        let old = root.open_file(b"/a").unwrap();
        // An upload commits while the open is on its way back.
        cache.invalidate_all();
        let served = cache.fill(miss, b"/a", old);
        assert_eq!(read_all(&served), b"old", "the request that asked still gets what it opened");
        assert!(matches!(cache.lookup(b"/a", Instant::ZERO), Lookup::Miss(_)), "but it is not cached");
        let Lookup::Miss(miss) = cache.lookup(b"/a", Instant::ZERO) else { unreachable!() };
        cache.fill(miss, b"/a", root.open_file(b"/a").unwrap());
        assert!(matches!(cache.lookup(b"/a", Instant::from_millis(1)), Lookup::Hit(_)));
    }
}
