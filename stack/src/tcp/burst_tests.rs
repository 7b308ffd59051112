//! Burst continuations ([`Connection::next_in_burst`], [`Connection::on_burst_segment_sent`])
//! against the per-segment path: two connections built alike take the same random steps —
//! application writes, transmit rounds of at most a few frames, the peer's ACKs (cumulative on
//! and off segment boundaries, duplicates, SACK blocks, windows that shrink and grow, echoed
//! timestamps), time passing with the timers that fall due, pacing and the congestion
//! controller switched on a live connection. One transmits as the engine's burst loop does
//! (`engine/transmit.rs`: a header is built only when the burst does not continue, and the
//! continuation's cheap plan and bookkeeping replace `plan_segment` and the full bookkeeping),
//! the other plans, builds a header and records every segment on its own, as one frame per poll
//! does. After every step the segments planned, their headers (SEQ and flags patched into the
//! burst's header, as the template writer does), the whole connection (`Debug`, loss recovery,
//! the controller, the rate estimator and the pacer included) and the stack counters must be
//! equal.

use proptest::prelude::*;

use crate::congestion::Algorithm;
use crate::stats::Stats;
use crate::tcp::buffer_pool::BufferPool;
use crate::tcp::connection::{Connection, TimestampState};
use crate::tcp::input::{ChallengeAckLimiter, InputContext};
use crate::tcp::output::{SegmentKind, SegmentPlan};
use crate::tcp::state::State;
use crate::tcp::test_support;
use crate::tcp::{SocketOptions, TcpConfig};
use crate::time::{Duration, Instant};
use crate::wire::{SackBlock, SeqNumber, TcpFlags, TcpOptions, TcpRepr, Timestamps};

const SNDBUF: usize = 96 * 1024;

#[derive(Debug, Clone)]
enum Step {
    Write(usize),
    /// A write of this many segments of the MSS (so a burst can end on a full-size segment).
    WriteSegments(u32),
    /// A transmit round of at most this many frames (the device's room).
    Transmit(usize),
    Ack {
        /// SEG.ACK: this many segments' worth (of the MSS) past SND.UNA, clipped to SND.MAX,
        /// plus `extra` bytes (an ACK inside a segment).
        segments: u32,
        extra: u32,
        /// A SACK block this many segments above SEG.ACK, this many segments long.
        sack: Option<(u32, u32)>,
        window: u16,
        /// How far back the echoed timestamp is, in milliseconds.
        echo_ms: u32,
    },
    Wait(u64),
    Pacing(bool),
    Controller(u8),
    Close,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => prop_oneof![Just(SNDBUF), 1usize..20_000].prop_map(Step::Write),
        2 => (1u32..30).prop_map(Step::WriteSegments),
        5 => prop_oneof![Just(usize::MAX), 1usize..8].prop_map(Step::Transmit),
        5 => (
            0u32..12,
            prop_oneof![4 => Just(0u32), 1 => 1u32..1500],
            prop_oneof![3 => Just(None), 1 => (1u32..6, 1u32..4).prop_map(Some)],
            prop_oneof![4 => Just(65535u16), 1 => 0u16..65535],
            0u32..300,
        )
            .prop_map(|(segments, extra, sack, window, echo_ms)| Step::Ack {
                segments,
                extra,
                sack,
                window,
                echo_ms
            }),
        3 => prop_oneof![Just(0u64), 1u64..2_000, 2_000u64..400_000].prop_map(Step::Wait),
        1 => any::<bool>().prop_map(Step::Pacing),
        1 => (0u8..3).prop_map(Step::Controller),
        1 => Just(Step::Close),
    ]
}

#[derive(Debug, Clone, Copy)]
struct Setup {
    timestamps: bool,
    sack: bool,
    mss: u32,
    algorithm: u8,
    pacing: bool,
    iss: u32,
}

fn algorithm(k: u8) -> Algorithm {
    [Algorithm::NewReno, Algorithm::Cubic, Algorithm::Bbr][usize::from(k % 3)]
}

