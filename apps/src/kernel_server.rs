//! The HTTP core on Linux kernel sockets: one thread, non-blocking sockets, level-triggered epoll.
//!
//! Owns the socket side only — accepting, reading into a per-connection receive buffer, writing
//! response heads with `send` and file ranges with `sendfile(2)` (what a fair kernel baseline
//! does), deadlines, and lingering close. Every protocol decision is made by
//! [`HttpConnection`]; this loop reads the clock once per iteration and passes it in.
//!
//! Promises: bounded memory (at most `max_connections` connections, each with one fixed receive
//! buffer), no blocking call other than `epoll_wait` (≤ 50 ms, so `stop` is noticed promptly),
//! and every refused or failed connection counted in [`KernelServerStats`].

use crate::http::{HttpConfig, HttpConnection, Output, Site};
use anyhow::Context;
use linerate_stack::time::{Duration, Instant};
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct KernelServerConfig {
    pub listen: SocketAddr,
    /// Directory to serve (and store uploads in).
    pub root: PathBuf,
    /// CPU to pin the serving thread to.
    pub core: Option<usize>,
    pub http: HttpConfig,
    /// Connections beyond this are accepted and closed at once (counted as refused).
    pub max_connections: usize,
    /// Per-connection receive buffer; also the most pipelined input held per connection.
    pub recv_buffer: usize,
}

impl KernelServerConfig {
    pub fn new(listen: SocketAddr, root: PathBuf) -> Self {
        KernelServerConfig {
            listen,
            root,
            core: None,
            http: HttpConfig::default(),
            max_connections: 10_000,
            recv_buffer: 16 * 1024,
        }
    }
}

/// Counters reported when the server stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelServerStats {
    pub accepted: u64,
    /// Connections closed at once because `max_connections` were open.
    pub refused: u64,
    pub requests: u64,
    /// Connections cut short by a timeout, a file error or a socket error.
    pub aborted: u64,
    /// `accept` failures other than "nothing to accept" (EMFILE, ECONNABORTED…).
    pub accept_errors: u64,
}

/// How long a closing connection may keep sending us data after our FIN.
const LINGER: Duration = Duration::from_secs(2);
const LISTENER_TOKEN: u64 = u64::MAX;
const EVENT_BATCH: usize = 256;
/// Deadlines are coarse (seconds), so checking them ten times a second is plenty.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

struct Conn {
    stream: TcpStream,
    http: HttpConnection,
    rbuf: Box<[u8]>,
    rstart: usize,
    rend: usize,
    peer_eof: bool,
    eof_delivered: bool,
    /// Last write would block: wait for EPOLLOUT.
    write_blocked: bool,
    interest: u32,
    /// Set once our FIN is sent; the connection is dropped at EOF or this deadline.
    linger_until: Option<Instant>,
    generation: u32,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("fd", &self.stream.as_raw_fd()).finish_non_exhaustive()
    }
}

/// A bound server, ready to [`run`](KernelServer::run).
#[derive(Debug)]
pub struct KernelServer {
    config: KernelServerConfig,
    listener: TcpListener,
    epoll: OwnedFd,
    site: Arc<Site>,
    clock_origin: std::time::Instant,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    generation: u32,
    open: usize,
    stats: KernelServerStats,
}

/// Binds and serves until `stop` becomes true.
pub fn run_kernel_server(config: KernelServerConfig, stop: &AtomicBool) -> anyhow::Result<()> {
    KernelServer::bind(config)?.run(stop).map(|_| ())
}

