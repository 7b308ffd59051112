//! Per-core shards: the shared-nothing runtime around the engine.
//!
//! Each dedicated core runs one shard — its own NIC queue, AF_XDP socket, engine and application
//! instance — in a run-to-completion loop with no locks and no shared mutable state on the
//! packet path. This module is the part of that design that does not know what a shard runs:
//!
//! * [`runtime`]: threads pinned to cores, the loop ([`run_loop`]), phased shutdown on
//!   SIGINT/SIGTERM ([`signal`]), panic capture; the work is any [`ShardWork`] ([`work`]).
//! * [`ring`] and [`mesh`]: bounded SPSC rings, one per ordered pair of shards, for the rare
//!   messages that must cross shards (hand-off of misdirected frames, control).
//! * [`stats`]: per-shard counters published by the shard and read by anyone without stopping it.
//! * [`steering`]: the NIC's RSS (Toeplitz) hash and reading it from the device;
//!   [`ownership`]: which shard owns an active-open flow (the one its replies hash to).
//! * [`clock`]: the monotonic OS clock the loop reads once per iteration.
//! * [`heap`]: the allocator setting that keeps each shard's freed memory in its own arena.
//! * [`engine_shard`]: the production work — one engine per shard over its own queues, with
//!   frame hand-off ([`handoff`]), queue/port placement ([`placement`]) and the published
//!   counters ([`counters`]); the application plugs in as a [`ShardApp`].

pub mod clock;
pub mod counters;
pub mod engine_shard;
pub mod handoff;
pub mod heap;
pub mod mesh;
pub mod ownership;
pub mod placement;
pub mod ring;
pub mod run_loop;
pub mod runtime;
pub mod signal;
pub mod stats;
pub mod steering;
mod sync;
pub mod work;

pub use clock::MonotonicClock;
pub use counters::{EngineCounters, ShardCounters, ShardStats};
pub use engine_shard::{AppContext, AppPoll, EngineShard, ShardApp, ShardDevice};
pub use handoff::{FlowRouter, HandOffFrame, Route, HANDOFF_FRAME_MAX};
pub use mesh::{LinkStats, Mesh, ShardLinks};
pub use ownership::FlowOwners;
pub use placement::{ActiveOpener, PlacementError, PortChoice, Steering, SteeringMode};
pub use run_loop::LoopStats;
pub use runtime::{
    RuntimeConfig, RuntimeStats, ShardError, ShardRuntime, ShardSummary, StartError, StopHandle,
};
pub use stats::{stats_cell, Pod, StatsPublisher, StatsReader};
pub use work::{PollOutcome, ShardContext, ShardWork, ShutdownPhase};
