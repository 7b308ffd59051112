//! Congestion control behind one enum (static dispatch, no trait objects).
//!
//! The connection's loss-recovery logic (dup-ACK counting, the NewReno `recover` point, RTO
//! handling) decides *when* a congestion event happens; the controller only decides *how the
//! window reacts*. The method set is the seam the next issue fills with CUBIC and BBR:
//! `on_ack` (with the RTT estimator, for delay-based and rate-based controllers),
//! `on_congestion_event`, `on_rto`, the fast-recovery hooks, `window` and `pacing_rate`.
//! Per-packet delivery-rate samples (BBR) will arrive through `on_ack`'s [`AckSample`].

mod newreno;

pub use newreno::NewReno;

use super::rtt::RttEstimator;
use crate::time::Instant;

/// Which algorithm a socket uses (a socket option; more variants come with CUBIC/BBR).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CongestionAlgorithm {
    #[default]
    NewReno,
}

/// What one cumulative ACK delivered; the hook for rate-sampling controllers.
#[derive(Clone, Copy, Debug)]
pub struct AckSample {
    /// Bytes newly acknowledged by this ACK.
    pub acked: u32,
    /// Bytes in flight before this ACK was processed.
    pub flight_before: u32,
    /// Time the ACK arrived.
    pub now: Instant,
}

/// The congestion controller of one connection.
#[derive(Clone, Debug)]
pub enum CongestionController {
    NewReno(NewReno),
}

impl CongestionController {
    /// Creates the controller for `algorithm` with the initial window of RFC 6928 for `mss`.
    pub fn new(algorithm: CongestionAlgorithm, mss: u32, initial_window_segments: u32) -> Self {
        match algorithm {
            CongestionAlgorithm::NewReno => {
                CongestionController::NewReno(NewReno::new(mss, initial_window_segments))
            }
        }
    }

    pub fn algorithm(&self) -> CongestionAlgorithm {
        match self {
            CongestionController::NewReno(_) => CongestionAlgorithm::NewReno,
        }
    }

    /// The congestion window in bytes.
    pub fn window(&self) -> u32 {
        match self {
            CongestionController::NewReno(c) => c.cwnd(),
        }
    }

    pub fn ssthresh(&self) -> u32 {
        match self {
            CongestionController::NewReno(c) => c.ssthresh(),
        }
    }

    /// New data was cumulatively acknowledged outside fast recovery.
    pub fn on_ack(&mut self, sample: AckSample, rtt: &RttEstimator) {
        let _ = rtt;
        match self {
            CongestionController::NewReno(c) => c.on_ack(sample.acked),
        }
    }

    /// Loss detected by duplicate ACKs: enter fast recovery (RFC 5681 §3.2 steps 2-3).
    pub fn on_congestion_event(&mut self, flight: u32) {
        match self {
            CongestionController::NewReno(c) => c.on_fast_retransmit(flight),
        }
    }

    /// Another duplicate ACK during fast recovery (RFC 5681 §3.2 step 4: inflate).
    pub fn on_recovery_dup_ack(&mut self) {
        match self {
            CongestionController::NewReno(c) => c.inflate(),
        }
    }

    /// A partial ACK during recovery (RFC 6582 §3.2 step 5: deflate by `acked`, add one MSS).
    pub fn on_partial_ack(&mut self, acked: u32) {
        match self {
            CongestionController::NewReno(c) => c.partial_ack(acked),
        }
    }

    /// A full ACK ended recovery (RFC 6582 §3.2 step 6).
    pub fn on_recovery_exit(&mut self, flight: u32) {
        match self {
            CongestionController::NewReno(c) => c.exit_recovery(flight),
        }
    }

    /// Retransmission timeout (RFC 5681 §3.1 eq. 4 and the loss window).
    pub fn on_rto(&mut self, flight: u32) {
        match self {
            CongestionController::NewReno(c) => c.on_rto(flight),
        }
    }

    /// Sending resumes after an idle period longer than the RTO (RFC 5681 §4.1): restart from at
    /// most the initial window `restart_window` (bytes).
    pub fn on_idle_restart(&mut self, restart_window: u32) {
        match self {
            CongestionController::NewReno(c) => c.restart_after_idle(restart_window),
        }
    }

    /// The path MSS changed (PMTU discovery, RFC 1191).
    pub fn set_mss(&mut self, mss: u32) {
        match self {
            CongestionController::NewReno(c) => c.set_mss(mss),
        }
    }

    /// Pacing rate in bytes per second, if this controller paces (NewReno does not).
    pub fn pacing_rate(&self, rtt: &RttEstimator) -> Option<u64> {
        let _ = rtt;
        match self {
            CongestionController::NewReno(_) => None,
        }
    }
}
