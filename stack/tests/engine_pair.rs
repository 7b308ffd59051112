//! Two engines over the in-test link: bulk transfers under loss, reordering, duplication and
//! corruption; every connection closes and both engines end empty.

mod support;
use linerate_stack::tcp::SocketOptions;
use linerate_stack::time::Duration;
use support::link::*;

fn run(seed: u64, size: usize, params: LinkParams) -> Transfer {
    let mut link = Link::new(seed, params, |_| {});
    let t = bulk_transfer(&mut link, size, SocketOptions::default(), Duration::from_secs(3600));
    println!("seed {seed} size {size} {params:?}: {t:?}");
    t
}

#[test]
fn clean_link_small_and_large() {
    for (i, size) in [1usize, 1000, 1460, 100_000, 4 << 20].into_iter().enumerate() {
        run(i as u64 + 1, size, LinkParams::default());
    }
}

#[test]
fn lossy_link_delivers_every_byte() {
    for (seed, loss) in [(11u64, 10_000u32), (12, 50_000), (13, 100_000)] {
        run(seed, 300_000, LinkParams { loss_ppm: loss, ..LinkParams::default() });
    }
}

#[test]
fn reordering_duplication_and_corruption() {
    let p = LinkParams {
        jitter: Duration::from_millis(3),
        dup_ppm: 20_000,
        corrupt_ppm: 20_000,
        loss_ppm: 10_000,
        ..LinkParams::default()
    };
    for seed in 21..24 {
        run(seed, 500_000, p);
    }
}

#[test]
fn bottleneck_with_queue_drops() {
    let p = LinkParams { rate_bps: 100_000_000, queue: Duration::from_millis(5), ..LinkParams::default() };
    let t = run(31, 8 << 20, p);
    let secs = t.elapsed.as_secs_f64();
    // 0.7 s at line rate plus NewReno recovering the slow-start overshoot one hole per RTT.
    assert!(secs < 4.0, "8 MiB over 100 Mbit/s should take < 4 s, took {secs}");
}
