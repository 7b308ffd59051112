//! AF_XDP: a [`Device`] over one queue of a real (or veth) interface, with raw syscalls only.
//!
//! Owns: per device, one UMEM (frame memory registered with the kernel), one AF_XDP socket bound
//! to one queue, its four rings, and the ledger of where every frame is. [`XdpProgram`] owns the
//! steering program and its attachment, shared by all queues of an interface.
//!
//! How frames move:
//! * Receive: half of the UMEM frames sit in the fill ring. The kernel writes arrived frames into
//!   them and posts descriptors on the rx ring; [`AfXdpDevice::receive`] lends each frame to the
//!   caller in place and puts it straight back on the fill ring, a burst at a time.
//! * Transmit: the other half form a free list. [`AfXdpDevice::transmit`] lends a free frame,
//!   writes its descriptor to the tx ring, and [`AfXdpDevice::flush`] publishes the burst and
//!   kicks the kernel when it asks (`XDP_USE_NEED_WAKEUP`). Completed frames come back through
//!   the completion ring to the free list.
//! * Frame size follows the MTU ([`AfXdpConfig::for_mtu`]). The kernel's chunks stop at the page
//!   (4 KiB), so above MTU 3,826 a frame is a slot of adjacent chunks used through AF_XDP
//!   multi-buffer (`multi_buffer.rs`): one descriptor per chunk on transmit, a gather copy on
//!   receive for frames longer than a chunk. The ledger tracks slots, not chunks.
//! * Transmit checksum offload (opt-in, `tx_metadata.rs`, [`AfXdpConfig::tx_checksum`]): the UMEM is
//!   registered with 16 bytes of TX metadata room, every transmit chunk keeps them free, and a
//!   TCP frame whose checksum field holds the pseudo-header sum goes out with a checksum request,
//!   so the kernel builds a `CHECKSUM_PARTIAL` skb (copy mode; [`Capabilities::tx_checksum_offload`]
//!   tells the engine it may leave checksums partial).
//!
//! Promises: every UMEM frame is in exactly one place (free, fill, rx, lent, tx, completion, or
//! in flight inside the kernel); [`AfXdpDevice::check_frame_accounting`] proves it and debug
//! builds assert it after every burst. No allocation, lock or string work per frame; at most one
//! wakeup syscall per burst (copy-mode transmit may need one per 32 frames: the kernel sends a
//! bounded batch per call). Errors say what is missing and how to fix it ([`AfXdpError`]).
//!
//! Choices: raw syscalls through `libc` (no libbpf/libxdp, so no C toolchain, clang or libelf in
//! the build); the steering program is hand-assembled eBPF ([`program`]) attached through a BPF
//! link, so the kernel detaches it when the process exits however it exits, and nothing is
//! pinned. Zero-copy is tried first in [`BindMode::Auto`]; veth (and generic XDP) only support
//! copy mode, which is where the `need_wakeup` kicks matter.
//!
//! Facts about veth (kernel 6.18) this driver relies on: in native mode a multi-queue veth
//! delivers frames on every rx queue, so open one device per queue ([`AfXdpDevice::open_all`]);
//! a queue stays busy for a few tens of milliseconds after its socket closes (bind retries with
//! a bounded backoff); zero-copy bind fails with EOPNOTSUPP (copy mode works); the kernel peer
//! sends CHECKSUM_PARTIAL TCP unless it runs `ethtool -K <peer> tx off` (the lab does). Native
//! XDP on our end needs nothing from the peer for frames the peer's kernel sends. A qdisc on our
//! interface does not shape AF_XDP transmit (copy mode hands frames straight to the driver: a
//! 10 Mbit/s tbf let 1.6 Gbit/s through and counted 0 packets), so pacing is the engine's job.
//!
//! Must not: be used from two threads at once (it is `Send`, not `Sync`), or keep a lent frame
//! past its callback (the borrow checker enforces this).

mod error;
pub mod fallback;
mod multi_buffer;
pub mod program;
mod ring;
mod socket;
mod sys;
mod tx_metadata;
mod umem;

use linerate_stack::device::{Capabilities, Device, ETHERNET_HEADER_LEN};
use linerate_stack::time::Instant;

pub use error::AfXdpError;
pub use fallback::{AfPacketDevice, AfPacketStats};
pub use program::{XdpMode, XdpProgram};
pub use socket::{BindMode, BusyPoll};
pub use sys::{interface_index, interface_mac, interface_mtu, interface_rx_queues};
pub use tx_metadata::{TxChecksum, TX_METADATA_LEN};
pub use umem::{AccountingError, FrameAccounting, FramePlace};

