//! The prefetch thread on its own: locking within the budget, releasing, unmapping off the
//! calling thread, read-ahead of cold files, and pinning.

use super::*;
use crate::http::{ResolveMode, Root};
use crate::serve::nowait::{read_at_nowait, NoWaitRead};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;
const CONN: ConnectionHandle = ConnectionHandle { index: 7, generation: 3 };

/// A directory of test files, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let path = std::env::temp_dir().join(format!("linerate-prefetch-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        Dir(path)
    }

    /// A file of `len` bytes, written to disk and dropped from the page cache.
    fn cold_file(&self, name: &str, len: usize) -> File {
        let path = self.0.join(name);
        crate::serve::nowait::write_cold_file(&path, &vec![0x5a; len]);
        File::open(path).unwrap()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn spawn(name: &str, lock_budget: u64) -> Prefetcher {
    Prefetcher::spawn(name.into(), &PrefetchConfig { io_cores: Vec::new(), lock_budget }).unwrap()
}

/// Polls until `check` holds (bounded; yields, never sleeps).
fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

fn next_done(p: &mut Prefetcher) -> Done {
    let mut done = None;
    until("the prefetcher's answer", || {
        done = p.poll_done();
        done.is_some()
    });
    done.unwrap()
}

fn mapped(p: &Prefetcher, file: &File, len: usize) -> Arc<FileMap> {
    Arc::new(FileMap::new(file, len).unwrap().retire_to(p.retirer().unwrap()))
}

#[test]
fn locked_windows_are_released_and_the_unmap_happens_on_the_prefetch_thread() {
    let dir = Dir::new("lock");
    let file = dir.cold_file("f", 3 * MIB);
    let mut p = spawn("lr-pftest-lock", u64::MAX);
    let map = mapped(&p, &file, 3 * MIB);
    p.request(Request { conn: CONN, map: map.clone(), offset: 0, len: 2 * MIB }).unwrap();
    assert_eq!(p.outstanding(), 1);
    match next_done(&mut p) {
        Done::Mapped { conn, resident, failed, offset: 0, .. } => {
            assert_eq!((conn, resident, failed), (CONN, 2 * MIB, false));
        }
        other => panic!("unexpected answer {other:?}"),
    }
    assert_eq!(p.outstanding(), 0);
    let c = p.counters();
    assert_eq!((c.locked_bytes, c.locked_total), (2 * MIB as u64, 2 * MIB as u64));
    assert!(p.release(&map, MIB + 100));
    until("the release", || p.counters().locked_bytes == MIB as u64);
    // The last reference drops here, on the "shard": the mapping goes to the thread.
    drop(map);
    until("the unmap", || p.counters().unmaps_off_shard == 1);
    let c = p.counters();
    assert_eq!((c.locked_bytes, c.unmaps_inline, c.lock_over_budget, c.lock_failed), (0, 0, 0, 0));
    assert_eq!(c.locked_total, 2 * MIB as u64, "the total only grows");
}

#[test]
fn past_the_budget_windows_are_populated_only_and_counted() {
    let dir = Dir::new("budget");
    let file = dir.cold_file("f", 2 * MIB);
    let mut p = spawn("lr-pftest-budg", MIB as u64);
    let map = mapped(&p, &file, 2 * MIB);
    for (offset, len) in [(0, MIB / 2), (MIB / 2, MIB)] {
        p.request(Request { conn: CONN, map: map.clone(), offset: offset as u64, len }).unwrap();
        match next_done(&mut p) {
            Done::Mapped { resident, failed: false, .. } => assert_eq!(resident, len, "resident either way"),
            other => panic!("unexpected answer {other:?}"),
        }
    }
    let c = p.counters();
    assert_eq!((c.locked_bytes, c.lock_over_budget), (MIB as u64 / 2, 1));
    drop(map);
    until("the unmap", || p.counters().unmaps_off_shard == 1);
    assert_eq!(p.counters().locked_bytes, 0);
}

#[test]
fn a_read_ahead_brings_a_cold_range_into_the_page_cache() {
    let dir = Dir::new("read");
    let root = Root::open(&dir.0, ResolveMode::default()).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    // A `RWF_NOWAIT` read of a cold range starts the kernel's own read-ahead and succeeds when
    // that finishes before the read looks again (this VM's fast virtual disk often does): make
    // the cold file again until the premise, a range the shard cannot read, holds (bounded);
    // what follows holds either way.
    let mut refused = false;
    let mut body = None;
    for _ in 0..20 {
        drop(dir.cold_file("small", 48 * 1024));
        let cold = root.open_file(b"/small").unwrap();
        match read_at_nowait(&cold, 0, &mut buf) {
            NoWaitRead::NotCached => refused = true,
            NoWaitRead::Read(n) => assert_eq!(n, 48 * 1024),
            other => panic!("a cold file read as {other:?}"),
        }
        body = Some(cold);
        if refused {
            break;
        }
    }
    eprintln!("cold range refused: {refused}");
    let body = body.unwrap();
    let mut p = spawn("lr-pftest-read", 0);
    let token = p.read_ahead(CONN, &body, 0, 48 * 1024).unwrap();
    match next_done(&mut p) {
        Done::Read { conn, token: t } => assert_eq!((conn, t), (CONN, token)),
        other => panic!("unexpected answer {other:?}"),
    }
    match read_at_nowait(&body, 0, &mut buf) {
        NoWaitRead::Read(n) => assert_eq!(n, 48 * 1024),
        other => panic!("still not readable without waiting: {other:?}"),
    }
    assert_ne!(p.read_ahead(CONN, &body, 0, 1).unwrap(), token, "tokens are unique");
}

#[test]
fn the_thread_runs_on_the_io_cores_only() {
    let allowed = crate::serve::core_ids();
    let core = *allowed.last().unwrap();
    let name = "lr-pftest-pin";
    let _p =
        Prefetcher::spawn(name.into(), &PrefetchConfig { io_cores: vec![core], lock_budget: 0 }).unwrap();
    // The thread names itself once it runs, which may be after `spawn` returns.
    let mut found = None;
    until("the named thread", || {
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let task = task.path();
            if std::fs::read_to_string(task.join("comm")).unwrap_or_default().trim() == name {
                let status = std::fs::read_to_string(task.join("status")).unwrap_or_default();
                found = status
                    .lines()
                    .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                    .map(|v| v.trim().to_owned());
            }
        }
        found.is_some()
    });
    assert_eq!(found, Some(core.to_string()));
    let bad = Prefetcher::spawn(
        "lr-pftest-bad".into(),
        &PrefetchConfig { io_cores: vec![100_000], lock_budget: 0 },
    );
    assert!(bad.is_err(), "a CPU that does not exist is an error");
}

