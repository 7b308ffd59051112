//! AVX-512BW kernels for the Internet checksum: a plain sum and a fused copy-and-sum.
//!
//! Owns: the x86_64 AVX-512 code paths of [`super`]. Promises: for any input, the same folded
//! result as the portable loop (property-tested over every length 0..=4096 and every
//! alignment); no read or write outside the given slices (the tail uses masked loads and stores,
//! which do not touch masked-off bytes). Must not: be called unless [`available`] said yes.
//!
//! Why the shape: the data is added as native 64-bit words into 64-bit lanes. Because
//! 2^16 ≡ 1 (mod 0xffff), a 64-bit word is congruent to the sum of its four 16-bit words, and a
//! carry out of a 64-bit lane (worth 2^64) is congruent to 1; so each lane only needs a count of
//! its wrap-arounds (RFC 1071 §2(C), deferred carries). That is three vector operations per
//! 64 bytes (add, unsigned compare into a mask, masked increment) where the split-halves loop
//! needs four, and nothing in the loop can overflow, so there is no block structure. Four
//! independent accumulators hide the compare latency.

use core::arch::x86_64::{
    __m512i, _mm512_add_epi64, _mm512_and_si512, _mm512_cmplt_epu64_mask, _mm512_loadu_si512,
    _mm512_mask_add_epi64, _mm512_mask_storeu_epi8, _mm512_maskz_loadu_epi8, _mm512_reduce_add_epi64,
    _mm512_set1_epi64, _mm512_setzero_si512, _mm512_srli_epi64, _mm512_storeu_si512,
};

/// Below this many bytes (TCP/IP headers) the scalar loop beats the call and the reduction.
pub(super) const MIN_LEN: usize = 64;

/// Bytes per vector.
const LANES_BYTES: usize = 64;

/// Whether the CPU (and OS) support the kernels here. A cached check, a few cycles.
#[inline]
pub(super) fn available() -> bool {
    std::is_x86_feature_detected!("avx512bw")
}

/// One accumulator: 8 modular 64-bit sums and, per lane, how often it wrapped.
#[derive(Clone, Copy)]
struct Accumulator {
    sum: __m512i,
    wraps: __m512i,
}

impl Accumulator {
    #[target_feature(enable = "avx512bw")]
    fn new() -> Self {
        Accumulator { sum: _mm512_setzero_si512(), wraps: _mm512_setzero_si512() }
    }

    /// Adds eight 64-bit words; a lane that wrapped ends below the word it added.
    #[target_feature(enable = "avx512bw")]
    #[inline]
    fn add(&mut self, words: __m512i) {
        self.sum = _mm512_add_epi64(self.sum, words);
        let wrapped = _mm512_cmplt_epu64_mask(self.sum, words);
        self.wraps = _mm512_mask_add_epi64(self.wraps, wrapped, self.wraps, _mm512_set1_epi64(1));
    }

    /// Merges `other` in, the lane sums becoming words of `self`.
    #[target_feature(enable = "avx512bw")]
    #[inline]
    fn merge(&mut self, other: Accumulator) {
        self.add(other.sum);
        self.wraps = _mm512_add_epi64(self.wraps, other.wraps);
    }

    /// A scalar congruent to the total modulo 0xffff, zero only if every word added was zero:
    /// each lane sum splits into 32-bit halves (2^32 ≡ 1), and each wrap counts as 1.
    #[target_feature(enable = "avx512bw")]
    #[inline]
    fn total(self) -> u64 {
        let low = _mm512_and_si512(self.sum, _mm512_set1_epi64(0xffff_ffff));
        let high = _mm512_srli_epi64::<32>(self.sum);
        // Eight halves below 2^32 and eight wrap counts below 2^58 cannot overflow a u64.
        let halves = _mm512_reduce_add_epi64(_mm512_add_epi64(low, high)) as u64;
        halves + _mm512_reduce_add_epi64(self.wraps) as u64
    }
}

/// Mask selecting the first `len` (< 64) bytes of a vector.
#[inline]
fn tail_mask(len: usize) -> u64 {
    debug_assert!(len < LANES_BYTES);
    (1_u64 << len) - 1
}