use multi_buffer::{Gather, GatherStep, TxLayout};
use socket::{SocketSetup, UmemTxMetadata, XskSocket};
use umem::{FrameLedger, UmemArea};

/// Bytes the kernel reserves in front of every received frame in copy mode (`XDP_PACKET_HEADROOM`).
const RX_HEADROOM: usize = 256;

/// The largest UMEM chunk the kernel accepts: the page size. Linux 6.18 refuses anything larger
/// with EINVAL, HugeTLB memory or not (the 2023 "chunk_size > PAGE_SIZE" series never landed;
/// checked on this kernel with 8 and 16 KiB chunks in huge pages). Larger frames therefore span
/// several chunks (AF_XDP multi-buffer).
pub const MAX_CHUNK_SIZE: u32 = 4096;

/// UMEM frame sizes: 2,048 and 4,096 hold a frame in one chunk; 8,192 and 16,384 are slots of
/// 2 and 4 adjacent 4,096-byte chunks, used with AF_XDP multi-buffer (`XDP_USE_SG`, Linux 6.6+,
/// copy mode): a transmitted frame is written contiguously into its slot and posted as one
/// descriptor per chunk chained by `XDP_PKT_CONTD`; a received frame the kernel spread over
/// several chunks is gathered into one buffer before the engine sees it.
pub const FRAME_SIZES: [u32; 4] = [2048, 4096, 8192, 16384];

/// The largest L3 MTU a UMEM frame of `frame_size` bytes carries. In one chunk, the kernel
/// writes received frames after 256 bytes of headroom (`XDP_PACKET_HEADROOM`) and the Ethernet
/// header counts; a multi-buffer slot is bounded by what we can transmit from it (the slot).
pub const fn max_mtu_for_frame(frame_size: u32) -> usize {
    let room =
        if frame_size > MAX_CHUNK_SIZE { frame_size as usize } else { frame_size as usize - RX_HEADROOM };
    room.saturating_sub(ETHERNET_HEADER_LEN)
}

/// The largest MTU any UMEM frame carries (16,370: a 16 KiB slot).
pub const MAX_MTU: usize = max_mtu_for_frame(FRAME_SIZES[FRAME_SIZES.len() - 1]);
/// The largest MTU a frame carries without multi-buffer (3,826: one 4,096-byte chunk).
pub const MAX_SINGLE_CHUNK_MTU: usize = max_mtu_for_frame(MAX_CHUNK_SIZE);

/// The smallest UMEM frame size that carries one whole frame of an `mtu`-byte interface; `None`
/// above [`MAX_MTU`].
pub fn frame_size_for_mtu(mtu: usize) -> Option<u32> {
    FRAME_SIZES.into_iter().find(|&size| mtu <= max_mtu_for_frame(size))
}

/// How to build one [`AfXdpDevice`].
#[derive(Debug, Clone)]
pub struct AfXdpConfig {
    /// UMEM frame size, one of [`FRAME_SIZES`]; one frame carries one whole Ethernet frame, so
    /// it bounds the MTU ([`max_mtu_for_frame`], [`AfXdpConfig::for_mtu`]). Above
    /// [`MAX_CHUNK_SIZE`] the socket uses multi-buffer.
    pub frame_size: u32,
    /// UMEM frames (half for receive, half for transmit); a power of two. The fill and
    /// completion rings get this many entries, so returning a frame never finds them full
    /// (the kernel publishes its progress on them lazily).
    pub frame_count: u32,
    /// Entries of the rx and tx rings; a power of two. At most this many frames are posted for
    /// receive.
    pub ring_size: u32,
    pub bind: BindMode,
    /// Try 2 MiB huge pages for the UMEM (falls back to normal pages when none are reserved).
    pub huge_pages: bool,
    pub busy_poll: Option<BusyPoll>,
    /// Frames per burst the engine should move (32–64 is the sweet spot).
    pub max_burst: usize,
    /// L3 MTU to report; `None` reads the interface's.
    pub mtu: Option<usize>,
    /// How TCP checksums of transmitted frames are completed; [`Capabilities::tx_checksum_offload`]
    /// says what was got. Default [`TxChecksum::Software`]: an XDP program on the far end of a
    /// veth (the lab's bypass client) receives `CHECKSUM_PARTIAL` frames uncompleted, so
    /// offload is for links whose receiver is a kernel stack or a real NIC.
    pub tx_checksum: TxChecksum,
}

