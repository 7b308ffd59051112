//! Second check: the RST bit (RFC 9293 §3.10.7.4, RFC 5961 §3.2).
//!
//! Only a RST whose sequence number is exactly RCV.NXT resets the connection; one elsewhere in
//! the window draws a (rate-limited) challenge ACK; one outside the window never gets here.

use super::{InputAction, InputContext};
use crate::tcp::connection::{Connection, ConnectionError};
use crate::tcp::state::State;
use crate::wire::TcpRepr;

impl Connection {
    pub(super) fn on_rst(&mut self, seg: &TcpRepr<'_>, ctx: &mut InputContext<'_>) -> InputAction {
        if seg.seq_number != self.rcv_nxt {
            self.challenge_ack(ctx);
            return InputAction::None;
        }
        match self.state {
            State::SynReceived if self.passive => {
                ctx.stats.attempt_fails += 1;
                self.terminate(None);
                InputAction::ReturnToListen
            }
            State::SynReceived => {
                ctx.stats.attempt_fails += 1;
                self.terminate(Some(ConnectionError::Refused));
                InputAction::None
            }
            State::Established | State::CloseWait => {
                ctx.stats.estab_resets += 1;
                self.terminate(Some(ConnectionError::Reset));
                InputAction::None
            }
            State::FinWait1 | State::FinWait2 => {
                self.terminate(Some(ConnectionError::Reset));
                InputAction::None
            }
            _ => {
                self.terminate(None);
                InputAction::None
            }
        }
    }
}