/// An ESTABLISHED connection with nothing sent yet, its controller built for `setup.mss`.
fn established(setup: &Setup, pool: &mut BufferPool) -> Connection {
    let cfg = TcpConfig::default();
    let opts = SocketOptions {
        recv_buffer: 8 * 1024,
        send_buffer: SNDBUF,
        congestion: algorithm(setup.algorithm),
        pacing: setup.pacing,
        ..SocketOptions::default()
    };
    let now = Instant::from_millis(1);
    let mut conn =
        test_support::established(opts, SeqNumber(setup.iss), SeqNumber(0x0abc_0000), 8192, now, pool);
    conn.snd_mss = setup.mss;
    conn.sack_ok = setup.sack;
    conn.ts = setup.timestamps.then_some(TimestampState { offset: 7, recent: 100, recent_age: now });
    conn.reset_congestion(&cfg, now);
    conn.set_pacing_timer_granularity(Duration::from_micros(100));
    conn
}

/// A segment and its header as they would go out.
type Sent = (SegmentPlan, String);

/// One frame per poll: every segment planned, given its header and recorded on its own.
fn transmit_per_segment(conn: &mut Connection, now: Instant, room: usize, stats: &mut Stats) -> Vec<Sent> {
    let mut out = Vec::new();
    while out.len() < room {
        let Some(plan) = conn.plan_segment() else { break };
        let header = conn.header_for(&plan, now);
        conn.on_segment_sent(&plan, now, stats);
        out.push((plan, format!("{header:?}")));
    }
    out
}

/// The engine's burst loop (`Engine::transmit_segments`) without the frames; also how many
/// segments were continuations.
fn transmit_burst(conn: &mut Connection, now: Instant, room: usize, stats: &mut Stats) -> (Vec<Sent>, usize) {
    let mut out = Vec::new();
    let mut continuations = 0;
    let mut burst: Option<(SegmentPlan, TcpRepr<'static>)> = None;
    let mut continued: Option<SegmentPlan> = None;
    let mut timers_stale = false;
    while out.len() < room {
        let is_continued = continued.is_some();
        let Some(plan) = continued.take().or_else(|| conn.plan_segment()) else { break };
        let header = match burst.as_mut() {
            Some((prev, header)) if conn.continues_burst(prev, header, &plan) => {
                header.seq_number = plan.seq;
                header.flags = plan.flags;
                *header
            }
            _ => conn.header_for(&plan, now),
        };
        burst = Some((plan, header));
        if is_continued {
            conn.on_burst_segment_sent(&plan, now, stats);
            continuations += 1;
        } else if plan.kind == SegmentKind::Data {
            conn.on_segment_sent_in_burst(&plan, now, stats);
            timers_stale = true;
        } else {
            conn.on_segment_sent(&plan, now, stats);
            timers_stale = false;
        }
        if plan.kind == SegmentKind::Data {
            continued = conn.next_in_burst(&plan);
        }
        out.push((plan, format!("{header:?}")));
    }
    if timers_stale {
        conn.update_send_timers(now);
    }
    (out, continuations)
}

struct Side {
    conn: Connection,
    stats: Stats,
    challenge: ChallengeAckLimiter,
    /// Segments sent through `on_burst_segment_sent`.
    continued: usize,
}

impl Side {
    fn ack(&mut self, step: &Step, now: Instant, tsval: u32) {
        let Step::Ack { segments, extra, sack, window, echo_ms } = *step else { return };
        let conn = &self.conn;
        let mss = conn.snd_mss;
        let flight = (conn.snd_max - conn.snd_una).max(0) as u32;
        let ack = conn.snd_una + (segments * mss + extra).min(flight);
        let mut options = TcpOptions {
            timestamps: conn.ts.map(|_| Timestamps {
                tsval,
                tsecr: conn.ts_now(now - Duration::from_millis(u64::from(echo_ms))),
            }),
            ..TcpOptions::default()
        };
        if let Some((above, len)) = sack.filter(|_| conn.sack_ok) {
            let left = ack + above * mss;
            let right = (left + len * mss).min(conn.snd_max);
            if right - left > 0 {
                options.sack_blocks.push(SackBlock { left, right });
            }
        }
        let seg = TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq_number: conn.rcv_nxt,
            ack_number: ack,
            flags: TcpFlags::ACK,
            window_len: window,
            urgent_pointer: 0,
            options,
            payload: &[],
        };
        let cfg = TcpConfig::default();
        let mut ctx = InputContext { now, cfg: &cfg, stats: &mut self.stats, challenge: &mut self.challenge };
        self.conn.on_segment(&seg, &mut ctx);
        self.after_update(now);
    }

    /// What the engine does after any event: the send timers follow from the state.
    fn after_update(&mut self, now: Instant) {
        if !matches!(self.conn.state, State::Closed | State::TimeWait) {
            self.conn.update_send_timers(now);
        }
    }

    fn transmit(&mut self, now: Instant, room: usize, burst: bool) -> Vec<Sent> {
        if burst {
            let (out, continuations) = transmit_burst(&mut self.conn, now, room, &mut self.stats);
            self.continued += continuations;
            out
        } else {
            transmit_per_segment(&mut self.conn, now, room, &mut self.stats)
        }
    }
}

