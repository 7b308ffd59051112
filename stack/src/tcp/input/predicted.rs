//! Header prediction on input (Van Jacobson's fast path; RFC 9293 does not forbid it): the
//! segment an ESTABLISHED receiver expects next — in order at RCV.NXT, carrying data, with
//! nothing of ours in flight — skips the checks that cannot fail for it and goes straight to
//! the text.
//!
//! Owns the prediction (which segments qualify) and their shortened processing. Promises: a
//! segment that qualifies leaves the connection exactly as [`Connection::on_segment`]'s general
//! path would, once the engine has re-derived the send timers (`Engine::after_update` calls
//! `update_send_timers` after every segment, at the same `now`, so the general path's own call is
//! not repeated here). `predicted_tests` drives both paths with random segments and compares the
//! whole connection. Must not: take a segment the general path would treat differently (any
//! flag besides ACK/PSH, a sequence other than RCV.NXT, an ACK that is not SND.UNA or data in
//! flight, SACK blocks, a timestamp PAWS could reject, a closed window, an orphaned connection).

use super::InputContext;
use crate::tcp::connection::Connection;
use crate::tcp::state::State;
use crate::wire::{TcpFlags, TcpRepr};

impl Connection {
    /// Whether `seg` is the predicted next segment (see the module text for the list).
    #[inline]
    pub(super) fn predicts(&self, seg: &TcpRepr<'_>) -> bool {
        let flags = seg.flags.0 & !TcpFlags::PSH.0;
        let timestamps_fit = match (self.ts, seg.options.timestamps) {
            // RFC 7323 §5.3 R1: not older than TS.Recent, so PAWS accepts it.
            (Some(ts), Some(opt)) => (opt.tsval.wrapping_sub(ts.recent) as i32) >= 0,
            (None, None) => true,
            _ => false,
        };
        self.state == State::Established
            && flags == TcpFlags::ACK.0
            && seg.seq_number == self.rcv_nxt
            && !seg.payload.is_empty()
            && self.rcv_adv - self.rcv_nxt > 0
            && seg.ack_number == self.snd_una
            && self.snd_max == self.snd_una
            && seg.options.sack_blocks.is_empty()
            && timestamps_fit
            && !self.orphaned
    }

    /// RFC 9293 §3.10.7.4 for a predicted segment: of the first check only the TS.Recent update
    /// remains (the sequence test and PAWS pass by the prediction), no RST/SYN, the fifth check
    /// reduces to the send-window update (the ACK is SND.UNA with nothing in flight: no new
    /// data acknowledged, not a duplicate, nothing for loss recovery), then the text; no FIN.
    pub(super) fn on_predicted_segment(&mut self, seg: &TcpRepr<'_>, ctx: &mut InputContext<'_>) {
        self.counters.segs_in += 1;
        self.update_ts_recent(seg, seg.payload.len() as u32, ctx);
        self.last_recv = ctx.now;
        self.keepalive_probes = 0;
        self.probes = 0;
        // The send-window update rule of the fifth check, as `on_ack` applies it.
        let window = u32::from(seg.window_len) << self.snd_wscale;
        self.update_send_window(seg.seq_number, seg.ack_number, window);
        // Not orphaned (predicted), so the text never asks for a reset.
        let action = self.on_text(seg, ctx);
        debug_assert!(action.is_none());
        self.update_keepalive(ctx.now);
    }
}
