//! The SACK scoreboard (RFC 6675, RFC 2018, RFC 2883) over the [`SegmentStore`].
//!
//! **Owns** the per-segment SACKed/lost/retransmitted flags and the byte counters derived from
//! them (`pipe`, SACKed and lost bytes), `HighACK`/`HighData`/`HighRxt`/`RescueRxt`
//! (RFC 6675 §2), D-SACK detection (RFC 2883 §4) and the RFC 6675 `IsLost`/`NextSeg` rules.
//!
//! **Promises** (the SACK-panic / SACK-slowness class of attacks): one ACK costs
//! O(blocks · log n) plus O(1) per segment it newly acknowledges or SACKs (a run of clean
//! segments acknowledged together costs O(log n) plus one store per segment), and each segment is
//! SACKed at most once, so the total is bounded by what was sent. Blocks are validated first:
//! reversed, empty, beyond `snd_nxt` or below `snd_una` (other than a D-SACK) are ignored and
//! counted; overlapping ones are merged. A block covering part of a segment does not mark it
//! (records are never split) and is counted. Memory never changes after construction.
//! `pipe` is maintained incrementally, not recomputed per ACK. No method panics.
//!
//! **Does not** decide *when* something is lost by time (RACK does, in [`super::rack`]) nor
//! touch timers; it only applies the marks it is given.

use super::bits::SlotBits;
use super::segments::{not_at_or_before, not_before, SegmentRecord, SegmentStore, StoreFull};
use crate::congestion::PacketSnapshot;
use crate::time::Instant;
use crate::wire::{SackBlock, SeqNumber};

/// RFC 6675 §2 DupThresh.
pub const DUP_THRESH: u32 = 3;

/// Counters of what the scoreboard ignored, for `ss -ti`-like diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScoreboardCounters {
    /// D-SACK blocks seen (RFC 2883).
    pub dsack_blocks: u64,
    /// Blocks ignored: empty/reversed, beyond `snd_nxt`, or wholly below `snd_una`.
    pub invalid_blocks: u64,
    /// Segments only partly covered by a SACK block (left unmarked).
    pub partial_sacks: u64,
    /// ACKs acknowledging data never sent (ignored entirely).
    pub acks_beyond_snd_nxt: u64,
    /// Retransmissions reported for a sequence that starts no record.
    pub unmatched_retransmits: u64,
}

/// How a segment left the "outstanding" state on this ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Cumulatively acknowledged; `was_sacked` if it had been SACKed before.
    Acked { was_sacked: bool },
    /// Newly SACKed.
    Sacked,
    /// A run of `segments` clean records (never SACKed, lost or retransmitted, sent in
    /// sequence order) cumulatively acknowledged together; the record shown is the newest of
    /// the run. `first_end` is the end of the run's first record and `snapshot_bytes` the sum
    /// of the run's snapshot `bytes`. Delivering the run's records one by one to RACK and the
    /// delivery-rate estimator ends in the same state as delivering the first and the newest
    /// (sequence and send time both grow along the run, and each keeps a maximum), and the
    /// Karn sample is the newest's.
    AckedRun { segments: u32, first_end: SeqNumber, snapshot_bytes: u32 },
}

/// The scoreboard's summary of one ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScoreboardUpdate {
    /// Bytes by which `snd_una` advanced.
    pub newly_acked: u32,
    /// Bytes newly SACKed.
    pub newly_sacked: u32,
    /// RFC 6937 DeliveredData: Δsnd_una + ΔSACKed (bytes newly known to be at the receiver).
    pub delivered: u32,
    /// The D-SACK block (RFC 2883 §4), if the ACK carried one.
    pub dsack: Option<(SeqNumber, SeqNumber)>,
    /// Bytes that had been SACKed and are now cumulatively acked.
    pub acked_after_sack: u32,
    /// The ACK acknowledged data never sent and was ignored entirely.
    pub ignored: bool,
}

/// RFC 6675 NextSeg() (§4) result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextSegment {
    /// Retransmit the record starting at `seq`, `len` long.
    Retransmit { seq: SeqNumber, len: u32 },
    /// Rule 2: send new data.
    NewData,
    /// Nothing may be sent.
    Nothing,
}

