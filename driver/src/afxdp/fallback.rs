//! The fallback for machines without AF_XDP: an AF_PACKET raw socket as a [`Device`].
//!
//! Owns: one packet socket bound to one interface, a receive and a transmit buffer arena of one
//! burst each, and the `mmsghdr`/`iovec` tables pointing into them (built once). Promises: one
//! `recvmmsg` per receive burst and one `sendmmsg` per flush, no allocation per frame, truncated
//! frames dropped and counted. Costs compared with AF_XDP: every frame is copied between kernel
//! and user space, the kernel stack sees every received frame too (harmless where it owns no
//! address we use), and nothing is steered — the engine gets all traffic on the interface.
//!
//! Must not: block (the socket is non-blocking), or be used as the fast path when AF_XDP works.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use linerate_stack::device::{Capabilities, Device, ETHERNET_HEADER_LEN};
use linerate_stack::time::Instant;

use super::error::AfXdpError;
use super::sys;

/// `linux/if_packet.h`: do not loop our own transmissions back to this socket.
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
/// `linux/if_packet.h`: transmit straight to the driver, skipping the qdisc layer.
const PACKET_QDISC_BYPASS: libc::c_int = 20;

/// Counters of an [`AfPacketDevice`] (cumulative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AfPacketStats {
    pub rx_frames: u64,
    /// Frames longer than the MTU allows, dropped.
    pub rx_truncated: u64,
    pub tx_frames: u64,
    /// Frames the kernel would not take at flush (full queue), dropped.
    pub tx_dropped: u64,
    pub tx_refused: u64,
}

/// One burst of buffers with the message headers that describe them.
struct Arena {
    bytes: Box<[u8]>,
    iovecs: Box<[libc::iovec]>,
    msgs: Box<[libc::mmsghdr]>,
    slot: usize,
}

impl Arena {
    fn new(slots: usize, slot: usize) -> Arena {
        let mut bytes = vec![0u8; slots * slot].into_boxed_slice();
        let base = bytes.as_mut_ptr();
        let iovecs: Box<[libc::iovec]> = (0..slots)
            // SAFETY: `i * slot` stays inside `bytes`, which lives (unmoved, boxed) as long as we do.
            .map(|i| libc::iovec { iov_base: unsafe { base.add(i * slot) }.cast(), iov_len: slot })
            .collect();
        let mut arena = Arena { bytes, iovecs, msgs: Box::new([]), slot };
        let iov = arena.iovecs.as_mut_ptr();
        arena.msgs = (0..slots)
            .map(|i| {
                // SAFETY: mmsghdr is plain data; all-zero is valid (no name, no control data).
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                // SAFETY: `i` < slots, inside the boxed iovec table.
                m.msg_hdr.msg_iov = unsafe { iov.add(i) };
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();
        arena
    }

    fn frame_mut(&mut self, i: usize, len: usize) -> &mut [u8] {
        &mut self.bytes[i * self.slot..i * self.slot + len]
    }
}

impl std::fmt::Debug for Arena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Arena({} x {} B)", self.msgs.len(), self.slot)
    }
}

/// A raw packet socket on one interface, as a [`Device`].
#[derive(Debug)]
pub struct AfPacketDevice {
    fd: OwnedFd,
    rx: Arena,
    tx: Arena,
    /// Frames written into `tx` and not yet sent.
    pending: usize,
    caps: Capabilities,
    mac: [u8; 6],
    stats: AfPacketStats,
}

// SAFETY: the raw pointers inside the arenas point into boxes the device owns exclusively;
// moving the whole device to another thread keeps them valid. It is not `Sync`.
unsafe impl Send for AfPacketDevice {}

