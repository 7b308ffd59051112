//! Congestion control: the seam between the TCP engine and the window/rate algorithms.
//!
//! **Owns** the congestion window, slow-start threshold and pacing rate of one connection, for
//! three algorithms behind one enum ([`CongestionController`]): NewReno (RFC 5681/6582/3465),
//! CUBIC (RFC 9438, with HyStart++ RFC 9406) and BBR (draft-ietf-ccwg-bbr, BBRv3). Also here, as
//! building blocks the engine owns next to the controller: the delivery-rate estimator
//! ([`delivery_rate`]), the earliest-departure-time pacer ([`pacing`]) and Proportional Rate
//! Reduction ([`prr`], used inside the loss-based controllers).
//!
//! **Promises.** Sans-I/O and deterministic: every input is a value (`now` included), randomness
//! comes from a seed in [`CongestionConfig`]. No allocation, no dynamic dispatch. No method panics
//! on any input sequence (huge or zero durations, absurd byte counts, calls in any order); the
//! window always stays in `[min_cwnd, MAX_CWND]` (2 MSS for loss-based controllers, 4 MSS for BBR)
//! and a pacing rate, when there is one, is finite and at least 1 byte/s.
//!
//! **Does not** track sequence numbers, recovery points, the retransmission queue or RTT
//! estimation: the engine does, and reports what happened through the event structs below.
//!
//! # How the engine drives a controller
//! - every transmission (new data or retransmission): [`CongestionController::on_packet_sent`];
//! - every ACK that advances `snd_una` or SACKs data, after loss detection ran:
//!   [`CongestionController::on_ack`] with an [`AckEvent`] (its `rate_sample` comes from the
//!   engine's [`DeliveryRateEstimator`]; it should be present whenever anything was delivered);
//! - when loss (or an ECN echo) starts a reduction, at most once per window and *before* the
//!   `on_ack` of the same ACK: [`CongestionController::on_congestion_event`]; when `snd_una`
//!   passes the recovery point: [`CongestionController::on_recovery_exit`]. The controller keeps
//!   its own "in reduction" flag between those two calls;
//! - retransmission timeout: [`CongestionController::on_retransmit_timeout`];
//! - D-SACK/RACK/Eifel proved the last reduction spurious:
//!   [`CongestionController::on_spurious_congestion_event`];
//! - sending new data after the connection had nothing in flight:
//!   [`CongestionController::on_idle_restart`].
//!
//! ```
//! use linerate_stack::congestion::{
//!     AckEvent, Algorithm, CongestionConfig, CongestionController, DeliveryRateEstimator, Pacer,
//!     SentPacket,
//! };
//! use linerate_stack::time::{Duration, Instant};
//!
//! let config = CongestionConfig::new(Algorithm::Bbr, 1448);
//! let mut now = Instant::from_millis(1);
//! let mut cc = CongestionController::new(&config, now);
//! let mut rate = DeliveryRateEstimator::new();
//! let mut pacer = Pacer::new(1448, config.pacing_burst_max);
//! pacer.set_rate(cc.pacing_rate());
//!
//! // Send while the window and the pacer allow; keep each snapshot with its segment.
//! let mut in_flight = 0;
//! let mut queue = Vec::new();
//! while in_flight + 1448 <= cc.cwnd() && pacer.can_send(now) {
//!     queue.push(rate.on_packet_sent(now, in_flight, 1448));
//!     cc.on_packet_sent(now, &SentPacket { bytes: 1448, in_flight_before: in_flight, ..Default::default() });
//!     pacer.on_sent(now, 1448);
//!     in_flight += 1448;
//! }
//! // Otherwise wake up at `pacer.next_release()`. One RTT later, an ACK covers the first segment.
//! now += Duration::from_millis(20);
//! rate.on_packet_delivered(now, &queue[0]);
//! let ack = AckEvent {
//!     newly_acked_bytes: 1448,
//!     prior_in_flight: in_flight,
//!     in_flight: in_flight - 1448,
//!     rtt_sample: Some(Duration::from_millis(20)),
//!     rate_sample: rate.generate_rate_sample(now, Some(Duration::from_millis(20))),
//!     ..Default::default()
//! };
//! cc.on_ack(now, &ack);
//! pacer.set_rate(cc.pacing_rate());
//! assert!(cc.cwnd() >= 4 * 1448);
//! ```

