//! What the loss-recovery unit tests share: a sender of `MSS`-byte segments numbered from
//! `ISS`, virtual time in milliseconds, and ACKs built from segment numbers.

use super::{AckOutcome, LossRecovery, SentSegment};
use crate::congestion::PacketSnapshot;
use crate::time::Instant;
use crate::wire::{SackBlock, SeqNumber};

pub(super) const MSS: u32 = 1000;
pub(super) const ISS: SeqNumber = SeqNumber(10_000);

pub(super) fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// The first byte of segment `i`.
pub(super) fn seg(i: u32) -> SeqNumber {
    ISS + i * MSS
}

/// Records segment `i` sent (or resent) at `ms` with TSval `tsval`.
pub(super) fn send_segment(r: &mut LossRecovery, ms: u64, i: u32, is_retransmit: bool, tsval: Option<u32>) {
    let s = SentSegment { seq: seg(i), len: MSS, is_retransmit, tsval, snapshot: PacketSnapshot::default() };
    r.on_sent(at(ms), &s).unwrap();
}

/// An ACK at `ms` of everything below segment `ack`, SACKing the segment ranges `blocks`
/// (`[l, h)` in segment numbers) and echoing `tsecr`.
pub(super) fn ack_segments(
    r: &mut LossRecovery,
    ms: u64,
    ack: u32,
    blocks: &[(u32, u32)],
    tsecr: Option<u32>,
) -> AckOutcome {
    let blocks: Vec<SackBlock> =
        blocks.iter().map(|&(l, h)| SackBlock { left: seg(l), right: seg(h) }).collect();
    r.on_ack(at(ms), seg(ack), &blocks, tsecr, |_| {})
}
