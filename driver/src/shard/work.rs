//! What a shard runs: the [`ShardWork`] trait and the context the loop hands it.
//!
//! Owns the contract between the generic shard loop ([`super::run_loop`]) and whatever runs on a
//! shard (in production: driver + engine + application). The loop knows nothing of packets; the
//! work knows nothing of threads, signals or the OS clock — it gets `now` in [`ShardContext`].

use core::ops::AddAssign;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use linerate_stack::time::{Duration, Instant};

use super::runtime::Control;
use super::stats::Pod;

/// The three steps of a clean shutdown, in order; each has its own deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ShutdownPhase {
    /// Stop accepting new connections and new requests; finish the ones in flight. (The file
    /// server already closes its listener here, so new SYNs are refused at once.)
    Drain,
    /// Close the listening sockets (refuse SYNs) and whatever connections the drain left.
    CloseListeners,
    /// Let closing connections (FIN exchange, TIME_WAIT) run out before the process exits.
    TimeWait,
}

impl ShutdownPhase {
    /// Every phase, in the order the loop runs them.
    pub const ALL: [ShutdownPhase; 3] =
        [ShutdownPhase::Drain, ShutdownPhase::CloseListeners, ShutdownPhase::TimeWait];

    /// The phase after this one, if any.
    pub fn next(self) -> Option<ShutdownPhase> {
        match self {
            ShutdownPhase::Drain => Some(ShutdownPhase::CloseListeners),
            ShutdownPhase::CloseListeners => Some(ShutdownPhase::TimeWait),
            ShutdownPhase::TimeWait => None,
        }
    }
}

/// What one `poll` did, which decides how the loop waits before the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollOutcome {
    /// Work was done (frames moved, timers fired): poll again at once.
    Busy,
    /// Nothing to do. `next_wake` is the earliest timer deadline, if any; the loop busy-polls
    /// when it is very close and otherwise sleeps (bounded by `RuntimeConfig::max_idle_sleep`,
    /// so frames arriving meanwhile wait at most that long).
    Idle { next_wake: Option<Instant> },
}

/// Per-iteration facts the loop gives the work.
#[derive(Debug)]
pub struct ShardContext {
    /// This shard's index.
    shard: usize,
    /// The core this shard is pinned to.
    core: usize,
    /// The clock read taken at the start of this iteration.
    now: Instant,
    /// The shutdown phase in progress, or `None` while running normally.
    phase: Option<ShutdownPhase>,
    /// The runtime's shared control flags.
    control: Arc<Control>,
}

impl ShardContext {
    pub(crate) fn new(shard: usize, core: usize, now: Instant, control: Arc<Control>) -> Self {
        ShardContext { shard, core, now, phase: None, control }
    }
    pub(crate) fn set_now(&mut self, now: Instant) {
        self.now = now;
    }
    pub(crate) fn set_phase(&mut self, phase: ShutdownPhase) {
        self.phase = Some(phase);
    }

    /// This shard's index (0-based).
    pub fn shard(&self) -> usize {
        self.shard
    }
    /// The core this shard's thread is pinned to.
    pub fn core(&self) -> usize {
        self.core
    }
    /// The time of this iteration (read once per iteration).
    pub fn now(&self) -> Instant {
        self.now
    }
    /// The shutdown phase in progress, or `None` while running normally.
    pub fn phase(&self) -> Option<ShutdownPhase> {
        self.phase
    }
    /// Asks every shard to begin the phased shutdown (e.g. a client finished its run).
    pub fn request_stop(&self) {
        self.control.stop.store(true, Ordering::Relaxed);
    }
}

/// Whatever runs on one shard, polled in a run-to-completion loop on its pinned thread.
///
/// `poll` is one iteration: receive a burst, run the engine, run the application, transmit a
/// burst, fire due timers. It must not block; the loop does all waiting. Shutdown: when stop is
/// requested the loop calls `begin_shutdown(Drain)`, keeps polling until `is_drained(Drain)` or
/// the phase's deadline, then does the same for `CloseListeners` and `TimeWait`, then returns.
pub trait ShardWork: Send {
    /// Counters published for other threads to read while the shard runs (see
    /// [`super::stats`]); summed across shards by [`super::ShardRuntime::work_stats`].
    type Stats: Pod + Default + AddAssign;

    /// One loop iteration.
    fn poll(&mut self, ctx: &mut ShardContext) -> PollOutcome;

    /// Entering `phase` of the shutdown; `ctx.phase()` already says `Some(phase)`.
    fn begin_shutdown(&mut self, phase: ShutdownPhase, ctx: &mut ShardContext);

    /// True once `phase` has nothing left to finish (checked after each poll in that phase).
    fn is_drained(&self, phase: ShutdownPhase) -> bool;

    /// The current counters (called every `RuntimeConfig::stats_interval` and at exit).
    fn stats(&self) -> Self::Stats;

    /// Waits up to `timeout` after an idle poll. The default sleeps; work with sockets should
    /// wait on them instead (so a frame ends the wait at once). Returning early is fine.
    fn idle(&mut self, timeout: Duration) {
        std::thread::sleep(std::time::Duration::from_nanos(timeout.as_nanos()));
    }
}
