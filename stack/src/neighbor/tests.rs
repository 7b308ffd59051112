//! Random operation sequences against the cache's structural invariants.

use proptest::prelude::*;

use super::cache::NeighborCache;
use super::{reply_to, request, NeighborConfig, NeighborLookup};
use crate::time::{Duration, Instant};
use crate::wire::{EthernetAddress, Ipv4Address};

const OUR_IP: Ipv4Address = Ipv4Address::new(198, 18, 0, 1);
const OUR_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);

#[derive(Debug, Clone)]
enum Op {
    Lookup(u8),
    Reply(u8, u8),
    Request(u8, u8),
    Gratuitous(u8, u8),
    Confirm(u8),
    Remove(u8),
    Advance(u16),
    Poll,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..12u8).prop_map(Op::Lookup),
        2 => (0..12u8, 0..3u8).prop_map(|(i, m)| Op::Reply(i, m)),
        2 => (0..12u8, 0..3u8).prop_map(|(i, m)| Op::Request(i, m)),
        1 => (0..12u8, 0..3u8).prop_map(|(i, m)| Op::Gratuitous(i, m)),
        1 => (0..12u8).prop_map(Op::Confirm),
        1 => (0..12u8).prop_map(Op::Remove),
        3 => (0..5_000u16).prop_map(Op::Advance),
        3 => Just(Op::Poll),
    ]
}

fn ip(i: u8) -> Ipv4Address {
    Ipv4Address::new(198, 18, 1, i)
}

fn mac(i: u8, m: u8) -> EthernetAddress {
    EthernetAddress([2, 0, 0, m, 1, i])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_the_cache_consistent(
        capacity in 0usize..6,
        ops in proptest::collection::vec(op(), 0..300),
    ) {
        let config = NeighborConfig {
            reachable_time: Duration::from_secs(5),
            stale_lifetime: Duration::from_secs(10),
            ..NeighborConfig::default()
        };
        let mut c = NeighborCache::new(capacity, config);
        let mut now = Instant::from_millis(1);
        for op in ops {
            match op {
                Op::Lookup(i) => {
                    let found = c.lookup(ip(i), now);
                    if let NeighborLookup::Found(m) = found {
                        prop_assert_eq!(c.peek(ip(i)), Some(m));
                    }
                }
                Op::Reply(i, m) => {
                    let arp = reply_to(mac(i, m), ip(i), &request(OUR_MAC, OUR_IP, ip(i)));
                    prop_assert_eq!(c.on_arp(now, &arp, OUR_IP, OUR_MAC), None);
                }
                Op::Request(i, m) => {
                    let arp = request(mac(i, m), ip(i), OUR_IP);
                    prop_assert!(c.on_arp(now, &arp, OUR_IP, OUR_MAC).is_some());
                }
                Op::Gratuitous(i, m) => {
                    c.on_arp(now, &super::announcement(mac(i, m), ip(i)), OUR_IP, OUR_MAC);
                }
                Op::Confirm(i) => c.confirm(ip(i), now),
                Op::Remove(i) => { c.remove(ip(i)); }
                Op::Advance(ms) => now += Duration::from_millis(u64::from(ms)),
                Op::Poll => {
                    let mut sent = 0;
                    while c.poll_retransmit(now).is_some() {
                        sent += 1;
                        prop_assert!(sent <= capacity, "more retransmits than entries");
                    }
                    prop_assert!(c.next_timeout().is_none_or(|t| t > now));
                }
            }
            c.check_invariants();
        }
    }
}
