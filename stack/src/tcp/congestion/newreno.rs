//! NewReno window arithmetic: slow start, congestion avoidance (RFC 5681), fast recovery window
//! inflation/deflation (RFC 6582), initial window of RFC 6928.

/// NewReno state in bytes.
#[derive(Clone, Debug)]
pub struct NewReno {
    mss: u32,
    cwnd: u32,
    ssthresh: u32,
    /// Bytes acked since cwnd last grew in congestion avoidance (RFC 5681 §3.1, byte counting).
    bytes_acked: u32,
}

impl NewReno {
    /// RFC 6928: IW = min(10*MSS, max(2*MSS, 14600)) for the default of 10 segments.
    pub fn new(mss: u32, initial_window_segments: u32) -> Self {
        let mss = mss.max(1);
        let n = initial_window_segments.max(1);
        // RFC 6928 §2 generalised to n segments: min(n*MSS, max(2*MSS, n*1460)).
        let iw = (n * mss).min((2 * mss).max(n * 1460));
        NewReno { mss, cwnd: iw, ssthresh: u32::MAX, bytes_acked: 0 }
    }

    pub fn cwnd(&self) -> u32 {
        self.cwnd
    }

    pub fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    /// RFC 5681 §3.1: slow start grows by at most 2*SMSS per ACK (RFC 3465 L = 2); congestion
    /// avoidance grows by one SMSS per cwnd of acknowledged bytes.
    pub fn on_ack(&mut self, acked: u32) {
        if self.cwnd < self.ssthresh {
            self.cwnd = self.cwnd.saturating_add(acked.min(2 * self.mss));
        } else {
            self.bytes_acked = self.bytes_acked.saturating_add(acked);
            if self.bytes_acked >= self.cwnd {
                self.bytes_acked -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(self.mss);
            }
        }
    }

    /// RFC 5681 eq. 4: ssthresh = max(FlightSize / 2, 2*SMSS); cwnd = ssthresh + 3*SMSS.
    pub fn on_fast_retransmit(&mut self, flight: u32) {
        self.ssthresh = (flight / 2).max(2 * self.mss);
        self.cwnd = self.ssthresh + 3 * self.mss;
        self.bytes_acked = 0;
    }

    pub fn inflate(&mut self) {
        self.cwnd = self.cwnd.saturating_add(self.mss);
    }

    /// RFC 6582 §3.2 step 5: deflate by the newly acked amount, add back one SMSS.
    pub fn partial_ack(&mut self, acked: u32) {
        self.cwnd = self.cwnd.saturating_sub(acked).saturating_add(self.mss).max(self.mss);
    }

    /// RFC 6582 §3.2 step 6 option 1: cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS).
    pub fn exit_recovery(&mut self, flight: u32) {
        self.cwnd = self.ssthresh.min(flight.max(self.mss) + self.mss);
        self.bytes_acked = 0;
    }

    /// RFC 5681 §3.1: on timeout ssthresh = max(FlightSize/2, 2*SMSS) and cwnd = LW = 1 SMSS.
    pub fn on_rto(&mut self, flight: u32) {
        self.ssthresh = (flight / 2).max(2 * self.mss);
        self.cwnd = self.mss;
        self.bytes_acked = 0;
    }

    /// RFC 5681 §4.1: cwnd = min(RW, cwnd) with RW the initial window; ssthresh is kept.
    pub fn restart_after_idle(&mut self, restart_window: u32) {
        self.cwnd = self.cwnd.min(restart_window.max(self.mss));
        self.bytes_acked = 0;
    }

    pub fn set_mss(&mut self, mss: u32) {
        self.mss = mss.max(1);
        self.cwnd = self.cwnd.max(self.mss);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_window_is_rfc6928_iw10() {
        assert_eq!(NewReno::new(1460, 10).cwnd(), 14600);
        assert_eq!(NewReno::new(536, 10).cwnd(), 5360);
        assert_eq!(NewReno::new(9000, 10).cwnd(), 18000);
    }

    #[test]
    fn slow_start_then_congestion_avoidance() {
        let mut c = NewReno::new(1000, 10);
        c.on_ack(1000);
        assert_eq!(c.cwnd(), 11000);
        c.on_rto(20000);
        assert_eq!((c.cwnd(), c.ssthresh()), (1000, 10000));
        for _ in 0..9 {
            c.on_ack(1000);
        }
        assert_eq!(c.cwnd(), 10000);
        for _ in 0..10 {
            c.on_ack(1000);
        }
        assert_eq!(c.cwnd(), 11000);
    }

    #[test]
    fn fast_recovery_inflates_and_deflates() {
        let mut c = NewReno::new(1000, 10);
        c.on_fast_retransmit(10000);
        assert_eq!(c.cwnd(), 8000);
        c.inflate();
        assert_eq!(c.cwnd(), 9000);
        c.partial_ack(3000);
        assert_eq!(c.cwnd(), 7000);
        c.exit_recovery(2000);
        assert_eq!(c.cwnd(), 3000);
    }
}
