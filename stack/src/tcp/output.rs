//! What to send next on a connection (RFC 9293 §3.8.6.2, §3.10.7; RFC 896; RFC 6675 §5).
//!
//! [`Connection::plan_segment`] is pure: it looks at the connection and says which one segment
//! should go out now (SYN, SYN-ACK, a tail loss probe, a retransmission chosen by loss recovery,
//! new data, FIN, a window/keepalive probe, or a bare ACK), or nothing. Data and retransmissions
//! fit in `cwnd - pipe` (RFC 6675 §5; the loss-based controllers set `cwnd = pipe + sndcnt`
//! during recovery, which is how PRR, RFC 6937, sizes sending). Every data-bearing segment,
//! the tail loss probe included, waits while pacing holds the connection; only the probe may
//! exceed `cwnd` (RFC 8985 §7.3). The engine builds the frame straight into the device's
//! buffer (header with `emit_header`, payload copied from the send buffer with a one-pass
//! checksum) and then calls [`Connection::on_segment_sent`], so a full TX ring changes nothing
//! and nothing is lost. Inside a burst of full-size data segments in one poll,
//! [`Connection::next_in_burst`] stands in for `plan_segment` when a few checks prove it would
//! plan the next full segment, and [`Connection::on_burst_segment_sent`] records it.
//!
//! Sender-side silly-window avoidance and Nagle (RFC 9293 §3.8.6.2.1, RFC 896): a segment
//! shorter than the effective MSS goes out only if it carries the last queued byte and nothing is
//! unacknowledged (or TCP_NODELAY is set, or a FIN follows), or it is at least half the largest
//! window the peer ever offered, or nothing is in flight and the window is what limits it.

use super::connection::Connection;
use super::options::TIMESTAMP_OPTION_LEN;
use super::state::State;
use super::timers::TimerKind;
use crate::stats::Stats;
use crate::time::Instant;
use crate::wire::{SackBlocks, SeqNumber, TcpFlags, TcpRepr};

/// Why a segment is being sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentKind {
    /// SYN or SYN-ACK.
    Syn,
    /// Data and/or FIN at SND.NXT (new, or resent after a timeout rolled SND.NXT back).
    Data,
    /// A retransmission chosen by loss recovery (RFC 6675 NextSeg, RACK marks, RTO) or a
    /// tail loss probe resending the last segment (RFC 8985 §7.3).
    Retransmit,
    /// Zero-window or keepalive probe: an old sequence number, no data.
    Probe,
    /// A bare ACK (or window update).
    Ack,
}

/// One segment to send: payload bytes come from the send buffer at `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentPlan {
    pub kind: SegmentKind,
    pub seq: SeqNumber,
    pub flags: TcpFlags,
    pub len: u32,
}

impl Connection {
    /// The next segment this connection wants to send, if any.
    pub fn plan_segment(&self) -> Option<SegmentPlan> {
        let ack = |seq| SegmentPlan { kind: SegmentKind::Ack, seq, flags: TcpFlags::ACK, len: 0 };
        match self.state {
            State::Closed | State::Listen => None,
            State::SynSent => (self.snd_nxt == self.iss).then_some(SegmentPlan {
                kind: SegmentKind::Syn,
                seq: self.iss,
                flags: TcpFlags::SYN,
                // RFC 7413: data in the SYN when a Fast Open cookie is cached.
                len: self.syn_data_len(),
            }),
            State::SynReceived => {
                if self.snd_nxt == self.iss {
                    Some(SegmentPlan {
                        kind: SegmentKind::Syn,
                        seq: self.iss,
                        flags: TcpFlags::SYN | TcpFlags::ACK,
                        len: 0,
                    })
                } else {
                    self.ack_now.then(|| ack(self.snd_nxt))
                }
            }
            State::TimeWait => self.ack_now.then(|| ack(self.snd_nxt)),
            _ => {
                // Everything carrying data waits for the pacing release, the tail loss probe
                // included: RFC 8985 §7.3 lets the probe ignore cwnd, not the pacer (Linux sends
                // it through the same paced transmit path). The `Pacing` timer ends the hold.
                if !self.pacing_hold {
                    if let Some(p) = self.plan_tail_probe() {
                        return Some(p);
                    }
                    if let Some(p) = self.plan_retransmission() {
                        return Some(p);
                    }
                    if let Some(p) = self.plan_new_data(self.cwnd_room(), true) {
                        return Some(p);
                    }
                }
                if self.send_window_probe || self.send_keepalive {
                    // Linux-style probe: SEQ = SND.UNA - 1 with no data. The peer must answer
                    // with an ACK carrying its window, and we never send bytes outside the window.
                    return Some(SegmentPlan {
                        kind: SegmentKind::Probe,
                        seq: self.snd_una - 1,
                        flags: TcpFlags::ACK,
                        len: 0,
                    });
                }
                (self.ack_now || self.window_update_due()).then(|| ack(self.snd_nxt))
            }
        }
    }

