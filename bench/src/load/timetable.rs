//! The open-loop schedule of keep-alive requests and its latency bookkeeping, on time passed in.
//!
//! Owns [`Timetable`] (when each request is due and on which connection) and [`OpenLoopBook`]
//! (which request each connection is on, and the latencies of each). Request `k` of a run at
//! rate `R` over `N` connections is due `k / R` after the start, on connection `k mod N`: a
//! fixed round-robin timetable. It has no random source, so two servers get exactly the same
//! arrivals; the price is that evenly spaced arrivals queue less than Poisson ones would, so the
//! percentiles are those of a steady client, not of a bursty crowd.
//!
//! Promises: a request's latency is counted from when it was *due*, never from when it was sent,
//! so a connection still busy with its previous request, a reconnect, or a generator running late
//! all add their wait to the latency (no coordinated omission); at most one request per
//! connection is outstanding (never pipelined); memory is fixed by the connection count (a due
//! request is a counter, not a queue entry); the schedule is bounded by [`MAX_REQUESTS`].
//! Must not: read a clock or do I/O (the generator in `open_loop` does both).

use std::ops::Range;
use std::time::Duration;

use hdrhistogram::Histogram;

/// A run schedules at most this many requests, whatever rate and window it is given.
pub const MAX_REQUESTS: u64 = 100_000_000;

/// When request `k` is due and on which connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Timetable {
    rate_per_sec: f64,
    connections: u64,
    /// Requests due strictly before the end of the window.
    total: u64,
}

impl Timetable {
    /// `rate_per_sec` requests a second over `connections` connections for `window`; a rate or
    /// connection count of zero (or not finite) is taken as the smallest that makes sense.
    pub fn new(rate_per_sec: f64, connections: u32, window: Duration) -> Timetable {
        let rate_per_sec = if rate_per_sec.is_finite() && rate_per_sec > 0.0 { rate_per_sec } else { 1.0 };
        let total = (window.as_secs_f64() * rate_per_sec).ceil().clamp(0.0, MAX_REQUESTS as f64) as u64;
        Timetable { rate_per_sec, connections: u64::from(connections.max(1)), total }
    }

    pub fn rate_per_sec(&self) -> f64 {
        self.rate_per_sec
    }

    pub fn connections(&self) -> usize {
        self.connections as usize
    }

    /// Requests in the whole schedule.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// When request `k` is due, after the start.
    pub fn due_at(&self, k: u64) -> Duration {
        Duration::from_nanos((k as f64 * 1e9 / self.rate_per_sec) as u64)
    }

    /// How many requests are due at or before `elapsed` (request 0 is due at once): the `k`
    /// with `due_at(k) <= elapsed`, computed so that it agrees with [`Timetable::due_at`]
    /// exactly even where floating point rounds.
    pub fn due_by(&self, elapsed: Duration) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let estimate = (elapsed.as_secs_f64() * self.rate_per_sec).floor().min((self.total - 1) as f64);
        let mut last = estimate.max(0.0) as u64;
        while last > 0 && self.due_at(last) > elapsed {
            last -= 1;
        }
        while last + 1 < self.total && self.due_at(last + 1) <= elapsed {
            last += 1;
        }
        last + 1
    }

    pub fn connection_of(&self, k: u64) -> usize {
        (k % self.connections) as usize
    }

    /// The schedule index of connection `conn`'s `j`-th request.
    pub fn request(&self, conn: usize, j: u64) -> u64 {
        conn as u64 + j * self.connections
    }

    /// How many of connection `conn`'s requests are due at or before `elapsed`.
    pub fn due_on(&self, conn: usize, elapsed: Duration) -> u64 {
        let due = self.due_by(elapsed);
        let conn = conn as u64;
        if due <= conn {
            0
        } else {
            (due - conn - 1) / self.connections + 1
        }
    }
}

/// The request a connection has sent and not yet had answered.
#[derive(Debug, Clone, Copy, PartialEq)]
struct InFlight {
    due: Duration,
    sent: Duration,
}

#[derive(Debug, Clone, Default)]
struct Connection {
    /// This connection's next request (its `j`; schedule index via [`Timetable::request`]).
    next: u64,
    in_flight: Option<InFlight>,
}

/// The three latencies of a run, in microseconds.
#[derive(Debug, Clone)]
pub struct Latencies {
    /// Completion − due: what the client of a server at this rate sees.
    pub response: Histogram<u64>,
    /// Sent − due: waiting for the connection's previous request, a reconnect, or the generator.
    pub send_delay: Histogram<u64>,
    /// Completion − sent: the server and the path, once the request is on the wire.
    pub service: Histogram<u64>,
}

/// What each connection is doing in the schedule, and every latency so far.
#[derive(Debug, Clone)]
pub struct OpenLoopBook {
    table: Timetable,
    connections: Vec<Connection>,
    /// Requests handed out by [`OpenLoopBook::release`] so far (a schedule index).
    released: u64,
    pub latencies: Latencies,
    pub completed: u64,
    /// Requests given up on (their connection failed): counted, not in the histograms.
    pub abandoned: u64,
}

