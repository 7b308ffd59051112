//! The sender's loss recovery, congestion control and pacing, as the TCB drives them.
//!
//! **Owns** the glue between the connection and three building blocks it holds:
//! [`LossRecovery`](crate::recovery::LossRecovery) (segment records, SACK scoreboard, RACK-TLP,
//! RTT and the one recovery timer), the congestion controller
//! ([`CongestionController`]: NewReno, CUBIC or BBRv3, static dispatch) with its
//! delivery-rate estimator, and the earliest-departure-time [`Pacer`]. Every transmission goes
//! through [`Connection::record_sent`], every acceptable ACK through [`Connection::on_ack_recovery`],
//! the recovery timer through [`Connection::on_recovery_timer`], exactly in the order
//! `crate::recovery` documents (congestion event before the ACK's `on_ack`, spurious undo, recovery
//! exit).
//!
//! **Promises:** no allocation (the segment store is sized once, at connection creation, from
//! the send buffer and counted against the engine's memory cap by [`Connection::memory_for`]);
//! bounded work per ACK (the scoreboard's bound); peer SACK blocks are used only when SACK was
//! negotiated, and hostile ones are counted, never trusted.
//!
//! PRR (RFC 6937) lives inside the loss-based controllers (`cwnd = pipe + sndcnt` on each ACK in
//! recovery); the output path sends while `pipe < cwnd`, so PRR sizes sending in recovery.
//! The controller can be replaced on a live connection ([`Connection::update_congestion`], the
//! `TCP_CONGESTION` switch): the successor inherits the window, threshold, recovery episode and
//! RTT estimates. The tail loss probe waits for the pacer like every segment; it is exempt
//! only from cwnd (RFC 8985 §7.3).
//! Peers without SACK get RFC 6675-style duplicate-ACK counting through emulated SACK blocks
//! (one segment per duplicate ACK, as Linux's "Reno SACK" does) and DupThresh loss marking.

use super::config::{SocketOptions, TcpConfig};
use super::connection::Connection;
use super::timers::TimerKind;
use crate::congestion::{
    AckEvent, CongestionConfig, CongestionController, Handover, LossEvent, Pacer, SentPacket,
};
use crate::recovery::{
    AckOutcome as RecoveryAck, LossDetection, RecoveryConfig, RecoveryTimer, RttConfig, SegmentRecord,
    SentSegment,
};
use crate::stats::Stats;
use crate::time::{Duration, Instant};
use crate::wire::{SackBlock, SeqNumber};

/// The smallest MSS the segment store is sized for (RFC 9293's default send MSS).
const STORE_MSS: usize = 536;
/// Spare records for writes shorter than the MSS and the FIN.
const STORE_SLACK: usize = 32;

/// What the recovery timer asked of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryTimeout {
    /// Nothing (RACK, TLP, a timer not yet due).
    Handled,
    /// The retransmission timeout fired: the caller counts it against R1/R2.
    Rto,
}

impl Connection {
    fn store_capacity(opts: &SocketOptions) -> usize {
        opts.send_buffer / STORE_MSS + STORE_SLACK
    }

    pub(super) fn recovery_config(opts: &SocketOptions, cfg: &TcpConfig, mss: u32) -> RecoveryConfig {
        RecoveryConfig {
            capacity: Self::store_capacity(opts),
            smss: mss,
            rtt: RttConfig {
                initial_rto: cfg.initial_rto,
                min_rto: cfg.min_rto,
                max_rto: cfg.max_rto,
                ..RttConfig::default()
            },
            ..RecoveryConfig::default()
        }
    }

    pub(super) fn congestion_config(
        opts: &SocketOptions,
        cfg: &TcpConfig,
        mss: u32,
        iss: SeqNumber,
        ts_offset: u32,
    ) -> CongestionConfig {
        CongestionConfig {
            algorithm: opts.congestion,
            mss,
            initial_window_segments: cfg.initial_window,
            pacing: opts.pacing,
            slow_start_after_idle: opts.slow_start_after_idle,
            bbr_tolerate_random_loss: opts.bbr_tolerate_random_loss,
            // BBR's PRNG seed: per connection, from values already random (RFC 6528 ISN).
            seed: (u64::from(iss.0) << 32) | u64::from(ts_offset),
            ..CongestionConfig::default()
        }
    }

