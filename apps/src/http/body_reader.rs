//! The body of one request as [`super::connection::HttpConnection`] reads it: its framing
//! (`Content-Length` or chunked, RFC 9112 §6–7) and where its bytes go (dropped, an inline
//! upload, or write jobs for the transport's file thread).
//!
//! Promises: never consumes beyond the body's end, fails with 413 once more than the limit has
//! arrived and with 400 on a malformed chunk, and queues at most [`UPLOAD_BUFFERS`] write jobs
//! per upload (then reports [`BodyStep::Blocked`], so the connection stops reading).

use super::chunked::ChunkedDecoder;
use super::connection::{Reply, UploadJob};
use super::deferred::{UploadIo, UPLOAD_BUFFERS};
use super::files::Upload;
use super::response::Status;
use std::sync::Arc;

#[derive(Debug)]
pub(super) enum Framing {
    Length { remaining: u64 },
    Chunked(ChunkedDecoder),
}

#[derive(Debug)]
pub(super) enum Sink {
    /// The body of a request we already answered (GET with a body, 405): read and dropped so
    /// the next request on the connection can be found.
    Discard,
    Upload {
        upload: Upload,
        reply: Reply,
    },
    /// An upload whose file work is done by the transport ([`UploadJob`]).
    Deferred {
        id: u64,
        /// Held while the upload is wanted; dropping it abandons the upload.
        _alive: Arc<u64>,
        reply: Reply,
        /// Write jobs queued or not answered yet.
        in_flight: usize,
    },
}

#[derive(Debug)]
pub(super) struct BodyReader {
    pub(super) framing: Framing,
    pub(super) sink: Sink,
    pub(super) received: u64,
}

pub(super) enum BodyStep {
    More,
    /// The upload's buffers are all in use: read no more until one comes back.
    Blocked,
    Done,
    Failed(Status),
}

impl BodyReader {
    /// Consumes body bytes from `data`; returns how many and what happened.
    pub(super) fn feed(&mut self, data: &[u8], limit: u64, io: &mut UploadIo) -> (usize, BodyStep) {
        if matches!(self.sink, Sink::Deferred { in_flight, .. } if in_flight >= UPLOAD_BUFFERS) {
            return (0, BodyStep::Blocked);
        }
        let (used, chunk, done) = match &mut self.framing {
            Framing::Length { remaining } => {
                let take = usize::try_from(*remaining).unwrap_or(usize::MAX).min(data.len());
                *remaining -= take as u64;
                (take, &data[..take], *remaining == 0)
            }
            Framing::Chunked(decoder) => match decoder.decode(data) {
                Ok((used, chunk)) => (used, chunk, decoder.is_done()),
                Err(_) => return (data.len(), BodyStep::Failed(Status(400))),
            },
        };
        self.received += chunk.len() as u64;
        if self.received > limit {
            return (data.len(), BodyStep::Failed(Status::PAYLOAD_TOO_LARGE));
        }
        match &mut self.sink {
            Sink::Upload { upload, .. } => {
                if upload.write_all(chunk).is_err() {
                    return (data.len(), BodyStep::Failed(Status::INTERNAL_ERROR));
                }
            }
            Sink::Deferred { id, in_flight, .. } if !chunk.is_empty() => {
                let mut buf = io.spare.pop().unwrap_or_default();
                buf.clear();
                buf.extend_from_slice(chunk);
                io.jobs.push_back(UploadJob::Write { id: *id, data: buf });
                *in_flight += 1;
                io.most_in_flight = io.most_in_flight.max(*in_flight);
            }
            Sink::Deferred { .. } | Sink::Discard => {}
        }
        (used, if done { BodyStep::Done } else { BodyStep::More })
    }
}
