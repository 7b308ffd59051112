//! One TCP connection: the transmission control block (RFC 9293 §3.3.1) and the small helpers
//! the input, output and timer code share.
//!
//! The connection owns its buffers, timers, loss recovery (`crate::recovery`, which also holds the
//! RTT estimator), congestion controller, delivery-rate estimator and pacer; it knows
//! nothing about frames, the flow table or other connections. Input (`input/`) mutates it per
//! RFC 9293 §3.10.7 and only *marks* what must be sent (`ack_now`, window update, retransmit);
//! `output.rs` decides the actual segments when the engine polls for transmit, so a burst of input
//! produces one ACK. Application-visible happenings are accumulated as event bits.

use super::buffer_pool::BufferPool;
use super::config::{SocketOptions, TcpConfig};
use super::recv_buffer::RecvBuffer;
use super::send_buffer::SendBuffer;
use super::state::State;
use super::timers::{TimerKind, Timers};
use crate::congestion::{CongestionConfig, CongestionController, DeliveryRateEstimator, Pacer};
use crate::recovery::LossRecovery;
use crate::time::{Duration, Instant};
use crate::wire::{Ipv4Address, KeptDataHeaders, SackBlock, SeqNumber};

/// The two endpoints of a connection, as seen from this host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FourTuple {
    pub local: (Ipv4Address, u16),
    pub remote: (Ipv4Address, u16),
}

/// Why a connection ended abnormally: what the application is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    #[error("connection reset by peer")]
    Reset,
    #[error("connection refused: the peer answered the SYN with a reset")]
    Refused,
    #[error("connection timed out: no acknowledgment after the retransmission limit (R2)")]
    TimedOut,
    #[error("connection timed out: data unacknowledged for longer than the user timeout")]
    UserTimeout,
    #[error("connection timed out: keepalive probes unanswered")]
    KeepaliveTimeout,
    #[error("connection aborted locally")]
    Aborted,
}

/// Application event bits accumulated on a connection until the engine reports them.
pub mod event_bits {
    pub const CONNECTED: u8 = 1;
    pub const READABLE: u8 = 2;
    pub const WRITABLE: u8 = 4;
    pub const READ_CLOSED: u8 = 8;
    pub const CLOSED: u8 = 16;
    /// All our data and our FIN were acknowledged (raised by the engine, once).
    pub const SEND_COMPLETE: u8 = 32;
}

/// RFC 7323 timestamp state.
#[derive(Clone, Copy, Debug)]
pub struct TimestampState {
    /// Random per-connection offset added to our clock (RFC 7323 §5.4).
    pub offset: u32,
    /// TS.Recent: the peer's latest valid TSval (§4.3).
    pub recent: u32,
    /// When TS.Recent was last updated (PAWS idle check, §5.5).
    pub recent_age: Instant,
}

/// Cumulative per-connection counters for `info()` (like `ss -ti`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnCounters {
    pub bytes_sent: u64,
    pub bytes_retrans: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub segs_out: u64,
    pub segs_in: u64,
    pub data_segs_out: u64,
    pub data_segs_in: u64,
    pub total_retrans: u64,
    pub dsack_received: u64,
    /// RTOs that repaired a SACK reneging (RFC 2018 §8): the peer dropped data it had SACKed.
    pub sack_reneging: u64,
    /// Retransmission timeouts undone as spurious (RFC 3522 / RFC 3708 detection).
    pub spurious_rto_undone: u64,
}

/// Per-connection values chosen when the TCB is created.
#[derive(Clone, Copy, Debug)]
pub struct Origin {
    /// Our initial send sequence number.
    pub iss: SeqNumber,
    /// The MSS we advertise (MTU − 40).
    pub our_mss: u32,
    /// The random RFC 7323 §5.4 timestamp offset.
    pub ts_offset: u32,
}

/// The TCB.
#[derive(Debug)]
pub struct Connection {
    pub state: State,
    pub tuple: FourTuple,
    pub opts: SocketOptions,
    /// Opened by a listener (passive open): a reset in SYN-RECEIVED returns it to LISTEN.
    pub passive: bool,
    /// Listener index while in SYN-RECEIVED or the accept queue.
    pub listener: Option<u32>,

