//! Four engine shards on a 4-queue veth in the lab (threads share the machine's cores): 1,000
//! kernel-client connections spread over every queue and shard with byte-exact responses, and
//! active opens from every shard to a kernel echo server that only work because misdirected
//! replies are handed to the opening shard (a veth exposes no RSS key).
//!
//! Needs root (CI runs as root). Bounded: the kernel client runs under `timeout`, every wait has
//! a deadline, and the lab and the kernel server are removed on drop, also on failure.

mod afxdp_util;
mod shard_engine_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use afxdp_util::{open_app, unique};
use linerate_driver::afxdp::{AfXdpConfig, XdpMode};
use linerate_driver::lab::{netns_command, LabConfig, LabGuard};
use linerate_driver::shard::{
    EngineShard, Mesh, MonotonicClock, RuntimeConfig, ShardRuntime, Steering, SteeringMode,
};
use linerate_stack::engine::{Engine, EngineConfig};
use linerate_stack::time::{Clock, Duration};
use linerate_stack::wire::{EthernetAddress, Ipv4Address};
use shard_engine_support::TestApp;

const SHARDS: usize = 4;
const LISTEN_PORT: u16 = 8080;
const ECHO_PORT: u16 = 7000;
const KERNEL_CONNECTIONS: usize = 1000;
const ECHO_CONNECTIONS_PER_SHARD: usize = 8;
const ECHO_BYTES: usize = 100_000;

/// The kernel's echo server: reads to EOF, writes it all back, closes.
const ECHO_SERVER: &str = r#"
import socket, sys, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2]))); srv.listen(256)
print("ready", flush=True)
def serve(c):
    data = bytearray()
    while True:
        d = c.recv(65536)
        if not d: break
        data += d
    c.sendall(data); c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// The kernel client: COUNT connections, PAR at a time, each asking for N bytes and checking
