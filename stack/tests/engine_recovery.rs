//! Crafted-segment tests of loss recovery and congestion control as the engine drives them:
//! SACK-driven retransmission of exactly the holes (RFC 6675), a tail loss probe instead of an
//! RTO (RFC 8985 §7), D-SACK undo (RFC 2883/3708), Eifel undo of a timeout or of fast
//! recovery (RFC 3522), PRR during recovery (RFC 6937), and pacing releases visible in
//! `next_timeout`.

mod support;
use linerate_stack::engine::EngineConfig;
use linerate_stack::tcp::{CongestionAlgorithm, SocketOptions};
use linerate_stack::time::Duration;
use support::*;

const MSS: u32 = 1460;
const RTT: Duration = Duration::from_millis(50);

/// A harness whose peer negotiates SACK (no timestamps, no window scaling).
fn sack_config() -> EngineConfig {
    let mut cfg = test_config();
    cfg.tcp.sack = true;
    cfg
}

/// [`sack_config`] with timestamps (RFC 7323) too, which [`sack_open`]'s peer then agrees to.
fn sack_ts_config() -> EngineConfig {
    let mut cfg = sack_config();
    cfg.tcp.timestamps = true;
    cfg
}

/// [`sack_config`] with pacing off (the default is on), for tests that count what one ACK
/// releases at once.
fn unpaced_sack_config() -> EngineConfig {
    let mut cfg = sack_config();
    cfg.tcp.default_socket.pacing = false;
    cfg
}

/// Active open with a 50 ms handshake RTT and SACK permitted by the peer, which also agrees
/// to timestamps (RFC 7323, TSval 100) when our SYN offers them.
fn sack_open(h: &mut Harness, opts: Option<SocketOptions>) -> Conn {
    let handle = h.engine.connect(h.now, (PEER_IP, h.peer_port), Some(h.local_port), opts).expect("connect");
    let syn = recv!(h, SYN);
    assert!(syn.sack_perm, "we offer SACK");
    h.advance(RTT);
    let ts = syn.ts.map(|(tsval, _)| (100u32, tsval));
    send!(h, SYN | ACK, seq = 5000u32, ack = syn.seq + 1, mss = Some(1460u16), sack_perm = true, ts = ts);
    recv!(h, ACK, seq = syn.seq + 1, ack = 5001u32);
    Conn { handle, our_seq: syn.seq + 1, peer_seq: 5001 }
}

/// Sends `n` full segments' worth of data and collects what the engine puts on the wire.
fn write_segments(h: &mut Harness, c: &Conn, n: u32) -> Vec<Seg> {
    h.engine.write(h.now, c.handle, &vec![9u8; (n * MSS) as usize]).unwrap();
    std::iter::from_fn(|| h.recv()).collect()
}

/// The next segment, now or after timers due within `limit` (e.g. RACK's reordering window).
fn recv_within(h: &mut Harness, limit: Duration) -> Seg {
    let start = h.now;
    loop {
        if let Some(s) = h.recv() {
            return s;
        }
        h.advance_to_timeout();
        assert!(h.now - start <= limit, "nothing sent within {limit:?}");
    }
}

fn seg_start(c: &Conn, i: u32) -> u32 {
    c.our_seq + i * MSS
}

#[test]
fn sack_retransmits_exactly_the_holes() {
    let mut h = Harness::with_config(sack_config());
    let c = sack_open(&mut h, None);
    let sent = write_segments(&mut h, &c, 10);
    assert_eq!(sent.len(), 10, "IW10");
    h.advance(RTT);
    // Segments 1 and 4 are lost; everything else arrives and is SACKed.
    send!(
        h,
        ACK,
        seq = c.peer_seq,
        ack = seg_start(&c, 1),
        sack = vec![(seg_start(&c, 2), seg_start(&c, 4))]
    );
    send!(
        h,
        ACK,
        seq = c.peer_seq,
        ack = seg_start(&c, 1),
        sack = vec![(seg_start(&c, 5), seg_start(&c, 10)), (seg_start(&c, 2), seg_start(&c, 4))]
    );
    let resent: Vec<u32> = std::iter::from_fn(|| h.recv()).map(|s| s.seq).collect();
    assert_eq!(resent, vec![seg_start(&c, 1), seg_start(&c, 4)], "only the two holes");
    let stats = h.engine.stats();
    assert_eq!((stats.fast_retrans, stats.timeouts, stats.reno_recovery), (2, 0, 1));
    assert_eq!(stats.sack_blocks_received, 3);
    let info = h.engine.info(h.now, c.handle).unwrap();
    assert!(info.in_recovery);
    assert_eq!(info.sacked, 7);
    // Both retransmissions arrive: recovery ends, nothing else is resent.
    h.advance(RTT);
    send!(h, ACK, seq = c.peer_seq, ack = seg_start(&c, 10));
    h.recv_nothing();
    let info = h.engine.info(h.now, c.handle).unwrap();
    assert!(!info.in_recovery);
    assert_eq!((info.unacked, info.total_retrans), (0, 2));
}

