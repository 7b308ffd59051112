//! RACK-TLP loss detection (RFC 8985): time-based loss marking and the tail loss probe.
//!
//! **Owns** the RACK state (`RACK.xmit_ts`, `end_seq`, `rtt`, `fack`, the reordering window and
//! its D-SACK adaptation, RFC 8985 §6) and the TLP episode (`TLP.end_seq`, `TLP.is_retrans`,
//! §7). It reads and marks the [`Scoreboard`] it is handed.
//!
//! **Promises:** loss detection walks the segments in *transmission* order from the oldest and
//! stops at the first one that is not yet due, so one call costs O(1 + segments marked lost).
//! Timers are returned as deadlines; nothing here reads a clock. No allocation, no panic.
//!
//! **Deviation, deliberate:** RFC 8985 §6.2 step 5 arms the reordering timer for the *latest*
//! pending deadline; we arm it for the earliest (the walk stops there), which detects no later
//! and keeps the walk bounded. When it fires the walk simply runs again.

use super::scoreboard::{Scoreboard, DUP_THRESH};
use super::segments::{not_before, SegmentRecord};
use crate::time::{Duration, Instant};
use crate::wire::SeqNumber;

/// RFC 8985 §6.2: rounds a widened reordering window persists after the last D-SACK.
const REO_WND_PERSIST: u32 = 16;

/// RACK state of one connection (RFC 8985 §6.1).
#[derive(Debug, Clone)]
pub struct Rack {
    /// Transmit time and end of the most recently sent segment known delivered.
    xmit_ts: Option<Instant>,
    end_seq: SeqNumber,
    /// RTT of that segment.
    rtt: Duration,
    /// Highest end sequence delivered (acked or SACKed).
    fack: Option<SeqNumber>,
    reordering_seen: bool,
    reo_wnd_mult: u32,
    reo_wnd_persist: u32,
    dsack_round: Option<SeqNumber>,
}

impl Default for Rack {
    fn default() -> Self {
        Rack::new()
    }
}

/// `(t1, seq1)` was sent after `(t2, seq2)` (RFC 8985 §6.2 RACK_sent_after).
fn sent_after(t1: Instant, seq1: SeqNumber, t2: Instant, seq2: SeqNumber) -> bool {
    t1 > t2 || (t1 == t2 && seq1 > seq2)
}

impl Rack {
    pub fn new() -> Self {
        Rack {
            xmit_ts: None,
            end_seq: SeqNumber(0),
            rtt: Duration::ZERO,
            fack: None,
            reordering_seen: false,
            reo_wnd_mult: 1,
            reo_wnd_persist: REO_WND_PERSIST,
            dsack_round: None,
        }
    }

    pub fn reordering_seen(&self) -> bool {
        self.reordering_seen
    }
    pub fn reo_wnd_mult(&self) -> u32 {
        self.reo_wnd_mult
    }
    /// Reordering proven other than by a D-SACK (the Eifel test found a fast retransmission
    /// unnecessary): from now on the window applies in recovery too (RFC 8985 §6.2 step 4,
    /// Linux's `reord_seen`). Only D-SACKs grow the window: the D-SACK for the same
    /// retransmission follows, and one piece of evidence must not count twice.
    pub fn on_reordering(&mut self) {
        self.reordering_seen = true;
    }
    /// RACK.rtt: the RTT of the most recently sent segment known delivered.
    pub fn rtt(&self) -> Duration {
        self.rtt
    }

