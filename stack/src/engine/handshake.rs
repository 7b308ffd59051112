//! The listener's side of the three-way handshake (RFC 9293 §3.10.7.2) with its defences and
//! speed-ups: SYN cookies (RFC 4987 §3.6), the bounded SYN queue with oldest-first eviction, and
//! TCP Fast Open (RFC 7413) on both the server and the client side.
//!
//! Owns: the engine's handshake keys (SYN cookie keys rotated on a fixed schedule derived from
//! one injected secret; the Fast Open cookie jar; the client's Fast Open cookie cache) and every
//! decision a SYN or a cookie ACK at a listener leads to.
//!
//! Promises: a SYN answered with a cookie and an ACK whose cookie fails create no state at all
//! (O(1): one SipHash, one bounded reply-queue slot); a half-open connection exists only within
//! its listener's backlog; a Fast Open child is in the accept queue (readable) from its SYN on
//! and counts against the listener's pending bound until it leaves SYN-RECEIVED.
//!
//! Decisions:
//! - An ACK whose cookie fails is answered with a RST, as Linux does and as RFC 9293 §3.10.7.2
//!   says for any ACK reaching LISTEN: a real client whose cookie expired learns at once instead
//!   of hanging; the RST goes through the bounded reply queue, so a forged-ACK flood costs O(1)
//!   per segment and at most `reply_queue` frames per poll. It is counted in `syncookies_failed`.
//! - In `Auto` mode ACKs are checked as cookies only within a cookie lifetime (128 s) after the
//!   listener last sent one (Linux `tcp_synq_no_recent_overflow`); otherwise they get the plain
//!   LISTEN reset and are not counted as cookie failures.
//! - Without timestamps a cookie cannot carry window scale or SACK-permitted, so the cookie
//!   SYN-ACK does not offer them (the connection works, unscaled and without SACK), as in Linux.
//! - A SYN carrying data that gets a cookie (queue full) is answered for the SYN only; Fast Open
//!   needs state, and the client sends the data again after the handshake.
//!
//! Must not: allocate per segment, read a clock or a random source (keys come from
//! `HandshakeConfig`, `now` from the caller).

use super::events::EventSource;
use super::transmit::Reply;
use super::{flows, ConnectionHandle, Engine, Error, ListenerHandle};
use crate::cookie::{
    decode_ts_options, encode_ts_options, CookieOptions, SynCookies, TfoClientCache, TfoCookieJar,
};
use crate::tcp::connection::{event_bits, wscale_for, Connection};
use crate::tcp::listener::{ListenerHandshake, SynCookieMode};
use crate::tcp::options::FastOpenState;
use crate::tcp::{FourTuple, SocketOptions, State};
use crate::time::{Duration, Instant};
use crate::wire::{EthernetAddress, FastOpenCookie, Ipv4Address, SeqNumber, TcpOptions, TcpRepr, Timestamps};
use siphasher::sip::SipHasher24;

/// How long after sending a cookie an `Auto` listener checks ACKs as cookies: the longest a cookie
/// stays valid (two 64 s periods, see [`crate::cookie::syn`]).
const COOKIE_LIFETIME: Duration = Duration::from_secs(128);

/// MSS assumed when a SYN carries none (RFC 9293 §3.7.1).
const DEFAULT_MSS: u16 = 536;

/// Engine-wide handshake settings. The secrets are injected like the ISN secret and must come
/// from a cryptographic random source in production.
#[derive(Clone)]
pub struct HandshakeConfig {
    /// SYN cookie mode of listeners that do not set their own.
    pub syn_cookies: SynCookieMode,
    /// Master secret the SYN cookie keys (and cookie SYN-ACK timestamp offsets) derive from.
    pub syn_cookie_secret: [u8; 16],
    /// How often the SYN cookie key changes; at least 128 s so a fresh cookie outlives one
    /// rotation (the previous key stays valid until the next).
    pub syn_cookie_rotation: Duration,
    /// First Fast Open server key; later keys come from `Engine::rotate_fast_open_key`.
    pub fast_open_key: [u8; 16],
    /// How long a rotated-out Fast Open key is still accepted.
    pub fast_open_grace: Duration,
    /// Servers whose Fast Open cookie a client engine remembers (LRU beyond).
    pub fast_open_client_cache: usize,
}

