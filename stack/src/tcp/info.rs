//! Per-connection information, like `ss -ti`: state, RTT estimator, congestion controller
//! (name, cwnd, ssthresh, pacing and delivery rates, BBR state), loss-recovery scoreboard
//! (SACKed, lost, retransmitted, reordering) and byte/segment counters.

use super::connection::{Connection, FourTuple};
use super::state::State;
use super::CongestionAlgorithm;
use crate::time::{Duration, Instant};

/// A snapshot of one connection.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TcpInfo {
    pub tuple: FourTuple,
    pub state: State,
    /// Smoothed RTT (RFC 6298 SRTT).
    pub rtt: Option<Duration>,
    pub rttvar: Duration,
    /// Windowed minimum RTT.
    pub min_rtt: Option<Duration>,
    pub rto: Duration,
    pub backoff: u32,
    /// Effective send MSS.
    pub snd_mss: u32,
    /// Estimated receive MSS.
    pub rcv_mss: u32,
    pub cwnd: u32,
    pub ssthresh: u32,
    /// The controller ("newreno", "cubic", "bbr" via `Display`).
    pub congestion: CongestionAlgorithm,
    /// Pacing rate in bytes/s; `None` when the connection does not pace.
    pub pacing_rate: Option<u64>,
    /// Latest valid delivery-rate sample in bytes/s.
    pub delivery_rate: u64,
    /// BBR's bandwidth estimate in bytes/s.
    pub bbr_bw: Option<u64>,
    /// BBR's state ("startup", "drain", "probe_bw_down", ..., "probe_rtt").
    pub bbr_state: Option<&'static str>,
    pub bbr_pacing_gain: Option<f64>,
    pub bbr_cwnd_gain: Option<f64>,
    pub in_slow_start: bool,
    /// In a fast-recovery or RTO-recovery episode.
    pub in_recovery: bool,
    /// Bytes in flight by RFC 6675 `pipe`.
    pub pipe: u32,
    /// Segments currently SACKed, and bytes marked lost and not yet repaired.
    pub sacked: u32,
    pub lost: u32,
    /// Bytes of retransmissions currently in flight.
    pub retrans_in_flight: u32,
    /// RACK saw reordering; its reordering window multiplier (RFC 8985 §6.2).
    pub reordering_seen: bool,
    pub reo_wnd_mult: u32,
    pub snd_wnd: u32,
    /// Receive window currently announced.
    pub rcv_wnd: u32,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    pub timestamps: bool,
    pub sack: bool,
    pub bytes_sent: u64,
    pub bytes_retrans: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub segs_out: u64,
    pub segs_in: u64,
    pub data_segs_out: u64,
    pub data_segs_in: u64,
    pub total_retrans: u64,
    pub dsack_received: u64,
    /// RTOs that repaired a SACK reneging: the peer discarded data it had SACKed (RFC 2018 §8).
    pub sack_reneging: u64,
    /// Retransmission timeouts (reneging repairs included) found spurious and undone
    /// (RFC 3522 Eifel, RFC 5682 F-RTO or RFC 3708 D-SACK detection, RFC 4015 response).
    pub spurious_rto_undone: u64,
    pub unacked: u32,
    pub last_send: Duration,
    pub last_recv: Duration,
    /// Bytes queued in the send buffer (unacked + unsent).
    pub send_queue: usize,
    /// Bytes waiting for the application in the receive buffer.
    pub recv_queue: usize,
}

impl Connection {
    pub fn info(&self, now: Instant) -> TcpInfo {
        let rtt = self.recovery.rtt();
        let board = self.recovery.scoreboard();
        let cc = self.cc.info();
        TcpInfo {
            tuple: self.tuple,
            state: self.state,
            rtt: rtt.srtt(),
            rttvar: rtt.rttvar(),
            min_rtt: rtt.min_rtt(),
            rto: rtt.rto(),
            backoff: rtt.backoff(),
            snd_mss: self.snd_mss,
            rcv_mss: self.rcv_mss,
            cwnd: cc.cwnd,
            ssthresh: cc.ssthresh,
            congestion: cc.algorithm,
            pacing_rate: self.pacer.rate(),
            delivery_rate: self.delivery_rate,
            bbr_bw: cc.bw,
            bbr_state: cc.bbr_state,
            bbr_pacing_gain: cc.pacing_gain,
            bbr_cwnd_gain: cc.cwnd_gain,
            in_slow_start: cc.in_slow_start,
            in_recovery: self.recovery.in_recovery(),
            pipe: self.recovery.pipe(),
            sacked: board.sacked_segments(),
            lost: board.lost_bytes(),
            retrans_in_flight: board.retrans_bytes(),
            reordering_seen: self.recovery.rack().reordering_seen(),
            reo_wnd_mult: self.recovery.rack().reo_wnd_mult(),
            snd_wnd: self.snd_wnd,
            rcv_wnd: (self.rcv_adv - self.rcv_nxt).max(0) as u32,
            snd_wscale: self.snd_wscale,
            rcv_wscale: self.rcv_wscale,
            timestamps: self.ts.is_some(),
            sack: self.sack_ok,
            bytes_sent: self.counters.bytes_sent,
            bytes_retrans: self.counters.bytes_retrans,
            bytes_acked: self.counters.bytes_acked,
            bytes_received: self.counters.bytes_received,
            segs_out: self.counters.segs_out,
            segs_in: self.counters.segs_in,
            data_segs_out: self.counters.data_segs_out,
            data_segs_in: self.counters.data_segs_in,
            total_retrans: self.counters.total_retrans,
            dsack_received: self.counters.dsack_received,
            sack_reneging: self.counters.sack_reneging,
            spurious_rto_undone: self.counters.spurious_rto_undone,
            unacked: self.flight_size(),
            last_send: now - self.last_send,
            last_recv: now - self.last_recv,
            send_queue: self.sndbuf.len(),
            recv_queue: self.rcvbuf.len(),
        }
    }
}
