//! Time as a value.
//!
//! The engine never reads a clock: every entry point takes `now: Instant`, and the engine answers
//! with the next `Instant` it wants to be woken at. Production code reads the OS clock once per
//! loop iteration (through a [`Clock`] owned by the driver side); tests drive a virtual clock.
//!
//! `Instant` is nanoseconds since an arbitrary epoch chosen by the clock (u64: 584 years of range);
//! `Duration` is a span in nanoseconds. Arithmetic saturates instead of panicking or wrapping, so a
//! hostile or buggy input (a huge RTT sample, a timestamp far in the future) cannot crash the
//! engine; saturated values are far beyond every timer limit we use.

use core::fmt;
use core::ops::{Add, AddAssign, Sub, SubAssign};

/// A point in time, in nanoseconds since the clock's epoch.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

/// A span of time in nanoseconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(u64);

impl Instant {
    /// The clock's epoch.
    pub const ZERO: Instant = Instant(0);
    /// The latest representable instant; used as "never".
    pub const MAX: Instant = Instant(u64::MAX);

    pub const fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }
    pub const fn from_micros(micros: u64) -> Self {
        Instant(micros.saturating_mul(1_000))
    }
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis.saturating_mul(1_000_000))
    }
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    pub const fn as_micros(self) -> u64 {
        self.0 / 1_000
    }
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000_000
    }
    /// Time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
    /// `self + d`, saturating at [`Instant::MAX`].
    pub const fn saturating_add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d.0))
    }
}

impl Duration {
    pub const ZERO: Duration = Duration(0);
    pub const MAX: Duration = Duration(u64::MAX);

    pub const fn from_nanos(nanos: u64) -> Self {
        Duration(nanos)
    }
    pub const fn from_micros(micros: u64) -> Self {
        Duration(micros.saturating_mul(1_000))
    }
    pub const fn from_millis(millis: u64) -> Self {
        Duration(millis.saturating_mul(1_000_000))
    }
    pub const fn from_secs(secs: u64) -> Self {
        Duration(secs.saturating_mul(1_000_000_000))
    }
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    pub const fn as_micros(self) -> u64 {
        self.0 / 1_000
    }
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000_000
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
    pub const fn saturating_mul(self, k: u64) -> Duration {
        Duration(self.0.saturating_mul(k))
    }
    pub const fn saturating_sub(self, other: Duration) -> Duration {
        Duration(self.0.saturating_sub(other.0))
    }
    /// Divides, returning zero for a zero divisor rather than panicking.
    pub const fn checked_div_or_zero(self, k: u64) -> Duration {
        match self.0.checked_div(k) {
            Some(v) => Duration(v),
            None => Duration(0),
        }
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(rhs.0))
    }
}
impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}
impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_sub(rhs.0))
    }
}
impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturating: an `earlier` that is actually later yields zero.
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}
impl Add for Duration {
    type Output = Duration;
    fn add(self, rhs: Duration) -> Duration {
        Duration(self.0.saturating_add(rhs.0))
    }
}
impl AddAssign for Duration {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}
impl Sub for Duration {
    type Output = Duration;
    fn sub(self, rhs: Duration) -> Duration {
        Duration(self.0.saturating_sub(rhs.0))
    }
}
impl SubAssign for Duration {
    fn sub_assign(&mut self, rhs: Duration) {
        *self = *self - rhs;
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000_000, (self.0 % 1_000_000_000) / 1_000)
    }
}
impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            n if n < 1_000 => write!(f, "{n}ns"),
            n if n < 1_000_000 => write!(f, "{:.1}us", n as f64 / 1e3),
            n if n < 1_000_000_000 => write!(f, "{:.3}ms", n as f64 / 1e6),
            n => write!(f, "{:.3}s", n as f64 / 1e9),
        }
    }
}
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A source of `now`. The engine never owns one; the loop that drives the engine does.
///
/// Production uses a monotonic OS clock (in `linerate-driver`); tests use [`VirtualClock`].
pub trait Clock {
    fn now(&self) -> Instant;
}

/// A clock that only moves when told to: the time base of every simulation.
#[derive(Debug, Clone, Default)]
pub struct VirtualClock {
    now: core::cell::Cell<Instant>,
}

impl VirtualClock {
    pub fn new(start: Instant) -> Self {
        VirtualClock { now: core::cell::Cell::new(start) }
    }
    /// Moves time forward to `t`; never backwards (an earlier `t` is ignored).
    pub fn advance_to(&self, t: Instant) {
        if t > self.now.get() {
            self.now.set(t);
        }
    }
    pub fn advance_by(&self, d: Duration) {
        self.now.set(self.now.get() + d);
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Instant {
        self.now.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(Instant::ZERO - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(Instant::from_millis(1) - Instant::from_millis(5), Duration::ZERO);
        assert_eq!(Duration::from_secs(u64::MAX), Duration::MAX);
        assert_eq!(Duration::from_millis(3).checked_div_or_zero(0), Duration::ZERO);
    }

    #[test]
    fn unit_conversions_round_trip() {
        assert_eq!(Duration::from_millis(200).as_micros(), 200_000);
        assert_eq!(Instant::from_micros(1_500).as_millis(), 1);
        assert_eq!(format!("{:?}", Duration::from_micros(1500)), "1.500ms");
    }

    #[test]
    fn virtual_clock_never_goes_backwards() {
        let clock = VirtualClock::new(Instant::from_millis(10));
        clock.advance_to(Instant::from_millis(5));
        assert_eq!(clock.now(), Instant::from_millis(10));
        clock.advance_by(Duration::from_millis(1));
        assert_eq!(clock.now(), Instant::from_millis(11));
    }
}