    /// Bytes a connection with `opts` holds against the engine's memory cap: both buffers and
    /// the segment records of its loss recovery.
    pub fn memory_for(opts: &SocketOptions) -> usize {
        let record = core::mem::size_of::<SegmentRecord>() + 4;
        opts.send_buffer + opts.recv_buffer + Self::store_capacity(opts) * record
    }

    /// Rebuilds the controller and pacer for the negotiated MSS (after the SYN exchange), and
    /// picks DupThresh marking for peers without SACK.
    pub fn reset_congestion(&mut self, cfg: &TcpConfig, now: Instant) {
        self.cc_config.mss = self.snd_mss;
        self.cc_config.initial_window_segments = cfg.initial_window;
        self.cc_config.algorithm = self.opts.congestion;
        self.cc_config.pacing = self.opts.pacing;
        self.cc_config.slow_start_after_idle = self.opts.slow_start_after_idle;
        self.cc_config.bbr_tolerate_random_loss = self.opts.bbr_tolerate_random_loss;
        self.cc = CongestionController::new(&self.cc_config, now);
        self.pacer = Pacer::new(self.snd_mss, self.cc_config.pacing_burst_max);
        self.pacer.set_timer_granularity(self.cc_config.pacing_timer_granularity);
        self.pacer.set_rate(self.cc.pacing_rate());
        // F-RTO needs real SACK information; with timestamps the Eifel test decides.
        self.recovery.set_frto(cfg.frto && self.sack_ok && self.ts.is_none());
        if !self.sack_ok {
            // Emulated SACK blocks carry no timing RACK could use: count duplicates instead.
            // RACK-TLP requires SACK (RFC 8985 §4): tail losses wait for the RTO.
            self.recovery.set_loss_detection(LossDetection::DupThresh);
            self.recovery.set_tail_loss_probes(false);
        }
    }

    /// Pacing releases are delivered by the engine's timer wheel, up to one `tick` late (the
    /// engine calls this with `EngineConfig::timer_tick` when it adopts the connection).
    pub fn set_pacing_timer_granularity(&mut self, tick: Duration) {
        self.cc_config.pacing_timer_granularity = tick;
        self.pacer.set_timer_granularity(tick);
    }

    /// Applies changed congestion-control options (`opts` already updated). Pacing and
    /// slow-start restart switch in place. A different algorithm switches like Linux's
    /// `TCP_CONGESTION` on a live socket: before the handshake completes the controller is
    /// simply rebuilt (`reset_congestion` rebuilds it again for the negotiated MSS); afterwards
    /// the new controller takes over the connection's window, threshold, recovery episode and
    /// RTT estimates ([`CongestionController::handover`]). The pacer keeps its departure time
    /// and takes the controller's rate; BBR always paces.
    pub fn update_congestion(&mut self, now: Instant) {
        self.cc_config.pacing = self.opts.pacing;
        self.cc_config.slow_start_after_idle = self.opts.slow_start_after_idle;
        self.cc.set_pacing(self.opts.pacing);
        self.cc.set_slow_start_after_idle(self.opts.slow_start_after_idle);
        self.cc_config.bbr_tolerate_random_loss = self.opts.bbr_tolerate_random_loss;
        self.cc.set_bbr_tolerate_random_loss(self.opts.bbr_tolerate_random_loss);
        if self.cc.algorithm() != self.opts.congestion {
            self.cc_config.algorithm = self.opts.congestion;
            self.cc = if self.state.is_synchronized() {
                let rtt = self.recovery.rtt();
                // A reduction in progress continues; after an RTO (the old controller is no
                // longer reducing) the successor slow-starts from the collapsed window.
                let from = Handover {
                    in_recovery: self.recovery.in_recovery() && self.cc.in_recovery(),
                    flight_size: self.flight_size(),
                    in_flight: self.recovery.pipe(),
                    lost_bytes: self.recovery.scoreboard().lost_bytes(),
                    srtt: rtt.srtt(),
                    min_rtt: rtt.min_rtt(),
                    ..self.cc.handover_state()
                };
                CongestionController::handover(&self.cc_config, now, &from)
            } else {
                CongestionController::new(&self.cc_config, now)
            };
        }
        self.pacer.set_rate(self.cc.pacing_rate());
        if self.pacer.rate().is_none() && self.pacing_hold {
            // Pacing switched off: nothing is held any more.
            self.on_pacing_timer();
            self.timers.stop(TimerKind::Pacing);
        }
    }

