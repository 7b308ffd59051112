//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! [`Checksum`] is a running sum that can be fed slices of any length in any number of pieces:
//! chaining `add_bytes` over arbitrary splits gives the same result as one call over the whole.
//! The portable loop adds the 16-bit halves of native-endian 32-bit words into 32-bit lanes (no
//! carry chain), a shape LLVM turns into vector mask/shift/add. On x86_64 the widest kernel the
//! CPU has is picked at run time: AVX-512BW (module `wide`: 64-bit lanes with counted carries,
//! masked tail loads, and a fused copy-and-sum for [`Checksum::copy_from`]), else an AVX2 build
//! of the portable loop and an AVX2 fused copy-and-sum. Those kernels are the only `unsafe` here. Everything relies on RFC 1071
//! §2(B): the one's complement sum is byte-order independent, so we sum in native order and swap
//! once per call.
//!
//! Never panics, never allocates.

use super::ipv4::{IpProtocol, Ipv4Address};

/// Bytes copied per step of [`Checksum::copy_from`]: small enough to stay in L1 for the sum.
const COPY_PIECE: usize = 4096;

/// A running one's complement sum.
///
/// `sum` is kept in network (big-endian) word order; `odd` records that an odd number of bytes
/// has been added so far, so the next byte is the low half of a 16-bit word.
#[derive(Clone, Copy, Debug, Default)]
pub struct Checksum {
    sum: u64,
    odd: bool,
}

impl Checksum {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `data` as a continuation of everything added before.
    pub fn add_bytes(&mut self, data: &[u8]) {
        let data = self.realign(data);
        if data.is_empty() {
            return;
        }
        self.sum += u64::from(network_sum(data));
        self.odd = data.len() % 2 == 1;
    }

    /// Adds a protocol header: the same result as `add_bytes`, through a plain loop of
    /// big-endian 32-bit words with no dispatch or vector set-up, which is what 20-60 bytes
    /// want. Falls back to `add_bytes` when the data does not start on a word boundary or is not
    /// a whole number of 32-bit words.
    #[inline]
    pub fn add_header(&mut self, data: &[u8]) {
        if self.odd || !data.len().is_multiple_of(4) {
            return self.add_bytes(data);
        }
        let words: u64 =
            data.chunks_exact(4).map(|w| u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))).sum();
        self.sum += u64::from(fold(words));
    }

    /// Adds one aligned 16-bit word (used for pseudo-headers and single fields). The word is
    /// added as a whole regardless of how many bytes went before.
    pub fn add_u16(&mut self, v: u16) {
        self.sum += u64::from(v);
    }

    /// Adds one aligned 32-bit value as two 16-bit words.
    pub fn add_u32(&mut self, v: u32) {
        self.sum += u64::from(v >> 16) + u64::from(v & 0xffff);
    }

    /// Adds the IPv4 pseudo-header used by TCP and UDP (RFC 9293 §3.1, "Checksum").
    pub fn add_pseudo_header(&mut self, src: Ipv4Address, dst: Ipv4Address, protocol: IpProtocol, len: u16) {
        self.add_u32(src.to_u32());
        self.add_u32(dst.to_u32());
        self.add_u16(u16::from(u8::from(protocol)));
        self.add_u16(len);
    }

    /// Copies `src` into `dst` and adds it to the sum: the transmit path's copy of the payload.
    ///
    /// With AVX-512BW this is one pass: each 64-byte vector is loaded once, stored and added
    /// (the sum costs no extra load); with AVX2 the same with 32-byte vectors. Otherwise it works
    /// in L1-sized pieces: each piece is copied with `memcpy` and summed while still in L1.
    ///
    /// `dst` and `src` must have the same length (debug builds assert it); otherwise only the
    /// common prefix is copied and summed.
    pub fn copy_from(&mut self, dst: &mut [u8], src: &[u8]) {
        debug_assert_eq!(dst.len(), src.len(), "copy_from needs equal lengths");
        let n = dst.len().min(src.len());
        let (dst, src) = (&mut dst[..n], &src[..n]);
        #[cfg(target_arch = "x86_64")]
        if n >= wide::MIN_LEN && wide::available() {
            // SAFETY: the CPU has AVX-512BW (checked just above).
            return self.copy_fused(dst, src, |d, s| unsafe { wide::copy_and_sum(d, s) });
        }
        #[cfg(target_arch = "x86_64")]
        if n >= AVX2_COPY_MIN_LEN && std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above); `copy_fused` passes equal lengths.
            return self.copy_fused(dst, src, |d, s| unsafe { copy_and_sum_avx2(d, s) });
        }
        for (d, s) in dst.chunks_mut(COPY_PIECE).zip(src.chunks(COPY_PIECE)) {
            d.copy_from_slice(s);
            self.add_bytes(d);
        }
    }

    /// [`Checksum::copy_from`] through a one-pass `kernel` that copies equal-length slices and
    /// returns the native-order sum of what it copied.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    fn copy_fused(&mut self, dst: &mut [u8], src: &[u8], kernel: impl FnOnce(&mut [u8], &[u8]) -> u64) {
        // The pending odd byte pairs with the first one copied; the rest starts on a word.
        let skip = usize::from(self.odd);
        dst[..skip].copy_from_slice(&src[..skip]);
        self.add_bytes(&dst[..skip]);
        let (dst, src) = (&mut dst[skip..], &src[skip..]);
        let native = kernel(dst, src);
        self.sum += u64::from(u16::from_be(fold(native)));
        self.odd = dst.len() % 2 == 1;
    }

    /// The one's complement of the folded sum: the value to store in a checksum field. Over data
    /// that already contains a correct checksum it is 0.
    pub fn finish(self) -> u16 {
        !fold(self.sum)
    }

    /// When an odd byte is pending, pairs it with the first byte of `data` and returns the rest.
    fn realign<'d>(&mut self, data: &'d [u8]) -> &'d [u8] {
        match (self.odd, data.split_first()) {
            (true, Some((&first, rest))) => {
                self.sum += u64::from(first);
                self.odd = false;
                rest
            }
            _ => data,
        }
    }
}

