//! Seventh and eighth steps (RFC 9293 §3.10.7.4): segment text and the FIN bit.
//!
//! In-order bytes go to the receive buffer, out-of-order bytes are held in it with SACK ranges.
//! ACK policy (RFC 9293 §3.8.6.3, RFC 5681 §4.2, RFC 1122): ACK at least every second
//! full-sized segment, within the delayed-ACK timeout otherwise, and immediately for
//! out-of-order data, data that fills a hole, duplicates (D-SACK), or with TCP_QUICKACK.

use super::{InputAction, InputContext};
use crate::tcp::connection::{event_bits, Connection};
use crate::tcp::state::State;
use crate::tcp::timers::TimerKind;
use crate::time::Instant;
use crate::wire::TcpRepr;

impl Connection {
    pub(super) fn on_text(&mut self, seg: &TcpRepr<'_>, ctx: &mut InputContext<'_>) -> Option<InputAction> {
        if seg.payload.is_empty() || !self.state.can_receive_data() {
            return None;
        }
        let end = seg.seq_number + seg.payload.len() as u32;
        if self.orphaned && end - self.rcv_nxt > 0 {
            // Nobody will ever read this: reset, as Linux does (TCPAbortOnData).
            ctx.stats.abort_on_data += 1;
            let seq = self.snd_nxt;
            self.terminate(None);
            return Some(InputAction::Reset { seq });
        }
        self.counters.data_segs_in += 1;
        let rcv_nxt_before = self.rcv_nxt;
        let out = self.rcvbuf.insert(&mut self.rcv_nxt, seg.seq_number, seg.payload);
        if out.dsack.is_some() && self.sack_ok {
            self.dsack = out.dsack;
            ctx.stats.dsack_sent += 1;
        }
        if out.dsack.is_some() || out.out_of_order || out.filled_hole || out.dropped {
            self.ack_now = true;
        }
        if out.out_of_order {
            ctx.stats.ofo_queue += 1;
        }
        if out.dropped {
            if seg.seq_number - rcv_nxt_before > 0 {
                ctx.stats.ofo_drop += 1;
            } else {
                ctx.stats.rcv_beyond_window += 1;
            }
        }
        if out.advanced > 0 {
            self.on_in_order_data(out.advanced as u32, seg.payload.len() as u32, ctx);
        }
        None
    }

    fn on_in_order_data(&mut self, advanced: u32, seg_len: u32, ctx: &mut InputContext<'_>) {
        self.counters.bytes_received += u64::from(advanced);
        self.raise(event_bits::READABLE);
        self.rcv_mss = self.rcv_mss.max(seg_len.min(self.adv_mss));
        self.unacked_bytes = self.unacked_bytes.saturating_add(advanced);
        self.measure_receiver_rtt(ctx);
        if self.opts.quickack || self.unacked_bytes >= 2 * self.rcv_mss {
            self.ack_now = true;
        } else if !self.timers.is_armed(TimerKind::DelayedAck) {
            self.timers.set(TimerKind::DelayedAck, ctx.now + ctx.cfg.delayed_ack);
        }
    }

    /// Receiver-side RTT (like Linux's tcp_rcv_rtt_measure): time for the sender to fill one
    /// window we announced, measured without timestamps so it has full clock resolution.
    fn measure_receiver_rtt(&mut self, ctx: &InputContext<'_>) {
        match self.rcv_rtt_mark {
            Some((seq, at)) if self.rcv_nxt - seq >= 0 => {
                let sample = ctx.now - at;
                self.rcv_rtt = Some(match self.rcv_rtt {
                    Some(old) if old < sample => old,
                    _ => sample,
                });
                self.rcv_rtt_mark = None;
            }
            Some(_) => {}
            None => {
                let window = (self.rcv_adv - self.rcv_nxt).max(0) as u32;
                self.rcv_rtt_mark = Some((self.rcv_nxt + window.max(self.rcv_mss), ctx.now));
            }
        }
    }

    /// Receive-window auto-tuning (dynamic right-sizing, as Linux's `tcp_rcv_space_adjust`):
    /// called with the bytes the application just consumed. Once per receiver RTT, when the
    /// application consumed more than half the current limit per RTT, the limit
    /// grows to twice that per-RTT amount (doubling per RTT, like the sender's slow start, so it
    /// does not invite a burst far beyond the path), up to the receive buffer. Counting what the application
    /// *reads* (not what arrives) keeps a slow reader's window, and the memory it pins, small,
    /// while one flow with a fast reader can fill a long, fast path.
    pub fn on_app_read(&mut self, consumed: usize, now: Instant) {
        self.autotune_bytes = self.autotune_bytes.saturating_add(consumed as u32);
        let Some(rtt) = self.rcv_rtt else { return };
        let elapsed = now - self.autotune_start;
        if elapsed < rtt || elapsed.is_zero() {
            return;
        }
        // Bytes consumed per RTT over the whole period (the application may have paused).
        let per_rtt = (u64::from(self.autotune_bytes) * rtt.as_nanos() / elapsed.as_nanos()) as u32;
        let cap = self.rcvbuf.capacity() as u32;
        if per_rtt.saturating_mul(2) > self.rcv_wnd_limit {
            self.rcv_wnd_limit = self.rcv_wnd_limit.max(per_rtt.saturating_mul(2)).min(cap);
        }
        self.autotune_bytes = 0;
        self.autotune_start = now;
    }

    /// Eighth step: the FIN bit, processed only once all data before it has arrived.
    pub(super) fn on_fin(&mut self, seg: &TcpRepr<'_>, ctx: &mut InputContext<'_>) {
        if !seg.flags.fin() || self.state == State::Closed {
            return;
        }
        let fin_seq = seg.seq_number + seg.payload.len() as u32;
        if self.fin_received || fin_seq != self.rcv_nxt {
            self.ack_now = true;
            return;
        }
        self.rcv_nxt += 1;
        self.fin_received = true;
        self.ack_now = true;
        self.raise(event_bits::READ_CLOSED);
        match self.state {
            State::SynReceived | State::Established => self.state = State::CloseWait,
            State::FinWait1 if self.fin_acked() => self.enter_time_wait(ctx.now, ctx.cfg),
            State::FinWait1 => self.state = State::Closing,
            State::FinWait2 => self.enter_time_wait(ctx.now, ctx.cfg),
            State::TimeWait => self.timers.set(TimerKind::Linger, ctx.now + ctx.cfg.time_wait),
            _ => {}
        }
    }
}
