//! `linerate stats` and `linerate put` against `linerate serve` in a lab.
//!
//! Stats: while a kernel curl downloads, the control socket lists the connection (`ss -ti`-like)
//! and the counters (`nstat`-like), as text, as JSON (checked with python's parser) and with
//! `--watch`. Put: our bypass client uploads byte for byte (201, then 204 on overwrite), an
//! upload over `--max-upload` gets 413 and leaves nothing behind, curl's chunked `-T -` upload is
//! stored, and an upload cut off mid-body leaves neither the real name nor a temporary file.
//! Run as root.

mod serve_support;

use linerate_app::demo::{sha256, write_test_file};
use serve_support::{Env, MIB};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn linerate(args: &[&str]) -> Output {
    Command::new("timeout").arg("60").arg(env!("CARGO_BIN_EXE_linerate")).args(args).output().unwrap()
}

fn stdout_of(out: &Output, what: &str) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{what}: {text} {}", String::from_utf8_lossy(&out.stderr));
    text
}

/// Waits (bounded) until `cond` holds.
fn wait_for(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn upload_leftovers(root: &Path) -> Vec<String> {
    std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".linerate-upload-"))
        .collect()
}

#[test]
fn stats_while_a_download_runs() {
    let socket = std::env::temp_dir().join(format!("linerate-test-stats-{}.sock", std::process::id()));
    let sock = socket.to_str().unwrap();
    // Two shards on a two-queue lab: one control socket reports both.
    let two_queues = |c: linerate_driver::lab::LabConfig| linerate_driver::lab::LabConfig { queues: 2, ..c };
    let cores = if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 { "0,1" } else { "0,0" };
    let flags = ["--control-socket", sock, "--cores", cores];
    let mut env = Env::with_args("stats", two_queues, &[("big", 64 * MIB)], &flags);
    assert!(env.server.startup.contains(&format!("control {sock}")), "{}", env.server.startup);
    let out = env.root.path().join("big.dl");
    let mut curl = Command::new("ip")
        .args(["netns", "exec", env.lab.kern_ns(), "curl", "-sS", "--max-time", "60"])
        .args(["--limit-rate", "4M", "-o"])
        .arg(&out)
        .arg(env.url("big"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the download to start", Duration::from_secs(20), || {
        std::fs::metadata(&out).map_or(0, |m| m.len()) >= MIB
    });

    // The snapshot is at most a publish interval old: ask until the connection is listed.
    let mut text = String::new();
    wait_for("an ESTAB row", Duration::from_secs(10), || {
        text = stdout_of(&linerate(&["stats", "--socket", sock]), "linerate stats");
        text.contains("ESTAB")
    });
    assert!(text.starts_with("linerate stats: 2 shard(s), 1 connection(s)"), "{text}");
    assert!(text.contains("shard 0: open") && text.contains("shard 1: open"), "{text}");
    assert!(text.contains("198.18.0.2:80") && text.contains("198.18.0.1:"), "{text}");
    assert!(text.contains("bytes_acked:") && text.contains("cwnd:"), "{text}");
    assert!(text.lines().any(|l| l.split_whitespace().eq(["passive_opens", "1"])), "{text}");

    let check = "import json,sys\nd=json.load(sys.stdin)\nc=[x for s in d['shards'] for x in s['connections']]\n\
                 e=[x for x in c if x['state']=='ESTAB']\n\
                 assert len(d['shards'])==2 and sum(s['app']['accepted'] for s in d['shards'])==1, d\n\
                 assert d['totals']['passive_opens']==1, d['totals']\n\
                 assert len(e)==1 and e[0]['bytes_acked']>=1048576 and e[0]['remote'].startswith('198.18.0.1:'), c\n\
                 print('ok')";
    // Snapshots are published once per interval, so the JSON can lag the curl file by a few
    // hundred KiB: ask again (bounded) until it shows the first MiB acknowledged.
    let start = Instant::now();
    loop {
        let json = stdout_of(&linerate(&["stats", "--socket", sock, "--json"]), "linerate stats --json");
        let mut py = Command::new("python3")
            .args(["-c", check])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(py.stdin.as_mut().unwrap(), json.as_bytes()).unwrap();
        let py = py.wait_with_output().unwrap();
        if py.status.success() {
            break;
        }
        let error = String::from_utf8_lossy(&py.stderr);
        assert!(start.elapsed() < Duration::from_secs(10), "JSON check failed: {error}\n{json}");
        std::thread::sleep(Duration::from_millis(50));
    }

    let watch = linerate(&["stats", "--socket", sock, "--watch", "--count", "3", "--interval", "0.1"]);
    let watch = stdout_of(&watch, "linerate stats --watch");
    assert_eq!(watch.matches("linerate stats: 2 shard(s)").count(), 3, "{watch}");

    let _ = curl.kill();
    let _ = curl.wait();
    let status = env.server.terminate(Duration::from_secs(45));
    assert!(status.success(), "linerate serve exited with {status}");
    assert!(!socket.exists(), "the control socket outlived the server");
    let gone = linerate(&["stats", "--socket", sock]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("is linerate serve running?"));
}

