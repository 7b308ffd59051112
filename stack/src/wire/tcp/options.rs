//! TCP options: parsing any sequence (RFC 9293 §3.2), emitting a canonical one.
//!
//! Known kinds: EOL (0), NOP (1), MSS (2, RFC 9293 §3.7.1), window scale (3, RFC 7323 §2),
//! SACK-permitted (4) and SACK (5, RFC 2018), timestamps (8, RFC 7323 §3) and the Fast Open
//! cookie (34, RFC 7413 §4.1.1). Unknown kinds are skipped by their length.
//!
//! Decisions on hostile input (RFC 9293 §3.2, MUST-7: be prepared for illegal option lengths):
//! a length below 2, an option running past the header, or a known kind with the wrong length
//! (MSS != 4, WS != 3, SACK-permitted != 2, timestamps != 10, SACK not 2 + 8n with n in 1..=4)
//! makes the whole segment `Malformed`. A Fast Open option must carry no cookie (length 2, a
//! cookie request) or a cookie of 4..=16 bytes (RFC 7413 §4.1.1); any other length is
//! `Malformed`. When a kind repeats, the last occurrence wins.
//!
//! Emission order is fixed, mirroring Linux so captures look familiar:
//! `mss, sackOK+TS (or nop,nop,TS / nop,nop,sackOK), nop,wscale, nop,nop,sack, [nop..]tfo`.
//! Every option ends 4-byte aligned, so no trailing padding is needed. The block never exceeds
//! 40 bytes: everything but SACK blocks fits (at most 40), and SACK blocks that do not fit are
//! dropped from the end (see [`TcpOptions::canonical`]).

use super::seq::SeqNumber;
use crate::wire::field::{read_u16, read_u32, write_array, write_bytes};
use crate::wire::{Result, WireError};

/// The most option bytes a TCP header can carry (data offset 15 words minus the fixed 5).
pub const MAX_OPTIONS_LEN: usize = 40;

const KIND_EOL: u8 = 0;
const KIND_NOP: u8 = 1;
const KIND_MSS: u8 = 2;
const KIND_WINDOW_SCALE: u8 = 3;
const KIND_SACK_PERMITTED: u8 = 4;
const KIND_SACK: u8 = 5;
const KIND_TIMESTAMPS: u8 = 8;
const KIND_FAST_OPEN: u8 = 34;

/// One SACK block: the bytes `left..right` were received (RFC 2018 §3).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SackBlock {
    pub left: SeqNumber,
    pub right: SeqNumber,
}

/// Up to four SACK blocks, in the order they appear on the wire (most recent first).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SackBlocks {
    blocks: [SackBlock; SackBlocks::CAPACITY],
    len: u8,
}

impl SackBlocks {
    /// The most blocks an option can hold (2 + 8 * 4 = 34 <= 40 bytes).
    pub const CAPACITY: usize = 4;

    pub fn new() -> Self {
        Self::default()
    }
    /// Appends a block; `false` (and nothing stored) when already full.
    pub fn push(&mut self, block: SackBlock) -> bool {
        let Some(slot) = self.blocks.get_mut(usize::from(self.len)) else {
            return false;
        };
        *slot = block;
        self.len += 1;
        true
    }
    pub fn as_slice(&self) -> &[SackBlock] {
        &self.blocks[..usize::from(self.len)]
    }
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Keeps the first `len` blocks (clearing the rest so equality stays structural).
    pub fn truncate(&mut self, len: usize) {
        while self.len() > len {
            self.len -= 1;
            self.blocks[usize::from(self.len)] = SackBlock::default();
        }
    }
}

/// A TCP Fast Open cookie (RFC 7413 §4.1.1): empty (a cookie request) or 4..=16 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct FastOpenCookie {
    bytes: [u8; FastOpenCookie::MAX_LEN],
    len: u8,
}

impl FastOpenCookie {
    pub const MIN_LEN: usize = 4;
    pub const MAX_LEN: usize = 16;

    /// `None` unless `cookie` is empty or 4..=16 bytes long.
    pub fn new(cookie: &[u8]) -> Option<Self> {
        let len = cookie.len();
        if len != 0 && !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return None;
        }
        let mut bytes = [0; Self::MAX_LEN];
        bytes[..len].copy_from_slice(cookie);
        Some(FastOpenCookie { bytes, len: len as u8 })
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
    /// An empty cookie: the client asks the server for one.
    pub fn is_request(&self) -> bool {
        self.len == 0
    }
}

/// The timestamps option (RFC 7323 §3.2).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Timestamps {
    pub tsval: u32,
    pub tsecr: u32,
}

/// One option as it appears on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TcpOption<'a> {
    EndOfList,
    NoOperation,
    MaxSegmentSize(u16),
    WindowScale(u8),
    SackPermitted,
    Sack(SackBlocks),
    Timestamps(Timestamps),
    FastOpen(FastOpenCookie),
    /// A kind we do not interpret, with its body (after kind and length).
    Unknown {
        kind: u8,
        data: &'a [u8],
    },
}

