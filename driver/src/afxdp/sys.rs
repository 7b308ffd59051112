//! Thin, safe wrappers over the raw syscalls the driver needs: `bpf(2)` commands and interface
//! look-ups (ifindex, MAC, MTU, queue count).
//!
//! Owns: the `bpf_attr` layouts we use (prefixes of the kernel union; the kernel zero-fills the
//! rest) and the constants libc does not export. Promises: every function returns an
//! [`AfXdpError`] naming the step; no function panics. Must not: hold state or allocate per packet
//! (everything here runs at setup).

use std::ffi::CString;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::error::AfXdpError;

// enum bpf_cmd (uapi/linux/bpf.h)
const BPF_MAP_CREATE: libc::c_int = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_int = 2;
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_LINK_CREATE: libc::c_int = 28;

pub(crate) const BPF_MAP_TYPE_XSKMAP: u32 = 17;
pub(crate) const BPF_PROG_TYPE_XDP: u32 = 6;
/// `enum bpf_attach_type` value of XDP programs.
pub(crate) const BPF_XDP: u32 = 37;

/// `prog_flags` bit (Linux 5.18+): the program copes with multi-buffer frames (it only reads the
/// first buffer, which holds the headers), so drivers may attach it at any MTU.
pub(crate) const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;

// uapi/linux/if_link.h
pub(crate) const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
pub(crate) const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

// asm-generic/socket.h; libc exports these for some targets only.
/// `SOL_XDP` option (Linux 6.17+, `include/uapi/linux/if_xdp.h`): how many tx descriptors one
/// copy-mode `sendto` may hand to the driver, 32 (the default) up to the tx ring size.
pub(crate) const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;
pub(crate) const SO_BUSY_POLL: libc::c_int = 46;
pub(crate) const SO_PREFER_BUSY_POLL: libc::c_int = 69;
pub(crate) const SO_BUSY_POLL_BUDGET: libc::c_int = 70;

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, properly sized `repr(C)` prefix of `union bpf_attr`; the kernel
    // reads (and for some commands writes) at most `size_of::<T>()` bytes of it.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size_of::<T>() as u32) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn owned_fd(ret: libc::c_long) -> OwnedFd {
    // SAFETY: the bpf commands we call return a fresh file descriptor that nobody else owns.
    unsafe { OwnedFd::from_raw_fd(ret as RawFd) }
}

fn name16(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (dst, src) in out.iter_mut().take(15).zip(name.bytes()) {
        *dst = src;
    }
    out
}

/// Creates an XSKMAP (queue index → AF_XDP socket) with `entries` slots.
pub(crate) fn create_xskmap(entries: u32) -> Result<OwnedFd, AfXdpError> {
    let mut attr = MapCreateAttr {
        map_type: BPF_MAP_TYPE_XSKMAP,
        key_size: 4,
        value_size: 4,
        max_entries: entries,
        map_name: name16("linerate_xsks"),
        ..Default::default()
    };
    bpf(BPF_MAP_CREATE, &mut attr).map(owned_fd).map_err(|e| AfXdpError::os("creating the XSKMAP (bpf)", e))
}

/// Stores `socket` at index `queue` of an XSKMAP.
pub(crate) fn xskmap_insert(map: &OwnedFd, queue: u32, socket: RawFd) -> Result<(), AfXdpError> {
    let value = socket as u32;
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: &queue as *const u32 as u64,
        value: &value as *const u32 as u64,
        ..Default::default()
    };
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr)
        .map(drop)
        .map_err(|e| AfXdpError::os("registering the socket in the XSKMAP", e))
}

/// Loads an XDP program; on refusal returns the most telling line of the verifier log.
pub(crate) fn load_xdp_program(
    insns: &[u64],
    name: &str,
    license: &str,
    prog_flags: u32,
) -> Result<OwnedFd, AfXdpError> {
    let license = CString::new(license).map_err(|_| AfXdpError::InvalidConfig("license has a NUL".into()))?;
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_XDP,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name16(name),
        expected_attach_type: BPF_XDP,
        prog_flags,
        ..Default::default()
    };
    if let Ok(fd) = bpf(BPF_PROG_LOAD, &mut attr) {
        return Ok(owned_fd(fd));
    }
    let first = io::Error::last_os_error();
    if matches!(first.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) {
        return Err(AfXdpError::PermissionDenied { what: "loading the XDP program (bpf)" });
    }
    // Retry with the verifier log on, so the error says why.
    let mut log = vec![0u8; 64 * 1024];
    attr.log_level = 1;
    attr.log_size = log.len() as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned_fd(fd)),
        Err(e) => {
            let text = String::from_utf8_lossy(&log);
            let text = text.trim_end_matches('\0');
            let reason = text
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with("processed "))
                .map(str::to_owned)
                .unwrap_or_else(|| e.to_string());
            Err(AfXdpError::ProgramRejected(reason))
        }
    }
}

