//! An incremental HTTP/1.1 response reader for the client (RFC 9112): status line, header
//! fields, and the body framed by `Content-Length`, chunked transfer coding (§7.1) or the end of
//! the connection (§6.3).
//!
//! Promises: bounded memory (the head is capped at [`MAX_HEAD`]; chunked framing is decoded
//! byte-wise with no buffering), no panic on any input, body bytes handed out as slices of the
//! input. Interim `1xx` responses are skipped. It does not decode content codings.

use thiserror::Error;

/// Largest response head accepted.
pub const MAX_HEAD: usize = 16 * 1024;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ResponseError {
    #[error("response head larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("malformed status line")]
    BadStatusLine,
    #[error("malformed header field")]
    BadHeader,
    #[error("invalid Content-Length")]
    BadContentLength,
    #[error("malformed chunked body")]
    BadChunk,
    #[error("connection closed before the response was complete")]
    Truncated,
    #[error("could not store the body: {0}")]
    Sink(String),
}

/// What the head said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub content_length: Option<u64>,
    pub chunked: bool,
    /// `Connection: close`, or HTTP/1.0 without keep-alive.
    pub close: bool,
    /// `Content-Range: bytes first-last/complete`.
    pub content_range: Option<(u64, u64, Option<u64>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size {
        value: u64,
        digits: u8,
        in_ext: bool,
    },
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    /// Start of a trailer line; `empty` tracks whether the current line has content.
    Trailer {
        empty: bool,
    },
    TrailerLf {
        empty: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Head,
    Fixed(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

/// Reads one response.
#[derive(Debug)]
pub struct ResponseReader {
    buf: Vec<u8>,
    body: Body,
    head: Option<Head>,
    /// The request was HEAD: no body whatever the fields say (RFC 9110 §9.3.2).
    head_request: bool,
    /// Body bytes handed out so far.
    pub body_bytes: u64,
}

impl ResponseReader {
    pub fn new(head_request: bool) -> Self {
        ResponseReader { buf: Vec::new(), body: Body::Head, head: None, head_request, body_bytes: 0 }
    }

    /// The final response's head, once parsed.
    pub fn head(&self) -> Option<&Head> {
        self.head.as_ref()
    }

    pub fn is_done(&self) -> bool {
        self.body == Body::Done
    }

    /// Feeds bytes; body bytes go to `sink`. Returns how many bytes were consumed: fewer than
    /// given only once the response is complete (the rest belongs to the next response).
    pub fn feed<F>(&mut self, input: &[u8], sink: &mut F) -> Result<usize, ResponseError>
    where
        F: FnMut(&[u8]) -> std::io::Result<()>,
    {
        let mut pos = 0;
        while pos < input.len() && self.body != Body::Done {
            let rest = &input[pos..];
            pos += match self.body {
                Body::Head => self.feed_head(rest)?,
                Body::Fixed(remaining) => {
                    let n = rest.len().min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    self.emit(&rest[..n], sink)?;
                    self.body =
                        if remaining == n as u64 { Body::Done } else { Body::Fixed(remaining - n as u64) };
                    n
                }
                Body::UntilClose => {
                    self.emit(rest, sink)?;
                    rest.len()
                }
                Body::Chunked(state) => self.feed_chunked(state, rest, sink)?,
                Body::Done => 0,
            };
        }
        Ok(pos)
    }

    /// The connection ended: completes a close-delimited body, otherwise it is truncation.
    pub fn on_eof(&mut self) -> Result<(), ResponseError> {
        match self.body {
            Body::UntilClose => {
                self.body = Body::Done;
                Ok(())
            }
            Body::Done => Ok(()),
            _ => Err(ResponseError::Truncated),
        }
    }

    fn emit<F>(&mut self, data: &[u8], sink: &mut F) -> Result<(), ResponseError>
    where
        F: FnMut(&[u8]) -> std::io::Result<()>,
    {
        self.body_bytes += data.len() as u64;
        sink(data).map_err(|e| ResponseError::Sink(e.to_string()))
    }

    /// Accumulates the head up to the blank line; returns bytes consumed.
    fn feed_head(&mut self, input: &[u8]) -> Result<usize, ResponseError> {
        // Resume the terminator search a few bytes back: it may straddle two reads.
        let from = self.buf.len().saturating_sub(3);
        let room = MAX_HEAD - self.buf.len();
        let take = input.len().min(room);
        self.buf.extend_from_slice(&input[..take]);
        let Some(end) = self.buf[from..].windows(4).position(|w| w == b"\r\n\r\n").map(|i| from + i + 4)
        else {
            return if take < input.len() || self.buf.len() >= MAX_HEAD {
                Err(ResponseError::HeadTooLarge)
            } else {
                Ok(take)
            };
        };
        let consumed = take - (self.buf.len() - end);
        let head = parse_head(&self.buf[..end])?;
        self.buf.clear();
        if (100..200).contains(&head.status) {
            return Ok(consumed); // interim response: the real one follows
        }
        let no_body = self.head_request || head.status == 204 || head.status == 304;
        self.body = if no_body {
            Body::Done
        } else if head.chunked {
            Body::Chunked(Chunk::Size { value: 0, digits: 0, in_ext: false })
        } else {
            match head.content_length {
                Some(0) => Body::Done,
                Some(n) => Body::Fixed(n),
                None => Body::UntilClose,
            }
        };
        self.head = Some(head);
        Ok(consumed)
    }

    fn feed_chunked<F>(&mut self, state: Chunk, input: &[u8], sink: &mut F) -> Result<usize, ResponseError>
    where
        F: FnMut(&[u8]) -> std::io::Result<()>,
    {
        if let Chunk::Data(remaining) = state {
            let n = input.len().min(usize::try_from(remaining).unwrap_or(usize::MAX));
            self.emit(&input[..n], sink)?;
            let left = remaining - n as u64;
            self.body = Body::Chunked(if left == 0 { Chunk::DataCr } else { Chunk::Data(left) });
            return Ok(n);
        }
        let b = input[0];
        let next = match state {
            Chunk::Size { value, digits, in_ext } => match (b, in_ext) {
                (b'\r', _) if digits > 0 => Body::Chunked(Chunk::SizeLf(value)),
                (_, true) => Body::Chunked(state),
                (b';', false) if digits > 0 => Body::Chunked(Chunk::Size { value, digits, in_ext: true }),
                _ => {
                    let d = (b as char).to_digit(16).ok_or(ResponseError::BadChunk)?;
                    if digits >= 15 {
                        return Err(ResponseError::BadChunk);
                    }
                    Body::Chunked(Chunk::Size {
                        value: value * 16 + u64::from(d),
                        digits: digits + 1,
                        in_ext,
                    })
                }
            },
            Chunk::SizeLf(0) if b == b'\n' => Body::Chunked(Chunk::Trailer { empty: true }),
            Chunk::SizeLf(size) if b == b'\n' => Body::Chunked(Chunk::Data(size)),
            Chunk::DataCr if b == b'\r' => Body::Chunked(Chunk::DataLf),
            Chunk::DataLf if b == b'\n' => Body::Chunked(Chunk::Size { value: 0, digits: 0, in_ext: false }),
            Chunk::Trailer { empty } if b == b'\r' => Body::Chunked(Chunk::TrailerLf { empty }),
            Chunk::Trailer { .. } => Body::Chunked(Chunk::Trailer { empty: false }),
            Chunk::TrailerLf { empty: true } if b == b'\n' => Body::Done,
            Chunk::TrailerLf { empty: false } if b == b'\n' => Body::Chunked(Chunk::Trailer { empty: true }),
            _ => return Err(ResponseError::BadChunk),
        };
        self.body = next;
        Ok(1)
    }
}

/// Parses the status line and the fields we act on.
fn parse_head(head: &[u8]) -> Result<Head, ResponseError> {
    let text = std::str::from_utf8(head).map_err(|_| ResponseError::BadHeader)?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().ok_or(ResponseError::BadStatusLine)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(ResponseError::BadStatusLine);
    }
    let status: u16 = code.parse().map_err(|_| ResponseError::BadStatusLine)?;
    let mut head = Head { status, close: version == "HTTP/1.0", ..Head::default() };
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or(ResponseError::BadHeader)?;
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => {
                let n = value.parse().map_err(|_| ResponseError::BadContentLength)?;
                if head.content_length.is_some_and(|old| old != n) {
                    return Err(ResponseError::BadContentLength);
                }
                head.content_length = Some(n);
            }
            "transfer-encoding" => head.chunked = value.to_ascii_lowercase().ends_with("chunked"),
            "connection" => {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    head.close = true;
                } else if v.contains("keep-alive") {
                    head.close = false;
                }
            }
            "content-range" => head.content_range = parse_content_range(value),
            _ => {}
        }
    }
    Ok(head)
}

