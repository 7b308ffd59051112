//! `linerate serve --cores` with four shards on a 4-queue veth (the shards' threads share the
//! machine's cores): 1,000 kernel-client connections, byte-exact, spread over every shard, then
//! a clean SIGTERM shutdown whose per-shard summary shows each shard served connections.
//! Run as root; bounded by `timeout` and deadlines; the lab goes down on drop.

mod serve_support;

use serve_support::{lab_name, run_in, TempDir};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use linerate_driver::lab::{LabConfig, LabGuard};

const SHARDS: usize = 4;
const CONNECTIONS: usize = 1000;

/// COUNT HTTP/1.1 requests (Connection: close), PAR at a time, alternating between the files;
/// each body must equal the file's bytes. Prints "ok <good> bad <bad> ..." and fails on any bad.
const CLIENT: &str = r#"
import socket, sys
from concurrent.futures import ThreadPoolExecutor
host, root, count, par = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
names = sys.argv[5:]
files = {n: open(root + "/" + n, "rb").read() for n in names}
def one(k):
    name = names[k % len(names)]
    try:
        s = socket.create_connection((host, 80), timeout=30)
        s.sendall(b"GET /%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % name.encode())
        got = bytearray()
        while True:
            d = s.recv(65536)
            if not d: break
            got += d
        s.close()
        head, _, body = bytes(got).partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200") or body != files[name]:
            return "connection %d: %r, %d body bytes" % (k, head[:40], len(body))
        return "ok"
    except Exception as e:
        return "connection %d: %r" % (k, e)
with ThreadPoolExecutor(par) as ex:
    results = list(ex.map(one, range(count)))
bad = [r for r in results if r != "ok"]
print("ok", len(results) - len(bad), "bad", len(bad), *bad[:5])
sys.exit(1 if bad else 0)
"#;

/// Our server process; killed on drop if still running.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn cores() -> String {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    (0..SHARDS).map(|i| (i % n).to_string()).collect::<Vec<_>>().join(",")
}

#[test]
fn four_shards_serve_a_thousand_connections_byte_exact() {
    let name = lab_name("shd");
    let lab = LabGuard::up(LabConfig { queues: SHARDS as u32, ..LabConfig::new(&name) }).expect("lab up");
    let root = TempDir::new(&name);
    let files = [("small", 1_000u64), ("medium", 70_001)];
    for (file, size) in files {
        linerate_app::demo::write_test_file(&root.path().join(file), size).unwrap();
    }
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_linerate"))
            .args(["serve", "--netns", lab.app_ns(), "--iface", lab.app_if(), "--ip", "198.18.0.2/24"])
            .args(["--cores", &cores(), "--drain-timeout", "5", "--root"])
            .arg(root.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn linerate serve"),
    );
    let mut startup = String::new();
    BufReader::new(server.0.stdout.take().unwrap()).read_line(&mut startup).unwrap();
    assert!(startup.contains(&format!("shards {SHARDS}")), "startup line: {startup:?}");
    assert!(startup.contains("steering hand-off"), "a veth has no RSS key: {startup:?}");

    let root_path = root.path().to_str().unwrap().to_owned();
    let mut args = vec!["-c", CLIENT, "198.18.0.2", &root_path, "1000", "32"];
    args.extend(files.iter().map(|(f, _)| *f));
    assert_eq!(CONNECTIONS, 1000);
    let out = run_in(lab.kern_ns(), 120, "python3", &args);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();

    // SAFETY: signalling our own child by pid.
    unsafe { libc::kill(server.0.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "linerate serve did not exit within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut summary = String::new();
    server.0.stderr.take().unwrap().read_to_string(&mut summary).unwrap();
    println!("{report}\n{summary}");
    assert!(out.status.success(), "kernel client: {report} {}", String::from_utf8_lossy(&out.stderr));
    assert!(report.starts_with(&format!("ok {CONNECTIONS} bad 0")), "{report}");
    assert!(status.success(), "linerate serve exited with {status}: {summary}");

    // "linerate serve: shard <i> core <c>: connections <n> ..."
    let per_shard: Vec<u64> = summary
        .lines()
        .filter(|l| l.starts_with("linerate serve: shard "))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "connections").expect("connections field");
            words[at + 1].parse().expect("a count")
        })
        .collect();
    assert_eq!(per_shard.len(), SHARDS, "one summary line per shard:\n{summary}");
    assert!(per_shard.iter().all(|&n| n > 0), "every shard must serve connections: {per_shard:?}");
    assert_eq!(per_shard.iter().sum::<u64>(), CONNECTIONS as u64, "{summary}");
}
