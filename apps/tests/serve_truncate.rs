//! A file truncated while `linerate serve` sends it from a mapping: the server survives (no
//! SIGBUS death), the client's download fails instead of completing with zeros, every byte it
//! did get is the original file's, and the server goes on serving. Run as root (veth lab).

mod serve_support;

use serve_support::{Env, MIB};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Waits (bounded) until `check` holds, looking every 20 ms.
fn wait_for(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn truncate_during_download(tag: &str, keep: u64) {
    let size = 64 * MIB;
    let env = Env::new(tag, |c| c, &[("big", size), ("after", MIB)]);
    let path = env.root.path().join("big");
    let original = std::fs::read(&path).unwrap();
    let out = env.root.path().join("big.dl");
    // Slow enough that the truncation lands mid-body.
    let mut curl = Command::new("timeout")
        .args(["60", "ip", "netns", "exec", env.lab.kern_ns(), "curl", "-sS", "--limit-rate", "8M", "-o"])
        .arg(&out)
        .arg(env.url("big"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn curl");
    let size_of = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    wait_for("the download to start", Duration::from_secs(30), || size_of(&out) >= 2 * MIB);
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(keep).unwrap();

    let status = curl.wait().unwrap();
    let err = std::io::read_to_string(curl.stderr.take().unwrap()).unwrap();
    let got = std::fs::read(&out).unwrap();
    assert!(!status.success(), "curl must fail, not complete ({} bytes): {err}", got.len());
    assert!(got.len() < size as usize, "a complete body after truncation to {keep}: {err}");
    let wrong = got.iter().zip(&original).position(|(a, b)| a != b);
    assert_eq!(wrong, None, "byte {wrong:?} of {} received differs from the file", got.len());

    let mut server = env.server;
    assert!(server.is_running(), "the server died on the truncation");
    let after = env.root.path().join("after.dl");
    let out = serve_support::run_in(
        env.lab.kern_ns(),
        60,
        "curl",
        &[
            "-sS",
            "--max-time",
            "50",
            "-o",
            after.to_str().unwrap(),
            &format!("http://{}/after", serve_support::SERVER),
        ],
    );
    assert!(out.status.success(), "curl after: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&after).unwrap(), std::fs::read(env.root.path().join("after")).unwrap());
    assert!(server.is_running());
    assert!(server.terminate(Duration::from_secs(20)).success(), "clean exit after the truncation");
}

#[test]
fn truncated_to_zero_mid_download_resets_the_client_and_the_server_lives() {
    truncate_during_download("trunc0", 0);
}

#[test]
fn truncated_to_a_prefix_delivers_only_real_bytes() {
    truncate_during_download("trunc8", 8 * MIB + 123);
}
