//! ARP cache and responder scenarios (RFC 826 merge rule, Linux-like timers) on virtual time.

use linerate_stack::neighbor::{
    announcement, reply_to, request, NeighborCache, NeighborConfig, NeighborEvent, NeighborLookup,
};
use linerate_stack::time::{Duration, Instant};
use linerate_stack::wire::{ArpOperation, ArpRepr, EthernetAddress, Ipv4Address};

const OUR_IP: Ipv4Address = Ipv4Address::new(198, 18, 0, 1);
const OUR_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 1]);
const PEER_IP: Ipv4Address = Ipv4Address::new(198, 18, 0, 2);
const PEER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 2]);

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn cache(capacity: usize) -> NeighborCache {
    NeighborCache::new(capacity, NeighborConfig::default())
}

fn peer(n: u8) -> (Ipv4Address, EthernetAddress) {
    (Ipv4Address::new(198, 18, 1, n), EthernetAddress([0x02, 0, 0, 0, 1, n]))
}

/// The peer's reply to our request.
fn reply_from(ip: Ipv4Address, mac: EthernetAddress) -> ArpRepr {
    reply_to(mac, ip, &request(OUR_MAC, OUR_IP, ip))
}

/// The peer asking for our address.
fn request_from(ip: Ipv4Address, mac: EthernetAddress) -> ArpRepr {
    request(mac, ip, OUR_IP)
}

#[test]
fn resolves_after_one_request_and_reports_the_event() {
    let mut c = cache(8);
    assert_eq!(c.lookup(PEER_IP, t(0)), NeighborLookup::SendRequest);
    assert_eq!(c.lookup(PEER_IP, t(10)), NeighborLookup::Pending);
    assert_eq!(c.on_arp(t(20), &reply_from(PEER_IP, PEER_MAC), OUR_IP, OUR_MAC), None);
    assert_eq!(c.poll_event(), Some(NeighborEvent::Resolved { ip: PEER_IP, mac: PEER_MAC }));
    assert_eq!(c.poll_event(), None);
    assert_eq!(c.lookup(PEER_IP, t(30)), NeighborLookup::Found(PEER_MAC));
    assert_eq!(c.next_timeout(), None, "nothing left to retransmit");
    assert_eq!(c.poll_retransmit(t(5_000)), None);
    assert_eq!(c.counters().requests_sent, 1);
    assert_eq!(c.counters().resolved, 1);
}

#[test]
fn retransmits_every_second_then_fails_and_holds_the_failure() {
    let mut c = cache(8);
    assert_eq!(c.lookup(PEER_IP, t(0)), NeighborLookup::SendRequest);
    assert_eq!(c.poll_retransmit(t(999)), None);
    assert_eq!(c.next_timeout(), Some(t(1_000)));
    assert_eq!(c.poll_retransmit(t(1_000)), Some(PEER_IP));
    assert_eq!(c.poll_retransmit(t(1_000)), None);
    assert_eq!(c.next_timeout(), Some(t(2_000)));
    assert_eq!(c.poll_retransmit(t(2_000)), Some(PEER_IP));
    assert_eq!(c.counters().requests_sent, 3, "max_probes requests in all");
    assert_eq!(c.poll_retransmit(t(3_000)), None, "out of probes: fails instead");
    assert_eq!(c.poll_event(), Some(NeighborEvent::Failed { ip: PEER_IP }));
    assert_eq!(c.lookup(PEER_IP, t(3_500)), NeighborLookup::Failed, "negative cache");
    assert_eq!(c.next_timeout(), None);
    assert_eq!(c.counters().failures, 1);
    assert_eq!(c.lookup(PEER_IP, t(4_000)), NeighborLookup::SendRequest, "hold over");
}

#[test]
fn answers_requests_for_our_address_and_learns_the_asker() {
    let mut c = cache(8);
    let asked = request_from(PEER_IP, PEER_MAC);
    let reply = c.on_arp(t(0), &asked, OUR_IP, OUR_MAC).expect("a reply");
    assert_eq!(reply.operation, ArpOperation::Reply);
    assert_eq!(reply.source_hardware_addr, OUR_MAC);
    assert_eq!(reply.source_protocol_addr, OUR_IP);
    assert_eq!(reply.target_hardware_addr, PEER_MAC);
    assert_eq!(reply.target_protocol_addr, PEER_IP);
    assert_eq!(c.lookup(PEER_IP, t(1)), NeighborLookup::Found(PEER_MAC), "no request needed");
    assert_eq!(c.counters().replies_sent, 1);
    assert_eq!(c.counters().requests_sent, 0);
}

