//! The server's local control socket: what `linerate stats` reads.
//!
//! Owns the path from a shard's engine to an operator's terminal: each shard holds a
//! [`ControlPublisher`] and, at most every [`PUBLISH_INTERVAL`], copies its counters
//! ([`Engine::stats`]) and one [`TcpInfo`] per connection it holds ([`Engine::info`]) into a
//! [`ShardSnapshot`] that it offers to the control thread over a bounded channel. The control
//! thread ([`ControlServer`]) keeps the latest snapshot per shard and answers requests on a Unix
//! socket with a rendered table ([`render`]) — never touching an engine.
//!
//! Promises: the packet path never blocks, locks or waits on the control side. The per-loop cost
//! is one comparison ([`ControlPublisher::due`]); a publish allocates one row vector (a few times a
//! second, not per packet) and hands it over with a non-blocking `try_send`; a full channel
//! (control thread behind) drops the snapshot and counts it. A connected `stats` client is served
//! with read/write timeouts, so a stuck reader cannot wedge the control thread either.
//! Must not: hold engine references across threads, or serve anything but read-only statistics.
//!
//! Protocol (one request per connection): the client sends one line, `text` or `json`; the
//! server answers with the document and closes.

pub mod client;
pub mod render;

use linerate_stack::engine::{ConnectionHandle, Engine};
use linerate_stack::stats::Stats;
use linerate_stack::tcp::TcpInfo;
use linerate_stack::time::{Duration, Instant};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use thiserror::Error;

/// How often a shard publishes (the freshness of `linerate stats`).
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(250);
/// Most connection rows a shard publishes; the rest are counted in [`ShardSnapshot::rows_omitted`].
pub const MAX_ROWS: usize = 4096;
/// How long the control thread waits for snapshots before looking at its socket again.
const CONTROL_POLL: std::time::Duration = std::time::Duration::from_millis(50);
/// A `stats` client gets this long to send its request and read the answer.
const CLIENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Application counters a shard reports next to the engine's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppCounters {
    /// Connections the application holds now.
    pub open: u64,
    /// Connections accepted since start.
    pub accepted: u64,
    /// HTTP requests completed on connections that have finished.
    pub requests: u64,
    /// File bodies and the prefetch thread's work (`serve::prefetch`).
    pub files: crate::serve::prefetch::FileCounters,
}

/// One shard's state at one instant.
#[derive(Debug, Clone)]
pub struct ShardSnapshot {
    pub shard: usize,
    /// The shard's clock at the snapshot (time since it started).
    pub uptime: Duration,
    pub stats: Stats,
    pub app: AppCounters,
    /// Snapshots this shard dropped because the control thread was behind.
    pub dropped_snapshots: u64,
    pub conns: Vec<TcpInfo>,
    /// Connections beyond [`MAX_ROWS`], not listed.
    pub rows_omitted: usize,
}

/// Why the control socket could not be set up.
#[derive(Debug, Error)]
pub enum ControlError {
    #[error("control socket {0}: another linerate server is answering there; pick another --control-socket")]
    InUse(PathBuf),
    #[error("control socket {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// The default control socket of a server on `iface` and `port` (inside network namespace
/// `netns`, if any: interface names repeat across namespaces, socket paths must not).
pub fn default_socket_path(netns: Option<&str>, iface: &str, port: u16) -> PathBuf {
    let dir = Path::new(client::SOCKET_DIR);
    match netns {
        Some(ns) => dir.join(format!("{ns}-{iface}-{port}.sock")),
        None => dir.join(format!("{iface}-{port}.sock")),
    }
}

/// A shard's end: decides when to publish and hands snapshots over without blocking.
#[derive(Debug)]
pub struct ControlPublisher {
    shard: usize,
    tx: SyncSender<ShardSnapshot>,
    next_at: Instant,
    dropped: u64,
    /// Rows in the previous snapshot: the next vector is sized from it.
    last_rows: usize,
}

impl ControlPublisher {
    /// True when a snapshot is due at `now`. This is the only per-iteration cost.
    #[inline]
    pub fn due(&self, now: Instant) -> bool {
        now >= self.next_at
    }

