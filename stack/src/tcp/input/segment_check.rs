//! First check (RFC 9293 §3.10.7.4): PAWS (RFC 7323 §5.3) and the sequence-number
//! acceptability test; TS.Recent bookkeeping (RFC 7323 §4.3).

use super::InputContext;
use crate::tcp::connection::Connection;
use crate::tcp::state::State;
use crate::tcp::timers::TimerKind;
use crate::time::Duration;
use crate::wire::{SeqNumber, TcpRepr};

/// RFC 7323 §5.5: TS.Recent older than 24 days is no longer trusted for PAWS.
const PAWS_IDLE_LIMIT: Duration = Duration::from_secs(24 * 24 * 3600);

/// Sequence space a segment occupies: payload plus SYN and FIN (RFC 9293 §3.4).
pub fn segment_len(seg: &TcpRepr<'_>) -> u32 {
    seg.payload.len() as u32 + u32::from(seg.flags.syn()) + u32::from(seg.flags.fin())
}

impl Connection {
    /// True if processing continues; otherwise the segment was dropped (with an ACK when the
    /// rules call for one).
    pub(super) fn check_segment(&mut self, seg: &TcpRepr<'_>, ctx: &mut InputContext<'_>) -> bool {
        if self.paws_rejects(seg, ctx) {
            ctx.stats.paws_drops += 1;
            if !seg.flags.rst() {
                self.ack_now = true;
                self.note_old_duplicate(seg, ctx);
            }
            return false;
        }
        let len = segment_len(seg);
        if !self.acceptable(seg, len) {
            ctx.stats.out_of_window += 1;
            // RFC 9293: an unacceptable RST is dropped silently (RFC 5961 §3.2 too).
            if !seg.flags.rst() {
                self.ack_now = true;
                self.note_old_duplicate(seg, ctx);
                if self.state == State::TimeWait && seg.flags.fin() {
                    // A retransmitted FIN: our last ACK was lost; restart 2*MSL (eighth step).
                    self.timers.set(TimerKind::Linger, ctx.now + ctx.cfg.time_wait);
                }
            }
            return false;
        }
        self.update_ts_recent(seg, len, ctx);
        true
    }

    /// RFC 2883 §4.1.1: data entirely below RCV.NXT was received twice; report it as D-SACK.
    fn note_old_duplicate(&mut self, seg: &TcpRepr<'_>, ctx: &mut InputContext<'_>) {
        let end = seg.seq_number + seg.payload.len() as u32;
        if self.sack_ok && !seg.payload.is_empty() && end - self.rcv_nxt <= 0 {
            self.dsack = Some(crate::wire::SackBlock { left: seg.seq_number, right: end });
            ctx.stats.dsack_sent += 1;
        }
    }

    /// RFC 7323 §5.3 R1: drop a non-RST segment whose TSval is older than TS.Recent.
    fn paws_rejects(&self, seg: &TcpRepr<'_>, ctx: &InputContext<'_>) -> bool {
        let (Some(ts), Some(opt)) = (self.ts, seg.options.timestamps) else { return false };
        if seg.flags.rst() || seg.flags.syn() {
            return false;
        }
        let older = (opt.tsval.wrapping_sub(ts.recent) as i32) < 0;
        older && ctx.now - ts.recent_age < PAWS_IDLE_LIMIT
    }

    /// The four-case acceptability table of RFC 9293 §3.10.7.4.
    fn acceptable(&self, seg: &TcpRepr<'_>, len: u32) -> bool {
        let wnd = (self.rcv_adv - self.rcv_nxt).max(0) as u32;
        in_receive_window(self.rcv_nxt, wnd, seg.seq_number, len)
    }

    /// RFC 7323 §4.3 (3): TS.Recent <- SEG.TSval when SEG.SEQ <= Last.ACK.sent < SEG.SEQ + len.
    pub(super) fn update_ts_recent(&mut self, seg: &TcpRepr<'_>, len: u32, ctx: &InputContext<'_>) {
        let (Some(ts), Some(opt)) = (self.ts.as_mut(), seg.options.timestamps) else { return };
        let covers = seg.seq_number - self.last_ack_sent <= 0
            && (self.last_ack_sent - (seg.seq_number + len) < 0 || len == 0);
        if covers && (opt.tsval.wrapping_sub(ts.recent) as i32) >= 0 {
            ts.recent = opt.tsval;
            ts.recent_age = ctx.now;
        }
    }
}

/// The four-case acceptability table of RFC 9293 §3.10.7.4: is a segment of `len` at `seq`
/// acceptable for a receive window of `wnd` at `rcv_nxt`? Shared by connections and compact
/// TIME-WAIT records.
pub(super) fn in_receive_window(rcv_nxt: SeqNumber, wnd: u32, seq: SeqNumber, len: u32) -> bool {
    match (len, wnd) {
        (0, 0) => seq == rcv_nxt,
        (0, _) => seq.in_window(rcv_nxt, wnd),
        // A zero window accepts no data, but ACK/RST/URG of a segment at RCV.NXT are still
        // processed ("special allowance", §3.10.7.4); the data is then trimmed away.
        (_, 0) => seq == rcv_nxt,
        (_, _) => seq.in_window(rcv_nxt, wnd) || (seq + (len - 1)).in_window(rcv_nxt, wnd),
    }
}
