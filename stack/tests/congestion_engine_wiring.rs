//! How the engine wires its configuration into loss recovery and congestion control, with
//! crafted segments: no tail loss probe without SACK (RFC 8985 §4), the pacer's catch-up
//! allowance follows `EngineConfig::timer_tick`, and BBR's random-loss tolerance is a socket
//! option that reaches the controller.

mod support;
use linerate_stack::engine::EngineConfig;
use linerate_stack::tcp::{CongestionAlgorithm, SocketOptions};
use linerate_stack::time::Duration;
use support::*;

const MSS: u32 = 1460;
const RTT: Duration = Duration::from_millis(50);

/// Active open with a 50 ms handshake RTT; the peer grants SACK only if `sack`, and scales its
/// 64 KiB window by 2^4 if we offered window scaling.
fn open(h: &mut Harness, opts: Option<SocketOptions>, sack: bool) -> Conn {
    let handle = h.engine.connect(h.now, (PEER_IP, h.peer_port), Some(h.local_port), opts).expect("connect");
    let syn = recv!(h, SYN);
    h.advance(RTT);
    let wscale = syn.wscale.map(|_| 4u8);
    send!(
        h,
        SYN | ACK,
        seq = 5000u32,
        ack = syn.seq + 1,
        win = 65535u16,
        mss = Some(1460u16),
        sack_perm = sack,
        wscale = wscale
    );
    recv!(h, ACK, seq = syn.seq + 1, ack = 5001u32);
    Conn { handle, our_seq: syn.seq + 1, peer_seq: 5001 }
}

fn sack_config() -> EngineConfig {
    let mut cfg = test_config();
    cfg.tcp.sack = true;
    cfg
}

fn write(h: &mut Harness, c: &Conn, segments: u32) -> usize {
    h.engine.write(h.now, c.handle, &vec![7u8; (segments * MSS) as usize]).unwrap();
    std::iter::from_fn(|| h.recv()).count()
}

#[test]
fn tail_loss_without_sack_waits_for_the_rto_not_a_probe() {
    let mut h = Harness::with_config(sack_config());
    let c = open(&mut h, None, false);
    assert_eq!(write(&mut h, &c, 10), 10);
    h.advance(RTT);
    // The last two segments are lost. With SACK a probe would leave at 2·SRTT (100 ms); a
    // peer without SACK cannot say which segment its ACK of a probe is missing, so RFC 8985 §4
    // does not apply RACK-TLP: the RTO (200 ms minimum) repairs the tail.
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq + 8 * MSS);
    let rto = h.engine.info(h.now, c.handle).unwrap().rto;
    assert!(rto >= Duration::from_millis(200), "{rto:?}");
    assert_eq!(h.advance_to_timeout(), rto, "no PTO at 2·SRTT");
    let resent = recv!(h, ACK, seq = c.our_seq + 8 * MSS);
    assert_eq!(resent.payload.len() as u32, MSS);
    let stats = h.engine.stats();
    assert_eq!((stats.tlp_probes, stats.timeouts), (0, 1), "{stats:?}");

    // Control: the same loss with SACK is probed at 2·SRTT.
    let mut h = Harness::with_config(sack_config());
    let c = open(&mut h, None, true);
    write(&mut h, &c, 10);
    h.advance(RTT);
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq + 8 * MSS);
    assert_eq!(h.advance_to_timeout(), RTT.saturating_mul(2));
    recv!(h, ACK | PSH, seq = c.our_seq + 9 * MSS);
    assert_eq!(h.engine.stats().tlp_probes, 1);
}

/// Segments a paced sender releases at each of its first `wakes` pacing timeouts, with no ACK
/// coming back (a large initial window keeps the sender window-free meanwhile).
fn releases_per_wake(tick: Duration, wakes: usize) -> Vec<usize> {
    let mut cfg = sack_config();
    cfg.timer_tick = tick;
    cfg.tcp.initial_window = 200;
    cfg.tcp.window_scaling = true;
    let mut h = Harness::with_config(cfg);
    let opts = SocketOptions { pacing: true, send_buffer: 1 << 20, ..SocketOptions::default() };
    let c = open(&mut h, Some(opts), true);
    // One segment out and back for an SRTT, so the pacing rate is cwnd / SRTT · 2 (11.7 MB/s:
    // 8 segments per ms).
    assert_eq!(write(&mut h, &c, 1), 1);
    h.advance(RTT);
    send!(h, ACK, seq = c.peer_seq, ack = c.our_seq + MSS);
    let rate = h.engine.info(h.now, c.handle).unwrap().pacing_rate.expect("paced");
    assert!((10_000_000..13_000_000).contains(&rate), "{rate}");
    let c = Conn { our_seq: c.our_seq + MSS, ..c };
    let first = write(&mut h, &c, 190);
    assert!(first < 100, "the pacer holds most of it: {first}");
    (0..wakes)
        .map(|_| {
            h.advance_to_timeout();
            std::iter::from_fn(|| h.recv()).count()
        })
        .collect()
}

#[test]
fn pacing_catches_up_by_the_engines_timer_tick() {
    // A 1 ms wheel: each release is at most a tick late and lets out about a burst (1 ms of
    // data at this rate).
    let fine = releases_per_wake(Duration::from_millis(1), 6);
    assert!(fine.iter().all(|&n| (1..=10).contains(&n)), "{fine:?}");
    // A 10 ms wheel delivers releases up to 10 ms late: the pacer must let the sender catch
    // up by that tick (about 80 segments), or the connection would send a 1 ms burst every
    // 10 ms and pace at a tenth of its rate.
    let coarse = releases_per_wake(Duration::from_millis(10), 1);
    assert!(coarse[0] >= 60, "{coarse:?}");
}

#[test]
fn bbr_random_loss_tolerance_is_a_socket_option() {
    let mut h = Harness::with_config(sack_config());
    assert!(SocketOptions::default().bbr_tolerate_random_loss, "on by default");
    let opts = SocketOptions {
        congestion: CongestionAlgorithm::Bbr,
        bbr_tolerate_random_loss: false,
        ..SocketOptions::default()
    };
    let c = open(&mut h, Some(opts), true);
    assert!(!h.engine.socket_options(c.handle).unwrap().bbr_tolerate_random_loss);
    // Switched back on a live connection: the option sticks and the connection keeps working.
    let on = SocketOptions { bbr_tolerate_random_loss: true, ..h.engine.socket_options(c.handle).unwrap() };
    h.engine.set_socket_options(h.now, c.handle, on).unwrap();
    assert!(h.engine.socket_options(c.handle).unwrap().bbr_tolerate_random_loss);
    assert_eq!(write(&mut h, &c, 4), 4);
    assert_eq!(h.engine.info(h.now, c.handle).unwrap().congestion, CongestionAlgorithm::Bbr);
}