/// SACK scoreboard and segment store of one connection.
#[derive(Debug, Clone)]
pub struct Scoreboard {
    pub(crate) store: SegmentStore,
    smss: u32,
    /// HighACK (RFC 6675 §2): `snd_una`.
    snd_una: SeqNumber,
    /// HighData: the highest sequence sent, plus one.
    high_data: SeqNumber,
    /// HighRxt: the highest sequence retransmitted, plus one.
    high_rxt: SeqNumber,
    /// RescueRxt (RFC 6675 §4 rule 4); `None` when undefined.
    rescue_rxt: Option<SeqNumber>,
    outstanding_bytes: u64,
    sacked_bytes: u64,
    sacked_segments: u32,
    /// Lost and not SACKed (whether or not retransmitted).
    lost_bytes: u64,
    /// Retransmissions counted in `pipe` (SetPipe (b)).
    retrans_bytes: u64,
    /// Lost records not yet retransmitted, by slot (RFC 6675 rule 1 candidates).
    lost_pending: SlotBits,
    /// Up to DupThresh highest SACKed records (start, len), highest first: where IsLost begins.
    top_sacked: [Option<(SeqNumber, u32)>; DUP_THRESH as usize],
    /// Records below this were already examined by the DupThresh rule.
    dupthresh_scanned: SeqNumber,
    counters: ScoreboardCounters,
    /// Work units of the last ACK (binary-search steps, records visited, skips).
    last_ack_work: u64,
}

impl Scoreboard {
    /// An empty scoreboard for `capacity` records, sender MSS `smss`, first sequence `snd_una`.
    pub fn new(capacity: usize, smss: u32, snd_una: SeqNumber) -> Self {
        let store = SegmentStore::new(capacity);
        let allocated = store.allocated();
        Scoreboard {
            store,
            smss: smss.max(1),
            snd_una,
            high_data: snd_una,
            high_rxt: snd_una,
            rescue_rxt: None,
            outstanding_bytes: 0,
            sacked_bytes: 0,
            sacked_segments: 0,
            lost_bytes: 0,
            retrans_bytes: 0,
            lost_pending: SlotBits::new(allocated),
            top_sacked: [None; DUP_THRESH as usize],
            dupthresh_scanned: snd_una,
            counters: ScoreboardCounters::default(),
            last_ack_work: 0,
        }
    }

    pub fn segments(&self) -> &SegmentStore {
        &self.store
    }
    pub fn counters(&self) -> ScoreboardCounters {
        self.counters
    }
    /// Work units spent by the last ACK: a debug measure of the per-ACK bound.
    pub fn last_ack_work(&self) -> u64 {
        self.last_ack_work
    }
    pub fn snd_una(&self) -> SeqNumber {
        self.snd_una
    }
    pub fn high_data(&self) -> SeqNumber {
        self.high_data
    }
    pub fn high_rxt(&self) -> SeqNumber {
        self.high_rxt
    }
    pub fn rescue_rxt(&self) -> Option<SeqNumber> {
        self.rescue_rxt
    }
    pub fn smss(&self) -> u32 {
        self.smss
    }
    pub fn set_smss(&mut self, smss: u32) {
        self.smss = smss.max(1);
    }
    /// Bytes sent and not cumulatively acknowledged (FlightSize, RFC 5681).
    pub fn flight_size(&self) -> u32 {
        clamp_u32(self.outstanding_bytes)
    }
    pub fn sacked_bytes(&self) -> u32 {
        clamp_u32(self.sacked_bytes)
    }
    pub fn sacked_segments(&self) -> u32 {
        self.sacked_segments
    }
    /// Lost segments awaiting retransmission.
    pub fn lost_pending_segments(&self) -> usize {
        self.lost_pending.count()
    }
    /// Bytes of retransmissions believed in flight.
    pub fn retrans_bytes(&self) -> u32 {
        clamp_u32(self.retrans_bytes)
    }
    pub fn lost_bytes(&self) -> u32 {
        clamp_u32(self.lost_bytes)
    }
    /// RFC 6675 §4 SetPipe: outstanding bytes neither SACKed nor deemed lost, plus retransmitted
    /// bytes still in the network. Kept incrementally, so O(1).
    pub fn pipe(&self) -> u32 {
        let in_net = self.outstanding_bytes.saturating_sub(self.sacked_bytes + self.lost_bytes);
        clamp_u32(in_net + self.retrans_bytes)
    }
    /// The highest SACKed sequence plus one, if anything is SACKed.
    pub fn highest_sacked(&self) -> Option<SeqNumber> {
        self.top_sacked[0].map(|(s, l)| s + l).filter(|e| self.snd_una < *e)
    }

