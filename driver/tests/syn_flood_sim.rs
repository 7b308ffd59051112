//! SYN flood on the simulated link: 100,000 spoofed SYNs per second of virtual time against one
//! listener with a backlog of 128, while 1,000 legitimate clients (one engine, one connection per
//! millisecond) connect, and then close. The listener runs with the default SYN cookie mode
//! (`Auto`): its SYN queue fills with spoofed half-open connections within the first
//! millisecond, and from then on every SYN gets a stateless cookie SYN-ACK.
//!
//! Checked: at least 99 % of the legitimate handshakes complete while the flood goes on; the
//! server's connection count and buffer memory stay flat (bounded by the backlog plus the few
//! legitimate connections alive at once, sampled at every server poll); and once the flood stops
//! and the spoofed half-open connections have used up their SYN-ACK retries, the server holds
//! nothing but its listener.
//!
//! Run: `cargo test -p linerate-driver --release --test syn_flood_sim` (seeded: `LINERATE_SEED`).

use linerate_driver::sim::{Endpoint, LinkConfig, SimPort, SimRng, SimRun};
use linerate_stack::device::Device;
use linerate_stack::engine::{ConnectionHandle, Engine, EngineConfig, Event, ListenerHandle};
use linerate_stack::tcp::SocketOptions;
use linerate_stack::time::{Duration, Instant};
use linerate_stack::wire::{
    ChecksumMode, EtherType, EthernetAddress, EthernetFrame, EthernetRepr, IpProtocol, Ipv4Address,
    Ipv4Packet, Ipv4Repr, SeqNumber, TcpFlags, TcpOptions, TcpPacket, TcpRepr,
};

const CLIENT_IP: Ipv4Address = Ipv4Address::new(198, 18, 0, 1);
const SERVER_IP: Ipv4Address = Ipv4Address::new(198, 18, 0, 2);
const CLIENT_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
const SERVER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
const ATTACKER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x66]);
const PORT: u16 = 80;
const BACKLOG: usize = 128;

/// Spoofed SYNs per second, sent in bursts every millisecond.
const FLOOD_RATE: u64 = 100_000;
const FLOOD_START: Instant = Instant::ZERO;
const FLOOD_END: Instant = Instant::from_millis(1_500);
const LEGIT_CLIENTS: usize = 1_000;
const LEGIT_START: Instant = Instant::from_millis(100);
const LEGIT_INTERVAL: Duration = Duration::from_millis(1);

/// Small buffers: the test measures connection state, not throughput.
fn opts() -> SocketOptions {
    SocketOptions { send_buffer: 4096, recv_buffer: 4096, ..SocketOptions::default() }
}

/// A spoofed SYN from a random address in 198.19.0.0/16 (inside the 198.18.0.0/15 test range).
fn spoofed_syn(rng: &mut SimRng) -> Vec<u8> {
    let r = rng.next_u64();
    let src = Ipv4Address::new(198, 19, (r >> 8) as u8, (r as u8).max(1));
    let tcp = TcpRepr {
        src_port: 1024 + (r >> 16) as u16 % 60_000,
        dst_port: PORT,
        seq_number: SeqNumber((r >> 32) as u32),
        ack_number: SeqNumber(0),
        flags: TcpFlags::SYN,
        window_len: 65_535,
        urgent_pointer: 0,
        options: TcpOptions { mss: Some(1460), ..TcpOptions::default() },
        payload: &[],
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: SERVER_IP,
        protocol: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        ttl: 64,
        dscp_ecn: 0,
        ident: r as u16,
        dont_frag: true,
    };
    let mut frame = vec![0u8; 14 + 20 + tcp.buffer_len()];
    EthernetRepr { src_addr: ATTACKER_MAC, dst_addr: SERVER_MAC, ethertype: EtherType::Ipv4 }
        .emit(&mut EthernetFrame::new_unchecked(&mut frame[..]));
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut frame[14..]), ChecksumMode::Compute);
    tcp.emit(&mut TcpPacket::new_unchecked(&mut frame[34..]), src, SERVER_IP, ChecksumMode::Compute);
    frame
}

