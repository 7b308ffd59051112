//! The hash a NIC spreads frames with: RSS (Toeplitz), and reading a device's RSS setup.
//!
//! # Design
//!
//! Each shard owns one or more NIC receive queues. The NIC spreads arriving frames over the
//! queues with RSS: a Toeplitz hash of the IPv4 4-tuple under a key, then an indirection table
//! maps the hash to a queue. So:
//!
//! * **Passive opens** need nothing from us: the SYN lands on some queue, that queue's shard
//!   owns the connection, and every later frame of the flow hashes to the same queue.
//! * **Active opens** must pick a local port such that the *replies* (source = the peer, so the
//!   hash input is `remote_ip, local_ip, remote_port, local_port`) land on the opener's queue.
//!   When the key and table can be read from the device ([`read_rss`]), that is the NIC's own
//!   hash; when they cannot (veth, virtio without RSS, a non-Toeplitz function) the same rule
//!   runs with a key of our own and replies that land elsewhere are handed to the owner.
//!   [`super::ownership`] applies the rule; this module only hashes and reads the device.
//!
//! Promises: hashing never panics on any key or input length (missing key bits count as zero);
//! the ioctl path reports unsupported devices as [`RssError::Unsupported`], never guesses.
//! Must not: run the ioctl on the packet path (it is a syscall; read the config once at start).

use std::io;
use std::net::Ipv4Addr;

/// Length of the RSS key most NICs use (and the Microsoft verification suite's).
pub const RSS_KEY_LEN: usize = 40;

/// The Toeplitz hash of `input` under `key` (Microsoft RSS specification, "RSS hashing").
///
/// For every set bit `b` of the input (most significant first), XOR in the 32 key bits starting
/// at bit `b` of the key. Inputs longer than `key.len() - 4` bytes see zero key bits at the end.
pub fn toeplitz_hash(key: &[u8], input: &[u8]) -> u32 {
    let key_bit = |i: usize| -> u32 { key.get(i / 8).map_or(0, |byte| u32::from((byte >> (7 - i % 8)) & 1)) };
    let mut window = (0..32).fold(0u32, |w, i| (w << 1) | key_bit(i));
    let mut result = 0u32;
    for (i, &byte) in input.iter().enumerate() {
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                result ^= window;
            }
            window = (window << 1) | key_bit(i * 8 + bit + 32);
        }
    }
    result
}

/// The hash a NIC computes for an IPv4 TCP frame: input is source address, destination address,
/// source port, destination port, all in network order.
pub fn hash_ipv4_tcp(key: &[u8], src: Ipv4Addr, dst: Ipv4Addr, src_port: u16, dst_port: u16) -> u32 {
    let mut input = [0u8; 12];
    input[0..4].copy_from_slice(&src.octets());
    input[4..8].copy_from_slice(&dst.octets());
    input[8..10].copy_from_slice(&src_port.to_be_bytes());
    input[10..12].copy_from_slice(&dst_port.to_be_bytes());
    toeplitz_hash(key, &input)
}

/// A device's RSS setup: the Toeplitz key and the indirection table (hash → queue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RssConfig {
    /// The hash key.
    pub key: Vec<u8>,
    /// Receive queue for each table index; a frame goes to `indirection[hash % len]`.
    pub indirection: Vec<u32>,
}

impl RssConfig {
    /// The queue a frame with this hash lands on, or `None` for an empty table.
    pub fn queue_for_hash(&self, hash: u32) -> Option<u32> {
        let len = self.indirection.len();
        if len == 0 {
            return None;
        }
        Some(self.indirection[hash as usize % len])
    }

    /// The queue the frames `remote → local` of this flow land on.
    pub fn queue_for_flow(
        &self,
        local_ip: Ipv4Addr,
        local_port: u16,
        remote_ip: Ipv4Addr,
        remote_port: u16,
    ) -> Option<u32> {
        self.queue_for_hash(hash_ipv4_tcp(&self.key, remote_ip, local_ip, remote_port, local_port))
    }
}

