//! The eleven connection states of RFC 9293 §3.3.2.
//!
//! LISTEN is represented by a listener (see [`super::listener`]), not by a connection, and a
//! connection in CLOSED is one that is finished but whose handle the application still holds.

use core::fmt;

/// RFC 9293 §3.3.2 connection states.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum State {
    Closed,
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

impl State {
    /// States after the handshake in which both sequence spaces are synchronized (§3.5).
    pub fn is_synchronized(self) -> bool {
        !matches!(self, State::Closed | State::Listen | State::SynSent | State::SynReceived)
    }
    /// States in which we may still send new data.
    pub fn can_send_data(self) -> bool {
        matches!(self, State::Established | State::CloseWait)
    }
    /// States in which the peer may still send us data (it has not sent FIN yet).
    pub fn can_receive_data(self) -> bool {
        matches!(self, State::Established | State::FinWait1 | State::FinWait2)
    }
    /// States counted by `CurrEstab` (RFC 1213 tcpCurrEstab).
    pub fn counts_as_established(self) -> bool {
        matches!(self, State::Established | State::CloseWait)
    }
    /// Name as `ss` prints it.
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Listen => "LISTEN",
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECV",
            State::Established => "ESTAB",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
