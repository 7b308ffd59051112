//! What each per-connection timer does when it fires: the loss-recovery slot (RACK reordering
//! timer, tail loss probe, RTO with backoff; `sender.rs`) and the R1/R2 thresholds (RFC 9293
//! §3.8.3, RFC 6298 §5.4-5.7, RFC 5681 §3.1), SYN/SYN-ACK retries, pacing releases, zero
//! window probes (§3.8.6.1), delayed ACK (§3.8.6.3), keepalive (§3.8.4), TIME-WAIT and the
//! orphaned FIN-WAIT-2 timeout.

use super::config::TcpConfig;
use super::connection::{Connection, ConnectionError};
use super::sender::RecoveryTimeout;
use super::state::State;
use super::timers::TimerKind;
use crate::stats::Stats;
use crate::time::{Duration, Instant};

/// What the engine must do after a timer fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutOutcome {
    Nothing,
    /// R1 reached: the next hop should be re-resolved (RFC 9293 §3.8.3 "pass negative advice").
    ReachedR1,
    /// The connection is now CLOSED.
    Closed,
}

impl Connection {
    /// Handles every timer of this connection due at `now`.
    pub fn on_timers(&mut self, now: Instant, cfg: &TcpConfig, stats: &mut Stats) -> TimeoutOutcome {
        let mut outcome = TimeoutOutcome::Nothing;
        while let Some(kind) = self.timers.take_expired(now) {
            let o = match kind {
                TimerKind::Retransmit => self.on_retransmit_timeout(now, cfg, stats),
                TimerKind::Persist => self.on_persist_timeout(now, cfg, stats),
                TimerKind::DelayedAck => {
                    if self.unacked_bytes > 0 || self.dsack.is_some() {
                        self.ack_now = true;
                        stats.delayed_acks += 1;
                    }
                    TimeoutOutcome::Nothing
                }
                TimerKind::Keepalive => self.on_keepalive_timeout(now, stats),
                TimerKind::Linger => {
                    self.terminate(None);
                    TimeoutOutcome::Closed
                }
                TimerKind::Pacing => {
                    self.on_pacing_timer();
                    TimeoutOutcome::Nothing
                }
            };
            if o == TimeoutOutcome::Closed {
                return o;
            }
            if o == TimeoutOutcome::ReachedR1 {
                outcome = o;
            }
        }
        outcome
    }

    fn on_retransmit_timeout(&mut self, now: Instant, cfg: &TcpConfig, stats: &mut Stats) -> TimeoutOutcome {
        let syn_limit = match self.state {
            State::SynSent => Some(cfg.syn_retries),
            State::SynReceived => Some(cfg.synack_retries),
            _ => None,
        };
        if syn_limit.is_none() && self.on_recovery_timer(now, stats) == RecoveryTimeout::Handled {
            return TimeoutOutcome::Nothing;
        }
        stats.timeouts += 1;
        self.retries += 1;
        let first = *self.rtx_since.get_or_insert(now);
        let user_timeout = self.opts.user_timeout.is_some_and(|t| now - first >= t);
        let limit = syn_limit.unwrap_or(cfg.retries2);
        if self.retries > limit || user_timeout {
            stats.abort_on_timeout += 1;
            if syn_limit.is_some() {
                stats.attempt_fails += 1;
            }
            let why = if user_timeout { ConnectionError::UserTimeout } else { ConnectionError::TimedOut };
            self.terminate(Some(why));
            return TimeoutOutcome::Closed;
        }
        if syn_limit.is_some() {
            // The data path's backoff lives in loss recovery; the handshake's is applied here.
            self.recovery.rtt_mut().back_off();
            self.rtt_timing = None;
            self.snd_nxt = self.iss;
            self.timers.set(TimerKind::Retransmit, now + self.recovery.rtt().rto());
        }
        if self.retries == cfg.retries1 {
            TimeoutOutcome::ReachedR1
        } else {
            TimeoutOutcome::Nothing
        }
    }

    fn on_persist_timeout(&mut self, now: Instant, cfg: &TcpConfig, stats: &mut Stats) -> TimeoutOutcome {
        if self.snd_wnd > 0 || self.sndbuf.end_seq() - self.snd_nxt <= 0 {
            return TimeoutOutcome::Nothing;
        }
        // Probes the peer answers reset `probes` (ack.rs): a zero window may last forever, but
        // a peer that stops answering is given up on after R2 probes, as Linux does.
        if self.probes >= cfg.retries2 {
            stats.abort_on_timeout += 1;
            self.terminate(Some(ConnectionError::TimedOut));
            return TimeoutOutcome::Closed;
        }
        self.probes += 1;
        self.persist_backoff += 1;
        self.send_window_probe = true;
        let backoff = self.persist_backoff.min(30);
        let d = self.recovery.rtt().base_rto().saturating_mul(1 << backoff).min(cfg.max_rto);
        self.timers.set(TimerKind::Persist, now + d);
        TimeoutOutcome::Nothing
    }

    fn on_keepalive_timeout(&mut self, now: Instant, stats: &mut Stats) -> TimeoutOutcome {
        let Some(k) = self.opts.keepalive else { return TimeoutOutcome::Nothing };
        let idle_for = now - self.last_recv;
        // Only an idle connection with nothing outstanding is probed (RFC 9293 §3.8.4).
        let busy = self.snd_max != self.snd_una;
        if busy || (self.keepalive_probes == 0 && idle_for < k.idle) {
            let next = if busy { now + k.interval } else { self.last_recv + k.idle };
            self.timers.set(TimerKind::Keepalive, next.max(now + Duration::from_millis(1)));
            return TimeoutOutcome::Nothing;
        }
        if self.keepalive_probes >= k.count {
            stats.keepalive_timeouts += 1;
            stats.abort_on_timeout += 1;
            self.terminate(Some(ConnectionError::KeepaliveTimeout));
            return TimeoutOutcome::Closed;
        }
        self.keepalive_probes += 1;
        self.send_keepalive = true;
        self.timers.set(TimerKind::Keepalive, now + k.interval);
        TimeoutOutcome::Nothing
    }
}
