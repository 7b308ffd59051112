//! The kernel-socket server against real clients (curl, wget, wrk) across a private pair of
//! network namespaces joined by a veth link (198.18.1.1 server, 198.18.1.2 client). Each test
//! creates its own namespaces (names carry the pid and a per-test tag) and a guard deletes them
//! even when the test fails. Every client invocation carries its own time limit.

use linerate_app::http::HttpConfig;
use linerate_app::kernel_server::{KernelServer, KernelServerConfig, KernelServerStats};
use linerate_stack::time::Duration;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

const SERVER_IP: &str = "198.18.1.1";
const CLIENT_IP: &str = "198.18.1.2";
const PORT: u16 = 8080;

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

/// Two namespaces joined by a veth pair; deleted on drop (deleting a namespace deletes its end
/// of the veth, and with it the peer).
struct NetnsPair {
    server: String,
    client: String,
}

impl NetnsPair {
    fn new(tag: &str) -> NetnsPair {
        let pid = std::process::id();
        let pair = NetnsPair { server: format!("lrh-s-{pid}-{tag}"), client: format!("lrh-c-{pid}-{tag}") };
        // Interface names are limited to 15 bytes.
        let (vs, vc) = (format!("hs{}{tag}", pid % 100_000), format!("hc{}{tag}", pid % 100_000));
        ip(&["netns", "add", &pair.server]);
        ip(&["netns", "add", &pair.client]);
        ip(&[
            "link",
            "add",
            &vs,
            "netns",
            &pair.server,
            "type",
            "veth",
            "peer",
            "name",
            &vc,
            "netns",
            &pair.client,
        ]);
        for (ns, dev, addr) in [(&pair.server, &vs, SERVER_IP), (&pair.client, &vc, CLIENT_IP)] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        pair
    }

    /// A command run inside the client namespace.
    fn client_cmd(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.client, program]);
        cmd
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        for ns in [&self.server, &self.client] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Moves the calling thread into the named network namespace.
fn enter_netns(ns: &str) {
    let f = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
    // SAFETY: a valid namespace descriptor; setns only affects the calling thread's netns.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns({ns}): {}", std::io::Error::last_os_error());
}

/// The server running on its own thread inside the server namespace; stopped on drop.
struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<KernelServerStats>>,
    url: String,
}

