use super::*;
use linerate_stack::engine::EngineConfig;
use linerate_stack::wire::{EthernetAddress, Ipv4Address};

fn engine() -> Engine {
    let cfg = EngineConfig::new(Ipv4Address([198, 18, 0, 2]), 24, EthernetAddress([2, 0, 0, 0, 0, 2]), 7);
    Engine::new(cfg, Instant::ZERO)
}

fn socket_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("linerate-control-{tag}-{}.sock", std::process::id()))
}

/// Fetches until the document mentions `needle` (the control thread picks snapshots up
/// asynchronously); bounded by a number of attempts, not by time.
fn fetch_until(path: &Path, json: bool, needle: &str) -> String {
    let mut doc = String::new();
    for _ in 0..200 {
        doc = client::fetch(path, json).unwrap();
        if doc.contains(needle) {
            return doc;
        }
    }
    panic!("{needle:?} never appeared in:\n{doc}");
}

#[test]
fn counters_follow_the_stats_struct() {
    let stats = Stats { active_opens: 3, reply_queue_drops: 9, ..Stats::default() };
    let c = render::counters(&stats);
    assert!(c.len() > 40, "only {} counters parsed", c.len());
    assert_eq!(c[0], ("active_opens".to_owned(), 3));
    assert!(c.contains(&("reply_queue_drops".to_owned(), 9)));
}

#[test]
fn publishes_through_the_socket() {
    let path = socket_path("pub");
    let server = ControlServer::start(&path, 2).unwrap();
    // A second server on the same path is refused while the first answers.
    assert!(matches!(ControlServer::start(&path, 1), Err(ControlError::InUse(_))));
    let mut e = engine();
    let remote = (Ipv4Address([198, 18, 0, 1]), 80);
    let h = e.connect(Instant::ZERO, remote, Some(40000), None).unwrap();
    let mut shard0 = server.publisher(0);
    let mut shard1 = server.publisher(1);
    let now = Instant::ZERO + Duration::from_millis(5);
    assert!(shard0.due(now));
    let app = AppCounters { open: 1, accepted: 4, requests: 10, ..AppCounters::default() };
    shard0.publish(now, &e, [h], app);
    assert!(!shard0.due(now + Duration::from_millis(1)), "publishing is rate-limited");
    assert!(shard0.due(now + PUBLISH_INTERVAL));
    shard1.publish(now, &engine(), [], AppCounters::default());

    let text = fetch_until(&path, false, "2 shard(s)");
    assert!(text.contains("SYN-SENT") && text.contains("198.18.0.1:80"), "{text}");
    assert!(text.contains("198.18.0.2:40000"), "{text}");
    assert!(text.contains("shard 0: open 1 accepted 4 requests 10"), "{text}");
    assert!(text.lines().any(|l| l.split_whitespace().eq(["active_opens", "1"])), "{text}");

    let json = client::fetch(&path, true).unwrap();
    assert!(json.starts_with("{\"shards\":[{\"shard\":0,"), "{json}");
    assert!(json.contains("\"state\":\"SYN-SENT\"") && json.contains("\"totals\":{\"active_opens\":1,"));
    // Balanced braces and brackets, nothing after the document: a cheap well-formedness check
    // (the end-to-end test parses it with a real JSON parser).
    let depth = json.chars().fold(0i32, |d, ch| match ch {
        '{' | '[' => d + 1,
        '}' | ']' => d - 1,
        _ => d,
    });
    assert_eq!(depth, 0, "{json}");
    assert!(server.requests_served() >= 2);
    drop(server);
    assert!(!path.exists(), "the socket file is removed on drop");
}

#[test]
fn a_full_channel_drops_and_counts_instead_of_blocking() {
    let path = socket_path("full");
    let server = ControlServer::start(&path, 1).unwrap();
    let e = engine();
    let mut p = server.publisher(0);
    // Far more snapshots than the channel holds, faster than the thread drains: never blocks.
    for i in 0..10_000u64 {
        p.publish(Instant::ZERO + PUBLISH_INTERVAL.saturating_mul(i), &e, [], AppCounters::default());
    }
    assert!(p.dropped > 0, "expected drops with a 2-slot channel");
    let text = fetch_until(&path, false, "dropped_snapshots");
    assert!(text.contains("1 shard(s)"), "{text}");
}

#[test]
fn stale_socket_files_are_replaced_and_other_files_kept() {
    let path = socket_path("stale");
    let _ = std::fs::remove_file(&path);
    drop(UnixListener::bind(&path).unwrap()); // leaves a socket nobody answers
    let server = ControlServer::start(&path, 1).unwrap();
    drop(server);
    std::fs::write(&path, b"not a socket").unwrap();
    assert!(matches!(ControlServer::start(&path, 1), Err(ControlError::Io { .. })));
    std::fs::remove_file(&path).unwrap();
    assert!(client::fetch(&path, false).is_err());
}
