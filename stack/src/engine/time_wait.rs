//! TIME-WAIT recycling: which orphaned TIME-WAIT connection gives up its slot when the
//! connection table is full.
//!
//! Why: a server that closes first (HTTP/1.1 `Connection: close`) keeps every connection in
//! TIME-WAIT for 2*MSL (RFC 9293 §3.10.7.4, 60 s here). Each holds a slot of the
//! `max_connections` table, so after `max_connections` short connections every new SYN was
//! refused for a minute. Linux keeps TIME-WAIT out of its socket budget (`tcp_max_tw_buckets`,
//! and skips TIME-WAIT when over it); FreeBSD reuses its oldest TIME-WAIT entry when its zone
//! is exhausted. We do the latter: at the cap, the connection that entered TIME-WAIT first (and
//! that the application has let go of) is freed to admit the new one, counted in
//! `time_wait_recycled`. The hazard TIME-WAIT guards against (old duplicates, RFC 1337) is then
//! covered only by ISN monotonicity (RFC 6528) and PAWS, as it is on those systems under load.
//!
//! Owns a FIFO of `(slot, generation)` in the order connections entered TIME-WAIT. Since every
//! TIME-WAIT lasts the same time, the front is the oldest. Entries go stale (expired, reopened)
//! and are skipped when popped. Bounded by `max_connections`; O(1) amortised per connection.

use super::Engine;
use crate::tcp::State;

impl Engine {
    /// Remembers that the connection in `index` just entered TIME-WAIT (once per connection).
    pub(super) fn queue_time_wait(&mut self, index: u32) {
        while let Some(&(i, g)) = self.time_wait.front() {
            if self.recyclable(i, g).is_some() {
                break;
            }
            self.time_wait.pop_front();
        }
        if self.time_wait.len() < self.cfg.max_connections {
            self.time_wait.push_back((index, self.slots[index as usize].generation));
        }
    }

    /// Frees the oldest orphaned TIME-WAIT connection; false if there is none.
    pub(super) fn recycle_time_wait(&mut self) -> bool {
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
