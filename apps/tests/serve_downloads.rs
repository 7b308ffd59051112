//! `linerate serve` on AF_XDP against the kernel's HTTP clients in a lab: downloads of every
//! awkward size match byte for byte (SHA-256), wget works, Range and HEAD answers are right, and
//! with 2 % random loss on the kernel side downloads, wget, a range, a `curl -T` upload, 50
//! parallel curls and a wrk keep-alive run (zero errors) all still hold. Run as root.

mod serve_support;

use linerate_app::demo::{sha256, write_test_file};
use serve_support::{Env, MIB};
use std::time::{Duration, Instant};

const SIZES: [(&str, u64); 6] =
    [("empty", 0), ("one", 1), ("mss", 1460), ("one-mib", MIB), ("big", 64 * MIB), ("huge", 256 * MIB)];

#[test]
fn downloads_wget_range_and_head() {
    let env = Env::new("dl", |c| c, &SIZES);
    for (name, _) in &SIZES[..5] {
        env.download_matches(name);
    }
    // 256 MiB only if it fits the time budget (the 64 MiB download tells us the rate).
    let start = Instant::now();
    env.download_matches("big");
    if start.elapsed() < Duration::from_secs(7) {
        env.download_matches("huge");
    }

    let out = env.root.path().join("wget.dl");
    let wget = env.kern(60, "wget", &["-q", "-O", out.to_str().unwrap(), &env.url("one-mib")]);
    assert!(wget.status.success(), "wget: {}", String::from_utf8_lossy(&wget.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(env.root.path().join("one-mib")).unwrap());

    let original = std::fs::read(env.root.path().join("one-mib")).unwrap();
    let range = env.curl(&["-s", "-D", "-", "-r", "1000-1999", &env.url("one-mib"), "-o", "/dev/stdout"]);
    assert!(range.starts_with("HTTP/1.1 206"), "{range}");
    assert!(range.contains("Content-Range: bytes 1000-1999/1048576"), "{range}");
    let body = env.root.path().join("range.dl");
    env.curl(&["-r", "1000-1999", "-o", body.to_str().unwrap(), &env.url("one-mib")]);
    assert_eq!(std::fs::read(&body).unwrap(), &original[1000..2000]);
    let suffix = env.root.path().join("suffix.dl");
    env.curl(&["-r", "-10", "-o", suffix.to_str().unwrap(), &env.url("one-mib")]);
    assert_eq!(std::fs::read(&suffix).unwrap(), &original[original.len() - 10..]);
    let unsatisfiable = env.curl(&["-o", "/dev/null", "-w", "%{http_code}", "-r", "5-9", &env.url("one")]);
    assert_eq!(unsatisfiable, "416");

    let head = env.curl(&["-I", &env.url("big")]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains(&format!("Content-Length: {}", 64 * MIB)), "{head}");
    let missing = env.curl(&["-o", "/dev/null", "-w", "%{http_code}", &env.url("nope")]);
    assert_eq!(missing, "404");
}

#[test]
fn downloads_survive_two_percent_loss() {
    use linerate_driver::lab::{Direction, LabConfig, Loss};
    let lossy =
        |c: LabConfig| LabConfig { loss: Some(Loss { probability: 0.02, direction: Direction::Both }), ..c };
    let env = Env::new("loss", lossy, &SIZES[..5]);
    for (name, _) in &SIZES[..5] {
        env.download_matches(name);
    }
    let root = env.root.path();
    let original = std::fs::read(root.join("one-mib")).unwrap();

    let out = root.join("wget.dl");
    let wget = env.kern(60, "wget", &["-q", "-O", out.to_str().unwrap(), &env.url("one-mib")]);
    assert!(wget.status.success(), "wget: {}", String::from_utf8_lossy(&wget.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), original);
    let range = root.join("range.dl");
    env.curl(&["-r", "100000-299999", "-o", range.to_str().unwrap(), &env.url("one-mib")]);
    assert_eq!(std::fs::read(&range).unwrap(), &original[100_000..300_000]);

    let source = root.join("upload.src");
    write_test_file(&source, 2 * MIB + 5).unwrap();
    let code = env.curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-T",
        source.to_str().unwrap(),
        &env.url("up.bin"),
    ]);
    assert_eq!(code, "201");
    assert_eq!(sha256(&root.join("up.bin")).unwrap(), sha256(&source).unwrap());

    let script = format!(
        "for i in $(seq 1 50); do curl -sS --max-time 60 -w '%{{http_code}}\\n' -o {dir}/par.$i {url} & done; wait",
        dir = root.display(),
        url = env.url("one-mib")
    );
    let par = env.kern(90, "sh", &["-c", &script]);
    let codes = String::from_utf8_lossy(&par.stdout);
    assert_eq!(
        codes.lines().filter(|l| *l == "200").count(),
        50,
        "{codes} {}",
        String::from_utf8_lossy(&par.stderr)
    );
    let expected = sha256(&root.join("one-mib")).unwrap();
    for i in 1..=50 {
        assert_eq!(
            sha256(&root.join(format!("par.{i}"))).unwrap(),
            expected,
            "parallel download {i} under loss"
        );
    }

    // Keep-alive under loss: retransmissions, but no request may fail. The timeout covers a few
    // backed-off retransmission timeouts (a lost SYN alone costs 1 s).
    let wrk = env.kern(30, "wrk", &["-t", "2", "-c", "8", "-d", "2s", "--timeout", "10s", &env.url("mss")]);
    let report = String::from_utf8_lossy(&wrk.stdout);
    assert!(wrk.status.success(), "wrk: {report} {}", String::from_utf8_lossy(&wrk.stderr));
    assert!(!report.contains("Socket errors") && !report.contains("Non-2xx"), "wrk under loss:\n{report}");
    assert!(report.contains("requests in"), "{report}");
}
