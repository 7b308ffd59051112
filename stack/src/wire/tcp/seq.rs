//! Modular sequence numbers (RFC 9293 §3.4).
//!
//! Sequence space is 2^32 and wraps; comparisons are made on the signed distance, so
//! `0xFFFF_FFF0 < 0x10`. The order is only meaningful within half the space: two numbers exactly
//! 2^31 apart are *incomparable* (`partial_cmp` returns `None`, RFC 1982 §3.2 leaves it undefined),
//! which is why this type is `PartialOrd` but not `Ord`.

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// A TCP sequence (or acknowledgment) number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// The later of the two (`self` when they are incomparable).
    pub fn max(self, other: SeqNumber) -> SeqNumber {
        if other > self {
            other
        } else {
            self
        }
    }

    /// The earlier of the two (`self` when they are incomparable).
    pub fn min(self, other: SeqNumber) -> SeqNumber {
        if other < self {
            other
        } else {
            self
        }
    }

    /// `start <= self < start + len` in sequence space (RFC 9293 §3.4 acceptability tests).
    /// A zero-length window contains nothing.
    pub fn in_window(self, start: SeqNumber, len: u32) -> bool {
        self.0.wrapping_sub(start.0) < len
    }
}

impl Add<u32> for SeqNumber {
    type Output = SeqNumber;
    fn add(self, rhs: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(rhs))
    }
}

impl AddAssign<u32> for SeqNumber {
    fn add_assign(&mut self, rhs: u32) {
        self.0 = self.0.wrapping_add(rhs);
    }
}

impl Sub<u32> for SeqNumber {
    type Output = SeqNumber;
    fn sub(self, rhs: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_sub(rhs))
    }
}

/// The signed distance `self - rhs`: positive when `self` is after `rhs`.
impl Sub<SeqNumber> for SeqNumber {
    type Output = i32;
    fn sub(self, rhs: SeqNumber) -> i32 {
        self.0.wrapping_sub(rhs.0) as i32
    }
}

impl PartialOrd for SeqNumber {
    fn partial_cmp(&self, other: &SeqNumber) -> Option<Ordering> {
        match *self - *other {
            i32::MIN => None,
            d => Some(d.cmp(&0)),
        }
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_across_the_wrap() {
        let (a, b) = (SeqNumber(0xFFFF_FFF0), SeqNumber(0x10));
        assert!(a < b);
        assert!(b > a);
        assert!(a <= b);
        assert_ne!(a, b);
        assert_eq!(b - a, 0x20);
        assert_eq!(a - b, -0x20);
        assert_eq!(a + 0x20, b);
        assert_eq!(b - 0x20u32, a);
        assert_eq!(a.max(b), b);
        assert_eq!(b.min(a), a);
        let mut c = a;
        c += 0x20;
        assert_eq!(c, b);
    }

    #[test]
    fn antipodal_numbers_are_incomparable() {
        let (a, b) = (SeqNumber(0), SeqNumber(0x8000_0000));
        assert_eq!(a.partial_cmp(&b), None);
        assert_eq!(b.partial_cmp(&a), None);
        assert!(matches!((a < b, b < a, a > b, a >= b), (false, false, false, false)));
        assert_eq!(a.max(b), a);
        assert!(SeqNumber(1) < b, "one step closer makes them comparable again");
    }

    #[test]
    fn in_window_across_the_wrap() {
        let start = SeqNumber(0xFFFF_FF00);
        assert!(start.in_window(start, 1));
        assert!(SeqNumber(0xFFFF_FFFF).in_window(start, 0x200));
        assert!(SeqNumber(0).in_window(start, 0x200));
        assert!(SeqNumber(0xFF).in_window(start, 0x200));
        assert!(!SeqNumber(0x100).in_window(start, 0x200));
        assert!(!SeqNumber(0xFFFF_FEFF).in_window(start, 0x200));
        assert!(!start.in_window(start, 0));
    }
}