/// The RFC 1071 checksum of `data`, ready to store.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum = Checksum::new();
    sum.add_bytes(data);
    sum.finish()
}

/// [`checksum`] for a protocol header (see [`Checksum::add_header`]).
pub fn header_checksum(data: &[u8]) -> u16 {
    let mut sum = Checksum::new();
    sum.add_header(data);
    sum.finish()
}

/// Updates `old_checksum` after a 16-bit field changed from `old_field` to `new_field`,
/// without touching the rest of the data: RFC 1624 §3, eqn. 3, `HC' = ~(~HC + ~m + m')`.
pub fn update(old_checksum: u16, old_field: u16, new_field: u16) -> u16 {
    let sum = u64::from(!old_checksum) + u64::from(!old_field) + u64::from(new_field);
    !fold(sum)
}

/// Folds a wide one's complement sum into 16 bits with end-around carries.
/// Four fixed steps instead of a loop: 64 → 33 → 18 → 17 → 16 bits at most.
#[inline]
pub(super) fn fold(sum: u64) -> u16 {
    let sum = (sum & 0xffff_ffff) + (sum >> 32);
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    ((sum & 0xffff) + (sum >> 16)) as u16
}

/// The folded sum of `data` as big-endian 16-bit words (a final odd byte is the high half of a
/// word padded with zero), starting on a word boundary.
fn network_sum(data: &[u8]) -> u16 {
    // RFC 1071 §2(B): summing native-endian words gives the byte-swapped network-order sum.
    u16::from_be(fold(native_sum(data)))
}

/// Sums `data` as native-endian words (a final odd byte padded as in [`network_sum`]). The result
/// is congruent to the true sum modulo 0xffff and zero only if `data` is all zeros, which is all
/// [`fold`] needs.
fn native_sum(data: &[u8]) -> u64 {
    if data.len() < SHORT_LEN {
        return native_sum_short(data);
    }
    #[cfg(target_arch = "x86_64")]
    if data.len() >= wide::MIN_LEN && wide::available() {
        // SAFETY: the CPU has AVX-512BW (checked just above).
        return unsafe { wide::sum(data) };
    }
    native_sum_narrow(data)
}