#[test]
fn hostile_sack_blocks_are_counted_and_ignored() {
    let mut h = Harness::with_config(sack_config());
    let c = sack_open(&mut h, None);
    write_segments(&mut h, &c, 4);
    h.advance(RTT);
    // Beyond SND.NXT, and far below SND.UNA (not a D-SACK of anything we sent).
    let beyond = (seg_start(&c, 100), seg_start(&c, 101));
    let below = (c.our_seq.wrapping_sub(1 << 30), c.our_seq.wrapping_sub((1 << 30) - 100));
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq, sack = vec![beyond, below]);
    h.recv_nothing();
    let stats = h.engine.stats();
    assert_eq!(stats.sack_blocks_received, 2);
    assert!(stats.sack_blocks_ignored >= 1, "{stats:?}");
    assert_eq!(h.engine.info(h.now, c.handle).unwrap().sacked, 0);
}

#[test]
fn tail_loss_is_repaired_by_a_probe_at_two_srtt() {
    let mut h = Harness::with_config(sack_config());
    let c = sack_open(&mut h, None);
    write_segments(&mut h, &c, 10);
    h.advance(RTT);
    // The last two segments are lost: no SACK can tell, only a timer can.
    send!(h, ACK, seq = c.peer_seq, ack = seg_start(&c, 8));
    let info = h.engine.info(h.now, c.handle).unwrap();
    assert_eq!(info.rtt, Some(RTT));
    assert!(info.rto >= Duration::from_millis(200));
    // RFC 8985 §7.2: PTO = 2·SRTT with more than one segment in flight, well before the RTO.
    let waited = h.advance_to_timeout();
    assert_eq!(waited, RTT.saturating_mul(2));
    let probe = recv!(h, ACK | PSH, seq = seg_start(&c, 9));
    assert_eq!(probe.payload.len() as u32, MSS);
    assert_eq!(h.engine.stats().tlp_probes, 1);
    // The probe's SACK reveals segment 8 as lost: it is resent at once, not after an RTO.
    h.advance(RTT);
    send!(
        h,
        ACK,
        seq = c.peer_seq,
        ack = seg_start(&c, 8),
        sack = vec![(seg_start(&c, 9), seg_start(&c, 10))]
    );
    let resent = recv_within(&mut h, RTT);
    assert_eq!(resent.seq, seg_start(&c, 8));
    send!(h, ACK, seq = c.peer_seq, ack = seg_start(&c, 10));
    assert_eq!(h.engine.stats().timeouts, 0);
    assert_eq!(h.engine.info(h.now, c.handle).unwrap().unacked, 0);
}

#[test]
fn dsack_undoes_a_spurious_fast_retransmit() {
    let mut h = Harness::with_config(sack_config());
    let c = sack_open(&mut h, None);
    write_segments(&mut h, &c, 10);
    h.advance(RTT);
    let before = h.engine.info(h.now, c.handle).unwrap();
    // Segment 1 is only late: the others are SACKed and RACK declares it lost.
    send!(
        h,
        ACK,
        seq = c.peer_seq,
        ack = seg_start(&c, 1),
        sack = vec![(seg_start(&c, 2), seg_start(&c, 10))]
    );
    let resent = recv_within(&mut h, RTT);
    assert_eq!(resent.seq, seg_start(&c, 1));
    assert_eq!((h.engine.stats().fast_retrans, h.engine.stats().timeouts), (1, 0));
    let reduced = h.engine.info(h.now, c.handle).unwrap();
    assert!(reduced.in_recovery);
    assert!(reduced.ssthresh < before.ssthresh, "{reduced:?}");
    // The original arrives after all; the retransmission comes back as a D-SACK (RFC 2883).
    h.advance(RTT);
    send!(
        h,
        ACK,
        seq = c.peer_seq,
        ack = seg_start(&c, 10),
        sack = vec![(seg_start(&c, 1), seg_start(&c, 2))]
    );
    let undone = h.engine.info(h.now, c.handle).unwrap();
    assert_eq!(h.engine.stats().spurious_retrans_undone, 1);
    assert_eq!(undone.dsack_received, 1);
    assert!(!undone.in_recovery);
    assert_eq!(undone.ssthresh, before.ssthresh, "the reduction is undone");
    assert!(undone.cwnd >= before.cwnd, "cwnd restored: {} < {}", undone.cwnd, before.cwnd);
    assert!(undone.reordering_seen, "the D-SACK taught RACK about reordering");
}

