//! A response body on its way into the engine: lent from a file mapping, or read into the ring.
//!
//! **Owns** the per-response choice and, for mapped bodies, how far the file is known resident,
//! how far it was asked for, and how far the engine has let go of it. Bodies of at least
//! [`MAP_MIN`] bytes are mapped ([`FileMap`]) and lent to the engine
//! ([`Engine::write_external`]): the engine copies them from the page cache straight into NIC
//! frames, the one copy, with the checksum summed on the way, and reads them again for
//! retransmissions. The [`Prefetcher`] makes the mapping (no `mmap` on the shard) and checks
//! the first window with `mincore` (a cached file starts as soon as the mapping arrives). Only
//! ranges reported resident are lent, so the shard never waits for the disk: the prefetcher locks (or, past its budget, populates) the windows
//! from the start of the body on, at most [`LOOKAHEAD`] bytes beyond the send position,
//! [`WINDOW`] bytes per request. Locked pages stay resident for retransmissions too; every
//! [`WINDOW`] bytes the body tells the prefetcher how far the engine has released the file
//! (acknowledged), and those pages are unlocked. The mapping itself is unmapped by the
//! prefetcher once its last reference drops (it keeps the last few a while, for the next
//! response of the same file).
//!
//! Shorter bodies, and bodies whose mapping failed (the guard registry is full, or the file
//! system cannot map), are read into the send ring with `preadv2(RWF_NOWAIT)`
//! ([`super::nowait`]): for a few pages, the mmap/munmap pair costs more than the second copy
//! it saves. When the bytes are not cached, the prefetcher reads them in and the body waits
//! for its answer (counted as `reads_deferred`).
//!
//! Bodies of files kept in memory at open ([`FileBody::kept_bytes`]: at most
//! [`crate::http::files::SMALL_BODY_MAX`] bytes, read by the prefetch thread with the metadata the
//! response promises) are copied from there into the send ring with [`Engine::write`]: no
//! system call per response. Copying (not lending with `write_external`) is deliberate: for a
//! few KiB a `memcpy` costs less than a lent chunk's reference count, which every shard would
//! bump on the same shared cache line, and the ring then holds the bytes for retransmissions.
//!
//! **Must not** lend a byte past what the response promised, or any byte of a file found
//! shorter than promised: the connection is aborted instead (the client sees a reset, never a
//! complete response with wrong bytes).

use super::mapped::FileMap;
use super::nowait::{read_at_nowait, NoWaitRead};
use super::prefetch::{Done, FileCounters, Prefetcher, Request};
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
/// A `pread` body that found the same offset uncached after this many read-aheads reads it
/// blocking (the page cache is thrashing; waiting once beats never progressing).
const MAX_DEFERRALS: u8 = 3;

/// The current response body's path into the engine.
#[derive(Debug, Default)]
pub enum BodyPath {
    /// No body in progress (or not decided yet).
    #[default]
    Undecided,
    /// Copied into the send ring from the bytes kept with the file; the file (device, inode)
    /// and the body's end offset, as for [`MappedBody`].
    Memory(((u64, u64), u64)),
    /// Read into the send ring with `pread`.
    Read(ReadBody),
    /// Waiting for the prefetcher to map the file.
    Mapping(PendingMap),
    Mapped(MappedBody),
}

/// A body whose mapping the prefetcher is making.
#[derive(Debug)]
pub struct PendingMap {
    /// The file (device, inode) and the body's end offset, as for [`MappedBody`].
    body: ((u64, u64), u64),
    /// The body's first byte.
    offset: u64,
    /// The [`Done::Map`] that answers.
    token: u64,
}