    /// The SYN or SYN-ACK was acknowledged: its timing (Karn: only if never resent) seeds the
    /// RTT estimator, and data starts from the base RTO (RFC 6298 §5.7).
    pub fn on_handshake_acked(&mut self, now: Instant) {
        if let Some((_, sent)) = self.rtt_timing.take() {
            self.recovery.rtt_mut().on_sample(now, now - sent);
        }
        self.recovery.rtt_mut().reset_backoff();
    }

    /// The path MTU shrank (RFC 1191 §6.5): everything outstanding is resent in smaller segments.
    pub fn on_path_mtu_reduced(&mut self) {
        let mut lost = 0;
        if !self.sack_ok {
            // Emulated SACK marks are guesses; as after an RTO, resending starts at snd_una.
            lost += self.recovery.forget_sacks();
        }
        lost += self.recovery.mark_all_lost();
        self.rate.on_packet_lost(lost);
        self.next_rtx = None;
        self.refresh_retransmission();
    }

    /// Reports one transmission of `len` sequence numbers at `seq` (data and/or FIN) to loss
    /// recovery, the rate estimator, the controller and the pacer.
    pub(super) fn record_sent(
        &mut self,
        now: Instant,
        seq: SeqNumber,
        len: u32,
        is_retransmit: bool,
        stats: &mut Stats,
    ) {
        let pipe = self.recovery.pipe();
        if !is_retransmit && self.recovery.scoreboard().segments().is_empty() {
            if self.counters.data_segs_out > 0 {
                let idle = now.saturating_duration_since(self.last_data_sent);
                self.cc.on_idle_restart(now, idle, self.recovery.rtt().rto());
            }
            // RFC 5681 §4.1 restart window: min(IW, cwnd) leaves unpaced (not for BBR).
            if let Some(window) = self.cc.restart_window() {
                self.pacer.on_restart(now, window);
            }
        }
        let snapshot = self.rate.on_packet_sent(now, pipe, len);
        let tsval = self.ts.map(|_| self.ts_now(now));
        let probe = self.tlp_probe.take().is_some();
        let seg = SentSegment { seq, len, is_retransmit, tsval, snapshot };
        // Cannot fail: new data is planned only while the store has room.
        let _ = self.recovery.on_sent(now, &seg);
        let packet = SentPacket { bytes: len, in_flight_before: pipe, is_app_limited: false, is_retransmit };
        self.cc.on_packet_sent(now, &packet);
        if probe {
            stats.tlp_probes += 1;
        } else if is_retransmit && self.retries == 0 {
            stats.fast_retrans += 1;
        }
        // Draft §3.4: out of data with room in the window: the samples that follow are app-limited.
        if !is_retransmit && self.sndbuf.end_seq() - self.snd_nxt <= 0 {
            let after = self.recovery.pipe();
            if after < self.cc.cwnd() {
                self.rate.on_app_limited(after);
            }
        }
        self.pace_sent(now, len, stats);
    }

