//! loom model checks of the lock-free parts of `shard`: the SPSC ring and the stats seqlock.
//!
//! Compiled only with `--cfg loom` (loom replaces the atomics, so the normal build has nothing to
//! check here). Run with `ci/loom`:
//! `RUSTFLAGS="--cfg loom" cargo test -p linerate-driver --test shard_loom --release`.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;

use linerate_driver::shard::ring;
use linerate_driver::shard::stats::stats_cell;

/// Producer pushes 3 items through a 2-slot ring (so it must wrap and see "full"), consumer
/// takes them: every interleaving delivers all three, in order, exactly once.
#[test]
fn ring_single_items_fifo_under_every_interleaving() {
    loom::model(|| {
        let (mut tx, mut rx) = ring::channel::<u32>(2);
        let producer = thread::spawn(move || {
            for i in 0..3 {
                let mut item = i;
                while let Err(back) = tx.push(item) {
                    item = back;
                    thread::yield_now();
                }
            }
        });
        let mut expected = 0;
        while expected < 3 {
            match rx.pop() {
                Some(v) => {
                    assert_eq!(v, expected);
                    expected += 1;
                }
                None => thread::yield_now(),
            }
        }
        producer.join().unwrap();
        assert_eq!(rx.pop(), None);
    });
}

/// Batch push and batch pop through a 2-slot ring.
#[test]
fn ring_batches_fifo_under_every_interleaving() {
    loom::model(|| {
        let (mut tx, mut rx) = ring::channel::<u32>(2);
        let producer = thread::spawn(move || {
            let mut items = 0..3u32;
            while items.len() > 0 {
                if tx.push_iter(&mut items) == 0 {
                    thread::yield_now();
                }
            }
        });
        let mut expected = 0;
        while expected < 3 {
            let got = rx.pop_batch(2, |v| {
                assert_eq!(v, expected);
                expected += 1;
            });
            if got == 0 {
                thread::yield_now();
            }
        }
        producer.join().unwrap();
    });
}

/// Items left in the ring when both ends go away are dropped exactly once (loom reports a
/// leaked or double-freed `Arc`), whichever end is dropped last.
#[test]
fn ring_drops_leftover_items_once() {
    loom::model(|| {
        let (mut tx, mut rx) = ring::channel::<Arc<u32>>(2);
        let producer = thread::spawn(move || {
            let _ = tx.push(Arc::new(1));
            let _ = tx.push(Arc::new(2));
        });
        let _ = rx.pop();
        drop(rx);
        producer.join().unwrap();
    });
}

/// A reader concurrent with two publications of `[n, n]` only ever sees a whole snapshot, and
/// snapshots never go backwards.
#[test]
fn stats_reader_sees_whole_snapshots_only() {
    loom::model(|| {
        let (mut publisher, reader) = stats_cell::<[u64; 2]>([0, 0]);
        let writer = thread::spawn(move || {
            publisher.publish(&[1, 1]);
            publisher.publish(&[2, 2]);
        });
        let mut last = 0;
        for _ in 0..2 {
            if let Some([a, b]) = reader.try_read() {
                assert_eq!(a, b, "torn snapshot");
                assert!(a >= last, "went backwards");
                last = a;
            }
        }
        writer.join().unwrap();
        assert_eq!(reader.try_read(), Some([2, 2]));
    });
}
