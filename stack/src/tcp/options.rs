//! Option negotiation on the handshake: MSS (RFC 9293 §3.7.1), window scale and timestamps
//! (RFC 7323 §2-3), SACK-permitted (RFC 2018); and the options carried on every later segment.

use super::config::TcpConfig;
use super::connection::{Connection, DEFAULT_MSS, MAX_WSCALE};
use crate::time::Instant;
use crate::wire::{SackBlocks, TcpOptions, Timestamps};

/// Bytes the timestamp option adds to every segment once negotiated (10, padded to 12).
pub const TIMESTAMP_OPTION_LEN: u32 = 12;

impl Connection {
    /// Applies the options of the peer's SYN (or SYN-ACK). Options we offered but the peer did
    /// not are switched off; the effective send MSS and the initial window follow from them.
    pub fn negotiate(&mut self, peer: &TcpOptions, cfg: &TcpConfig, now: Instant) {
        self.peer_mss = peer.mss.map(u32::from).unwrap_or(DEFAULT_MSS).clamp(64, 65535);
        match peer.window_scale {
            Some(ws) if self.wscale_ok => self.snd_wscale = ws.min(MAX_WSCALE),
            _ => {
                self.wscale_ok = false;
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
            }
        }
        self.sack_ok = self.sack_ok && peer.sack_permitted;
        match (self.ts.as_mut(), peer.timestamps) {
            (Some(ts), Some(p)) => {
                ts.recent = p.tsval;
                ts.recent_age = now;
            }
            _ => self.ts = None,
        }
        self.set_path_mss(self.adv_mss);
        self.reset_congestion(cfg, now);
    }

    /// Effective send MSS from the peer's MSS and a path MSS (MTU - 40), less option bytes
    /// (RFC 9293 §3.7.1 / RFC 6691).
    pub fn set_path_mss(&mut self, path_mss: u32) {
        let ts = if self.ts.is_some() { TIMESTAMP_OPTION_LEN } else { 0 };
        let mss = self.peer_mss.min(path_mss).saturating_sub(ts).max(64);
        self.snd_mss = mss;
        self.recovery.set_smss(mss);
    }

    /// Options of our SYN or SYN-ACK: on a SYN-ACK only what the peer offered (RFC 7323 §1.3).
    pub fn syn_options(&self, now: Instant) -> TcpOptions {
        TcpOptions {
            mss: Some(self.adv_mss.min(65535) as u16),
            window_scale: self.wscale_ok.then_some(self.rcv_wscale),
            sack_permitted: self.sack_ok,
            sack_blocks: SackBlocks::new(),
            timestamps: self.ts.map(|t| Timestamps { tsval: self.ts_now(now), tsecr: t.recent }),
            fast_open_cookie: None,
        }
    }

    /// Options of a non-SYN segment: timestamps and, when there is something to report,
    /// D-SACK/SACK blocks (3 fit next to timestamps, 4 without).
    pub fn segment_options(&self, now: Instant, with_sack: bool) -> TcpOptions {
        let mut opts = TcpOptions {
            timestamps: self.ts.map(|t| Timestamps { tsval: self.ts_now(now), tsecr: t.recent }),
            ..TcpOptions::default()
        };
        if with_sack && self.sack_ok && (self.dsack.is_some() || self.rcvbuf.has_out_of_order()) {
            let max = if self.ts.is_some() { 3 } else { 4 };
            self.rcvbuf.sack_blocks(self.dsack, max, &mut opts.sack_blocks);
        }
        opts
    }
}
