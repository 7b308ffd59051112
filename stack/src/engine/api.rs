//! The application's side: listen/accept/connect, read/write, shutdown/close/abort, options and
//! info. Every call names a connection by a generation-checked handle; a stale handle is an
//! error, never a panic. Calls that change a connection re-run the engine's bookkeeping so the
//! next `poll_transmit` sends what they made due.

use super::transmit::Reply;
use super::{flows, ConnectionHandle, Engine, Error, ListenerHandle};
use crate::tcp::connection::{Connection, Origin};
use crate::tcp::listener::Listener;
use crate::tcp::timers::TimerKind;
use crate::tcp::{ConnectionError, ExternalChunk, FourTuple, SocketOptions, State, TcpInfo};
use crate::time::Instant;
use crate::wire::{Ipv4Address, SeqNumber};

impl Engine {
    /// Opens a listener on `port` (RFC 9293 LISTEN) with a backlog bounding both the SYN queue
    /// and the accept queue. `opts` are inherited by accepted connections (`None` = defaults).
    pub fn listen(
        &mut self,
        port: u16,
        backlog: usize,
        opts: Option<SocketOptions>,
    ) -> Result<ListenerHandle, Error> {
        if port == 0 {
            return Err(Error::InvalidAddress);
        }
        if self.listener_for(port).is_some() {
            return Err(Error::AddressInUse);
        }
        let opts = opts.unwrap_or(self.cfg.tcp.default_socket);
        self.listener_generation = self.listener_generation.wrapping_add(1);
        let generation = self.listener_generation;
        let listener = Listener::new(port, backlog, opts, generation);
        let index = match self.listeners.iter().position(Option::is_none) {
            Some(i) => i,
            None if self.listeners.len() < self.cfg.max_listeners => {
                self.listeners.push(None);
                self.listener_events.push(false);
                self.listeners.len() - 1
            }
            None => return Err(Error::ConnectionLimit),
        };
        self.listeners[index] = Some(listener);
        Ok(ListenerHandle { index: index as u32, generation })
    }

    fn listener_mut(&mut self, l: ListenerHandle) -> Result<&mut Listener, Error> {
        match self.listeners.get_mut(l.index as usize) {
            Some(Some(x)) if x.generation == l.generation && !x.closed => Ok(x),
            _ => Err(Error::InvalidHandle),
        }
    }

    /// Takes the oldest established connection from the accept queue.
    pub fn accept(&mut self, l: ListenerHandle) -> Result<Option<ConnectionHandle>, Error> {
        let listener = self.listener_mut(l)?;
        let Some((index, generation)) = listener.accept_queue.pop_front() else { return Ok(None) };
        let slot = &mut self.slots[index as usize];
        if slot.generation != generation || slot.conn.is_none() {
            return Ok(None);
        }
        slot.in_accept_queue = false;
        slot.app_owned = true;
        if let Some(c) = slot.conn.as_deref_mut() {
            // The application learns about the establishment (and the empty send buffer)
            // through `accept` itself; what happened while the connection waited in the queue
            // (data, FIN, reset) is reported now (see `events`).
            use crate::tcp::connection::event_bits::{CONNECTED, WRITABLE};
            c.events &= !(CONNECTED | WRITABLE);
            if c.events != 0 && !slot.in_events {
                slot.in_events = true;
                self.events.push_back(super::events::EventSource::Connection(index));
            }
        }
        Ok(Some(ConnectionHandle { index, generation }))
    }

    /// Closes a listener: queued, not yet accepted connections are reset; half-open ones are
    /// dropped silently.
    pub fn unlisten(&mut self, now: Instant, l: ListenerHandle) -> Result<(), Error> {
        let listener = self.listener_mut(l)?;
        listener.closed = true;
        let queued: Vec<(u32, u32)> = listener.accept_queue.drain(..).collect();
        for (index, generation) in queued {
            if self.slots[index as usize].generation == generation {
                self.slots[index as usize].in_accept_queue = false;
                self.abort_index(now, index);
            }
        }
        let children: Vec<u32> = (0..self.slots.len() as u32)
            .filter(|&i| self.slots[i as usize].conn.as_ref().is_some_and(|c| c.listener == Some(l.index)))
            .collect();
        for index in children {
            self.free(index);
        }
        self.release_listener_if_done(l.index);
        Ok(())
    }