/// The native-order sum of `data` (see [`super::native_sum`] for what the result promises).
///
/// # Safety
/// The CPU must support AVX-512BW ([`available`]).
#[target_feature(enable = "avx512bw")]
pub(super) unsafe fn sum(data: &[u8]) -> u64 {
    let mut acc = [Accumulator::new(); 4];
    let mut blocks = data.chunks_exact(4 * LANES_BYTES);
    for block in &mut blocks {
        let p = block.as_ptr();
        // SAFETY: `block` holds four whole vectors; unaligned loads are allowed. Written out
        // (not a loop over `acc`) so the four accumulators stay in registers.
        let words = unsafe {
            [
                _mm512_loadu_si512(p.cast()),
                _mm512_loadu_si512(p.add(LANES_BYTES).cast()),
                _mm512_loadu_si512(p.add(2 * LANES_BYTES).cast()),
                _mm512_loadu_si512(p.add(3 * LANES_BYTES).cast()),
            ]
        };
        acc[0].add(words[0]);
        acc[1].add(words[1]);
        acc[2].add(words[2]);
        acc[3].add(words[3]);
    }
    let rest = blocks.remainder();
    let mut vectors = rest.chunks_exact(LANES_BYTES);
    for (i, vector) in (&mut vectors).enumerate() {
        // SAFETY: `vector` is 64 bytes.
        acc[i].add(unsafe { _mm512_loadu_si512(vector.as_ptr().cast()) });
    }
    let tail = vectors.remainder();
    if !tail.is_empty() {
        // SAFETY: the mask covers exactly `tail`; masked-off bytes are not read (and read as 0,
        // which pads a final odd byte as RFC 1071 asks).
        acc[3].add(unsafe { _mm512_maskz_loadu_epi8(tail_mask(tail.len()), tail.as_ptr().cast()) });
    }
    finish(acc)
}

/// Copies `src` into `dst` (same length) and returns the native-order sum of the bytes, in one
/// pass: every vector is loaded once, then stored and added.
///
/// # Safety
/// The CPU must support AVX-512BW ([`available`]).
#[target_feature(enable = "avx512bw")]
pub(super) unsafe fn copy_and_sum(dst: &mut [u8], src: &[u8]) -> u64 {
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    let mut acc = [Accumulator::new(); 4];
    let mut dst_blocks = dst.chunks_exact_mut(4 * LANES_BYTES);
    let mut src_blocks = src.chunks_exact(4 * LANES_BYTES);
    for (d, s) in (&mut dst_blocks).zip(&mut src_blocks) {
        let (dp, sp) = (d.as_mut_ptr(), s.as_ptr());
        // SAFETY: both blocks hold four whole vectors; unaligned access is allowed. Written out
        // so the four accumulators stay in registers.
        let words = unsafe {
            [
                _mm512_loadu_si512(sp.cast()),
                _mm512_loadu_si512(sp.add(LANES_BYTES).cast()),
                _mm512_loadu_si512(sp.add(2 * LANES_BYTES).cast()),
                _mm512_loadu_si512(sp.add(3 * LANES_BYTES).cast()),
            ]
        };
        for (i, &w) in words.iter().enumerate() {
            // SAFETY: as above, `i < 4`.
            unsafe { _mm512_storeu_si512(dp.add(i * LANES_BYTES).cast(), w) };
        }
        acc[0].add(words[0]);
        acc[1].add(words[1]);
        acc[2].add(words[2]);
        acc[3].add(words[3]);
    }
    let (dst, src) = (dst_blocks.into_remainder(), src_blocks.remainder());
    let mut dst_vectors = dst.chunks_exact_mut(LANES_BYTES);
    let mut src_vectors = src.chunks_exact(LANES_BYTES);
    for (i, (d, s)) in (&mut dst_vectors).zip(&mut src_vectors).enumerate() {
        // SAFETY: both are 64 bytes.
        let words = unsafe { _mm512_loadu_si512(s.as_ptr().cast()) };
        unsafe { _mm512_storeu_si512(d.as_mut_ptr().cast(), words) };
        acc[i].add(words);
    }
    let (dst, src) = (dst_vectors.into_remainder(), src_vectors.remainder());
    if !src.is_empty() {
        let mask = tail_mask(src.len());
        // SAFETY: the mask covers exactly `src.len()` bytes, which `dst` also has; masked-off
        // bytes are neither read nor written.
        let words = unsafe { _mm512_maskz_loadu_epi8(mask, src.as_ptr().cast()) };
        unsafe { _mm512_mask_storeu_epi8(dst.as_mut_ptr().cast(), mask, words) };
        acc[3].add(words);
    }
    finish(acc)
}

#[target_feature(enable = "avx512bw")]
#[inline]
fn finish(acc: [Accumulator; 4]) -> u64 {
    let [mut a, b, mut c, d] = acc;
    a.merge(b);
    c.merge(d);
    a.merge(c);
    a.total()
}
