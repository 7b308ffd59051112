//! Internet checksum throughput against memcpy of the same bytes.
//!
//! Target: `checksum` and `copy_from` within 2x of `memcpy` for a 1500-byte frame, so the
//! one-pass copy-and-checksum on the transmit path costs about one copy.

mod common;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use linerate_stack::wire::{checksum, Checksum};

fn bench_checksum(c: &mut Criterion) {
    let mut group = c.benchmark_group("checksum");
    for len in [64usize, 1500, 9000] {
        let src: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let mut dst = vec![0u8; len];
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("checksum", len), &src, |b, src| {
            b.iter(|| checksum(black_box(src)))
        });
        group.bench_with_input(BenchmarkId::new("memcpy", len), &src, |b, src| {
            b.iter(|| {
                dst.copy_from_slice(black_box(src));
                black_box(&mut dst);
            })
        });
        group.bench_with_input(BenchmarkId::new("copy_from", len), &src, |b, src| {
            b.iter(|| {
                let mut sum = Checksum::new();
                sum.copy_from(&mut dst, black_box(src));
                black_box(&mut dst);
                sum.finish()
            })
        });
        group.bench_with_input(BenchmarkId::new("copy_then_checksum", len), &src, |b, src| {
            b.iter(|| {
                dst.copy_from_slice(black_box(src));
                let mut sum = Checksum::new();
                sum.add_bytes(&dst);
                sum.finish()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench_checksum
}
criterion_main!(benches);
