//! Frames per exchange (issue 9): the exact segments the engine sends for the file server's two
//! benchmark exchanges, a short connection (connect → GET 1 KiB → close, scenario 3) and a
//! keep-alive request (scenario 4), with the application acting as `apps/src/serve/conn.rs`
//! does within one shard poll (receive burst → application → one transmit poll).
//!
//! On veth in copy mode every frame we send costs the server core an skb and the receiving
//! kernel's path, so these tests pin the count, not only the order: a short connection costs
//! three frames (SYN-ACK, response + FIN, ACK of the client's FIN), two when the client closes
//! first; a keep-alive request costs one; none of them is followed by a delayed ACK, a window
//! update or anything from TIME-WAIT. The peer negotiates what a Linux client does (MSS,
//! window scale, SACK, timestamps).

mod support;
use linerate_stack::device::{Capabilities, Device};
use linerate_stack::engine::{ConnectionHandle, EngineConfig, ListenerHandle};
use linerate_stack::tcp::{SocketOptions, State};
use linerate_stack::time::{Duration, Instant};
use linerate_stack::wire::TcpFlags;
use support::*;

/// A GET as our load generator writes it (78 bytes).
const REQUEST: &[u8] = b"GET /1k.bin HTTP/1.1\r\nHost: 198.18.0.1\r\nConnection: close\r\n\r\n";
/// A 1 KiB body with its response head.
const RESPONSE_LEN: usize = 1024 + 250;

/// The client's side of the conversation: its sequence numbers and timestamps.
struct Client {
    seq: u32,
    ack: u32,
    tsval: u32,
    tsecr: u32,
}

impl Client {
    /// A segment from the client at its current sequence number (which then advances).
    fn seg(&mut self, flags: TcpFlags, payload: &[u8]) -> Seg {
        self.tsval += 1;
        let seg = Seg {
            flags,
            seq: self.seq,
            ack: if flags.ack() { self.ack } else { 0 },
            win: 502, // 64 KiB at the window scale of 7 the client offered
            payload: payload.to_vec(),
            ts: Some((self.tsval, self.tsecr)),
            ..Seg::new(flags)
        };
        self.seq += seg.len();
        seg
    }

    /// Takes in a segment the engine sent.
    fn absorb(&mut self, s: &Seg) {
        self.ack = s.seq + s.len();
        if let Some((tsval, _)) = s.ts {
            self.tsecr = tsval;
        }
    }
}

/// What a frame is, as `bench/scripts/frames_per_conn.py` names it in a capture.
fn kind(s: &Seg) -> &'static str {
    let f = s.flags;
    match (f.syn(), f.rst(), f.fin(), s.payload.is_empty()) {
        (true, ..) if f.ack() => "SYN-ACK",
        (true, ..) => "SYN",
        (_, true, ..) => "RST",
        (_, _, true, false) => "data+FIN",
        (_, _, true, true) => "FIN",
        (_, _, false, false) => "data",
        (_, _, false, true) => "ACK",
    }
}

struct Server {
    h: Harness,
    listener: ListenerHandle,
    client: Client,
    /// Every frame the engine sent so far.
    sent: Vec<Seg>,
}

impl Server {
    /// An engine with every TCP option on (as `linerate serve`), listening on 80 with the file
    /// server's socket options.
    fn new() -> Self {
        let mut h = Harness::with_config(EngineConfig::new(OUR_IP, 24, OUR_MAC, 42));
        let opts = SocketOptions { send_buffer: 1 << 20, ..SocketOptions::default() };
        let listener = h.engine.listen(80, 16, Some(opts)).expect("listen");
        Server { h, listener, client: Client { seq: 7_000, ack: 0, tsval: 100, tsecr: 0 }, sent: Vec::new() }
    }

    /// Delivers client segments as one receive burst.
    fn deliver(&mut self, segs: &[Seg]) {
        for s in segs {
            self.h.send(s);
        }
    }