#[test]
fn prr_spreads_the_reduction_over_the_recovery_round() {
    let mut cfg = unpaced_sack_config();
    cfg.tcp.initial_window = 20;
    cfg.tcp.default_socket.congestion = CongestionAlgorithm::NewReno;
    let mut h = Harness::with_config(cfg);
    let c = sack_open(&mut h, None);
    h.engine.write(h.now, c.handle, &vec![5u8; (60 * MSS) as usize]).unwrap();
    let first: Vec<Seg> = std::iter::from_fn(|| h.recv()).collect();
    assert_eq!(first.len(), 20);
    h.advance(RTT);
    // Segment 0 is lost; the other 19 arrive one ACK each.
    let (mut sent_in_recovery, mut delivered_in_recovery, mut retransmitted) = (0, 0, false);
    for i in 1..20 {
        send!(
            h,
            ACK,
            seq = c.peer_seq,
            ack = c.our_seq,
            sack = vec![(seg_start(&c, 1), seg_start(&c, i + 1))]
        );
        let out: Vec<Seg> = std::iter::from_fn(|| h.recv()).collect();
        retransmitted |= out.iter().any(|s| s.seq == c.our_seq);
        if h.engine.info(h.now, c.handle).unwrap().in_recovery {
            sent_in_recovery += out.len();
            delivered_in_recovery += 1;
        } else {
            // A SACK frees one segment of pipe; slow start grows cwnd by the SACKed bytes.
            assert!(out.len() <= 2, "before recovery: {out:?}");
        }
    }
    assert!(retransmitted, "the hole was resent");
    assert!(delivered_in_recovery >= 15, "loss detected after a few SACKs: {delivered_in_recovery}");
    // NewReno halves: PRR sends about one segment per two delivered (RFC 6937 §3).
    let half = delivered_in_recovery / 2;
    assert!(
        (half - 1..=half + 2).contains(&sent_in_recovery),
        "PRR: sent {sent_in_recovery} for {delivered_in_recovery} delivered"
    );
}

#[test]
fn pacing_holds_segments_until_a_deadline_shown_by_next_timeout() {
    // A window (IW20) larger than the 10-segment restart window, so the pacer has work.
    let mut cfg = sack_config();
    cfg.tcp.initial_window = 20;
    let mut h = Harness::with_config(cfg);
    let opts = SocketOptions { pacing: true, ..SocketOptions::default() };
    let c = sack_open(&mut h, Some(opts));
    // One round trip gives the controller an SRTT, hence a pacing rate (cwnd / srtt · 2).
    write_segments(&mut h, &c, 1);
    h.advance(RTT);
    send!(h, ACK, seq = c.peer_seq, ack = seg_start(&c, 1));
    let rate = h.engine.info(h.now, c.handle).unwrap().pacing_rate.expect("paced");
    assert!(rate > 100_000 && rate < 10_000_000, "{rate}");
    let c1 = Conn { our_seq: seg_start(&c, 1), ..c };
    // Nothing in flight: the restart window (10 segments, RFC 5681 §4.1) leaves at once, then
    // a burst of a few segments, then a wait.
    let burst = write_segments(&mut h, &c1, 20);
    assert!((10..14).contains(&burst.len()), "restart window + a burst, then a wait: {}", burst.len());
    let deadline = h.engine.next_timeout().expect("pacing timer");
    let gap = deadline - h.now;
    assert!(gap > Duration::ZERO && gap < Duration::from_millis(20), "pacing gap {gap:?}, not the RTO");
    assert!(h.engine.stats().pacing_delayed >= 1);
    let mut total = burst.len();
    let mut waits = 0;
    while total < 20 {
        h.advance_to_timeout();
        waits += 1;
        total += std::iter::from_fn(|| h.recv()).count();
        assert!(waits < 20, "pacing must release everything");
    }
    assert_eq!(total, 20);
    assert!(waits >= 2, "spread over several releases");
    assert_eq!(h.engine.stats().timeouts, 0);
}

#[test]
fn bbr_is_selectable_per_connection_and_always_paces() {
    let mut h = Harness::with_config(sack_config());
    let opts = SocketOptions { congestion: CongestionAlgorithm::Bbr, ..SocketOptions::default() };
    let c = sack_open(&mut h, Some(opts));
    let info = h.engine.info(h.now, c.handle).unwrap();
    assert_eq!(info.congestion, CongestionAlgorithm::Bbr);
    assert_eq!(info.congestion.to_string(), "bbr");
    assert_eq!(info.bbr_state, Some("startup"));
    assert!(info.pacing_rate.is_some(), "BBR paces without being asked");
    write_segments(&mut h, &c, 4);
    h.advance(RTT);
    send!(h, ACK, seq = c.peer_seq, ack = seg_start(&c, 4));
    let info = h.engine.info(h.now, c.handle).unwrap();
    assert!(info.delivery_rate > 0 && info.min_rtt.is_some(), "{info:?}");
    // The default stays CUBIC.
    let mut h2 = Harness::with_config(sack_config());
    h2.peer_port += 1;
    let c2 = sack_open(&mut h2, None);
    assert_eq!(h2.engine.info(h2.now, c2.handle).unwrap().congestion, CongestionAlgorithm::Cubic);
}

