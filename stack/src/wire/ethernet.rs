//! Ethernet II frames (IEEE 802.3 with an EtherType; no VLAN tags, no 802.2 LLC).
//!
//! A frame is 14 header bytes then the payload; the FCS is never present (NICs strip it).
//! Tagged frames (0x8100) surface as `EtherType::Unknown(0x8100)` for the caller to drop.

use core::fmt;

use super::field::{read_u16, write_array, write_u16};
use super::{Result, WireError};

/// A 48-bit MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    pub const BROADCAST: Self = EthernetAddress([0xff; 6]);

    /// Neither multicast nor broadcast (the I/G bit, bit 0 of the first octet, is clear).
    pub fn is_unicast(&self) -> bool {
        self.0[0] & 0x01 == 0
    }
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }
    /// Group addresses, broadcast included (IEEE 802 I/G bit set).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

/// The EtherType field.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EtherType {
    Ipv4,
    Arp,
    /// Anything else, including values < 0x0600 (802.3 length fields) and VLAN tags.
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(t: EtherType) -> u16 {
        match t {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Unknown(other) => other,
        }
    }
}

const DST: usize = 0;
const SRC: usize = 6;
const ETHERTYPE: usize = 12;
pub(super) const HEADER_LEN: usize = 14;

/// A read/write view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buffer` without checking it; accessors may panic if it is shorter than 14 bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// `Err(Truncated)` if the buffer cannot hold the 14-byte header.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn dst_addr(&self) -> EthernetAddress {
        EthernetAddress(read_mac(self.buffer.as_ref(), DST))
    }

    pub fn src_addr(&self) -> EthernetAddress {
        EthernetAddress(read_mac(self.buffer.as_ref(), SRC))
    }

    pub fn ethertype(&self) -> EtherType {
        read_u16(self.buffer.as_ref(), ETHERTYPE).into()
    }

    /// Everything after the header (including any trailing padding to the 60-byte minimum).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> EthernetFrame<&'a T> {
    /// The payload, borrowed for the lifetime of the underlying buffer rather than the view.
    pub fn payload_ref(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    pub fn set_dst_addr(&mut self, addr: EthernetAddress) {
        write_array(self.buffer.as_mut(), DST, addr.0);
    }

    pub fn set_src_addr(&mut self, addr: EthernetAddress) {
        write_array(self.buffer.as_mut(), SRC, addr.0);
    }

    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        write_u16(self.buffer.as_mut(), ETHERTYPE, ethertype.into());
    }

    /// Everything after the header; empty if the buffer is shorter than the header.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut().get_mut(HEADER_LEN..).unwrap_or_default()
    }
}

fn read_mac(data: &[u8], at: usize) -> [u8; 6] {
    let mut mac = [0; 6];
    mac.copy_from_slice(&data[at..at + 6]);
    mac
}

/// The decoded header of an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    pub src_addr: EthernetAddress,
    pub dst_addr: EthernetAddress,
    pub ethertype: EtherType,
}

impl EthernetRepr {
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Never fails on a checked frame; returns `Result` for symmetry with the other codecs.
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> Result<Self> {
        frame.check_len()?;
        Ok(EthernetRepr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype: frame.ethertype(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header; the payload is the caller's.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) {
        debug_assert!(frame.buffer.as_ref().len() >= HEADER_LEN);
        frame.set_dst_addr(self.dst_addr);
        frame.set_src_addr(self.src_addr);
        frame.set_ethertype(self.ethertype);
    }
}
