//! `linerate serve` on AF_XDP against the kernel's HTTP clients in a lab: downloads of every
//! awkward size match byte for byte (SHA-256), wget works, Range and HEAD answers are right, and
//! the same holds with 2 % random loss on the kernel side. Run as root.

mod serve_support;

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
}
