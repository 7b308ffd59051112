//! What the CPU did during one measurement window of scenario 1, so that a slow sample can be
//! told apart from a slow path: for each pinned thread, the share of the window it ran and the
//! share it sat runnable on the run queue (`/proc/self/task/<tid>/schedstat`), and for each
//! pinned core, the share spent in softirq (veth's receive work runs there), stolen by the
//! hypervisor, and idle (`/proc/stat`).
//!
//! Promises: reads /proc only, at the window's two ends (no syscall inside the measured loops);
//! a field the kernel does not provide reads as zero. Must not: influence the measurement.

use std::fmt;
use std::time::Instant;

/// The calling thread's kernel id, for [`Window::start`] called from another thread.
pub fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions and touches no memory.
    unsafe { libc::gettid() }
}

/// (on-CPU, waiting on a run queue) seconds of thread `tid` of this process.
fn schedstat(tid: i32) -> (f64, f64) {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).unwrap_or_default();
    let mut f = text.split_whitespace().map(|v| v.parse::<u64>().unwrap_or(0) as f64 / 1e9);
    (f.next().unwrap_or(0.0), f.next().unwrap_or(0.0))
}

/// Ticks of `cpuN` in /proc/stat: (softirq, steal, idle + iowait, total).
fn cpu_ticks(core: usize) -> (u64, u64, u64, u64) {
    let Some(v) = crate::sys::core_ticks(core) else { return (0, 0, 0, 0) };
    (v[6], v[7], v[3] + v[4], v.iter().sum())
}

/// A window opened by [`Window::start`] and read by [`Window::finish`].
#[derive(Debug, Clone)]
pub struct Window {
    started: Instant,
    threads: Vec<(&'static str, i32, (f64, f64))>,
    cores: Vec<(usize, (u64, u64, u64, u64))>,
}

/// One thread's share of the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThreadShare {
    pub role: &'static str,
    /// Share of the window the thread was on a CPU.
    pub running: f64,
    /// Share of the window it was runnable but waiting for a CPU (someone else ran).
    pub waiting: f64,
}

/// One core's share of the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoreShare {
    pub core: usize,
    pub softirq: f64,
    pub steal: f64,
    pub idle: f64,
}

/// What [`Window::finish`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowReport {
    pub threads: Vec<ThreadShare>,
    pub cores: Vec<CoreShare>,
}

impl Window {
    /// Opens a window over the threads `(role, tid)` and `cores`.
    pub fn start(threads: &[(&'static str, i32)], cores: &[usize]) -> Window {
        Window {
            threads: threads.iter().map(|&(role, tid)| (role, tid, schedstat(tid))).collect(),
            cores: cores.iter().map(|&c| (c, cpu_ticks(c))).collect(),
            started: Instant::now(),
        }
    }

    pub fn finish(&self) -> WindowReport {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let threads = self
            .threads
            .iter()
            .map(|&(role, tid, (run0, wait0))| {
                let (run1, wait1) = schedstat(tid);
                ThreadShare { role, running: (run1 - run0) / secs, waiting: (wait1 - wait0) / secs }
            })
            .collect();
        let cores = self
            .cores
            .iter()
            .map(|&(core, (s0, st0, i0, t0))| {
                let (s1, st1, i1, t1) = cpu_ticks(core);
                let total = (t1.saturating_sub(t0)).max(1) as f64;
                CoreShare {
                    core,
                    softirq: s1.saturating_sub(s0) as f64 / total,
                    steal: st1.saturating_sub(st0) as f64 / total,
                    idle: i1.saturating_sub(i0) as f64 / total,
                }
            })
            .collect();
        WindowReport { threads, cores }
    }
}

impl WindowReport {
    /// The smallest share of the window any watched thread ran: in a two-thread pipeline where
    /// each thread is busy all the time it runs, the rate scales with it, so `rate / busiest`
    /// estimates the rate both threads would reach with whole cores (used only to compare two
    /// paths measured under the same load, never as a figure on its own).
    pub fn slowest_thread_share(&self) -> Option<f64> {
        self.threads.iter().map(|t| t.running).filter(|&r| r > 0.0).min_by(f64::total_cmp)
    }
}

impl fmt::Display for WindowReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |x: f64| 100.0 * x;
        let mut sep = "";
        for t in &self.threads {
            write!(f, "{sep}{} ran {:.0} % / waited {:.1} %", t.role, pct(t.running), pct(t.waiting))?;
            sep = "; ";
        }
        for c in &self.cores {
            write!(
                f,
                "{sep}core {} softirq {:.0} %, steal {:.1} %, idle {:.0} %",
                c.core,
                pct(c.softirq),
                pct(c.steal),
                pct(c.idle)
            )?;
            sep = "; ";
        }
        Ok(())
    }
}
