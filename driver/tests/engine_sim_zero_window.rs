//! Zero-window scenario: the receiving application stops reading for 20 s. The sender must probe
//! with backoff, never send a byte outside the offered window, and resume when the window opens;
//! the receiver must never advertise a silly window (RFC 9293 §3.8.6.2).

mod engine_sim_support;
use engine_sim_support::*;
use linerate_driver::pcap::PcapReader;
use linerate_driver::sim::{LinkConfig, SimRun};
use linerate_stack::tcp::SocketOptions;
use linerate_stack::time::{Duration, Instant};
use linerate_stack::wire::{
    ChecksumMode, EthernetFrame, Ipv4Packet, Ipv4Repr, SeqNumber, TcpPacket, TcpRepr,
};

#[test]
fn stalled_reader_is_probed_and_never_overrun() {
    let run = SimRun::new("engine_sim_zero_window", 77);
    let recv_buffer = 64 * 1024;
    let opts = SocketOptions { recv_buffer, ..SocketOptions::default() };
    let client = EngineNode::sender(run.seed(), 4 << 20, SocketOptions::default());
    let mut server = EngineNode::receiver(run.seed(), opts);
    if let App::Receiver { stall, .. } = &mut server.app {
        *stall = Some((Instant::from_millis(50), Instant::from_millis(20_050)));
    }
    let l = LinkConfig::default().delay(Duration::from_millis(5)).bottleneck(100_000_000, 128 * 1514);
    let mut pair = run.pair_capturing(l.clone(), l, client, server);
    pair.run_until(Instant::from_millis(600_000), 10_000_000, |p| p.a.finished() && p.b.finished())
        .unwrap_or_else(|e| panic!("{e}"));
    let hint = run.reproduce_hint();
    assert!(pair.a.finished() && pair.b.finished(), "{hint}");
    let a = pair.a.engine.stats().clone();
    let b = pair.b.engine.stats().clone();
    assert!(a.window_probes >= 4, "probes with backoff over 20 s: {}; {hint}", a.window_probes);
    assert!(a.window_probes < 20, "backoff: {} probes; {hint}", a.window_probes);
    assert_eq!(b.rcv_beyond_window, 0, "sender overran the window; {hint}");
    let bytes = pair.take_capture().expect("capture").finish().expect("pcap").expect("in memory");
    check_windows(&bytes, recv_buffer as u32, &hint);
}

/// Walks the capture: every client data byte lies inside the window the server last offered,
/// and the server only ever moves its right edge by at least min(buffer/2, MSS).
fn check_windows(pcap: &[u8], recv_buffer: u32, hint: &str) {
    let records = PcapReader::new(pcap).expect("pcap header").read_all().expect("records");
    let mut right_edge: Option<SeqNumber> = None;
    let mut wscale = 0u8;
    let mut client_wscale_offered = false;
    let mut moves = 0;
    // The sender's effective MSS: the largest payload it sent so far (1448 with timestamps).
    let mut eff_mss = 536u32;
    for rec in records {
        let Ok(eth) = EthernetFrame::new_checked(&rec.data[..]) else { continue };
        let Ok(ipp) = Ipv4Packet::new_checked(eth.payload()) else { continue };
        let Ok(ip) = Ipv4Repr::parse(&ipp, ChecksumMode::Skip) else { continue };
        let Ok(tp) = TcpPacket::new_checked(ipp.payload()) else { continue };
        let Ok(t) = TcpRepr::parse(&tp, ip.src_addr, ip.dst_addr, ChecksumMode::Skip) else { continue };
        if ip.src_addr == SERVER_IP {
            if t.flags.syn() {
                wscale = if client_wscale_offered { t.options.window_scale.unwrap_or(0) } else { 0 };
                continue;
            }
            if !t.flags.ack() {
                continue;
            }
            let edge = t.ack_number + (u32::from(t.window_len) << wscale);
            if let Some(old) = right_edge {
                let grew = edge - old;
                if grew > 0 {
                    moves += 1;
                    let threshold = (recv_buffer / 2).min(eff_mss) as i32 - (1 << wscale);
                    assert!(grew >= threshold, "silly window update: right edge +{grew}; {hint}");
                }
            }
            if right_edge.is_none_or(|old| edge - old > 0) {
                right_edge = Some(edge);
            }
        } else {
            if t.flags.syn() {
                client_wscale_offered = t.options.window_scale.is_some();
                continue;
            }
            eff_mss = eff_mss.max(t.payload.len() as u32);
            if let Some(edge) = right_edge {
                let end = t.seq_number + t.payload.len() as u32;
                assert!(end - edge <= 0, "data beyond the offered window (end {end}, edge {edge}); {hint}");
            }
        }
    }
    assert!(moves > 10, "window moved {moves} times; {hint}");
}
