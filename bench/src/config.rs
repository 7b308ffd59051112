//! What one harness run measures and how long it may take.
//!
//! Owns [`BenchConfig`]: scenario selection, repetitions, durations, file sizes, the pinning plan
//! and the paths of the binaries under test. Promises: every duration is finite, so a run's
//! length is bounded by roughly `repetitions × setups × Σ scenario durations` plus start-up
//! (scenario 4's open-loop part adds `repetitions × setups × rates × (secs + 2 s)` at most).

use std::path::PathBuf;

use linerate_driver::lab::Placement;

/// Scenario numbers as in issue 9.
pub const RAW: u8 = 1;
pub const BULK: u8 = 2;
pub const SHORT: u8 = 3;
pub const KEEPALIVE: u8 = 4;
pub const BYPASS_CLIENT: u8 = 5;
pub const ENGINE: u8 = 6;

/// The offered rates of scenario 4's open-loop part, run after the closed-loop part.
#[derive(Debug, Clone, PartialEq)]
pub enum OpenLoopRates {
    Off,
    /// Fractions of the slower server's closed-loop keep-alive rate (its median over the
    /// repetitions of this run), the same rate for every server.
    OfSlowest(Vec<f64>),
    /// Fixed rates in requests per second.
    Fixed(Vec<f64>),
}

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub quick: bool,
    pub scenarios: Vec<u8>,
    /// Server setups to compare: `linerate`, `nginx`, `kernel_server`.
    pub servers: Vec<String>,
    /// Repetitions; the setups alternate within each.
    pub repetitions: u32,
    /// Seconds per timed sample (short connections, keep-alive, wrk).
    pub secs: f64,
    /// Seconds per frame size in the raw ceiling.
    pub raw_secs: f64,
    /// Size of the bulk file.
    pub bulk_bytes: u64,
    /// Flow counts for the bulk download.
    pub bulk_flows: Vec<u32>,
    /// A bulk sample is cut after this long.
    pub bulk_max_secs: f64,
    /// Also run the 1-flow bulk download at this lab MTU (both veth ends, every server), after
    /// each repetition's main pass; `None` skips it. Lab only.
    pub bulk_mtu: Option<u32>,
    pub short_concurrency: u32,
    pub keepalive_connections: u32,
    /// Also run wrk next to our keep-alive generator.
    pub wrk: bool,
    /// Scenario 4's open-loop part (kernel client only).
    pub open_loop: OpenLoopRates,
    pub server_core: usize,
    pub client_core: usize,
    /// Lab only: each side's receive work on its own core, as on two machines (the default), or
    /// on the sending core as veth does by itself (`--placement one-machine`).
    pub two_machines: bool,
    pub linerate_bin: PathBuf,
    pub xdp_mode: String,
    /// `linerate serve --tx-checksum` when its client is the kernel stack (`software`, the
    /// default, or `offload`: partial checksums as the kernel's own frames; no gain measured in
    /// the lab, see docs/PERFORMANCE.md "Latest run"); the bypass client's XDP would see partial
    /// checksums uncompleted, so its server always uses `software`.
    pub tx_checksum: String,
    /// Criterion benches for the in-memory engine ceiling, looked up in `bench/benches/`.
    pub engine_benches: Vec<String>,
    /// The workspace root (for `git`, `cargo bench` and the default output directory).
    pub workspace: PathBuf,
    pub out_dir: PathBuf,
}

impl BenchConfig {
    /// The full run: 1 GiB bulk file, 5 s samples, 3 repetitions.
    pub fn full(workspace: PathBuf) -> BenchConfig {
        BenchConfig {
            quick: false,
            scenarios: vec![RAW, BULK, SHORT, KEEPALIVE, BYPASS_CLIENT, ENGINE],
            servers: vec!["linerate".into(), "nginx".into(), "kernel_server".into()],
            repetitions: 3,
            secs: 5.0,
            raw_secs: 3.0,
            bulk_bytes: 1 << 30,
            bulk_flows: vec![1, 8],
            bulk_max_secs: 60.0,
            bulk_mtu: None,
            short_concurrency: 64,
            keepalive_connections: 64,
            wrk: true,
            open_loop: OpenLoopRates::OfSlowest(vec![0.5, 0.8]),
            server_core: 1,
            client_core: 0,
            two_machines: true,
            linerate_bin: workspace.join("target/release/linerate"),
            xdp_mode: "auto".into(),
            tx_checksum: "software".into(),
            engine_benches: vec!["engine".into(), "timer".into()],
            out_dir: workspace.join("bench/results"),
            workspace,
        }
    }

    /// For CI: one repetition, sub-second samples, a 16 MiB file, no criterion benches.
    pub fn quick(workspace: PathBuf) -> BenchConfig {
        BenchConfig {
            quick: true,
            scenarios: vec![RAW, BULK, SHORT, KEEPALIVE, BYPASS_CLIENT],
            repetitions: 1,
            secs: 1.0,
            raw_secs: 0.5,
            bulk_bytes: 16 << 20,
            bulk_max_secs: 10.0,
            open_loop: OpenLoopRates::OfSlowest(vec![0.5]),
            ..BenchConfig::full(workspace)
        }
    }

    /// Where the lab puts each side's receive work.
    pub fn lab_placement(&self) -> Placement {
        if self.two_machines {
            Placement::PerSide { app_core: self.server_core, kern_core: self.client_core }
        } else {
            Placement::SenderCore
        }
    }

    pub fn wants(&self, scenario: u8) -> bool {
        self.scenarios.contains(&scenario)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_models_two_machines_unless_told_otherwise() {
        let mut c = BenchConfig::full(PathBuf::from("/nonexistent"));
        assert_eq!(
            c.lab_placement(),
            Placement::PerSide { app_core: c.server_core, kern_core: c.client_core }
        );
        assert_eq!(BenchConfig::quick(PathBuf::from("/nonexistent")).lab_placement(), c.lab_placement());
        c.two_machines = false;
        assert_eq!(c.lab_placement(), Placement::SenderCore);
    }
}
