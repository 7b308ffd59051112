//! The client side of every scenario: load jobs described as data, run where the client lives.
//!
//! Owns [`LoadJob`] (what to run) and [`LoadResult`] (what came back). A job is serialised to
//! JSON so the same job runs in a child process inside the lab's kernel namespace
//! (`linerate-bench load '<json>'`) or on a peer machine (`linerate-bench peer`), and the
//! orchestrator never cares which. Promises: every job is bounded in time (its own duration or
//! `max_secs`, plus a fixed grace), pins itself to the core it is given before generating load,
//! and reports errors as counts rather than giving up on the first one. Must not: talk to any
//! address other than the one the job names.

mod bulk;
mod bypass_gen;
mod http_gen;
mod open_loop;
pub mod timetable;
mod wrk;

use std::net::SocketAddrV4;

use serde::{Deserialize, Serialize};

pub use bypass_gen::run_bypass_http_load;
pub use http_gen::{run_http_load, HttpLoad};
pub use open_loop::{run_open_loop, OpenLoopLoad};

/// One client-side job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LoadJob {
    /// GET `path` until a 200 arrives or `timeout_ms` passes: is the server up?
    Probe { addr: SocketAddrV4, path: String, timeout_ms: u64 },
    /// `url` of `size` bytes fetched by `flows` concurrent `curl`s, each taking one byte range
    /// (as `linerate get --connections` splits a file), each cut at `max_secs`.
    Curl { url: String, size: u64, flows: u32, max_secs: f64 },
    /// The linerate client (`linerate get`) on the bypass stack, cut at `max_secs`.
    LinerateGet { bin: String, url: String, flows: u32, iface: String, ip: String, max_secs: f64 },
    /// Our epoll generator: HTTP GETs, closing after each (`keep_alive` false) or not.
    Http(HttpLoad),
    /// Keep-alive GETs at a fixed offered rate on a timetable (open loop), latency from the
    /// due time of each request.
    OpenLoop(OpenLoopLoad),
    /// The same load from our engine over AF_XDP on `iface` as `ip` (`ADDR/PREFIX`): the
    /// bypass client of scenario 5. The caller takes `ip` away from the client side's kernel.
    BypassHttp { load: HttpLoad, iface: String, ip: String },
    /// `wrk` with `connections` keep-alive connections on one thread.
    Wrk { url: String, connections: u32, secs: u32 },
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    /// `None` when the tool does not report it (wrk).
    pub p999: Option<f64>,
}

impl Percentiles {
    /// p50, p99 and p99.9 of a histogram; `None` when it is empty.
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Option<Percentiles> {
        if h.is_empty() {
            return None;
        }
        let q = |p: f64| h.value_at_quantile(p) as f64;
        Some(Percentiles { p50: q(0.5), p99: q(0.99), p999: Some(q(0.999)) })
    }
}

/// What a job measured.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LoadResult {
    /// Wall-clock seconds the load ran.
    pub secs: f64,
    /// Payload bytes received (bulk) or response bytes (HTTP load).
    pub bytes: u64,
    /// Completed requests (or connections, for close-after-each).
    pub requests: u64,
    /// Failed connections, bad responses, failed processes.
    pub errors: u64,
    pub latency_us: Option<Percentiles>,
    /// The core the job ran on at the end (for the pinning record).
    pub cpu: i32,
    /// What only an open-loop job measures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_loop: Option<OpenLoopStats>,
}

/// The schedule of an open-loop job and how it went. `LoadResult::latency_us` is then the
/// response time counted from each request's due time (sent − due plus completion − sent).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OpenLoopStats {
    pub offered_per_sec: f64,
    /// Requests due over the whole window.
    pub scheduled: u64,
    /// Due and not completed when the job ended (in the latency with their wait so far).
    pub unfinished: u64,
    /// Outstanding when their connection failed (counted in `errors` too, not in the latency).
    pub abandoned: u64,
    /// Due → written: waiting for the connection's previous request or for the generator.
    pub send_delay_us: Option<Percentiles>,
    /// Written → last byte of the response.
    pub service_us: Option<Percentiles>,
    /// The generator thread's user + system CPU seconds over the job (is the client the limit?).
    #[serde(default)]
    pub cpu_secs: f64,
    /// Seconds the generator thread was runnable but waiting for its core (schedstat run
    /// delay) over the job: on a shared core, lateness that is neither server's.
    #[serde(default)]
    pub run_queue_secs: f64,
}

impl LoadResult {
    pub fn gbit_per_sec(&self) -> f64 {
        if self.secs > 0.0 {
            self.bytes as f64 * 8.0 / self.secs / 1e9
        } else {
            0.0
        }
    }
    pub fn per_sec(&self) -> f64 {
        if self.secs > 0.0 {
            self.requests as f64 / self.secs
        } else {
            0.0
        }
    }
}

/// Runs `job` in this process (and its children), pinned to `core` if given.
pub fn run_job(job: &LoadJob, core: Option<usize>) -> anyhow::Result<LoadResult> {
    if let Some(core) = core {
        crate::sys::pin_to(core)?;
    }
    let mut result = match job {
        LoadJob::Probe { addr, path, timeout_ms } => http_gen::probe(*addr, path, *timeout_ms)?,
        LoadJob::Curl { url, size, flows, max_secs } => bulk::curl(url, *size, *flows, *max_secs)?,
        LoadJob::LinerateGet { bin, url, flows, iface, ip, max_secs } => {
            bulk::linerate_get(bin, url, *flows, iface, ip, *max_secs)?
        }
        LoadJob::Http(load) => run_http_load(load)?,
        LoadJob::OpenLoop(load) => run_open_loop(load)?,
        LoadJob::BypassHttp { load, iface, ip } => run_bypass_http_load(load, iface, ip)?,
        LoadJob::Wrk { url, connections, secs } => wrk::run(url, *connections, *secs)?,
    };
    result.cpu = crate::sys::current_cpu();
    Ok(result)
}
