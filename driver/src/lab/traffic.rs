//! Raw frame traffic for lab measurements: a [`Generator`] that sends TCP-shaped frames through a
//! [`Device`] and counts the ones that come back, and a [`Reflector`] that returns every frame it
//! receives to its sender (MACs, IPv4 addresses and ports swapped).
//!
//! Owns: fixed scratch buffers (allocated once). Promises: any received frame, however short or
//! malformed, is either reflected or ignored — never a panic; no allocation per frame. The
//! frames are steered by XDP straight to AF_XDP sockets and never reach a TCP stack, so only the
//! IPv4 header checksum is valid (swapping addresses keeps it valid). Must not: send to any
//! address other than the ones its [`FlowSpec`] names.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant as WallInstant};

use linerate_stack::device::Device;
use linerate_stack::time::Instant;

/// Smallest frame the generator builds: Ethernet + IPv4 + TCP headers.
pub const MIN_FRAME: usize = 14 + 20 + 20;
/// Largest frame the reflector returns.
pub const MAX_FRAME: usize = 9018;
const BURST: usize = 64;
/// In-flight frames not answered for this long are written off as lost.
const LOSS_TIMEOUT: Duration = Duration::from_millis(100);

/// Addresses and size of the generated frames (`src` is the generator's side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowSpec {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
    /// Ethernet frame length without FCS, at least [`MIN_FRAME`].
    pub frame_len: usize,
}

impl FlowSpec {
    /// The whole frame with sequence number 0.
    fn template(&self) -> Vec<u8> {
        let len = self.frame_len.max(MIN_FRAME);
        let mut f = vec![0u8; len];
        f[0..6].copy_from_slice(&self.dst_mac);
        f[6..12].copy_from_slice(&self.src_mac);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip_len = (len - 14) as u16;
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
        ip[6] = 0x40; // don't fragment
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&self.src_ip.octets());
        ip[16..20].copy_from_slice(&self.dst_ip.octets());
        let sum = ipv4_header_checksum(ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        let tcp = &mut f[34..54];
        tcp[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        tcp[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x10; // ACK
        f
    }
}

/// RFC 1071 checksum of an IPv4 header whose checksum field is zero.
fn ipv4_header_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Sends frames with a bounded number in flight and counts the reflections.
#[derive(Debug)]
pub struct Generator {
    spec: FlowSpec,
    template: Vec<u8>,
    window: u64,
    /// Frames handed to the device.
    pub sent: u64,
    /// Reflections received.
    pub received: u64,
    /// Frames written off as lost (no reflection within the loss timeout).
    pub lost: u64,
    last_progress: WallInstant,
}

impl Generator {
    /// `window` bounds frames in flight so the rings never overflow.
    pub fn new(spec: FlowSpec, window: u32) -> Generator {
        Generator {
            template: spec.template(),
            spec,
            window: u64::from(window.max(1)),
            sent: 0,
            received: 0,
            lost: 0,
            last_progress: WallInstant::now(),
        }
    }

    fn in_flight(&self) -> u64 {
        self.sent.saturating_sub(self.received + self.lost)
    }

    /// Receives reflections, then sends up to one burst if `send` and the window allow.
    /// Returns frames received by this call.
    pub fn step<D: Device>(&mut self, dev: &mut D, send: bool) -> usize {
        let (our_ip, port) = (self.spec.src_ip.octets(), self.spec.src_port.to_be_bytes());
        let mut got = 0u64;
        dev.receive(Instant::ZERO, BURST, |f| {
            if f.len() >= MIN_FRAME && f[30..34] == our_ip && f[36..38] == port {
                got += 1;
            }
        });
        self.received += got;
        // Frames written off as lost that turn up late after all (a descheduled thread) count
        // as received, not lost.
        self.lost = self.lost.min(self.sent - self.received.min(self.sent));
        let now = WallInstant::now();
        if got > 0 || self.in_flight() == 0 {
            self.last_progress = now;
        } else if now.duration_since(self.last_progress) > LOSS_TIMEOUT {
            self.lost += self.in_flight();
            self.last_progress = now;
        }
        if send {
            let room = self.window.saturating_sub(self.in_flight()).min(BURST as u64) as usize;
            for _ in 0..room.min(dev.transmit_capacity()) {
                let seq = (self.sent as u32).to_be_bytes();
                let template = &self.template;
                let sent = dev.transmit(Instant::ZERO, template.len(), |buf| {
                    buf.copy_from_slice(template);
                    buf[38..42].copy_from_slice(&seq);
                });
                if sent.is_none() {
                    break;
                }
                self.sent += 1;
            }
        }
        dev.flush(Instant::ZERO);
        got as usize
    }

    /// True when nothing is in flight any more.
    pub fn settled(&self) -> bool {
        self.in_flight() == 0
    }
}

/// Returns every IPv4 frame to its sender.
#[derive(Debug)]
pub struct Reflector {
    scratch: Box<[[u8; MAX_FRAME]]>,
    lens: [usize; BURST],
    /// Frames reflected.
    pub reflected: u64,
    /// Frames ignored (not IPv4, too short) or not sent back for lack of transmit room.
    pub dropped: u64,
}

impl Default for Reflector {
    fn default() -> Self {
        Reflector {
            scratch: vec![[0u8; MAX_FRAME]; BURST].into_boxed_slice(),
            lens: [0; BURST],
            reflected: 0,
            dropped: 0,
        }
    }
}

impl Reflector {
    /// Reflects one burst; returns frames received.
    pub fn step<D: Device>(&mut self, dev: &mut D) -> usize {
        let mut n = 0;
        let (scratch, lens) = (&mut self.scratch, &mut self.lens);
        let mut ignored = 0;
        let got = dev.receive(Instant::ZERO, BURST, |f| {
            if f.len() < MIN_FRAME || f.len() > MAX_FRAME || f[12..14] != [0x08, 0x00] {
                ignored += 1;
                return;
            }
            let out = &mut scratch[n][..f.len()];
            out[0..6].copy_from_slice(&f[6..12]);
            out[6..12].copy_from_slice(&f[0..6]);
            out[12..26].copy_from_slice(&f[12..26]);
            out[26..30].copy_from_slice(&f[30..34]);
            out[30..34].copy_from_slice(&f[26..30]);
            out[34..36].copy_from_slice(&f[36..38]);
            out[36..38].copy_from_slice(&f[34..36]);
            out[38..].copy_from_slice(&f[38..]);
            lens[n] = f.len();
            n += 1;
        });
        self.dropped += ignored;
        for i in 0..n {
            let frame = &self.scratch[i][..self.lens[i]];
            match dev.transmit(Instant::ZERO, frame.len(), |buf| buf.copy_from_slice(frame)) {
                Some(()) => self.reflected += 1,
                None => self.dropped += 1,
            }
        }
        dev.flush(Instant::ZERO);
        got
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_has_a_valid_ipv4_header_and_length() {
        let spec = FlowSpec {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: Ipv4Addr::new(198, 18, 0, 1),
            dst_ip: Ipv4Addr::new(198, 18, 0, 2),
            src_port: 9,
            dst_port: 7,
            frame_len: 64,
        };
        let f = spec.template();
        assert_eq!(f.len(), 64);
        assert_eq!(ipv4_header_checksum(&f[14..34]), 0);
        assert_eq!(u16::from_be_bytes([f[16], f[17]]), 50);
        assert_eq!(FlowSpec { frame_len: 10, ..spec }.template().len(), MIN_FRAME);
    }
}