pub mod bbr;
pub mod cubic;
pub mod delivery_rate;
pub mod hystart;
pub mod newreno;
pub mod pacing;
pub mod prr;
#[cfg(test)]
mod test_util;
mod window;

use core::fmt;
use core::str::FromStr;

use crate::time::{Duration, Instant};

pub use bbr::Bbr;
pub use cubic::Cubic;
pub use delivery_rate::{DeliveryRateEstimator, PacketSnapshot, RateSample};
pub use newreno::NewReno;
pub use pacing::Pacer;
pub use prr::{Prr, PrrMode};

/// Upper bound of every congestion window: 1 GiB, the largest window TCP window scaling
/// (RFC 7323 §2.3, shift 14) can advertise.
pub const MAX_CWND: u32 = 1 << 30;
/// Smallest and largest MSS a controller accepts; configured values are clamped into this range.
pub const MSS_RANGE: (u32, u32) = (64, 65_535);
/// Largest burst the pacer and `send_quantum` ever allow (64 KiB, one TSO super-packet).
pub const DEFAULT_MAX_BURST: u32 = 64 * 1024;
/// The restart window in segments (RFC 6928's IW10; also what Linux leaves unpaced).
pub(crate) const RESTART_WINDOW_SEGMENTS: u32 = 10;

/// Which congestion-control algorithm a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    NewReno,
    /// The default, as in Linux, FreeBSD and Windows.
    #[default]
    Cubic,
    Bbr,
}

impl Algorithm {
    /// The lowercase name used in configuration and `ss -ti`-like output.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::NewReno => "newreno",
            Algorithm::Cubic => "cubic",
            Algorithm::Bbr => "bbr",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A congestion-control name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown congestion control algorithm {0:?}: expected \"newreno\", \"cubic\" or \"bbr\"")]
pub struct UnknownAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "newreno" | "reno" => Ok(Algorithm::NewReno),
            "cubic" => Ok(Algorithm::Cubic),
            "bbr" | "bbr3" | "bbrv3" => Ok(Algorithm::Bbr),
            _ => Err(UnknownAlgorithm(s.to_owned())),
        }
    }
}

/// How a connection's controller is built. `Default` is CUBIC, MSS 1460, IW10, paced, no
/// slow-start restart, HyStart++ on, PRR-SSRB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CongestionConfig {
    pub algorithm: Algorithm,
    /// Sender MSS in bytes (clamped into [`MSS_RANGE`]).
    pub mss: u32,
    /// Initial window in segments (RFC 6928: 10).
    pub initial_window_segments: u32,
    /// Pace NewReno/CUBIC at `cwnd / srtt` × (2 in slow start, 1.2 after), as Linux does with
    /// the fq qdisc. On by default; BBR always paces whatever this says.
    pub pacing: bool,
    /// Cap of the pacer's burst allowance and of `send_quantum`, in bytes.
    pub pacing_burst_max: u32,
    /// Slow-start restart after an idle period longer than the RTO (RFC 5681 §4.1). Off by
    /// default, like Linux with `net.ipv4.tcp_slow_start_after_idle=0` as set by most
    /// high-throughput deployments: a server answering request bursts on a persistent connection
    /// should not fall back to IW on each response. BBR ignores it: it restarts from idle
    /// through its own model (draft-ietf-ccwg-bbr "Restarting From Idle").
    pub slow_start_after_idle: bool,
    /// HyStart++ (RFC 9406) in the initial slow start of NewReno and CUBIC.
    pub hystart: bool,
    /// Which PRR reduction bound the loss-based controllers use (RFC 6937 §3).
    pub prr_mode: PrrMode,
    /// Seed of BBR's tiny PRNG (randomised ProbeBW wait). The engine derives it per connection.
    pub seed: u64,
    /// BBR counts as congestion only the loss beyond the path's background (random) loss rate,
    /// measured in rounds that showed no standing queue (a deviation from draft-ietf-ccwg-bbr,
    /// see `congestion::bbr` docs). `false` gives the draft's loss response exactly; prefer it
    /// where many flows share a bottleneck and random loss is rare.
    pub bbr_tolerate_random_loss: bool,
    /// How late the timer that releases paced segments may fire: the engine's timer-wheel tick
    /// (`EngineConfig::timer_tick`). The pacer lets a sender woken that late catch up by that
    /// much (see [`Pacer::set_timer_granularity`]).
    pub pacing_timer_granularity: Duration,
}

