//! Loss recovery: which sent segments are delivered, lost or worth resending, and when to look.
//!
//! **Owns**, per connection, the sender's segment records ([`segments`]), the SACK scoreboard
//! with RFC 6675 `pipe`/`IsLost`/`NextSeg` ([`scoreboard`]), RACK-TLP (RFC 8985, [`rack`]), RTT
//! estimation and the RFC 6298 retransmission timer ([`rtt`]), recovery episodes, D-SACK based
//! undo (RFC 3708-style), the Eifel undo of fast recovery (RFC 3522; [`spurious_recovery`]),
//! the detection and undo of spurious retransmission timeouts and reneging repairs (RFC 3522
//! Eifel, RFC 3708, RFC 4015 response; [`spurious_rto`]) and the limited-transmit allowance
//! (RFC 3042). [`LossRecovery`] is the facade the engine holds.
//!
//! **Promises:** sans-I/O (`now` is an argument, timers come back as deadlines), deterministic,
//! allocation-free after construction, bounded work per ACK (see [`scoreboard`]), no panic on
//! any ACK a peer can send.
//!
//! **Does not** hold payload bytes, build segments or change the congestion window: the engine
//! reads [`AckOutcome`]/[`TimeoutOutcome`] and calls the congestion controller:
//! `congestion_event` → `on_congestion_event` (with `newly_lost`), `recovery_exited` →
//! `on_recovery_exit`, `spurious_congestion_event` → `on_spurious_congestion_event` (with
//! `spurious_rto`, a timeout was undone: its backoff and loss marks are already gone),
//! `tlp_loss_repaired` → `on_congestion_event` then `on_recovery_exit` (RFC 8985 §7.4.2), an RTO
//! → `on_retransmit_timeout`. Each delivered segment's [`PacketSnapshot`] is handed to the
//! caller's closure for the delivery-rate estimator.
//!
//! Decisions worth knowing: RACK-TLP is the default loss detection, RFC 6675 DupThresh
//! marking is optional ([`LossDetection`]); RTT samples come from the most recently sent
//! never-retransmitted segment an ACK newly acknowledges *or SACKs* (Karn, as Linux does); a
//! D-SACK counts as evidence of reordering for RACK (a fast retransmission the Eifel test
//! undoes marks reordering seen but leaves the window's growth to its D-SACK); the PTO is always capped by the RTO
//! deadline (RFC 8985 §7.2) and a dup ACK never postpones it; SACKed segments keep their marks
//! across an RTO unless the receiver reneged (the segment at `snd_una` stayed SACKed after an
//! ACK: see [`reneging`], which then clears every mark and resends from `snd_una`); records
//! are never split, so a SACK block covering part of a segment is counted and ignored; a
//! cumulative ACK releases a run of clean records (never SACKed, lost or retransmitted, sent in
//! order) in one step and reports it once ([`Delivery::AckedRun`]), which leaves RACK, the RTT
//! sample and the rate estimator exactly where per-record reports would.
//!
//! Driving it: [`LossRecovery::on_sent`] for every transmission; [`LossRecovery::on_ack`] for
//! every ACK, or first [`LossRecovery::on_clean_ack`] for one without SACK blocks (the bulk
//! ACK fast path, `clean_ack.rs`); [`LossRecovery::next_timer`] / [`LossRecovery::on_timeout`]
//! for the one timer slot; [`LossRecovery::next_retransmission`] before sending new data.

#[cfg(test)]
mod ack_run_tests;
mod bits;
#[cfg(test)]
mod burst_timer_tests;
mod clean_ack;
#[cfg(test)]
mod clean_ack_tests;
pub mod rack;
pub mod reneging;
pub mod rtt;
pub mod scoreboard;
pub mod segments;
mod spurious_recovery;
#[cfg(test)]
mod spurious_recovery_tests;
mod spurious_rto;
#[cfg(test)]
mod spurious_rto_tests;
#[cfg(test)]
mod test_support;

use crate::congestion::PacketSnapshot;
use crate::time::{Duration, Instant};
use crate::wire::{SackBlock, SeqNumber};

pub use rack::{Rack, Tlp, TlpVerdict};
pub use reneging::Reneging;
pub use rtt::{RttConfig, RttEstimator};
pub use scoreboard::{Delivery, NextSegment, Scoreboard, ScoreboardCounters, DUP_THRESH};
pub use segments::{SegmentRecord, SegmentState, SegmentStore, StoreFull};