/// Headers (TCP, IPv4, pseudo-header pieces) are shorter than this: they take the scalar loop
/// with no dispatch, vector prologue or reduction, which for 20-60 bytes cost more than the sum.
const SHORT_LEN: usize = 64;

/// [`native_sum`] for short data: native 32-bit words added into a u64 (a word is congruent to
/// the sum of its two 16-bit halves modulo 0xffff, and fewer than 2^32 words cannot overflow).
#[inline]
fn native_sum_short(data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(4);
    let mut sum = 0u64;
    for w in &mut words {
        sum += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    sum + native_sum_tail(words.remainder())
}

/// [`native_sum`] without the AVX-512 kernel.
fn native_sum_narrow(data: &[u8]) -> u64 {
    let (words, tail) = data.split_at(data.len() & !3);
    sum_words(words) + native_sum_tail(tail)
}

/// Below this many bytes (TCP/IP headers) the out-of-line AVX2 call costs more than it saves.
#[cfg(target_arch = "x86_64")]
const AVX2_MIN_LEN: usize = 128;

/// Sums the 4-byte words of `words` (whose length is a multiple of 4). Dispatches once per call
/// to an AVX2 build of the same loop when the CPU has it; the portable build is SSE2.
fn sum_words(words: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if words.len() >= AVX2_MIN_LEN && std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, the only requirement of `sum_words_avx2`.
        return unsafe { sum_words_avx2(words) };
    }
    sum_words_portable(words)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sum_words_avx2(words: &[u8]) -> u64 {
    sum_words_portable(words)
}

/// Bytes per inner block: each 4-byte word adds at most 2 * 0xffff to a u32, so 16 Ki words
/// (< 2^31) cannot overflow it.
const BLOCK: usize = 64 * 1024;

/// Each word is split into its two 16-bit halves and both are added into u32 lanes (RFC 1071
/// §2(C): deferred carries). Mask, shift and add vectorise on every x86 level without the
/// shuffles a u32-to-u64 widening needs, which matters most for the SSE2 build.
#[inline(always)]
fn sum_words_portable(words: &[u8]) -> u64 {
    words.chunks(BLOCK).map(|block| u64::from(sum_block(block))).sum()
}

#[inline(always)]
fn sum_block(block: &[u8]) -> u32 {
    block.chunks_exact(4).map(|w| split_halves(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]))).sum()
}

/// `hi + lo` of a native word: congruent to the word modulo 0xffff.
#[inline(always)]
fn split_halves(word: u32) -> u32 {
    (word & 0xffff) + (word >> 16)
}

/// Below this many bytes the AVX2 copy-and-sum's set-up costs more than the second pass saves.
#[cfg(target_arch = "x86_64")]
const AVX2_COPY_MIN_LEN: usize = 128;

