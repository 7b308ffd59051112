//! Toy endpoints for the simulation tests: a sender of numbered frames and a sink that records
//! what arrives. Plain test code; shared by the `sim_*` test files.
#![allow(dead_code)]

use linerate_driver::sim::{Endpoint, SimPort};
use linerate_stack::device::{Device, ETHERNET_HEADER_LEN};
use linerate_stack::time::{Duration, Instant};

/// IEEE 802 local experimental EtherType: tshark shows the frames without complaint.
pub const ETHERTYPE_EXPERIMENTAL: u16 = 0x88b5;
pub const SENDER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const SINK_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// Smallest frame the toys build: Ethernet header, sequence number, checksum.
pub const MIN_FRAME: usize = ETHERNET_HEADER_LEN + 8 + 4;

/// Writes frame number `seq` into `buf`: Ethernet header, the sequence number, a pattern, and a
/// byte-sum of everything after the header (any single flipped bit changes it).
pub fn fill_frame(seq: u64, buf: &mut [u8]) {
    buf[0..6].copy_from_slice(&SINK_MAC);
    buf[6..12].copy_from_slice(&SENDER_MAC);
    buf[12..14].copy_from_slice(&ETHERTYPE_EXPERIMENTAL.to_be_bytes());
    buf[14..22].copy_from_slice(&seq.to_be_bytes());
    let end = buf.len() - 4;
    for (i, byte) in buf[22..end].iter_mut().enumerate() {
        *byte = (seq as usize).wrapping_add(i) as u8;
    }
    let sum = byte_sum(&buf[14..end]);
    buf[end..].copy_from_slice(&sum.to_be_bytes());
}

fn byte_sum(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0u32, |acc, &b| acc.wrapping_add(u32::from(b)))
}

/// The sequence number of a toy frame and whether it arrived exactly as sent.
pub fn check_frame(frame: &[u8]) -> (u64, bool) {
    let mut seq_bytes = [0u8; 8];
    seq_bytes.copy_from_slice(&frame[14..22]);
    let seq = u64::from_be_bytes(seq_bytes);
    let mut expected = vec![0u8; frame.len()];
    fill_frame(seq, &mut expected);
    (seq, expected == frame)
}

/// Sends `count` numbered frames of `len` bytes, `burst` at a time every `interval` from `start`.
#[derive(Debug)]
pub struct Sender {
    pub len: usize,
    pub count: u64,
    pub burst: usize,
    pub interval: Duration,
    pub next_seq: u64,
    pub next_at: Instant,
    /// Transmit calls refused (TX ring full).
    pub refused: u64,
    /// (seq, time) of every frame handed to the port.
    pub sent: Vec<(u64, Instant)>,
}

impl Sender {
    pub fn new(len: usize, count: u64, interval: Duration) -> Self {
        assert!(len >= MIN_FRAME);
        Sender {
            len,
            count,
            burst: 1,
            interval,
            next_seq: 0,
            next_at: Instant::ZERO,
            refused: 0,
            sent: Vec::new(),
        }
    }

    pub fn burst(mut self, burst: usize) -> Self {
        self.burst = burst;
        self
    }
}

impl Endpoint for Sender {
    fn poll(&mut self, now: Instant, port: &mut SimPort<'_>) {
        port.receive(now, usize::MAX, |_| {});
        if self.next_seq >= self.count || now < self.next_at {
            return;
        }
        for _ in 0..self.burst {
            if self.next_seq >= self.count {
                break;
            }
            let seq = self.next_seq;
            match port.transmit(now, self.len, |buf| fill_frame(seq, buf)) {
                Some(()) => {
                    self.sent.push((seq, now));
                    self.next_seq += 1;
                }
                None => {
                    self.refused += 1;
                    break;
                }
            }
        }
        port.flush(now);
        self.next_at = now + self.interval;
    }

    fn next_wakeup(&self) -> Option<Instant> {
        (self.next_seq < self.count).then_some(self.next_at)
    }
}

/// One received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    pub seq: u64,
    pub at: Instant,
    pub len: usize,
    /// The frame is exactly what the sender built.
    pub intact: bool,
}

/// Receives everything and records it.
#[derive(Debug, Default)]
pub struct Sink {
    pub arrivals: Vec<Arrival>,
    /// Receive budget per poll.
    pub budget: Option<usize>,
}

impl Endpoint for Sink {
    fn poll(&mut self, now: Instant, port: &mut SimPort<'_>) {
        let budget = self.budget.unwrap_or(port.capabilities().max_burst);
        let arrivals = &mut self.arrivals;
        port.receive(now, budget, |frame| {
            let (seq, intact) = check_frame(frame);
            arrivals.push(Arrival { seq, at: now, len: frame.len(), intact });
        });
    }

    fn next_wakeup(&self) -> Option<Instant> {
        None
    }
}

/// Lengths of runs of consecutive missing sequence numbers in `0..count`.
pub fn loss_bursts(received: &[Arrival], count: u64) -> Vec<u64> {
    let mut got = vec![false; count as usize];
    for a in received {
        got[a.seq as usize] = true;
    }
    let mut bursts = Vec::new();
    let mut run = 0;
    for present in got {
        if present {
            if run > 0 {
                bursts.push(run);
            }
            run = 0;
        } else {
            run += 1;
        }
    }
    if run > 0 {
        bursts.push(run);
    }
    bursts
}

/// Whether tshark is installed where this machine and CI have it.
pub const TSHARK: &str = "/usr/bin/tshark";

/// Runs `tshark -r path` and returns the number of frames it decoded. Panics when tshark is
/// missing in CI (`CI` set); elsewhere returns `None` so local runs without it still pass.
pub fn tshark_frame_count(path: &std::path::Path) -> Option<usize> {
    if !std::path::Path::new(TSHARK).exists() {
        assert!(std::env::var_os("CI").is_none(), "tshark is required in CI but {TSHARK} is missing");
        eprintln!("tshark not installed; skipping the tshark check");
        return None;
    }
    let out = std::process::Command::new(TSHARK)
        .args(["-n", "-r"])
        .arg(path)
        .args(["-T", "fields", "-e", "frame.number", "-e", "frame.len", "-e", "eth.type"])
        .output()
        .expect("tshark runs");
    assert!(
        out.status.success(),
        "tshark failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("tshark prints UTF-8");
    for line in text.lines() {
        assert!(line.ends_with("0x88b5"), "tshark decoded an unexpected frame: {line}");
    }
    Some(text.lines().count())
}
