//! Response heads (RFC 9110 §15, RFC 9112 §4) and the validators that go with them.
//!
//! Owns status codes and reason phrases, the header set this server sends, entity tags built from
//! file size and modification time (§8.8.3), the `If-None-Match` comparison (§13.1.2) and the
//! media type for a file extension. It writes into a caller-owned `Vec` that keeps its capacity
//! across responses; it reads no clock (the `Date` value is passed in) and touches no files.
//! Numbers are written digit by digit rather than through `core::fmt`: a head is built for every
//! response, and the formatting machinery was most of its cost.

use super::date::HttpDateMemo;

/// A status code. Reason phrases are fixed here; clients ignore them (RFC 9112 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u16);

impl Status {
    pub const CONTINUE: Status = Status(100);
    pub const OK: Status = Status(200);
    pub const CREATED: Status = Status(201);
    pub const NO_CONTENT: Status = Status(204);
    pub const PARTIAL_CONTENT: Status = Status(206);
    pub const NOT_MODIFIED: Status = Status(304);
    pub const METHOD_NOT_ALLOWED: Status = Status(405);
    pub const REQUEST_TIMEOUT: Status = Status(408);
    pub const PAYLOAD_TOO_LARGE: Status = Status(413);
    pub const RANGE_NOT_SATISFIABLE: Status = Status(416);
    pub const INTERNAL_ERROR: Status = Status(500);

    pub fn reason(self) -> &'static str {
        match self.0 {
            100 => "Continue",
            200 => "OK",
            201 => "Created",
            204 => "No Content",
            206 => "Partial Content",
            304 => "Not Modified",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            409 => "Conflict",
            413 => "Content Too Large",
            414 => "URI Too Long",
            416 => "Range Not Satisfiable",
            417 => "Expectation Failed",
            431 => "Request Header Fields Too Large",
            500 => "Internal Server Error",
            501 => "Not Implemented",
            505 => "HTTP Version Not Supported",
            _ => "Unknown",
        }
    }

    /// Whether a response with this status can carry content (§6.4.1).
    pub fn has_body(self) -> bool {
        !(self.0 < 200 || self.0 == 204 || self.0 == 304)
    }
}

/// A strong entity tag `"<size hex>-<mtime ns hex>"`: it changes whenever a file is replaced or
/// modified in a way that moves its size or timestamp, which is what §8.8.3 asks of a validator
/// we can compute without reading the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Etag {
    bytes: [u8; 36],
    len: u8,
}

impl Etag {
    pub fn new(size: u64, mtime_unix_nanos: u64) -> Self {
        let mut bytes = [0u8; 36];
        bytes[0] = b'"';
        let mut len = 1 + put_hex(&mut bytes[1..], size);
        bytes[len] = b'-';
        len += 1;
        len += put_hex(&mut bytes[len..], mtime_unix_nanos);
        bytes[len] = b'"';
        Etag { bytes, len: (len + 1) as u8 }
    }

    /// The tag including its double quotes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// §13.1.2: true if any `If-None-Match` line lists this tag (weak comparison) or is `*`.
    pub fn matches_any(&self, if_none_match: &[&[u8]]) -> bool {
        let ours = self.as_bytes();
        if_none_match.iter().flat_map(|line| line.split(|&b| b == b',')).any(|tag| {
            let tag = tag.trim_ascii();
            tag == b"*" || tag.strip_prefix(b"W/").unwrap_or(tag) == ours
        })
    }
}

impl Etag {
    /// §13.1.5: `If-Range` holds if it is our entity tag (strong comparison, so a weak tag never
    /// matches) or exactly our modification date; otherwise the Range is ignored.
    pub fn if_range_holds(&self, if_range: &[u8], modified_unix_secs: u64) -> bool {
        if if_range.starts_with(b"\"") || if_range.starts_with(b"W/") {
            return if_range == self.as_bytes();
        }
        super::date::parse_http_date(if_range) == Some(modified_unix_secs)
    }
}

