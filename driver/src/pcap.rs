//! Classic pcap files: a writer for captures and a bounded reader for test vectors.
//!
//! The writer emits the nanosecond-resolution variant (magic `0xa1b23c4d`, little-endian,
//! LINKTYPE_ETHERNET) over any [`std::io::Write`]; tcpdump, Wireshark and tshark read it. The
//! reader accepts the microsecond and nanosecond variants in either byte order. It promises never
//! to panic or allocate more than [`MAX_RECORD_LEN`] bytes per record on any input, and reports
//! malformed files as [`PcapError`]s. Neither side buffers: wrap files in a `BufWriter`/`BufReader`.
//!
//! Format: the pcap file format as documented by the tcpdump project (draft-ietf-opsawg-pcap):
//! a 24-byte file header, then per packet a 16-byte record header and the captured bytes.

use std::io::{self, Read, Write};

use linerate_stack::time::Instant;

/// Magic of microsecond-resolution files, as written in the file's own byte order.
pub const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// Magic of nanosecond-resolution files.
pub const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// LINKTYPE_ETHERNET: records start with an Ethernet II header.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Snapshot length we write: longer frames are truncated in the file (never in the simulation).
pub const SNAPLEN: u32 = 262_144;
/// Largest record the reader accepts, whatever the file header claims.
pub const MAX_RECORD_LEN: u32 = 262_144;

const FILE_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Why a pcap file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("reading the pcap file failed: {0}")]
    Io(#[from] io::Error),
    #[error("not a pcap file: magic {0:#010x} is neither the microsecond nor the nanosecond variant")]
    BadMagic(u32),
    #[error("unsupported pcap version {major}.{minor} (only 2.x is read)")]
    UnsupportedVersion { major: u16, minor: u16 },
    #[error("pcap file ends inside the {0}-byte file header")]
    TruncatedFileHeader(usize),
    #[error("pcap file ends inside a record ({0} bytes of header or data missing)")]
    TruncatedRecord(usize),
    #[error("pcap record of {len} bytes exceeds the limit of {limit} bytes; the file is corrupt")]
    RecordTooLong { len: u32, limit: u32 },
}

/// Writes a nanosecond-resolution Ethernet pcap to `W`.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header and returns the writer.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut header = [0u8; FILE_HEADER_LEN];
        header[0..4].copy_from_slice(&MAGIC_NANOS.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // 8..16: thiszone and sigfigs, both zero.
        header[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        header[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter { out })
    }

    /// Appends one frame seen at `ts` (nanoseconds since the epoch of the clock that made `ts`).
    pub fn write_frame(&mut self, ts: Instant, frame: &[u8]) -> io::Result<()> {
        let nanos = ts.as_nanos();
        let secs = u32::try_from(nanos / NANOS_PER_SEC).unwrap_or(u32::MAX);
        let orig_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let incl_len = orig_len.min(SNAPLEN);
        let mut header = [0u8; RECORD_HEADER_LEN];
        header[0..4].copy_from_slice(&secs.to_le_bytes());
        header[4..8].copy_from_slice(&((nanos % NANOS_PER_SEC) as u32).to_le_bytes());
        header[8..12].copy_from_slice(&incl_len.to_le_bytes());
        header[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.out.write_all(&header)?;
        self.out.write_all(&frame[..incl_len as usize])
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// One record read from a pcap file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapRecord {
    /// Capture time, converted to nanoseconds whatever the file's resolution.
    pub ts: Instant,
    /// Length of the frame on the wire (may exceed `data.len()` when the capture truncated it).
    pub orig_len: u32,
    pub data: Vec<u8>,
}

/// Reads records from a classic pcap file.
#[derive(Debug)]
pub struct PcapReader<R: Read> {
    input: R,
    big_endian: bool,
    nanos: bool,
    link_type: u32,
    snaplen: u32,
}

impl<R: Read> PcapReader<R> {
    /// Reads and checks the file header.
    pub fn new(mut input: R) -> Result<Self, PcapError> {
        let mut header = [0u8; FILE_HEADER_LEN];
        let got = read_full(&mut input, &mut header)?;
        if got < 4 {
            return Err(PcapError::TruncatedFileHeader(FILE_HEADER_LEN));
        }
        let le_magic = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let (big_endian, nanos) = match le_magic {
            MAGIC_MICROS => (false, false),
            MAGIC_NANOS => (false, true),
            m if m.swap_bytes() == MAGIC_MICROS => (true, false),
            m if m.swap_bytes() == MAGIC_NANOS => (true, true),
            m => return Err(PcapError::BadMagic(m)),
        };
        if got < FILE_HEADER_LEN {
            return Err(PcapError::TruncatedFileHeader(FILE_HEADER_LEN));
        }
        let mut reader = PcapReader { input, big_endian, nanos, link_type: 0, snaplen: 0 };
        let (major, minor) = (reader.u16_at(&header, 4), reader.u16_at(&header, 6));
        if major != 2 {
            return Err(PcapError::UnsupportedVersion { major, minor });
        }
        reader.snaplen = reader.u32_at(&header, 16);
        reader.link_type = reader.u32_at(&header, 20);
        Ok(reader)
    }

    /// The file's link type (1 for Ethernet).
    pub fn link_type(&self) -> u32 {
        self.link_type
    }

    /// Whether timestamps have nanosecond (rather than microsecond) resolution.
    pub fn is_nanosecond(&self) -> bool {
        self.nanos
    }

    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// The next record, `None` at a clean end of file.
    pub fn next_record(&mut self) -> Result<Option<PcapRecord>, PcapError> {
        let mut header = [0u8; RECORD_HEADER_LEN];
        match read_full(&mut self.input, &mut header)? {
            0 => return Ok(None),
            n if n < RECORD_HEADER_LEN => return Err(PcapError::TruncatedRecord(RECORD_HEADER_LEN - n)),
            _ => {}
        }
        let secs = u64::from(self.u32_at(&header, 0));
        let frac = u64::from(self.u32_at(&header, 4));
        let incl_len = self.u32_at(&header, 8);
        let orig_len = self.u32_at(&header, 12);
        if incl_len > MAX_RECORD_LEN {
            return Err(PcapError::RecordTooLong { len: incl_len, limit: MAX_RECORD_LEN });
        }
        let frac_nanos = if self.nanos { frac } else { frac.saturating_mul(1_000) };
        let ts = Instant::from_nanos(secs.saturating_mul(NANOS_PER_SEC).saturating_add(frac_nanos));
        let mut data = vec![0u8; incl_len as usize];
        let got = read_full(&mut self.input, &mut data)?;
        if got < data.len() {
            return Err(PcapError::TruncatedRecord(data.len() - got));
        }
        Ok(Some(PcapRecord { ts, orig_len, data }))
    }

    /// Every remaining record.
    pub fn read_all(mut self) -> Result<Vec<PcapRecord>, PcapError> {
        let mut records = Vec::new();
        while let Some(record) = self.next_record()? {
            records.push(record);
        }
        Ok(records)
    }

    fn u16_at(&self, bytes: &[u8], at: usize) -> u16 {
        let raw = [bytes[at], bytes[at + 1]];
        if self.big_endian {
            u16::from_be_bytes(raw)
        } else {
            u16::from_le_bytes(raw)
        }
    }

    fn u32_at(&self, bytes: &[u8], at: usize) -> u32 {
        let raw = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if self.big_endian {
            u32::from_be_bytes(raw)
        } else {
            u32::from_le_bytes(raw)
        }
    }
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_full<R: Read>(input: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
