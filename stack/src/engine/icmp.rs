//! Applies ICMP input (classified by [`crate::ip::icmp`]) to the engine: echo replies go to the
//! reply queue, path-MTU updates and soft errors to the quoted connection.

use super::transmit::Reply;
use super::{Engine, ICMP_ECHO_MAX};
use crate::ip::icmp::{classify, IcmpAction};
use crate::tcp::FourTuple;
use crate::time::Instant;
use crate::wire::{EthernetAddress, Ipv4Repr, SeqNumber};

impl Engine {
    pub(super) fn receive_icmp(
        &mut self,
        now: Instant,
        src_mac: EthernetAddress,
        ip: &Ipv4Repr,
        bytes: &[u8],
    ) {
        self.stats.icmp_in_msgs += 1;
        match classify(bytes, self.cfg.addr, self.checksum_mode()) {
            IcmpAction::EchoReply { ident, seq_no, data } => {
                if data.len() > ICMP_ECHO_MAX || !ip.src_addr.is_unicast() {
                    self.stats.icmp_in_errors += 1;
                    return;
                }
                let mut copy = [0u8; ICMP_ECHO_MAX];
                copy[..data.len()].copy_from_slice(data);
                self.queue_reply(Reply::Echo {
                    dst_ip: ip.src_addr,
                    dst: src_mac,
                    ident,
                    seq_no,
                    len: data.len() as u16,
                    data: copy,
                });
            }
            IcmpAction::PathMtu { tuple, seq, mtu } => {
                let Some(index) = self.quoted_connection(&tuple, seq) else { return };
                let Some(conn) = self.slots[index as usize].conn.as_deref_mut() else { return };
                let path_mss = u32::from(mtu).saturating_sub(40);
                if path_mss < conn.snd_mss {
                    conn.set_path_mss(path_mss);
                    // Resend what was lost as too big, in smaller segments (RFC 1191 §6.5).
                    conn.on_path_mtu_reduced();
                    self.stats.icmp_pmtu_updates += 1;
                }
                self.after_update(index, now);
            }
            IcmpAction::SoftError { tuple, seq, error } => {
                let Some(index) = self.quoted_connection(&tuple, seq) else { return };
                if let Some(conn) = self.slots[index as usize].conn.as_deref_mut() {
                    conn.soft_error = Some(error);
                    self.stats.icmp_soft_errors += 1;
                }
            }
            IcmpAction::Ignore => {}
            IcmpAction::Invalid => self.stats.icmp_in_errors += 1,
        }
    }

    /// The connection an ICMP error quotes, if the quoted sequence number is one we sent and is
    /// not yet acknowledged (RFC 5927 §4.1).
    fn quoted_connection(&mut self, tuple: &FourTuple, seq: SeqNumber) -> Option<u32> {
        let &index = self.flows.get(tuple)?;
        let conn = self.slots[index as usize].conn.as_deref()?;
        let plausible = seq - conn.snd_una >= 0 && seq - conn.snd_max < 0 || seq == conn.snd_una;
        if plausible {
            Some(index)
        } else {
            self.stats.icmp_in_errors += 1;
            None
        }
    }
}