    /// One transmit poll: every frame the engine sends now, by kind.
    fn poll(&mut self) -> Vec<&'static str> {
        self.h.engine.poll_transmit(self.h.now, &mut self.h.dev);
        let mut kinds = Vec::new();
        while let Some(f) = self.h.dev.tx.pop_front() {
            let Some((_, s)) = parse_tcp(&f) else { continue };
            self.client.absorb(&s);
            kinds.push(kind(&s));
            self.sent.push(s);
        }
        kinds
    }

    /// The client's SYN (MSS, window scale, SACK, timestamps, as Linux sends it).
    fn syn(&mut self) -> Seg {
        let mut syn = self.client.seg(SYN, b"");
        syn.win = 64_240;
        syn.mss = Some(1460);
        syn.wscale = Some(7);
        syn.sack_perm = true;
        syn
    }

    /// The handshake up to the SYN-ACK; returns after the engine answered.
    fn syn_ack(&mut self) {
        let syn = self.syn();
        self.deliver(&[syn]);
        assert_eq!(self.poll(), ["SYN-ACK"]);
        assert_eq!(self.sent.last().unwrap().ack, 7_001);
    }

    fn accept(&mut self) -> ConnectionHandle {
        self.h.engine.accept(self.listener).expect("listener").expect("a connection to accept")
    }

    /// The whole handshake (SYN, SYN-ACK, the client's bare ACK), then the accept.
    fn established(&mut self) -> ConnectionHandle {
        self.syn_ack();
        let ack = self.client.seg(ACK, b"");
        self.deliver(&[ack]);
        self.accept()
    }

    /// What `Conn::pump` does with a readable connection: read everything, then answer each
    /// complete request with `RESPONSE_LEN` bytes; `close` half-closes after the last answer.
    /// Returns whether the client's FIN was read (end of stream).
    fn serve(&mut self, c: ConnectionHandle, responses: usize, close: bool) -> bool {
        let now = self.h.now;
        let mut buf = [0u8; 4096];
        let mut eof = false;
        loop {
            match self.h.engine.read(now, c, &mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(_) => {}
                Err(linerate_stack::Error::WouldBlock) => break,
                Err(e) => panic!("read: {e:?}"),
            }
        }
        for _ in 0..responses {
            let n = self.h.engine.write(now, c, &[b'x'; RESPONSE_LEN]).expect("write");
            assert_eq!(n, RESPONSE_LEN);
        }
        if close {
            self.h.engine.shutdown_write(now, c).expect("shutdown");
        }
        eof
    }

    /// Advances virtual time by `d` in steps of at most 10 ms, firing timers and polling; every
    /// frame sent meanwhile is returned.
    fn idle(&mut self, d: Duration) -> Vec<&'static str> {
        let end = self.h.now + d;
        let mut kinds = Vec::new();
        while self.h.now < end {
            let step = Duration::from_millis(10).min(end - self.h.now);
            self.h.advance(step);
            kinds.extend(self.poll());
        }
        kinds
    }
}

