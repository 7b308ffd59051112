//! Small receive windows (RFC 9293 §3.8.6.2): a receiver whose buffer holds less than a few
//! segments must still be fed at about one window per round trip. The sender's silly-window
//! avoidance may hold back a tail smaller than both the MSS and half the largest window offered,
//! but never for longer than the round trip that brings the next ACK; a window of one segment
//! or less must not fall back to one segment per persist or retransmission timeout.

mod engine_sim_support;
use engine_sim_support::*;
use linerate_driver::sim::{LinkConfig, SimRun};
use linerate_stack::tcp::SocketOptions;
use linerate_stack::time::Duration;

/// Effective MSS with timestamps on a 1500-byte link.
const MSS: u64 = 1448;

/// Moves `size` bytes to a receiver with `recv_buffer` bytes over a 2 ms round trip and checks
/// the time against what the window allows: `per_rtt` bytes per round trip.
fn check(tag: &str, seed: u64, recv_buffer: usize, per_rtt: u64, size: usize) {
    let run = SimRun::new(tag, seed);
    let rtt_ms = 2;
    let l =
        LinkConfig::default().delay(Duration::from_millis(rtt_ms / 2)).bottleneck(1_000_000_000, 256 * 1514);
    let recv_opts = SocketOptions { recv_buffer, ..SocketOptions::default() };
    let r = run_transfer(&run, size, l.clone(), l, recv_opts);
    let hint = run.reproduce_hint();
    let rounds = (size as u64).div_ceil(per_rtt);
    let ideal = Duration::from_millis(rounds * rtt_ms);
    eprintln!("{tag}: buffer {recv_buffer}: {r:?}, window-bound {ideal:?}");
    assert_eq!(r.timeouts, 0, "no timeout on a loss-free link: {r:?}; {hint}");
    assert!(
        r.elapsed <= Duration::from_millis(rounds * rtt_ms * 5 / 4 + 20),
        "{tag}: {:?} for {size} bytes, the window allows {ideal:?}; {hint}",
        r.elapsed
    );
}

#[test]
fn four_kib_buffer_moves_two_segments_per_round_trip() {
    // 4096 bytes: two full segments fit; the 1200-byte rest is below MSS and below half the
    // window, so sender SWS avoidance holds it (RFC 9293 §3.8.6.2.1).
    check("small_window_4k", 4096, 4096, 2 * MSS, 2 << 20);
}

#[test]
fn one_segment_buffer_moves_one_segment_per_round_trip() {
    check("small_window_1seg", 1448, 1448, MSS, 512 << 10);
}

#[test]
fn sub_mss_buffer_still_moves_a_window_per_round_trip() {
    // 1000 bytes: less than one MSS; a full window is at least half the largest ever offered.
    check("small_window_sub_mss", 1000, 1000, 1000, 256 << 10);
}
