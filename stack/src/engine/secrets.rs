//! Keyed hashing and randomness, all seeded by the caller (no OS randomness in the engine):
//! the flow-table hasher (SipHash-1-3 with a secret key, so remote peers cannot aim collisions),
//! RFC 6528 initial sequence numbers, and a small PRNG for timestamp offsets and ephemeral ports.

use crate::tcp::FourTuple;
use crate::time::Instant;
use crate::wire::SeqNumber;
use core::hash::{BuildHasher, Hash, Hasher};
use siphasher::sip::{SipHasher13, SipHasher24};

fn key_halves(key: &[u8; 16]) -> (u64, u64) {
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&key[..8]);
    b.copy_from_slice(&key[8..]);
    (u64::from_le_bytes(a), u64::from_le_bytes(b))
}

/// `BuildHasher` for the 4-tuple map: keyed SipHash-1-3.
#[derive(Clone, Debug)]
pub struct FlowHasher {
    k0: u64,
    k1: u64,
}

impl FlowHasher {
    pub fn new(key: [u8; 16]) -> Self {
        let (k0, k1) = key_halves(&key);
        FlowHasher { k0, k1 }
    }
}

impl BuildHasher for FlowHasher {
    type Hasher = SipHasher13;
    fn build_hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(self.k0, self.k1)
    }
}

/// RFC 6528 §3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey), where M is a
/// 4-microsecond timer and F a keyed PRF (SipHash-2-4).
#[derive(Clone, Debug)]
pub struct IsnGenerator {
    k0: u64,
    k1: u64,
}

impl IsnGenerator {
    pub fn new(secret: [u8; 16]) -> Self {
        let (k0, k1) = key_halves(&secret);
        IsnGenerator { k0, k1 }
    }

    pub fn isn(&self, now: Instant, tuple: &FourTuple) -> SeqNumber {
        let mut h = SipHasher24::new_with_keys(self.k0, self.k1);
        tuple.hash(&mut h);
        let f = h.finish() as u32;
        let m = (now.as_micros() / 4) as u32;
        SeqNumber(f.wrapping_add(m))
    }
}

/// xorshift64* — small, fast, good enough for non-secret choices (ports, TS offsets).
#[derive(Clone, Debug)]
pub struct Prng(u64);

impl Prng {
    pub fn new(seed: u64) -> Self {
        Prng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Ipv4Address;

    #[test]
    fn isn_depends_on_tuple_and_advances_with_time() {
        let g = IsnGenerator::new([7; 16]);
        let t = FourTuple {
            local: (Ipv4Address::new(198, 18, 0, 1), 80),
            remote: (Ipv4Address::new(198, 18, 0, 2), 4000),
        };
        let u = FourTuple { remote: (Ipv4Address::new(198, 18, 0, 2), 4001), ..t };
        let now = Instant::from_millis(5);
        assert_ne!(g.isn(now, &t), g.isn(now, &u));
        assert_eq!(g.isn(now + crate::time::Duration::from_micros(400), &t) - g.isn(now, &t), 100);
    }
}