    /// Active open (RFC 9293 OPEN call): sends a SYN from `local_port`, or from a random free
    /// ephemeral port when `None`.
    pub fn connect(
        &mut self,
        now: Instant,
        remote: (Ipv4Address, u16),
        local_port: Option<u16>,
        opts: Option<SocketOptions>,
    ) -> Result<ConnectionHandle, Error> {
        if !remote.0.is_unicast() || remote.1 == 0 || remote.0 == self.cfg.addr {
            return Err(Error::InvalidAddress);
        }
        let opts = opts.unwrap_or(self.cfg.tcp.default_socket);
        if self.live >= self.cfg.max_connections {
            self.stats.memory_refused += 1;
            return Err(Error::ConnectionLimit);
        }
        if !self.admits(&opts) {
            self.stats.memory_refused += 1;
            return Err(Error::MemoryLimit);
        }
        let tuple = self.choose_tuple(remote, local_port)?;
        let iss = flows::isn(&self.isn, now, &tuple);
        let ts_offset = self.rng.next_u32();
        let our_mss = self.our_mss();
        let mut conn = Connection::new(
            tuple,
            opts,
            &self.cfg.tcp,
            Origin { iss, our_mss, ts_offset },
            now,
            &mut self.buffers,
        );
        conn.state = State::SynSent;
        self.stats.active_opens += 1;
        let index = self.insert_connection(conn, true);
        self.after_update(index, now);
        Ok(ConnectionHandle { index, generation: self.slots[index as usize].generation })
    }

    fn choose_tuple(
        &mut self,
        remote: (Ipv4Address, u16),
        local_port: Option<u16>,
    ) -> Result<FourTuple, Error> {
        let local = self.cfg.addr;
        if let Some(port) = local_port {
            let tuple = FourTuple { local: (local, port), remote };
            if port == 0 || self.flows.contains_key(&tuple) {
                return Err(Error::AddressInUse);
            }
            return Ok(tuple);
        }
        let (lo, hi) = self.cfg.ephemeral_ports;
        let span = u32::from(hi.saturating_sub(lo)) + 1;
        let start = self.rng.next_u32() % span;
        for k in 0..span {
            let port = lo + ((start + k) % span) as u16;
            let tuple = FourTuple { local: (local, port), remote };
            if !self.flows.contains_key(&tuple) && self.listener_for(port).is_none() {
                return Ok(tuple);
            }
        }
        Err(Error::NoEphemeralPorts)
    }

    /// Reads in-order data. `Ok(0)` means end of stream (the peer's FIN, all data read) or an
    /// empty `buf`; `Err(WouldBlock)` means wait for `Readable`.
    pub fn read(&mut self, now: Instant, h: ConnectionHandle, buf: &mut [u8]) -> Result<usize, Error> {
        let conn = self.conn_mut(h)?;
        let n = conn.rcvbuf.read(buf);
        self.after_read(now, h, n, buf.is_empty())
    }

    /// Zero-copy read: lends `consume` the next in-order bytes in place (at most `max`, one
    /// contiguous piece of the receive ring, so possibly fewer than are readable; call again for
    /// the rest). `consume` returns how many bytes it used; only those are removed, so returning
    /// 0 is a peek. Returns the bytes consumed. When nothing is readable `consume` is not called
    /// and the result follows `read`: `Ok(0)` at end of stream, `Err(WouldBlock)` otherwise.
    pub fn read_with<F: FnOnce(&[u8]) -> usize>(
        &mut self,
        now: Instant,
        h: ConnectionHandle,
        max: usize,
        consume: F,
    ) -> Result<usize, Error> {
        let conn = self.conn_mut(h)?;
        let available = conn.rcvbuf.len().min(max);
        let n = conn.rcvbuf.read_with(max, consume);
        self.after_read(now, h, n, max == 0 || available > 0)
    }

