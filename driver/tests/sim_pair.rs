//! The Pair harness: determinism, capture, stepping and the livelock guard.

mod sim_toys;

use linerate_driver::pcap::{PcapReader, LINKTYPE_ETHERNET};
use linerate_driver::sim::{
    Capture, Direction, Endpoint, LinkConfig, LinkStats, LossModel, Outcome, Pair, SimPort, SimRun,
    POISON_BYTE,
};
use linerate_stack::device::Device;
use linerate_stack::time::{Duration, Instant};
use sim_toys::{tshark_frame_count, Sender, Sink};

/// Every knob on at once, so determinism covers them all.
fn busy_link() -> LinkConfig {
    LinkConfig::default()
        .delay(Duration::from_millis(3))
        .jitter(Duration::from_micros(1500))
        .reorder(0.02, Duration::from_millis(2))
        .loss(LossModel::GilbertElliott {
            p_good_to_bad: 0.02,
            p_bad_to_good: 0.3,
            loss_in_good: 0.001,
            loss_in_bad: 0.7,
        })
        .duplicate_probability(0.02)
        .corrupt_probability(0.02)
        .bottleneck(50_000_000, 20 * 1500)
}

/// A two-way run: each side sends numbered frames to the other.
#[derive(Debug)]
struct Both {
    sender: Sender,
    sink: Sink,
}

impl Endpoint for Both {
    fn poll(&mut self, now: Instant, port: &mut SimPort<'_>) {
        self.sink.poll(now, port);
        self.sender.poll(now, port);
    }
    fn next_wakeup(&self) -> Option<Instant> {
        self.sender.next_wakeup()
    }
}

fn both(len: usize, count: u64, interval_us: u64) -> Both {
    Both {
        sender: Sender::new(len, count, Duration::from_micros(interval_us)).burst(4),
        sink: Sink::default(),
    }
}

fn capture_run(seed: u64) -> (Vec<u8>, LinkStats, LinkStats, Vec<u64>) {
    let mut pair = Pair::new(seed, busy_link(), busy_link(), both(800, 2000, 200), both(300, 1000, 350))
        .with_capture(Some(Capture::in_memory()));
    pair.run_to(Instant::MAX, 1_000_000).unwrap_or_else(|e| panic!("{e}"));
    let bytes = pair.take_capture().unwrap().finish().unwrap().unwrap();
    let order = pair.b.sink.arrivals.iter().map(|a| a.seq).collect();
    (bytes, pair.stats(Direction::AToB), pair.stats(Direction::BToA), order)
}

#[test]
fn same_seed_gives_identical_pcaps_and_counters_different_seeds_differ() {
    let run = SimRun::new("same_seed_gives_identical_pcaps_and_counters_different_seeds_differ", 42);
    let first = capture_run(run.seed());
    let again = capture_run(run.seed());
    assert!(first == again, "a rerun with the same seed diverged");
    let ab = &first.1;
    assert!(ab.dropped_loss > 0 && ab.duplicated > 0 && ab.corrupted > 0 && ab.held_back > 0, "{ab:?}");
    let other = capture_run(run.seed() + 1);
    assert_ne!(first.3, other.3, "another seed delivers in another order");
    assert_ne!(first.1, other.1);
}

