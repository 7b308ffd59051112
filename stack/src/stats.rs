//! Stack-wide counters, in the spirit of `nstat` (TcpExt/Tcp/Ip/Icmp MIBs).
//!
//! Plain `u64` fields bumped with `+= 1` on the paths that count them: cheap enough to keep on in
//! production, no atomics (one engine per shard; the shard's owner aggregates). Every drop the
//! engine makes on any input bumps exactly one counter here, so "no silent drops" is checkable.

/// Counters since the engine started. Names follow Linux's `nstat` where one exists.
///
/// Every field is a `u64` and the layout is `repr(C)`: shards publish a copy through a seqlock
/// that moves it as plain words (linerate-driver `shard::EngineCounters`), so keep new fields
/// `u64`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[repr(C)]
pub struct Stats {
    /// Connections that went SYN-SENT (Tcp ActiveOpens).
    pub active_opens: u64,
    /// Connections that went SYN-RECEIVED from LISTEN (Tcp PassiveOpens).
    pub passive_opens: u64,
    /// Opens that failed: SYN-SENT/SYN-RECEIVED to CLOSED (Tcp AttemptFails).
    pub attempt_fails: u64,
    /// Resets of ESTABLISHED/CLOSE-WAIT connections, sent or received (Tcp EstabResets).
    pub estab_resets: u64,
    /// TCP segments received, including errors (Tcp InSegs).
    pub in_segs: u64,
    /// TCP segments sent, excluding retransmissions (Tcp OutSegs).
    pub out_segs: u64,
    /// TCP segments retransmitted (Tcp RetransSegs).
    pub retrans_segs: u64,
    /// TCP segments received in error: malformed headers, bad checksums (Tcp InErrs).
    pub in_errs: u64,
    /// TCP/IP/ICMP checksum failures (Tcp InCsumErrors).
    pub in_csum_errors: u64,
    /// Resets sent (Tcp OutRsts).
    pub out_rsts: u64,
    /// SYNs or final ACKs dropped because the accept queue was full (TcpExt ListenOverflows).
    pub listen_overflows: u64,
    /// SYNs or final ACKs dropped at a listener for any reason (TcpExt ListenDrops).
    pub listen_drops: u64,
    /// Challenge ACKs sent, RFC 5961 (TcpExt TCPChallengeACK).
    pub challenge_acks: u64,
    /// Challenge ACKs suppressed by the rate limit.
    pub challenge_acks_limited: u64,
    /// Segments dropped by PAWS, RFC 7323 §5 (TcpExt PAWSEstab).
    pub paws_drops: u64,
    /// Retransmission timeouts (TcpExt TCPTimeouts).
    pub timeouts: u64,
    /// Connections killed by R2 / syn retries / user timeout (TcpExt TCPAbortOnTimeout).
    pub abort_on_timeout: u64,
    /// Connections killed by keepalive (counted within abort_on_timeout too in Linux).
    pub keepalive_timeouts: u64,
    /// Connections reset because data arrived after the application closed (TCPAbortOnData).
    pub abort_on_data: u64,
    /// Connections closed by the application with unread data, reset (TCPAbortOnClose).
    pub abort_on_close: u64,
    /// Retransmissions sent by loss recovery before any RTO (SACK/RACK-driven; TcpExt
    /// TCPFastRetrans).
    pub fast_retrans: u64,
    /// Entries into fast recovery, any controller (TcpExt TCPRenoRecovery + TCPSackRecovery).
    pub reno_recovery: u64,
    /// Tail loss probes sent (TcpExt TCPLossProbes, RFC 8985 §7).
    pub tlp_probes: u64,
    /// Tail loss probes that repaired a real loss (TcpExt TCPLossProbeRecovery).
    pub tlp_recovered: u64,
    /// Bytes RACK marked lost, on an ACK or at its reordering timer (RFC 8985 §6).
    pub rack_lost_bytes: u64,
    /// Fast-recovery episodes undone because D-SACKs proved every retransmission spurious
    /// (RFC 2883/3708; TcpExt TCPDSACKUndo) or the Eifel timestamp test found the late
    /// original acknowledged (RFC 3522; TcpExt TCPPartialUndo + TCPFullUndo).
    pub spurious_retrans_undone: u64,
    /// Retransmission timeouts (SACK-reneging repairs included) undone because the Eifel
    /// timestamp test (RFC 3522), F-RTO (RFC 5682) or D-SACKs (RFC 3708) proved them spurious;
    /// the window came back and the segments not yet resent were not (RFC 4015; TcpExt
    /// TCPLossUndo + TCPSpuriousRTOs).
    pub spurious_rto_undone: u64,
    /// Times a peer was found to have reneged (RFC 2018 §8): the segment at SND.UNA was still
    /// SACKed when the grace after an ACK ended, or at an RTO. The SACK marks were cleared and
    /// the data resent from SND.UNA, as after a retransmission timeout (TcpExt TCPSACKReneging).
    pub sack_reneging: u64,
    /// SACK blocks received from peers that negotiated SACK.
    pub sack_blocks_received: u64,
    /// SACK blocks ignored as invalid or hostile (out of window, below SND.UNA, beyond SND.NXT).
    pub sack_blocks_ignored: u64,
    /// Times pacing held a connection's next segment until its departure time.
    pub pacing_delayed: u64,
    /// Zero-window probes sent.
    pub window_probes: u64,
    /// Keepalive probes sent.
    pub keepalive_probes: u64,
    /// Delayed ACKs sent because the delayed-ACK timer fired (TcpExt DelayedACKs).
    pub delayed_acks: u64,
    /// Segments queued out of order (TcpExt TCPOFOQueue).
    pub ofo_queue: u64,
    /// Out-of-order segments dropped: no free range slot (TcpExt TCPOFODrop).
    pub ofo_drop: u64,
    /// D-SACK blocks sent (TcpExt TCPDSACKOldSent + OfoSent).
    pub dsack_sent: u64,
    /// Segments with data beyond the receive window, trimmed or dropped.
    pub rcv_beyond_window: u64,
    /// Segments outside the receive window answered with an ACK (RFC 9293 §3.10.7.4).
    pub out_of_window: u64,
    /// Unacceptable ACKs (above SND.NXT or too old) dropped with an ACK (RFC 5961 §5.2).
    pub bad_acks: u64,
    /// Segments to a port with no listener and no connection (answered with RST).
    pub no_port: u64,
    /// Connections or SYNs refused because the engine memory cap or connection limit was hit.
    pub memory_refused: u64,
    /// TIME-WAIT records freed early because the TIME-WAIT table was full
    /// (`EngineConfig::time_wait_capacity`; with capacity 0, connections that skipped TIME-WAIT)
    /// (cf. TcpExt TCPTimeWaitOverflow, where Linux skips TIME-WAIT instead).
    pub time_wait_recycled: u64,
    /// Connections currently ESTABLISHED or CLOSE-WAIT (gauge; Tcp CurrEstab).
    pub curr_estab: u64,
    /// IPv4 datagrams received (Ip InReceives).
    pub ip_in_receives: u64,
    /// IPv4 datagrams with bad headers or checksums (Ip InHdrErrors).
    pub ip_in_hdr_errors: u64,
    /// IPv4 datagrams not addressed to us (Ip InAddrErrors).
    pub ip_in_addr_errors: u64,
    /// IPv4 fragments, dropped: we do not reassemble (Ip ReasmFails).
    pub ip_frag_drops: u64,
    /// IPv4 datagrams of a protocol we do not speak (Ip InUnknownProtos).
    pub ip_in_unknown_protos: u64,
    /// Frames that were neither IPv4 nor ARP, or too short for Ethernet.
    pub eth_drops: u64,
    /// ICMP messages received (Icmp InMsgs).
    pub icmp_in_msgs: u64,
    /// ICMP messages dropped as malformed or unsupported (Icmp InErrors).
    pub icmp_in_errors: u64,
    /// ICMP echo replies sent (Icmp OutEchoReps).
    pub icmp_out_echo_reps: u64,
    /// ICMP destination-unreachable / time-exceeded messages matched to a connection.
    pub icmp_soft_errors: u64,
    /// ICMP fragmentation-needed messages that lowered a path MSS.
    pub icmp_pmtu_updates: u64,
    /// ARP packets received.
    pub arp_in: u64,
    /// ARP requests sent.
    pub arp_requests_sent: u64,
    /// ARP replies sent.
    pub arp_replies_sent: u64,
    /// Frames not sent because the next hop was not resolved yet.
    pub arp_unresolved_drops: u64,
    /// Frames the device refused (TX ring full): the data stays queued and is sent later.
    pub tx_ring_full: u64,
    /// Replies (RSTs, echo replies) dropped because their bounded queue was full.
    pub reply_queue_drops: u64,
    /// SYN cookie SYN-ACKs sent (TcpExt SyncookiesSent).
    pub syncookies_sent: u64,
    /// ACKs whose SYN cookie validated and built a connection (TcpExt SyncookiesRecv).
    pub syncookies_recv: u64,
    /// ACKs checked as SYN cookies that failed: forged, wrong tuple or expired; answered with a
    /// RST and no state (TcpExt SyncookiesFailed).
    pub syncookies_failed: u64,
    /// Half-open connections evicted (oldest first) from a full SYN queue with cookies off.
    pub syn_queue_evictions: u64,
    /// Client: SYN data acknowledged by the server's SYN-ACK (TcpExt TCPFastOpenActive).
    pub tfo_active: u64,
    /// Client: SYN data not acknowledged (server ignored it or the SYN was lost and retried
    /// bare); the data went again after the handshake (TcpExt TCPFastOpenActiveFail).
    pub tfo_active_fail: u64,
    /// Server: SYN data accepted with a valid cookie (TcpExt TCPFastOpenPassive).
    pub tfo_passive: u64,
    /// Server: SYN with an invalid cookie or over the pending bound, fell back to a normal
    /// handshake (TcpExt TCPFastOpenPassiveFail).
    pub tfo_passive_fail: u64,
    /// Server: cookie requests answered (TcpExt TCPFastOpenCookieReqd).
    pub tfo_cookie_reqs: u64,
    /// Server: valid-cookie SYN data refused because the listener's pending Fast Open children
    /// were at their bound (TcpExt TCPFastOpenListenOverflow).
    pub tfo_pending_overflow: u64,
    /// Control frames (RSTs, ARP, ICMP echo replies) the device refused, dropped rather than
    /// retried so they never hold up other traffic; their senders retry if it matters.
    pub tx_control_drops: u64,
}