    /// What `read` and `read_with` return after taking `n` bytes: the window update the read
    /// made due, then end of stream, the connection's error, or `WouldBlock`.
    fn after_read(
        &mut self,
        now: Instant,
        h: ConnectionHandle,
        n: usize,
        ok_if_empty: bool,
    ) -> Result<usize, Error> {
        let conn = self.conn_mut(h)?;
        if n > 0 || ok_if_empty {
            conn.on_app_read(n, now);
            if conn.window_update_due() {
                conn.ack_now = true;
            }
            self.after_update(h.index, now);
            return Ok(n);
        }
        if conn.fin_received {
            return Ok(0);
        }
        match (conn.error, conn.state) {
            (Some(e), _) => Err(Error::Connection(e)),
            (None, State::Closed) => Ok(0),
            _ => Err(Error::WouldBlock),
        }
    }

    /// Bytes ready to read.
    pub fn readable_len(&self, h: ConnectionHandle) -> Result<usize, Error> {
        Ok(self.conn(h)?.rcvbuf.len())
    }

    /// Queues data for sending; returns how much the send buffer took. `Err(WouldBlock)` when
    /// it took nothing: wait for `Writable`, which follows once half the buffer is free again.
    /// Data may be queued before the handshake completes.
    pub fn write(&mut self, now: Instant, h: ConnectionHandle, data: &[u8]) -> Result<usize, Error> {
        self.writable_conn(h)?;
        let conn = self.conn_mut(h)?;
        let n = conn.sndbuf.write(data);
        self.after_write(now, h, n, n < data.len(), n == 0 && !data.is_empty())
    }

    /// Zero-copy write: `fill` writes straight into the send ring (e.g. `pread` from a file)
    /// and returns how many bytes it wrote. It gets at most `max` bytes, one contiguous piece of
    /// free space, so possibly fewer (call again for more). Returns the bytes taken, with
    /// `write`'s rules: `Err(WouldBlock)` (and `fill` not called) when the buffer is full, and a
    /// `Writable` event once space frees up after a write that got less than `max`.
    pub fn write_with<F: FnOnce(&mut [u8]) -> usize>(
        &mut self,
        now: Instant,
        h: ConnectionHandle,
        max: usize,
        fill: F,
    ) -> Result<usize, Error> {
        self.writable_conn(h)?;
        let conn = self.conn_mut(h)?;
        let offered = max.min(conn.sndbuf.free());
        let n = conn.sndbuf.write_with(max, fill);
        // A closure that wrote less than it was offered made its own choice (end of file, say):
        // only a lack of space is back-pressure and arms `Writable`.
        self.after_write(now, h, n, offered < max, offered == 0 && max > 0)
    }

    /// Zero-copy write of lent memory: queues as much of `chunk` as the send buffer has room
    /// for, without copying it. The buffer keeps a reference to the chunk's source until those
    /// bytes are acknowledged (or the connection is freed); each transmission copies them
    /// straight into the frame. Ring writes (`write`, `write_with`) and chunks may interleave;
    /// the stream keeps their order. Returns the bytes taken (the caller advances its chunk),
    /// with `write`'s rules: `Err(WouldBlock)` when nothing was taken (no room, or the bounded
    /// queue of chunks is full), and a `Writable` event once space frees up.
    ///
    /// If the source stops being intact ([`SendSource::is_intact`]) while its bytes are sent,
    /// the engine resets the connection (the application sees `Closed` with
    /// [`ConnectionError::Aborted`]) rather than send wrong bytes.
    ///
    /// [`SendSource::is_intact`]: crate::tcp::SendSource::is_intact
    pub fn write_external(
        &mut self,
        now: Instant,
        h: ConnectionHandle,
        chunk: &ExternalChunk,
    ) -> Result<usize, Error> {
        self.writable_conn(h)?;
        let conn = self.conn_mut(h)?;
        let n = conn.sndbuf.write_external(chunk);
        self.after_write(now, h, n, n < chunk.len(), n == 0 && !chunk.is_empty())
    }

