//! The stats seqlock under a writer that never stops: readers see only whole snapshots, in order.
//! Bounded by a publication count; no sleeps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use linerate_driver::shard::stats::{stats_cell, sum, Pod};

/// A snapshot whose fields must always agree: all equal to the generation, and `check` its sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
struct Snapshot {
    generation: u64,
    a: u64,
    b: u64,
    c: u64,
    check: u64,
}

// SAFETY: repr(C), u64 fields only.
unsafe impl Pod for Snapshot {}

impl Snapshot {
    fn of(generation: u64) -> Self {
        Snapshot {
            generation,
            a: generation,
            b: generation,
            c: generation,
            check: generation.wrapping_mul(3),
        }
    }
}

#[test]
fn readers_never_see_a_torn_or_older_snapshot_under_concurrent_writes() {
    const PUBLICATIONS: u64 = 100_000;
    let (mut publisher, reader) = stats_cell(Snapshot::default());
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (reader, done) = (reader.clone(), done.clone());
            thread::spawn(move || {
                let (mut last, mut reads, mut retries) = (0, 0u64, 0u64);
                while !done.load(Ordering::Relaxed) {
                    match reader.try_read() {
                        Some(s) => {
                            assert_eq!(s, Snapshot::of(s.generation), "torn snapshot");
                            assert!(s.generation >= last, "went back from {last} to {}", s.generation);
                            last = s.generation;
                            reads += 1;
                        }
                        None => retries += 1,
                    }
                }
                (reads, retries)
            })
        })
        .collect();
    for generation in 1..=PUBLICATIONS {
        publisher.publish(&Snapshot::of(generation));
        // A shard does a loop iteration of work between publications.
        for _ in 0..64 {
            std::hint::spin_loop();
        }
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        let (reads, retries) = r.join().unwrap();
        eprintln!("reader: {reads} whole reads, {retries} overlapped publications");
        assert!(reads > 0, "a reader never got a whole snapshot");
    }
    assert_eq!(reader.read(), Snapshot::of(PUBLICATIONS));
}

#[test]
fn odd_sized_snapshots_round_trip_and_sum_across_shards() {
    // 12 bytes: the last word is half used.
    let (mut p, r) = stats_cell([1u32, 2, 3]);
    assert_eq!(r.read(), [1, 2, 3]);
    p.publish(&[u32::MAX, 0, 7]);
    assert_eq!(r.read(), [u32::MAX, 0, 7]);
    let (_, zero) = stats_cell(());
    assert_eq!(zero.read(), ());

    let cells: Vec<_> = (1..=4u64).map(stats_cell).collect();
    let readers: Vec<_> = cells.iter().map(|(p, _)| p.reader()).collect();
    assert_eq!(sum(&readers), 10);
}
