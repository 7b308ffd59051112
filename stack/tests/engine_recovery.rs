//! Crafted-segment tests of loss recovery and congestion control as the engine drives them:
//! SACK-driven retransmission of exactly the holes (RFC 6675), a tail loss probe instead of an
//! RTO (RFC 8985 §7), D-SACK undo (RFC 2883/3708), PRR during recovery (RFC 6937), and pacing
//! releases visible in `next_timeout`.

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

/// Active open with a 50 ms handshake RTT and SACK permitted by the peer.
fn sack_open(h: &mut Harness, opts: Option<SocketOptions>) -> Conn {
    let handle = h.engine.connect(h.now, (PEER_IP, h.peer_port), Some(h.local_port), opts).expect("connect");
    let syn = recv!(h, SYN);
    assert!(syn.sack_perm, "we offer SACK");
    h.advance(RTT);
    send!(h, SYN | ACK, seq = 5000u32, ack = syn.seq + 1, mss = Some(1460u16), sack_perm = true);
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
    let mut cfg = sack_config();
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
    let mut h = Harness::with_config(sack_config());
    let opts = SocketOptions { pacing: true, ..SocketOptions::default() };
    let c = sack_open(&mut h, Some(opts));
    // One round trip gives the controller an SRTT, hence a pacing rate (cwnd / srtt · 2).
    write_segments(&mut h, &c, 1);
    h.advance(RTT);
    send!(h, ACK, seq = c.peer_seq, ack = seg_start(&c, 1));
    let rate = h.engine.info(h.now, c.handle).unwrap().pacing_rate.expect("paced");
    assert!(rate > 100_000 && rate < 10_000_000, "{rate}");
    let c1 = Conn { our_seq: seg_start(&c, 1), ..c };
    let burst = write_segments(&mut h, &c1, 10);
    assert!(!burst.is_empty() && burst.len() < 10, "a burst of a few segments, then a wait: {}", burst.len());
    let deadline = h.engine.next_timeout().expect("pacing timer");
    let gap = deadline - h.now;
    assert!(gap > Duration::ZERO && gap < Duration::from_millis(20), "pacing gap {gap:?}, not the RTO");
    assert!(h.engine.stats().pacing_delayed >= 1);
    let mut total = burst.len();
    let mut waits = 0;
    while total < 10 {
        h.advance_to_timeout();
        waits += 1;
        total += std::iter::from_fn(|| h.recv()).count();
        assert!(waits < 20, "pacing must release everything");
    }
    assert_eq!(total, 10);
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