    /// A frame of `index` carried bytes of a lent source that went bad and was rewritten as a
    /// RST (engine/transmit.rs): the connection is finished here, without a second RST.
    pub(super) fn reset_for_lost_source(&mut self, now: Instant, index: u32) {
        let Some(conn) = self.slots[index as usize].conn.as_deref_mut() else { return };
        if conn.state.counts_as_established() {
            self.stats.estab_resets += 1;
        }
        self.stats.out_segs += 1;
        self.stats.out_rsts += 1;
        conn.terminate(Some(ConnectionError::Aborted));
        // The bad source is not read again; release it (and the rest of the stream) now.
        conn.sndbuf.discard();
        self.after_update(index, now);
    }

    /// Checks that the connection accepts new data (no error, not shut down, connected or
    /// connecting).
    fn writable_conn(&mut self, h: ConnectionHandle) -> Result<(), Error> {
        let conn = self.conn_mut(h)?;
        if let Some(e) = conn.error {
            return Err(Error::Connection(e));
        }
        if conn.fin_queued {
            return Err(Error::WriteShutdown);
        }
        if !matches!(conn.state, State::SynSent | State::SynReceived | State::Established | State::CloseWait)
        {
            return Err(Error::NotConnected);
        }
        Ok(())
    }

    /// Back-pressure bookkeeping after a write took `n` bytes: `blocked` when the buffer had
    /// less room than the application wanted (a `Writable` event follows once half the buffer
    /// is free), `would_block` when it had none at all.
    fn after_write(
        &mut self,
        now: Instant,
        h: ConnectionHandle,
        n: usize,
        blocked: bool,
        would_block: bool,
    ) -> Result<usize, Error> {
        let conn = self.conn_mut(h)?;
        if blocked {
            conn.write_blocked = true;
        }
        self.after_update(h.index, now);
        if would_block {
            return Err(Error::WouldBlock);
        }
        Ok(n)
    }

    /// Free space in the send buffer.
    pub fn send_capacity(&self, h: ConnectionHandle) -> Result<usize, Error> {
        Ok(self.conn(h)?.sndbuf.free())
    }

    /// Half-close: a FIN follows the queued data (RFC 9293 CLOSE on the send side); reading
    /// continues until the peer's FIN.
    pub fn shutdown_write(&mut self, now: Instant, h: ConnectionHandle) -> Result<(), Error> {
        let conn = self.conn_mut(h)?;
        if conn.fin_queued {
            return Ok(());
        }
        match conn.state {
            State::SynSent | State::SynReceived => conn.fin_queued = true,
            State::Established => {
                conn.fin_queued = true;
                conn.state = State::FinWait1;
            }
            State::CloseWait => {
                conn.fin_queued = true;
                conn.state = State::LastAck;
            }
            _ => return Err(Error::NotConnected),
        }
        self.after_update(h.index, now);
        Ok(())
    }

    /// Graceful close: like `shutdown_write`, and the application gives up the handle; the engine
    /// finishes the exchange (FIN-WAIT, TIME-WAIT) alone. Unread received data makes it an abort
    /// (RFC 9293 §3.10.4 / RFC 2525 §2.17), as Linux does.
    pub fn close(&mut self, now: Instant, h: ConnectionHandle) -> Result<(), Error> {
        let conn = self.conn_mut(h)?;
        if !conn.rcvbuf.is_empty() && conn.state.is_synchronized() && conn.state != State::TimeWait {
            self.stats.abort_on_close += 1;
            return self.abort(now, h);
        }
        match conn.state {
            State::Closed | State::SynSent => {
                self.free(h.index);
                return Ok(());
            }
            State::SynReceived | State::Established | State::CloseWait => {
                self.shutdown_write(now, h)?;
            }
            _ => {}
        }
        let fin_wait2_timeout = self.cfg.tcp.fin_wait2_timeout;
        let conn = self.conn_mut(h)?;
        conn.orphaned = true;
        conn.events = 0;
        if conn.state == State::FinWait2 {
            conn.timers.set(TimerKind::Linger, now + fin_wait2_timeout);
        }
        self.after_update(h.index, now);
        Ok(())
    }