#[test]
fn mappings_are_made_on_the_prefetch_thread_or_refused() {
    let dir = Dir::new("map");
    drop(dir.cold_file("big", 3 * MIB));
    drop(dir.cold_file("empty", 0));
    std::fs::read(dir.0.join("big")).unwrap(); // cached now
    let root = Root::open(&dir.0, ResolveMode::default()).unwrap();
    let mut p = spawn("lr-pftest-map", u64::MAX);
    let big = root.open_file(b"/big").unwrap();
    let token = p.map(CONN, &big, 100).unwrap();
    let map = match next_done(&mut p) {
        Done::Map { conn, token: t, map: Some(map), resident } => {
            assert_eq!((conn, t, map.len()), (CONN, token, 3 * MIB));
            assert_eq!(resident, super::super::body::WINDOW, "the first window from the body's start");
            map
        }
        other => panic!("unexpected answer {other:?}"),
    };
    let mut direct = vec![0u8; 4096];
    big.read_at(MIB as u64, &mut direct).unwrap();
    assert_eq!(&linerate_stack::tcp::SendSource::bytes(&*map)[MIB..MIB + 4096], &direct[..]);
    // Dropped here, unmapped there.
    drop(map);
    until("the unmap", || p.counters().unmaps_off_shard == 1);
    // An empty file cannot be mapped: the answer says so and the body is read instead.
    let empty = root.open_file(b"/empty").unwrap();
    let token = p.map(CONN, &empty, 0).unwrap();
    match next_done(&mut p) {
        Done::Map { token: t, map: None, .. } => assert_eq!(t, token),
        other => panic!("unexpected answer {other:?}"),
    }
}

/// The mapping a map job answers with (asserting the answer is for `token`).
fn map_answer(p: &mut Prefetcher, token: u64) -> Arc<FileMap> {
    match next_done(p) {
        Done::Map { token: t, map: Some(map), .. } if t == token => map,
        other => panic!("unexpected answer {other:?}"),
    }
}

#[test]
fn a_mapping_nobody_holds_is_unlocked_reused_for_the_same_file_then_unmapped_when_idle() {
    let dir = Dir::new("reuse");
    drop(dir.cold_file("f", 3 * MIB));
    drop(dir.cold_file("g", 2 * MIB));
    let root = Root::open(&dir.0, ResolveMode::default()).unwrap();
    let mut p = spawn("lr-pftest-reuse", u64::MAX);
    let f = root.open_file(b"/f").unwrap();
    let t = p.map(CONN, &f, 0).unwrap();
    let first = map_answer(&mut p, t);
    p.request(Request { conn: CONN, map: first.clone(), offset: 0, len: 2 * MIB }).unwrap();
    assert!(matches!(next_done(&mut p), Done::Mapped { resident, .. } if resident == 2 * MIB));
    assert_eq!(p.counters().locked_bytes, 2 * MIB as u64);
    // While a response still holds the mapping, another response of the file gets its own:
    // the locked span of one mapping belongs to one body.
    let t = p.map(CONN, &f, 0).unwrap();
    let second = map_answer(&mut p, t);
    assert!(!Arc::ptr_eq(&first, &second), "a mapping in use was lent twice");
    // Once nobody holds it, its locks go (the engine let go of every byte) and the next
    // response of the same file reuses it instead of mapping again.
    let first_at = Arc::as_ptr(&first);
    drop(first);
    drop(second);
    let t = p.map(CONN, &f, 0).unwrap();
    let again = map_answer(&mut p, t);
    assert!(std::ptr::eq(Arc::as_ptr(&again), first_at), "the kept mapping was not reused");
    assert_eq!((again.locked.bytes(), p.counters().locked_bytes), (0, 0), "locks left from the last body");
    // Another file is never answered with this mapping.
    let g = root.open_file(b"/g").unwrap();
    let t = p.map(CONN, &g, 0).unwrap();
    let other = map_answer(&mut p, t);
    assert_eq!(other.len(), 2 * MIB);
    assert_eq!(p.counters().unmaps_off_shard, 0, "kept mappings are not unmapped while in use");
    // With no jobs, the kept mappings nobody holds are unmapped on the thread.
    drop((again, other));
    until("the idle unmaps", || p.counters().unmaps_off_shard == 3);
    assert_eq!((p.counters().locked_bytes, p.counters().unmaps_inline), (0, 0));
}