#[test]
fn ignores_requests_for_other_hosts_without_learning() {
    let mut c = cache(8);
    let other = request(PEER_MAC, PEER_IP, Ipv4Address::new(198, 18, 0, 9));
    assert_eq!(c.on_arp(t(0), &other, OUR_IP, OUR_MAC), None);
    assert!(c.is_empty(), "RFC 826: no new entry for a packet not aimed at us");
    assert_eq!(c.lookup(PEER_IP, t(1)), NeighborLookup::SendRequest);
}

#[test]
fn gratuitous_arp_updates_an_existing_entry_only() {
    let mut c = cache(8);
    c.on_arp(t(0), &request_from(PEER_IP, PEER_MAC), OUR_IP, OUR_MAC);
    let moved = EthernetAddress([0x02, 0, 0, 0, 0, 0x99]);
    assert_eq!(c.on_arp(t(10), &announcement(moved, PEER_IP), OUR_IP, OUR_MAC), None);
    assert_eq!(c.peek(PEER_IP), Some(moved));
    // The changed address is unconfirmed: using it starts a re-probe, traffic keeps flowing.
    assert_eq!(c.lookup(PEER_IP, t(20)), NeighborLookup::Found(moved));
    assert_eq!(c.poll_retransmit(t(20)), None, "a delay before the first probe");
    assert_eq!(c.poll_retransmit(t(1_020)), Some(PEER_IP));
    let (stranger, stranger_mac) = peer(7);
    c.on_arp(t(30), &announcement(stranger_mac, stranger), OUR_IP, OUR_MAC);
    assert_eq!(c.peek(stranger), None, "gratuitous ARP never creates entries");
}

#[test]
fn stale_entry_is_reprobed_while_in_use_then_reconfirmed() {
    let mut c = cache(8);
    c.on_arp(t(0), &request_from(PEER_IP, PEER_MAC), OUR_IP, OUR_MAC);
    assert_eq!(c.lookup(PEER_IP, t(29_999)), NeighborLookup::Found(PEER_MAC));
    assert_eq!(c.poll_retransmit(t(29_999)), None, "still reachable");
    assert_eq!(c.lookup(PEER_IP, t(31_000)), NeighborLookup::Found(PEER_MAC));
    assert_eq!(c.poll_retransmit(t(31_000)), None, "stale: probe after a delay");
    assert_eq!(c.poll_retransmit(t(32_000)), Some(PEER_IP));
    c.on_arp(t(32_010), &reply_from(PEER_IP, PEER_MAC), OUR_IP, OUR_MAC);
    assert_eq!(c.next_timeout(), None, "reconfirmed");
    assert_eq!(c.lookup(PEER_IP, t(60_000)), NeighborLookup::Found(PEER_MAC));
    assert_eq!(c.poll_retransmit(t(60_000)), None);
}

#[test]
fn stale_entry_that_stops_answering_fails() {
    let mut c = cache(8);
    c.on_arp(t(0), &request_from(PEER_IP, PEER_MAC), OUR_IP, OUR_MAC);
    assert_eq!(c.lookup(PEER_IP, t(40_000)), NeighborLookup::Found(PEER_MAC));
    let sent: Vec<_> = (1..=4).filter_map(|s| c.poll_retransmit(t(40_000 + s * 1_000))).collect();
    assert_eq!(sent, vec![PEER_IP; 3]);
    assert_eq!(c.poll_event(), Some(NeighborEvent::Failed { ip: PEER_IP }));
    assert_eq!(c.lookup(PEER_IP, t(44_100)), NeighborLookup::Failed);
}

#[test]
fn upper_layer_confirmation_keeps_an_entry_reachable() {
    let mut c = cache(8);
    c.on_arp(t(0), &request_from(PEER_IP, PEER_MAC), OUR_IP, OUR_MAC);
    c.confirm(PEER_IP, t(25_000));
    assert_eq!(c.lookup(PEER_IP, t(50_000)), NeighborLookup::Found(PEER_MAC));
    assert_eq!(c.poll_retransmit(t(50_000)), None, "confirmed at 25 s: reachable until 55 s");
}

