//! Next-hop choice for a single-interface host: on-link destination or the default gateway.

use crate::wire::Ipv4Address;

/// No next hop: the destination is off-link and no gateway is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no route to {dst}: it is outside our subnet and no default gateway is configured")]
pub struct NoRoute {
    pub dst: Ipv4Address,
}

/// The address to resolve with ARP for a packet to `dst`, from an interface with address
/// `our_ip/prefix_len` (a prefix above 32 counts as 32) and an optional default gateway.
///
/// On-link destinations (same subnet, or the limited broadcast) are their own next hop; everything
/// else goes to the gateway.
pub fn route(
    dst: Ipv4Address,
    our_ip: Ipv4Address,
    prefix_len: u8,
    gateway: Option<Ipv4Address>,
) -> Result<Ipv4Address, NoRoute> {
    let mask = match prefix_len.min(32) {
        0 => 0,
        n => u32::MAX << (32 - u32::from(n)),
    };
    let on_link = (dst.to_u32() ^ our_ip.to_u32()) & mask == 0;
    if on_link || dst.is_broadcast() {
        return Ok(dst);
    }
    gateway.ok_or(NoRoute { dst })
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Ipv4Address = Ipv4Address::new(198, 18, 0, 1);
    const GW: Ipv4Address = Ipv4Address::new(198, 18, 0, 254);

    #[test]
    fn on_link_destinations_are_their_own_next_hop() {
        let peer = Ipv4Address::new(198, 18, 0, 77);
        assert_eq!(route(peer, US, 24, Some(GW)), Ok(peer));
        assert_eq!(route(Ipv4Address::BROADCAST, US, 24, None), Ok(Ipv4Address::BROADCAST));
    }

    #[test]
    fn off_link_destinations_go_to_the_gateway_or_fail() {
        let far = Ipv4Address::new(198, 19, 3, 4);
        assert_eq!(route(far, US, 24, Some(GW)), Ok(GW));
        assert_eq!(route(far, US, 24, None), Err(NoRoute { dst: far }));
        assert_eq!(route(far, US, 15, None), Ok(far), "198.18.0.0/15 covers 198.19/16");
    }

    #[test]
    fn prefix_edges() {
        let far = Ipv4Address::new(10, 0, 0, 1);
        assert_eq!(route(far, US, 0, None), Ok(far), "/0: everything on-link");
        let next = Ipv4Address::new(198, 18, 0, 2);
        assert_eq!(route(next, US, 32, Some(GW)), Ok(GW), "/32: only ourselves");
        assert_eq!(route(next, US, 200, Some(GW)), Ok(GW), "oversized prefix clamps to /32");
    }
}