    /// Records a new segment sent at `snd_nxt` (must start at [`Self::high_data`]; a segment
    /// starting elsewhere is appended anyway and moves HighData, the engine being the authority).
    #[inline]
    pub fn on_new_segment(
        &mut self,
        now: Instant,
        seq: SeqNumber,
        len: u32,
        tsval: Option<u32>,
        snapshot: PacketSnapshot,
    ) -> Result<(), StoreFull> {
        if self.store.is_empty() {
            self.snd_una = seq;
            self.dupthresh_scanned = seq;
            self.high_rxt = seq;
        }
        if let Some(moved) = self.store.push(seq, len, now, tsval, snapshot)? {
            self.lost_pending = moved.bits(&self.lost_pending);
        }
        self.outstanding_bytes += u64::from(len);
        self.high_data = seq + len;
        Ok(())
    }

    /// Records a retransmission of the records in `seq..seq + len` (normally exactly one).
    /// Returns the bytes matched; a range starting inside no record is counted and ignored.
    pub fn on_retransmit(
        &mut self,
        now: Instant,
        seq: SeqNumber,
        len: u32,
        tsval: Option<u32>,
        snapshot: PacketSnapshot,
    ) -> u32 {
        let Some(mut pos) = self.store.position_of(seq) else {
            self.counters.unmatched_retransmits += 1;
            return 0;
        };
        let end = seq + len;
        let mut matched = 0;
        while let Some(rec) = self.store.get(pos) {
            if not_before(rec.start, end) {
                break;
            }
            let slot = self.store.slot_of(pos);
            let r = self.store.by_slot_mut(slot);
            r.retransmits = r.retransmits.saturating_add(1);
            r.last_sent = now;
            r.last_tsval = tsval;
            r.snapshot = snapshot;
            let (rlen, rend, sacked, was_rtx) = (r.len, r.end(), r.state.sacked, r.state.retrans_in_flight);
            if !sacked {
                if !was_rtx {
                    self.store.by_slot_mut(slot).state.retrans_in_flight = true;
                    self.retrans_bytes += u64::from(rlen);
                }
                self.clear_pending(slot);
                self.store.relink_newest(slot);
            }
            self.high_rxt = self.high_rxt.max(rend);
            matched += rlen;
            pos += 1;
        }
        matched
    }

    /// Marks the record at `pos` lost (RACK or IsLost). A SACKed record is never marked; a
    /// retransmission marked lost stops counting in `pipe`. Returns the bytes newly lost.
    pub(crate) fn mark_lost(&mut self, pos: usize) -> u32 {
        let slot = self.store.slot_of(pos);
        let rec = *self.store.by_slot(slot);
        if rec.state.sacked || (rec.state.lost && !rec.state.retrans_in_flight) {
            return 0;
        }
        let r = self.store.by_slot_mut(slot);
        let newly = if r.state.lost { 0 } else { r.len };
        r.state.lost = true;
        if r.state.retrans_in_flight {
            r.state.retrans_in_flight = false;
            self.retrans_bytes -= u64::from(rec.len);
        }
        self.lost_bytes += u64::from(newly);
        self.store.unlink(slot);
        self.set_pending(slot);
        rec.len
    }

    /// RFC 6675 §5.1 / RFC 5681 §3.1 after a retransmission timeout: every un-SACKed record is
    /// lost, retransmissions included. O(n), once per timeout.
    pub fn mark_all_lost(&mut self) -> u32 {
        let mut newly = 0;
        for pos in 0..self.store.len() {
            newly += self.mark_lost(pos);
        }
        self.high_rxt = self.snd_una;
        self.rescue_rxt = None;
        newly
    }

