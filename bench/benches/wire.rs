//! TCP header parse and emit cost, with the options a bulk transfer really carries.
//!
//! `parse_header` skips the checksum (NIC offload) to isolate decoding; `parse_verified`
//! includes the checksum of a 1448-byte payload. Emits write into a reused buffer.

mod common;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use linerate_stack::wire::{
    ChecksumMode, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, SackBlock, SackBlocks, SeqNumber, TcpFlags,
    TcpOptions, TcpPacket, TcpRepr, Timestamps,
};

const SRC: Ipv4Address = Ipv4Address::new(198, 18, 0, 1);
const DST: Ipv4Address = Ipv4Address::new(198, 18, 0, 2);

fn data_segment(payload: &[u8]) -> TcpRepr<'_> {
    TcpRepr {
        src_port: 40000,
        dst_port: 80,
        seq_number: SeqNumber(0xdead_beef),
        ack_number: SeqNumber(0x1234_5678),
        flags: TcpFlags::ACK | TcpFlags::PSH,
        window_len: 501,
        urgent_pointer: 0,
        options: TcpOptions {
            timestamps: Some(Timestamps { tsval: 100, tsecr: 200 }),
            ..TcpOptions::default()
        },
        payload,
    }
}

fn sack_ack() -> TcpRepr<'static> {
    let mut blocks = SackBlocks::new();
    blocks.push(SackBlock { left: SeqNumber(3000), right: SeqNumber(6000) });
    blocks.push(SackBlock { left: SeqNumber(9000), right: SeqNumber(12000) });
    TcpRepr {
        flags: TcpFlags::ACK,
        options: TcpOptions {
            timestamps: Some(Timestamps { tsval: 100, tsecr: 200 }),
            sack_blocks: blocks,
            ..TcpOptions::default()
        },
        ..data_segment(&[])
    }
}

fn syn() -> TcpRepr<'static> {
    TcpRepr {
        flags: TcpFlags::SYN,
        options: TcpOptions {
            mss: Some(1460),
            sack_permitted: true,
            timestamps: Some(Timestamps { tsval: 1, tsecr: 0 }),
            window_scale: Some(7),
            ..TcpOptions::default()
        },
        ..data_segment(&[])
    }
}

fn emitted(repr: &TcpRepr<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), SRC, DST, ChecksumMode::Compute);
    buf
}

fn bench_tcp(c: &mut Criterion) {
    let payload = vec![0x5au8; 1448];
    let data = emitted(&data_segment(&payload));
    let ack = emitted(&sack_ack());
    let syn_bytes = emitted(&syn());
    let mut group = c.benchmark_group("tcp");
    for (name, bytes) in [("data_ts", &data), ("ack_ts_sack2", &ack), ("syn_all", &syn_bytes)] {
        group.bench_function(format!("parse_header/{name}"), |b| {
            b.iter(|| {
                let packet = TcpPacket::new_checked(black_box(&bytes[..])).unwrap();
                TcpRepr::parse(&packet, SRC, DST, ChecksumMode::Skip).unwrap().options
            })
        });
    }
    group.bench_function("parse_verified/data_ts_1448", |b| {
        b.iter(|| {
            let packet = TcpPacket::new_checked(black_box(&data[..])).unwrap();
            TcpRepr::parse(&packet, SRC, DST, ChecksumMode::Compute).unwrap().seq_number
        })
    });
    let mut header = [0u8; 60];
    for (name, repr) in [("data_ts", data_segment(&[])), ("ack_ts_sack2", sack_ack()), ("syn_all", syn())] {
        group.bench_function(format!("emit_header/{name}"), |b| {
            b.iter(|| {
                let repr = black_box(&repr);
                let len = repr.header_len();
                repr.emit_header(&mut header[..len], SRC, DST, 0).finish()
            })
        });
    }
    group.finish();
}

fn bench_ipv4(c: &mut Criterion) {
    let repr = Ipv4Repr {
        src_addr: SRC,
        dst_addr: DST,
        protocol: IpProtocol::Tcp,
        payload_len: 1480,
        ttl: 64,
        dscp_ecn: 0,
        ident: 7,
        dont_frag: true,
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), ChecksumMode::Compute);
    c.bench_function("ipv4/parse_verified", |b| {
        b.iter(|| {
            let packet = Ipv4Packet::new_checked(black_box(&buf[..])).unwrap();
            Ipv4Repr::parse(&packet, ChecksumMode::Compute).unwrap()
        })
    });
    let mut header = [0u8; 20];
    c.bench_function("ipv4/emit", |b| {
        b.iter(|| {
            black_box(&repr).emit(&mut Ipv4Packet::new_unchecked(&mut header[..]), ChecksumMode::Compute)
        })
    });
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench_tcp, bench_ipv4
}
criterion_main!(benches);
