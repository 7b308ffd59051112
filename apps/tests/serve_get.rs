//! `linerate get` (the client on the bypass stack) against three servers: `linerate serve`
//! (bypass on both ends of the lab), our HTTP core on kernel sockets, and python's http.server
//! (HTTP/1.0, one connection per file). Several files on one host must use one handshake;
//! `--connections 4` fetches one file as four ranges. Run as root.

mod serve_support;

use linerate_app::demo::{sha256, write_test_file};
use linerate_app::kernel_server::{KernelServer, KernelServerConfig};
use linerate_driver::lab::{LabConfig, LabGuard, NetnsEnter};
use linerate_driver::pcap::{PcapReader, PcapRecord};
use serve_support::{lab_name, run_in, Env, TempDir, MIB};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn get(ns: &str, iface: &str, ip: &str, args: &[&str]) -> String {
    let mut full = vec![env!("CARGO_BIN_EXE_linerate"), "get", "--netns", ns, "--iface", iface, "--ip", ip];
    full.extend_from_slice(args);
    let out: Output = std::process::Command::new("timeout").arg("90").args(&full).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "linerate get {args:?}: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    // stderr is not a terminal here: no progress bar, nothing else either.
    assert!(out.stderr.is_empty(), "linerate get wrote to stderr: {}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn same(a: &std::path::Path, b: &std::path::Path) {
    assert_eq!(sha256(a).unwrap(), sha256(b).unwrap(), "{} vs {}", a.display(), b.display());
}

#[test]
fn get_from_linerate_serve_reuses_one_connection() {
    let env = Env::new("getsv", |c| c, &[("a", 1460), ("b", MIB), ("c", 16 * MIB)]);
    let out = TempDir::new(&format!("{}-out", lab_name("getsv")));
    let dir = out.path().to_str().unwrap();
    // The client owns 198.18.0.3 on the kernel-side interface (the kernel keeps 198.18.0.1).
    let (ns, ip) = (env.lab.kern_ns(), "198.18.0.3/24");
    let pcap = out.path().join("get.pcap");
    let pcap_s = pcap.to_str().unwrap();
    let report =
        get(ns, "lr-kern", ip, &["--pcap", pcap_s, "-o", dir, &env.url("a"), &env.url("b"), &env.url("c")]);
    assert!(report.contains("3 file(s)") && report.contains(", 1 handshake(s)"), "{report}");
    // The capture holds both directions: exactly one SYN from us and one SYN-ACK back.
    let records = PcapReader::new(std::fs::File::open(&pcap).unwrap()).unwrap().read_all().unwrap();
    let tcp_flags = |r: &PcapRecord| {
        (r.data.len() > 47 && r.data[12..14] == [8, 0] && r.data[23] == 6).then(|| r.data[47])
    };
    let syns = records.iter().filter(|r| tcp_flags(r) == Some(0x02)).count();
    let synacks = records.iter().filter(|r| tcp_flags(r) == Some(0x12)).count();
    assert_eq!((syns, synacks), (1, 1), "{} frames captured", records.len());
    assert!(records.len() > 16 * 1024 * 1024 / 1500, "only {} frames captured", records.len());
    for f in ["a", "b", "c"] {
        same(&out.path().join(f), &env.root.path().join(f));
    }
    let ranged = out.path().join("ranged");
    let report =
        get(ns, "lr-kern", ip, &["--connections", "4", "-o", ranged.to_str().unwrap(), &env.url("c")]);
    // One HEAD plus four ranges, the HEAD's connection reused for the first range.
    assert!(report.contains(", 4 handshake(s)"), "{report}");
    same(&ranged, &env.root.path().join("c"));
}

#[test]
fn get_from_kernel_servers() {
    let name = lab_name("getk");
    let lab = LabGuard::up(LabConfig::new(&name)).unwrap();
    let root = TempDir::new(&name);
    for (f, size) in [("x", 100_000), ("y", 3 * MIB), ("z", 7)] {
        write_test_file(&root.path().join(f), size).unwrap();
    }
    let out = TempDir::new(&format!("{name}-out"));
    let dir = out.path().to_str().unwrap().to_owned();

    // Our HTTP core on kernel sockets in the kernel namespace: keep-alive, so one handshake.
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, kern_ns, server_root) = (stop.clone(), lab.kern_ns().to_owned(), root.path().to_owned());
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let _inside = NetnsEnter::enter(&kern_ns).unwrap();
        let listen = "198.18.0.1:8080".parse().unwrap();
        let server = KernelServer::bind(KernelServerConfig::new(listen, server_root)).unwrap();
        tx.send(()).unwrap();
        server.run(&flag).unwrap();
    });
    rx.recv().unwrap();
    let urls: Vec<String> = ["x", "y", "z"].iter().map(|f| format!("http://198.18.0.1:8080/{f}")).collect();
    let mut args = vec!["-o", dir.as_str()];
    args.extend(urls.iter().map(String::as_str));
    let report = get(lab.app_ns(), "lr-app", "198.18.0.2/24", &args);
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    assert!(report.contains("3 file(s)") && report.contains(", 1 handshake(s)"), "{report}");
    for f in ["x", "y", "z"] {
        same(&out.path().join(f), &root.path().join(f));
    }

    // python's http.server speaks HTTP/1.0 and closes after each response: one handshake each.
    let root_s = root.path().to_str().unwrap().to_owned();
    let mut python = std::process::Command::new("ip")
        .args(["netns", "exec", lab.kern_ns(), "python3", "-m", "http.server", "8000"])
        .args(["--bind", "198.18.0.1", "--directory", &root_s])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) until it listens.
    let probe = "for i in $(seq 1 100); do curl -s -o /dev/null http://198.18.0.1:8000/ && exit 0; sleep 0.05; done; exit 1";
    let ready = run_in(lab.kern_ns(), 10, "sh", &["-c", probe]);
    let py_dir = out.path().join("py");
    std::fs::create_dir(&py_dir).unwrap();
    let report = ready.status.success().then(|| {
        get(
            lab.app_ns(),
            "lr-app",
            "198.18.0.2/24",
            &["-o", py_dir.to_str().unwrap(), "http://198.18.0.1:8000/x", "http://198.18.0.1:8000/y"],
        )
    });
    let _ = python.kill();
    let _ = python.wait();
    let report = report.expect("python http.server did not start");
    assert!(report.contains("2 file(s)") && report.contains(", 2 handshake(s)"), "{report}");
    for f in ["x", "y"] {
        same(&py_dir.join(f), &root.path().join(f));
    }
}