#[test]
fn resending_the_head_restarts_the_retransmission_timer() {
    let mut h = Harness::with_config(sack_config());
    let c = sack_open(&mut h, None);
    write_segments(&mut h, &c, 10);
    h.advance(Duration::from_millis(150));
    // Segment 0 is lost and everything after it is SACKed, late (the path got slower).
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq, sack = vec![(seg_start(&c, 1), seg_start(&c, 10))]);
    recv!(h, ACK, seq = c.our_seq);
    let rto = h.engine.info(h.now, c.handle).unwrap().rto;
    // The cumulative ACK cannot move before the resent head returns: the RTO counts from the
    // resend (Linux does the same), not from the original 150 ms ago.
    let wait = h.engine.next_timeout().expect("RTO armed") - h.now;
    // (Rounded up to the engine's 1 ms timer tick.)
    assert!(wait >= rto && wait <= rto + Duration::from_millis(1), "timer restarted by the resend: {wait:?}");
    h.advance(Duration::from_millis(120));
    send!(h, ACK, seq = c.peer_seq, ack = seg_start(&c, 10));
    assert_eq!(h.engine.stats().timeouts, 0);
    assert_eq!(h.engine.info(h.now, c.handle).unwrap().unacked, 0);
}

/// A paced connection (CUBIC with `pacing`) whose controller has an SRTT: one segment goes out
/// and is acknowledged one RTT later. Returns the connection shifted past that segment.
fn paced_open(h: &mut Harness) -> Conn {
    let opts = SocketOptions { pacing: true, ..SocketOptions::default() };
    let c = sack_open(h, Some(opts));
    write_segments(h, &c, 1);
    h.advance(RTT);
    send!(h, ACK, seq = c.peer_seq, ack = seg_start(&c, 1));
    assert!(h.engine.info(h.now, c.handle).unwrap().pacing_rate.is_some(), "paced");
    Conn { our_seq: seg_start(&c, 1), ..c }
}

#[test]
fn tail_probe_waits_for_the_pacing_release() {
    let mut h = Harness::with_config(sack_config());
    let c = paced_open(&mut h);
    // One segment in flight: PTO = 2·SRTT + WCDelAckT = 300 ms, capped by the RTO deadline
    // (200 ms from now, RFC 8985 §7.2).
    assert_eq!(write_segments(&mut h, &c, 1).len(), 1);
    let pto = h.engine.next_timeout().expect("PTO armed");
    // Just before the PTO the application writes four more segments: a burst leaves, the rest
    // waits for the pacer, whose release falls after the PTO.
    h.advance(pto - h.now - Duration::from_millis(1));
    let next = Conn { our_seq: seg_start(&c, 1), ..c };
    let burst = write_segments(&mut h, &next, 4);
    assert!(!burst.is_empty() && burst.len() < 4, "a burst, then a pacing hold: {}", burst.len());
    let probe_seq = burst.last().unwrap().seq + MSS;
    assert_eq!(h.advance_to_timeout(), Duration::from_millis(1), "the PTO fires first");
    // The probe is due (new data, RFC 8985 §7.3) but the pacer still holds the connection.
    h.recv_nothing();
    let held_at = h.now;
    let wait = h.advance_to_timeout();
    assert!(wait > Duration::ZERO && wait < Duration::from_millis(5), "pacing release {wait:?}");
    let probe = recv!(h, ACK | PSH, seq = probe_seq);
    assert!(h.now > held_at);
    assert_eq!(probe.payload.len() as u32, MSS);
    let stats = h.engine.stats();
    assert_eq!((stats.tlp_probes, stats.timeouts), (1, 0), "{stats:?}");
    // RFC 8985 §7.3: after the probe the RTO, not a second probe, guards the flight.
    // (The probe moved the pacer on: its release comes first and sends nothing.)
    let probe_at = h.now;
    while h.engine.next_timeout().unwrap() - h.now < RTT {
        h.advance_to_timeout();
        h.recv_nothing();
    }
    let rto = h.engine.info(h.now, c.handle).unwrap().rto;
    assert!(h.engine.next_timeout().unwrap() - probe_at >= rto);
    h.advance(RTT);
    send!(h, ACK, seq = c.peer_seq, ack = probe_seq + MSS);
    assert_eq!(h.engine.info(h.now, c.handle).unwrap().unacked, 0);
}

