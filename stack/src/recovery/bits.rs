//! A fixed-size bitset over ring slots with a summary hierarchy (64-ary, like a timer wheel's
//! occupancy bitmaps), so "the next set bit at or after `i`" costs O(levels), at most 4 for any
//! capacity up to 2^24, instead of a scan.
//!
//! **Promises:** allocated once, no panic for any index (out-of-range indices are ignored or
//! answer `None`).

/// Hierarchical bitset: `levels[0]` holds the bits, each higher level one bit per non-zero
/// word of the level below; the top level is a single word.
#[derive(Debug, Clone)]
pub struct SlotBits {
    levels: Vec<Vec<u64>>,
    len: usize,
    count: usize,
}

impl SlotBits {
    /// `len` bits, all clear. Zero bits allocate nothing (every query then answers "none").
    pub fn new(len: usize) -> Self {
        if len == 0 {
            return SlotBits { levels: Vec::new(), len: 0, count: 0 };
        }
        // At most 4 levels up to 2^24 bits; reserving them avoids regrowing the outer vector.
        let mut levels = Vec::with_capacity(4);
        let mut bits = len;
        loop {
            let words = bits.div_ceil(64);
            levels.push(vec![0u64; words]);
            if words == 1 {
                break;
            }
            bits = words;
        }
        SlotBits { levels, len, count: 0 }
    }

    /// Number of set bits.
    pub fn count(&self) -> usize {
        self.count
    }

    pub fn contains(&self, i: usize) -> bool {
        i < self.len && self.levels[0][i / 64] & (1 << (i % 64)) != 0
    }

    #[inline]
    pub fn insert(&mut self, i: usize) {
        if i >= self.len {
            return;
        }
        // The leaf word first: a ring fills its slots in order, so the summary levels change
        // only when a word becomes non-empty (once per 64 inserts).
        let Some(word) = self.levels.first_mut().and_then(|l| l.get_mut(i / 64)) else { return };
        let bit = 1u64 << (i % 64);
        if *word & bit != 0 {
            return;
        }
        let was_empty = *word == 0;
        *word |= bit;
        self.count += 1;
        if was_empty {
            let mut idx = i / 64;
            for level in self.levels.iter_mut().skip(1) {
                let word = &mut level[idx / 64];
                let was_empty = *word == 0;
                *word |= 1 << (idx % 64);
                if !was_empty {
                    break;
                }
                idx /= 64;
            }
        }
    }

    #[inline]
    pub fn remove(&mut self, i: usize) {
        if i >= self.len {
            return;
        }
        let Some(word) = self.levels.first_mut().and_then(|l| l.get_mut(i / 64)) else { return };
        let bit = 1u64 << (i % 64);
        if *word & bit == 0 {
            return;
        }
        *word &= !bit;
        self.count -= 1;
        if *word == 0 {
            self.clear_summary(i / 64);
        }
    }

    /// Clears every bit in `from..to` (a run of records released together): one masked store
    /// per leaf word instead of one `remove` per bit.
    pub fn remove_range(&mut self, from: usize, to: usize) {
        let to = to.min(self.len);
        if from < to && from / 64 == (to - 1) / 64 {
            // Inside one leaf word (a bulk ACK's few records): one mask, no loop.
            let mask = (u64::MAX >> (64 - (to - from))) << (from % 64);
            let Some(word) = self.levels.first_mut().and_then(|l| l.get_mut(from / 64)) else { return };
            let cleared = *word & mask;
            *word &= !mask;
            self.count -= cleared.count_ones() as usize;
            if cleared != 0 && *word == 0 {
                self.clear_summary(from / 64);
            }
            return;
        }
        let mut i = from;
        while i < to {
            let w = i / 64;
            let end = to.min((w + 1) * 64);
            let span = end - i;
            let mask = if span == 64 { !0u64 } else { ((1u64 << span) - 1) << (i % 64) };
            let Some(word) = self.levels.first_mut().and_then(|l| l.get_mut(w)) else { return };
            let cleared = *word & mask;
            if cleared != 0 {
                *word &= !mask;
                self.count -= cleared.count_ones() as usize;
                if *word == 0 {
                    self.clear_summary(w);
                }
            }
            i = end;
        }
    }

    /// Leaf word `word` became empty: clear its bit in the levels above, as far as they empty.
    fn clear_summary(&mut self, word: usize) {
        let mut idx = word;
        for level in self.levels.iter_mut().skip(1) {
            let word = &mut level[idx / 64];
            *word &= !(1 << (idx % 64));
            if *word != 0 {
                break;
            }
            idx /= 64;
        }
    }

    /// The first set bit at an index in `from..to`.
    pub fn next_set(&self, from: usize, to: usize) -> Option<usize> {
        let to = to.min(self.len);
        if from >= to {
            return None;
        }
        let mut level = 0;
        let mut idx = from;
        // Ascend until a word holds a set bit at or after `idx`.
        loop {
            let words = &self.levels[level];
            let w = *words.get(idx / 64)?;
            let masked = w & (!0u64 << (idx % 64));
            if masked != 0 {
                idx = (idx / 64) * 64 + masked.trailing_zeros() as usize;
                break;
            }
            if level == 0 && (idx / 64 + 1) * 64 >= to {
                // The range ends inside this leaf word, which has nothing set in it.
                return None;
            }
            level += 1;
            if level == self.levels.len() {
                return None;
            }
            idx = idx / 64 + 1;
        }
        // Descend to the first set leaf under it.
        while level > 0 {
            level -= 1;
            idx = idx * 64 + self.levels[level][idx].trailing_zeros() as usize;
        }
        (idx < to).then_some(idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_set_matches_a_linear_scan() {
        for len in [1, 63, 64, 65, 4096, 5000, 300_000] {
            let mut bits = SlotBits::new(len);
            let mut model = vec![false; len];
            let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ len as u64;
            for _ in 0..2000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x % len as u64) as usize;
                if x & (1 << 40) != 0 {
                    bits.insert(i);
                    model[i] = true;
                } else {
                    bits.remove(i);
                    model[i] = false;
                }
                let from = ((x >> 20) % len as u64) as usize;
                if x & (1 << 41) != 0 && x & (1 << 42) != 0 {
                    let to = from + ((x >> 50) % 200) as usize;
                    bits.remove_range(from, to);
                    model[from..to.min(len)].fill(false);
                }
                let expect = (from..len).find(|&j| model[j]);
                assert_eq!(bits.next_set(from, len), expect, "len {len} from {from}");
                // Bounded queries, ending inside the first word, at its end or beyond.
                let to = from + ((x >> 30) % 300) as usize;
                let expect = (from..to.min(len)).find(|&j| model[j]);
                assert_eq!(bits.next_set(from, to), expect, "len {len} from {from} to {to}");
            }
            assert_eq!(bits.count(), model.iter().filter(|b| **b).count());
        }
    }
}