impl Default for AfXdpConfig {
    fn default() -> Self {
        AfXdpConfig {
            frame_size: 2048,
            frame_count: 4096,
            ring_size: 2048,
            bind: BindMode::Auto,
            huge_pages: true,
            busy_poll: None,
            max_burst: 64,
            mtu: None,
            tx_checksum: TxChecksum::Software,
        }
    }
}

impl AfXdpConfig {
    /// The default configuration with frames large enough for an `mtu`-byte interface: 2,048
    /// bytes up to MTU 1,778, 4,096 up to 3,826, then multi-buffer slots of 8,192 (MTU 8,178)
    /// and 16,384 (MTU 9,000 and up to 16,370), with as many UMEM bytes as the default (fewer,
    /// larger frames). Above [`MAX_MTU`] it keeps the largest size, and opening a device then
    /// says why it cannot work.
    pub fn for_mtu(mtu: usize) -> AfXdpConfig {
        let base = AfXdpConfig::default();
        let frame_size = frame_size_for_mtu(mtu).unwrap_or(FRAME_SIZES[FRAME_SIZES.len() - 1]);
        if frame_size == base.frame_size {
            return base;
        }
        let frame_count = base.frame_count * base.frame_size / frame_size;
        AfXdpConfig { frame_size, frame_count, ring_size: base.ring_size.min(frame_count), ..base }
    }

    /// Checks the configuration against an interface of `mtu` bytes.
    pub fn validate(&self, mtu: usize) -> Result<(), AfXdpError> {
        let bad = |msg: String| Err(AfXdpError::InvalidConfig(msg));
        if !FRAME_SIZES.contains(&self.frame_size) {
            return bad(format!("frame_size {} must be one of {FRAME_SIZES:?}", self.frame_size));
        }
        if !self.frame_count.is_power_of_two() || self.frame_count < 2 * self.max_burst as u32 {
            return bad(format!("frame_count {} must be a power of two >= 2 x max_burst", self.frame_count));
        }
        if !self.ring_size.is_power_of_two() || (self.ring_size as usize) < self.max_burst {
            return bad(format!("ring_size {} must be a power of two >= max_burst", self.ring_size));
        }
        if self.max_burst == 0 {
            return bad("max_burst must be at least 1".into());
        }
        if mtu > max_mtu_for_frame(self.frame_size) {
            let hint = match frame_size_for_mtu(mtu) {
                Some(size) => format!("use frame_size {size} (AfXdpConfig::for_mtu)"),
                None => format!("no UMEM frame holds it: set the interface MTU to {MAX_MTU} or less"),
            };
            return bad(format!(
                "MTU {mtu} does not fit {}-byte frames (at most MTU {}): {hint}",
                self.frame_size,
                max_mtu_for_frame(self.frame_size)
            ));
        }
        Ok(())
    }

    /// The UMEM chunk the kernel sees (the frame, or one page of a multi-buffer slot).
    pub fn chunk_size(&self) -> u32 {
        self.frame_size.min(MAX_CHUNK_SIZE)
    }

    /// Whether frames span several chunks (the socket binds with `XDP_USE_SG`).
    pub fn multi_buffer(&self) -> bool {
        self.frame_size > MAX_CHUNK_SIZE
    }
}

/// Counters of one device (cumulative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceStats {
    pub rx_frames: u64,
    pub tx_frames: u64,
    /// Transmit requests refused: no free frame, full tx ring, or too long.
    pub tx_refused: u64,
    pub tx_kicks: u64,
    /// Kicks the kernel answered with EAGAIN/EBUSY: it stopped with descriptors left (its
    /// per-call budget, or the driver pushed back) and was kicked again.
    pub tx_kicks_again: u64,
    /// Of those, kicks after which the kernel had taken nothing from the tx ring (the driver
    /// pushed back): each cost a syscall and an skb built and freed for nothing.
    pub tx_kicks_stalled: u64,
    /// Kicks the kernel answered with an unexpected error.
    pub tx_kick_errors: u64,
    pub rx_wakeups: u64,
    /// Descriptors naming a frame we had not given the kernel (never expected), skipped.
    pub invalid_descriptors: u64,
    /// Received frames longer than the MTU allows, dropped.
    pub rx_oversized: u64,
    /// Transmitted frames whose TCP checksum was left to the kernel (TX metadata).
    pub tx_checksum_offloaded: u64,
}

