//! The run-to-completion loop of one shard.
//!
//! Owns the iteration: read the clock once, check the stop flags, poll the work, publish stats
//! now and then, and wait as little as the work allows. Promises: one clock read and two relaxed
//! loads of shared flags per iteration, nothing else shared; never sleeps longer than
//! `max_idle_sleep`; each shutdown phase ends when the work is drained or at its deadline, so the
//! loop always returns once a stop was requested. Must not: allocate or lock per iteration.

use std::sync::Arc;

use linerate_stack::time::{Clock, Duration, Instant};

use super::clock::MonotonicClock;
use super::runtime::{Control, RuntimeConfig, ShardSummary};
use super::stats::{Pod, StatsPublisher};
use super::work::{PollOutcome, ShardContext, ShardWork, ShutdownPhase};

/// Counters of the loop itself, per shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct LoopStats {
    /// Loop iterations (polls).
    pub iterations: u64,
    /// Polls that reported [`PollOutcome::Busy`].
    pub busy: u64,
    /// Idle polls followed by a spin (next timer within the busy-poll window).
    pub idle_spins: u64,
    /// Idle polls followed by a sleep.
    pub idle_sleeps: u64,
    /// Shutdown phases that ended at their deadline rather than drained.
    pub phases_timed_out: u64,
    /// Shutdown phases that ended because the work was drained.
    pub phases_drained: u64,
}

// SAFETY: `repr(C)` struct of `u64`s only: no padding, every bit pattern valid.
unsafe impl Pod for LoopStats {}

impl core::ops::AddAssign for LoopStats {
    fn add_assign(&mut self, o: LoopStats) {
        self.iterations += o.iterations;
        self.busy += o.busy;
        self.idle_spins += o.idle_spins;
        self.idle_sleeps += o.idle_sleeps;
        self.phases_timed_out += o.phases_timed_out;
        self.phases_drained += o.phases_drained;
    }
}

/// The write ends of a shard's two stats cells.
#[derive(Debug)]
pub(crate) struct ShardPublishers<S> {
    pub(crate) work: StatsPublisher<S>,
    pub(crate) loop_stats: StatsPublisher<LoopStats>,
}

/// Where a shard is in its shutdown.
#[derive(Debug, Clone, Copy)]
enum Progress {
    Running,
    InPhase { phase: ShutdownPhase, deadline: Instant },
    Done,
}

impl RuntimeConfig {
    fn deadline_of(&self, phase: ShutdownPhase) -> Duration {
        match phase {
            ShutdownPhase::Drain => self.drain_deadline,
            ShutdownPhase::CloseListeners => self.close_deadline,
            ShutdownPhase::TimeWait => self.time_wait_deadline,
        }
    }
}

/// Runs shard `shard` until its shutdown completes or the runtime aborts.
pub(crate) fn run_shard<W: ShardWork>(
    shard: usize,
    core: usize,
    config: &RuntimeConfig,
    mut work: W,
    mut publishers: ShardPublishers<W::Stats>,
    control: Arc<Control>,
) -> ShardSummary<W::Stats> {
    let clock = MonotonicClock::new();
    let mut ctx = ShardContext::new(shard, core, clock.now(), control.clone());
    let mut stats = LoopStats::default();
    let mut progress = Progress::Running;
    let mut next_publish = ctx.now();
    loop {
        let now = clock.now();
        ctx.set_now(now);
        if control.aborted() {
            break;
        }
        if matches!(progress, Progress::Running) && control.stop_requested() {
            progress = enter_phase(ShutdownPhase::Drain, config, &mut work, &mut ctx);
        }
        let outcome = work.poll(&mut ctx);
        stats.iterations += 1;
        progress = advance(progress, config, &mut work, &mut ctx, &mut stats);
        if now >= next_publish || matches!(progress, Progress::Done) {
            publishers.work.publish(&work.stats());
            publishers.loop_stats.publish(&stats);
            next_publish = now + config.stats_interval;
        }
        if matches!(progress, Progress::Done) {
            break;
        }
        match outcome {
            PollOutcome::Busy => stats.busy += 1,
            PollOutcome::Idle { next_wake } => wait_idle(config, now, next_wake, &mut work, &mut stats),
        }
    }
    let final_work = work.stats();
    publishers.work.publish(&final_work);
    publishers.loop_stats.publish(&stats);
    ShardSummary { shard, core, loop_stats: stats, work: final_work }
}

fn enter_phase<W: ShardWork>(
    phase: ShutdownPhase,
    config: &RuntimeConfig,
    work: &mut W,
    ctx: &mut ShardContext,
) -> Progress {
    ctx.set_phase(phase);
    work.begin_shutdown(phase, ctx);
    Progress::InPhase { phase, deadline: ctx.now() + config.deadline_of(phase) }
}

/// Moves to the next phase once the current one is drained or past its deadline.
fn advance<W: ShardWork>(
    progress: Progress,
    config: &RuntimeConfig,
    work: &mut W,
    ctx: &mut ShardContext,
    stats: &mut LoopStats,
) -> Progress {
    let Progress::InPhase { phase, deadline } = progress else { return progress };
    if work.is_drained(phase) {
        stats.phases_drained += 1;
    } else if ctx.now() >= deadline {
        stats.phases_timed_out += 1;
    } else {
        return progress;
    }
    match phase.next() {
        Some(next) => enter_phase(next, config, work, ctx),
        None => Progress::Done,
    }
}

/// Waits after an idle poll: spin if the next timer is within the busy-poll window, otherwise
/// let the work wait ([`ShardWork::idle`]) until it (at most `max_idle_sleep`).
/// Measured from the iteration's clock read (the poll itself is short), so the loop keeps to one
/// clock read per iteration.
fn wait_idle<W: ShardWork>(
    config: &RuntimeConfig,
    now: Instant,
    next_wake: Option<Instant>,
    work: &mut W,
    stats: &mut LoopStats,
) {
    let wake = next_wake.unwrap_or(Instant::MAX).min(now + config.max_idle_sleep);
    let wait = wake.saturating_duration_since(now);
    if wait <= config.busy_poll_window {
        stats.idle_spins += 1;
        core::hint::spin_loop();
    } else {
        stats.idle_sleeps += 1;
        work.idle(wait);
    }
}
