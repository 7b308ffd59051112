//! TCP: the per-connection protocol machine (RFC 9293) and its parts.
//!
//! Folders follow concerns: [`state`] (the eleven states), [`connection`] (the TCB), [`input`]
//! (segment arrival by RFC 9293 §3.10.7 step), [`output`] (what to send), [`timeout`] (what each
//! timer does), [`timers`] (the per-connection deadline table), [`send_buffer`] (a fixed ring
//! plus lent [`send_source`] chunks) and [`recv_buffer`] (fixed rings, SACK ranges) with [`buffer_pool`] recycling their storage, [`sender`] (the glue to loss recovery in
//! `crate::recovery`, congestion control and pacing in `crate::congestion`), [`options`]
//! (negotiation), [`listener`], [`config`], [`info`], [`ack_output`] (a bare ACK without planning).
//! Nothing here touches frames or other connections; the engine (`crate::engine`) does that.

pub mod ack_output;
pub mod buffer_pool;
pub mod config;
pub mod connection;
pub mod info;
pub mod input;
pub mod listener;
pub mod options;
pub mod output;
pub mod recv_buffer;
pub mod send_buffer;
pub mod send_source;
pub mod sender;
pub mod state;
#[cfg(test)]
pub(crate) mod test_support;
pub mod timeout;
pub mod timers;

pub use crate::congestion::Algorithm as CongestionAlgorithm;
pub use config::{Keepalive, SocketOptions, TcpConfig};
pub use connection::{ConnectionError, FourTuple};
pub use info::TcpInfo;
pub use send_source::{ExternalChunk, SendSource};
pub use state::State;
