//! One engine per shard: the run-to-completion iteration that turns the generic runtime into a
//! TCP stack per core.
//!
//! Owns, per shard: one [`Engine`], the shard's queues as one [`ShardDevice`] (its own UMEM per
//! queue), its ends of the hand-off [mesh](super::mesh), its [`FlowRouter`] and
//! [`ActiveOpener`], and the application instance ([`ShardApp`]). One iteration
//! ([`EngineShard::poll`]):
//!
//! 1. receive a burst from the shard's queues; each frame is routed — processed here, handed to
//!    the shard that opened its flow, or (ARP replies) processed here and copied to all;
//! 2. take what other shards handed to this one (1 and 2 are one engine receive run);
//! 3. fire the engine's due timers;
//! 4. run the application (accepts, reads, writes, connects) through an [`AppContext`];
//! 5. transmit a burst.
//!
//! Promises: nothing mutable is shared with another shard; the only cross-shard traffic is the
//! bounded rings (a full ring drops the frame and counts it in [`ShardCounters`]) and the stats
//! snapshot. Idle shards sleep in [`ShardDevice::wait_for_frames`] (e.g. `ppoll` on the AF_XDP
//! sockets), so a frame wakes them at once; handed-off frames wait at most one idle sleep
//! (`RuntimeConfig::max_idle_sleep`). Shutdown: the application drains and closes in its phases;
//! the `TimeWait` phase also waits for the engine to hold no connection.
//! Must not: allocate, lock or make a syscall per frame beyond the device's own burst calls.

use core::ops::AddAssign;

use linerate_stack::device::Device;
use linerate_stack::engine::{ConnectionHandle, Engine, Error as EngineError};
use linerate_stack::tcp::SocketOptions;
use linerate_stack::time::{Duration, Instant};
use linerate_stack::wire::Ipv4Address;

use super::counters::{EngineCounters, ShardCounters, ShardStats};
use super::handoff::{FlowRouter, HandOffFrame, Route};
use super::mesh::ShardLinks;
use super::placement::{ActiveOpener, PortChoice};
use super::stats::Pod;
use super::work::{PollOutcome, ShardContext, ShardWork, ShutdownPhase};
use crate::afxdp::AfXdpDevice;

/// Frames taken from the device per iteration.
const RX_BUDGET: usize = 256;

/// A device one shard owns: a [`Device`] that can also sleep until frames arrive.
pub trait ShardDevice: Device + Send {
    /// Blocks until a frame may be waiting or `timeout` passes (spurious returns are fine).
    fn wait_for_frames(&mut self, timeout: Duration);
}

impl ShardDevice for AfXdpDevice {
    fn wait_for_frames(&mut self, timeout: Duration) {
        wait_readable(&mut [self.raw_fd()], timeout);
    }
}