/// The fused copy-and-sum for CPUs with AVX2 but not AVX-512BW: each 32-byte vector is loaded
/// once, stored, and its 16-bit halves added into 32-bit lanes (the split-halves shape of
/// [`sum_words_portable`], RFC 1071 §2(C)), so the payload is read once instead of copied by
/// `memcpy` and read again. Returns the native-order sum like [`native_sum`]. Two accumulators
/// per [`BLOCK`] bytes: each lane gains at most 2 * 0xffff per vector and neither accumulator
/// takes more than 1 Ki + 3 of a block's 2 Ki vectors, so no lane reaches 2^32.
///
/// # Safety
/// The CPU must support AVX2. `dst` and `src` must have the same length.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn copy_and_sum_avx2(dst: &mut [u8], src: &[u8]) -> u64 {
    use core::arch::x86_64::{
        __m256i, _mm256_add_epi32, _mm256_and_si256, _mm256_loadu_si256, _mm256_set1_epi32,
        _mm256_setzero_si256, _mm256_srli_epi32, _mm256_storeu_si256,
    };
    const VECTOR: usize = 32;
    let n = dst.len().min(src.len());
    let vectors = n / VECTOR;
    let (sp, dp) = (src.as_ptr(), dst.as_mut_ptr());
    let low = _mm256_set1_epi32(0xffff);
    let lanes = |acc: __m256i| -> u64 {
        let mut out = [0_u32; 8];
        // SAFETY: `out` is 32 bytes; unaligned stores are allowed.
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), acc) };
        out.iter().map(|&lane| u64::from(lane)).sum()
    };
    let mut total = 0_u64;
    let mut i = 0;
    while i < vectors {
        let end = vectors.min(i + BLOCK / VECTOR);
        let (mut a, mut b) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        let halves = |v: __m256i| _mm256_add_epi32(_mm256_and_si256(v, low), _mm256_srli_epi32::<16>(v));
        while i + 4 <= end {
            // SAFETY: vectors `i..i + 4` lie within the first `vectors * 32 <= n` bytes of both
            // slices; unaligned loads and stores are allowed.
            let v = unsafe {
                let v = [0, 1, 2, 3].map(|k| _mm256_loadu_si256(sp.add((i + k) * VECTOR).cast()));
                for (k, &vk) in v.iter().enumerate() {
                    _mm256_storeu_si256(dp.add((i + k) * VECTOR).cast(), vk);
                }
                v
            };
            a = _mm256_add_epi32(a, _mm256_add_epi32(halves(v[0]), halves(v[2])));
            b = _mm256_add_epi32(b, _mm256_add_epi32(halves(v[1]), halves(v[3])));
            i += 4;
        }
        while i < end {
            // SAFETY: as above, for vector `i`.
            let v = unsafe {
                let v = _mm256_loadu_si256(sp.add(i * VECTOR).cast());
                _mm256_storeu_si256(dp.add(i * VECTOR).cast(), v);
                v
            };
            a = _mm256_add_epi32(a, halves(v));
            i += 1;
        }
        total += lanes(a) + lanes(b);
    }
    // The rest (< 32 bytes) starts on a word boundary: the plain copy and the scalar sum.
    let done = vectors * VECTOR;
    dst[done..n].copy_from_slice(&src[done..n]);
    total + native_sum_short(&dst[done..n])
}

/// Sums fewer than 4 bytes as native-endian words.
fn native_sum_tail(tail: &[u8]) -> u64 {
    let mut sum = 0u64;
    let mut words = tail.chunks_exact(2);
    for w in &mut words {
        sum += u64::from(u16::from_ne_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(u16::from_ne_bytes([*last, 0]));
    }
    sum
}

#[cfg(target_arch = "x86_64")]
mod wide;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod unit_tests {
    use super::*;

    /// RFC 1071 §3 worked example: words 0001 f203 f4f5 f6f7 sum to ddf2.
    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_low_byte() {
        assert_eq!(checksum(&[0xab]), !0xab00);
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn header_sum_matches_the_general_sum() {
        let data: Vec<u8> = (0..=64u32).map(|i| (i.wrapping_mul(167) ^ 0x5a) as u8).collect();
        for len in 0..=data.len() {
            assert_eq!(header_checksum(&data[..len]), checksum(&data[..len]), "length {len}");
            // After an odd byte the header is not word-aligned: still the same result.
            let (mut a, mut b) = (Checksum::new(), Checksum::new());
            a.add_bytes(&[0xab]);
            b.add_bytes(&[0xab]);
            a.add_header(&data[..len]);
            b.add_bytes(&data[..len]);
            assert_eq!(a.finish(), b.finish(), "length {len} after an odd byte");
        }
        assert_eq!(header_checksum(&[0xff; 60]), checksum(&[0xff; 60]));
    }

    #[test]
    fn incremental_update_matches_recompute() {
        let mut data = [0x45u8, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01];
        let before = checksum(&data);
        let old = u16::from_be_bytes([data[8], data[9]]);
        data[8] = 0x3f; // TTL decrement
        let new = u16::from_be_bytes([data[8], data[9]]);
        assert_eq!(update(before, old, new), checksum(&data));
    }
}
