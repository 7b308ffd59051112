//! The JSON, Markdown and SVG writers on a synthetic report: every row and setup appears, a
//! setup that did not run says so (with its reason) and carries no number, ratios point the
//! right way, and JSON round-trips.

use linerate_bench::report::{self, markdown, svg};
use linerate_bench::results::{self, Better, MetricResult, Outcome, Pinning, Report, RunInfo, SideResult};

fn side(setup: &str, samples: &[f64]) -> SideResult {
    SideResult { setup: setup.into(), outcome: Outcome::from_samples(samples.to_vec(), "unused") }
}

fn synthetic() -> Report {
    let not_run = SideResult {
        setup: "linerate".into(),
        outcome: Outcome::NotRun { reason: "`linerate serve` does not exist yet".into() },
    };
    let mut r = Report {
        run: RunInfo {
            started: "2026-11-22T05:40:00Z".into(),
            host: "test host".into(),
            kernel: "6.18".into(),
            cpu_model: "cpu".into(),
            cores: 2,
            git_commit: "abc".into(),
            topology: "lab".into(),
            quick: true,
            repetitions: 3,
            pinning: vec![Pinning { role: "server".into(), cores: "1".into() }],
            notes: vec!["synthetic".into()],
        },
        results: vec![
            MetricResult {
                scenario: "2 bulk download".into(),
                case: "1 flow".into(),
                metric: "throughput".into(),
                unit: "Gbit/s".into(),
                better: Better::Higher,
                sides: vec![side("linerate", &[9.0, 10.0, 11.0]), side("nginx", &[4.0, 5.0, 6.0])],
                ratios: vec![],
            },
            MetricResult {
                scenario: "4 keep-alive".into(),
                case: "64 connections".into(),
                metric: "latency p99".into(),
                unit: "us".into(),
                better: Better::Lower,
                sides: vec![
                    side("linerate", &[50.0]),
                    side("nginx", &[100.0]),
                    side("kernel_server", &[200.0]),
                ],
                ratios: vec![],
            },
            MetricResult {
                scenario: "3 short connections".into(),
                case: "64 concurrent".into(),
                metric: "rate".into(),
                unit: "conn/s".into(),
                better: Better::Higher,
                sides: vec![not_run, side("nginx", &[1000.0])],
                ratios: vec![],
            },
        ],
    };
    r.finish();
    r
}

#[test]
fn ratios_are_derived_from_medians_in_the_better_direction() {
    let r = synthetic();
    assert_eq!(r.results[0].ratios.len(), 1);
    assert_eq!(r.results[0].ratios[0].advantage, 2.0); // 10 / 5
    let lat: Vec<f64> = r.results[1].ratios.iter().map(|x| x.advantage).collect();
    assert_eq!(lat, vec![2.0, 4.0]); // 100 / 50, 200 / 50
    assert!(r.results[2].ratios.is_empty(), "no ratio without a linerate number");
}

#[test]
fn json_round_trips() {
    let r = synthetic();
    let text = report::to_json(&r);
    let back: Report = serde_json::from_str(&text).unwrap();
    assert_eq!(back, r);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["results"][2]["sides"][0]["outcome"]["status"], "not_run");
    assert_eq!(v["results"][0]["sides"][0]["outcome"]["median"], 10.0);
}

#[test]
fn markdown_has_every_row_and_marks_not_run() {
    let md = markdown::render(&synthetic());
    let table: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(table.len(), 2 + 3, "header, separator and three rows:\n{md}");
    assert!(
        table[0].contains("linerate") && table[0].contains("nginx") && table[0].contains("kernel_server")
    );
    assert!(table[2].contains("10.00 (n=3)") && table[2].contains("linerate ×2.00 vs nginx"), "{}", table[2]);
    assert!(table[4].contains("not run"), "{}", table[4]);
    assert!(md.contains("- linerate: `linerate serve` does not exist yet"));
    assert!(md.contains("- synthetic"));
    assert!(md.contains("core(s) 1"));
}

#[test]
fn svgs_are_complete_documents() {
    let r = synthetic();
    for doc in [svg::ratios(&r), svg::latency(&r)] {
        assert!(doc.starts_with("<svg") && doc.trim_end().ends_with("</svg>"), "{doc}");
        assert_eq!(doc.matches("<svg").count(), 1);
    }
    assert_eq!(svg::ratios(&r).matches("<rect x=\"520\"").count(), 3 + 2, "three bars and two legend keys");
    let mut empty = r.clone();
    empty.results.clear();
    assert!(svg::ratios(&empty).contains("no ratios"));
}

#[test]
fn files_are_named_by_date_and_host() {
    let r = synthetic();
    assert_eq!(report::base_name(&r), "2026-11-22-054000-test_host");
    let dir = std::env::temp_dir().join(format!("lrb-writers-{}", std::process::id()));
    let w = report::write_all(&r, &dir, "x").unwrap();
    for p in [&w.json, &w.markdown, &w.ratios_svg, &w.latency_svg, &w.open_loop_svg] {
        assert!(std::fs::metadata(p).unwrap().len() > 0, "{}", p.display());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn open_loop_latency_has_its_own_plot_and_rows() {
    let mut r = synthetic();
    r.results.push(MetricResult {
        scenario: "4 keep-alive".into(),
        case: format!("64 connections, GET 1 KiB, {} at 50 % of the slowest closed loop", results::OPEN_LOOP),
        metric: "latency p99".into(),
        unit: "us".into(),
        better: Better::Lower,
        sides: vec![side("linerate", &[70.0, 90.0]), side("nginx", &[160.0, 200.0])],
        ratios: vec![],
    });
    r.finish();
    assert!(r.results[3].is_open_loop() && !r.results[1].is_open_loop());
    assert_eq!(r.results[3].ratios[0].advantage, 2.25, "180 / 80");
    let (closed, open) = (svg::latency(&r), svg::open_loop_latency(&r));
    assert!(!closed.contains("open loop") && closed.contains("64 connections: latency p99"), "{closed}");
    assert!(open.contains(">at 50 % of the slowest closed loop: latency p99 (linerate)<"), "{open}");
    assert!(!open.contains("64 connections: latency p99"), "{open}");
    assert_eq!(open.matches("<rect x=\"520\"").count(), 2 + 2, "two bars and two legend keys");
    assert!(svg::open_loop_latency(&synthetic()).contains("no open-loop latency measured"));
    let md = markdown::render(&r);
    assert!(
        md.contains(
            "open loop at 50 % of the slowest closed loop | latency p99 (us) ↓ | 80.00 (n=2) | 180.0 (n=2)"
        ),
        "{md}"
    );
}
