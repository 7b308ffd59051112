//! A dummy shard work for the runtime tests: counts polls, logs the shutdown phases it is
//! taken through, and pretends each phase has a few polls of in-flight work to finish.

#![allow(dead_code)]

use std::time::{Duration as StdDuration, Instant as StdInstant};

use linerate_driver::shard::{Pod, PollOutcome, ShardContext, ShardRuntime, ShardWork, ShutdownPhase};
use linerate_stack::time::Duration;

/// Counters the dummy work publishes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Counts {
    /// Every poll.
    pub polls: u64,
    /// Polls made during a shutdown phase.
    pub shutdown_polls: u64,
    /// Phases entered, as decimal digits in order: Drain=1, CloseListeners=2, TimeWait=3.
    pub phase_log: u64,
    /// Polls on a thread not named `linerate-shard-<i>` or not running on its pinned core.
    pub misplaced_polls: u64,
}

// SAFETY: repr(C), u64 fields only.
unsafe impl Pod for Counts {}

impl core::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.polls += o.polls;
        self.shutdown_polls += o.shutdown_polls;
        self.phase_log += o.phase_log;
        self.misplaced_polls += o.misplaced_polls;
    }
}

/// How the dummy behaves.
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    /// Polls each phase needs before it reports drained; `None`: never drains.
    pub polls_to_drain: Option<u64>,
    /// Panic with "boom on shard <i>" at this poll on this shard.
    pub panic_at: Option<(usize, u64)>,
    /// Ask the runtime to stop at this poll (any shard).
    pub stop_at: Option<u64>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour { polls_to_drain: Some(5), panic_at: None, stop_at: None }
    }
}

#[derive(Debug)]
pub struct Counter {
    pub behaviour: Behaviour,
    pub counts: Counts,
    /// Polls left in the current phase before it is drained.
    pub remaining: u64,
}

impl Counter {
    pub fn new(behaviour: Behaviour) -> Self {
        Counter { behaviour, counts: Counts::default(), remaining: 0 }
    }
}

impl ShardWork for Counter {
    type Stats = Counts;

    fn poll(&mut self, ctx: &mut ShardContext) -> PollOutcome {
        self.counts.polls += 1;
        let polls = self.counts.polls;
        let expected_name = format!("linerate-shard-{}", ctx.shard());
        // SAFETY: sched_getcpu has no preconditions.
        let cpu = unsafe { libc::sched_getcpu() };
        if std::thread::current().name() != Some(expected_name.as_str()) || cpu != ctx.core() as i32 {
            self.counts.misplaced_polls += 1;
        }
        if self.behaviour.panic_at == Some((ctx.shard(), polls)) {
            panic!("boom on shard {}", ctx.shard());
        }
        if self.behaviour.stop_at == Some(polls) {
            ctx.request_stop();
        }
        if ctx.phase().is_some() {
            self.counts.shutdown_polls += 1;
            self.remaining = self.remaining.saturating_sub(1);
        }
        // Alternate busy polls, idle polls with a timer soon (spin) and far (sleep).
        match polls % 3 {
            0 => PollOutcome::Busy,
            1 => PollOutcome::Idle { next_wake: Some(ctx.now() + Duration::from_micros(5)) },
            _ => PollOutcome::Idle { next_wake: Some(ctx.now() + Duration::from_micros(200)) },
        }
    }

    fn begin_shutdown(&mut self, phase: ShutdownPhase, ctx: &mut ShardContext) {
        assert_eq!(ctx.phase(), Some(phase));
        let digit = ShutdownPhase::ALL.iter().position(|&p| p == phase).unwrap() as u64 + 1;
        self.counts.phase_log = self.counts.phase_log * 10 + digit;
        self.remaining = self.behaviour.polls_to_drain.unwrap_or(u64::MAX);
    }

    fn is_drained(&self, _phase: ShutdownPhase) -> bool {
        self.behaviour.polls_to_drain.is_some() && self.remaining == 0
    }

    fn stats(&self) -> Counts {
        self.counts
    }
}

/// Waits (yielding, never sleeping) until the shards together have polled `polls` times.
pub fn wait_for_polls(runtime: &ShardRuntime<Counts>, polls: u64) {
    let deadline = StdInstant::now() + StdDuration::from_secs(20);
    while runtime.work_stats().polls < polls {
        assert!(
            StdInstant::now() < deadline,
            "shards made only {} polls in 20 s",
            runtime.work_stats().polls
        );
        std::thread::yield_now();
    }
}

/// Cores to use: `n` shards over the cores this process may run on, round-robin.
pub fn cores(n: usize) -> Vec<usize> {
    let allowed: Vec<usize> = core_ids();
    (0..n).map(|i| allowed[i % allowed.len()]).collect()
}

fn core_ids() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity fills it for this thread.
    let set = unsafe {
        let mut set: libc::cpu_set_t = core::mem::zeroed();
        assert_eq!(libc::sched_getaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &mut set), 0);
        set
    };
    // SAFETY: `set` is initialised.
    (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
}