/// Sums counters of several engines (one per shard). `curr_estab` is a gauge and sums too.
impl core::ops::AddAssign<&Stats> for Stats {
    fn add_assign(&mut self, rhs: &Stats) {
        self.active_opens += rhs.active_opens;
        self.passive_opens += rhs.passive_opens;
        self.attempt_fails += rhs.attempt_fails;
        self.estab_resets += rhs.estab_resets;
        self.in_segs += rhs.in_segs;
        self.out_segs += rhs.out_segs;
        self.retrans_segs += rhs.retrans_segs;
        self.in_errs += rhs.in_errs;
        self.in_csum_errors += rhs.in_csum_errors;
        self.out_rsts += rhs.out_rsts;
        self.listen_overflows += rhs.listen_overflows;
        self.listen_drops += rhs.listen_drops;
        self.challenge_acks += rhs.challenge_acks;
        self.challenge_acks_limited += rhs.challenge_acks_limited;
        self.paws_drops += rhs.paws_drops;
        self.timeouts += rhs.timeouts;
        self.abort_on_timeout += rhs.abort_on_timeout;
        self.keepalive_timeouts += rhs.keepalive_timeouts;
        self.abort_on_data += rhs.abort_on_data;
        self.abort_on_close += rhs.abort_on_close;
        self.fast_retrans += rhs.fast_retrans;
        self.reno_recovery += rhs.reno_recovery;
        self.tlp_probes += rhs.tlp_probes;
        self.tlp_recovered += rhs.tlp_recovered;
        self.rack_lost_bytes += rhs.rack_lost_bytes;
        self.spurious_retrans_undone += rhs.spurious_retrans_undone;
        self.spurious_rto_undone += rhs.spurious_rto_undone;
        self.sack_reneging += rhs.sack_reneging;
        self.sack_blocks_received += rhs.sack_blocks_received;
        self.sack_blocks_ignored += rhs.sack_blocks_ignored;
        self.pacing_delayed += rhs.pacing_delayed;
        self.window_probes += rhs.window_probes;
        self.keepalive_probes += rhs.keepalive_probes;
        self.delayed_acks += rhs.delayed_acks;
        self.ofo_queue += rhs.ofo_queue;
        self.ofo_drop += rhs.ofo_drop;
        self.dsack_sent += rhs.dsack_sent;
        self.rcv_beyond_window += rhs.rcv_beyond_window;
        self.out_of_window += rhs.out_of_window;
        self.bad_acks += rhs.bad_acks;
        self.no_port += rhs.no_port;
        self.memory_refused += rhs.memory_refused;
        self.time_wait_recycled += rhs.time_wait_recycled;
        self.ip_in_receives += rhs.ip_in_receives;
        self.ip_in_hdr_errors += rhs.ip_in_hdr_errors;
        self.ip_in_addr_errors += rhs.ip_in_addr_errors;
        self.ip_frag_drops += rhs.ip_frag_drops;
        self.ip_in_unknown_protos += rhs.ip_in_unknown_protos;
        self.eth_drops += rhs.eth_drops;
        self.icmp_in_msgs += rhs.icmp_in_msgs;
        self.icmp_in_errors += rhs.icmp_in_errors;
        self.icmp_out_echo_reps += rhs.icmp_out_echo_reps;
        self.icmp_soft_errors += rhs.icmp_soft_errors;
        self.icmp_pmtu_updates += rhs.icmp_pmtu_updates;
        self.arp_in += rhs.arp_in;
        self.arp_requests_sent += rhs.arp_requests_sent;
        self.arp_replies_sent += rhs.arp_replies_sent;
        self.arp_unresolved_drops += rhs.arp_unresolved_drops;
        self.tx_ring_full += rhs.tx_ring_full;
        self.reply_queue_drops += rhs.reply_queue_drops;
        self.tx_control_drops += rhs.tx_control_drops;
        self.curr_estab += rhs.curr_estab;
        self.syncookies_sent += rhs.syncookies_sent;
        self.syncookies_recv += rhs.syncookies_recv;
        self.syncookies_failed += rhs.syncookies_failed;
        self.syn_queue_evictions += rhs.syn_queue_evictions;
        self.tfo_active += rhs.tfo_active;
        self.tfo_active_fail += rhs.tfo_active_fail;
        self.tfo_passive += rhs.tfo_passive;
        self.tfo_passive_fail += rhs.tfo_passive_fail;
        self.tfo_cookie_reqs += rhs.tfo_cookie_reqs;
        self.tfo_pending_overflow += rhs.tfo_pending_overflow;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_add_up() {
        let mut a = Stats { in_segs: 2, curr_estab: 1, ..Stats::default() };
        a += &Stats { in_segs: 3, out_rsts: 1, curr_estab: 2, ..Stats::default() };
        assert_eq!((a.in_segs, a.out_rsts, a.curr_estab), (5, 1, 3));
    }
}
