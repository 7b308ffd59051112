#!/usr/bin/env bash
# Regenerates the pcaps that stack/tests/wire_captures.rs checks our codecs against.
#
# Topology (three network namespaces, names unique per run, deleted on any exit):
#
#   A 198.18.2.1 ── veth ── 198.18.2.2 B 198.18.3.1 ── veth (mtu 1000) ── 198.18.3.2 C
#
# Everything is captured with tcpdump on A's veth while the Linux kernel generates the traffic:
#   tcp_handshake.pcap  SYN (mss,sackOK,TS,nop,wscale), SYN-ACK, data, FIN both ways, and a RST
#                       from a connection attempt to a closed port
#   tcp_sack.pcap       a 32 KB bulk transfer A→B where an iptables `statistic --mode nth` rule in
#                       B drops exactly one data segment, provoking SACK blocks (snaplen 96)
#   arp_icmp.pcap       ARP request/reply, ICMP echo request/reply, port unreachable (UDP to a
#                       closed port on B), fragmentation needed with next-hop MTU 1000 (a DF
#                       datagram A→C that does not fit B's link to C)
#
# Usage: sudo stack/tests/captures/capture.sh [output-dir]   (default: this directory)
# Needs: root, ip, tcpdump, iptables, ethtool, python3. Only touches its own namespaces.
set -euo pipefail

OUT=$(realpath "${1:-$(dirname "$0")}")
ID=$$
NS_A=lrw-a-$ID NS_B=lrw-b-$ID NS_C=lrw-c-$ID
VAB=lwab$ID VBA=lwba$ID VBC=lwbc$ID VCB=lwcb$ID
TMP=$(mktemp -d)
TCPDUMP_PID=
SERVER_PID=

