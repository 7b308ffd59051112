//! linerate-stack: a sans-I/O TCP/IPv4 engine.
//!
//! This crate owns the protocol: wire codecs ([`wire`]), time as a value ([`time`]), the
//! hierarchical timer wheel ([`timer`]) and the driver seam ([`device`]). It performs no I/O,
//! starts no threads and never reads a clock: `now` is passed into every entry point, frames come
//! and go through a [`device::Device`], randomness and secrets are injected by the caller.
//!
//! Nothing here panics on any frame from the wire; see the contract in [`wire`].

pub mod congestion;
pub mod cookie;
pub mod device;
pub mod flow;
pub mod isn;
pub mod neighbor;
pub mod recovery;
pub mod time;
pub mod timer;
pub mod wire;
