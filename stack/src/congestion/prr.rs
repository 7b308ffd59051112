//! Proportional Rate Reduction (RFC 6937).
//!
//! **Owns** the per-recovery counters `RecoverFS`, `prr_delivered` and `prr_out`, and computes how
//! much may be sent on each ACK during a reduction so that the window shrinks smoothly from
//! `RecoverFS` to `ssthresh` over one round trip instead of stalling (RFC 6937 §1).
//!
//! **Promises** pure integer arithmetic that never panics or overflows (u64 counters fed u32
//! values), and a `sndcnt` that never exceeds what the chosen reduction bound allows.
//!
//! The loss-based controllers use it internally: on each ACK in recovery they set
//! `cwnd = pipe + sndcnt`, which is how Linux applies PRR; the engine only has to report sends
//! through `on_packet_sent`.

/// Which bound applies once `pipe` has fallen to `ssthresh` (RFC 6937 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum PrrMode {
    /// PRR-SSRB: grow back towards `ssthresh` at most one MSS faster than data is delivered
    /// (slow-start-like). The RFC's and Linux's default.
    #[default]
    SlowStartReductionBound,
    /// PRR-CRB: strict packet conservation; never send more than was delivered.
    ConservativeReductionBound,
}

/// The PRR state of one recovery episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prr {
    mode: PrrMode,
    /// `RecoverFS`: `snd.nxt - snd.una` when recovery started.
    recover_fs: u64,
    /// Bytes delivered to the receiver since recovery started.
    prr_delivered: u64,
    /// Bytes sent since recovery started.
    prr_out: u64,
}

impl Prr {
    pub fn new(mode: PrrMode) -> Self {
        Prr { mode, ..Prr::default() }
    }

    /// Starts a recovery episode (RFC 6937 §3, "on entering recovery").
    pub fn enter(&mut self, recover_fs: u32) {
        self.recover_fs = u64::from(recover_fs.max(1));
        self.prr_delivered = 0;
        self.prr_out = 0;
    }

    /// Counts a transmission (new data or retransmission) made during recovery.
    pub fn on_sent(&mut self, bytes: u32) {
        self.prr_out = self.prr_out.saturating_add(u64::from(bytes));
    }

    /// Bytes that may be sent in response to an ACK that delivered `delivered_data` bytes, with
    /// `pipe` bytes left in flight (RFC 6937 §3.1).
    pub fn sndcnt(&mut self, delivered_data: u32, pipe: u32, ssthresh: u32, mss: u32) -> u32 {
        let delivered_data = u64::from(delivered_data);
        let (pipe, ssthresh, mss) = (u64::from(pipe), u64::from(ssthresh), u64::from(mss));
        self.prr_delivered = self.prr_delivered.saturating_add(delivered_data);
        let sndcnt = if pipe > ssthresh {
            // Proportional part: send ssthresh/RecoverFS of what was delivered, rounded up.
            let target =
                (u128::from(self.prr_delivered) * u128::from(ssthresh)).div_ceil(u128::from(self.recover_fs));
            u64::try_from(target).unwrap_or(u64::MAX).saturating_sub(self.prr_out)
        } else {
            let conservation = self.prr_delivered.saturating_sub(self.prr_out);
            let limit = match self.mode {
                PrrMode::ConservativeReductionBound => conservation,
                PrrMode::SlowStartReductionBound => conservation.max(delivered_data).saturating_add(mss),
            };
            (ssthresh - pipe).min(limit)
        };
        // The fast retransmit itself must go out even if the arithmetic says 0 (RFC 6937 §3:
        // "the first retransmission ... is sent as soon as recovery starts").
        let sndcnt = if self.prr_out == 0 { sndcnt.max(mss) } else { sndcnt };
        sndcnt.min(u64::from(u32::MAX)) as u32
    }

    pub fn recover_fs(&self) -> u64 {
        self.recover_fs
    }
    pub fn prr_delivered(&self) -> u64 {
        self.prr_delivered
    }
    pub fn prr_out(&self) -> u64 {
        self.prr_out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;

    /// Recovery with 20 segments outstanding, ssthresh = 10 segments, one segment lost; each ACK
    /// delivers one segment and the sender sends exactly what PRR allows.
    fn run(mode: PrrMode, acks: u32) -> (u64, u64) {
        let mut prr = Prr::new(mode);
        prr.enter(20 * MSS);
        let mut pipe = 19 * MSS;
        for _ in 0..acks {
            pipe -= MSS;
            let n = prr.sndcnt(MSS, pipe, 10 * MSS, MSS);
            prr.on_sent(n);
            pipe += n;
        }
        (prr.prr_delivered(), prr.prr_out())
    }

    #[test]
    fn sends_ssthresh_over_recover_fs_of_delivered() {
        let (delivered, out) = run(PrrMode::SlowStartReductionBound, 18);
        // ssthresh/RecoverFS = 1/2: about one segment out for every two delivered.
        let ratio = out as f64 / delivered as f64;
        assert!((ratio - 0.5).abs() < 0.06, "out {out} delivered {delivered}");
    }

    #[test]
    fn first_ack_allows_the_fast_retransmit() {
        let mut prr = Prr::new(PrrMode::SlowStartReductionBound);
        prr.enter(20 * MSS);
        assert_eq!(prr.sndcnt(0, 19 * MSS, 10 * MSS, MSS), MSS);
    }

    #[test]
    fn below_ssthresh_ssrb_grows_one_mss_beyond_delivery_and_crb_does_not() {
        for (mode, expect) in
            [(PrrMode::SlowStartReductionBound, 3 * MSS), (PrrMode::ConservativeReductionBound, 2 * MSS)]
        {
            let mut prr = Prr::new(mode);
            prr.enter(20 * MSS);
            prr.on_sent(5 * MSS);
            prr.prr_delivered = u64::from(6 * MSS);
            // pipe far below ssthresh (heavy losses): 2 MSS delivered but not yet sent again;
            // PRR-CRB sends exactly that, PRR-SSRB one MSS more.
            assert_eq!(prr.sndcnt(MSS, 2 * MSS, 10 * MSS, MSS), expect, "{mode:?}");
        }
    }

    #[test]
    fn never_exceeds_the_gap_to_ssthresh() {
        let mut prr = Prr::new(PrrMode::SlowStartReductionBound);
        prr.enter(20 * MSS);
        prr.on_sent(MSS);
        assert_eq!(prr.sndcnt(50 * MSS, 9 * MSS, 10 * MSS, MSS), MSS);
    }

    #[test]
    fn absurd_inputs_do_not_panic() {
        let mut prr = Prr::new(PrrMode::SlowStartReductionBound);
        prr.enter(0);
        prr.on_sent(u32::MAX);
        for _ in 0..4 {
            let _ = prr.sndcnt(u32::MAX, u32::MAX, u32::MAX, u32::MAX);
            let _ = prr.sndcnt(u32::MAX, 0, u32::MAX, u32::MAX);
        }
    }
}
