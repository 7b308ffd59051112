//! Per-connection information, like `ss -ti`.

use super::congestion::CongestionAlgorithm;
use super::connection::{Connection, FourTuple};
use super::state::State;
use crate::time::{Duration, Instant};

/// A snapshot of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpInfo {
    pub tuple: FourTuple,
    pub state: State,
    pub rtt: Option<Duration>,
    pub rttvar: Duration,
    pub min_rtt: Option<Duration>,
    pub rto: Duration,
    pub backoff: u32,
    /// Effective send MSS.
    pub snd_mss: u32,
    /// Estimated receive MSS.
    pub rcv_mss: u32,
    pub cwnd: u32,
    pub ssthresh: u32,
    pub congestion: CongestionAlgorithm,
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
    pub unacked: u32,
    /// Bytes/s acknowledged recently.
    pub delivery_rate: u64,
    pub last_send: Duration,
    pub last_recv: Duration,
    /// Bytes queued in the send buffer (unacked + unsent).
    pub send_queue: usize,
    /// Bytes waiting for the application in the receive buffer.
    pub recv_queue: usize,
}

impl Connection {
    pub fn info(&self, now: Instant) -> TcpInfo {
        TcpInfo {
            tuple: self.tuple,
            state: self.state,
            rtt: self.rtt.srtt(),
            rttvar: self.rtt.rttvar(),
            min_rtt: (self.rtt.min_rtt() != Duration::MAX).then(|| self.rtt.min_rtt()),
            rto: self.rtt.rto(),
            backoff: self.rtt.backoff(),
            snd_mss: self.snd_mss,
            rcv_mss: self.rcv_mss,
            cwnd: self.cc.window(),
            ssthresh: self.cc.ssthresh(),
            congestion: self.cc.algorithm(),
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
            unacked: self.flight_size(),
            delivery_rate: self.delivery_rate,
            last_send: now - self.last_send,
            last_recv: now - self.last_recv,
            send_queue: self.sndbuf.len(),
            recv_queue: self.rcvbuf.len(),
        }
    }
}