impl Default for CongestionConfig {
    fn default() -> Self {
        CongestionConfig {
            algorithm: Algorithm::default(),
            mss: 1460,
            initial_window_segments: 10,
            pacing: true,
            pacing_burst_max: DEFAULT_MAX_BURST,
            slow_start_after_idle: false,
            hystart: true,
            prr_mode: PrrMode::default(),
            seed: 0,
            bbr_tolerate_random_loss: true,
            pacing_timer_granularity: Duration::from_millis(1),
        }
    }
}

impl CongestionConfig {
    pub fn new(algorithm: Algorithm, mss: u32) -> Self {
        CongestionConfig { algorithm, mss, ..CongestionConfig::default() }
    }
    /// The MSS the controllers actually use.
    pub fn effective_mss(&self) -> u32 {
        self.mss.clamp(MSS_RANGE.0, MSS_RANGE.1)
    }
    /// Initial window in bytes: `segments · MSS`, capped at `max(2·MSS, segments · 1460)` so a
    /// jumbo MSS does not multiply the initial burst (RFC 6928 §2: `min(10·MSS, max(2·MSS,
    /// 14600))` for the default 10 segments), and never below 2 segments (RFC 5681 §3.1).
    pub fn initial_window(&self) -> u32 {
        let mss = u64::from(self.effective_mss());
        let segments = u64::from(self.initial_window_segments.max(2));
        let cap = (2 * mss).max(segments.saturating_mul(1460));
        let bytes = segments.saturating_mul(mss).min(cap);
        clamp_window(bytes, 2 * mss as u32)
    }
    fn burst_cap(&self) -> u32 {
        self.pacing_burst_max.max(2 * self.effective_mss())
    }
}

/// One transmission, reported by the engine as it hands the segment to the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SentPacket {
    /// Payload bytes (SYN/FIN count as one byte).
    pub bytes: u32,
    /// Bytes in flight (RFC 6675 `pipe`) just before this packet.
    pub in_flight_before: u32,
    /// The application had nothing more to send. Informational for now: the controllers
    /// judge window use from `in_flight_before`, and app-limited rate samples come from the
    /// [`DeliveryRateEstimator`] (`on_app_limited`).
    pub is_app_limited: bool,
    /// A retransmission. Informational for now (PRR counts it like any send, RFC 6937 `prr_out`).
    pub is_retransmit: bool,
}

/// What one ACK did, after the engine ran loss detection on it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AckEvent {
    /// Bytes newly cumulatively acknowledged or SACKed by this ACK (RFC 6937 `DeliveredData`).
    pub newly_acked_bytes: u32,
    /// Bytes newly marked lost while processing this ACK.
    pub newly_lost_bytes: u32,
    /// Bytes in flight before this ACK was processed.
    pub prior_in_flight: u32,
    /// Bytes in flight after it (RFC 6675 `pipe`).
    pub in_flight: u32,
    /// RTT measured on this ACK, if any (RFC 6298/7323 rules decide which ACKs give one).
    pub rtt_sample: Option<Duration>,
    /// The engine's windowed minimum RTT.
    pub min_rtt: Option<Duration>,
    /// The engine's smoothed RTT (RFC 6298 `SRTT`).
    pub srtt: Option<Duration>,
    /// The delivery-rate sample of this ACK (see [`DeliveryRateEstimator`]).
    pub rate_sample: Option<RateSample>,
    /// The ACK carried ECN-Echo (RFC 3168). Loss-based controllers react only through
    /// `on_congestion_event` (the engine decides, once per window); BBR also counts the
    /// acknowledged bytes as CE-marked for its ECN response.
    pub ece: bool,
}