/// A body read into the send ring.
#[derive(Debug)]
pub struct ReadBody {
    /// The file (device, inode) and the body's end offset, as for [`MappedBody`].
    body: ((u64, u64), u64),
    /// The read-ahead this body waits for.
    waiting: Option<u64>,
    /// A read-ahead could not be queued: the shard's sweep pumps the body again.
    retry: bool,
    /// Read-aheads in a row that left `stuck_at` uncached.
    deferrals: u8,
    stuck_at: u64,
    /// The file system cannot read without waiting: plain `pread` for this body.
    blocking: bool,
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
    /// Bytes before this offset are queued in the engine.
    written_to: u64,
    /// The prefetcher was told the engine released the bytes before this offset.
    released_to: u64,
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
            BodyPath::Memory(body) => *body != (file.identity(), offset + len),
            BodyPath::Read(r) => r.body != (file.identity(), offset + len),
            BodyPath::Mapping(p) => p.body != (file.identity(), offset + len),
        };
        if stale {
            *self = Self::choose(h, prefetch, file, offset, len);
        }
        let wrote = match self {
            BodyPath::Mapped(m) => m.write(now, engine, h, prefetch, offset, len, room),
            BodyPath::Read(r) => r.write(now, engine, h, prefetch, file, offset, len, room),
            BodyPath::Memory(_) => write_kept(now, engine, h, file, offset, len, room),
            // The prefetcher's answer pumps us again.
            BodyPath::Mapping(_) => Wrote::Taken(Ok(0), 0),
            BodyPath::Undecided => Wrote::Failed,
        };
        if let Wrote::Failed = wrote {
            prefetch.counts.cut += 1;
        }
        wrote
    }

    /// Reads a short body; asks the prefetcher to map a long one (read it if that cannot be
    /// queued).
    fn choose(
        h: ConnectionHandle,
        prefetch: &mut Prefetcher,
        file: &FileBody,
        offset: u64,
        len: u64,
    ) -> BodyPath {
        let body = (file.identity(), offset + len);
        if file.kept_bytes().is_some() {
            prefetch.counts.memory += 1;
            return BodyPath::Memory(body);
        }
        if len >= MAP_MIN {
            if let Some(token) = prefetch.map(h, file, offset) {
                return BodyPath::Mapping(PendingMap { body, offset, token });
            }
        }
        prefetch.counts.read += 1;
        BodyPath::Read(ReadBody::new(body))
    }

    /// The body ended (all of it queued, or the connection gave up on it).
    pub fn finish(&mut self) {
        *self = BodyPath::Undecided;
    }

    /// Takes a prefetcher answer; false if it was for another body (ignored).
    pub fn on_prefetched(&mut self, done: &Done, counts: &mut FileCounters) -> bool {
        match (&mut *self, done) {
            (BodyPath::Mapping(p), Done::Map { token, map, resident, .. }) if p.token == *token => {
                *self = match map {
                    Some(map) => {
                        counts.lent += 1;
                        BodyPath::Mapped(MappedBody::new(map.clone(), p.body, p.offset, *resident as u64))
                    }
                    None => {
                        counts.read += 1;
                        BodyPath::Read(ReadBody::new(p.body))
                    }
                };
                true
            }
            (BodyPath::Read(r), Done::Read { token, .. }) if r.waiting == Some(*token) => {
                r.waiting = None;
                true
            }
            (BodyPath::Mapped(m), Done::Mapped { map, offset, resident, failed, .. })
                if Arc::ptr_eq(&m.map, map) =>
            {
                m.in_flight = m.in_flight.saturating_sub(1);
                if *failed {
                    m.failed = true;
                } else if *resident > 0 {
                    m.resident_to = m.resident_to.max(offset + *resident as u64);
                }
                // Whatever was asked and not found resident is asked again.
                if m.in_flight == 0 {
                    m.requested_to = m.resident_to;
                }
                true
            }
            _ => false,
        }
    }

    /// A body waiting for a prefetcher job the queue had no room for (the sweep pumps it).
    pub fn wants_prefetch(&self) -> bool {
        match self {
            BodyPath::Mapped(m) => m.in_flight == 0 && m.requested_to == m.resident_to && !m.failed,
            BodyPath::Read(r) => r.retry,
            BodyPath::Memory(_) | BodyPath::Mapping(_) | BodyPath::Undecided => false,
        }
    }
}

/// Copies up to `room` bytes of the body from the bytes `file` kept in memory.
fn write_kept(
    now: Instant,
    engine: &mut Engine,
    h: ConnectionHandle,
    file: &FileBody,
    offset: u64,
    len: u64,
    room: usize,
) -> Wrote {
    let n = usize::try_from(len).unwrap_or(usize::MAX).min(room);
    let start = usize::try_from(offset).unwrap_or(usize::MAX);
    // The kept bytes are exactly the promised length, so a response range always fits; one
    // that does not is a broken promise, never a reason to send other bytes.
    let Some(bytes) = file.kept_bytes().and_then(|kept| kept.get(start..start.checked_add(n)?)) else {
        return Wrote::Failed;
    };
    Wrote::Taken(engine.write(now, h, bytes), n)
}

