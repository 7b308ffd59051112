//! SYN cookies: a listener under SYN flood answers with a SYN-ACK whose ISN encodes everything it
//! needs, keeps no state, and rebuilds the connection from the client's final ACK (RFC 4987
//! §3.6).
//!
//! Cookie layout (our ISN, 32 bits), Linux-like in spirit but with a wider MAC:
//!
//! ```text
//!  31  30 29   27 26                                  0
//! +------+-------+-------------------------------------+
//! | time |  MSS  |  MAC(key, 4-tuple, client ISN,      |
//! | (2b) | (3b)  |       full time counter, MSS index) |
//! +------+-------+-------------------------------------+
//! ```
//!
//! - `time`: the low 2 bits of a counter that ticks every 64 s. A cookie is accepted in the period
//!   it was made and the next one (up to 128 s old, at least 64 s); older counters are `Expired`.
//!   The full counter is inside the MAC, so a cookie 4 periods old does not alias a fresh one.
//! - `MSS`: an index into [`MSS_TABLE`]; the client's MSS is rounded down to an entry.
//! - MAC: SipHash-2-4 truncated to 27 bits; a blind forger needs ~2^26 guesses per accepted
//!   ACK (Linux's cookie carries 24 bits).
//!
//! Options a cookie cannot carry (window scale, SACK-permitted, ECN) ride in the low 6 bits of our
//! SYN-ACK's TSval when the client offered timestamps; the client echoes it in TSecr
//! ([`encode_ts_options`], [`decode_ts_options`]). Without timestamps they are lost, as in Linux.

use siphasher::sip::SipHasher24;

use crate::flow::FourTuple;
use crate::time::Instant;
use crate::wire::SeqNumber;

/// MSS values a cookie can carry (3 bits). The client's MSS is rounded down to the largest entry
/// not above it, so each entry sits where client MSS values cluster and the loss is small:
/// 536 (RFC 9293 §3.7.1 default; every host must accept it, so smaller offers are raised to it,
/// as Linux does), 1200 (mobile and IPv6-tunnel paths), 1300/1360/1400 (VPN and clamped paths),
/// 1440 (PPPoE 1452 and tunnels), 1460 (Ethernet 1500), 8960 (9000-byte jumbo frames).
pub const MSS_TABLE: [u16; 8] = [536, 1200, 1300, 1360, 1400, 1440, 1460, 8960];

/// A time counter period: 64 s.
const PERIOD_SECS: u64 = 64;
const TIME_SHIFT: u32 = 30;
const MSS_SHIFT: u32 = 27;
const MAC_MASK: u32 = (1 << MSS_SHIFT) - 1;

/// What a valid cookie gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieInfo {
    /// The client's MSS, rounded down to a [`MSS_TABLE`] entry.
    pub mss: u16,
}

/// Why an ACK's cookie was refused; the engine answers with a RST or drops it (RFC 4987 §3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    #[error("SYN cookie does not match this connection (forged, or made with a retired key)")]
    BadMac,
    #[error("SYN cookie is older than two 64 s periods; the client must reconnect")]
    Expired,
}

/// The current and previous cookie keys. Rotating keeps the previous key valid, so rotate no more
/// often than every 128 s (two periods) or fresh cookies made just before a rotation fail.
#[derive(Clone)]
pub struct SynCookieKeys {
    current: SipHasher24,
    previous: Option<SipHasher24>,
}

impl SynCookieKeys {
    pub fn new(key: [u8; 16]) -> Self {
        SynCookieKeys { current: SipHasher24::new_with_key(&key), previous: None }
    }

    /// Makes `new_key` current; the old current key is still accepted until the next rotation.
    pub fn rotate(&mut self, new_key: [u8; 16]) {
        self.previous = Some(self.current);
        self.current = SipHasher24::new_with_key(&new_key);
    }
}

impl core::fmt::Debug for SynCookieKeys {
    /// Never prints key material.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SynCookieKeys").field("has_previous", &self.previous.is_some()).finish()
    }
}

/// SYN cookie generator and checker. See the module docs for the encoding.
#[derive(Clone, Debug)]
pub struct SynCookies {
    keys: SynCookieKeys,
}

impl SynCookies {
    pub fn new(secret: [u8; 16]) -> Self {
        SynCookies { keys: SynCookieKeys::new(secret) }
    }

    /// See [`SynCookieKeys::rotate`].
    pub fn rotate(&mut self, new_key: [u8; 16]) {
        self.keys.rotate(new_key);
    }

    /// Our ISN for a SYN-ACK answering `client_isn` (the SYN's sequence number) with the client's
    /// MSS option `mss` (536 if it sent none), and the MSS the connection will use.
    pub fn generate(
        &self,
        now: Instant,
        tuple: &FourTuple,
        client_isn: SeqNumber,
        mss: u16,
    ) -> (SeqNumber, u16) {
        let mss_index = mss_index(mss);
        let counter = counter(now);
        let mac = mac(&self.keys.current, tuple, client_isn, counter, mss_index);
        let cookie = (counter & 3) << TIME_SHIFT | u32::from(mss_index) << MSS_SHIFT | mac;
        (SeqNumber(cookie), MSS_TABLE[usize::from(mss_index)])
    }