impl OpenLoopBook {
    pub fn new(table: Timetable) -> Result<OpenLoopBook, hdrhistogram::CreationError> {
        let histogram = || Histogram::new_with_bounds(1, 600_000_000, 3);
        Ok(OpenLoopBook {
            connections: vec![Connection::default(); table.connections()],
            table,
            released: 0,
            latencies: Latencies { response: histogram()?, send_delay: histogram()?, service: histogram()? },
            completed: 0,
            abandoned: 0,
        })
    }

    pub fn table(&self) -> &Timetable {
        &self.table
    }

    /// The connections that got a newly due request since the last call, each once. The caller
    /// offers each an [`OpenLoopBook::start`] if it is idle; a busy one starts its next request
    /// when it completes the current one.
    pub fn release(&mut self, elapsed: Duration) -> impl Iterator<Item = usize> + '_ {
        let due = self.table.due_by(elapsed).max(self.released);
        let fresh: Range<u64> = self.released..due;
        self.released = due;
        // Any `connections` consecutive requests cover every connection once.
        let end = fresh.end.min(fresh.start + self.table.connections);
        (fresh.start..end).map(|k| self.table.connection_of(k))
    }

    /// When the next request becomes due (`None` once the whole schedule is released).
    pub fn next_wake(&self) -> Option<Duration> {
        (self.released < self.table.total()).then(|| self.table.due_at(self.released))
    }

    /// Starts `conn`'s next request if it is due and the connection has none outstanding;
    /// returns when it was due. The send delay is recorded now.
    pub fn start(&mut self, conn: usize, elapsed: Duration) -> Option<Duration> {
        let c = self.connections.get_mut(conn)?;
        if c.in_flight.is_some() || c.next >= self.table.due_on(conn, elapsed) {
            return None;
        }
        let due = self.table.due_at(self.table.request(conn, c.next));
        c.in_flight = Some(InFlight { due, sent: elapsed });
        record(&mut self.latencies.send_delay, elapsed.saturating_sub(due));
        Some(due)
    }

    /// `conn`'s outstanding request was answered in full at `elapsed`.
    pub fn complete(&mut self, conn: usize, elapsed: Duration) {
        let Some(c) = self.connections.get_mut(conn) else { return };
        let Some(f) = c.in_flight.take() else { return };
        c.next += 1;
        self.completed += 1;
        record(&mut self.latencies.response, elapsed.saturating_sub(f.due));
        record(&mut self.latencies.service, elapsed.saturating_sub(f.sent));
    }

    /// `conn` failed: its outstanding request, if any, is given up (the next one stays due).
    pub fn abandon(&mut self, conn: usize) {
        let Some(c) = self.connections.get_mut(conn) else { return };
        if c.in_flight.take().is_some() {
            c.next += 1;
            self.abandoned += 1;
        }
    }

    pub fn is_busy(&self, conn: usize) -> bool {
        self.connections.get(conn).is_some_and(|c| c.in_flight.is_some())
    }

    /// Requests due by `elapsed` and not yet completed or abandoned (sent or not).
    pub fn outstanding(&self, elapsed: Duration) -> u64 {
        (0..self.connections.len())
            .map(|i| self.table.due_on(i, elapsed).saturating_sub(self.connections[i].next))
            .sum()
    }

    /// True once every request of the schedule is completed or abandoned.
    pub fn all_done(&self, elapsed: Duration) -> bool {
        self.table.due_by(elapsed) >= self.table.total() && self.outstanding(elapsed) == 0
    }

    /// Ends the run at `elapsed`: every request due and not completed is recorded in the
    /// response histogram with its wait so far (a lower bound of its true latency, so an
    /// overloaded server cannot hide its backlog by never answering) and counted; returns the
    /// count. The send-delay and service histograms hold completed requests only.
    pub fn finish(&mut self, elapsed: Duration) -> u64 {
        let mut unfinished = 0;
        for (i, c) in self.connections.iter_mut().enumerate() {
            for j in c.next..self.table.due_on(i, elapsed) {
                let due = self.table.due_at(self.table.request(i, j));
                record(&mut self.latencies.response, elapsed.saturating_sub(due));
                unfinished += 1;
            }
            c.next = c.next.max(self.table.due_on(i, elapsed));
            c.in_flight = None;
        }
        unfinished
    }
}

fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record((d.as_micros() as u64).max(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn timetable_is_round_robin_at_the_rate_and_bounded_by_the_window() {
        // 10 k req/s: one request every 100 µs, 4 connections, 1 ms window → 10 requests.
        let t = Timetable::new(10_000.0, 4, Duration::from_millis(1));
        assert_eq!(t.total(), 10);
        assert_eq!((t.due_at(0), t.due_at(1), t.due_at(9)), (us(0), us(100), us(900)));
        assert_eq!((0..6).map(|k| t.connection_of(k)).collect::<Vec<_>>(), [0, 1, 2, 3, 0, 1]);
        assert_eq!(t.request(1, 2), 9);
        assert_eq!((t.due_by(us(0)), t.due_by(us(99)), t.due_by(us(100)), t.due_by(us(5000))), (1, 1, 2, 10));
        // Connection 1 owns requests 1, 5, 9: due at 100, 500, 900 µs.
        assert_eq!(
            (t.due_on(1, us(99)), t.due_on(1, us(100)), t.due_on(1, us(899)), t.due_on(1, us(900))),
            (0, 1, 2, 3)
        );
        assert_eq!(Timetable::new(f64::NAN, 0, Duration::from_secs(2)).total(), 2);
        assert_eq!(Timetable::new(1e12, 1, Duration::from_secs(10)).total(), MAX_REQUESTS);
    }

    #[test]
    fn due_by_agrees_with_due_at_at_awkward_rates() {
        for rate in [3.0, 7_919.0, 33_333.3, 123_457.0] {
            let t = Timetable::new(rate, 64, Duration::from_millis(50));
            for k in 0..t.total() {
                let at = t.due_at(k);
                assert_eq!(t.due_by(at), k + 1, "rate {rate}, k {k}");
                if at > Duration::ZERO {
                    assert_eq!(t.due_by(at - Duration::from_nanos(1)), k, "rate {rate}, k {k}");
                }
            }
        }
    }

    #[test]
    fn release_hands_each_connection_its_due_requests_once() {
        let mut b = OpenLoopBook::new(Timetable::new(10_000.0, 4, Duration::from_millis(1))).unwrap();
        assert_eq!(b.release(us(0)).collect::<Vec<_>>(), [0]);
        assert_eq!(b.next_wake(), Some(us(100)));
        assert_eq!(b.release(us(250)).collect::<Vec<_>>(), [1, 2]);
        assert!(b.release(us(250)).next().is_none());
        // Far behind: ten due at once still name each connection only once.
        assert_eq!(b.release(us(10_000)).collect::<Vec<_>>(), [3, 0, 1, 2]);
        assert_eq!(b.next_wake(), None);
    }

    #[test]
    fn latency_counts_from_the_due_time_when_the_connection_was_busy() {
        // One connection, a request due every 100 µs; the server takes 250 µs for the first.
        let mut b = OpenLoopBook::new(Timetable::new(10_000.0, 1, Duration::from_micros(300))).unwrap();
        assert_eq!(b.start(0, us(0)), Some(us(0)));
        // Never pipelined: request 1 is due at 100 µs but request 0 is still outstanding.
        assert_eq!(b.start(0, us(150)), None);
        assert!(b.is_busy(0));
        b.complete(0, us(250));
        // Request 1 goes out at 250 µs, 150 µs late, and takes 50 µs on the wire.
        assert_eq!(b.start(0, us(250)), Some(us(100)));
        b.complete(0, us(300));
        assert_eq!(b.start(0, us(300)), Some(us(200)));
        b.complete(0, us(310));
        assert_eq!(b.start(0, us(10_000)), None, "the schedule is over");
        let l = &b.latencies;
        assert_eq!((l.response.min(), l.response.max(), l.response.len()), (110, 250, 3));
        assert_eq!(l.response.value_at_quantile(0.5), 200, "request 1: 300 - 100 µs");
        assert_eq!((l.service.min(), l.service.max()), (10, 250));
        assert_eq!((l.send_delay.min(), l.send_delay.max()), (1, 150), "0 is recorded as 1 µs");
        assert!(b.all_done(us(10_000)));
        assert_eq!(b.completed, 3);
    }

    #[test]
    fn a_request_not_yet_due_waits_and_an_idle_connection_adds_no_latency() {
        let mut b = OpenLoopBook::new(Timetable::new(1_000.0, 2, Duration::from_millis(10))).unwrap();
        assert_eq!(b.start(1, us(999)), None, "connection 1's first request is due at 1 ms");
        assert_eq!(b.start(1, us(1000)), Some(us(1000)));
        b.complete(1, us(1040));
        assert_eq!(b.latencies.response.max(), 40);
        assert_eq!(b.start(1, us(1040)), None, "its next one is due at 3 ms");
    }

    #[test]
    fn abandoned_and_unfinished_requests_are_counted_and_the_backlog_is_in_the_latency() {
        let mut b = OpenLoopBook::new(Timetable::new(1_000.0, 2, Duration::from_millis(10))).unwrap();
        assert!(b.start(0, us(0)).is_some());
        b.abandon(0);
        assert_eq!((b.abandoned, b.is_busy(0)), (1, false));
        b.abandon(0);
        assert_eq!(b.abandoned, 1, "nothing outstanding: nothing abandoned");
        // At 10 ms every request is due; connection 0 has done none of its 4 left, connection 1
        // has one in flight since 1 ms and 4 more waiting.
        assert!(b.start(1, us(1000)).is_some());
        assert_eq!(b.outstanding(us(10_000)), 9);
        assert!(!b.all_done(us(10_000)));
        assert_eq!(b.finish(us(10_000)), 9);
        let r = &b.latencies.response;
        assert_eq!(r.len(), 9);
        assert!(r.equivalent(r.max(), 9000), "lower bounds, the wait so far: max {}", r.max());
        assert_eq!(r.min(), 1000);
        assert!(b.latencies.service.is_empty());
        assert_eq!(b.outstanding(us(10_000)), 0);
    }
}
