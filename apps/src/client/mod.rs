//! `linerate get` and `linerate put`: an HTTP/1.1 client on the bypass stack (the engine as the
//! active opener).
//!
//! Several URLs on one host share one keep-alive connection, requested one after another; with
//! `--connections N` (one URL) the size comes from a HEAD request and the file is fetched as N
//! byte ranges over N parallel connections, each written at its offset. Every body's length is
//! checked against `Content-Length`, and the number of handshakes (the engine's ActiveOpens)
//! is printed, so reuse is visible. `put` sends one file as a PUT with `Content-Length` and expects 200, 201 or 204.
//! Driver loop: the same run-to-completion shape as `serve` (receive → timers → events
//! → transmit → `poll(2)` when idle), bounded by an overall stall timeout.

pub mod progress;
pub mod response;
pub mod session;
pub mod url;

use crate::bypass::{Bypass, LinkOptions};
use anyhow::{anyhow, bail, Context};
use linerate_stack::engine::Event;
use linerate_stack::time::Duration;
use progress::Progress;
use session::{Outcome, Request, Session, Sink, UploadBody};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use url::Url;

/// Give up when no byte arrives for this long.
const STALL: Duration = Duration::from_secs(30);

/// Downloads `urls`; prints one summary line.
pub fn run(
    urls: &[String],
    output: Option<&Path>,
    connections: usize,
    link: &LinkOptions,
) -> anyhow::Result<()> {
    let urls = urls.iter().map(|u| Url::parse(u)).collect::<anyhow::Result<Vec<_>>>()?;
    if connections == 0 {
        bail!("--connections must be at least 1");
    }
    if connections > 1 && urls.len() != 1 {
        bail!("--connections {connections} splits one file: give exactly one URL");
    }
    let paths = output_paths(&urls, output)?;
    let mut client = Client { bypass: Bypass::open(link)?, sessions: Vec::new(), progress: Progress::new() };
    if connections > 1 {
        client.ranged(&urls[0], &paths[0], connections)?;
    } else {
        client.sequential(&urls, &paths)?;
    }
    client.close_all()?;
    client.progress.finish();
    // The engine's own count of active opens (Tcp ActiveOpens), not our bookkeeping: what the
    // "one handshake for many files" check must trust.
    let handshakes = client.bypass.engine.stats().active_opens;
    let bytes = client.progress.bytes();
    let secs = client.progress.elapsed().as_secs_f64().max(1e-6);
    println!(
        "linerate get: {} file(s), {bytes} bytes in {secs:.3} s ({:.1} Mbit/s), {handshakes} handshake(s)",
        paths.len(),
        bytes as f64 * 8e-6 / secs
    );
    Ok(())
}

/// Uploads `file` to `url` with PUT; prints one summary line.
pub fn put(file: &Path, url: &str, link: &LinkOptions) -> anyhow::Result<()> {
    let url = Url::parse(url)?;
    let f = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let meta = f.metadata().with_context(|| format!("cannot stat {}", file.display()))?;
    if !meta.is_file() {
        bail!("{}: not a regular file", file.display());
    }
    let len = meta.len();
    let mut client = Client { bypass: Bypass::open(link)?, sessions: Vec::new(), progress: Progress::new() };
    client.progress.expect(len);
    let upload = UploadBody { file: Rc::new(f), len };
    client.session_for(&url).push(Request { upload: Some(upload), ..Request::get(&url) });
    let outcome = client.drive()?.pop().ok_or_else(|| anyhow!("no answer to PUT"))?;
    client.close_all()?;
    client.progress.finish();
    let what = format!("http://{}{}", url.host, url.target);
    if !matches!(outcome.status, 200 | 201 | 204) {
        let hint = if outcome.status == 413 { " (larger than the server accepts)" } else { "" };
        bail!("{what}: HTTP status {}{hint}", outcome.status);
    }
    if outcome.sent_bytes != len {
        bail!("{what}: the server answered after {} of {len} bytes", outcome.sent_bytes);
    }
    let secs = client.progress.elapsed().as_secs_f64().max(1e-6);
    println!(
        "linerate put: {len} bytes to {what} in {secs:.3} s ({:.1} Mbit/s), status {}",
        len as f64 * 8e-6 / secs,
        outcome.status
    );
    Ok(())
}

/// Output file per URL: `-o` is the file for one URL, a directory for several.
fn output_paths(urls: &[Url], output: Option<&Path>) -> anyhow::Result<Vec<PathBuf>> {
    Ok(match (output, urls) {
        (Some(path), [_]) => vec![path.to_owned()],
        (Some(dir), _) => {
            if !dir.is_dir() {
                bail!("-o {}: with several URLs, -o must be an existing directory", dir.display());
            }
            urls.iter().map(|u| dir.join(u.file_name())).collect()
        }
        (None, _) => urls.iter().map(|u| PathBuf::from(u.file_name())).collect(),
    })
}

struct Client {
    bypass: Bypass,
    sessions: Vec<Session>,
    progress: Progress,
}

