//! A small application for engine-shard tests: serves "N\n" requests with N pattern bytes, and
//! opens echo connections to a kernel server, checking every byte that comes back.
//!
//! Server protocol: the client sends a decimal length and a newline; the shard answers with that
//! many bytes, byte `i` being `(i + N) % 251`, then closes. Echo client: each shard opens
//! `echo_connections` connections to `echo_server`, writes `echo_bytes` bytes (byte `i` is
//! `(i * 13 + shard) % 256`), half-closes, and expects exactly those bytes back before the EOF.

#![allow(dead_code)]

use linerate_driver::shard::{AppContext, AppPoll, Pod, ShardApp, ShutdownPhase};
use linerate_stack::engine::{ConnectionHandle, Event, ListenerHandle};
use linerate_stack::wire::Ipv4Address;

/// Largest response the server sends.
pub const MAX_RESPONSE: usize = 1 << 20;

/// Counters the test app publishes per shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct AppCounts {
    /// Connections accepted by this shard's listener.
    pub accepted: u64,
    /// Responses written completely.
    pub served: u64,
    /// Malformed requests (connection aborted).
    pub bad_requests: u64,
    /// Echo connections whose bytes all came back intact.
    pub echo_ok: u64,
    /// Echo connections that failed or returned wrong bytes.
    pub echo_failed: u64,
}

// SAFETY: repr(C), u64 fields only.
unsafe impl Pod for AppCounts {}

impl core::ops::AddAssign for AppCounts {
    fn add_assign(&mut self, o: Self) {
        self.accepted += o.accepted;
        self.served += o.served;
        self.bad_requests += o.bad_requests;
        self.echo_ok += o.echo_ok;
        self.echo_failed += o.echo_failed;
    }
}

#[derive(Debug)]
enum Role {
    /// Accepted: request bytes so far, then the response length and how much is written.
    Served { request: Vec<u8>, want: Option<usize>, written: usize },
    /// Our echo connection: bytes written, bytes checked.
    Echo { written: usize, checked: usize, shut: bool },
}

#[derive(Debug)]
struct Conn {
    handle: ConnectionHandle,
    role: Role,
}

/// The test application of one shard.
#[derive(Debug)]
pub struct TestApp {
    shard_id: u8,
    listener: Option<ListenerHandle>,
    echo_server: Option<(Ipv4Address, u16)>,
    echo_connections: usize,
    echo_bytes: usize,
    echo_opened: bool,
    conns: Vec<Option<Conn>>,
    open: usize,
    counts: AppCounts,
    buf: Vec<u8>,
    accepting: bool,
}

impl TestApp {
    pub fn new(
        shard: usize,
        listener: Option<ListenerHandle>,
        echo_server: Option<(Ipv4Address, u16)>,
        echo_connections: usize,
        echo_bytes: usize,
    ) -> Self {
        TestApp {
            shard_id: shard as u8,
            listener,
            echo_server,
            echo_connections,
            echo_bytes,
            echo_opened: false,
            conns: Vec::new(),
            open: 0,
            counts: AppCounts::default(),
            buf: vec![0u8; 64 * 1024],
            accepting: true,
        }
    }

    fn insert(&mut self, handle: ConnectionHandle, role: Role) {
        let i = handle.index as usize;
        if self.conns.len() <= i {
            self.conns.resize_with(i + 1, || None);
        }
        self.conns[i] = Some(Conn { handle, role });
        self.open += 1;
    }

    fn finish(&mut self, cx: &mut AppContext<'_>, i: usize, ok: bool) {
        let Some(conn) = self.conns[i].take() else { return };
        self.open -= 1;
        if let Role::Echo { .. } = conn.role {
            if ok {
                self.counts.echo_ok += 1;
            } else {
                self.counts.echo_failed += 1;
            }
        }
        let _ = cx.engine.close(cx.now, conn.handle);
    }

    /// Moves whatever can move on connection `i`.
    fn pump(&mut self, cx: &mut AppContext<'_>, handle: ConnectionHandle, closed: bool, error: bool) {
        let i = handle.index as usize;
        let Some(Some(conn)) = self.conns.get_mut(i) else { return };
        if conn.handle != handle {
            return;
        }
        if error {
            return self.finish(cx, i, false);
        }
        let served = matches!(conn.role, Role::Served { .. });
        let outcome = if served { self.pump_served(cx, i) } else { self.pump_echo(cx, i) };
        match outcome {
            Some(ok) => self.finish(cx, i, ok),
            None if closed => {
                let ok = matches!(self.conns[i].as_ref().map(|c| &c.role), Some(Role::Served { want: Some(w), written, .. }) if written == w);
                self.finish(cx, i, ok);
            }
            None => {}
        }
    }

