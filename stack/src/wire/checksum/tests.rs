//! Every checksum kernel against a byte-by-byte RFC 1071 reference, for every length 0..=4096 at
//! every alignment (of the source and, for `copy_from`, of the destination), plus a pending odd
//! byte and sums long enough to wrap every lane many times.
//!
//! Each kernel is called directly, so a path the dispatcher would not pick for a given length is
//! still covered. Kernels the CPU lacks are reported, not silently passed: the test fails if the
//! machine has AVX-512BW or AVX2 but a kernel was not exercised.

use super::*;

const MAX_LEN: usize = 4096;
const ALIGNMENTS: usize = 64;

/// Deterministic bytes with plenty of 0xff runs, so carries are frequent.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if state.is_multiple_of(5) {
                0xff
            } else {
                state as u8
            }
        })
        .collect()
}

/// `prefix[n]`: the RFC 1071 sum (big-endian words, final odd byte as the high half) of the
/// first `n` bytes, unfolded. Computing it once per buffer makes every length O(1) to check.
fn reference_prefix_sums(data: &[u8]) -> Vec<u64> {
    let mut prefix = Vec::with_capacity(data.len() + 1);
    let mut sum = 0_u64;
    prefix.push(0);
    for (i, &byte) in data.iter().enumerate() {
        sum += if i % 2 == 0 { u64::from(byte) << 8 } else { u64::from(byte) };
        prefix.push(sum);
    }
    prefix
}

/// The stored checksum for an unfolded big-endian sum.
fn reference_finish(sum: u64) -> u16 {
    !fold(sum)
}

/// A native-order kernel, as the dispatcher would wrap it: folded and byte-swapped.
fn as_network(native: u64) -> u16 {
    u16::from_be(fold(native))
}

/// Runs `check(data, expected_network_sum)` for every length and alignment.
fn for_every_length_and_alignment(mut check: impl FnMut(&[u8], usize, u16)) {
    let buffer = pattern(MAX_LEN + ALIGNMENTS, 0x9e37_79b9_7f4a_7c15);
    for align in 0..ALIGNMENTS {
        let data = &buffer[align..align + MAX_LEN];
        let prefix = reference_prefix_sums(data);
        for (len, &sum) in prefix.iter().enumerate() {
            check(&data[..len], align, fold(sum));
        }
    }
}

#[test]
fn portable_kernel_matches_the_reference() {
    for_every_length_and_alignment(|data, align, want| {
        assert_eq!(as_network(native_sum_narrow(data)), want, "len {} align {align}", data.len());
    });
}

#[test]
fn avx2_kernel_matches_the_reference() {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        for_every_length_and_alignment(|data, align, want| {
            let (words, tail) = data.split_at(data.len() & !3);
            // SAFETY: the CPU has AVX2.
            let native = unsafe { sum_words_avx2(words) } + native_sum_tail(tail);
            assert_eq!(as_network(native), want, "len {} align {align}", data.len());
        });
        return;
    }
    eprintln!("no AVX2 on this CPU: only the portable kernel can run");
}

#[test]
#[cfg(target_arch = "x86_64")]
fn avx512_kernel_matches_the_reference() {
    if !wide::available() {
        eprintln!("no AVX-512BW on this CPU: kernel not exercised");
        assert!(!std::is_x86_feature_detected!("avx512bw"));
        return;
    }
    for_every_length_and_alignment(|data, align, want| {
        // SAFETY: the CPU has AVX-512BW.
        let native = unsafe { wide::sum(data) };
        assert_eq!(as_network(native), want, "len {} align {align}", data.len());
    });
}

#[test]
#[cfg(target_arch = "x86_64")]
fn avx512_copy_kernel_copies_and_sums_at_every_alignment() {
    if !wide::available() {
        eprintln!("no AVX-512BW on this CPU: kernel not exercised");
        return;
    }
    let mut out = vec![0_u8; MAX_LEN + ALIGNMENTS + 1];
    for_every_length_and_alignment(|data, align, want| {
        // A destination alignment different from the source's, and a guard byte after it.
        let at = (align * 7 + 3) % ALIGNMENTS;
        out.fill(0xa5);
        // SAFETY: the CPU has AVX-512BW.
        let native = unsafe { wide::copy_and_sum(&mut out[at..at + data.len()], data) };
        assert_eq!(as_network(native), want, "len {} align {align}", data.len());
        assert_eq!(&out[at..at + data.len()], data, "len {} align {align}", data.len());
        assert!(out[..at].iter().all(|&b| b == 0xa5), "wrote before dst");
        assert_eq!(out[at + data.len()], 0xa5, "wrote past dst");
    });
}

