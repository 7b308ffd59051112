//! Segment arrival on a compact TIME-WAIT record (RFC 9293 §3.10.7.4 in TIME-WAIT).
//!
//! Owns [`TimeWaitRecord`]: what is left of a connection once it is in TIME-WAIT and the
//! application has let go of it — the numbers the TIME-WAIT rules read and the ACK they send,
//! 48 bytes instead of the whole `Connection`. [`TimeWaitRecord::on_segment`] applies the same
//! rules, in the same order, as [`Connection::on_segment`] does for a connection in TIME-WAIT
//! (`segment_check`, `rst`, `syn`, `ack`, `data` of this folder), so the peer sees the same
//! segments whichever form the engine keeps:
//! - a new SYN that may reopen the tuple (RFC 9293 §3.10.7.4 fourth check note, RFC 6191):
//!   [`TimeWaitAction::Reopen`];
//! - PAWS (RFC 7323 §5.3): an old timestamp is dropped and answered with an ACK;
//! - an unacceptable segment is answered with an ACK; a retransmitted FIN also restarts 2*MSL
//!   (our last ACK was lost);
//! - a RST at exactly RCV.NXT removes the record (RFC 5961 §3.2; Linux default, `rfc1337 = 0`),
//!   elsewhere in the window it draws a rate-limited challenge ACK, as does an in-window SYN;
//! - an ACK outside what we sent is answered with an ACK (RFC 5961 §5.2), an acceptable FIN
//!   with an ACK; an acceptable pure ACK is dropped silently.
//!
//! In TIME-WAIT our FIN is acknowledged, so SND.UNA = SND.NXT = SND.MAX, and the peer's FIN is
//! in, so the advertised window never moves again: one `snd_nxt` and the window field as last
//! advertised describe every ACK the record can send.
//!
//! Must not: allocate, panic on any segment, or send anything itself (it returns what to send).

use super::segment_check::in_receive_window;
use super::InputContext;
use crate::tcp::connection::{Connection, FourTuple};
use crate::tcp::state::State;
use crate::time::Instant;
use crate::wire::{SackBlock, SackBlocks, SeqNumber, TcpOptions, TcpRepr, Timestamps};

/// RFC 7323 §5.5: TS.Recent older than 24 days (in seconds) is no longer trusted for PAWS, as
/// in the full connection's first check (which counts nanoseconds: the two may differ only
/// within a second of the 24-day mark).
const PAWS_IDLE_LIMIT_SECS: u64 = 24 * 24 * 3600;

/// A connection in TIME-WAIT, reduced to what the TIME-WAIT rules need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeWaitRecord {
    pub tuple: FourTuple,
    /// SND.NXT (= SND.UNA = SND.MAX): the sequence number of our ACKs.
    pub snd_nxt: SeqNumber,
    /// RCV.NXT: just past the peer's FIN.
    pub rcv_nxt: SeqNumber,
    /// RCV.ADV - RCV.NXT: the window the acceptability test uses (RFC 9293 §3.10.7.4).
    pub rcv_wnd: u32,
    /// Largest window the peer offered: bounds acceptable ACKs (RFC 5961 §5.2).
    pub max_snd_wnd: u32,
    /// TS.Recent (RFC 7323 §4.3) when timestamps are in use.
    pub ts_recent: u32,
    /// Our random timestamp offset (RFC 7323 §5.4): TSval = now in ms + offset.
    pub ts_offset: u32,
    /// When TS.Recent was last updated, in whole seconds of the engine clock (PAWS idle
    /// check, RFC 7323 §5.5; seconds keep the record within 48 bytes).
    pub ts_recent_age_secs: u32,
    /// The window field of our ACKs (already scaled down).
    pub window_field: u16,
    /// Timestamps were negotiated (RFC 7323).
    pub timestamps: bool,
    /// SACK was negotiated: duplicates are reported as D-SACK (RFC 2883).
    pub sack_ok: bool,
    /// The engine has an ACK for this record queued (one per transmit round, as a full
    /// connection's `ack_now`).
    pub ack_queued: bool,
}