impl HandshakeConfig {
    /// Linux-like defaults (`Auto` cookies, 1 h grace, 1024 cached servers) with these secrets.
    pub fn new(syn_cookie_secret: [u8; 16], fast_open_key: [u8; 16]) -> Self {
        HandshakeConfig {
            syn_cookies: SynCookieMode::Auto,
            syn_cookie_secret,
            syn_cookie_rotation: Duration::from_secs(256),
            fast_open_key,
            fast_open_grace: TfoCookieJar::DEFAULT_GRACE,
            fast_open_client_cache: TfoClientCache::DEFAULT_CAPACITY,
        }
    }
}

impl core::fmt::Debug for HandshakeConfig {
    /// Never prints key material.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HandshakeConfig")
            .field("syn_cookies", &self.syn_cookies)
            .field("syn_cookie_rotation", &self.syn_cookie_rotation)
            .field("fast_open_grace", &self.fast_open_grace)
            .field("fast_open_client_cache", &self.fast_open_client_cache)
            .finish_non_exhaustive()
    }
}

/// The engine's handshake keys and the client cookie cache.
#[derive(Debug)]
pub(crate) struct Handshake {
    master: SipHasher24,
    rotation_ms: u64,
    /// Rotation period the current cookie key belongs to.
    epoch: u64,
    cookies: SynCookies,
    /// Per-tuple TSval offsets of cookie SYN-ACKs, so the rebuilt connection keeps the same clock.
    ts_offsets: SipHasher24,
    jar: TfoCookieJar,
    client_cache: TfoClientCache,
}

impl Handshake {
    pub(crate) fn new(cfg: &HandshakeConfig, now: Instant) -> Self {
        let master = SipHasher24::new_with_key(&cfg.syn_cookie_secret);
        let rotation_ms = cfg.syn_cookie_rotation.as_millis().max(COOKIE_LIFETIME.as_millis());
        let epoch = now.as_millis() / rotation_ms;
        Handshake {
            master,
            rotation_ms,
            epoch,
            cookies: cookies_for(&master, epoch),
            ts_offsets: SipHasher24::new_with_key(&derive(&master, u64::MAX)),
            jar: TfoCookieJar::with_grace(cfg.fast_open_key, cfg.fast_open_grace),
            client_cache: TfoClientCache::new(cfg.fast_open_client_cache),
        }
    }

    /// The cookie codec for `now`, rotating its key when a new period began (once per rotation
    /// period: O(1)).
    fn cookies(&mut self, now: Instant) -> &SynCookies {
        let epoch = now.as_millis() / self.rotation_ms;
        if epoch != self.epoch {
            self.epoch = epoch;
            self.cookies = cookies_for(&self.master, epoch);
        }
        &self.cookies
    }

    fn ts_offset(&self, tuple: &FourTuple) -> u32 {
        self.ts_offsets.hash(&flows::flow_key(tuple).to_bytes()) as u32
    }
}

/// The key of rotation period `epoch`: a PRF of the master secret, so no randomness is needed
/// to rotate and the master never appears in a cookie.
fn derive(master: &SipHasher24, epoch: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    let mut input = [0u8; 9];
    input[..8].copy_from_slice(&epoch.to_be_bytes());
    key[..8].copy_from_slice(&master.hash(&input).to_le_bytes());
    input[8] = 1;
    key[8..].copy_from_slice(&master.hash(&input).to_le_bytes());
    key
}

/// Current key of `epoch`, previous key of the period before (still accepted).
fn cookies_for(master: &SipHasher24, epoch: u64) -> SynCookies {
    let mut cookies = SynCookies::new(derive(master, epoch.wrapping_sub(1)));
    cookies.rotate(derive(master, epoch));
    cookies
}

/// The window of a SYN-ACK (never scaled, RFC 7323 §2.2), as a fresh connection computes it.
fn syn_window(opts: &SocketOptions, initial_rcv_window: u32) -> u16 {
    initial_rcv_window.min(opts.recv_buffer as u32).clamp(1, 65535) as u16
}

impl Engine {
    /// Sets a listener's SYN cookie mode and Fast Open (both apply to SYNs from now on).
    pub fn set_listener_handshake(
        &mut self,
        l: ListenerHandle,
        handshake: ListenerHandshake,
    ) -> Result<(), Error> {
        match self.listeners.get_mut(l.index as usize) {
            Some(Some(x)) if x.generation == l.generation && !x.closed => {
                x.handshake = handshake;
                Ok(())
            }
            _ => Err(Error::InvalidHandle),
        }
    }