/// The legitimate clients (one engine) and the attacker, sharing the client end of the link.
struct Crowd {
    engine: Engine,
    rng: SimRng,
    now: Instant,
    next_burst: Instant,
    spoofed_sent: u64,
    started: usize,
    next_start: Instant,
    connected: usize,
    failed: usize,
}

impl Crowd {
    fn new(seed: u64) -> Self {
        let cfg = EngineConfig::new(CLIENT_IP, 24, CLIENT_MAC, seed);
        Crowd {
            engine: Engine::new(cfg, Instant::ZERO),
            rng: SimRng::derive(seed, 0xf100d),
            now: Instant::ZERO,
            next_burst: FLOOD_START,
            spoofed_sent: 0,
            started: 0,
            next_start: LEGIT_START,
            connected: 0,
            failed: 0,
        }
    }

    fn flood(&mut self, now: Instant, port: &mut SimPort<'_>) {
        let per_burst = FLOOD_RATE / 1_000;
        while self.next_burst <= now && self.next_burst < FLOOD_END {
            for _ in 0..per_burst {
                let frame = spoofed_syn(&mut self.rng);
                if port.transmit(now, frame.len(), |buf| buf.copy_from_slice(&frame)).is_none() {
                    port.flush(now);
                    port.transmit(now, frame.len(), |buf| buf.copy_from_slice(&frame)).expect("flushed ring");
                }
                self.spoofed_sent += 1;
            }
            port.flush(now);
            self.next_burst += Duration::from_millis(1);
        }
    }

    fn clients(&mut self, now: Instant) {
        while self.started < LEGIT_CLIENTS && self.next_start <= now {
            self.engine.connect(now, (SERVER_IP, PORT), None, Some(opts())).expect("connect");
            self.started += 1;
            self.next_start += LEGIT_INTERVAL;
        }
        while let Some(event) = self.engine.poll_event() {
            match event {
                Event::Connected(c) => {
                    self.connected += 1;
                    self.engine.close(now, c).expect("close");
                }
                Event::Closed { conn, error } => {
                    if error.is_some() {
                        self.failed += 1;
                    }
                    let _ = self.engine.close(now, conn);
                }
                _ => {}
            }
        }
    }
}

impl Endpoint for Crowd {
    fn poll(&mut self, now: Instant, port: &mut SimPort<'_>) {
        self.now = now;
        while self.engine.receive_from(now, port, 64) > 0 {}
        self.engine.handle_timeout(now);
        self.clients(now);
        self.engine.poll_transmit(now, port);
        self.flood(now, port);
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let burst = (self.next_burst < FLOOD_END).then_some(self.next_burst);
        let start = (self.started < LEGIT_CLIENTS).then_some(self.next_start);
        let pending = self.engine.has_pending_output().then_some(self.now);
        [self.engine.next_timeout(), burst, start, pending].into_iter().flatten().min()
    }
}

/// The server: one listener; accepts everything, closes each connection when the client does.
struct Server {
    engine: Engine,
    listener: ListenerHandle,
    now: Instant,
    accepted: usize,
    max_connections: usize,
    max_memory: usize,
}

impl Server {
    fn new(seed: u64) -> Self {
        let mut cfg = EngineConfig::new(SERVER_IP, 24, SERVER_MAC, seed ^ 0x5e7e);
        cfg.reply_queue = 256;
        let mut engine = Engine::new(cfg, Instant::ZERO);
        let listener = engine.listen(PORT, BACKLOG, Some(opts())).expect("listen");
        Server { engine, listener, now: Instant::ZERO, accepted: 0, max_connections: 0, max_memory: 0 }
    }

    fn app(&mut self, now: Instant) {
        while let Some(event) = self.engine.poll_event() {
            match event {
                Event::Incoming(l) => {
                    while let Ok(Some(c)) = self.engine.accept(l) {
                        self.accepted += 1;
                        // The client's FIN may have come with its ACK, before the accept.
                        self.drain(now, c);
                    }
                }
                Event::ReadClosed(c) | Event::Closed { conn: c, .. } => self.finish(now, c),
                Event::Readable(c) => self.drain(now, c),
                _ => {}
            }
        }
    }

