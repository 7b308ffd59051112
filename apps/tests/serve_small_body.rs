//! `linerate serve` answers small files from memory (`http::files::SMALL_BODY_MAX`, issue 9:
//! no `preadv2` per keep-alive request), seen from outside through the bytes and `linerate
//! stats`:
//! - small files requested many times over one keep-alive connection arrive byte for byte, every
//!   body is copied from memory (`bodies_memory`), none is read from the file (`bodies_read`),
//!   and the files are opened about once per open-file TTL, not once per request;
//! - a file just over the limit still takes the read path;
//! - an upload through the server is served new at once (the cache is invalidated), and a file
//!   replaced behind the server's back is served new after the TTL, each response whole: the old
//!   content or the new, never a mix.
//!
//! Run as root (veth lab).

mod serve_support;

use serve_support::{file_counters, wait_for, Env, MIB};
use std::path::Path;
use std::time::{Duration, Instant};

/// The bodies of `urls`, fetched in order by one curl (one keep-alive connection), concatenated.
fn fetch(env: &Env, urls: &[String]) -> Vec<u8> {
    let args: Vec<&str> =
        ["-sS", "--fail", "--max-time", "60"].into_iter().chain(urls.iter().map(String::as_str)).collect();
    let out = env.kern(90, "curl", &args);
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn small_bodies_are_copied_from_memory_byte_for_byte() {
    let files = [("one", 1), ("kib", 1024), ("limit", 16 * 1024), ("over", 16 * 1024 + 1)];
    let env = Env::new("smallmem", |c| c, &files);
    let read = |name: &str| std::fs::read(env.root.path().join(name)).unwrap();
    let rounds = 100;
    let mut urls = Vec::new();
    let mut expected = Vec::new();
    for _ in 0..rounds {
        for name in ["one", "kib", "limit"] {
            urls.push(env.url(name));
            expected.extend_from_slice(&read(name));
        }
    }
    let started = Instant::now();
    let got = fetch(&env, &urls);
    let secs = started.elapsed().as_secs();
    assert!(got == expected, "the keep-alive responses differ from the files");

    let responses = 3 * rounds;
    let mut counters = file_counters(&env.server);
    wait_for("the counters of every response", Duration::from_secs(10), || {
        counters = file_counters(&env.server);
        counters("bodies_memory") == responses
    });
    assert_eq!(counters("bodies_read"), 0, "a small body was read from the file");
    assert_eq!(counters("bodies_cut"), 0);
    // Opens happen once per file per TTL (1 s), not per request.
    let opens = counters("opens_off_shard");
    eprintln!("{responses} small responses in {secs} s: {opens} opens, bodies_memory {responses}");
    assert!(opens <= 3 * (secs + 2), "{opens} opens for {responses} responses in {secs} s");

    // Just over the limit: the read path, byte for byte.
    assert!(fetch(&env, &[env.url("over")]) == read("over"));
    wait_for("the read body counted", Duration::from_secs(10), || {
        counters = file_counters(&env.server);
        counters("bodies_read") == 1
    });
    assert_eq!(counters("bodies_memory"), responses);
}

#[test]
fn changed_small_files_are_served_new_and_whole() {
    let env = Env::with_args("smallnew", |c| c, &[("a", 3000)], &["--max-upload", &MIB.to_string()]);
    let root = env.root.path();
    let old = std::fs::read(root.join("a")).unwrap();
    assert!(fetch(&env, &[env.url("a"), env.url("a")]) == [&old[..], &old[..]].concat());

    // An upload through the server: the next response is the new content.
    let scratch = serve_support::TempDir::new(&format!("{}-src", serve_support::lab_name("smallnew")));
    let uploaded: Vec<u8> = (0..2000u32).map(|i| (i % 241) as u8).collect();
    let src = scratch.path().join("up");
    std::fs::write(&src, &uploaded).unwrap();
    let out = env.kern(60, "curl", &["-sS", "--fail", "-T", src.to_str().unwrap(), &env.url("a")]);
    assert!(out.status.success(), "upload: {}", String::from_utf8_lossy(&out.stderr));
    assert!(fetch(&env, &[env.url("a")]) == uploaded, "an upload was not seen at once");

    // Replaced behind the server's back (rename, another length): served new within the TTL
    // (1 s) plus slack; until then each response is the whole previous content.
    let replaced: Vec<u8> = (0..5000u32).map(|i| (i % 239) as u8).collect();
    replace(root, "a", &replaced);
    let mut old_answers = 0;
    wait_for("the replaced file", Duration::from_secs(10), || {
        let got = fetch(&env, &[env.url("a")]);
        assert!(got == uploaded || got == replaced, "a response of {} bytes is neither file", got.len());
        old_answers += usize::from(got == uploaded);
        got == replaced
    });
    eprintln!("replaced file seen after {old_answers} old responses");
    assert_eq!(file_counters(&env.server)("bodies_read"), 0);
}

/// Writes `bytes` under a temporary name in `dir` and renames it over `name`.
fn replace(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(tmp, dir.join(name)).unwrap();
}