    /// Half-open connections of a listener (its SYN queue, Fast Open children included).
    pub fn syn_queue_len(&self, l: ListenerHandle) -> Result<usize, Error> {
        match self.listeners.get(l.index as usize) {
            Some(Some(x)) if x.generation == l.generation && !x.closed => Ok(x.syn_queue_len),
            _ => Err(Error::InvalidHandle),
        }
    }

    /// Makes `key` the Fast Open server key; the previous one is accepted for the configured
    /// grace period (RFC 7413 §4.1.2).
    pub fn rotate_fast_open_key(&mut self, now: Instant, key: [u8; 16]) {
        self.handshake.jar.rotate(key, now);
    }

    /// Whether this engine holds a Fast Open cookie for `server` (a client-side view for tools).
    pub fn has_fast_open_cookie(&self, server: Ipv4Address) -> bool {
        self.handshake.client_cache.peek(server).is_some()
    }

    /// Active open with TCP Fast Open (RFC 7413 §4.1.3): like `connect`, and `data` is queued
    /// before the SYN is built. With a cookie cached for the server, the SYN carries the cookie
    /// and as much of the data as the server's MSS allows; without one it carries a cookie
    /// request and the data follows the handshake. Returns the handle and how many bytes of
    /// `data` the send buffer took. Data written with `write` before the SYN leaves rides along
    /// too. A SYN with data that times out is retried bare (no data, no option), and a server
    /// that ignores the data gets it again right after the handshake.
    pub fn connect_fast_open(
        &mut self,
        now: Instant,
        remote: (Ipv4Address, u16),
        local_port: Option<u16>,
        opts: Option<SocketOptions>,
        data: &[u8],
    ) -> Result<(ConnectionHandle, usize), Error> {
        let h = self.connect(now, remote, local_port, opts)?;
        let cached = self.handshake.client_cache.get(remote.0);
        let our_mss = self.our_mss();
        let conn = self.slots[h.index as usize].conn.as_deref_mut().ok_or(Error::InvalidHandle)?;
        conn.fast_open = match cached {
            Some(c) => FastOpenState {
                cookie: Some(c.cookie),
                syn_data_max: FastOpenState::syn_data_budget(c.mss, our_mss),
                pending: false,
            },
            None => FastOpenState { cookie: Some(FastOpenCookie::default()), ..FastOpenState::default() },
        };
        let n = conn.sndbuf.write(data);
        self.after_update(h.index, now);
        Ok((h, n))
    }

    /// RFC 9293 §3.10.7.2: a segment for a listener (no connection matches its tuple).
    pub(super) fn segment_to_listener(
        &mut self,
        now: Instant,
        src_mac: EthernetAddress,
        lid: u32,
        tuple: FourTuple,
        seg: &TcpRepr<'_>,
    ) {
        if seg.flags.rst() {
            return;
        }
        if seg.flags.ack() {
            if !seg.flags.syn() && self.expects_cookie_ack(lid, now) {
                return self.cookie_ack(now, src_mac, lid, tuple, seg);
            }
            return self.reset_for(src_mac, tuple, seg);
        }
        if !seg.flags.syn() {
            return;
        }
        let Some(l) = self.listeners[lid as usize].as_ref() else { return };
        if l.accept_queue_full() {
            self.stats.listen_overflows += 1;
            self.stats.listen_drops += 1;
            return;
        }
        let opts = l.opts;
        let cookie = match l.handshake.syn_cookies.unwrap_or(self.cfg.handshake.syn_cookies) {
            SynCookieMode::Always => true,
            SynCookieMode::Auto => l.syn_queue_full() || !self.admits(&opts),
            SynCookieMode::Off => false,
        };
        if cookie {
            return self.cookie_syn_ack(now, src_mac, lid, tuple, seg);
        }
        if l.syn_queue_full() && !self.evict_oldest_half_open(lid) {
            self.stats.listen_drops += 1;
            return;
        }
        if !self.admits(&opts) {
            self.stats.memory_refused += 1;
            self.stats.listen_drops += 1;
            return;
        }
        self.open_half_open(now, src_mac, lid, tuple, seg);
    }