    fn drain(&mut self, now: Instant, c: ConnectionHandle) {
        let mut buf = [0u8; 64];
        while let Ok(n) = self.engine.read(now, c, &mut buf) {
            if n == 0 {
                self.finish(now, c);
                break;
            }
        }
    }

    fn finish(&mut self, now: Instant, c: ConnectionHandle) {
        let _ = self.engine.close(now, c);
    }
}

impl Endpoint for Server {
    fn poll(&mut self, now: Instant, port: &mut SimPort<'_>) {
        self.now = now;
        // Small receive batches with a transmit after each keep the reply queue from overflowing.
        while self.engine.receive_from(now, port, 32) > 0 {
            self.engine.poll_transmit(now, port);
        }
        self.engine.handle_timeout(now);
        self.app(now);
        self.engine.poll_transmit(now, port);
        self.max_connections = self.max_connections.max(self.engine.connection_count());
        self.max_memory = self.max_memory.max(self.engine.memory_used());
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let pending = self.engine.has_pending_output().then_some(self.now);
        [self.engine.next_timeout(), pending].into_iter().flatten().min()
    }
}

#[test]
fn legitimate_clients_connect_through_a_spoofed_syn_flood() {
    let run = SimRun::new("legitimate_clients_connect_through_a_spoofed_syn_flood", 0x5f100d);
    let hint = run.reproduce_hint();
    let link = LinkConfig { delay: Duration::from_millis(1), tx_ring_frames: 1024, ..LinkConfig::default() };
    let mut pair = run.pair(link.clone(), link, Crowd::new(run.seed()), Server::new(run.seed()));

    pair.run_to(FLOOD_END, 20_000_000).unwrap_or_else(|e| panic!("{e}"));
    let (crowd, server) = (&pair.a, &pair.b);
    let stats = server.engine.stats();
    eprintln!(
        "spoofed={} legit connected={}/{} failed={} accepted={} cookies sent={} recv={} failed={} \
         max_conns={} max_mem={} reply_drops={}",
        crowd.spoofed_sent,
        crowd.connected,
        crowd.started,
        crowd.failed,
        server.accepted,
        stats.syncookies_sent,
        stats.syncookies_recv,
        stats.syncookies_failed,
        server.max_connections,
        server.max_memory,
        stats.reply_queue_drops
    );
    assert_eq!(crowd.spoofed_sent, FLOOD_RATE * 3 / 2, "{hint}");
    assert_eq!(crowd.started, LEGIT_CLIENTS, "{hint}");
    assert!(crowd.connected * 100 >= LEGIT_CLIENTS * 99, "only {} legit handshakes; {hint}", crowd.connected);
    assert!(server.accepted * 100 >= LEGIT_CLIENTS * 99, "server accepted {}; {hint}", server.accepted);
    assert!(stats.syncookies_recv as usize * 100 >= LEGIT_CLIENTS * 99, "{hint}");
    assert_eq!(stats.syncookies_failed, 0, "no legitimate cookie fails; {hint}");
    assert_eq!(server.engine.syn_queue_len(server.listener).unwrap(), BACKLOG, "{hint}");
    // Flat: the backlog's half-open connections plus the few legitimate ones alive at a time.
    let per_connection = linerate_stack::tcp::connection::Connection::memory_for(&opts());
    assert!(server.max_connections <= BACKLOG + 32, "max connections {}; {hint}", server.max_connections);
    assert!(server.max_memory <= (BACKLOG + 32) * per_connection, "max memory {}; {hint}", server.max_memory);

    // After the flood: the spoofed half-open connections exhaust their SYN-ACK retries (63 s).
    pair.run_to(Instant::from_millis(FLOOD_END.as_millis() + 120_000), 5_000_000)
        .unwrap_or_else(|e| panic!("{e}"));
    let server = &pair.b;
    assert_eq!(server.engine.connection_count(), 0, "{hint}");
    assert_eq!(server.engine.memory_used(), 0, "{hint}");
    assert_eq!(server.engine.syn_queue_len(server.listener).unwrap(), 0, "{hint}");
    assert_eq!(pair.a.failed, 0, "{hint}");
}