    /// A spurious timeout is undone (Linux `tcp_undo_cwnd_reduction` with `unmark_loss`):
    /// every record marked lost, not retransmitted since and last sent at or before `sent_by`
    /// (the timeout) is outstanding again, so the sender goes on with new data instead of
    /// resending what the network still holds. The records rejoin the transmission-order list
    /// at its oldest end, in sequence order: everything on the list was sent after the
    /// timeout. (A record resent *before* the timeout, in an earlier recovery, may so sit
    /// ahead of older originals; RACK then at worst marks those later, never wrongly.)
    /// Returns the bytes unmarked. O(n), once per undo, like the timeout's own marking.
    pub(crate) fn unmark_lost(&mut self, sent_by: Instant) -> u32 {
        let mut bytes = 0;
        for pos in (0..self.store.len()).rev() {
            let slot = self.store.slot_of(pos);
            let rec = *self.store.by_slot(slot);
            if !self.lost_pending.contains(slot) || !rec.state.lost || rec.last_sent > sent_by {
                continue;
            }
            self.store.by_slot_mut(slot).state.lost = false;
            self.lost_bytes = self.lost_bytes.saturating_sub(u64::from(rec.len));
            self.clear_pending(slot);
            self.store.relink_oldest(slot);
            bytes += rec.len;
        }
        bytes
    }

    /// Takes back the SACK mark of the record at `pos`; the record becomes lost if `lost`, else
    /// outstanding again. Returns its bytes if it was SACKed, else 0. For a peer without SACK the
    /// marks are guesses the engine makes from duplicate ACKs (RFC 5681 §3.2 counts them, it
    /// cannot say which segment arrived): a cumulative ACK that stops at a marked record, or a
    /// retransmission timeout, proves a guess wrong.
    pub fn unsack(&mut self, pos: usize, lost: bool) -> u32 {
        let Some(rec) = self.store.get(pos).copied() else { return 0 };
        if !rec.state.sacked {
            return 0;
        }
        self.store.clear_sacked(pos);
        self.sacked_bytes = self.sacked_bytes.saturating_sub(u64::from(rec.len));
        self.sacked_segments = self.sacked_segments.saturating_sub(1);
        let mut kept = [None; DUP_THRESH as usize];
        for (slot, entry) in
            kept.iter_mut().zip(self.top_sacked.iter().flatten().filter(|e| e.0 != rec.start))
        {
            *slot = Some(*entry);
        }
        self.top_sacked = kept;
        if lost {
            self.mark_lost(pos);
        }
        rec.len
    }

    /// Every SACK mark goes and its record is lost: after a retransmission timeout, a peer
    /// without SACK has said nothing about what arrived above `snd_una`, so the sender goes back
    /// to the first unacknowledged segment (RFC 6298 §5.4, RFC 5681 §3.1), as Linux resets its
    /// Reno SACK count on entering loss. Returns the bytes un-SACKed. O(n), once per timeout.
    pub fn forget_sacks(&mut self) -> u32 {
        let mut bytes = 0;
        for pos in 0..self.store.len() {
            if self.sacked_segments == 0 {
                break;
            }
            bytes += self.unsack(pos, true);
        }
        bytes
    }

    /// RFC 6675 §4 IsLost(): `seq` has DupThresh SACKed segments, or more than
    /// (DupThresh - 1) · SMSS SACKed bytes, above it.
    pub fn is_lost(&self, seq: SeqNumber) -> bool {
        self.is_lost_frontier().is_some_and(|f| seq < f)
    }

    /// The sequence below which every un-SACKed byte satisfies IsLost.
    fn is_lost_frontier(&self) -> Option<SeqNumber> {
        let (mut count, mut bytes) = (0u32, 0u64);
        for (start, len) in self.top_sacked.iter().flatten() {
            count += 1;
            bytes += u64::from(*len);
            if count >= DUP_THRESH || bytes > u64::from((DUP_THRESH - 1) * self.smss) {
                return Some(*start);
            }
        }
        None
    }

