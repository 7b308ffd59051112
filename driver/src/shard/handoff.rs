//! Which shard a received frame belongs to, and the copy of a frame that travels to it.
//!
//! Owns the per-frame routing decision of a shard ([`FlowRouter::route`]) and the fixed-size
//! [`HandOffFrame`] the [mesh](super::mesh) carries. The rule (see [`super::steering`] for why):
//!
//! * TCP to one of our ephemeral ports belongs to the shard that opened it, which
//!   [`FlowOwners::owner`] computes from the 4-tuple (the shard whose queue the reply hashes
//!   to). Anything else TCP (listening ports) stays on the shard whose queue received it:
//!   passive connections live where their SYN landed.
//! * ICMP errors (destination unreachable, time exceeded) quote our segment's header, whose
//!   source is our end of the flow: they follow the same rule, so a PMTU update reaches the
//!   connection it is about.
//! * ARP replies are copied to every shard: any of them may be waiting for that neighbour, and
//!   the reply lands on whichever queue the peer picked. ARP requests are answered locally.
//! * Everything else (ICMP echo, malformed or foreign frames) is processed locally; the engine
//!   counts what it drops.
//!
//! Promises: [`FlowRouter::route`] reads at most the first ~80 bytes with bounds checks, never
//! panics on any input, allocates nothing. Must not: keep state between frames.

use std::net::Ipv4Addr;

use super::ownership::FlowOwners;

/// Largest frame a hand-off carries: a 2048-byte UMEM frame minus the kernel's 256-byte
/// headroom, i.e. anything AF_XDP can deliver with the default frame size (MTU up to 1778).
pub const HANDOFF_FRAME_MAX: usize = 1792;

/// A received frame copied out of one shard's UMEM for another shard. Moved by value through
/// the rings (their slots are allocated once), so a hand-off allocates nothing.
#[derive(Clone)]
pub struct HandOffFrame {
    /// Bytes of `bytes` in use.
    len: u16,
    /// The frame, from the Ethernet header on.
    bytes: [u8; HANDOFF_FRAME_MAX],
}

impl core::fmt::Debug for HandOffFrame {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HandOffFrame").field("len", &self.len).finish_non_exhaustive()
    }
}

impl HandOffFrame {
    /// Copies `frame`, or `None` if it is longer than [`HANDOFF_FRAME_MAX`].
    #[inline]
    pub fn copy_of(frame: &[u8]) -> Option<Self> {
        if frame.len() > HANDOFF_FRAME_MAX {
            return None;
        }
        let mut bytes = [0u8; HANDOFF_FRAME_MAX];
        bytes[..frame.len()].copy_from_slice(frame);
        Some(HandOffFrame { len: frame.len() as u16, bytes })
    }

    /// The frame, writable (the engine parses in place).
    pub fn frame_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[..usize::from(self.len)]
    }
}

/// Where a received frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Process it on this shard.
    Local,
    /// Hand it to this shard.
    To(usize),
    /// Process it here and copy it to every other shard (ARP replies).
    Everyone,
}

/// The routing rule of one shard.
#[derive(Debug, Clone)]
pub struct FlowRouter {
    /// This shard's index.
    me: usize,
    /// Which shard opened a flow to an ephemeral port; `None` with a single shard.
    owners: Option<FlowOwners>,
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ARP_OPER_REPLY: u16 = 2;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
/// ICMP types that quote the offending datagram (RFC 792): unreachable, time exceeded.
const ICMP_QUOTING: [u8; 2] = [3, 11];
const ETH_LEN: usize = 14;

fn be16(frame: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]))
}

fn ipv4_at(frame: &[u8], at: usize) -> Option<Ipv4Addr> {
    let bytes: [u8; 4] = frame.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(bytes))
}

/// Our end and the peer's end of a flow, as (address, port).
type Ends = ((Ipv4Addr, u16), (Ipv4Addr, u16));

/// Offset of the IPv4 payload and the protocol, for an unfragmented (first-fragment) datagram
/// starting at `ip`; `None` if the header is truncated or this is a later fragment.
fn ipv4_payload(frame: &[u8], ip: usize) -> Option<(usize, u8)> {
    let ihl = usize::from(frame.get(ip)? & 0x0f) * 4;
    if ihl < 20 || frame.len() < ip + ihl {
        return None;
    }
    let fragment_offset = be16(frame, ip + 6)? & 0x1fff;
    if fragment_offset != 0 {
        return None;
    }
    Some((ip + ihl, frame[ip + 9]))
}

impl FlowRouter {
    /// The router of shard `me`; `owners` is `None` when there is a single shard.
    pub fn new(me: usize, owners: Option<FlowOwners>) -> Self {
        FlowRouter { me, owners }
    }

    /// This shard's index.
    pub fn shard(&self) -> usize {
        self.me
    }

    /// The shard that opened the flow `local:local_port <-> remote:remote_port`, if it is an
    /// active open (the local port is ephemeral) and there is more than one shard.
    pub fn owner_of(
        &self,
        local: Ipv4Addr,
        local_port: u16,
        remote: Ipv4Addr,
        remote_port: u16,
    ) -> Option<usize> {
        self.owners.as_ref()?.owner(local, local_port, remote, remote_port)
    }

