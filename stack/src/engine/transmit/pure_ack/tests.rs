//! The pure-ACK fast path against the general path: two worlds built alike (a receiving engine
//! under test and a sending peer, seeded the same) take the same random steps — the peer writes,
//! the receiver's application reads (window updates) and now and then writes (data to send,
//! so the fast path must decline), frames to the receiver are lost, duplicated or swapped
//! (out-of-order data, SACK and D-SACK reports, immediate ACKs), the receiver's device refuses
//! frames, time advances (delayed-ACK and retransmission timers) — with timestamps, SACK,
//! window scaling and checksum offload on or off. In one world the receiver takes the fast
//! path, in the other it never does. After every step the frames the receiver sent must be
//! byte-identical and the whole receiving engine (connections, timers, counters, queues, the
//! IPv4 identification) must print the same `Debug`.

use super::super::test_port::TestPort;
use crate::engine::{ConnectionHandle, Engine, EngineConfig, Event};
use crate::tcp::SocketOptions;
use crate::time::{Duration, Instant};
use crate::wire::{EthernetAddress, Ipv4Address};
use proptest::prelude::*;

const R_IP: Ipv4Address = Ipv4Address::new(198, 18, 9, 2);
const P_IP: Ipv4Address = Ipv4Address::new(198, 18, 9, 1);
const PORT: u16 = 9009;

#[derive(Clone, Copy, Debug)]
struct Setup {
    seed: u64,
    timestamps: bool,
    sack: bool,
    window_scaling: bool,
    offload: bool,
    recv_buffer: usize,
}

#[derive(Clone, Copy, Debug)]
enum Step {
    PeerWrite(usize),
    ReceiverWrite(usize),
    Read(usize),
    /// The peer's turn; its frames to the receiver: lost by `loss` bit i, frame 0 sent twice,
    /// the first two swapped.
    Peer {
        loss: u8,
        dup: bool,
        swap: bool,
    },
    /// The receiver's turn; its device takes at most `room` frames.
    Receiver {
        room: usize,
    },
    Advance(u64),
}

struct World {
    r: Engine,
    p: Engine,
    rd: TestPort,
    pd: TestPort,
    rc: ConnectionHandle,
    pc: ConnectionHandle,
    now: Instant,
}

impl World {
    fn new(s: &Setup, fast: bool) -> World {
        let config = |ip, mac: u8, seed| {
            let mut c = EngineConfig::new(ip, 24, EthernetAddress([2, 0, 0, 0, 9, mac]), seed);
            c.tcp.timestamps = s.timestamps;
            c.tcp.sack = s.sack;
            c.tcp.window_scaling = s.window_scaling;
            c
        };
        let now = Instant::ZERO;
        let mut r = Engine::new(config(R_IP, 2, s.seed), now);
        r.pure_ack_fast_path = fast;
        let mut p = Engine::new(config(P_IP, 1, s.seed ^ 0x5eed), now);
        let opts =
            SocketOptions { recv_buffer: s.recv_buffer, send_buffer: 64 << 10, ..SocketOptions::default() };
        let port =
            |offload, verified| TestPort { room: usize::MAX, offload, verified, ..TestPort::default() };
        let (rd, pd) = (port(s.offload, false), port(false, s.offload));
        let l = r.listen(PORT, 4, Some(opts)).unwrap();
        let pc = p.connect(now, (R_IP, PORT), None, Some(opts)).unwrap();
        let mut w = World { r, p, rd, pd, rc: pc, pc, now };
        for _ in 0..20 {
            w.peer(0, false, false);
            w.receiver(usize::MAX);
            while let Some(ev) = w.r.poll_event() {
                if let Event::Incoming(_) = ev {
                    w.rc = w.r.accept(l).unwrap().unwrap();
                    return w;
                }
            }
        }
        panic!("no connection");
    }

    fn peer(&mut self, loss: u8, dup: bool, swap: bool) {
        self.p.receive_from(self.now, &mut self.pd, 64);
        self.p.handle_timeout(self.now);
        self.p.poll_transmit(self.now, &mut self.pd);
        while self.p.poll_event().is_some() {}
        let mut frames: Vec<Vec<u8>> = self.pd.outbox.drain(..).collect();
        if dup && !frames.is_empty() {
            frames.insert(0, frames[0].clone());
        }
        if swap && frames.len() > 1 {
            frames.swap(0, 1);
        }
        for (i, f) in frames.into_iter().enumerate() {
            if i >= 8 || loss & (1 << i) == 0 {
                self.rd.inbox.push_back(f);
            }
        }
    }