impl KernelServer {
    /// Opens the root and binds the listening socket (in the calling thread's network namespace).
    pub fn bind(config: KernelServerConfig) -> anyhow::Result<KernelServer> {
        let clock_origin = std::time::Instant::now();
        let unix_now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("system clock is before 1970")?;
        let site = Site::open(&config.root, config.http, unix_now.as_nanos() as u64).with_context(|| {
            format!("cannot serve {}: check that it is a readable directory", config.root.display())
        })?;
        let listener = TcpListener::bind(config.listen).with_context(|| {
            format!("cannot listen on {}: is the address local and the port free?", config.listen)
        })?;
        listener.set_nonblocking(true)?;
        // SAFETY: epoll_create1 has no preconditions; the result is checked before use.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            return Err(io::Error::last_os_error()).context("epoll_create1");
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(epfd) };
        epoll_ctl(&epoll, libc::EPOLL_CTL_ADD, listener.as_raw_fd(), libc::EPOLLIN as u32, LISTENER_TOKEN)?;
        Ok(KernelServer {
            config,
            listener,
            epoll,
            site: Arc::new(site),
            clock_origin,
            conns: Vec::new(),
            free: Vec::new(),
            generation: 0,
            open: 0,
            stats: KernelServerStats::default(),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` is set; pins the calling thread first if a core was configured.
    pub fn run(mut self, stop: &AtomicBool) -> anyhow::Result<KernelServerStats> {
        if let Some(core) = self.config.core {
            pin_to_core(core)?;
        }
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENT_BATCH];
        let mut next_sweep = Instant::ZERO;
        while !stop.load(Ordering::Relaxed) {
            // SAFETY: `events` is a writable array of EVENT_BATCH epoll_event.
            let n = unsafe {
                libc::epoll_wait(self.epoll.as_raw_fd(), events.as_mut_ptr(), EVENT_BATCH as i32, 50)
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err).context("epoll_wait");
            }
            let now = self.now();
            for ev in &events[..n as usize] {
                let (token, flags) = (ev.u64, ev.events);
                if token == LISTENER_TOKEN {
                    self.accept_all(now);
                } else {
                    self.on_event(token, flags, now);
                }
            }
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + SWEEP_INTERVAL;
            }
        }
        // Connections still open at the stop count too (a client may not have closed yet).
        let open: u64 = self.conns.iter().flatten().map(|c| c.http.requests()).sum();
        self.stats.requests += open;
        Ok(self.stats)
    }

    fn now(&self) -> Instant {
        Instant::from_nanos(self.clock_origin.elapsed().as_nanos() as u64)
    }

    fn accept_all(&mut self, now: Instant) {
        loop {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // ECONNABORTED, EMFILE…: count it and retry on the next readiness event.
                Err(_) => {
                    self.stats.accept_errors += 1;
                    return;
                }
            };
            self.stats.accepted += 1;
            if self.open >= self.config.max_connections || self.add(stream, now).is_err() {
                self.stats.refused += 1;
            }
        }
    }

    fn add(&mut self, stream: TcpStream, now: Instant) -> io::Result<()> {
        stream.set_nonblocking(true)?;
        stream.set_nodelay(true)?;
        let idx = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        self.generation = self.generation.wrapping_add(1);
        let interest = (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
        let token = u64::from(self.generation) << 32 | idx as u64;
        if let Err(e) = epoll_ctl(&self.epoll, libc::EPOLL_CTL_ADD, stream.as_raw_fd(), interest, token) {
            self.free.push(idx);
            return Err(e);
        }
        self.conns[idx] = Some(Conn {
            stream,
            http: HttpConnection::new(self.site.clone(), now),
            rbuf: vec![0u8; self.config.recv_buffer.max(1024)].into_boxed_slice(),
            rstart: 0,
            rend: 0,
            peer_eof: false,
            eof_delivered: false,
            write_blocked: false,
            interest,
            linger_until: None,
            generation: self.generation,
        });
        self.open += 1;
        Ok(())
    }

    fn on_event(&mut self, token: u64, flags: u32, now: Instant) {
        let idx = (token & 0xffff_ffff) as usize;
        let generation = (token >> 32) as u32;
        let Some(Some(conn)) = self.conns.get_mut(idx) else { return };
        if conn.generation != generation {
            return; // a stale event for a connection closed earlier in this batch
        }
        if flags & libc::EPOLLOUT as u32 != 0 {
            conn.write_blocked = false;
        }
        let alive = if conn.linger_until.is_some() { drain_lingering(conn) } else { serve(conn, now) };
        self.settle(idx, alive, now);
    }

    /// Applies the outcome of serving a connection: close it, start lingering, or re-arm epoll.
    fn settle(&mut self, idx: usize, alive: Result<(), ()>, now: Instant) {
        let Some(conn) = self.conns[idx].as_mut() else { return };
        if alive.is_err() {
            return self.close(idx);
        }
        if conn.linger_until.is_none() && conn.http.wants_close() {
            if conn.http.was_aborted() || conn.peer_eof {
                return self.close(idx);
            }
            // Lingering close: half-close and read until the peer's FIN, so unread request
            // bytes in our receive queue cannot turn our FIN into a RST that destroys the
            // response in flight.
            let _ = conn.stream.shutdown(Shutdown::Write);
            conn.linger_until = Some(now + LINGER);
        }
        let want = if conn.linger_until.is_some() {
            libc::EPOLLIN | libc::EPOLLRDHUP
        } else {
            let mut w = 0;
            if !conn.peer_eof && conn.rend - conn.rstart < conn.rbuf.len() {
                w |= libc::EPOLLIN | libc::EPOLLRDHUP;
            }
            if conn.write_blocked {
                w |= libc::EPOLLOUT;
            }
            w
        } as u32;
        if want != conn.interest {
            let token = u64::from(conn.generation) << 32 | idx as u64;
            if epoll_ctl(&self.epoll, libc::EPOLL_CTL_MOD, conn.stream.as_raw_fd(), want, token).is_err() {
                return self.close(idx);
            }
            conn.interest = want;
        }
    }

    fn close(&mut self, idx: usize) {
        if let Some(conn) = self.conns[idx].take() {
            let _ = epoll_ctl(&self.epoll, libc::EPOLL_CTL_DEL, conn.stream.as_raw_fd(), 0, 0);
            self.stats.requests += conn.http.requests();
            if conn.http.was_aborted() {
                self.stats.aborted += 1;
            }
            self.free.push(idx);
            self.open -= 1;
        }
    }

    fn sweep(&mut self, now: Instant) {
        for idx in 0..self.conns.len() {
            let Some(conn) = self.conns[idx].as_mut() else { continue };
            let alive = match conn.linger_until {
                Some(until) if now >= until => Err(()),
                Some(_) => Ok(()),
                None => match conn.http.next_deadline() {
                    Some(deadline) if now >= deadline => {
                        conn.http.on_timeout(now);
                        serve(conn, now)
                    }
                    _ => Ok(()),
                },
            };
            self.settle(idx, alive, now);
        }
    }
}

/// Reads what is available, feeds the core and writes what it produces, until nothing moves.
/// `Err` means the socket failed and the connection should be dropped.
fn serve(conn: &mut Conn, now: Instant) -> Result<(), ()> {
    loop {
        let mut progress = read_available(conn)?;
        if conn.rstart < conn.rend {
            let used = conn.http.on_bytes(now, &conn.rbuf[conn.rstart..conn.rend]);
            conn.rstart += used;
            progress |= used > 0;
            if conn.rstart == conn.rend {
                (conn.rstart, conn.rend) = (0, 0);
            }
        }
        if conn.peer_eof && conn.rstart == conn.rend && !conn.eof_delivered {
            conn.http.on_eof();
            conn.eof_delivered = true;
        }
        progress |= write_available(conn)?;
        if !progress || conn.http.wants_close() {
            return Ok(());
        }
    }
}

/// Reads into the free tail of the receive buffer; returns whether anything arrived.
fn read_available(conn: &mut Conn) -> Result<bool, ()> {
    if conn.peer_eof {
        return Ok(false);
    }
    if conn.rstart > 0 {
        conn.rbuf.copy_within(conn.rstart..conn.rend, 0);
        conn.rend -= conn.rstart;
        conn.rstart = 0;
    }
    let mut got = false;
    while conn.rend < conn.rbuf.len() {
        match conn.stream.read(&mut conn.rbuf[conn.rend..]) {
            Ok(0) => {
                conn.peer_eof = true;
                break;
            }
            Ok(n) => {
                conn.rend += n;
                got = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(()),
        }
    }
    Ok(got)
}

/// Writes pending output until the socket would block; returns whether anything was written.
fn write_available(conn: &mut Conn) -> Result<bool, ()> {
    let mut wrote = false;
    while !conn.write_blocked {
        let fd = conn.stream.as_raw_fd();
        let result = match conn.http.peek_output() {
            Output::Idle => break,
            Output::Bytes(bytes) => {
                let flags = libc::MSG_NOSIGNAL | if conn.http.body_follows() { libc::MSG_MORE } else { 0 };
                // SAFETY: `bytes` is a live slice for the duration of the call.
                let n = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), flags) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            }
            Output::File { file, offset, len } => {
                let mut off = offset as libc::off_t;
                let count = len.min(1 << 30) as usize;
                // SAFETY: both descriptors are live; `off` is a valid off_t the kernel updates.
                let n = unsafe { libc::sendfile(fd, file.as_fd().as_raw_fd(), &mut off, count) };
                match n {
                    0 => return Err(()), // the file shrank: Content-Length can't be honoured
                    n if n < 0 => Err(io::Error::last_os_error()),
                    n => Ok(n as usize),
                }
            }
        };
        match result {
            Ok(n) => {
                conn.http.advance_output(n);
                wrote = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => conn.write_blocked = true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
    Ok(wrote)
}

/// Discards input on a half-closed connection; `Err` once the peer has closed too.
fn drain_lingering(conn: &mut Conn) -> Result<(), ()> {
    let mut scratch = [0u8; 4096];
    loop {
        match conn.stream.read(&mut scratch) {
            Ok(0) => return Err(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
}

fn epoll_ctl(epoll: &OwnedFd, op: i32, fd: i32, events: u32, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: token };
    // SAFETY: `ev` is a valid epoll_event; the kernel copies it.
    if unsafe { libc::epoll_ctl(epoll.as_raw_fd(), op, fd, &mut ev) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Pins the calling thread to `core`.
pub fn pin_to_core(core: usize) -> anyhow::Result<()> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if core >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
        anyhow::bail!("core {core} is beyond the CPU set size");
    }
    // SAFETY: `core` is within the set, checked above.
    unsafe { libc::CPU_SET(core, &mut set) };
    // SAFETY: pid 0 is the calling thread; `set` is a valid cpu_set_t.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("cannot pin to core {core}: does it exist?"));
    }
    Ok(())
}
