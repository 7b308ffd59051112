//! Incremental HTTP/1.1 request-head parser (RFC 9112 §2–§6, RFC 9110 field semantics).
//!
//! Owns two things: [`HeadBuffer`], which collects a request head from bytes as they arrive and
//! enforces the size limits *while* they arrive (414 before the request line ends, 431 before the
//! head ends), and [`parse_head`], which turns a complete head into a [`RequestHead`] whose
//! fields borrow from that buffer: no header is copied or allocated. The decoded path is written
//! into a caller-owned scratch buffer that keeps its capacity across requests.
//!
//! Promises: never panics on any input, work is linear in the head size, and every refusal is a
//! typed [`ParseError`] that names its status code. It does not touch files or sockets.

use super::date::parse_http_date;
use super::scan::{find_byte, is_field_value};
use super::HttpLimits;
use thiserror::Error;

/// Why a request head was refused. [`ParseError::status`] gives the response code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("malformed request line")]
    BadRequestLine,
    #[error("request line longer than the configured limit")]
    RequestLineTooLong,
    #[error("request head larger than the configured limit")]
    HeadTooLarge,
    #[error("more header fields than the configured limit")]
    TooManyHeaders,
    #[error("HTTP version other than 1.0 or 1.1")]
    UnsupportedVersion,
    #[error("malformed header field")]
    BadHeader,
    #[error("missing or repeated Host header in an HTTP/1.1 request")]
    BadHost,
    #[error("invalid or conflicting Content-Length")]
    BadContentLength,
    #[error("both Content-Length and Transfer-Encoding (possible request smuggling)")]
    LengthAndTransferEncoding,
    #[error("Transfer-Encoding in an HTTP/1.0 request")]
    TransferEncodingInHttp10,
    #[error("transfer coding other than chunked")]
    UnsupportedTransferEncoding,
    #[error("unsupported Expect value")]
    UnsupportedExpectation,
    #[error("malformed request target or path")]
    BadPath,
}