/// One AF_XDP socket on one interface queue, as a [`Device`].
#[derive(Debug)]
pub struct AfXdpDevice {
    // Declared first so it drops first: the socket (and its rings) go before the UMEM.
    socket: XskSocket,
    umem: UmemArea,
    ledger: FrameLedger,
    /// Transmit frames not in use (base addresses).
    free: Vec<u64>,
    caps: Capabilities,
    ifname: String,
    queue: u32,
    mac: [u8; 6],
    busy_poll: bool,
    stats: DeviceStats,
    /// The UMEM chunk size: the frame size, or a page of a multi-buffer frame slot.
    chunk: u32,
    /// Where a transmitted frame lies in its slot (metadata headroom, chunks).
    layout: TxLayout,
    /// Frames carrying a partial TCP checksum go out with a checksum request (TX metadata).
    tx_offload: bool,
    /// Descriptors the largest frame takes (1 without multi-buffer).
    max_descs: u32,
    /// Where a received multi-buffer frame is assembled (empty without multi-buffer).
    gather: Gather,
}

// SAFETY: the device exclusively owns its mappings and socket; the raw pointers inside are never
// shared, so moving the whole device to another thread is sound. It is not `Sync`.
unsafe impl Send for AfXdpDevice {}

impl AfXdpDevice {
    /// Opens queue `queue` of the interface `program` is attached to and steers that queue's
    /// frames to it. Call in the interface's network namespace.
    pub fn open(program: &XdpProgram, queue: u32, config: &AfXdpConfig) -> Result<Self, AfXdpError> {
        let device = Self::open_unsteered(program.ifname(), queue, config)?;
        program.register(queue, device.socket.raw_fd())?;
        Ok(device)
    }

    /// Opens one device per receive queue of `program`'s interface.
    pub fn open_all(program: &XdpProgram, config: &AfXdpConfig) -> Result<Vec<Self>, AfXdpError> {
        (0..program.rx_queues()).map(|q| Self::open(program, q, config)).collect()
    }

    /// Opens queue `queue` of `ifname` without steering anything to it: it can transmit, and
    /// receives only what some XDP program redirects to it.
    pub fn open_unsteered(ifname: &str, queue: u32, config: &AfXdpConfig) -> Result<Self, AfXdpError> {
        let ifindex = sys::interface_index(ifname)?;
        let queues = sys::interface_rx_queues(ifname)?;
        if queue >= queues {
            return Err(AfXdpError::NoSuchQueue { ifname: ifname.to_owned(), queue, queues });
        }
        let mtu = match config.mtu {
            Some(mtu) => mtu,
            None => sys::interface_mtu(ifname)?,
        };
        config.validate(mtu)?;
        let umem = UmemArea::new(config.frame_size, config.frame_count, config.huge_pages)?;
        let setup = SocketSetup {
            ifindex,
            queue,
            frame_size: config.chunk_size(),
            ring_size: config.ring_size,
            umem_ring_size: config.frame_count,
            multi_buffer: config.multi_buffer(),
            bind: config.bind,
            busy_poll: config.busy_poll,
            tx_metadata: umem_tx_metadata(config, mtu),
        };
        let socket = XskSocket::open(&umem, &setup, ifname)?;
        let headroom = if socket.tx_metadata { TX_METADATA_LEN } else { 0 };
        let layout = TxLayout::new(config.chunk_size(), headroom);
        // Copy mode: the kernel completes (or offloads) a CHECKSUM_PARTIAL skb itself, on any
        // device. Zero-copy hands the request to the driver, which may not support it (its
        // netdev `xsk-features` would say; not probed yet), so the engine keeps computing.
        let tx_offload = socket.tx_metadata && !socket.zero_copy;
        let caps = Capabilities {
            mtu,
            max_burst: config.max_burst,
            tx_checksum_offload: tx_offload,
            ..Capabilities::default()
        };
        let mut device = AfXdpDevice {
            socket,
            umem,
            ledger: FrameLedger::new(config.frame_size, config.frame_count),
            free: Vec::with_capacity(config.frame_count as usize),
            caps,
            ifname: ifname.to_owned(),
            queue,
            mac: sys::interface_mac(ifname)?,
            busy_poll: config.busy_poll.is_some(),
            stats: DeviceStats::default(),
            chunk: config.chunk_size(),
            layout,
            tx_offload,
            max_descs: layout.descriptors_for(caps.max_frame_len()),
            gather: Gather::new(if config.multi_buffer() { caps.max_frame_len() } else { 0 }),
        };
        device.populate(config);
        Ok(device)
    }

