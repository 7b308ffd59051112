//! Receive-window auto-tuning (dynamic right-sizing, like Linux `tcp_rcv_space_adjust`): over a
//! long, fast path a single flow's advertised window must grow from the initial 64 KiB towards
//! the receive buffer, and must stay small when the application does not keep up.

mod support;
use linerate_stack::engine::{ConnectionHandle, Event};
use linerate_stack::tcp::SocketOptions;
use linerate_stack::time::Duration;
use support::link::{Link, LinkParams, B_IP};

const INITIAL: u32 = 64 * 1024;

/// Streams from A to B for `limit` of virtual time; returns the largest window B advertised and
/// the bytes B's application read. `read_rate` (bytes per second) paces B's reader; `None`
/// reads everything as soon as it arrives.
fn stream(seed: u64, limit: Duration, read_rate: Option<u64>) -> (u32, usize) {
    // 100 ms RTT at 200 Mbit/s: the path holds 2.5 MB, forty times the initial window.
    let params = LinkParams {
        delay: Duration::from_millis(50),
        rate_bps: 200_000_000,
        queue: Duration::from_millis(100),
        ..LinkParams::default()
    };
    let mut link = Link::new(seed, params, |_| {});
    let opts = SocketOptions { send_buffer: 8 << 20, recv_buffer: 8 << 20, ..SocketOptions::default() };
    let l = link.b.listen(5001, 4, Some(opts)).unwrap();
    let c = link.a.connect(link.now, (B_IP, 5001), None, Some(opts)).unwrap();
    let mut server: Option<ConnectionHandle> = None;
    let (mut max_wnd, mut read) = (0u32, 0usize);
    let chunk = vec![0x42u8; 64 * 1024];
    // The reader's clock starts at accept, so it never owes a burst of catch-up reads.
    let mut start = None;
    link.run(limit, |k| {
        while k.a.poll_event().is_some() {}
        while k.a.write(k.now, c, &chunk).is_ok_and(|n| n > 0) {}
        while let Some(ev) = k.b.poll_event() {
            if let Event::Incoming(_) = ev {
                server = k.b.accept(l).unwrap();
                start = Some(k.now);
            }
        }
        if let Some(s) = server {
            let allowed = read_rate.map_or(usize::MAX, |r| {
                ((k.now - start.unwrap_or(k.now)).as_nanos() as u128 * u128::from(r) / 1_000_000_000) as usize
            });
            let mut budget = allowed.saturating_sub(read);
            while budget > 0 {
                match k.b.read_with(k.now, s, budget, |d| d.len()) {
                    Ok(n) if n > 0 => {
                        budget -= n;
                        read += n;
                    }
                    _ => break,
                }
            }
            max_wnd = max_wnd.max(k.b.info(k.now, s).unwrap().rcv_wnd);
        }
        false
    });
    (max_wnd, read)
}

#[test]
fn one_flow_on_a_long_fat_path_grows_its_window_beyond_the_initial() {
    let seed = 11;
    let (max_wnd, read) = stream(seed, Duration::from_secs(3), None);
    assert!(
        max_wnd >= 16 * INITIAL,
        "seed {seed}: window only reached {max_wnd} bytes (initial {INITIAL}), {read} bytes read"
    );
    // A window the sender could use: well above what the initial window allows in 3 s
    // (64 KiB per 100 ms RTT = 2 MB).
    assert!(read > 8 << 20, "seed {seed}: only {read} bytes in 3 s");
}

#[test]
fn a_slow_reader_does_not_inflate_the_window() {
    // The application reads 250 kB/s, 25 kB per RTT. Growth follows what it consumes, not what
    // arrives: the window stays within a few RTTs of that rate (the first receiver-RTT sample
    // overestimates the RTT, so one step above the initial window is allowed) instead of
    // growing to the 8 MiB buffer, which a count of arriving bytes would do.
    let seed = 12;
    let (max_wnd, read) = stream(seed, Duration::from_secs(2), Some(250_000));
    assert!(max_wnd <= 4 * INITIAL, "seed {seed}: window grew to {max_wnd} for a slow reader");
    assert!(read > 400_000, "seed {seed}: the slow reader itself was starved: {read} bytes");
}
