//! The timer wheel against a naive model: a `BinaryHeap` keyed by the ordering guarantee written
//! in `linerate_stack::timer` (expiry tick `max(ceil(deadline / tick), cursor)`; ties in any
//! order). Random schedules mix inserts, cancels, reschedules, partial and full drains and
//! time advances from one nanosecond to years (and the end of time); after every operation the
//! wheel and the model must agree on every expiration (a due timer of the earliest tick, each
//! exactly once, a cancelled one never), `len`, the cursor (never moving back), and
//! `next_expiry` (exact: a driver sleeping until it never wakes for nothing).
//!
//! Schedules also restart timers by small steps (TCP's RTO restart: mostly the same slot,
//! sometimes the same tick, always postponed in place), pull them back by small steps (inside
//! the filed slot or before it), and churn one timer many times without time moving, checking
//! `next_expiry` after every single reschedule of a churn. Batches (`cancel_batch`,
//! `reschedule_batch`, up to 64 operations with repeats and stale handles) must give exactly
//! the results of the same single operations, and `prefetch` must change nothing. Zombies (cancelled, still linked)
//! must stay within the wheel's allowance: a quarter of the peak number of live timers, or 64.
//!
//! Deterministic: proptest runs from a fixed seed and prints the minimal failing schedule.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use linerate_stack::time::{Duration, Instant};
use linerate_stack::timer::{TimerHandle, TimerWheel, WheelConfig};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngSeed};

/// What the wheel promises, computed the slow and obvious way.
struct Model {
    tick: u64,
    cursor: u64,
    seq: u64,
    /// Highest number of live timers so far (bounds the zombies).
    peak: usize,
    /// Live timer id -> (expiry tick, schedule sequence).
    live: HashMap<usize, (u64, u64)>,
    /// Every schedule ever made; entries that no longer match `live` are skipped.
    heap: BinaryHeap<Reverse<(u64, u64, usize)>>,
}

impl Model {
    fn new(tick: u64, start: u64) -> Self {
        let tick = tick.max(1);
        let cursor = if start == u64::MAX { u64::MAX } else { start / tick };
        Model { tick, cursor, seq: 0, peak: 0, live: HashMap::new(), heap: BinaryHeap::new() }
    }

    fn schedule(&mut self, id: usize, deadline: u64) {
        let key = deadline.div_ceil(self.tick).max(self.cursor);
        self.seq += 1;
        self.live.insert(id, (key, self.seq));
        self.heap.push(Reverse((key, self.seq, id)));
        self.peak = self.peak.max(self.live.len());
    }

    fn cancel(&mut self, id: usize) -> bool {
        self.live.remove(&id).is_some()
    }

    fn earliest(&mut self) -> Option<(u64, usize)> {
        while let Some(&Reverse((key, seq, id))) = self.heap.peek() {
            if self.live.get(&id) == Some(&(key, seq)) {
                return Some((key, id));
            }
            self.heap.pop();
        }
        None
    }

    fn now_tick(&self, now: u64) -> u64 {
        if now == u64::MAX {
            u64::MAX
        } else {
            now / self.tick
        }
    }

    /// Checks what the wheel's `poll_expired(now)` returned: `None` iff nothing is due, else a
    /// live timer due at the earliest due tick (ties in any order); then applies it.
    fn poll(&mut self, now: u64, got: Option<usize>) -> Result<(), String> {
        let now_tick = self.now_tick(now);
        let due = self.earliest().filter(|&(key, _)| key <= now_tick).map(|(key, _)| key);
        match (got, due) {
            (None, None) => {
                self.cursor = self.cursor.max(now_tick);
                Ok(())
            }
            (Some(id), Some(min)) => match self.live.remove(&id) {
                Some((key, _)) if key == min => {
                    self.cursor = key;
                    Ok(())
                }
                Some((key, _)) => Err(format!("fired {id} of tick {key} before tick {min}")),
                None => Err(format!("fired {id}, which is not live")),
            },
            (got, due) => Err(format!("fired {got:?} while the earliest due tick is {due:?}")),
        }
    }

    fn instant_of(&self, key: u64) -> Instant {
        key.checked_mul(self.tick).map_or(Instant::MAX, Instant::from_nanos)
    }

