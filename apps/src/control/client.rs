//! `linerate stats`: asks a running server's control socket for its tables and prints them,
//! once or (`--watch`) repeatedly, redrawing the terminal in place.

use anyhow::{bail, Context};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where servers put their control sockets by default.
pub const SOCKET_DIR: &str = "/run/linerate";

/// What `linerate stats` was asked for.
#[derive(Debug, Clone)]
pub struct StatsOptions {
    /// The control socket; `None` picks the only one under [`SOCKET_DIR`].
    pub socket: Option<PathBuf>,
    pub json: bool,
    pub watch: bool,
    pub interval: Duration,
    /// With `watch`, stop after this many reports (for scripts); `None` runs until interrupted.
    pub count: Option<u64>,
}

/// Fetches one document (`json` or `text`) from the server at `socket`.
pub fn fetch(socket: &Path, json: bool) -> anyhow::Result<String> {
    let mut stream = UnixStream::connect(socket).with_context(|| {
        format!("cannot reach the server's control socket {} (is linerate serve running?)", socket.display())
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(if json { b"json\n" } else { b"text\n" })?;
    let mut doc = String::new();
    stream.read_to_string(&mut doc).context("reading the server's answer")?;
    if let Some(e) = doc.strip_prefix("error: ") {
        bail!("the server refused the request: {}", e.trim());
    }
    Ok(doc)
}

/// The only socket under [`SOCKET_DIR`], or a clear error naming the choices.
fn find_socket() -> anyhow::Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(SOCKET_DIR)
        .map(|dir| {
            dir.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "sock")).collect()
        })
        .unwrap_or_default();
    found.sort();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("no control socket under {SOCKET_DIR}: is linerate serve running? (or pass --socket)"),
        many => {
            let names: Vec<String> = many.iter().map(|p| p.display().to_string()).collect();
            bail!("several servers are running; pick one with --socket: {}", names.join(", "))
        }
    }
}

/// Runs `linerate stats`.
pub fn run(opts: &StatsOptions) -> anyhow::Result<()> {
    let socket = match &opts.socket {
        Some(p) => p.clone(),
        None => find_socket()?,
    };
    let stdout = std::io::stdout();
    if !opts.watch {
        stdout.lock().write_all(fetch(&socket, opts.json)?.as_bytes())?;
        return Ok(());
    }
    // SAFETY: isatty only inspects the descriptor.
    let terminal = unsafe { libc::isatty(1) } == 1;
    let mut shown = 0u64;
    loop {
        let doc = fetch(&socket, opts.json)?;
        let mut out = stdout.lock();
        if terminal && !opts.json {
            // Home and clear, so the table redraws in place like `watch`.
            out.write_all(b"\x1b[H\x1b[2J")?;
        }
        out.write_all(doc.as_bytes())?;
        out.flush()?;
        drop(out);
        shown += 1;
        if opts.count.is_some_and(|c| shown >= c) {
            return Ok(());
        }
        std::thread::sleep(opts.interval);
    }
}
