//! Writers for a finished [`Report`]: JSON (the record), Markdown (the table, also printed) and
//! SVG (ratio bars, closed-loop and open-loop latency percentiles). Pure functions from a report to text, plus one
//! function that writes all files under a base name. Must not: change the numbers.

pub mod markdown;
pub mod svg;

use std::path::{Path, PathBuf};

use crate::results::Report;

/// The files one run leaves behind.
#[derive(Debug, Clone)]
pub struct Written {
    pub json: PathBuf,
    pub markdown: PathBuf,
    pub ratios_svg: PathBuf,
    pub latency_svg: PathBuf,
    pub open_loop_svg: PathBuf,
}

pub fn to_json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("a report always serialises (no maps with non-string keys)")
}

/// Writes `<dir>/<base>.json`, `.md`, `-ratios.svg`, `-latency.svg` and `-open-loop.svg`.
pub fn write_all(report: &Report, dir: &Path, base: &str) -> std::io::Result<Written> {
    std::fs::create_dir_all(dir)?;
    let w = Written {
        json: dir.join(format!("{base}.json")),
        markdown: dir.join(format!("{base}.md")),
        ratios_svg: dir.join(format!("{base}-ratios.svg")),
        latency_svg: dir.join(format!("{base}-latency.svg")),
        open_loop_svg: dir.join(format!("{base}-open-loop.svg")),
    };
    std::fs::write(&w.json, to_json(report))?;
    std::fs::write(&w.markdown, markdown::render(report))?;
    std::fs::write(&w.ratios_svg, svg::ratios(report))?;
    std::fs::write(&w.latency_svg, svg::latency(report))?;
    std::fs::write(&w.open_loop_svg, svg::open_loop_latency(report))?;
    Ok(w)
}

/// `<date>-<host>` with the time of day, so runs on one day do not overwrite each other.
pub fn base_name(report: &Report) -> String {
    let stamp: String = report.run.started.chars().filter(|c| c.is_ascii_digit() || *c == 'T').collect();
    let (date, time) = stamp.split_once('T').unwrap_or((&stamp, ""));
    let date = if date.len() == 8 {
        format!("{}-{}-{}", &date[..4], &date[4..6], &date[6..])
    } else {
        date.to_owned()
    };
    let host: String = report
        .run
        .host
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    format!("{date}-{time}-{host}")
}
