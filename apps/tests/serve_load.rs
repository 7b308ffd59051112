//! `linerate serve` under concurrent kernel clients, uploads, hostile requests and SIGTERM:
//! 200 parallel curls, wrk with 16 connections and zero errors, `curl -T` uploads stored byte
//! for byte, malformed requests answered with the right status without hurting the server, and
//! a download in flight when SIGTERM arrives completes before the server exits 0. Run as root.

mod serve_support;

use linerate_app::demo::sha256;
use serve_support::{Env, MIB};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn parallel_curls_and_wrk() {
    // Two queues per veth end: the single shard must serve frames arriving on either.
    let two_queues = |c: linerate_driver::lab::LabConfig| linerate_driver::lab::LabConfig { queues: 2, ..c };
    let env = Env::new("par", two_queues, &[("one-mib", MIB), ("small", 4096)]);
    assert!(env.server.startup.contains("queues 2"), "{}", env.server.startup);
    let expected = sha256(&env.root.path().join("one-mib")).unwrap();
    // 200 curls at once, each to its own file.
    let script = format!(
        "for i in $(seq 1 200); do curl -sS --max-time 60 -w '%{{http_code}}\\n' -o {dir}/par.$i {url} & done; wait",
        dir = env.root.path().display(),
        url = env.url("one-mib")
    );
    let out = env.kern(90, "sh", &["-c", &script]);
    let codes = String::from_utf8_lossy(&out.stdout);
    let ok = codes.lines().filter(|l| *l == "200").count();
    assert_eq!(ok, 200, "status codes: {codes} {}", String::from_utf8_lossy(&out.stderr));
    for i in 1..=200 {
        let path = env.root.path().join(format!("par.{i}"));
        assert_eq!(sha256(&path).unwrap(), expected, "parallel download {i}");
    }

    let wrk = env.kern(30, "wrk", &["-t", "2", "-c", "16", "-d", "2s", &env.url("small")]);
    let report = String::from_utf8_lossy(&wrk.stdout);
    assert!(wrk.status.success(), "wrk: {report} {}", String::from_utf8_lossy(&wrk.stderr));
    assert!(!report.contains("Socket errors"), "wrk saw errors:\n{report}");
    assert!(!report.contains("Non-2xx"), "wrk saw non-2xx answers:\n{report}");
    let requests: u64 = report
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(requests > 100, "wrk completed only {requests} requests:\n{report}");
}

#[test]
fn uploads_and_malformed_requests() {
    let env = Env::new("upl", |c| c, &[("small", 4096)]);
    let source = env.root.path().join("source.bin");
    linerate_app::demo::write_test_file(&source, 3 * MIB + 17).unwrap();
    let code = env.curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-T",
        source.to_str().unwrap(),
        &env.url("up.bin"),
    ]);
    assert!(code == "201" || code == "200" || code == "204", "upload answered {code}");
    assert_eq!(sha256(&env.root.path().join("up.bin")).unwrap(), sha256(&source).unwrap());

    for (request, status) in [
        ("GARBAGE\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "400"),
        ("GET /../../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n", "40"),
        ("BREW /small HTTP/1.1\r\nHost: a\r\n\r\n", "405"),
        ("GET /small HTTP/9.9\r\nHost: a\r\n\r\n", "505"),
    ] {
        let script = format!(
            "printf '{}' | socat -t 2 - TCP:198.18.0.2:80",
            request.replace('\r', "\\r").replace('\n', "\\n")
        );
        let out = env.kern(10, "sh", &["-c", &script]);
        let answer = String::from_utf8_lossy(&out.stdout);
        assert!(answer.starts_with(&format!("HTTP/1.1 {status}")), "{request:?} got {answer:?}");
    }
    // Longer than the request-line limit (4096) but within the head limit (8192): 414 however
    // the bytes are segmented. (A 9000-byte line gets 414 or 431 depending on segmentation.)
    let long = format!("GET /{} HTTP/1.1\\r\\n\\r\\n", "a".repeat(5000));
    let out = env.kern(10, "sh", &["-c", &format!("printf '{long}' | socat -t 2 - TCP:198.18.0.2:80")]);
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        answer.starts_with("HTTP/1.1 414"),
        "long request line got {answer:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Still serving.
    env.download_matches("small");
}

#[test]
fn sigterm_drains_an_inflight_download() {
    let mut env = Env::new("term", |c| c, &[("big", 64 * MIB)]);
    let out = env.root.path().join("big.dl");
    // About 2 s at this rate, so SIGTERM lands mid-transfer.
    let mut curl = Command::new("ip")
        .args([
            "netns",
            "exec",
            env.lab.kern_ns(),
            "curl",
            "-sS",
            "--max-time",
            "60",
            "--limit-rate",
            "32M",
            "-o",
        ])
        .arg(&out)
        .arg(env.url("big"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // SIGTERM once the transfer is well under way (bounded wait).
    let started = std::time::Instant::now();
    while std::fs::metadata(&out).map_or(0, |m| m.len()) < 4 * MIB {
        assert!(started.elapsed() < Duration::from_secs(20), "the download did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(curl.try_wait().unwrap().is_none(), "the download finished before SIGTERM");
    let status = env.server.terminate(Duration::from_secs(45));
    assert!(status.success(), "linerate serve exited with {status}");
    let curl_status = curl.wait().unwrap();
    assert!(curl_status.success(), "the in-flight download failed: {curl_status}");
    assert_eq!(sha256(&out).unwrap(), sha256(&env.root.path().join("big")).unwrap());
    assert!(!env.lab.status().unwrap().app_xdp, "XDP program still attached after exit");
}