/// Iterates over the options of a header. Stops after EOL, at the end, or after the first
/// error (which it yields). At most 40 steps for a real header.
#[derive(Clone, Debug)]
pub struct TcpOptionIter<'a> {
    rest: &'a [u8],
}

impl<'a> TcpOptionIter<'a> {
    pub fn new(options: &'a [u8]) -> Self {
        TcpOptionIter { rest: options }
    }

    #[inline]
    fn parse_next(&mut self) -> Result<TcpOption<'a>> {
        let data = self.rest;
        match data[0] {
            KIND_EOL => {
                self.rest = &[];
                return Ok(TcpOption::EndOfList);
            }
            KIND_NOP => {
                self.rest = &data[1..];
                return Ok(TcpOption::NoOperation);
            }
            _ => {}
        }
        let len = usize::from(*data.get(1).ok_or(WireError::Malformed)?);
        if len < 2 || len > data.len() {
            return Err(WireError::Malformed);
        }
        self.rest = &data[len..];
        parse_option(data[0], &data[2..len])
    }
}

impl<'a> Iterator for TcpOptionIter<'a> {
    type Item = Result<TcpOption<'a>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let item = self.parse_next();
        if item.is_err() {
            self.rest = &[];
        }
        Some(item)
    }
}

/// Decodes one option body (the bytes after kind and length).
#[inline]
fn parse_option(kind: u8, body: &[u8]) -> Result<TcpOption<'_>> {
    let option = match (kind, body.len()) {
        (KIND_MSS, 2) => TcpOption::MaxSegmentSize(read_u16(body, 0)),
        (KIND_WINDOW_SCALE, 1) => TcpOption::WindowScale(body[0]),
        (KIND_SACK_PERMITTED, 0) => TcpOption::SackPermitted,
        (KIND_SACK, n) if n > 0 && n % 8 == 0 && n / 8 <= SackBlocks::CAPACITY => {
            let mut blocks = SackBlocks::new();
            for edge in body.chunks_exact(8) {
                blocks.push(SackBlock {
                    left: SeqNumber(read_u32(edge, 0)),
                    right: SeqNumber(read_u32(edge, 4)),
                });
            }
            TcpOption::Sack(blocks)
        }
        (KIND_TIMESTAMPS, 8) => {
            TcpOption::Timestamps(Timestamps { tsval: read_u32(body, 0), tsecr: read_u32(body, 4) })
        }
        (KIND_FAST_OPEN, _) => TcpOption::FastOpen(FastOpenCookie::new(body).ok_or(WireError::Malformed)?),
        (KIND_MSS | KIND_WINDOW_SCALE | KIND_SACK_PERMITTED | KIND_SACK | KIND_TIMESTAMPS, _) => {
            return Err(WireError::Malformed)
        }
        (kind, _) => TcpOption::Unknown { kind, data: body },
    };
    Ok(option)
}

/// The options of one segment, decoded.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TcpOptions {
    pub mss: Option<u16>,
    /// Emitted as-is; parse clamps nothing (the engine clamps to 14, RFC 7323 §2.3).
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    pub sack_blocks: SackBlocks,
    pub timestamps: Option<Timestamps>,
    /// Kind 34 (RFC 7413).
    pub fast_open_cookie: Option<FastOpenCookie>,
}

impl TcpOptions {
    /// Decodes an options area (the bytes between the fixed header and the data offset).
    #[inline]
    pub fn parse(options: &[u8]) -> Result<Self> {
        // Nearly every segment of a connection with timestamps carries exactly NOP, NOP, TS
        // (RFC 7323 Appendix A): decode that layout without walking the list.
        if let [KIND_NOP, KIND_NOP, KIND_TIMESTAMPS, 10, ts @ ..] = options {
            if let Ok(ts) = <[u8; 8]>::try_from(ts) {
                let [a, b, c, d, e, f, g, h] = ts;
                let timestamps = Timestamps {
                    tsval: u32::from_be_bytes([a, b, c, d]),
                    tsecr: u32::from_be_bytes([e, f, g, h]),
                };
                return Ok(TcpOptions { timestamps: Some(timestamps), ..TcpOptions::default() });
            }
        }
        Self::parse_list(options)
    }

    /// The general parse: walks every option.
    fn parse_list(options: &[u8]) -> Result<Self> {
        let mut out = TcpOptions::default();
        for option in TcpOptionIter::new(options) {
            match option? {
                TcpOption::EndOfList | TcpOption::NoOperation | TcpOption::Unknown { .. } => {}
                TcpOption::MaxSegmentSize(mss) => out.mss = Some(mss),
                TcpOption::WindowScale(shift) => out.window_scale = Some(shift),
                TcpOption::SackPermitted => out.sack_permitted = true,
                TcpOption::Sack(blocks) => out.sack_blocks = blocks,
                TcpOption::Timestamps(ts) => out.timestamps = Some(ts),
                TcpOption::FastOpen(cookie) => out.fast_open_cookie = Some(cookie),
            }
        }
        Ok(out)
    }

