//! TEMPORARY stand-in for the few `crate::wire` types this work needs until the wire codecs land
//! on main (contract: notes/WIRE_API.md). Deleted at the merge; nothing else may depend on it.
#![allow(missing_docs)]

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Debug)]
pub struct Ipv4Address(pub [u8; 4]);
impl Ipv4Address {
    pub const UNSPECIFIED: Self = Ipv4Address([0; 4]);
    pub const BROADCAST: Self = Ipv4Address([255; 4]);
    pub const fn new(a: u8, b: u8, c: u8, d: u8) -> Self {
        Ipv4Address([a, b, c, d])
    }
    pub fn to_u32(self) -> u32 {
        u32::from_be_bytes(self.0)
    }
    pub fn from_u32(v: u32) -> Self {
        Ipv4Address(v.to_be_bytes())
    }
    pub fn is_unspecified(&self) -> bool {
        self.0 == [0; 4]
    }
    pub fn is_broadcast(&self) -> bool {
        self.0 == [255; 4]
    }
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0xf0 == 224
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct EthernetAddress(pub [u8; 6]);
impl EthernetAddress {
    pub const BROADCAST: Self = EthernetAddress([0xff; 6]);
    pub fn is_unicast(&self) -> bool {
        self.0[0] & 1 == 0
    }
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ArpOperation {
    Request,
    Reply,
    Unknown(u16),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ArpRepr {
    pub operation: ArpOperation,
    pub source_hardware_addr: EthernetAddress,
    pub source_protocol_addr: Ipv4Address,
    pub target_hardware_addr: EthernetAddress,
    pub target_protocol_addr: Ipv4Address,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct SeqNumber(pub u32);
impl core::ops::Add<u32> for SeqNumber {
    type Output = SeqNumber;
    fn add(self, rhs: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(rhs))
    }
}
impl core::ops::Sub<u32> for SeqNumber {
    type Output = SeqNumber;
    fn sub(self, rhs: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_sub(rhs))
    }
}
impl core::ops::Sub<SeqNumber> for SeqNumber {
    type Output = i32;
    fn sub(self, rhs: SeqNumber) -> i32 {
        self.0.wrapping_sub(rhs.0) as i32
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct FastOpenCookie {
    len: u8,
    bytes: [u8; 16],
}
impl FastOpenCookie {
    pub fn new(b: &[u8]) -> Option<Self> {
        if b.len() > 16 {
            return None;
        }
        let mut bytes = [0; 16];
        bytes[..b.len()].copy_from_slice(b);
        Some(FastOpenCookie { len: b.len() as u8, bytes })
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
    pub fn is_request(&self) -> bool {
        self.len == 0
    }
}
impl core::fmt::Display for Ipv4Address {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}
