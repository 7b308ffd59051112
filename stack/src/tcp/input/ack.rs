//! Fifth check: the ACK field (RFC 9293 §3.10.7.4 fifth), with RFC 5961 §5.2 ACK validation,
//! RFC 6298 RTT sampling and timer restart, RFC 5681 duplicate-ACK counting and RFC 6582
//! NewReno fast recovery, the send-window update rule, and the FIN-acknowledged transitions.

use super::InputContext;
use crate::tcp::congestion::AckSample;
use crate::tcp::connection::{event_bits, Connection};
use crate::tcp::state::State;
use crate::tcp::timers::TimerKind;
use crate::time::Duration;
use crate::wire::{SeqNumber, TcpRepr};

pub(super) enum AckOutcome {
    Continue,
    Drop,
    Reset(SeqNumber),
    Closed,
}

/// Duplicate ACKs that trigger fast retransmit (RFC 5681 §3.2).
const DUPACK_THRESHOLD: u32 = 3;

impl Connection {
    pub(super) fn on_ack(&mut self, seg: &TcpRepr<'_>, ctx: &mut InputContext<'_>) -> AckOutcome {
        let ack = seg.ack_number;
        if self.state == State::SynReceived {
            // "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED"; otherwise reset.
            if !(ack - self.snd_una > 0 && ack - self.snd_max <= 0) {
                return AckOutcome::Reset(ack);
            }
            self.establish(seg);
        }
        // RFC 5961 §5.2: acceptable iff SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT.
        let oldest = self.snd_una - self.max_snd_wnd.max(1);
        if ack - self.snd_max > 0 || ack - oldest < 0 {
            ctx.stats.bad_acks += 1;
            self.ack_now = true;
            return AckOutcome::Drop;
        }
        self.probes = 0;
        let window = u32::from(seg.window_len) << self.snd_wscale;
        let is_dup = ack == self.snd_una
            && seg.payload.is_empty()
            && !seg.flags.fin()
            && window == self.snd_wnd
            && self.snd_max != self.snd_una;
        if ack - self.snd_una > 0 {
            self.on_new_ack(ack, ctx);
        } else if is_dup {
            self.on_duplicate_ack(ctx);
        }
        if seg.options.sack_blocks.as_slice().first().is_some_and(|b| b.right - ack <= 0) {
            self.counters.dsack_received += 1;
        }
        // "If SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK), set SND.WND".
        if self.snd_wl1 - seg.seq_number < 0 || (self.snd_wl1 == seg.seq_number && self.snd_wl2 - ack <= 0) {
            self.snd_wnd = window;
            self.max_snd_wnd = self.max_snd_wnd.max(window);
            self.snd_wl1 = seg.seq_number;
            self.snd_wl2 = ack;
        }
        self.after_fin_acked(ctx)
    }

    /// SYN-RECEIVED -> ESTABLISHED on the handshake's final ACK.
    fn establish(&mut self, seg: &TcpRepr<'_>) {
        self.state = State::Established;
        self.snd_wnd = u32::from(seg.window_len) << self.snd_wscale;
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = seg.seq_number;
        self.snd_wl2 = seg.ack_number;
        self.retries = 0;
        self.raise(event_bits::CONNECTED | event_bits::WRITABLE);
        if self.fin_queued {
            self.state = State::FinWait1;
        }
    }

    fn on_new_ack(&mut self, ack: SeqNumber, ctx: &mut InputContext<'_>) {
        let flight_before = self.flight_size();
        let mut acked = (ack - self.snd_una) as u32;
        if self.snd_una == self.iss {
            acked -= 1; // the SYN
        }
        let data = self.sndbuf.ack_to(ack) as u32;
        self.snd_una = ack;
        if self.snd_nxt - ack < 0 {
            self.snd_nxt = ack;
        }
        if let Some((seq, sent)) = self.rtt_timing {
            if ack - seq >= 0 {
                self.rtt.on_sample(ctx.now - sent);
                self.rtt_timing = None;
            }
        }
        self.rtt.reset_backoff();
        self.retries = 0;
        self.rtx_since = None;
        // RFC 6298 §5.3: restart the timer when new data is acknowledged.
        self.timers.stop(TimerKind::Retransmit);
        self.counters.bytes_acked += u64::from(data);
        self.sample_delivery_rate(u64::from(data), ctx);
        if self.in_recovery {
            if ack - self.recover >= 0 {
                // RFC 6582 §3.2 step 6: full acknowledgment ends recovery.
                self.in_recovery = false;
                self.cc.on_recovery_exit(self.flight_size());
            } else {
                // Step 5: partial acknowledgment: retransmit the next hole, deflate.
                self.retransmit_head = true;
                self.cc.on_partial_ack(acked);
            }
        } else {
            let sample = AckSample { acked, flight_before, now: ctx.now };
            self.cc.on_ack(sample, &self.rtt);
        }
        self.dupacks = 0;
        if self.write_blocked && self.sndbuf.free() >= self.sndbuf.capacity() / 2 {
            self.write_blocked = false;
            self.raise(event_bits::WRITABLE);
        }
    }

    fn on_duplicate_ack(&mut self, ctx: &mut InputContext<'_>) {
        self.dupacks += 1;
        if self.in_recovery {
            // RFC 5681 §3.2 step 4: each further duplicate inflates cwnd by one SMSS.
            self.cc.on_recovery_dup_ack();
        } else if self.dupacks == DUPACK_THRESHOLD && self.snd_una - self.recover >= 0 {
            // RFC 6582 §3.2 step 2: only when the ACK covers more than `recover`.
            self.in_recovery = true;
            self.recover = self.snd_max;
            self.cc.on_congestion_event(self.flight_size());
            self.retransmit_head = true;
            ctx.stats.fast_retrans += 1;
            ctx.stats.reno_recovery += 1;
        }
    }

    /// Bytes/s acknowledged over roughly one smoothed RTT (like `ss` delivery_rate).
    fn sample_delivery_rate(&mut self, bytes: u64, ctx: &InputContext<'_>) {
        self.rate_bytes += bytes;
        let interval = ctx.now - self.rate_start;
        let srtt = self.rtt.srtt().unwrap_or(Duration::from_millis(1)).max(Duration::from_micros(10));
        if interval >= srtt {
            self.delivery_rate = self.rate_bytes.saturating_mul(1_000_000_000) / interval.as_nanos().max(1);
            self.rate_bytes = 0;
            self.rate_start = ctx.now;
        }
    }

    /// FIN-WAIT-1 -> FIN-WAIT-2, CLOSING -> TIME-WAIT, LAST-ACK -> CLOSED once our FIN is acked.
    fn after_fin_acked(&mut self, ctx: &mut InputContext<'_>) -> AckOutcome {
        if !self.fin_acked() {
            return AckOutcome::Continue;
        }
        match self.state {
            State::FinWait1 => {
                self.state = State::FinWait2;
                self.timers.stop(TimerKind::Retransmit);
                if self.orphaned {
                    self.timers.set(TimerKind::Linger, ctx.now + ctx.cfg.fin_wait2_timeout);
                }
                AckOutcome::Continue
            }
            State::Closing => {
                self.enter_time_wait(ctx.now, ctx.cfg);
                AckOutcome::Drop
            }
            State::LastAck => {
                self.terminate(None);
                AckOutcome::Closed
            }
            _ => AckOutcome::Continue,
        }
    }
}
