//! The state × event × variant matrix (RFC 9293 §3.10.7.4 with RFC 5961): every synchronized
//! state receives SYN, SYN-ACK, ACK, data, FIN and RST with an exact sequence number, one inside
//! the window, one outside it, and an unacceptable ACK field. The expected answer and next state
//! are written out in `expected` from the RFC rules, independently of the engine code.

mod support;
use linerate_stack::tcp::State;
use support::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    Syn,
    SynAck,
    Ack,
    Data,
    Fin,
    Rst,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Exact,
    InWindow,
    OutOfWindow,
    BadAck,
}

/// What we expect back: no segment, an ACK, or a RST (with or without ACK).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reply {
    Nothing,
    Ack,
    Rst,
}

/// `None` = the connection is gone (freed; its handle is stale).
type After = Option<State>;

/// Drives a fresh harness into `state`; returns it with the connection and the acknowledgment
/// number that acknowledges exactly what the peer has seen acknowledged (SND.UNA).
fn reach(state: State) -> (Harness, Conn, u32) {
    let mut h = Harness::new();
    let mut c = h.active_open();
    let mut una = c.our_seq;
    let shutdown = |h: &mut Harness, c: &Conn| {
        h.engine.shutdown_write(h.now, c.handle).unwrap();
        recv!(h, FIN | ACK);
    };
    let peer_fin = |h: &mut Harness, c: &mut Conn, ack: u32| {
        send!(h, FIN | ACK, seq = c.peer_seq, ack = ack);
        c.peer_seq += 1;
        let _ = h.recv();
    };
    match state {
        State::Established => {}
        State::FinWait1 => shutdown(&mut h, &c),
        State::FinWait2 => {
            shutdown(&mut h, &c);
            una += 1;
            send!(h, ACK, seq = c.peer_seq, ack = una);
        }
        State::CloseWait => peer_fin(&mut h, &mut c, una),
        State::Closing => {
            shutdown(&mut h, &c);
            peer_fin(&mut h, &mut c, una);
        }
        State::LastAck => {
            peer_fin(&mut h, &mut c, una);
            shutdown(&mut h, &c);
        }
        State::TimeWait => {
            shutdown(&mut h, &c);
            una += 1;
            peer_fin(&mut h, &mut c, una);
        }
        _ => unreachable!(),
    }
    assert_eq!(h.engine.state(c.handle).unwrap(), state, "setup");
    h.recv_nothing();
    (h, c, una)
}

fn expected(state: State, event: Event, variant: Variant) -> (Reply, After) {
    use Event::*;
    use Variant::*;
    let same = Some(state);
    let receiving = matches!(state, State::Established | State::FinWait1 | State::FinWait2);
    match (event, variant) {
        // RFC 5961 §3.2: only an exact RST resets; in-window draws a challenge ACK.
        (Rst, Exact) | (Rst, BadAck) => (Reply::Nothing, Some(State::Closed)),
        (Rst, InWindow) => (Reply::Ack, same),
        (Rst, OutOfWindow) => (Reply::Nothing, same),
        // RFC 6191-style reuse: a new SYN above RCV.NXT ends TIME-WAIT; port 80 has no listener
        // in this harness, so it is answered as a closed port.
        (Syn, InWindow) | (Syn, OutOfWindow) if state == State::TimeWait => (Reply::Rst, None),
        // RFC 5961 §4: any SYN in a synchronized state gets a (challenge) ACK.
        (Syn, _) | (SynAck, _) => (Reply::Ack, same),
        (Ack, Exact) | (Ack, InWindow) => (Reply::Nothing, same),
        // Unacceptable segments (§3.10.7.4 first check) and ACKs above SND.NXT (RFC 5961 §5.2).
        (_, OutOfWindow) | (_, BadAck) => (Reply::Ack, same),
        // In-order data is delayed-ACKed; out-of-order data is ACKed at once (RFC 5681 §4.2).
        (Data, Exact) => (Reply::Nothing, same),
        (Data, InWindow) if receiving => (Reply::Ack, same),
        (Data, InWindow) => (Reply::Nothing, same),
        (Fin, Exact) => match state {
            State::Established => (Reply::Ack, Some(State::CloseWait)),
            State::FinWait1 => (Reply::Ack, Some(State::Closing)),
            State::FinWait2 => (Reply::Ack, Some(State::TimeWait)),
            _ => (Reply::Ack, same),
        },
        // A FIN beyond RCV.NXT waits for the missing data: ACK what we have.
        (Fin, InWindow) => (Reply::Ack, same),
    }
}

fn deliver(h: &mut Harness, c: &Conn, una: u32, event: Event, variant: Variant) {
    let seq = match variant {
        Variant::Exact | Variant::BadAck => c.peer_seq,
        Variant::InWindow => c.peer_seq + 100,
        Variant::OutOfWindow => c.peer_seq.wrapping_add(3_000_000),
    };
    let ack = if variant == Variant::BadAck { una.wrapping_add(100_000) } else { una };
    let (flags, payload) = match event {
        Event::Syn if variant == Variant::BadAck => (SYN | ACK, vec![]),
        Event::Syn => (SYN, vec![]),
        Event::SynAck => (SYN | ACK, vec![]),
        Event::Ack => (ACK, vec![]),
        Event::Data => (ACK | PSH, vec![0x42; 10]),
        Event::Fin => (FIN | ACK, vec![]),
        Event::Rst if variant == Variant::BadAck => (RST | ACK, vec![]),
        Event::Rst => (RST, vec![]),
    };
    send!(h, flags, seq = seq, ack = ack, payload = payload);
}