/// A congestion event: the engine entered fast recovery (or CWR on ECN), once per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LossEvent {
    /// Bytes declared lost; zero when the event is an ECN echo rather than a loss.
    pub lost_bytes: u32,
    /// `snd_nxt - snd_una` when recovery starts (RFC 5681 `FlightSize`, RFC 6937 `RecoverFS`).
    pub flight_size: u32,
    /// Bytes still in flight after marking the losses (RFC 6675 `pipe`).
    pub in_flight: u32,
    /// Losses spanning more than the persistent-congestion period (RFC 9002 §7.6 style): the
    /// window collapses as on an RTO.
    pub is_persistent: bool,
}

/// The connection state a controller inherits when the algorithm changes on a live connection
/// (like Linux's `TCP_CONGESTION` on an established socket): the window and threshold are the
/// connection's, only the algorithm's own state starts fresh. See
/// [`CongestionController::handover`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Handover {
    /// Congestion window in use, bytes.
    pub cwnd: u32,
    /// Slow-start threshold, bytes ([`MAX_CWND`] while the first slow start runs).
    pub ssthresh: u32,
    /// The old controller is reducing inside the engine's recovery episode; the engine will
    /// call `on_recovery_exit` when the episode ends, so the new controller reduces too.
    pub in_recovery: bool,
    /// `snd_nxt - snd_una` and RFC 6675 `pipe` now.
    pub flight_size: u32,
    pub in_flight: u32,
    /// Bytes marked lost and not yet repaired.
    pub lost_bytes: u32,
    /// The engine's RTT estimates: they let the new controller pace at once.
    pub srtt: Option<Duration>,
    pub min_rtt: Option<Duration>,
}

/// A snapshot for `ss -ti`-like views.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CongestionInfo {
    pub algorithm: Algorithm,
    pub cwnd: u32,
    pub ssthresh: u32,
    pub pacing_rate: Option<u64>,
    pub in_slow_start: bool,
    pub in_recovery: bool,
    /// BBR state name ("startup", "drain", "probe_bw_down", ..., "probe_rtt").
    pub bbr_state: Option<&'static str>,
    /// The controller's own min RTT estimate (BBR), or the engine's last reported one.
    pub min_rtt: Option<Duration>,
    /// BBR's bandwidth estimate in bytes/s.
    pub bw: Option<u64>,
    /// BBR's current pacing and cwnd gains.
    pub pacing_gain: Option<f64>,
    pub cwnd_gain: Option<f64>,
}

/// The congestion controller of one connection. An enum, not a trait object: the engine calls it
/// on every packet and the match costs nothing next to a virtual call.
#[derive(Debug, Clone)]
pub enum CongestionController {
    NewReno(NewReno),
    Cubic(Cubic),
    Bbr(Bbr),
}

macro_rules! dispatch {
    ($self:ident, $c:ident => $e:expr) => {
        match $self {
            CongestionController::NewReno($c) => $e,
            CongestionController::Cubic($c) => $e,
            CongestionController::Bbr($c) => $e,
        }
    };
}