    // Send sequence space (RFC 9293 §3.3.1).
    pub iss: SeqNumber,
    pub snd_una: SeqNumber,
    pub snd_nxt: SeqNumber,
    /// Highest sequence number sent (SND.NXT may go back for retransmission).
    pub snd_max: SeqNumber,
    /// Peer's offered window in bytes, already scaled.
    pub snd_wnd: u32,
    pub max_snd_wnd: u32,
    pub snd_wl1: SeqNumber,
    pub snd_wl2: SeqNumber,
    pub snd_wscale: u8,
    /// Effective send MSS (RFC 9293 §3.7.1): min(peer MSS, path MSS), minus option bytes.
    pub snd_mss: u32,
    /// MSS from the peer's SYN (536 if absent, RFC 9293 MUST-15).
    pub peer_mss: u32,

    // Receive sequence space.
    pub irs: SeqNumber,
    pub rcv_nxt: SeqNumber,
    /// Right edge of the window we last advertised; never moves left (RFC 9293 §3.8.6.2.2).
    pub rcv_adv: SeqNumber,
    pub rcv_wscale: u8,
    /// Window scaling is in use (both sides sent the option, RFC 7323 §2.2).
    pub wscale_ok: bool,
    /// The MSS we advertise (MTU minus IP and TCP headers).
    pub adv_mss: u32,
    /// Largest window auto-tuning currently allows (grows up to the buffer size).
    pub rcv_wnd_limit: u32,
    /// Estimated peer MSS: largest segment received so far.
    pub rcv_mss: u32,
    pub last_ack_sent: SeqNumber,

    pub ts: Option<TimestampState>,
    pub sack_ok: bool,
    pub sndbuf: SendBuffer,
    pub rcvbuf: RecvBuffer,
    /// The application has shut down the send side: a FIN follows the queued data.
    pub fin_queued: bool,
    /// The peer's FIN has been received in order.
    pub fin_received: bool,

    /// The handshake's timed SYN or SYN-ACK: (sequence that must be acked, send time). Data
    /// is timed by `recovery` from its segment records.
    pub rtt_timing: Option<(SeqNumber, Instant)>,
    /// Segment records, SACK scoreboard, RACK-TLP, RTT estimator and the recovery timer.
    pub recovery: LossRecovery,
    pub cc: CongestionController,
    /// How `cc` was built (rebuilt with the negotiated MSS).
    pub cc_config: CongestionConfig,
    /// Delivery-rate sampling (draft-cheng-iccrg-delivery-rate-estimation) for BBR and `info`.
    pub rate: DeliveryRateEstimator,
    pub pacer: Pacer,
    /// The next retransmission chosen by `recovery` (RFC 6675 NextSeg / RACK marks), sent
    /// before new data when the window allows.
    pub next_rtx: Option<(SeqNumber, u32)>,
    /// A tail loss probe is due: new data if possible, else this segment (RFC 8985 §7.3).
    pub tlp_probe: Option<Option<(SeqNumber, u32)>>,
    /// Pacing holds data until the `Pacing` timer fires (earliest departure time).
    pub pacing_hold: bool,
    /// Consecutive retransmission timeouts (R1/R2 counting).
    pub retries: u32,
    /// When the current retransmission episode began (user timeout).
    pub rtx_since: Option<Instant>,
    /// Unanswered zero-window probes (reset by any ACK; R2 applies to them).
    pub probes: u32,
    /// Persist-timer backoff exponent: grows with every probe, reset only when the window opens
    /// (Linux `icsk_backoff`), so an answered-but-still-zero window is probed ever more slowly.
    pub persist_backoff: u32,
    /// Unanswered keepalive probes.
    pub keepalive_probes: u32,
    pub timers: Timers,

    /// An ACK must go out at the next transmit opportunity.
    pub ack_now: bool,
    /// Bytes received in order since our last ACK (delayed-ACK accounting).
    pub unacked_bytes: u32,
    /// D-SACK block to report in the next ACK.
    pub dsack: Option<SackBlock>,
    /// A zero-window probe is due.
    pub send_window_probe: bool,
    /// A keepalive probe is due.
    pub send_keepalive: bool,

