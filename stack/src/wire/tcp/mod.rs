//! TCP segments (RFC 9293 §3.1): the [`TcpPacket`] view, the [`TcpRepr`] representation, the
//! options codec and modular sequence numbers.
//!
//! This module owns the header layout, option encoding and the segment checksum. It knows nothing
//! about connections: whether a segment is acceptable is the engine's question.

mod flags;
mod options;
mod packet;
mod repr;
mod seq;

pub use flags::TcpFlags;
pub use options::{
    FastOpenCookie, SackBlock, SackBlocks, TcpOption, TcpOptionIter, TcpOptions, Timestamps, MAX_OPTIONS_LEN,
};
pub use packet::TcpPacket;
pub use repr::{finish_checksum, partial_checksum, store_partial_checksum, TcpRepr};
pub use seq::SeqNumber;