    /// [`Self::record_sent`] for new data that [`Connection::next_in_burst`] planned: the
    /// previous segment of the burst was recorded at this `now`, so the store is not empty (no
    /// restart from idle), no probe is pending and more data than this segment was unsent (not
    /// app-limited); what is left is per segment and in the same order.
    pub(super) fn record_sent_in_burst(&mut self, now: Instant, seq: SeqNumber, len: u32, stats: &mut Stats) {
        let pipe = self.recovery.pipe();
        let snapshot = self.rate.on_packet_sent(now, pipe, len);
        let tsval = self.ts.map(|_| self.ts_now(now));
        let seg = SentSegment { seq, len, is_retransmit: false, tsval, snapshot };
        // Cannot fail: `next_in_burst` checked the store's room.
        let _ = self.recovery.on_sent(now, &seg);
        let packet =
            SentPacket { bytes: len, in_flight_before: pipe, is_app_limited: false, is_retransmit: false };
        self.cc.on_packet_sent(now, &packet);
        self.pace_sent(now, len, stats);
    }

    /// The pacer's step for `len` bytes sent at `now`, and the hold that follows when the next
    /// release is later.
    fn pace_sent(&mut self, now: Instant, len: u32, stats: &mut Stats) {
        self.pacer.on_sent(now, len);
        // Any later release waits for the `Pacing` timer. The wheel delivers it up to one tick
        // late, and the pacer lets the sender catch up by that tick (its granularity), so a fast
        // link is not capped at one burst per tick and bursts stay about one tick long.
        if let Some(at) = self.pacer.next_release().filter(|&t| t > now) {
            self.pacing_hold = true;
            self.timers.set(TimerKind::Pacing, at);
            stats.pacing_delayed += 1;
        }
    }

    /// After a retransmission of `seq..end`: the rest of a record longer than the MSS is next.
    pub(super) fn advance_retransmission(&mut self, seq: SeqNumber, end: SeqNumber) {
        if let Some((s, l)) = self.next_rtx {
            let rtx_end = s + l;
            if seq - s >= 0 && rtx_end - seq > 0 {
                self.next_rtx = (rtx_end - end > 0).then(|| (end, (rtx_end - end) as u32));
            }
        }
        self.refresh_retransmission();
    }

    /// Asks loss recovery for the next retransmission if none is chosen yet (RFC 6675 NextSeg).
    pub(super) fn refresh_retransmission(&mut self) {
        if self.next_rtx.is_some() || !self.state.is_synchronized() {
            return;
        }
        let unsent = self.sndbuf.end_seq() - self.snd_nxt > 0;
        let rwnd_open = (self.snd_una + self.snd_wnd) - self.snd_nxt > 0;
        self.next_rtx = self.recovery.next_retransmission(unsent && rwnd_open);
    }

    /// The pacing release time came (the `Pacing` timer).
    pub(super) fn on_pacing_timer(&mut self) {
        self.pacing_hold = false;
    }

    /// Processes an acceptable ACK (cumulative `ack`, the peer's SACK blocks, echoed TSval)
    /// before SND.UNA moves. `duplicate` marks an RFC 5681 duplicate ACK (for peers without SACK).
    pub(super) fn on_ack_recovery(
        &mut self,
        now: Instant,
        ack: SeqNumber,
        peer_blocks: &[SackBlock],
        tsecr: Option<u32>,
        duplicate: bool,
        stats: &mut Stats,
    ) {
        // The common bulk ACK first (`recovery::clean_ack`): blocks a peer without SACK sends
        // are ignored below, so only a SACK peer's blocks rule it out.
        let fast = if !duplicate && (peer_blocks.is_empty() || !self.sack_ok) {
            let rate = &mut self.rate;
            self.recovery.on_clean_ack(now, ack, tsecr, |snapshot| rate.on_packet_delivered(now, snapshot))
        } else {
            None
        };
        let out = match fast {
            Some(out) => out,
            None => self.on_ack_general(now, ack, peer_blocks, tsecr, duplicate, stats),
        };
        self.after_ack_outcome(now, &out, fast.is_some(), stats);
    }