    /// Bytes the congestion window leaves for sending (RFC 6675 §5: `cwnd - pipe`). SACKed
    /// segments leave `pipe`, so the first duplicate ACKs already let new segments out: that is
    /// RFC 3042 limited transmit in RFC 6675's accounting, and adding its allowance on top
    /// would count those segments twice.
    pub fn cwnd_room(&self) -> u32 {
        self.cc.cwnd().saturating_sub(self.recovery.pipe())
    }

    /// RFC 8985 §7.3: the probe is a new segment when the receive window allows (whatever the
    /// congestion window or Nagle say, as Linux's probe does), else the highest outstanding
    /// segment again. The caller has already checked the pacer.
    fn plan_tail_probe(&self) -> Option<SegmentPlan> {
        let probe = self.tlp_probe?;
        if let Some(p) = self.plan_new_data(u32::MAX, false) {
            return Some(p);
        }
        let (seq, len) = probe?;
        self.plan_resend(seq, len)
    }

    fn plan_retransmission(&self) -> Option<SegmentPlan> {
        let (seq, len) = self.next_rtx?;
        if self.cwnd_room() < len.min(self.snd_mss) {
            return None;
        }
        self.plan_resend(seq, len)
    }

    /// The first MSS of the recorded segment `seq..seq + len` (whose last byte may be the FIN),
    /// clipped to what is still unacknowledged.
    fn plan_resend(&self, seq: SeqNumber, len: u32) -> Option<SegmentPlan> {
        let end = seq + len;
        let seq = if seq - self.snd_una < 0 { self.snd_una } else { seq };
        let data_end = self.sndbuf.end_seq();
        let upto = if end - data_end > 0 { data_end } else { end };
        let data = (upto - seq).max(0) as u32;
        let len = data.min(self.snd_mss);
        let fin = self.fin_queued && end - data_end > 0 && len == data;
        if len == 0 && !fin {
            return None;
        }
        let mut flags = TcpFlags::ACK;
        if seq + len == data_end && len > 0 {
            flags |= TcpFlags::PSH;
        }
        if fin {
            flags |= TcpFlags::FIN;
        }
        Some(SegmentPlan { kind: SegmentKind::Retransmit, seq, flags, len })
    }

    /// New data (or the FIN) at SND.NXT within `room` bytes of congestion window and the peer's
    /// receive window, with Nagle and sender-side SWS avoidance when `nagle` is set.
    fn plan_new_data(&self, room: u32, nagle: bool) -> Option<SegmentPlan> {
        if self.recovery.is_full() {
            return None;
        }
        let end = self.sndbuf.end_seq();
        let unsent = (end - self.snd_nxt).max(0) as u32;
        if unsent == 0 {
            let fin_due = self.fin_queued && self.snd_nxt == end;
            return fin_due.then_some(SegmentPlan {
                kind: SegmentKind::Data,
                seq: self.snd_nxt,
                flags: TcpFlags::ACK | TcpFlags::FIN,
                len: 0,
            });
        }
        let rwnd = ((self.snd_una + self.snd_wnd) - self.snd_nxt).max(0) as u32;
        let len = unsent.min(self.snd_mss).min(room).min(rwnd);
        if len == 0 {
            return None;
        }
        let idle = self.snd_nxt == self.snd_una;
        let last = len == unsent;
        let send = !nagle
            || len == self.snd_mss
            || last && (self.opts.nodelay || idle || self.fin_queued)
            || self.max_snd_wnd > 0 && len >= self.max_snd_wnd / 2
            || idle && !last;
        if !send {
            return None;
        }
        let mut flags = TcpFlags::ACK;
        if last {
            flags |= TcpFlags::PSH;
            if self.fin_queued {
                flags |= TcpFlags::FIN;
            }
        }
        Some(SegmentPlan { kind: SegmentKind::Data, seq: self.snd_nxt, flags, len })
    }

