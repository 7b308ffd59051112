//! Starting, stopping and joining the shard threads.
//!
//! Owns: one OS thread per shard (named `linerate-shard-<i>`, pinned to its core), the shared
//! stop/abort flags, and the stats readers of every shard. Promises: a shard's packet path shares
//! nothing mutable with other shards (the flags are read with one relaxed load per iteration);
//! SIGINT/SIGTERM (when `handle_signals`) or [`ShardRuntime::request_stop`] start a phased
//! shutdown with a deadline per phase, so the runtime always ends; a panic in any shard is caught,
//! stops every other shard at its next iteration, and is what [`ShardRuntime::join`] returns,
//! naming the shard and the panic message. Must not: know what the shards run ([`ShardWork`]).

use std::any::Any;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use linerate_stack::time::Duration;

use super::heap;
use super::run_loop::{run_shard, LoopStats, ShardPublishers};
use super::signal;
use super::stats::{stats_cell, sum, StatsReader};
use super::work::ShardWork;

/// Knobs of the shard loop and of the shutdown.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeConfig {
    /// Longest sleep of an idle shard: the worst added latency for a frame that arrives while
    /// the shard sleeps, and how soon an idle shard notices a stop request.
    pub max_idle_sleep: Duration,
    /// An idle shard whose next timer is closer than this spins instead of sleeping (a sleep
    /// overshoots by tens of microseconds).
    pub busy_poll_window: Duration,
    /// How often a shard publishes its stats snapshot.
    pub stats_interval: Duration,
    /// Deadline of [`super::ShutdownPhase::Drain`].
    pub drain_deadline: Duration,
    /// Deadline of [`super::ShutdownPhase::CloseListeners`].
    pub close_deadline: Duration,
    /// Deadline of [`super::ShutdownPhase::TimeWait`].
    pub time_wait_deadline: Duration,
    /// Install SIGINT/SIGTERM handlers that start the shutdown.
    pub handle_signals: bool,
    /// Keep freed heap memory in each shard's arena instead of returning it to the kernel
    /// ([`super::heap`]): otherwise per-connection allocations cost page faults and syscalls
    /// that interrupt the other shards. A process-wide allocator setting, applied at start.
    pub retain_freed_memory: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_idle_sleep: Duration::from_millis(1),
            busy_poll_window: Duration::from_micros(50),
            stats_interval: Duration::from_millis(1),
            drain_deadline: Duration::from_secs(5),
            close_deadline: Duration::from_secs(1),
            time_wait_deadline: Duration::from_secs(2),
            handle_signals: true,
            retain_freed_memory: true,
        }
    }
}

/// Why a shard stopped the runtime.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("shard {shard} panicked: {message}")]
    Panicked { shard: usize, message: String },
    #[error("shard {shard} could not be pinned to core {core}; check the core list against `nproc` and the process's CPU affinity")]
    PinFailed { shard: usize, core: usize },
}

/// Why the runtime did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no shards: the core list is empty")]
    NoShards,
    #[error("{shards} shards were built for {cores} cores; build one per core")]
    Mismatch { shards: usize, cores: usize },
    #[error("shard {shard} asks for core {core}, which this process may not run on (allowed: {allowed:?})")]
    NoSuchCore { shard: usize, core: usize, allowed: Vec<usize> },
    #[error("installing the SIGINT/SIGTERM handlers failed: {0}")]
    Signals(#[source] io::Error),
    #[error("spawning the thread of shard {shard} failed: {source}")]
    Spawn { shard: usize, source: io::Error },
}

/// Flags every shard polls; written rarely (stop, failure), read once per iteration.
#[derive(Debug)]
pub(crate) struct Control {
    /// A phased shutdown was requested.
    pub(crate) stop: AtomicBool,
    /// A shard failed: every shard exits at its next iteration, skipping the phases.
    pub(crate) abort: AtomicBool,
    /// Whether the process-wide signal flag also counts as a stop request.
    handle_signals: bool,
    /// The first failure; later ones are consequences. Touched only on the failure path.
    first_error: Mutex<Option<ShardError>>,
}

