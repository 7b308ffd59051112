//! A small bounded ARP neighbour cache (RFC 826): learns from requests and replies addressed to
//! us, asks at most once per second per address, forgets unanswered addresses after a few tries
//! and refreshes entries older than the reachable time. Capacity is fixed; the oldest entry is
//! evicted when full. (A stand-in with the same shape as the netlayer cache; swap when it lands.)

use crate::time::{Duration, Instant};
use crate::wire::{EthernetAddress, Ipv4Address};

/// How long a learned address is trusted before it is re-requested.
pub const REACHABLE_TIME: Duration = Duration::from_secs(60);
/// Minimum gap between requests for one address.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Requests for an unanswered address before the entry is dropped.
pub const MAX_RETRIES: u32 = 3;

#[derive(Clone, Copy, Debug)]
struct Entry {
    ip: Ipv4Address,
    mac: Option<EthernetAddress>,
    learned: Instant,
    last_request: Option<Instant>,
    requests: u32,
}

/// Result of a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// The address to use now, if known (possibly being refreshed).
    pub mac: Option<EthernetAddress>,
    /// A request should be sent now.
    pub send_request: bool,
}

/// The cache.
#[derive(Debug)]
pub struct NeighborCache {
    entries: Vec<Entry>,
    capacity: usize,
}

impl NeighborCache {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        NeighborCache { entries: Vec::with_capacity(capacity), capacity }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Finds `ip`, creating a pending entry when absent; says whether to send a request.
    pub fn lookup(&mut self, ip: Ipv4Address, now: Instant) -> Lookup {
        let i = match self.entries.iter().position(|e| e.ip == ip) {
            Some(i) => i,
            None => {
                self.make_room();
                self.entries.push(Entry { ip, mac: None, learned: now, last_request: None, requests: 0 });
                self.entries.len() - 1
            }
        };
        let e = &mut self.entries[i];
        let fresh = e.mac.is_some() && now - e.learned < REACHABLE_TIME;
        if fresh {
            return Lookup { mac: e.mac, send_request: false };
        }
        let due = match e.last_request {
            None => true,
            Some(t) => now - t >= RETRY_INTERVAL,
        };
        if due && e.requests >= MAX_RETRIES {
            self.entries.swap_remove(i);
            return Lookup { mac: None, send_request: false };
        }
        if due {
            e.last_request = Some(now);
            e.requests += 1;
        }
        Lookup { mac: e.mac, send_request: due }
    }

    /// Records `ip` at `mac` (from an ARP packet addressed to us, or a reply).
    pub fn learn(&mut self, ip: Ipv4Address, mac: EthernetAddress, now: Instant) {
        let entry = Entry { ip, mac: Some(mac), learned: now, last_request: None, requests: 0 };
        match self.entries.iter_mut().find(|e| e.ip == ip) {
            Some(e) => *e = entry,
            None => {
                self.make_room();
                self.entries.push(entry);
            }
        }
    }

    /// True if `ip` has an entry (used for RFC 826's "merge" of unsolicited packets).
    pub fn contains(&self, ip: Ipv4Address) -> bool {
        self.entries.iter().any(|e| e.ip == ip)
    }

    /// Marks `ip` for re-resolution (RFC 9293 §3.8.3 R1 "negative advice").
    pub fn invalidate(&mut self, ip: Ipv4Address) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.ip == ip) {
            e.learned = Instant::ZERO;
            e.requests = 0;
            e.last_request = None;
        }
    }

    fn make_room(&mut self) {
        if self.entries.len() >= self.capacity {
            if let Some(oldest) =
                self.entries.iter().enumerate().min_by_key(|(_, e)| e.learned).map(|(i, _)| i)
            {
                self.entries.swap_remove(oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: Ipv4Address = Ipv4Address::new(198, 18, 0, 2);
    const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

    #[test]
    fn requests_are_rate_limited_and_give_up() {
        let mut c = NeighborCache::new(4);
        let t0 = Instant::from_secs_for_test(10);
        assert!(c.lookup(IP, t0).send_request);
        assert!(!c.lookup(IP, t0 + Duration::from_millis(10)).send_request);
        assert!(c.lookup(IP, t0 + Duration::from_secs(1)).send_request);
        assert!(c.lookup(IP, t0 + Duration::from_secs(2)).send_request);
        assert_eq!(c.lookup(IP, t0 + Duration::from_secs(3)), Lookup { mac: None, send_request: false });
        assert!(c.is_empty());
    }

    #[test]
    fn learned_entries_are_used_then_refreshed() {
        let mut c = NeighborCache::new(1);
        let t0 = Instant::from_secs_for_test(1);
        c.learn(IP, MAC, t0);
        assert_eq!(c.lookup(IP, t0), Lookup { mac: Some(MAC), send_request: false });
        let later = t0 + REACHABLE_TIME;
        assert_eq!(c.lookup(IP, later), Lookup { mac: Some(MAC), send_request: true });
        c.learn(Ipv4Address::new(198, 18, 0, 3), MAC, later);
        assert_eq!(c.len(), 1);
    }

    trait FromSecs {
        fn from_secs_for_test(s: u64) -> Instant;
    }
    impl FromSecs for Instant {
        fn from_secs_for_test(s: u64) -> Instant {
            Instant::from_millis(s * 1000)
        }
    }
}
