//! Fourth check: a SYN in a synchronized state or SYN-RECEIVED (RFC 9293 §3.10.7.4 fourth,
//! RFC 5961 §4.2): never resets the connection, always a rate-limited challenge ACK, so a blind
//! attacker cannot tear the connection down with a guessed SYN.

use super::InputContext;
use crate::tcp::connection::Connection;

impl Connection {
    pub(super) fn on_syn_in_window(&mut self, ctx: &mut InputContext<'_>) {
        self.challenge_ack(ctx);
    }
}
