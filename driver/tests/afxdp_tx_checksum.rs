//! AF_XDP transmit checksum offload (TX metadata) end to end in the veth lab, against the
//! kernel's TCP: with the kernel completing the requested checksums in software
//! (`XDP_UMEM_TX_SW_CSUM`), every TCP frame we send is checked on the kernel's side of the veth
//! (an AF_PACKET tap) for a valid checksum; with plain offload, our frames arrive as
//! CHECKSUM_PARTIAL (the tap sees the pseudo-header sum in the field, nothing summed them) and
//! the kernel still takes every byte, both ways, at MTU 1500 and 9000 (multi-buffer); with
//! software checksums nothing is offloaded and every frame is complete. Needs root.

mod afxdp_util;

use std::os::fd::AsRawFd;

use afxdp_util::echo::echo_through_engine;
use afxdp_util::{checksum, unique};
use linerate_driver::afxdp::{AfPacketDevice, AfXdpConfig, DeviceStats, TxChecksum, XdpMode};
use linerate_driver::lab::{LabConfig, LabGuard, KERNEL_IF};
use linerate_stack::device::{Capabilities, Device};
use linerate_stack::time::Instant;
use linerate_stack::wire::tcp::partial_checksum;
use linerate_stack::wire::Ipv4Address;

/// What the tap saw of our TCP frames.
#[derive(Debug, Default)]
struct Tally {
    /// Frames whose TCP checksum verifies.
    valid: u64,
    /// Frames whose field holds the pseudo-header sum (left for the kernel to complete).
    partial: u64,
    /// Neither: a wrong checksum on the wire.
    bad: u64,
    /// Both at once: the segment's own sum happens to make the pseudo-header sum a complete
    /// checksum too (about one frame in 32,768), so the frame says nothing either way.
    either: u64,
    /// Of all these, frames carrying payload.
    data: u64,
}

impl Tally {
    fn seen(&self) -> u64 {
        self.valid + self.partial + self.bad + self.either
    }

