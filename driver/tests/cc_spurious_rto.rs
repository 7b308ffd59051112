//! Spurious retransmission timeouts on the simulated link (issue #4; RFC 3522, RFC 3708,
//! RFC 4015, RFC 5682): a bulk CUBIC flow at 50 ms RTT whose forward delay jumps to 2 s for a
//! moment.
//!
//! For two seconds every frame the sender puts on the forward link takes 2 s to arrive (a
//! hand-over, a route change, a stalled peer), then the path is back to 25 ms. No frame is
//! lost. The ACKs stop, the RTO fires (twice, backed off) and each time the first two
//! outstanding segments are resent; the originals then arrive, before those retransmissions.
//! - With timestamps, the first ACK of the originals echoes a TSval older than the first
//!   retransmission's: the Eifel test (RFC 3522) finds the timeout spurious, the window comes
//!   back to its pre-spike value, the backoff goes, and nothing more is resent.
//! - Without timestamps, the first ACK of the originals covers only the resent segments; F-RTO
//!   sends new data instead of resending more (RFC 5682 §3.1 step 2b) and the next ACK, which
//!   covers segments never resent, proves the timeout spurious (step 3b).
//! - Without timestamps and with F-RTO off (`TcpConfig::frto`), the receiver's D-SACKs for the
//!   retransmissions prove every one unnecessary (RFC 3708); the window comes back when the
//!   last D-SACK arrives.
//! - Control: the same two seconds as a real outage (every forward frame dropped), with each
//!   detector: the retransmission after the outage is what gets through, nothing is undone.
//!
//! Run: `cargo test --release -p linerate-driver --test cc_spurious_rto -- --nocapture`.
//! NewReno and BBR run the Eifel case too (`newreno_and_bbr_undo_the_spike_too`).

mod cc_support;

use cc_support::*;
use linerate_driver::sim::{Direction, LossModel, SimRun};
use linerate_stack::congestion::Algorithm;
use linerate_stack::time::{Duration, Instant};

const RATE_BPS: u64 = 20_000_000;
const RTT: Duration = Duration::from_millis(50);
const CLIENT_PORT: u16 = 41_000;
/// When the spike starts, and how long the path misbehaves.
const SPIKE_AT: Instant = Instant::from_millis(4_000);
const SPIKE: Duration = Duration::from_secs(2);

/// What may detect the spurious timeout: the peers' options and the engine's F-RTO switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detect {
    /// Timestamps on: the Eifel test (RFC 3522).
    Eifel,
    /// No timestamps, F-RTO on (the default): RFC 5682 step 3b.
    Frto,
    /// No timestamps, F-RTO off: only D-SACKs (RFC 3708).
    Dsack,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spike {
    /// Every forward frame sent during the spike is delayed to `SPIKE`.
    Delay,
    /// Every forward frame sent during the spike is dropped.
    Outage,
}

#[derive(Debug)]
struct Outcome {
    /// Segments in flight when the ACKs stopped, and the window then.
    flight_segments: u64,
    cwnd_before: u32,
    /// Window, slow-start threshold and backoff right after the undo (if one happened).
    after_undo: Option<(u32, u32, u32)>,
    /// When the undo came, after the spike began, and the segments resent until then.
    undone_after: Option<Duration>,
    retransmitted_to_undo: Option<u64>,
    timeouts: u64,
    undone: u64,
    /// Per-connection count (`TcpInfo::spurious_rto_undone`).
    undone_info: u64,
    /// Segments retransmitted from the spike to its end plus 4 s (congestion losses of the
    /// queue included).
    retransmitted: u64,
    /// Payload goodput from the spike to 4 s after it, and in the 2 s after the spike ended
    /// (while the window comes back, or does not), Mbit/s.
    goodput_mbps: f64,
    goodput_after_mbps: f64,
    /// The window 2 s after the spike ended.
    cwnd_after: u32,
}

impl Outcome {
    /// The figures of one run, as `docs/PERFORMANCE.md` shows them.
    fn line(&self) -> String {
        let ms = |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{:.0}", d.as_secs_f64() * 1e3));
        let undo =
            self.after_undo.map_or("-".to_owned(), |(c, s, b)| format!("cwnd {c} ssthresh {s} backoff {b}"));
        format!(
            "flight {} segs, cwnd {} before; timeouts {}, undone {} (info {}) at {} ms, after it {undo}; \
             retransmitted {:?} to the undo, {} in 6 s; goodput {:.2} Mbit/s over 6 s, {:.2} in the 2 s after; \
             cwnd {} 2 s after",
            self.flight_segments,
            self.cwnd_before,
            self.timeouts,
            self.undone,
            self.undone_info,
            ms(self.undone_after),
            self.retransmitted_to_undo,
            self.retransmitted,
            self.goodput_mbps,
            self.goodput_after_mbps,
            self.cwnd_after
        )
    }
}