impl ParseError {
    /// The status code this refusal is answered with.
    pub fn status(self) -> u16 {
        match self {
            ParseError::RequestLineTooLong => 414,
            ParseError::HeadTooLarge | ParseError::TooManyHeaders => 431,
            ParseError::UnsupportedVersion => 505,
            ParseError::UnsupportedTransferEncoding => 501,
            ParseError::UnsupportedExpectation => 417,
            _ => 400,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Put,
    /// Any other syntactically valid method: answered 405 with `Allow`.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// How the request body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

/// One byte range from a `Range` header (RFC 9110 §14.1.1), before the file size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=a-b` (inclusive).
    FromTo(u64, u64),
    /// `bytes=a-`.
    From(u64),
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

/// What the `Range` header asked for. We serve single ranges only: a multi-range request gets the
/// whole representation with 200, which §14.2 permits and which spares us multipart/byteranges.
/// A malformed header is ignored, as §14.2 also allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    None,
    Single(ByteRange),
    Multiple,
    Ignored,
}

impl ByteRange {
    /// Resolves against a representation of `len` bytes: `Some((first, count))`, or `None` when
    /// unsatisfiable (answered 416, §15.5.17).
    pub fn resolve(self, len: u64) -> Option<(u64, u64)> {
        match self {
            ByteRange::FromTo(a, b) if a < len => Some((a, b.min(len - 1) - a + 1)),
            ByteRange::From(a) if a < len => Some((a, len - a)),
            ByteRange::Suffix(n) if n > 0 && len > 0 => {
                let n = n.min(len);
                Some((len - n, n))
            }
            _ => None,
        }
    }
}

/// Most `If-None-Match` field lines we keep; extra lines only make a 304 less likely.
pub const MAX_IF_NONE_MATCH: usize = 4;

/// A parsed request head; slices borrow from the [`HeadBuffer`].
#[derive(Debug, Clone)]
pub struct RequestHead<'a> {
    pub method: Method,
    pub version: Version,
    pub keep_alive: bool,
    pub body: BodyFraming,
    pub expect_continue: bool,
    pub range: RangeRequest,
    if_none_match: [&'a [u8]; MAX_IF_NONE_MATCH],
    if_none_match_count: usize,
    pub if_modified_since: Option<u64>,
    /// `If-Range` (§13.1.5): an entity tag or an HTTP-date, raw.
    pub if_range: Option<&'a [u8]>,
}

impl<'a> RequestHead<'a> {
    /// The `If-None-Match` field lines, in order.
    pub fn if_none_match(&self) -> &[&'a [u8]] {
        &self.if_none_match[..self.if_none_match_count]
    }
}

/// Bytes a [`HeadBuffer`] reserves up front: browsers send 400-800, load generators less.
pub const TYPICAL_HEAD_BYTES: usize = 1024;

/// Collects one request head, enforcing the limits as bytes arrive.
#[derive(Debug, Default)]
pub struct HeadBuffer {
    buf: Vec<u8>,
    /// Start of the line currently being read.
    line_start: usize,
    /// Whether the request line has been completed (leading empty lines do not count).
    seen_request_line: bool,
}

impl HeadBuffer {
    /// An empty buffer with room for a typical head, so reading one grows nothing.
    pub fn new() -> Self {
        HeadBuffer { buf: Vec::with_capacity(TYPICAL_HEAD_BYTES), ..Self::default() }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes of the (complete) head.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Forgets the head but keeps the allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.line_start = 0;
        self.seen_request_line = false;
    }

    /// Forgets the head, and gives back memory beyond a typical head's (for pooled connections).
    pub fn reset(&mut self) {
        self.clear();
        self.buf.shrink_to(TYPICAL_HEAD_BYTES);
    }

    /// Takes bytes from `input` up to the end of the head. Returns (consumed, head complete).
    /// Bytes after the blank line that ends the head are left unconsumed.
    pub fn push(&mut self, input: &[u8], limits: &HttpLimits) -> Result<(usize, bool), ParseError> {
        // Lines are checked where they lie (partly buffered, partly in `input`) and the bytes
        // taken are appended once at the end: one copy per call, not one per line.
        let base = self.buf.len();
        let mut consumed = 0;
        let mut complete = false;
        while consumed < input.len() {
            let rest = &input[consumed..];
            let (take, line_end) = match find_byte(rest, b'\n') {
                Some(i) => (i + 1, true),
                None => (rest.len(), false),
            };
            if base + consumed + take > limits.max_head_bytes {
                self.buf.extend_from_slice(&input[..consumed]);
                return Err(self.overflow_error(limits));
            }
            consumed += take;
            let line_len = base + consumed - self.line_start;
            if !self.seen_request_line && line_len > limits.max_request_line + 2 {
                return Err(ParseError::RequestLineTooLong);
            }
            if !line_end {
                break;
            }
            // The line ends with the LF just taken: blank if that is all of it, or all but a CR.
            let first = match self.line_start.checked_sub(base) {
                None => self.buf[self.line_start],
                Some(i) => input[i],
            };
            let blank = line_len == 1 || (line_len == 2 && first == b'\r');
            self.line_start = base + consumed;
            if blank && self.seen_request_line {
                complete = true;
                break;
            }
            // §2.2: empty lines before the request line are skipped, not counted as the line.
            self.seen_request_line |= !blank;
        }
        self.buf.extend_from_slice(&input[..consumed]);
        Ok((consumed, complete))
    }

    fn overflow_error(&self, limits: &HttpLimits) -> ParseError {
        if !self.seen_request_line && self.buf.len() - self.line_start >= limits.max_request_line {
            ParseError::RequestLineTooLong
        } else {
            ParseError::HeadTooLarge
        }
    }
}

/// Splits a head into lines without their line terminators (a CR before LF is dropped).
fn lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    // Like `split` on LF (the piece after the last LF is a line too), searching a word at a time.
    let mut rest = Some(head);
    core::iter::from_fn(move || {
        let piece = rest?;
        let line = match find_byte(piece, b'\n') {
            Some(i) => {
                rest = Some(&piece[i + 1..]);
                &piece[..i]
            }
            None => {
                rest = None;
                piece
            }
        };
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    })
}

/// Parses a complete head; the decoded path (always starting with `/`) goes into `path`.
pub fn parse_head<'a>(
    head: &'a [u8],
    limits: &HttpLimits,
    path: &mut Vec<u8>,
) -> Result<RequestHead<'a>, ParseError> {
    let mut lines = lines(head).skip_while(|l| l.is_empty());
    let request_line = lines.next().ok_or(ParseError::BadRequestLine)?;
    let (method, target, version) = parse_request_line(request_line)?;
    let mut req = RequestHead {
        method,
        version,
        keep_alive: version == Version::Http11,
        body: BodyFraming::None,
        expect_continue: false,
        range: RangeRequest::None,
        if_none_match: [&[]; MAX_IF_NONE_MATCH],
        if_none_match_count: 0,
        if_modified_since: None,
        if_range: None,
    };
    let mut fields = FieldState::default();
    let mut count = 0;
    for line in lines.take_while(|l| !l.is_empty()) {
        count += 1;
        if count > limits.max_headers {
            return Err(ParseError::TooManyHeaders);
        }
        let (name, value) = split_field(line)?;
        fields.apply(&mut req, name, value)?;
    }
    fields.finish(&mut req)?;
    decode_target(target, method, path)?;
    Ok(req)
}

