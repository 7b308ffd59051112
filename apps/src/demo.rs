//! `linerate demo`: the same file served to the kernel's `curl` twice over one lab link — first
//! by linerate on AF_XDP, then by the same HTTP core on kernel sockets — with SHA-256 checks and
//! the two throughputs side by side.
//!
//! Owns a uniquely named lab and a temporary directory, both removed on every exit path (guards
//! with `Drop`), and the `linerate serve` child process (killed if still running). Any checksum
//! or length mismatch is an error (non-zero exit).

use crate::kernel_server::{KernelServer, KernelServerConfig};
use anyhow::{bail, Context};
use linerate_driver::lab::{Lab, LabConfig, LabGuard};
use linerate_driver::shard::signal::{install_shutdown_handlers, shutdown_requested};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Seed of the test file's contents, so every run serves the same bytes.
const SEED: u64 = 0x6c69_6e65_7261_7465;
const FILE_NAME: &str = "linerate-demo.bin";

/// Runs the demo with a `size_mib` MiB test file.
pub fn run(size_mib: u64) -> anyhow::Result<()> {
    if size_mib == 0 || size_mib > 4096 {
        bail!("--size-mib {size_mib} must be between 1 and 4096");
    }
    // Ctrl-C reaches curl and the server child too (same process group): they stop, the step
    // fails, and the guards below still remove the lab and the files instead of dying here.
    install_shutdown_handlers()?;
    let check = || match shutdown_requested() {
        true => Err(anyhow::anyhow!("interrupted")),
        false => Ok(()),
    };
    let pid = std::process::id();
    let lab = LabGuard::up(LabConfig::new(&format!("demo-{pid}")))?;
    let dir = TempDir::create(&format!("linerate-demo-{pid}"))?;
    let source = dir.path().join(FILE_NAME);
    write_test_file(&source, size_mib << 20)?;
    let expected = sha256(&source)?;
    check()?;
    let url = format!("http://{}/{FILE_NAME}", lab.app_addr());
    let download = dir.path().join("download.bin");

    let (xdp_mode, bypass_rate) = {
        let mut server = BypassServer::start(&lab, dir.path())?;
        let rate = fetch(&lab, &url, &download, &expected)?;
        check()?;
        server.stop()?;
        (server.xdp_mode.clone(), rate)
    };
    if lab.status()?.app_xdp {
        bail!("the XDP program is still attached after linerate stopped");
    }
    std::fs::remove_file(&download)?;

    let kernel_rate = {
        let cidr = format!("{}/{}", lab.app_addr(), linerate_driver::lab::PREFIX_LEN);
        lab.exec_app("ip", &["addr", "add", &cidr, "dev", lab.app_if()])?;
        let server = KernelThread::start(&lab, dir.path())?;
        let rate = fetch(&lab, &url, &download, &expected);
        server.stop()?;
        check()?;
        rate?
    };
    println!("linerate demo: {size_mib} MiB file, SHA-256 {} verified for both servers", &expected[..16]);
    println!("  linerate (AF_XDP, {xdp_mode} XDP): {:8.2} Gbit/s", bypass_rate * 8e-9);
    println!("  kernel sockets (same HTTP core): {:8.2} Gbit/s", kernel_rate * 8e-9);
    println!("  ratio linerate / kernel:         {:8.2}", bypass_rate / kernel_rate.max(1.0));
    Ok(())
}

/// Downloads `url` with the kernel namespace's curl, checks the SHA-256; returns bytes/s.
fn fetch(lab: &Lab, url: &str, out: &Path, expected: &str) -> anyhow::Result<f64> {
    let out_s = out.to_str().context("temporary path is not UTF-8")?;
    let args =
        ["-sS", "--fail", "--max-time", "120", "-o", out_s, "-w", "%{size_download} %{speed_download}", url];
    let report = lab.exec_kern("curl", &args)?;
    let mut fields = report.split_whitespace();
    let speed: f64 = fields.nth(1).and_then(|s| s.parse().ok()).context("curl printed no speed")?;
    let got = sha256(out)?;
    if got != expected {
        bail!("downloaded file differs: SHA-256 {got}, expected {expected}");
    }
    Ok(speed)
}

/// `linerate serve` as a child process in the lab's app namespace.
struct BypassServer {
    child: Child,
    xdp_mode: String,
}

impl BypassServer {
    fn start(lab: &Lab, root: &Path) -> anyhow::Result<BypassServer> {
        let exe = std::env::current_exe().context("cannot find the linerate executable")?;
        let cidr = format!("{}/{}", lab.app_addr(), linerate_driver::lab::PREFIX_LEN);
        let mut child = Command::new(exe)
            .args(["serve", "--netns", lab.app_ns(), "--iface", lab.app_if(), "--ip", &cidr, "--port", "80"])
            .arg("--root")
            .arg(root)
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start `linerate serve`")?;
        let mut line = String::new();
        let stdout = child.stdout.take().context("no stdout")?;
        BufReader::new(stdout).read_line(&mut line)?;
        let mut server = BypassServer { child, xdp_mode: String::new() };
        if !line.starts_with("linerate serve:") {
            let _ = server.child.kill();
            bail!("`linerate serve` did not start (see its error above)");
        }
        server.xdp_mode =
            line.split_whitespace().skip_while(|w| *w != "xdp").nth(1).unwrap_or("?").to_owned();
        Ok(server)
    }

    /// SIGTERM, then wait (bounded) for a clean exit.
    fn stop(&mut self) -> anyhow::Result<()> {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("`linerate serve` exited with {status}");
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("`linerate serve` did not exit within 40 s of SIGTERM")
    }
}

impl Drop for BypassServer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The kernel-socket server on a thread inside the app namespace.
struct KernelThread {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl KernelThread {
    fn start(lab: &Lab, root: &Path) -> anyhow::Result<KernelThread> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let (ns, root, flag) = (lab.app_ns().to_owned(), root.to_owned(), stop.clone());
        let listen = std::net::SocketAddr::from((lab.app_addr(), 80));
        let thread = std::thread::spawn(move || -> anyhow::Result<()> {
            let bound = linerate_driver::lab::NetnsEnter::enter(&ns)
                .map_err(anyhow::Error::from)
                .and_then(|inside| Ok((inside, KernelServer::bind(KernelServerConfig::new(listen, root))?)));
            match bound {
                Ok((_inside, server)) => {
                    let _ = ready_tx.send(Ok(()));
                    server.run(&flag).map(drop)
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    Ok(())
                }
            }
        });
        let me = KernelThread { stop, thread: Some(thread) };
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => Ok(me),
            Ok(Err(e)) => Err(e.context("kernel server")),
            Err(_) => {
                me.stop.store(true, Ordering::Relaxed);
                bail!("the kernel server did not start")
            }
        }
    }

    fn stop(mut self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => bail!("the kernel server thread panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for KernelThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A directory removed with everything in it on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn create(name: &str) -> anyhow::Result<TempDir> {
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(TempDir(path))
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `len` pseudo-random bytes (xorshift64*, fixed seed).
pub fn write_test_file(path: &Path, len: u64) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut state = SEED;
    let mut block = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word.copy_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(())
}

/// SHA-256 of a file, hex, computed by coreutils' `sha256sum` (no hashing code of our own).
pub fn sha256(path: &Path) -> anyhow::Result<String> {
    let out = Command::new("sha256sum").arg(path).output().context("cannot run sha256sum (coreutils)")?;
    if !out.status.success() {
        bail!("sha256sum {} failed", path.display());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.split_whitespace().next().unwrap_or_default().to_owned())
}
