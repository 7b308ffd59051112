//! Fifth check: the ACK field (RFC 9293 §3.10.7.4 fifth), with RFC 5961 §5.2 ACK validation,
//! the hand-off of every acceptable ACK (cumulative point, SACK and D-SACK blocks, echoed
//! timestamp) to loss recovery and congestion control (`tcp/sender.rs`), the send-window update
//! rule, and the FIN-acknowledged transitions.

use super::InputContext;
use crate::tcp::connection::{event_bits, Connection};
use crate::tcp::state::State;
use crate::tcp::timers::TimerKind;
use crate::wire::{SeqNumber, TcpRepr};

pub(super) enum AckOutcome {
    Continue,
    Drop,
    Reset(SeqNumber),
    Closed,
}

impl Connection {
    pub(super) fn on_ack(&mut self, seg: &TcpRepr<'_>, ctx: &mut InputContext<'_>) -> AckOutcome {
        let ack = seg.ack_number;
        if self.state == State::SynReceived {
            // "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED"; otherwise reset.
            if !(ack - self.snd_una > 0 && ack - self.snd_max <= 0) {
                return AckOutcome::Reset(ack);
            }
            self.establish(seg, ctx);
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
        let blocks = seg.options.sack_blocks.as_slice();
        if ack - self.snd_una > 0 || is_dup || !blocks.is_empty() {
            let tsecr = seg.options.timestamps.map(|t| t.tsecr);
            self.on_ack_recovery(ctx.now, ack, blocks, tsecr, is_dup, ctx.stats);
        }
        if ack - self.snd_una > 0 {
            self.on_new_ack(ack);
        }
        self.update_send_window(seg.seq_number, ack, window);
        self.after_fin_acked(ctx)
    }

    /// RFC 9293 §3.10.7.4, fifth check: "If SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and
    /// SND.WL2 =< SEG.ACK), set SND.WND <- SEG.WND, set SND.WL1 <- SEG.SEQ, and set
    /// SND.WL2 <- SEG.ACK" (`window` already scaled). Shared with the predicted path.
    #[inline]
    pub(super) fn update_send_window(&mut self, seq: SeqNumber, ack: SeqNumber, window: u32) {
        if self.snd_wl1 - seq < 0 || (self.snd_wl1 == seq && self.snd_wl2 - ack <= 0) {
            self.snd_wnd = window;
            self.max_snd_wnd = self.max_snd_wnd.max(window);
            self.snd_wl1 = seq;
            self.snd_wl2 = ack;
        }
    }

    /// SYN-RECEIVED -> ESTABLISHED on the handshake's final ACK.
    fn establish(&mut self, seg: &TcpRepr<'_>, ctx: &InputContext<'_>) {
        self.state = State::Established;
        self.on_handshake_acked(ctx.now);
        self.snd_una = self.iss + 1;
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

    /// SND.UNA advances to `ack` (loss recovery has already seen the ACK).
    fn on_new_ack(&mut self, ack: SeqNumber) {
        let data = self.sndbuf.ack_to(ack) as u32;
        self.snd_una = ack;
        if self.snd_nxt - ack < 0 {
            self.snd_nxt = ack;
        }
        self.counters.bytes_acked += u64::from(data);
        if self.write_blocked && self.sndbuf.free() >= self.sndbuf.capacity() / 2 {
            self.write_blocked = false;
            self.raise(event_bits::WRITABLE);
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