    /// The route of a received Ethernet frame.
    #[inline]
    pub fn route(&self, frame: &[u8]) -> Route {
        let Some(owners) = &self.owners else { return Route::Local };
        let ends = match be16(frame, 12) {
            Some(ETHERTYPE_IPV4) => Self::ipv4_ends(frame),
            Some(ETHERTYPE_ARP) if be16(frame, ETH_LEN + 6) == Some(ARP_OPER_REPLY) => {
                return Route::Everyone
            }
            _ => None,
        };
        let owner = ends.and_then(|((local, local_port), (remote, remote_port))| {
            owners.owner(local, local_port, remote, remote_port)
        });
        match owner {
            Some(owner) if owner != self.me => Route::To(owner),
            _ => Route::Local,
        }
    }

    /// Our end and the peer's of a TCP segment (we are its destination) or of the TCP header an
    /// ICMP error quotes (we were its source).
    fn ipv4_ends(frame: &[u8]) -> Option<Ends> {
        let (payload, protocol) = ipv4_payload(frame, ETH_LEN)?;
        let (src, dst) = (ipv4_at(frame, ETH_LEN + 12)?, ipv4_at(frame, ETH_LEN + 16)?);
        match protocol {
            IPPROTO_TCP => Some(((dst, be16(frame, payload + 2)?), (src, be16(frame, payload)?))),
            IPPROTO_ICMP if ICMP_QUOTING.contains(frame.get(payload)?) => {
                let quoted_ip = payload + 8;
                let (quoted, quoted_protocol) = ipv4_payload(frame, quoted_ip)?;
                if quoted_protocol != IPPROTO_TCP {
                    return None;
                }
                let (ours, theirs) = (ipv4_at(frame, quoted_ip + 12)?, ipv4_at(frame, quoted_ip + 16)?);
                Some(((ours, be16(frame, quoted)?), (theirs, be16(frame, quoted + 2)?)))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    fn tcp_frame(dst_port: u16) -> Vec<u8> {
        let mut f = vec![0u8; 54];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        f[14] = 0x45;
        f[23] = IPPROTO_TCP;
        f[26..30].copy_from_slice(&PEER.octets());
        f[30..34].copy_from_slice(&US.octets());
        f[34..36].copy_from_slice(&80u16.to_be_bytes());
        f[36..38].copy_from_slice(&dst_port.to_be_bytes());
        f
    }

    fn owners() -> FlowOwners {
        FlowOwners::software(4, 40000..=40399)
    }

    fn router(me: usize) -> FlowRouter {
        FlowRouter::new(me, Some(owners()))
    }

    #[test]
    fn tcp_to_another_shards_port_is_handed_off_listener_ports_stay() {
        for port in [40000, 40250, 40399] {
            let owner = owners().owner(US, port, PEER, 80).unwrap();
            for me in 0..4 {
                let want = if me == owner { Route::Local } else { Route::To(owner) };
                assert_eq!(router(me).route(&tcp_frame(port)), want, "port {port} on shard {me}");
            }
        }
        assert_eq!(router(1).route(&tcp_frame(8080)), Route::Local);
        assert_eq!(FlowRouter::new(0, None).route(&tcp_frame(40250)), Route::Local);
    }

    #[test]
    fn later_fragments_and_truncated_headers_stay_local() {
        let port = (40000..=40399).find(|&p| owners().owner(US, p, PEER, 80) != Some(0)).unwrap();
        assert!(matches!(router(0).route(&tcp_frame(port)), Route::To(_)));
        let mut f = tcp_frame(port);
        f[20] = 0x00;
        f[21] = 0x10; // fragment offset 16
        assert_eq!(router(0).route(&f), Route::Local);
        for len in 0..38 {
            assert_eq!(router(0).route(&tcp_frame(port)[..len]), Route::Local, "len {len}");
        }
    }

    #[test]
    fn icmp_errors_follow_the_quoted_segment_and_arp_replies_go_everywhere() {
        let mut f = vec![0u8; 14 + 20 + 8 + 20 + 8];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        f[14] = 0x45;
        f[23] = IPPROTO_ICMP;
        f[26..30].copy_from_slice(&[198, 18, 0, 254]); // a router on the path
        f[30..34].copy_from_slice(&US.octets());
        f[34] = 3; // destination unreachable
        f[42] = 0x45;
        f[51] = IPPROTO_TCP;
        f[54..58].copy_from_slice(&US.octets()); // the quoted segment was ours
        f[58..62].copy_from_slice(&PEER.octets());
        f[62..64].copy_from_slice(&40399u16.to_be_bytes());
        f[64..66].copy_from_slice(&80u16.to_be_bytes());
        let owner = owners().owner(US, 40399, PEER, 80).unwrap();
        assert_eq!(router((owner + 1) % 4).route(&f), Route::To(owner));
        assert_eq!(router(owner).route(&f), Route::Local);
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        arp[20..22].copy_from_slice(&ARP_OPER_REPLY.to_be_bytes());
        assert_eq!(router(1).route(&arp), Route::Everyone);
        arp[21] = 1; // request
        assert_eq!(router(1).route(&arp), Route::Local);
    }

    #[test]
    fn hand_off_copies_refuse_oversized_frames() {
        assert!(HandOffFrame::copy_of(&[0u8; HANDOFF_FRAME_MAX + 1]).is_none());
        let mut copy = HandOffFrame::copy_of(&[7u8; 60]).unwrap();
        assert_eq!(copy.frame_mut(), &[7u8; 60][..]);
    }
}
