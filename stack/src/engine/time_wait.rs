//! TIME-WAIT bound: at most half the connection table may sit in TIME-WAIT; beyond that the
//! oldest TIME-WAIT connection the application has let go of is freed early.
//!
//! Why: a server that closes first (HTTP/1.1 `Connection: close`) keeps every connection in
//! TIME-WAIT for 2*MSL (RFC 9293 §3.10.7.4, 60 s by default). Each holds a slot of the
//! `max_connections` table, so after `max_connections` short connections every new SYN was
//! refused for a minute. Linux bounds TIME-WAIT separately (`tcp_max_tw_buckets`, skipping
//! TIME-WAIT when over it) and FreeBSD reuses its oldest TIME-WAIT entry when its zone is full;
//! we bound TIME-WAIT to half the table and recycle the oldest, counted in
//! `time_wait_recycled`. The hazard TIME-WAIT guards against (old duplicates, RFC 1337) is then
//! covered only by ISN monotonicity (RFC 6528) and PAWS, as on those systems under load.
//!
//! Owns a FIFO of `(slot, generation)` in the order connections entered TIME-WAIT. Every
//! TIME-WAIT lasts the same time, so the front is the oldest. Entries go stale (expired,
//! reopened) and are skipped when met. Bounded by `max_connections`; O(1) amortised per
//! connection; it frees other connections only, never the one being queued.

use super::Engine;
use crate::tcp::State;

impl Engine {
    /// Remembers that the connection in `index` just entered TIME-WAIT (once per connection),
    /// first recycling the oldest one if TIME-WAIT holds its share of the table already.
    pub(super) fn queue_time_wait(&mut self, index: u32) {
        while let Some(&(i, g)) = self.time_wait.front() {
            if self.recyclable(i, g).is_some() {
                break;
            }
            self.time_wait.pop_front();
        }
        let share = (self.cfg.max_connections / 2).max(1);
        if self.time_wait.len() >= share {
            self.recycle_time_wait();
        }
        if self.time_wait.len() < self.cfg.max_connections {
            self.time_wait.push_back((index, self.slots[index as usize].generation));
        }
    }

    /// Frees the oldest orphaned TIME-WAIT connection; false if there is none.
    fn recycle_time_wait(&mut self) -> bool {
        while let Some((i, g)) = self.time_wait.pop_front() {
            if self.recyclable(i, g) == Some(true) {
                self.stats.time_wait_recycled += 1;
                self.free(i);
                return true;
            }
        }
        false
    }

    /// `None` when the entry is stale; otherwise whether the application has let go of it.
    fn recyclable(&self, index: u32, generation: u32) -> Option<bool> {
        let slot = self.slots.get(index as usize).filter(|s| s.generation == generation)?;
        let conn = slot.conn.as_deref().filter(|c| c.state == State::TimeWait)?;
        Some(conn.orphaned)
    }
}