    /// Marks every not-yet-lost, never-retransmitted record that IsLost() now covers (the
    /// RFC 6675 §5 trigger; used when DupThresh loss detection is on). Amortised O(1) per
    /// record: a cursor remembers how far earlier calls looked. Returns the bytes newly lost.
    pub fn mark_dupthresh_losses(&mut self) -> u32 {
        let Some(frontier) = self.is_lost_frontier() else { return 0 };
        let from = self.dupthresh_scanned.max(self.snd_una);
        let mut pos = self.store.first_ending_after(from);
        let mut newly = 0;
        while let Some(rec) = self.store.get(pos) {
            if not_at_or_before(rec.end(), frontier) {
                break;
            }
            if !rec.state.sacked && !rec.state.lost && rec.retransmits == 0 {
                newly += self.mark_lost(pos);
            }
            pos += 1;
        }
        self.dupthresh_scanned = self.dupthresh_scanned.max(frontier);
        newly
    }

    /// The first lost record not yet retransmitted (RFC 6675 rule 1 with RACK's marks).
    /// O(levels) through the pending bitmap.
    pub fn first_lost_pending(&self) -> Option<(SeqNumber, u32)> {
        let pos = self.store.next_marked(&self.lost_pending, 0)?;
        self.store.get(pos).map(|r| (r.start, r.len))
    }

    /// RFC 6675 §4 NextSeg(), with rule 1 driven by the loss marks (RACK or IsLost).
    /// `new_data` says whether the engine has unsent data that the receive window allows;
    /// rules 3 and 4 only apply `in_recovery`.
    pub fn next_seg(&mut self, new_data: bool, in_recovery: bool) -> NextSegment {
        if let Some((seq, len)) = self.first_lost_pending() {
            return NextSegment::Retransmit { seq, len };
        }
        if new_data {
            return NextSegment::NewData;
        }
        if !in_recovery {
            return NextSegment::Nothing;
        }
        if let Some((seq, len)) = self.rule3_candidate() {
            return NextSegment::Retransmit { seq, len };
        }
        self.rescue_candidate()
            .map_or(NextSegment::Nothing, |(seq, len)| NextSegment::Retransmit { seq, len })
    }

    /// Rule 3: the first un-SACKed, un-retransmitted record above HighRxt and below the highest
    /// SACKed sequence. SACKed runs are skipped in near-constant time.
    fn rule3_candidate(&mut self) -> Option<(SeqNumber, u32)> {
        let highest = self.highest_sacked()?;
        let mut pos = self.store.first_ending_after(self.high_rxt.max(self.snd_una));
        let mut steps = 0;
        // Bounded: a record skipped here is retransmitted-in-flight or lost, and there are few.
        for _ in 0..64 {
            pos = self.store.next_unsacked(pos, &mut steps);
            let rec = self.store.get(pos)?;
            if not_at_or_before(rec.end(), highest) {
                return None;
            }
            if !rec.state.retrans_in_flight && !rec.state.lost && not_before(rec.start, self.high_rxt) {
                return Some((rec.start, rec.len));
            }
            pos += 1;
        }
        None
    }

    /// Rule 4: once per HighACK advance, retransmit the last record if it is un-SACKed.
    fn rescue_candidate(&mut self) -> Option<(SeqNumber, u32)> {
        if self.rescue_rxt.is_some_and(|r| not_before(r, self.snd_una)) {
            return None;
        }
        let rec = self.store.back()?;
        if rec.state.sacked || rec.state.retrans_in_flight {
            return None;
        }
        self.rescue_rxt = Some(self.high_data);
        Some((rec.start, rec.len))
    }

    /// Applies one ACK: cumulative acknowledgment `ack`, then the SACK blocks. `on_delivered`
    /// sees every record newly acknowledged or SACKed (before it is released).
    pub fn on_ack(
        &mut self,
        ack: SeqNumber,
        blocks: &[SackBlock],
        mut on_delivered: impl FnMut(&SegmentRecord, Delivery),
    ) -> ScoreboardUpdate {
        self.apply_ack(ack, blocks, &mut on_delivered, Self::advance_una)
    }

