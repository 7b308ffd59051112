//! Wire codecs: Ethernet II, ARP, IPv4, ICMPv4 and TCP, plus the Internet checksum and a
//! tcpdump-like pretty printer.
//!
//! Every protocol comes in two halves. A zero-copy *view* (`EthernetFrame<T>`, `Ipv4Packet<T>`,
//! `TcpPacket<T>`, ...) wraps the bytes of a frame and reads or writes fields in place. A plain
//! *representation* (`EthernetRepr`, `Ipv4Repr`, `TcpRepr`, ...) holds the decoded, validated
//! meaning of a header and moves between the two with `parse` and `emit`.
//!
//! This module owns byte layout and validation only. It holds no state, allocates nothing and
//! decides nothing about what a packet means for a connection: that belongs to the engine.
//!
//! # Panic contract
//!
//! * `View::new_checked(buffer)` runs `check_len` once. After it succeeds, **no accessor panics
//!   for any byte sequence**: every offset an accessor reads was proven in bounds by `check_len`.
//!   `View::new_unchecked` skips the check; its accessors may panic on short buffers, so it is
//!   only for buffers the caller sized itself (the transmit path).
//! * `Repr::parse` **never panics for any input**: malformed input becomes a [`WireError`].
//! * Setters and `Repr::emit` **never panic either**. `emit` expects a buffer of at least
//!   `Repr::buffer_len()` bytes (debug builds assert this). Given a shorter buffer, every write
//!   that would fall outside it is dropped, so the result is a truncated, meaningless header but
//!   never a panic or an out-of-bounds write. Callers size their buffers from `buffer_len()`, so
//!   this only matters for bugs, which debug builds catch.
//! * Nothing here allocates, and every loop is bounded by the length of its input (TCP options:
//!   at most 40 bytes).

mod arp;
mod checksum;
mod ethernet;
mod frame;
mod icmp;
mod ipv4;
mod pretty;
pub mod tcp;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use checksum::{checksum, update, Checksum};
pub use ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
pub use frame::{emit_tcp_data_headers, DataHeaderTemplate, KeptDataHeaders};
pub use icmp::{DstUnreachable, IcmpQuote, Icmpv4Packet, Icmpv4Repr, TimeExceeded};
pub use ipv4::{IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr};
pub use pretty::{pretty_frame, PrettyFrame};
pub use tcp::{
    finish_checksum, FastOpenCookie, SackBlock, SackBlocks, SeqNumber, TcpFlags, TcpOption, TcpOptionIter,
    TcpOptions, TcpPacket, TcpRepr, Timestamps,
};

/// Why a frame could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer is shorter than the header or a length field says it should be.
    #[error("truncated: the buffer is shorter than the header or its length fields claim")]
    Truncated,
    /// A field holds a value the protocol forbids (bad version, IHL < 5, bad option length...).
    #[error("malformed: a header field holds a value the protocol forbids")]
    Malformed,
    /// The checksum does not match the contents (only checked in [`ChecksumMode::Compute`]).
    #[error("bad checksum: the contents were corrupted or the checksum was never filled in")]
    BadChecksum,
    /// An IPv4 fragment (MF set or a non-zero offset); we do not reassemble.
    #[error("fragmented: IPv4 fragments are not reassembled; drop and count them")]
    Fragmented,
    /// Well-formed but outside what linerate speaks (non-Ethernet ARP, unknown ICMP type...).
    #[error("unsupported: a well-formed packet of a kind linerate does not handle")]
    Unsupported,
}

/// The result of a wire operation.
pub type Result<T> = core::result::Result<T, WireError>;

/// Whether to verify checksums on parse and fill them in on emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumMode {
    /// Verify on parse (mismatch is [`WireError::BadChecksum`]); compute and store on emit.
    Compute,
    /// Neither verify nor compute: the NIC offloads it (emit leaves the field zero).
    Skip,
}

/// Big-endian field access shared by the views.
///
/// Reads index directly: the views only call them at offsets their `check_len` proved in bounds.
/// Writes are bounds-checked and dropped when out of range, which is what makes setters and
/// `emit` panic-free on undersized buffers (see the panic contract above).
pub(crate) mod field {
    pub(crate) fn read_u16(data: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([data[at], data[at + 1]])
    }

    pub(crate) fn read_u32(data: &[u8], at: usize) -> u32 {
        u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
    }

    pub(crate) fn write_u8(data: &mut [u8], at: usize, value: u8) {
        if let Some(byte) = data.get_mut(at) {
            *byte = value;
        }
    }

    pub(crate) fn write_u16(data: &mut [u8], at: usize, value: u16) {
        write_array(data, at, value.to_be_bytes());
    }

    pub(crate) fn write_u32(data: &mut [u8], at: usize, value: u32) {
        write_array(data, at, value.to_be_bytes());
    }

    /// Writes a fixed-size field; dropped entirely if it does not fit. The constant length keeps
    /// this a couple of moves instead of a `memcpy` call (it is on every emitted header).
    pub(crate) fn write_array<const N: usize>(data: &mut [u8], at: usize, bytes: [u8; N]) {
        if let Some(field) = at.checked_add(N).and_then(|end| data.get_mut(at..end)) {
            field.copy_from_slice(&bytes);
        }
    }

    /// Writes `bytes` at `at`, dropping whatever would fall past the end of `data`.
    pub(crate) fn write_bytes(data: &mut [u8], at: usize, bytes: &[u8]) {
        let Some(tail) = data.get_mut(at..) else {
            return;
        };
        let n = tail.len().min(bytes.len());
        tail[..n].copy_from_slice(&bytes[..n]);
    }
}