#[test]
fn the_capture_is_readable_by_our_reader_and_tshark() {
    let run = SimRun::new("the_capture_is_readable_by_our_reader_and_tshark", 5);
    let cfg = LinkConfig::default().delay(Duration::from_millis(2)).loss(LossModel::Bernoulli { p: 0.2 });
    let mut pair = run.pair_capturing(cfg.clone(), cfg, both(100, 50, 1000), both(90, 30, 1500));
    pair.run_to(Instant::MAX, 10_000).unwrap_or_else(|e| panic!("{e}"));
    let bytes = pair.take_capture().unwrap().finish().unwrap().unwrap();

    let reader = PcapReader::new(&bytes[..]).unwrap();
    assert_eq!(reader.link_type(), LINKTYPE_ETHERNET);
    assert!(reader.is_nanosecond());
    let records = reader.read_all().unwrap();
    // Frames are captured as they enter the link, lost ones included, at their send time.
    assert_eq!(records.len(), 80);
    let mut sent: Vec<(Instant, usize)> = pair.a.sender.sent.iter().map(|&(_, t)| (t, 100)).collect();
    sent.extend(pair.b.sender.sent.iter().map(|&(_, t)| (t, 90)));
    sent.sort();
    let mut seen: Vec<(Instant, usize)> = records.iter().map(|r| (r.ts, r.data.len())).collect();
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "timestamps never go back");
    seen.sort();
    assert_eq!(seen, sent);

    let path = std::env::temp_dir().join(format!("linerate-sim-capture-{}.pcap", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let counted = tshark_frame_count(&path);
    std::fs::remove_file(&path).unwrap();
    if let Some(count) = counted {
        assert_eq!(count, 80);
    }
}

#[test]
fn delivered_frames_can_be_captured_too() {
    let mut pair = Pair::new(
        1,
        LinkConfig::default(),
        LinkConfig::default(),
        Sender::new(64, 5, Duration::from_millis(1)),
        Sink::default(),
    )
    .with_capture(Some(Capture::in_memory().record_delivered(true)));
    pair.run_to(Instant::MAX, 100).unwrap();
    let bytes = pair.take_capture().unwrap().finish().unwrap().unwrap();
    assert_eq!(PcapReader::new(&bytes[..]).unwrap().read_all().unwrap().len(), 10);
}

#[test]
fn a_capture_can_keep_only_the_first_frames() {
    let mut pair = Pair::new(
        1,
        LinkConfig::default(),
        LinkConfig::default(),
        Sender::new(64, 50, Duration::from_millis(1)),
        Sink::default(),
    )
    .with_capture(Some(Capture::in_memory().limit_frames(7)));
    pair.run_to(Instant::MAX, 1000).unwrap();
    let capture = pair.take_capture().unwrap();
    assert_eq!(capture.recorded_frames(), 7);
    let bytes = capture.finish().unwrap().unwrap();
    let records = PcapReader::new(&bytes[..]).unwrap().read_all().unwrap();
    assert_eq!(records.len(), 7, "the first 7 of 50 frames");
}

/// Asks to be woken at time zero forever and never makes progress.
#[derive(Debug)]
struct Spinner;

impl Endpoint for Spinner {
    fn poll(&mut self, _now: Instant, _port: &mut SimPort<'_>) {}
    fn next_wakeup(&self) -> Option<Instant> {
        Some(Instant::ZERO)
    }
}

#[test]
fn a_livelock_is_reported_with_the_seed() {
    let mut pair = Pair::new(0xfeed, LinkConfig::default(), LinkConfig::default(), Spinner, Sink::default());
    let err = pair.run_to(Instant::from_millis(1000), 1000).unwrap_err();
    assert_eq!((err.seed, err.steps), (0xfeed, 1000));
    let message = err.to_string();
    assert!(message.contains("seed=65261") && message.contains("LINERATE_SEED=65261"), "{message}");
}

#[test]
fn time_jumps_between_events_and_run_until_reports_why_it_stopped() {
    let sender = Sender::new(64, 3, Duration::from_secs(10));
    let cfg = LinkConfig::default().delay(Duration::from_secs(1));
    let mut pair = Pair::new(3, cfg, LinkConfig::default(), sender, Sink::default());
    // Stops at the deadline with time set to it.
    assert_eq!(pair.run_to(Instant::from_millis(10_500), 100), Ok(Outcome::DeadlineReached));
    assert_eq!(pair.now(), Instant::from_millis(10_500));
    assert_eq!(pair.b.arrivals.len(), 1);
    // Stops when the predicate holds.
    let outcome = pair.run_until(Instant::MAX, 100, |p| p.b.arrivals.len() == 2);
    assert_eq!(outcome, Ok(Outcome::Done));
    assert_eq!(pair.now(), Instant::from_millis(11_000));
    // Runs out of work: 3 sends + 3 arrivals took 6 steps, 21 virtual seconds, no sleeping.
    assert_eq!(pair.run_to(Instant::MAX, 100), Ok(Outcome::Idle));
    assert_eq!(pair.now(), Instant::from_millis(21_000));
    assert_eq!(pair.steps(), 6);
    assert!(!pair.step());
}

/// Checks the Device contract of a port from inside a poll.
#[derive(Debug, Default)]
struct Prober {
    checked: bool,
}

impl Endpoint for Prober {
    fn poll(&mut self, now: Instant, port: &mut SimPort<'_>) {
        let caps = port.capabilities();
        assert_eq!((caps.mtu, caps.max_burst), (1400, 8));
        assert!(!caps.rx_checksum_verified && !caps.tx_checksum_offload);
        assert_eq!(port.transmit(now, caps.max_frame_len() + 1, |_| ()), None);
        assert_eq!(port.transmit_capacity(), 3);
        for _ in 0..3 {
            let poisoned =
                port.transmit(now, 60, |buf| buf.len() == 60 && buf.iter().all(|&b| b == POISON_BYTE));
            assert_eq!(poisoned, Some(true));
        }
        assert_eq!(port.transmit_capacity(), 0);
        assert_eq!(port.transmit(now, 60, |_| ()), None, "the TX ring is full until a flush");
        assert_eq!(port.outgoing().stats().sent_frames, 0, "nothing leaves before the flush");
        port.flush(now);
        assert_eq!(port.transmit_capacity(), 3);
        assert_eq!(port.outgoing().stats().sent_frames, 3);
        self.checked = true;
    }
    fn next_wakeup(&self) -> Option<Instant> {
        (!self.checked).then_some(Instant::ZERO)
    }
}

#[test]
fn ports_keep_the_device_contract() {
    let cfg = LinkConfig::default().mtu(1400).max_burst(8).tx_ring_frames(3);
    let mut pair = Pair::new(4, cfg, LinkConfig::default(), Prober::default(), Sink::default());
    pair.run_to(Instant::MAX, 100).unwrap();
    assert!(pair.a.checked);
    assert_eq!(pair.stats(Direction::AToB).delivered_frames, 3);
}
