//! RACK-TLP through the `LossRecovery` facade, against a tiny simulated path: a receiver that
//! SACKs (RFC 2018) and D-SACKs (RFC 2883), per-segment forward delays or drops, instant ACKs.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use linerate_stack::congestion::PacketSnapshot;
use linerate_stack::recovery::{
    AckOutcome, LossRecovery, RecoveryConfig, RecoveryTimer, SentSegment, TimeoutOutcome,
};
use linerate_stack::time::{Duration, Instant};
use linerate_stack::wire::{SackBlock, SeqNumber};

const MSS: u32 = 1000;
const BASE: u32 = 5000;

/// Receiver: received byte ranges above `rcv_nxt`, most recently changed first.
#[derive(Default)]
struct Receiver {
    rcv_nxt: u32,
    ranges: Vec<(u32, u32)>,
}

impl Receiver {
    fn new() -> Self {
        Receiver { rcv_nxt: BASE, ranges: Vec::new() }
    }
    /// Takes a segment; returns the ACK (cumulative ack and SACK blocks, D-SACK first).
    fn receive(&mut self, s: u32, e: u32) -> (u32, Vec<SackBlock>) {
        let dup = e <= self.rcv_nxt || self.ranges.iter().any(|&(l, r)| l <= s && e <= r);
        let mut blocks = Vec::new();
        if dup {
            blocks.push(SackBlock { left: SeqNumber(s), right: SeqNumber(e) });
        } else {
            let (mut l, mut r) = (s.max(self.rcv_nxt), e);
            self.ranges.retain(|&(a, b)| {
                let touch = a <= r && l <= b;
                if touch {
                    l = l.min(a);
                    r = r.max(b);
                }
                !touch
            });
            self.ranges.insert(0, (l, r));
            if let Some(i) = self.ranges.iter().position(|&(a, _)| a <= self.rcv_nxt) {
                self.rcv_nxt = self.ranges.remove(i).1;
            }
        }
        for &(l, r) in self.ranges.iter().take(4 - blocks.len()) {
            blocks.push(SackBlock { left: SeqNumber(l), right: SeqNumber(r) });
        }
        (self.rcv_nxt, blocks)
    }
}

/// Sender + path. `delay(seq, is_retransmit)` gives the one-way delay, `None` drops.
struct Sim<F: FnMut(u32, bool) -> Option<Duration>> {
    lr: LossRecovery,
    rx: Receiver,
    delay: F,
    now: Instant,
    snd_nxt: u32,
    arrivals: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    acks: Vec<(Instant, AckOutcome)>,
    timeouts: Vec<(Instant, RecoveryTimer, TimeoutOutcome)>,
    retransmits: Vec<(Instant, u32)>,
    /// Only retransmit what loss detection marked (RFC 6675 rule 1), never rules 3/4.
    lost_only: bool,
}

impl<F: FnMut(u32, bool) -> Option<Duration>> Sim<F> {
    fn new(delay: F) -> Self {
        let config = RecoveryConfig { capacity: 4096, smss: MSS, ..RecoveryConfig::default() };
        Sim {
            lr: LossRecovery::new(config, SeqNumber(BASE)),
            rx: Receiver::new(),
            delay,
            now: Instant::from_millis(1000),
            snd_nxt: BASE,
            arrivals: BinaryHeap::new(),
            acks: Vec::new(),
            timeouts: Vec::new(),
            retransmits: Vec::new(),
            lost_only: false,
        }
    }

    fn transmit(&mut self, seq: u32, is_retransmit: bool) {
        let seg = SentSegment {
            seq: SeqNumber(seq),
            len: MSS,
            is_retransmit,
            tsval: None,
            snapshot: PacketSnapshot::default(),
        };
        self.lr.on_sent(self.now, &seg).expect("store has room");
        if is_retransmit {
            self.retransmits.push((self.now, seq));
        }
        if let Some(d) = (self.delay)(seq, is_retransmit) {
            self.arrivals.push(Reverse((self.now + d, seq, seq + MSS)));
        }
    }

