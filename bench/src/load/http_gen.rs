//! Our HTTP load generator on kernel sockets: one thread, non-blocking sockets, edge-triggered
//! epoll, `connections` connections each doing GET → full response → (close and reconnect | next
//! GET). Counts completed requests, records each one's latency in an HDR histogram
//! (connect-to-close for close-after-each, request-to-last-byte for keep-alive).
//!
//! Promises: bounded by `secs` (plus one epoll tick); memory fixed by the connection count
//! (one head buffer each, bounded); a connection that errs, sends a bad response or makes no
//! progress for [`STALL`] is counted in `errors` and replaced. Must not: pipeline requests (the
//! latency would then measure queueing in our own client).

use std::io::{self, Read, Write};
use std::net::{SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::{LoadResult, Percentiles};

/// A connection that makes no progress for this long is written off.
const STALL: Duration = Duration::from_secs(2);
/// Longest response head we accept.
const MAX_HEAD: usize = 8 * 1024;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpLoad {
    pub addr: SocketAddrV4,
    pub path: String,
    pub connections: u32,
    pub secs: f64,
    /// Reuse each connection (keep-alive) or close after every response.
    pub keep_alive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    Sending,
    Receiving,
}

#[derive(Debug)]
struct Slot {
    stream: Option<TcpStream>,
    state: State,
    /// When the measured interval began (connect or request start).
    started: Instant,
    last_progress: Instant,
    written: usize,
    response: Response,
}

/// One HTTP response being read: its head until complete, then how much body is still due.
/// Shared with the bypass generator.
#[derive(Debug, Default)]
pub(super) struct Response {
    head: Vec<u8>,
    /// Body bytes still expected once the head is parsed.
    pub(super) body_left: Option<u64>,
    pub(super) bytes: u64,
}

/// What driving a slot led to.
enum Step {
    Wait,
    /// A close-after-each exchange finished (the server closed after its response).
    Closed,
    Failed,
}

struct Generator<'a> {
    load: &'a HttpLoad,
    request: Vec<u8>,
    epoll: OwnedFd,
    slots: Vec<Slot>,
    histogram: Histogram<u64>,
    result: LoadResult,
    scratch: Vec<u8>,
}

pub fn run_http_load(load: &HttpLoad) -> anyhow::Result<LoadResult> {
    let connection = if load.keep_alive { "keep-alive" } else { "close" };
    let request =
        format!("GET {} HTTP/1.1\r\nHost: {}\r\nConnection: {connection}\r\n\r\n", load.path, load.addr.ip());
    let now = Instant::now();
    let mut g = Generator {
        load,
        request: request.into_bytes(),
        epoll: new_epoll().context("epoll_create1")?,
        slots: (0..load.connections.max(1)).map(|_| Slot::new(now)).collect(),
        histogram: Histogram::new_with_bounds(1, 60_000_000, 3).context("histogram bounds")?,
        result: LoadResult::default(),
        scratch: vec![0; 256 * 1024],
    };
    g.run()?;
    Ok(g.result)
}

impl Slot {
    fn new(now: Instant) -> Slot {
        Slot {
            stream: None,
            state: State::Connecting,
            started: now,
            last_progress: now,
            written: 0,
            response: Response::default(),
        }
    }

    fn reset_exchange(&mut self, now: Instant) {
        self.started = now;
        self.written = 0;
        self.response.reset();
    }
}

impl Response {
    pub(super) fn reset(&mut self) {
        self.head.clear();
        self.body_left = None;
        self.bytes = 0;
    }

    /// True once the whole body has arrived.
    pub(super) fn complete(&self) -> bool {
        self.body_left == Some(0)
    }

    /// Takes in response bytes; `Err` on a malformed or non-200 response or excess bytes.
    pub(super) fn absorb(&mut self, data: &[u8]) -> Result<(), ()> {
        self.bytes += data.len() as u64;
        match self.body_left {
            Some(left) => self.body_left = Some(left.checked_sub(data.len() as u64).ok_or(())?),
            None => {
                self.head.extend_from_slice(data);
                let Some(end) = self.head.windows(4).position(|w| w == b"\r\n\r\n") else {
                    return if self.head.len() > MAX_HEAD { Err(()) } else { Ok(()) };
                };
                let length = parse_head(&self.head[..end + 4]).ok_or(())?;
                let extra = (self.head.len() - end - 4) as u64;
                self.body_left = Some(length.checked_sub(extra).ok_or(())?);
            }
        }
        Ok(())
    }
}