/// every byte; prints "ok <good> bad <bad>" and fails if any was wrong.
const KERNEL_CLIENT: &str = r#"
import socket, sys
from concurrent.futures import ThreadPoolExecutor
host, port, count, par = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
base = bytes(range(251)) * (40000 // 251 + 2)
def one(k):
    n = (k * 7919) % 30000 + 1
    try:
        s = socket.create_connection((host, port), timeout=30)
        s.sendall(b"%d\n" % n)
        got = bytearray()
        while True:
            d = s.recv(65536)
            if not d: break
            got += d
        s.close()
        return "ok" if got == base[n % 251 : n % 251 + n] else "connection %d: %d bytes, wrong" % (k, len(got))
    except Exception as e:
        return "connection %d: %r" % (k, e)
with ThreadPoolExecutor(par) as ex:
    results = list(ex.map(one, range(count)))
bad = [r for r in results if r != "ok"]
print("ok", len(results) - len(bad), "bad", len(bad), *bad[:5])
sys.exit(1 if bad else 0)
"#;

/// A child process we started; killed (by its own pid) and reaped on drop.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_echo_server(lab: &LabGuard) -> ChildGuard {
    let mut child = netns_command(lab.kern_ns(), "python3")
        .args(["-c", ECHO_SERVER, &lab.kern_addr().to_string(), &ECHO_PORT.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 echo server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("echo server output");
    assert_eq!(line.trim(), "ready", "kernel echo server did not start");
    ChildGuard(child)
}

fn cores() -> Vec<usize> {
    let allowed: Vec<usize> = core_affinity::get_core_ids().expect("core ids").iter().map(|c| c.id).collect();
    (0..SHARDS).map(|i| allowed[i % allowed.len()]).collect()
}

#[test]
fn four_shards_serve_a_thousand_kernel_connections_and_hand_off_active_open_replies() {
    let lab =
        LabGuard::up(LabConfig { queues: SHARDS as u32, ..LabConfig::new(&unique("shq")) }).expect("lab up");
    let _echo = start_echo_server(&lab);
    let (program, devices) = open_app(&lab, XdpMode::Native, &AfXdpConfig::default());
    assert_eq!(devices.len(), SHARDS, "one AF_XDP socket per veth queue");
    let steering = {
        let _inside = lab.enter_app().expect("enter app namespace");
        Steering::detect(lab.app_if(), SHARDS, SHARDS as u32).expect("placement")
    };
    assert!(
        matches!(steering.mode(), SteeringMode::HandOff { .. }),
        "a veth has no RSS: {:?}",
        steering.mode()
    );

    let clock = MonotonicClock::new();
    let echo_server = (Ipv4Address(lab.kern_addr().octets()), ECHO_PORT);
    let mut links = Mesh::new(SHARDS, 256).into_iter();
    let works: Vec<_> = devices
        .into_iter()
        .enumerate()
        .map(|(shard, device)| {
            assert_eq!(steering.queues_of(shard), vec![device.queue()]);
            let mut cfg = EngineConfig::new(
                Ipv4Address(lab.app_addr().octets()),
                24,
                EthernetAddress(device.mac()),
                0x5eed + shard as u64,
            );
            cfg.ephemeral_ports = steering.ephemeral_ports_of(shard);
            cfg.tcp.time_wait = Duration::from_millis(100);
            let mut engine = Engine::new(cfg, clock.now());
            let listener = engine.listen(LISTEN_PORT, 1024, None).expect("listen");
            let app = TestApp::new(
                shard,
                Some(listener),
                Some(echo_server),
                ECHO_CONNECTIONS_PER_SHARD,
                ECHO_BYTES,
            );
            let links = links.next().expect("links");
            EngineShard::new(engine, device, links, steering.router(shard), steering.opener(shard), app)
        })
        .collect();
    let config = RuntimeConfig {
        handle_signals: false,
        drain_deadline: Duration::from_secs(10),
        time_wait_deadline: Duration::from_secs(5),
        ..RuntimeConfig::default()
    };
    let runtime = ShardRuntime::start_each(config, &cores(), works).expect("start shards");

    let client = netns_command(lab.kern_ns(), "timeout")
        .args(["120", "python3", "-c", KERNEL_CLIENT, &lab.app_addr().to_string()])
        .args([LISTEN_PORT.to_string(), KERNEL_CONNECTIONS.to_string(), "32".to_string()])
        .output()
        .expect("kernel client");
    let client_out = String::from_utf8_lossy(&client.stdout).into_owned();

    // The echo connections run at the same time; wait (bounded) for all of them to end.
    let deadline = StdInstant::now() + StdDuration::from_secs(60);
    let echoes = (SHARDS * ECHO_CONNECTIONS_PER_SHARD) as u64;
    while StdInstant::now() < deadline {
        let app = runtime.work_stats().app;
        if app.echo_ok + app.echo_failed >= echoes {
            break;
        }
        std::thread::sleep(StdDuration::from_millis(10));
    }
    runtime.request_stop();
    let stats = runtime.join().expect("no shard failed");
    drop(program);

    for s in &stats.shards {
        let e = s.work.engine.to_stats();
        println!(
            "shard {} core {}: rx {} handed off {} received {} arp copies {} ring full {} | passive {} active {} | accepted {} served {} echo ok {} failed {}",
            s.shard, s.core, s.work.shard.rx_frames, s.work.shard.handed_off, s.work.shard.handoff_received,
            s.work.shard.arp_copies, s.work.shard.handoff_ring_full, e.passive_opens, e.active_opens,
            s.work.app.accepted, s.work.app.served, s.work.app.echo_ok, s.work.app.echo_failed
        );
    }
    assert!(
        client.status.success(),
        "kernel client: {client_out} {}",
        String::from_utf8_lossy(&client.stderr)
    );
    assert!(client_out.starts_with(&format!("ok {KERNEL_CONNECTIONS} bad 0")), "{client_out}");
    let total = stats.total;
    assert_eq!(total.app.accepted, KERNEL_CONNECTIONS as u64);
    assert_eq!(total.app.served, KERNEL_CONNECTIONS as u64);
    assert_eq!(total.app.echo_ok, echoes, "every echo connection came back byte-exact");
    assert_eq!(total.app.echo_failed, 0);
    for s in &stats.shards {
        assert!(s.work.app.accepted > 0, "shard {} served no connection: RSS spread is broken", s.shard);
        assert!(s.work.shard.rx_frames > 0, "shard {} received nothing on its queue", s.shard);
        assert_eq!(s.work.shard.opens_steered, ECHO_CONNECTIONS_PER_SHARD as u64);
    }
    assert!(total.shard.handed_off > 0, "replies to active opens should land on other shards' queues");
    assert_eq!(total.shard.handoff_ring_full, 0);
    assert_eq!(total.shard.handoff_oversized, 0);
    assert_eq!(total.engine.to_stats().passive_opens, KERNEL_CONNECTIONS as u64);
    assert_eq!(total.engine.to_stats().active_opens, echoes);
}