/// Attaches `prog` to `ifindex` through a BPF link; the program is detached when the returned
/// descriptor closes (including when the process dies).
pub(crate) fn link_xdp(prog: &OwnedFd, ifindex: u32, mode_flags: u32) -> io::Result<OwnedFd> {
    let mut attr = LinkCreateAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_ifindex: ifindex,
        attach_type: BPF_XDP,
        flags: mode_flags,
    };
    bpf(BPF_LINK_CREATE, &mut attr).map(owned_fd)
}

/// The index of interface `name` in the calling thread's network namespace.
pub fn interface_index(name: &str) -> Result<u32, AfXdpError> {
    let cname = CString::new(name).map_err(|_| AfXdpError::InterfaceNotFound(name.to_owned()))?;
    // SAFETY: `cname` is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        Err(AfXdpError::InterfaceNotFound(name.to_owned()))
    } else {
        Ok(index)
    }
}

/// A throwaway datagram socket for interface ioctls.
fn ioctl_socket() -> Result<OwnedFd, AfXdpError> {
    // SAFETY: plain socket(2) call; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(AfXdpError::last_os("opening an ioctl socket"));
    }
    // SAFETY: `fd` was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ifreq_for(name: &str) -> Result<libc::ifreq, AfXdpError> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return Err(AfXdpError::InterfaceNotFound(name.to_owned()));
    }
    // SAFETY: `ifreq` is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

fn interface_ioctl(name: &str, request: libc::Ioctl, req: &mut libc::ifreq) -> Result<(), AfXdpError> {
    let sock = ioctl_socket()?;
    // SAFETY: `req` is a valid ifreq whose union member matches `request`.
    let ret = unsafe { libc::ioctl(sock.as_raw_fd(), request, req as *mut libc::ifreq) };
    if ret < 0 {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::ENODEV) => AfXdpError::InterfaceNotFound(name.to_owned()),
            _ => AfXdpError::os("interface ioctl", err),
        });
    }
    Ok(())
}

/// The Ethernet address of interface `name`.
pub fn interface_mac(name: &str) -> Result<[u8; 6], AfXdpError> {
    let mut req = ifreq_for(name)?;
    interface_ioctl(name, libc::SIOCGIFHWADDR, &mut req)?;
    // SAFETY: SIOCGIFHWADDR filled the `ifru_hwaddr` member.
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0u8; 6];
    for (dst, src) in mac.iter_mut().zip(data.iter()) {
        *dst = *src as u8;
    }
    Ok(mac)
}

/// The L3 MTU of interface `name`.
pub fn interface_mtu(name: &str) -> Result<usize, AfXdpError> {
    let mut req = ifreq_for(name)?;
    interface_ioctl(name, libc::SIOCGIFMTU, &mut req)?;
    // SAFETY: SIOCGIFMTU filled the `ifru_mtu` member.
    Ok(unsafe { req.ifr_ifru.ifru_mtu }.max(0) as usize)
}

#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// How many receive queues interface `name` has (1 when the driver does not say).
pub fn interface_rx_queues(name: &str) -> Result<u32, AfXdpError> {
    let mut req = ifreq_for(name)?;
    let mut channels = EthtoolChannels { cmd: ETHTOOL_GCHANNELS, ..Default::default() };
    req.ifr_ifru.ifru_data = (&mut channels as *mut EthtoolChannels).cast();
    match interface_ioctl(name, libc::SIOCETHTOOL, &mut req) {
        Ok(()) => Ok(channels.rx_count.max(channels.combined_count).max(1)),
        Err(AfXdpError::Os { .. }) => Ok(1),
        Err(e) => Err(e),
    }
}