#[test]
fn paced_tail_probe_may_exceed_cwnd_once() {
    let mut h = Harness::with_config(sack_config());
    let c = paced_open(&mut h);
    // Far more data than the window: drain the pacer until the window is full.
    h.engine.write(h.now, c.handle, &vec![3u8; (40 * MSS) as usize]).unwrap();
    let mut sent = std::iter::from_fn(|| h.recv()).count();
    while h.engine.next_timeout().is_some_and(|t| t - h.now < RTT) {
        h.advance_to_timeout();
        sent += std::iter::from_fn(|| h.recv()).count();
    }
    let info = h.engine.info(h.now, c.handle).unwrap();
    assert_eq!(sent as u32 * MSS, info.cwnd, "the whole window, nothing more");
    // No ACK comes back: the PTO (2·SRTT after the last send) sends one new segment beyond
    // cwnd (RFC 8985 §7.3 allows it), and only one.
    h.advance_to_timeout();
    let probe = recv!(h, ACK, seq = seg_start(&c, sent as u32));
    assert_eq!(probe.payload.len() as u32, MSS);
    h.recv_nothing();
    let info = h.engine.info(h.now, c.handle).unwrap();
    assert!(info.pipe > info.cwnd, "{} > {}", info.pipe, info.cwnd);
    assert_eq!(h.engine.stats().tlp_probes, 1);
    assert!(h.engine.next_timeout().unwrap() - h.now >= info.rto, "then the RTO");
}

fn set_congestion(h: &mut Harness, c: &Conn, congestion: CongestionAlgorithm) {
    let opts = SocketOptions { congestion, ..h.engine.socket_options(c.handle).unwrap() };
    h.engine.set_socket_options(h.now, c.handle, opts).unwrap();
}

#[test]
fn congestion_control_switches_on_a_live_connection() {
    let mut h = Harness::with_config(unpaced_sack_config());
    let c = sack_open(&mut h, None);
    write_segments(&mut h, &c, 10);
    h.advance(RTT);
    send!(h, ACK, seq = c.peer_seq, ack = seg_start(&c, 10));
    let cubic = h.engine.info(h.now, c.handle).unwrap();
    assert_eq!((cubic.congestion, cubic.pacing_rate), (CongestionAlgorithm::Cubic, None));
    // Like TCP_CONGESTION on an established Linux socket: BBR takes over the window and paces
    // at once (2.77 · cwnd / srtt), starting in Startup.
    set_congestion(&mut h, &c, CongestionAlgorithm::Bbr);
    let bbr = h.engine.info(h.now, c.handle).unwrap();
    assert_eq!(bbr.congestion.to_string(), "bbr");
    assert_eq!((bbr.cwnd, bbr.bbr_state), (cubic.cwnd, Some("startup")));
    let rate = bbr.pacing_rate.expect("BBR always paces");
    let expected = u64::from(cubic.cwnd) * 1000 / RTT.as_millis() * 277 / 100;
    assert!(rate.abs_diff(expected) < expected / 50, "{rate} vs {expected}");
    // Data keeps flowing, paced, and BBR's model fills from the ACKs.
    let c10 = Conn { our_seq: seg_start(&c, 10), ..c };
    let burst = write_segments(&mut h, &c10, 8);
    assert!(!burst.is_empty() && burst.len() < 8, "paced: {}", burst.len());
    let start = h.now;
    let mut sent = burst.len() as u32;
    while sent < 8 {
        h.advance_to_timeout();
        sent += std::iter::from_fn(|| h.recv()).count() as u32;
    }
    assert!(h.now - start < Duration::from_millis(25), "paced over {:?}", h.now - start);
    h.advance(RTT);
    send!(h, ACK, seq = c.peer_seq, ack = seg_start(&c, 18));
    let bbr = h.engine.info(h.now, c.handle).unwrap();
    assert!(bbr.bbr_bw.unwrap() > 0 && bbr.min_rtt.is_some(), "{bbr:?}");
    // And on to NewReno: the window stays, pacing goes (the socket did not ask for it).
    set_congestion(&mut h, &c, CongestionAlgorithm::NewReno);
    let reno = h.engine.info(h.now, c.handle).unwrap();
    assert_eq!(
        (reno.congestion, reno.cwnd, reno.pacing_rate),
        (CongestionAlgorithm::NewReno, bbr.cwnd, None)
    );
    assert_eq!(reno.bbr_state, None);
    let c18 = Conn { our_seq: seg_start(&c, 18), ..c };
    assert_eq!(write_segments(&mut h, &c18, 4).len(), 4, "unpaced again");
    assert_eq!(h.engine.stats().timeouts, 0);
}