cleanup() {
    for pid in $TCPDUMP_PID $SERVER_PID; do kill "$pid" 2>/dev/null || true; done
    for ns in "$NS_A" "$NS_B" "$NS_C"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
# Turn signals into a normal exit so the EXIT trap (our drop guard) still runs.
trap 'exit 130' INT TERM

in_a() { ip netns exec "$NS_A" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }
in_c() { ip netns exec "$NS_C" "$@"; }

setup() {
    for ns in "$NS_A" "$NS_B" "$NS_C"; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
    done
    ip link add "$VAB" netns "$NS_A" type veth peer name "$VBA" netns "$NS_B"
    ip link add "$VBC" netns "$NS_B" type veth peer name "$VCB" netns "$NS_C"
    ip -n "$NS_A" addr add 198.18.2.1/24 dev "$VAB"
    ip -n "$NS_B" addr add 198.18.2.2/24 dev "$VBA"
    ip -n "$NS_B" addr add 198.18.3.1/24 dev "$VBC"
    ip -n "$NS_C" addr add 198.18.3.2/24 dev "$VCB"
    ip -n "$NS_B" link set "$VBC" mtu 1000
    ip -n "$NS_C" link set "$VCB" mtu 1000
    for dev in "$NS_A:$VAB" "$NS_B:$VBA" "$NS_B:$VBC" "$NS_C:$VCB"; do
        ip -n "${dev%%:*}" link set "${dev#*:}" up
    done
    ip -n "$NS_A" route add 198.18.3.0/24 via 198.18.2.2
    ip -n "$NS_C" route add 198.18.2.0/24 via 198.18.3.1
    in_b sysctl -qw net.ipv4.ip_forward=1
    # Real MTU-sized segments with valid checksums on the wire (no GSO super-frames, no
    # partial checksums left for an offload that veth never performs).
    in_a ethtool -K "$VAB" tso off gso off gro off tx off >/dev/null
    in_b ethtool -K "$VBA" tso off gso off gro off tx off >/dev/null
}

start_capture() { # file snaplen filter
    # Not through in_a: $! must be tcpdump itself (ip netns exec execs it) so kill reaches it.
    ip netns exec "$NS_A" tcpdump -Z root -i "$VAB" -U -s "$2" -w "$TMP/$1" "$3" \
        2>"$TMP/$1.log" </dev/null >/dev/null &
    TCPDUMP_PID=$!
    for _ in $(seq 50); do
        grep -q listening "$TMP/$1.log" 2>/dev/null && return
        sleep 0.1
    done
    echo "tcpdump did not start: $(cat "$TMP/$1.log")" >&2
    exit 1
}

stop_capture() { # file
    sleep 0.5
    kill -INT "$TCPDUMP_PID"
    wait "$TCPDUMP_PID" || true
    TCPDUMP_PID=
    cp "$TMP/$1" "$OUT/$1"
    echo "$1: $(tcpdump -r "$OUT/$1" 2>/dev/null | wc -l) packets, $(stat -c %s "$OUT/$1") bytes"
}

cat >"$TMP/traffic.py" <<'PY'
import socket, struct, sys, time

def serve(port, count):
    """Accepts `count` connections, reads each to EOF, closes."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(4)
    print("ready", flush=True)
    for _ in range(count):
        c, _ = s.accept()
        while c.recv(65536):
            pass
        c.close()

def send(host, port, nbytes):
    c = socket.create_connection((host, port), timeout=5)
    payload = b"hello linerate\n" if nbytes == 0 else bytes(i % 251 for i in range(nbytes))
    c.sendall(payload)
    c.shutdown(socket.SHUT_WR)
    c.recv(1)  # wait for the peer's FIN
    c.close()

def connect_closed(host, port):
    try:
        socket.create_connection((host, port), timeout=2)
    except ConnectionRefusedError:
        return
    raise SystemExit("expected a RST")

def icmp_checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s & 0xFFFF) + (s >> 16)
    s += s >> 16
    return ~s & 0xFFFF

def ping(host):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.settimeout(2)
    body = b"linerate-echo-16"
    hdr = struct.pack("!BBHHH", 8, 0, 0, 0x4c52, 1)
    cs = icmp_checksum(hdr + body)
    s.sendto(struct.pack("!BBHHH", 8, 0, cs, 0x4c52, 1) + body, (host, 0))
    while True:
        data, _ = s.recvfrom(2048)
        if data[20] == 0:
            return

def udp(host, port, nbytes, dont_fragment):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if dont_fragment:
        s.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER = IP_PMTUDISC_DO
    s.connect((host, port))
    s.send(b"x" * nbytes)
    time.sleep(0.3)  # let the ICMP error come back before the socket closes

cmd, args = sys.argv[1], sys.argv[2:]
{"serve": lambda: serve(int(args[0]), int(args[1])),
 "send": lambda: send(args[0], int(args[1]), int(args[2])),
 "connect_closed": lambda: connect_closed(args[0], int(args[1])),
 "ping": lambda: ping(args[0]),
 "udp": lambda: udp(args[0], int(args[1]), int(args[2]), args[3] == "df")}[cmd]()
PY

start_server() { # port connections
    ip netns exec "$NS_B" python3 "$TMP/traffic.py" serve "$1" "$2" >"$TMP/server.$1" &
    SERVER_PID=$!
    for _ in $(seq 50); do
        grep -q ready "$TMP/server.$1" 2>/dev/null && return
        sleep 0.1
    done
    echo "server on port $1 did not start" >&2
    exit 1
}

setup

# ARP + ICMP first, so the ARP exchange is the first thing on a fresh link.
start_capture arp_icmp.pcap 0 "arp or icmp or udp"
in_a python3 "$TMP/traffic.py" ping 198.18.2.2
in_a python3 "$TMP/traffic.py" udp 198.18.2.2 9 16 no-df
in_a python3 "$TMP/traffic.py" udp 198.18.3.2 9 1200 df
stop_capture arp_icmp.pcap

start_capture tcp_handshake.pcap 0 "tcp"
start_server 7000 1
in_a python3 "$TMP/traffic.py" send 198.18.2.2 7000 0
in_a python3 "$TMP/traffic.py" connect_closed 198.18.2.2 7001
wait "$SERVER_PID"
stop_capture tcp_handshake.pcap

# Drop exactly one full-sized data segment (the 5th) so B answers with SACK blocks.
in_b iptables -A INPUT -p tcp --dport 7002 -m length --length 1000: \
    -m statistic --mode nth --every 1000000 --packet 4 -j DROP
start_capture tcp_sack.pcap 96 "tcp"
start_server 7002 1
in_a python3 "$TMP/traffic.py" send 198.18.2.2 7002 32768
wait "$SERVER_PID"
stop_capture tcp_sack.pcap