    fn expects_cookie_ack(&self, lid: u32, now: Instant) -> bool {
        let Some(l) = self.listeners[lid as usize].as_ref() else { return false };
        match l.handshake.syn_cookies.unwrap_or(self.cfg.handshake.syn_cookies) {
            SynCookieMode::Always => true,
            SynCookieMode::Auto => l.last_cookie_sent.is_some_and(|t| now - t <= COOKIE_LIFETIME),
            SynCookieMode::Off => false,
        }
    }

    /// A normal SYN: a connection in SYN-RECEIVED, with Fast Open data taken if allowed.
    fn open_half_open(
        &mut self,
        now: Instant,
        src_mac: EthernetAddress,
        lid: u32,
        tuple: FourTuple,
        seg: &TcpRepr<'_>,
    ) {
        let Some(l) = self.listeners[lid as usize].as_ref() else { return };
        let opts = l.opts;
        let (take_data, hand_out) = self.fast_open_decision(now, lid, tuple.remote.0, seg);
        let iss = flows::isn(&self.isn, now, &tuple);
        let ts_offset = self.rng.next_u32();
        let mut conn = self.child(now, lid, tuple, opts, (iss, seg.seq_number), ts_offset);
        conn.negotiate(&seg.options, &self.cfg.tcp, now);
        conn.fast_open.cookie = hand_out;
        if take_data {
            // RFC 7413 §4.2: the data is the application's now; the SYN-ACK acknowledges it.
            let out = conn.rcvbuf.insert(&mut conn.rcv_nxt, seg.seq_number + 1, seg.payload);
            conn.counters.bytes_received += out.advanced as u64;
            conn.counters.data_segs_in += 1;
            conn.raise(event_bits::READABLE);
            conn.fast_open.pending = true;
            self.stats.tfo_passive += 1;
        }
        conn.rcv_adv = conn.rcv_nxt;
        conn.last_ack_sent = conn.rcv_nxt;
        // The SYN's window is never scaled (RFC 7323 §2.2).
        conn.snd_wnd = u32::from(seg.window_len);
        conn.max_snd_wnd = conn.snd_wnd;
        conn.snd_wl1 = seg.seq_number;
        conn.snd_wl2 = iss;
        self.stats.passive_opens += 1;
        let index = self.insert_connection(conn, false);
        let generation = self.slots[index as usize].generation;
        self.slots[index as usize].route = Some(src_mac);
        let slots = &self.slots;
        let Some(l) = self.listeners[lid as usize].as_mut() else { return };
        l.syn_queue_len += 1;
        if take_data {
            l.fast_open_pending += 1;
            l.accept_queue.push_back((index, generation));
            self.slots[index as usize].in_accept_queue = true;
            if !self.listener_events[lid as usize] {
                self.listener_events[lid as usize] = true;
                self.events.push_back(EventSource::Listener(lid));
            }
        } else {
            l.push_half_open((index, generation), |(i, g)| is_half_open(slots, lid, i, g));
        }
        self.after_update(index, now);
    }

    /// Server side of RFC 7413 §4.2 for one SYN: whether to take its data, and the cookie to
    /// hand out in the SYN-ACK.
    fn fast_open_decision(
        &mut self,
        now: Instant,
        lid: u32,
        client: Ipv4Address,
        seg: &TcpRepr<'_>,
    ) -> (bool, Option<FastOpenCookie>) {
        let Some(l) = self.listeners[lid as usize].as_ref() else { return (false, None) };
        let (Some(_), Some(offered)) = (l.handshake.fast_open, seg.options.fast_open_cookie) else {
            return (false, None);
        };
        if offered.is_request() {
            self.stats.tfo_cookie_reqs += 1;
            return (false, Some(self.handshake.jar.generate(client)));
        }
        if !self.handshake.jar.validate(now, client, &offered) {
            // §4.2.2: an invalid cookie means a normal handshake and a fresh cookie.
            self.stats.tfo_passive_fail += 1;
            return (false, Some(self.handshake.jar.generate(client)));
        }
        if seg.payload.is_empty() {
            return (false, None);
        }
        if !l.fast_open_has_room() {
            self.stats.tfo_pending_overflow += 1;
            self.stats.tfo_passive_fail += 1;
            return (false, None);
        }
        (true, None)
    }