fn parse_request_line(line: &[u8]) -> Result<(Method, &[u8], Version), ParseError> {
    // §3: method SP request-target SP HTTP-version, single spaces, no other whitespace. One
    // pass: the method is the token before the first SP, the target the visible characters
    // before the second (a SP is neither, so any other byte there is refused).
    let method_len = line.iter().take_while(|&&b| is_tchar(b)).count();
    if method_len == 0 || line.get(method_len) != Some(&b' ') {
        return Err(ParseError::BadRequestLine);
    }
    let (method, after) = (&line[..method_len], &line[method_len + 1..]);
    let target_len = after.iter().take_while(|&&b| (0x21..0x7f).contains(&b)).count();
    if target_len == 0 || after.get(target_len) != Some(&b' ') {
        return Err(ParseError::BadRequestLine);
    }
    let (target, version) = (&after[..target_len], &after[target_len + 1..]);
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(ParseError::UnsupportedVersion)
        }
        // A SP in the version is refused here too: no version holds one.
        _ => return Err(ParseError::BadRequestLine),
    };
    let method = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        b"PUT" => Method::Put,
        _ => Method::Other,
    };
    Ok((method, target, version))
}

/// RFC 9110 §5.6.2 token characters, as a table: every byte of every field name is checked.
const TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric();
        b += 1;
    }
    let extra = b"!#$%&'*+-.^_`|~";
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
};

fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

fn split_field(line: &[u8]) -> Result<(&[u8], &[u8]), ParseError> {
    // The name is the token before the first colon: a colon is not a token character, so a
    // name holding anything else (§5.1: even whitespace before the colon; §5.2: obs-fold, a
    // line starting with whitespace) ends before a colon and is refused.
    let name_len = line.iter().take_while(|&&b| is_tchar(b)).count();
    if name_len == 0 || line.get(name_len) != Some(&b':') {
        return Err(ParseError::BadHeader);
    }
    let value = trim_ows(&line[name_len + 1..]);
    if !is_field_value(value) {
        return Err(ParseError::BadHeader);
    }
    Ok((&line[..name_len], value))
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(v.len());
    let end = v.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(start, |e| e + 1);
    &v[start..end]
}

/// Comma-separated list elements, trimmed, empty ones dropped (§5.6.1).
fn list(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',').map(trim_ows).filter(|e| !e.is_empty())
}