/// Status 200 and the Content-Length of a response head.
fn parse_head(head: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let status = lines.next()?;
    if !(status.starts_with("HTTP/1.1 200") || status.starts_with("HTTP/1.0 200")) {
        return None;
    }
    lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
    })
}

impl Generator<'_> {
    fn run(&mut self) -> anyhow::Result<()> {
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(self.load.secs.max(0.0));
        for i in 0..self.slots.len() {
            self.open(i, start);
        }
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 512];
        let mut next_sweep = start + Duration::from_millis(100);
        while Instant::now() < deadline {
            // SAFETY: `events` is a writable array of the length passed.
            let n = unsafe {
                libc::epoll_wait(self.epoll.as_raw_fd(), events.as_mut_ptr(), events.len() as i32, 10)
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e).context("epoll_wait");
            }
            let now = Instant::now();
            for ev in &events[..n as usize] {
                let i = ev.u64 as usize;
                if i < self.slots.len() && self.slots[i].stream.is_some() {
                    self.drive_and_settle(i, now);
                }
            }
            if now >= next_sweep {
                self.sweep_stalled(now);
                next_sweep = now + Duration::from_millis(100);
            }
        }
        self.result.secs = start.elapsed().as_secs_f64();
        self.result.latency_us = Percentiles::of(&self.histogram);
        Ok(())
    }

    fn sweep_stalled(&mut self, now: Instant) {
        for i in 0..self.slots.len() {
            if now.duration_since(self.slots[i].last_progress) > STALL {
                self.result.errors += 1;
                self.open(i, now);
            }
        }
    }

    fn drive_and_settle(&mut self, i: usize, now: Instant) {
        match self.drive(i, now) {
            Step::Wait => {}
            Step::Closed => {
                self.record(i, now);
                self.open(i, now);
            }
            Step::Failed => {
                self.result.errors += 1;
                self.open(i, now);
            }
        }
    }

    fn record(&mut self, i: usize, now: Instant) {
        let slot = &self.slots[i];
        let us = now.duration_since(slot.started).as_micros() as u64;
        self.histogram.saturating_record(us.max(1));
        self.result.requests += 1;
        self.result.bytes += slot.response.bytes;
    }

    /// (Re)opens slot `i`: a fresh non-blocking connect, registered edge-triggered.
    fn open(&mut self, i: usize, now: Instant) {
        let slot = &mut self.slots[i];
        slot.stream = None; // closes the old socket, which also leaves the epoll set
        slot.reset_exchange(now);
        slot.last_progress = now;
        slot.state = State::Connecting;
        match connect_registered(self.load.addr, &self.epoll, i) {
            Ok(stream) => {
                slot.stream = Some(stream);
                self.drive_and_settle(i, now);
            }
            // Out of ports or descriptors: count it; the stall sweep retries the slot.
            Err(_) => self.result.errors += 1,
        }
    }

    /// Advances slot `i` until the socket would block or the exchange ends.
    fn drive(&mut self, i: usize, now: Instant) -> Step {
        let keep_alive = self.load.keep_alive;
        let slot = &mut self.slots[i];
        // Out of the slot while in use, so the slot's other fields can change; put back below.
        let Some(mut stream) = slot.stream.take() else { return Step::Failed };
        let step = loop {
            match slot.state {
                State::Connecting => match connect_done(&stream) {
                    Ok(true) => slot.state = State::Sending,
                    Ok(false) => break Step::Wait,
                    Err(_) => break Step::Failed,
                },
                State::Sending => match stream.write(&self.request[slot.written..]) {
                    Ok(n) => {
                        slot.written += n;
                        slot.last_progress = now;
                        if slot.written == self.request.len() {
                            slot.state = State::Receiving;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Step::Wait,
                    Err(_) => break Step::Failed,
                },
                State::Receiving => match stream.read(&mut self.scratch) {
                    Ok(0) => {
                        break if slot.response.complete() && !keep_alive {
                            Step::Closed
                        } else {
                            Step::Failed
                        }
                    }
                    Ok(n) => {
                        slot.last_progress = now;
                        if slot.response.absorb(&self.scratch[..n]).is_err() {
                            break Step::Failed;
                        }
                        if keep_alive && slot.response.complete() {
                            let us = now.duration_since(slot.started).as_micros() as u64;
                            self.histogram.saturating_record(us.max(1));
                            self.result.requests += 1;
                            self.result.bytes += slot.response.bytes;
                            slot.reset_exchange(now);
                            slot.state = State::Sending;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Step::Wait,
                    Err(_) => break Step::Failed,
                },
            }
        };
        slot.stream = Some(stream);
        step
    }
}

/// A new epoll instance (close-on-exec).
pub(super) fn new_epoll() -> io::Result<OwnedFd> {
    // SAFETY: epoll_create1 has no preconditions; the result is checked.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if epfd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(epfd) })
}

/// A non-blocking connect to `addr`, registered edge-triggered in `epoll` under `token`.
pub(super) fn connect_registered(addr: SocketAddrV4, epoll: &OwnedFd, token: usize) -> io::Result<TcpStream> {
    let stream = connect_nonblocking(addr)?;
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLET | libc::EPOLLRDHUP) as u32,
        u64: token as u64,
    };
    // SAFETY: both descriptors are open; `ev` is a valid epoll_event.
    let rc = unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, stream.as_raw_fd(), &mut ev) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(stream)
}