/// The kernel client of scenario 3: pure ACK ending the handshake, the GET, an immediate ACK
/// of our response + FIN, then its FIN once it has read end of stream. We send three frames.
#[test]
fn short_connection_with_a_kernel_client_costs_three_frames() {
    let mut s = Server::new();
    s.syn_ack();
    let ack = s.client.seg(ACK, b"");
    s.deliver(&[ack]);
    assert_eq!(s.poll(), [] as [&str; 0], "nothing for the handshake's last ACK");
    let c = s.accept();

    // The GET, answered in the same poll: the response carries the ACK of the request and, the
    // application having closed right after writing, our FIN (RFC 9293 §3.10.4: the FIN follows
    // the queued data; nothing makes it wait for a segment of its own).
    let get = s.client.seg(ACK | PSH, REQUEST);
    s.deliver(&[get]);
    assert!(!s.serve(c, 1, true));
    assert_eq!(s.poll(), ["data+FIN"]);
    let resp = s.sent.last().unwrap();
    assert_eq!((resp.ack, resp.payload.len()), (s.client.seq, RESPONSE_LEN));
    assert_eq!(s.h.engine.state(c).unwrap(), State::FinWait1);

    // The client acknowledges: FIN-WAIT-2, nothing to send; the server releases the handle
    // (`Conn::pump_closing`), and no timer makes a frame while the client takes its time.
    let ack = s.client.seg(ACK, b"");
    s.deliver(&[ack]);
    assert_eq!(s.poll(), [] as [&str; 0]);
    assert_eq!(s.h.engine.state(c).unwrap(), State::FinWait2);
    s.h.engine.close(s.h.now, c).unwrap();
    assert_eq!(s.idle(Duration::from_millis(500)), [] as [&str; 0]);

    // Its FIN: one ACK (RFC 9293 §3.10.7.4 eighth step), then TIME-WAIT sends nothing and ends.
    let fin = s.client.seg(FIN | ACK, b"");
    s.deliver(&[fin]);
    assert_eq!(s.poll(), ["ACK"]);
    assert_eq!(s.sent.last().unwrap().ack, s.client.seq);
    assert_eq!(s.h.engine.connection_count(), 1, "TIME-WAIT on the side that closed first");
    assert_eq!(s.idle(Duration::from_secs(61)), [] as [&str; 0]);
    assert_eq!(s.h.engine.connection_count(), 0);
    assert_eq!(s.sent.len(), 3, "SYN-ACK, response + FIN, ACK of the FIN");
}

/// The bypass client of scenario 5 writes the GET as soon as the SYN-ACK arrives (data on the
/// handshake's last segment) and closes in the poll that reads end of stream, so its FIN
/// acknowledges ours: three frames each way, the least a graceful TCP exchange can take.
#[test]
fn short_connection_with_a_bypass_client_costs_three_frames() {
    let mut s = Server::new();
    s.syn_ack();
    let get = s.client.seg(ACK | PSH, REQUEST);
    s.deliver(&[get]);
    let c = s.accept();
    assert!(!s.serve(c, 1, true));
    assert_eq!(s.poll(), ["data+FIN"]);
    let fin = s.client.seg(FIN | ACK, b"");
    s.deliver(&[fin]);
    assert_eq!(s.h.engine.state(c).unwrap(), State::TimeWait);
    s.h.engine.close(s.h.now, c).unwrap();
    assert_eq!(s.poll(), ["ACK"]);
    assert_eq!(s.idle(Duration::from_secs(61)), [] as [&str; 0]);
    assert!(s.h.engine.connection_count() == 0 && s.sent.len() == 3);
}

/// A client that half-closes after its request (HTTP/1.0 style): the response, our FIN and the
/// ACK of its FIN are one segment, and the client's ACK of that ends the connection with no
/// TIME-WAIT here (RFC 9293 §3.6: the side that closes first keeps it). Two frames.
#[test]
fn short_connection_closed_first_by_the_client_costs_two_frames() {
    for fin_apart in [false, true] {
        let mut s = Server::new();
        s.syn_ack();
        let get = s.client.seg(ACK | PSH, REQUEST);
        let mut burst = vec![get];
        if fin_apart {
            // The FIN in a segment of its own, in the same receive burst.
            burst.push(s.client.seg(FIN | ACK, b""));
        } else {
            burst[0].flags = FIN | ACK | PSH;
            s.client.seq += 1;
        }
        s.deliver(&burst);
        let c = s.accept();
        assert!(s.serve(c, 1, true), "end of stream read with the request");
        assert_eq!(s.poll(), ["data+FIN"], "FIN apart: {fin_apart}");
        assert_eq!(s.sent.last().unwrap().ack, s.client.seq, "acknowledges the client's FIN too");
        assert_eq!(s.h.engine.state(c).unwrap(), State::LastAck);
        s.h.engine.close(s.h.now, c).unwrap();
        let ack = s.client.seg(ACK, b"");
        s.deliver(&[ack]);
        assert_eq!(s.poll(), [] as [&str; 0]);
        assert_eq!(s.h.engine.connection_count(), 0, "no TIME-WAIT on the passive closer");
        assert_eq!(s.sent.len(), 2);
    }
}