    /// Abort (RFC 9293 ABORT): sends a RST if the peer knows the connection, discards all data
    /// and frees the connection at once. The handle is invalid afterwards.
    pub fn abort(&mut self, now: Instant, h: ConnectionHandle) -> Result<(), Error> {
        self.conn(h)?;
        self.abort_index(now, h.index);
        Ok(())
    }

    fn abort_index(&mut self, _now: Instant, index: u32) {
        let slot = &mut self.slots[index as usize];
        let route = slot.route;
        let Some(conn) = slot.conn.as_deref_mut() else { return };
        let sync = matches!(
            conn.state,
            State::SynReceived | State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait
        );
        if conn.state.counts_as_established() {
            self.stats.estab_resets += 1;
        }
        Self::note_abort(conn);
        let reset = sync.then_some((conn.tuple, conn.snd_nxt));
        conn.terminate(Some(ConnectionError::Aborted));
        self.free(index);
        if let Some((tuple, seq)) = reset {
            let hop = self.iface.next_hop(tuple.remote.0);
            let mac = route.or_else(|| self.neighbors.peek(hop));
            match mac {
                Some(dst) => {
                    self.queue_reply(Reply::Rst { tuple, dst, seq, ack: None });
                }
                None => self.stats.arp_unresolved_drops += 1,
            }
        }
    }

    /// Current socket options.
    pub fn socket_options(&self, h: ConnectionHandle) -> Result<SocketOptions, Error> {
        Ok(self.conn(h)?.opts)
    }

    /// Changes socket options on a live connection; they apply at once. A new `congestion`
    /// or `pacing` choice switches the controller the way Linux's `TCP_CONGESTION` does on an
    /// established socket: the new controller takes over the window, threshold, recovery
    /// episode and RTT estimates (`Connection::update_congestion`), and `info` shows it.
    ///
    /// Buffer sizes are fixed once a connection exists: both buffers and the loss-recovery
    /// records were allocated and counted against `memory_limit` at creation, and the receive
    /// window already auto-tunes up to `recv_buffer`. A different `send_buffer` or
    /// `recv_buffer` is refused with [`Error::BufferResize`] and nothing changes; choose the
    /// sizes at `listen`/`connect`.
    pub fn set_socket_options(
        &mut self,
        now: Instant,
        h: ConnectionHandle,
        opts: SocketOptions,
    ) -> Result<(), Error> {
        let conn = self.conn_mut(h)?;
        if opts.send_buffer != conn.opts.send_buffer || opts.recv_buffer != conn.opts.recv_buffer {
            return Err(Error::BufferResize);
        }
        conn.opts = opts;
        conn.update_congestion(now);
        if opts.quickack && conn.unacked_bytes > 0 {
            conn.ack_now = true;
        }
        conn.update_keepalive(now);
        self.after_update(h.index, now);
        Ok(())
    }

    /// `ss -ti`-style information.
    pub fn info(&self, now: Instant, h: ConnectionHandle) -> Result<TcpInfo, Error> {
        Ok(self.conn(h)?.info(now))
    }

    /// The connection's state.
    pub fn state(&self, h: ConnectionHandle) -> Result<State, Error> {
        Ok(self.conn(h)?.state)
    }

    /// The last ICMP soft error reported for the connection (RFC 9293 MUST-56).
    pub fn soft_error(&self, h: ConnectionHandle) -> Result<Option<crate::ip::SoftError>, Error> {
        Ok(self.conn(h)?.soft_error)
    }

    /// The ISN generator's answer for a tuple: lets tests and tools check RFC 6528 behaviour.
    pub fn initial_sequence(&self, now: Instant, tuple: &FourTuple) -> SeqNumber {
        flows::isn(&self.isn, now, tuple)
    }
}