    /// The TCP header for `plan` (payload left empty: the engine copies it from the send buffer).
    /// Moves RCV.ADV when the window grows, so call it only for a segment about to be sent.
    pub fn header_for(&mut self, plan: &SegmentPlan, now: Instant) -> TcpRepr<'static> {
        let syn = plan.flags.syn();
        let mut options =
            if syn { self.syn_options(now) } else { self.segment_options(now, plan.flags.ack()) };
        // RFC 6691: options and data together must fit the path MSS; SACK blocks give way.
        let budget =
            self.snd_mss as usize + if self.ts.is_some() { TIMESTAMP_OPTION_LEN as usize } else { 0 };
        let with_sack = !options.sack_blocks.is_empty();
        if !syn && with_sack && plan.len > 0 && plan.len as usize + options.emitted_len() > budget {
            options.sack_blocks = SackBlocks::new();
        }
        let window_len = self.window_field(syn);
        TcpRepr {
            src_port: self.tuple.local.1,
            dst_port: self.tuple.remote.1,
            seq_number: plan.seq,
            ack_number: if plan.flags.ack() { self.rcv_nxt } else { SeqNumber(0) },
            flags: plan.flags,
            window_len,
            urgent_pointer: 0,
            options,
            payload: &[],
        }
    }

    /// Whether `prev`, the header [`Connection::header_for`] built for `prev_plan` (already
    /// passed to [`Connection::on_segment_sent`]) in the same poll — same `now`, nothing received
    /// since — is, with SEQ and flags replaced by `plan`'s, the header `header_for` would build
    /// for `plan`. Data segments of such a burst (GSO-like) differ only there: the ACK, the
    /// window (RCV.ADV already moved) and the timestamps are the same. False when anything else
    /// could differ (another length, not plain data, SACK or D-SACK information to report).
    pub fn continues_burst(&self, prev_plan: &SegmentPlan, prev: &TcpRepr<'_>, plan: &SegmentPlan) -> bool {
        let data = |p: &SegmentPlan| p.kind == SegmentKind::Data && p.flags.ack() && !p.flags.syn();
        let sack_pending = self.sack_ok && (self.dsack.is_some() || self.rcvbuf.has_out_of_order());
        data(prev_plan)
            && data(plan)
            && plan.len == prev_plan.len
            && plan.len > 0
            && !sack_pending
            && prev.options.sack_blocks.is_empty()
    }

    /// The next segment of a burst of full-size data segments, without a full
    /// [`Connection::plan_segment`]: `prev` is the segment just recorded
    /// ([`Connection::on_segment_sent_in_burst`] or [`Connection::on_burst_segment_sent`]) in the
    /// same poll at the same `now`, nothing received since. `Some` only when these checks
    /// prove `plan_segment` would plan exactly this segment: `prev` was full-size plain data (so
    /// `plan_segment` took its established-state branch, which sending does not leave), no
    /// pacing hold, probe or chosen retransmission (sending data sets none of them; the
    /// retransmission would go first), room in the segment store, and at least one full
    /// segment of congestion and receive window with more than one segment unsent (so it is not
    /// the last, and Nagle and SWS avoidance pass: RFC 9293 §3.8.6.2.1 lets full segments go).
    /// `None` means "ask `plan_segment`", never "nothing to send".
    #[inline]
    pub fn next_in_burst(&self, prev: &SegmentPlan) -> Option<SegmentPlan> {
        let mss = self.snd_mss;
        let full = prev.kind == SegmentKind::Data && prev.flags == TcpFlags::ACK && prev.len == mss;
        if !full || mss == 0 || self.pacing_hold || self.tlp_probe.is_some() || self.next_rtx.is_some() {
            return None;
        }
        let unsent = (self.sndbuf.end_seq() - self.snd_nxt).max(0) as u32;
        let rwnd = ((self.snd_una + self.snd_wnd) - self.snd_nxt).max(0) as u32;
        if unsent <= mss || rwnd < mss || self.recovery.is_full() || self.cwnd_room() < mss {
            return None;
        }
        let next = SegmentPlan { kind: SegmentKind::Data, seq: self.snd_nxt, flags: TcpFlags::ACK, len: mss };
        debug_assert_eq!(Some(next), self.plan_segment(), "plan_segment disagrees with a burst continuation");
        Some(next)
    }

    /// [`Connection::on_segment_sent_in_burst`] for a segment [`Connection::next_in_burst`]
    /// planned. What the previous segment of the burst already did at this `now` is not
    /// repeated: the ACK bookkeeping (nothing was received since, so RCV.NXT, the pending ACK,
    /// D-SACK and the delayed-ACK timer are as it left them), the restart-from-idle check (the
    /// segment store holds the previous segment), the probe (none is pending), and the
    /// app-limited check (more than this segment was unsent).
    #[inline]
    pub fn on_burst_segment_sent(&mut self, plan: &SegmentPlan, now: Instant, stats: &mut Stats) {
        self.counters.segs_out += 1;
        let end = plan.seq + plan.len;
        self.snd_nxt = end;
        self.snd_max = self.snd_max.max(end);
        self.record_sent_in_burst(now, plan.seq, plan.len, stats);
        self.counters.data_segs_out += 1;
        self.counters.bytes_sent += u64::from(plan.len);
        stats.out_segs += 1;
    }

    /// Bookkeeping once the segment of `plan` is in the device's queue.
    pub fn on_segment_sent(&mut self, plan: &SegmentPlan, now: Instant, stats: &mut Stats) {
        self.on_segment_sent_in_burst(plan, now, stats);
        self.update_send_timers(now);
    }

    /// [`Self::on_segment_sent`] for one data segment of several sent in one go, without
    /// re-deriving the retransmission and persist timers: the caller calls
    /// `update_send_timers` once after the last. Those timers follow from the state the last
    /// segment leaves, and nothing on the transmit path between two segments reads them.
    pub fn on_segment_sent_in_burst(&mut self, plan: &SegmentPlan, now: Instant, stats: &mut Stats) {
        self.counters.segs_out += 1;
        self.last_send = now;
        if plan.flags.ack() {
            self.note_ack_sent();
        }
        let end = plan.seq + plan.len + u32::from(plan.flags.syn()) + u32::from(plan.flags.fin());
        let retransmission = match plan.kind {
            SegmentKind::Syn => {
                self.snd_nxt = end;
                self.snd_max = self.snd_max.max(end);
                if self.retries == 0 {
                    self.rtt_timing = Some((end, now));
                }
                self.retries > 0
            }
            SegmentKind::Data => {
                self.snd_nxt = end;
                self.snd_max = self.snd_max.max(end);
                if end != plan.seq {
                    self.record_sent(now, plan.seq, (end - plan.seq) as u32, false, stats);
                }
                false
            }
            SegmentKind::Retransmit => {
                self.record_sent(now, plan.seq, (end - plan.seq) as u32, true, stats);
                self.advance_retransmission(plan.seq, end);
                true
            }
            SegmentKind::Probe => {
                if self.send_keepalive {
                    stats.keepalive_probes += 1;
                } else {
                    stats.window_probes += 1;
                }
                self.send_window_probe = false;
                self.send_keepalive = false;
                false
            }
            SegmentKind::Ack => false,
        };
        if plan.len > 0 {
            self.last_data_sent = now;
            self.counters.data_segs_out += 1;
            self.counters.bytes_sent += u64::from(plan.len);
        }
        if retransmission {
            // Karn: no RTT sample from anything sent twice (RFC 6298 §3).
            self.rtt_timing = None;
            stats.retrans_segs += 1;
            self.counters.total_retrans += 1;
            self.counters.bytes_retrans += u64::from(plan.len);
        } else {
            stats.out_segs += 1;
        }
        if plan.flags.syn() && !self.timers.is_armed(TimerKind::Retransmit) {
            self.timers.set(TimerKind::Retransmit, now + self.recovery.rtt().rto());
        }
    }
}

#[cfg(test)]
#[path = "burst_tests.rs"]
mod burst_tests;
