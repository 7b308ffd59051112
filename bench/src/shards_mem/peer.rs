//! The in-memory "NIC queue" of one shard: a [`ShardDevice`] whose far end is a peer engine
//! driven by the same shard thread, so the only cost on the shard's core besides the shard
//! itself is a peer whose work is identical in every setup.
//!
//! Owns the peer [`Engine`] and its role ([`Peer`]), the wire from the shard to the peer (boxed
//! frame buffers recycled in place) and the ring the peer's frames reach a shard by. Every
//! [`Device::receive`] call first steps the peer once (take what the shard sent, fire its due
//! timers, run its role, transmit), then hands the shard up to `budget` frames from its inbound
//! ring. The ring is an SPSC [`ring`](linerate_driver::shard::ring) whose consumer is normally
//! this same device; wiring it to another shard's device instead ("crossed") sends the peer's
//! frames to the wrong shard, the way veth's RSS-less queue choice does, which is what forces
//! the hand-off path. Either way each frame is copied once into a [`HandOffFrame`] (the
//! "DMA"), so the home and crossed setups pay the same per-frame device cost.
//!
//! Promises: lossless (frames the ring cannot take wait in the staging wire), bounded (the
//! staging wire holds at most the peer's own window of frames; buffers are reused), no
//! allocation once warm. Must not: sleep (an idle shard re-polls at once).

use std::sync::Arc;

use linerate_driver::shard::ring::{Consumer, Producer};
use linerate_driver::shard::{HandOffFrame, ShardDevice};
use linerate_stack::device::{Capabilities, Device};
use linerate_stack::engine::Engine;
use linerate_stack::time::{Duration, Instant};

use super::roles::{BareOpener, Client, LoadCells, Server};
use crate::mem_wire::MemWire;

/// The device view of the peer's end for one engine call.
struct PeerPort<'a> {
    out: &'a mut MemWire,
    inc: &'a mut MemWire,
}

fn capabilities() -> Capabilities {
    Capabilities { mtu: 1500, max_burst: 64, rx_checksum_verified: false, tx_checksum_offload: false }
}

impl Device for PeerPort<'_> {
    fn capabilities(&self) -> Capabilities {
        capabilities()
    }
    fn receive<F: FnMut(&mut [u8])>(&mut self, _now: Instant, budget: usize, handle: F) -> usize {
        self.inc.receive(budget, handle)
    }
    fn transmit_capacity(&self) -> usize {
        usize::MAX
    }
    fn transmit<R, F: FnOnce(&mut [u8]) -> R>(&mut self, _now: Instant, len: usize, fill: F) -> Option<R> {
        self.out.transmit(len, fill)
    }
    fn flush(&mut self, _now: Instant) {}
}

/// What the peer engine runs.
#[derive(Debug)]
pub enum Peer {
    /// Load generator against the shard's server (passive opens on the shard).
    Client(Client),
    /// Server for the shard's load generator (active opens from the shard).
    Server(Server),
}

/// One shard's in-memory link and its peer.
#[derive(Debug)]
pub struct PeerLink {
    peer: Engine,
    role: Peer,
    cells: Arc<LoadCells>,
    /// Frames the shard transmitted, for the peer.
    to_peer: MemWire,
    /// Frames the peer transmitted, waiting for room in `out`.
    staged: MemWire,
    /// Where the peer's frames go (this shard's or another shard's inbound ring).
    out: Producer<HandOffFrame>,
    /// The frames that reach this shard.
    inbound: Consumer<HandOffFrame>,
}

impl PeerLink {
    /// A link whose peer runs `role` on `peer`, sending on `out`; the shard receives `inbound`.
    pub fn new(
        peer: Engine,
        role: Peer,
        cells: Arc<LoadCells>,
        out: Producer<HandOffFrame>,
        inbound: Consumer<HandOffFrame>,
    ) -> Self {
        PeerLink { peer, role, cells, to_peer: MemWire::default(), staged: MemWire::default(), out, inbound }
    }

    /// One step of the peer: input, timers, role, output.
    fn step_peer(&mut self, now: Instant) {
        let PeerLink { peer, role, cells, to_peer, staged, out, .. } = self;
        let mut port = PeerPort { out: staged, inc: to_peer };
        while peer.receive_from(now, &mut port, 64) > 0 {}
        if peer.next_timeout().is_some_and(|t| t <= now) {
            peer.handle_timeout(now);
        }
        match role {
            Peer::Client(c) => {
                c.poll(&mut BareOpener { engine: peer, now });
                c.publish(cells);
            }
            Peer::Server(s) => {
                s.poll(peer, now);
                s.publish(cells);
            }
        }
        peer.poll_transmit(now, &mut port);
        while let Some(bytes) = staged.front() {
            let Some(frame) = HandOffFrame::copy_of(bytes) else { break };
            if out.push(frame).is_err() {
                break;
            }
            staged.discard_front();
        }
    }
}

impl Device for PeerLink {
    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    fn receive<F: FnMut(&mut [u8])>(&mut self, now: Instant, budget: usize, mut handle: F) -> usize {
        self.step_peer(now);
        self.inbound.pop_batch(budget, |mut frame| handle(frame.frame_mut()))
    }

    fn transmit_capacity(&self) -> usize {
        usize::MAX
    }

    fn transmit<R, F: FnOnce(&mut [u8]) -> R>(&mut self, _now: Instant, len: usize, fill: F) -> Option<R> {
        self.to_peer.transmit(len, fill)
    }

    fn flush(&mut self, _now: Instant) {}
}

impl ShardDevice for PeerLink {
    /// The peer always has work (or a timer) pending; sleeping would only idle the core.
    fn wait_for_frames(&mut self, _timeout: Duration) {}
}