    /// Publishes a snapshot of `engine` with one row per handle in `conns` (handles the engine
    /// no longer knows are skipped). Call it when [`due`](Self::due) says so; never blocks.
    pub fn publish<I>(&mut self, now: Instant, engine: &Engine, conns: I, app: AppCounters)
    where
        I: IntoIterator<Item = ConnectionHandle>,
    {
        self.next_at = now + PUBLISH_INTERVAL;
        let mut rows = Vec::with_capacity(self.last_rows.min(MAX_ROWS) + 16);
        let mut omitted = 0;
        for h in conns {
            let Ok(info) = engine.info(now, h) else { continue };
            if rows.len() < MAX_ROWS {
                rows.push(info);
            } else {
                omitted += 1;
            }
        }
        self.last_rows = rows.len();
        let snapshot = ShardSnapshot {
            shard: self.shard,
            uptime: now.saturating_duration_since(Instant::ZERO),
            stats: engine.stats().clone(),
            app,
            dropped_snapshots: self.dropped,
            conns: rows,
            rows_omitted: omitted,
        };
        match self.tx.try_send(snapshot) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.dropped += 1,
            // The control thread is gone (server shutting down): nothing to report to.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// The control thread and its socket; dropping it stops the thread and removes the socket.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    tx: SyncSender<ShardSnapshot>,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Binds `path` (creating its directory) and starts the control thread for `shards` shards.
    /// A stale socket file left by a dead server is replaced; a live one is an error.
    pub fn start(path: &Path, shards: usize) -> Result<ControlServer, ControlError> {
        let io = |source| ControlError::Io { path: path.to_owned(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if UnixStream::connect(path).is_ok() {
                return Err(ControlError::InUse(path.to_owned()));
            }
            if !meta.file_type().is_socket() {
                let e = std::io::Error::new(std::io::ErrorKind::AlreadyExists, "exists and is not a socket");
                return Err(io(e));
            }
            std::fs::remove_file(path).map_err(io)?;
        }
        let listener = UnixListener::bind(path).map_err(io)?;
        listener.set_nonblocking(true).map_err(io)?;
        // Two snapshots per shard in flight is plenty: the thread drains every CONTROL_POLL.
        let (tx, rx) = std::sync::mpsc::sync_channel(2 * shards.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let (flag, count) = (stop.clone(), served.clone());
        let thread = std::thread::Builder::new()
            .name("linerate-control".into())
            .spawn(move || control_loop(&listener, &rx, &flag, &count))
            .map_err(io)?;
        Ok(ControlServer { path: path.to_owned(), tx, stop, served, thread: Some(thread) })
    }

    /// The publisher for shard `shard` (give one to each shard thread).
    pub fn publisher(&self, shard: usize) -> ControlPublisher {
        ControlPublisher { shard, tx: self.tx.clone(), next_at: Instant::ZERO, dropped: 0, last_rows: 0 }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Requests answered so far.
    pub fn requests_served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn control_loop(
    listener: &UnixListener,
    rx: &Receiver<ShardSnapshot>,
    stop: &AtomicBool,
    served: &AtomicU64,
) {
    let mut latest: Vec<Option<ShardSnapshot>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match rx.recv_timeout(CONTROL_POLL) {
            Ok(s) => keep_latest(&mut latest, s),
            Err(RecvTimeoutError::Timeout) => {}
            // Every publisher and the server handle are gone: only `stop` remains to wait for.
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(CONTROL_POLL),
        }
        while let Ok(s) = rx.try_recv() {
            keep_latest(&mut latest, s);
        }
        while let Ok((stream, _)) = listener.accept() {
            // A failed exchange concerns that client only. Counted before the stream closes,
            // so a client that saw its answer also sees the count.
            if answer(&stream, &latest).is_ok() {
                served.fetch_add(1, Ordering::Relaxed);
            }
            drop(stream);
        }
    }
}

fn keep_latest(latest: &mut Vec<Option<ShardSnapshot>>, s: ShardSnapshot) {
    // Shard ids are small and dense; anything absurd is ignored rather than allocated for.
    if s.shard >= 1024 {
        return;
    }
    if latest.len() <= s.shard {
        latest.resize_with(s.shard + 1, || None);
    }
    let i = s.shard;
    latest[i] = Some(s);
}

fn answer(stream: &UnixStream, latest: &[Option<ShardSnapshot>]) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut line = String::new();
    BufReader::new(Read::take(stream, 64)).read_line(&mut line)?;
    let shards: Vec<&ShardSnapshot> = latest.iter().flatten().collect();
    let doc = match line.trim() {
        "json" => render::json(&shards),
        "text" | "" => render::text(&shards),
        other => format!("error: unknown request {other:?}; send `text` or `json`\n"),
    };
    let mut out = stream;
    out.write_all(doc.as_bytes())
}

#[cfg(test)]
mod tests;
