//! The prefetcher: one helper thread per shard that does the file work that can wait for the
//! disk or stall the CPU, so the shard's packet loop never does.
//!
//! **Owns** the thread (pinned to `--io-cores`), its bounded job queue and answer queue, and the
//! shard's file counters. By default the thread runs on the CPUs no shard uses, never on a
//! shard's own core: its jobs can wait for the disk (`mlock`, `openat2`, `fdatasync`), and a
//! bulk download costs it 0.2–0.3 CPU-seconds per GB of page-table and LRU work (locking,
//! unlocking, unmapping; docs/PERFORMANCE.md), which on the shard's core would come straight
//! out of the packet loop's time. The shard queues jobs with `try_send` (never blocks; a full queue is
//! retried later or, for an unmap, done where it is):
//! - map: a large body starts; the thread maps the file ([`FileMap::new`]: `mmap`, which takes
//!   the process's address-space lock for writing, and the scan of the guard registry), checks
//!   with `mincore` how much of the first window is cached, and answers [`Done::Map`].
//! - [`Request`]: bring a mapped range in. The thread locks it ([`pagelock::lock_window`],
//!   `mlock`: read in, mapped into our page tables and unevictable until released) while the
//!   shard's budget allows, otherwise only populates it ([`FileMap::populate`],
//!   `MADV_POPULATE_READ`), confirms with `mincore` how much is resident, and answers with a
//!   [`Done::Mapped`]. The shard lends only ranges reported resident.
//! - [`ReadAhead`]: a `pread` body found its next bytes not cached (`RWF_NOWAIT` refused); the
//!   thread reads them into the page cache and answers [`Done::Read`], and the shard retries.
//! - open: a request's file was not in the open-file cache; the thread resolves and opens it
//!   ([`crate::http::Root::open_file`]: `openat2` and `statx`, which read the directory and the inode from
//!   the disk when they are cold) and answers [`Done::Open`]; the connection waits meanwhile.
//! - upload: a PUT's temporary file is created, written (`write` may wait for dirty-page
//!   throttling), committed (`fdatasync`, `renameat`) or abandoned (`unlinkat`) here, in the
//!   order the connection asked ([`UploadJob`]); answers are [`Done::Upload`]. An upload whose
//!   connection let go of it is deleted at the next job or within [`ABANDON_CHECK`].
//! - release: the engine let go of a mapped body's bytes before some offset; unlock them.
//! - unmap: a mapping's last reference dropped ([`Retirer`]); `munmap` it here (with its TLB
//!   shootdown across the process's threads) and account its locked bytes.
//!
//! The thread keeps the last [`MAP_CACHE`] mappings it made ([`MapCache`]): a map job for the
//! same file (identity and length) whose mapping nobody else holds any more reuses it, page
//! tables filled, instead of mapping, faulting in and later unmapping the file again (half
//! of this thread's CPU per GB on repeated bulk downloads, docs/PERFORMANCE.md). A mapping
//! nobody else holds is unlocked at once and unmapped after [`ABANDON_CHECK`] without jobs.
//!
//! **Promises:** at most [`QUEUE`] jobs and answers wait at once; each job holds its mapping by
//! `Arc` (or owns it, for an unmap), so a mapping outlives the work on it and is unmapped
//! exactly once. Dropping the `Prefetcher` stops the thread after the job it is doing and joins
//! it; mappings dropped after that are unmapped where they drop.
//!
//! **Must not** touch the engine or any connection state: it only reads files and mappings.

use super::mapped::{FileMap, Mapping};
use super::pagelock::{self, LockOutcome};
use crate::http::files::Upload;
use crate::http::{FileBody, FileError, Site, UploadAnswer, UploadJob};
use linerate_stack::engine::ConnectionHandle;
use linerate_stack::tcp::SendSource;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::sync::Weak;
use std::thread::JoinHandle;
use std::time::Duration as StdDuration;

/// Jobs (and answers) waiting at once, per shard.
pub const QUEUE: usize = 1024;
/// How often the thread looks for uploads abandoned while it had nothing else to do.
pub const ABANDON_CHECK: StdDuration = StdDuration::from_secs(1);
/// Mappings the thread keeps for reuse by the next response of the same file.
pub const MAP_CACHE: usize = 8;
/// The read-ahead thread reads through a buffer this large.
const READ_SCRATCH: usize = 64 * 1024;