/// What the engine must do after a segment hit a TIME-WAIT record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeWaitAction {
    /// Drop it silently.
    None,
    /// Answer with an ACK (reporting `dsack` when set); `restart` the 2*MSL timer when the
    /// segment was a retransmitted FIN.
    Ack { dsack: Option<SackBlock>, restart: bool },
    /// An acceptable RST: forget the record (RFC 9293 §3.10.7.4 second check).
    Close,
    /// A new SYN may open a new incarnation: forget the record and hand the SYN to LISTEN.
    Reopen,
}

impl TimeWaitRecord {
    /// The record of `conn`, or `None` when it is not a settled TIME-WAIT connection (not in
    /// TIME-WAIT, or an ACK or data still owed): the engine then keeps the full connection.
    pub fn from_connection(conn: &mut Connection) -> Option<Self> {
        let settled = conn.state == State::TimeWait
            && conn.fin_received
            && conn.snd_una == conn.snd_nxt
            && conn.snd_nxt == conn.snd_max
            && conn.last_ack_sent == conn.rcv_nxt
            && conn.plan_segment().is_none();
        if !settled {
            return None;
        }
        // In TIME-WAIT the desired window is zero (FIN received): this is the field every later
        // ACK of the full connection would carry, and it settles RCV.ADV if it was behind.
        let window_field = conn.window_field(false);
        let ts = conn.ts;
        Some(TimeWaitRecord {
            tuple: conn.tuple,
            snd_nxt: conn.snd_nxt,
            rcv_nxt: conn.rcv_nxt,
            rcv_wnd: (conn.rcv_adv - conn.rcv_nxt).max(0) as u32,
            max_snd_wnd: conn.max_snd_wnd,
            ts_recent: ts.map_or(0, |t| t.recent),
            ts_offset: ts.map_or(0, |t| t.offset),
            ts_recent_age_secs: ts.map_or(0, |t| secs(t.recent_age)),
            window_field,
            timestamps: ts.is_some(),
            sack_ok: conn.sack_ok,
            ack_queued: false,
        })
    }

    /// RFC 9293 §3.10.7.4 for TIME-WAIT, as [`Connection::on_segment`] applies it.
    pub fn on_segment(&mut self, seg: &TcpRepr<'_>, ctx: &mut InputContext<'_>) -> TimeWaitAction {
        let new_syn = seg.flags.syn() && !seg.flags.ack() && !seg.flags.rst();
        if new_syn && self.syn_may_reopen(seg) {
            return TimeWaitAction::Reopen;
        }
        if self.paws_rejects(seg, ctx.now) {
            ctx.stats.paws_drops += 1;
            return self.ack_unacceptable(seg, ctx, false);
        }
        let len = super::segment_check::segment_len(seg);
        if !in_receive_window(self.rcv_nxt, self.rcv_wnd, seg.seq_number, len) {
            ctx.stats.out_of_window += 1;
            return self.ack_unacceptable(seg, ctx, seg.flags.fin());
        }
        self.update_ts_recent(seg, len, ctx.now);
        if seg.flags.rst() {
            if seg.seq_number == self.rcv_nxt {
                return TimeWaitAction::Close;
            }
            return challenge_ack(ctx);
        }
        if seg.flags.syn() {
            return challenge_ack(ctx);
        }
        if !seg.flags.ack() {
            return TimeWaitAction::None;
        }
        let oldest = self.snd_nxt - self.max_snd_wnd.max(1);
        if seg.ack_number - self.snd_nxt > 0 || seg.ack_number - oldest < 0 {
            ctx.stats.bad_acks += 1;
            return TimeWaitAction::Ack { dsack: None, restart: false };
        }
        // The FIN is in already: any FIN bit is acknowledged again (eighth step).
        if seg.flags.fin() {
            return TimeWaitAction::Ack { dsack: None, restart: false };
        }
        TimeWaitAction::None
    }