/// The `Content-Range` field of a response, if any (§14.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentRange {
    None,
    /// `bytes first-last/total`.
    Bytes {
        first: u64,
        last: u64,
        total: u64,
    },
    /// `bytes */total`, sent with 416.
    Unsatisfied {
        total: u64,
    },
}

/// What the `Connection` field says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionField {
    /// Nothing: the version's default applies.
    Omit,
    Close,
    /// Sent to HTTP/1.0 clients that asked to keep the connection open.
    KeepAlive,
}

/// A response head to serialise.
#[derive(Debug, Clone, Copy)]
pub struct ResponseHead<'a> {
    pub status: Status,
    /// Unix seconds for the `Date` field.
    pub date: u64,
    pub content_length: Option<u64>,
    pub content_type: Option<&'static str>,
    pub last_modified: Option<u64>,
    pub etag: Option<&'a Etag>,
    pub accept_ranges: bool,
    pub content_range: ContentRange,
    /// Send `Allow: GET, HEAD, PUT` (required with 405, §15.5.6).
    pub allow: bool,
    pub connection: ConnectionField,
}

impl<'a> ResponseHead<'a> {
    pub fn new(status: Status, date: u64) -> Self {
        ResponseHead {
            status,
            date,
            content_length: None,
            content_type: None,
            last_modified: None,
            etag: None,
            accept_ranges: false,
            content_range: ContentRange::None,
            allow: false,
            connection: ConnectionField::Omit,
        }
    }