fn spike(name: &str, seed: u64, algorithm: Algorithm, detect: Detect, kind: Spike) -> (SimRun, Outcome) {
    let run = SimRun::new(name, seed);
    let fwd = bottleneck(RATE_BPS, RTT, 1.0);
    let mut cfg = engine_config(CLIENT_IP, 1, run.seed());
    cfg.tcp.timestamps = detect == Detect::Eifel;
    cfg.tcp.frto = detect == Detect::Frto;
    let flow = FlowSpec::endless(algorithm, CLIENT_PORT, Instant::ZERO, 1 << 20);
    let client = Client::with_config(cfg, &[flow]);
    let mut p = pair(&run, fwd.clone(), ack_path(RTT), client, Sink::new(run.seed(), 1 << 20));
    let fail = |e| panic!("{e}\n{}", run.reproduce_hint());
    p.run_to(SPIKE_AT, MAX_STEPS).unwrap_or_else(fail);
    let conn = p.a.connection(0).expect("connected");
    let (retrans0, received0) = (p.a.engine.stats().retrans_segs, p.b.received_total());
    let during = match kind {
        Spike::Delay => fwd.clone().delay(SPIKE),
        Spike::Outage => fwd.clone().loss(LossModel::Bernoulli { p: 1.0 }),
    };
    p.link_mut(Direction::AToB).set_config(during);
    // The last ACKs of the pre-spike flight are back; the RTO (≥ 200 ms) has not fired.
    p.run_to(SPIKE_AT + Duration::from_millis(100), MAX_STEPS).unwrap_or_else(fail);
    let info = p.a.engine.info(p.now(), conn).expect("open");
    assert_eq!(p.a.engine.stats().timeouts, 0, "{}", run.reproduce_hint());
    let (flight_segments, cwnd_before) = (u64::from(info.unacked) / MSS, info.cwnd);
    p.run_to(SPIKE_AT + SPIKE, MAX_STEPS).unwrap_or_else(fail);
    p.link_mut(Direction::AToB).set_config(fwd);
    let received_at_spike_end = p.b.received_total();
    let mut received_after = received_at_spike_end;
    let mut cwnd_after = 0;
    let after = SPIKE_AT + SPIKE + Duration::from_secs(2);
    let end = SPIKE_AT + SPIKE + Duration::from_secs(4);
    let mut undo_seen = None;
    for until in [after, end] {
        if undo_seen.is_none() {
            p.run_until(until, MAX_STEPS, |p| p.a.engine.stats().spurious_rto_undone > 0)
                .unwrap_or_else(fail);
            undo_seen = (p.a.engine.stats().spurious_rto_undone > 0).then(|| {
                let info = p.a.engine.info(p.now(), conn).expect("open");
                let retransmitted = p.a.engine.stats().retrans_segs - retrans0;
                ((info.cwnd, info.ssthresh, info.backoff), p.now() - SPIKE_AT, retransmitted)
            });
        }
        p.run_to(until.max(p.now()), MAX_STEPS).unwrap_or_else(fail);
        if until == after {
            received_after = p.b.received_total();
            cwnd_after = p.a.engine.info(p.now(), conn).expect("open").cwnd;
        }
    }
    let goodput_after = (received_after - received_at_spike_end) as f64 * 8.0 / 2.0;
    let stats = p.a.engine.stats().clone();
    let info = p.a.engine.info(p.now(), conn).expect("open");
    let goodput = (p.b.received_total() - received0) as f64 * 8.0 / (end - SPIKE_AT).as_secs_f64();
    let outcome = Outcome {
        flight_segments,
        cwnd_before,
        after_undo: undo_seen.map(|u| u.0),
        undone_after: undo_seen.map(|u| u.1),
        retransmitted_to_undo: undo_seen.map(|u| u.2),
        timeouts: stats.timeouts,
        undone: stats.spurious_rto_undone,
        undone_info: info.spurious_rto_undone,
        retransmitted: stats.retrans_segs - retrans0,
        goodput_mbps: goodput / 1e6,
        goodput_after_mbps: goodput_after / 1e6,
        cwnd_after,
    };
    println!("{name} ({algorithm:?}, {detect:?}, {kind:?}): {}", outcome.line());
    (run, outcome)
}

