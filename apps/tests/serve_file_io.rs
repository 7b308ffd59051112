//! `linerate serve` keeps disk waits, page faults and unmaps off its shard (issue 8, "never
//! blocks the shard on disk"), seen from outside through `linerate stats`:
//! - a small file dropped from the page cache is served whole, and the shard deferred to its
//!   prefetch thread instead of reading the disk (`reads_deferred`);
//! - large bodies are locked in memory while they are sent, the locked-bytes gauge stays within
//!   one connection's window during a download and returns to zero afterwards, and every
//!   mapping is unmapped by the prefetch thread (`unmaps_off_shard`, none inline);
//! - a request whose file is not in the open-file cache is opened (`openat2`, `statx`) by the
//!   prefetch thread, which counts it (`opens_off_shard`), with the same answers as before
//!   (200, 404 for a missing file or a symlink out of the root, index files, keep-alive after);
//! - an upload's create, writes and commit run on the prefetch thread (`upload_jobs`), at most
//!   `UPLOAD_BUFFERS` buffers waiting at once (`upload_buffers_peak`), stored byte for byte;
//! - the prefetch thread runs on `--io-cores` (by default the CPUs the shards do not use), as
//!   the startup line says and the kernel's view of the thread confirms.
//!
//! Run as root (veth lab; `mlock` beyond RLIMIT_MEMLOCK needs CAP_IPC_LOCK). The served files
//! live under `target/tmp` (see `serve_support::TempDir`), which must be a disk-backed file system:
//! files are dropped from the page cache with `POSIX_FADV_DONTNEED`.

mod serve_support;

use linerate_app::demo::sha256;
use serve_support::{file_counters, linerate, wait_for, Env, Server, MIB};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Flushes `path` to disk and drops it from the page cache.
fn evict(path: &Path) {
    const TMPFS_MAGIC: libc::c_long = 0x0102_1994;
    // SAFETY: statfs fills the zeroed struct for a NUL-terminated path.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::statfs(c.as_ptr(), &mut fs) }, 0);
    assert_ne!(
        fs.f_type as libc::c_long, TMPFS_MAGIC,
        "{path:?} is on tmpfs, whose pages cannot be dropped: build with the target directory on a disk-backed file system"
    );
    let f = std::fs::File::open(path).unwrap();
    f.sync_all().unwrap();
    // SAFETY: a valid descriptor; advice only.
    assert_eq!(unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) }, 0);
}

#[test]
fn cold_small_files_are_read_in_by_the_prefetch_thread_and_served_whole() {
    let env = Env::new("coldsm", |c| c, &[("small", 40_000), ("ranged", 60_000), ("warm", 30_000)]);
    // The shard's refused `RWF_NOWAIT` read starts the kernel's own read-ahead, which a fast
    // virtual disk sometimes finishes before the read looks again; the read then succeeds
    // without the prefetcher (still without blocking). Start over, bounded, until both cold
    // bodies were deferred, so the test normally checks the path it is about.
    let mut attempts = 0u64;
    let deferred = loop {
        attempts += 1;
        for name in ["small", "ranged"] {
            evict(&env.root.path().join(name));
        }
        let before = file_counters(&env.server)("reads_deferred");
        env.download_matches("small");
        // A range from the middle of a cold file.
        let part = env.root.path().join("ranged.part");
        env.curl(&["-r", "10000-49999", "-o", part.to_str().unwrap(), &env.url("ranged")]);
        let original = std::fs::read(env.root.path().join("ranged")).unwrap();
        assert!(std::fs::read(&part).unwrap() == original[10_000..50_000], "the range differs from the file");
        let mut counters = file_counters(&env.server);
        wait_for("the counters of two cold bodies", Duration::from_secs(10), || {
            counters = file_counters(&env.server);
            counters("bodies_read") == 2 * attempts
        });
        let deferred = counters("reads_deferred") - before;
        if deferred >= 2 || attempts == 5 {
            break deferred;
        }
    };
    env.download_matches("warm");

    let mut counters = file_counters(&env.server);
    wait_for("the counters of every body", Duration::from_secs(10), || {
        counters = file_counters(&env.server);
        counters("bodies_read") == 2 * attempts + 1
    });
    eprintln!("cold small files: reads_deferred {deferred} in the last of {attempts} attempt(s)");
    // Deferral is what a cold body normally takes, but the kernel may finish its read-ahead
    // inside the refused read's own call on every attempt (seen in CI on this VM); either way
    // the contract is that the shard never waited for the disk and every byte is right.
    assert_eq!(counters("reads_blocking"), 0, "the shard read the disk itself");
}

