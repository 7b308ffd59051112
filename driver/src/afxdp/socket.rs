//! One AF_XDP socket bound to one queue of one interface, with its UMEM registered and its four
//! rings mapped.
//!
//! Owns: the socket descriptor and ring mappings (closed/unmapped on drop). Promises: setup
//! failures come back as [`AfXdpError`]s naming the fix; the wakeup calls (`kick_tx`, `wake_rx`)
//! never block and treat "try again" answers as normal. Must not: touch frame ownership — that
//! is the device's job.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::thread::sleep;
use std::time::Duration;

use super::error::AfXdpError;
use super::ring::{ConsumerRing, ProducerRing};
use super::sys;
use super::tx_metadata::TX_METADATA_LEN;
use super::umem::UmemArea;

/// How to bind: zero-copy needs driver support; copy works everywhere (veth, generic XDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    /// Zero-copy when the driver supports it, copy otherwise.
    Auto,
    ZeroCopy,
    Copy,
}

/// Busy-polling knobs (`SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL`, `SO_BUSY_POLL_BUDGET`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyPoll {
    /// How long a wakeup call may spin in the driver, in microseconds.
    pub timeout_us: u32,
    /// Packets the driver may process per busy-poll call.
    pub budget: u32,
}

/// Ring sizes and bind options of one socket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SocketSetup {
    pub(crate) ifindex: u32,
    pub(crate) queue: u32,
    pub(crate) frame_size: u32,
    pub(crate) ring_size: u32,
    /// Fill and completion ring entries: the whole UMEM, so recycling never finds them full.
    pub(crate) umem_ring_size: u32,
    /// Bind with `XDP_USE_SG`: a frame may span several chunks (descriptors chained by
    /// `XDP_PKT_CONTD`), both ways.
    pub(crate) multi_buffer: bool,
    pub(crate) bind: BindMode,
    pub(crate) busy_poll: Option<BusyPoll>,
    /// Register the UMEM with TX metadata room ([`TX_METADATA_LEN`] bytes before every transmit
    /// descriptor), if the kernel accepts it.
    pub(crate) tx_metadata: UmemTxMetadata,
}

/// What the UMEM registration asks for on transmit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UmemTxMetadata {
    None,
    /// `tx_metadata_len` with `XDP_UMEM_TX_METADATA_LEN` (Linux 6.8+ with the flag's fix).
    Checksum,
    /// As `Checksum`, plus `XDP_UMEM_TX_SW_CSUM`: the kernel completes checksums in software.
    ChecksumInKernelSoftware,
}

/// A bound AF_XDP socket and its rings.
#[derive(Debug)]
pub(crate) struct XskSocket {
    // Field order matters: rings unmap before the socket closes.
    pub(crate) fill: ProducerRing<u64>,
    pub(crate) completion: ConsumerRing<u64>,
    pub(crate) rx: ConsumerRing<libc::xdp_desc>,
    pub(crate) tx: ProducerRing<libc::xdp_desc>,
    pub(crate) zero_copy: bool,
    /// The UMEM was registered with TX metadata room: every transmit descriptor must leave
    /// [`TX_METADATA_LEN`] bytes in front of it inside its chunk.
    pub(crate) tx_metadata: bool,
    fd: OwnedFd,
}

/// How often and how long to retry a bind that finds the queue still busy: the kernel releases a
/// queue asynchronously after the previous socket on it closes (tens of milliseconds on veth).
const BUSY_RETRIES: u32 = 8;
const BUSY_FIRST_WAIT: Duration = Duration::from_millis(5);

impl XskSocket {
    /// Creates, configures and binds a socket; with [`BindMode::Auto`], tries zero-copy first.
    pub(crate) fn open(umem: &UmemArea, setup: &SocketSetup, ifname: &str) -> Result<Self, AfXdpError> {
        match setup.bind {
            BindMode::Copy => Self::open_with(umem, setup, ifname, false),
            BindMode::ZeroCopy => Self::open_with(umem, setup, ifname, true),
            BindMode::Auto => match Self::open_with(umem, setup, ifname, true) {
                Err(AfXdpError::ZeroCopyUnsupported { .. }) => Self::open_with(umem, setup, ifname, false),
                other => other,
            },
        }
    }