    /// Steps 1 and 2 (RFC 8985 §6.2) for one newly acknowledged or SACKed segment.
    /// `tsecr` is the ACK's echoed timestamp when the segment is *cumulatively* acknowledged
    /// (`None` for a SACK, see step 1 below); `min_rtt` the connection's minimum RTT.
    pub fn on_delivered(
        &mut self,
        now: Instant,
        rec: &SegmentRecord,
        tsecr: Option<u32>,
        min_rtt: Option<Duration>,
    ) {
        if rec.retransmits == 0 && self.fack.is_some_and(|f| rec.end() < f) {
            self.reordering_seen = true;
        }
        if self.fack.is_none_or(|f| f < rec.end()) {
            self.fack = Some(rec.end());
        }
        let rtt = now.saturating_duration_since(rec.last_sent);
        if rec.retransmits > 0 {
            // Step 1: an ACK that may be for the original transmission says nothing about the
            // retransmission when the RTT is implausibly short. The timestamp test of RFC 8985
            // step 1 applies only to cumulative ACKs of the segment: a SACK of an out-of-order
            // segment echoes the *older* TS.Recent by design (RFC 7323 §4.3), so that test would
            // discard every SACKed retransmission — a tail loss probe's included — and leave
            // the tail to the RTO. Linux uses the min-RTT test alone for the same reason; the
            // caller passes `tsecr` only for cumulative ACKs.
            let echo_older =
                matches!((tsecr, rec.last_tsval), (Some(e), Some(v)) if (e.wrapping_sub(v) as i32) < 0);
            if echo_older || min_rtt.is_some_and(|m| rtt < m) {
                return;
            }
        }
        self.rtt = rtt;
        if self.xmit_ts.is_none_or(|t| sent_after(rec.last_sent, rec.end(), t, self.end_seq)) {
            self.xmit_ts = Some(rec.last_sent);
            self.end_seq = rec.end();
        }
    }

    /// Steps 1 and 2 for a run of never-retransmitted segments cumulatively acknowledged
    /// together, in sequence and send-time order: `first_end` ends the first, `newest` is the
    /// last. Equal to [`Self::on_delivered`] on each in turn: only the first can be below FACK
    /// (reordering), and FACK, RACK.rtt and `xmit_ts` end at the newest's values.
    pub fn on_delivered_run(
        &mut self,
        now: Instant,
        first_end: SeqNumber,
        newest: &SegmentRecord,
        tsecr: Option<u32>,
        min_rtt: Option<Duration>,
    ) {
        if self.fack.is_some_and(|f| first_end < f) {
            self.reordering_seen = true;
        }
        self.on_delivered(now, newest, tsecr, min_rtt);
    }

    /// Step 4, first half: D-SACK driven widening of the reordering window, once per round,
    /// decaying after 16 recoveries without one.
    pub fn update_reo_wnd(
        &mut self,
        snd_una: SeqNumber,
        snd_nxt: SeqNumber,
        dsack: bool,
        exiting_recovery: bool,
    ) {
        if self.dsack_round.is_some_and(|r| not_before(snd_una, r)) {
            self.dsack_round = None;
        }
        // A D-SACK means a retransmission was unnecessary: the network reorders (RFC 8985
        // §3.4), so from now on the window applies even in recovery.
        if dsack {
            self.reordering_seen = true;
        }
        if self.dsack_round.is_none() && dsack {
            self.dsack_round = Some(snd_nxt);
            self.reo_wnd_mult = self.reo_wnd_mult.saturating_add(1).min(1 << 16);
            self.reo_wnd_persist = REO_WND_PERSIST;
        } else if exiting_recovery {
            self.reo_wnd_persist = self.reo_wnd_persist.saturating_sub(1);
            if self.reo_wnd_persist == 0 {
                self.reo_wnd_mult = 1;
                self.reo_wnd_persist = REO_WND_PERSIST;
            }
        }
    }

    /// Step 4, second half: the reordering window, `min_rtt/4 · mult` capped at SRTT; zero
    /// while no reordering was seen and the sender is in recovery or has DupThresh SACKs.
    pub fn reo_wnd(
        &self,
        in_recovery: bool,
        sacked_segments: u32,
        min_rtt: Option<Duration>,
        srtt: Option<Duration>,
    ) -> Duration {
        if !self.reordering_seen && (in_recovery || sacked_segments >= DUP_THRESH) {
            return Duration::ZERO;
        }
        let base = min_rtt
            .unwrap_or(Duration::ZERO)
            .checked_div_or_zero(4)
            .saturating_mul(u64::from(self.reo_wnd_mult));
        srtt.map_or(base, |s| if base > s { s } else { base })
    }

