//! The transport-independent HTTP/1.1 file server.
//!
//! Owns request parsing ([`parse`], [`chunked`]), response heads ([`response`], [`date`]),
//! safe file access under a root directory ([`files`]) and the per-connection state machine
//! ([`connection`]). It is sans-I/O with respect to the network: bytes come in through
//! [`HttpConnection::on_bytes`], response bytes go out through [`HttpConnection::poll_output`] or
//! the zero-copy pair [`HttpConnection::peek_output`] / [`HttpConnection::advance_output`], and
//! time is passed in as a [`linerate_stack::time::Instant`]. It never reads a clock and never
//! touches a socket; the only system calls it makes are on files under the served root.
//!
//! The same core runs on kernel sockets ([`crate::kernel_server`]) and on the linerate engine
//! (`crate::serve`), which lends large bodies to the engine from a file mapping so their bytes
//! are copied once, straight into NIC frames (see [`files`]).

mod body_reader;
pub mod chunked;
pub mod connection;
pub mod date;
pub mod deferred;
pub mod file_cache;
pub mod files;
pub mod parse;
pub mod response;
mod scan;

pub use connection::{HttpConnection, Output};
pub use deferred::{UploadAnswer, UploadJob, UPLOAD_BUFFERS};
pub use files::{FileBody, FileError, ResolveMode, Root};

use linerate_stack::time::Duration;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Size limits on a request head; each maps to a status code when exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Longest request line (method, target, version) in bytes; longer gets 414.
    pub max_request_line: usize,
    /// Largest head (request line + fields + blank line); larger gets 431. This also bounds the
    /// per-connection head buffer.
    pub max_head_bytes: usize,
    /// Most header field lines; more gets 431.
    pub max_headers: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits { max_request_line: 4096, max_head_bytes: 8192, max_headers: 64 }
    }
}

/// Server-wide behaviour shared by every connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    pub limits: HttpLimits,
    /// Whether PUT stores files; when false PUT gets 405 like any other unsupported method.
    pub allow_uploads: bool,
    /// Largest PUT body in bytes; larger gets 413.
    pub max_upload_bytes: u64,
    /// A request head must be complete this long after its first byte (slow-loris defence);
    /// otherwise the client gets 408 and the connection closes.
    pub header_timeout: Duration,
    /// A connection with no progress in either direction for this long is closed. Output
    /// progress is only noticed at the next deadline check, so a keep-alive connection left idle
    /// after a response closes one to two `idle_timeout`s after its last request.
    pub idle_timeout: Duration,
    /// How long an opened file is served again without re-opening it (see
    /// [`file_cache`]): a file changed outside the server is seen at most this late. Zero
    /// re-opens for every request.
    pub open_file_ttl: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            limits: HttpLimits::default(),
            allow_uploads: true,
            max_upload_bytes: 1 << 30,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            open_file_ttl: Duration::from_secs(1),
        }
    }
}

/// What every connection of one server shares: the root, the configuration and the mapping from
/// the transport's monotonic clock to wall-clock time (for `Date`).
#[derive(Debug)]
pub struct Site {
    root: Root,
    config: HttpConfig,
    unix_nanos_at_zero: u64,
    upload_seq: AtomicU64,
    files: file_cache::OpenFileCache,
}

impl Site {
    /// `unix_nanos_at_zero` is the wall-clock time (ns since the Unix epoch) at
    /// `Instant::ZERO` of the clock the transport will pass as `now`; it is the only wall-clock
    /// input, so tests can pin every `Date` header.
    pub fn new(root: Root, config: HttpConfig, unix_nanos_at_zero: u64) -> Self {
        let files = file_cache::OpenFileCache::new(config.open_file_ttl);
        Site { root, config, unix_nanos_at_zero, upload_seq: AtomicU64::new(0), files }
    }

    /// Opens `root` with the default resolution mode and builds a site.
    pub fn open(root: &Path, config: HttpConfig, unix_nanos_at_zero: u64) -> Result<Self, FileError> {
        Ok(Site::new(Root::open(root, ResolveMode::default())?, config, unix_nanos_at_zero))
    }

    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    /// Files opened recently, shared by every connection.
    pub fn files(&self) -> &file_cache::OpenFileCache {
        &self.files
    }

    /// Unix seconds at monotonic instant `now`.
    pub fn unix_secs(&self, now: linerate_stack::time::Instant) -> u64 {
        self.unix_nanos_at_zero.saturating_add(now.as_nanos()) / 1_000_000_000
    }

    /// A number unique within this process, for naming upload temporary files.
    fn next_upload_id(&self) -> u64 {
        self.upload_seq.fetch_add(1, Ordering::Relaxed)
    }
}