impl Client {
    /// One keep-alive connection per host; each URL to its own file.
    fn sequential(&mut self, urls: &[Url], paths: &[PathBuf]) -> anyhow::Result<Vec<Outcome>> {
        for (url, path) in urls.iter().zip(paths) {
            let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            let sink = Sink { file: Rc::new(file), offset: 0 };
            let request = Request { sink: Some(sink), ..Request::get(url) };
            self.session_for(url).push(request);
        }
        let outcomes = self.drive()?;
        for o in &outcomes {
            check(o, 200)?;
        }
        Ok(outcomes)
    }

    /// HEAD for the size, then `n` ranges over `n` connections.
    fn ranged(&mut self, url: &Url, path: &Path, n: usize) -> anyhow::Result<Vec<Outcome>> {
        self.session_for(url).push(Request { head_only: true, ..Request::get(url) });
        let head = self.drive()?.pop().ok_or_else(|| anyhow!("no answer to HEAD"))?;
        check(&head, 200)?;
        let size = head
            .content_length
            .ok_or_else(|| anyhow!("{}: HEAD gave no Content-Length; use --connections 1", url.target))?;
        let file = Rc::new(File::create(path).with_context(|| format!("cannot create {}", path.display()))?);
        file.set_len(size)?;
        self.progress.expect(size);
        let n = (n as u64).min(size.max(1));
        let span = size.div_ceil(n);
        for i in 0..n {
            let first = i * span;
            if first >= size {
                break;
            }
            let last = (first + span).min(size) - 1;
            if i > 0 {
                self.sessions.push(Session::new(url.addr, url.port));
            }
            let session = self.sessions.last_mut().expect("a session");
            let sink = Sink { file: file.clone(), offset: first };
            session.push(Request { range: Some((first, last)), sink: Some(sink), ..Request::get(url) });
        }
        let outcomes = self.drive()?;
        for o in &outcomes {
            check(o, 206)?;
        }
        let got: u64 = outcomes.iter().map(|o| o.body_bytes).sum();
        if got != size {
            bail!("{}: received {got} bytes of {size}", url.target);
        }
        Ok(outcomes)
    }

    fn session_for(&mut self, url: &Url) -> &mut Session {
        let remote = Session::new(url.addr, url.port);
        let found = self.sessions.iter().position(|s| s.remote() == remote.remote());
        match found {
            Some(i) => &mut self.sessions[i],
            None => {
                self.sessions.push(remote);
                self.sessions.last_mut().expect("just pushed")
            }
        }
    }

    /// Runs until every session is quiet; returns what finished in this run.
    fn drive(&mut self) -> anyhow::Result<Vec<Outcome>> {
        let mut last_progress = self.bypass.clock.now();
        loop {
            let now = self.bypass.clock.now();
            let rx = self.bypass.receive(now);
            while self.bypass.engine.poll_event().is_some_and(|e| !matches!(e, Event::Incoming(_))) {}
            let before = self.progress.bytes();
            let engine = &mut self.bypass.engine;
            let progress = &mut self.progress;
            for s in &mut self.sessions {
                s.start(now, engine)?;
                s.pump(now, engine, &mut |n| progress.add(n))?;
            }
            let tx = self.bypass.transmit(now);
            if self.sessions.iter().all(Session::is_quiet) {
                break;
            }
            if rx > 0 || self.progress.bytes() > before {
                last_progress = now;
            } else if now.saturating_duration_since(last_progress) > STALL {
                bail!("no progress for {} s: is the server reachable?", STALL.as_millis() / 1000);
            }
            if rx == 0 && tx == 0 {
                self.bypass.wait(now, Some(now + Duration::from_millis(100)));
            }
        }
        Ok(self.sessions.iter_mut().flat_map(|s| s.done.drain(..)).collect())
    }

    /// Half-closes every connection and waits (bounded) for the FIN exchanges.
    fn close_all(&mut self) -> anyhow::Result<()> {
        let start = self.bypass.clock.now();
        loop {
            let now = self.bypass.clock.now();
            self.bypass.receive(now);
            while self.bypass.engine.poll_event().is_some() {}
            for s in &mut self.sessions {
                s.finish(now, &mut self.bypass.engine);
                s.pump(now, &mut self.bypass.engine, &mut |_| {})?;
            }
            self.bypass.transmit(now);
            if self.sessions.iter().all(Session::is_closed) || now >= start + Duration::from_secs(2) {
                return Ok(());
            }
            self.bypass.wait(now, Some(now + Duration::from_millis(20)));
        }
    }
}

/// The response must have `status` and a body as long as it announced.
fn check(o: &Outcome, status: u16) -> anyhow::Result<()> {
    let what = format!("http://{}{}", o.request.url.host, o.request.url.target);
    if o.status != status {
        bail!("{what}: HTTP status {} (expected {status})", o.status);
    }
    if !o.request.head_only {
        if let Some(len) = o.content_length {
            if len != o.body_bytes {
                bail!("{what}: received {} bytes, Content-Length said {len}", o.body_bytes);
            }
        }
    }
    if let (Some((first, last)), Some(_)) = (o.request.range, &o.request.sink) {
        if o.body_bytes != last - first + 1 {
            bail!("{what}: range {first}-{last} came back with {} bytes", o.body_bytes);
        }
    }
    Ok(())
}
