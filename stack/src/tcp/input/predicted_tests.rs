//! Header prediction ([`Connection::on_predicted_segment`]) against the general path: two
//! connections built alike take the same random segments — in order, ahead of RCV.NXT (held out
//! of order), duplicates, out of the window, with any flags, ACKs around SND.UNA, windows that
//! change, timestamps old and new or missing, SACK blocks and other options, RCV.NXT near the
//! 2^32 wrap, data staged in the ring as the fused receive path does, application reads — one
//! through `on_segment` (which predicts), one through the general path only. After every segment
//! and the engine's timer re-derivation, the whole connection (`Debug`), the action, the
//! counters and the readable bytes must be equal. Bad checksums never reach the connection
//! (the engine drops them first): `stack/tests/engine_fused_receive.rs` covers those.

use proptest::prelude::*;

use super::{ChallengeAckLimiter, InputAction, InputContext};
use crate::stats::Stats;
use crate::tcp::buffer_pool::BufferPool;
use crate::tcp::connection::{Connection, TimestampState};
use crate::tcp::state::State;
use crate::tcp::test_support;
use crate::tcp::{SocketOptions, TcpConfig};
use crate::time::{Duration, Instant};
use crate::wire::{Checksum, SackBlock, SeqNumber, TcpFlags, TcpOptions, TcpRepr, Timestamps};

const RCVBUF: usize = 8 * 1024;

#[derive(Debug, Clone)]
struct Arrival {
    /// Where the segment starts, relative to RCV.NXT at the time it arrives.
    seq: SeqChoice,
    len: usize,
    flags: u8,
    /// SEG.ACK relative to SND.UNA.
    ack: i32,
    window: Option<u16>,
    /// SEG.TSval relative to TS.Recent; `None`: no timestamp option.
    tsval: Option<i32>,
    sack: bool,
    odd_options: bool,
    /// Stage the payload in the ring first, as the fused receive path does for in-order data.
    staged: bool,
    /// Bytes the application reads before the segment arrives.
    read: usize,
    dt_us: u64,
}

#[derive(Debug, Clone, Copy)]
enum SeqChoice {
    Expected,
    Ahead(u32),
    Behind(u32),
    Far(u32),
}

fn seq_choice() -> impl Strategy<Value = SeqChoice> {
    prop_oneof![
        8 => Just(SeqChoice::Expected),
        2 => (1u32..3000).prop_map(SeqChoice::Ahead),
        1 => (1u32..3000).prop_map(SeqChoice::Behind),
        1 => any::<u32>().prop_map(SeqChoice::Far),
    ]
}

fn flags() -> impl Strategy<Value = u8> {
    let ack = TcpFlags::ACK.0;
    prop_oneof![
        6 => Just(ack),
        4 => Just(ack | TcpFlags::PSH.0),
        2 => any::<u8>(),
        1 => Just(ack | TcpFlags::FIN.0),
        1 => Just(0u8),
    ]
}

fn arrival() -> impl Strategy<Value = Arrival> {
    (
        seq_choice(),
        prop_oneof![4 => Just(1448usize), 2 => 0usize..2000, 1 => Just(0usize)],
        flags(),
        prop_oneof![6 => Just(0i32), 1 => -70_000i32..70_000],
        prop_oneof![4 => Just(None), 1 => any::<u16>().prop_map(Some)],
        prop_oneof![6 => (0i32..3).prop_map(Some), 1 => any::<i32>().prop_map(Some), 1 => Just(None)],
        (any::<bool>(), any::<bool>(), any::<bool>()),
        prop_oneof![3 => Just(0usize), 1 => 0usize..RCVBUF],
        0u64..50_000,
    )
        .prop_map(|(seq, len, flags, ack, window, tsval, (sack, odd_options, staged), read, dt_us)| {
            Arrival {
                seq,
                len,
                flags,
                ack,
                window,
                tsval,
                sack: sack && odd_options,
                odd_options: odd_options && !sack,
                staged,
                read,
                dt_us,
            }
        })
}

/// An ESTABLISHED connection with RCV.NXT at `irs + 1` and nothing of ours in flight.
fn established(irs: u32, timestamps: bool, ts_recent: u32, window: u32, pool: &mut BufferPool) -> Connection {
    let opts = SocketOptions { recv_buffer: RCVBUF, send_buffer: 2048, ..SocketOptions::default() };
    let (iss, now) = (SeqNumber(0x1234_5678), Instant::from_millis(1));
    let mut conn = test_support::established(opts, iss, SeqNumber(irs), window, now, pool);
    conn.ts = timestamps.then_some(TimestampState {
        offset: 7,
        recent: ts_recent,
        recent_age: Instant::from_millis(1),
    });
    conn
}

fn segment_options(a: &Arrival, recent: u32, rcv_nxt: SeqNumber) -> TcpOptions {
    let mut options = TcpOptions {
        timestamps: a.tsval.map(|d| Timestamps { tsval: recent.wrapping_add(d as u32), tsecr: 99 }),
        ..TcpOptions::default()
    };
    if a.sack {
        options.sack_blocks.push(SackBlock { left: rcv_nxt + 5000, right: rcv_nxt + 6000 });
    }
    if a.odd_options {
        options.mss = Some(1200);
        options.window_scale = Some(3);
        options.sack_permitted = true;
    }
    options
}

/// The connection as the engine leaves it after a segment: send timers re-derived.
fn snapshot(conn: &Connection) -> String {
    format!("{conn:?}")
}

struct Side {
    conn: Connection,
    stats: Stats,
    challenge: ChallengeAckLimiter,
}