/// Field facts gathered across lines, checked together at the end.
#[derive(Debug, Default)]
struct FieldState {
    hosts: usize,
    content_length: Option<u64>,
    transfer_encoding: bool,
    chunked_only: bool,
    close: bool,
    keep_alive: bool,
    range_lines: usize,
    if_modified_since: Option<u64>,
}

impl FieldState {
    fn apply<'a>(
        &mut self,
        req: &mut RequestHead<'a>,
        name: &[u8],
        value: &'a [u8],
    ) -> Result<(), ParseError> {
        if name.eq_ignore_ascii_case(b"host") {
            self.hosts += 1;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            self.content_length(value)?;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // A chunked coding must be the only one, applied once (§6.1); anything else is 501.
            self.chunked_only = !self.transfer_encoding
                && list(value).count() == 1
                && list(value).all(|c| c.eq_ignore_ascii_case(b"chunked"));
            self.transfer_encoding = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for option in list(value) {
                self.close |= option.eq_ignore_ascii_case(b"close");
                self.keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"range") {
            self.range_lines += 1;
            req.range = parse_range(value);
        } else if name.eq_ignore_ascii_case(b"if-none-match") {
            if req.if_none_match_count < MAX_IF_NONE_MATCH {
                req.if_none_match[req.if_none_match_count] = value;
                req.if_none_match_count += 1;
            }
        } else if name.eq_ignore_ascii_case(b"if-modified-since") {
            // §13.1.3: an invalid date is ignored.
            self.if_modified_since = parse_http_date(value);
        } else if name.eq_ignore_ascii_case(b"if-range") {
            req.if_range = Some(value);
        } else if name.eq_ignore_ascii_case(b"expect") && req.version == Version::Http11 {
            // §10.1.1: only 100-continue is defined; anything else is refused with 417.
            if !value.eq_ignore_ascii_case(b"100-continue") {
                return Err(ParseError::UnsupportedExpectation);
            }
            req.expect_continue = true;
        }
        Ok(())
    }

    fn content_length(&mut self, value: &[u8]) -> Result<(), ParseError> {
        // §6.3 item 5 / RFC 9110 §8.6: a list of identical values is one value; differing or
        // non-numeric values are unrecoverable framing errors.
        let mut any = false;
        for element in value.split(|&b| b == b',').map(trim_ows) {
            any = true;
            let n = parse_decimal(element).ok_or(ParseError::BadContentLength)?;
            if self.content_length.is_some_and(|prev| prev != n) {
                return Err(ParseError::BadContentLength);
            }
            self.content_length = Some(n);
        }
        if any {
            Ok(())
        } else {
            Err(ParseError::BadContentLength)
        }
    }

    fn finish(self, req: &mut RequestHead<'_>) -> Result<(), ParseError> {
        // §3.2: exactly one Host in HTTP/1.1; more than one is refused in any version.
        if self.hosts > 1 || req.version == Version::Http11 && self.hosts == 0 {
            return Err(ParseError::BadHost);
        }
        if self.transfer_encoding {
            // §6.1: TE with CL is how smuggling starts; we refuse instead of picking one.
            if self.content_length.is_some() {
                return Err(ParseError::LengthAndTransferEncoding);
            }
            if req.version == Version::Http10 {
                return Err(ParseError::TransferEncodingInHttp10);
            }
            if !self.chunked_only {
                return Err(ParseError::UnsupportedTransferEncoding);
            }
            req.body = BodyFraming::Chunked;
        } else if let Some(n) = self.content_length {
            req.body = if n == 0 { BodyFraming::None } else { BodyFraming::Length(n) };
        }
        // §9.3: 1.1 persists unless "close"; 1.0 persists only with "keep-alive".
        req.keep_alive = !self.close && (req.version == Version::Http11 || self.keep_alive);
        if self.range_lines > 1 {
            req.range = RangeRequest::Multiple;
        }
        req.if_modified_since = self.if_modified_since;
        Ok(())
    }
}

