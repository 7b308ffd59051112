//! Rings between shards: our SPSC ring (`linerate_driver::shard::ring`) against crossbeam's
//! MPMC `ArrayQueue`, in the shapes shard-to-shard traffic has. Results feed the table in the
//! ring module's docs.
//!
//! * `single_thread/one`: push then pop one `u64` on one thread (pure instruction cost).
//! * `single_thread/batch32`: push 32 then pop 32 (per-item cost with batching).
//! * `cross_thread/batch32`: a producer thread pushes in batches of 32, this thread pops in
//!   batches of 32; reported per item (includes the cache-line traffic between cores).

mod common;

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;
use linerate_driver::shard::ring;

const CAPACITY: usize = 1024;
const BATCH: u64 = 32;

fn single_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("rings/single_thread");
    group.throughput(Throughput::Elements(1));
    let (mut tx, mut rx) = ring::channel::<u64>(CAPACITY);
    group.bench_function(BenchmarkId::new("one", "spsc"), |b| {
        b.iter(|| {
            let _ = tx.push(black_box(7));
            black_box(rx.pop())
        })
    });
    let queue = ArrayQueue::<u64>::new(CAPACITY);
    group.bench_function(BenchmarkId::new("one", "arrayqueue"), |b| {
        b.iter(|| {
            let _ = queue.push(black_box(7));
            black_box(queue.pop())
        })
    });

    group.throughput(Throughput::Elements(BATCH));
    group.bench_function(BenchmarkId::new("batch32", "spsc"), |b| {
        b.iter(|| {
            tx.push_iter(&mut (0..black_box(BATCH)));
            rx.pop_batch(BATCH as usize, |v| {
                black_box(v);
            })
        })
    });
    group.bench_function(BenchmarkId::new("batch32", "arrayqueue"), |b| {
        b.iter(|| {
            for v in 0..black_box(BATCH) {
                let _ = queue.push(v);
            }
            for _ in 0..BATCH {
                black_box(queue.pop());
            }
        })
    });
    group.finish();
}

/// Moves `items` from a producer thread to this one; returns the time taken.
fn cross_spsc(items: u64) -> Duration {
    let (mut tx, mut rx) = ring::channel::<u64>(CAPACITY);
    let producer = thread::spawn(move || {
        let mut next = 0;
        while next < items {
            let mut batch = next..(next + BATCH).min(items);
            next += tx.push_iter(&mut batch) as u64;
        }
    });
    let start = Instant::now();
    let mut received = 0;
    while received < items {
        received += rx.pop_batch(BATCH as usize, |v| {
            black_box(v);
        }) as u64;
    }
    let elapsed = start.elapsed();
    producer.join().unwrap();
    elapsed
}

fn cross_arrayqueue(items: u64) -> Duration {
    let queue = std::sync::Arc::new(ArrayQueue::<u64>::new(CAPACITY));
    let tx = queue.clone();
    let producer = thread::spawn(move || {
        let mut next = 0;
        while next < items {
            for _ in 0..BATCH.min(items - next) {
                if tx.push(next).is_err() {
                    break;
                }
                next += 1;
            }
        }
    });
    let start = Instant::now();
    let mut received = 0;
    while received < items {
        for _ in 0..BATCH {
            match queue.pop() {
                Some(v) => {
                    black_box(v);
                    received += 1;
                }
                None => break,
            }
        }
    }
    let elapsed = start.elapsed();
    producer.join().unwrap();
    elapsed
}

fn cross_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("rings/cross_thread");
    group.throughput(Throughput::Elements(1));
    // Each sample moves at least this many items so thread start-up is amortised.
    const MIN_ITEMS: u64 = 100_000;
    group.bench_function(BenchmarkId::new("batch32", "spsc"), |b| {
        b.iter_custom(|iters| {
            let items = iters.max(MIN_ITEMS);
            cross_spsc(items).mul_f64(iters as f64 / items as f64)
        })
    });
    group.bench_function(BenchmarkId::new("batch32", "arrayqueue"), |b| {
        b.iter_custom(|iters| {
            let items = iters.max(MIN_ITEMS);
            cross_arrayqueue(items).mul_f64(iters as f64 / items as f64)
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = single_thread, cross_thread
}
criterion_main!(benches);