impl CongestionController {
    pub fn new(config: &CongestionConfig, now: Instant) -> Self {
        match config.algorithm {
            Algorithm::NewReno => CongestionController::NewReno(NewReno::new(config)),
            Algorithm::Cubic => CongestionController::Cubic(Cubic::new(config)),
            Algorithm::Bbr => CongestionController::Bbr(Bbr::new(config, now)),
        }
    }
    /// A controller for `config.algorithm` taking over a live connection from `from`.
    ///
    /// NewReno and CUBIC keep `cwnd` and `ssthresh` (their epoch, HyStart++ and undo state start
    /// empty, as Linux's `tcp_reinit_congestion_control` does) and, in recovery, continue the
    /// reduction with PRR toward that `ssthresh`. BBR starts in Startup from `cwnd` with its
    /// initial pacing rate taken from `cwnd / srtt` (draft `BBRInitPacingRate`, Linux
    /// `bbr_init`) and its min-RTT filter seeded from the connection's windowed minimum RTT
    /// (Linux's `bbr_init` takes `tcp_min_rtt` the same way); in recovery it starts packet
    /// conservation for the episode and restores `cwnd` when it ends. Its bandwidth filter
    /// fills from the next ACKs.
    pub fn handover(config: &CongestionConfig, now: Instant, from: &Handover) -> Self {
        match config.algorithm {
            Algorithm::NewReno => CongestionController::NewReno(NewReno::handover(config, from)),
            Algorithm::Cubic => CongestionController::Cubic(Cubic::handover(config, from)),
            Algorithm::Bbr => CongestionController::Bbr(Bbr::handover(config, now, from)),
        }
    }
    /// What a successor controller inherits from this one (see [`Handover`]); the engine fills
    /// in the recovery and RTT fields. BBR has no real `ssthresh`: once past Startup its window
    /// (or `inflight_hi`, if lower) is taken as one, so a loss-based successor continues in
    /// congestion avoidance instead of slow-starting past the pipe BBR measured.
    pub fn handover_state(&self) -> Handover {
        let ssthresh = match self {
            CongestionController::Bbr(b) if !b.in_slow_start() => b.ssthresh().min(b.cwnd()),
            c => c.ssthresh(),
        };
        Handover { cwnd: self.cwnd(), ssthresh, ..Handover::default() }
    }
    pub fn algorithm(&self) -> Algorithm {
        match self {
            CongestionController::NewReno(_) => Algorithm::NewReno,
            CongestionController::Cubic(_) => Algorithm::Cubic,
            CongestionController::Bbr(_) => Algorithm::Bbr,
        }
    }
    pub fn on_packet_sent(&mut self, now: Instant, packet: &SentPacket) {
        dispatch!(self, c => c.on_packet_sent(now, packet))
    }
    pub fn on_ack(&mut self, now: Instant, ack: &AckEvent) {
        dispatch!(self, c => c.on_ack(now, ack))
    }
    pub fn on_congestion_event(&mut self, now: Instant, loss: &LossEvent) {
        dispatch!(self, c => c.on_congestion_event(now, loss))
    }
    pub fn on_recovery_exit(&mut self, now: Instant) {
        dispatch!(self, c => c.on_recovery_exit(now))
    }
    pub fn on_retransmit_timeout(&mut self, now: Instant) {
        dispatch!(self, c => c.on_retransmit_timeout(now))
    }
    pub fn on_spurious_congestion_event(&mut self) {
        dispatch!(self, c => c.on_spurious_congestion_event())
    }
    /// Turns RFC 5681 §4.1 slow-start restart on or off (BBR restarts through its own model).
    pub fn set_slow_start_after_idle(&mut self, on: bool) {
        match self {
            CongestionController::NewReno(c) => c.set_slow_start_after_idle(on),
            CongestionController::Cubic(c) => c.set_slow_start_after_idle(on),
            CongestionController::Bbr(_) => {}
        }
    }
    /// Turns pacing of the loss-based controllers on or off (BBR always paces).
    pub fn set_pacing(&mut self, on: bool) {
        match self {
            CongestionController::NewReno(c) => c.set_pacing(on),
            CongestionController::Cubic(c) => c.set_pacing(on),
            CongestionController::Bbr(_) => {}
        }
    }
    /// BBR's random-loss tolerance on or off ([`CongestionConfig::bbr_tolerate_random_loss`]);
    /// the loss-based controllers have none.
    pub fn set_bbr_tolerate_random_loss(&mut self, on: bool) {
        if let CongestionController::Bbr(c) = self {
            c.set_tolerate_random_loss(on);
        }
    }
    /// The engine is about to send after a period with nothing in flight; `idle` is the time
    /// since the last transmission and `rto` the current retransmission timeout.
    pub fn on_idle_restart(&mut self, now: Instant, idle: Duration, rto: Duration) {
        dispatch!(self, c => c.on_idle_restart(now, idle, rto))
    }
    /// Congestion window in bytes.
    pub fn cwnd(&self) -> u32 {
        dispatch!(self, c => c.cwnd())
    }
    pub fn ssthresh(&self) -> u32 {
        dispatch!(self, c => c.ssthresh())
    }
    /// Pacing rate in bytes per second; `None` means "do not pace".
    pub fn pacing_rate(&self) -> Option<u64> {
        dispatch!(self, c => c.pacing_rate())
    }
    /// What the pacer may send back to back when the connection starts sending from nothing in
    /// flight ([`Pacer::on_restart`]): RFC 5681 §4.1's restart window `min(IW, cwnd)` with
    /// RFC 6928's IW of ten segments for NewReno and CUBIC; `None` for BBR, which restarts from
    /// idle through its own model.
    pub fn restart_window(&self) -> Option<u32> {
        match self {
            CongestionController::NewReno(c) => Some(c.restart_window()),
            CongestionController::Cubic(c) => Some(c.restart_window()),
            CongestionController::Bbr(_) => None,
        }
    }
    /// How many bytes the engine may send back to back (one TSO burst).
    pub fn send_quantum(&self) -> u32 {
        dispatch!(self, c => c.send_quantum())
    }
    pub fn in_slow_start(&self) -> bool {
        dispatch!(self, c => c.in_slow_start())
    }
    pub fn in_recovery(&self) -> bool {
        dispatch!(self, c => c.in_recovery())
    }
    pub fn info(&self) -> CongestionInfo {
        dispatch!(self, c => c.info())
    }
}

