//! Which kernel threads run a device's NAPI instances: one generic-netlink dump of the
//! kernel's `netdev` family (`napi-get`, filtered by interface index), read in the calling
//! thread's network namespace.
//!
//! Owns: one short-lived `NETLINK_GENERIC` socket per call. Promises: bounded work (a reply
//! buffer of fixed size, at most [`MAX_REPLIES`] messages); a malformed reply is an error, never
//! a panic. Must not: change anything; it only reads.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A NAPI instance of one interface, as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NapiInstance {
    pub id: u32,
    /// The NAPI kernel thread (`napi/<ifname>-<id>`), present only in threaded mode.
    pub pid: Option<u32>,
}

// include/uapi/linux/genetlink.h and netdev.h (the netdev family's YAML spec).
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const NETDEV_CMD_NAPI_GET: u8 = 11;
const NETDEV_A_NAPI_IFINDEX: u16 = 1;
const NETDEV_A_NAPI_ID: u16 = 2;
const NETDEV_A_NAPI_PID: u16 = 4;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDR: usize = 16;
const GENL_HDR: usize = 4;
/// A dump of one interface's NAPI instances is a handful of messages; stop well past that.
const MAX_REPLIES: usize = 1024;

/// The NAPI instances of `ifindex` in the calling thread's network namespace.
pub fn napi_instances(ifindex: u32) -> std::io::Result<Vec<NapiInstance>> {
    let sock = open()?;
    let family = family_id(&sock, "netdev")?;
    let mut attrs = Vec::new();
    put_attr(&mut attrs, NETDEV_A_NAPI_IFINDEX, &ifindex.to_ne_bytes());
    send(&sock, family, NETDEV_CMD_NAPI_GET, NLM_F_REQUEST | NLM_F_DUMP, &attrs)?;
    let mut found = Vec::new();
    receive(&sock, |payload| {
        let (mut id, mut pid, mut owner) = (None, None, None);
        for (kind, value) in Attrs(payload) {
            let word = value.get(..4).map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
            match kind {
                NETDEV_A_NAPI_IFINDEX => owner = word,
                NETDEV_A_NAPI_ID => id = word,
                NETDEV_A_NAPI_PID => pid = word,
                _ => {}
            }
        }
        // Older kernels ignore the filter: keep only this interface's instances.
        if let (Some(id), Some(owner)) = (id, owner) {
            if owner == ifindex {
                found.push(NapiInstance { id, pid });
            }
        }
    })?;
    Ok(found)
}

fn open() -> std::io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the descriptor is owned below.
    let fd =
        unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_GENERIC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // A dump that never ends must not hang the caller.
    let timeout = libc::timeval { tv_sec: 2, tv_usec: 0 };
    // SAFETY: a valid timeval of the stated size.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
    Ok(sock)
}

fn family_id(sock: &OwnedFd, name: &str) -> std::io::Result<u16> {
    let mut attrs = Vec::new();
    let mut cname = name.as_bytes().to_vec();
    cname.push(0);
    put_attr(&mut attrs, CTRL_ATTR_FAMILY_NAME, &cname);
    send(sock, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, NLM_F_REQUEST, &attrs)?;
    let mut id = None;
    receive(sock, |payload| {
        for (kind, value) in Attrs(payload) {
            if kind == CTRL_ATTR_FAMILY_ID && value.len() >= 2 {
                id = Some(u16::from_ne_bytes([value[0], value[1]]));
            }
        }
    })?;
    id.ok_or_else(|| std::io::Error::other(format!("the kernel has no generic-netlink family {name:?}")))
}

fn put_attr(buf: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = 4 + value.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(value);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

fn send(sock: &OwnedFd, family: u16, cmd: u8, flags: u16, attrs: &[u8]) -> std::io::Result<()> {
    let len = NLMSG_HDR + GENL_HDR + attrs.len();
    let mut msg = Vec::with_capacity(len);
    msg.extend_from_slice(&(len as u32).to_ne_bytes());
    msg.extend_from_slice(&family.to_ne_bytes());
    msg.extend_from_slice(&flags.to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel
    msg.extend_from_slice(&[cmd, 1, 0, 0]); // genl command, version 1
    msg.extend_from_slice(attrs);
    // SAFETY: msg is a valid buffer of len bytes; the socket is connected to the kernel by default.
    let sent = unsafe { libc::send(sock.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
    if sent < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Reads replies until DONE (for a dump) or the first non-multipart answer, handing each
/// message's attributes (after the genl header) to `each`.
fn receive(sock: &OwnedFd, mut each: impl FnMut(&[u8])) -> std::io::Result<()> {
    let mut buf = vec![0u8; 32 * 1024];
    for _ in 0..MAX_REPLIES {
        // SAFETY: buf is a valid writable buffer of its length.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut rest = &buf[..n as usize];
        let mut multipart = false;
        while rest.len() >= NLMSG_HDR {
            let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let kind = u16::from_ne_bytes([rest[4], rest[5]]);
            let flags = u16::from_ne_bytes([rest[6], rest[7]]);
            if len < NLMSG_HDR || len > rest.len() {
                return Err(std::io::Error::other("malformed netlink reply"));
            }
            let body = &rest[NLMSG_HDR..len];
            match kind {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => {
                    let code = body.get(..4).map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                    if code == 0 {
                        return Ok(());
                    }
                    return Err(std::io::Error::from_raw_os_error(-code));
                }
                _ => each(body.get(GENL_HDR..).unwrap_or(&[])),
            }
            multipart |= flags & 0x2 != 0; // NLM_F_MULTI
            rest = &rest[len.next_multiple_of(4).min(rest.len())..];
        }
        if !multipart {
            return Ok(());
        }
    }
    Err(std::io::Error::other("netlink dump did not end"))
}

/// Iterates `(type, value)` over netlink attributes; stops at the first malformed one.
struct Attrs<'a>(&'a [u8]);

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let b = self.0;
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let kind = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff; // without the nested/byte-order flags
        if len < 4 || len > b.len() {
            self.0 = &[];
            return None;
        }
        self.0 = &b[len.next_multiple_of(4).min(b.len())..];
        Some((kind, &b[4..len]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_and_stop_at_garbage() {
        let mut buf = Vec::new();
        put_attr(&mut buf, 2, &7u32.to_ne_bytes());
        put_attr(&mut buf, 9, b"abc");
        put_attr(&mut buf, 4, &9u32.to_ne_bytes());
        let got: Vec<_> = Attrs(&buf).map(|(k, v)| (k, v.len())).collect();
        assert_eq!(got, [(2, 4), (9, 3), (4, 4)]);
        buf.extend_from_slice(&[200, 0, 1, 0]); // claims 200 bytes
        assert_eq!(Attrs(&buf).count(), 3);
    }
}