use segments::not_before;

/// Which rules mark segments lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LossDetection {
    /// RACK-TLP alone (RFC 8985), as Linux does by default.
    #[default]
    Rack,
    /// RACK plus RFC 6675 DupThresh marking.
    RackAndDupThresh,
    /// RFC 6675 DupThresh only (no RACK marking; TLP still on if enabled, which needs SACK:
    /// see [`LossRecovery::set_tail_loss_probes`]).
    DupThresh,
}

/// Construction parameters of [`LossRecovery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// Most segments in flight (send buffer / MSS, plus slack for small writes).
    pub capacity: usize,
    /// Sender MSS.
    pub smss: u32,
    pub rtt: RttConfig,
    pub loss_detection: LossDetection,
    /// Tail loss probes (RFC 8985 §7).
    pub tlp: bool,
    /// The peer's worst-case delayed-ACK time (RFC 8985 §7.2 WCDelAckT).
    pub max_ack_delay: Duration,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            capacity: 1024,
            smss: 1460,
            rtt: RttConfig::default(),
            loss_detection: LossDetection::default(),
            tlp: true,
            max_ack_delay: Duration::from_millis(200),
        }
    }
}

/// One transmission, as the engine reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SentSegment {
    pub seq: SeqNumber,
    /// Sequence space used (payload, plus one for a FIN).
    pub len: u32,
    pub is_retransmit: bool,
    /// TSval sent, when timestamps are on.
    pub tsval: Option<u32>,
    /// From `DeliveryRateEstimator::on_packet_sent`.
    pub snapshot: PacketSnapshot,
}

/// The three timers sharing the loss-detection slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryTimer {
    /// RACK reordering timer (RFC 8985 §6.2 step 5).
    Rack,
    /// Tail loss probe (RFC 8985 §7.2).
    Tlp,
    /// Retransmission timeout (RFC 6298).
    Rto,
}

/// What one ACK did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AckOutcome {
    /// Bytes by which `snd_una` advanced.
    pub newly_acked: u32,
    pub newly_sacked: u32,
    /// RFC 6937 DeliveredData (for PRR).
    pub delivered: u32,
    /// Bytes newly marked lost by this ACK.
    pub newly_lost: u32,
    pub dsack: Option<(SeqNumber, SeqNumber)>,
    /// RFC 6298 sample (Karn: never from a retransmitted segment).
    pub rtt_sample: Option<Duration>,
    /// `pipe` before and after the ACK.
    pub prior_in_flight: u32,
    pub in_flight: u32,
    /// A loss started a recovery episode: call `on_congestion_event`.
    pub congestion_event: bool,
    /// `snd_una` passed the recovery point: call `on_recovery_exit`.
    pub recovery_exited: bool,
    /// Every retransmission of the episode was D-SACKed, or the Eifel test (after a timeout,
    /// or in fast recovery once every retransmission is acknowledged) found the original
    /// transmission acknowledged: call `on_spurious_congestion_event`.
    pub spurious_congestion_event: bool,
    /// With `spurious_congestion_event`: what was undone was a retransmission timeout (or a
    /// reneging repair); its backoff is cleared and the segments it marked lost and that were
    /// not resent yet are outstanding again ([`spurious_rto`]).
    pub spurious_rto: bool,
    /// The TLP retransmission repaired a loss (RFC 8985 §7.4.2).
    pub tlp_loss_repaired: bool,
    /// The ACK acknowledged data never sent; nothing changed.
    pub ignored: bool,
}

/// What a timer expiry asks of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeoutOutcome {
    /// Bytes newly marked lost (RACK timer or RTO).
    pub newly_lost: u32,
    /// Loss started a recovery episode (RACK timer): call `on_congestion_event`.
    pub congestion_event: bool,
    /// The RTO fired: call `on_retransmit_timeout`, then resend via `next_retransmission`.
    pub rto: bool,
    /// The PTO fired: send one new segment if the windows allow, else retransmit this one
    /// (the highest-sequence outstanding segment), RFC 8985 §7.3.
    pub probe: Option<Option<(SeqNumber, u32)>>,
    /// With `rto`: the receiver reneged on SACKed data (RFC 2018 §8); the SACK marks were
    /// cleared and counted in `newly_lost` ([`reneging`]).
    pub reneged: bool,
}