    /// [`Self::on_ack_recovery`]'s general path: SACK blocks (or their emulation for a peer
    /// without SACK) and everything [`LossRecovery::on_ack`](crate::recovery::LossRecovery::on_ack) does.
    pub(super) fn on_ack_general(
        &mut self,
        now: Instant,
        ack: SeqNumber,
        peer_blocks: &[SackBlock],
        tsecr: Option<u32>,
        duplicate: bool,
        stats: &mut Stats,
    ) -> RecoveryAck {
        let mut emulated = [SackBlock { left: ack, right: ack }];
        let blocks: &[SackBlock] = if self.sack_ok {
            stats.sack_blocks_received += peer_blocks.len() as u64;
            peer_blocks
        } else if duplicate {
            // Reno SACK emulation: each duplicate ACK reports one more segment above the hole.
            let sacked = self.recovery.scoreboard().sacked_segments() as usize;
            match self.recovery.scoreboard().segments().get(sacked + 1) {
                Some(rec) => {
                    emulated[0] = SackBlock { left: rec.start, right: rec.end() };
                    &emulated
                }
                None => &[],
            }
        } else {
            &[]
        };
        let invalid_before = self.recovery.scoreboard().counters().invalid_blocks;
        let rate = &mut self.rate;
        let out = self.recovery.on_ack(now, ack, blocks, tsecr, |snapshot| {
            rate.on_packet_delivered(now, snapshot);
        });
        stats.sack_blocks_ignored += self.recovery.scoreboard().counters().invalid_blocks - invalid_before;
        out
    }

    /// What the controller, the rate estimator, the pacer and NextSeg make of loss recovery's
    /// verdict on one ACK. `clean`: it came from the fast path, so with nothing newly lost no
    /// segment awaits retransmission and NextSeg is not asked.
    fn after_ack_outcome(&mut self, now: Instant, out: &RecoveryAck, clean: bool, stats: &mut Stats) {
        // A probe the peer's ACK made moot (recovery dropped it too).
        self.tlp_probe = None;
        if out.ignored {
            return;
        }
        // FlightSize before the ACK: SND.UNA moves only after loss recovery saw the ACK.
        let flight_size = self.flight_size();
        if out.dsack.is_some() {
            self.counters.dsack_received += 1;
        }
        if out.newly_lost > 0 {
            self.rate.on_packet_lost(out.newly_lost);
            stats.rack_lost_bytes += u64::from(out.newly_lost);
        }
        if out.congestion_event {
            self.enter_recovery(now, out.newly_lost, flight_size, out.in_flight, stats);
        }
        if out.spurious_congestion_event {
            self.cc.on_spurious_congestion_event();
            if out.spurious_rto {
                // RFC 4015: loss recovery already cleared the backoff and took the timeout's
                // loss marks back; the R2 count waits for new data acknowledged.
                stats.spurious_rto_undone += 1;
                self.counters.spurious_rto_undone += 1;
            } else {
                stats.spurious_retrans_undone += 1;
            }
        }
        if out.tlp_loss_repaired {
            // RFC 8985 §7.4.2: the probe hid a real loss; reduce once, then carry on.
            let loss =
                LossEvent { lost_bytes: 0, flight_size, in_flight: out.in_flight, is_persistent: false };
            self.cc.on_congestion_event(now, &loss);
            self.cc.on_recovery_exit(now);
            stats.tlp_recovered += 1;
        }
        if out.delivered > 0 {
            let min_rtt = self.recovery.rtt().min_rtt();
            let rate_sample = self.rate.generate_rate_sample(now, min_rtt);
            if let Some(rs) = rate_sample.filter(|rs| rs.delivery_rate > 0) {
                self.delivery_rate = rs.delivery_rate;
            }
            let event = AckEvent {
                newly_acked_bytes: out.delivered,
                newly_lost_bytes: out.newly_lost,
                prior_in_flight: out.prior_in_flight,
                in_flight: out.in_flight,
                rtt_sample: out.rtt_sample,
                min_rtt,
                srtt: self.recovery.rtt().srtt(),
                rate_sample,
                ece: false,
            };
            self.cc.on_ack(now, &event);
        }
        // After the ACK's own PRR step: the window leaves recovery at ssthresh (RFC 6937 §3).
        if out.recovery_exited {
            self.cc.on_recovery_exit(now);
        }
        if out.newly_acked > 0 {
            self.retries = 0;
            self.rtx_since = None;
            if !self.sack_ok && self.recovery.in_recovery() {
                // RFC 6582 §3.2 step 5: without SACK a partial ACK means the next hole is lost.
                let lost = self.recovery.mark_front_lost();
                self.rate.on_packet_lost(lost);
            } else if !self.sack_ok {
                // The ACK stopped at the front segment: it is not SACKed, whatever the
                // emulation guessed (the next duplicate ACK marks the segment after the run).
                self.recovery.unsack_front();
            }
        }
        self.pacer.set_rate(self.cc.pacing_rate());
        if self.pacing_hold && self.pacer.can_send(now) {
            // The release passed between timer ticks: the ACK is the transmit opportunity.
            self.on_pacing_timer();
            self.timers.stop(TimerKind::Pacing);
        }
        self.next_rtx = None;
        if !clean || out.newly_lost > 0 {
            self.refresh_retransmission();
        }
    }

