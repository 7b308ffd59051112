//! Shared fixtures for the `serve_*` end-to-end tests: a lab with a unique name, a temporary
//! root directory with test files, `linerate serve` (the built binary) in the app namespace, and
//! helpers to run the kernel's tools (curl, wget, wrk, socat) in the kernel namespace with a
//! time bound. Everything is removed on drop, also when a test fails.
#![allow(dead_code)]

use linerate_app::demo::{sha256, write_test_file};
use linerate_driver::lab::{LabConfig, LabGuard};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const SERVER: &str = "198.18.0.2";
pub const MIB: u64 = 1 << 20;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique lab name (≤ 24 chars) for `tag`.
pub fn lab_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("t{}-{}-{n}", &tag[..tag.len().min(8)], std::process::id())
}

/// A directory removed on drop. It lives under Cargo's per-target scratch directory
/// (`target/tmp`), not `TMPDIR`: that keeps it on the disk the build is on, since tests that
/// drop file pages from the page cache (`serve_file_io`) cannot do so on a tmpfs `/tmp`.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("linerate-test-{name}"));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `linerate serve` running in a lab; killed on drop if still running.
pub struct Server {
    pub child: Child,
    pub startup: String,
    /// Its control socket (a killed server cannot remove it; the drop does).
    pub control: PathBuf,
}

impl Server {
    pub fn start(lab: &LabGuard, root: &Path) -> Server {
        Server::start_with(lab, root, &[])
    }

    /// Like [`Server::start`] with extra `linerate serve` flags.
    pub fn start_with(lab: &LabGuard, root: &Path, extra: &[&str]) -> Server {
        // Unless the test picks one, the control socket goes to the temporary directory.
        let given = extra.iter().position(|a| *a == "--control-socket").and_then(|i| extra.get(i + 1));
        let control = match given {
            Some(path) => PathBuf::from(path),
            None => std::env::temp_dir().join(format!("linerate-test-{}.sock", lab.app_ns())),
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_linerate"))
            .args(["serve", "--netns", lab.app_ns(), "--iface", lab.app_if(), "--ip", "198.18.0.2/24"])
            .arg("--root")
            .arg(root)
            .args(extra)
            .args(if given.is_none() {
                vec!["--control-socket".as_ref(), control.as_os_str()]
            } else {
                vec![]
            })
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn linerate serve");
        let mut startup = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut startup).unwrap();
        assert!(startup.starts_with("linerate serve: iface lr-app"), "startup line: {startup:?}");
        Server { child, startup, control }
    }

    /// SIGTERM; returns the exit status (bounded wait).
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        self.wait(within).expect("linerate serve did not exit in time after SIGTERM")
    }

    pub fn wait(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.control);
    }
}

/// A lab, a root with files and a running server.
pub struct Env {
    pub server: Server,
    pub root: TempDir,
    pub lab: LabGuard,
}

impl Env {
    /// `files`: (name, size) pairs generated under the root.
    pub fn new(tag: &str, config: impl FnOnce(LabConfig) -> LabConfig, files: &[(&str, u64)]) -> Env {
        Env::with_args(tag, config, files, &[])
    }

    /// Like [`Env::new`] with extra `linerate serve` flags.
    pub fn with_args(
        tag: &str,
        config: impl FnOnce(LabConfig) -> LabConfig,
        files: &[(&str, u64)],
        extra: &[&str],
    ) -> Env {
        let name = lab_name(tag);
        let lab = LabGuard::up(config(LabConfig::new(&name))).expect("lab up");
        let root = TempDir::new(&name);
        for (file, size) in files {
            write_test_file(&root.path().join(file), *size).unwrap();
        }
        let server = Server::start_with(&lab, root.path(), extra);
        Env { server, root, lab }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{SERVER}/{path}")
    }

    /// Runs `program args` in the kernel namespace under `timeout`.
    pub fn kern(&self, secs: u32, program: &str, args: &[&str]) -> Output {
        run_in(self.lab.kern_ns(), secs, program, args)
    }

    /// curl in the kernel namespace; asserts it succeeded; returns stdout.
    pub fn curl(&self, args: &[&str]) -> String {
        let out = self.kern(120, "curl", &[&["-sS", "--max-time", "110"], args].concat());
        assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Downloads `name` with curl and compares its SHA-256 with the original.
    pub fn download_matches(&self, name: &str) {
        let out = self.root.path().join(format!("{name}.dl"));
        self.curl(&["-o", out.to_str().unwrap(), &self.url(name)]);
        assert_eq!(sha256(&out).unwrap(), sha256(&self.root.path().join(name)).unwrap(), "{name}");
        std::fs::remove_file(out).unwrap();
    }
}

/// Runs `program args` in namespace `ns` with a hard time bound.
pub fn run_in(ns: &str, secs: u32, program: &str, args: &[&str]) -> Output {
    Command::new("timeout")
        .args([&secs.to_string(), "ip", "netns", "exec", ns, program])
        .args(args)
        .output()
        .expect("run a tool in the lab")
}

/// `linerate <args>` (the built binary), bounded to 60 s.
pub fn linerate(args: &[&str]) -> Output {
    Command::new("timeout").arg("60").arg(env!("CARGO_BIN_EXE_linerate")).args(args).output().unwrap()
}

/// Waits (bounded) until `cond` holds, looking every 50 ms.
pub fn wait_for(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The server's file counters (`name value` pairs on the `shard N:` lines), summed over shards.
pub fn file_counters(server: &Server) -> impl Fn(&str) -> u64 {
    let out = linerate(&["stats", "--socket", server.control.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "linerate stats: {text} {}", String::from_utf8_lossy(&out.stderr));
    move |name: &str| {
        let lines = text.lines().filter(|l| l.starts_with("shard "));
        let values = lines.map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == name).unwrap_or_else(|| panic!("no {name} in {l:?}"));
            words[at + 1].parse::<u64>().unwrap()
        });
        values.sum()
    }
}
