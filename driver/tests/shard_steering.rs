//! RSS steering: Toeplitz (bit loop and table) against the Microsoft RSS verification suite, and
//! reading the RSS setup of devices that have none. Port choice and routing by flow owner:
//! tests/shard_ports.rs.

use std::net::Ipv4Addr;

use linerate_driver::shard::steering::{
    hash_ipv4_tcp, read_rss, toeplitz_hash, RssError, ToeplitzTable, RSS_KEY_LEN,
};

/// The key of the Microsoft RSS verification suite.
const MS_KEY: [u8; RSS_KEY_LEN] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0,
    0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42,
    0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// An address and port.
type Endpoint = (Ipv4Addr, u16);

/// (destination, source, IPv4-only hash, IPv4+TCP hash) from the verification suite.
const VECTORS: [(Endpoint, Endpoint, u32, u32); 5] = [
    (
        (Ipv4Addr::new(161, 142, 100, 80), 1766),
        (Ipv4Addr::new(66, 9, 149, 187), 2794),
        0x323e8fc2,
        0x51ccc178,
    ),
    ((Ipv4Addr::new(65, 69, 140, 83), 4739), (Ipv4Addr::new(199, 92, 111, 2), 14230), 0xd718262a, 0xc626b0ea),
    (
        (Ipv4Addr::new(12, 22, 207, 184), 38024),
        (Ipv4Addr::new(24, 19, 198, 95), 12898),
        0xd2d0a5de,
        0x5c2b394a,
    ),
    (
        (Ipv4Addr::new(209, 142, 163, 6), 2217),
        (Ipv4Addr::new(38, 27, 205, 30), 48228),
        0x82989176,
        0xafc7327f,
    ),
    (
        (Ipv4Addr::new(202, 188, 127, 2), 1303),
        (Ipv4Addr::new(153, 39, 163, 191), 44251),
        0x5d1809c5,
        0x10e828a2,
    ),
];

#[test]
fn toeplitz_matches_the_microsoft_ipv4_tcp_vectors() {
    for ((dst, dst_port), (src, src_port), ip_only, with_tcp) in VECTORS {
        assert_eq!(
            hash_ipv4_tcp(&MS_KEY, src, dst, src_port, dst_port),
            with_tcp,
            "{src}:{src_port} -> {dst}:{dst_port}"
        );
        assert_eq!(ToeplitzTable::new(&MS_KEY).hash_ipv4_tcp(src, dst, src_port, dst_port), with_tcp);
        let mut input = [0u8; 8];
        input[..4].copy_from_slice(&src.octets());
        input[4..].copy_from_slice(&dst.octets());
        assert_eq!(toeplitz_hash(&MS_KEY, &input), ip_only, "{src} -> {dst}");
    }
}

#[test]
fn toeplitz_never_panics_on_short_keys_or_long_inputs() {
    assert_eq!(toeplitz_hash(&[], &[0xff; 64]), 0);
    // A 4-byte key covers only the first input bit's window; later bits see zeros shifted in.
    assert_eq!(toeplitz_hash(&[0x80, 0, 0, 0], &[0x80]), 0x8000_0000);
    let _ = toeplitz_hash(&MS_KEY, &[0xa5; 1000]);
}

#[test]
fn reading_rss_from_a_device_without_it_says_unsupported() {
    match read_rss("lo") {
        Err(RssError::Unsupported(name)) => assert_eq!(name, "lo"),
        other => panic!("expected Unsupported for lo, got {other:?}"),
    }
    let missing = format!("nolr{}", std::process::id() % 100_000);
    assert!(matches!(read_rss(&missing), Err(RssError::NoSuchDevice(_))), "{:?}", read_rss(&missing));
    assert!(matches!(read_rss(""), Err(RssError::BadName(_))));
    assert!(matches!(read_rss("a-name-far-too-long"), Err(RssError::BadName(_))));
}

/// A network namespace made for one test, deleted on drop (even when the test fails).
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("lr-{tag}-{}", std::process::id());
        let _ = ip(&["netns", "del", &name]);
        assert!(ip(&["netns", "add", &name]), "ip netns add {name} failed (this test needs root)");
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.0]);
    }
}

fn ip(args: &[&str]) -> bool {
    std::process::Command::new("ip").args(args).status().is_ok_and(|s| s.success())
}

/// Runs `f` on a thread that has entered the namespace (a thread's netns is its own).
fn in_netns<R: Send>(netns: &Netns, f: impl FnOnce() -> R + Send) -> R {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(format!("/run/netns/{}", netns.0)).expect("netns file");
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns on a valid namespace fd; it changes only this thread's namespace.
            assert_eq!(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns failed");
            f()
        })
        .join()
        .unwrap()
    })
}

#[test]
fn reading_rss_from_a_veth_says_unsupported() {
    let netns = Netns::new("rss");
    assert!(ip(&["-n", &netns.0, "link", "add", "lrv0", "type", "veth", "peer", "name", "lrv1"]));
    let result = in_netns(&netns, || read_rss("lrv0"));
    match result {
        Err(error @ RssError::Unsupported(_)) => {
            assert!(error.to_string().contains("handed off"), "{error}");
        }
        other => panic!("expected Unsupported for a veth, got {other:?}"),
    }
}
