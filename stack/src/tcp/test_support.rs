//! Test-only constructors shared by the unit tests of `tcp/` (the equivalence proptests of the
//! fast paths start from a synchronized connection without running a handshake).

use super::buffer_pool::BufferPool;
use super::connection::{Connection, FourTuple, Origin};
use super::state::State;
use super::{SocketOptions, TcpConfig};
use crate::time::Instant;
use crate::wire::{Ipv4Address, SeqNumber};

/// An ESTABLISHED connection 198.18.0.2:80 ↔ 198.18.0.1:40000 created at `now` with `opts`:
/// ISS `iss` and IRS `irs` both acknowledged, nothing in flight either way, a 65,535-byte send
/// window and `rcv_window` bytes announced. Options (timestamps, SACK, MSS) are left as
/// `Connection::new` sets them; callers change what they test.
pub(crate) fn established(
    opts: SocketOptions,
    iss: SeqNumber,
    irs: SeqNumber,
    rcv_window: u32,
    now: Instant,
    pool: &mut BufferPool,
) -> Connection {
    let tuple = FourTuple {
        local: (Ipv4Address::new(198, 18, 0, 2), 80),
        remote: (Ipv4Address::new(198, 18, 0, 1), 40000),
    };
    let origin = Origin { iss, our_mss: 1460, ts_offset: 7 };
    let mut conn = Connection::new(tuple, opts, &TcpConfig::default(), origin, now, pool);
    conn.state = State::Established;
    conn.irs = irs;
    conn.rcv_nxt = irs + 1;
    conn.rcv_adv = conn.rcv_nxt + rcv_window;
    conn.last_ack_sent = conn.rcv_nxt;
    conn.snd_una = iss + 1;
    conn.snd_nxt = iss + 1;
    conn.snd_max = iss + 1;
    conn.snd_wnd = 65535;
    conn.max_snd_wnd = 65535;
    conn.snd_wl1 = irs;
    conn.snd_wl2 = iss + 1;
    conn
}
