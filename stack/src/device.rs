//! The driver seam: how frames move between a link and the engine.
//!
//! A [`Device`] owns every frame buffer. Receive lends each arrived frame to the caller in place
//! (`&mut [u8]` inside the driver's buffer — a UMEM frame for AF_XDP) and takes it back when the
//! callback returns, so the engine parses in place and copies only payload bytes into its
//! receive buffers. Transmit lends a buffer of exactly the requested length that the engine fills
//! in place (headers and payload written once, checksum computed while copying the payload); the
//! frame is queued when the callback returns and pushed to the wire at the next [`Device::flush`].
//!
//! The trait lives in `linerate-stack` (not in `linerate-driver`) because the engine's
//! `poll_transmit(now, device)` must name it, and dependencies point one way: apps → driver →
//! stack. It is generic (static dispatch): a shard's driver type is fixed, so the per-frame path
//! has no virtual calls.
//!
//! Contract: a device never hands out a frame longer than `mtu + ETHERNET_HEADER_LEN`; the engine
//! never asks to transmit more than that; neither side may keep a frame after the callback.

use crate::time::Instant;

/// Bytes of an Ethernet II header (no VLAN tag): destination, source, EtherType.
pub const ETHERNET_HEADER_LEN: usize = 14;

/// What a device can do; the engine reads it once when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Largest IP packet the link carries (L3 MTU), e.g. 1500.
    pub mtu: usize,
    /// How many frames the device moves per burst; the engine sizes its batches to it.
    pub max_burst: usize,
    /// The device has verified the IPv4 and TCP/ICMP checksums of every frame it delivers, so the
    /// engine may skip verifying them. False for AF_XDP and the simulated link.
    pub rx_checksum_verified: bool,
    /// The device completes TCP checksums on transmit, so the engine may leave them partial.
    pub tx_checksum_offload: bool,
}

impl Capabilities {
    /// Largest Ethernet frame (header included) this device carries.
    pub const fn max_frame_len(&self) -> usize {
        self.mtu + ETHERNET_HEADER_LEN
    }
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities { mtu: 1500, max_burst: 64, rx_checksum_verified: false, tx_checksum_offload: false }
    }
}

/// A link that moves Ethernet frames in bursts, with buffers owned by the device.
pub trait Device {
    /// What this device can do.
    fn capabilities(&self) -> Capabilities;

    /// Hands up to `budget` received frames, in arrival order, to `handle`. Each frame is valid
    /// only during its call and returns to the device's pool when the call returns. Returns the
    /// number of frames handed over (0 when nothing has arrived by `now`).
    fn receive<F>(&mut self, now: Instant, budget: usize, handle: F) -> usize
    where
        F: FnMut(&mut [u8]);

    /// How many frames [`Device::transmit`] can accept right now (a hint for batching; transmit
    /// may still refuse if the answer changed).
    fn transmit_capacity(&self) -> usize;

    /// Lends a transmit buffer of exactly `len` bytes to `fill` and queues the frame when `fill`
    /// returns. Returns `None`, without calling `fill`, when no buffer is free or `len` exceeds
    /// [`Capabilities::max_frame_len`]. The frame leaves at the next [`Device::flush`] at the latest.
    fn transmit<R, F>(&mut self, now: Instant, len: usize, fill: F) -> Option<R>
    where
        F: FnOnce(&mut [u8]) -> R;

    /// Pushes every queued frame to the wire (one kick per burst for AF_XDP).
    fn flush(&mut self, now: Instant);
}
