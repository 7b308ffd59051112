//! TCP Fast Open cookies (RFC 7413): the server's cookie jar and the client's cookie cache.
//!
//! Server (RFC 7413 §4.1.2): the cookie is an 8-byte MAC of the client's IP address under a
//! server secret, SipHash-2-4 (a keyed PRF with a 64-bit output: exactly the cookie size, and the
//! same primitive as our ISNs; AES-128 would need a new dependency for no gain here). Rotation
//! keeps the previous key valid for a grace period so clients holding a recent cookie keep their
//! 0-RTT connects; after that they fall back to a normal handshake and get a fresh cookie.
//!
//! Client (RFC 7413 §4.1.3): a bounded LRU of server address → cookie and the server's MSS, so
//! the SYN can carry data sized to the server's MSS; `forget` drops a server whose SYN-data
//! failed (§4.1.3.1 / §4.2.2: fall back to regular handshakes for it).

use siphasher::sip::SipHasher24;

use crate::time::{Duration, Instant};
use crate::wire::{FastOpenCookie, Ipv4Address};

/// Cookie length we issue: 8 bytes, within RFC 7413 §4.1.1's 4..=16 and its recommended size.
const COOKIE_LEN: usize = 8;

/// Server-side Fast Open cookie generator and checker.
#[derive(Clone)]
pub struct TfoCookieJar {
    current: SipHasher24,
    /// The key before the last rotation and when it stops being accepted.
    previous: Option<(SipHasher24, Instant)>,
    grace: Duration,
}

impl TfoCookieJar {
    /// How long a rotated-out key is still accepted by [`TfoCookieJar::new`]'s jar: one hour,
    /// so clients that reconnect within the hour keep 0-RTT across a rotation.
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(3_600);

    pub fn new(key: [u8; 16]) -> Self {
        Self::with_grace(key, Self::DEFAULT_GRACE)
    }

    pub fn with_grace(key: [u8; 16], grace: Duration) -> Self {
        TfoCookieJar { current: SipHasher24::new_with_key(&key), previous: None, grace }
    }

    /// The cookie for `client_ip`, to send in the SYN-ACK answering a cookie request.
    pub fn generate(&self, client_ip: Ipv4Address) -> FastOpenCookie {
        cookie(&self.current, client_ip)
    }

    /// Whether `cookie` (from a SYN carrying data) was issued to `client_ip` by the current key,
    /// or by the previous key within its grace period.
    pub fn validate(&self, now: Instant, client_ip: Ipv4Address, cookie: &FastOpenCookie) -> bool {
        let offered = cookie.as_bytes();
        if offered.len() != COOKIE_LEN {
            return false;
        }
        let matches = |key: &SipHasher24| constant_time_eq(self::cookie(key, client_ip).as_bytes(), offered);
        let current = matches(&self.current);
        let previous = match &self.previous {
            Some((key, until)) => now < *until && matches(key),
            None => false,
        };
        current | previous
    }

    /// Makes `new_key` current; the old key is accepted until `now + grace`.
    pub fn rotate(&mut self, new_key: [u8; 16], now: Instant) {
        self.previous = Some((self.current, now + self.grace));
        self.current = SipHasher24::new_with_key(&new_key);
    }
}

impl core::fmt::Debug for TfoCookieJar {
    /// Never prints key material.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TfoCookieJar")
            .field("previous_until", &self.previous.map(|(_, until)| until))
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

fn cookie(key: &SipHasher24, client_ip: Ipv4Address) -> FastOpenCookie {
    let mac = key.hash(&client_ip.0).to_be_bytes();
    FastOpenCookie::new(&mac).unwrap_or_default()
}

/// Compares every byte whatever the first mismatch, so timing does not leak a valid prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && core::hint::black_box(a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y))) == 0
}

/// What a client remembers about a Fast Open server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedCookie {
    pub cookie: FastOpenCookie,
    /// The MSS the server advertised, to size the data in our SYN (RFC 7413 §4.1.3).
    pub mss: u16,
}

#[derive(Debug, Clone, Copy)]
struct ClientEntry {
    server: Ipv4Address,
    cached: CachedCookie,
    /// Logical time of last use; the smallest is evicted.
    last_used: u64,
}

/// Client-side cookie cache: at most `capacity` servers, least recently used evicted first.
///
/// A linear array: every operation is O(capacity), done once per connection setup (never per
/// segment), and the default capacity of 1024 scans in about a microsecond.
#[derive(Debug, Clone)]
pub struct TfoClientCache {
    entries: Vec<ClientEntry>,
    capacity: usize,
    uses: u64,
}

impl TfoClientCache {
    pub const DEFAULT_CAPACITY: usize = 1024;

    pub fn new(capacity: usize) -> Self {
        TfoClientCache { entries: Vec::with_capacity(capacity), capacity, uses: 0 }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The cookie for `server`, if any, without counting as a use.
    pub fn peek(&self, server: Ipv4Address) -> Option<CachedCookie> {
        self.entries.iter().find(|e| e.server == server).map(|e| e.cached)
    }

    /// The cookie for `server`, if any; counts as a use for LRU purposes.
    pub fn get(&mut self, server: Ipv4Address) -> Option<CachedCookie> {
        self.uses += 1;
        let uses = self.uses;
        let entry = self.entries.iter_mut().find(|e| e.server == server)?;
        entry.last_used = uses;
        Some(entry.cached)
    }

    /// Remembers (or replaces) `server`'s cookie and MSS, evicting the least recently used server
    /// when full.
    pub fn store(&mut self, server: Ipv4Address, cookie: FastOpenCookie, mss: u16) {
        self.uses += 1;
        let fresh = ClientEntry { server, cached: CachedCookie { cookie, mss }, last_used: self.uses };
        if let Some(entry) = self.entries.iter_mut().find(|e| e.server == server) {
            *entry = fresh;
        } else if self.entries.len() < self.capacity {
            self.entries.push(fresh);
        } else if let Some(lru) = self.entries.iter_mut().min_by_key(|e| e.last_used) {
            *lru = fresh;
        }
    }

    /// Drops `server` (its SYN-data failed): later connects use a regular handshake.
    pub fn forget(&mut self, server: Ipv4Address) -> bool {
        match self.entries.iter().position(|e| e.server == server) {
            Some(i) => {
                self.entries.swap_remove(i);
                true
            }
            None => false,
        }
    }
}
