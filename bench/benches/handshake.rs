//! Connection-setup building blocks: SYN cookies, ISNs, and the flow table at 1 M flows (against
//! std's HashMap with the same SipHash-1-3, to justify the table's design). The `syn_flood` group
//! measures the whole engine path per flood segment: a SYN in and its cookie SYN-ACK out, and a
//! forged ACK in (cookie check fails) and its RST out.
//!
//! Run: `cargo bench -p linerate-bench --bench handshake`
//! (quick look: append `-- --warm-up-time 1 --measurement-time 2`).

mod common;

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use linerate_stack::cookie::SynCookies;
use linerate_stack::device::{Capabilities, Device};
use linerate_stack::engine::{Engine, EngineConfig};
use linerate_stack::flow::{FlowTable, FourTuple};
use linerate_stack::isn::IsnGenerator;
use linerate_stack::neighbor::{request, NeighborCache, NeighborConfig};
use linerate_stack::tcp::listener::{ListenerHandshake, SynCookieMode};
use linerate_stack::time::Instant;
use linerate_stack::wire::{
    ChecksumMode, EtherType, EthernetFrame, EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr, TcpFlags,
    TcpOptions, TcpPacket, TcpRepr, Timestamps,
};
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

/// A device that accepts every frame into one reused buffer (and counts them).
struct Sink {
    buf: Vec<u8>,
    sent: u64,
}

impl Device for Sink {
    fn capabilities(&self) -> Capabilities {
        Capabilities { mtu: 1500, max_burst: 64, rx_checksum_verified: false, tx_checksum_offload: false }
    }
    fn receive<F: FnMut(&mut [u8])>(&mut self, _now: Instant, _budget: usize, _handle: F) -> usize {
        0
    }
    fn transmit_capacity(&self) -> usize {
        usize::MAX
    }
    fn transmit<R, F: FnOnce(&mut [u8]) -> R>(&mut self, _now: Instant, len: usize, fill: F) -> Option<R> {
        self.sent += 1;
        Some(fill(&mut self.buf[..len]))
    }
    fn flush(&mut self, _now: Instant) {}
}

const SERVER_IP: Ipv4Address = Ipv4Address::new(198, 18, 0, 1);
const SERVER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);

/// A client segment to port 80 as a full Ethernet frame (SYNs with Linux's usual options).
fn frame(src: Ipv4Address, port: u16, flags: TcpFlags, seq: u32, ack: u32) -> Vec<u8> {
    let syn = flags.syn();
    let tcp = TcpRepr {
        src_port: port,
        dst_port: 80,
        seq_number: SeqNumber(seq),
        ack_number: SeqNumber(ack),
        flags,
        window_len: 64_240,
        urgent_pointer: 0,
        options: TcpOptions {
            mss: syn.then_some(1460),
            window_scale: syn.then_some(7),
            sack_permitted: syn,
            timestamps: Some(Timestamps { tsval: seq, tsecr: 0 }),
            ..TcpOptions::default()
        },
        payload: &[],
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: SERVER_IP,
        protocol: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        ttl: 64,
        dscp_ecn: 0,
        ident: 0,
        dont_frag: true,
    };
    let mut buf = vec![0u8; 34 + tcp.buffer_len()];
    let mac = EthernetAddress([2, 0, 0, 0, 0, 9]);
    EthernetRepr { src_addr: mac, dst_addr: SERVER_MAC, ethertype: EtherType::Ipv4 }
        .emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[14..]), ChecksumMode::Compute);
    tcp.emit(&mut TcpPacket::new_unchecked(&mut buf[34..]), src, SERVER_IP, ChecksumMode::Compute);
    buf
}

fn syn_flood(c: &mut Criterion) {
    let now = Instant::from_millis(1_000_000);
    let mut engine = Engine::new(EngineConfig::new(SERVER_IP, 24, SERVER_MAC, 1), now);
    let l = engine.listen(80, 128, None).expect("listen");
    let handshake = ListenerHandshake { syn_cookies: Some(SynCookieMode::Always), fast_open: None };
    engine.set_listener_handshake(l, handshake).expect("listener");
    let clients = tuples(1_024, 7);
    let mut syns: Vec<Vec<u8>> =
        clients.iter().map(|t| frame(t.remote_addr, t.remote_port, TcpFlags::SYN, 1_000, 0)).collect();
    let mut acks: Vec<Vec<u8>> = clients
        .iter()
        .map(|t| frame(t.remote_addr, t.remote_port, TcpFlags::ACK, 1_001, 0xdead_beef))
        .collect();
    let mut sink = Sink { buf: vec![0u8; 1514], sent: 0 };
    let mut group = c.benchmark_group("syn_flood");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    // Frames each bench fed in: a filter (e.g. `flow_table`) skips a bench but not this function.
    let (mut syns_in, mut acks_in) = (0u64, 0u64);
    group.bench_function("engine_syn_in_cookie_synack_out", |b| {
        b.iter(|| {
            i = (i + 1) & 1_023;
            syns_in += 1;
            engine.receive(now, &mut syns[i]);
            black_box(engine.poll_transmit(now, &mut sink))
        })
    });
    group.bench_function("engine_forged_ack_in_rst_out", |b| {
        b.iter(|| {
            i = (i + 1) & 1_023;
            acks_in += 1;
            engine.receive(now, &mut acks[i]);
            black_box(engine.poll_transmit(now, &mut sink))
        })
    });
    group.finish();
    assert_eq!(engine.connection_count(), 0, "a flood leaves no state");
    assert!(syns_in == 0 || engine.stats().syncookies_sent > 0, "SYNs in, no cookie out");
    assert!(acks_in == 0 || engine.stats().syncookies_failed > 0, "forged ACKs in, none refused");
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = syn_cookies, syn_flood, flow_table
}
criterion_main!(benches);
