//! `linerate serve`'s slow-client defences on the bypass stack: a request head dribbled in
//! slower than `--header-timeout` gets 408 and the connection closes; an idle keep-alive
//! connection is closed after one to two `--idle-timeout`s; afterwards the control socket reports no open
//! connection. Run as root.

mod serve_support;

use serve_support::Env;
use std::time::{Duration, Instant};

#[test]
fn slow_heads_get_408_and_idle_connections_close() {
    let socket = std::env::temp_dir().join(format!("linerate-test-timeouts-{}.sock", std::process::id()));
    let sock = socket.to_str().unwrap();
    let flags = ["--header-timeout", "1", "--idle-timeout", "2", "--control-socket", sock];
    let env = Env::with_args("tmo", |c| c, &[("small", 100)], &flags);

    // Half a head, then silence for longer than the header timeout (the pipe stays open).
    let slow =
        "(printf 'GET /small HTTP/1.1\\r\\nHost: a\\r\\n'; sleep 4) | socat -t 0.5 - TCP:198.18.0.2:80";
    let start = Instant::now();
    let out = env.kern(10, "sh", &["-c", slow]);
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.starts_with("HTTP/1.1 408"), "slow head got {answer:?}");
    assert!(answer.contains("Connection: close"), "{answer}");

    // A complete request, then an idle keep-alive connection: answered, then closed by the
    // server. Output progress is noticed at the next deadline check, so the close comes one to
    // two idle timeouts after the request (the client would wait 8 s for the end of the stream).
    let idle = "import socket,sys,time\n\
                s=socket.create_connection(('198.18.0.2',80),timeout=8)\n\
                s.sendall(b'GET /small HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n')\n\
                t=time.monotonic();data=b''\n\
                while True:\n  d=s.recv(4096)\n  if not d: break\n  data+=d\n\
                print(data.split(b'\\r\\n')[0].decode(), int((time.monotonic()-t)*1000))";
    let out = env.kern(10, "python3", &["-c", idle]);
    let answer = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = answer.split_whitespace().collect();
    assert!(
        fields.starts_with(&["HTTP/1.1", "200"]),
        "idle connection: {answer:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let took: u64 = fields.last().and_then(|v| v.parse().ok()).unwrap_or(0);
    assert!((1900..4600).contains(&took), "the idle connection closed after {took} ms");
    assert!(start.elapsed() < Duration::from_secs(15));

    // Both connections are gone from the server's table (the published snapshot may lag by a
    // publish interval, so ask until it catches up, bounded).
    let mut json = String::new();
    for _ in 0..100 {
        let stats = std::process::Command::new(env!("CARGO_BIN_EXE_linerate"))
            .args(["stats", "--socket", sock, "--json"])
            .output()
            .unwrap();
        json = String::from_utf8_lossy(&stats.stdout).into_owned();
        if json.contains("\"open\":0,") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(json.contains("\"open\":0,\"accepted\":2,") && json.contains("\"connections\":[]"), "{json}");
}
