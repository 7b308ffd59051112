use super::*;
use crate::http::{HttpConfig, ResolveMode, Root};
use linerate_stack::time::Duration;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// 2001-09-09 01:46:40 UTC at Instant::ZERO, so every Date is predictable.
const WALL_AT_ZERO: u64 = 1_000_000_000 * 1_000_000_000;

/// A private directory removed on drop.
pub(crate) struct TempRoot(PathBuf);

impl TempRoot {
    pub(crate) fn new() -> Self {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "linerate-http-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(dir.join("root")).unwrap();
        TempRoot(dir)
    }
    fn root(&self) -> PathBuf {
        self.0.join("root")
    }
    fn write(&self, rel: &str, data: &[u8]) {
        let p = self.root().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn site_with(root: &Path, mode: ResolveMode, config: HttpConfig) -> Arc<Site> {
    Arc::new(Site::new(Root::open(root, mode).unwrap(), config, WALL_AT_ZERO))
}

fn site(root: &Path) -> Arc<Site> {
    site_with(root, ResolveMode::Beneath, HttpConfig::default())
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Splits a byte stream into responses; `head_only` lists which ones answer HEAD.
fn responses(mut bytes: &[u8], head_only: &[bool]) -> Vec<Response> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("incomplete head") + 4;
        let text = std::str::from_utf8(&bytes[..end]).unwrap();
        let mut lines = text.split("\r\n");
        let status: u16 = lines.next().unwrap()[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(": ").unwrap();
                (n.to_string(), v.to_string())
            })
            .collect();
        bytes = &bytes[end..];
        let mut r = Response { status, headers, body: Vec::new() };
        let final_index = out.iter().filter(|r: &&Response| r.status >= 200).count();
        let skip_body =
            status < 200 || status == 304 || status == 204 || head_only.get(final_index) == Some(&true);
        if !skip_body {
            let len: usize = r.header("content-length").map_or(0, |v| v.parse().unwrap());
            r.body = bytes[..len].to_vec();
            bytes = &bytes[len..];
        }
        out.push(r);
    }
    out
}

/// Feeds `input` (held back like a transport would) and drains output through a small buffer.
fn exchange(conn: &mut HttpConnection, now: Instant, input: &[u8]) -> Vec<u8> {
    let mut pending = input;
    let mut out = Vec::new();
    let mut buf = [0u8; 7];
    loop {
        let used = conn.on_bytes(now, pending);
        pending = &pending[used..];
        let mut wrote = 0;
        loop {
            let n = conn.poll_output(&mut buf);
            if n == 0 {
                break;
            }
            wrote += n;
            out.extend_from_slice(&buf[..n]);
        }
        if (used == 0 && wrote == 0) || conn.wants_close() {
            return out;
        }
    }
}

fn get(site: &Arc<Site>, request: &str) -> (Vec<Response>, HttpConnection) {
    let mut conn = HttpConnection::new(site.clone(), Instant::ZERO);
    let bytes = exchange(&mut conn, Instant::from_millis(5), request.as_bytes());
    let heads: Vec<bool> = request.split("\r\n\r\n").map(|r| r.starts_with("HEAD")).collect();
    (responses(&bytes, &heads), conn)
}

