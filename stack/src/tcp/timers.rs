//! The per-connection table of deadlines.
//!
//! A connection has a handful of timers (the retransmission slot carries loss recovery's
//! RACK/TLP/RTO deadline; pacing releases are one more); it keeps each as a plain `Instant` here and the engine
//! keeps ONE timer-wheel entry per connection for the earliest of them (rescheduled when the
//! earliest changes). Expiry handling asks [`Timers::take_expired`] which ones are due.

use crate::time::Instant;

/// The timers of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerKind {
    /// RFC 6298 retransmission (also SYN / SYN-ACK retransmission).
    Retransmit = 0,
    /// RFC 9293 §3.8.6.1 zero-window probe.
    Persist = 1,
    /// RFC 9293 §3.8.6.3 delayed ACK.
    DelayedAck = 2,
    /// RFC 9293 §3.8.4 keepalive.
    Keepalive = 3,
    /// TIME-WAIT 2*MSL, or the orphaned FIN-WAIT-2 timeout.
    Linger = 4,
    /// Pacing: the earliest departure time of the next held segment (Carousel-style EDT).
    Pacing = 5,
}

const KINDS: [TimerKind; 6] = [
    TimerKind::Retransmit,
    TimerKind::Persist,
    TimerKind::DelayedAck,
    TimerKind::Keepalive,
    TimerKind::Linger,
    TimerKind::Pacing,
];

/// Deadlines; `Instant::MAX` means "not armed".
#[derive(Clone, Copy, Debug)]
pub struct Timers {
    deadlines: [Instant; 6],
}

impl Default for Timers {
    fn default() -> Self {
        Timers { deadlines: [Instant::MAX; 6] }
    }
}

impl Timers {
    pub fn set(&mut self, kind: TimerKind, at: Instant) {
        self.deadlines[kind as usize] = at;
    }

    pub fn stop(&mut self, kind: TimerKind) {
        self.deadlines[kind as usize] = Instant::MAX;
    }

    pub fn is_armed(&self, kind: TimerKind) -> bool {
        self.deadlines[kind as usize] != Instant::MAX
    }

    pub fn get(&self, kind: TimerKind) -> Option<Instant> {
        let d = self.deadlines[kind as usize];
        (d != Instant::MAX).then_some(d)
    }

    pub fn stop_all(&mut self) {
        self.deadlines = [Instant::MAX; 6];
    }

    /// The earliest armed deadline.
    pub fn earliest(&self) -> Option<Instant> {
        let d = self.deadlines.iter().copied().min().unwrap_or(Instant::MAX);
        (d != Instant::MAX).then_some(d)
    }

    /// Disarms and returns the first timer due at `now`, in a fixed priority order.
    pub fn take_expired(&mut self, now: Instant) -> Option<TimerKind> {
        for kind in KINDS {
            let d = &mut self.deadlines[kind as usize];
            if *d != Instant::MAX && *d <= now {
                *d = Instant::MAX;
                return Some(kind);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_and_expiry() {
        let mut t = Timers::default();
        assert_eq!(t.earliest(), None);
        t.set(TimerKind::Linger, Instant::from_millis(50));
        t.set(TimerKind::DelayedAck, Instant::from_millis(40));
        assert_eq!(t.earliest(), Some(Instant::from_millis(40)));
        assert_eq!(t.take_expired(Instant::from_millis(45)), Some(TimerKind::DelayedAck));
        assert_eq!(t.take_expired(Instant::from_millis(45)), None);
        assert_eq!(t.take_expired(Instant::from_millis(50)), Some(TimerKind::Linger));
        assert!(!t.is_armed(TimerKind::Linger));
    }
}