#[test]
fn switching_during_recovery_keeps_the_episode() {
    let mut h = Harness::with_config(sack_config());
    let c = sack_open(&mut h, None);
    write_segments(&mut h, &c, 10);
    h.advance(RTT);
    // Segment 0 is lost: RACK marks it once the others are SACKed, recovery starts.
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq, sack = vec![(seg_start(&c, 1), seg_start(&c, 10))]);
    let resent = recv_within(&mut h, RTT);
    assert_eq!(resent.seq, c.our_seq);
    let before = h.engine.info(h.now, c.handle).unwrap();
    assert!(before.in_recovery);
    set_congestion(&mut h, &c, CongestionAlgorithm::NewReno);
    let during = h.engine.info(h.now, c.handle).unwrap();
    assert!(during.in_recovery);
    assert_eq!((during.congestion, during.ssthresh), (CongestionAlgorithm::NewReno, before.ssthresh));
    // The repair arrives: the episode ends at the threshold CUBIC chose.
    h.advance(RTT);
    send!(h, ACK, seq = c.peer_seq, ack = seg_start(&c, 10));
    let after = h.engine.info(h.now, c.handle).unwrap();
    assert!(!after.in_recovery);
    assert_eq!(after.cwnd, before.ssthresh);
    assert_eq!((after.unacked, h.engine.stats().timeouts), (0, 0));
}

#[test]
fn buffer_sizes_cannot_change_on_a_live_connection() {
    let mut h = Harness::with_config(sack_config());
    let c = sack_open(&mut h, None);
    let opts = h.engine.socket_options(c.handle).unwrap();
    for bigger in [
        SocketOptions { recv_buffer: opts.recv_buffer * 2, nodelay: true, ..opts },
        SocketOptions { send_buffer: opts.send_buffer / 2, nodelay: true, ..opts },
    ] {
        let err = h.engine.set_socket_options(h.now, c.handle, bigger).unwrap_err();
        assert_eq!(err, linerate_stack::Error::BufferResize);
        assert!(err.to_string().contains("listen or connect"), "{err}");
    }
    assert_eq!(h.engine.socket_options(c.handle).unwrap(), opts, "nothing changed");
}

#[test]
fn pacing_switches_on_and_off_without_resetting_the_controller() {
    // A window (IW20) larger than the 10-segment restart window, so the pacer has work.
    let mut cfg = unpaced_sack_config();
    cfg.tcp.initial_window = 20;
    let mut h = Harness::with_config(cfg);
    let c = sack_open(&mut h, None);
    write_segments(&mut h, &c, 10);
    h.advance(RTT);
    send!(h, ACK, seq = c.peer_seq, ack = seg_start(&c, 10));
    let before = h.engine.info(h.now, c.handle).unwrap();
    assert_eq!(before.pacing_rate, None);
    let opts = SocketOptions { pacing: true, ..h.engine.socket_options(c.handle).unwrap() };
    h.engine.set_socket_options(h.now, c.handle, opts).unwrap();
    let paced = h.engine.info(h.now, c.handle).unwrap();
    // CUBIC keeps its state; its rate is cwnd / srtt · 2 in slow start, at once.
    assert_eq!(
        (paced.congestion, paced.cwnd, paced.ssthresh),
        (before.congestion, before.cwnd, before.ssthresh)
    );
    let expected = u64::from(before.cwnd) * 1000 / RTT.as_millis() * 2;
    assert_eq!(paced.pacing_rate, Some(expected));
    let c10 = Conn { our_seq: seg_start(&c, 10), ..c };
    // Beyond the 10-segment restart window, the pacer holds the rest.
    let burst = write_segments(&mut h, &c10, 20);
    assert!(burst.len() < 20, "paced: {}", burst.len());
    // Off again: whatever was held goes now.
    let opts = SocketOptions { pacing: false, ..opts };
    h.engine.set_socket_options(h.now, c.handle, opts).unwrap();
    assert_eq!(h.engine.info(h.now, c.handle).unwrap().pacing_rate, None);
    let rest = std::iter::from_fn(|| h.recv()).count();
    assert_eq!(burst.len() + rest, 20);
}

#[test]
fn a_controller_chosen_before_the_handshake_completes_is_used() {
    let mut h = Harness::with_config(sack_config());
    let handle = h.engine.connect(h.now, (PEER_IP, h.peer_port), Some(h.local_port), None).expect("connect");
    let syn = recv!(h, SYN);
    let opts =
        SocketOptions { congestion: CongestionAlgorithm::Bbr, ..h.engine.socket_options(handle).unwrap() };
    h.engine.set_socket_options(h.now, handle, opts).unwrap();
    assert_eq!(h.engine.info(h.now, handle).unwrap().congestion, CongestionAlgorithm::Bbr);
    h.advance(RTT);
    send!(h, SYN | ACK, seq = 5000u32, ack = syn.seq + 1, mss = Some(1460u16), sack_perm = true);
    recv!(h, ACK, seq = syn.seq + 1, ack = 5001u32);
    let info = h.engine.info(h.now, handle).unwrap();
    assert_eq!((info.congestion, info.bbr_state), (CongestionAlgorithm::Bbr, Some("startup")));
    assert!(info.pacing_rate.is_some());
}

