//! The deterministic simulated link: the ground every protocol test stands on.
//!
//! Owns everything needed to run two endpoints against each other on virtual time: a seeded PRNG
//! of our own ([`rng`]), the link knobs ([`config`]), one link direction with its bottleneck, loss,
//! corruption, duplication, delay, jitter, targeted drops and rings ([`link`]), per-flow
//! accounting of a shared bottleneck ([`flows`]), the [`Device`] view of one end
//! ([`port`]), the stepping harness ([`pair`]), pcap capture ([`capture`]) and the test-run guard
//! ([`run`]). Promises: a run is a pure function of its seed, configuration and endpoints — same
//! seed, same counters, same pcap bytes — with no OS time, threads or hash-order dependence. It
//! must not be used on a real network path; it is the lab bench, not the NIC.
//!
//! [`Device`]: linerate_stack::device::Device

mod bottleneck;
pub mod capture;
pub mod config;
pub mod flows;
pub mod link;
pub mod pair;
mod pool;
pub mod port;
pub mod rng;
pub mod run;

pub use bottleneck::serialization_time;
pub use capture::Capture;
pub use config::{LinkConfig, LossModel};
pub use flows::{FlowKey, FlowStats, FlowTable, MAX_TRACKED_FLOWS};
pub use link::{DropFilter, Link, LinkStats, MAX_IN_FLIGHT_FRAMES};
pub use pair::{Direction, Endpoint, Outcome, Pair, StepBudgetExhausted};
pub use pool::POISON_BYTE;
pub use port::SimPort;
pub use rng::SimRng;
pub use run::SimRun;