    /// Frees the oldest half-open connection of a full SYN queue (cookies off): see the
    /// justification in [`crate::tcp::listener`]. False when there is none to evict.
    fn evict_oldest_half_open(&mut self, lid: u32) -> bool {
        loop {
            let Some(l) = self.listeners[lid as usize].as_mut() else { return false };
            let Some((index, generation)) = l.syn_queue.pop_front() else { return false };
            if is_half_open(&self.slots, lid, index, generation) {
                self.free(index);
                self.stats.syn_queue_evictions += 1;
                return true;
            }
        }
    }

    /// A stateless SYN-ACK whose ISN is a SYN cookie (RFC 4987 §3.6).
    fn cookie_syn_ack(
        &mut self,
        now: Instant,
        src_mac: EthernetAddress,
        lid: u32,
        tuple: FourTuple,
        seg: &TcpRepr<'_>,
    ) {
        let Some(l) = self.listeners[lid as usize].as_mut() else { return };
        l.last_cookie_sent = Some(now);
        let opts = l.opts;
        let tcp = self.cfg.tcp;
        let client_mss = seg.options.mss.unwrap_or(DEFAULT_MSS);
        let key = flows::flow_key(&tuple);
        let ts_offset = self.handshake.ts_offset(&tuple);
        let (cookie, _) = self.handshake.cookies(now).generate(now, &key, seg.seq_number, client_mss);
        let peer_ts = seg.options.timestamps.filter(|_| tcp.timestamps);
        // Window scale and SACK survive only inside our TSval (decision in the module docs).
        let remembered = CookieOptions {
            window_scale: seg.options.window_scale.filter(|_| tcp.window_scaling && peer_ts.is_some()),
            sack_permitted: seg.options.sack_permitted && tcp.sack && peer_ts.is_some(),
            ecn: false,
        };
        let timestamps = peer_ts.map(|p| Timestamps {
            tsval: encode_ts_options((now.as_millis() as u32).wrapping_add(ts_offset), remembered),
            tsecr: p.tsval,
        });
        let options = TcpOptions {
            mss: Some(self.our_mss().min(65535) as u16),
            window_scale: remembered.window_scale.map(|_| wscale_for(opts.recv_buffer)),
            sack_permitted: remembered.sack_permitted,
            timestamps,
            ..TcpOptions::default()
        };
        let window = syn_window(&opts, tcp.initial_rcv_window);
        let reply =
            Reply::SynAck { tuple, dst: src_mac, seq: cookie, ack: seg.seq_number + 1, window, options };
        self.queue_reply(reply);
    }

    /// An ACK that may complete a cookie handshake: validated in O(1); a valid one builds the
    /// connection and hands the ACK (with any data) to it.
    fn cookie_ack(
        &mut self,
        now: Instant,
        src_mac: EthernetAddress,
        lid: u32,
        tuple: FourTuple,
        seg: &TcpRepr<'_>,
    ) {
        let client_isn = seg.seq_number - 1;
        let key = flows::flow_key(&tuple);
        let info = match self.handshake.cookies(now).validate(now, &key, client_isn, seg.ack_number) {
            Ok(info) => info,
            Err(_) => {
                self.stats.syncookies_failed += 1;
                return self.reset_for(src_mac, tuple, seg);
            }
        };
        let Some(l) = self.listeners[lid as usize].as_ref() else { return };
        let opts = l.opts;
        if l.accept_queue_full() {
            // As for a stateful handshake: the client retransmits and the cookie is still good.
            self.stats.listen_overflows += 1;
            self.stats.listen_drops += 1;
            return;
        }
        if !self.admits(&opts) {
            self.stats.memory_refused += 1;
            self.stats.listen_drops += 1;
            return;
        }
        self.stats.syncookies_recv += 1;
        self.stats.passive_opens += 1;
        let conn = self.cookie_connection(now, lid, tuple, opts, seg, info.mss);
        if let Some(l) = self.listeners[lid as usize].as_mut() {
            l.syn_queue_len += 1;
        }
        let index = self.insert_connection(conn, false);
        self.slots[index as usize].route = Some(src_mac);
        self.segment_to_connection(now, src_mac, index, tuple, seg);
    }