    /// Checks the client's ACK completing a cookie handshake: `client_isn` is the ACK's sequence
    /// number minus one, `ack_number` its acknowledgment number (our cookie plus one).
    pub fn validate(
        &self,
        now: Instant,
        tuple: &FourTuple,
        client_isn: SeqNumber,
        ack_number: SeqNumber,
    ) -> Result<CookieInfo, CookieError> {
        let cookie = (ack_number - 1).0;
        let now_counter = counter(now);
        // The counter whose low bits the cookie carries: this period or the previous one.
        let counter = [now_counter, now_counter.wrapping_sub(1)]
            .into_iter()
            .find(|c| c & 3 == cookie >> TIME_SHIFT)
            .ok_or(CookieError::Expired)?;
        let mss_index = ((cookie >> MSS_SHIFT) & 7) as u8;
        let mac_ok = |key: &SipHasher24| {
            constant_time_eq(mac(key, tuple, client_isn, counter, mss_index), cookie & MAC_MASK)
        };
        if mac_ok(&self.keys.current) || self.keys.previous.as_ref().is_some_and(mac_ok) {
            Ok(CookieInfo { mss: MSS_TABLE[usize::from(mss_index)] })
        } else {
            Err(CookieError::BadMac)
        }
    }
}

/// The 64 s period number at `now`.
fn counter(now: Instant) -> u32 {
    (now.as_millis() / (PERIOD_SECS * 1_000)) as u32
}

/// Index of the largest table entry not above `mss` (entry 0 for anything smaller).
fn mss_index(mss: u16) -> u8 {
    MSS_TABLE.iter().rposition(|&entry| entry <= mss).unwrap_or(0) as u8
}

fn mac(key: &SipHasher24, tuple: &FourTuple, client_isn: SeqNumber, counter: u32, mss: u8) -> u32 {
    let mut input = [0u8; FourTuple::BYTES + 9];
    input[..FourTuple::BYTES].copy_from_slice(&tuple.to_bytes());
    input[12..16].copy_from_slice(&client_isn.0.to_be_bytes());
    input[16..20].copy_from_slice(&counter.to_be_bytes());
    input[20] = mss;
    key.hash(&input) as u32 & MAC_MASK
}

/// Compares without an early exit, so response timing says nothing about how many bits matched.
fn constant_time_eq(a: u32, b: u32) -> bool {
    core::hint::black_box(a ^ b) == 0
}

/// Handshake options a cookie SYN-ACK must remember when the client offered timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CookieOptions {
    /// The client's window scale shift (RFC 7323 §2.3; clamped to 14), if it sent the option.
    pub window_scale: Option<u8>,
    /// The client sent SACK-permitted (RFC 2018).
    pub sack_permitted: bool,
    /// The SYN negotiated ECN (RFC 3168 §6.1.1).
    pub ecn: bool,
}

const TS_OPTION_BITS: u32 = 6;
const TS_OPTION_MASK: u32 = (1 << TS_OPTION_BITS) - 1;
const WSCALE_NONE: u32 = 0xf;

/// Our SYN-ACK TSval: `ts_now` with its low 6 bits replaced by `options` (bits 0-3 window scale,
/// 15 = none; bit 4 SACK-permitted; bit 5 ECN). Never above `ts_now`, so our timestamps stay
/// monotone (RFC 7323 §5.4): if the packed value would exceed it, it steps back one 64-tick block.
pub fn encode_ts_options(ts_now: u32, options: CookieOptions) -> u32 {
    let wscale = options.window_scale.map_or(WSCALE_NONE, |w| u32::from(w.min(14)));
    let bits = wscale | u32::from(options.sack_permitted) << 4 | u32::from(options.ecn) << 5;
    let tsval = (ts_now & !TS_OPTION_MASK) | bits;
    if tsval > ts_now {
        tsval.wrapping_sub(1 << TS_OPTION_BITS)
    } else {
        tsval
    }
}

/// The options packed by [`encode_ts_options`], from the TSecr of the client's ACK.
pub fn decode_ts_options(tsecr: u32) -> CookieOptions {
    let wscale = tsecr & 0xf;
    CookieOptions {
        window_scale: (wscale != WSCALE_NONE).then(|| wscale.min(14) as u8),
        sack_permitted: tsecr & (1 << 4) != 0,
        ecn: tsecr & (1 << 5) != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mss_rounds_down_to_the_table() {
        assert_eq!(mss_index(0), 0);
        assert_eq!(mss_index(535), 0);
        assert_eq!(mss_index(536), 0);
        assert_eq!(mss_index(1459), 5);
        assert_eq!(mss_index(1460), 6);
        assert_eq!(mss_index(9000), 7);
        assert_eq!(mss_index(u16::MAX), 7);
    }

    #[test]
    fn ts_encoding_never_exceeds_the_clock() {
        let opts = CookieOptions { window_scale: Some(7), sack_permitted: true, ecn: false };
        for ts_now in [0u32, 5, 63, 64, 1_000, u32::MAX] {
            let tsval = encode_ts_options(ts_now, opts);
            assert_eq!(decode_ts_options(tsval), opts, "ts_now {ts_now}");
            if ts_now >= 64 {
                assert!(tsval <= ts_now && ts_now - tsval < 128, "ts_now {ts_now} tsval {tsval}");
            }
        }
    }
}