    /// `Some(ok)` when the served connection is done.
    fn pump_served(&mut self, cx: &mut AppContext<'_>, i: usize) -> Option<bool> {
        let conn = self.conns[i].as_mut()?;
        let handle = conn.handle;
        let Role::Served { request, want, written } = &mut conn.role else { return None };
        while want.is_none() {
            let n = match cx.engine.read(cx.now, handle, &mut self.buf) {
                Ok(0) | Err(_) => return None,
                Ok(n) => n,
            };
            request.extend_from_slice(&self.buf[..n]);
            if let Some(end) = request.iter().position(|&b| b == b'\n') {
                let parsed = std::str::from_utf8(&request[..end]).ok().and_then(|s| s.parse().ok());
                match parsed {
                    Some(n) if n <= MAX_RESPONSE => *want = Some(n),
                    _ => {
                        self.counts.bad_requests += 1;
                        return Some(false);
                    }
                }
            } else if request.len() > 16 {
                self.counts.bad_requests += 1;
                return Some(false);
            }
        }
        let total = want.unwrap_or(0);
        while *written < total {
            let room = cx.engine.send_capacity(handle).unwrap_or(0).min(self.buf.len()).min(total - *written);
            if room == 0 {
                return None;
            }
            for (k, b) in self.buf[..room].iter_mut().enumerate() {
                *b = ((*written + k + total) % 251) as u8;
            }
            match cx.engine.write(cx.now, handle, &self.buf[..room]) {
                Ok(n) if n > 0 => *written += n,
                _ => return None,
            }
        }
        self.counts.served += 1;
        Some(true)
    }

    /// `Some(ok)` when the echo connection is done.
    fn pump_echo(&mut self, cx: &mut AppContext<'_>, i: usize) -> Option<bool> {
        let total = self.echo_bytes;
        let shard = usize::from(self.shard_id);
        let conn = self.conns[i].as_mut()?;
        let handle = conn.handle;
        let Role::Echo { written, checked, shut } = &mut conn.role else { return None };
        let byte = |i: usize| (i.wrapping_mul(13).wrapping_add(shard)) as u8;
        while *written < total {
            let room = cx.engine.send_capacity(handle).unwrap_or(0).min(self.buf.len()).min(total - *written);
            if room == 0 {
                break;
            }
            for (k, b) in self.buf[..room].iter_mut().enumerate() {
                *b = byte(*written + k);
            }
            match cx.engine.write(cx.now, handle, &self.buf[..room]) {
                Ok(n) if n > 0 => *written += n,
                _ => break,
            }
        }
        if *written == total && !*shut {
            *shut = cx.engine.shutdown_write(cx.now, handle).is_ok();
        }
        loop {
            match cx.engine.read(cx.now, handle, &mut self.buf) {
                Ok(0) => return Some(*checked == total),
                Ok(n) => {
                    if (0..n).any(|k| self.buf[k] != byte(*checked + k)) {
                        return Some(false);
                    }
                    *checked += n;
                }
                Err(_) => return None,
            }
        }
    }

    fn open_echoes(&mut self, cx: &mut AppContext<'_>) {
        self.echo_opened = true;
        let Some(server) = self.echo_server else { return };
        for _ in 0..self.echo_connections {
            match cx.connect(server, None) {
                Ok(h) => self.insert(h, Role::Echo { written: 0, checked: 0, shut: false }),
                Err(_) => self.counts.echo_failed += 1,
            }
        }
    }
}

impl ShardApp for TestApp {
    type Stats = AppCounts;

    fn poll(&mut self, cx: &mut AppContext<'_>) -> AppPoll {
        if !self.echo_opened {
            self.open_echoes(cx);
        }
        let mut busy = false;
        while let Some(event) = cx.engine.poll_event() {
            busy = true;
            match event {
                Event::Incoming(l) if self.accepting => {
                    while let Ok(Some(h)) = cx.engine.accept(l) {
                        self.counts.accepted += 1;
                        self.insert(h, Role::Served { request: Vec::new(), want: None, written: 0 });
                        self.pump(cx, h, false, false);
                    }
                }
                Event::Incoming(_) => {}
                Event::ReadClosed(h) => self.pump(cx, h, true, false),
                Event::Closed { conn, error } => self.pump(cx, conn, true, error.is_some()),
                // Events this app does not need (and ones added to the engine later) are
                // ignored rather than breaking the match.
                other => {
                    let (Event::Connected(h) | Event::Readable(h) | Event::Writable(h)) = other else {
                        continue;
                    };
                    self.pump(cx, h, false, false);
                }
            }
        }
        AppPoll { busy, next_wake: None }
    }

    fn begin_shutdown(&mut self, phase: ShutdownPhase, cx: &mut AppContext<'_>) {
        match phase {
            ShutdownPhase::Drain => self.accepting = false,
            ShutdownPhase::CloseListeners => {
                if let Some(l) = self.listener.take() {
                    let _ = cx.engine.unlisten(cx.now, l);
                }
                for i in 0..self.conns.len() {
                    if self.conns[i].is_some() {
                        self.finish(cx, i, false);
                    }
                }
            }
            ShutdownPhase::TimeWait => {}
        }
    }

    fn is_drained(&self, phase: ShutdownPhase) -> bool {
        match phase {
            ShutdownPhase::Drain => self.open == 0,
            _ => true,
        }
    }

    fn stats(&self) -> AppCounts {
        self.counts
    }
}
