//! The lab's lifecycle: `up` is idempotent, `down` removes everything (also after a crash that
//! skipped cleanup, and after a half-built lab), the guard cleans up on panic, and impairments
//! land where they should. Needs root.

use std::panic;

use linerate_driver::lab::{Direction, Lab, LabConfig, LabGuard, Loss, RateLimit, APP_IF, KERNEL_IF};

fn unique(tag: &str) -> String {
    format!("{tag}-{}", std::process::id())
}

fn absent(lab: &Lab) -> bool {
    lab.status().expect("status").absent()
}

#[test]
fn up_is_idempotent_and_down_removes_everything() {
    let lab = Lab::new(LabConfig::new(&unique("idem"))).expect("config");
    lab.up().expect("first up");
    lab.up().expect("second up");
    let status = lab.status().expect("status");
    assert!(status.complete(), "{status:?}");
    assert!(!status.app_xdp && !status.kern_xdp);
    // The kernel end has the address and checksum offload off; the app end has no address.
    let kern = lab.exec_kern("ip", &["-4", "addr", "show", "dev", KERNEL_IF]).expect("kernel addr");
    assert!(kern.contains("198.18.0.1/24"), "{kern}");
    let app = lab.exec_app("ip", &["-4", "addr", "show", "dev", APP_IF]).expect("app addr");
    assert!(!app.contains("inet "), "the app namespace's kernel must not own an address: {app}");
    let offload = lab.exec_kern("ethtool", &["-k", KERNEL_IF]).expect("ethtool -k");
    assert!(offload.contains("tx-checksumming: off"), "{offload}");
    lab.down().expect("first down");
    lab.down().expect("second down");
    assert!(absent(&lab));
}

#[test]
fn down_cleans_up_after_a_crash_and_up_repairs_a_half_built_lab() {
    let config = LabConfig::new(&unique("crash"));
    // A "crash": the guard is leaked, so its Drop never runs.
    std::mem::forget(LabGuard::up(config.clone()).expect("up"));
    let lab = Lab::new(config).expect("config");
    assert!(lab.status().expect("status").complete());
    // Half-built: the kernel namespace vanished (and with it the veth pair).
    linerate_driver::lab::netns_run(lab.app_ns(), "true", &[]).expect("app namespace exists");
    std::process::Command::new("ip").args(["netns", "del", lab.kern_ns()]).status().expect("ip netns del");
    let status = lab.status().expect("status");
    assert!(!status.complete() && !status.absent(), "{status:?}");
    lab.up().expect("up repairs");
    assert!(lab.status().expect("status").complete());
    lab.down().expect("down");
    assert!(absent(&lab));
}

#[test]
fn guard_removes_the_lab_when_a_test_panics() {
    let config = LabConfig::new(&unique("panic"));
    let lab = Lab::new(config.clone()).expect("config");
    let result = panic::catch_unwind(|| {
        let _guard = LabGuard::up(config).expect("up");
        panic!("simulated test failure");
    });
    assert!(result.is_err());
    assert!(absent(&lab));
}

#[test]
fn impairments_are_applied_and_replaced() {
    let mut config = LabConfig::new(&unique("imp"));
    config.mtu = 9000;
    config.queues = 4;
    config.loss = Some(Loss { probability: 0.01, direction: Direction::Both });
    config.rate = Some(RateLimit { bits_per_sec: 100_000_000, burst_bytes: 64_000, max_queue_ms: 20 });
    let lab = LabGuard::up(config.clone()).expect("up");
    let rules = lab.exec_kern("iptables", &["-S"]).expect("iptables -S");
    // iptables prints the probability as a float32 (0.00999999978).
    assert_eq!(rules.matches("-m statistic --mode random --probability 0.0").count(), 2, "{rules}");
    let qdisc = lab.exec_kern("tc", &["qdisc", "show", "dev", KERNEL_IF]).expect("tc");
    assert!(qdisc.contains("tbf") && qdisc.contains("100Mbit"), "{qdisc}");
    let link = lab.exec_app("ip", &["-d", "link", "show", "dev", APP_IF]).expect("ip link");
    assert!(link.contains("mtu 9000") && link.contains("numrxqueues 4"), "{link}");

    // Re-running `up` with different impairments replaces them instead of stacking them.
    config.loss = Some(Loss { probability: 0.2, direction: Direction::ToApp });
    config.rate = None;
    let lab2 = Lab::new(config).expect("config");
    lab2.up().expect("up again");
    let rules = lab.exec_kern("iptables", &["-S"]).expect("iptables -S");
    assert_eq!(rules.matches("statistic").count(), 1, "{rules}");
    assert!(rules.contains("-A OUTPUT -o lr-kern") && rules.contains("0.2"), "{rules}");
    let qdisc = lab.exec_kern("tc", &["qdisc", "show", "dev", KERNEL_IF]).expect("tc");
    assert!(!qdisc.contains("tbf"), "{qdisc}");
}

#[test]
fn bad_names_and_settings_are_refused() {
    assert!(Lab::new(LabConfig::new("Bad Name")).is_err());
    assert!(Lab::new(LabConfig { mtu: 20, ..LabConfig::new("ok") }).is_err());
    let loss = Some(Loss { probability: 1.5, direction: Direction::Both });
    assert!(Lab::new(LabConfig { loss, ..LabConfig::new("ok") }).is_err());
}
