//! The port space of active opens across shards: each of N shards can open about 1/N of the
//! ephemeral range to any one destination (not 1/N² as with port slices), no port is used by two
//! shards, and every reply either lands on the opener's queue (RSS) or is routed to the opener
//! by whichever shard receives it (hand-off).

use std::net::Ipv4Addr;

use linerate_driver::shard::placement::EPHEMERAL_PORTS;
use linerate_driver::shard::steering::RssConfig;
use linerate_driver::shard::{PortChoice, Route, Steering, SteeringMode};
use linerate_stack::engine::{Engine, EngineConfig, Error as EngineError};
use linerate_stack::tcp::SocketOptions;
use linerate_stack::time::Instant;
use linerate_stack::wire::{EthernetAddress, Ipv4Address};

const US: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const PEER_PORT: u16 = 80;
const RANGE: usize = (EPHEMERAL_PORTS.1 - EPHEMERAL_PORTS.0) as usize + 1;

/// A NIC-like RSS setup: a key from `seed` and 128 entries dealt over `queues` queues.
fn rss(queues: u32, seed: u64) -> RssConfig {
    let mut x = seed | 1;
    let key = (0..40)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    RssConfig { key, indirection: (0..128).map(|i| i % queues).collect() }
}

fn engine(shard: usize, steering: &Steering) -> Engine {
    let mut cfg = EngineConfig::new(Ipv4Address(US.octets()), 24, EthernetAddress([2, 0, 0, 0, 0, 1]), 7);
    cfg.max_connections = RANGE;
    cfg.ephemeral_ports = steering.ephemeral_ports_of(shard);
    Engine::new(cfg, Instant::ZERO)
}

/// A SYN-ACK from the peer to `port` (what the reply to our SYN looks like on the wire).
fn reply_to(port: u16) -> [u8; 54] {
    let mut f = [0u8; 54];
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[23] = 6;
    f[26..30].copy_from_slice(&PEER.octets());
    f[30..34].copy_from_slice(&US.octets());
    f[34..36].copy_from_slice(&PEER_PORT.to_be_bytes());
    f[36..38].copy_from_slice(&port.to_be_bytes());
    f[47] = 0x12;
    f
}

/// Opens connections from every shard to the peer until each has used its share; returns the
/// ports each shard got.
fn exhaust(steering: &Steering) -> Vec<Vec<u16>> {
    let opts = SocketOptions { send_buffer: 64, recv_buffer: 64, ..SocketOptions::default() };
    (0..steering.shards())
        .map(|shard| {
            let mut engine = engine(shard, steering);
            let mut opener = steering.opener(shard);
            let mut ports = Vec::new();
            loop {
                match opener.connect(
                    &mut engine,
                    Instant::ZERO,
                    (Ipv4Address(PEER.octets()), PEER_PORT),
                    Some(opts),
                ) {
                    Ok((h, choice)) => {
                        assert_eq!(choice, PortChoice::Steered);
                        ports.push(engine.info(Instant::ZERO, h).unwrap().tuple.local.1);
                    }
                    Err(EngineError::NoEphemeralPorts) => break,
                    Err(e) => panic!("shard {shard}: {e}"),
                }
                assert!(ports.len() <= RANGE, "shard {shard} opened more connections than there are ports");
            }
            // Another destination is a fresh set of 4-tuples: the same ports open again.
            let other = (Ipv4Address(PEER.octets()), PEER_PORT + 1);
            assert!(opener.connect(&mut engine, Instant::ZERO, other, Some(opts)).is_ok(), "shard {shard}");
            ports
        })
        .collect()
}

fn check(shards: usize, mode: SteeringMode) {
    let nic = match &mode {
        SteeringMode::Rss(rss) => Some(rss.clone()),
        _ => None,
    };
    let steering = Steering::new(shards, shards as u32, mode).unwrap();
    let name = steering.mode_name();
    let per_shard = exhaust(&steering);
    let fair = RANGE / shards;
    let mut owner_of = vec![None; usize::from(u16::MAX) + 1];
    for (shard, ports) in per_shard.iter().enumerate() {
        println!(
            "{name}, {shards} shards: shard {shard} opened {} connections to one destination",
            ports.len()
        );
        assert!(
            ports.len() * 10 >= fair * 8,
            "{name}, {shards} shards: shard {shard} got {} ports, expected about {fair}",
            ports.len()
        );
        for &port in ports {
            assert!(owner_of[usize::from(port)].replace(shard).is_none(), "port {port} used by two shards");
        }
    }
    let used: usize = per_shard.iter().map(Vec::len).sum();
    assert_eq!(used, RANGE, "{name}, {shards} shards: every ephemeral port is usable by exactly one shard");

    let routers: Vec<_> = (0..shards).map(|s| steering.router(s)).collect();
    for (port, owner) in owner_of.iter().enumerate().filter_map(|(p, o)| Some((p as u16, (*o)?))) {
        let frame = reply_to(port);
        if let Some(rss) = &nic {
            let queue = rss.queue_for_flow(US, port, PEER, PEER_PORT).unwrap();
            assert!(steering.queues_of(owner).contains(&queue), "{name}: reply to {port} on queue {queue}");
        }
        // Wherever the reply lands, it reaches the opener: processed there, handed off elsewhere.
        for (receiver, router) in
            routers.iter().enumerate().filter(|(r, _)| *r == owner || *r == (owner + 1) % shards)
        {
            let want = if receiver == owner { Route::Local } else { Route::To(owner) };
            assert_eq!(
                router.route(&frame),
                want,
                "{name}: reply to port {port} received by shard {receiver}"
            );
        }
    }
}

#[test]
fn with_rss_each_of_n_shards_opens_a_1_over_n_share_to_one_destination() {
    for (shards, seed) in [(2, 0x9e37_79b9), (4, 0x1234_5678), (32, 0xdead_beef)] {
        check(shards, SteeringMode::Rss(rss(shards as u32, seed)));
    }
}

#[test]
fn with_hand_off_each_of_n_shards_opens_a_1_over_n_share_and_replies_reach_the_opener() {
    for shards in [2, 4, 32] {
        check(shards, SteeringMode::HandOff { reason: "veth".into() });
    }
}
