//! Connection-setup building blocks: SYN cookies, ISNs, and the flow table at 1 M flows (against
//! std's HashMap with the same SipHash-1-3, to justify the table's design).
//!
//! Run: `cargo bench -p linerate-bench --bench handshake`
//! (quick look: append `-- --warm-up-time 1 --measurement-time 2`).

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use linerate_stack::cookie::SynCookies;
use linerate_stack::flow::{FlowTable, FourTuple};
use linerate_stack::isn::IsnGenerator;
use linerate_stack::neighbor::{request, NeighborCache, NeighborConfig};
use linerate_stack::time::Instant;
use linerate_stack::wire::{EthernetAddress, Ipv4Address, SeqNumber};

const FLOWS: usize = 1 << 20;

/// Distinct 4-tuples: 2^20 clients spread over 198.18.0.0/15 addresses and ports.
fn tuples(n: usize, salt: u32) -> Vec<FourTuple> {
    (0..n as u32)
        .map(|i| {
            let mixed = i.wrapping_mul(0x9e37_79b9) ^ salt;
            FourTuple::new(
                Ipv4Address::new(198, 18, 0, 1),
                443,
                Ipv4Address::from_u32(0xc612_0000 | (mixed & 0x1_ffff)),
                (1_024 + (i >> 5) as u16) ^ (salt as u16),
            )
        })
        .collect()
}

/// std's DefaultHasher is SipHash-1-3: the same PRF as FlowTable, so only the table differs.
type StdMap = HashMap<FourTuple, u32, BuildHasherDefault<std::collections::hash_map::DefaultHasher>>;

fn syn_cookies(c: &mut Criterion) {
    let cookies = SynCookies::new(*b"bench-cookie-key");
    let isn_gen = IsnGenerator::new(*b"bench-isn-secret");
    let flows = tuples(1_024, 1);
    let now = Instant::from_millis(1_000_000);
    let mut group = c.benchmark_group("handshake");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("syn_cookie_generate_validate", |b| {
        b.iter(|| {
            i = (i + 1) & 1_023;
            let client_isn = SeqNumber(i as u32);
            let (cookie, _) = cookies.generate(now, &flows[i], client_isn, 1460);
            black_box(cookies.validate(now, &flows[i], client_isn, cookie + 1))
        })
    });
    group.bench_function("isn_rfc6528", |b| {
        b.iter(|| {
            i = (i + 1) & 1_023;
            black_box(isn_gen.isn(now, &flows[i]))
        })
    });
    // The next-hop lookup every first segment of a connection makes (1024 resolved neighbours).
    let mut arp = NeighborCache::new(1_024, NeighborConfig::default());
    let our_ip = Ipv4Address::new(198, 18, 0, 1);
    let our_mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
    for f in &flows {
        let mac = EthernetAddress([2, 0, 0, 0, 1, f.remote_addr.0[3]]);
        arp.on_arp(now, &request(mac, f.remote_addr, our_ip), our_ip, our_mac);
    }
    group.bench_function("arp_lookup_hit", |b| {
        b.iter(|| {
            i = (i + 1) & 1_023;
            black_box(arp.lookup(flows[i].remote_addr, now))
        })
    });
    group.finish();
}

fn flow_table(c: &mut Criterion) {
    let keys = tuples(FLOWS, 0);
    let misses = tuples(4_096, 0xdead_beef);
    let mut table = FlowTable::new(FLOWS, *b"bench-flow-key!!");
    let mut std_map = StdMap::with_capacity_and_hasher(FLOWS, Default::default());
    for (n, k) in keys.iter().enumerate() {
        table.insert(*k, n as u32).expect("capacity");
        std_map.insert(*k, n as u32);
    }
    let mut group = c.benchmark_group("flow_table_1M");
    group.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    let mut step = move || {
        i = (i + 7_919) & (FLOWS - 1);
        i
    };
    group.bench_function("get_hit/flow_table", |b| b.iter(|| black_box(table.get(&keys[step()]))));
    group.bench_function("get_hit/std_hashmap", |b| b.iter(|| black_box(std_map.get(&keys[step()]))));
    group.bench_function("get_miss/flow_table", |b| b.iter(|| black_box(table.get(&misses[step() & 4_095]))));
    group.bench_function("get_miss/std_hashmap", |b| {
        b.iter(|| black_box(std_map.get(&misses[step() & 4_095])))
    });
    group.bench_function("remove_insert/flow_table", |b| {
        b.iter(|| {
            let k = keys[step()];
            let v = table.remove(&k).unwrap_or(0);
            black_box(table.insert(k, v))
        })
    });
    group.bench_function("remove_insert/std_hashmap", |b| {
        b.iter(|| {
            let k = keys[step()];
            let v = std_map.remove(&k).unwrap_or(0);
            black_box(std_map.insert(k, v))
        })
    });
    group.finish();

    let mut fill = c.benchmark_group("flow_table_fill_1M");
    fill.sample_size(10);
    fill.throughput(Throughput::Elements(FLOWS as u64));
    fill.bench_function("flow_table", |b| {
        b.iter_batched_ref(
            || FlowTable::new(FLOWS, *b"bench-flow-key!!"),
            |t| keys.iter().for_each(|k| t.insert(*k, 0).expect("capacity")),
            BatchSize::PerIteration,
        )
    });
    fill.bench_function("std_hashmap", |b| {
        b.iter_batched_ref(
            || StdMap::with_capacity_and_hasher(FLOWS, Default::default()),
            |m| {
                keys.iter().for_each(|k| {
                    let _ = m.insert(*k, 0);
                })
            },
            BatchSize::PerIteration,
        )
    });
    fill.finish();
}

criterion_group!(benches, syn_cookies, flow_table);
criterion_main!(benches);
