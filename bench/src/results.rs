//! The results of one harness run: what was measured, on what, and how it compares.
//!
//! Owns the data model written to `bench/results/<date>-<host>.json` and read back by the
//! Markdown and SVG writers. Promises: a side that did not run carries the reason and no numbers
//! (never a placeholder value); medians and ratios are derived from the samples by
//! [`Report::finish`], never entered by hand. Must not: do I/O.

use serde::{Deserialize, Serialize};

/// In the case label of every scenario-4 row measured with the open-loop generator (a fixed
/// offered rate, latency from each request's due time), and in no other.
pub const OPEN_LOOP: &str = "open loop";

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
}

/// Whether a side ran, with its samples (one per repetition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Ran { samples: Vec<f64>, median: f64 },
    NotRun { reason: String },
}

impl Outcome {
    pub fn median(&self) -> Option<f64> {
        match self {
            Outcome::Ran { median, .. } => Some(*median),
            Outcome::NotRun { .. } => None,
        }
    }
}

/// One setup's result for one metric, e.g. "nginx" → samples of Gbit/s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SideResult {
    /// Setup label: `linerate`, `nginx`, `kernel_server`, `linerate<->linerate`, ...
    pub setup: String,
    pub outcome: Outcome,
}

/// linerate's median over a kernel setup's median, as "better" reads: above 1 means linerate
/// did better whichever way the metric improves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    pub linerate_setup: String,
    pub kernel_setup: String,
    /// `linerate / kernel` for higher-is-better metrics, `kernel / linerate` for lower.
    pub advantage: f64,
}

/// One row of the table: a scenario case and metric measured on several setups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricResult {
    /// Scenario number and name, e.g. `2 bulk download`.
    pub scenario: String,
    /// The case within it, e.g. `1 flow, 1024 MiB`.
    pub case: String,
    pub metric: String,
    pub unit: String,
    pub better: Better,
    pub sides: Vec<SideResult>,
    /// Filled by [`Report::finish`].
    #[serde(default)]
    pub ratios: Vec<Ratio>,
}

/// Where a process ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pinning {
    pub role: String,
    pub cores: String,
}

/// The machine and the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub started: String,
    pub host: String,
    pub kernel: String,
    pub cpu_model: String,
    pub cores: usize,
    pub git_commit: String,
    /// `lab` or `nic <iface>`.
    pub topology: String,
    pub quick: bool,
    pub repetitions: u32,
    pub pinning: Vec<Pinning>,
    /// Anything a reader must know to judge the numbers (offloads, shared machine, ...).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub run: RunInfo,
    pub results: Vec<MetricResult>,
}

/// Median of the finite samples; `None` when there are none.
pub fn median(samples: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 })
}

impl Outcome {
    /// A side that ran: its samples and their median (an empty sample set is "not run").
    pub fn from_samples(samples: Vec<f64>, reason_if_empty: &str) -> Outcome {
        match median(&samples) {
            Some(median) => Outcome::Ran { samples, median },
            None => Outcome::NotRun { reason: reason_if_empty.to_owned() },
        }
    }
}

impl MetricResult {
    /// Recomputes the ratios of every setup whose name starts with `linerate` against every
    /// other setup, where both ran and the denominator is positive.
    pub fn compute_ratios(&mut self) {
        self.ratios.clear();
        let is_linerate = |s: &SideResult| s.setup.starts_with("linerate");
        for l in self.sides.iter().filter(|s| is_linerate(s)) {
            for k in self.sides.iter().filter(|s| !is_linerate(s)) {
                let (Some(lm), Some(km)) = (l.outcome.median(), k.outcome.median()) else { continue };
                let (num, den) = match self.better {
                    Better::Higher => (lm, km),
                    Better::Lower => (km, lm),
                };
                if den > 0.0 {
                    self.ratios.push(Ratio {
                        linerate_setup: l.setup.clone(),
                        kernel_setup: k.setup.clone(),
                        advantage: num / den,
                    });
                }
            }
        }
    }

    /// Measured at a fixed offered rate rather than with requests always in flight.
    pub fn is_open_loop(&self) -> bool {
        self.case.contains(OPEN_LOOP)
    }

    pub fn side(&self, setup: &str) -> Option<&SideResult> {
        self.sides.iter().find(|s| s.setup == setup)
    }
}

impl Report {
    /// Derives every ratio from the medians.
    pub fn finish(&mut self) {
        for r in &mut self.results {
            r.compute_ratios();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_nonfinite() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN]), None);
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn ratios_follow_the_direction_of_better() {
        let side = |setup: &str, v: Vec<f64>| SideResult {
            setup: setup.into(),
            outcome: Outcome::from_samples(v, "none"),
        };
        let mut m = MetricResult {
            scenario: "s".into(),
            case: "c".into(),
            metric: "cpu".into(),
            unit: "s/GB".into(),
            better: Better::Lower,
            sides: vec![side("linerate", vec![2.0]), side("nginx", vec![4.0]), side("x", vec![])],
            ratios: vec![],
        };
        m.compute_ratios();
        assert_eq!(m.ratios.len(), 1);
        assert_eq!(m.ratios[0].advantage, 2.0);
        m.better = Better::Higher;
        m.compute_ratios();
        assert_eq!(m.ratios[0].advantage, 0.5);
    }
}