    /// The ACK fast path's part ([`super::LossRecovery::on_clean_ack`]): a cumulative ACK
    /// without SACK blocks that ends exactly a run of two or more clean records at the front
    /// releases the run, with the update and the one report [`Self::on_ack`] would give it
    /// (the front that follows starts at `ack`, so the general path would neither release nor
    /// trim it). Any other ACK changes nothing and returns `None`.
    #[inline]
    pub(crate) fn on_clean_ack(
        &mut self,
        ack: SeqNumber,
        on_delivered: impl FnOnce(&SegmentRecord, Delivery),
    ) -> Option<ScoreboardUpdate> {
        let run = self.store.clean_run(ack);
        if run.segments < 2 || run.bytes != offset_u32(ack, self.snd_una) || self.snd_una >= ack {
            return None;
        }
        let first_end = self.store.front()?.end();
        let last = *self.store.get(run.segments - 1)?;
        self.outstanding_bytes = self.outstanding_bytes.saturating_sub(u64::from(run.bytes));
        self.store.pop_run(run.segments);
        // The general path also looks at the record after the run (one unit) when there is one.
        self.last_ack_work = run.segments as u64 + u64::from(!self.store.is_empty());
        self.snd_una = ack;
        self.high_rxt = self.high_rxt.max(ack);
        let segments = u32::try_from(run.segments).unwrap_or(u32::MAX);
        on_delivered(&last, Delivery::AckedRun { segments, first_end, snapshot_bytes: run.snapshot_bytes });
        let newly_acked = run.bytes;
        Some(ScoreboardUpdate { newly_acked, delivered: newly_acked, ..ScoreboardUpdate::default() })
    }

    /// [`Self::on_ack`] with the cumulative part done by `advance` (the tests compare the
    /// fast path with releasing every record through [`Self::release_front`]).
    pub(crate) fn apply_ack<F: FnMut(&SegmentRecord, Delivery)>(
        &mut self,
        ack: SeqNumber,
        blocks: &[SackBlock],
        mut on_delivered: &mut F,
        advance: impl FnOnce(&mut Self, SeqNumber, &mut ScoreboardUpdate, &mut F),
    ) -> ScoreboardUpdate {
        self.last_ack_work = 0;
        let mut update = ScoreboardUpdate::default();
        if ack > self.high_data {
            self.counters.acks_beyond_snd_nxt += 1;
            update.ignored = true;
            return update;
        }
        let ack = self.snd_una.max(ack);
        let mut ranges = [(0u32, 0u32); 4];
        let n = self.validate_blocks(ack, blocks, &mut ranges, &mut update);
        advance(self, ack, &mut update, on_delivered);
        for &(l, r) in &ranges[..n] {
            self.sack_range(ack + l, ack + r, &mut update, &mut on_delivered);
        }
        update.delivered =
            (update.newly_acked - update.acked_after_sack.min(update.newly_acked)) + update.newly_sacked;
        update
    }

    /// RFC 2018 §4 / RFC 2883 §4: turns the wire blocks into at most four disjoint, sorted
    /// ranges (offsets from `ack`) inside `ack..high_data`, noting a D-SACK.
    fn validate_blocks(
        &mut self,
        ack: SeqNumber,
        blocks: &[SackBlock],
        out: &mut [(u32, u32); 4],
        update: &mut ScoreboardUpdate,
    ) -> usize {
        let nxt = i64::from(offset_u32(self.high_data, ack));
        let mut n = 0;
        for (i, b) in blocks.iter().take(4).enumerate() {
            self.last_ack_work += 1;
            let (l, r) = (i64::from(b.left - ack), i64::from(b.right - ack));
            if l >= r {
                self.counters.invalid_blocks += 1;
                continue;
            }
            let contained_in_second =
                blocks.get(1).is_some_and(|b1| seq_le(b1.left, b.left) && seq_le(b.right, b1.right));
            // A D-SACK is the first block, below the cumulative ACK or inside the second block;
            // one absurdly far below (more than 1 GiB) is noise, not a duplicate report.
            if i == 0 && ((r <= 0 && r > -(1 << 30)) || (contained_in_second && r <= nxt)) {
                self.counters.dsack_blocks += 1;
                update.dsack = Some((b.left, b.right));
                continue;
            }
            if r <= 0 || r > nxt {
                self.counters.invalid_blocks += 1;
                continue;
            }
            out[n] = (l.max(0) as u32, r as u32);
            n += 1;
        }
        out[..n].sort_unstable();
        let mut merged = 0;
        for i in 0..n {
            let (l, r) = out[i];
            if merged > 0 && l <= out[merged - 1].1 {
                out[merged - 1].1 = out[merged - 1].1.max(r);
            } else {
                out[merged] = (l, r);
                merged += 1;
            }
        }
        merged
    }