/// The checks of a spurious spike: one undo, the window back, few segments resent.
fn assert_undone(run: &SimRun, o: &Outcome) {
    let hint = run.reproduce_hint();
    assert!(o.timeouts >= 1, "the spike must fire the RTO: {o:?}\n{hint}");
    assert_eq!((o.undone, o.undone_info), (1, 1), "one spurious timeout undone: {o:?}\n{hint}");
    let (cwnd, _, _) = o.after_undo.expect("undone");
    assert!(cwnd >= o.cwnd_before, "the window comes back: {cwnd} < {} ({o:?})\n{hint}", o.cwnd_before);
    assert!(o.flight_segments >= 40, "a flight worth saving: {o:?}\n{hint}");
}

#[test]
fn a_delay_spike_with_timestamps_is_undone_by_the_eifel_test() {
    let (run, o) = spike("cc_spurious_rto_eifel", 10_000, Algorithm::Cubic, Detect::Eifel, Spike::Delay);
    assert_undone(&run, &o);
    let (_, _, backoff) = o.after_undo.expect("undone");
    assert_eq!(backoff, 0, "the backoff is cleared: {o:?}\n{}", run.reproduce_hint());
    // Two segments per timeout (the loss window); the flight itself is never resent.
    assert!(
        o.retransmitted_to_undo.is_some_and(|r| r <= 2 * o.timeouts),
        "{:?} segments resent for {} timeouts: {o:?}\n{}",
        o.retransmitted_to_undo,
        o.timeouts,
        run.reproduce_hint()
    );
}

#[test]
fn a_delay_spike_without_timestamps_is_undone_by_frto() {
    let (run, o) = spike("cc_spurious_rto_frto", 10_050, Algorithm::Cubic, Detect::Frto, Spike::Delay);
    assert_undone(&run, &o);
    // The first ACK of the originals covers only the two resent segments; step 2b sends new
    // data instead of resending more, and the next ACK covers an original: two segments per
    // timeout, as with Eifel. Never the flight.
    assert!(o.retransmitted_to_undo.is_some_and(|r| r <= 2 * o.timeouts), "{o:?}\n{}", run.reproduce_hint());
}

#[test]
fn a_delay_spike_without_timestamps_is_undone_by_d_sacks() {
    let (run, o) = spike("cc_spurious_rto_dsack", 10_100, Algorithm::Cubic, Detect::Dsack, Spike::Delay);
    assert_undone(&run, &o);
}

#[test]
fn a_real_outage_is_not_undone() {
    for (detect, seed) in [(Detect::Eifel, 10_200), (Detect::Frto, 10_300), (Detect::Dsack, 10_350)] {
        let (run, o) = spike("cc_spurious_rto_outage", seed, Algorithm::Cubic, detect, Spike::Outage);
        assert!(o.timeouts >= 1, "{o:?}\n{}", run.reproduce_hint());
        assert_eq!(
            (o.undone, o.after_undo),
            (0, None),
            "a real loss stays a loss: {o:?}\n{}",
            run.reproduce_hint()
        );
    }
}

/// NewReno and BBR with timestamps: the same undo. NewReno's window comes back at once. BBR
/// restores `prior_cwnd` and resets what Linux's `bbr_undo_cwnd` resets (lower bounds, loss
/// signals of the round, full-pipe counters); the same ACK then bounds the window by the model
/// (`BBRSetCwnd`, `BBRBoundCwndForModel`), which the stall and the losses the timeout reported
/// had lowered, so it comes back over the next rounds (measured: 2 s later it is where it was).
#[test]
fn newreno_and_bbr_undo_the_spike_too() {
    for (algorithm, seed) in [(Algorithm::NewReno, 10_400), (Algorithm::Bbr, 10_500)] {
        let (run, o) = spike("cc_spurious_rto_controllers", seed, algorithm, Detect::Eifel, Spike::Delay);
        let hint = run.reproduce_hint();
        assert_eq!((o.undone, o.undone_info), (1, 1), "{algorithm:?}: {o:?}\n{hint}");
        assert!(
            o.cwnd_after * 10 >= o.cwnd_before * 9,
            "{algorithm:?}: window not back 2 s later: {o:?}\n{hint}"
        );
        if algorithm == Algorithm::NewReno {
            assert_undone(&run, &o);
        }
    }
}
