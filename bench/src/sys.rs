//! Small Linux facts and knobs the harness needs: pinning, CPU time of a process tree, machine
//! identity. Must not: change anything but the calling thread's affinity.

use std::path::Path;

use anyhow::Context;

/// Pins the calling thread (and the children it spawns afterwards) to `core`.
pub fn pin_to(core: usize) -> anyhow::Result<()> {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity(0) affects only the calling thread.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("cannot pin to core {core}"));
    }
    Ok(())
}

pub fn current_cpu() -> i32 {
    // SAFETY: no arguments, no memory touched.
    unsafe { libc::sched_getcpu() }
}

/// CPU time (user + system) the calling thread has used so far, in seconds.
pub fn thread_cpu_secs() -> f64 {
    // SAFETY: rusage is plain data that the kernel fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Clock ticks per second for /proc times.
fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// (ppid, utime + stime in seconds) from a `/proc/<pid>/stat` line.
fn parse_stat(stat: &str) -> Option<(u32, f64)> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    let ppid = f.get(1)?.parse().ok()?;
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((ppid, (utime + stime) / ticks_per_sec()))
}

/// CPU seconds used so far by `pid` and its direct children (nginx's workers are children of
/// its master), all threads: the scheduler's nanosecond run time from
/// `/proc/<pid>/task/<tid>/schedstat` where available, else utime + stime in clock ticks.
pub fn tree_cpu_secs(pid: u32) -> f64 {
    tree_sum(pid, |dir, tick_secs| schedstat_secs(dir, 0).unwrap_or(tick_secs))
}

/// Seconds `pid` and its direct children (all threads) have spent runnable but waiting for a
/// core so far (schedstat run delay); 0 without schedstats.
pub fn tree_run_queue_secs(pid: u32) -> f64 {
    tree_sum(pid, |dir, _| schedstat_secs(dir, 1).unwrap_or(0.0))
}

/// Sums `each(/proc/<p>, utime + stime of p)` over `pid` and its direct children.
fn tree_sum(pid: u32, each: impl Fn(&Path, f64) -> f64) -> f64 {
    let mut total = 0.0;
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0.0 };
    for entry in dir.flatten() {
        let Some(p) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        if let Some((ppid, tick_secs)) = parse_stat(&stat) {
            if p == pid || ppid == pid {
                total += each(&entry.path(), tick_secs);
            }
        }
    }
    total
}

/// On-CPU seconds of thread (or kernel thread) `tid` so far, from its schedstat; 0 if gone.
pub fn thread_runtime_secs(tid: u32) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{tid}/schedstat")).unwrap_or_default();
    text.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).map_or(0.0, |n| n as f64 / 1e9)
}

/// Sum over every thread of schedstat field `field` (0: on-CPU time, 1: run-queue wait), in
/// seconds (needs CONFIG_SCHEDSTATS).
fn schedstat_secs(proc_dir: &Path, field: usize) -> Option<f64> {
    let mut nanos = 0u64;
    for task in std::fs::read_dir(proc_dir.join("task")).ok()?.flatten() {
        let text = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        nanos += text.split_whitespace().nth(field)?.parse::<u64>().ok()?;
    }
    Some(nanos as f64 / 1e9)
}

/// The fields of `cpuN` in /proc/stat, in clock ticks: user nice system idle iowait irq
/// softirq steal (guest time is inside user). `None` when the core is not listed.
pub fn core_ticks(core: usize) -> Option<[u64; 8]> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let name = format!("cpu{core}");
    let line = stat.lines().find(|l| l.split_whitespace().next() == Some(name.as_str()))?;
    let mut fields = [0u64; 8];
    for (f, v) in fields.iter_mut().zip(line.split_whitespace().skip(1)) {
        *f = v.parse().unwrap_or(0);
    }
    Some(fields)
}

/// Seconds core `core` has been busy so far, whatever ran there: processes, kernel threads
/// (NAPI threads, ksoftirqd) and interrupt and softirq work, also when it interrupted the idle
/// task; idle, iowait and steal are left out. This is the "per server core" cost when the
/// server side has the core to itself; other load on the core is in it too.
pub fn core_busy_secs(core: usize) -> f64 {
    let Some(t) = core_ticks(core) else { return 0.0 };
    let busy = t[0] + t[1] + t[2] + t[5] + t[6];
    busy as f64 / ticks_per_sec()
}

pub fn hostname() -> String {
    read_trim("/proc/sys/kernel/hostname").unwrap_or_else(|| "unknown".into())
}

pub fn kernel_release() -> String {
    read_trim("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into())
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

pub fn core_count() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// `git rev-parse --short HEAD` in `dir`, with `-dirty` when the tree has changes.
pub fn git_commit(dir: &Path) -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match run(&["rev-parse", "--short=12", "HEAD"]) {
        Some(c) => match run(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(s) if !s.is_empty() => format!("{c}-dirty"),
            _ => c,
        },
        None => "unknown".into(),
    }
}

/// Current UTC time as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, no time-zone database needed).
pub fn utc_now() -> String {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_spaces_in_the_name() {
        let line = "42 (nginx: worker) S 7 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 9 0 0";
        let (ppid, secs) = parse_stat(line).unwrap();
        assert_eq!(ppid, 7);
        assert!((secs - 300.0 / ticks_per_sec()).abs() < 1e-9);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }
}
