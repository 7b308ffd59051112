//! Hand-written SVG bar charts (a few rectangles and labels; a plotting library would cost
//! more to build than these 150 lines): linerate's advantage per row with a line at 1×, and
//! keep-alive latency percentiles per setup, closed loop and at equal offered load (open loop)
//! apart. A chart with nothing to show says why instead.

use std::fmt::Write;

use crate::results::{MetricResult, Report, OPEN_LOOP};

const WIDTH: f64 = 1100.0;
/// Room for the labels left of the bars, unless a label needs more.
const LEFT: f64 = 520.0;
/// Roughly the advance of one character at 12 px sans-serif.
const CHAR_W: f64 = 6.6;
const BAR: f64 = 18.0;
const GAP: f64 = 6.0;
const COLORS: [&str; 6] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];

/// One horizontal bar.
struct Bar {
    label: String,
    series: usize,
    value: f64,
}

/// linerate / kernel advantage for every row where both ran.
pub fn ratios(report: &Report) -> String {
    let mut kernels: Vec<String> = Vec::new();
    let mut bars = Vec::new();
    for m in &report.results {
        for r in &m.ratios {
            if !kernels.contains(&r.kernel_setup) {
                kernels.push(r.kernel_setup.clone());
            }
            let series = kernels.iter().position(|k| k == &r.kernel_setup).unwrap_or(0);
            let label = format!(
                "{}, {}: {} ({} vs {})",
                m.scenario, m.case, m.metric, r.linerate_setup, r.kernel_setup
            );
            bars.push(Bar { label, series, value: r.advantage });
        }
    }
    let title = "linerate advantage over the kernel (>1 = linerate better)";
    chart(title, &bars, &kernels, Some(1.0), "×", "no ratios: no row has both a linerate and a kernel result")
}

/// Keep-alive latency percentiles of the closed loop (our generator and wrk, requests always in
/// flight), one series per setup.
pub fn latency(report: &Report) -> String {
    latency_of(
        report,
        |m| !m.is_open_loop(),
        |m| format!("{}, {}", m.scenario, m.case),
        "keep-alive latency percentiles, closed loop (µs, lower is better)",
        "no latency measured",
    )
}

/// Keep-alive latency percentiles at equal offered load (the open-loop rows), one series per
/// setup: the comparison of servers that a closed loop cannot make.
pub fn open_loop_latency(report: &Report) -> String {
    // The case names the load after "open loop"; the rest of it fits in the title.
    let load = |m: &MetricResult| m.case.split(OPEN_LOOP).nth(1).unwrap_or(&m.case).trim().to_owned();
    latency_of(
        report,
        MetricResult::is_open_loop,
        load,
        "4 keep-alive: latency at equal offered load, open loop (µs from each request's due time, lower is better)",
        "no open-loop latency measured (scenario 4 not run, or --no-open-loop)",
    )
}

fn latency_of(
    report: &Report,
    pick: impl Fn(&MetricResult) -> bool,
    case: impl Fn(&MetricResult) -> String,
    title: &str,
    empty: &str,
) -> String {
    let mut setups: Vec<String> = Vec::new();
    let mut bars = Vec::new();
    for m in report.results.iter().filter(|m| m.metric.starts_with("latency") && pick(m)) {
        for s in &m.sides {
            if let Some(v) = s.outcome.median() {
                if !setups.contains(&s.setup) {
                    setups.push(s.setup.clone());
                }
                let series = setups.iter().position(|x| x == &s.setup).unwrap_or(0);
                bars.push(Bar {
                    label: format!("{}: {} ({})", case(m), m.metric, s.setup),
                    series,
                    value: v,
                });
            }
        }
    }
    chart(title, &bars, &setups, None, " µs", empty)
}

fn chart(
    title: &str,
    bars: &[Bar],
    series: &[String],
    reference: Option<f64>,
    unit: &str,
    empty: &str,
) -> String {
    // Labels are right-aligned at the bars: widen the chart rather than cut long ones off.
    let longest = bars.iter().map(|b| b.label.chars().count()).max().unwrap_or(0) as f64;
    let left = (longest * CHAR_W + 16.0).max(LEFT);
    let width = WIDTH - LEFT + left;
    let plot_w = width - left - 90.0;
    let height = 70.0 + bars.len().max(1) as f64 * (BAR + GAP) + 20.0 * series.len() as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(s, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let _ =
        writeln!(s, "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{}</text>", escape(title));
    if bars.is_empty() {
        let _ = writeln!(s, "<text x=\"10\" y=\"55\">{}</text>\n</svg>", escape(empty));
        return s;
    }
    let max = bars.iter().map(|b| b.value).chain(reference).fold(0.0f64, f64::max).max(f64::MIN_POSITIVE);
    let x = |v: f64| left + v / max * plot_w;
    for (i, b) in bars.iter().enumerate() {
        let y = 45.0 + i as f64 * (BAR + GAP);
        let color = COLORS[b.series % COLORS.len()];
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{left}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{BAR}\" fill=\"{color}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}{}</text>",
            left - 6.0,
            y + BAR * 0.75,
            escape(&b.label),
            (x(b.value) - left).max(0.5),
            x(b.value) + 4.0,
            y + BAR * 0.75,
            crate::report::markdown::number(b.value),
            escape(unit)
        );
    }
    let bottom = 45.0 + bars.len() as f64 * (BAR + GAP);
    if let Some(r) = reference {
        let _ = writeln!(
            s,
            "<line x1=\"{0:.1}\" y1=\"38\" x2=\"{0:.1}\" y2=\"{bottom:.1}\" stroke=\"black\" stroke-dasharray=\"4 3\"/>",
            x(r)
        );
    }
    for (i, name) in series.iter().enumerate() {
        let y = bottom + 14.0 + i as f64 * 20.0;
        let color = COLORS[i % COLORS.len()];
        let _ = writeln!(
            s,
            "<rect x=\"{left}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            y,
            left + 18.0,
            y + 10.0,
            escape(name)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
