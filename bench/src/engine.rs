//! Scenario 6, the in-memory engine ceiling: runs criterion benches of this crate
//! (`bench/benches/<name>.rs`) with short warm-up and measurement times and reads the point
//! estimate of each benchmark from criterion's output.
//!
//! The seam for the engine: when a criterion bench named `engine` lands in `bench/benches/`
//! (driving two stacks over an in-memory link), it is picked up here by name with no change;
//! until then its row says it is not there. Must not: fabricate a time for a missing bench.

use std::path::Path;
use std::process::Command;

use anyhow::Context;

/// One criterion benchmark's point estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub id: String,
    pub nanos: f64,
    /// Throughput point estimate with its unit (e.g. `GiB/s`), when the bench declares one.
    pub throughput: Option<(f64, String)>,
}

/// `Err(reason)` when the bench does not exist; otherwise runs it (bounded by criterion's
/// times per benchmark) and returns its estimates.
pub fn run_bench(workspace: &Path, name: &str, quick: bool) -> Result<anyhow::Result<Vec<Estimate>>, String> {
    if !workspace.join("bench/benches").join(format!("{name}.rs")).exists() {
        return Err(format!("no criterion bench `{name}` in bench/benches yet"));
    }
    let (warm, measure) = if quick { ("0.2", "0.5") } else { ("1", "3") };
    let run = || -> anyhow::Result<Vec<Estimate>> {
        let out = Command::new("cargo")
            .current_dir(workspace)
            .args(["bench", "-q", "-p", "linerate-bench", "--bench", name, "--"])
            .args(["--warm-up-time", warm, "--measurement-time", measure, "--noplot"])
            .output()
            .context("cannot run cargo bench")?;
        anyhow::ensure!(out.status.success(), "cargo bench failed: {}", String::from_utf8_lossy(&out.stderr));
        Ok(parse_criterion(&String::from_utf8_lossy(&out.stdout)))
    };
    Ok(run())
}

/// Reads `id  time: [lo mid hi]` and `thrpt: [lo mid hi]` lines; the id may sit alone on the
/// line before when it is long.
pub fn parse_criterion(text: &str) -> Vec<Estimate> {
    let mut out: Vec<Estimate> = Vec::new();
    let mut pending_id: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(pos) = trimmed.find("time:") {
            let head = trimmed[..pos].trim();
            let id = if head.is_empty() { pending_id.take() } else { Some(head.to_owned()) };
            if let (Some(id), Some((v, unit))) = (id, middle(&trimmed[pos + 5..])) {
                if let Some(scale) = time_scale(&unit) {
                    out.push(Estimate { id, nanos: v * scale, throughput: None });
                }
            }
        } else if let Some(pos) = trimmed.find("thrpt:") {
            if let (Some(last), Some(t)) = (out.last_mut(), middle(&trimmed[pos + 6..])) {
                last.throughput = Some(t);
            }
        } else if !trimmed.is_empty() && !line.starts_with(' ') && !trimmed.contains(':') {
            pending_id = Some(trimmed.to_owned());
        }
    }
    out
}

/// The middle value of `[lo u mid u hi u]` with its unit.
fn middle(s: &str) -> Option<(f64, String)> {
    let inner = s.trim().strip_prefix('[')?.split(']').next()?;
    let f: Vec<&str> = inner.split_whitespace().collect();
    Some((f.get(2)?.parse().ok()?, (*f.get(3)?).to_owned()))
}

fn time_scale(unit: &str) -> Option<f64> {
    Some(match unit {
        "ps" => 1e-3,
        "ns" => 1.0,
        "µs" | "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_criterion_lines() {
        let text = "timer/insert_cancel     time:   [10.5 ns 11.0 ns 11.5 ns]\n\
                    engine/bulk_transfer_over_memory_link_long_name\n\
                    \x20                       time:   [1.0 ms 2.0 ms 3.0 ms]\n\
                    \x20                       thrpt:  [3.0 GiB/s 4.0 GiB/s 5.0 GiB/s]\n\
                    Found 3 outliers among 100 measurements (3.00%)\n";
        let e = parse_criterion(text);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].id, "timer/insert_cancel");
        assert_eq!(e[0].nanos, 11.0);
        assert_eq!(e[1].id, "engine/bulk_transfer_over_memory_link_long_name");
        assert_eq!(e[1].nanos, 2e6);
        assert_eq!(e[1].throughput, Some((4.0, "GiB/s".into())));
    }
}