#[test]
fn put_with_our_client_and_curl() {
    let env = Env::with_args("put", |c| c, &[], &["--max-upload", &(8 * MIB).to_string()]);
    let root = env.root.path();
    let scratch = serve_support::TempDir::new(&format!("{}-src", serve_support::lab_name("put")));
    let (ns, ip) = (env.lab.kern_ns(), "198.18.0.3/24");
    let put = |file: &Path, url: &str| {
        let args = ["put", "--netns", ns, "--iface", "lr-kern", "--ip", ip, file.to_str().unwrap(), url];
        linerate(&args)
    };

    // Our client: a new file (201), then an overwrite (204), byte for byte.
    let first = scratch.path().join("first");
    write_test_file(&first, 5 * MIB + 3).unwrap();
    let done = put(&first, &env.url("stored.bin"));
    assert!(
        done.stderr.is_empty(),
        "no progress bar off a terminal: {}",
        String::from_utf8_lossy(&done.stderr)
    );
    let report = stdout_of(&done, "linerate put");
    assert!(report.contains(&format!("{} bytes", 5 * MIB + 3)) && report.contains("status 201"), "{report}");
    assert_eq!(sha256(&root.join("stored.bin")).unwrap(), sha256(&first).unwrap());
    let second = scratch.path().join("second");
    write_test_file(&second, 1460).unwrap();
    let report = stdout_of(&put(&second, &env.url("stored.bin")), "linerate put (overwrite)");
    assert!(report.contains("status 204"), "{report}");
    assert_eq!(sha256(&root.join("stored.bin")).unwrap(), sha256(&second).unwrap());

    // Over the limit: 413, and nothing under the name or in temporary files.
    let big = scratch.path().join("big");
    write_test_file(&big, 8 * MIB + 1).unwrap();
    let refused = put(&big, &env.url("big.bin"));
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("413"), "{refused:?}");
    assert!(!root.join("big.bin").exists());

    // curl streaming from stdin uses chunked transfer coding.
    let script = format!(
        "cat {} | curl -sS --max-time 60 -o /dev/null -w '%{{http_code}}' -T - {}",
        first.display(),
        env.url("chunked.bin")
    );
    let code = env.kern(70, "sh", &["-c", &script]);
    assert_eq!(String::from_utf8_lossy(&code.stdout), "201", "{code:?}");
    assert_eq!(sha256(&root.join("chunked.bin")).unwrap(), sha256(&first).unwrap());

    // An upload killed mid-body: the temporary file appears, then goes; the name never does.
    let mut curl = Command::new("ip")
        .args(["netns", "exec", ns, "curl", "-sS", "--max-time", "60", "--limit-rate", "1M", "-T"])
        .arg(&first)
        .arg(env.url("cut.bin"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the upload's temporary file", Duration::from_secs(20), || !upload_leftovers(root).is_empty());
    curl.kill().unwrap();
    curl.wait().unwrap();
    wait_for("the temporary file to be removed", Duration::from_secs(20), || {
        upload_leftovers(root).is_empty()
    });
    assert!(!root.join("cut.bin").exists(), "an interrupted upload left a file under the real name");
    // Still serving.
    env.download_matches("stored.bin");
}