impl Server {
    fn start(ns: &NetnsPair, root: &Path, http: HttpConfig) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let (ns_name, root, flag) = (ns.server.clone(), root.to_path_buf(), stop.clone());
        let thread = std::thread::spawn(move || {
            enter_netns(&ns_name);
            let listen: SocketAddr = format!("{SERVER_IP}:{PORT}").parse().unwrap();
            let mut config = KernelServerConfig::new(listen, root);
            config.http = http;
            config.core = Some(0);
            let server = KernelServer::bind(config).expect("bind");
            tx.send(server.local_addr().unwrap()).unwrap();
            server.run(&flag).expect("server loop")
        });
        let addr = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("server did not start");
        Server { stop, thread: Some(thread), url: format!("http://{addr}") }
    }

    fn stop(mut self) -> KernelServerStats {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().expect("server thread panicked")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("linerate-kernel-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("root")).unwrap();
        std::fs::create_dir_all(dir.join("out")).unwrap();
        TempDir(dir)
    }
    fn root(&self) -> PathBuf {
        self.0.join("root")
    }
    fn out(&self, name: &str) -> PathBuf {
        self.0.join("out").join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic pseudo-random content (xorshift64, seed from the size).
fn write_random(path: &Path, len: usize) {
    let mut seed = 0x2545_f491_4f6c_dd1d ^ len as u64;
    let mut data = Vec::with_capacity(len + 8);
    while data.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        data.extend_from_slice(&seed.to_le_bytes());
    }
    data.truncate(len);
    std::fs::write(path, data).unwrap();
}

fn sha256(path: &Path) -> String {
    let out = run(Command::new("sha256sum").arg(path));
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

const SIZES: [(&str, usize); 5] =
    [("zero", 0), ("one", 1), ("mss", 1460), ("mib", 1 << 20), ("big", 64 << 20)];

fn curl(ns: &NetnsPair, args: &[&str]) -> String {
    let out = run(ns.client_cmd("curl").args(["-sS", "--fail", "--max-time", "60"]).args(args));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn curl_get_head_range_and_upload() {
    let ns = NetnsPair::new("a");
    let dir = TempDir::new("curl");
    for (name, len) in SIZES {
        write_random(&dir.root().join(name), len);
    }
    let server = Server::start(&ns, &dir.root(), HttpConfig::default());
    for (name, _) in SIZES {
        let out = dir.out(name);
        curl(&ns, &["-o", out.to_str().unwrap(), &format!("{}/{name}", server.url)]);
        assert_eq!(sha256(&out), sha256(&dir.root().join(name)), "{name}");
    }
    // Ranges: compare with the same slice of the source.
    let source = std::fs::read(dir.root().join("mib")).unwrap();
    for (range, expect) in
        [("0-99", &source[..100]), ("1000-", &source[1000..]), ("-1460", &source[source.len() - 1460..])]
    {
        let out = dir.out("range");
        let code = curl(
            &ns,
            &["-r", range, "-o", out.to_str().unwrap(), "-w", "%{http_code}", &format!("{}/mib", server.url)],
        );
        assert_eq!(code, "206", "{range}");
        assert!(std::fs::read(&out).unwrap() == expect, "range {range} content differs");
    }
    // HEAD
    let head = curl(&ns, &["-I", &format!("{}/mss", server.url)]);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Length: 1460\r\n") && head.contains("ETag: "), "{head}");
    // If-None-Match with the ETag just served → 304.
    let etag = head.lines().find_map(|l| l.strip_prefix("ETag: ")).unwrap().trim().to_string();
    let code = curl(
        &ns,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &format!("If-None-Match: {etag}"),
            &format!("{}/mss", server.url),
        ],
    );
    assert_eq!(code, "304");
    // Upload with curl -T (which sends Expect: 100-continue for large bodies), then read back.
    let upload_src = dir.root().join("mib");
    let code = curl(
        &ns,
        &[
            "-T",
            upload_src.to_str().unwrap(),
            "-w",
            "%{http_code}",
            "-o",
            "/dev/null",
            &format!("{}/uploaded", server.url),
        ],
    );
    assert_eq!(code, "201");
    assert_eq!(sha256(&dir.root().join("uploaded")), sha256(&upload_src));
    // From stdin curl does not know the size, so it sends the body chunked.
    let mss = dir.root().join("mss");
    let out = run(ns
        .client_cmd("curl")
        .args(["-sS", "--fail", "--max-time", "60", "-T", "-", "-w", "%{http_code}", "-o", "/dev/null"])
        .arg(format!("{}/uploaded", server.url))
        .stdin(std::fs::File::open(&mss).unwrap()));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "204");
    assert_eq!(sha256(&dir.root().join("uploaded")), sha256(&mss));
    // Missing file → 404 (without --fail).
    let out = run(ns.client_cmd("curl").args([
        "-sS",
        "--max-time",
        "10",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{}/missing", server.url),
    ]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "404");
    let stats = server.stop();
    assert_eq!((stats.requests, stats.accepted, stats.aborted), (13, 13, 0), "{stats:?}");
}

#[test]
fn wget_downloads() {
    let ns = NetnsPair::new("b");
    let dir = TempDir::new("wget");
    for (name, len) in &SIZES[..4] {
        write_random(&dir.root().join(name), *len);
    }
    let server = Server::start(&ns, &dir.root(), HttpConfig::default());
    for (name, _) in &SIZES[..4] {
        let out = dir.out(name);
        run(ns.client_cmd("wget").args([
            "-q",
            "--timeout=30",
            "--tries=1",
            "-O",
            out.to_str().unwrap(),
            &format!("{}/{name}", server.url),
        ]));
        assert_eq!(sha256(&out), sha256(&dir.root().join(name)), "{name}");
    }
    server.stop();
}

#[test]
fn two_hundred_parallel_curls() {
    let ns = NetnsPair::new("c");
    let dir = TempDir::new("parallel");
    write_random(&dir.root().join("file"), 100_000);
    let server = Server::start(&ns, &dir.root(), HttpConfig::default());
    let mut cmd = ns.client_cmd("curl");
    cmd.args([
        "-sS",
        "--fail",
        "--max-time",
        "60",
        "--parallel",
        "--parallel-max",
        "200",
        "--parallel-immediate",
    ]);
    for i in 0..200 {
        cmd.args(["-o", dir.out(&format!("p{i}")).to_str().unwrap(), &format!("{}/file", server.url)]);
    }
    run(&mut cmd);
    let want = sha256(&dir.root().join("file"));
    for i in 0..200 {
        assert_eq!(sha256(&dir.out(&format!("p{i}"))), want, "download {i}");
    }
    let stats = server.stop();
    assert_eq!(stats.requests, 200, "{stats:?}");
    assert!(stats.accepted >= 1 && stats.refused == 0 && stats.aborted == 0, "{stats:?}");
}

#[test]
fn wrk_has_no_errors() {
    let ns = NetnsPair::new("d");
    let dir = TempDir::new("wrk");
    write_random(&dir.root().join("file"), 4096);
    let server = Server::start(&ns, &dir.root(), HttpConfig::default());
    let out = run(ns.client_cmd("timeout").args([
        "30",
        "wrk",
        "-t",
        "2",
        "-c",
        "64",
        "-d",
        "2s",
        "--timeout",
        "5s",
        &format!("{}/file", server.url),
    ]));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{text}");
    assert!(!text.contains("Socket errors") && !text.contains("Non-2xx"), "wrk reported errors:\n{text}");
    let requests: u64 = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ").map(|(n, _)| n.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("no request count in:\n{text}"));
    // A loose floor: the machine is shared, and correctness (no errors) is what this test is for.
    assert!(requests > 100, "only {requests} requests:\n{text}");
    let stats = server.stop();
    // wrk stops mid-request at the deadline, so the server may have parsed a few more.
    assert!(stats.requests >= requests, "{stats:?} vs wrk {requests}");
}

/// Runs `f` on a thread inside the client namespace (for raw-socket clients).
fn in_client_ns<T: Send + 'static>(ns: &NetnsPair, f: impl FnOnce() -> T + Send + 'static) -> T {
    let name = ns.client.clone();
    std::thread::spawn(move || {
        enter_netns(&name);
        f()
    })
    .join()
    .expect("client thread panicked")
}

fn read_to_close(stream: &mut TcpStream) -> String {
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn pipelining_half_close_and_slow_heads_over_real_sockets() {
    let ns = NetnsPair::new("e");
    let dir = TempDir::new("raw");
    std::fs::write(dir.root().join("a"), b"AAA").unwrap();
    std::fs::write(dir.root().join("b"), b"BBBBB").unwrap();
    let http = HttpConfig {
        header_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(500),
        ..HttpConfig::default()
    };
    let server = Server::start(&ns, &dir.root(), http);
    let addr = format!("{SERVER_IP}:{PORT}");
    let (pipelined, half_closed, slow) = in_client_ns(&ns, move || {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\nGET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
        let pipelined = read_to_close(&mut s);
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /b HTTP/1.0\r\n\r\n").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let half_closed = read_to_close(&mut s);
        // A head that never completes is answered 408 after header_timeout.
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /a HTTP/1.1\r\nHost: t\r\n").unwrap();
        let slow = read_to_close(&mut s);
        // A connection that never sends anything is closed silently after idle_timeout.
        let mut s = TcpStream::connect(&addr).unwrap();
        let started = std::time::Instant::now();
        assert_eq!(read_to_close(&mut s), "");
        assert!(started.elapsed() >= std::time::Duration::from_millis(400), "closed too early");
        (pipelined, half_closed, slow)
    });
    let bodies: Vec<&str> =
        pipelined.split("\r\n\r\n").skip(1).map(|p| p.split("HTTP/1.1").next().unwrap()).collect();
    assert_eq!(bodies, ["AAA", "BBBBB", "AAA"], "{pipelined}");
    assert!(half_closed.starts_with("HTTP/1.1 200 OK") && half_closed.ends_with("BBBBB"), "{half_closed}");
    assert!(slow.starts_with("HTTP/1.1 408 Request Timeout"), "{slow}");
    server.stop();
}
