//! Compact TIME-WAIT: a connection in TIME-WAIT that the application has let go of (closed or
//! never accepted) leaves the slab and lives on as a 48-byte [`TimeWaitRecord`] in a bounded
//! [`TimeWaitTable`] (64 bytes an entry), found from the 4-tuple by the same flow-table lookup
//! as connections (a tagged value, `flows.rs`).
//!
//! Why: a server that closes first (HTTP/1.1 `Connection: close`) keeps every connection in
//! TIME-WAIT for 2*MSL (RFC 9293 §3.10.7.4, 60 s by default). As a full connection each held a
//! ~5 KB box and a slot of the `max_connections` table, so TIME-WAIT was bounded at half the
//! table and recycled early. Like Linux's `inet_timewait_sock`, the record keeps only what the
//! TIME-WAIT rules read; the slot and box are freed when the record is made.
//!
//! When: in `after_update`, once the connection is in TIME-WAIT, let go of, and owes nothing
//! (the ACK of the peer's FIN is sent: the first ACK goes out exactly as before). A connection
//! the application still holds stays full until it closes the handle, then converts.
//!
//! Rules: [`TimeWaitRecord::on_segment`] applies the full connection's TIME-WAIT rules (FIN
//! re-ACKed with the 2*MSL restart, acceptable RST removes, SYN reopen per RFC 6191, PAWS,
//! challenge ACKs within the stack-wide limit). Its ACKs go through the reply queue, one per
//! record per transmit round (the full connection's `ack_now` coalescing), built at send time
//! with the same SEQ, ACK, window and options as the full connection's.
//!
//! Bounds and expiry: at most `EngineConfig::time_wait_capacity` records; when full, the
//! oldest is recycled (counted in `time_wait_recycled`; the hazard TIME-WAIT guards against is
//! then covered by ISN monotonicity, RFC 6528, and PAWS, as on Linux and FreeBSD under load).
//! Records expire in FIFO order (all last 2*MSL), so the table's head is the engine's only
//! TIME-WAIT deadline (`next_timeout`): no timer-wheel entry per record. Nothing allocates.

mod table;

pub(crate) use table::TimeWaitTable;
pub use table::TIME_WAIT_ENTRY_BYTES;

use super::transmit::Reply;
use super::Engine;
use crate::device::Device;
use crate::tcp::input::time_wait::{TimeWaitAction, TimeWaitRecord};
use crate::tcp::input::InputContext;
use crate::tcp::timers::TimerKind;
use crate::tcp::FourTuple;
use crate::time::Instant;
use crate::wire::{EthernetAddress, SackBlock, TcpFlags, TcpRepr};

/// A queued ACK of a TIME-WAIT record, built when it is transmitted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TimeWaitAck {
    record: u32,
    /// The record's tuple when queued: a record removed (and its id reused) since is skipped.
    tuple: FourTuple,
    dst: EthernetAddress,
    dsack: Option<SackBlock>,
}

impl Engine {
    /// Replaces the settled TIME-WAIT connection in `index`, which the application has let go
    /// of, by a compact record and frees the connection. False (nothing changed) when it still
    /// owes a segment.
    pub(super) fn compact_time_wait(&mut self, index: u32, now: Instant) -> bool {
        let Some(conn) = self.slots[index as usize].conn.as_deref_mut() else { return false };
        let Some(record) = TimeWaitRecord::from_connection(conn) else { return false };
        let expiry = conn.timers.get(TimerKind::Linger).unwrap_or(now + self.cfg.tcp.time_wait);
        if self.time_wait.is_full() {
            self.recycle_oldest_time_wait();
        }
        match self.time_wait.insert(record, expiry) {
            Some(id) => {
                // Replaces the connection's entry, so `free` leaves the tuple in the table.
                let inserted = self.flows.insert_time_wait(record.tuple, id);
                debug_assert!(inserted, "flow table sized for connections and TIME-WAIT records");
            }
            // A table of capacity 0: TIME-WAIT is skipped, as Linux does past its bucket limit.
            None => self.stats.time_wait_recycled += 1,
        }
        self.free(index);
        true
    }

    /// Frees the oldest record to make room (counted).
    fn recycle_oldest_time_wait(&mut self) {
        if let Some(id) = self.time_wait.oldest() {
            self.stats.time_wait_recycled += 1;
            self.remove_time_wait(id);
        }
    }

    /// Forgets every record whose 2*MSL has passed at `now`.
    pub(super) fn expire_time_wait(&mut self, now: Instant) {
        while let Some(id) = self.time_wait.oldest_expired(now) {
            self.remove_time_wait(id);
        }
    }

    fn remove_time_wait(&mut self, id: u32) {
        if let Some(record) = self.time_wait.remove(id) {
            self.flows.remove(&record.tuple);
        }
    }

    /// A segment for the TIME-WAIT record `id` (RFC 9293 §3.10.7.4, see `tcp::input::time_wait`).
    pub(super) fn segment_to_time_wait(
        &mut self,
        now: Instant,
        src_mac: EthernetAddress,
        id: u32,
        tuple: FourTuple,
        seg: &TcpRepr<'_>,
    ) {
        self.finish_deferred_update(now);
        let Some(record) = self.time_wait.get_mut(id) else { return };
        let mut ctx =
            InputContext { now, cfg: &self.cfg.tcp, stats: &mut self.stats, challenge: &mut self.challenge };
        match record.on_segment(seg, &mut ctx) {
            TimeWaitAction::None => {}
            TimeWaitAction::Ack { dsack, restart } => {
                if restart {
                    self.time_wait.restart(id, now + self.cfg.tcp.time_wait);
                }
                self.queue_time_wait_ack(id, src_mac, dsack);
            }
            TimeWaitAction::Close => self.remove_time_wait(id),
            TimeWaitAction::Reopen => {
                self.remove_time_wait(id);
                self.segment_without_connection(now, src_mac, tuple, seg);
            }
        }
    }

    /// Queues one ACK for record `id` unless one is queued already.
    fn queue_time_wait_ack(&mut self, id: u32, dst: EthernetAddress, dsack: Option<SackBlock>) {
        let Some(record) = self.time_wait.get(id) else { return };
        if record.ack_queued {
            return;
        }
        let ack = TimeWaitAck { record: id, tuple: record.tuple, dst, dsack };
        if self.queue_reply(Reply::TimeWaitAck(ack)) {
            if let Some(record) = self.time_wait.get_mut(id) {
                record.ack_queued = true;
            }
        }
    }

    /// Sends a queued TIME-WAIT ACK; true when sent or no longer owed (the record is gone),
    /// false when the device refused it.
    pub(super) fn transmit_time_wait_ack<D: Device>(
        &mut self,
        now: Instant,
        device: &mut D,
        ident: u16,
        ack: &TimeWaitAck,
    ) -> bool {
        let Some(record) = self.time_wait.get_mut(ack.record) else { return true };
        if record.tuple != ack.tuple || !record.ack_queued {
            return true;
        }
        record.ack_queued = false;
        let record = *record;
        let control = (record.snd_nxt, record.rcv_nxt, TcpFlags::ACK, record.window_field);
        let options = record.ack_options(now, ack.dsack);
        self.transmit_control(now, device, ident, record.tuple, ack.dst, control, Some(options))
    }
}
