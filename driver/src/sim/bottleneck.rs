//! The rate-limited bottleneck with a drop-tail queue.
//!
//! Owns the queue state of one link direction: when the wire is next free and which frames are
//! still waiting or being serialized. Frames are not held here; admission computes each frame's
//! departure time analytically (FIFO: it starts when the previous frame has left), so the queue
//! only remembers `(departure, length)` pairs to know its occupancy at any later `now`. Memory is
//! bounded by the byte limit.

use std::collections::VecDeque;

use linerate_stack::time::{Duration, Instant};

/// Nanoseconds per second, as the numerator of serialization times.
const NANOS_PER_SEC: u128 = 1_000_000_000;

/// A frame accepted by the bottleneck.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Admitted {
    /// When the last bit has left the bottleneck.
    pub(crate) departure: Instant,
    /// Time spent waiting behind earlier frames before its own serialization began.
    pub(crate) queueing_delay: Duration,
}

/// The drop-tail limits of the queue; a frame is refused when it would exceed either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueLimit {
    pub(crate) bytes: usize,
    pub(crate) frames: usize,
}

#[derive(Debug)]
pub(crate) struct Bottleneck {
    /// When the wire finishes the last admitted frame.
    busy_until: Instant,
    /// Admitted frames not yet fully serialized, oldest first.
    backlog: VecDeque<(Instant, usize)>,
    backlog_bytes: usize,
}

/// Time to put `len` bytes on a wire of `rate_bps`, rounded up to whole nanoseconds.
pub fn serialization_time(len: usize, rate_bps: u64) -> Duration {
    if rate_bps == 0 {
        return Duration::ZERO;
    }
    let bits = len as u128 * 8;
    let nanos = (bits * NANOS_PER_SEC).div_ceil(u128::from(rate_bps));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

impl Bottleneck {
    pub(crate) fn new() -> Self {
        Bottleneck { busy_until: Instant::ZERO, backlog: VecDeque::new(), backlog_bytes: 0 }
    }

    /// Offers a frame of `len` bytes at `now`; `None` when the drop-tail queue is full (either
    /// limit of `limit` would be exceeded).
    pub(crate) fn admit(
        &mut self,
        now: Instant,
        len: usize,
        rate_bps: u64,
        limit: QueueLimit,
    ) -> Option<Admitted> {
        if rate_bps == 0 {
            return Some(Admitted { departure: now, queueing_delay: Duration::ZERO });
        }
        self.forget_departed(now);
        if self.backlog_bytes.saturating_add(len) > limit.bytes || self.backlog.len() >= limit.frames {
            return None;
        }
        let start = self.busy_until.max(now);
        let departure = start + serialization_time(len, rate_bps);
        self.busy_until = departure;
        self.backlog.push_back((departure, len));
        self.backlog_bytes += len;
        Some(Admitted { departure, queueing_delay: start - now })
    }

    /// Frames waiting or being serialized at `now`.
    pub(crate) fn backlog_frames(&mut self, now: Instant) -> usize {
        self.forget_departed(now);
        self.backlog.len()
    }

    /// Bytes waiting or being serialized at `now`.
    pub(crate) fn backlog_bytes(&mut self, now: Instant) -> usize {
        self.forget_departed(now);
        self.backlog_bytes
    }

    fn forget_departed(&mut self, now: Instant) {
        while let Some(&(departure, len)) = self.backlog.front() {
            if departure > now {
                break;
            }
            self.backlog.pop_front();
            self.backlog_bytes -= len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialization_time_is_len_times_eight_over_rate() {
        assert_eq!(serialization_time(1500, 12_000_000), Duration::from_millis(1));
        assert_eq!(serialization_time(1, 3), Duration::from_nanos(2_666_666_667));
        assert_eq!(serialization_time(100, 0), Duration::ZERO);
    }

    #[test]
    fn frames_queue_behind_each_other_and_the_tail_drops() {
        let mut b = Bottleneck::new();
        let t0 = Instant::from_millis(1);
        let rate = 12_000_000; // 1500 bytes per ms
        let limit = QueueLimit { bytes: 3000, frames: usize::MAX };
        let first = b.admit(t0, 1500, rate, limit).unwrap();
        assert_eq!(first.departure, Instant::from_millis(2));
        assert_eq!(first.queueing_delay, Duration::ZERO);
        let second = b.admit(t0, 1500, rate, limit).unwrap();
        assert_eq!(second.departure, Instant::from_millis(3));
        assert_eq!(second.queueing_delay, Duration::from_millis(1));
        assert_eq!(b.admit(t0, 1, rate, limit), None);
        assert_eq!(b.backlog_bytes(Instant::from_millis(2)), 1500);
        assert!(b.admit(Instant::from_millis(2), 1500, rate, limit).is_some());
    }

    #[test]
    fn the_frame_limit_drops_small_frames_too() {
        let mut b = Bottleneck::new();
        let t0 = Instant::from_millis(1);
        let limit = QueueLimit { bytes: usize::MAX, frames: 2 };
        assert!(b.admit(t0, 64, 12_000_000, limit).is_some());
        assert!(b.admit(t0, 64, 12_000_000, limit).is_some());
        assert_eq!(b.admit(t0, 64, 12_000_000, limit), None);
        assert_eq!(b.backlog_frames(t0), 2);
    }
}