/// The Toeplitz hash of the 12-byte IPv4/TCP input, one table lookup per input byte.
///
/// The hash is linear over GF(2): the hash of an input is the XOR of the hashes of its bytes
/// each in place with the others zero. So a 12 × 256 table of `u32` (12 KiB) built once from the
/// key turns the 96-step bit loop of [`toeplitz_hash`] into 12 loads and XORs, cheap enough to
/// run per received frame and per candidate port.
#[derive(Clone)]
pub struct ToeplitzTable {
    /// `bytes[i][b]`: the hash of an input that is zero except for byte `i`, which is `b`.
    bytes: Box<[[u32; 256]; IPV4_TCP_INPUT]>,
}

/// Bytes of the IPv4/TCP hash input: source and destination address, then ports.
const IPV4_TCP_INPUT: usize = 12;

impl core::fmt::Debug for ToeplitzTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ToeplitzTable").finish_non_exhaustive()
    }
}

impl ToeplitzTable {
    /// Precomputes the table of `key` (missing key bits count as zero, as in [`toeplitz_hash`]).
    pub fn new(key: &[u8]) -> Self {
        let mut bytes = Box::new([[0u32; 256]; IPV4_TCP_INPUT]);
        let mut input = [0u8; IPV4_TCP_INPUT];
        for (i, row) in bytes.iter_mut().enumerate() {
            // Linearity again: the hash of each single bit, XORed over the bits of `b`.
            let mut bit_hash = [0u32; 8];
            for (bit, hash) in bit_hash.iter_mut().enumerate() {
                input[i] = 0x80 >> bit;
                *hash = toeplitz_hash(key, &input);
            }
            input[i] = 0;
            for (b, entry) in row.iter_mut().enumerate() {
                *entry = (0..8).filter(|bit| b & (0x80 >> bit) != 0).fold(0, |h, bit| h ^ bit_hash[bit]);
            }
        }
        ToeplitzTable { bytes }
    }

    /// Same value as [`hash_ipv4_tcp`] with this table's key.
    #[inline]
    pub fn hash_ipv4_tcp(&self, src: Ipv4Addr, dst: Ipv4Addr, src_port: u16, dst_port: u16) -> u32 {
        let (s, d, sp, dp) = (src.octets(), dst.octets(), src_port.to_be_bytes(), dst_port.to_be_bytes());
        let input = [s[0], s[1], s[2], s[3], d[0], d[1], d[2], d[3], sp[0], sp[1], dp[0], dp[1]];
        input.iter().zip(self.bytes.iter()).fold(0, |h, (&byte, row)| h ^ row[usize::from(byte)])
    }
}

/// Why the RSS setup could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RssError {
    #[error("interface name {0:?} is empty, too long or contains NUL")]
    BadName(String),
    #[error("no network interface named {0:?}")]
    NoSuchDevice(String),
    #[error("{0} does not expose an RSS key and indirection table (e.g. veth); replies to active opens are handed off between shards")]
    Unsupported(String),
    #[error("{ifname} hashes with function {hfunc:#x} / input transform {input_xfrm:#x}, not plain Toeplitz; replies to active opens are handed off between shards")]
    NotToeplitz { ifname: String, hfunc: u8, input_xfrm: u8 },
    #[error("reading the RSS setup of {ifname} failed: {source}")]
    Io { ifname: String, source: io::Error },
}

/// `SIOCETHTOOL` (linux/sockios.h).
const SIOCETHTOOL: libc::c_ulong = 0x8946;
/// `ETHTOOL_GRSSH` (linux/ethtool.h): get RSS hash key, function and indirection table.
const ETHTOOL_GRSSH: u32 = 0x46;
/// `ETH_RSS_HASH_TOP`: the Toeplitz hash function bit.
const ETH_RSS_HASH_TOP: u8 = 1;
/// Size of `struct ethtool_rxfh` before its flexible `rss_config[]` array, in `u32`s.
const RXFH_HEADER_WORDS: usize = 6;

