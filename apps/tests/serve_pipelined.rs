//! Pipelined keep-alive requests for small files (kept in memory, `http::files::SMALL_BODY_MAX`)
//! over one connection, more response bytes at once than the server's 1 MiB send buffer holds,
//! so a response head and its in-memory body (queued with one engine write, `serve/conn.rs`) are
//! cut short and finished part by part: every byte must still arrive in order, and each body is
//! counted once.
//!
//! Run as root (veth lab).

mod serve_support;

use serve_support::{file_counters, wait_for, Env, SERVER};
use std::time::Duration;

/// Sends every request at once over one connection, reads until as many whole responses as
/// requests arrived (by `Content-Length`), writes them to stdout. Fails if the server goes quiet
/// for 10 s: a response left waiting for a `Writable` nobody owes stalls until the idle timeout.
const CLIENT: &str = r#"
import socket, sys
host, paths = sys.argv[1], sys.argv[2].split(",")
s = socket.socket()
s.settimeout(10)
s.connect((host, 80))
s.sendall(b"".join(b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % p.encode() for p in paths))
got, pos, done = bytearray(), 0, 0
while done < len(paths):
    end = got.find(b"\r\n\r\n", pos)
    if end >= 0:
        length = [l for l in bytes(got[pos:end]).split(b"\r\n") if l.lower().startswith(b"content-length:")]
        total = end + 4 + int(length[0].split(b":")[1])
        if len(got) >= total:
            pos, done = total, done + 1
            continue
    chunk = s.recv(65536)
    if not chunk:
        break
    got += chunk
sys.stdout.buffer.write(got)
"#;

/// Splits `bytes` into responses; returns each body (by `Content-Length`).
fn bodies(mut bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete head") + 4;
        let head = std::str::from_utf8(&bytes[..end]).unwrap();
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .expect("Content-Length")
            .parse()
            .unwrap();
        out.push(&bytes[end..end + len]);
        bytes = &bytes[end + len..];
    }
    out
}

#[test]
fn pipelined_small_bodies_survive_a_full_send_buffer() {
    let env = Env::new("pipesmall", |c| c, &[("kib", 1024), ("limit", 16 * 1024)]);
    let read = |name: &str| std::fs::read(env.root.path().join(name)).unwrap();
    // About 2.5 MB of responses asked for at once: the first pump fills the 1 MiB send buffer,
    // so a head and body are refused in part and the rest is sent piece by piece as it drains.
    let names: Vec<&str> = (0..160).map(|i| if i % 4 == 0 { "kib" } else { "limit" }).collect();
    let out = env.kern(120, "python3", &["-c", CLIENT, SERVER, &names.join(",")]);
    assert!(out.status.success(), "client: {}", String::from_utf8_lossy(&out.stderr));
    let got = bodies(&out.stdout);
    assert_eq!(got.len(), names.len(), "whole responses");
    for (i, (body, name)) in got.iter().zip(&names).enumerate() {
        assert!(*body == read(name).as_slice(), "response {i} ({name}) differs from the file");
    }
    let mut counters = file_counters(&env.server);
    wait_for("every body counted", Duration::from_secs(10), || {
        counters = file_counters(&env.server);
        counters("bodies_memory") == names.len() as u64
    });
    assert_eq!(counters("bodies_read"), 0);
    assert_eq!(counters("bodies_cut"), 0);
}