    /// Releases the records below `ack`, trimming a record `ack` falls inside. Runs of clean
    /// records go in one step each ([`Self::release_clean_run`]), the rest one by one.
    fn advance_una<F: FnMut(&SegmentRecord, Delivery)>(
        &mut self,
        ack: SeqNumber,
        update: &mut ScoreboardUpdate,
        on_delivered: &mut F,
    ) {
        // Right after a run, the front is the record that stopped it (dirty, or not covered):
        // looking for another run there would only repeat the search and find none.
        let mut after_run = false;
        loop {
            if !after_run && self.release_clean_run(ack, update, on_delivered) {
                after_run = true;
                continue;
            }
            after_run = false;
            if !self.release_front(ack, update, on_delivered) {
                break;
            }
        }
        self.finish_advance(ack, update);
    }

    /// The cumulative-ACK fast path: releases the run of clean records at the front that `ack`
    /// covers, with one byte-counter update, one list/bitmap update and one delivery report
    /// ([`Delivery::AckedRun`]) instead of one each per record. Clean records are on no
    /// lost/pending list and count only in the outstanding bytes. False if the run is shorter
    /// than two records (the general path is as cheap for one).
    fn release_clean_run(
        &mut self,
        ack: SeqNumber,
        update: &mut ScoreboardUpdate,
        on_delivered: &mut impl FnMut(&SegmentRecord, Delivery),
    ) -> bool {
        let run = self.store.clean_run(ack);
        if run.segments < 2 {
            return false;
        }
        let (Some(first), Some(last)) = (self.store.front(), self.store.get(run.segments - 1)) else {
            return false;
        };
        let (first_end, last) = (first.end(), *last);
        self.last_ack_work += run.segments as u64;
        self.outstanding_bytes = self.outstanding_bytes.saturating_sub(u64::from(run.bytes));
        self.store.pop_run(run.segments);
        update.newly_acked += run.bytes;
        let segments = u32::try_from(run.segments).unwrap_or(u32::MAX);
        on_delivered(&last, Delivery::AckedRun { segments, first_end, snapshot_bytes: run.snapshot_bytes });
        true
    }

    /// Releases the front record if `ack` covers it (true), or trims it if `ack` falls inside it.
    pub(crate) fn release_front(
        &mut self,
        ack: SeqNumber,
        update: &mut ScoreboardUpdate,
        on_delivered: &mut impl FnMut(&SegmentRecord, Delivery),
    ) -> bool {
        let Some(front) = self.store.front().copied() else { return false };
        self.last_ack_work += 1;
        if front.end() <= ack && front.len > 0 || front.len == 0 && front.start < ack {
            let slot = self.store.slot_of(0);
            self.clear_pending(slot);
            self.forget_bytes(&front, front.len);
            if front.state.sacked {
                self.sacked_segments -= 1;
                update.acked_after_sack += front.len;
            }
            self.store.pop_front();
            update.newly_acked += front.len;
            on_delivered(&front, Delivery::Acked { was_sacked: front.state.sacked });
            true
        } else {
            if front.start < ack {
                let d = offset_u32(ack, front.start).min(front.len);
                self.forget_bytes(&front, d);
                if front.state.sacked {
                    update.acked_after_sack += d;
                }
                self.store.trim_front(d);
                update.newly_acked += d;
            }
            false
        }
    }