#[test]
fn every_synchronized_state_against_every_segment() {
    let states = [
        State::Established,
        State::FinWait1,
        State::FinWait2,
        State::CloseWait,
        State::Closing,
        State::LastAck,
        State::TimeWait,
    ];
    let events = [Event::Syn, Event::SynAck, Event::Ack, Event::Data, Event::Fin, Event::Rst];
    let variants = [Variant::Exact, Variant::InWindow, Variant::OutOfWindow, Variant::BadAck];
    let mut failures = Vec::new();
    for state in states {
        for event in events {
            for variant in variants {
                let (mut h, c, una) = reach(state);
                deliver(&mut h, &c, una, event, variant);
                let reply = match h.recv() {
                    None => Reply::Nothing,
                    Some(s) if s.flags.rst() => Reply::Rst,
                    Some(s) if s.flags == ACK && s.payload.is_empty() => Reply::Ack,
                    Some(s) => panic!("{state:?} {event:?} {variant:?}: unexpected {s:?}"),
                };
                let after = h.engine.state(c.handle).ok();
                let want = expected(state, event, variant);
                if (reply, after) != want {
                    failures.push(format!(
                        "{state:?} + {event:?}/{variant:?}: got {:?}, want {want:?}",
                        (reply, after)
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

/// SYN-SENT (RFC 9293 §3.10.7.3) against each kind of segment.
#[test]
fn syn_sent_against_every_segment() {
    // (flags, ack offset from ISS+1 or None for "no ACK field", expected reply, state after)
    let cases: [(TcpFlagsCase, Reply, Option<State>); 9] = [
        ((SYN, None), Reply::Ack, Some(State::SynReceived)),
        ((SYN | ACK, Some(0)), Reply::Ack, Some(State::Established)),
        ((SYN | ACK, Some(100)), Reply::Rst, Some(State::SynSent)),
        ((ACK, Some(0)), Reply::Nothing, Some(State::SynSent)),
        ((ACK, Some(-1)), Reply::Rst, Some(State::SynSent)),
        ((FIN | ACK, Some(0)), Reply::Nothing, Some(State::SynSent)),
        ((RST, None), Reply::Nothing, Some(State::SynSent)),
        ((RST | ACK, Some(0)), Reply::Nothing, Some(State::Closed)),
        ((RST | ACK, Some(5)), Reply::Nothing, Some(State::SynSent)),
    ];
    for ((flags, ack), want_reply, want_state) in cases {
        let mut h = Harness::new();
        let c = h.engine.connect(h.now, (PEER_IP, 40000), Some(80), None).unwrap();
        let syn = recv!(h, SYN);
        let ack = ack.map(|d: i32| (syn.seq + 1).wrapping_add(d as u32)).unwrap_or(0);
        send!(h, flags, seq = 5000u32, ack = ack);
        let reply = match h.recv() {
            None => Reply::Nothing,
            Some(s) if s.flags.rst() => Reply::Rst,
            Some(s) if s.flags.syn() && s.flags.ack() => Reply::Ack,
            Some(s) if s.flags == ACK => Reply::Ack,
            Some(s) => panic!("unexpected {s:?}"),
        };
        assert_eq!(
            (reply, h.engine.state(c).ok()),
            (want_reply, want_state),
            "SYN-SENT + {flags:?} ack {ack}"
        );
    }
}

type TcpFlagsCase = (linerate_stack::wire::TcpFlags, Option<i32>);

/// SYN-RECEIVED (passive) against each kind of segment.
#[test]
fn syn_received_against_every_segment() {
    // (flags, seq offset from RCV.NXT, ack offset from ISS+1, payload, reply, connection alive)
    let cases: [(linerate_stack::wire::TcpFlags, i32, i32, usize, Reply, bool); 10] = [
        (SYN, -1, 0, 0, Reply::Ack, true),    // retransmitted SYN → SYN-ACK again
        (SYN, 50, 0, 0, Reply::Ack, true),    // other SYN in window → challenge ACK
        (ACK, 0, 0, 0, Reply::Nothing, true), // completes the handshake
        (ACK, 0, 9, 0, Reply::Rst, true),     // unacceptable ACK → RST <SEQ=SEG.ACK>
        (ACK | PSH, 0, 0, 10, Reply::Nothing, true), // data with the final ACK (delayed ACK)
        (FIN | ACK, 0, 0, 0, Reply::Ack, true), // FIN → CLOSE-WAIT
        (RST, 0, 0, 0, Reply::Nothing, false), // exact RST → back to LISTEN
        (RST, 50, 0, 0, Reply::Ack, true),    // in-window RST → challenge ACK
        (RST, 1_000_000, 0, 0, Reply::Nothing, true), // outside → ignored
        (NONE, 0, 0, 5, Reply::Nothing, true), // no ACK bit → dropped
    ];
    for (flags, dseq, dack, len, want_reply, alive) in cases {
        let mut h = Harness::new();
        h.engine.listen(80, 4, None).unwrap();
        send!(h, SYN, seq = 1000u32);
        let synack = recv!(h, SYN | ACK);
        let seq = 1001u32.wrapping_add(dseq as u32);
        send!(
            h,
            flags,
            seq = seq,
            ack = synack.seq.wrapping_add(1).wrapping_add(dack as u32),
            payload = vec![1u8; len]
        );
        let reply = match h.recv() {
            None => Reply::Nothing,
            Some(s) if s.flags.rst() => Reply::Rst,
            Some(s) if s.flags.ack() && s.payload.is_empty() => Reply::Ack,
            Some(s) => panic!("unexpected {s:?}"),
        };
        assert_eq!(reply, want_reply, "SYN-RECEIVED + {flags:?} seq {dseq:+} ack {dack:+}");
        assert_eq!(h.engine.connection_count() == 1, alive, "SYN-RECEIVED + {flags:?} seq {dseq:+}");
    }
}
