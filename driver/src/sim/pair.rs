//! Two endpoints joined by a simulated link, stepped on virtual time.
//!
//! A [`Pair`] owns endpoint `a`, endpoint `b`, the link directions a→b and b→a, the virtual clock
//! and the optional capture. Each [`Pair::step`] jumps time to the earliest thing that can happen
//! (an endpoint's wake-up or a frame's arrival) and polls every endpoint that has work then, `a`
//! before `b`. Nothing sleeps and nothing reads the OS clock, so a run is a pure function of the
//! seed, the link configurations and the endpoints. Runs are bounded by a step budget: an endpoint
//! that keeps asking to be woken without time advancing is reported as an error naming the seed,
//! never a hang.
//!
//! Frames already waiting in an endpoint's RX ring count as work at the current time, so an
//! endpoint with a small receive budget is polled again before time moves (one that never takes
//! its frames ends in the step-budget error).
//!
//! The Pair does not flush on an endpoint's behalf: a frame transmitted without a flush stays in
//! the TX ring, as it would on real hardware, so the bug shows up in tests.

use linerate_stack::time::Instant;

use super::capture::Capture;
use super::config::LinkConfig;
use super::link::{Link, LinkStats};
use super::port::SimPort;
use super::rng::splitmix64;

/// Something attached to one end of a simulated link (a TCP engine wrapper, a toy sender...).
pub trait Endpoint {
    /// Does everything the endpoint does at `now`: receive frames, run timers, transmit (and
    /// flush).
    fn poll(&mut self, now: Instant, port: &mut SimPort<'_>);
    /// When the endpoint next wants `poll` if no frame arrives (`None` = idle). A time in the past
    /// means "now".
    fn next_wakeup(&self) -> Option<Instant>;
}

/// The direction of one link of a [`Pair`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    AToB,
    BToA,
}

/// Why [`Pair::run_until`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The predicate became true.
    Done,
    /// Nothing is scheduled any more: no wake-up, no frame in flight or waiting.
    Idle,
    /// The next event lies after the deadline; time now equals the deadline.
    DeadlineReached,
}

/// A run that did not finish within its step budget.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "simulation (seed={seed}) used its budget of {steps} steps and reached only {now}; an endpoint \
     probably keeps asking to be woken without progress. Reproduce with LINERATE_SEED={seed}"
)]
pub struct StepBudgetExhausted {
    pub seed: u64,
    pub steps: u64,
    pub now: Instant,
}

/// Two endpoints over a pair of directed links.
#[derive(Debug)]
pub struct Pair<A: Endpoint, B: Endpoint> {
    pub a: A,
    pub b: B,
    a_to_b: Link,
    b_to_a: Link,
    now: Instant,
    seed: u64,
    steps: u64,
    capture: Option<Capture>,
}

impl<A: Endpoint, B: Endpoint> Pair<A, B> {
    /// Joins `a` and `b`; the links' random decisions are derived from `seed`. Time starts at zero.
    pub fn new(seed: u64, a_to_b: LinkConfig, b_to_a: LinkConfig, a: A, b: B) -> Self {
        let mut sm = seed;
        let (seed_ab, seed_ba) = (splitmix64(&mut sm), splitmix64(&mut sm));
        Pair {
            a,
            b,
            a_to_b: Link::new(a_to_b, seed_ab),
            b_to_a: Link::new(b_to_a, seed_ba),
            now: Instant::ZERO,
            seed,
            steps: 0,
            capture: None,
        }
    }

    /// Records both directions into `capture` from now on.
    pub fn with_capture(mut self, capture: Option<Capture>) -> Self {
        self.capture = capture;
        self
    }

    /// Takes the capture out (to finish it and read the bytes); recording stops.
    pub fn take_capture(&mut self) -> Option<Capture> {
        self.capture.take()
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    pub fn link(&self, direction: Direction) -> &Link {
        match direction {
            Direction::AToB => &self.a_to_b,
            Direction::BToA => &self.b_to_a,
        }
    }

    /// For changing a link's configuration mid-run.
    pub fn link_mut(&mut self, direction: Direction) -> &mut Link {
        match direction {
            Direction::AToB => &mut self.a_to_b,
            Direction::BToA => &mut self.b_to_a,
        }
    }

    pub fn stats(&self, direction: Direction) -> LinkStats {
        self.link(direction).stats()
    }

    /// Polls `a` at the current time regardless of its wake-up (e.g. after the test changed it).
    pub fn poll_a(&mut self) {
        let mut port = SimPort::new(&mut self.a_to_b, &mut self.b_to_a).with_capture(self.capture.as_mut());
        self.a.poll(self.now, &mut port);
    }

    /// Polls `b` at the current time regardless of its wake-up.
    pub fn poll_b(&mut self) {
        let mut port = SimPort::new(&mut self.b_to_a, &mut self.a_to_b).with_capture(self.capture.as_mut());
        self.b.poll(self.now, &mut port);
    }

    /// When the next thing happens: a wake-up, an arrival, or now if a frame is already waiting.
    pub fn next_event(&self) -> Option<Instant> {
        let waiting = (self.a_to_b.rx_ring_frames() + self.b_to_a.rx_ring_frames() > 0).then_some(self.now);
        [
            self.a.next_wakeup(),
            self.b.next_wakeup(),
            self.a_to_b.next_arrival(),
            self.b_to_a.next_arrival(),
            waiting,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Jumps to the next event and polls whoever has work then. Returns false when nothing is
    /// scheduled (time does not move).
    pub fn step(&mut self) -> bool {
        let Some(next) = self.next_event() else { return false };
        self.now = self.now.max(next);
        let now = self.now;
        if self.a.next_wakeup().is_some_and(|t| t <= now) || self.b_to_a.has_arrivals(now) {
            self.poll_a();
        }
        if self.b.next_wakeup().is_some_and(|t| t <= now) || self.a_to_b.has_arrivals(now) {
            self.poll_b();
        }
        self.steps += 1;
        true
    }

    /// Steps until `done` holds, nothing is scheduled, or the next event lies after `deadline`
    /// (time is then set to the deadline; also when idle with a deadline other than
    /// [`Instant::MAX`]). Fails after `max_steps` steps in this call.
    pub fn run_until<P>(
        &mut self,
        deadline: Instant,
        max_steps: u64,
        mut done: P,
    ) -> Result<Outcome, StepBudgetExhausted>
    where
        P: FnMut(&Self) -> bool,
    {
        let mut taken = 0;
        loop {
            if done(self) {
                return Ok(Outcome::Done);
            }
            match self.next_event() {
                None => {
                    if deadline != Instant::MAX {
                        self.now = self.now.max(deadline);
                    }
                    return Ok(Outcome::Idle);
                }
                Some(t) if t > deadline => {
                    self.now = self.now.max(deadline);
                    return Ok(Outcome::DeadlineReached);
                }
                Some(_) => {}
            }
            if taken == max_steps {
                return Err(StepBudgetExhausted { seed: self.seed, steps: max_steps, now: self.now });
            }
            self.step();
            taken += 1;
        }
    }

    /// Runs until `deadline` or idle (no predicate).
    pub fn run_to(&mut self, deadline: Instant, max_steps: u64) -> Result<Outcome, StepBudgetExhausted> {
        self.run_until(deadline, max_steps, |_| false)
    }
}
