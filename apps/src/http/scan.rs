//! Byte scans over request heads, eight bytes at a time.
//!
//! Owns the two scans the head parser runs over every byte of every request: finding a byte (line
//! ends, colons, escapes) and checking that a field value holds only allowed bytes. A byte loop
//! spends about six instructions per byte on these; a 64-bit word tests eight bytes in about as
//! many, which is most of the parser's time on a typical 60–400 byte head.
//!
//! Promises: the same answers as the obvious byte loops (the tests compare them on every byte
//! value and alignment); safe code only; never panics. Must not allocate.

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// A word with a high bit set in (at least) the lowest byte of `word` that is zero, and only
/// there or above it: exact for "is there a zero byte", and its lowest set bit marks the first.
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(ONES) & !word & HIGHS
}

/// Index of the first `needle` in `hay`.
pub fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    let pattern = ONES * u64::from(needle);
    let mut words = hay.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut words {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let hits = zero_bytes(word ^ pattern);
        if hits != 0 {
            // Little-endian load: the lowest set bit is the first matching byte. Borrows only
            // propagate upwards, so the lowest flag is always a real match.
            return Some(at + hits.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    words.remainder().iter().position(|&b| b == needle).map(|i| at + i)
}

/// RFC 9110 §5.5 field-value byte: HTAB, SP, VCHAR or obs-text (no NUL, CR, LF, other CTLs
/// or DEL).
fn is_value_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

/// True if every byte of `value` may appear in a field value.
pub fn is_field_value(value: &[u8]) -> bool {
    let mut words = value.chunks_exact(8);
    for chunk in &mut words {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        // Any byte below 0x20 (exact for the whole word: obs-text bytes have the high bit set,
        // which `!word` clears) or equal to 0x7f: look closer, a tab is allowed.
        let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
        let del = zero_bytes(word ^ (ONES * 0x7f));
        if (below_space | del) != 0 && !chunk.iter().all(|&b| is_value_byte(b)) {
            return false;
        }
    }
    words.remainder().iter().all(|&b| is_value_byte(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_byte_agrees_with_a_byte_loop_at_every_position_and_value() {
        let mut hay = [b'a'; 40];
        for len in 0..hay.len() {
            for at in 0..len {
                for b in 0..=255u8 {
                    hay[at] = b;
                    for needle in [b, b'\n', 0, 0x80, 0xff] {
                        let want = hay[..len].iter().position(|&x| x == needle);
                        assert_eq!(find_byte(&hay[..len], needle), want, "len {len} at {at} byte {b}");
                    }
                    hay[at] = b'a';
                }
            }
        }
    }

    #[test]
    fn field_values_agree_with_a_byte_loop() {
        let mut value = *b"text/html; q=0.9, \x80\xff obs-text and more";
        for at in 0..value.len() {
            for b in 0..=255u8 {
                let keep = value[at];
                value[at] = b;
                for len in [at + 1, value.len()] {
                    let want = value[..len].iter().all(|&x| is_value_byte(x));
                    assert_eq!(is_field_value(&value[..len]), want, "byte {b:#x} at {at}, len {len}");
                }
                value[at] = keep;
            }
        }
    }
}