impl AfPacketDevice {
    /// Opens `ifname` (in the calling thread's namespace) with bursts of `burst` frames.
    pub fn open(ifname: &str, burst: usize) -> Result<Self, AfXdpError> {
        let ifindex = sys::interface_index(ifname)?;
        let mtu = sys::interface_mtu(ifname)?;
        let burst = burst.clamp(1, 1024);
        let protocol = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2); checked below.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                protocol.into(),
            )
        };
        if raw < 0 {
            return Err(AfXdpError::last_os("creating the AF_PACKET socket"));
        }
        // SAFETY: `raw` was just created and nobody else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one: libc::c_int = 1;
        for (opt, what) in [
            (PACKET_IGNORE_OUTGOING, "setting PACKET_IGNORE_OUTGOING"),
            (PACKET_QDISC_BYPASS, "setting PACKET_QDISC_BYPASS"),
        ] {
            // SAFETY: `one` is a live c_int of the size passed.
            let ret = unsafe {
                libc::setsockopt(
                    raw,
                    libc::SOL_PACKET,
                    opt,
                    (&one as *const libc::c_int).cast(),
                    size_of::<libc::c_int>() as u32,
                )
            };
            if ret < 0 {
                return Err(AfXdpError::last_os(what));
            }
        }
        // SAFETY: sockaddr_ll is plain data; all-zero is valid before we fill it.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = protocol;
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: `addr` is a valid sockaddr_ll of the size passed.
        let ret = unsafe {
            libc::bind(raw, (&addr as *const libc::sockaddr_ll).cast(), size_of::<libc::sockaddr_ll>() as u32)
        };
        if ret < 0 {
            return Err(AfXdpError::last_os("binding the AF_PACKET socket"));
        }
        let slot = (mtu + ETHERNET_HEADER_LEN).next_multiple_of(64);
        Ok(AfPacketDevice {
            fd,
            rx: Arena::new(burst, slot),
            tx: Arena::new(burst, slot),
            pending: 0,
            caps: Capabilities { mtu, max_burst: burst, ..Capabilities::default() },
            mac: sys::interface_mac(ifname)?,
            stats: AfPacketStats::default(),
        })
    }

    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }
    pub fn stats(&self) -> AfPacketStats {
        self.stats
    }
    /// The socket descriptor, for `poll(2)`.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn receive_burst<F: FnMut(&mut [u8])>(&mut self, max: usize, handle: &mut F) -> usize {
        for m in self.rx.msgs[..max].iter_mut() {
            m.msg_hdr.msg_flags = 0;
        }
        // SAFETY: the message table and buffers are valid and ours for the duration of the call.
        let n = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                self.rx.msgs.as_mut_ptr(),
                max as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        let n = usize::try_from(n).unwrap_or(0);
        let mut delivered = 0;
        for i in 0..n {
            let (len, flags) = (self.rx.msgs[i].msg_len as usize, self.rx.msgs[i].msg_hdr.msg_flags);
            if flags & libc::MSG_TRUNC != 0 || len > self.caps.max_frame_len() {
                self.stats.rx_truncated += 1;
                continue;
            }
            handle(self.rx.frame_mut(i, len));
            delivered += 1;
        }
        self.stats.rx_frames += delivered as u64;
        n
    }
}

impl Device for AfPacketDevice {
    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    fn receive<F>(&mut self, _now: Instant, budget: usize, mut handle: F) -> usize
    where
        F: FnMut(&mut [u8]),
    {
        let before = self.stats.rx_frames;
        let mut left = budget;
        while left > 0 {
            let got = self.receive_burst(left.min(self.rx.msgs.len()), &mut handle);
            if got == 0 {
                break;
            }
            left = left.saturating_sub(got);
        }
        (self.stats.rx_frames - before) as usize
    }

    fn transmit_capacity(&self) -> usize {
        self.tx.msgs.len() - self.pending
    }

    fn transmit<R, F>(&mut self, now: Instant, len: usize, fill: F) -> Option<R>
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        if len == 0 || len > self.caps.max_frame_len() {
            self.stats.tx_refused += 1;
            return None;
        }
        if self.pending == self.tx.msgs.len() {
            self.flush(now);
        }
        let i = self.pending;
        let result = fill(self.tx.frame_mut(i, len));
        self.tx.iovecs[i].iov_len = len;
        self.pending += 1;
        Some(result)
    }

    fn flush(&mut self, _now: Instant) {
        let mut sent = 0;
        // A second try picks up what a momentarily full queue refused; then we drop (counted).
        for _ in 0..2 {
            if sent == self.pending {
                break;
            }
            // SAFETY: messages `sent..pending` describe filled buffers we own.
            let n = unsafe {
                libc::sendmmsg(
                    self.fd.as_raw_fd(),
                    self.tx.msgs[sent..].as_mut_ptr(),
                    (self.pending - sent) as u32,
                    libc::MSG_DONTWAIT,
                )
            };
            match usize::try_from(n) {
                Ok(n) => sent += n,
                Err(_) if io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
        self.stats.tx_frames += sent as u64;
        self.stats.tx_dropped += (self.pending - sent) as u64;
        for iov in self.tx.iovecs[..self.pending].iter_mut() {
            iov.iov_len = self.tx.slot;
        }
        self.pending = 0;
    }
}