    /// Appends the serialised head, blank line included, to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        self.emit_with(out, &mut HttpDateMemo::default());
    }

    /// [`emit`](Self::emit), formatting the dates through `dates` (a connection keeps one, so
    /// its responses within a second format their `Date` once).
    pub fn emit_with(&self, out: &mut Vec<u8>, dates: &mut HttpDateMemo) {
        out.extend_from_slice(b"HTTP/1.1 ");
        push_decimal(out, u64::from(self.status.0));
        out.push(b' ');
        out.extend_from_slice(self.status.reason().as_bytes());
        out.extend_from_slice(b"\r\nServer: linerate\r\nDate: ");
        out.extend_from_slice(dates.format(self.date));
        out.extend_from_slice(b"\r\n");
        if let Some(len) = self.content_length {
            out.extend_from_slice(b"Content-Length: ");
            push_decimal(out, len);
            out.extend_from_slice(b"\r\n");
        }
        if let Some(ty) = self.content_type {
            out.extend_from_slice(b"Content-Type: ");
            out.extend_from_slice(ty.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if let Some(t) = self.last_modified {
            out.extend_from_slice(b"Last-Modified: ");
            out.extend_from_slice(dates.format(t));
            out.extend_from_slice(b"\r\n");
        }
        if let Some(tag) = self.etag {
            out.extend_from_slice(b"ETag: ");
            out.extend_from_slice(tag.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if self.accept_ranges {
            out.extend_from_slice(b"Accept-Ranges: bytes\r\n");
        }
        match self.content_range {
            ContentRange::None => {}
            ContentRange::Bytes { first, last, total } => {
                out.extend_from_slice(b"Content-Range: bytes ");
                push_decimal(out, first);
                out.push(b'-');
                push_decimal(out, last);
                out.push(b'/');
                push_decimal(out, total);
                out.extend_from_slice(b"\r\n");
            }
            ContentRange::Unsatisfied { total } => {
                out.extend_from_slice(b"Content-Range: bytes */");
                push_decimal(out, total);
                out.extend_from_slice(b"\r\n");
            }
        }
        if self.allow {
            out.extend_from_slice(b"Allow: GET, HEAD, PUT\r\n");
        }
        match self.connection {
            ConnectionField::Omit => {}
            ConnectionField::Close => out.extend_from_slice(b"Connection: close\r\n"),
            ConnectionField::KeepAlive => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// The last head a connection emitted, with everything that determined its bytes: a keep-alive
/// client fetching the same file within one second gets the same head, which is then copied
/// instead of formatted again (about 500 instructions per response). A memo of a pure function
/// of [`HeadKey`], so never stale, whatever connection it is reused for.
#[derive(Debug, Clone, Default)]
pub struct HeadMemo {
    key: Option<HeadKey>,
    bytes: Vec<u8>,
}

/// Every input of [`ResponseHead::emit_with`], by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HeadKey {
    status: Status,
    date: u64,
    content_length: Option<u64>,
    content_type: Option<&'static str>,
    last_modified: Option<u64>,
    etag: Option<Etag>,
    accept_ranges: bool,
    content_range: ContentRange,
    allow: bool,
    connection: ConnectionField,
}

impl ResponseHead<'_> {
    fn key(&self) -> HeadKey {
        HeadKey {
            status: self.status,
            date: self.date,
            content_length: self.content_length,
            content_type: self.content_type,
            last_modified: self.last_modified,
            etag: self.etag.copied(),
            accept_ranges: self.accept_ranges,
            content_range: self.content_range,
            allow: self.allow,
            connection: self.connection,
        }
    }

    /// [`emit_with`](Self::emit_with), copying the bytes from `memo` when they were emitted
    /// last for the same inputs, and keeping them there otherwise.
    pub fn emit_memo(&self, out: &mut Vec<u8>, dates: &mut HttpDateMemo, memo: &mut HeadMemo) {
        let key = self.key();
        if memo.key == Some(key) {
            out.extend_from_slice(&memo.bytes);
            return;
        }
        let start = out.len();
        self.emit_with(out, dates);
        memo.bytes.clear();
        memo.bytes.extend_from_slice(&out[start..]);
        memo.key = Some(key);
    }
}

/// Appends `v` in decimal.
pub fn push_decimal(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Writes `v` in lower-case hex at the start of `dst` (which holds at least 16 bytes); returns
/// the number of digits.
fn put_hex(dst: &mut [u8], v: u64) -> usize {
    let n = (64 - (v | 1).leading_zeros()).div_ceil(4) as usize;
    for (i, d) in dst[..n].iter_mut().enumerate() {
        let nibble = (v >> (4 * (n - 1 - i))) & 0xf;
        *d = b"0123456789abcdef"[nibble as usize];
    }
    n
}

/// Media type for a path, chosen by its extension; unknown types are `application/octet-stream`
/// so a browser never sniffs an uploaded file into something executable.
pub fn content_type_for(path: &[u8]) -> &'static str {
    let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    let Some(dot) = name.iter().rposition(|&b| b == b'.') else {
        return "application/octet-stream";
    };
    let ext = &name[dot + 1..];
    const TABLE: [(&[u8], &str); 30] = [
        (b"html", "text/html; charset=utf-8"),
        (b"htm", "text/html; charset=utf-8"),
        (b"css", "text/css; charset=utf-8"),
        (b"js", "text/javascript; charset=utf-8"),
        (b"json", "application/json"),
        (b"txt", "text/plain; charset=utf-8"),
        (b"xml", "application/xml"),
        (b"svg", "image/svg+xml"),
        (b"png", "image/png"),
        (b"jpg", "image/jpeg"),
        (b"jpeg", "image/jpeg"),
        (b"gif", "image/gif"),
        (b"webp", "image/webp"),
        (b"ico", "image/x-icon"),
        (b"wasm", "application/wasm"),
        (b"pdf", "application/pdf"),
        (b"mp4", "video/mp4"),
        (b"bin", "application/octet-stream"),
        (b"mjs", "text/javascript; charset=utf-8"),
        (b"csv", "text/csv; charset=utf-8"),
        (b"md", "text/markdown; charset=utf-8"),
        (b"avif", "image/avif"),
        (b"woff", "font/woff"),
        (b"woff2", "font/woff2"),
        (b"mp3", "audio/mpeg"),
        (b"webm", "video/webm"),
        (b"zip", "application/zip"),
        (b"gz", "application/gzip"),
        (b"tar", "application/x-tar"),
        (b"iso", "application/x-iso9660-image"),
    ];
    TABLE.iter().find(|(e, _)| e.eq_ignore_ascii_case(ext)).map_or("application/octet-stream", |&(_, ty)| ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emits_a_partial_content_head() {
        let tag = Etag::new(1000, 0x1234);
        let mut head = ResponseHead::new(Status::PARTIAL_CONTENT, 784_111_777);
        head.content_length = Some(10);
        head.content_type = Some(content_type_for(b"/a/b.HTML"));
        head.etag = Some(&tag);
        head.accept_ranges = true;
        head.content_range = ContentRange::Bytes { first: 0, last: 9, total: 1000 };
        head.connection = ConnectionField::Close;
        let mut out = Vec::new();
        head.emit(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 206 Partial Content\r\nServer: linerate\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Length: 10\r\nContent-Type: text/html; charset=utf-8\r\nETag: \"3e8-1234\"\r\n\
             Accept-Ranges: bytes\r\nContent-Range: bytes 0-9/1000\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn a_memoised_head_is_byte_for_byte_the_formatted_one() {
        let (a, b) = (Etag::new(1024, 7), Etag::new(1024, 8));
        let mut base = ResponseHead::new(Status::OK, 784_111_777);
        base.content_length = Some(1024);
        base.content_type = Some(content_type_for(b"/x.bin"));
        base.last_modified = Some(784_000_000);
        base.etag = Some(&a);
        base.accept_ranges = true;
        base.connection = ConnectionField::KeepAlive;
        // Each variant changes one input; every input must show in the bytes.
        let mut variants = vec![base; 11];
        variants[1].date += 1;
        variants[2].content_length = Some(1023);
        variants[3].content_type = None;
        variants[4].last_modified = Some(784_000_001);
        variants[5].etag = Some(&b);
        variants[6].accept_ranges = false;
        variants[7].content_range = ContentRange::Unsatisfied { total: 1024 };
        variants[8].allow = true;
        variants[9].connection = ConnectionField::Close;
        variants[10].status = Status::PARTIAL_CONTENT;
        let (mut memo, mut dates) = (HeadMemo::default(), HttpDateMemo::default());
        // Each head twice in a row (the second from the memo), and back to the base between.
        for head in variants.iter().flat_map(|v| [v, v, &base, &base]) {
            let (mut fresh, mut memoised) = (b"prefix".to_vec(), b"prefix".to_vec());
            head.emit(&mut fresh);
            head.emit_memo(&mut memoised, &mut dates, &mut memo);
            assert_eq!(String::from_utf8(memoised).unwrap(), String::from_utf8(fresh).unwrap());
        }
    }

    #[test]
    fn etag_comparison_is_weak_and_list_aware() {
        let tag = Etag::new(u64::MAX, u64::MAX);
        assert_eq!(tag.as_bytes().len(), 35);
        let ours = std::str::from_utf8(tag.as_bytes()).unwrap();
        assert!(tag.matches_any(&[format!("\"x\", W/{ours}").as_bytes()]));
        assert!(tag.matches_any(&[b"\"nope\"", b" * "]));
        assert!(!tag.matches_any(&[b"\"nope\"", b"W/\"ffff\""]));
        assert!(!tag.matches_any(&[]));
    }

    #[test]
    fn numbers_match_the_standard_formatting() {
        for v in [0u64, 1, 9, 10, 15, 16, 255, 1024, 99_999, u64::from(u32::MAX), u64::MAX - 1, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, v);
            assert_eq!(out, v.to_string().into_bytes());
            let tag = Etag::new(v, v ^ 0xabc);
            assert_eq!(tag.as_bytes(), format!("\"{v:x}-{:x}\"", v ^ 0xabc).as_bytes());
        }
    }

    #[test]
    fn media_types() {
        assert_eq!(content_type_for(b"/x.png"), "image/png");
        assert_eq!(content_type_for(b"/release.tar.GZ"), "application/gzip");
        assert_eq!(content_type_for(b"/f.woff2"), "font/woff2");
        assert_eq!(content_type_for(b"/dir.d/noext"), "application/octet-stream");
        assert_eq!(content_type_for(b"/"), "application/octet-stream");
    }
}
