//! The HTTP load generator on the bypass stack (scenario 5, "bypass on both ends"): the same
//! [`HttpLoad`] as the kernel-socket generator, but every connection is a `linerate_stack`
//! engine connection over AF_XDP on the client side's interface, so the kernel's TCP is not in
//! the client's path and cannot be the bottleneck.
//!
//! One thread, run to completion: receive a burst → timers → events → drive the connections
//! that have news → transmit. Each of `connections` slots does GET → full response → (close
//! and reconnect | next GET on the same connection); latency is connect-to-EOF for
//! close-after-each and request-to-last-byte for keep-alive, as in the kernel generator, into
//! an HDR histogram.
//!
//! Promises: bounded by `secs` (connections still open then are aborted and flushed, so the
//! server is not left with half-open state); memory fixed by the connection count; a
//! connection that fails, answers badly or makes no progress for [`STALL`] is counted in
//! `errors` and replaced. Must not: talk to anything but `load.addr`, or pipeline requests.
//! The caller removes the client address from the client side's kernel while this runs.

use std::net::Ipv4Addr;

use anyhow::Context;
use hdrhistogram::Histogram;
use linerate_app::bypass::{parse_cidr, Bypass, LinkOptions};
use linerate_driver::afxdp::{TxChecksum, XdpMode};
use linerate_stack::engine::{ConnectionHandle, Engine, Event};
use linerate_stack::tcp::SocketOptions;
use linerate_stack::time::{Duration, Instant};
use linerate_stack::wire::Ipv4Address;
use linerate_stack::Error;

use super::http_gen::Response;
use super::{HttpLoad, LoadResult, Percentiles};

/// A connection that makes no progress for this long is written off.
const STALL: Duration = Duration::from_secs(2);
/// Buffers per connection, sized to the job (a GET out, 1 KiB back) rather than the 256 KiB
/// defaults: every connection allocates and zeroes its buffers, which dominated the client's
/// CPU per short connection in a profile.
const SEND_BUFFER: usize = 4 * 1024;
const RECV_BUFFER: usize = 64 * 1024;
/// No slot index (a connection index the generator does not own).
const NONE: u32 = u32::MAX;

#[derive(Debug)]
struct Slot {
    conn: Option<ConnectionHandle>,
    /// The request went out on the current exchange.
    sent: bool,
    started: Instant,
    last_progress: Instant,
    response: Response,
}

/// What driving a slot led to.
enum Step {
    Wait,
    /// The exchange finished; for close-after-each the connection is closed too.
    Done,
    Failed,
}

struct Generator<'a> {
    load: &'a HttpLoad,
    server: (Ipv4Address, u16),
    request: Vec<u8>,
    bypass: Bypass,
    slots: Vec<Slot>,
    /// Engine connection index → slot.
    owner: Vec<u32>,
    histogram: Histogram<u64>,
    result: LoadResult,
    scratch: Vec<u8>,
}

/// Runs `load` from `ip` (`ADDR/PREFIX`) on `iface`, in the calling thread's network namespace.
pub fn run_bypass_http_load(load: &HttpLoad, iface: &str, ip: &str) -> anyhow::Result<LoadResult> {
    let (addr, prefix_len) = parse_cidr(ip)?;
    let link = LinkOptions {
        iface: iface.to_owned(),
        addr,
        prefix_len,
        gateway: None,
        xdp_mode: XdpMode::Auto,
        netns: None,
        pcap: None,
        // The server is linerate behind the same veth: its XDP would see partial checksums.
        tx_checksum: TxChecksum::Software,
    };
    let bypass = Bypass::open(&link).context("bypass client")?;
    let connection = if load.keep_alive { "keep-alive" } else { "close" };
    let request =
        format!("GET {} HTTP/1.1\r\nHost: {}\r\nConnection: {connection}\r\n\r\n", load.path, load.addr.ip());
    let now = bypass.clock.now();
    let ip: Ipv4Addr = *load.addr.ip();
    let mut g = Generator {
        load,
        server: (Ipv4Address(ip.octets()), load.addr.port()),
        request: request.into_bytes(),
        bypass,
        slots: (0..load.connections.max(1))
            .map(|_| Slot {
                conn: None,
                sent: false,
                started: now,
                last_progress: now,
                response: Response::default(),
            })
            .collect(),
        owner: Vec::new(),
        histogram: Histogram::new_with_bounds(1, 60_000_000, 3).context("histogram bounds")?,
        result: LoadResult::default(),
        scratch: vec![0; 64 * 1024],
    };
    g.run();
    Ok(g.result)
}