/// Bring `[offset, offset + len)` of `map` in for connection `conn`.
#[derive(Debug)]
pub struct Request {
    pub conn: ConnectionHandle,
    pub map: Arc<FileMap>,
    pub offset: u64,
    pub len: usize,
}

/// Read `[offset, offset + len)` of `file` into the page cache for connection `conn`.
#[derive(Debug)]
pub struct ReadAhead {
    conn: ConnectionHandle,
    token: u64,
    /// A duplicate of the response's descriptor (the body itself stays with the connection).
    file: File,
    offset: u64,
    len: usize,
}

/// Map `file` (`len` bytes) for connection `conn` and check how much is resident from `offset`.
#[derive(Debug)]
struct MapJob {
    conn: ConnectionHandle,
    /// The file's (device, inode), as opened.
    identity: (u64, u64),
    token: u64,
    file: File,
    len: usize,
    offset: u64,
}

/// Open `path` under `site`'s root for connection `conn`.
#[derive(Debug)]
struct OpenJob {
    conn: ConnectionHandle,
    token: u64,
    site: Arc<Site>,
    path: Box<[u8]>,
}

#[derive(Debug)]
enum Job {
    Open(OpenJob),
    Upload {
        conn: ConnectionHandle,
        site: Arc<Site>,
        job: UploadJob,
    },
    Map(MapJob),
    Populate(Request),
    ReadAhead(ReadAhead),
    /// The engine holds no byte of `map` before `upto` any more.
    Release {
        map: Arc<FileMap>,
        upto: usize,
    },
    /// Unmap; `locked` bytes of it were still locked.
    Unmap {
        mapping: Mapping,
        locked: u64,
    },
    Stop,
}

/// What a job found.
#[derive(Debug)]
pub enum Done {
    Mapped {
        conn: ConnectionHandle,
        map: Arc<FileMap>,
        offset: u64,
        /// Bytes from `offset` that are resident (less than asked if unlocked pages were
        /// evicted again at once; the shard asks again).
        resident: usize,
        /// The range could not be read: the file is shorter than the response promised.
        failed: bool,
    },
    /// The range of read-ahead `token` was read (or the read failed: the retry finds out).
    Read { conn: ConnectionHandle, token: u64 },
    /// The mapping asked for as `token` (`None`: it could not be made; read the body instead),
    /// with `resident` bytes from the body's start in the page cache.
    Map { conn: ConnectionHandle, token: u64, map: Option<Arc<FileMap>>, resident: usize },
    /// The file asked for as `token`, opened (or why not).
    Open { conn: ConnectionHandle, token: u64, opened: Result<FileBody, FileError> },
    /// What an upload job did.
    Upload { conn: ConnectionHandle, answer: UploadAnswer },
}

impl Done {
    pub fn conn(&self) -> ConnectionHandle {
        match self {
            Done::Mapped { conn, .. }
            | Done::Read { conn, .. }
            | Done::Map { conn, .. }
            | Done::Open { conn, .. }
            | Done::Upload { conn, .. } => *conn,
        }
    }
}

/// A shard's file counters, as published (`linerate stats`, the summary at exit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct FileCounters {
    /// Bodies lent from a mapping.
    pub lent: u64,
    /// Bodies `pread` into the send ring.
    pub read: u64,
    /// Bodies cut short because the file shrank or failed (the connection was aborted).
    pub cut: u64,
    /// Times a `pread` body found its next bytes not cached and waited for the prefetcher.
    pub reads_deferred: u64,
    /// `pread`s done blocking on the shard (the file system cannot say "not cached", or the
    /// bytes were evicted again after every read-ahead).
    pub reads_blocking: u64,
    /// Bytes locked now (gauge).
    pub locked_bytes: u64,
    /// Bytes locked since start.
    pub locked_total: u64,
    /// Windows only populated because the lock budget was spent.
    pub lock_over_budget: u64,
    /// Windows only populated because `mlock` refused (RLIMIT_MEMLOCK, EPERM).
    pub lock_failed: u64,
    /// Mappings unmapped by the prefetch thread.
    pub unmaps_off_shard: u64,
    /// Mappings unmapped where they dropped (queue full, or after the prefetcher stopped).
    pub unmaps_inline: u64,
    /// Request files opened by the prefetch thread (open-file cache misses; the shard opens
    /// none itself).
    pub opens_off_shard: u64,
    /// Upload jobs (create, write, commit) done by the prefetch thread.
    pub upload_jobs: u64,
    /// Most write buffers one upload had waiting at once (at most `http::UPLOAD_BUFFERS`).
    pub upload_buffers_peak: u64,
    /// Bodies copied from the bytes kept with a small file (no system call).
    pub memory: u64,
}