    fn open_with(
        umem: &UmemArea,
        s: &SocketSetup,
        ifname: &str,
        zero_copy: bool,
    ) -> Result<Self, AfXdpError> {
        let fd = new_socket()?;
        let tx_metadata = register_umem(&fd, umem, s.frame_size, s.tx_metadata)?;
        let rings = [
            (libc::XDP_UMEM_FILL_RING, s.umem_ring_size),
            (libc::XDP_UMEM_COMPLETION_RING, s.umem_ring_size),
            (libc::XDP_RX_RING, s.ring_size),
            (libc::XDP_TX_RING, s.ring_size),
        ];
        for (opt, size) in rings {
            setsockopt(&fd, libc::SOL_XDP, opt, &size, "sizing an AF_XDP ring")?;
        }
        if let Some(bp) = s.busy_poll {
            let on: libc::c_int = 1;
            setsockopt(&fd, libc::SOL_SOCKET, sys::SO_PREFER_BUSY_POLL, &on, "enabling SO_PREFER_BUSY_POLL")?;
            setsockopt(
                &fd,
                libc::SOL_SOCKET,
                sys::SO_BUSY_POLL,
                &(bp.timeout_us as libc::c_int),
                "setting SO_BUSY_POLL",
            )?;
            setsockopt(
                &fd,
                libc::SOL_SOCKET,
                sys::SO_BUSY_POLL_BUDGET,
                &(bp.budget as libc::c_int),
                "setting SO_BUSY_POLL_BUDGET",
            )?;
        }
        if !zero_copy {
            // Copy mode builds and sends at most this many frames per `sendto` and answers EAGAIN
            // when more are queued: with the default (32), every flush of a 64-frame burst cost
            // two kicks, the first one "failing". Older kernels refuse the option (ENOPROTOOPT)
            // and keep 32; the kick loop copes either way, so the answer is ignored.
            let budget: u32 = s.ring_size;
            let _ =
                setsockopt(&fd, libc::SOL_XDP, sys::XDP_MAX_TX_SKB_BUDGET, &budget, "raising the tx budget");
        }
        let off = mmap_offsets(&fd)?;
        let raw = fd.as_raw_fd();
        let map_err = |e: io::Error| AfXdpError::os("mapping an AF_XDP ring", e);
        let fill = ProducerRing::map(raw, libc::XDP_UMEM_PGOFF_FILL_RING, s.umem_ring_size, &off.fr)
            .map_err(map_err)?;
        let completion =
            ConsumerRing::map(raw, libc::XDP_UMEM_PGOFF_COMPLETION_RING, s.umem_ring_size, &off.cr)
                .map_err(map_err)?;
        let rx =
            ConsumerRing::map(raw, libc::XDP_PGOFF_RX_RING as u64, s.ring_size, &off.rx).map_err(map_err)?;
        let tx =
            ProducerRing::map(raw, libc::XDP_PGOFF_TX_RING as u64, s.ring_size, &off.tx).map_err(map_err)?;
        bind(&fd, s, ifname, zero_copy)?;
        Ok(XskSocket { fill, completion, rx, tx, zero_copy, tx_metadata, fd })
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Asks the kernel to process the tx ring. `Ok(true)` means it stopped early (ring still has
    /// work: copy mode sends a bounded batch per call); `Ok(false)` means done for now.
    pub(crate) fn kick_tx(&self) -> io::Result<bool> {
        // SAFETY: a zero-length sendto on our socket; no buffer is read.
        let ret = unsafe {
            libc::sendto(self.fd.as_raw_fd(), std::ptr::null(), 0, libc::MSG_DONTWAIT, std::ptr::null(), 0)
        };
        if ret >= 0 {
            return Ok(false);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EBUSY) => Ok(true),
            Some(libc::ENOBUFS) | Some(libc::ENETDOWN) => Ok(false),
            _ => Err(err),
        }
    }

    /// Wakes the kernel to refill from the fill ring (and busy-polls when enabled).
    pub(crate) fn wake_rx(&self) {
        // SAFETY: a zero-length, non-blocking recvfrom on our socket; nothing is written.
        unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
    }

    /// The kernel's drop counters for this socket.
    pub(crate) fn statistics(&self) -> Result<libc::xdp_statistics, AfXdpError> {
        // SAFETY: plain old data.
        let mut stats: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::xdp_statistics>() as libc::socklen_t;
        // SAFETY: `stats`/`len` describe a writable buffer of the right size.
        let ret = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_STATISTICS,
                (&mut stats as *mut libc::xdp_statistics).cast(),
                &mut len,
            )
        };
        if ret < 0 {
            return Err(AfXdpError::last_os("reading AF_XDP statistics"));
        }
        Ok(stats)
    }
}

fn new_socket() -> Result<OwnedFd, AfXdpError> {
    // SAFETY: plain socket(2) call; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::EAFNOSUPPORT) => AfXdpError::Unsupported,
            _ => AfXdpError::os("creating the AF_XDP socket", err),
        });
    }
    // SAFETY: `fd` was just created and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn setsockopt<T>(
    fd: &OwnedFd,
    level: i32,
    opt: i32,
    value: &T,
    what: &'static str,
) -> Result<(), AfXdpError> {
    // SAFETY: `value` points to a live `T` of the size we pass.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(AfXdpError::last_os(what));
    }
    Ok(())
}