#[test]
fn switching_after_a_timeout_slow_starts_from_the_collapsed_window() {
    let mut h = Harness::with_config(sack_config());
    let c = sack_open(&mut h, None);
    write_segments(&mut h, &c, 10);
    // Nothing comes back: the tail loss probe, then the RTO.
    h.advance_to_timeout();
    assert_eq!(std::iter::from_fn(|| h.recv()).count(), 1, "the probe");
    while h.engine.stats().timeouts == 0 {
        h.advance_to_timeout();
    }
    recv!(h, ACK, seq = c.our_seq);
    let before = h.engine.info(h.now, c.handle).unwrap();
    assert!(before.in_recovery && before.cwnd < before.ssthresh, "{before:?}");
    set_congestion(&mut h, &c, CongestionAlgorithm::NewReno);
    let after = h.engine.info(h.now, c.handle).unwrap();
    assert_eq!((after.cwnd, after.ssthresh, after.in_slow_start), (before.cwnd, before.ssthresh, true));
    // Everything arrives: slow start grows the window; it does not jump to ssthresh.
    h.advance(RTT);
    send!(h, ACK, seq = c.peer_seq, ack = seg_start(&c, 10));
    let done = h.engine.info(h.now, c.handle).unwrap();
    assert!(!done.in_recovery);
    assert!(done.cwnd > before.cwnd && done.cwnd < before.ssthresh, "{} -> {}", before.cwnd, done.cwnd);
}

#[test]
fn eifel_undoes_a_spurious_timeout_with_the_window_and_without_the_backoff() {
    let mut h = Harness::with_config(sack_ts_config());
    let c = sack_open(&mut h, None);
    let sent = write_segments(&mut h, &c, 10);
    let original_ts = |i: usize| sent[i].ts.expect("timestamps on").0;
    h.advance(RTT);
    send!(h, ACK, seq = c.peer_seq, ack = seg_start(&c, 2), ts = Some((101u32, original_ts(1))));
    let before = h.engine.info(h.now, c.handle).unwrap();
    // A delay spike: nothing more comes back; the probe, then the RTO fire.
    while h.engine.stats().timeouts == 0 {
        h.advance_to_timeout();
        while h.recv().is_some() {}
    }
    let collapsed = h.engine.info(h.now, c.handle).unwrap();
    assert!(collapsed.in_recovery && collapsed.backoff == 1, "{collapsed:?}");
    assert!(collapsed.cwnd < before.cwnd && collapsed.ssthresh < before.ssthresh, "{collapsed:?}");
    let retrans_after_rto = h.engine.stats().retrans_segs;
    // The originals of 2 and 3 arrive after all: the ACK echoes their TSval (RFC 3522).
    h.advance(RTT);
    send!(h, ACK, seq = c.peer_seq, ack = seg_start(&c, 4), ts = Some((102u32, original_ts(3))));
    let undone = h.engine.info(h.now, c.handle).unwrap();
    assert_eq!(h.engine.stats().spurious_rto_undone, 1);
    assert_eq!(h.engine.stats().spurious_retrans_undone, 0, "counted as a timeout undo only");
    assert_eq!(undone.spurious_rto_undone, 1);
    assert!(!undone.in_recovery, "{undone:?}");
    assert_eq!(undone.backoff, 0, "the backoff is cleared");
    assert_eq!(undone.ssthresh, before.ssthresh, "the reduction is undone");
    assert!(undone.cwnd >= before.cwnd, "cwnd restored: {} < {}", undone.cwnd, before.cwnd);
    assert_eq!(undone.lost, 0, "segments 4..10 are not marked lost any more");
    // Segments 4..10 are not resent: the rest of the flight's ACK ends the story.
    while h.recv().is_some() {}
    assert_eq!(h.engine.stats().retrans_segs, retrans_after_rto, "nothing resent after the undo");
    send!(h, ACK, seq = c.peer_seq, ack = seg_start(&c, 10), ts = Some((103u32, original_ts(9))));
    assert_eq!(h.engine.info(h.now, c.handle).unwrap().unacked, 0);
    assert_eq!(h.engine.stats().retrans_segs, retrans_after_rto);
}

/// Segment `i`'s first byte when timestamps take 12 bytes of each segment's MSS.
fn ts_seg(c: &Conn, i: u32) -> u32 {
    c.our_seq + i * (MSS - 12)
}

/// Ten segments with SACK and timestamps; segment 1 held back, 2..10 SACKed, RACK resends 1.
/// Returns the connection, the TSvals of the originals and of the retransmission, and the
/// connection's info before the reduction.
fn reordered_fast_retransmit(h: &mut Harness) -> (Conn, Vec<u32>, u32, linerate_stack::tcp::TcpInfo) {
    let c = sack_open(h, None);
    let sent = write_segments(h, &c, 10);
    let original_ts: Vec<u32> = sent.iter().map(|s| s.ts.expect("timestamps on").0).collect();
    h.advance(RTT);
    let before = h.engine.info(h.now, c.handle).unwrap();
    send!(
        h,
        ACK,
        seq = c.peer_seq,
        ack = ts_seg(&c, 1),
        sack = vec![(ts_seg(&c, 2), ts_seg(&c, 10))],
        ts = Some((101u32, original_ts[0]))
    );
    let resent = recv_within(h, RTT);
    assert_eq!(resent.seq, ts_seg(&c, 1));
    assert!(h.engine.info(h.now, c.handle).unwrap().in_recovery);
    (c, original_ts, resent.ts.expect("timestamps on").0, before)
}

