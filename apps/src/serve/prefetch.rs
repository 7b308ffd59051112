//! The prefetcher: one helper thread per shard that brings file ranges into memory ahead of
//! the send position, so a disk wait never stalls the shard's packet loop.
//!
//! **Owns** the thread and two bounded channels. The shard sends [`Request`]s with `try_send`
//! (never blocks; a full queue is retried later); the thread populates the range
//! ([`FileMap::populate`]: `MADV_POPULATE_READ`, which reads the pages in and maps them into
//! the process's page tables, so the shard's copy takes no page fault either), confirms with
//! `mincore` how much is resident, and answers with a [`Done`]. The shard lends only ranges a
//! `Done` (or its own `mincore` check) reported resident.
//!
//! **Promises:** at most [`QUEUE`] requests and answers wait at once; each request names its
//! mapping by `Arc`, so a mapping outlives the work on it. Dropping the `Prefetcher` stops the
//! thread after the range it is reading and joins it.
//!
//! **Must not** touch the engine or any connection state: it only reads mappings.

use super::mapped::FileMap;
use linerate_stack::engine::ConnectionHandle;
use std::io;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Requests (and answers) waiting at once, per shard.
pub const QUEUE: usize = 1024;

/// Bring `[offset, offset + len)` of `map` in for connection `conn`.
#[derive(Debug)]
pub struct Request {
    pub conn: ConnectionHandle,
    pub map: Arc<FileMap>,
    pub offset: u64,
    pub len: usize,
}

/// What a request found.
#[derive(Debug)]
pub struct Done {
    pub conn: ConnectionHandle,
    pub map: Arc<FileMap>,
    pub offset: u64,
    /// Bytes from `offset` that are resident (may be less than asked if pages were evicted
    /// again at once; the shard asks again).
    pub resident: usize,
    /// The range could not be read: the file is shorter than the response promised.
    pub failed: bool,
}

/// How this shard's response bodies went into the engine (counted where the path is chosen).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BodyCounts {
    /// Bodies lent from a mapping.
    pub lent: u64,
    /// Bodies `pread` into the send ring.
    pub read: u64,
    /// Bodies cut short because the file shrank or failed (the connection was aborted).
    pub cut: u64,
}

/// One shard's prefetch thread.
#[derive(Debug)]
pub struct Prefetcher {
    /// Counted by the connections' body code (`body.rs`), which holds the prefetcher anyway.
    pub counts: BodyCounts,
    requests: Option<SyncSender<Request>>,
    done: Option<Receiver<Done>>,
    thread: Option<JoinHandle<()>>,
    /// Requests sent and not yet answered.
    outstanding: usize,
}

impl Prefetcher {
    /// Starts the thread (named `name`).
    pub fn spawn(name: String) -> io::Result<Prefetcher> {
        let (req_tx, req_rx) = mpsc::sync_channel::<Request>(QUEUE);
        let (done_tx, done_rx) = mpsc::sync_channel::<Done>(QUEUE);
        let thread = std::thread::Builder::new().name(name).spawn(move || serve(req_rx, done_tx))?;
        Ok(Prefetcher {
            counts: BodyCounts::default(),
            requests: Some(req_tx),
            done: Some(done_rx),
            thread: Some(thread),
            outstanding: 0,
        })
    }

    /// Queues a request without blocking; gives it back when the queue is full.
    pub fn request(&mut self, r: Request) -> Result<(), Request> {
        let Some(tx) = &self.requests else { return Err(r) };
        match tx.try_send(r) {
            Ok(()) => {
                self.outstanding += 1;
                Ok(())
            }
            Err(TrySendError::Full(r) | TrySendError::Disconnected(r)) => Err(r),
        }
    }

    /// The next answer, if one is waiting.
    pub fn poll_done(&mut self) -> Option<Done> {
        match self.done.as_ref()?.try_recv() {
            Ok(d) => {
                self.outstanding -= 1;
                Some(d)
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => None,
        }
    }

    /// Requests not answered yet (the shard polls more often while any are pending).
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }
}

fn serve(requests: Receiver<Request>, done: SyncSender<Done>) {
    let mut scratch = Vec::new();
    while let Ok(r) = requests.recv() {
        let start = usize::try_from(r.offset).unwrap_or(usize::MAX);
        let failed = r.map.populate(start, r.len).is_err();
        if failed {
            // The file is shorter than the response promised: no byte of it may be sent now.
            r.map.poison();
        }
        let resident = if failed { 0 } else { r.map.resident_prefix(start, r.len, &mut scratch) };
        let answer = Done { conn: r.conn, map: r.map, offset: r.offset, resident, failed };
        if done.send(answer).is_err() {
            return;
        }
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Closing both channels ends the thread whether it waits for work or to answer.
        self.requests = None;
        self.done = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