/// Counts packet-timed round trips from delivery-rate samples: a round ends when a packet sent
/// after the previous round ended is delivered (draft-ietf-ccwg-bbr §4.5.1, also used for
/// HyStart++ rounds, RFC 9406 §4.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RoundCounter {
    next_round_delivered: u64,
    pub count: u64,
}

impl RoundCounter {
    /// Returns whether this ACK starts a new round.
    pub fn on_ack(&mut self, rs: &RateSample) -> bool {
        if rs.prior_delivered >= self.next_round_delivered {
            self.next_round_delivered = rs.prior_delivered.saturating_add(rs.delivered).max(1);
            self.count = self.count.saturating_add(1);
            true
        } else {
            false
        }
    }
    /// Makes the next ACK of data sent from now on start a round (BBR `StartRound`).
    pub fn restart(&mut self, delivered: u64) {
        self.next_round_delivered = delivered;
    }
}

/// `bytes * 10^9 / interval` in bytes per second, saturating; `None` for an empty interval.
pub(crate) fn rate_from(bytes: u64, interval: Duration) -> Option<u64> {
    let nanos = interval.as_nanos();
    if nanos == 0 {
        return None;
    }
    // u64 fast path (any byte count below 18 GB); u128 division is several times slower.
    if let Some(scaled) = bytes.checked_mul(1_000_000_000) {
        return Some(scaled / nanos);
    }
    let rate = (u128::from(bytes) * 1_000_000_000) / u128::from(nanos);
    Some(u64::try_from(rate).unwrap_or(u64::MAX))
}

/// `rate * interval` in bytes, saturating.
pub(crate) fn bytes_in(rate: u64, interval: Duration) -> u64 {
    if let Some(product) = rate.checked_mul(interval.as_nanos()) {
        return product / 1_000_000_000;
    }
    let bytes = (u128::from(rate) * u128::from(interval.as_nanos())) / 1_000_000_000;
    u64::try_from(bytes).unwrap_or(u64::MAX)
}

/// `x * gain` for a finite non-negative gain, saturating at `u64::MAX`.
pub(crate) fn scale(x: u64, gain: f64) -> u64 {
    // `as` from f64 saturates and maps NaN to 0, so this never panics.
    (x as f64 * gain) as u64
}

/// Clamps a byte count into a window in `[floor, MAX_CWND]`.
pub(crate) fn clamp_window(bytes: u64, floor: u32) -> u32 {
    bytes.clamp(u64::from(floor), u64::from(MAX_CWND)) as u32
}

