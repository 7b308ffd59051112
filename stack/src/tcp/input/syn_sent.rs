//! SYN-SENT (RFC 9293 §3.10.7.3): the answer to our SYN — a SYN-ACK (active open completes), a
//! bare SYN (simultaneous open, §3.5 figure 7), a RST (refused), or garbage.

use super::{InputAction, InputContext};
use crate::tcp::connection::{event_bits, Connection, ConnectionError};
use crate::tcp::state::State;
use crate::tcp::timers::TimerKind;
use crate::wire::TcpRepr;

impl Connection {
    pub(super) fn on_segment_syn_sent(
        &mut self,
        seg: &TcpRepr<'_>,
        ctx: &mut InputContext<'_>,
    ) -> InputAction {
        let ack = seg.ack_number;
        let ack_ok = seg.flags.ack() && ack - self.iss > 0 && ack - self.snd_max <= 0;
        if seg.flags.ack() && !ack_ok {
            // First check: "If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset (unless the RST
            // bit is set, if so drop the segment)".
            if seg.flags.rst() {
                return InputAction::None;
            }
            return InputAction::Reset { seq: ack };
        }
        if seg.flags.rst() {
            // Second check: only a RST that acknowledges our SYN is believed (RFC 5961 §3 note).
            if ack_ok {
                ctx.stats.attempt_fails += 1;
                self.terminate(Some(ConnectionError::Refused));
            }
            return InputAction::None;
        }
        if !seg.flags.syn() {
            return InputAction::None;
        }
        // Fourth check: the SYN.
        self.irs = seg.seq_number;
        self.rcv_nxt = seg.seq_number + 1;
        // Our SYN offered an unscaled window of at most 64 KiB (RFC 7323 §2.2).
        self.rcv_adv = self.rcv_nxt + self.desired_rcv_window().min(65535);
        self.last_ack_sent = self.rcv_nxt;
        self.negotiate(&seg.options, ctx.cfg, ctx.now);
        self.last_recv = ctx.now;
        if ack_ok {
            self.snd_una = ack;
            self.on_handshake_acked(ctx.now);
            self.retries = 0;
            self.timers.stop(TimerKind::Retransmit);
            // Window fields in SYN segments are never scaled (RFC 7323 §2.2).
            self.snd_wnd = u32::from(seg.window_len);
            self.max_snd_wnd = self.snd_wnd;
            self.snd_wl1 = seg.seq_number;
            self.snd_wl2 = ack;
            self.state = if self.fin_queued { State::FinWait1 } else { State::Established };
            self.ack_now = true;
            self.raise(event_bits::CONNECTED | event_bits::WRITABLE);
        } else {
            // Simultaneous open: answer with SYN-ACK <SEQ=ISS><ACK=RCV.NXT>.
            self.state = State::SynReceived;
            self.snd_nxt = self.iss;
            self.snd_wnd = u32::from(seg.window_len);
            self.max_snd_wnd = self.snd_wnd;
            self.snd_wl1 = seg.seq_number;
            self.snd_wl2 = self.iss;
            self.timers.stop(TimerKind::Retransmit);
            self.rtt_timing = None;
        }
        self.update_keepalive(ctx.now);
        // Data or FIN riding on the SYN-ACK is processed as in ESTABLISHED (sixth step on).
        if ack_ok {
            let rest = TcpRepr { seq_number: seg.seq_number + 1, ..*seg };
            if let Some(action) = self.on_text(&rest, ctx) {
                return action;
            }
            self.on_fin(&rest, ctx);
        }
        InputAction::None
    }
}