    /// True when [`Self::detect_loss`] would stop at the oldest outstanding transmission at
    /// once: nothing delivered yet, nothing outstanding, or the oldest was sent after the RACK
    /// point (no loss to mark, no reordering timer), whatever the reordering window.
    pub fn nothing_due(&self, board: &Scoreboard) -> bool {
        let Some(rack_ts) = self.xmit_ts else { return true };
        let Some(slot) = board.store.oldest_tx_slot() else { return true };
        let rec = board.store.by_slot(slot);
        !sent_after(rack_ts, self.end_seq, rec.last_sent, rec.end())
    }

    /// Step 5: marks lost every segment sent before the most recently delivered one whose
    /// `xmit_ts + rack.rtt + reo_wnd` has passed. Returns the bytes newly marked lost and the
    /// deadline of the first segment that is not yet due (the RACK reordering timer).
    pub fn detect_loss(
        &mut self,
        now: Instant,
        board: &mut Scoreboard,
        reo_wnd: Duration,
    ) -> (u32, Option<Instant>) {
        let Some(rack_ts) = self.xmit_ts else { return (0, None) };
        let mut lost = 0;
        let mut cursor = board.store.oldest_tx_slot();
        while let Some(slot) = cursor {
            cursor = board.store.next_tx_slot(slot);
            let rec = *board.store.by_slot(slot);
            if !sent_after(rack_ts, self.end_seq, rec.last_sent, rec.end()) {
                break;
            }
            let deadline = rec.last_sent + self.rtt + reo_wnd;
            if deadline > now {
                return (lost, Some(deadline));
            }
            let pos = board.store.pos_of_slot(slot);
            lost += board.mark_lost(pos);
        }
        (lost, None)
    }
}

/// Smallest PTO: Linux's `TCP_TIMEOUT_MIN`-based floor for the probe timer (10 ms).
pub const MIN_PTO: Duration = Duration::from_millis(10);

/// The tail loss probe episode (RFC 8985 §7).
#[derive(Debug, Clone, Copy, Default)]
pub struct Tlp {
    /// SND.NXT after the probe was sent; `None` when no probe is outstanding.
    pub end_seq: Option<SeqNumber>,
    /// The probe was a retransmission (only then can it hide a loss, §7.4).
    pub is_retrans: bool,
    /// The PTO fired and the next transmission is the probe.
    pub probe_pending: bool,
}

/// What an ACK told the TLP episode (RFC 8985 §7.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlpVerdict {
    /// No episode, or nothing decided yet.
    Pending,
    /// The episode ended without evidence of a loss.
    NoLoss,
    /// The ACK covers the probe without a D-SACK for it: the probe repaired a real loss, so
    /// the congestion controller must reduce as for any loss.
    LossRepaired,
}

impl Tlp {
    /// RFC 8985 §7.2: PTO = 2·SRTT, plus the worst-case delayed ACK when only one segment is in
    /// flight, 1 s before any RTT sample. Never below [`MIN_PTO`]: a near-zero SRTT (a LAN, or
    /// a handshake timed inside one host) must not turn every ACK gap into a probe.
    pub fn pto(srtt: Option<Duration>, one_segment_in_flight: bool, max_ack_delay: Duration) -> Duration {
        match srtt {
            None => Duration::from_secs(1),
            Some(s) => {
                let pto = s.saturating_mul(2).max(MIN_PTO);
                if one_segment_in_flight {
                    pto + max_ack_delay
                } else {
                    pto
                }
            }
        }
    }

    /// §7.3: the probe went out; `snd_nxt` is SND.NXT after it.
    pub fn on_probe_sent(&mut self, snd_nxt: SeqNumber, is_retransmit: bool) {
        self.end_seq = Some(snd_nxt);
        self.is_retrans = is_retransmit;
        self.probe_pending = false;
    }

