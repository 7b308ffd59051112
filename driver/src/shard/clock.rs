//! The production clock: `CLOCK_MONOTONIC`, read once per shard-loop iteration.
//!
//! Owns nothing. Promises: never goes backwards, shares one epoch (boot) across every thread of
//! the process so instants can travel between shards, and costs a vDSO call (no syscall) on
//! Linux. Must not: be used inside `linerate-stack` — the engine takes `now` as a value.

use linerate_stack::time::{Clock, Instant};

/// [`Clock`] over the OS monotonic clock; the epoch is the system's boot.
#[derive(Debug, Clone, Copy, Default)]
pub struct MonotonicClock;

impl MonotonicClock {
    pub const fn new() -> Self {
        MonotonicClock
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Instant {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC is always supported on
        // Linux, so the call cannot fail and its result needs no check.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        let nanos = (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64);
        Instant::from_nanos(nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_clock_never_goes_backwards() {
        let clock = MonotonicClock::new();
        let mut last = clock.now();
        assert!(last > Instant::ZERO);
        for _ in 0..1000 {
            let now = clock.now();
            assert!(now >= last);
            last = now;
        }
    }
}