/// `struct ifreq` with the `ifr_data` member of the union (40 bytes on 64-bit Linux).
#[repr(C)]
struct IfReqData {
    name: [u8; libc::IFNAMSIZ],
    data: *mut u32,
    _rest_of_union: [u8; 24 - core::mem::size_of::<*mut u32>()],
}

/// Reads the RSS key and indirection table of `ifname` with `ETHTOOL_GRSSH` (needs no
/// privileges). A syscall: call once at start-up, not per packet.
pub fn read_rss(ifname: &str) -> Result<RssConfig, RssError> {
    let bytes = ifname.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(RssError::BadName(ifname.to_string()));
    }
    let io_error = |source: io::Error| match source.raw_os_error() {
        Some(libc::EOPNOTSUPP) => RssError::Unsupported(ifname.to_string()),
        Some(libc::ENODEV) => RssError::NoSuchDevice(ifname.to_string()),
        _ => RssError::Io { ifname: ifname.to_string(), source },
    };
    let socket = EthtoolSocket::open().map_err(io_error)?;
    // First call with zero sizes: the kernel only reports the table and key sizes.
    let mut header = [0u32; RXFH_HEADER_WORDS];
    header[0] = ETHTOOL_GRSSH;
    socket.ioctl(bytes, &mut header).map_err(io_error)?;
    let (indir_size, key_size) = (header[2] as usize, header[3] as usize);
    if indir_size == 0 || key_size == 0 {
        return Err(RssError::Unsupported(ifname.to_string()));
    }
    let mut buffer = vec![0u32; RXFH_HEADER_WORDS + indir_size + key_size.div_ceil(4)];
    buffer[0] = ETHTOOL_GRSSH;
    buffer[2] = indir_size as u32;
    buffer[3] = key_size as u32;
    socket.ioctl(bytes, &mut buffer).map_err(io_error)?;
    let hfunc = buffer[4].to_ne_bytes()[0];
    let input_xfrm = buffer[4].to_ne_bytes()[1];
    if hfunc != ETH_RSS_HASH_TOP || input_xfrm != 0 {
        return Err(RssError::NotToeplitz { ifname: ifname.to_string(), hfunc, input_xfrm });
    }
    let indirection = buffer[RXFH_HEADER_WORDS..RXFH_HEADER_WORDS + indir_size].to_vec();
    let key: Vec<u8> = buffer[RXFH_HEADER_WORDS + indir_size..]
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .take(key_size)
        .collect();
    Ok(RssConfig { key, indirection })
}

/// A datagram socket used only as a handle for ethtool ioctls; closed on drop.
struct EthtoolSocket(libc::c_int);

impl EthtoolSocket {
    fn open() -> io::Result<Self> {
        // SAFETY: plain socket(2) call with constant arguments.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(EthtoolSocket(fd))
    }

    /// `SIOCETHTOOL` on interface `name` with `buffer` (an `ethtool_rxfh` and its array).
    fn ioctl(&self, name: &[u8], buffer: &mut [u32]) -> io::Result<()> {
        let mut request = IfReqData {
            name: [0; libc::IFNAMSIZ],
            data: buffer.as_mut_ptr(),
            _rest_of_union: [0; 24 - core::mem::size_of::<*mut u32>()],
        };
        request.name[..name.len()].copy_from_slice(name);
        // SAFETY: `request` is a valid ifreq whose data pointer covers `buffer`, sized from the
        // kernel's own report of the table and key sizes; the kernel writes only within them.
        let rc = unsafe { libc::ioctl(self.0, SIOCETHTOOL as _, &mut request as *mut IfReqData) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for EthtoolSocket {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor and close it once.
        unsafe { libc::close(self.0) };
    }
}
