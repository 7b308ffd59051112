//! Bulk downloads by whole client programs: `curl` (the kernel client) and `linerate get` (the
//! bypass client). N flows means one file fetched as N byte ranges over N connections at once,
//! for both clients. Throughput is total bytes received over the wall time from the first
//! spawn to the last exit (so the bypass client's start-up is inside it); a download cut by
//! `max_secs` still counts the bytes it got.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::LoadResult;

/// Extra time a client may take beyond `max_secs` before it is killed.
const GRACE: Duration = Duration::from_secs(5);

pub fn curl(url: &str, size: u64, flows: u32, max_secs: f64) -> anyhow::Result<LoadResult> {
    let max_time = format!("{max_secs:.1}");
    let flows = u64::from(flows.max(1));
    let chunk = size.div_ceil(flows).max(1);
    let start = Instant::now();
    let children = (0..flows)
        .filter(|i| flows == 1 || i * chunk < size)
        .map(|i| {
            let mut cmd = Command::new("curl");
            cmd.args([
                "-s",
                "-o",
                "/dev/null",
                "--max-time",
                &max_time,
                "-w",
                "%{size_download} %{http_code}",
            ]);
            if flows > 1 {
                cmd.args(["-r", &format!("{}-{}", i * chunk, ((i + 1) * chunk).min(size) - 1)]);
            }
            cmd.arg(url).stdout(Stdio::piped()).spawn().context("cannot run curl: install curl")
        })
        .collect::<anyhow::Result<Vec<Child>>>()?;
    let mut result = LoadResult::default();
    for child in children {
        let out = wait_bounded(child, start, max_secs)?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut fields = text.split_whitespace();
        let bytes: u64 = fields.next().and_then(|b| b.parse().ok()).unwrap_or(0);
        let code = fields.next().unwrap_or("000");
        result.bytes += bytes;
        // Exit 28 is curl's timeout: bytes so far still count, as the bound promised.
        let cut = out.status.code() == Some(28);
        if !(code == "200" || code == "206") || !(out.status.success() || cut) {
            result.errors += 1;
        } else {
            result.requests += 1;
        }
    }
    result.secs = start.elapsed().as_secs_f64();
    Ok(result)
}

pub fn linerate_get(
    bin: &str,
    url: &str,
    flows: u32,
    iface: &str,
    ip: &str,
    max_secs: f64,
) -> anyhow::Result<LoadResult> {
    let out_path = std::env::temp_dir().join(format!("linerate-bench-get-{}", std::process::id()));
    let out_arg = out_path.to_string_lossy().into_owned();
    let flows_arg = flows.to_string();
    let start = Instant::now();
    let child = Command::new(bin)
        .args(["get", url, "-o", &out_arg, "--connections", &flows_arg, "--iface", iface, "--ip", ip])
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {bin}"))?;
    let out = wait_bounded(child, start, max_secs)?;
    let secs = start.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&out_path).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_file(&out_path);
    let ok = out.status.success();
    Ok(LoadResult { secs, bytes, requests: u64::from(ok), errors: u64::from(!ok), ..LoadResult::default() })
}

/// Waits for `child` until `max_secs` + [`GRACE`] after `start`, killing it past that.
fn wait_bounded(mut child: Child, start: Instant, max_secs: f64) -> anyhow::Result<std::process::Output> {
    let deadline = start + Duration::from_secs_f64(max_secs.max(0.0)) + GRACE;
    loop {
        if child.try_wait()?.is_some() {
            return Ok(child.wait_with_output()?);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            return Ok(child.wait_with_output()?);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