/// `bytes first-last/complete` (RFC 9110 §14.4); `*` for an unknown complete length.
fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let (range, complete) = v.strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let complete = if complete == "*" { None } else { Some(complete.parse().ok()?) };
    Some((first.parse().ok()?, last.parse().ok()?, complete))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(head_request: bool, chunks: &[&[u8]]) -> Result<(Head, Vec<u8>, usize), ResponseError> {
        let mut r = ResponseReader::new(head_request);
        let mut body = Vec::new();
        let mut used = 0;
        for c in chunks {
            used += r.feed(c, &mut |b: &[u8]| {
                body.extend_from_slice(b);
                Ok(())
            })?;
        }
        if !r.is_done() {
            r.on_eof()?;
        }
        Ok((r.head().cloned().unwrap(), body, used))
    }

    #[test]
    fn content_length_split_anywhere() {
        let msg = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA";
        for cut in 0..msg.len() {
            let (h, body, used) = read_all(false, &[&msg[..cut], &msg[cut..]]).unwrap();
            assert_eq!((h.status, body.as_slice(), used), (200, &b"hello"[..], msg.len() - 5), "cut {cut}");
        }
    }

    #[test]
    fn chunked_with_extension_and_trailer() {
        let msg = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\nA\r\n0123456789\r\n0\r\nT: v\r\n\r\n";
        for cut in 0..msg.len() {
            let (_, body, _) = read_all(false, &[&msg[..cut], &msg[cut..]]).unwrap();
            assert_eq!(body, b"hello0123456789", "cut {cut}");
        }
        let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n";
        assert_eq!(read_all(false, &[bad]).unwrap_err(), ResponseError::BadChunk);
    }

    #[test]
    fn interim_head_and_close_delimited() {
        let msg = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 206 Partial Content\r\nContent-Range: bytes 2-4/10\r\nContent-Length: 3\r\n\r\nabc";
        let (h, body, _) = read_all(false, &[msg]).unwrap();
        assert_eq!((h.status, h.content_range, body.as_slice()), (206, Some((2, 4, Some(10))), &b"abc"[..]));
        let (h, body, _) = read_all(true, &[b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"]).unwrap();
        assert_eq!((h.content_length, body.len()), (Some(99), 0));
        let (h, body, _) = read_all(false, &[b"HTTP/1.0 200 OK\r\n\r\nuntil close"]).unwrap();
        assert!(h.close);
        assert_eq!(body, b"until close");
    }

    #[test]
    fn hostile_heads() {
        assert_eq!(
            read_all(false, &[b"HTTP/1.1 2000 OK\r\n\r\n"]).unwrap_err(),
            ResponseError::BadStatusLine
        );
        let big = vec![b'a'; MAX_HEAD + 10];
        let mut r = ResponseReader::new(false);
        assert_eq!(r.feed(&big, &mut |_: &[u8]| Ok(())).unwrap_err(), ResponseError::HeadTooLarge);
        let truncated = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
        assert_eq!(read_all(false, &[truncated]).unwrap_err(), ResponseError::Truncated);
    }
}
