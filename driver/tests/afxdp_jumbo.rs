//! Large frames through AF_XDP in the veth lab, with the engine against the kernel's TCP both
//! ways, byte-exact: 4,096-byte UMEM frames at the largest MTU one chunk holds (3,826), and
//! multi-buffer 16 KiB slots at MTU 9000, in native mode (which veth allows above ~3.5 KB only
//! for a frags-aware program) and in generic mode; and the size checks that refuse what cannot
//! work. Needs root.

mod afxdp_util;

use afxdp_util::{echo, unique};
use linerate_driver::afxdp::{
    frame_size_for_mtu, max_mtu_for_frame, AfXdpConfig, XdpMode, MAX_MTU, MAX_SINGLE_CHUNK_MTU,
};
use linerate_driver::lab::{LabConfig, LabGuard};

/// The engine's echo through the kernel at `mtu` with the default configuration for it.
/// Returns (frames sent, frames received).
fn echo_through_engine(mtu: usize, mode: XdpMode, tag: &str, size: usize) -> (u64, u64) {
    let lab = LabGuard::up(LabConfig { mtu: mtu as u32, ..LabConfig::new(&unique(tag)) }).expect("lab up");
    let config = AfXdpConfig::for_mtu(mtu);
    let (stats, caps) = echo::echo_through_engine(&lab, mode, &config, size, || {});
    assert_eq!(caps.mtu, mtu);
    (stats.tx_frames, stats.rx_frames)
}

/// Payload bytes per frame above `floor`, both ways: the frames were large. (Each way also
/// carries ACK-only frames, so the average is below the MSS.)
fn assert_large(size: usize, floor: u64, (tx, rx): (u64, u64)) {
    let (per_tx, per_rx) = (size as u64 / tx, size as u64 / rx);
    assert!(per_tx > floor && per_rx > floor, "{per_tx} / {per_rx} payload bytes per frame");
}

#[test]
fn engine_echo_at_the_largest_single_chunk_mtu_native_frags_aware() {
    let size = 8 << 20;
    assert_large(size, 1800, echo_through_engine(MAX_SINGLE_CHUNK_MTU, XdpMode::Native, "jn", size));
}

#[test]
fn engine_echo_at_mtu_9000_multi_buffer_native() {
    let size = 16 << 20;
    assert_large(size, 4000, echo_through_engine(9000, XdpMode::Native, "j9n", size));
}

#[test]
fn engine_echo_at_mtu_9000_multi_buffer_generic() {
    let size = 16 << 20;
    assert_large(size, 4000, echo_through_engine(9000, XdpMode::Generic, "j9g", size));
}

#[test]
fn frame_sizes_follow_the_mtu() {
    assert_eq!(frame_size_for_mtu(1500), Some(2048));
    assert_eq!(frame_size_for_mtu(max_mtu_for_frame(2048)), Some(2048));
    assert_eq!(frame_size_for_mtu(max_mtu_for_frame(2048) + 1), Some(4096));
    assert_eq!((MAX_SINGLE_CHUNK_MTU, frame_size_for_mtu(3826)), (3826, Some(4096)));
    assert_eq!(frame_size_for_mtu(3827), Some(8192));
    assert_eq!(frame_size_for_mtu(9000), Some(16384));
    assert_eq!((MAX_MTU, frame_size_for_mtu(16_370)), (16_370, Some(16384)));
    assert_eq!(frame_size_for_mtu(16_371), None);
    assert_eq!(AfXdpConfig::for_mtu(1500).frame_size, AfXdpConfig::default().frame_size);
    let large = AfXdpConfig::for_mtu(3000);
    assert_eq!((large.frame_size, large.frame_count), (4096, 2048), "same UMEM bytes as the default");
    assert!(!large.multi_buffer());
    let jumbo = AfXdpConfig::for_mtu(9000);
    assert_eq!((jumbo.frame_size, jumbo.frame_count, jumbo.chunk_size()), (16384, 512, 4096));
    assert!(jumbo.multi_buffer());
    jumbo.validate(9000).expect("valid");
}

#[test]
fn impossible_frame_sizes_are_refused_with_the_fix() {
    let large = AfXdpConfig::for_mtu(MAX_SINGLE_CHUNK_MTU);
    let cases = [
        (AfXdpConfig::default(), 3000, "use frame_size 4096"),
        (large.clone(), 3827, "use frame_size 8192"),
        (AfXdpConfig::for_mtu(8000), 9000, "use frame_size 16384"),
        (
            AfXdpConfig { frame_size: 32768, ..large.clone() },
            3000,
            "must be one of [2048, 4096, 8192, 16384]",
        ),
        (AfXdpConfig { frame_size: 3072, ..large.clone() }, 1500, "must be one of"),
        (AfXdpConfig::for_mtu(20_000), 20_000, "set the interface MTU to 16370 or less"),
    ];
    for (config, mtu, needle) in cases {
        let err = config.validate(mtu).expect_err(needle);
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
}
