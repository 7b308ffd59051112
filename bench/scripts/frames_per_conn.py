#!/usr/bin/env python3
"""Frames per short connection and per keep-alive request, linerate against nginx (issue 9).

Builds a private netns lab (`linerate lab up`, 198.18.0.0/24), serves a 1 KiB file with
`linerate serve` and then with nginx (kernel TCP) on the app side, runs the benchmark's own
epoll generator (`linerate-bench load`, the same job scenarios 3 and 4 use) on the kernel side
for a bounded time, captures the veth on the kernel side with tcpdump, and prints per
connection (scenario 3) or per request (scenario 4) how many frames each side sent, by kind,
plus the most common frame sequences. `--servers bypass` runs scenario 5's bypass client
instead of the kernel one (frames then come from `linerate serve --pcap`, one server per run).
`--kicks` counts the server's system calls (`sendto` is the AF_XDP TX kick), context switches
and task-clock with `perf stat`; `--strace` lists its system calls by name; `--record DIR`
runs `perf record` on the server core; `--size` sets the file's size. The lab's namespaces are
removed on exit, even on error.

Run as root after `cargo build --release -p linerate -p linerate-bench` (the binaries are looked
up in the repository's target/release, whatever the working directory; `--bin-dir` overrides):

    python3 bench/scripts/frames_per_conn.py [--servers linerate,nginx] [--conns 1,64] [--secs 2]
"""

import argparse
import collections
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

SERVER_IP = "198.18.0.2"
PORT = 80
FILE = "1k.bin"


def sh(*args, check=True, **kw):
    return subprocess.run(list(args), check=check, capture_output=True, text=True, **kw)


class Lab:
    def __init__(self, bin_dir):
        self.name = f"fr{os.getpid()}"
        self.app = f"lr-{self.name}-app"
        self.kern = f"lr-{self.name}-kern"
        self.bin = os.path.join(bin_dir, "linerate")
        sh(self.bin, "lab", "up", "--name", self.name)
        for ns in (self.app, self.kern):
            sh("ip", "netns", "exec", ns, "sysctl", "-qw",
               "net.ipv4.ip_local_port_range=1024 65000", "net.ipv4.tcp_tw_reuse=1")

    def down(self):
        sh(self.bin, "lab", "down", "--name", self.name, check=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.down()


def start_server(kind, lab, work, root):
    cmd = ["ip", "netns", "exec", lab.app, "taskset", "-c", "1"]
    if kind in ("linerate", "bypass"):
        sh("ip", "netns", "exec", lab.app, "ip", "addr", "del", f"{SERVER_IP}/24", "dev", "lr-app", check=False)
        cmd += [lab.bin, "serve", "--iface", "lr-app", "--ip", f"{SERVER_IP}/24", "--port", str(PORT),
                "--cores", "1", "--root", root, "--control-socket", os.path.join(work, "ctl.sock")]
        if kind == "bypass":
            # The bypass client owns the kernel side's veth: its frames are seen in our capture.
            cmd += ["--pcap", os.path.join(work, "serve.pcap")]
    else:
        sh("ip", "netns", "exec", lab.app, "ip", "link", "set", "dev", "lr-app", "xdp", "off", check=False)
        sh("ip", "netns", "exec", lab.app, "ip", "addr", "replace", f"{SERVER_IP}/24", "dev", "lr-app")
        conf = os.path.join(work, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""worker_processes 1;
worker_cpu_affinity 10;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 16384; multi_accept on; }}
http {{
  access_log off; sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 100000000; keepalive_timeout 65; default_type application/octet-stream;
  server {{ listen {SERVER_IP}:{PORT} backlog=4096; root {root}; }}
}}
""")
        cmd += ["nginx", "-p", work, "-e", os.path.join(work, "nginx-error.log"), "-c", conf]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, f"{kind}.log"), "w"),
                            start_new_session=True)
    return proc


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def server_pid(proc, kind):
    """The pid of the server process itself (below `ip netns exec` and taskset, which exec)."""
    if kind != "nginx":
        return proc.pid
    out = sh("pgrep", "-P", str(proc.pid), check=False).stdout.split()
    return int(out[0]) if out else proc.pid


def memory(pid):
    """VmRSS and VmData of the server, kB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        return f"RSS {fields['VmRSS'].split()[0]} kB, data {fields['VmData'].split()[0]} kB"
    except OSError:
        return "?"