fn run(setup: &Setup, steps: &[Step]) -> Result<usize, TestCaseError> {
    let mut pool = BufferPool::new(1 << 22);
    let mut sides = [false, true].map(|_| Side {
        conn: established(setup, &mut pool),
        stats: Stats::default(),
        challenge: ChallengeAckLimiter::new(1000),
        continued: 0,
    });
    let cfg = TcpConfig::default();
    let mut now = Instant::from_millis(2);
    let mut tsval = 1000u32;
    let data: Vec<u8> = (0..SNDBUF).map(|i| (i as u8).wrapping_mul(7)).collect();
    for (i, step) in steps.iter().enumerate() {
        match *step {
            Step::Write(n) => {
                for side in &mut sides {
                    side.conn.sndbuf.write(&data[..n]);
                }
            }
            Step::WriteSegments(k) => {
                for side in &mut sides {
                    let n = (k * side.conn.snd_mss) as usize;
                    side.conn.sndbuf.write(&data[..n.min(SNDBUF)]);
                }
            }
            Step::Transmit(room) => {
                let single = sides[0].transmit(now, room, false);
                let burst = sides[1].transmit(now, room, true);
                prop_assert_eq!(&single, &burst, "step {} {:?}", i, step);
            }
            Step::Ack { .. } => {
                tsval = tsval.wrapping_add(1);
                for side in &mut sides {
                    side.ack(step, now, tsval);
                }
            }
            Step::Wait(us) => {
                now += Duration::from_micros(us);
                for side in &mut sides {
                    side.conn.on_timers(now, &cfg, &mut side.stats);
                    side.after_update(now);
                }
            }
            Step::Pacing(on) => {
                for side in &mut sides {
                    side.conn.opts.pacing = on;
                    side.conn.update_congestion(now);
                }
            }
            Step::Controller(k) => {
                for side in &mut sides {
                    side.conn.opts.congestion = algorithm(k);
                    side.conn.update_congestion(now);
                }
            }
            Step::Close => {
                for side in &mut sides {
                    if side.conn.state == State::Established {
                        side.conn.fin_queued = true;
                        side.conn.state = State::FinWait1;
                    }
                }
            }
        }
        prop_assert_eq!(
            format!("{:?}", sides[0].conn),
            format!("{:?}", sides[1].conn),
            "step {} {:?}",
            i,
            step
        );
        prop_assert_eq!(&sides[0].stats, &sides[1].stats, "step {}", i);
        if matches!(sides[0].conn.state, State::Closed | State::TimeWait) {
            break;
        }
    }
    Ok(sides[1].continued)
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(1448u32), Just(1460u32), 536u32..1460],
        0u8..3,
        any::<bool>(),
        prop_oneof![Just(u32::MAX - 20_000), any::<u32>()],
    )
        .prop_map(|(timestamps, sack, mss, algorithm, pacing, iss)| Setup {
            timestamps,
            sack,
            mss,
            algorithm,
            pacing,
            iss,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn burst_continuations_end_where_the_per_segment_path_ends(
        setup in setup(),
        steps in proptest::collection::vec(step(), 1..120),
    ) {
        run(&setup, &steps)?;
    }
}

/// The continuation does carry bulk bursts, under every controller and with pacing: without
/// this the property above could pass with a `next_in_burst` that never answers.
#[test]
fn bulk_bursts_are_continued() {
    for algorithm in 0..3 {
        for pacing in [false, true] {
            let setup = Setup { timestamps: true, sack: true, mss: 1448, algorithm, pacing, iss: 5 };
            let mut steps = vec![Step::Write(SNDBUF)];
            for _ in 0..40 {
                steps.push(Step::Write(SNDBUF));
                steps.push(Step::Transmit(usize::MAX));
                steps.push(Step::Wait(500));
                let ack = Step::Ack { segments: 4, extra: 0, sack: None, window: 65535, echo_ms: 1 };
                steps.push(ack);
            }
            let continued = run(&setup, &steps).unwrap();
            assert!(continued > 100, "{continued} continuations for {setup:?}");
        }
    }
}
