//! The file work an [`super::HttpConnection`] leaves to its transport when told to
//! ([`super::HttpConnection::defer_file_io`]): the jobs of an upload and their answers, and the
//! bounded per-connection queue that holds them.
//!
//! **Promises:** at most [`UPLOAD_BUFFERS`] write buffers per upload are queued or being written
//! at once, and they are reused; a connection whose buffers are all in use reads no further
//! input, so the transport's receive window closes on the client (back-pressure, never a wait).
//! **Does not** do any file work itself.

use super::files::FileError;
use std::collections::VecDeque;
use std::sync::Weak;

/// Body buffers of one deferred upload that may wait to be written at once; past this the
/// connection stops reading (the transport's receive window closes on the client).
pub const UPLOAD_BUFFERS: usize = 8;

/// File-system work on an upload that a connection with deferred file I/O asks its transport
/// to do, in this order, on one thread (see [`super::HttpConnection::take_upload_job`]).
#[derive(Debug)]
pub enum UploadJob {
    /// [`crate::http::Root::begin_upload`] of `path` as `id`. The upload is abandoned (its
    /// temporary file deleted) once `alive` can no longer be upgraded.
    Begin { id: u64, path: Box<[u8]>, alive: Weak<u64> },
    /// Append `data` to upload `id`; the buffer comes back in [`UploadAnswer::Written`].
    Write { id: u64, data: Vec<u8> },
    /// [`crate::http::files::Upload::commit`] upload `id`.
    Commit { id: u64 },
}

/// The outcome of an [`UploadJob`], handed back with
/// [`super::HttpConnection::on_upload_answer`].
#[derive(Debug)]
pub enum UploadAnswer {
    Begun { id: u64, result: Result<(), FileError> },
    Written { id: u64, buf: Vec<u8>, ok: bool },
    Committed { id: u64, result: Result<bool, FileError> },
}

/// A deferred upload's queue of jobs for the transport, and spare buffers for the next writes.
#[derive(Debug, Default)]
pub(super) struct UploadIo {
    /// At most [`UPLOAD_BUFFERS`] writes plus a begin or a commit.
    pub(super) jobs: VecDeque<UploadJob>,
    /// Buffers back from written jobs, reused for the next (at most [`UPLOAD_BUFFERS`]).
    pub(super) spare: Vec<Vec<u8>>,
    /// Most write buffers in use at once on this connection.
    pub(super) most_in_flight: usize,
}