    fn next_expiry(&mut self) -> Option<Instant> {
        self.earliest().map(|(key, _)| self.instant_of(key))
    }

    fn deadline(&self, id: usize) -> Option<Instant> {
        self.live.get(&id).map(|&(key, _)| self.instant_of(key))
    }
}

/// A span at a random scale: `bits` picks the magnitude, so nanoseconds and years are equally
/// likely.
#[derive(Clone, Copy, Debug)]
struct Span {
    bits: u32,
    raw: u64,
}

impl Span {
    fn nanos(self) -> u64 {
        if self.bits == 0 {
            0
        } else {
            self.raw >> (64 - self.bits)
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum When {
    /// `now + span`.
    Future(Span),
    /// `now - span`: already due.
    Past(Span),
    /// Exactly `now`.
    Now,
    /// `Instant::MAX`: "never", in practice.
    Max,
}

#[derive(Clone, Debug)]
enum Op {
    Insert(When),
    /// Cancels the `pick`-th timer ever issued (often stale).
    Cancel(usize),
    Reschedule(usize, When),
    /// Advances time and drains everything due.
    Advance(Span),
    /// Advances time and takes at most `n` expirations, leaving the rest due.
    AdvancePartial(Span, usize),
    /// Jumps to `next_expiry` (the driver loop) and drains.
    WakeAtNextExpiry,
    /// Jumps to `Instant::MAX` and drains.
    EndOfTime,
    /// Checks `get` and `deadline` of the `pick`-th timer.
    Query(usize),
    /// Moves the `pick`-th timer later by a small span (TCP's RTO restart on an ACK).
    Restart(usize, Span),
    /// Reschedules the `pick`-th timer `count` times, alternating between two nearby deadlines
    /// `span` from now, without polling: garbage piles up in one or two slots.
    Churn(usize, usize, Span),
    /// Moves the `pick`-th timer earlier by a small span: inside its filed slot (postponed in
    /// place, the slot's bound must drop) or before it (moved at once).
    PullBack(usize, Span),
    /// `cancel_batch` of the picked timers (repeats and stale handles included).
    CancelBatch(Vec<usize>),
    /// `reschedule_batch` of the picked timers (repeats and stale handles included).
    RescheduleBatch(Vec<(usize, When)>),
    /// `reschedule_batch` restarting the picked timers by small spans (live ones only; a timer
    /// picked twice moves twice, from its newer deadline).
    RestartBatch(Vec<(usize, Span)>),
}

fn span(max_bits: u32) -> impl Strategy<Value = Span> {
    (0..=max_bits, any::<u64>()).prop_map(|(bits, raw)| Span { bits, raw })
}

fn when() -> impl Strategy<Value = When> {
    prop_oneof![
        12 => span(64).prop_map(When::Future),
        3 => span(40).prop_map(When::Past),
        1 => Just(When::Now),
        1 => Just(When::Max),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => when().prop_map(Op::Insert),
        3 => any::<usize>().prop_map(Op::Cancel),
        4 => (any::<usize>(), when()).prop_map(|(pick, w)| Op::Reschedule(pick, w)),
        5 => span(48).prop_map(Op::Advance),
        2 => (span(48), 0..4_usize).prop_map(|(s, n)| Op::AdvancePartial(s, n)),
        2 => Just(Op::WakeAtNextExpiry),
        1 => any::<usize>().prop_map(Op::Query),
        3 => (any::<usize>(), span(22)).prop_map(|(pick, s)| Op::Restart(pick, s)),
        1 => (any::<usize>(), 1..100_usize, span(40)).prop_map(|(pick, n, s)| Op::Churn(pick, n, s)),
        2 => (any::<usize>(), span(30)).prop_map(|(pick, s)| Op::PullBack(pick, s)),
        // Batches cross the wheel's prefetch distances (8 and 16 operations ahead).
        1 => prop::collection::vec(any::<usize>(), 0..40).prop_map(Op::CancelBatch),
        1 => prop::collection::vec((any::<usize>(), when()), 0..40).prop_map(Op::RescheduleBatch),
        1 => prop::collection::vec((any::<usize>(), span(22)), 0..40).prop_map(Op::RestartBatch),
        // Rare: after it, every deadline is due at once.
        1 => prop_oneof![39 => span(20).prop_map(Op::Advance), 1 => Just(Op::EndOfTime)],
    ]
}

fn schedule() -> impl Strategy<Value = (u64, Span, Vec<Op>)> {
    let ticks = prop_oneof![Just(1_u64), Just(1_000), Just(4_000), Just(4_096), Just(7_919), Just(1_000_000)];
    (ticks, span(63), prop::collection::vec(op(), 1..120))
}

/// Runs one schedule against wheel and model, failing on the first disagreement. Returns how
/// many `Op::Insert`s revived a zombie (the wheel's zombie count went down), so the
/// deterministic schedules can check that path was taken.
fn run(tick: u64, start: Span, ops: &[Op]) -> Result<usize, TestCaseError> {
    let mut revived = 0;
    let mut now = start.nanos();
    let mut wheel =
        TimerWheel::new(WheelConfig { tick: Duration::from_nanos(tick) }, Instant::from_nanos(now));
    let mut model = Model::new(tick, now);
    let mut handles: Vec<TimerHandle> = Vec::new();
    let deadline_of = |now: u64, w: When| match w {
        When::Future(s) => now.saturating_add(s.nanos()),
        When::Past(s) => now.saturating_sub(s.nanos()),
        When::Now => now,
        When::Max => u64::MAX,
    };
    for (step, op) in ops.iter().enumerate() {
        // Only time steps poll, so due timers can stay pending across later schedules.
        let mut drain_limit = 0;
        match *op {
            Op::Insert(w) => {
                let deadline = deadline_of(now, w);
                model.schedule(handles.len(), deadline);
                let zombies = wheel.zombies();
                handles.push(wheel.insert(Instant::from_nanos(deadline), handles.len()));
                revived += usize::from(wheel.zombies() < zombies);
            }
            Op::Cancel(pick) if !handles.is_empty() => {
                let id = pick % handles.len();
                let got = wheel.cancel(handles[id]);
                prop_assert_eq!(got, model.cancel(id).then_some(id), "step {}: cancel", step);
            }
            Op::Reschedule(pick, w) if !handles.is_empty() => {
                let id = pick % handles.len();
                let deadline = deadline_of(now, w);
                let live = model.live.contains_key(&id);
                if live {
                    model.schedule(id, deadline);
                }
                let moved = wheel.reschedule(handles[id], Instant::from_nanos(deadline));
                prop_assert_eq!(moved, live, "step {}: reschedule", step);
            }
            Op::Restart(pick, s) if !handles.is_empty() => {
                let id = pick % handles.len();
                if let Some(current) = model.deadline(id) {
                    let deadline = current.as_nanos().saturating_add(s.nanos());
                    model.schedule(id, deadline);
                    prop_assert!(wheel.reschedule(handles[id], Instant::from_nanos(deadline)));
                }
            }
            Op::PullBack(pick, s) if !handles.is_empty() => {
                let id = pick % handles.len();
                if let Some(current) = model.deadline(id) {
                    let deadline = current.as_nanos().saturating_sub(s.nanos());
                    model.schedule(id, deadline);
                    prop_assert!(wheel.reschedule(handles[id], Instant::from_nanos(deadline)));
                    prop_assert_eq!(wheel.deadline(handles[id]), model.deadline(id), "step {}", step);
                }
            }
            Op::Churn(pick, count, s) if !handles.is_empty() => {
                let id = pick % handles.len();
                for i in 0..count {
                    let deadline = now.saturating_add(s.nanos()).saturating_add((i % 2) as u64 * tick);
                    let live = model.live.contains_key(&id);
                    if live {
                        model.schedule(id, deadline);
                    }
                    let moved = wheel.reschedule(handles[id], Instant::from_nanos(deadline));
                    prop_assert_eq!(moved, live, "step {} churn {}: reschedule", step, i);
                    check_next_expiry(&wheel, &mut model, step)?;
                }
            }
            Op::CancelBatch(ref picks) if !handles.is_empty() => {
                let ids: Vec<usize> = picks.iter().map(|pick| pick % handles.len()).collect();
                let batch: Vec<TimerHandle> = ids.iter().map(|&id| handles[id]).collect();
                let mut got = Vec::new();
                let count = wheel.cancel_batch(&batch, |i, value| got.push((i, value)));
                let want: Vec<(usize, usize)> = ids
                    .iter()
                    .enumerate()
                    .filter(|&(_, &id)| model.cancel(id))
                    .map(|(i, &id)| (i, id))
                    .collect();
                prop_assert_eq!(count, want.len(), "step {}: cancel_batch count", step);
                prop_assert_eq!(got, want, "step {}: cancel_batch", step);
            }
            Op::RescheduleBatch(ref picks) if !handles.is_empty() => {
                let mut batch = Vec::new();
                let mut want_stale = Vec::new();
                for (i, &(pick, w)) in picks.iter().enumerate() {
                    let id = pick % handles.len();
                    let deadline = deadline_of(now, w);
                    if model.live.contains_key(&id) {
                        model.schedule(id, deadline);
                    } else {
                        want_stale.push(i);
                    }
                    batch.push((handles[id], Instant::from_nanos(deadline)));
                }
                let mut stale = Vec::new();
                let count = wheel.reschedule_batch(&batch, |i| stale.push(i));
                prop_assert_eq!(count, batch.len() - want_stale.len(), "step {}: reschedule_batch", step);
                prop_assert_eq!(stale, want_stale, "step {}: reschedule_batch stale", step);
            }
            Op::RestartBatch(ref picks) if !handles.is_empty() => {
                let mut batch = Vec::new();
                for &(pick, s) in picks {
                    let id = pick % handles.len();
                    if let Some(current) = model.deadline(id) {
                        let deadline = current.as_nanos().saturating_add(s.nanos());
                        model.schedule(id, deadline);
                        batch.push((handles[id], Instant::from_nanos(deadline)));
                    }
                }
                let count = wheel.reschedule_batch(&batch, |i| panic!("step {step}: restart {i} stale"));
                prop_assert_eq!(count, batch.len(), "step {}: restart batch", step);
            }
            Op::Query(pick) if !handles.is_empty() => {
                let id = pick % handles.len();
                // A hint: must change nothing the checks below or later steps can see.
                wheel.prefetch(handles[id]);
                let live = model.live.contains_key(&id);
                prop_assert_eq!(wheel.get(handles[id]).copied(), live.then_some(id), "step {}: get", step);
                prop_assert_eq!(wheel.deadline(handles[id]), model.deadline(id), "step {}: deadline", step);
            }
            Op::Advance(s) => {
                now = now.saturating_add(s.nanos());
                drain_limit = usize::MAX;
            }
            Op::AdvancePartial(s, n) => {
                now = now.saturating_add(s.nanos());
                drain_limit = n;
            }
            Op::WakeAtNextExpiry => {
                if let Some(next) = wheel.next_expiry() {
                    now = now.max(next.as_nanos());
                }
                drain_limit = usize::MAX;
            }
            Op::EndOfTime => {
                now = u64::MAX;
                drain_limit = usize::MAX;
            }
            Op::Cancel(_)
            | Op::Reschedule(..)
            | Op::Query(_)
            | Op::Restart(..)
            | Op::Churn(..)
            | Op::PullBack(..)
            | Op::CancelBatch(_)
            | Op::RescheduleBatch(_)
            | Op::RestartBatch(_) => {}
        }
        let mut taken = 0;
        while taken < drain_limit {
            let before = wheel.advanced_to();
            let got = wheel.poll_expired(Instant::from_nanos(now));
            prop_assert!(wheel.advanced_to() >= before, "step {}: the cursor moved back", step);
            if let Err(e) = model.poll(now, got.map(|(_, id)| id)) {
                return Err(TestCaseError::fail(format!("step {step}: poll at {now}: {e}")));
            }
            match got {
                Some((handle, id)) => prop_assert_eq!(handle, handles[id], "step {}: handle", step),
                None => break,
            }
            taken += 1;
        }
        check_agreement(&mut wheel, &mut model, step)?;
    }
    Ok(revived)
}

fn check_agreement(
    wheel: &mut TimerWheel<usize>,
    model: &mut Model,
    step: usize,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(wheel.len(), model.live.len(), "step {}: len", step);
    check_next_expiry(wheel, model, step)?;
    prop_assert_eq!(wheel.advanced_to(), model.instant_of(model.cursor), "step {}: cursor", step);
    let allowance = (model.peak / 4).max(64);
    prop_assert!(wheel.zombies() <= allowance, "step {}: {} zombies", step, wheel.zombies());
    Ok(())
}

/// `next_expiry` is exactly the earliest live timer's rounded deadline.
fn check_next_expiry(wheel: &TimerWheel<usize>, model: &mut Model, step: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(wheel.next_expiry(), model.next_expiry(), "step {}: next_expiry", step);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 10_000,
        rng_seed: RngSeed::Fixed(0x6c69_6e65_7261_7465),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn wheel_matches_heap_model((tick, start, ops) in schedule()) {
        run(tick, start, &ops)?;
    }
}

/// Fewer, much longer schedules: thousands of live timers, so slots hold long lists and
/// cascades move many entries at once. Seeded xorshift; the seed is in the failure message.
#[test]
fn wheel_matches_heap_model_with_many_live_timers() {
    let mut revived = 0;
    for seed in 1..=8_u64 {
        let mut rng = XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let tick = [1_u64, 4_000, 1_000_000][seed as usize % 3];
        let start = Span { bits: 50, raw: rng.next() };
        let ops: Vec<Op> = (0..6_000)
            .map(|_| {
                let when = When::Future(Span { bits: 20 + (rng.next() % 24) as u32, raw: rng.next() });
                match rng.next() % 20 {
                    0..=7 => Op::Insert(when),
                    8 | 16 => Op::Cancel(rng.next() as usize),
                    9 | 10 => Op::Reschedule(rng.next() as usize, when),
                    11 => Op::Query(rng.next() as usize),
                    12 => Op::AdvancePartial(Span { bits: 30, raw: rng.next() }, 3),
                    13 => Op::WakeAtNextExpiry,
                    17 | 18 => Op::Restart(rng.next() as usize, Span { bits: 22, raw: rng.next() }),
                    19 => Op::Churn(rng.next() as usize, 50, Span { bits: 34, raw: rng.next() }),
                    14 => match rng.next() % 3 {
                        0 => Op::CancelBatch((0..64).map(|_| rng.next() as usize).collect()),
                        1 => Op::RescheduleBatch(
                            (0..64)
                                .map(|_| {
                                    let bits = 20 + (rng.next() % 24) as u32;
                                    (rng.next() as usize, When::Future(Span { bits, raw: rng.next() }))
                                })
                                .collect(),
                        ),
                        _ => Op::RestartBatch(
                            (0..64)
                                .map(|_| (rng.next() as usize, Span { bits: 22, raw: rng.next() }))
                                .collect(),
                        ),
                    },
                    _ => Op::Advance(Span { bits: 20 + (rng.next() % 20) as u32, raw: rng.next() }),
                }
            })
            .collect();
        match run(tick, start, &ops) {
            Ok(count) => revived += count,
            Err(e) => panic!("seed {seed}: {e}"),
        }
    }
    assert!(revived > 100, "inserts revived zombies only {revived} times: that path went untested");
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A crafted schedule of heavy churn: a few hundred far timers in a handful of wide slots, each
/// churned a hundred times while time stands still (a lazily removing wheel must compact
/// here), then some cancels, then everything drained in order.
#[test]
fn wheel_matches_heap_model_through_heavy_churn() {
    let mut rng = XorShift(0x636f_6d70_6163_7421);
    let far = |rng: &mut XorShift| Span { bits: 36 + (rng.next() % 3) as u32, raw: rng.next() };
    let mut ops: Vec<Op> = (0..300).map(|_| Op::Insert(When::Future(far(&mut rng)))).collect();
    for _ in 0..60 {
        ops.push(Op::Churn(rng.next() as usize, 99, far(&mut rng)));
        ops.push(Op::Restart(rng.next() as usize, Span { bits: 16, raw: rng.next() }));
    }
    ops.extend((0..100).map(|_| Op::Cancel(rng.next() as usize)));
    ops.extend((0..400).map(|_| Op::WakeAtNextExpiry));
    if let Err(e) = run(4_000, Span { bits: 40, raw: rng.next() }, &ops) {
        panic!("{e}");
    }
}