    /// The receiver's turn; returns the frames it sent.
    fn receiver(&mut self, room: usize) -> Vec<Vec<u8>> {
        self.r.receive_from(self.now, &mut self.rd, 64);
        self.r.handle_timeout(self.now);
        self.rd.room = room;
        self.r.poll_transmit(self.now, &mut self.rd);
        self.rd.room = usize::MAX;
        let sent: Vec<Vec<u8>> = self.rd.outbox.drain(..).collect();
        self.pd.inbox.extend(sent.iter().cloned());
        sent
    }

    fn step(&mut self, step: Step) -> Vec<Vec<u8>> {
        match step {
            Step::PeerWrite(n) => {
                let _ = self.p.write(self.now, self.pc, &vec![0x42; n]);
            }
            Step::ReceiverWrite(n) => {
                let _ = self.r.write(self.now, self.rc, &vec![0x24; n]);
            }
            Step::Read(n) => {
                let _ = self.r.read(self.now, self.rc, &mut vec![0; n]);
            }
            Step::Peer { loss, dup, swap } => self.peer(loss, dup, swap),
            Step::Receiver { room } => return self.receiver(room),
            Step::Advance(ms) => self.now += Duration::from_millis(ms),
        }
        Vec::new()
    }

    /// The receiving engine's whole state, but for the fast path's switch (the ACK templates
    /// are caches whose `Debug` shows nothing).
    fn receiver_state(&mut self) -> String {
        let fast = core::mem::replace(&mut self.r.pure_ack_fast_path, true);
        let s = format!("{:?}", self.r);
        self.r.pure_ack_fast_path = fast;
        s
    }
}

fn setup() -> impl Strategy<Value = Setup> {
    (any::<u64>(), any::<(bool, bool, bool, bool)>(), prop_oneof![Just(2048usize), Just(8192), Just(65536)])
        .prop_map(|(seed, (timestamps, sack, window_scaling, offload), recv_buffer)| Setup {
            seed,
            timestamps: timestamps || seed % 4 != 0,
            sack,
            window_scaling,
            offload,
            recv_buffer,
        })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (1usize..6000).prop_map(Step::PeerWrite),
        1 => (1usize..3000).prop_map(Step::ReceiverWrite),
        3 => (1usize..9000).prop_map(Step::Read),
        6 => (prop_oneof![6 => Just(0u8), 1 => any::<u8>()], prop::bool::weighted(0.1), prop::bool::weighted(0.1))
            .prop_map(|(loss, dup, swap)| Step::Peer { loss, dup, swap }),
        6 => prop_oneof![6 => Just(usize::MAX), 1 => 0usize..3].prop_map(|room| Step::Receiver { room }),
        3 => prop_oneof![Just(0u64), 1u64..50, 150u64..700].prop_map(Step::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn fast_path_sends_and_leaves_what_the_general_path_does(
        s in setup(),
        steps in prop::collection::vec(step(), 1..80),
    ) {
        let mut fast = World::new(&s, true);
        let mut general = World::new(&s, false);
        prop_assert_eq!(fast.receiver_state(), general.receiver_state());
        for (i, &st) in steps.iter().enumerate() {
            let a = fast.step(st);
            let b = general.step(st);
            prop_assert_eq!(a, b, "frames at step {} ({:?})", i, st);
            prop_assert_eq!(fast.receiver_state(), general.receiver_state(), "state after step {} ({:?})", i, st);
        }
    }
}

/// The bulk receiver's ACKs do take the fast path: every second full segment is acknowledged
/// through it (counted by the frames sent while the general path's planner is never asked).
#[test]
fn bulk_acks_take_the_fast_path() {
    let s = Setup {
        seed: 7,
        timestamps: true,
        sack: true,
        window_scaling: true,
        offload: false,
        recv_buffer: 65536,
    };
    let mut w = World::new(&s, true);
    w.step(Step::PeerWrite(20_000));
    w.step(Step::Peer { loss: 0, dup: false, swap: false });
    let before = w.r.ip_ident;
    let conn = w.r.slots[w.rc.index as usize].conn.as_deref().unwrap();
    assert!(!conn.ack_now);
    // The peer's initial window of full segments arrived; the receiver's ACK is pure.
    w.r.receive_from(w.now, &mut w.rd, 64);
    let conn = w.r.slots[w.rc.index as usize].conn.as_deref().unwrap();
    assert!(conn.pure_ack_due(), "a bulk receiver's ACK is pure");
    w.r.poll_transmit(w.now, &mut w.rd);
    assert_eq!(w.rd.outbox.len(), 1);
    assert_eq!(w.r.ip_ident, before.wrapping_add(1));
    let conn = w.r.slots[w.rc.index as usize].conn.as_deref().unwrap();
    assert!(!conn.ack_now && !conn.may_plan_more());
}
