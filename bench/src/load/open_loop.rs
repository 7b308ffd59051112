//! The open-loop keep-alive generator on kernel sockets: `connections` keep-alive connections,
//! requests due on a fixed timetable at a total rate `rate_per_sec` (round-robin over the
//! connections, see [`super::timetable`]), each request's latency counted from when it was due.
//! The closed-loop generator (`http_gen`) measures how fast a server answers 64 requests always
//! in flight, so its latency is its own queue (Little's law); this one offers both servers the
//! same arrivals, so its latency is the server's at that load.
//!
//! One thread, non-blocking sockets, edge-triggered epoll, woken at the next due time with a
//! nanosecond timeout (`epoll_pwait2`, timer slack 1 ns). The connections are opened first and
//! the timetable starts once they are up (or after [`CONNECT_WAIT`]), so handshakes are not in
//! the latencies; a connection that reconnects later keeps its due requests, and the wait counts.
//!
//! Promises: bounded by `secs` + [`CONNECT_WAIT`] + [`DRAIN`] (plus one tick); memory fixed by
//! the connection count; at most one request outstanding per connection; a connection that
//! errs, sends a bad response, is closed by the server or makes no progress for [`STALL`] is
//! counted in `errors`, its outstanding request given up, and it is reopened; requests still
//! due at the end are counted (`unfinished`) and in the latency with their wait so far. Must
//! not: pipeline, or send to any address but the job's.

use std::io::{self, Read, Write};
use std::net::{SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::http_gen::{connect_done, connect_registered, new_epoll, Response};
use super::timetable::{OpenLoopBook, Timetable};
use super::{LoadResult, OpenLoopStats, Percentiles};

/// A connection with a request outstanding that makes no progress for this long is written off.
const STALL: Duration = Duration::from_secs(2);
/// Longest wait for the connections to come up before the timetable starts anyway.
const CONNECT_WAIT: Duration = Duration::from_secs(1);
/// After the last request is due, how long the outstanding ones may take to complete.
const DRAIN: Duration = Duration::from_secs(1);
/// Longest sleep, so the stall sweep and the end of the run are noticed.
const TICK: Duration = Duration::from_millis(10);

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenLoopLoad {
    pub addr: SocketAddrV4,
    pub path: String,
    pub connections: u32,
    /// How long requests keep becoming due.
    pub secs: f64,
    /// Total offered rate over all connections.
    pub rate_per_sec: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    /// Connected, no request outstanding.
    Idle,
    Sending,
    Receiving,
}

#[derive(Debug)]
struct Slot {
    stream: Option<TcpStream>,
    state: State,
    last_progress: Instant,
    written: usize,
    response: Response,
}

/// What driving a slot led to.
enum Step {
    Wait,
    Failed,
}

struct Generator<'a> {
    load: &'a OpenLoopLoad,
    request: Vec<u8>,
    epoll: OwnedFd,
    slots: Vec<Slot>,
    book: OpenLoopBook,
    /// When the timetable started (`None` while the connections come up).
    t0: Option<Instant>,
    errors: u64,
    bytes: u64,
    last_completion: Duration,
    /// The connections with a newly due request (reused, at most one entry per connection).
    released: Vec<usize>,
    scratch: Vec<u8>,
}

pub fn run_open_loop(load: &OpenLoopLoad) -> anyhow::Result<LoadResult> {
    let request =
        format!("GET {} HTTP/1.1\r\nHost: {}\r\nConnection: keep-alive\r\n\r\n", load.path, load.addr.ip());
    // Wake-ups at the due times, not up to 50 µs after them (the default slack). Best effort:
    // the send delay histogram shows what lateness is left.
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and touches only this thread.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
    let window = Duration::from_secs_f64(load.secs.clamp(0.0, 3600.0));
    let table = Timetable::new(load.rate_per_sec, load.connections, window);
    let table_connections = table.connections();
    let now = Instant::now();
    let mut g = Generator {
        load,
        request: request.into_bytes(),
        epoll: new_epoll().context("epoll_create1")?,
        slots: (0..table_connections).map(|_| Slot::new(now)).collect(),
        book: OpenLoopBook::new(table).context("histogram bounds")?,
        t0: None,
        errors: 0,
        bytes: 0,
        last_completion: Duration::ZERO,
        released: Vec::with_capacity(table_connections),
        scratch: vec![0; 64 * 1024],
    };
    g.run(window)
}

impl Slot {
    fn new(now: Instant) -> Slot {
        Slot {
            stream: None,
            state: State::Connecting,
            last_progress: now,
            written: 0,
            response: Response::default(),
        }
    }
}