    /// Gives the receive half of the frames to the fill ring and the rest to the free list.
    fn populate(&mut self, config: &AfXdpConfig) {
        let rx_frames = (config.frame_count / 2).min(config.ring_size);
        let fill_room = self.socket.fill.free(rx_frames);
        for i in 0..config.frame_count {
            let addr = u64::from(i) * u64::from(config.frame_size);
            if i < rx_frames.min(fill_room) {
                self.ledger.transfer(addr, FramePlace::Free, FramePlace::RxPosted);
                self.socket.fill.push(addr);
            } else {
                self.free.push(addr);
            }
        }
        self.free.reverse(); // pop() hands out low addresses first: easier to read in dumps
        self.socket.fill.submit();
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }
    pub fn queue(&self) -> u32 {
        self.queue
    }
    /// The interface's Ethernet address (our source MAC).
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }
    /// Whether the socket is bound in zero-copy mode.
    pub fn zero_copy(&self) -> bool {
        self.socket.zero_copy
    }
    /// Whether the UMEM got huge pages.
    pub fn huge_pages(&self) -> bool {
        self.umem.huge_pages()
    }
    pub fn stats(&self) -> DeviceStats {
        DeviceStats { invalid_descriptors: self.ledger.invalid_returns, ..self.stats }
    }
    /// The kernel's counters for this socket (drops for a full rx ring or an empty fill ring...).
    pub fn kernel_statistics(&self) -> Result<libc::xdp_statistics, AfXdpError> {
        self.socket.statistics()
    }
    /// The socket descriptor, for `poll(2)` when the caller wants to sleep until frames arrive.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.socket.raw_fd()
    }

    /// Returns completed transmit frames to the free list.
    fn reclaim_completions(&mut self) {
        let n = self.socket.completion.peek(u32::MAX);
        for i in 0..n {
            let chunk_addr = self.socket.completion.read(i);
            let addr = self.ledger.frame_base(chunk_addr);
            if chunk_addr - addr >= u64::from(self.chunk) {
                // A later chunk of a multi-buffer frame: its first chunk's entry frees the slot
                // (the kernel completes every chunk of a frame together, when its skb is freed).
                continue;
            }
            if self.ledger.transfer(addr, FramePlace::TxPosted, FramePlace::Free) {
                self.free.push(addr);
            }
        }
        self.socket.completion.release(n);
    }

    /// Publishes queued transmit descriptors and kicks the kernel while it asks for it.
    fn push_tx(&mut self) {
        if self.socket.tx.unpublished() > 0 {
            self.socket.tx.submit();
        }
        // Copy mode sends a bounded batch per kick, so a burst may need a few; bound the loop.
        let max_kicks = self.socket.tx.size() / 16 + 2;
        for _ in 0..max_kicks {
            let before = self.socket.tx.outstanding();
            if before == 0 || !self.socket.tx.needs_wakeup() {
                break;
            }
            self.stats.tx_kicks += 1;
            match self.socket.kick_tx() {
                Ok(true) => {
                    self.stats.tx_kicks_again += 1;
                    let progressed = self.socket.tx.outstanding() < before;
                    // The completion ring may be what stopped it.
                    self.reclaim_completions();
                    if !progressed {
                        // The driver refused (e.g. veth's peer ring is full). Kicked again
                        // anyway: nothing else would send these frames if no later flush came.
                        self.stats.tx_kicks_stalled += 1;
                    }
                }
                Ok(false) => break,
                Err(_) => {
                    self.stats.tx_kick_errors += 1;
                    break;
                }
            }
        }
        self.reclaim_completions();
    }

    /// Where every UMEM frame is right now, or why the books do not balance.
    ///
    /// The per-frame ledger is exact. The split of kernel-owned frames between a ring and "in
    /// flight" comes from the shared indices, which the kernel publishes lazily (it may post a
    /// frame on the rx ring before it publishes having consumed it from the fill ring), so the
    /// ring that feeds the kernel is clamped to what the ledger allows.
    pub fn check_frame_accounting(&self) -> Result<FrameAccounting, AccountingError> {
        let rx_posted = self.ledger.count(FramePlace::RxPosted);
        let tx_posted = self.ledger.count(FramePlace::TxPosted);
        // Transmit ring entries are chunks; a multi-buffer frame is counted by its first chunk.
        let first_chunk = |addr: u64| addr - self.ledger.frame_base(addr) < u64::from(self.chunk);
        let rx_ring = self.socket.rx.filled(); // every received chunk is a slot of its own
        let completion_ring = self.socket.completion.filled_matching(first_chunk);
        let mut snapshot = FrameAccounting {
            total: self.ledger.total(),
            free: self.ledger.count(FramePlace::Free),
            rx_ring,
            lent: self.ledger.count(FramePlace::Lent),
            completion_ring,
            ..FrameAccounting::default()
        };
        let fail = |reason, snapshot| Err(AccountingError { reason, snapshot });
        if rx_ring > rx_posted {
            return fail("the rx ring holds more frames than were posted for receive", snapshot);
        }
        if completion_ring > tx_posted {
            return fail("the completion ring holds more frames than were posted for transmit", snapshot);
        }
        snapshot.fill_ring = self.socket.fill.outstanding().min(rx_posted - rx_ring);
        snapshot.kernel_rx = rx_posted - rx_ring - snapshot.fill_ring;
        let tx_ring = self.socket.tx.outstanding_matching(|d| first_chunk(d.addr));
        snapshot.tx_ring = tx_ring.min(tx_posted - completion_ring);
        snapshot.kernel_tx = tx_posted - completion_ring - snapshot.tx_ring;
        if snapshot.free as usize != self.free.len() {
            return fail("the free list and the ledger disagree", snapshot);
        }
        if !self.ledger.recount_matches() {
            return fail("the per-frame table and the per-place counts disagree", snapshot);
        }
        if snapshot.placed() != snapshot.total {
            return fail("frames are missing or counted twice", snapshot);
        }
        Ok(snapshot)
    }

    fn debug_check_accounting(&self) {
        if cfg!(debug_assertions) {
            if let Err(e) = self.check_frame_accounting() {
                panic!("{e}");
            }
        }
    }

    /// Receives one burst of at most `max` frames (the rx ring gives no more than it holds).
    fn receive_burst<F: FnMut(&mut [u8])>(&mut self, max: u32, handle: &mut F) -> u32 {
        let n = self.socket.rx.peek(max);
        if n == 0 {
            return 0;
        }
        // The fill ring can hold every receive frame, so this never comes up short.
        let room = self.socket.fill.free(n);
        let mut delivered = 0;
        for i in 0..n {
            let desc = self.socket.rx.read(i);
            let base = self.ledger.frame_base(desc.addr);
            if !self.ledger.transfer(base, FramePlace::RxPosted, FramePlace::Lent) {
                continue;
            }
            let len = desc.len as usize;
            let more = desc.options & libc::XDP_PKT_CONTD != 0;
            if more || self.gather.active() {
                // A part of a multi-buffer frame.
                // SAFETY: the ledger shows we own this chunk now, and nothing else borrows it.
                let part = unsafe { self.umem.frame_mut(desc.addr, len) };
                match self.gather.push(part.map(|p| &*p), more) {
                    GatherStep::Pending => {}
                    GatherStep::Complete(frame_len) => {
                        handle(self.gather.frame_mut(frame_len));
                        delivered += 1;
                    }
                    GatherStep::Dropped => self.stats.rx_oversized += 1,
                }
            } else if len > self.caps.max_frame_len() {
                // The Device contract caps frames at the MTU (a VLAN tag or a peer with a larger
                // MTU could exceed it): dropped, counted.
                self.stats.rx_oversized += 1;
            } else {
                // SAFETY: the ledger shows we own this frame now, and nothing else borrows it.
                match unsafe { self.umem.frame_mut(desc.addr, len) } {
                    Some(frame) => {
                        handle(frame);
                        delivered += 1;
                    }
                    None => self.ledger.invalid_returns += 1,
                }
            }
            if i < room {
                self.ledger.transfer(base, FramePlace::Lent, FramePlace::RxPosted);
                self.socket.fill.push(base);
            } else {
                // Unreachable by the sizing above; keep the frame rather than overrun the ring.
                self.ledger.transfer(base, FramePlace::Lent, FramePlace::Free);
                self.free.push(base);
            }
        }
        self.socket.rx.release(n);
        self.socket.fill.submit();
        self.stats.rx_frames += u64::from(delivered);
        delivered
    }
}