def load(lab, bench, conns, secs, keep_alive, bypass):
    job = {"kind": "http", "addr": f"{SERVER_IP}:{PORT}", "path": f"/{FILE}", "connections": conns,
           "secs": secs, "keep_alive": keep_alive}
    if bypass:
        job = {"kind": "bypass_http", "load": job, "iface": "lr-kern", "ip": "198.18.0.1/24"}
    out = sh("ip", "netns", "exec", lab.kern, bench, "load", "--core", "0", json.dumps(job))
    return json.loads(out.stdout)


def wait_up(lab, bench):
    job = {"kind": "probe", "addr": f"{SERVER_IP}:{PORT}", "path": f"/{FILE}", "timeout_ms": 10000}
    sh("ip", "netns", "exec", lab.kern, bench, "load", "--core", "0", json.dumps(job))


def read_pcap(path, skip=0):
    """(client_port, from_client, flags, seq, ack, win, payload_len) per TCP frame."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    off = 24
    records = 0
    frames = []
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        if off + 16 + incl > len(data):
            break
        records += 1
        if records <= skip:
            off += 16 + incl
            continue
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(pkt) < 54 or pkt[12:14] != b"\x08\x00":
            continue
        ihl = (pkt[14] & 0xF) * 4
        if pkt[23] != 6:
            continue
        total = struct.unpack(">H", pkt[16:18])[0]
        src = ".".join(map(str, pkt[26:30]))
        t = 14 + ihl
        sport, dport, seq, ack = struct.unpack(">HHII", pkt[t:t + 12])
        doff = (pkt[t + 12] >> 4) * 4
        flags = pkt[t + 13]
        win = struct.unpack(">H", pkt[t + 14:t + 16])[0]
        plen = total - ihl - doff
        from_client = src != SERVER_IP
        port = sport if from_client else dport
        frames.append((port, from_client, flags, seq, ack, win, plen))
    return frames


# The server's system calls counted with --kicks: sendto is the AF_XDP TX kick (linerate) or
# nothing (nginx uses writev/sendfile); ppoll is linerate's idle sleep.
SYSCALLS = ("sendto", "ppoll", "recvfrom", "writev", "sendfile64", "epoll_wait", "accept4", "close")

FIN, SYN, RST, PSH, ACK = 1, 2, 4, 8, 16


def classify(frames):
    """Per flow: list of (side, kind) with pure ACKs split into ACK / window update / dup ACK."""
    flows = collections.defaultdict(list)
    for port, from_client, flags, seq, ack, win, plen in frames:
        flows[port].append((from_client, flags, seq, ack, win, plen))
    out = {}
    for port, segs in flows.items():
        last = {True: None, False: None}
        seq_list = []
        for from_client, flags, seq, ack, win, plen in segs:
            side = "C" if from_client else "S"
            if flags & RST:
                k = "RST"
            elif flags & SYN:
                k = "SYN-ACK" if flags & ACK else "SYN"
            elif plen > 0:
                k = "data+FIN" if flags & FIN else "data"
            elif flags & FIN:
                k = "FIN"
            else:
                prev = last[from_client]
                if prev is not None and prev[0] == ack and prev[2] == 0 and not prev[3] & (SYN | FIN):
                    k = "dupACK" if prev[1] == win else "winupd"
                else:
                    k = "ACK"
            last[from_client] = (ack, win, plen, flags)
            seq_list.append(f"{side}:{k}")
        out[port] = seq_list
    return out


def summarise(label, flows, units, unit_name, keep_alive):
    by_kind = collections.Counter()
    patterns = collections.Counter()
    n_flows = 0
    for port, seq in flows.items():
        if not keep_alive:
            # Only connections seen whole: from the SYN to the last frame.
            if not seq or seq[0] != "C:SYN":
                continue
        n_flows += 1
        by_kind.update(seq)
        patterns[" ".join(seq)] += 1
    n = max(units if keep_alive else by_kind["C:SYN"], 1)
    tot_c = sum(v for k, v in by_kind.items() if k.startswith("C:"))
    tot_s = sum(v for k, v in by_kind.items() if k.startswith("S:"))
    print(f"  {label}: {n} {unit_name}s; per {unit_name}: server sent {tot_s / n:.3f}, client sent {tot_c / n:.3f}")
    for k in sorted(by_kind):
        print(f"    {k:12s} {by_kind[k] / n:.3f}")
    if not keep_alive:
        print("    most common sequences:")
        for p, c in patterns.most_common(4):
            print(f"      {c:6d} x  {p}")
    return tot_s / n, tot_c / n


def keepalive_patterns(frames):
    """Per request on a keep-alive flow: the frames from one client request to the next."""
    flows = classify(frames)
    patterns = collections.Counter()
    for seq in flows.values():
        cur = []
        for tok in seq:
            if tok == "C:data" and cur:
                patterns[" ".join(cur)] += 1
                cur = []
            if tok == "C:data" or cur:
                cur.append(tok)
    for p, c in patterns.most_common(4):
        print(f"      {c:6d} x  {p}")


def main():
    ap = argparse.ArgumentParser()
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--bin-dir", default=os.path.join(repo, "target", "release"))
    ap.add_argument("--servers", default="linerate,nginx")
    ap.add_argument("--conns", default="1,64")
    ap.add_argument("--secs", type=float, default=2.0)
    ap.add_argument("--strace", action="store_true", help="print the server's system calls by name (strace -c)")
    ap.add_argument("--record", help="perf record the server core (CPU 1) into this directory, one file per run")
    ap.add_argument("--size", type=int, default=1024, help="bytes of the file served")
    ap.add_argument("--kicks", action="store_true", help="count the server's system calls (perf stat)")
    args = ap.parse_args()
    bench = os.path.abspath(os.path.join(args.bin_dir, "linerate-bench"))
    work = tempfile.mkdtemp(prefix="frames6-")
    root = os.path.join(work, "www")
    os.makedirs(root)
    with open(os.path.join(root, FILE), "wb") as f:
        f.write(bytes((i * 7 + 3) & 0xFF for i in range(args.size)))
    os.chmod(work, 0o755)
    os.chmod(root, 0o755)
    try:
        with Lab(args.bin_dir) as lab:
            for kind_ in args.servers.split(","):
                runs = [(c, k) for c in map(int, args.conns.split(",")) for k in (False, True)]
                if kind_ == "bypass":
                    # The server's own capture is complete only once it exits: one server per run.
                    for conns, keep_alive in runs:
                        with_server(kind_, lab, bench, work, root, [(conns, keep_alive)], args)
                else:
                    with_server(kind_, lab, bench, work, root, runs, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def with_server(kind_, lab, bench, work, root, runs, args):
    proc = start_server(kind_, lab, work, root)
    try:
        wait_up(lab, bench)
        for conns, keep_alive in runs:
            measure(lab, bench, work, kind_, proc, conns, keep_alive, args)
    finally:
        stop(proc)
    if kind_ == "bypass":
        conns, keep_alive = runs[0]
        report(kind_, conns, keep_alive, read_pcap(os.path.join(work, "serve.pcap")), *proc.result)
        os.remove(os.path.join(work, "serve.pcap"))


def measure(lab, bench, work, kind_, proc, conns, keep_alive, args):
    pcap = os.path.join(work, "cap.pcap")
    dump = subprocess.Popen(["ip", "netns", "exec", lab.kern, "tcpdump", "-i", "lr-kern", "-s", "96", "-B", "65536",
                             "-w", pcap, "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    time.sleep(0.5)
    tracer = None
    if args.kicks:
        events = ",".join(["task-clock", "context-switches", "raw_syscalls:sys_enter"]
                          + [f"syscalls:sys_enter_{s}" for s in SYSCALLS])
        tracer = subprocess.Popen(["perf", "stat", "-x", ",", "-e", events, "-o",
                                   os.path.join(work, "perf.txt"), "-p", str(server_pid(proc, kind_))],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(0.5)
    mem_before = memory(server_pid(proc, kind_))
    recorder = None
    if args.record:
        out = os.path.join(args.record, f"{kind_}-{conns}-{'ka' if keep_alive else 'short'}.data")
        recorder = subprocess.Popen(["perf", "record", "-q", "-C", "1", "-o", out], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(0.5)
    summary = None
    if args.strace:
        summary = subprocess.Popen(["strace", "-f", "-c", "-o", os.path.join(work, "strace.txt"), "-p",
                                    str(server_pid(proc, kind_))], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(0.5)
    bypass = kind_ == "bypass"
    if bypass:
        sh("ip", "netns", "exec", lab.kern, "ip", "addr", "del", "198.18.0.1/24", "dev", "lr-kern")
    try:
        res = load(lab, bench, conns, args.secs, keep_alive, bypass)
    finally:
        if bypass:
            sh("ip", "netns", "exec", lab.kern, "ip", "addr", "add", "198.18.0.1/24", "dev", "lr-kern")
    print(f"  {kind_} memory before / after: {mem_before} / {memory(server_pid(proc, kind_))}")
    for t in (tracer, summary, recorder):
        if t:
            os.killpg(t.pid, signal.SIGINT)
            t.wait()
    if summary:
        with open(os.path.join(work, "strace.txt")) as f:
            print(f"  {kind_}, {conns} conn(s), keep-alive {keep_alive}: server system calls (strace -c, slows it)")
            for line in f:
                parts = line.split()
                if len(parts) >= 5 and parts[3].isdigit():
                    per = int(parts[3]) / max(res["requests"], 1)
                    print(f"    {parts[-1]}: {per:.3f} per unit")
    time.sleep(0.3)
    os.killpg(dump.pid, signal.SIGINT)
    _, err = dump.communicate()
    dropped = [l for l in err.splitlines() if "dropped by kernel" in l]
    if bypass:
        # Reported once the server has exited and closed its capture.
        proc.result = (res, dropped, kicks(work, res, keep_alive) if tracer else [])
        return
    report(kind_, conns, keep_alive, read_pcap(pcap), res, dropped, kicks(work, res, keep_alive) if tracer else [])
    os.remove(pcap)


def kicks(work, res, keep_alive):
    unit = "request" if keep_alive else "connection"
    lines = []
    with open(os.path.join(work, "perf.txt")) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) < 3 or not parts[0].replace(".", "").isdigit():
                continue
            per = float(parts[0]) / max(res["requests"], 1)
            if parts[2] == "task-clock":
                lines.append(f"    server CPU (task-clock): {per * 1000:.1f} us per {unit}")
            elif parts[2] == "context-switches":
                lines.append(f"    context switches: {per:.3f} per {unit}")
            elif parts[2] == "raw_syscalls:sys_enter":
                lines.append(f"    system calls (all): {per:.3f} per {unit}")
            elif parts[2].startswith("syscalls:sys_enter_") and per > 0:
                name = parts[2].removeprefix("syscalls:sys_enter_")
                lines.append(f"    {name}: {per:.3f} per {unit}")
    return lines


def report(kind_, conns, keep_alive, frames, res, dropped, kick_lines):
    flows = classify(frames)
    unit = "request" if keep_alive else "connection"
    label = f"{kind_}, {conns} conn(s), {'keep-alive' if keep_alive else 'short'}"
    summarise(label, flows, res["requests"], unit, keep_alive)
    print(f"    generator: {res['requests']} {unit}s, {res['errors']} errors; tcpdump: {' '.join(dropped)}")
    if keep_alive:
        print("    most common per-request sequences (client request to next request):")
        keepalive_patterns(frames)

    for line in kick_lines:
        print(line)


if __name__ == "__main__":
    sys.exit(main())
