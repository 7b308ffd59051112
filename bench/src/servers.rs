//! The servers under test, started on the server side of the [`Topology`] and pinned there:
//! `linerate serve` (AF_XDP), nginx (generated config: sendfile, no access log, one pinned
//! worker) and our own kernel-socket server (`linerate-bench serve-kernel`).
//!
//! Owns the server processes: a [`RunningServer`] is stopped (SIGTERM, then SIGKILL) when
//! dropped, and reports the CPU time its process tree used. Promises: a server that cannot
//! start is an error that says why, never a silent fallback to another server.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::topology::Topology;

/// Port every server listens on.
pub const PORT: u16 = 80;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    Linerate,
    Nginx,
    KernelServer,
}

impl ServerKind {
    pub fn label(self) -> &'static str {
        match self {
            ServerKind::Linerate => "linerate",
            ServerKind::Nginx => "nginx",
            ServerKind::KernelServer => "kernel_server",
        }
    }

    pub fn parse(s: &str) -> Option<ServerKind> {
        [ServerKind::Linerate, ServerKind::Nginx, ServerKind::KernelServer]
            .into_iter()
            .find(|k| k.label() == s)
    }

    /// Whether the server side's kernel must own the address (it does for kernel servers).
    pub fn kernel_stack(self) -> bool {
        self != ServerKind::Linerate
    }
}

/// What the linerate binary can do, found by asking its `--help`.
#[derive(Debug, Clone)]
pub struct LinerateCaps {
    pub bin: PathBuf,
    /// `Err(reason)` when `linerate serve` is missing.
    pub serve: Result<(), String>,
    /// `Err(reason)` when `linerate get` is missing.
    pub get: Result<(), String>,
    /// `linerate serve` takes `--tx-checksum`.
    pub tx_checksum_flag: bool,
}

impl LinerateCaps {
    pub fn probe(bin: &Path) -> LinerateCaps {
        let help = |sub: &str| -> String {
            let out = std::process::Command::new(bin).args([sub, "--help"]).output();
            out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
        };
        let has = |sub: &str| -> Result<(), String> {
            let out = std::process::Command::new(bin).args([sub, "--help"]).output().map_err(|e| {
                format!(
                    "{} not runnable ({e}); build it with `cargo build --release -p linerate`",
                    bin.display()
                )
            })?;
            let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
            if out.status.success() && text.contains("--iface") {
                Ok(())
            } else {
                Err(format!("`{} {sub}` does not exist yet", bin.display()))
            }
        };
        LinerateCaps {
            bin: bin.to_owned(),
            serve: has("serve"),
            get: has("get"),
            tx_checksum_flag: help("serve").contains("--tx-checksum"),
        }
    }
}

/// A started server; stopped on drop.
#[derive(Debug)]
pub struct RunningServer {
    pub kind: ServerKind,
    child: Child,
    /// `linerate serve`'s control socket, removed after the server stops.
    _control: Option<ControlSocket>,
}

/// A control-socket path of its own for one `linerate serve` run, so that concurrent bench runs
/// (or a bench next to a server started by hand) never collide on the default path under
/// `/run/linerate`, which depends only on the interface and port. Removes the socket file when
/// dropped, in case the server was killed before it could.
#[derive(Debug)]
pub struct ControlSocket(PathBuf);

/// Longest path a Unix socket address holds (`sun_path` is 108 bytes with the NUL).
const SUN_PATH_MAX: usize = 107;