    pub created: Instant,
    pub last_recv: Instant,
    pub last_send: Instant,
    /// When data was last sent (idle restart, RFC 5681 §4.1).
    pub last_data_sent: Instant,
    /// The last data segment's frame headers, for the next poll's first segment (written
    /// and read only by the engine's transmit loop).
    pub(crate) kept_headers: KeptDataHeaders,
    /// Receiver RTT measurement for auto-tuning: (sequence to wait for, when armed).
    pub rcv_rtt_mark: Option<(SeqNumber, Instant)>,
    pub rcv_rtt: Option<Duration>,
    pub autotune_start: Instant,
    pub autotune_bytes: u32,
    /// Latest valid delivery-rate sample in bytes/s (like `ss` delivery_rate).
    pub delivery_rate: u64,

    /// The application released its handle (close): the engine finishes the connection alone.
    pub orphaned: bool,
    /// The application was refused a write for lack of space: tell it when space frees up.
    pub write_blocked: bool,
    pub error: Option<ConnectionError>,
    pub events: u8,
    pub counters: ConnCounters,
    /// Bytes of buffer memory this connection holds against the engine's cap.
    pub memory: usize,
    /// Last ICMP soft error seen (RFC 9293 MUST-56: reported, never fatal when established).
    pub soft_error: Option<crate::ip::SoftError>,
    /// TCP Fast Open (RFC 7413): the cookie for our SYN/SYN-ACK and the SYN-data budget.
    pub fast_open: super::options::FastOpenState,
}

/// Largest window scale shift, RFC 7323 §2.3.
pub const MAX_WSCALE: u8 = 14;
/// Default MSS when the peer sends none, RFC 9293 §3.7.1.
pub const DEFAULT_MSS: u32 = 536;

/// Smallest shift that lets a 16-bit window field describe `buffer` bytes (RFC 7323 §2.2).
pub fn wscale_for(buffer: usize) -> u8 {
    let mut s = 0u8;
    while s < MAX_WSCALE && (65535usize << s) < buffer {
        s += 1;
    }
    s
}

impl Connection {
    /// A fresh TCB with its buffers. `our_mss` is what we advertise (MTU - 40).
    pub fn new(
        tuple: FourTuple,
        opts: SocketOptions,
        cfg: &TcpConfig,
        origin: Origin,
        now: Instant,
        pool: &mut BufferPool,
    ) -> Self {
        let Origin { iss, our_mss, ts_offset } = origin;
        let rcv_wscale = if cfg.window_scaling { wscale_for(opts.recv_buffer) } else { 0 };
        let limit = cfg.initial_rcv_window.min(opts.recv_buffer as u32).max(1);
        let cc_config = Self::congestion_config(&opts, cfg, our_mss, iss, ts_offset);
        Connection {
            state: State::Closed,
            tuple,
            opts,
            passive: false,
            listener: None,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: SeqNumber(0),
            snd_wl2: iss,
            snd_wscale: 0,
            snd_mss: DEFAULT_MSS.min(our_mss),
            peer_mss: DEFAULT_MSS,
            irs: SeqNumber(0),
            rcv_nxt: SeqNumber(0),
            rcv_adv: SeqNumber(0),
            rcv_wscale,
            wscale_ok: cfg.window_scaling,
            adv_mss: our_mss,
            rcv_wnd_limit: limit,
            rcv_mss: DEFAULT_MSS.min(our_mss),
            last_ack_sent: SeqNumber(0),
            ts: cfg.timestamps.then_some(TimestampState { offset: ts_offset, recent: 0, recent_age: now }),
            sack_ok: cfg.sack,
            sndbuf: SendBuffer::with_storage(pool.take(opts.send_buffer), iss + 1),
            rcvbuf: RecvBuffer::with_storage(pool.take(opts.recv_buffer)),
            fin_queued: false,
            fin_received: false,
            rtt_timing: None,
            recovery: LossRecovery::new(Self::recovery_config(&opts, cfg, our_mss), iss + 1),
            cc: CongestionController::new(&cc_config, now),
            cc_config,
            rate: DeliveryRateEstimator::new(),
            pacer: Pacer::new(our_mss, cc_config.pacing_burst_max),
            next_rtx: None,
            tlp_probe: None,
            pacing_hold: false,
            retries: 0,
            rtx_since: None,
            probes: 0,
            persist_backoff: 0,
            keepalive_probes: 0,
            timers: Timers::default(),
            ack_now: false,
            unacked_bytes: 0,
            dsack: None,
            send_window_probe: false,
            send_keepalive: false,
            created: now,
            last_recv: now,
            last_send: now,
            last_data_sent: now,
            kept_headers: KeptDataHeaders::default(),
            rcv_rtt_mark: None,
            rcv_rtt: None,
            autotune_start: now,
            autotune_bytes: 0,
            delivery_rate: 0,
            orphaned: false,
            write_blocked: false,
            error: None,
            events: 0,
            counters: ConnCounters::default(),
            memory: Self::memory_for(&opts),
            soft_error: None,
            fast_open: super::options::FastOpenState::default(),
        }
    }