/// What to register the UMEM with for `config.tx_checksum` at `mtu`: metadata only when the
/// largest frame still fits its slot with the metadata headroom in every chunk (a 16 KiB slot
/// carries MTU 16,306 then, not 16,370), and without kernel-software completion for multi-buffer
/// frames (the kernel would sum their first buffer only).
fn umem_tx_metadata(config: &AfXdpConfig, mtu: usize) -> UmemTxMetadata {
    let layout = TxLayout::new(config.chunk_size(), TX_METADATA_LEN);
    if !layout.fits(config.frame_size, mtu + ETHERNET_HEADER_LEN) {
        return UmemTxMetadata::None;
    }
    match config.tx_checksum {
        TxChecksum::Software => UmemTxMetadata::None,
        TxChecksum::Offload => UmemTxMetadata::Checksum,
        TxChecksum::OffloadCompletedByKernel if config.multi_buffer() => UmemTxMetadata::None,
        TxChecksum::OffloadCompletedByKernel => UmemTxMetadata::ChecksumInKernelSoftware,
    }
}

impl Device for AfXdpDevice {
    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    fn receive<F>(&mut self, _now: Instant, budget: usize, mut handle: F) -> usize
    where
        F: FnMut(&mut [u8]),
    {
        let budget = u32::try_from(budget).unwrap_or(u32::MAX);
        let mut total = 0;
        while total < budget {
            let got = self.receive_burst((budget - total).min(self.caps.max_burst as u32), &mut handle);
            if got == 0 {
                break;
            }
            total += got;
        }
        // The driver asks for a wakeup when it ran dry of fill entries; with busy polling, an
        // idle poll is what drives its NAPI loop.
        if self.socket.fill.needs_wakeup() || (self.busy_poll && total == 0) {
            self.stats.rx_wakeups += 1;
            self.socket.wake_rx();
        }
        self.debug_check_accounting();
        total as usize
    }

