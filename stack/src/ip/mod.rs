//! IPv4 glue around TCP: next-hop choice and ICMP input ([`icmp`]): echo replies, path-MTU
//! updates, soft errors. ARP resolution is [`crate::neighbor`]'s.
//!
//! We never emit IP options or fragments; every datagram we send has DF set (RFC 1191 path MTU
//! discovery). Received fragments are dropped and counted by the engine (no reassembly).

pub mod icmp;

use crate::wire::{DstUnreachable, Ipv4Address, TimeExceeded};

/// An ICMP error reported against a connection. RFC 9293 MUST-56 (§3.9.1.4... "soft errors"):
/// it is recorded for the application, never fatal for an established connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoftError {
    DstUnreachable(DstUnreachable),
    TimeExceeded(TimeExceeded),
}

/// Our IPv4 interface: address, prefix and default gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interface {
    pub addr: Ipv4Address,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Address>,
}

impl Interface {
    fn mask(&self) -> u32 {
        match self.prefix_len {
            0 => 0,
            n => u32::MAX << (32 - u32::from(n.min(32))),
        }
    }

    /// True if `dst` is on our link.
    pub fn on_link(&self, dst: Ipv4Address) -> bool {
        (dst.to_u32() ^ self.addr.to_u32()) & self.mask() == 0
    }

    /// The address to resolve with ARP to reach `dst`.
    pub fn next_hop(&self, dst: Ipv4Address) -> Ipv4Address {
        if self.on_link(dst) {
            dst
        } else {
            self.gateway.unwrap_or(dst)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_hop_uses_the_gateway_off_link() {
        let i = Interface {
            addr: Ipv4Address::new(198, 18, 0, 1),
            prefix_len: 24,
            gateway: Some(Ipv4Address::new(198, 18, 0, 254)),
        };
        assert_eq!(i.next_hop(Ipv4Address::new(198, 18, 0, 7)), Ipv4Address::new(198, 18, 0, 7));
        assert_eq!(i.next_hop(Ipv4Address::new(198, 19, 0, 7)), Ipv4Address::new(198, 18, 0, 254));
    }
}