#[test]
fn large_bodies_are_locked_while_sent_then_unlocked_and_unmapped_off_the_shard() {
    let env = Env::new("locked", |c| c, &[("big", 48 * MIB), ("mid", 3 * MIB)]);
    // A paced download: the gauge is sampled while it runs.
    let out = env.root.path().join("big.dl");
    let mut curl = Command::new("timeout")
        .args(["60", "ip", "netns", "exec", env.lab.kern_ns(), "curl", "-sS", "--limit-rate", "16M", "-o"])
        .arg(&out)
        .arg(env.url("big"))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn curl");
    let mut most_locked = 0;
    while curl.try_wait().unwrap().is_none() {
        most_locked = most_locked.max(file_counters(&env.server)("locked_bytes"));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(curl.wait().unwrap().success(), "curl big");
    assert_eq!(sha256(&out).unwrap(), sha256(&env.root.path().join("big")).unwrap());
    // One connection locks its look-ahead (4 MiB) plus what the engine holds (1 MiB send
    // buffer) plus window rounding; without releases it would end with the whole file locked.
    eprintln!("48 MiB download at 16 MB/s: at most {most_locked} bytes locked");
    assert!(most_locked > 0, "nothing was locked during a 48 MiB download");
    assert!(most_locked <= 8 * MIB, "{most_locked} bytes locked for one connection");
    env.download_matches("mid");

    let mut counters = file_counters(&env.server);
    wait_for("every mapping unmapped", Duration::from_secs(20), || {
        counters = file_counters(&env.server);
        counters("bodies_lent") == 2 && counters("unmaps_off_shard") == 2 && counters("locked_bytes") == 0
    });
    eprintln!("after: locked_total {} unmaps_off_shard 2", counters("locked_total"));
    assert!(counters("locked_total") >= 51 * MIB, "both bodies were locked as they were sent");
    assert_eq!(counters("unmaps_inline"), 0);
    assert_eq!(counters("lock_failed"), 0, "mlock refused (not root?)");
    assert_eq!(counters("bodies_cut"), 0);
}

#[test]
fn request_files_are_opened_by_the_prefetch_thread() {
    let env = Env::new("opens", |c| c, &[("a", 5_000), ("b", 70_000)]);
    std::fs::create_dir(env.root.path().join("dir")).unwrap();
    std::fs::write(env.root.path().join("dir/index.html"), b"<p>index</p>").unwrap();
    std::os::unix::fs::symlink("/etc/hostname", env.root.path().join("escape")).unwrap();
    // One keep-alive connection, each request a cache miss: the connection waits for each open
    // and goes on with the next request afterwards.
    let urls: Vec<String> = ["a", "missing", "escape", "dir/", "b"].iter().map(|p| env.url(p)).collect();
    let mut args = vec!["-w", "%{http_code} %{size_download} %{num_connects}\\n"];
    for url in &urls {
        args.extend(["-o", "/dev/null", url]);
    }
    let out = env.curl(&args);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["200 5000 1", "404 14 0", "404 14 0", "200 12 0", "200 70000 0"], "{out}");
    env.download_matches("b");
    // Refused by the parser: no open at all.
    let traversal = env.curl(&["--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", &env.url("../a")]);
    assert_eq!(traversal, "400");

    // Snapshots are published periodically: wait for one that has the latest requests.
    let mut counters = file_counters(&env.server);
    wait_for("the counters of every response", Duration::from_secs(10), || {
        counters = file_counters(&env.server);
        let bodies = counters("bodies_read") + counters("bodies_lent") + counters("bodies_memory");
        bodies == 4 && counters("opens_off_shard") >= 5
    });
    let opens = counters("opens_off_shard");
    eprintln!("opens_off_shard {opens} for 6 file requests");
    // Five misses, and the repeated `b` opens again only if the cache's one-second trust ran out.
    assert!((5..=6).contains(&opens), "opens_off_shard {opens}, want 5 or 6");
}

