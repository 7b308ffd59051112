//! Randomness seeded by the caller (no OS randomness in the engine): a small PRNG for timestamp
//! offsets and ephemeral ports. The keyed hashes (flow table, RFC 6528 ISNs) live in
//! [`crate::flow`] and [`crate::isn`]; their secrets come from `EngineConfig`.

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

    #[test]
    fn prng_is_deterministic_per_seed() {
        let (mut a, mut b, mut c) = (Prng::new(1), Prng::new(1), Prng::new(2));
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(a.next_u64(), c.next_u64());
    }
}