    /// §7.4.2: processes an ACK during an episode. `progress` says the ACK advanced `snd_una`
    /// or SACKed new data (it is not a pure duplicate).
    pub fn on_ack(&mut self, ack: SeqNumber, dsack: bool, progress: bool) -> TlpVerdict {
        let Some(end) = self.end_seq else { return TlpVerdict::Pending };
        if ack < end {
            return TlpVerdict::Pending;
        }
        if !self.is_retrans || dsack {
            self.end_seq = None;
            return TlpVerdict::NoLoss;
        }
        if ack > end {
            self.end_seq = None;
            return TlpVerdict::LossRepaired;
        }
        if !progress {
            // A pure duplicate at the probe's end: both copies arrived.
            self.end_seq = None;
            return TlpVerdict::NoLoss;
        }
        TlpVerdict::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::{LossRecovery, RecoveryConfig, RecoveryTimer, SentSegment};

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn pto_is_two_srtt_plus_the_delayed_ack_for_one_segment() {
        // RFC 8985 §7.2.
        assert_eq!(Tlp::pto(None, false, MS(200)), Duration::from_secs(1));
        assert_eq!(Tlp::pto(Some(MS(50)), false, MS(200)), MS(100));
        assert_eq!(Tlp::pto(Some(MS(50)), true, MS(200)), MS(300));
        assert_eq!(Tlp::pto(Some(Duration::from_micros(100)), false, MS(200)), MIN_PTO);
    }

    #[test]
    fn pto_never_fires_after_the_rto_would() {
        let mut lr = LossRecovery::new(RecoveryConfig::default(), SeqNumber(1000));
        let t0 = Instant::from_millis(1_000);
        lr.rtt_mut().on_sample(t0, MS(50));
        let seg = |seq: u32| SentSegment { seq: SeqNumber(seq), len: 1000, ..SentSegment::default() };
        lr.on_sent(t0, &seg(1000)).unwrap();
        // One segment: 2·SRTT + WCDelAckT = 300 ms, capped by the RTO deadline.
        let rto = lr.rtt().rto();
        assert!(rto < MS(300), "{rto:?}");
        assert_eq!(lr.next_timer(), Some((t0 + rto, RecoveryTimer::Tlp)));
        // A second segment 10 ms later: 2·SRTT from then, still within the RTO.
        lr.on_sent(t0 + MS(10), &seg(2000)).unwrap();
        assert_eq!(lr.next_timer(), Some((t0 + MS(110), RecoveryTimer::Tlp)));
        // The probe goes out: the RTO, not a second PTO, guards the flight (§7.3).
        let out = lr.on_timeout(t0 + MS(110), RecoveryTimer::Tlp);
        assert_eq!(out.probe, Some(Some((SeqNumber(2000), 1000))));
        let probe = SentSegment { is_retransmit: true, ..seg(2000) };
        lr.on_sent(t0 + MS(110), &probe).unwrap();
        assert_eq!(lr.next_timer(), Some((t0 + MS(110) + rto, RecoveryTimer::Rto)));
        assert_eq!(lr.tlp().end_seq, Some(SeqNumber(3000)));
    }

    #[test]
    fn tlp_episode_verdicts_follow_rfc_8985_section_7_4() {
        let end = SeqNumber(5000);
        let probe = |is_retrans| Tlp { end_seq: Some(end), is_retrans, probe_pending: false };
        // Below the probe's end: nothing decided.
        assert_eq!(probe(true).on_ack(SeqNumber(4000), false, true), TlpVerdict::Pending);
        // A probe of new data cannot hide a loss.
        assert_eq!(probe(false).on_ack(end, false, true), TlpVerdict::NoLoss);
        // A D-SACK for the probe: both copies arrived.
        assert_eq!(probe(true).on_ack(end, true, false), TlpVerdict::NoLoss);
        // A pure duplicate at the end: both copies arrived, the D-SACK was lost.
        assert_eq!(probe(true).on_ack(end, false, false), TlpVerdict::NoLoss);
        // The cumulative ACK reaches the end with progress: wait for the next one (as Linux).
        assert_eq!(probe(true).on_ack(end, false, true), TlpVerdict::Pending);
        // Beyond the end without a D-SACK: the probe repaired a loss.
        let mut tlp = probe(true);
        assert_eq!(tlp.on_ack(end + 1000, false, true), TlpVerdict::LossRepaired);
        assert_eq!(tlp.end_seq, None, "one verdict per episode");
        assert_eq!(tlp.on_ack(end + 2000, false, true), TlpVerdict::Pending);
    }
}