impl Generator<'_> {
    fn run(&mut self, window: Duration) -> anyhow::Result<LoadResult> {
        let (cpu0, waited0) = (crate::sys::thread_cpu_secs(), run_queue_secs());
        let opened = Instant::now();
        for i in 0..self.slots.len() {
            self.open(i, opened);
        }
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        while self.slots.iter().any(|s| s.state == State::Connecting) && opened.elapsed() < CONNECT_WAIT {
            self.wait_and_drive(&mut events, TICK)?;
        }
        let t0 = Instant::now();
        self.t0 = Some(t0);
        let mut next_sweep = t0 + Duration::from_millis(100);
        loop {
            let now = Instant::now();
            let elapsed = now.duration_since(t0);
            let mut released = std::mem::take(&mut self.released);
            released.clear();
            released.extend(self.book.release(elapsed));
            for &i in &released {
                if self.slots[i].state == State::Idle {
                    self.drive_and_settle(i, now);
                }
            }
            self.released = released;
            if elapsed >= window && (self.book.all_done(elapsed) || elapsed >= window + DRAIN) {
                break;
            }
            if now >= next_sweep {
                self.sweep_stalled(now);
                next_sweep = now + Duration::from_millis(100);
            }
            let timeout = self.book.next_wake().map_or(TICK, |w| w.saturating_sub(elapsed)).min(TICK);
            self.wait_and_drive(&mut events, timeout)?;
        }
        let end = t0.elapsed();
        let unfinished = self.book.finish(end);
        let mut result = self.result(window, unfinished);
        if let Some(ol) = &mut result.open_loop {
            ol.cpu_secs = crate::sys::thread_cpu_secs() - cpu0;
            ol.run_queue_secs = run_queue_secs() - waited0;
        }
        Ok(result)
    }

    fn result(&self, window: Duration, unfinished: u64) -> LoadResult {
        let l = &self.book.latencies;
        let table = self.book.table();
        LoadResult {
            // Completions over the time they took: the offered rate when the server keeps up,
            // its capacity when it does not (the backlog then drains into DRAIN).
            secs: window.max(self.last_completion).as_secs_f64(),
            bytes: self.bytes,
            requests: self.book.completed,
            errors: self.errors,
            latency_us: Percentiles::of(&l.response),
            cpu: 0,
            open_loop: Some(OpenLoopStats {
                offered_per_sec: table.rate_per_sec(),
                scheduled: table.total(),
                unfinished,
                abandoned: self.book.abandoned,
                send_delay_us: Percentiles::of(&l.send_delay),
                service_us: Percentiles::of(&l.service),
                cpu_secs: 0.0,
                run_queue_secs: 0.0,
            }),
        }
    }

    /// Sleeps until an event or `timeout`, then drives every slot that has one.
    fn wait_and_drive(&mut self, events: &mut [libc::epoll_event], timeout: Duration) -> anyhow::Result<()> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `events` is a writable array of the length passed; `ts` outlives the call.
        let n = unsafe {
            libc::epoll_pwait2(
                self.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                &ts,
                std::ptr::null(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e).context("epoll_pwait2")
            };
        }
        let now = Instant::now();
        for ev in &events[..n as usize] {
            let i = ev.u64 as usize;
            if i < self.slots.len() && self.slots[i].stream.is_some() {
                self.drive_and_settle(i, now);
            }
        }
        Ok(())
    }

    fn sweep_stalled(&mut self, now: Instant) {
        for i in 0..self.slots.len() {
            let s = &self.slots[i];
            if s.state != State::Idle && now.duration_since(s.last_progress) > STALL {
                self.fail(i, now);
            }
        }
    }

    fn drive_and_settle(&mut self, i: usize, now: Instant) {
        if let Step::Failed = self.drive(i, now) {
            self.fail(i, now);
        }
    }

    /// Counts the failure, gives up the slot's outstanding request and reopens it.
    fn fail(&mut self, i: usize, now: Instant) {
        self.errors += 1;
        self.book.abandon(i);
        self.open(i, now);
    }

    /// (Re)opens slot `i`: a fresh non-blocking connect, registered edge-triggered.
    fn open(&mut self, i: usize, now: Instant) {
        let slot = &mut self.slots[i];
        slot.stream = None; // closes the old socket, which also leaves the epoll set
        slot.state = State::Connecting;
        slot.last_progress = now;
        match connect_registered(self.load.addr, &self.epoll, i) {
            Ok(stream) => slot.stream = Some(stream),
            // Out of ports or descriptors: count it; the stall sweep retries the slot.
            Err(_) => return self.errors += 1,
        }
        if let Step::Failed = self.drive(i, now) {
            // Not `fail`: a connect refused at once would recurse; the sweep retries it.
            self.errors += 1;
            self.slots[i].stream = None;
        }
    }

    /// Advances slot `i` until the socket would block or nothing is due.
    fn drive(&mut self, i: usize, now: Instant) -> Step {
        let elapsed = self.t0.map(|t0| now.duration_since(t0));
        let slot = &mut self.slots[i];
        // Out of the slot while in use, so the slot's other fields can change; put back below.
        let Some(mut stream) = slot.stream.take() else { return Step::Failed };
        let step = loop {
            match slot.state {
                State::Connecting => match connect_done(&stream) {
                    Ok(true) => slot.state = State::Idle,
                    Ok(false) => break Step::Wait,
                    Err(_) => break Step::Failed,
                },
                State::Idle => {
                    // A server that closed the idle connection shows as end-of-file when the
                    // next request's answer is read (not checked here: a read per request).
                    let Some(elapsed) = elapsed else { break Step::Wait };
                    if self.book.start(i, elapsed).is_none() {
                        break Step::Wait;
                    }
                    slot.written = 0;
                    slot.response.reset();
                    slot.last_progress = now;
                    slot.state = State::Sending;
                }
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
                    Ok(0) => break Step::Failed,
                    Ok(n) => {
                        slot.last_progress = now;
                        if slot.response.absorb(&self.scratch[..n]).is_err() {
                            break Step::Failed;
                        }
                        if slot.response.complete() {
                            let done = elapsed.unwrap_or_default();
                            self.book.complete(i, done);
                            self.bytes += slot.response.bytes;
                            self.last_completion = self.last_completion.max(done);
                            slot.state = State::Idle;
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

/// This thread's time runnable but not running so far (second field of its schedstat); 0 where
/// the kernel has no schedstats.
fn run_queue_secs() -> f64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    text.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).map_or(0.0, |n| n as f64 / 1e9)
}
