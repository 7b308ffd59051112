//! `wrk` as a cross-check of our keep-alive generator: one thread, N connections, its own
//! requests/s and latency percentiles (50 % and 99 %; wrk does not print 99.9 %).

use std::process::Command;

use anyhow::Context;

use super::{LoadResult, Percentiles};

pub fn run(url: &str, connections: u32, secs: u32) -> anyhow::Result<LoadResult> {
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{connections}"), &format!("-d{secs}s"), "--latency", url])
        .output()
        .context("cannot run wrk: install wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse(&text, secs).with_context(|| format!("unexpected wrk output: {text}"))
}

/// Reads `Requests/sec:`, the latency distribution and the socket error line.
pub(crate) fn parse(text: &str, secs: u32) -> Option<LoadResult> {
    let mut rps = None;
    let (mut p50, mut p99) = (None, None);
    let mut errors = 0u64;
    for line in text.lines().map(str::trim) {
        let mut f = line.split_whitespace();
        match (f.next(), f.next()) {
            (Some("Requests/sec:"), Some(v)) => rps = v.parse::<f64>().ok(),
            (Some("50%"), Some(v)) => p50 = duration_us(v),
            (Some("99%"), Some(v)) => p99 = duration_us(v),
            (Some("Socket"), Some("errors:")) | (Some("Non-2xx"), _) => {
                errors += line
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|n| n.parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    let rps = rps?;
    Some(LoadResult {
        secs: f64::from(secs),
        requests: (rps * f64::from(secs)).round() as u64,
        errors,
        latency_us: Some(Percentiles { p50: p50?, p99: p99?, p999: None }),
        ..LoadResult::default()
    })
}

/// `812.00us`, `1.23ms`, `2.01s` → microseconds.
fn duration_us(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        "m" => n * 60e6,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_latency_output() {
        let text = "Running 2s test @ http://198.18.0.2/1k.bin\n  1 threads and 64 connections\n\
            \x20 Latency Distribution\n     50%  812.00us\n     75%    1.00ms\n     90%    1.20ms\n     99%    2.50ms\n\
            \x20 20000 requests in 2.00s, 22.00MB read\n  Socket errors: connect 0, read 1, write 0, timeout 2\n\
            Requests/sec:  10000.50\nTransfer/sec:     11.00MB\n";
        let r = parse(text, 2).unwrap();
        assert_eq!(r.requests, 20001);
        assert_eq!(r.errors, 3);
        let l = r.latency_us.unwrap();
        assert_eq!((l.p50, l.p99), (812.0, 2500.0));
        assert!(parse("garbage", 2).is_none());
    }
}