/// Parses 1..=19 ASCII digits (so the value always fits in a u64).
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |acc, &b| acc * 10 + u64::from(b - b'0')))
}

/// RFC 9110 §14.1.2 byte-ranges-specifier.
pub fn parse_range(value: &[u8]) -> RangeRequest {
    let Some(spec) = value.strip_prefix(b"bytes=") else {
        return RangeRequest::Ignored;
    };
    let mut ranges = list(spec);
    let Some(first) = ranges.next() else {
        return RangeRequest::Ignored;
    };
    if ranges.next().is_some() {
        return RangeRequest::Multiple;
    }
    let Some(dash) = first.iter().position(|&b| b == b'-') else {
        return RangeRequest::Ignored;
    };
    let (a, b) = (&first[..dash], &first[dash + 1..]);
    let range = match (parse_decimal(a), parse_decimal(b)) {
        (Some(a), Some(b)) if a <= b => ByteRange::FromTo(a, b),
        (Some(a), None) if b.is_empty() => ByteRange::From(a),
        (None, Some(n)) if a.is_empty() => ByteRange::Suffix(n),
        _ => return RangeRequest::Ignored,
    };
    RangeRequest::Single(range)
}

/// Extracts and percent-decodes the path of an origin-form or absolute-form target (§3.2).
fn decode_target(target: &[u8], method: Method, path: &mut Vec<u8>) -> Result<(), ParseError> {
    path.clear();
    let raw = if target.first() == Some(&b'/') {
        target
    } else if let Some(after_scheme) = strip_scheme(target) {
        // absolute-form: skip the authority; an empty path means "/".
        match after_scheme.iter().position(|&b| b == b'/' || b == b'?') {
            Some(i) if after_scheme[i] == b'/' => &after_scheme[i..],
            _ => b"/",
        }
    } else if target == b"*" && method == Method::Other {
        b"/" // asterisk-form is only meaningful for OPTIONS, which we answer 405 anyway.
    } else {
        return Err(ParseError::BadPath);
    };
    if find_byte(raw, b'#').is_some() {
        return Err(ParseError::BadPath);
    }
    let raw = &raw[..find_byte(raw, b'?').unwrap_or(raw.len())];
    percent_decode(raw, path)?;
    // Dot segments would be resolved by a normalising client; any that reach us are an attempt to
    // step outside the root (raw or encoded as %2e), so they are refused outright.
    if path.split(|&b| b == b'/').any(|seg| seg == b"." || seg == b"..") {
        return Err(ParseError::BadPath);
    }
    Ok(())
}

fn strip_scheme(target: &[u8]) -> Option<&[u8]> {
    for scheme in [&b"http://"[..], b"https://"] {
        if target.len() >= scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return Some(&target[scheme.len()..]);
        }
    }
    None
}

/// Decodes `%XY` escapes. An encoded NUL or `/` is refused: NUL truncates C paths and `%2F` would
/// let one segment name a different directory than the one the client appears to address.
fn percent_decode(raw: &[u8], out: &mut Vec<u8>) -> Result<(), ParseError> {
    let mut i = 0;
    while i < raw.len() {
        // Runs without escapes are copied whole.
        let run = find_byte(&raw[i..], b'%').unwrap_or(raw.len() - i);
        out.extend_from_slice(&raw[i..i + run]);
        i += run;
        if i == raw.len() {
            break;
        }
        let hex = raw.get(i + 1..i + 3).ok_or(ParseError::BadPath)?;
        let decoded = hex_value(hex[0]).zip(hex_value(hex[1])).ok_or(ParseError::BadPath)?;
        let byte = decoded.0 << 4 | decoded.1;
        if byte == 0 || byte == b'/' {
            return Err(ParseError::BadPath);
        }
        out.push(byte);
        i += 3;
    }
    Ok(())
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