impl FileCounters {
    /// `(name, value)` of every counter, for rendering.
    pub fn fields(&self) -> [(&'static str, u64); 15] {
        [
            ("bodies_lent", self.lent),
            ("bodies_read", self.read),
            ("bodies_cut", self.cut),
            ("reads_deferred", self.reads_deferred),
            ("reads_blocking", self.reads_blocking),
            ("locked_bytes", self.locked_bytes),
            ("locked_total", self.locked_total),
            ("lock_over_budget", self.lock_over_budget),
            ("lock_failed", self.lock_failed),
            ("unmaps_off_shard", self.unmaps_off_shard),
            ("unmaps_inline", self.unmaps_inline),
            ("opens_off_shard", self.opens_off_shard),
            ("upload_jobs", self.upload_jobs),
            ("upload_buffers_peak", self.upload_buffers_peak),
            ("bodies_memory", self.memory),
        ]
    }
}

impl core::ops::AddAssign for FileCounters {
    fn add_assign(&mut self, o: Self) {
        self.lent += o.lent;
        self.read += o.read;
        self.cut += o.cut;
        self.reads_deferred += o.reads_deferred;
        self.reads_blocking += o.reads_blocking;
        self.locked_bytes += o.locked_bytes;
        self.locked_total += o.locked_total;
        self.lock_over_budget += o.lock_over_budget;
        self.lock_failed += o.lock_failed;
        self.unmaps_off_shard += o.unmaps_off_shard;
        self.unmaps_inline += o.unmaps_inline;
        self.opens_off_shard += o.opens_off_shard;
        self.upload_jobs += o.upload_jobs;
        self.upload_buffers_peak = self.upload_buffers_peak.max(o.upload_buffers_peak);
        self.memory += o.memory;
    }
}

/// Counters the thread (and late unmaps) update, read by the shard.
#[derive(Debug, Default)]
struct IoCounters {
    locked_bytes: AtomicU64,
    locked_total: AtomicU64,
    lock_over_budget: AtomicU64,
    lock_failed: AtomicU64,
    unmaps_off_shard: AtomicU64,
    unmaps_inline: AtomicU64,
    opens_off_shard: AtomicU64,
    upload_jobs: AtomicU64,
}

/// Hands dropped mappings to the prefetch thread to unmap (given to each [`FileMap`]).
#[derive(Debug, Clone)]
pub struct Retirer {
    jobs: SyncSender<Job>,
    counters: Arc<IoCounters>,
}

impl Retirer {
    /// Queues `mapping` for unmapping; unmaps it here if the queue is full or the thread gone.
    pub(super) fn retire(&self, mapping: Mapping, locked: u64) {
        if let Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) =
            self.jobs.try_send(Job::Unmap { mapping, locked })
        {
            drop(job);
            self.counters.locked_bytes.fetch_sub(locked, Ordering::Relaxed);
            self.counters.unmaps_inline.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// How to run a prefetcher.
#[derive(Debug, Clone)]
pub struct PrefetchConfig {
    /// CPUs the thread may run on; empty: wherever the process may.
    pub io_cores: Vec<usize>,
    /// Most bytes locked at once ([`pagelock::LOCK_BUDGET`] in the server).
    pub lock_budget: u64,
}

/// One shard's prefetch thread.
#[derive(Debug)]
pub struct Prefetcher {
    /// The shard-side counters, counted by the connections' body code (`body.rs`).
    pub counts: FileCounters,
    jobs: Option<SyncSender<Job>>,
    done: Option<Receiver<Done>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<IoCounters>,
    /// Set when the prefetcher is dropped: the thread stops after its current job.
    stop: Arc<AtomicBool>,
    /// Jobs sent that will be answered and are not yet.
    outstanding: usize,
    next_token: u64,
}

impl Prefetcher {
    /// Starts the thread (named `name`), pinned to `config.io_cores`.
    pub fn spawn(name: String, config: &PrefetchConfig) -> io::Result<Prefetcher> {
        let (job_tx, job_rx) = mpsc::sync_channel::<Job>(QUEUE);
        let (done_tx, done_rx) = mpsc::sync_channel::<Done>(QUEUE);
        let shared = Arc::new(IoCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let retire = Retirer { jobs: job_tx.clone(), counters: shared.clone() };
        let worker = Worker {
            done: done_tx,
            counters: shared.clone(),
            budget: config.lock_budget,
            stop: stop.clone(),
            retire,
        };
        let thread = std::thread::Builder::new().name(name).spawn(move || worker.run(&job_rx))?;
        let prefetcher = Prefetcher {
            counts: FileCounters::default(),
            jobs: Some(job_tx),
            done: Some(done_rx),
            thread: Some(thread),
            shared,
            stop,
            outstanding: 0,
            next_token: 0,
        };
        if let Some(thread) = &prefetcher.thread {
            // On failure the prefetcher is dropped, which stops the thread.
            pin(thread, &config.io_cores)?;
        }
        Ok(prefetcher)
    }

    /// Queues a request without blocking; gives it back when the queue is full.
    pub fn request(&mut self, r: Request) -> Result<(), Request> {
        let Some(tx) = &self.jobs else { return Err(r) };
        match tx.try_send(Job::Populate(r)) {
            Ok(()) => {
                self.outstanding += 1;
                Ok(())
            }
            Err(TrySendError::Full(Job::Populate(r)) | TrySendError::Disconnected(Job::Populate(r))) => {
                Err(r)
            }
            Err(_) => unreachable!("try_send gives back the job it was given"),
        }
    }

    /// Queues a read-ahead of `[offset, offset + len)` of `file`; returns the token its
    /// [`Done::Read`] will carry, or `None` if the queue is full or the descriptor could not be
    /// duplicated (the caller tries again later).
    pub fn read_ahead(
        &mut self,
        conn: ConnectionHandle,
        file: &FileBody,
        offset: u64,
        len: usize,
    ) -> Option<u64> {
        let tx = self.jobs.as_ref()?;
        let file = File::from(file.as_fd().try_clone_to_owned().ok()?);
        let token = self.next_token;
        tx.try_send(Job::ReadAhead(ReadAhead { conn, token, file, offset, len })).ok()?;
        self.next_token += 1;
        self.outstanding += 1;
        Some(token)
    }

    /// Queues the mapping of `file` for a body starting at `offset` (`mmap`, the guard
    /// registry and the first `mincore` stay off the shard); returns the token its
    /// [`Done::Map`] will carry, or `None` (queue full, no descriptor left: read the body).
    pub fn map(&mut self, conn: ConnectionHandle, file: &FileBody, offset: u64) -> Option<u64> {
        let tx = self.jobs.as_ref()?;
        let len = usize::try_from(file.len()).ok()?;
        let identity = file.identity();
        let file = File::from(file.as_fd().try_clone_to_owned().ok()?);
        let token = self.next_token;
        tx.try_send(Job::Map(MapJob { conn, identity, token, file, len, offset })).ok()?;
        self.next_token += 1;
        self.outstanding += 1;
        Some(token)
    }

    /// Queues the open of request path `path` under `site`'s root; returns the token its
    /// [`Done::Open`] will carry, or `None` if the queue is full (the caller tries again later).
    pub fn open(&mut self, conn: ConnectionHandle, site: &Arc<Site>, path: &[u8]) -> Option<u64> {
        let tx = self.jobs.as_ref()?;
        let token = self.next_token;
        // A copy of the path per cache miss: the miss is about to cost a thread hop and two
        // system calls anyway, and hits (the steady state) allocate nothing.
        let job = OpenJob { conn, token, site: site.clone(), path: path.into() };
        tx.try_send(Job::Open(job)).ok()?;
        self.next_token += 1;
        self.outstanding += 1;
        Some(token)
    }

    /// Queues an upload job of connection `conn`; gives it back if the queue is full.
    pub fn upload(
        &mut self,
        conn: ConnectionHandle,
        site: &Arc<Site>,
        job: UploadJob,
    ) -> Result<(), UploadJob> {
        let Some(tx) = &self.jobs else { return Err(job) };
        match tx.try_send(Job::Upload { conn, site: site.clone(), job }) {
            Ok(()) => {
                self.outstanding += 1;
                Ok(())
            }
            Err(
                TrySendError::Full(Job::Upload { job, .. })
                | TrySendError::Disconnected(Job::Upload { job, .. }),
            ) => Err(job),
            Err(_) => unreachable!("try_send gives back the job it was given"),
        }
    }

    /// Tells the thread the engine holds no byte of `map` before `upto` any more; false if the
    /// queue is full (ask again later).
    pub fn release(&mut self, map: &Arc<FileMap>, upto: usize) -> bool {
        let Some(tx) = &self.jobs else { return false };
        tx.try_send(Job::Release { map: map.clone(), upto }).is_ok()
    }

    /// What a mapping made elsewhere should unmap through (this thread's own mappings already
    /// do).
    pub fn retirer(&self) -> Option<Retirer> {
        Some(Retirer { jobs: self.jobs.clone()?, counters: self.shared.clone() })
    }

    /// The next answer, if one is waiting.
    pub fn poll_done(&mut self) -> Option<Done> {
        match self.done.as_ref()?.try_recv() {
            Ok(d) => {
                self.outstanding -= 1;
                Some(d)
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => None,
        }
    }

    /// Requests not answered yet (the shard polls more often while any are pending).
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// The shard's counters and the thread's, together.
    pub fn counters(&self) -> FileCounters {
        let s = &*self.shared;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FileCounters {
            locked_bytes: get(&s.locked_bytes),
            locked_total: get(&s.locked_total),
            lock_over_budget: get(&s.lock_over_budget),
            lock_failed: get(&s.lock_failed),
            unmaps_off_shard: get(&s.unmaps_off_shard),
            unmaps_inline: get(&s.unmaps_inline),
            opens_off_shard: get(&s.opens_off_shard),
            upload_jobs: get(&s.upload_jobs),
            ..self.counts
        }
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Without the answer queue a thread waiting to answer stops; a busy thread sees `stop`
        // after its job (not the whole queue); a thread waiting for work gets `Stop` (mappings
        // still alive hold senders, so the queue alone never closes). The send cannot hang:
        // the thread either takes it or has dropped the queue.
        self.stop.store(true, Ordering::Relaxed);
        self.done = None;
        if let Some(tx) = self.jobs.take() {
            let _ = tx.send(Job::Stop);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Restricts `thread` to `cores` (nothing to do when empty).
fn pin(thread: &JoinHandle<()>, cores: &[usize]) -> io::Result<()> {
    if cores.is_empty() {
        return Ok(());
    }
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &core in cores {
        if core >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("no CPU {core}")));
        }
        // SAFETY: an index below CPU_SETSIZE into the set we own.
        unsafe { libc::CPU_SET(core, &mut set) };
    }
    // SAFETY: a live thread of ours (joined only on drop) and a valid set of the size passed.
    let rc = unsafe {
        libc::pthread_setaffinity_np(thread.as_pthread_t(), std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    match rc {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// The thread's side.
struct Worker {
    done: SyncSender<Done>,
    counters: Arc<IoCounters>,
    budget: u64,
    stop: Arc<AtomicBool>,
    /// Given to the mappings this thread makes.
    retire: Retirer,
}

impl Worker {
    fn run(self, jobs: &Receiver<Job>) {
        let mut scratch = Vec::new();
        let mut buf = vec![0u8; READ_SCRATCH];
        let mut uploads = Uploads::default();
        let mut maps = MapCache::default();
        loop {
            let job = if uploads.is_empty() && maps.is_empty() {
                jobs.recv().map_err(|_| false)
            } else {
                jobs.recv_timeout(ABANDON_CHECK).map_err(|e| e == mpsc::RecvTimeoutError::Timeout)
            };
            uploads.drop_abandoned();
            maps.unlock_unused(&self.counters.locked_bytes);
            let job = match job {
                Ok(job) => job,
                Err(true) => {
                    maps.drop_unused();
                    continue;
                }
                Err(false) => return,
            };
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let answer = match job {
                Job::Stop => return,
                Job::Upload { conn, site, job } => {
                    self.counters.upload_jobs.fetch_add(1, Ordering::Relaxed);
                    Done::Upload { conn, answer: uploads.run(&site, job) }
                }
                Job::Open(o) => {
                    let opened = o.site.root().open_file_kept(&o.path);
                    self.counters.opens_off_shard.fetch_add(1, Ordering::Relaxed);
                    Done::Open { conn: o.conn, token: o.token, opened }
                }
                Job::Map(m) => self.map(m, &mut scratch, &mut maps),
                Job::Populate(r) => self.populate(r, &mut scratch),
                Job::ReadAhead(r) => read_ahead(r, &mut buf),
                Job::Release { map, upto } => {
                    pagelock::release(&map, upto, &self.counters.locked_bytes);
                    continue;
                }
                Job::Unmap { mapping, locked } => {
                    drop(mapping);
                    self.counters.locked_bytes.fetch_sub(locked, Ordering::Relaxed);
                    self.counters.unmaps_off_shard.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            if self.done.send(answer).is_err() {
                return;
            }
        }
    }

    /// Maps the file (guarded, unmapped through this thread) and checks the first window.
    fn map(&self, m: MapJob, scratch: &mut Vec<u8>, maps: &mut MapCache) -> Done {
        let start = usize::try_from(m.offset).unwrap_or(usize::MAX);
        if let Some(map) = maps.reuse(m.identity, m.len, &self.counters.locked_bytes) {
            let resident = map.resident_prefix(start, super::body::WINDOW, scratch);
            return Done::Map { conn: m.conn, token: m.token, map: Some(map), resident };
        }
        let (map, resident) = match FileMap::new(&m.file, m.len) {
            Ok(map) => {
                let map = Arc::new(map.retire_to(self.retire.clone()));
                let resident = map.resident_prefix(start, super::body::WINDOW, scratch);
                maps.keep(m.identity, map.clone());
                (Some(map), resident)
            }
            Err(_) => (None, 0),
        };
        Done::Map { conn: m.conn, token: m.token, map, resident }
    }

    /// Locks the range if the budget allows, else populates it; then reports what is resident.
    fn populate(&self, r: Request, scratch: &mut Vec<u8>) -> Done {
        let start = usize::try_from(r.offset).unwrap_or(usize::MAX);
        let c = &self.counters;
        let locked = match pagelock::lock_window(&r.map, start, r.len, self.budget, &c.locked_bytes) {
            LockOutcome::Locked { added } => {
                c.locked_total.fetch_add(added, Ordering::Relaxed);
                true
            }
            LockOutcome::OverBudget | LockOutcome::Detached => {
                c.lock_over_budget.fetch_add(1, Ordering::Relaxed);
                false
            }
            LockOutcome::Refused(_) => {
                c.lock_failed.fetch_add(1, Ordering::Relaxed);
                false
            }
        };
        let failed = !locked && r.map.populate(start, r.len).is_err();
        if failed {
            // The file is shorter than the response promised: no byte of it may be sent now.
            r.map.poison();
        }
        let resident = if failed { 0 } else { r.map.resident_prefix(start, r.len, scratch) };
        Done::Mapped { conn: r.conn, map: r.map, offset: r.offset, resident, failed }
    }
}

/// The mappings the thread made last, by file (device, inode), oldest first.
#[derive(Default)]
struct MapCache {
    maps: Vec<((u64, u64), Arc<FileMap>)>,
}

impl MapCache {
    fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }

    /// A kept mapping of the file that nobody else holds (so no engine still sends from it and
    /// its page locks are this thread's to reset), intact, of the same length.
    fn reuse(&mut self, identity: (u64, u64), len: usize, locked: &AtomicU64) -> Option<Arc<FileMap>> {
        let (_, map) = self.maps.iter().find(|(id, map)| {
            *id == identity && map.len() == len && Arc::strong_count(map) == 1 && map.is_intact()
        })?;
        // A new body locks from its own start: no span left from the last one.
        pagelock::release(map, map.len(), locked);
        Some(map.clone())
    }

    /// Keeps `map` (dropping the oldest mapping nobody else holds if full: unmapped through the
    /// retirer; if every kept mapping is in use, `map` is not kept).
    fn keep(&mut self, identity: (u64, u64), map: Arc<FileMap>) {
        if self.maps.len() >= MAP_CACHE {
            match self.maps.iter().position(|(_, m)| Arc::strong_count(m) == 1) {
                Some(i) => drop(self.maps.remove(i)),
                None => return,
            }
        }
        self.maps.push((identity, map));
    }

    /// Unlocks what kept mappings nobody else holds still have locked: the engine let go of
    /// all of it when it dropped its last reference.
    fn unlock_unused(&self, locked: &AtomicU64) {
        for (_, map) in &self.maps {
            if Arc::strong_count(map) == 1 && map.locked.bytes() > 0 {
                pagelock::release(map, map.len(), locked);
            }
        }
    }

    /// Lets go of the mappings nobody else holds (they are unmapped through the retirer).
    fn drop_unused(&mut self) {
        self.maps.retain(|(_, map)| Arc::strong_count(map) > 1);
    }
}

/// An upload the thread holds.
struct HeldUpload {
    upload: Upload,
    /// Dead once the connection let go of the upload.
    alive: Weak<u64>,
    /// A write failed: the commit must fail too (the connection may have sent it already).
    failed: bool,
}

/// The uploads the thread holds, by id; each is deleted when dropped before its commit.
#[derive(Default)]
struct Uploads {
    open: HashMap<u64, HeldUpload>,
}

impl Uploads {
    fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Deletes the uploads whose connections let go of them.
    fn drop_abandoned(&mut self) {
        self.open.retain(|_, held| held.alive.strong_count() > 0);
    }

    fn run(&mut self, site: &Site, job: UploadJob) -> UploadAnswer {
        match job {
            UploadJob::Begin { id, path, alive } => {
                let result = site.root().begin_upload(&path, id).map(|upload| {
                    self.open.insert(id, HeldUpload { upload, alive, failed: false });
                });
                UploadAnswer::Begun { id, result }
            }
            UploadJob::Write { id, data } => {
                let ok = self.open.get_mut(&id).is_some_and(|held| {
                    held.failed = held.failed || held.upload.write_all(&data).is_err();
                    !held.failed
                });
                UploadAnswer::Written { id, buf: data, ok }
            }
            UploadJob::Commit { id } => {
                let result = match self.open.remove(&id) {
                    // Dropped uncommitted: the temporary file is deleted.
                    Some(held) if held.failed => {
                        Err(FileError::Io(io::Error::other("an earlier write of the upload failed")))
                    }
                    Some(held) => held.upload.commit(),
                    None => Err(FileError::NotFound),
                };
                UploadAnswer::Committed { id, result }
            }
        }
    }
}

/// Reads the range through `buf` so it is in the page cache when the shard retries.
fn read_ahead(r: ReadAhead, buf: &mut [u8]) -> Done {
    let end = r.offset.saturating_add(r.len as u64);
    let mut at = r.offset;
    while at < end {
        let n = usize::try_from(end - at).unwrap_or(usize::MAX).min(buf.len());
        match r.file.read_at(&mut buf[..n], at) {
            Ok(0) => break,
            Ok(k) => at += k as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // The shard's own read meets the same error and fails the body.
            Err(_) => break,
        }
    }
    Done::Read { conn: r.conn, token: r.token }
}

#[cfg(test)]
#[path = "prefetch_tests.rs"]
mod tests;