impl Generator<'_> {
    fn run(&mut self) {
        let start = self.bypass.clock.now();
        let deadline = start + Duration::from_nanos((self.load.secs.max(0.0) * 1e9) as u64);
        for i in 0..self.slots.len() {
            self.open(i, start);
        }
        let mut next_sweep = start + Duration::from_millis(100);
        loop {
            let now = self.bypass.clock.now();
            if now >= deadline {
                break;
            }
            let rx = self.bypass.receive(now);
            let busy = self.handle_events(now);
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + Duration::from_millis(100);
            }
            let tx = self.bypass.transmit(now);
            if rx == 0 && tx == 0 && !busy {
                self.bypass.wait(now, Some(next_sweep.min(deadline)));
            }
        }
        self.result.secs = (self.bypass.clock.now() - start).as_nanos() as f64 / 1e9;
        self.finish();
        self.result.latency_us = Percentiles::of(&self.histogram);
    }

    /// Aborts what is still open and sends the RSTs.
    fn finish(&mut self) {
        let now = self.bypass.clock.now();
        for slot in &mut self.slots {
            if let Some(c) = slot.conn.take() {
                let _ = self.bypass.engine.abort(now, c);
            }
        }
        for _ in 0..4 {
            self.bypass.transmit(now);
        }
    }

    fn handle_events(&mut self, now: Instant) -> bool {
        let mut any = false;
        while let Some(event) = self.bypass.engine.poll_event() {
            any = true;
            let h = match event {
                Event::Connected(h)
                | Event::Readable(h)
                | Event::Writable(h)
                | Event::ReadClosed(h)
                | Event::SendComplete(h) => h,
                Event::Closed { conn, .. } => conn,
                Event::Incoming(_) => continue,
            };
            let Some(&i) = self.owner.get(h.index as usize) else { continue };
            if i != NONE && self.slots[i as usize].conn == Some(h) {
                self.drive_and_settle(i as usize, now);
            }
        }
        any
    }

    fn sweep(&mut self, now: Instant) {
        for i in 0..self.slots.len() {
            let slot = &self.slots[i];
            if slot.conn.is_none() || now - slot.last_progress > STALL {
                if let Some(c) = slot.conn {
                    let _ = self.bypass.engine.abort(now, c);
                    self.result.errors += 1;
                }
                self.open(i, now);
            }
        }
    }

    fn drive_and_settle(&mut self, i: usize, now: Instant) {
        match self.drive(i, now) {
            Step::Wait => {}
            Step::Done => {
                let slot = &mut self.slots[i];
                let us = (now - slot.started).as_nanos() / 1000;
                self.histogram.saturating_record(us.max(1));
                self.result.requests += 1;
                self.result.bytes += slot.response.bytes;
                slot.response.reset();
                slot.started = now;
                slot.sent = false;
                if self.load.keep_alive {
                    // The next request on the same connection, right away.
                    self.drive_and_settle(i, now);
                } else {
                    self.open(i, now);
                }
            }
            Step::Failed => {
                if let Some(c) = self.slots[i].conn.take() {
                    let _ = self.bypass.engine.abort(now, c);
                }
                self.result.errors += 1;
                self.open(i, now);
            }
        }
    }

    /// (Re)opens slot `i` with a fresh connection; a refused connect is retried by the sweep.
    fn open(&mut self, i: usize, now: Instant) {
        let slot = &mut self.slots[i];
        (slot.sent, slot.started, slot.last_progress) = (false, now, now);
        slot.response.reset();
        slot.conn = None;
        let opts = SocketOptions {
            nodelay: true,
            send_buffer: SEND_BUFFER,
            recv_buffer: RECV_BUFFER,
            ..SocketOptions::default()
        };
        match self.bypass.engine.connect(now, self.server, None, Some(opts)) {
            Ok(h) => {
                let at = h.index as usize;
                if self.owner.len() <= at {
                    self.owner.resize(at + 1, NONE);
                }
                self.owner[at] = i as u32;
                self.slots[i].conn = Some(h);
            }
            Err(_) => self.result.errors += 1,
        }
    }

    /// Sends the request once connected, reads what arrived; ends the exchange when complete.
    fn drive(&mut self, i: usize, now: Instant) -> Step {
        let keep_alive = self.load.keep_alive;
        let (engine, slot) = (&mut self.bypass.engine, &mut self.slots[i]);
        let Some(c) = slot.conn else { return Step::Wait };
        if !slot.sent {
            match engine.state(c) {
                Ok(s) if s.is_synchronized() => {}
                Ok(_) => return Step::Wait,
                Err(_) => return Step::Failed,
            }
            // A 1 KiB GET fits any send buffer: all or nothing.
            match engine.write(now, c, &self.request) {
                Ok(n) if n == self.request.len() => {
                    slot.sent = true;
                    slot.last_progress = now;
                }
                Ok(_) | Err(Error::WouldBlock) => return Step::Wait,
                Err(_) => return Step::Failed,
            }
        }
        read_response(engine, c, slot, &mut self.scratch, now, keep_alive)
    }
}

fn read_response(
    engine: &mut Engine,
    c: ConnectionHandle,
    slot: &mut Slot,
    scratch: &mut [u8],
    now: Instant,
    keep_alive: bool,
) -> Step {
    loop {
        match engine.read(now, c, scratch) {
            Ok(0) => {
                if slot.response.complete() && !keep_alive {
                    let _ = engine.close(now, c);
                    slot.conn = None;
                    return Step::Done;
                }
                return Step::Failed;
            }
            Ok(n) => {
                slot.last_progress = now;
                if slot.response.absorb(&scratch[..n]).is_err() {
                    return Step::Failed;
                }
                if keep_alive && slot.response.complete() {
                    return Step::Done;
                }
            }
            Err(Error::WouldBlock) => return Step::Wait,
            Err(_) => return Step::Failed,
        }
    }
}
