//! A response body on its way into the engine: lent from a file mapping, or read into the ring.
//!
//! **Owns** the per-response choice and, for mapped bodies, how far the file is known resident
//! and how far it was asked for. Bodies of at least [`MAP_MIN`] bytes are mapped ([`FileMap`])
//! and lent to the engine ([`Engine::write_external`]): the engine copies them from the page
//! cache straight into NIC frames, the one copy, with the checksum summed on the way, and reads
//! them again for retransmissions. Only ranges reported resident are lent, so the shard never
//! waits for the disk: the first window is checked with `mincore` when the response starts (a
//! cached file starts at once), and the [`Prefetcher`] populates the rest, at most
//! [`LOOKAHEAD`] bytes beyond the send position, [`WINDOW`] bytes per request.
//!
//! Shorter bodies, and bodies whose mapping failed (the guard registry is full, or the file
//! system cannot map), are `pread` into the send ring instead: for a few pages, the
//! mmap/munmap pair (and the TLB shootdown of an unmap in a multi-threaded process) costs more
//! than the second copy it saves. This is the one place a short cold file can make the shard
//! wait for the disk.
//!
//! **Must not** lend a byte past what the response promised, or any byte of a file found
//! shorter than promised: the connection is aborted instead (the client sees a reset, never a
//! complete response with wrong bytes).

use super::mapped::FileMap;
use super::prefetch::{Done, Prefetcher, Request};
use crate::http::FileBody;
use linerate_stack::engine::{ConnectionHandle, Engine, Error};
use linerate_stack::tcp::{ExternalChunk, SendSource};
use linerate_stack::time::Instant;
use std::sync::Arc;

/// Bodies at least this long are lent from a mapping; shorter ones are `pread` into the ring.
pub const MAP_MIN: u64 = 64 * 1024;
/// Bytes per prefetch request (and per `mincore` check when a response starts).
pub const WINDOW: usize = 1 << 20;
/// Most bytes asked for beyond the send position, per connection.
pub const LOOKAHEAD: u64 = 4 << 20;
/// Most bytes `pread` into the ring per call.
const READ_CHUNK: usize = 256 * 1024;
/// Prefetch requests outstanding per connection.
const MAX_IN_FLIGHT: u8 = 2;

/// The current response body's path into the engine.
#[derive(Debug, Default)]
pub enum BodyPath {
    /// No body in progress (or not decided yet).
    #[default]
    Undecided,
    /// Read into the send ring with `pread`.
    Read,
    Mapped(MappedBody),
}

/// A body lent from a mapping.
#[derive(Debug)]
pub struct MappedBody {
    map: Arc<FileMap>,
    /// The file (device, inode) and the body's end offset: a body that does not match is a
    /// new response.
    body: ((u64, u64), u64),
    /// Bytes before this file offset are known resident.
    resident_to: u64,
    /// Bytes before this offset are resident or asked for.
    requested_to: u64,
    /// Requests not answered yet.
    in_flight: u8,
    /// The prefetcher found the file shorter than promised.
    failed: bool,
}

/// What [`BodyPath::write`] did.
#[derive(Debug)]
pub enum Wrote {
    /// Bytes the engine took (0: nothing resident yet, wait for the prefetcher).
    Taken(Result<usize, Error>, usize),
    /// The body cannot be sent: abort the connection.
    Failed,
}