/// What the segments one ACK delivers tell RACK, the RTT estimator (the Karn sample: the most
/// recently sent never-retransmitted segment, with its send time) and the delivery-rate
/// estimator (through the caller's closure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deliveries {
    pub now: Instant,
    pub tsecr: Option<u32>,
    pub min_rtt: Option<Duration>,
    pub sample: Option<(Instant, Duration)>,
    /// F-RTO (RFC 5682 §3.1 step 3b, [`spurious_rto`]): the recovery point of the timeout
    /// episode being tested; `None` when no F-RTO test runs.
    pub frto_point: Option<SeqNumber>,
    /// A segment sent before the timeout and never retransmitted was newly acknowledged or
    /// SACKed (Linux `FLAG_ORIG_SACK_ACKED`).
    pub original_delivered: bool,
}

impl Deliveries {
    /// Nothing seen yet of the ACK at `now` echoing `tsecr`; `frto_point` as
    /// `LossRecovery::frto_point` says (`None`: no F-RTO test runs).
    pub(crate) fn new(
        now: Instant,
        tsecr: Option<u32>,
        min_rtt: Option<Duration>,
        frto_point: Option<SeqNumber>,
    ) -> Self {
        Deliveries { now, tsecr, min_rtt, sample: None, frto_point, original_delivered: false }
    }

