//! Initial sequence numbers, RFC 6528 §3 (the procedure RFC 9293 §3.4.1 requires).
//!
//! Owns: [`IsnGenerator`], which computes `ISN = M + F(localip, localport, remoteip, remoteport,
//! secretkey)`, where `M` is a 4-microsecond timer and `F` is SipHash-2-4 under a secret key.
//!
//! Promises: for one 4-tuple, successive ISNs advance with time (so a new incarnation of a
//! connection starts above the old one's sequence space, RFC 9293 §3.4.1), while the offset `F`
//! differs per 4-tuple and per secret, so an off-path attacker cannot predict another
//! connection's ISN from its own.
//!
//! Must not: read the clock or a random source. `now` and the secret are injected; the secret
//! must come from a cryptographic random source at start-up (RFC 6528 §3: "a secret key").

use siphasher::sip::SipHasher24;

use crate::flow::FourTuple;
use crate::time::Instant;
use crate::wire::SeqNumber;

/// RFC 6528 ISN generator. Cheap to copy; holds only the keyed hash state.
#[derive(Clone)]
pub struct IsnGenerator {
    hasher: SipHasher24,
}

impl IsnGenerator {
    /// `secret`: 128 random bits, chosen once per boot (or per shard).
    pub fn new(secret: [u8; 16]) -> Self {
        IsnGenerator { hasher: SipHasher24::new_with_key(&secret) }
    }

    /// The ISN for a new connection on `tuple` at `now`.
    pub fn isn(&self, now: Instant, tuple: &FourTuple) -> SeqNumber {
        SeqNumber(Self::clock(now).wrapping_add(self.offset(tuple)))
    }

    /// RFC 6528 §3 "M is the 4 microsecond timer": wraps every 2^32 * 4 us (about 4.77 hours).
    fn clock(now: Instant) -> u32 {
        (now.as_micros() / 4) as u32
    }

    /// RFC 6528 §3 "F()": the keyed hash of the socket pair, truncated to 32 bits.
    fn offset(&self, tuple: &FourTuple) -> u32 {
        self.hasher.hash(&tuple.to_bytes()) as u32
    }
}

impl core::fmt::Debug for IsnGenerator {
    /// Never prints the secret.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IsnGenerator").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;
    use crate::wire::Ipv4Address;

    fn tuple(remote_port: u16) -> FourTuple {
        FourTuple::new(Ipv4Address::new(198, 18, 0, 1), 80, Ipv4Address::new(198, 18, 0, 2), remote_port)
    }

    #[test]
    fn advances_one_per_four_microseconds_for_a_fixed_tuple() {
        let g = IsnGenerator::new([3; 16]);
        let t0 = Instant::from_millis(1_000);
        let base = g.isn(t0, &tuple(40_000));
        let mut prev = base;
        for step in 1..=1_000u64 {
            let now = t0 + Duration::from_micros(step * 37);
            let isn = g.isn(now, &tuple(40_000));
            assert!(isn - prev >= 0, "ISN went backwards at step {step}");
            prev = isn;
        }
        assert_eq!(prev - base, 1_000 * 37 / 4);
    }

    #[test]
    fn is_monotone_modulo_wrap_across_the_32_bit_boundary() {
        let g = IsnGenerator::new([9; 16]);
        let period_us = (1u64 << 32) * 4;
        let before = Instant::from_micros(period_us - 8);
        let after = Instant::from_micros(period_us + 8);
        let (a, b) = (g.isn(before, &tuple(1)), g.isn(after, &tuple(1)));
        assert_eq!(b - a, 4, "signed modular distance is the elapsed 16 us / 4");
    }

    #[test]
    fn differs_per_tuple_and_per_secret() {
        let now = Instant::from_millis(5);
        let g = IsnGenerator::new([1; 16]);
        let h = IsnGenerator::new([2; 16]);
        assert_ne!(g.isn(now, &tuple(1)), g.isn(now, &tuple(2)));
        assert_ne!(g.isn(now, &tuple(1)), g.isn(now, &tuple(1).reversed()));
        assert_ne!(g.isn(now, &tuple(1)), h.isn(now, &tuple(1)));
        // Same inputs, same output: nothing hidden (no clock, no randomness) inside.
        assert_eq!(g.isn(now, &tuple(1)), IsnGenerator::new([1; 16]).isn(now, &tuple(1)));
    }
}