/// Scenario 4: each request is answered by one segment that also acknowledges it; the next
/// request acknowledges the response. Nothing else: no delayed ACK (it is cancelled by the
/// response that carried the ACK), no window update after the application read the request
/// (it opens the window by 78 bytes, below min(buffer / 2, MSS), RFC 9293 §3.8.6.2.2).
#[test]
fn keep_alive_request_costs_one_frame() {
    let mut s = Server::new();
    let c = s.established();
    for i in 0..50 {
        let get = s.client.seg(ACK | PSH, REQUEST);
        s.deliver(&[get]);
        s.serve(c, 1, false);
        assert_eq!(s.poll(), ["data"], "request {i}");
        assert_eq!(s.sent.last().unwrap().ack, s.client.seq);
        // The client's think time, shorter or longer than our delayed-ACK timeout.
        let think = Duration::from_millis(if i % 2 == 0 { 1 } else { 60 });
        assert_eq!(s.idle(think), [] as [&str; 0], "request {i}");
    }
    let ack = s.client.seg(ACK, b"");
    s.deliver(&[ack]);
    assert_eq!(s.idle(Duration::from_secs(5)), [] as [&str; 0]);
    assert_eq!(s.sent.len(), 51);
}

/// Two pipelined requests in one segment: both responses leave in one segment when they fit.
#[test]
fn pipelined_requests_share_a_segment() {
    let mut s = Server::new();
    let c = s.established();
    let get = s.client.seg(ACK | PSH, &[REQUEST, REQUEST].concat());
    s.deliver(&[get]);
    // 2 × 600 bytes fit one MSS: the second write joins the first before the poll.
    let now = s.h.now;
    let mut buf = [0u8; 512];
    while s.h.engine.read(now, c, &mut buf).is_ok_and(|n| n > 0) {}
    s.h.engine.write(now, c, &[b'a'; 600]).unwrap();
    s.h.engine.write(now, c, &[b'b'; 600]).unwrap();
    assert_eq!(s.poll(), ["data"]);
    assert_eq!(s.sent.last().unwrap().payload.len(), 1200);
}

/// A response not ready in the poll that read the request (its file is being opened on the
/// prefetch thread): the ACK waits, and rides on the response if that comes within the
/// delayed-ACK timeout (40 ms, RFC 9293 §3.8.6.3 / RFC 1122 §4.2.3.2: less than 0.5 s); after
/// the timeout exactly one pure ACK goes out, then the response. Reading the request alone
/// sends no window update.
#[test]
fn a_late_response_still_carries_the_ack_within_the_delayed_ack_time() {
    for (wait_ms, expect) in [(30u64, vec![]), (50, vec!["ACK"])] {
        let mut s = Server::new();
        let c = s.established();
        let get = s.client.seg(ACK | PSH, REQUEST);
        s.deliver(&[get]);
        s.serve(c, 0, false);
        assert_eq!(s.poll(), [] as [&str; 0], "no window update after reading 78 bytes");
        assert_eq!(s.idle(Duration::from_millis(wait_ms)), expect, "response after {wait_ms} ms");
        s.serve(c, 1, false);
        assert_eq!(s.poll(), ["data"]);
        assert_eq!(s.sent.last().unwrap().ack, s.client.seq);
    }
}

/// A device that counts flushes: one flush is one TX kick in the AF_XDP driver.
#[derive(Default)]
struct KickCounter {
    inner: TestDevice,
    flushes: usize,
}

impl Device for KickCounter {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn receive<F: FnMut(&mut [u8])>(&mut self, now: Instant, budget: usize, handle: F) -> usize {
        self.inner.receive(now, budget, handle)
    }
    fn transmit_capacity(&self) -> usize {
        self.inner.transmit_capacity()
    }
    fn transmit<R, F: FnOnce(&mut [u8]) -> R>(&mut self, now: Instant, len: usize, fill: F) -> Option<R> {
        self.inner.transmit(now, len, fill)
    }
    fn flush(&mut self, _now: Instant) {
        self.flushes += 1;
    }
}