impl MappedBody {
    /// A body `body` from `offset` lent from `map`, of which `resident` bytes are cached.
    fn new(map: Arc<FileMap>, body: ((u64, u64), u64), offset: u64, resident: u64) -> MappedBody {
        let resident_to = offset + resident;
        MappedBody {
            map,
            body,
            resident_to,
            // The first window is asked for too, although resident: to lock it.
            requested_to: offset,
            in_flight: 0,
            failed: false,
            written_to: offset,
            released_to: offset,
        }
    }

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
            self.written_to = offset + k as u64;
            self.ask_ahead(h, prefetch, self.written_to, end);
            self.release(now, engine, h, prefetch);
        }
        Wrote::Taken(result, n)
    }

    /// Every [`WINDOW`] bytes queued, tells the prefetcher how far the engine has let go of the
    /// file, so those pages are unlocked. Everything the engine still holds (unacknowledged or
    /// unsent, this body's or a header before it) is counted back from the queued end, so the
    /// estimate never passes a byte the engine may still send.
    fn release(&mut self, now: Instant, engine: &Engine, h: ConnectionHandle, prefetch: &mut Prefetcher) {
        if self.written_to < self.released_to + WINDOW as u64 {
            return;
        }
        let Ok(info) = engine.info(now, h) else { return };
        let upto = self.written_to.saturating_sub(info.send_queue as u64);
        if upto > self.released_to && prefetch.release(&self.map, usize::try_from(upto).unwrap_or(usize::MAX))
        {
            self.released_to = upto;
        }
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

impl ReadBody {
    fn new(body: ((u64, u64), u64)) -> ReadBody {
        ReadBody { body, waiting: None, retry: false, deferrals: 0, stuck_at: 0, blocking: false }
    }

    /// Reads straight into the send ring, at most the free space, so no file byte is read that
    /// cannot be queued; bytes not in the page cache are handed to the prefetcher first.
    #[allow(clippy::too_many_arguments)]
    fn write(
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
        if self.waiting.is_some() {
            return Wrote::Taken(Ok(0), 0);
        }
        self.retry = false;
        let want = usize::try_from(len).unwrap_or(usize::MAX).min(room).min(READ_CHUNK);
        let blocking = self.blocking || (self.deferrals >= MAX_DEFERRALS && self.stuck_at == offset);
        let mut outcome = Fill::Copied;
        // The ring lends one contiguous piece (maybe less than `want` where it wraps); the
        // caller comes back for the rest.
        let result = engine.write_with(now, h, want, |ring| {
            let read = if blocking { NoWaitRead::Unsupported } else { read_at_nowait(file, offset, ring) };
            let read = match read {
                NoWaitRead::Unsupported => {
                    outcome = Fill::Blocking;
                    file.read_at(offset, ring).map_err(NoWaitRead::Failed)
                }
                NoWaitRead::Read(k) => Ok(k),
                other => Err(other),
            };
            match read {
                Ok(k) if k > 0 => k,
                // Not expected (a full ring is refused before `fill`), but not an error.
                Ok(_) if ring.is_empty() => 0,
                Err(NoWaitRead::NotCached) => {
                    outcome = Fill::NotCached;
                    0
                }
                _ => {
                    outcome = Fill::Failed;
                    0
                }
            }
        });
        match outcome {
            Fill::Failed => return Wrote::Failed,
            Fill::NotCached => {
                self.defer(h, prefetch, file, offset, len);
                return Wrote::Taken(Ok(0), 0);
            }
            Fill::Blocking => {
                prefetch.counts.reads_blocking += 1;
                // Only a refused `preadv2` makes the file system's answer permanent.
                self.blocking |= !blocking;
            }
            Fill::Copied => {}
        }
        // Only a refusal (`WouldBlock`) means the ring is full; a short piece does not.
        Wrote::Taken(result, 1)
    }

    /// Asks the prefetcher to read `[offset, ...)` into the page cache and waits for it.
    fn defer(
        &mut self,
        h: ConnectionHandle,
        prefetch: &mut Prefetcher,
        file: &FileBody,
        offset: u64,
        len: u64,
    ) {
        prefetch.counts.reads_deferred += 1;
        if self.stuck_at == offset {
            self.deferrals = self.deferrals.saturating_add(1);
        } else {
            (self.stuck_at, self.deferrals) = (offset, 1);
        }
        let ahead = usize::try_from(len).unwrap_or(usize::MAX).min(READ_CHUNK);
        match prefetch.read_ahead(h, file, offset, ahead) {
            Some(token) => self.waiting = Some(token),
            None => self.retry = true,
        }
    }
}

/// What the fill closure of [`ReadBody::write`] did.
#[derive(Debug, Clone, Copy)]
enum Fill {
    Copied,
    /// Copied with a plain (possibly waiting) `pread`.
    Blocking,
    NotCached,
    Failed,
}
