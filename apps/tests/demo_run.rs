//! `linerate demo` end to end: builds its own lab, serves a generated file over AF_XDP and then
//! over kernel sockets to the kernel's curl, checks SHA-256 both times and prints both rates.
//! The run is bounded (timeout) and must leave no namespace behind. Run as root.

use std::process::Command;

#[test]
fn demo_compares_linerate_with_the_kernel() {
    let out = Command::new("timeout")
        .args(["240", env!("CARGO_BIN_EXE_linerate"), "demo", "--size-mib", "64"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("SHA-256") && stdout.contains("verified for both servers"), "{stdout}");
    let rate = |label: &str| -> f64 {
        let line =
            stdout.lines().find(|l| l.contains(label)).unwrap_or_else(|| panic!("no {label} line: {stdout}"));
        line.split_whitespace().rev().nth(1).and_then(|v| v.parse().ok()).unwrap()
    };
    assert!(rate("linerate (AF_XDP") > 0.0 && rate("kernel sockets") > 0.0, "{stdout}");
    assert!(stdout.contains("ratio linerate / kernel"), "{stdout}");
    // The demo's lab is gone (named demo-<its pid>).
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let left = String::from_utf8_lossy(&netns.stdout).lines().filter(|l| l.starts_with("lr-demo-")).count();
    assert_eq!(left, 0, "demo left namespaces behind");
}