    /// Sequence number of our FIN, if the application queued one.
    pub fn fin_seq(&self) -> Option<SeqNumber> {
        self.fin_queued.then(|| self.sndbuf.end_seq())
    }

    /// True once our FIN has been acknowledged.
    pub fn fin_acked(&self) -> bool {
        match self.fin_seq() {
            Some(f) => self.snd_una - f > 0,
            None => false,
        }
    }

    /// Bytes (and SYN/FIN) sent and not yet acknowledged.
    pub fn flight_size(&self) -> u32 {
        (self.snd_max - self.snd_una).max(0) as u32
    }

    /// Bytes in flight counted from SND.NXT (differs from `flight_size` after a timeout).
    pub fn in_flight(&self) -> u32 {
        (self.snd_nxt - self.snd_una).max(0) as u32
    }

    /// Our clock for TSval: milliseconds plus the per-connection offset (RFC 7323 §5.4).
    pub fn ts_now(&self, now: Instant) -> u32 {
        let offset = self.ts.map(|t| t.offset).unwrap_or(0);
        (now.as_millis() as u32).wrapping_add(offset)
    }

    pub fn set_state(&mut self, state: State) {
        self.state = state;
    }

    /// Records an application event.
    pub fn raise(&mut self, bits: u8) {
        if !self.orphaned {
            self.events |= bits;
        }
    }

    /// Ends the connection (RFC 9293: "enter CLOSED, delete the TCB"): timers stop, buffers stay
    /// until the engine frees the slot; the application learns `error` if it still listens.
    pub fn terminate(&mut self, error: Option<ConnectionError>) {
        self.state = State::Closed;
        self.timers.stop_all();
        if self.error.is_none() {
            self.error = error;
        }
        self.ack_now = false;
        self.next_rtx = None;
        self.tlp_probe = None;
        self.send_window_probe = false;
        self.send_keepalive = false;
        self.raise(event_bits::CLOSED);
    }

    /// Enters TIME-WAIT: 2*MSL timer, buffers released (RFC 9293 §3.10.7.4 eighth step).
    pub fn enter_time_wait(&mut self, now: Instant, cfg: &TcpConfig) {
        self.state = State::TimeWait;
        self.timers.stop_all();
        self.timers.set(TimerKind::Linger, now + cfg.time_wait);
        self.next_rtx = None;
        self.tlp_probe = None;
        self.raise(event_bits::CLOSED);
    }

    /// The receive window we can offer now: free buffer space bounded by auto-tuning.
    pub fn desired_rcv_window(&self) -> u32 {
        if self.fin_received {
            return 0;
        }
        (self.rcvbuf.free() as u32).min(self.rcv_wnd_limit)
    }

    /// Receiver-side SWS threshold (RFC 9293 §3.8.6.2.2): min(buffer / 2, MSS).
    pub fn rcv_sws_threshold(&self) -> u32 {
        ((self.rcvbuf.capacity() / 2) as u32).min(self.rcv_mss).max(1)
    }

    /// The window field for an outgoing segment, moving RCV.ADV right when the increase is worth
    /// announcing and never moving it left.
    pub fn window_field(&mut self, syn: bool) -> u16 {
        let shift = if syn { 0 } else { self.rcv_wscale };
        // The 16-bit field bounds what the peer can be told (RFC 7323 §2.3); never promise more.
        let max = 65535u32 << shift;
        let desired = ((self.desired_rcv_window() >> shift) << shift).min(max);
        let current = (self.rcv_adv - self.rcv_nxt).max(0) as u32;
        let grow =
            desired >= current.saturating_add(self.rcv_sws_threshold()) || (current == 0 && desired > 0);
        let window = if grow { desired } else { current };
        if window > current || self.rcv_adv - self.rcv_nxt < 0 {
            self.rcv_adv = self.rcv_nxt + window;
        }
        (window >> shift).min(65535) as u16
    }

