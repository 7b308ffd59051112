//! The open-loop keep-alive job against a real server: our kernel-socket server in the app
//! namespace of a private lab (its kernel given the app address, as the harness does for the
//! kernel servers), the job run from the kernel namespace over the veth pair, at a rate
//! far below the server's capacity. Every scheduled request must complete, none may be late by
//! the end, and the latency accounting must hold together (response ≥ service). Needs root;
//! the lab and the server are removed even on failure.

use std::io::{BufRead, BufReader};
use std::net::SocketAddrV4;
use std::process::{Child, Stdio};

use linerate_bench::load::{run_job, LoadJob, OpenLoopLoad};
use linerate_driver::lab::{netns_command, LabConfig, LabGuard, PREFIX_LEN};

/// Kills the child on drop.
struct Reap(Child);
impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes the directory on drop.
struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn open_loop_job_completes_its_timetable_against_a_kernel_server() {
    let lab = LabGuard::up(LabConfig::new(&format!("olp-{}", std::process::id()))).unwrap();
    let root = TempDir(std::env::temp_dir().join(format!("lrb-open-loop-{}", std::process::id())));
    std::fs::create_dir_all(&root.0).unwrap();
    std::fs::write(root.0.join("1k.bin"), [7u8; 1024]).unwrap();
    let app = lab.app_addr();
    let cidr = format!("{app}/{PREFIX_LEN}");
    lab.exec_app("ip", &["addr", "add", &cidr, "dev", lab.app_if()]).unwrap();
    let mut child = netns_command(lab.app_ns(), env!("CARGO_BIN_EXE_linerate-bench"))
        .args(["serve-kernel", "--listen", &format!("{app}:80"), "--root", &root.0.to_string_lossy()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _server = Reap(child);
    assert!(line.contains("listening"), "{line}");

    let _inside = lab.enter_kern().unwrap();
    let load = OpenLoopLoad {
        addr: SocketAddrV4::new(app, 80),
        path: "/1k.bin".into(),
        connections: 8,
        secs: 0.5,
        rate_per_sec: 2000.0,
    };
    let r = run_job(&LoadJob::OpenLoop(load), None).unwrap();
    let ol = r.open_loop.clone().expect("open-loop stats");
    assert_eq!(ol.scheduled, 1000, "{r:?}");
    assert_eq!((r.requests, r.errors, ol.unfinished, ol.abandoned), (1000, 0, 0, 0), "{r:?}");
    assert_eq!(r.bytes % 1000, 0, "every response the same size: {r:?}");
    assert!(r.bytes >= 1000 * 1024, "{r:?}");
    assert!(ol.cpu_secs > 0.0 && ol.cpu_secs < 5.0, "the generator thread's CPU: {r:?}");
    // Achieved rate: the whole timetable over its window stretched to the last completion,
    // which the drain bounds (0.5 s window + 1 s).
    assert!(r.secs >= 0.5 && r.secs < 1.6 && r.per_sec() <= 2000.0 + 1e-6, "{r:?}");
    let (lat, service, delay) = (r.latency_us.unwrap(), ol.service_us.unwrap(), ol.send_delay_us.unwrap());
    assert!(lat.p50 > 0.0 && lat.p99 >= lat.p50 && lat.p999.unwrap() >= lat.p99, "{r:?}");
    // Response time = send delay + service, request by request, so the medians cannot cross.
    assert!(lat.p50 >= service.p50 && lat.p50 >= delay.p50, "{r:?}");
}