    fn enter_recovery(
        &mut self,
        now: Instant,
        lost: u32,
        flight_size: u32,
        in_flight: u32,
        stats: &mut Stats,
    ) {
        let loss = LossEvent { lost_bytes: lost, flight_size, in_flight, is_persistent: false };
        self.cc.on_congestion_event(now, &loss);
        stats.reno_recovery += 1;
    }

    /// The recovery timer slot fired: RACK reordering timer, tail loss probe or RTO
    /// (RFC 8985 §6.2, §7.3; RFC 6298 §5.4-5.6).
    pub(super) fn on_recovery_timer(&mut self, now: Instant, stats: &mut Stats) -> RecoveryTimeout {
        let Some((at, kind)) = self.recovery.next_timer() else { return RecoveryTimeout::Handled };
        if at > now {
            return RecoveryTimeout::Handled;
        }
        let flight_size = self.flight_size();
        let out = self.recovery.on_timeout(now, kind);
        if out.newly_lost > 0 {
            self.rate.on_packet_lost(out.newly_lost);
        }
        match kind {
            RecoveryTimer::Rack => {
                stats.rack_lost_bytes += u64::from(out.newly_lost);
                if out.congestion_event {
                    let in_flight = self.recovery.pipe();
                    self.enter_recovery(now, out.newly_lost, flight_size, in_flight, stats);
                }
            }
            RecoveryTimer::Tlp => {
                if let Some(probe) = out.probe {
                    // RFC 8985 §7.3: new data if the receive window allows, else the last
                    // segment; with neither there is no probe, and the RTO guards the flight.
                    let rwnd_open = (self.snd_una + self.snd_wnd) - self.snd_nxt > 0;
                    let unsent = self.sndbuf.end_seq() - self.snd_nxt > 0 && rwnd_open
                        || self.fin_queued && self.snd_nxt == self.sndbuf.end_seq();
                    if probe.is_some() || unsent {
                        self.tlp_probe = Some(probe);
                    }
                }
            }
            RecoveryTimer::Rto => {
                if out.rto {
                    if out.reneged {
                        stats.sack_reneging += 1;
                        self.counters.sack_reneging += 1;
                    }
                    if !self.sack_ok {
                        // Emulated SACK marks are guesses; the RTO resends from snd_una.
                        let lost = self.recovery.forget_sacks();
                        self.rate.on_packet_lost(lost);
                    }
                    self.cc.on_retransmit_timeout(now);
                    self.pacer.set_rate(self.cc.pacing_rate());
                    self.tlp_probe = None;
                    self.next_rtx = None;
                    self.refresh_retransmission();
                    return RecoveryTimeout::Rto;
                }
            }
        }
        self.next_rtx = None;
        self.refresh_retransmission();
        RecoveryTimeout::Handled
    }
}