    fn transmit_capacity(&self) -> usize {
        // Lower bounds when frames span several chunks (descriptors, completions).
        let completed = self.socket.completion.filled() / self.max_descs;
        let frames = self.free.len() + completed as usize;
        let ring = (self.socket.tx.size() - self.socket.tx.outstanding()) / self.max_descs;
        frames.min(ring as usize)
    }

    fn transmit<R, F>(&mut self, now: Instant, len: usize, fill: F) -> Option<R>
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        if len > self.caps.max_frame_len() || len == 0 {
            self.stats.tx_refused += 1;
            return None;
        }
        if self.free.is_empty() {
            self.reclaim_completions();
        }
        let descs = self.layout.descriptors_for(len);
        if self.free.is_empty() || self.socket.tx.free(descs) < descs {
            self.stats.tx_refused += 1;
            return None;
        }
        let base = self.free.pop()?;
        self.ledger.transfer(base, FramePlace::Free, FramePlace::Lent);
        // SAFETY: the ledger shows we own this frame; the slot holds `len` (checked by validate
        // and by the layout choice at open).
        let Some(slot) = (unsafe { self.umem.frame_mut(base, self.layout.slot_len(len)) }) else {
            self.ledger.transfer(base, FramePlace::Lent, FramePlace::Free);
            self.free.push(base);
            self.stats.tx_refused += 1;
            return None;
        };
        let headroom = self.layout.headroom();
        let (meta, frame) = slot.split_at_mut(headroom);
        let result = fill(&mut frame[..len]);
        let mut options = 0;
        if self.tx_offload {
            if let (Some((start, offset)), Some(meta)) =
                (tx_metadata::checksum_request(&frame[..len]), meta.first_chunk_mut())
            {
                tx_metadata::write_checksum_request(meta, start, offset);
                options = libc::XDP_TX_METADATA;
                self.stats.tx_checksum_offloaded += 1;
            }
        }
        self.layout.spread(slot, len);
        self.ledger.transfer(base, FramePlace::Lent, FramePlace::TxPosted);
        for desc in self.layout.descriptors(base, len, options) {
            self.socket.tx.push(desc);
        }
        self.stats.tx_frames += 1;
        if self.socket.tx.unpublished() as usize >= self.caps.max_burst {
            self.flush(now);
        }
        Some(result)
    }

    fn flush(&mut self, _now: Instant) {
        self.push_tx();
        self.debug_check_accounting();
    }
}