impl ControlSocket {
    /// A path unique to this process and call, inside `dir` (the run's scratch directory), or
    /// in the system temp directory if `dir` is too deep for a socket address.
    pub fn new_in(dir: &Path) -> ControlSocket {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("linerate-{}-{n}.sock", std::process::id());
        let path = dir.join(&name);
        if path.as_os_str().len() <= SUN_PATH_MAX {
            return ControlSocket(path);
        }
        ControlSocket(std::env::temp_dir().join(name))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Everything a server start needs.
#[derive(Debug)]
pub struct ServerEnv<'a> {
    pub topology: &'a Topology,
    /// Directory served (holds the test files).
    pub root: &'a Path,
    /// Scratch directory for configs and logs.
    pub work: &'a Path,
    pub core: usize,
    pub linerate: &'a LinerateCaps,
    /// `auto`, `native` or `generic`, passed to `linerate serve`.
    pub xdp_mode: &'a str,
    /// `--tx-checksum` for `linerate serve` facing the kernel client (see `BenchConfig`).
    pub tx_checksum: &'a str,
}

impl RunningServer {
    /// `kernel_client`: the client is the kernel stack (not an XDP program behind the veth),
    /// so linerate may leave transmit checksums partial.
    pub fn start(
        kind: ServerKind,
        env: &ServerEnv<'_>,
        kernel_client: bool,
    ) -> anyhow::Result<RunningServer> {
        if kind == ServerKind::Linerate {
            env.linerate.serve.clone().map_err(anyhow::Error::msg)?;
        }
        env.topology.kernel_owns_server_ip(kind.kernel_stack())?;
        let core = env.core.to_string();
        let log = std::fs::File::create(env.work.join(format!("{}.log", kind.label())))?;
        let mut cmd = env.topology.server_command("taskset");
        cmd.args(["-c", &core]);
        let mut control = None;
        match kind {
            ServerKind::Linerate => {
                let socket = ControlSocket::new_in(env.work);
                #[rustfmt::skip]
                cmd.arg(&env.linerate.bin).args([
                    "serve", "--iface", &env.topology.server_iface(), "--ip", &env.topology.server_cidr(),
                    "--port", &PORT.to_string(), "--cores", &core, "--xdp-mode", env.xdp_mode,
                ]).arg("--root").arg(env.root).arg("--control-socket").arg(socket.path());
                if env.linerate.tx_checksum_flag {
                    let tx_checksum = if kernel_client { env.tx_checksum } else { "software" };
                    cmd.args(["--tx-checksum", tx_checksum]);
                }
                control = Some(socket);
            }
            ServerKind::Nginx => {
                let conf = write_nginx_conf(env)?;
                cmd.arg("nginx").arg("-p").arg(env.work).arg("-e").arg(env.work.join("nginx-error.log"));
                cmd.arg("-c").arg(conf);
            }
            ServerKind::KernelServer => {
                let exe = std::env::current_exe()?;
                let listen = format!("{}:{PORT}", env.topology.server_ip());
                cmd.arg(exe).args(["serve-kernel", "--listen", &listen, "--root"]).arg(env.root);
            }
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", kind.label()))?;
        let mut server = RunningServer { kind, child, _control: control };
        if kind == ServerKind::Linerate {
            let line = server.first_line(Duration::from_secs(10))?;
            println!("    linerate: {line}");
        }
        Ok(server)
    }

    /// The server's first stdout line (its startup line), or an error after `timeout`.
    fn first_line(&mut self, timeout: Duration) -> anyhow::Result<String> {
        let stdout = self.child.stdout.take().context("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the server never blocks on a full pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        match rx.recv_timeout(timeout) {
            Ok(line) if !line.is_empty() => Ok(line.trim().to_owned()),
            _ => anyhow::bail!("{} printed no startup line within {timeout:?}", self.kind.label()),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds used so far by the server and its children.
    pub fn cpu_secs(&self) -> f64 {
        crate::sys::tree_cpu_secs(self.pid())
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: signalling our own child, which has not been reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nginx as a fair kernel baseline: one worker pinned to the server core, sendfile, no access
/// log, unlimited keep-alive requests, everything else default.
fn write_nginx_conf(env: &ServerEnv<'_>) -> anyhow::Result<PathBuf> {
    // worker_cpu_affinity takes a bitmask string, lowest CPU rightmost.
    let mask: String = (0..=env.core).rev().map(|c| if c == env.core { '1' } else { '0' }).collect();
    let conf = format!(
        "worker_processes 1;\nworker_cpu_affinity {mask};\nworker_rlimit_nofile 65536;\ndaemon off;\n\
         pid {work}/nginx.pid;\nerror_log {work}/nginx-error.log warn;\n\
         events {{ worker_connections 16384; multi_accept on; }}\n\
         http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  tcp_nodelay on;\n\
         \x20 keepalive_requests 100000000;\n  keepalive_timeout 65;\n  default_type application/octet-stream;\n\
         \x20 server {{\n    listen {ip}:{PORT} backlog=4096;\n    root {root};\n  }}\n}}\n",
        work = env.work.display(),
        ip = env.topology.server_ip(),
        root = env.root.display(),
    );
    let path = env.work.join("nginx.conf");
    std::fs::write(&path, conf)?;
    Ok(path)
}

/// Writes `name` of `len` bytes of a cheap non-constant pattern into `dir`.
pub fn write_test_file(dir: &Path, name: &str, len: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let path = dir.join(name);
    if std::fs::metadata(&path).map(|m| m.len() == len).unwrap_or(false) {
        return Ok(());
    }
    let mut block = vec![0u8; 1 << 20];
    let mut x: u32 = 0x9e37_79b9;
    for b in block.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_linerate_run_gets_its_own_control_socket() {
        let dir = std::env::temp_dir();
        let (a, b) = (ControlSocket::new_in(&dir), ControlSocket::new_in(&dir));
        assert_ne!(a.path(), b.path());
        assert!(a.path().starts_with(&dir));
        assert!(a.path().to_string_lossy().contains(&std::process::id().to_string()));
        let deep = dir.join("d".repeat(120));
        let c = ControlSocket::new_in(&deep);
        assert!(c.path().as_os_str().len() <= SUN_PATH_MAX, "{}", c.path().display());
        std::fs::write(c.path(), b"").unwrap();
        let path = c.path().to_owned();
        drop(c);
        assert!(!path.exists(), "the socket file is removed on drop");
    }
}