    /// Bytes the emitted options take: a multiple of 4, at most 40.
    pub fn emitted_len(&self) -> usize {
        if self.sack_blocks.is_empty() {
            return self.len_without_sack();
        }
        let blocks = self.sack_blocks_that_fit();
        self.len_without_sack() + if blocks > 0 { 4 + 8 * blocks } else { 0 }
    }

    /// The options exactly as `emit` will write them: SACK blocks that do not fit in 40 bytes
    /// dropped from the end. Parsing an emitted header returns this.
    pub fn canonical(&self) -> TcpOptions {
        let mut out = *self;
        out.sack_blocks.truncate(self.sack_blocks_that_fit());
        out
    }

    /// How many of `sack_blocks` fit next to the other options.
    pub fn sack_blocks_that_fit(&self) -> usize {
        let room = MAX_OPTIONS_LEN.saturating_sub(self.len_without_sack());
        let fit = room.saturating_sub(4) / 8;
        self.sack_blocks.len().min(fit)
    }

    /// Everything but SACK blocks; at most 4 + 12 + 4 + 20 = 40.
    fn len_without_sack(&self) -> usize {
        let mut len = 0;
        if self.mss.is_some() {
            len += 4;
        }
        if self.timestamps.is_some() {
            len += 12;
        } else if self.sack_permitted {
            len += 4;
        }
        if self.window_scale.is_some() {
            len += 4;
        }
        if let Some(cookie) = &self.fast_open_cookie {
            len += (2 + cookie.as_bytes().len()).next_multiple_of(4);
        }
        len
    }

    /// Writes the canonical encoding into `out` (dropping what does not fit in `out`) and
    /// returns its length, `emitted_len()`.
    pub fn emit(&self, out: &mut [u8]) -> usize {
        let mut w = Writer { out, len: 0 };
        if let Some(mss) = self.mss {
            let [hi, lo] = mss.to_be_bytes();
            w.put([KIND_MSS, 4, hi, lo]);
        }
        match (self.sack_permitted, self.timestamps) {
            (true, Some(ts)) => {
                w.put([KIND_SACK_PERMITTED, 2]);
                w.put_timestamps(ts);
            }
            (false, Some(ts)) => {
                w.put([KIND_NOP, KIND_NOP]);
                w.put_timestamps(ts);
            }
            (true, None) => w.put([KIND_NOP, KIND_NOP, KIND_SACK_PERMITTED, 2]),
            (false, None) => {}
        }
        if let Some(shift) = self.window_scale {
            w.put([KIND_NOP, KIND_WINDOW_SCALE, 3, shift]);
        }
        let blocks = &self.sack_blocks.as_slice()[..self.sack_blocks_that_fit()];
        if !blocks.is_empty() {
            w.put([KIND_NOP, KIND_NOP, KIND_SACK, (2 + 8 * blocks.len()) as u8]);
            for block in blocks {
                w.put(block.left.0.to_be_bytes());
                w.put(block.right.0.to_be_bytes());
            }
        }
        if let Some(cookie) = &self.fast_open_cookie {
            let len = 2 + cookie.as_bytes().len();
            for _ in len..len.next_multiple_of(4) {
                w.put([KIND_NOP]);
            }
            w.put([KIND_FAST_OPEN, len as u8]);
            write_bytes(w.out, w.len, cookie.as_bytes());
            w.len += cookie.as_bytes().len();
        }
        debug_assert_eq!(w.len, self.emitted_len());
        w.len
    }
}

/// A cursor over the options area; writes that would fall outside `out` are dropped.
struct Writer<'o> {
    out: &'o mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put<const N: usize>(&mut self, bytes: [u8; N]) {
        write_array(self.out, self.len, bytes);
        self.len += N;
    }

    fn put_timestamps(&mut self, ts: Timestamps) {
        self.put([KIND_TIMESTAMPS, 10]);
        self.put(ts.tsval.to_be_bytes());
        self.put(ts.tsecr.to_be_bytes());
    }
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;
    use proptest::prelude::*;

    fn nop_nop_ts() -> impl Strategy<Value = Vec<u8>> {
        (any::<[u8; 8]>(), 0usize..4, any::<u8>()).prop_map(|(ts, extra, fill)| {
            let mut v = vec![KIND_NOP, KIND_NOP, KIND_TIMESTAMPS, 10];
            v.extend_from_slice(&ts);
            v.extend(std::iter::repeat_n(fill, extra * 4));
            v
        })
    }

    proptest! {
        /// The NOP, NOP, TS shortcut decodes exactly what the general walk decodes, and any
        /// other layout (trailing options, random bytes) still goes through the walk.
        #[test]
        fn fast_path_matches_the_general_walk(
            bytes in prop_oneof![nop_nop_ts(), proptest::collection::vec(any::<u8>(), 0..=40)]
        ) {
            prop_assert_eq!(TcpOptions::parse(&bytes), TcpOptions::parse_list(&bytes));
        }
    }
}