    /// The options and window of our next ACK at `now`.
    pub fn ack_options(&self, now: Instant, dsack: Option<SackBlock>) -> TcpOptions {
        let tsval = (now.as_millis() as u32).wrapping_add(self.ts_offset);
        let mut options = TcpOptions {
            timestamps: self.timestamps.then_some(Timestamps { tsval, tsecr: self.ts_recent }),
            ..TcpOptions::default()
        };
        if let (true, Some(block)) = (self.sack_ok, dsack) {
            let mut blocks = SackBlocks::new();
            blocks.push(block);
            options.sack_blocks = blocks;
        }
        options
    }

    /// A segment dropped by the first check (PAWS or the window): ACK it unless it is a RST,
    /// reporting a duplicate as D-SACK (RFC 2883 §4.1.1).
    fn ack_unacceptable(
        &self,
        seg: &TcpRepr<'_>,
        ctx: &mut InputContext<'_>,
        restart: bool,
    ) -> TimeWaitAction {
        if seg.flags.rst() {
            return TimeWaitAction::None;
        }
        let end = seg.seq_number + seg.payload.len() as u32;
        let dsack = (self.sack_ok && !seg.payload.is_empty() && end - self.rcv_nxt <= 0)
            .then_some(SackBlock { left: seg.seq_number, right: end });
        if dsack.is_some() {
            ctx.stats.dsack_sent += 1;
        }
        TimeWaitAction::Ack { dsack, restart }
    }

    /// The reopen rule of [`Connection::on_segment`] (`syn_may_reopen`, RFC 6191 §2).
    fn syn_may_reopen(&self, seg: &TcpRepr<'_>) -> bool {
        let recent = self.timestamps.then_some(self.ts_recent);
        super::syn_may_reopen(self.rcv_nxt, recent, seg)
    }

    /// RFC 7323 §5.3 R1.
    fn paws_rejects(&self, seg: &TcpRepr<'_>, now: Instant) -> bool {
        let Some(opt) = seg.options.timestamps.filter(|_| self.timestamps) else { return false };
        if seg.flags.rst() || seg.flags.syn() {
            return false;
        }
        let older = (opt.tsval.wrapping_sub(self.ts_recent) as i32) < 0;
        older && u64::from(secs(now).wrapping_sub(self.ts_recent_age_secs)) < PAWS_IDLE_LIMIT_SECS
    }

    /// RFC 7323 §4.3 (3); Last.ACK.sent is RCV.NXT in TIME-WAIT.
    fn update_ts_recent(&mut self, seg: &TcpRepr<'_>, len: u32, now: Instant) {
        let Some(opt) = seg.options.timestamps.filter(|_| self.timestamps) else { return };
        let covers =
            seg.seq_number - self.rcv_nxt <= 0 && (self.rcv_nxt - (seg.seq_number + len) < 0 || len == 0);
        if covers && (opt.tsval.wrapping_sub(self.ts_recent) as i32) >= 0 {
            self.ts_recent = opt.tsval;
            self.ts_recent_age_secs = secs(now);
        }
    }
}

/// Whole seconds of `t` (wrapping after 136 years of uptime; ages are compared wrapping).
fn secs(t: Instant) -> u32 {
    (t.as_millis() / 1000) as u32
}

/// RFC 5961 §3.2/§4.2: a challenge ACK within the stack-wide rate limit.
fn challenge_ack(ctx: &mut InputContext<'_>) -> TimeWaitAction {
    if ctx.challenge.allow(ctx.now) {
        ctx.stats.challenge_acks += 1;
        TimeWaitAction::Ack { dsack: None, restart: false }
    } else {
        ctx.stats.challenge_acks_limited += 1;
        TimeWaitAction::None
    }
}