/// The pacing burst / send quantum at a given rate: about 1 ms of data, at least two segments,
/// at most `cap` bytes (the rule of Linux's `tcp_tso_autosize` and BBR's `send_quantum`).
pub fn burst_for_rate(rate: u64, mss: u32, cap: u32) -> u32 {
    let one_ms = rate / 1_000;
    one_ms.clamp(u64::from(2 * mss), u64::from(cap.max(2 * mss))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_parses_names_and_defaults_to_cubic() {
        assert_eq!("newreno".parse::<Algorithm>(), Ok(Algorithm::NewReno));
        assert_eq!(" CUBIC ".parse::<Algorithm>(), Ok(Algorithm::Cubic));
        assert_eq!("bbr".parse::<Algorithm>(), Ok(Algorithm::Bbr));
        assert!("vegas".parse::<Algorithm>().is_err());
        assert_eq!(Algorithm::default(), Algorithm::Cubic);
        assert_eq!(Algorithm::Bbr.to_string(), "bbr");
    }

    #[test]
    fn config_clamps_mss_and_initial_window() {
        let mut c = CongestionConfig::new(Algorithm::NewReno, 1);
        assert_eq!(c.effective_mss(), 64);
        c.mss = 1460;
        assert_eq!(c.initial_window(), 14_600);
        c.initial_window_segments = 0;
        assert_eq!(c.initial_window(), 2 * 1460);
        c.initial_window_segments = u32::MAX;
        assert_eq!(c.initial_window(), MAX_CWND);
        // RFC 6928: a 9000-byte MSS still starts with about 14600 bytes, i.e. 2 segments.
        c.initial_window_segments = 10;
        c.mss = 9000;
        assert_eq!(c.initial_window(), 18_000);
        c.mss = 536;
        assert_eq!(c.initial_window(), 5_360);
    }

    #[test]
    fn rate_helpers_saturate() {
        assert_eq!(rate_from(1000, Duration::from_millis(1)), Some(1_000_000));
        assert_eq!(rate_from(1, Duration::ZERO), None);
        assert_eq!(rate_from(u64::MAX, Duration::from_nanos(1)), Some(u64::MAX));
        assert_eq!(bytes_in(1_000_000, Duration::from_millis(10)), 10_000);
        assert_eq!(bytes_in(u64::MAX, Duration::MAX), u64::MAX);
        assert_eq!(burst_for_rate(0, 1000, 65536), 2000);
        assert_eq!(burst_for_rate(u64::MAX, 1000, 65536), 65536);
        assert_eq!(burst_for_rate(10_000_000, 1000, 65536), 10_000);
    }

    #[test]
    fn every_algorithm_constructs_with_sane_window() {
        for algorithm in [Algorithm::NewReno, Algorithm::Cubic, Algorithm::Bbr] {
            let cc = CongestionController::new(&CongestionConfig::new(algorithm, 1000), Instant::ZERO);
            assert_eq!(cc.algorithm(), algorithm);
            assert_eq!(cc.cwnd(), 10_000);
            assert!(cc.in_slow_start());
            assert_eq!(cc.info().algorithm, algorithm);
        }
    }

    fn live(cwnd: u32, ssthresh: u32, in_recovery: bool) -> Handover {
        Handover {
            cwnd,
            ssthresh,
            in_recovery,
            flight_size: cwnd,
            in_flight: cwnd / 2,
            lost_bytes: 3000,
            srtt: Some(Duration::from_millis(40)),
            min_rtt: Some(Duration::from_millis(30)),
        }
    }

    #[test]
    fn loss_based_handover_keeps_the_window_and_paces_at_once() {
        for algorithm in [Algorithm::NewReno, Algorithm::Cubic] {
            let config = CongestionConfig::new(algorithm, 1000);
            let cc = CongestionController::handover(&config, Instant::ZERO, &live(80_000, 60_000, false));
            assert_eq!(cc.algorithm(), algorithm);
            assert_eq!((cc.cwnd(), cc.ssthresh()), (80_000, 60_000));
            assert!(!cc.in_slow_start() && !cc.in_recovery());
            // cwnd / srtt · 1.2 from the handed-over SRTT, without waiting for an ACK.
            assert_eq!(cc.pacing_rate(), Some(2_400_000));
            let unpaced = CongestionConfig { pacing: false, ..CongestionConfig::new(algorithm, 1000) };
            let cc = CongestionController::handover(&unpaced, Instant::ZERO, &live(80_000, MAX_CWND, false));
            assert!(cc.in_slow_start() && cc.pacing_rate().is_none());
        }
    }

    #[test]
    fn loss_based_handover_in_recovery_ends_at_ssthresh() {
        let mut cc = CongestionController::handover(
            &CongestionConfig::new(Algorithm::Cubic, 1000),
            Instant::ZERO,
            &live(50_000, 35_000, true),
        );
        assert!(cc.in_recovery());
        // PRR: each ACK in recovery sets cwnd = pipe + sndcnt, never more than ssthresh allows.
        let ack = AckEvent {
            newly_acked_bytes: 1000,
            prior_in_flight: 25_000,
            in_flight: 24_000,
            ..AckEvent::default()
        };
        cc.on_ack(Instant::from_millis(10), &ack);
        assert!(cc.cwnd() <= 35_000 && cc.in_recovery());
        cc.on_recovery_exit(Instant::from_millis(50));
        assert_eq!((cc.cwnd(), cc.in_recovery()), (35_000, false));
        // Nothing to undo: the reduction belonged to the previous controller.
        cc.on_spurious_congestion_event();
        assert_eq!(cc.cwnd(), 35_000);
    }

    #[test]
    fn bbr_handover_starts_from_the_window_and_always_paces() {
        let config = CongestionConfig::new(Algorithm::Bbr, 1000);
        let cc = CongestionController::handover(&config, Instant::ZERO, &live(80_000, 60_000, false));
        assert_eq!(cc.cwnd(), 80_000);
        assert_eq!(cc.info().bbr_state, Some("startup"));
        // Draft BBRInitPacingRate: 2.77 · cwnd / srtt (80 KB over 40 ms).
        let rate = cc.pacing_rate().unwrap();
        assert!((5_400_000..=5_600_000).contains(&rate), "{rate}");
        // In recovery: packet conservation now, the window back when the episode ends.
        let mut cc = CongestionController::handover(&config, Instant::ZERO, &live(80_000, 60_000, true));
        assert!(cc.in_recovery());
        assert_eq!(cc.cwnd(), 41_000, "in flight + 1 MSS");
        cc.on_recovery_exit(Instant::from_millis(50));
        assert_eq!(cc.cwnd(), 80_000);
    }

    #[test]
    fn bbr_handover_seeds_its_min_rtt_filter_from_the_connection() {
        let config = CongestionConfig::new(Algorithm::Bbr, 1000);
        let mut cc = CongestionController::handover(&config, Instant::ZERO, &live(80_000, 60_000, false));
        assert_eq!(cc.info().min_rtt, Some(Duration::from_millis(30)), "the engine's min RTT");
        // The old controller's standing queue shows in the first samples (45 ms): the 30 ms
        // path minimum stays the estimate, so BBR's BDP is not inflated by 50 %.
        let mut flow = crate::congestion::test_util::Flow::new(cc, 1000);
        flow.now = Instant::ZERO;
        flow.round_with(Duration::from_millis(45), 20, 1);
        cc = flow.cc;
        assert_eq!(cc.info().min_rtt, Some(Duration::from_millis(30)));
        // Nothing to seed from: the first sample becomes the minimum, as before.
        let unknown = Handover { min_rtt: None, ..live(80_000, 60_000, false) };
        let mut flow = crate::congestion::test_util::Flow::new(
            CongestionController::handover(&config, Instant::ZERO, &unknown),
            1000,
        );
        assert_eq!(flow.cc.info().min_rtt, None);
        flow.round_with(Duration::from_millis(45), 20, 1);
        assert_eq!(flow.cc.info().min_rtt, Some(Duration::from_millis(45)));
    }

    #[test]
    fn bbr_past_startup_hands_its_window_over_as_ssthresh() {
        let bbr = CongestionController::new(&CongestionConfig::new(Algorithm::Bbr, 1000), Instant::ZERO);
        // In Startup BBR has not measured the pipe: a successor keeps slow-starting.
        assert_eq!(bbr.handover_state().ssthresh, MAX_CWND);
        let cubic = CongestionController::new(&CongestionConfig::new(Algorithm::Cubic, 1000), Instant::ZERO);
        assert_eq!(
            cubic.handover_state(),
            Handover { cwnd: 10_000, ssthresh: MAX_CWND, ..Handover::default() }
        );
        // A flat delivery rate ends Startup after three rounds; then the window is the threshold.
        let mut flow = crate::congestion::test_util::Flow::new(bbr, 1000);
        for _ in 0..12 {
            flow.round_with(Duration::from_millis(20), 20, 1);
        }
        assert!(!flow.cc.in_slow_start(), "{:?}", flow.cc.info());
        let state = flow.cc.handover_state();
        assert_eq!(state.cwnd, flow.cc.cwnd());
        assert!(state.ssthresh <= state.cwnd, "{state:?}");
        let cubic =
            CongestionController::handover(&CongestionConfig::new(Algorithm::Cubic, 1000), flow.now, &state);
        assert!(!cubic.in_slow_start(), "congestion avoidance from BBR's window");
    }
}
