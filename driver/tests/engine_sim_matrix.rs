//! The throughput/loss matrix, pinned as a snapshot: each cell is a seeded, deterministic run,
//! so any change in protocol behaviour shows up as a diff of
//! `tests/snapshots/engine_sim_matrix.txt`. Regenerate with `LINERATE_UPDATE_SNAPSHOTS=1`.

mod engine_sim_support;
use engine_sim_support::*;
use linerate_driver::sim::{LinkConfig, LossModel, SimRun};
use linerate_stack::tcp::SocketOptions;
use linerate_stack::time::Duration;
use std::fmt::Write as _;

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/engine_sim_matrix.txt");

#[test]
fn throughput_loss_matrix_matches_snapshot() {
    let mut table =
        String::from("# size  rtt_ms  loss%  seed  elapsed_ms  goodput_mbps  retrans  timeouts\n");
    let opts = SocketOptions { recv_buffer: 4 << 20, send_buffer: 4 << 20, ..SocketOptions::default() };
    let mut seed = 1000;
    for rtt_ms in [1u64, 20, 100] {
        for loss in [0.0, 0.01, 0.05, 0.10] {
            seed += 1;
            let run = SimRun::new(&format!("engine_sim_matrix_{rtt_ms}ms_{loss}"), seed);
            let mut l = LinkConfig::default()
                .delay(Duration::from_micros(rtt_ms * 500))
                .bottleneck(100_000_000, 256 * 1514);
            if loss > 0.0 {
                l = l.loss(LossModel::Bernoulli { p: loss });
            }
            let size = 1 << 20;
            let r = run_transfer(&run, size, l.clone(), l, opts);
            let mbps = size as f64 * 8.0 / r.elapsed.as_secs_f64() / 1e6;
            writeln!(
                table,
                "{size:>7} {rtt_ms:>6} {:>6.1} {:>5} {:>11} {mbps:>13.2} {:>8} {:>9}",
                loss * 100.0,
                run.seed(),
                r.elapsed.as_millis(),
                r.retrans_segs,
                r.timeouts
            )
            .unwrap();
        }
    }
    if std::env::var_os("LINERATE_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(SNAPSHOT, &table).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(SNAPSHOT)
        .unwrap_or_else(|_| panic!("missing {SNAPSHOT}; create it with LINERATE_UPDATE_SNAPSHOTS=1"));
    assert_eq!(table, expected, "matrix changed; if intended, regenerate with LINERATE_UPDATE_SNAPSHOTS=1");
}
