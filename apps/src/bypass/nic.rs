//! [`Nic`]: every AF_XDP queue of one interface as a single [`Device`] for one engine, with an
//! optional pcap capture of every frame in and out.
//!
//! A shard owns one `Nic` over its share of the interface's queues: receive drains each queue in
//! turn, transmit uses the first queue (any queue of a veth or NIC can send any frame). Idle
//! waiting is `ppoll(2)` on all the queue sockets. Capture costs a buffered write per frame and
//! is meant for debugging only.

use linerate_driver::afxdp::AfXdpDevice;
use linerate_driver::pcap::PcapWriter;
use linerate_driver::shard::engine_shard::wait_readable;
use linerate_driver::shard::ShardDevice;
use linerate_stack::device::{Capabilities, Device};
use linerate_stack::time::{Duration, Instant};
use std::fs::File;
use std::io::BufWriter;

/// A pcap capture stamped with wall-clock time.
#[derive(Debug)]
pub struct Capture {
    writer: PcapWriter<BufWriter<File>>,
    unix_nanos_at_zero: u64,
    /// Frames that could not be written (disk full...); capture is best-effort.
    pub errors: u64,
}

impl Capture {
    pub fn create(path: &std::path::Path, unix_nanos_at_zero: u64) -> std::io::Result<Self> {
        let file = File::create(path)?;
        Ok(Capture { writer: PcapWriter::new(BufWriter::new(file))?, unix_nanos_at_zero, errors: 0 })
    }

    fn record(&mut self, now: Instant, frame: &[u8]) {
        let ts = Instant::from_nanos(self.unix_nanos_at_zero.saturating_add(now.as_nanos()));
        if self.writer.write_frame(ts, frame).is_err() {
            self.errors += 1;
        }
    }

    pub fn flush(&mut self) {
        if self.writer.flush().is_err() {
            self.errors += 1;
        }
    }
}

/// All queues of one interface, driven by one engine.
#[derive(Debug)]
pub struct Nic {
    queues: Vec<AfXdpDevice>,
    capture: Option<Capture>,
    fds: Vec<std::os::fd::RawFd>,
}

impl Nic {
    /// `queues` must not be empty.
    pub fn new(queues: Vec<AfXdpDevice>, capture: Option<Capture>) -> Self {
        assert!(!queues.is_empty(), "a Nic needs at least one queue");
        let fds = queues.iter().map(AfXdpDevice::raw_fd).collect();
        Nic { queues, capture, fds }
    }

    pub fn queues(&self) -> &[AfXdpDevice] {
        &self.queues
    }

    /// Sleeps until a frame arrives on any queue or `timeout` passes.
    pub fn wait(&mut self, timeout: Duration) {
        wait_readable(&mut self.fds, timeout.min(Duration::from_secs(1)));
    }

    /// Frames the kernel dropped on our sockets (full rx ring, empty fill ring), all queues.
    pub fn kernel_drops(&self) -> u64 {
        let stat = |q: &AfXdpDevice| {
            q.kernel_statistics().map_or(0, |k| k.rx_dropped + k.rx_ring_full + k.rx_fill_ring_empty_descs)
        };
        self.queues.iter().map(stat).sum()
    }

    /// Flushes the capture file, if any.
    pub fn flush_capture(&mut self) {
        if let Some(c) = self.capture.as_mut() {
            c.flush();
        }
    }
}

impl ShardDevice for Nic {
    fn wait_for_frames(&mut self, timeout: Duration) {
        self.wait(timeout);
    }
}

impl Device for Nic {
    fn capabilities(&self) -> Capabilities {
        self.queues[0].capabilities()
    }

    fn receive<F: FnMut(&mut [u8])>(&mut self, now: Instant, budget: usize, mut handle: F) -> usize {
        let mut total = 0;
        for q in &mut self.queues {
            if total >= budget {
                break;
            }
            total += match self.capture.as_mut() {
                Some(cap) => q.receive(now, budget - total, |f| {
                    cap.record(now, f);
                    handle(f)
                }),
                None => q.receive(now, budget - total, &mut handle),
            };
        }
        total
    }

    fn transmit_capacity(&self) -> usize {
        self.queues[0].transmit_capacity()
    }

    fn transmit<R, F: FnOnce(&mut [u8]) -> R>(&mut self, now: Instant, len: usize, fill: F) -> Option<R> {
        match self.capture.as_mut() {
            Some(cap) => self.queues[0].transmit(now, len, |buf| {
                let r = fill(buf);
                cap.record(now, buf);
                r
            }),
            None => self.queues[0].transmit(now, len, fill),
        }
    }

    fn flush(&mut self, now: Instant) {
        self.queues[0].flush(now);
    }
}
