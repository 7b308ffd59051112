//! A `--quick` run of the real harness, as CI runs it: scenario 1 (AF_XDP raw ceiling) and the
//! kernel side of scenarios 2–4 (nginx and our kernel server against curl, our generator and
//! wrk, then the keep-alive open loop at half the slower server's rate) in a private netns lab.
//! Checks that the results file exists, parses, and that every throughput and rate is positive,
//! both servers were offered the same open-loop rate — and that the whole run stays under 60 s. Needs root (CI
//! runs as root); the lab removes its namespaces when the harness exits.

use std::process::Command;
use std::time::{Duration, Instant};

use linerate_bench::results::{Better, MetricResult, Outcome, Report};

#[test]
fn quick_run_writes_positive_kernel_results() {
    let out = std::env::temp_dir().join(format!("lrb-smoke-{}", std::process::id()));
    let start = Instant::now();
    let run = Command::new(env!("CARGO_BIN_EXE_linerate-bench"))
        .args([
            "run",
            "--quick",
            "--scenarios",
            "1,2,3,4",
            "--servers",
            "nginx,kernel_server",
            "--note",
            "smoke test",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "harness failed:\n{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(elapsed < Duration::from_secs(60), "quick run took {elapsed:?}");

    let json = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("a results JSON file");
    let report: Report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(report.run.quick && report.run.notes.iter().any(|n| n == "smoke test"));
    for scenario in ["1 raw ceiling", "2 bulk download", "3 short connections", "4 keep-alive"] {
        assert!(report.results.iter().any(|m| m.scenario == scenario), "{scenario} missing:\n{stdout}");
    }
    // Scenario 4's open loop: both servers offered exactly the same rate, and it was achieved.
    let offered: Vec<&MetricResult> =
        report.results.iter().filter(|m| m.is_open_loop() && m.metric == "offered rate").collect();
    assert!(!offered.is_empty(), "no open-loop rows:\n{stdout}");
    for m in offered {
        let rates: Vec<f64> = m.sides.iter().filter_map(|s| s.outcome.median()).collect();
        assert!(rates.len() == 2 && rates[0] == rates[1] && rates[0] > 0.0, "{m:?}");
    }
    for m in &report.results {
        for side in &m.sides {
            match &side.outcome {
                Outcome::Ran { samples, median } => {
                    assert!(samples.iter().all(|s| s.is_finite() && *s >= 0.0), "{m:?}");
                    if m.better == Better::Higher {
                        assert!(
                            *median > 0.0,
                            "{} {} {} on {}: {median}",
                            m.scenario,
                            m.case,
                            m.metric,
                            side.setup
                        );
                    }
                }
                Outcome::NotRun { reason } => {
                    panic!(
                        "{} {} {} on {} did not run: {reason}\n{stdout}",
                        m.scenario, m.case, m.metric, side.setup
                    )
                }
            }
        }
    }
    std::fs::remove_dir_all(&out).unwrap();
}