/// Many connections' requests in one receive burst, all answered by the application: the
/// transmit poll sends every response and flushes the device once (one `sendto` kick).
#[test]
fn one_poll_answers_a_burst_with_one_kick() {
    const CONNS: u16 = 32;
    let mut s = Server::new();
    let mut clients = Vec::new();
    for i in 0..CONNS {
        s.h.peer_port = 40_000 + i;
        s.client = Client { seq: 7_000, ack: 0, tsval: 100, tsecr: 0 };
        let c = s.established();
        clients.push((
            40_000 + i,
            c,
            std::mem::replace(&mut s.client, Client { seq: 0, ack: 0, tsval: 0, tsecr: 0 }),
        ));
    }
    for (port, _, client) in &mut clients {
        s.h.peer_port = *port;
        let get = client.seg(ACK | PSH, REQUEST);
        s.h.send(&get);
    }
    for (_, c, _) in &clients {
        s.serve(*c, 1, true);
    }
    let mut dev = KickCounter::default();
    let sent = s.h.engine.poll_transmit(s.h.now, &mut dev);
    assert_eq!((sent, dev.inner.tx.len(), dev.flushes), (CONNS as usize, CONNS as usize, 1));
    for f in &dev.inner.tx {
        let (_, seg) = parse_tcp(f).expect("TCP");
        assert_eq!(kind(&seg), "data+FIN");
    }
}

/// The kernel client reuses its port (`tcp_tw_reuse`) while our side of the previous
/// connection is in TIME-WAIT: the new SYN is one frame in and one SYN-ACK out, when its ISN
/// is above RCV.NXT or (RFC 6191 §2) its timestamp is newer than the old incarnation's,
/// whatever its ISN (a client with per-connection random ISNs lands below RCV.NXT half the
/// time). A SYN that is neither gets the ACK of the old incarnation and the TIME-WAIT stays.
#[test]
fn a_new_syn_on_a_time_wait_tuple_costs_one_syn_ack() {
    // (ISN relative to the old RCV.NXT, TSval relative to the old TS.Recent, reopened?)
    for (isn_delta, ts_delta, reopens) in
        [(100_000i64, 1i64, true), (100_000, -1, true), (-100_000, 1, true), (-100_000, -1, false)]
    {
        let mut s = Server::new();
        let c = s.established();
        let get = s.client.seg(ACK | PSH, REQUEST);
        s.deliver(&[get]);
        s.serve(c, 1, true);
        assert_eq!(s.poll(), ["data+FIN"]);
        let fin = s.client.seg(FIN | ACK, b"");
        s.deliver(&[fin]);
        assert_eq!(s.poll(), ["ACK"]);
        s.h.engine.close(s.h.now, c).unwrap();
        assert_eq!(s.h.engine.state(c), Err(linerate_stack::Error::InvalidHandle));
        s.h.advance(Duration::from_millis(5));
        let old_rcv_nxt = s.client.seq;
        let old_tsval = s.client.tsval;
        s.client.seq = (i64::from(old_rcv_nxt) + isn_delta) as u32;
        s.client.tsval = (i64::from(old_tsval) + ts_delta - 1) as u32; // `seg` adds one
        let syn = s.syn();
        s.deliver(&[syn]);
        let out = s.poll();
        let label = format!("ISN {isn_delta:+}, TSval {ts_delta:+}");
        if reopens {
            assert_eq!(out, ["SYN-ACK"], "{label}");
            assert_eq!(s.sent.last().unwrap().ack, s.client.seq, "{label}");
        } else {
            assert_eq!(out, ["ACK"], "{label}: the old incarnation's ACK");
            assert_eq!(s.sent.last().unwrap().ack, old_rcv_nxt, "{label}");
            assert_eq!(s.h.engine.connection_count(), 1, "{label}: still in TIME-WAIT");
        }
    }
}
