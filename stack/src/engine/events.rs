//! Application events, reported through `Engine::poll_event`.
//!
//! Events are level-ish and coalesced: each connection keeps a bitmask of pending events and sits
//! in the engine's queue at most once, so the queue is bounded by the number of connections plus
//! listeners however much traffic arrives.
//!
//! Events of a connection still in a listener's accept queue (data, the peer's FIN, a reset)
//! stay pending on it and are reported right after `accept`, as Linux reports them on the
//! accepted socket: a connection reset before `accept` is still handed out, and its first
//! events are the ones it collected, ending with `Closed { error: Some(Reset) }`.

use super::{ConnectionHandle, ListenerHandle};
use crate::tcp::ConnectionError;

/// Something the application should react to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The listener's accept queue has connections: call `accept`.
    Incoming(ListenerHandle),
    /// The handshake completed (active open) or the connection was accepted and is established.
    Connected(ConnectionHandle),
    /// New in-order data can be read.
    Readable(ConnectionHandle),
    /// Send-buffer space freed up after a short write.
    Writable(ConnectionHandle),
    /// Everything the application wrote, and the FIN after it, has been acknowledged by the
    /// peer (after `shutdown_write`/`close` on a connection the application still holds): a
    /// server knows its response was fully delivered. Reported once per connection.
    SendComplete(ConnectionHandle),
    /// The peer sent FIN: once buffered data is read, `read` returns 0.
    ReadClosed(ConnectionHandle),
    /// The connection is over: `error` says why if it did not end normally. The handle stays
    /// valid (for `info`, remaining reads) until `close`.
    Closed { conn: ConnectionHandle, error: Option<ConnectionError> },
}

/// Queue entry: who has pending events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventSource {
    Connection(u32),
    Listener(u32),
}