impl Side {
    fn step(&mut self, seg: &TcpRepr<'_>, now: Instant, general_only: bool) -> InputAction {
        let cfg = TcpConfig::default();
        let mut ctx = InputContext { now, cfg: &cfg, stats: &mut self.stats, challenge: &mut self.challenge };
        let action = if general_only {
            self.conn.on_segment_general(seg, &mut ctx)
        } else {
            self.conn.on_segment(seg, &mut ctx)
        };
        self.conn.rcvbuf.discard_staged();
        if !matches!(self.conn.state, State::Closed | State::TimeWait) {
            self.conn.update_send_timers(now);
        }
        action
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn predicted_segments_end_where_the_general_path_ends(
        irs in prop_oneof![Just(u32::MAX - 3000), any::<u32>()],
        timestamps in any::<bool>(),
        ts_recent in any::<u32>(),
        window in prop_oneof![Just(RCVBUF as u32), 0u32..RCVBUF as u32],
        arrivals in proptest::collection::vec(arrival(), 1..40),
    ) {
        let mut pool = BufferPool::new(1 << 20);
        let mut sides = [false, true].map(|_| Side {
            conn: established(irs, timestamps, ts_recent, window, &mut pool),
            stats: Stats::default(),
            challenge: ChallengeAckLimiter::new(1000),
        });
        let mut now = Instant::from_millis(2);
        for (i, a) in arrivals.iter().enumerate() {
            now += Duration::from_micros(a.dt_us);
            let payload: Vec<u8> = (0..a.len).map(|k| (k as u8).wrapping_mul(13).wrapping_add(i as u8)).collect();
            let mut reads = [Vec::new(), Vec::new()];
            for (side, read) in sides.iter_mut().zip(&mut reads) {
                read.resize(a.read, 0);
                let n = side.conn.rcvbuf.read(read);
                read.truncate(n);
            }
            prop_assert_eq!(&reads[0], &reads[1]);
            if a.read > 0 {
                // As if an ACK went out: the window we advertise moves right over the freed room.
                for side in &mut sides {
                    let conn = &mut side.conn;
                    let edge = conn.rcv_nxt + conn.rcvbuf.free() as u32;
                    if edge - conn.rcv_adv > 0 {
                        conn.rcv_adv = edge;
                    }
                    conn.last_ack_sent = conn.rcv_nxt;
                }
            }
            let conn = &sides[0].conn;
            let rcv_nxt = conn.rcv_nxt;
            let seq = match a.seq {
                SeqChoice::Expected => rcv_nxt,
                SeqChoice::Ahead(d) => rcv_nxt + d,
                SeqChoice::Behind(d) => rcv_nxt - d,
                SeqChoice::Far(v) => SeqNumber(v),
            };
            let recent = conn.ts.map_or(0, |t| t.recent);
            let seg = TcpRepr {
                src_port: 40000,
                dst_port: 80,
                seq_number: seq,
                ack_number: conn.snd_una + a.ack as u32,
                flags: TcpFlags(a.flags),
                window_len: a.window.unwrap_or(65535),
                urgent_pointer: 0,
                options: segment_options(a, recent, rcv_nxt),
                payload: &payload,
            };
            let mut actions = [InputAction::None; 2];
            for (k, side) in sides.iter_mut().enumerate() {
                if a.staged && seq == side.conn.rcv_nxt {
                    side.conn.rcvbuf.stage(seq, &payload, &mut Checksum::new());
                }
                actions[k] = side.step(&seg, now, k == 1);
            }
            prop_assert_eq!(actions[0], actions[1], "segment {} {:?}", i, a);
            prop_assert_eq!(snapshot(&sides[0].conn), snapshot(&sides[1].conn), "segment {} {:?}", i, a);
            prop_assert_eq!(&sides[0].stats, &sides[1].stats, "segment {}", i);
            if sides[0].conn.state != State::Established {
                break;
            }
        }
    }
}

/// The prediction does take the usual segment: without this the property above could pass
/// with a predicate that never holds.
#[test]
fn the_usual_next_segment_is_predicted() {
    let mut pool = BufferPool::new(1 << 20);
    for timestamps in [false, true] {
        let conn = established(u32::MAX - 10, timestamps, 5, RCVBUF as u32, &mut pool);
        let payload = [7u8; 1448];
        let options = TcpOptions {
            timestamps: timestamps.then_some(Timestamps { tsval: 6, tsecr: 1 }),
            ..TcpOptions::default()
        };
        let seg = TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq_number: conn.rcv_nxt,
            ack_number: conn.snd_una,
            flags: TcpFlags::ACK | TcpFlags::PSH,
            window_len: 1000,
            urgent_pointer: 0,
            options,
            payload: &payload,
        };
        assert!(conn.predicts(&seg), "timestamps {timestamps}");
        let old = TcpRepr {
            options: TcpOptions { timestamps: Some(Timestamps { tsval: 4, tsecr: 1 }), ..options },
            ..seg
        };
        // With timestamps: PAWS could reject it. Without: an option the connection does not use.
        assert!(!conn.predicts(&old), "an older TSval goes the general way");
        assert!(!conn.predicts(&TcpRepr { flags: TcpFlags::ACK | TcpFlags::FIN, ..seg }));
        assert!(!conn.predicts(&TcpRepr { seq_number: conn.rcv_nxt + 1, ..seg }));
        assert!(!conn.predicts(&TcpRepr { ack_number: conn.snd_una + 1, ..seg }));
        assert!(!conn.predicts(&TcpRepr { payload: &[], ..seg }));
    }
}