impl BodyPath {
    /// Queues up to `room` bytes of `file` from `offset` (`len` left in the body).
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        &mut self,
        now: Instant,
        engine: &mut Engine,
        h: ConnectionHandle,
        prefetch: &mut Prefetcher,
        file: &FileBody,
        offset: u64,
        len: u64,
        room: usize,
    ) -> Wrote {
        let stale = match self {
            BodyPath::Undecided => true,
            BodyPath::Mapped(m) => m.body != (file.identity(), offset + len),
            BodyPath::Read => false,
        };
        if stale {
            *self = Self::choose(file, offset, len);
            match self {
                BodyPath::Mapped(_) => prefetch.counts.lent += 1,
                _ => prefetch.counts.read += 1,
            }
        }
        let wrote = match self {
            BodyPath::Mapped(m) => m.write(now, engine, h, prefetch, offset, len, room),
            _ => read_into_ring(now, engine, h, file, offset, len, room),
        };
        if let Wrote::Failed = wrote {
            prefetch.counts.cut += 1;
        }
        wrote
    }

    fn choose(file: &FileBody, offset: u64, len: u64) -> BodyPath {
        if len < MAP_MIN {
            return BodyPath::Read;
        }
        let Ok(size) = usize::try_from(file.len()) else { return BodyPath::Read };
        match FileMap::new(file, size) {
            Ok(map) => {
                let map = Arc::new(map);
                // A cached file starts at once; the prefetcher takes over from there.
                let first = map.resident_prefix(offset as usize, WINDOW, &mut Vec::new()) as u64;
                let resident_to = offset + first;
                BodyPath::Mapped(MappedBody {
                    map,
                    body: (file.identity(), offset + len),
                    resident_to,
                    requested_to: resident_to,
                    in_flight: 0,
                    failed: false,
                })
            }
            Err(_) => BodyPath::Read,
        }
    }

    /// The body ended (all of it queued, or the connection gave up on it).
    pub fn finish(&mut self) {
        *self = BodyPath::Undecided;
    }

    /// Takes a prefetcher answer; false if it was for another body (ignored).
    pub fn on_prefetched(&mut self, done: &Done) -> bool {
        let BodyPath::Mapped(m) = self else { return false };
        if !Arc::ptr_eq(&m.map, &done.map) {
            return false;
        }
        m.in_flight = m.in_flight.saturating_sub(1);
        if done.failed {
            m.failed = true;
        } else if done.resident > 0 {
            m.resident_to = m.resident_to.max(done.offset + done.resident as u64);
        }
        // Whatever was asked and not found resident is asked again.
        if m.in_flight == 0 {
            m.requested_to = m.resident_to;
        }
        true
    }

    /// A mapped body waiting for a prefetch request the queue had no room for.
    pub fn wants_prefetch(&self) -> bool {
        matches!(self, BodyPath::Mapped(m) if m.in_flight == 0 && m.requested_to == m.resident_to && !m.failed)
    }
}

impl MappedBody {
    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        now: Instant,
        engine: &mut Engine,
        h: ConnectionHandle,
        prefetch: &mut Prefetcher,
        offset: u64,
        len: u64,
        room: usize,
    ) -> Wrote {
        if self.failed {
            return Wrote::Failed;
        }
        let end = offset + len;
        self.ask_ahead(h, prefetch, offset, end);
        let ready = self.resident_to.saturating_sub(offset).min(len);
        let n = usize::try_from(ready).unwrap_or(usize::MAX).min(room);
        if n == 0 {
            return Wrote::Taken(Ok(0), 0);
        }
        let source: Arc<dyn SendSource> = self.map.clone();
        let start = offset as usize;
        let Some(chunk) = ExternalChunk::new(source, start..start + n) else { return Wrote::Failed };
        let result = engine.write_external(now, h, &chunk);
        if let Ok(k) = result {
            self.ask_ahead(h, prefetch, offset + k as u64, end);
        }
        Wrote::Taken(result, n)
    }

    /// Keeps up to [`LOOKAHEAD`] bytes beyond `sent` asked for.
    fn ask_ahead(&mut self, h: ConnectionHandle, prefetch: &mut Prefetcher, sent: u64, end: u64) {
        let limit = end.min(sent + LOOKAHEAD);
        while self.in_flight < MAX_IN_FLIGHT && self.requested_to < limit {
            let len = (limit - self.requested_to).min(WINDOW as u64) as usize;
            let request = Request { conn: h, map: self.map.clone(), offset: self.requested_to, len };
            if prefetch.request(request).is_err() {
                // Queue full: the shard's sweep asks again (`wants_prefetch`).
                return;
            }
            self.requested_to += len as u64;
            self.in_flight += 1;
        }
    }
}

/// `pread` straight into the send ring: at most the free space, so no file byte is read that
/// cannot be queued.
fn read_into_ring(
    now: Instant,
    engine: &mut Engine,
    h: ConnectionHandle,
    file: &FileBody,
    offset: u64,
    len: u64,
    room: usize,
) -> Wrote {
    let want = usize::try_from(len).unwrap_or(usize::MAX).min(room).min(READ_CHUNK);
    let mut file_failed = false;
    // The ring lends one contiguous piece (maybe less than `want` where it wraps); the caller
    // comes back for the rest.
    let result = engine.write_with(now, h, want, |ring| match file.read_at(offset, ring) {
        Ok(k) if k > 0 => k,
        // Not expected (a full ring is refused before `fill`), but not an error.
        Ok(_) if ring.is_empty() => 0,
        _ => {
            file_failed = true;
            0
        }
    });
    if file_failed {
        return Wrote::Failed;
    }
    // Only a refusal (`WouldBlock`) means the ring is full; a short piece does not.
    Wrote::Taken(result, 1)
}
