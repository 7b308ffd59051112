//! The pure ACK (RFC 9293 §3.10.7.4 "send an acknowledgment", RFC 1122 §4.2.3.2 delayed ACK,
//! RFC 9293 §3.8.6.2.2 window update) of a connection that has nothing else to send: the
//! segment the engine's pure-ACK fast path (`engine/transmit/pure_ack.rs`) emits without
//! planning.
//!
//! Owns the test that `plan_segment` would answer with a bare ACK and nothing but it
//! ([`Connection::pure_ack_due`]), that ACK's header ([`Connection::pure_ack_header`], what
//! `header_for` builds for it) and its bookkeeping ([`Connection::on_pure_ack_sent`], what
//! `on_segment_sent` does for it). Promises: each is exactly what the general path does for the
//! same ACK (`engine/transmit/pure_ack/tests.rs` compares frames and the whole connection).
//! Must not: accept a connection with data, a FIN, a retransmission, a probe or SACK
//! information to send, or any state but ESTABLISHED — those take the general path.

use super::connection::Connection;
use super::state::State;
use super::timers::TimerKind;
use crate::stats::Stats;
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpOptions, TcpRepr, Timestamps};

impl Connection {
    /// True when `plan_segment` would plan a bare ACK at SND.NXT and the ACK would carry no SACK
    /// blocks: ESTABLISHED, an ACK or window update due, and no tail loss probe, retransmission,
    /// unsent data, FIN, window or keepalive probe, D-SACK or out-of-order data to report.
    /// (The pacer's hold only gates data, of which there is none.)
    #[inline]
    pub fn pure_ack_due(&self) -> bool {
        self.state == State::Established
            && self.tlp_probe.is_none()
            && self.next_rtx.is_none()
            && !self.fin_queued
            && self.sndbuf.end_seq() == self.snd_nxt
            && !self.send_window_probe
            && !self.send_keepalive
            && !(self.sack_ok && (self.dsack.is_some() || self.rcvbuf.has_out_of_order()))
            && (self.ack_now || self.window_update_due())
    }

    /// The header `header_for` builds for the bare ACK [`Self::pure_ack_due`] found: SEQ =
    /// SND.NXT, ACK = RCV.NXT, timestamps when in use (no SACK blocks, by the test). Moves
    /// RCV.ADV as `header_for` does, so call it only for an ACK about to be sent.
    #[inline]
    pub fn pure_ack_header(&mut self, now: Instant) -> TcpRepr<'static> {
        let timestamps = self.ts.map(|t| Timestamps { tsval: self.ts_now(now), tsecr: t.recent });
        let window_len = self.window_field(false);
        TcpRepr {
            src_port: self.tuple.local.1,
            dst_port: self.tuple.remote.1,
            seq_number: self.snd_nxt,
            ack_number: self.rcv_nxt,
            flags: TcpFlags::ACK,
            window_len,
            urgent_pointer: 0,
            options: TcpOptions { timestamps, ..TcpOptions::default() },
            payload: &[],
        }
    }

    /// `on_segment_sent` for the bare ACK: the ACK-related bookkeeping (RCV.NXT reported, the
    /// delayed-ACK timer and the D-SACK report done, RFC 1122 §4.2.3.2) and the counters. The
    /// send timers are not re-derived here: the ACK changes nothing they follow from, and the
    /// engine's `after_update`, which `poll_transmit` runs next at the same `now`, re-derives
    /// them (`update_send_timers` applied twice is applied once, so `on_segment_sent`'s own
    /// call changes nothing the engine's does not).
    #[inline]
    pub fn on_pure_ack_sent(&mut self, now: Instant, stats: &mut Stats) {
        self.counters.segs_out += 1;
        self.last_send = now;
        self.note_ack_sent();
        stats.out_segs += 1;
    }

    /// What any segment carrying ACK = RCV.NXT settles, bare or not (RFC 1122 §4.2.3.2): the
    /// pending and delayed ACK are answered, the acknowledged-bytes count restarts and a D-SACK
    /// report has been made.
    #[inline]
    pub(super) fn note_ack_sent(&mut self) {
        self.last_ack_sent = self.rcv_nxt;
        self.ack_now = false;
        self.unacked_bytes = 0;
        self.dsack = None;
        self.timers.stop(TimerKind::DelayedAck);
    }

    /// Whether `plan_segment` could plan anything. False means it certainly plans nothing:
    /// every source of a segment but a window update is one of [`Self::wants_output`]'s flags,
    /// and the window update is asked directly. The engine's ready check uses it before
    /// planning, and after a pure ACK it is always false (checked in debug builds).
    #[inline]
    pub fn may_plan_more(&self) -> bool {
        self.wants_output() || self.window_update_due()
    }
}