    fn send_new(&mut self) {
        let seq = self.snd_nxt;
        self.snd_nxt += MSS;
        self.transmit(seq, false);
    }

    fn retransmit_lost(&mut self) {
        while let Some((seq, _)) = self.lr.next_retransmission(self.lost_only) {
            self.transmit(seq.0, true);
        }
    }

    /// Runs events (arrivals, timers) up to `until`; `probe_new_data` says a TLP may send new data.
    fn run_until(&mut self, until: Instant) {
        loop {
            let next_arrival = self.arrivals.peek().map(|Reverse((t, _, _))| *t);
            let next_timer = self.lr.next_timer();
            let timer_first = match (next_timer, next_arrival) {
                (Some((t, _)), Some(a)) => t < a,
                (Some(_), None) => true,
                _ => false,
            };
            if timer_first {
                let (t, kind) = next_timer.unwrap();
                if t > until {
                    break;
                }
                self.now = self.now.max(t);
                let out = self.lr.on_timeout(self.now, kind);
                self.timeouts.push((self.now, kind, out));
                if let Some(probe) = out.probe {
                    let (seq, _) = probe.expect("a probe segment");
                    self.transmit(seq.0, true);
                }
                self.retransmit_lost();
                continue;
            }
            let Some(Reverse((t, s, e))) = self.arrivals.peek().copied() else { break };
            if t > until {
                break;
            }
            self.arrivals.pop();
            self.now = self.now.max(t);
            let (ack, blocks) = self.rx.receive(s, e);
            let out = self.lr.on_ack(self.now, SeqNumber(ack), &blocks, None, |_| {});
            self.acks.push((self.now, out));
            self.retransmit_lost();
        }
        self.now = self.now.max(until);
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn tail_loss_is_repaired_by_tlp_within_two_srtt_not_rto() {
    let last = BASE + 10 * MSS; // segments 1..=10 follow segment 0; 9 and 10 are dropped
    let mut sim = Sim::new(move |seq, rtx| (rtx || seq < last - MSS).then_some(ms(100)));
    sim.send_new();
    let t0 = sim.now;
    sim.run_until(t0 + ms(100));
    assert_eq!(sim.lr.rtt().srtt(), Some(ms(100)));
    for _ in 0..10 {
        sim.send_new();
    }
    sim.run_until(t0 + ms(205));
    let (last_ack, _) = *sim.acks.last().unwrap();
    let (deadline, kind) = sim.lr.next_timer().unwrap();
    assert_eq!(kind, RecoveryTimer::Tlp);
    assert!(
        deadline <= last_ack + ms(200),
        "PTO is 2·SRTT after the last ACK, got {:?}",
        deadline - last_ack
    );
    sim.run_until(t0 + ms(2000));
    assert!(sim.timeouts.iter().all(|(_, k, _)| *k != RecoveryTimer::Rto), "no RTO: {:?}", sim.timeouts);
    let (probe_at, _, _) = sim.timeouts[0];
    assert_eq!(probe_at, deadline);
    let loss_ack =
        sim.acks.iter().find(|(_, o)| o.congestion_event).expect("RACK marked the hole after the probe");
    assert!(loss_ack.0 <= probe_at + ms(100));
    assert_eq!(sim.lr.scoreboard().snd_una(), SeqNumber(BASE + 11 * MSS), "everything delivered");
    assert_eq!(sim.retransmits.len(), 2, "the probe and the one hole: {:?}", sim.retransmits);
    assert_eq!(sim.lr.next_timer(), None);
    assert!(!sim.lr.in_recovery());
}

#[test]
fn tlp_probe_that_repairs_the_only_loss_is_reported() {
    let lost = BASE + 10 * MSS;
    let mut sim = Sim::new(move |seq, rtx| (rtx || seq != lost).then_some(ms(100)));
    sim.send_new();
    let t0 = sim.now;
    sim.run_until(t0 + ms(100));
    for _ in 0..10 {
        sim.send_new();
    }
    sim.run_until(t0 + ms(1000));
    assert_eq!(sim.timeouts.len(), 1);
    assert_eq!(sim.timeouts[0].1, RecoveryTimer::Tlp);
    assert!(sim.acks.iter().all(|(_, o)| !o.tlp_loss_repaired && !o.congestion_event));
    // The probe's ACK ends exactly at TLP.end_seq: undecided until an ACK goes beyond it.
    sim.send_new();
    sim.run_until(t0 + ms(2000));
    assert!(sim.acks.last().unwrap().1.tlp_loss_repaired, "{:?}", sim.acks.last());
}

#[test]
fn tlp_probe_answered_by_dsack_is_no_loss() {
    let late = BASE + 10 * MSS;
    // The last segment is only late (after the PTO), so the probe is a duplicate.
    let mut sim = Sim::new(move |seq, rtx| Some(if seq == late && !rtx { ms(480) } else { ms(100) }));
    sim.send_new();
    let t0 = sim.now;
    sim.run_until(t0 + ms(100));
    for _ in 0..10 {
        sim.send_new();
    }
    sim.run_until(t0 + ms(2000));
    assert_eq!(sim.timeouts[0].1, RecoveryTimer::Tlp);
    assert!(sim.acks.iter().any(|(_, o)| o.dsack.is_some()));
    assert!(sim.acks.iter().all(|(_, o)| !o.tlp_loss_repaired && !o.congestion_event));
    sim.send_new();
    sim.run_until(t0 + ms(3000));
    assert!(sim.acks.iter().all(|(_, o)| !o.tlp_loss_repaired));
    assert!(sim.lr.tlp().end_seq.is_none());
}

#[test]
fn reordering_below_a_quarter_rtt_stops_causing_losses_once_dsack_widened_reo_wnd() {
    // One segment in 40 is delayed by 30 ms on a 100 ms path: more than min_rtt/4.
    let reordered = |seq: u32| ((seq - BASE) / MSS) % 40 == 5;
    let mut sim = Sim::new(move |seq, rtx| Some(if reordered(seq) && !rtx { ms(130) } else { ms(100) }));
    sim.lost_only = true;
    let t0 = sim.now;
    for i in 0..600u64 {
        sim.run_until(t0 + ms(i));
        sim.send_new();
    }
    sim.run_until(t0 + ms(2000));
    let first_dsack = sim
        .acks
        .iter()
        .find(|(_, o)| o.dsack.is_some())
        .map(|(t, _)| *t)
        .expect("a spurious retransmission was D-SACKed");
    let marks_after: u32 = sim
        .acks
        .iter()
        .filter(|(t, _)| *t > first_dsack)
        .map(|(_, o)| o.newly_lost)
        .sum::<u32>()
        + sim.timeouts.iter().filter(|(t, _, _)| *t > first_dsack).map(|(_, _, o)| o.newly_lost).sum::<u32>();
    assert!(
        sim.retransmits.first().is_some_and(|(t, _)| *t < first_dsack),
        "the window was learned from a spurious retransmission"
    );
    assert_eq!(marks_after, 0, "no spurious loss once reo_wnd adapted");
    assert_eq!(sim.lr.rack().reo_wnd_mult(), 2);
    assert!(sim.lr.rack().reordering_seen());
    assert!(
        sim.acks.iter().any(|(_, o)| o.spurious_congestion_event),
        "every retransmission was D-SACKed: undo"
    );
    assert_eq!(sim.lr.scoreboard().snd_una(), SeqNumber(BASE + 600 * MSS));
}

#[test]
fn everything_lost_falls_back_to_rto_with_backoff() {
    let mut sim = Sim::new(|seq, _| (seq == BASE).then_some(ms(100)));
    sim.send_new();
    let t0 = sim.now;
    sim.run_until(t0 + ms(100));
    for _ in 0..4 {
        sim.send_new();
    }
    sim.run_until(t0 + ms(5000));
    let kinds: Vec<RecoveryTimer> = sim.timeouts.iter().map(|(_, k, _)| *k).collect();
    assert_eq!(kinds[0], RecoveryTimer::Tlp);
    assert!(kinds[1..].iter().all(|k| *k == RecoveryTimer::Rto), "{kinds:?}");
    let rtos: Vec<Instant> =
        sim.timeouts.iter().filter(|(_, k, _)| *k == RecoveryTimer::Rto).map(|(t, _, _)| *t).collect();
    assert!(rtos.len() >= 3);
    assert!(rtos[2] - rtos[1] >= (rtos[1] - rtos[0]).saturating_mul(2), "exponential backoff: {rtos:?}");
    assert!(sim.timeouts[1].2.rto && sim.timeouts[1].2.newly_lost == 4 * MSS);
    assert!(sim.lr.in_recovery());
}

#[test]
fn limited_transmit_and_one_snapshot_per_delivered_segment() {
    let config = RecoveryConfig { capacity: 64, smss: MSS, ..RecoveryConfig::default() };
    let mut lr = LossRecovery::new(config, SeqNumber(BASE));
    let t = Instant::from_millis(10);
    for i in 0..10u32 {
        let snapshot = PacketSnapshot { bytes: i, ..PacketSnapshot::default() };
        lr.on_sent(
            t,
            &SentSegment { seq: SeqNumber(BASE + i * MSS), len: MSS, snapshot, ..SentSegment::default() },
        )
        .unwrap();
    }
    let sack =
        |l: u32, r: u32| SackBlock { left: SeqNumber(BASE + l * MSS), right: SeqNumber(BASE + r * MSS) };
    let mut seen = Vec::new();
    let now = t + ms(50);
    lr.on_ack(now, SeqNumber(BASE), &[sack(1, 2)], None, |s| seen.push(s.bytes));
    assert_eq!(lr.limited_transmit_allowance(), MSS);
    lr.on_ack(now, SeqNumber(BASE), &[sack(1, 3)], None, |s| seen.push(s.bytes));
    assert_eq!(lr.limited_transmit_allowance(), 2 * MSS);
    assert!(!lr.in_recovery(), "two SACKed segments within the reordering window: no loss yet");
    let out = lr.on_ack(now + ms(100), SeqNumber(BASE + 10 * MSS), &[], None, |s| seen.push(s.bytes));
    assert_eq!(out.newly_acked, 10 * MSS);
    assert_eq!(out.delivered, 8 * MSS, "the two SACKed segments were delivered earlier");
    seen.sort_unstable();
    assert_eq!(seen, (0..10).collect::<Vec<_>>(), "each snapshot handed back exactly once");
    assert_eq!(lr.pipe(), 0);
    assert_eq!(lr.next_timer(), None);
    // An ACK for data never sent is ignored.
    let out =
        lr.on_ack(now + ms(200), SeqNumber(BASE + 11 * MSS), &[], None, |_| panic!("nothing delivered"));
    assert!(out.ignored);
}

#[test]
fn duplicate_acks_do_not_postpone_the_probe() {
    let config = RecoveryConfig { capacity: 64, smss: MSS, ..RecoveryConfig::default() };
    let mut lr = LossRecovery::new(config, SeqNumber(BASE));
    let t = Instant::from_millis(10);
    for i in 0..5u32 {
        lr.on_sent(t, &SentSegment { seq: SeqNumber(BASE + i * MSS), len: MSS, ..SentSegment::default() })
            .unwrap();
    }
    let out = lr.on_ack(t + ms(100), SeqNumber(BASE + MSS), &[], None, |_| {});
    assert_eq!(out.rtt_sample, Some(ms(100)));
    let (pto_at, kind) = lr.next_timer().unwrap();
    assert_eq!(kind, RecoveryTimer::Tlp);
    for k in 1..5 {
        lr.on_ack(t + ms(100 + k * 10), SeqNumber(BASE + MSS), &[], None, |_| {});
        assert_eq!(lr.next_timer(), Some((pto_at, RecoveryTimer::Tlp)), "dup ACK #{k} moved the PTO");
    }
}