impl Control {
    #[inline]
    pub(crate) fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || (self.handle_signals && signal::shutdown_requested())
    }
    #[inline]
    pub(crate) fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }
    fn fail(&self, error: ShardError) {
        let mut first = self.first_error.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        first.get_or_insert(error);
        self.abort.store(true, Ordering::Relaxed);
    }
}

/// What one shard reports when it ends normally.
#[derive(Debug, Clone, Copy)]
pub struct ShardSummary<S> {
    pub shard: usize,
    pub core: usize,
    pub loop_stats: LoopStats,
    pub work: S,
}

/// What [`ShardRuntime::join`] returns when every shard ended normally.
#[derive(Debug, Clone)]
pub struct RuntimeStats<S> {
    /// One entry per shard, in shard order.
    pub shards: Vec<ShardSummary<S>>,
    /// Sum of every shard's final work stats.
    pub total: S,
}

/// Asks a running [`ShardRuntime`] to shut down, from any thread.
#[derive(Debug, Clone)]
pub struct StopHandle {
    control: Arc<Control>,
}

impl StopHandle {
    /// Starts the phased shutdown on every shard.
    pub fn request_stop(&self) {
        self.control.stop.store(true, Ordering::Relaxed);
    }
}

/// The running shards.
#[derive(Debug)]
pub struct ShardRuntime<S> {
    control: Arc<Control>,
    threads: Vec<JoinHandle<Result<ShardSummary<S>, ShardError>>>,
    work_readers: Vec<StatsReader<S>>,
    loop_readers: Vec<StatsReader<LoopStats>>,
}

impl<S: super::stats::Pod + Default + core::ops::AddAssign> ShardRuntime<S> {
    /// Starts one shard per entry of `cores` (shard `i` pinned to core `cores[i]`; a core may
    /// appear more than once) with the default [`RuntimeConfig`]. `factory(i)` builds shard `i`'s
    /// work on the calling thread, in shard order, before its thread starts.
    pub fn start<W, F>(cores: &[usize], factory: F) -> Result<Self, StartError>
    where
        W: ShardWork<Stats = S> + 'static,
        F: FnMut(usize) -> W,
    {
        Self::start_with(RuntimeConfig::default(), cores, factory)
    }

