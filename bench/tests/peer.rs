//! NIC mode's plumbing without a second machine: a `linerate-bench peer` and a kernel server
//! in the kernel namespace of a private lab, and the harness side (this test, entered into that
//! namespace) sending it load jobs (closed and open loop) over the peer protocol exactly as
//! `run --nic ... --peer` does. Needs root; the lab and both children are removed even on failure.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, SocketAddrV4};
use std::process::{Child, Stdio};

use linerate_bench::load::{HttpLoad, LoadJob, OpenLoopLoad};
use linerate_bench::topology::{NicConfig, Topology};
use linerate_driver::lab::{netns_command, LabConfig, LabGuard};

/// Kills the child on drop.
struct Reap(Child);
impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts our binary in `ns` and waits for its first stdout line (printed once it listens).
fn start(ns: &str, args: &[&str]) -> (Reap, String) {
    let mut child = netns_command(ns, env!("CARGO_BIN_EXE_linerate-bench"))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (Reap(child), line)
}

#[test]
fn peer_runs_jobs_sent_over_the_control_connection() {
    let lab = LabGuard::up(LabConfig::new(&format!("peer-{}", std::process::id()))).unwrap();
    let kern = lab.kern_addr();
    let root = std::env::temp_dir().join(format!("lrb-peer-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("1k.bin"), [7u8; 1024]).unwrap();
    let (_server, line) = start(
        lab.kern_ns(),
        &["serve-kernel", "--listen", &format!("{kern}:80"), "--root", &root.to_string_lossy()],
    );
    assert!(line.contains("listening"), "{line}");
    let (_peer, line) = start(lab.kern_ns(), &["peer", "--listen", &format!("{kern}:7700")]);
    assert!(line.contains("waiting for jobs"), "{line}");

    let topology = Topology::Nic(NicConfig {
        iface: "unused".into(),
        server_ip: kern,
        prefix: 24,
        client_ip: kern,
        client_iface: "unused".into(),
        control: SocketAddr::from((kern, 7700)),
    });
    let _inside = lab.enter_kern().unwrap();
    let addr = SocketAddrV4::new(kern, 80);
    let probe =
        topology.run_load(&LoadJob::Probe { addr, path: "/1k.bin".into(), timeout_ms: 2000 }, 0).unwrap();
    assert_eq!(probe.requests, 1);
    let load = HttpLoad { addr, path: "/1k.bin".into(), connections: 4, secs: 0.3, keep_alive: true };
    let r = topology.run_load(&LoadJob::Http(load), 0).unwrap();
    assert!(r.requests > 0 && r.errors == 0, "{r:?}");
    assert!(r.latency_us.is_some_and(|l| l.p50 > 0.0 && l.p99 >= l.p50));
    assert_eq!(r.cpu, 0, "the peer pins the job to the core it is given");
    let open = OpenLoopLoad { addr, path: "/1k.bin".into(), connections: 4, secs: 0.3, rate_per_sec: 500.0 };
    let r = topology.run_load(&LoadJob::OpenLoop(open), 0).unwrap();
    let ol = r.open_loop.expect("the open-loop stats come back over the control connection");
    assert_eq!((ol.scheduled, r.requests, r.errors), (150, 150, 0), "{ol:?}");
    let missing = topology.run_load(&LoadJob::Probe { addr, path: "/nope".into(), timeout_ms: 100 }, 0);
    assert!(missing.unwrap_err().to_string().contains("peer"), "a failed job comes back as an error");
    std::fs::remove_dir_all(&root).unwrap();
}