    /// The SYN-RECEIVED connection a cookie SYN-ACK stood for, ready for the client's ACK.
    fn cookie_connection(
        &mut self,
        now: Instant,
        lid: u32,
        tuple: FourTuple,
        opts: SocketOptions,
        seg: &TcpRepr<'_>,
        mss: u16,
    ) -> Connection {
        let tcp = self.cfg.tcp;
        let client_isn = seg.seq_number - 1;
        let iss: SeqNumber = seg.ack_number - 1;
        let ts_offset = self.handshake.ts_offset(&tuple);
        let mut conn = self.child(now, lid, tuple, opts, (iss, client_isn), ts_offset);
        let peer_ts = seg.options.timestamps.filter(|_| tcp.timestamps);
        let remembered = peer_ts.map(|t| decode_ts_options(t.tsecr)).unwrap_or_default();
        let peer = TcpOptions {
            mss: Some(mss),
            window_scale: remembered.window_scale,
            sack_permitted: remembered.sack_permitted,
            timestamps: peer_ts,
            ..TcpOptions::default()
        };
        conn.rcv_adv = conn.rcv_nxt;
        conn.negotiate(&peer, &tcp, now);
        // Our SYN-ACK went out statelessly: account for it as sent, and for the window it offered.
        conn.snd_nxt = iss + 1;
        conn.snd_max = iss + 1;
        conn.window_field(true);
        conn.last_ack_sent = conn.rcv_nxt;
        conn.snd_wl1 = client_isn;
        conn.snd_wl2 = iss;
        conn
    }

    /// A passive-open child of listener `lid` in SYN-RECEIVED; `isns` is (ISS, IRS).
    fn child(
        &self,
        now: Instant,
        lid: u32,
        tuple: FourTuple,
        opts: SocketOptions,
        isns: (SeqNumber, SeqNumber),
        ts_offset: u32,
    ) -> Connection {
        let (iss, irs) = isns;
        let mut conn = Connection::new(tuple, opts, &self.cfg.tcp, iss, self.our_mss(), ts_offset, now);
        conn.state = State::SynReceived;
        conn.passive = true;
        conn.listener = Some(lid);
        conn.irs = irs;
        conn.rcv_nxt = irs + 1;
        conn
    }

    /// Client Fast Open bookkeeping, read before a segment reaches a SYN-SENT connection that
    /// asked for Fast Open: (the SYN was retried, bytes of data the first SYN carried).
    pub(super) fn fast_open_client_before(conn: &Connection) -> Option<(bool, u32)> {
        (conn.state == State::SynSent && conn.fast_open.cookie.is_some())
            .then(|| (conn.retries > 0, (conn.snd_max - (conn.iss + 1)).max(0) as u32))
    }

    /// After the SYN-ACK (RFC 7413 §4.1.3): cache the server's cookie; count whether the SYN
    /// data was acknowledged; forget the server when the data-carrying SYN had to be retried
    /// (a middlebox may drop SYNs with data) or it sent no cookie (it does not do Fast Open).
    pub(super) fn fast_open_client_after(&mut self, index: u32, seg: &TcpRepr<'_>, before: (bool, u32)) {
        let (retried, syn_data) = before;
        let Some(conn) = self.slots[index as usize].conn.as_deref() else { return };
        if conn.state == State::SynSent || !(seg.flags.syn() && seg.flags.ack()) {
            return;
        }
        let server = conn.tuple.remote.0;
        let acked_data = seg.ack_number - (conn.iss + 1) >= syn_data as i32;
        let fresh = seg.options.fast_open_cookie.filter(|c| !c.is_request());
        if let Some(cookie) = fresh {
            self.handshake.client_cache.store(server, cookie, seg.options.mss.unwrap_or(DEFAULT_MSS));
        }
        if syn_data == 0 {
            // Nothing rode on the SYN (a cookie request, or nothing to send yet): nothing to judge.
            return;
        }
        if acked_data {
            self.stats.tfo_active += 1;
        } else {
            self.stats.tfo_active_fail += 1;
            if retried || fresh.is_none() {
                self.handshake.client_cache.forget(server);
            }
        }
    }
}

/// Whether slab entry `(index, generation)` is still a non-Fast-Open half-open child of `lid`.
fn is_half_open(slots: &[super::Slot], lid: u32, index: u32, generation: u32) -> bool {
    slots.get(index as usize).is_some_and(|s| {
        s.generation == generation
            && s.conn.as_deref().is_some_and(|c| {
                c.listener == Some(lid) && c.state == State::SynReceived && !c.fast_open.pending
            })
    })
}
