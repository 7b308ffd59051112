//! linerate-stack: a sans-I/O TCP/IPv4 engine.
//!
//! This crate owns the protocol: wire codecs ([`wire`]), time as a value ([`time`]), the
//! hierarchical timer wheel ([`timer`]), the driver seam ([`device`]), the TCP machine ([`tcp`]),
//! IPv4/ARP/ICMP glue ([`ip`]), the engine that ties them to frames and applications
//! ([`engine`]) and its counters ([`stats`]). It performs no I/O, starts no threads and never
//! reads a clock: `now` is passed into every entry point, frames come and go through a
//! [`device::Device`], randomness and secrets are injected by the caller.
//!
//! Nothing here panics on any frame from the wire; see the contract in [`wire`].

pub mod congestion;
pub mod cookie;
pub mod device;
pub mod engine;
pub mod flow;
pub mod ip;
pub mod isn;
pub mod neighbor;
pub mod recovery;
pub mod stats;
pub mod tcp;
pub mod time;
pub mod timer;
pub mod wire;

pub use engine::{ConnectionHandle, Engine, EngineConfig, Error, Event, ListenerHandle};