#[test]
fn eifel_undoes_a_spurious_fast_retransmit_before_its_dsack() {
    let mut h = Harness::with_config(sack_ts_config());
    let (c, original_ts, _, before) = reordered_fast_retransmit(&mut h);
    // The late original fills the hole: the cumulative ACK echoes its TSval (RFC 7323 §4.3),
    // well before the D-SACK for the retransmission could come back.
    h.advance(Duration::from_millis(5));
    send!(h, ACK, seq = c.peer_seq, ack = ts_seg(&c, 10), ts = Some((102u32, original_ts[1])));
    let undone = h.engine.info(h.now, c.handle).unwrap();
    assert_eq!(h.engine.stats().spurious_retrans_undone, 1);
    assert_eq!(h.engine.stats().spurious_rto_undone, 0);
    assert_eq!(undone.dsack_received, 0, "no D-SACK was needed");
    assert!(!undone.in_recovery);
    assert_eq!(undone.ssthresh, before.ssthresh, "the reduction is undone");
    assert!(undone.cwnd >= before.cwnd, "cwnd restored: {} < {}", undone.cwnd, before.cwnd);
    assert!(undone.reordering_seen, "the late original taught RACK about reordering");
    // The D-SACK still comes: no second undo.
    send!(
        h,
        ACK,
        seq = c.peer_seq,
        ack = ts_seg(&c, 10),
        sack = vec![(ts_seg(&c, 1), ts_seg(&c, 2))],
        ts = Some((103u32, original_ts[1]))
    );
    assert_eq!(h.engine.stats().spurious_retrans_undone, 1);
}

#[test]
fn an_ack_echoing_the_fast_retransmission_keeps_the_reduction() {
    let mut h = Harness::with_config(sack_ts_config());
    let (c, _, resent_ts, before) = reordered_fast_retransmit(&mut h);
    // The retransmission filled the hole (a genuine loss): the echo is its TSval.
    h.advance(RTT);
    send!(h, ACK, seq = c.peer_seq, ack = ts_seg(&c, 10), ts = Some((102u32, resent_ts)));
    let after = h.engine.info(h.now, c.handle).unwrap();
    assert_eq!(h.engine.stats().spurious_retrans_undone, 0);
    assert!(!after.in_recovery && !after.reordering_seen, "{after:?}");
    assert!(after.ssthresh < before.ssthresh, "the reduction stays: {after:?}");
}

/// RFC 5682 §3.1 step 2b (SACK peer without timestamps, F-RTO on by default): after the
/// timeout's retransmissions, the first ACK that advances SND.UNA releases new data, not more
/// retransmissions; the next ACK, covering segments never resent, undoes the timeout.
#[test]
fn frto_sends_new_data_after_the_first_ack_of_a_timeout() {
    let mut h = Harness::with_config(unpaced_sack_config());
    let c = sack_open(&mut h, None);
    h.engine.write(h.now, c.handle, &vec![9u8; (20 * MSS) as usize]).unwrap();
    let sent: Vec<Seg> = std::iter::from_fn(|| h.recv()).collect();
    let high = sent.iter().map(|s| s.seq + s.payload.len() as u32).max().unwrap();
    assert!(high < seg_start(&c, 20), "some data stays unsent for step 2b");
    h.advance(RTT);
    send!(h, ACK, seq = c.peer_seq, ack = seg_start(&c, 2));
    // A delay spike: the probe, then the RTO fire; the RTO resends from segment 2.
    while h.engine.stats().timeouts == 0 {
        h.advance_to_timeout();
        while h.recv().is_some() {}
    }
    let retrans_after_rto = h.engine.stats().retrans_segs;
    // The originals start arriving: the first ACK covers segment 2 only.
    h.advance(RTT);
    send!(h, ACK, seq = c.peer_seq, ack = seg_start(&c, 3));
    let out: Vec<Seg> = std::iter::from_fn(|| h.recv()).collect();
    assert!(!out.is_empty(), "something goes out");
    assert!(out.iter().all(|s| s.seq >= high), "new data only (step 2b): {out:?}");
    assert_eq!(h.engine.stats().retrans_segs, retrans_after_rto);
    // Step 3b: the next ACK covers segments never resent: the timeout was spurious.
    send!(h, ACK, seq = c.peer_seq, ack = seg_start(&c, 6));
    assert_eq!(h.engine.stats().spurious_rto_undone, 1);
}