    /// [`ShardRuntime::start`] with explicit knobs.
    pub fn start_with<W, F>(
        config: RuntimeConfig,
        cores: &[usize],
        mut factory: F,
    ) -> Result<Self, StartError>
    where
        W: ShardWork<Stats = S> + 'static,
        F: FnMut(usize) -> W,
    {
        check_cores(cores)?;
        if config.retain_freed_memory {
            heap::retain_freed_memory();
        }
        if config.handle_signals {
            signal::install_shutdown_handlers().map_err(StartError::Signals)?;
        }
        let control = Arc::new(Control {
            stop: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            handle_signals: config.handle_signals,
            first_error: Mutex::new(None),
        });
        let mut runtime =
            ShardRuntime { control, threads: Vec::new(), work_readers: Vec::new(), loop_readers: Vec::new() };
        for (shard, &core) in cores.iter().enumerate() {
            let work = factory(shard);
            let (work_publisher, work_reader) = stats_cell(S::default());
            let (loop_publisher, loop_reader) = stats_cell(LoopStats::default());
            runtime.work_readers.push(work_reader);
            runtime.loop_readers.push(loop_reader);
            let publishers = ShardPublishers { work: work_publisher, loop_stats: loop_publisher };
            let control = runtime.control.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("linerate-shard-{shard}"))
                .spawn(move || shard_thread(shard, core, config, work, publishers, control));
            match spawned {
                Ok(handle) => runtime.threads.push(handle),
                Err(source) => {
                    // Stop the shards already running before reporting.
                    runtime.control.abort.store(true, Ordering::Relaxed);
                    let _ = runtime.join();
                    return Err(StartError::Spawn { shard, source });
                }
            }
        }
        Ok(runtime)
    }

    /// Starts shard `i` with `works[i]`, pinned to `cores[i]` (the shards were built beforehand,
    /// e.g. because they share a mesh). `works` and `cores` must have the same length.
    pub fn start_each<W>(config: RuntimeConfig, cores: &[usize], works: Vec<W>) -> Result<Self, StartError>
    where
        W: ShardWork<Stats = S> + 'static,
    {
        if works.len() != cores.len() {
            return Err(StartError::Mismatch { shards: works.len(), cores: cores.len() });
        }
        let mut works = works.into_iter();
        Self::start_with(config, cores, |_| works.next().expect("one work per core, checked above"))
    }

    /// A handle that can request the shutdown from any thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle { control: self.control.clone() }
    }

    /// Starts the phased shutdown on every shard (same as SIGTERM).
    pub fn request_stop(&self) {
        self.control.stop.store(true, Ordering::Relaxed);
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.work_readers.len()
    }

    /// Live work stats of every shard summed, read without stopping the shards.
    pub fn work_stats(&self) -> S {
        sum(&self.work_readers)
    }

    /// Live work stats of one shard, or `None` for an unknown shard.
    pub fn shard_work_stats(&self, shard: usize) -> Option<S> {
        self.work_readers.get(shard).map(StatsReader::read)
    }

    /// Live loop counters of every shard summed.
    pub fn loop_stats(&self) -> LoopStats {
        sum(&self.loop_readers)
    }

    /// Waits for every shard to end. Returns the first failure if any shard failed, otherwise
    /// every shard's final stats.
    pub fn join(self) -> Result<RuntimeStats<S>, ShardError> {
        let mut shards = Vec::with_capacity(self.threads.len());
        for (shard, handle) in self.threads.into_iter().enumerate() {
            match handle.join() {
                Ok(Ok(summary)) => shards.push(summary),
                Ok(Err(error)) => self.control.fail(error),
                // A panic outside the caught region (e.g. while dropping the work).
                Err(payload) => {
                    self.control.fail(ShardError::Panicked { shard, message: panic_message(&*payload) })
                }
            }
        }
        let first = self.control.first_error.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(error) = first {
            return Err(error);
        }
        let total = shards.iter().fold(S::default(), |mut acc, s| {
            acc += s.work;
            acc
        });
        Ok(RuntimeStats { shards, total })
    }
}

fn check_cores(cores: &[usize]) -> Result<(), StartError> {
    if cores.is_empty() {
        return Err(StartError::NoShards);
    }
    let allowed: Vec<usize> =
        core_affinity::get_core_ids().unwrap_or_default().iter().map(|c| c.id).collect();
    match cores.iter().enumerate().find(|(_, core)| !allowed.contains(core)) {
        Some((shard, &core)) => Err(StartError::NoSuchCore { shard, core, allowed }),
        None => Ok(()),
    }
}

/// The body of shard thread `shard`: pin, run the loop, and turn a panic into a [`ShardError`]
/// that stops the other shards.
fn shard_thread<W: ShardWork>(
    shard: usize,
    core: usize,
    config: RuntimeConfig,
    work: W,
    publishers: ShardPublishers<W::Stats>,
    control: Arc<Control>,
) -> Result<ShardSummary<W::Stats>, ShardError> {
    let result = catch_unwind(AssertUnwindSafe(|| {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
            return Err(ShardError::PinFailed { shard, core });
        }
        Ok(run_shard(shard, core, &config, work, publishers, control.clone()))
    }));
    let error = match result {
        Ok(Ok(summary)) => return Ok(summary),
        Ok(Err(error)) => error,
        Err(payload) => ShardError::Panicked { shard, message: panic_message(&*payload) },
    };
    control.fail(error.clone());
    Err(error)
}

/// The text of a panic payload (`panic!("...")` carries a `&str` or a `String`).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
