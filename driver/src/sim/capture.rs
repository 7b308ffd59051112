//! Recording a simulation as a pcap file.
//!
//! Owns the pcap sinks of one run: an in-memory buffer (for tests that compare or parse the
//! capture) and/or a file (for a human or tshark). Frames are recorded as they enter the link, at
//! the time they were flushed, and optionally again when the receiving endpoint takes them. A
//! write error never disturbs the simulation: the first one is kept and reported by
//! [`Capture::finish`].

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use linerate_stack::time::Instant;

use crate::pcap::PcapWriter;

/// Where the pcap bytes go.
#[derive(Debug, Default)]
struct Sinks {
    memory: Option<Vec<u8>>,
    file: Option<BufWriter<File>>,
}

impl Write for Sinks {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if let Some(memory) = &mut self.memory {
            memory.extend_from_slice(buf);
        }
        if let Some(file) = &mut self.file {
            file.write_all(buf)?;
        }
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

/// A pcap recording of a simulated link (both directions in one file).
#[derive(Debug)]
pub struct Capture {
    writer: PcapWriter<Sinks>,
    record_delivered: bool,
    /// Frames recorded so far, and the most to record (long bulk runs keep only their start).
    recorded: u64,
    max_frames: u64,
    error: Option<io::Error>,
}

impl Capture {
    /// A capture kept in memory; [`Capture::finish`] returns the bytes.
    pub fn in_memory() -> Self {
        Self::with_sinks(Sinks { memory: Some(Vec::new()), file: None })
            .expect("writing to memory cannot fail")
    }

    /// A capture written to `path` (created or truncated).
    pub fn to_file(path: &Path) -> io::Result<Self> {
        let file = BufWriter::new(File::create(path)?);
        Self::with_sinks(Sinks { memory: None, file: Some(file) })
    }

    /// Also writes the capture to `path`, keeping what is already recorded in memory.
    pub fn also_to_file(mut self, path: &Path) -> io::Result<Self> {
        let mut file = BufWriter::new(File::create(path)?);
        let sinks = self.writer.get_mut();
        match &sinks.memory {
            Some(bytes) => file.write_all(bytes)?,
            None => return Err(io::Error::other("also_to_file needs an in-memory capture")),
        }
        sinks.file = Some(file);
        Ok(self)
    }

    /// Also records each frame when the receiving endpoint takes it (at that time); off by
    /// default because tshark then sees every frame twice.
    pub fn record_delivered(mut self, yes: bool) -> Self {
        self.record_delivered = yes;
        self
    }

    /// Records only the first `frames` frames of the run: a minute of a 100 Mbit/s flow would be
    /// gigabytes, while the handshake, slow start and first recoveries fit in a few thousand.
    pub fn limit_frames(mut self, frames: u64) -> Self {
        self.max_frames = frames;
        self
    }

    /// Frames recorded so far.
    pub fn recorded_frames(&self) -> u64 {
        self.recorded
    }

    /// Flushes the sinks; returns the in-memory bytes if there are any, or the first write error.
    pub fn finish(mut self) -> io::Result<Option<Vec<u8>>> {
        if let Some(err) = self.error.take() {
            return Err(err);
        }
        self.writer.flush()?;
        Ok(self.writer.into_inner().memory.take())
    }

    pub(crate) fn sent(&mut self, now: Instant, frame: &[u8]) {
        self.record(now, frame);
    }

    pub(crate) fn delivered(&mut self, now: Instant, frame: &[u8]) {
        if self.record_delivered {
            self.record(now, frame);
        }
    }

    fn record(&mut self, now: Instant, frame: &[u8]) {
        if self.recorded >= self.max_frames {
            return;
        }
        self.recorded += 1;
        if self.error.is_none() {
            if let Err(err) = self.writer.write_frame(now, frame) {
                self.error = Some(err);
            }
        }
    }

    fn with_sinks(sinks: Sinks) -> io::Result<Self> {
        Ok(Capture {
            writer: PcapWriter::new(sinks)?,
            record_delivered: false,
            recorded: 0,
            max_frames: u64::MAX,
            error: None,
        })
    }
}