    /// `snd_una` moves to `ack` once the records below it are gone.
    pub(crate) fn finish_advance(&mut self, ack: SeqNumber, update: &mut ScoreboardUpdate) {
        if self.store.is_empty() && self.snd_una < ack {
            update.newly_acked = update.newly_acked.max(offset_u32(ack, self.snd_una));
        }
        self.snd_una = ack;
        self.high_rxt = self.high_rxt.max(ack);
    }

    /// Takes `bytes` of `rec` out of the byte counters.
    fn forget_bytes(&mut self, rec: &SegmentRecord, bytes: u32) {
        let b = u64::from(bytes);
        self.outstanding_bytes = self.outstanding_bytes.saturating_sub(b);
        if rec.state.sacked {
            self.sacked_bytes = self.sacked_bytes.saturating_sub(b);
        } else if rec.state.lost {
            self.lost_bytes = self.lost_bytes.saturating_sub(b);
        }
        if rec.state.retrans_in_flight {
            self.retrans_bytes = self.retrans_bytes.saturating_sub(b);
        }
    }

    /// Marks SACKed every record wholly inside `left..right` (RFC 2018 §3).
    fn sack_range(
        &mut self,
        left: SeqNumber,
        right: SeqNumber,
        update: &mut ScoreboardUpdate,
        on_delivered: &mut impl FnMut(&SegmentRecord, Delivery),
    ) {
        self.last_ack_work += u64::from(usize::BITS - self.store.len().leading_zeros());
        let mut pos = self.store.first_ending_after(left);
        loop {
            pos = self.store.next_unsacked(pos, &mut self.last_ack_work);
            let Some(rec) = self.store.get(pos).copied() else { break };
            self.last_ack_work += 1;
            if not_before(rec.start, right) {
                break;
            }
            if seq_le(left, rec.start) && seq_le(rec.end(), right) {
                let slot = self.store.slot_of(pos);
                self.clear_pending(slot);
                self.forget_bytes(&rec, rec.len);
                self.outstanding_bytes += u64::from(rec.len);
                if let Some(r) = self.store.get_mut(pos) {
                    r.state.lost = false;
                    r.state.retrans_in_flight = false;
                    // Its delivery is reported below, with the snapshot as sent; spent, the
                    // snapshot adds nothing if a reneging repair takes the mark back and a
                    // cumulative ACK covers the record before a resend (see `delivery_rate`).
                    r.snapshot.bytes = 0;
                }
                self.store.set_sacked(pos);
                self.sacked_bytes += u64::from(rec.len);
                self.sacked_segments += 1;
                update.newly_sacked += rec.len;
                self.note_sacked(rec.start, rec.len);
                on_delivered(&rec, Delivery::Sacked);
            } else {
                self.counters.partial_sacks += 1;
            }
            pos += 1;
        }
    }

    /// Keeps the DupThresh highest SACKed records (highest first) for IsLost(); entries
    /// already below `snd_una` are dropped.
    fn note_sacked(&mut self, start: SeqNumber, len: u32) {
        let mut out = [None; DUP_THRESH as usize];
        let mut j = 0;
        let mut placed = false;
        for &(s, l) in self.top_sacked.iter().flatten() {
            if s < self.snd_una {
                continue;
            }
            if !placed && start > s && j < out.len() {
                out[j] = Some((start, len));
                j += 1;
                placed = true;
            }
            if j < out.len() {
                out[j] = Some((s, l));
                j += 1;
            }
        }
        if !placed && j < out.len() {
            out[j] = Some((start, len));
        }
        self.top_sacked = out;
    }

    fn set_pending(&mut self, slot: usize) {
        self.lost_pending.insert(slot);
    }

    fn clear_pending(&mut self, slot: usize) {
        self.lost_pending.remove(slot);
    }
}

fn clamp_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn offset_u32(seq: SeqNumber, base: SeqNumber) -> u32 {
    seq.0.wrapping_sub(base.0)
}

fn seq_le(a: SeqNumber, b: SeqNumber) -> bool {
    a <= b
}