#[test]
fn entries_unused_past_the_stale_lifetime_are_resolved_afresh() {
    let mut c = cache(8);
    c.on_arp(t(0), &request_from(PEER_IP, PEER_MAC), OUR_IP, OUR_MAC);
    let expired = Instant::ZERO + Duration::from_secs(30 + 60);
    assert_eq!(c.lookup(PEER_IP, expired), NeighborLookup::SendRequest);
}

#[test]
fn full_cache_evicts_the_least_recently_used_resolved_entry() {
    let mut c = cache(2);
    let (a, a_mac) = peer(1);
    let (b, b_mac) = peer(2);
    let (d, d_mac) = peer(3);
    c.on_arp(t(0), &request_from(a, a_mac), OUR_IP, OUR_MAC);
    c.on_arp(t(1), &request_from(b, b_mac), OUR_IP, OUR_MAC);
    assert_eq!(c.lookup(a, t(2)), NeighborLookup::Found(a_mac), "touch a: b is now LRU");
    c.on_arp(t(3), &request_from(d, d_mac), OUR_IP, OUR_MAC);
    assert_eq!(c.len(), 2);
    assert_eq!(c.peek(b), None);
    assert_eq!(c.peek(a), Some(a_mac));
    assert_eq!(c.peek(d), Some(d_mac));
    assert_eq!(c.counters().evictions, 1);
}

#[test]
fn pending_entries_are_never_evicted() {
    let mut c = cache(2);
    assert_eq!(c.lookup(peer(1).0, t(0)), NeighborLookup::SendRequest);
    assert_eq!(c.lookup(peer(2).0, t(0)), NeighborLookup::SendRequest);
    assert_eq!(c.lookup(peer(3).0, t(0)), NeighborLookup::CacheFull);
    c.on_arp(t(1), &request_from(peer(4).0, peer(4).1), OUR_IP, OUR_MAC);
    assert_eq!(c.peek(peer(4).0), None, "no room: not learned, but still answered");
    assert_eq!(c.counters().table_full, 2);
    assert_eq!(c.counters().replies_sent, 1);
    assert_eq!(c.lookup(peer(1).0, t(2)), NeighborLookup::Pending);
}

#[test]
fn hostile_and_odd_packets_are_ignored_or_counted() {
    let mut c = cache(8);
    let mut odd = request_from(PEER_IP, PEER_MAC);
    odd.operation = ArpOperation::Unknown(9);
    assert_eq!(c.on_arp(t(0), &odd, OUR_IP, OUR_MAC), None);
    let forged = request_from(PEER_IP, EthernetAddress::BROADCAST);
    assert_eq!(c.on_arp(t(0), &forged, OUR_IP, OUR_MAC), None, "never reply to broadcast");
    let looped = request_from(PEER_IP, OUR_MAC);
    assert_eq!(c.on_arp(t(0), &looped, OUR_IP, OUR_MAC), None);
    assert_eq!(c.counters().ignored, 3);
    // RFC 5227 probe: sender IP 0.0.0.0. We defend our address but learn nothing.
    let probe = request(PEER_MAC, Ipv4Address::UNSPECIFIED, OUR_IP);
    let defence = c.on_arp(t(0), &probe, OUR_IP, OUR_MAC).expect("reply to a probe");
    assert_eq!(defence.target_hardware_addr, PEER_MAC);
    // Someone else claiming our address.
    c.on_arp(t(0), &announcement(PEER_MAC, OUR_IP), OUR_IP, OUR_MAC);
    assert_eq!(c.counters().conflicts, 1);
    assert!(c.is_empty());
}

#[test]
fn zero_capacity_cache_never_stores() {
    let mut c = cache(0);
    assert_eq!(c.lookup(PEER_IP, t(0)), NeighborLookup::CacheFull);
    assert!(c.on_arp(t(0), &request_from(PEER_IP, PEER_MAC), OUR_IP, OUR_MAC).is_some());
    assert!(c.is_empty());
}

#[test]
fn event_queue_is_bounded() {
    let mut c = cache(2);
    for round in 0..3u64 {
        for n in 1..=2 {
            let (ip, mac) = peer(n);
            c.lookup(ip, t(round * 10_000));
            c.on_arp(t(round * 10_000 + 1), &reply_from(ip, mac), OUR_IP, OUR_MAC);
            c.remove(ip);
        }
    }
    let drained = std::iter::from_fn(|| c.poll_event()).count();
    assert_eq!(drained, 2);
    assert_eq!(c.counters().events_dropped, 4);
}
