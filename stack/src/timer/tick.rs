//! Nanoseconds to ticks without a hardware divide.
//!
//! Owns: the conversion between [`Instant`] and tick numbers for one tick length. Promises: exact
//! results (`floor`/`ceil` equal integer division for every `u64`), no panic, no overflow.
//! Must not: round a deadline down (the wheel's "never early" rests on `ceil`).
//!
//! Every insert and every poll converts an instant to a tick. A 64-bit `div` costs 15–90 cycles
//! depending on the CPU; a multiply by a precomputed reciprocal costs about five. For a tick `d`
//! that is not a power of two, with `s = ceil(log2 d)` and `M = ceil(2^(64+s) / d)`,
//! `floor(n / d) = floor(n * M / 2^(64+s))` for every `n < 2^64` (Granlund and Montgomery,
//! "Division by invariant integers using multiplication", PLDI 1994, theorem 4.2:
//! `M * d - 2^(64+s) < d <= 2^s`). `M` needs 65 bits, so it is kept as `2^64 + magic` and the
//! product is formed as `n * 2^64 + n * magic`.

use crate::time::Instant;

/// Divides by a fixed tick length, in nanoseconds.
///
/// One branch-free formula for every tick length, `floor(n / d) = (n + mulhi(n, magic)) >> shift`
/// with the sum taken in 65 bits: a power of two `2^k` is `magic = 0, shift = k`, any other `d`
/// the reciprocal above (`shift = 64` for `d > 2^63`, where the theorem's bound still holds).
/// Every reschedule converts a deadline, so a match on the kind of divisor was a branch and a
/// few instructions on the hottest path for nothing.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TickDivisor {
    nanos: u64,
    magic: u64,
    shift: u32,
}

impl TickDivisor {
    /// A divisor for ticks of `nanos` ns; zero is treated as 1 ns.
    pub(crate) fn new(nanos: u64) -> Self {
        let nanos = nanos.max(1);
        if nanos.is_power_of_two() {
            return TickDivisor { nanos, magic: 0, shift: nanos.trailing_zeros() };
        }
        let shift = 64 - (nanos - 1).leading_zeros();
        // ceil(2^(64+shift) / nanos): nanos is not a power of two, so it does not divide
        // 2^(64+shift), and (2^(64+shift) - 1) / nanos + 1 is the ceiling, computable in 128 bits
        // even for shift = 64.
        let reciprocal = (u128::MAX >> (64 - shift)) / u128::from(nanos) + 1;
        // 2^64 < reciprocal < 2^65 because 2^(shift-1) < nanos < 2^shift.
        TickDivisor { nanos, magic: (reciprocal - (1 << 64)) as u64, shift }
    }

    #[inline]
    pub(crate) fn nanos(&self) -> u64 {
        self.nanos
    }

    /// `floor(n / tick)`.
    #[inline]
    pub(crate) fn floor(&self, n: u64) -> u64 {
        let high = ((u128::from(n) * u128::from(self.magic)) >> 64) as u64;
        ((u128::from(n) + u128::from(high)) >> self.shift) as u64
    }

    /// `ceil(n / tick)`; cannot overflow, since the floor is below `u64::MAX` whenever the
    /// remainder is non-zero.
    #[inline]
    pub(crate) fn ceil(&self, n: u64) -> u64 {
        let quotient = self.floor(n);
        quotient + u64::from(quotient.wrapping_mul(self.nanos) != n)
    }

    /// The tick in progress at `now`; `Instant::MAX` is the end of time and maps past every tick.
    #[inline]
    pub(crate) fn now_tick(&self, now: Instant) -> u64 {
        if now == Instant::MAX {
            u64::MAX
        } else {
            self.floor(now.as_nanos())
        }
    }

    /// The instant tick `tick` starts, saturating at [`Instant::MAX`].
    #[inline]
    pub(crate) fn instant(&self, tick: u64) -> Instant {
        tick.checked_mul(self.nanos).map_or(Instant::MAX, Instant::from_nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(divisor: u64, n: u64) {
        let tick = TickDivisor::new(divisor);
        let d = divisor.max(1);
        assert_eq!(tick.floor(n), n / d, "floor({n} / {d})");
        assert_eq!(tick.ceil(n), n.div_ceil(d), "ceil({n} / {d})");
    }

    #[test]
    fn matches_hardware_division_on_edges_and_random_values() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut divisors = vec![0, 1, 2, 3, 7, 1_000, 4_000, 4_096, 7_919, 1_000_000, 999_999_937];
        divisors.extend([(1 << 32) + 1, (1 << 63) - 1, 1 << 63, (1 << 63) + 1, u64::MAX - 1, u64::MAX]);
        divisors.extend((0..200).map(|_| next() >> (next() % 64)));
        for &d in &divisors {
            let d1 = d.max(1);
            for n in [0, 1, d1 - 1, d1, d1.saturating_add(1), u64::MAX - 1, u64::MAX] {
                check(d, n);
            }
            for k in [2_u64, 3, 1_000, u64::MAX / d1] {
                let multiple = d1.saturating_mul(k);
                for n in [multiple - 1, multiple, multiple.saturating_add(1)] {
                    check(d, n);
                }
            }
            for _ in 0..2_000 {
                check(d, next() >> (next() % 64));
            }
        }
    }

    #[test]
    fn now_tick_and_instant_saturate_at_the_end_of_time() {
        let tick = TickDivisor::new(4_000);
        assert_eq!(tick.now_tick(Instant::MAX), u64::MAX);
        assert_eq!(tick.now_tick(Instant::from_nanos(7_999)), 1);
        assert_eq!(tick.instant(2), Instant::from_nanos(8_000));
        assert_eq!(tick.instant(u64::MAX / 1_000), Instant::MAX);
    }
}
