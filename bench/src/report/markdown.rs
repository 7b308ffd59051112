//! The Markdown table: one row per scenario case and metric, one column per setup (median of
//! the repetitions, with the sample count), then linerate's advantage over each kernel setup.
//! Setups that did not run show `not run` with their reasons listed once under the table.

use std::fmt::Write;

use crate::results::{Better, Outcome, Report};

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let r = &report.run;
    let _ = writeln!(out, "# linerate vs Linux kernel, {}\n", r.started);
    let _ = writeln!(out, "- host `{}`, kernel {}, {} cores ({})", r.host, r.kernel, r.cores, r.cpu_model);
    let _ = writeln!(
        out,
        "- commit `{}`, topology {}, {} repetition(s){}",
        r.git_commit,
        r.topology,
        r.repetitions,
        if r.quick { ", quick mode" } else { "" }
    );
    for p in &r.pinning {
        let _ = writeln!(out, "- pinning: {} on core(s) {}", p.role, p.cores);
    }
    let _ = writeln!(out);
    let setups = setups(report);
    let _ = write!(out, "| scenario | case | metric |");
    for s in &setups {
        let _ = write!(out, " {s} |");
    }
    let _ = writeln!(out, " linerate advantage |");
    let _ = writeln!(out, "|---|---|---|{}---|", "---:|".repeat(setups.len()));
    let mut reasons: Vec<(String, String)> = Vec::new();
    for m in &report.results {
        let arrow = if m.better == Better::Higher { "↑" } else { "↓" };
        let _ = write!(out, "| {} | {} | {} ({}) {arrow} |", m.scenario, m.case, m.metric, m.unit);
        for s in &setups {
            let cell = match m.side(s).map(|side| &side.outcome) {
                Some(Outcome::Ran { samples, median }) => {
                    format!("{} (n={})", number(*median), samples.len())
                }
                Some(Outcome::NotRun { reason }) => {
                    if !reasons.iter().any(|(setup, r)| setup == s && r == reason) {
                        reasons.push((s.clone(), reason.clone()));
                    }
                    "not run".to_owned()
                }
                None => "–".to_owned(),
            };
            let _ = write!(out, " {cell} |");
        }
        let ratios: Vec<String> = m
            .ratios
            .iter()
            .map(|x| format!("{} ×{:.2} vs {}", x.linerate_setup, x.advantage, x.kernel_setup))
            .collect();
        let _ = writeln!(out, " {} |", if ratios.is_empty() { "–".to_owned() } else { ratios.join(", ") });
    }
    let _ =
        writeln!(out, "\n↑ higher is better, ↓ lower is better; advantage > 1 means linerate did better.");
    if !reasons.is_empty() {
        let _ = writeln!(out, "\nNot run:\n");
        for (setup, reason) in reasons {
            let _ = writeln!(out, "- {setup}: {reason}");
        }
    }
    if !r.notes.is_empty() {
        let _ = writeln!(out, "\nNotes:\n");
        for n in &r.notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    out
}

/// Every setup in order of first appearance.
pub fn setups(report: &Report) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for s in report.results.iter().flat_map(|m| &m.sides) {
        if !v.contains(&s.setup) {
            v.push(s.setup.clone());
        }
    }
    v
}

/// Three significant digits without scientific notation for the usual ranges.
pub fn number(x: f64) -> String {
    let a = x.abs();
    if a >= 1000.0 {
        format!("{x:.0}")
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}