/// Registers the UMEM, with TX metadata room when asked and the kernel takes it; returns whether
/// it did. A kernel without TX metadata (before 6.8, or 6.8-6.10 without the
/// `XDP_UMEM_TX_METADATA_LEN` flag) refuses the flag with EINVAL: registered again without it.
fn register_umem(
    fd: &OwnedFd,
    umem: &UmemArea,
    frame_size: u32,
    tx_metadata: UmemTxMetadata,
) -> Result<bool, AfXdpError> {
    let plain = libc::xdp_umem_reg {
        addr: umem.base() as u64,
        len: umem.len() as u64,
        chunk_size: frame_size,
        headroom: 0,
        flags: 0,
        tx_metadata_len: 0,
    };
    let meta_flags = match tx_metadata {
        UmemTxMetadata::None => None,
        UmemTxMetadata::Checksum => Some(libc::XDP_UMEM_TX_METADATA_LEN),
        UmemTxMetadata::ChecksumInKernelSoftware => {
            Some(libc::XDP_UMEM_TX_METADATA_LEN | libc::XDP_UMEM_TX_SW_CSUM)
        }
    };
    let map_err = |e| match e {
        AfXdpError::Os { source, .. } if source.raw_os_error() == Some(libc::ENOMEM) => {
            AfXdpError::MemoryLock { bytes: umem.len() }
        }
        other => other,
    };
    if let Some(flags) = meta_flags {
        let reg = libc::xdp_umem_reg { flags, tx_metadata_len: TX_METADATA_LEN, ..plain };
        match setsockopt(fd, libc::SOL_XDP, libc::XDP_UMEM_REG, &reg, "registering the UMEM") {
            Ok(()) => return Ok(true),
            Err(AfXdpError::Os { source, .. }) if source.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(map_err(e)),
        }
    }
    setsockopt(fd, libc::SOL_XDP, libc::XDP_UMEM_REG, &plain, "registering the UMEM").map_err(map_err)?;
    Ok(false)
}

fn mmap_offsets(fd: &OwnedFd) -> Result<libc::xdp_mmap_offsets, AfXdpError> {
    // SAFETY: plain old data.
    let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
    // SAFETY: `off`/`len` describe a writable buffer of the right size.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            libc::XDP_MMAP_OFFSETS,
            (&mut off as *mut libc::xdp_mmap_offsets).cast(),
            &mut len,
        )
    };
    if ret < 0 {
        return Err(AfXdpError::last_os("reading the AF_XDP ring offsets"));
    }
    if len as usize != size_of::<libc::xdp_mmap_offsets>() {
        return Err(AfXdpError::InvalidConfig(
            "kernel too old: AF_XDP rings have no flags word (need 5.4+)".into(),
        ));
    }
    Ok(off)
}

fn bind(fd: &OwnedFd, s: &SocketSetup, ifname: &str, zero_copy: bool) -> Result<(), AfXdpError> {
    let mut flags = libc::XDP_USE_NEED_WAKEUP | if zero_copy { libc::XDP_ZEROCOPY } else { libc::XDP_COPY };
    if s.multi_buffer {
        flags |= libc::XDP_USE_SG;
    }
    let addr = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: flags,
        sxdp_ifindex: s.ifindex,
        sxdp_queue_id: s.queue,
        sxdp_shared_umem_fd: 0,
    };
    let mut wait = BUSY_FIRST_WAIT;
    for attempt in 0..=BUSY_RETRIES {
        // SAFETY: `addr` is a valid sockaddr_xdp of the size we pass.
        let ret = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_xdp).cast(),
                size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if ret == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EBUSY) if attempt < BUSY_RETRIES => {
                sleep(wait);
                wait = (wait * 2).min(Duration::from_millis(50));
            }
            Some(libc::EBUSY) => {
                return Err(AfXdpError::QueueBusy { ifname: ifname.to_owned(), queue: s.queue })
            }
            Some(libc::EOPNOTSUPP) if zero_copy => {
                return Err(AfXdpError::ZeroCopyUnsupported { ifname: ifname.to_owned() })
            }
            Some(libc::EINVAL) => {
                let sg = if s.multi_buffer { " or the kernel lacks AF_XDP multi-buffer (6.6+)" } else { "" };
                return Err(AfXdpError::InvalidConfig(format!(
                    "bind to {ifname} queue {} refused (EINVAL): the queue may not exist{sg}",
                    s.queue
                )));
            }
            _ => return Err(AfXdpError::os("binding the AF_XDP socket", err)),
        }
    }
    Err(AfXdpError::QueueBusy { ifname: ifname.to_owned(), queue: s.queue })
}
