//! Per-flow accounting on one link direction: how much each TCP flow used the bottleneck.
//!
//! Owns a small table of the TCP flows seen on a link direction (keyed by IPv4 addresses and TCP
//! ports, in the order first seen) with what each offered, what the bottleneck admitted, how long
//! its frames queued and what was dropped. Congestion tests read it to compare flows sharing one
//! bottleneck (fairness, queueing delay per flow) without instrumenting the endpoints. Promises:
//! the table is bounded ([`MAX_TRACKED_FLOWS`]; frames of later flows are counted only in
//! [`FlowTable::untracked_frames`]); frames that are not TCP/IPv4 are counted but never parsed
//! beyond their headers; parsing never panics on any bytes. It does not decide anything about a
//! frame's fate: the link tells it what happened.

use linerate_stack::time::Duration;
use linerate_stack::wire::{EtherType, EthernetFrame, IpProtocol, Ipv4Address, Ipv4Packet, TcpPacket};

/// Flows tracked per link direction; enough for any congestion scenario, small enough to scan.
pub const MAX_TRACKED_FLOWS: usize = 64;

/// One TCP flow in one direction, as seen on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub src: (Ipv4Address, u16),
    pub dst: (Ipv4Address, u16),
}

impl FlowKey {
    /// The flow a frame belongs to, and its TCP payload length; `None` for anything that is not
    /// a well-formed TCP/IPv4 frame.
    pub fn parse(frame: &[u8]) -> Option<(FlowKey, usize)> {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        if eth.ethertype() != EtherType::Ipv4 {
            return None;
        }
        let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
        if ip.protocol() != IpProtocol::Tcp {
            return None;
        }
        let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
        let key = FlowKey { src: (ip.src_addr(), tcp.src_port()), dst: (ip.dst_addr(), tcp.dst_port()) };
        Some((key, tcp.payload().len()))
    }
}

/// What one flow did on one link direction. Every frame offered ends in exactly one of
/// `admitted_frames`, `dropped_filter`, `dropped_queue_full` or `dropped_too_big`; admitted frames
/// may still be lost afterwards (`dropped_loss`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub offered_frames: u64,
    pub offered_bytes: u64,
    /// TCP payload bytes offered, retransmissions included.
    pub offered_payload_bytes: u64,
    pub admitted_frames: u64,
    /// TCP payload bytes that made it through the bottleneck and the loss model.
    pub passed_payload_bytes: u64,
    pub queueing_delay_sum: Duration,
    pub queueing_delay_max: Duration,
    pub dropped_queue_full: u64,
    pub dropped_loss: u64,
    pub dropped_filter: u64,
    pub dropped_too_big: u64,
}

impl FlowStats {
    /// Mean time this flow's admitted frames waited in the bottleneck queue.
    pub fn mean_queueing_delay(&self) -> Duration {
        self.queueing_delay_sum.checked_div_or_zero(self.admitted_frames)
    }
}

/// What the link did with one frame, reported to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    TooBig,
    Filtered,
    QueueFull,
    /// Admitted to the bottleneck after waiting this long, then lost or passed.
    Admitted {
        queueing_delay: Duration,
        lost: bool,
    },
}

/// The bounded per-flow table of one link direction.
#[derive(Debug, Default)]
pub struct FlowTable {
    flows: Vec<(FlowKey, FlowStats)>,
    untracked_frames: u64,
}

impl FlowTable {
    /// Accounts one offered frame and what happened to it.
    pub(crate) fn record(&mut self, frame: &[u8], fate: Fate) {
        let Some((key, payload)) = FlowKey::parse(frame) else { return };
        let Some(stats) = self.entry(key) else {
            self.untracked_frames += 1;
            return;
        };
        stats.offered_frames += 1;
        stats.offered_bytes += frame.len() as u64;
        stats.offered_payload_bytes += payload as u64;
        match fate {
            Fate::TooBig => stats.dropped_too_big += 1,
            Fate::Filtered => stats.dropped_filter += 1,
            Fate::QueueFull => stats.dropped_queue_full += 1,
            Fate::Admitted { queueing_delay, lost } => {
                stats.admitted_frames += 1;
                stats.queueing_delay_sum += queueing_delay;
                stats.queueing_delay_max = stats.queueing_delay_max.max(queueing_delay);
                if lost {
                    stats.dropped_loss += 1;
                } else {
                    stats.passed_payload_bytes += payload as u64;
                }
            }
        }
    }

    fn entry(&mut self, key: FlowKey) -> Option<&mut FlowStats> {
        let at = match self.flows.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None if self.flows.len() < MAX_TRACKED_FLOWS => {
                self.flows.push((key, FlowStats::default()));
                self.flows.len() - 1
            }
            None => return None,
        };
        Some(&mut self.flows[at].1)
    }

    /// Every tracked flow, in the order first seen.
    pub fn flows(&self) -> &[(FlowKey, FlowStats)] {
        &self.flows
    }

    /// The counters of `key`, if it was seen and tracked.
    pub fn get(&self, key: &FlowKey) -> Option<&FlowStats> {
        self.flows.iter().find(|(k, _)| k == key).map(|(_, s)| s)
    }

    /// The flow whose source port is `port` (a convenient key when one side uses one address).
    pub fn by_src_port(&self, port: u16) -> Option<&FlowStats> {
        self.flows.iter().find(|(k, _)| k.src.1 == port).map(|(_, s)| s)
    }

    /// TCP frames of flows beyond [`MAX_TRACKED_FLOWS`].
    pub fn untracked_frames(&self) -> u64 {
        self.untracked_frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_frame(src_port: u16, payload: usize) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20 + payload];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        f[16..18].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
        f[22] = 64;
        f[23] = 6;
        f[26..30].copy_from_slice(&[198, 18, 0, 1]);
        f[30..34].copy_from_slice(&[198, 18, 0, 2]);
        f[34..36].copy_from_slice(&src_port.to_be_bytes());
        f[36..38].copy_from_slice(&80u16.to_be_bytes());
        f[46] = 5 << 4;
        f
    }

    #[test]
    fn flows_are_told_apart_and_counted() {
        let mut t = FlowTable::default();
        let delay = Duration::from_millis(2);
        t.record(&tcp_frame(1000, 100), Fate::Admitted { queueing_delay: delay, lost: false });
        t.record(&tcp_frame(1000, 100), Fate::Admitted { queueing_delay: Duration::ZERO, lost: true });
        t.record(&tcp_frame(2000, 0), Fate::QueueFull);
        t.record(&[0u8; 10], Fate::QueueFull);
        let a = t.by_src_port(1000).unwrap();
        assert_eq!(
            (a.offered_frames, a.admitted_frames, a.passed_payload_bytes, a.dropped_loss),
            (2, 2, 100, 1)
        );
        assert_eq!(a.mean_queueing_delay(), Duration::from_millis(1));
        assert_eq!(t.by_src_port(2000).unwrap().dropped_queue_full, 1);
        assert_eq!(t.flows().len(), 2);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut t = FlowTable::default();
        for port in 0..(MAX_TRACKED_FLOWS as u16 + 10) {
            t.record(&tcp_frame(port + 1, 1), Fate::Filtered);
        }
        assert_eq!(t.flows().len(), MAX_TRACKED_FLOWS);
        assert_eq!(t.untracked_frames(), 10);
    }
}