    /// True when announcing the current free space would open the window meaningfully: used to
    /// send an immediate window update after the application reads (RFC 9293 §3.8.6.2.2).
    pub fn window_update_due(&self) -> bool {
        if !self.state.can_receive_data() {
            return false;
        }
        let current = (self.rcv_adv - self.rcv_nxt).max(0) as u32;
        let desired =
            ((self.desired_rcv_window() >> self.rcv_wscale) << self.rcv_wscale).min(65535 << self.rcv_wscale);
        let threshold = self.rcv_sws_threshold();
        desired >= current.saturating_add(threshold)
            && (current < threshold.saturating_mul(2) || desired >= current.saturating_mul(2))
    }

    /// Arms or disarms the retransmission and persist timers after anything changed the send
    /// side (RFC 6298 §5.1-5.3; RFC 9293 §3.8.6.1).
    pub fn update_send_timers(&mut self, now: Instant) {
        // A SYN not yet sent (next hop unresolved) also needs the timer, or nothing retries.
        if matches!(self.state, State::SynSent | State::SynReceived) {
            if !self.timers.is_armed(TimerKind::Retransmit) {
                self.timers.set(TimerKind::Retransmit, now + self.recovery.rtt().rto());
            }
            self.timers.stop(TimerKind::Persist);
            return;
        }
        // Data: the recovery timer (RACK reordering, TLP or RTO, RFC 8985 §6.2/§7.2, RFC 6298)
        // is the retransmission timer slot.
        match self.recovery.next_timer() {
            Some((at, _)) => self.timers.set(TimerKind::Retransmit, at),
            None => self.timers.stop(TimerKind::Retransmit),
        }
        if !self.recovery.scoreboard().segments().is_empty() {
            self.timers.stop(TimerKind::Persist);
            return;
        }
        let unsent = self.sndbuf.end_seq() - self.snd_nxt > 0;
        if self.state.is_synchronized() && unsent && self.snd_wnd == 0 {
            if !self.timers.is_armed(TimerKind::Persist) {
                let backoff = self.persist_backoff.min(30);
                let d =
                    self.recovery.rtt().base_rto().saturating_mul(1 << backoff).min(Duration::from_secs(120));
                self.timers.set(TimerKind::Persist, now + d);
            }
        } else {
            self.timers.stop(TimerKind::Persist);
            if self.snd_wnd > 0 {
                self.probes = 0;
                self.persist_backoff = 0;
            }
        }
    }

    /// (Re)arms keepalive after activity (RFC 9293 §3.8.4: only when idle).
    pub fn update_keepalive(&mut self, now: Instant) {
        match self.opts.keepalive {
            Some(k) if self.state.is_synchronized() && self.state != State::TimeWait => {
                let due = if self.keepalive_probes > 0 { now + k.interval } else { self.last_recv + k.idle };
                self.timers.set(TimerKind::Keepalive, due.max(now));
            }
            _ => self.timers.stop(TimerKind::Keepalive),
        }
    }

    /// Anything for `poll_transmit` to do on this connection?
    pub fn wants_output(&self) -> bool {
        if self.state == State::Closed {
            return false;
        }
        self.ack_now
            || self.next_rtx.is_some()
            || self.tlp_probe.is_some()
            || self.send_window_probe
            || self.send_keepalive
            || self.snd_nxt == self.iss && matches!(self.state, State::SynSent | State::SynReceived)
            || self.state.is_synchronized() && self.state != State::TimeWait && self.has_sendable()
    }

    /// Unsent data or an unsent FIN, ignoring windows.
    pub fn has_sendable(&self) -> bool {
        let end = self.sndbuf.end_seq();
        self.snd_nxt - end < 0 || self.fin_queued && self.snd_nxt == end
    }

    /// Frees the buffers (TIME-WAIT or CLOSED); returns bytes released from the memory cap.
    pub fn release_buffers(&mut self, pool: &mut BufferPool) -> usize {
        pool.give(self.sndbuf.release());
        pool.give(self.rcvbuf.release());
        self.recovery.release();
        self.next_rtx = None;
        self.tlp_probe = None;
        core::mem::take(&mut self.memory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wscale_fits_the_buffer() {
        assert_eq!(wscale_for(65535), 0);
        assert_eq!(wscale_for(65536), 1);
        assert_eq!(wscale_for(1 << 20), 5);
        assert_eq!(wscale_for(usize::MAX), 14);
    }
}