#[test]
fn serves_a_file_with_validators() {
    let t = TempRoot::new();
    t.write("dir/a.txt", b"hello world");
    let (r, conn) = get(&site(&t.root()), "GET /dir/a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, 200);
    assert_eq!(r[0].body, b"hello world");
    assert_eq!(r[0].header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r[0].header("date"), Some("Sun, 09 Sep 2001 01:46:40 GMT"));
    assert_eq!(r[0].header("accept-ranges"), Some("bytes"));
    assert!(r[0].header("etag").unwrap().starts_with("\"b-"));
    assert!(r[0].header("last-modified").is_some());
    assert!(!conn.wants_close());
}

#[test]
fn head_and_ranges() {
    let t = TempRoot::new();
    t.write("f.bin", b"0123456789");
    let s = site(&t.root());
    let (r, _) = get(&s, "HEAD /f.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((r[0].status, r[0].header("content-length")), (200, Some("10")));
    let cases = [
        ("bytes=2-4", 206, &b"234"[..], Some("bytes 2-4/10")),
        ("bytes=7-", 206, b"789", Some("bytes 7-9/10")),
        ("bytes=-3", 206, b"789", Some("bytes 7-9/10")),
        ("bytes=5-100", 206, b"56789", Some("bytes 5-9/10")),
        ("bytes=0-0,5-6", 200, b"0123456789", None),
        ("bytes=oops", 200, b"0123456789", None),
        ("bytes=10-", 416, b"416 Range Not Satisfiable\n", Some("bytes */10")),
    ];
    for (range, status, body, content_range) in cases {
        let (r, _) = get(&s, &format!("GET /f.bin HTTP/1.1\r\nHost: x\r\nRange: {range}\r\n\r\n"));
        assert_eq!((r[0].status, r[0].body.as_slice()), (status, body), "{range}");
        assert_eq!(r[0].header("content-range"), content_range, "{range}");
    }
}

#[test]
fn conditional_requests() {
    let t = TempRoot::new();
    t.write("f", b"abc");
    let s = site(&t.root());
    let (r, _) = get(&s, "GET /f HTTP/1.1\r\nHost: x\r\n\r\n");
    let etag = r[0].header("etag").unwrap().to_string();
    let lm = r[0].header("last-modified").unwrap().to_string();
    let (r, _) = get(&s, &format!("GET /f HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"zz\", {etag}\r\n\r\n"));
    assert_eq!((r[0].status, r[0].header("etag")), (304, Some(etag.as_str())));
    let (r, _) = get(&s, &format!("GET /f HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: {lm}\r\n\r\n"));
    assert_eq!(r[0].status, 304);
    let (r, _) =
        get(&s, "GET /f HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n");
    assert_eq!(r[0].status, 200);
    // §13.2.2: a failed If-None-Match wins over a matching If-Modified-Since.
    let req =
        format!("GET /f HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"zz\"\r\nIf-Modified-Since: {lm}\r\n\r\n");
    assert_eq!(get(&s, &req).0[0].status, 200);
}

#[test]
fn if_range_guards_partial_responses() {
    let t = TempRoot::new();
    t.write("f", b"0123456789");
    let s = site(&t.root());
    let (r, _) = get(&s, "GET /f HTTP/1.1\r\nHost: x\r\n\r\n");
    let etag = r[0].header("etag").unwrap().to_string();
    let lm = r[0].header("last-modified").unwrap().to_string();
    for (if_range, status) in [
        (etag.clone(), 206),
        (format!("W/{etag}"), 200),
        ("\"other\"".to_string(), 200),
        (lm, 206),
        ("Thu, 01 Jan 1970 00:00:00 GMT".to_string(), 200),
    ] {
        let req = format!("GET /f HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\nIf-Range: {if_range}\r\n\r\n");
        assert_eq!(get(&s, &req).0[0].status, status, "{if_range}");
    }
}

#[test]
fn directories_and_missing_files() {
    let t = TempRoot::new();
    t.write("index.html", b"<h1>hi</h1>");
    std::fs::create_dir_all(t.root().join("empty")).unwrap();
    let s = site(&t.root());
    let (r, _) = get(&s, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((r[0].status, r[0].header("content-type")), (200, Some("text/html; charset=utf-8")));
    assert_eq!(get(&s, "GET /empty/ HTTP/1.1\r\nHost: x\r\n\r\n").0[0].status, 404);
    let (r, conn) = get(&s, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((r[0].status, conn.wants_close()), (404, false));
}

#[test]
fn symlinks_cannot_escape_the_root() {
    let t = TempRoot::new();
    std::fs::write(t.0.join("secret"), b"secret").unwrap();
    t.write("inside.txt", b"ok");
    std::os::unix::fs::symlink("../secret", t.root().join("escape")).unwrap();
    std::os::unix::fs::symlink(t.0.join("secret"), t.root().join("absolute")).unwrap();
    std::os::unix::fs::symlink("inside.txt", t.root().join("alias")).unwrap();
    for mode in [ResolveMode::Beneath, ResolveMode::Canonicalize] {
        let s = site_with(&t.root(), mode, HttpConfig::default());
        for path in ["/escape", "/absolute"] {
            let (r, _) = get(&s, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
            assert_eq!(r[0].status, 404, "{mode:?} {path}");
        }
        let (r, _) = get(&s, "GET /alias HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!((r[0].status, r[0].body.as_slice()), (200, &b"ok"[..]), "{mode:?}");
    }
}

#[test]
fn pipelined_responses_keep_request_order() {
    let t = TempRoot::new();
    t.write("a", b"AAAA");
    t.write("b", b"BB");
    let s = site(&t.root());
    let mut conn = HttpConnection::new(s, Instant::ZERO);
    let reqs = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    // While the first response is pending, the rest stays with the transport.
    let used = conn.on_bytes(Instant::ZERO, reqs);
    assert_eq!(used, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n".len());
    let mut conn = HttpConnection::new(site(&t.root()), Instant::ZERO);
    let out = exchange(&mut conn, Instant::ZERO, reqs);
    let r = responses(&out, &[false, true, false, false, false]);
    let got: Vec<(u16, &[u8])> = r.iter().map(|r| (r.status, r.body.as_slice())).collect();
    assert_eq!(
        got,
        [(200, &b"AAAA"[..]), (200, b""), (200, b"BB"), (404, b"404 Not Found\n"), (200, b"AAAA")]
    );
    assert_eq!(r[4].header("connection"), Some("close"));
    assert!(conn.wants_close());
    assert_eq!(conn.requests(), 5);
}

#[test]
fn http10_closes_and_keep_alive_is_honoured() {
    let t = TempRoot::new();
    t.write("a", b"A");
    let s = site(&t.root());
    let (r, conn) = get(&s, "GET /a HTTP/1.0\r\n\r\n");
    assert_eq!((r[0].header("connection"), conn.wants_close()), (Some("close"), true));
    let (r, conn) = get(&s, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!((r[0].header("connection"), conn.wants_close()), (Some("keep-alive"), false));
}

#[test]
fn errors_close_the_connection() {
    let t = TempRoot::new();
    let s = site(&t.root());
    let (r, conn) = get(&s, "GET /%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].status, r[0].header("connection")), (400, Some("close")));
    assert!(conn.wants_close() && !conn.was_aborted());
    let (r, conn) = get(&s, "DELETE /a HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((r[0].status, r[0].header("allow")), (405, Some("GET, HEAD, PUT")));
    assert!(!conn.wants_close());
}

#[test]
fn unwanted_request_bodies_are_skipped() {
    let t = TempRoot::new();
    t.write("a", b"A");
    let s = site(&t.root());
    let req = "GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nxxxxxPOST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    let (r, _) = get(&s, req);
    let statuses: Vec<u16> = r.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 405, 200]);
}

fn put(s: &Arc<Site>, path: &str, extra: &str, body: &[u8]) -> (Vec<Response>, HttpConnection) {
    let mut conn = HttpConnection::new(s.clone(), Instant::ZERO);
    let mut req = format!("PUT {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").into_bytes();
    req.extend_from_slice(body);
    let out = exchange(&mut conn, Instant::ZERO, &req);
    (responses(&out, &[]), conn)
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

#[test]
fn uploads_are_atomic() {
    let t = TempRoot::new();
    std::fs::create_dir(t.root().join("up")).unwrap();
    let s = site(&t.root());
    let (r, _) = put(&s, "/up/f.bin", "Content-Length: 5\r\nExpect: 100-continue\r\n", b"hello");
    assert_eq!(r.iter().map(|r| r.status).collect::<Vec<_>>(), [100, 201]);
    assert_eq!(std::fs::read(t.root().join("up/f.bin")).unwrap(), b"hello");
    let (r, _) = put(&s, "/up/f.bin", "Transfer-Encoding: chunked\r\n", b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    assert_eq!(r[0].status, 204);
    assert_eq!(std::fs::read(t.root().join("up/f.bin")).unwrap(), b"abcde");
    // An upload cut off by the peer leaves the old content and no temporary file.
    let mut conn = HttpConnection::new(s.clone(), Instant::ZERO);
    let req = b"PUT /up/f.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial";
    assert_eq!(conn.on_bytes(Instant::ZERO, req), req.len());
    conn.on_eof();
    assert!(conn.wants_close());
    drop(conn);
    assert_eq!(std::fs::read(t.root().join("up/f.bin")).unwrap(), b"abcde");
    assert_eq!(dir_names(&t.root().join("up")), ["f.bin"]);
    // A broken chunked body is refused and removed too.
    let (r, conn) = put(&s, "/up/g", "Transfer-Encoding: chunked\r\n", b"3\r\nabcXX");
    assert_eq!((r[0].status, conn.wants_close()), (400, true));
    drop(conn);
    assert_eq!(dir_names(&t.root().join("up")), ["f.bin"]);
    // Missing parent directory, and a directory as target.
    assert_eq!(put(&s, "/nodir/f", "Content-Length: 1\r\n", b"x").0[0].status, 404);
    assert_eq!(put(&s, "/up", "Content-Length: 1\r\n", b"x").0[0].status, 409);
    assert_eq!(put(&s, "/empty", "", b"").0[0].status, 201);
}

#[test]
fn upload_size_limit() {
    let t = TempRoot::new();
    let config = HttpConfig { max_upload_bytes: 4, ..HttpConfig::default() };
    let s = site_with(&t.root(), ResolveMode::Beneath, config);
    let (r, conn) = put(&s, "/f", "Content-Length: 5\r\nExpect: 100-continue\r\n", b"");
    assert_eq!((r.len(), r[0].status, conn.wants_close()), (1, 413, true));
    let (r, _) = put(&s, "/f", "Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n");
    assert_eq!(r[0].status, 413);
    assert!(dir_names(&t.root()).is_empty());
    let s = site_with(&t.root(), ResolveMode::Beneath, HttpConfig { allow_uploads: false, ..config });
    assert_eq!(put(&s, "/f", "Content-Length: 1\r\n", b"x").0[0].status, 405);
}

#[test]
fn slow_heads_get_408_and_idle_connections_close() {
    let t = TempRoot::new();
    let s = site(&t.root());
    let config = *s.config();
    let mut conn = HttpConnection::new(s.clone(), Instant::ZERO);
    let start = Instant::from_millis(1000);
    assert_eq!(conn.next_deadline(), Some(Instant::ZERO + config.idle_timeout));
    // A byte every second keeps the connection "active" but the head must still finish in time.
    let mut now = start;
    for b in b"GET / HTTP/1.1\r\nX-Slow: " {
        assert_eq!(conn.on_bytes(now, &[*b]), 1);
        now += Duration::from_millis(300);
    }
    let deadline = conn.next_deadline().unwrap();
    assert_eq!(deadline, start + config.header_timeout);
    conn.on_timeout(deadline - Duration::from_nanos(1));
    assert!(!conn.wants_close());
    conn.on_timeout(deadline);
    let out = exchange(&mut conn, deadline, b"");
    assert_eq!(responses(&out, &[])[0].status, 408);
    assert!(conn.wants_close() && conn.next_deadline().is_none());

    // A head refused while arriving is answered once; its header deadline is gone with it.
    let mut refused = HttpConnection::new(s.clone(), Instant::ZERO);
    let long = vec![b'a'; config.limits.max_request_line + 10];
    refused.on_bytes(Instant::ZERO, &long);
    assert!(matches!(refused.peek_output(), Output::Bytes(b) if b.starts_with(b"HTTP/1.1 414 ")));
    let pending = match refused.peek_output() {
        Output::Bytes(b) => b.len(),
        _ => 0,
    };
    refused.on_timeout(Instant::ZERO + config.header_timeout);
    assert!(matches!(refused.peek_output(), Output::Bytes(b) if b.len() == pending));

    let mut idle = HttpConnection::new(s, Instant::ZERO);
    idle.on_timeout(Instant::ZERO + config.idle_timeout);
    assert!(idle.wants_close() && !idle.was_aborted());
}

#[test]
fn output_progress_defers_the_idle_deadline_and_shrinking_files_abort() {
    let t = TempRoot::new();
    t.write("big", &vec![7u8; 100_000]);
    let s = site(&t.root());
    let idle = s.config().idle_timeout;
    let mut conn = HttpConnection::new(s, Instant::ZERO);
    conn.on_bytes(Instant::ZERO, b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = [0u8; 1000];
    assert_eq!(conn.poll_output(&mut buf), 1000);
    conn.on_timeout(Instant::ZERO + idle);
    assert!(!conn.wants_close(), "progress since the last check counts as activity");
    // Truncate the file under the open response: the body can no longer be honoured.
    std::fs::write(t.root().join("big"), b"").unwrap();
    while conn.poll_output(&mut buf) > 0 {}
    assert!(conn.wants_close() && conn.was_aborted());
}

#[test]
fn peek_and_advance_expose_file_ranges() {
    let t = TempRoot::new();
    t.write("f", b"0123456789");
    let mut conn = HttpConnection::new(site(&t.root()), Instant::ZERO);
    conn.on_bytes(Instant::ZERO, b"GET /f HTTP/1.1\r\nHost: x\r\nRange: bytes=3-\r\n\r\n");
    assert!(conn.body_follows());
    let Output::Bytes(head) = conn.peek_output() else { panic!("head first") };
    let n = head.len();
    conn.advance_output(n);
    let Output::File { file, offset, len } = conn.peek_output() else { panic!("then the file") };
    assert_eq!((offset, len), (3, 7));
    let mut dst = [0u8; 7];
    assert_eq!(file.read_at(offset, &mut dst).unwrap(), 7);
    assert_eq!(&dst, b"3456789");
    conn.advance_output(7);
    assert!(matches!(conn.peek_output(), Output::Idle));
}

#[test]
fn a_kept_body_is_offered_with_its_head_and_matches_the_parts() {
    let t = TempRoot::new();
    t.write("f", b"0123456789");
    let s = site(&t.root());
    let mut conn = HttpConnection::new(s.clone(), Instant::ZERO);
    conn.defer_file_io();
    let get = |conn: &mut HttpConnection, range: &str| {
        let req = format!("GET /f HTTP/1.1\r\nHost: x\r\n{range}\r\n");
        assert_eq!(conn.on_bytes(Instant::ZERO, req.as_bytes()), req.len());
        if conn.pending_open().is_some() {
            conn.on_opened(Instant::ZERO, s.root().open_file_kept(b"/f"));
        }
    };
    get(&mut conn, "Range: bytes=3-\r\n");
    let (head, body) = conn.peek_bytes_and_kept_body().expect("kept body after its head");
    assert_eq!(body, b"3456789");
    let head = head.to_vec();
    let Output::Bytes(parts_head) = conn.peek_output() else { panic!("head first") };
    assert_eq!(head, parts_head);
    // Taking part of the head keeps offering the rest with the whole body.
    conn.advance_output(5);
    let (rest, body) = conn.peek_bytes_and_kept_body().unwrap();
    assert_eq!((rest.len(), body), (head.len() - 5, &b"3456789"[..]));
    let rest = rest.len();
    conn.advance_output(rest);
    // Once the head is out, only the file part is left (no pending bytes to join).
    assert!(conn.peek_bytes_and_kept_body().is_none());
    conn.advance_output(7);
    assert!(matches!(conn.peek_output(), Output::Idle));
    // The next response, from the cache: the whole file after its head.
    get(&mut conn, "");
    assert_eq!(conn.peek_bytes_and_kept_body().unwrap().1, b"0123456789");
    // A file opened without keeping its bytes is offered part by part only.
    let mut plain = HttpConnection::new(site(&t.root()), Instant::ZERO);
    plain.on_bytes(Instant::ZERO, b"GET /f HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(plain.body_follows() && plain.peek_bytes_and_kept_body().is_none());
}

/// Mutated request streams in random pieces never panic, never produce unbounded output and
/// always end with the connection closable. Seeded; the seed is in the failure message.
#[test]
fn random_streams_are_survived() {
    let t = TempRoot::new();
    t.write("a", b"0123456789");
    std::fs::create_dir(t.root().join("up")).unwrap();
    let s = site(&t.root());
    let templates: [&[u8]; 4] = [
        b"GET /a HTTP/1.1\r\nHost: x\r\nRange: bytes=1-3\r\n\r\n",
        b"PUT /up/f HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"PUT /up/g HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nxyz",
        b"HEAD /a HTTP/1.0\r\nConnection: keep-alive\r\nIf-None-Match: *\r\n\r\n",
    ];
    let mut seed: u64 = 0x5eed_1234_abcd_0001;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for case in 0..300 {
        let mut stream = Vec::new();
        for _ in 0..(next() % 4 + 1) {
            stream.extend_from_slice(templates[(next() % 4) as usize]);
        }
        for _ in 0..(next() % 4) {
            let i = (next() as usize) % stream.len();
            stream[i] = b"\r\n:0 %-/;xAZ\x00\xff"[(next() % 14) as usize];
        }
        let mut conn = HttpConnection::new(s.clone(), Instant::ZERO);
        let mut pending = &stream[..];
        let mut out_bytes = 0;
        let mut buf = [0u8; 64];
        for _ in 0..10_000 {
            let piece = (next() as usize % 9 + 1).min(pending.len());
            let used = conn.on_bytes(Instant::ZERO, &pending[..piece]);
            pending = &pending[used..];
            let n = conn.poll_output(&mut buf);
            out_bytes += n;
            if pending.is_empty() && n == 0 || conn.wants_close() {
                break;
            }
        }
        conn.on_eof();
        while conn.poll_output(&mut buf) > 0 {}
        assert!(conn.wants_close(), "case {case}: not closable after EOF");
        assert!(out_bytes < 64 * 1024, "case {case}: {out_bytes} bytes of output");
    }
    let names = dir_names(&t.root().join("up"));
    assert!(names.iter().all(|n| !n.starts_with(".linerate-upload-")), "{names:?}");
}

/// Like [`exchange`], on a connection that defers its opens: each pending open is done here,
/// as the transport's I/O thread would, and counted. Checks that nothing more is read while an
/// open is pending.
fn exchange_deferred(conn: &mut HttpConnection, site: &Site, now: Instant, input: &[u8]) -> (Vec<u8>, u32) {
    let mut pending = input;
    let mut out = Vec::new();
    let mut buf = [0u8; 7];
    let mut opens = 0;
    loop {
        let used = conn.on_bytes(now, pending);
        pending = &pending[used..];
        let mut answered = false;
        if let Some(opened) = conn.pending_open().map(|path| site.root().open_file(path)) {
            assert_eq!(conn.on_bytes(now, pending), 0, "input read while an open is pending");
            assert!(matches!(conn.peek_output(), Output::Idle), "output before the open");
            opens += 1;
            conn.on_opened(now, opened);
            answered = true;
        }
        let mut wrote = 0;
        loop {
            let n = conn.poll_output(&mut buf);
            if n == 0 {
                break;
            }
            wrote += n;
            out.extend_from_slice(&buf[..n]);
        }
        if (used == 0 && wrote == 0 && !answered) || conn.wants_close() {
            return (out, opens);
        }
    }
}

#[test]
fn deferred_opens_answer_byte_for_byte_like_inline_opens() {
    let t = TempRoot::new();
    t.write("inside.txt", b"inside");
    t.write("dir/index.html", b"<p>index</p>");
    t.write("empty/.keep", b"");
    std::fs::write(t.0.join("secret"), b"outside the root").unwrap();
    std::os::unix::fs::symlink("../secret", t.root().join("escape")).unwrap();
    std::os::unix::fs::symlink("inside.txt", t.root().join("alias")).unwrap();
    let streams = [
        "GET /inside.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\n\r\nHEAD /dir/ HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /escape HTTP/1.1\r\nHost: x\r\n\r\nGET /alias HTTP/1.1\r\nHost: x\r\n\r\nGET /empty/ HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /../secret HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /inside.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=2-4\r\n\r\nGET /inside.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=9-\r\n\r\n",
        "GET /inside.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /alias HTTP/1.0\r\nHost: x\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /inside.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /alias HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    let mut statuses = Vec::new();
    for stream in streams {
        // Fresh sites: both connections see an empty open-file cache.
        let inline_site = site(&t.root());
        let mut inline = HttpConnection::new(inline_site, Instant::ZERO);
        let expected = exchange(&mut inline, Instant::from_millis(5), stream.as_bytes());
        let deferred_site = site(&t.root());
        let mut deferred = HttpConnection::new(deferred_site.clone(), Instant::ZERO);
        deferred.defer_file_io();
        let (got, opens) =
            exchange_deferred(&mut deferred, &deferred_site, Instant::from_millis(5), stream.as_bytes());
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&expected), "{stream:?}");
        assert_eq!(deferred.wants_close(), inline.wants_close(), "{stream:?}");
        let misses = deferred_site.files().stats().misses;
        assert_eq!(u64::from(opens), misses, "every miss, and only misses, deferred: {stream:?}");
        let heads: Vec<bool> = stream.split("\r\n\r\n").map(|r| r.starts_with("HEAD")).collect();
        statuses.extend(responses(&got, &heads).iter().map(|r| r.status));
    }
    // The streams cover success, ranges, refusals and a parse error.
    statuses.sort_unstable();
    statuses.dedup();
    assert_eq!(statuses, [200, 206, 400, 404, 416]);
    // A second request for a cached file is answered at once, without an open.
    let s = site(&t.root());
    let mut conn = HttpConnection::new(s.clone(), Instant::ZERO);
    conn.defer_file_io();
    let twice = "GET /inside.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /inside.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    let (out, opens) = exchange_deferred(&mut conn, &s, Instant::from_millis(5), twice.as_bytes());
    assert_eq!(opens, 1);
    let r = responses(&out, &[]);
    assert_eq!((r.len(), r[1].status, r[1].body.as_slice()), (2, 200, &b"inside"[..]));
}

#[test]
fn a_pending_open_survives_eof_and_is_dropped_by_timeouts() {
    let t = TempRoot::new();
    t.write("a", b"aaa");
    t.write("b", b"bbb");
    let s = site(&t.root());
    // The client half-closes right after its request: the answer still goes out.
    let mut conn = HttpConnection::new(s.clone(), Instant::ZERO);
    conn.defer_file_io();
    let request = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(conn.on_bytes(Instant::ZERO, request), request.len());
    conn.on_eof();
    assert!(!conn.wants_close(), "closed with a response owed");
    let path = conn.pending_open().unwrap().to_vec();
    conn.on_opened(Instant::from_millis(1), s.root().open_file(&path));
    let mut buf = [0u8; 512];
    let n = conn.poll_output(&mut buf);
    let r = responses(&buf[..n], &[]);
    assert_eq!((r[0].status, r[0].body.as_slice()), (200, &b"aaa"[..]));
    assert!(conn.wants_close());
    // An open that never comes back: the idle timeout aborts, and a late answer is ignored.
    let mut stuck = HttpConnection::new(s.clone(), Instant::ZERO);
    stuck.defer_file_io();
    stuck.on_bytes(Instant::ZERO, b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(stuck.pending_open(), Some(&b"/b"[..]), "/a is cached now, /b is not");
    stuck.on_timeout(Instant::ZERO + s.config().idle_timeout);
    assert!(stuck.wants_close() && stuck.was_aborted() && stuck.pending_open().is_none());
    stuck.on_opened(Instant::ZERO + s.config().idle_timeout, s.root().open_file(b"/b"));
    assert_eq!(stuck.poll_output(&mut buf), 0);
}

/// Does a deferring connection's upload jobs the way the serve transport's I/O thread does.
#[derive(Default)]
struct UploadThread {
    open: std::collections::HashMap<u64, (crate::http::files::Upload, std::sync::Weak<u64>)>,
}

impl UploadThread {
    fn run(&mut self, site: &Site, job: UploadJob) -> UploadAnswer {
        self.open.retain(|_, (_, alive)| alive.strong_count() > 0);
        match job {
            UploadJob::Begin { id, path, alive } => {
                let result = site.root().begin_upload(&path, id).map(|u| {
                    self.open.insert(id, (u, alive));
                });
                UploadAnswer::Begun { id, result }
            }
            UploadJob::Write { id, data } => {
                let ok = self.open.get_mut(&id).is_some_and(|(u, _)| u.write_all(&data).is_ok());
                UploadAnswer::Written { id, buf: data, ok }
            }
            UploadJob::Commit { id } => {
                let result = self.open.remove(&id).map_or(Err(FileError::NotFound), |(u, _)| u.commit());
                UploadAnswer::Committed { id, result }
            }
        }
    }

    /// Runs every queued job of `conn` and hands the answers back; true if there was any.
    fn drain(&mut self, site: &Site, conn: &mut HttpConnection, now: Instant) -> bool {
        let mut any = false;
        while let Some(job) = conn.take_upload_job() {
            let answer = self.run(site, job);
            conn.on_upload_answer(now, answer);
            any = true;
        }
        any
    }
}

/// A PUT through a deferring connection whose jobs are done at once, input in 100-byte pieces.
fn put_deferred(s: &Arc<Site>, io: &mut UploadThread, path: &str, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut conn = HttpConnection::new(s.clone(), Instant::ZERO);
    conn.defer_file_io();
    let mut req = format!("PUT {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").into_bytes();
    req.extend_from_slice(body);
    let (mut pending, mut out, mut buf) = (&req[..], Vec::new(), [0u8; 64]);
    loop {
        let used = conn.on_bytes(Instant::ZERO, &pending[..pending.len().min(100)]);
        pending = &pending[used..];
        let answered = io.drain(s, &mut conn, Instant::ZERO);
        let mut wrote = 0;
        while let n @ 1.. = conn.poll_output(&mut buf) {
            out.extend_from_slice(&buf[..n]);
            wrote += n;
        }
        if (used == 0 && wrote == 0 && !answered) || conn.wants_close() {
            return out;
        }
    }
}

#[test]
fn deferred_uploads_answer_like_inline_ones() {
    let body: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    let cases: [(&str, String, &[u8]); 6] = [
        ("/up/f.bin", format!("Content-Length: {}\r\nExpect: 100-continue\r\n", body.len()), &body),
        ("/up/f.bin", "Transfer-Encoding: chunked\r\n".into(), b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
        ("/up/g", "Transfer-Encoding: chunked\r\n".into(), b"3\r\nabcXX"),
        ("/nodir/f", "Content-Length: 1\r\n".into(), b"x"),
        ("/up", "Content-Length: 1\r\n".into(), b"x"),
        ("/empty", String::new(), b""),
    ];
    let (inline_root, deferred_root) = (TempRoot::new(), TempRoot::new());
    for t in [&inline_root, &deferred_root] {
        std::fs::create_dir(t.root().join("up")).unwrap();
    }
    let (si, sd) = (site(&inline_root.root()), site(&deferred_root.root()));
    let mut io = UploadThread::default();
    for (path, extra, body) in &cases {
        let mut conn = HttpConnection::new(si.clone(), Instant::ZERO);
        let mut req = format!("PUT {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").into_bytes();
        req.extend_from_slice(body);
        let expected = exchange(&mut conn, Instant::ZERO, &req);
        let got = put_deferred(&sd, &mut io, path, extra, body);
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&expected), "{path} {extra:?}");
    }
    io.open.retain(|_, (_, alive)| alive.strong_count() > 0);
    assert!(io.open.is_empty(), "an upload was left open");
    for dir in ["up", "."] {
        assert_eq!(dir_names(&deferred_root.root().join(dir)), dir_names(&inline_root.root().join(dir)));
    }
    assert_eq!(std::fs::read(deferred_root.root().join("up/f.bin")).unwrap(), b"abcde");
}

#[test]
fn a_deferred_upload_stops_reading_when_its_buffers_are_in_use() {
    let t = TempRoot::new();
    let s = site(&t.root());
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let mut req =
        format!("PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    req.extend_from_slice(&body);
    let mut conn = HttpConnection::new(s.clone(), Instant::ZERO);
    conn.defer_file_io();
    let mut io = UploadThread::default();
    let mut at = 0;
    // The head, then nothing until the temporary file exists.
    at += conn.on_bytes(Instant::ZERO, &req[..1000]);
    assert_eq!(conn.on_bytes(Instant::ZERO, &req[at..1000]), 0, "body read before the file exists");
    assert!(conn.awaits_file_io());
    let begin = conn.take_upload_job().unwrap();
    assert!(matches!(begin, UploadJob::Begin { .. }));
    let answer = io.run(&s, begin);
    conn.on_upload_answer(Instant::ZERO, answer);
    // Without answers, exactly UPLOAD_BUFFERS pieces are taken, then the input stalls.
    let mut held = Vec::new();
    while let n @ 1.. = conn.on_bytes(Instant::ZERO, &req[at..(at + 1000).min(req.len())]) {
        at += n;
        held.extend(std::iter::from_fn(|| conn.take_upload_job()));
        assert!(held.len() <= UPLOAD_BUFFERS);
    }
    assert_eq!(held.len(), UPLOAD_BUFFERS);
    // One buffer back: one more piece.
    let answer = io.run(&s, held.remove(0));
    conn.on_upload_answer(Instant::ZERO, answer);
    let n = conn.on_bytes(Instant::ZERO, &req[at..at + 1000]);
    assert_eq!(n, 1000);
    at += n;
    held.extend(std::iter::from_fn(|| conn.take_upload_job()));
    for job in held.drain(..) {
        let answer = io.run(&s, job);
        conn.on_upload_answer(Instant::ZERO, answer);
    }
    while at < req.len() {
        at += conn.on_bytes(Instant::ZERO, &req[at..(at + 1000).min(req.len())]);
        io.drain(&s, &mut conn, Instant::ZERO);
    }
    assert_eq!(conn.most_upload_buffers(), UPLOAD_BUFFERS);
    let mut out = [0u8; 256];
    let n = conn.poll_output(&mut out);
    assert_eq!(responses(&out[..n], &[])[0].status, 201);
    assert!(std::fs::read(t.root().join("big")).unwrap() == body, "the stored file differs");
    assert_eq!(dir_names(&t.root()), ["big"]);
    // Cut off mid-body: the upload is let go (its temporary file is deleted by the thread).
    let mut conn = HttpConnection::new(s.clone(), Instant::ZERO);
    conn.defer_file_io();
    conn.on_bytes(Instant::ZERO, &req[..1000]);
    io.drain(&s, &mut conn, Instant::ZERO);
    conn.on_bytes(Instant::ZERO, &req[..0]);
    assert!(conn.on_bytes(Instant::ZERO, &req[1000..3000]) > 0);
    conn.on_eof();
    assert!(!conn.has_upload_jobs(), "unwritten buffers of a dropped upload are not written");
    assert!(conn.wants_close());
    io.open.retain(|_, (_, alive)| alive.strong_count() > 0);
    assert!(io.open.is_empty());
    assert_eq!(dir_names(&t.root()), ["big"]);
    assert!(std::fs::read(t.root().join("big")).unwrap() == body);
}

#[test]
fn a_reset_connection_answers_byte_for_byte_like_a_fresh_one() {
    let t = TempRoot::new();
    t.write("a", b"first file");
    t.write("bb", b"the second, longer file");
    let s = site(&t.root());
    let now = Instant::from_millis(10);
    // What a connection may hold when it ends: a partial head, an undrained response, a body
    // being skipped, a closed connection with a pipelined request behind it.
    let leftovers = [
        "GET /a HTTP/1.1\r\nHost: x\r\nX-Long: aaaaaaaaaaaaaaaaaaaa",
        "GET /bb HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc",
        "GET /a HTTP/1.0\r\n\r\nGET /bb HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    let requests =
        ["GET /bb HTTP/1.1\r\nHost: x\r\n\r\n", "GET /a HTTP/1.1\r\nHost: x\r\nRange: bytes=2-4\r\n\r\n"];
    let mut conn = HttpConnection::new(s.clone(), Instant::ZERO);
    for leftover in leftovers {
        for request in requests {
            conn.on_bytes(Instant::from_millis(1), leftover.as_bytes());
            conn.reset(now);
            assert_eq!((conn.requests(), conn.wants_close()), (0, false), "{leftover:?}");
            assert!(matches!(conn.peek_output(), Output::Idle), "{leftover:?}");
            let reused = exchange(&mut conn, now, request.as_bytes());
            let fresh = exchange(&mut HttpConnection::new(s.clone(), now), now, request.as_bytes());
            assert_eq!(reused, fresh, "after {leftover:?}");
            assert_eq!(responses(&reused, &[]).len(), 1, "after {leftover:?}");
        }
    }
}
