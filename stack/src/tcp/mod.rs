//! TCP: the per-connection protocol machine (RFC 9293) and its parts.
//!
//! Folders follow concerns: [`state`] (the eleven states), [`connection`] (the TCB), [`input`]
//! (segment arrival by RFC 9293 §3.10.7 step), [`output`] (what to send), [`timeout`] (what each
//! timer does), [`timers`] (the per-connection deadline table), [`send_buffer`] and
//! [`recv_buffer`] (fixed rings, SACK ranges), [`rtt`] (RFC 6298), [`congestion`] (NewReno behind
//! an enum seam), [`options`] (negotiation), [`listener`], [`config`], [`info`].
//! Nothing here touches frames or other connections; the engine (`crate::engine`) does that.

pub mod config;
pub mod congestion;
pub mod connection;
pub mod info;
pub mod input;
pub mod listener;
pub mod options;
pub mod output;
pub mod recv_buffer;
pub mod rtt;
pub mod send_buffer;
pub mod state;
pub mod timeout;
pub mod timers;

pub use config::{Keepalive, SocketOptions, TcpConfig};
pub use congestion::CongestionAlgorithm;
pub use connection::{ConnectionError, FourTuple};
pub use info::TcpInfo;
pub use state::State;
