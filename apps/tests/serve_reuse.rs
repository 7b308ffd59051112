//! `linerate serve` reuses a finished connection's buffers for the next one (`serve/shard.rs`
//! pool): every connection must see only its own bytes. Connections one after another leave
//! each kind of state behind (a pipelined request after `Connection: close`, a head cut off by
//! the client's FIN, a keep-alive pair) and the next must still get the exact file it asked
//! for. Two files of different sizes and contents, one read into the send ring and one lent
//! from a mapping. Run as root.

mod serve_support;

use linerate_driver::lab::NetnsEnter;
use serve_support::{Env, SERVER};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// Reads one response from `s`: (status, body).
fn response(s: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "connection ended inside a head: {head:?}");
        head.push(byte[0]);
    }
    let text = String::from_utf8(head).unwrap();
    let status = text[9..12].parse().unwrap();
    let len: usize = text
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.parse().unwrap()))
        .expect("content-length");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (status, body)
}

fn connect() -> TcpStream {
    let s = TcpStream::connect((SERVER, 80)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// The server closes after the response (a close, never a reset).
fn ends(mut s: TcpStream) {
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "bytes after the response: {rest:?}");
}

fn get(path: &str, close: bool) -> String {
    let connection = if close { "Connection: close\r\n" } else { "" };
    format!("GET /{path} HTTP/1.1\r\nHost: lab\r\n{connection}\r\n")
}

/// Three connections, each leaving a different state behind for the next to inherit.
fn round(i: usize, (name, want): (&str, &[u8]), (other, other_want): (&str, &[u8])) {
    // A closing request with the start of another behind it: left unread by the server.
    let mut s = connect();
    s.write_all(format!("{}{}", get(name, true), &get(other, false)[..20]).as_bytes()).unwrap();
    assert_eq!(response(&mut s), (200, want.to_vec()), "round {i}: {name} after pipelining");
    ends(s);
    // A head cut off by our FIN: the server answers nothing and closes.
    let mut s = connect();
    s.write_all(&get(other, false).as_bytes()[..25]).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    ends(s);
    // Keep-alive: both files on one connection, then a clean close.
    let mut s = connect();
    s.write_all(get(other, false).as_bytes()).unwrap();
    assert_eq!(response(&mut s), (200, other_want.to_vec()), "round {i}: {other}");
    s.write_all(get(name, true).as_bytes()).unwrap();
    assert_eq!(response(&mut s), (200, want.to_vec()), "round {i}: {name}");
    ends(s);
}

#[test]
fn reused_connections_serve_only_their_own_bytes() {
    let mut env = Env::new("reuse", |c| c, &[]);
    let small: Vec<u8> = (0..3_000u32).map(|i| (i * 7 + 1) as u8).collect();
    let large: Vec<u8> = (0..300_000u32).map(|i| ((i * 13 + 5) ^ (i >> 8)) as u8).collect();
    std::fs::write(env.root.path().join("s"), &small).unwrap();
    std::fs::write(env.root.path().join("a-longer-name"), &large).unwrap();
    let files = [("s", &small[..]), ("a-longer-name", &large[..])];
    let kern_ns = env.lab.kern_ns();
    // Scoped: the client thread enters the kernel namespace, the test thread stays outside.
    std::thread::scope(|scope| {
        let client = scope.spawn(|| {
            let _inside = NetnsEnter::enter(kern_ns).unwrap();
            for i in 0..60 {
                round(i, files[i % 2], files[(i + 1) % 2]);
            }
        });
        client.join().expect("client");
    });
    assert!(env.server.is_running(), "linerate serve exited");
}
