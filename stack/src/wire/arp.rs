//! ARP packets (RFC 826), Ethernet/IPv4 only.
//!
//! The view understands any hardware/protocol address length the header announces (so it can be
//! checked and printed); the representation only accepts Ethernet (htype 1, hlen 6) over IPv4
//! (ptype 0x0800, plen 4) and answers `Unsupported` for the rest.

use super::ethernet::EthernetAddress;
use super::field::{read_u16, write_array, write_u16, write_u8};
use super::ipv4::Ipv4Address;
use super::{Result, WireError};

/// The ARP opcode.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ArpOperation {
    Request,
    Reply,
    Unknown(u16),
}

impl From<u16> for ArpOperation {
    fn from(v: u16) -> Self {
        match v {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            other => ArpOperation::Unknown(other),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(op: ArpOperation) -> u16 {
        match op {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Unknown(other) => other,
        }
    }
}

const HTYPE: usize = 0;
const PTYPE: usize = 2;
const HLEN: usize = 4;
const PLEN: usize = 5;
const OPER: usize = 6;
const ADDRS: usize = 8;

const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;

/// A read/write view of an ARP packet.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps `buffer` without checking it; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// `Err(Truncated)` unless the buffer holds the fixed part and the four addresses whose
    /// lengths it announces. Trailing bytes (Ethernet padding) are allowed.
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < ADDRS {
            return Err(WireError::Truncated);
        }
        let addrs = 2 * (usize::from(data[HLEN]) + usize::from(data[PLEN]));
        if data.len() < ADDRS + addrs {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn hardware_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), HTYPE)
    }
    pub fn protocol_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), PTYPE)
    }
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[HLEN]
    }
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[PLEN]
    }
    pub fn operation(&self) -> ArpOperation {
        read_u16(self.buffer.as_ref(), OPER).into()
    }
    pub fn source_hardware_addr(&self) -> &[u8] {
        let at = ADDRS;
        &self.buffer.as_ref()[at..at + self.hlen()]
    }
    pub fn source_protocol_addr(&self) -> &[u8] {
        let at = ADDRS + self.hlen();
        &self.buffer.as_ref()[at..at + self.plen()]
    }
    pub fn target_hardware_addr(&self) -> &[u8] {
        let at = ADDRS + self.hlen() + self.plen();
        &self.buffer.as_ref()[at..at + self.hlen()]
    }
    pub fn target_protocol_addr(&self) -> &[u8] {
        let at = ADDRS + 2 * self.hlen() + self.plen();
        &self.buffer.as_ref()[at..at + self.plen()]
    }

    fn hlen(&self) -> usize {
        usize::from(self.hardware_len())
    }
    fn plen(&self) -> usize {
        usize::from(self.protocol_len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Writes the Ethernet/IPv4 constants (htype 1, ptype 0x0800, hlen 6, plen 4).
    pub fn set_ethernet_ipv4_header(&mut self) {
        let data = self.buffer.as_mut();
        write_u16(data, HTYPE, HTYPE_ETHERNET);
        write_u16(data, PTYPE, PTYPE_IPV4);
        write_u8(data, HLEN, 6);
        write_u8(data, PLEN, 4);
    }
    pub fn set_operation(&mut self, op: ArpOperation) {
        write_u16(self.buffer.as_mut(), OPER, op.into());
    }
    /// Writes the four Ethernet/IPv4 addresses at their fixed offsets (8, 14, 18, 24).
    pub fn set_addresses(
        &mut self,
        sha: EthernetAddress,
        spa: Ipv4Address,
        tha: EthernetAddress,
        tpa: Ipv4Address,
    ) {
        let data = self.buffer.as_mut();
        write_array(data, ADDRS, sha.0);
        write_array(data, ADDRS + 6, spa.0);
        write_array(data, ADDRS + 10, tha.0);
        write_array(data, ADDRS + 16, tpa.0);
    }
}

/// A decoded Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ArpRepr {
    pub operation: ArpOperation,
    pub source_hardware_addr: EthernetAddress,
    pub source_protocol_addr: Ipv4Address,
    pub target_hardware_addr: EthernetAddress,
    pub target_protocol_addr: Ipv4Address,
}

impl ArpRepr {
    pub const LEN: usize = 28;

    /// `Unsupported` for anything but Ethernet/IPv4; unknown opcodes are passed through.
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<Self> {
        packet.check_len()?;
        if packet.hardware_type() != HTYPE_ETHERNET
            || packet.protocol_type() != PTYPE_IPV4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(WireError::Unsupported);
        }
        let mac = |s: &[u8]| {
            let mut m = [0; 6];
            m.copy_from_slice(s);
            EthernetAddress(m)
        };
        let ip = |s: &[u8]| Ipv4Address([s[0], s[1], s[2], s[3]]);
        Ok(ArpRepr {
            operation: packet.operation(),
            source_hardware_addr: mac(packet.source_hardware_addr()),
            source_protocol_addr: ip(packet.source_protocol_addr()),
            target_hardware_addr: mac(packet.target_hardware_addr()),
            target_protocol_addr: ip(packet.target_protocol_addr()),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        Self::LEN
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) {
        debug_assert!(packet.buffer.as_ref().len() >= Self::LEN);
        packet.set_ethernet_ipv4_header();
        packet.set_operation(self.operation);
        packet.set_addresses(
            self.source_hardware_addr,
            self.source_protocol_addr,
            self.target_hardware_addr,
            self.target_protocol_addr,
        );
    }
}
