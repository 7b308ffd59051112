//! Per-ACK and per-packet cost of the congestion-control seam: what the engine pays on its hot
//! path for each controller, the delivery-rate estimator and the pacer.

mod common;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use linerate_stack::congestion::{
    AckEvent, Algorithm, CongestionConfig, CongestionController, DeliveryRateEstimator, Pacer, SentPacket,
};
use linerate_stack::time::{Duration, Instant};

const MSS: u32 = 1448;

/// One steady-state step: an ACK for one segment and the segment it releases, 10 us apart.
fn controller_step(c: &mut Criterion, algorithm: Algorithm) {
    let config = CongestionConfig { pacing: true, ..CongestionConfig::new(algorithm, MSS) };
    let mut now = Instant::from_millis(1);
    let mut cc = CongestionController::new(&config, now);
    let mut est = DeliveryRateEstimator::new();
    let rtt = Duration::from_millis(20);
    // A window of snapshots in flight, recycled as a ring.
    let window = 256usize;
    let mut ring: Vec<_> = (0..window).map(|i| est.on_packet_sent(now, i as u32 * MSS, MSS)).collect();
    let mut head = 0usize;
    c.bench_function(&format!("congestion/{}/ack+send", algorithm.name()), |b| {
        b.iter(|| {
            now += Duration::from_micros(10);
            let in_flight = window as u32 * MSS;
            est.on_packet_delivered(now, &ring[head]);
            let rate_sample = est.generate_rate_sample(now, Some(rtt));
            let ack = AckEvent {
                newly_acked_bytes: MSS,
                prior_in_flight: in_flight,
                in_flight: in_flight - MSS,
                rtt_sample: Some(rtt),
                min_rtt: Some(rtt),
                srtt: Some(rtt),
                rate_sample,
                ..AckEvent::default()
            };
            cc.on_ack(now, black_box(&ack));
            let packet =
                SentPacket { bytes: MSS, in_flight_before: in_flight - MSS, ..SentPacket::default() };
            cc.on_packet_sent(now, &packet);
            ring[head] = est.on_packet_sent(now, in_flight - MSS, MSS);
            head = (head + 1) % window;
            black_box((cc.cwnd(), cc.pacing_rate()))
        })
    });
}

fn controllers(c: &mut Criterion) {
    for algorithm in [Algorithm::NewReno, Algorithm::Cubic, Algorithm::Bbr] {
        controller_step(c, algorithm);
    }
}

fn pacer(c: &mut Criterion) {
    let mut pacer = Pacer::new(MSS, 64 * 1024);
    pacer.set_rate(Some(1_250_000_000));
    let mut now = Instant::from_millis(1);
    c.bench_function("congestion/pacer/can_send+on_sent", |b| {
        b.iter(|| {
            if !pacer.can_send(now) {
                now = pacer.next_release().unwrap_or(now);
            }
            pacer.on_sent(now, black_box(MSS));
        })
    });
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = controllers, pacer
}
criterion_main!(benches);