    /// Classifies one captured frame if it is IPv4/TCP from `from`.
    fn add(&mut self, frame: &[u8], from: [u8; 4]) {
        let Some(ip) = frame.get(14..) else { return };
        if frame[12..14] != [0x08, 0x00] || ip.len() < 20 || ip[9] != 6 || ip[12..16] != from {
            return;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let Some(tcp) = ip.get(ihl..total).filter(|t| t.len() >= 20) else {
            self.bad += 1;
            return;
        };
        let mut pseudo_and_segment = Vec::with_capacity(12 + tcp.len());
        pseudo_and_segment.extend_from_slice(&ip[12..20]);
        pseudo_and_segment.extend_from_slice(&[0, 6]);
        pseudo_and_segment.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
        pseudo_and_segment.extend_from_slice(tcp);
        let field = u16::from_be_bytes([tcp[16], tcp[17]]);
        let (src, dst) =
            (Ipv4Address([ip[12], ip[13], ip[14], ip[15]]), Ipv4Address([ip[16], ip[17], ip[18], ip[19]]));
        match (checksum(&pseudo_and_segment) == 0, field == partial_checksum(src, dst, tcp.len())) {
            (true, true) => self.either += 1,
            (true, false) => self.valid += 1,
            (false, true) => self.partial += 1,
            (false, false) => self.bad += 1,
        }
        let header_len = usize::from(tcp[12] >> 4) * 4;
        if tcp.len() > header_len {
            self.data += 1;
        }
    }
}

/// An AF_PACKET socket on the kernel's end of the veth: every frame arriving from us.
fn open_tap(lab: &LabGuard) -> AfPacketDevice {
    let _inside = lab.enter_kern().expect("enter kernel namespace");
    let tap = AfPacketDevice::open(KERNEL_IF, 256).expect("open the tap");
    // A deep receive queue (SO_RCVBUFFORCE, we are root) so few frames are missed between drains.
    let size: libc::c_int = 64 << 20;
    // SAFETY: `size` is a live c_int of the size passed.
    let ret = unsafe {
        libc::setsockopt(
            tap.raw_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        )
    };
    assert_eq!(ret, 0, "SO_RCVBUFFORCE: {}", std::io::Error::last_os_error());
    tap
}

/// Echoes `size` bytes through the kernel at `mtu` with `tx_checksum`, tapping our frames on the
/// kernel's side.
fn run(tag: &str, mtu: u32, tx_checksum: TxChecksum, size: usize) -> (DeviceStats, Capabilities, Tally) {
    let lab = LabGuard::up(LabConfig { mtu, ..LabConfig::new(&unique(tag)) }).expect("lab up");
    let config = AfXdpConfig { tx_checksum, ..AfXdpConfig::for_mtu(mtu as usize) };
    let mut tap = open_tap(&lab);
    let mut tally = Tally::default();
    let from = lab.app_addr().octets();
    let mut drain = |tally: &mut Tally| while tap.receive(Instant::ZERO, 256, |f| tally.add(f, from)) > 0 {};
    let (stats, caps) = echo_through_engine(&lab, XdpMode::Native, &config, size, || drain(&mut tally));
    drain(&mut tally);
    println!("{tx_checksum:?} at MTU {mtu}: tap {tally:?}, tap stats {:?}", tap.stats());
    assert_eq!(caps.mtu, mtu as usize);
    (stats, caps, tally)
}

/// Every frame the driver marked arrived partial: the complete ones on the tap are at most the
/// frames sent without the mark (the engine's control frames, e.g. a SYN-ACK or an RST built by
/// `transmit_control`, keep their full checksum), and no checksum is wrong.
fn assert_only_unmarked_frames_are_complete(stats: &DeviceStats, tally: &Tally) {
    let unmarked = stats.tx_frames - stats.tx_checksum_offloaded;
    assert!(tally.valid <= unmarked, "{tally:?}, {unmarked} frames sent unmarked: {stats:?}");
    assert_eq!(tally.bad, 0, "{tally:?}");
}

#[test]
fn checksums_the_kernel_completes_are_valid_on_the_wire() {
    let (stats, caps, tally) = run("csk", 1500, TxChecksum::OffloadCompletedByKernel, 8 << 20);
    assert!(caps.tx_checksum_offload, "copy mode on 6.18 takes TX metadata");
    // Every TCP frame of ours asked for the checksum (ARP is the only other thing we send).
    assert!(stats.tx_checksum_offloaded + 4 >= stats.tx_frames, "{stats:?}");
    assert!(tally.data > 1000 && tally.seen() > 2000, "the tap saw too few frames: {tally:?}");
    assert_eq!((tally.partial, tally.bad), (0, 0), "{tally:?}");
}

#[test]
fn offload_at_mtu_1500_leaves_checksums_partial_and_moves_every_byte() {
    let (stats, caps, tally) = run("cso", 1500, TxChecksum::Offload, 16 << 20);
    assert!(caps.tx_checksum_offload);
    assert!(stats.tx_checksum_offloaded + 4 >= stats.tx_frames, "{stats:?}");
    // Nothing summed them on the way: the kernel took CHECKSUM_PARTIAL skbs, as from itself.
    assert!(tally.data > 1000, "the tap saw too few frames: {tally:?}");
    assert_only_unmarked_frames_are_complete(&stats, &tally);
}

#[test]
fn offload_at_mtu_9000_multi_buffer_leaves_checksums_partial_and_moves_every_byte() {
    let (stats, caps, tally) = run("cs9", 9000, TxChecksum::Offload, 32 << 20);
    assert!(caps.tx_checksum_offload, "MTU 9000 fits a 16 KiB slot with the metadata headroom");
    assert!(stats.tx_checksum_offloaded + 4 >= stats.tx_frames, "{stats:?}");
    assert!(stats.tx_frames < (32 << 20) / 4000, "frames were large: {stats:?}");
    assert!(tally.data > 1000, "the tap saw too few frames: {tally:?}");
    assert_only_unmarked_frames_are_complete(&stats, &tally);
}

#[test]
fn software_checksums_offload_nothing_and_are_valid_on_the_wire() {
    let (stats, caps, tally) = run("css", 9000, TxChecksum::Software, 8 << 20);
    assert!(!caps.tx_checksum_offload);
    assert_eq!(stats.tx_checksum_offloaded, 0);
    assert!(tally.data > 500, "the tap saw too few frames: {tally:?}");
    assert_eq!((tally.partial, tally.bad), (0, 0), "{tally:?}");
}

#[test]
fn kernel_completion_falls_back_to_software_for_multi_buffer_frames() {
    // The kernel would sum only the first buffer of a multi-buffer frame: no offload there.
    let (stats, caps, tally) = run("csm", 9000, TxChecksum::OffloadCompletedByKernel, 2 << 20);
    assert!(!caps.tx_checksum_offload);
    assert_eq!(stats.tx_checksum_offloaded, 0);
    assert_eq!((tally.partial, tally.bad), (0, 0), "{tally:?}");
}
