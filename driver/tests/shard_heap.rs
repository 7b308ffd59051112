//! The shards' heap setting: memory a shard frees stays in its arena, so allocating it again
//! costs no page fault (and no `madvise`/`mprotect` that would interrupt the other shards).

use linerate_driver::shard::heap::{retain_freed_memory, HeapTuning};

/// Minor page faults of the calling thread so far.
fn thread_minor_faults() -> i64 {
    // SAFETY: rusage is plain data that the kernel fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) }, 0);
    usage.ru_minflt
}

/// One connection's worth of churn, several times over: 64 blocks of 8 KiB (512 KiB, four
/// times glibc's default trim threshold) allocated, written, and freed.
fn churn() {
    let blocks: Vec<Box<[u8; 8192]>> = (0..64).map(|i| Box::new([i as u8; 8192])).collect();
    std::hint::black_box(&blocks);
}

#[test]
fn freed_memory_is_reused_without_page_faults() {
    let tuning = retain_freed_memory();
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        assert_eq!(tuning, HeapTuning::Unsupported);
        return;
    }
    assert_eq!(tuning, HeapTuning::Applied);
    // A fresh thread gets a fresh arena, as a shard thread does.
    let faults = std::thread::spawn(|| {
        churn();
        let before = thread_minor_faults();
        for _ in 0..200 {
            churn();
        }
        thread_minor_faults() - before
    })
    .join()
    .unwrap();
    // With glibc's default trimming every round gives ~100 pages back and faults them in again
    // (about 20,000 faults here); kept, the pages stay mapped.
    assert!(faults < 64, "{faults} page faults in 200 rounds of reusing freed memory");
}
