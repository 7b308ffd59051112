//! The simulation's random source: xoshiro256** seeded through SplitMix64.
//!
//! Owns nothing but 32 bytes of state. Promises that a given seed yields the same sequence on every
//! platform, compiler and release of linerate, forever: simulation results (loss patterns, pcaps,
//! counters pinned in tests) are snapshots of this sequence. That is why it is written here rather
//! than taken from the `rand` crate, whose generators and distribution algorithms (e.g. how a
//! range or a float is drawn) may change between versions and would silently change every pinned
//! result. It is not cryptographic and must never be used for ISNs or cookies.
//!
//! Algorithms: SplitMix64 and xoshiro256** as published by Steele, Lea & Flood (2014) and
//! Blackman & Vigna (2018); bounded integers by Lemire's multiply-shift with rejection (2019).

use core::ops::RangeInclusive;

/// The golden-ratio increment of SplitMix64.
const SPLITMIX_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// One step of SplitMix64: advances `state` and returns a well-mixed output. Used to expand a
/// 64-bit seed into xoshiro's 256-bit state (xoshiro must not start from nearby or zero states).
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(SPLITMIX_GAMMA);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A small, fast, seeded deterministic generator (xoshiro256**).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRng {
    state: [u64; 4],
}

impl SimRng {
    /// A generator whose whole sequence is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let state = [splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm)];
        Self::from_state(state)
    }

    /// An independent stream for one consumer (`stream` names it: a link direction, a knob), so
    /// that turning one knob on does not shift the random draws every other knob sees.
    pub fn derive(seed: u64, stream: u64) -> Self {
        let mut sm = stream;
        let stream_key = splitmix64(&mut sm);
        Self::new(seed ^ stream_key)
    }

    /// A generator with an explicit state (reference vectors). The all-zero state is a fixed point
    /// of xoshiro, so it is replaced by a fixed non-zero one.
    pub fn from_state(state: [u64; 4]) -> Self {
        if state == [0; 4] {
            return SimRng { state: [SPLITMIX_GAMMA, 1, 2, 3] };
        }
        SimRng { state }
    }

    /// The next 64 uniformly distributed bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform float in `[0, 1)` with 53 bits of precision.
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p`. `p <= 0` (and NaN) is never, `p >= 1` is always; neither draws.
    pub fn bernoulli(&mut self, p: f64) -> bool {
        if p.is_nan() || p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        self.f64() < p
    }

    /// A uniform integer in `[0, n)`; 0 when `n` is 0. Unbiased (Lemire's method).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let threshold = n.wrapping_neg() % n;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(n);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }

    /// A uniform integer in the inclusive range; the start when the range is empty.
    pub fn range(&mut self, range: RangeInclusive<u64>) -> u64 {
        let (lo, hi) = (*range.start(), *range.end());
        if hi <= lo {
            return lo;
        }
        match (hi - lo).checked_add(1) {
            Some(span) => lo + self.below(span),
            None => self.next_u64(),
        }
    }

    /// Fills `buf` with random bytes.
    pub fn fill_bytes(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_vector() {
        let mut state = 0;
        assert_eq!(splitmix64(&mut state), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn xoshiro_matches_the_reference_first_output() {
        // With state [1, 2, 3, 4]: rotl(2 * 5, 7) * 9 = 1280 * 9.
        let mut rng = SimRng::from_state([1, 2, 3, 4]);
        assert_eq!(rng.next_u64(), 11_520);
        // Second output from the state after one reference step: s1 = 2 ^ (3 ^ 1) = 0, so
        // rotl(0 * 5, 7) * 9 = 0.
        assert_eq!(rng.next_u64(), 0);
    }

    #[test]
    fn same_seed_same_sequence_different_seed_differs() {
        let a: Vec<u64> = (0..8)
            .map({
                let mut r = SimRng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..8)
            .map({
                let mut r = SimRng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..8)
            .map({
                let mut r = SimRng::new(8);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(SimRng::derive(7, 1), SimRng::derive(7, 2));
    }

    #[test]
    fn draws_stay_in_bounds_and_are_roughly_uniform() {
        let mut rng = SimRng::new(1);
        let mut buckets = [0u32; 10];
        for _ in 0..100_000 {
            let x = rng.f64();
            assert!((0.0..1.0).contains(&x));
            buckets[(x * 10.0) as usize] += 1;
            let r = rng.range(5..=9);
            assert!((5..=9).contains(&r));
            assert!(rng.below(3) < 3);
        }
        for count in buckets {
            assert!((9_500..10_500).contains(&count), "bucket count {count}");
        }
        assert_eq!(rng.range(4..=4), 4);
        assert_eq!(rng.below(0), 0);
        let _full = rng.range(0..=u64::MAX);
    }

    #[test]
    fn bernoulli_edges_do_not_draw() {
        let mut rng = SimRng::new(3);
        let before = rng.clone();
        assert!(!rng.bernoulli(0.0));
        assert!(!rng.bernoulli(f64::NAN));
        assert!(rng.bernoulli(1.0));
        assert_eq!(rng, before);
        let hits = (0..100_000).filter(|_| rng.bernoulli(0.25)).count();
        assert!((24_000..26_000).contains(&hits), "hits {hits}");
    }

    #[test]
    fn fill_bytes_handles_partial_chunks() {
        let mut rng = SimRng::new(9);
        let mut buf = [0u8; 13];
        rng.fill_bytes(&mut buf);
        assert!(buf.iter().any(|&b| b != 0));
    }
}