fn connect_nonblocking(addr: SocketAddrV4) -> io::Result<TcpStream> {
    // SAFETY: plain socket creation; the result is checked.
    let fd = unsafe {
        libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0)
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nothing else owns; TcpStream closes it on drop.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    stream.set_nodelay(true)?;
    let sa = sockaddr(addr);
    // SAFETY: `sa` is a valid sockaddr_in of the length passed.
    let rc = unsafe {
        libc::connect(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
    }
    Ok(stream)
}

/// A second `connect` tells a pending connection from a finished or failed one.
pub(super) fn connect_done(stream: &TcpStream) -> io::Result<bool> {
    let sa = sockaddr(match stream.peer_addr() {
        Ok(std::net::SocketAddr::V4(a)) => a,
        // Not connected yet: peer_addr fails with ENOTCONN.
        _ => {
            return match stream.take_error()? {
                Some(e) => Err(e),
                None => Ok(false),
            }
        }
    });
    // SAFETY: as in connect_nonblocking.
    let rc = unsafe {
        libc::connect(
            stream.as_raw_fd(),
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        )
    };
    let e = io::Error::last_os_error();
    match (rc, e.raw_os_error()) {
        (0, _) | (_, Some(libc::EISCONN)) => Ok(true),
        (_, Some(libc::EALREADY | libc::EINPROGRESS)) => Ok(false),
        _ => Err(e),
    }
}

fn sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(addr.ip().octets()) },
        sin_zero: [0; 8],
    }
}

/// GETs `path` until a 200 with a complete body arrives or `timeout_ms` passes.
pub fn probe(addr: SocketAddrV4, path: &str, timeout_ms: u64) -> anyhow::Result<LoadResult> {
    let start = Instant::now();
    let deadline = start + Duration::from_millis(timeout_ms);
    let mut last_error = String::from("no attempt");
    while Instant::now() < deadline {
        match probe_once(addr, path) {
            Ok(bytes) => {
                return Ok(LoadResult {
                    secs: start.elapsed().as_secs_f64(),
                    bytes,
                    requests: 1,
                    ..LoadResult::default()
                })
            }
            Err(e) => last_error = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    anyhow::bail!("no 200 from http://{addr}{path} within {timeout_ms} ms (last: {last_error})")
}

fn probe_once(addr: SocketAddrV4, path: &str) -> anyhow::Result<u64> {
    let mut s = TcpStream::connect_timeout(&addr.into(), Duration::from_millis(500))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", addr.ip())?;
    let mut response = Response::default();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            anyhow::ensure!(response.complete(), "response cut short");
            return Ok(response.bytes);
        }
        response.absorb(&buf[..n]).map_err(|()| anyhow::anyhow!("bad response"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_parsing_and_body_accounting() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"), Some(5));
        assert_eq!(parse_head(b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\n"), None);
        let mut s = Response::default();
        assert!(s.absorb(b"HTTP/1.1 200 OK\r\nContent-Le").is_ok());
        assert!(s.absorb(b"ngth: 4\r\n\r\nab").is_ok());
        assert_eq!(s.body_left, Some(2));
        assert!(s.absorb(b"cd").is_ok());
        assert!(s.complete());
        assert!(s.absorb(b"x").is_err());
    }
}