    /// One report of the scoreboard (a record, or a run of clean records).
    pub(crate) fn on_delivered(
        &mut self,
        rack: &mut Rack,
        rec: &SegmentRecord,
        how: Delivery,
        on_delivered: &mut impl FnMut(&PacketSnapshot),
    ) {
        if let Some(point) = self.frto_point {
            let end = match how {
                Delivery::AckedRun { first_end, .. } => first_end,
                _ => rec.end(),
            };
            let fresh = !matches!(how, Delivery::Acked { was_sacked: true });
            self.original_delivered |= fresh && rec.retransmits == 0 && not_before(point, end);
        }
        // A SACK echoes the older TS.Recent (RFC 7323 §4.3): no timestamp test for it.
        let echo = if matches!(how, Delivery::Sacked) { None } else { self.tsecr };
        match how {
            // A SACKed segment was delivered (and timed) when it was SACKed.
            Delivery::Acked { was_sacked: true } => return,
            Delivery::Acked { was_sacked: false } | Delivery::Sacked => {
                rack.on_delivered(self.now, rec, echo, self.min_rtt);
                on_delivered(&rec.snapshot);
            }
            Delivery::AckedRun { first_end, snapshot_bytes, .. } => {
                rack.on_delivered_run(self.now, first_end, rec, echo, self.min_rtt);
                // The estimator keeps the newest snapshot and adds every packet's bytes.
                on_delivered(&PacketSnapshot { bytes: snapshot_bytes, ..rec.snapshot });
            }
        }
        // Karn (RFC 6298 §3): only never-retransmitted segments time the path.
        if rec.retransmits == 0 && self.sample.is_none_or(|(t, _)| t < rec.last_sent) {
            self.sample = Some((rec.last_sent, self.now.saturating_duration_since(rec.last_sent)));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Episode {
    /// RFC 6675 RecoveryPoint: HighData when the episode began.
    point: SeqNumber,
}

/// Undo bookkeeping of the latest recovery episode: RFC 3708 D-SACK counting and the RFC 3522
/// Eifel test for every episode ([`spurious_rto`], [`spurious_recovery`]), F-RTO for a
/// timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Undo {
    /// `snd_una` when the episode began; D-SACKs below it are about older data.
    marker: SeqNumber,
    /// Retransmissions of the episode not yet proven spurious by a D-SACK.
    retrans: u32,
    /// TSval of the episode's first retransmission (Linux `retrans_stamp`), when timestamps
    /// are on: the Eifel test of either kind of episode ([`spurious_rto`],
    /// [`spurious_recovery`]).
    first_tsval: Option<u32>,
    /// The highest end of the episode's retransmissions (`marker` while none was sent).
    retrans_high: SeqNumber,
    /// The F-RTO test (RFC 5682) may still decide this timeout episode.
    frto: bool,
    /// A retransmission of the episode was sent.
    retransmitted: bool,
    /// When the episode's latest retransmission timeout fired; `None` for fast recovery.
    rto_at: Option<Instant>,
}

impl Undo {
    fn new(marker: SeqNumber, rto_at: Option<Instant>) -> Self {
        Undo {
            marker,
            retrans: 0,
            first_tsval: None,
            retrans_high: marker,
            frto: false,
            retransmitted: false,
            rto_at,
        }
    }

    fn on_retransmit(&mut self, end: SeqNumber, tsval: Option<u32>) {
        self.retrans = self.retrans.saturating_add(1);
        if not_before(end, self.retrans_high) {
            self.retrans_high = end;
        }
        if !self.retransmitted {
            self.retransmitted = true;
            self.first_tsval = tsval;
        }
    }
}

/// Per-connection loss recovery state.
#[derive(Debug, Clone)]
pub struct LossRecovery {
    config: RecoveryConfig,
    board: Scoreboard,
    rack: Rack,
    tlp: Tlp,
    rtt: RttEstimator,
    episode: Option<Episode>,
    undo: Option<Undo>,
    rack_timer: Option<Instant>,
    loss_timer: Option<(Instant, RecoveryTimer)>,
    /// When the RFC 6298 timer was last (re)started.
    rto_started: Option<Instant>,
    /// `Some(now)` when the last call was [`Self::on_sent`] of new data at `now` that re-armed
    /// the timer for a flight of two or more segments: another new segment at the same `now`
    /// would re-arm it to the same deadline (nothing the deadline depends on changed), so the
    /// rest of a transmit burst skips the computation. Every other `&mut` call forgets it.
    rearmed_for_flight_at: Option<Instant>,
    /// The SACK reneging check ([`reneging`]).
    reneging: Reneging,
    /// F-RTO detection of spurious timeouts is on ([`Self::set_frto`]).
    frto: bool,
    /// F-RTO step 2b ([`spurious_rto`]): until the next ACK, new data goes before the
    /// retransmissions of the timeout episode.
    frto_new_data: bool,
}

impl LossRecovery {
    /// Loss recovery for a connection whose next byte to send is `snd_una`.
    pub fn new(config: RecoveryConfig, snd_una: SeqNumber) -> Self {
        LossRecovery {
            config,
            board: Scoreboard::new(config.capacity, config.smss, snd_una),
            rack: Rack::new(),
            tlp: Tlp::default(),
            rtt: RttEstimator::new(config.rtt),
            episode: None,
            undo: None,
            rack_timer: None,
            loss_timer: None,
            rto_started: None,
            rearmed_for_flight_at: None,
            reneging: Reneging::default(),
            frto: false,
            frto_new_data: false,
        }
    }

    pub fn scoreboard(&self) -> &Scoreboard {
        &self.board
    }
    pub fn rack(&self) -> &Rack {
        &self.rack
    }
    pub fn tlp(&self) -> &Tlp {
        &self.tlp
    }
    pub fn rtt(&self) -> &RttEstimator {
        &self.rtt
    }
    /// The estimator, for samples taken outside the scoreboard (the handshake's SYN timing).
    pub fn rtt_mut(&mut self) -> &mut RttEstimator {
        self.rearmed_for_flight_at = None;
        &mut self.rtt
    }
    /// The sender MSS changed (negotiation, path MTU): DupThresh and limited transmit follow.
    pub fn set_smss(&mut self, smss: u32) {
        self.rearmed_for_flight_at = None;
        self.config.smss = smss.max(1);
        self.board.set_smss(smss);
    }
    /// Marks the lowest outstanding segment lost (NewReno's partial-ACK rule, RFC 6582 §3.2,
    /// for peers without SACK), dropping a SACK mark guessed for it from duplicate ACKs: the
    /// cumulative ACK stopped there, so it did not arrive. Returns the bytes newly marked lost.
    pub fn mark_front_lost(&mut self) -> u32 {
        self.rearmed_for_flight_at = None;
        if self.board.segments().is_empty() {
            return 0;
        }
        match self.board.unsack(0, true) {
            0 => self.board.mark_lost(0),
            bytes => bytes,
        }
    }
    /// For peers without SACK, outside recovery: the cumulative ACK stopped at the lowest
    /// outstanding segment, so a SACK mark guessed for it from duplicate ACKs was wrong and goes
    /// (it stays outstanding; DupThresh decides whether it is lost).
    pub fn unsack_front(&mut self) {
        self.rearmed_for_flight_at = None;
        self.board.unsack(0, false);
    }
    /// For peers without SACK, after a retransmission timeout: every SACK mark guessed from
    /// duplicate ACKs goes and its segment is lost, so the first retransmission is `snd_una`'s
    /// (RFC 6298 §5.4). Returns the bytes newly marked lost.
    pub fn forget_sacks(&mut self) -> u32 {
        self.rearmed_for_flight_at = None;
        self.board.forget_sacks()
    }
    /// Frees the segment records (TIME-WAIT or CLOSED: nothing will be sent again). Keeps the
    /// RTT estimate for `info`; leaves a one-record store, so later calls stay harmless.
    pub fn release(&mut self) {
        let snd_una = self.board.snd_una();
        self.board = Scoreboard::new(1, self.config.smss, snd_una);
        self.episode = None;
        self.undo = None;
        self.frto_new_data = false;
        self.rack_timer = None;
        self.loss_timer = None;
        self.rto_started = None;
        self.rearmed_for_flight_at = None;
        self.tlp = Tlp::default();
        self.reneging = Reneging::default();
    }
    /// Switches the loss-detection rules (e.g. DupThresh for a peer without SACK).
    pub fn set_loss_detection(&mut self, rules: LossDetection) {
        self.rearmed_for_flight_at = None;
        self.config.loss_detection = rules;
    }
    /// Turns tail loss probes on or off. RFC 8985 §4 requires SACK for RACK-TLP ("the
    /// connection MUST use selective acknowledgment"): without it a probe's ACK cannot say
    /// which segment was missing, so the engine turns them off for peers without SACK and the
    /// RTO repairs tail losses (Linux's `tcp_schedule_loss_probe` also requires `tcp_is_sack`).
    /// An armed probe timer becomes the retransmission timer.
    pub fn set_tail_loss_probes(&mut self, on: bool) {
        self.rearmed_for_flight_at = None;
        self.config.tlp = on;
        if !on {
            self.tlp.probe_pending = false;
            if matches!(self.loss_timer, Some((_, RecoveryTimer::Tlp))) {
                let rto_at = self.rto_started.map(|start| (start + self.rtt.rto(), RecoveryTimer::Rto));
                self.loss_timer = rto_at;
            }
        }
    }
    /// Everything outstanding must be resent (the path MTU shrank, RFC 1191 §6.5): every
    /// un-SACKed segment is marked lost without touching the timers or the RTO backoff.
    /// Returns the bytes newly marked lost. O(n), once per PMTU change.
    pub fn mark_all_lost(&mut self) -> u32 {
        self.rearmed_for_flight_at = None;
        self.board.mark_all_lost()
    }
    /// RFC 6675 pipe: the bytes the network is believed to hold.
    pub fn pipe(&self) -> u32 {
        self.board.pipe()
    }
    /// In fast recovery or RTO recovery.
    pub fn in_recovery(&self) -> bool {
        self.episode.is_some()
    }
    /// A new segment would not fit in the store: stop sending new data.
    pub fn is_full(&self) -> bool {
        self.board.segments().is_full()
    }

    /// Records one transmission. New data must start at the store's end (`snd_nxt`);
    /// `StoreFull` means it was not recorded and must not be sent. Inlined into the sender's
    /// per-segment bookkeeping (both of its callers: `inline(always)`, as two callers made the
    /// compiler keep it out of line), so the segment is not copied once more on the way in.
    #[inline(always)]
    pub fn on_sent(&mut self, now: Instant, seg: &SentSegment) -> Result<(), StoreFull> {
        if !seg.is_retransmit && self.rearmed_for_flight_at == Some(now) {
            // The rest of a burst: the re-arm below would set the deadline it already set.
            return self.board.on_new_segment(now, seg.seq, seg.len, seg.tsval, seg.snapshot);
        }
        self.rearmed_for_flight_at = None;
        if seg.is_retransmit {
            let head = self.board.segments().front().is_some_and(|r| not_before(seg.seq + seg.len, r.end()))
                && not_before(self.board.snd_una(), seg.seq);
            let matched = self.board.on_retransmit(now, seg.seq, seg.len, seg.tsval, seg.snapshot);
            if let (Some(undo), true) = (self.undo.as_mut(), matched > 0 && self.episode.is_some()) {
                undo.on_retransmit(seg.seq + seg.len, seg.tsval);
            }
            if head && matched > 0 && !self.tlp.probe_pending {
                // The cumulative ACK cannot move before the resent head comes back: count the
                // RTO from this transmission (as Linux does when it resends the head), or a
                // recovery round longer than one RTO ends in a spurious timeout.
                self.rto_started = Some(now);
                self.rearm(now, false);
                return Ok(());
            }
        } else {
            self.board.on_new_segment(now, seg.seq, seg.len, seg.tsval, seg.snapshot)?;
        }
        if self.tlp.probe_pending {
            self.tlp.on_probe_sent(self.board.high_data(), seg.is_retransmit);
            // RFC 8985 §7.3: after the probe, the RTO (not another PTO) guards the flight.
            self.rto_started = Some(now);
            self.loss_timer = Some((now + self.rtt.rto(), RecoveryTimer::Rto));
            return Ok(());
        }
        // RFC 6298 §5.1: start the timer if it is not running.
        if self.rto_started.is_none() {
            self.rto_started = Some(now);
        }
        if !seg.is_retransmit || self.loss_timer.is_none() {
            self.rearm(now, !seg.is_retransmit);
        }
        // `rearm(now, true)` depends on the store only through "one segment or more": with two
        // or more, a further new segment at `now` leaves the deadline where it is.
        if !seg.is_retransmit && self.board.segments().len() >= 2 {
            self.rearmed_for_flight_at = Some(now);
        }
        Ok(())
    }

    /// Processes one ACK: cumulative `ack`, its SACK blocks and echoed timestamp. Every segment
    /// newly acknowledged or SACKed is shown to `on_delivered` (for the delivery-rate estimator),
    /// except that a run of clean segments acknowledged together (see [`Delivery::AckedRun`])
    /// is shown once, as its newest segment's snapshot carrying the whole run's `bytes`: what
    /// `DeliveryRateEstimator::on_packet_delivered` ends with either way.
    pub fn on_ack(
        &mut self,
        now: Instant,
        ack: SeqNumber,
        sack_blocks: &[SackBlock],
        tsecr: Option<u32>,
        mut on_delivered: impl FnMut(&PacketSnapshot),
    ) -> AckOutcome {
        self.rearmed_for_flight_at = None;
        self.frto_new_data = false;
        let prior_in_flight = self.board.pipe();
        // A probe the engine could not send is moot once the peer speaks again.
        self.tlp.probe_pending = false;
        let mut seen = Deliveries::new(now, tsecr, self.rtt.min_rtt(), self.frto_point());
        let rack = &mut self.rack;
        let update = self.board.on_ack(ack, sack_blocks, |rec, how| {
            seen.on_delivered(rack, rec, how, &mut on_delivered);
        });
        let sample = seen.sample;
        let mut out = AckOutcome { prior_in_flight, ignored: update.ignored, ..AckOutcome::default() };
        if update.ignored {
            out.in_flight = prior_in_flight;
            return out;
        }
        if let Some((_, r)) = sample {
            self.rtt.on_sample(now, r);
        }
        if update.newly_acked > 0 {
            // RFC 6298 §5.3: new data acknowledged restarts the timer; the path works again, so
            // the backoff goes too (as Linux does, even without a Karn-valid sample).
            self.rto_started = Some(now);
            self.rtt.reset_backoff();
        }
        // RFC 3522 before the exit test: the ACK that ends the episode may be the one that
        // proves it spurious (Linux `tcp_process_loss` and `tcp_try_undo_recovery` try the
        // undo first).
        let eifel = if update.newly_acked > 0 { self.check_eifel(tsecr) } else { None };
        let eifel = eifel.or_else(|| self.check_frto(seen.original_delivered, &update));
        out.recovery_exited = self.maybe_exit_recovery();
        let snd_una = self.board.snd_una();
        if eifel.is_some_and(|u| u.rto_at.is_none()) {
            // A fast retransmission the Eifel test found unnecessary ([`spurious_recovery`]).
            self.rack.on_reordering();
        }
        self.rack.update_reo_wnd(
            snd_una,
            self.board.high_data(),
            update.dsack.is_some(),
            out.recovery_exited,
        );
        if let Some(undone) = eifel.or_else(|| self.check_undo(update.dsack)) {
            out.spurious_congestion_event = true;
            if let Some(fired_at) = undone.rto_at {
                self.undo_timeout(fired_at);
                out.spurious_rto = true;
            }
        }
        let progress = update.newly_acked > 0 || update.newly_sacked > 0;
        let verdict = self.tlp.on_ack(snd_una, update.dsack.is_some(), progress);
        let (lost, entered) = self.detect_losses(now);
        out.tlp_loss_repaired = verdict == TlpVerdict::LossRepaired && !entered && self.episode.is_none();
        out.newly_acked = update.newly_acked;
        out.newly_sacked = update.newly_sacked;
        out.delivered = update.delivered;
        out.newly_lost = lost;
        out.congestion_event = entered;
        out.dsack = update.dsack;
        out.rtt_sample = sample.map(|(_, r)| r);
        out.in_flight = self.board.pipe();
        self.rearm(now, update.newly_acked > 0);
        self.check_reneging(now);
        out
    }

    /// The earliest pending timer. The end of a reneging grace ([`reneging`]) is an RTO.
    pub fn next_timer(&self) -> Option<(Instant, RecoveryTimer)> {
        let first = match (self.rack_timer, self.loss_timer) {
            (Some(r), Some((l, kind))) => Some(if r <= l { (r, RecoveryTimer::Rack) } else { (l, kind) }),
            (Some(r), None) => Some((r, RecoveryTimer::Rack)),
            (None, l) => l,
        };
        match self.reneging_deadline() {
            Some(t) if first.is_none_or(|(f, _)| t < f) => Some((t, RecoveryTimer::Rto)),
            _ => first,
        }
    }

    /// Handles the expiry of `kind`. A timer that is not armed or not yet due does nothing.
    pub fn on_timeout(&mut self, now: Instant, kind: RecoveryTimer) -> TimeoutOutcome {
        self.rearmed_for_flight_at = None;
        let mut out = TimeoutOutcome::default();
        match kind {
            RecoveryTimer::Rack => {
                if self.rack_timer.is_none_or(|t| t > now) {
                    return out;
                }
                self.rack_timer = None;
                let (lost, entered) = self.detect_losses(now);
                out.newly_lost = lost;
                out.congestion_event = entered;
                self.rearm(now, false);
            }
            RecoveryTimer::Tlp => {
                if !matches!(self.loss_timer, Some((t, RecoveryTimer::Tlp)) if t <= now) {
                    return out;
                }
                self.tlp.probe_pending = true;
                // Should no probe go out, the RTO still guards the flight, counted from now: the
                // PTO may have been capped by the RTO deadline, and an RTO due this very instant
                // would pre-empt the probe the engine is about to send (RFC 8985 §7.3 arms the
                // RTO when the probe leaves).
                self.rto_started = Some(now);
                self.loss_timer = Some((now + self.rtt.rto(), RecoveryTimer::Rto));
                let last = self.board.segments().back().filter(|r| !r.is_sacked()).map(|r| (r.start, r.len));
                out.probe = Some(last);
            }
            RecoveryTimer::Rto => {
                let rto_due = matches!(self.loss_timer, Some((t, RecoveryTimer::Rto)) if t <= now);
                if !rto_due && !self.reneging_due(now) {
                    return out;
                }
                self.on_rto(now, &mut out);
            }
        }
        out
    }

    /// RFC 6298 §5.4–5.6 with RFC 6675 §5.1: back off, everything un-SACKed is lost, and an
    /// RTO recovery episode runs to the current HighData.
    fn on_rto(&mut self, now: Instant, out: &mut TimeoutOutcome) {
        self.rtt.back_off();
        self.frto_new_data = false;
        out.rto = true;
        out.newly_lost = self.forget_reneged_sacks(out);
        out.newly_lost += self.board.mark_all_lost();
        self.start_rto_undo(now, out.reneged);
        self.episode = Some(Episode { point: self.board.high_data() });
        self.tlp = Tlp::default();
        self.rack_timer = None;
        self.rto_started = Some(now);
        self.loss_timer = Some((now + self.rtt.rto(), RecoveryTimer::Rto));
    }

    /// What to retransmit next, if anything (RFC 6675 NextSeg): lost segments in sequence order,
    /// then — only when `new_data_available` is false and in recovery — rules 3 and 4. Nothing
    /// while F-RTO's step 2b wants new data out first and there is some ([`spurious_rto`]).
    pub fn next_retransmission(&mut self, new_data_available: bool) -> Option<(SeqNumber, u32)> {
        self.rearmed_for_flight_at = None;
        if new_data_available && self.frto_new_data && self.frto_point().is_some() {
            return None;
        }
        match self.board.next_seg(new_data_available, self.episode.is_some()) {
            NextSegment::Retransmit { seq, len } => Some((seq, len)),
            NextSegment::NewData | NextSegment::Nothing => None,
        }
    }

    /// RFC 3042 limited transmit: bytes of new data the engine may send beyond the congestion
    /// window on the first two duplicate ACKs (SACKed segments outside recovery).
    pub fn limited_transmit_allowance(&self) -> u32 {
        if self.episode.is_some() {
            return 0;
        }
        self.board.sacked_segments().min(DUP_THRESH - 1) * self.board.smss()
    }

    /// Runs the configured loss detection; enters recovery on the first loss outside one.
    fn detect_losses(&mut self, now: Instant) -> (u32, bool) {
        let mut lost = 0;
        if self.config.loss_detection != LossDetection::DupThresh && self.rack.nothing_due(&self.board) {
            // The walk would stop at the oldest transmission: skip the reordering window.
            self.rack_timer = None;
        } else if self.config.loss_detection != LossDetection::DupThresh {
            let reo_wnd = self.rack.reo_wnd(
                self.episode.is_some(),
                self.board.sacked_segments(),
                self.rtt.min_rtt(),
                self.rtt.srtt(),
            );
            let (l, timer) = self.rack.detect_loss(now, &mut self.board, reo_wnd);
            lost += l;
            self.rack_timer = timer;
        }
        if self.config.loss_detection != LossDetection::Rack {
            lost += self.board.mark_dupthresh_losses();
        }
        let entered = lost > 0 && self.episode.is_none();
        if entered {
            self.episode = Some(Episode { point: self.board.high_data() });
            self.undo = Some(Undo::new(self.board.snd_una(), None));
        }
        (lost, entered)
    }

    fn maybe_exit_recovery(&mut self) -> bool {
        match self.episode {
            Some(e) if not_before(self.board.snd_una(), e.point) => {
                self.episode = None;
                true
            }
            _ => false,
        }
    }

    /// RFC 3708-style undo: each D-SACK for data of the episode proves one retransmission
    /// unnecessary; when all are, the reduction was spurious, and the finished bookkeeping
    /// comes back (it is gone: one undo per episode).
    fn check_undo(&mut self, dsack: Option<(SeqNumber, SeqNumber)>) -> Option<Undo> {
        let (Some((left, right)), Some(undo)) = (dsack, self.undo.as_mut()) else { return None };
        let inside = not_before(left, undo.marker) && not_before(self.board.high_data(), right);
        if !inside || undo.retrans == 0 {
            return None;
        }
        undo.retrans -= 1;
        if undo.retrans == 0 {
            return self.undo.take();
        }
        None
    }

    /// Re-arms the shared loss-detection timer: PTO when a probe may be sent (RFC 8985 §7.2:
    /// not in recovery, no probe outstanding, no RTO backoff), otherwise the RTO. The PTO is
    /// only pushed back (`restart_pto`) by new data sent or newly acknowledged (§7.2), so a
    /// stream of duplicate ACKs cannot postpone the probe.
    fn rearm(&mut self, now: Instant, restart_pto: bool) {
        if self.board.segments().is_empty() {
            self.loss_timer = None;
            self.rack_timer = None;
            self.rto_started = None;
            return;
        }
        let rto_at = self.rto_started.unwrap_or(now) + self.rtt.rto();
        let probe_ok = self.config.tlp
            && self.episode.is_none()
            && self.tlp.end_seq.is_none()
            && !self.tlp.probe_pending
            && self.rtt.backoff() == 0;
        if probe_ok && !restart_pto && matches!(self.loss_timer, Some((_, RecoveryTimer::Tlp))) {
            return;
        }
        self.loss_timer = Some(if probe_ok {
            // RFC 8985 §7.2: the PTO never expires later than the RTO would.
            let one = self.board.segments().len() == 1;
            let pto_at = now + Tlp::pto(self.rtt.srtt(), one, self.config.max_ack_delay);
            (pto_at.min(rto_at), RecoveryTimer::Tlp)
        } else {
            (rto_at, RecoveryTimer::Rto)
        });
    }
}
