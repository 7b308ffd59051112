//! The ARP side of the cache: learning from received packets (RFC 826 "Packet Reception"), the
//! reply to requests for our address, and builders for the packets the caller sends.

use super::cache::{NeighborCache, State};
use super::NeighborEvent;
use crate::time::Instant;
use crate::wire::{ArpOperation, ArpRepr, EthernetAddress, Ipv4Address};

/// A broadcast request for `target_ip` (Ethernet destination: broadcast). The target hardware
/// address is zero: RFC 826 leaves it unspecified in a request, and Linux sends zeros.
pub fn request(our_mac: EthernetAddress, our_ip: Ipv4Address, target_ip: Ipv4Address) -> ArpRepr {
    ArpRepr {
        operation: ArpOperation::Request,
        source_hardware_addr: our_mac,
        source_protocol_addr: our_ip,
        target_hardware_addr: EthernetAddress::default(),
        target_protocol_addr: target_ip,
    }
}

/// The reply to `request` (Ethernet destination: `request.source_hardware_addr`): RFC 826 swaps
/// the sender and target fields and puts our addresses in the sender fields.
pub fn reply_to(our_mac: EthernetAddress, our_ip: Ipv4Address, request: &ArpRepr) -> ArpRepr {
    ArpRepr {
        operation: ArpOperation::Reply,
        source_hardware_addr: our_mac,
        source_protocol_addr: our_ip,
        target_hardware_addr: request.source_hardware_addr,
        target_protocol_addr: request.source_protocol_addr,
    }
}

/// A gratuitous ARP announcing our address (RFC 5227 §3: a request with sender and target IP both
/// ours), sent at start-up so neighbours update stale entries.
pub fn announcement(our_mac: EthernetAddress, our_ip: Ipv4Address) -> ArpRepr {
    request(our_mac, our_ip, our_ip)
}

impl NeighborCache {
    /// Handles a received ARP packet for the interface `our_ip`/`our_mac`; returns the reply to
    /// send, if any (Ethernet destination: `arp.source_hardware_addr`).
    ///
    /// Learning follows RFC 826's merge rule: an existing entry for the sender is updated from any
    /// ARP packet (this includes gratuitous ARP); a new entry is created only when the packet is
    /// aimed at our address. A packet aimed at us also confirms reachability (the sender showed it
    /// can reach us and will receive our reply); other updates leave the entry stale until used.
    pub fn on_arp(
        &mut self,
        now: Instant,
        arp: &ArpRepr,
        our_ip: Ipv4Address,
        our_mac: EthernetAddress,
    ) -> Option<ArpRepr> {
        let is_request = match arp.operation {
            ArpOperation::Request => true,
            ArpOperation::Reply => false,
            ArpOperation::Unknown(_) => {
                self.counters.ignored += 1;
                return None;
            }
        };
        let sender_mac = arp.source_hardware_addr;
        if !sender_mac.is_unicast() || sender_mac == our_mac {
            // A broadcast/multicast sender is forged (and must never be cached); our own
            // address is our packet looped back.
            self.counters.ignored += 1;
            return None;
        }
        let sender_ip = arp.source_protocol_addr;
        let for_us = !our_ip.is_unspecified() && arp.target_protocol_addr == our_ip;
        if sender_ip == our_ip && !our_ip.is_unspecified() {
            self.counters.conflicts += 1;
        } else if is_learnable(sender_ip) {
            self.merge(now, sender_ip, sender_mac, for_us);
        }
        if is_request && for_us {
            self.counters.replies_sent += 1;
            return Some(reply_to(our_mac, our_ip, arp));
        }
        None
    }

    /// RFC 826 merge: update the sender's entry if we have one; add it if the packet is for us.
    fn merge(&mut self, now: Instant, ip: Ipv4Address, mac: EthernetAddress, for_us: bool) {
        let confirmed = State::Reachable { mac, confirmed: now };
        let Some(idx) = self.index_of(ip) else {
            if for_us {
                // None = every slot is being resolved; counted as table_full by `insert`.
                let _ = self.insert(ip, confirmed);
            }
            return;
        };
        let unconfirmed = State::Stale { mac, since: now };
        let new_state = match self.state_at(idx) {
            State::Incomplete { .. } | State::Failed { .. } => {
                self.counters.resolved += 1;
                self.push_event(NeighborEvent::Resolved { ip: self.ip_at(idx), mac });
                if for_us {
                    confirmed
                } else {
                    unconfirmed
                }
            }
            _ if for_us => confirmed,
            State::Reachable { mac: old, .. }
            | State::Stale { mac: old, .. }
            | State::Probe { mac: old, .. }
                if old != mac =>
            {
                unconfirmed
            }
            // Same address, not for us: tells us nothing new about reachability.
            _ => return,
        };
        self.set_state(idx, new_state);
    }
}

/// Addresses that can never be a neighbour's own: unspecified (an RFC 5227 probe's sender),
/// broadcast, multicast.
fn is_learnable(ip: Ipv4Address) -> bool {
    !(ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast())
}