#[test]
#[cfg(target_arch = "x86_64")]
fn avx2_copy_kernel_copies_and_sums_at_every_alignment() {
    if !std::is_x86_feature_detected!("avx2") {
        eprintln!("no AVX2 on this CPU: kernel not exercised");
        return;
    }
    let mut out = vec![0_u8; MAX_LEN + ALIGNMENTS + 1];
    for_every_length_and_alignment(|data, align, want| {
        // A destination alignment different from the source's, and a guard byte after it.
        let at = (align * 7 + 3) % ALIGNMENTS;
        out.fill(0xa5);
        // SAFETY: the CPU has AVX2; the slices have equal lengths.
        let native = unsafe { copy_and_sum_avx2(&mut out[at..at + data.len()], data) };
        assert_eq!(as_network(native), want, "len {} align {align}", data.len());
        assert_eq!(&out[at..at + data.len()], data, "len {} align {align}", data.len());
        assert!(out[..at].iter().all(|&b| b == 0xa5), "wrote before dst");
        assert_eq!(out[at + data.len()], 0xa5, "wrote past dst");
    });
}

/// The public API over the dispatcher, for every length: `checksum`, `add_bytes` split in two
/// at an odd point, and `copy_from` after a pending odd byte.
#[test]
fn public_api_matches_the_reference_with_odd_splits() {
    let mut out = vec![0_u8; MAX_LEN + ALIGNMENTS];
    for_every_length_and_alignment(|data, align, want| {
        let len = data.len();
        assert_eq!(checksum(data), !want, "checksum len {len} align {align}");
        let split = (len / 2) | 1;
        if split <= len {
            let mut sum = Checksum::new();
            sum.add_bytes(&data[..split]);
            sum.add_bytes(&data[split..]);
            assert_eq!(sum.finish(), !want, "split add_bytes len {len} align {align}");
            let mut sum = Checksum::new();
            sum.add_bytes(&data[..1]);
            let at = align;
            sum.copy_from(&mut out[at..at + len - 1], &data[1..]);
            assert_eq!(sum.finish(), !want, "copy_from after odd byte len {len} align {align}");
            assert_eq!(&out[at..at + len - 1], &data[1..]);
        }
        let mut sum = Checksum::new();
        sum.copy_from(&mut out[..len], data);
        assert_eq!(sum.finish(), !want, "copy_from len {len} align {align}");
    });
}

/// All-ones data maximises every lane: 4 MiB wraps each 64-bit lane many times over and would
/// overflow any 32-bit lane that is not folded in time.
#[test]
fn long_runs_of_ones_do_not_overflow_any_lane() {
    let len = 4 << 20;
    for data in [vec![0xff_u8; len], pattern(len, 7)] {
        let want = reference_finish(*reference_prefix_sums(&data).last().unwrap());
        assert_eq!(checksum(&data), want);
        assert_eq!(reference_finish(u64::from(as_network(native_sum_narrow(&data)))), want);
        let mut out = vec![0_u8; len];
        let mut sum = Checksum::new();
        sum.copy_from(&mut out, &data);
        assert_eq!(sum.finish(), want);
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2; the slices have equal lengths.
            let native = unsafe { copy_and_sum_avx2(&mut out, &data) };
            assert_eq!(reference_finish(u64::from(as_network(native))), want, "AVX2 copy kernel");
        }
    }
}

#[test]
fn all_zero_data_sums_to_zero_on_every_kernel() {
    let data = [0_u8; 1000];
    assert_eq!(checksum(&data), 0xffff);
    assert_eq!(native_sum_narrow(&data), 0);
    #[cfg(target_arch = "x86_64")]
    if wide::available() {
        // SAFETY: the CPU has AVX-512BW.
        assert_eq!(unsafe { wide::sum(&data) }, 0);
    }
}
