//! The OS monotonic clock as the engine's `Instant`, read once per loop iteration.
//!
//! Owns the epoch (the moment the clock was created) and the matching wall-clock time, so the
//! HTTP `Date` header and pcap timestamps can be derived from the same `now` the engine sees.

use linerate_stack::time::Instant;

/// A monotonic clock whose `Instant::ZERO` is its creation time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: std::time::Instant,
    unix_nanos_at_zero: u64,
}

impl Clock {
    pub fn new() -> Self {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Clock { origin: std::time::Instant::now(), unix_nanos_at_zero: unix }
    }

    /// Nanoseconds since the clock was created.
    pub fn now(&self) -> Instant {
        Instant::from_nanos(self.origin.elapsed().as_nanos() as u64)
    }

    /// Wall-clock time (ns since the Unix epoch) at `Instant::ZERO`.
    pub fn unix_nanos_at_zero(&self) -> u64 {
        self.unix_nanos_at_zero
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// Wall-clock time (ns since the Unix epoch) at `linerate_driver::shard::MonotonicClock`'s
/// `Instant::ZERO` (boot), so shards stamp HTTP dates and captures from the `now` they poll with.
pub fn unix_nanos_at_monotonic_zero() -> u64 {
    use linerate_stack::time::Clock as _;
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    unix.saturating_sub(linerate_driver::shard::MonotonicClock::new().now().as_nanos())
}