#[test]
fn uploads_are_written_by_the_prefetch_thread_within_a_bounded_queue() {
    let env = Env::new("upq", |c| c, &[("src", 6 * MIB)]);
    let src = env.root.path().join("src");
    let code =
        env.curl(&["-o", "/dev/null", "-w", "%{http_code}", "-T", src.to_str().unwrap(), &env.url("dst")]);
    assert_eq!(code, "201");
    assert_eq!(sha256(&env.root.path().join("dst")).unwrap(), sha256(&src).unwrap(), "stored upload differs");
    let mut counters = file_counters(&env.server);
    // Create + commit + one write per received piece (16 KiB at most each).
    let least = 2 + 6 * MIB / (16 * 1024);
    wait_for("the upload's counters", Duration::from_secs(10), || {
        counters = file_counters(&env.server);
        counters("upload_jobs") >= least
    });
    let (jobs, peak) = (counters("upload_jobs"), counters("upload_buffers_peak"));
    eprintln!("6 MiB upload: upload_jobs {jobs}, upload_buffers_peak {peak}");
    assert!((1..=linerate_app::http::UPLOAD_BUFFERS as u64).contains(&peak), "peak {peak}");
    let names: Vec<_> = std::fs::read_dir(env.root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "a temporary file was left: {names:?}");
}

/// CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: zeroed cpu_set_t is the empty set; sched_getaffinity fills it for this thread.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) }, 0);
    // SAFETY: indices below CPU_SETSIZE into our set.
    (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
}

/// The CPU list the kernel allows the server's prefetch thread of shard 0.
fn prefetch_thread_cpus(server: &Server) -> String {
    let tasks = format!("/proc/{}/task", server.child.id());
    let mut found = None;
    // A thread names itself once it runs: look until it has.
    wait_for("the lr-prefetch-0 thread", Duration::from_secs(10), || {
        for task in std::fs::read_dir(&tasks).unwrap().flatten() {
            if std::fs::read_to_string(task.path().join("comm")).unwrap_or_default().trim() == "lr-prefetch-0"
            {
                let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
                found = status
                    .lines()
                    .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                    .map(|v| v.trim().to_owned());
            }
        }
        found.is_some()
    });
    found.unwrap()
}

/// `0-1,3`-style list as the kernel prints it, for a sorted CPU list.
fn kernel_list(cpus: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        parts.push(if i == j { cpus[i].to_string() } else { format!("{}-{}", cpus[i], cpus[j]) });
        i = j + 1;
    }
    parts.join(",")
}

#[test]
fn the_prefetch_thread_runs_on_the_io_cores() {
    let allowed = allowed_cpus();
    let shard = allowed[0];
    let mut env = Env::with_args("iocores", |c| c, &[("f", MIB)], &["--cores", &shard.to_string()]);
    let rest: Vec<usize> = allowed.iter().copied().filter(|&c| c != shard).collect();
    let (said, thread) = if rest.is_empty() {
        ("unpinned".to_owned(), kernel_list(&allowed))
    } else {
        (rest.iter().map(ToString::to_string).collect::<Vec<_>>().join(","), kernel_list(&rest))
    };
    assert!(env.server.startup.contains(&format!(" io-cores {said} ")), "{}", env.server.startup);
    assert_eq!(prefetch_thread_cpus(&env.server), thread);
    env.download_matches("f");
    assert!(env.server.terminate(Duration::from_secs(20)).success());

    // Asked for explicitly, the shard's own core included.
    let core = shard.to_string();
    let server = Server::start_with(&env.lab, env.root.path(), &["--cores", &core, "--io-cores", &core]);
    assert!(server.startup.contains(&format!(" io-cores {core} ")), "{}", server.startup);
    assert_eq!(prefetch_thread_cpus(&server), core);
    env.download_matches("f");
    drop(server);

    // A CPU this process may not use is refused before anything is attached.
    let out = linerate(&[
        "serve",
        "--iface",
        "lr-none",
        "--ip",
        "198.18.0.2/24",
        "--root",
        "/",
        "--io-cores",
        "4000",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--io-cores: this process may not run on CPU 4000"),
        "{err}"
    );
}
