//! Collects samples row by row while a run is under way and turns them into
//! [`MetricResult`]s at the end. A side with no sample keeps the last reason it gave for not
//! running; a side with samples keeps only the samples.

use crate::results::{Better, MetricResult, Outcome, SideResult};

/// Identifies a table row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowKey {
    pub scenario: String,
    pub case: String,
    pub metric: String,
    pub unit: String,
    pub better: Better,
}

pub fn row(scenario: &str, case: &str, metric: &str, unit: &str, better: Better) -> RowKey {
    RowKey { scenario: scenario.into(), case: case.into(), metric: metric.into(), unit: unit.into(), better }
}

#[derive(Debug, Default)]
struct Side {
    setup: String,
    samples: Vec<f64>,
    reason: Option<String>,
}

#[derive(Debug, Default)]
pub struct Recorder {
    rows: Vec<(RowKey, Vec<Side>)>,
}

impl Recorder {
    fn side(&mut self, key: &RowKey, setup: &str) -> &mut Side {
        let i = match self.rows.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                self.rows.push((key.clone(), Vec::new()));
                self.rows.len() - 1
            }
        };
        let sides = &mut self.rows[i].1;
        let j = match sides.iter().position(|s| s.setup == setup) {
            Some(j) => j,
            None => {
                sides.push(Side { setup: setup.into(), ..Side::default() });
                sides.len() - 1
            }
        };
        &mut sides[j]
    }

    /// Records one repetition's value; a non-finite value (nothing measured) is skipped.
    pub fn sample(&mut self, key: &RowKey, setup: &str, value: f64) {
        let side = self.side(key, setup);
        if value.is_finite() {
            side.samples.push(value);
        }
    }

    pub fn not_run(&mut self, key: &RowKey, setup: &str, reason: &str) {
        let one_line = reason.split_whitespace().collect::<Vec<_>>().join(" ");
        self.side(key, setup).reason = Some(one_line);
    }

    pub fn finish(self) -> Vec<MetricResult> {
        self.rows
            .into_iter()
            .map(|(k, sides)| {
                let mut m = MetricResult {
                    scenario: k.scenario,
                    case: k.case,
                    metric: k.metric,
                    unit: k.unit,
                    better: k.better,
                    sides: sides
                        .into_iter()
                        .map(|s| SideResult {
                            outcome: Outcome::from_samples(
                                s.samples,
                                s.reason.as_deref().unwrap_or("no sample"),
                            ),
                            setup: s.setup,
                        })
                        .collect(),
                    ratios: Vec::new(),
                };
                m.compute_ratios();
                m
            })
            .collect()
    }
}