/// `ppoll(2)` for readability on `fds`, with nanosecond timeout (a millisecond `poll` would turn
/// sub-millisecond waits into busy loops).
pub fn wait_readable(fds: &mut [std::os::fd::RawFd], timeout: Duration) {
    const MAX_FDS: usize = 64;
    let mut pollfds = [libc::pollfd { fd: -1, events: libc::POLLIN, revents: 0 }; MAX_FDS];
    let n = fds.len().min(MAX_FDS);
    for (slot, &fd) in pollfds.iter_mut().zip(fds.iter()) {
        slot.fd = fd;
    }
    let nanos = timeout.as_nanos();
    let ts = libc::timespec {
        tv_sec: (nanos / 1_000_000_000) as libc::time_t,
        tv_nsec: (nanos % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: `pollfds[..n]` are valid pollfd structs; `ts` is a valid timespec; no signal mask.
    unsafe { libc::ppoll(pollfds.as_mut_ptr(), n as libc::nfds_t, &ts, core::ptr::null()) };
}

/// What the application's `poll` reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppPoll {
    /// It did work (so the shard polls again at once).
    pub busy: bool,
    /// Its earliest deadline (HTTP timeouts...), if any.
    pub next_wake: Option<Instant>,
}

/// The application instance of one shard. It sees its own engine only: connections accepted
/// on this shard are delivered here, and connections it opens stay here.
pub trait ShardApp: Send {
    /// The application's counters: a `repr(C)` struct of `u64` (or `()`).
    type Stats: Pod + Default + AddAssign;

    /// One iteration: handle engine events, move data, open connections.
    fn poll(&mut self, cx: &mut AppContext<'_>) -> AppPoll;

    /// Entering a shutdown phase (see [`ShutdownPhase`] for what each means).
    fn begin_shutdown(&mut self, phase: ShutdownPhase, cx: &mut AppContext<'_>);

    /// True once the application has nothing left to do in `phase`.
    fn is_drained(&self, phase: ShutdownPhase) -> bool;

    /// Current counters.
    fn stats(&self) -> Self::Stats;
}

/// What the application may touch during its turn.
#[derive(Debug)]
pub struct AppContext<'a> {
    /// The time of this iteration.
    pub now: Instant,
    /// This shard's engine.
    pub engine: &'a mut Engine,
    opener: &'a mut ActiveOpener,
    counters: &'a mut ShardCounters,
    shard: &'a ShardContext,
}

impl AppContext<'_> {
    /// This shard's index.
    pub fn shard(&self) -> usize {
        self.shard.shard()
    }

    /// Active open from a source port this shard owns, so the replies come back to it (by RSS,
    /// or by hand-off).
    pub fn connect(
        &mut self,
        remote: (Ipv4Address, u16),
        opts: Option<SocketOptions>,
    ) -> Result<ConnectionHandle, EngineError> {
        let (handle, choice) = self.opener.connect(self.engine, self.now, remote, opts)?;
        match choice {
            PortChoice::Steered => self.counters.opens_steered += 1,
            PortChoice::Any => self.counters.opens_any_port += 1,
        }
        Ok(handle)
    }

    /// Asks every shard to begin the phased shutdown (e.g. a client finished its work).
    pub fn request_stop(&self) {
        self.shard.request_stop();
    }
}

/// The per-shard parts, built on the main thread and moved into the shard's thread.
#[derive(Debug)]
pub struct EngineShard<D, A> {
    engine: Engine,
    device: D,
    links: ShardLinks<HandOffFrame>,
    router: FlowRouter,
    opener: ActiveOpener,
    app: A,
    counters: ShardCounters,
}

impl<D: ShardDevice, A: ShardApp> EngineShard<D, A> {
    /// Assembles a shard. `links`, `router` and `opener` must all be shard `router.shard()`'s
    /// (from [`super::Mesh::new`] and [`super::placement::Steering`]), and the engine's
    /// `ephemeral_ports` the range the steering uses (`Steering::ephemeral_ports_of`).
    pub fn new(
        engine: Engine,
        device: D,
        links: ShardLinks<HandOffFrame>,
        router: FlowRouter,
        opener: ActiveOpener,
        app: A,
    ) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = ShardStats::<A::Stats>::NO_PADDING;
        debug_assert_eq!(links.id(), router.shard(), "links and router of different shards");
        EngineShard { engine, device, links, router, opener, app, counters: ShardCounters::default() }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn app(&self) -> &A {
        &self.app
    }

    /// Steps 1 and 2: a burst from this shard's queues, each frame routed, then the frames other
    /// shards handed to this one, all in one engine receive run (consecutive segments of a
    /// connection share its bookkeeping, as with `Engine::receive_from`).
    fn receive(&mut self, now: Instant) -> usize {
        let EngineShard { engine, device, links, router, counters, .. } = self;
        let mut run = engine.receive_run(now);
        let n = device.receive(now, RX_BUDGET, |frame| match router.route(frame) {
            Route::Local => run.receive(frame),
            Route::To(owner) => match HandOffFrame::copy_of(frame) {
                Some(copy) => match links.send(owner, copy) {
                    Ok(()) => counters.handed_off += 1,
                    Err(_) => counters.handoff_ring_full += 1,
                },
                None => counters.handoff_oversized += 1,
            },
            Route::Everyone => {
                if let Some(copy) = HandOffFrame::copy_of(frame) {
                    let me = links.id();
                    for to in (0..links.shards()).filter(|&to| to != me) {
                        match links.send(to, copy.clone()) {
                            Ok(()) => counters.arp_copies += 1,
                            Err(_) => counters.handoff_ring_full += 1,
                        }
                    }
                }
                run.receive(frame);
            }
        });
        counters.rx_frames += n as u64;
        let handed = links.drain(|_from, mut frame| run.receive(frame.frame_mut()));
        counters.handoff_received += handed as u64;
        n + handed
    }

    fn app_context<'a>(
        engine: &'a mut Engine,
        opener: &'a mut ActiveOpener,
        counters: &'a mut ShardCounters,
        shard: &'a ShardContext,
    ) -> AppContext<'a> {
        AppContext { now: shard.now(), engine, opener, counters, shard }
    }
}

impl<D: ShardDevice, A: ShardApp> ShardWork for EngineShard<D, A> {
    type Stats = ShardStats<A::Stats>;

    fn poll(&mut self, ctx: &mut ShardContext) -> PollOutcome {
        let now = ctx.now();
        let received = self.receive(now);
        if self.engine.next_timeout().is_some_and(|t| t <= now) {
            self.engine.handle_timeout(now);
        }
        let app = {
            let mut cx = Self::app_context(&mut self.engine, &mut self.opener, &mut self.counters, ctx);
            self.app.poll(&mut cx)
        };
        let sent = self.engine.poll_transmit(now, &mut self.device);
        if received > 0 || sent > 0 || app.busy || self.engine.has_pending_output() {
            return PollOutcome::Busy;
        }
        let next_wake = match (self.engine.next_timeout(), app.next_wake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        PollOutcome::Idle { next_wake }
    }

    fn begin_shutdown(&mut self, phase: ShutdownPhase, ctx: &mut ShardContext) {
        let mut cx = Self::app_context(&mut self.engine, &mut self.opener, &mut self.counters, ctx);
        self.app.begin_shutdown(phase, &mut cx);
    }

    fn is_drained(&self, phase: ShutdownPhase) -> bool {
        let engine_done = phase != ShutdownPhase::TimeWait || self.engine.connection_count() == 0;
        engine_done && self.app.is_drained(phase)
    }

    fn stats(&self) -> Self::Stats {
        ShardStats {
            engine: EngineCounters::from(self.engine.stats()),
            shard: self.counters,
            app: self.app.stats(),
        }
    }

    fn idle(&mut self, timeout: Duration) {
        self.device.wait_for_frames(timeout);
    }
}
