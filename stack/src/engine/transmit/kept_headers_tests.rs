//! The kept data headers (`Connection::kept_headers`, `DataHeaderTemplate::rebase`) against
//! the path without them: two senders with the same seed and the same inputs, one of which has
//! its kept headers dropped before every poll (so every burst builds its headers again, as
//! before they were kept), must put the same frames on the wire, byte for byte, and hold the
//! same connection state (`Debug`), stack counters and wake-up time after every step. The
//! receiving engine answers the first sender; both senders get its frames.
//!
//! Randomised: timestamps and SACK, application writes on both sides (the receiver's data
//! makes the sender's segments carry ACK numbers that move, and with losses SACK blocks that
//! the fixed-layout writer refuses), the receiver's reads (the window), losses, one-way delay
//! and how many frames the device takes per poll.

use super::test_port::TestPort;
use crate::engine::{Engine, EngineConfig};
use crate::time::{Duration, Instant};
use crate::wire::{EthernetAddress, Ipv4Address, KeptDataHeaders};
use proptest::prelude::*;

const A_IP: Ipv4Address = Ipv4Address::new(198, 18, 2, 1);
const B_IP: Ipv4Address = Ipv4Address::new(198, 18, 2, 2);

fn forget_kept_headers(e: &mut Engine) {
    for slot in &mut e.slots {
        if let Some(conn) = slot.conn.as_deref_mut() {
            conn.kept_headers = KeptDataHeaders::default();
        }
    }
}

fn state_of(e: &Engine) -> String {
    let conns: Vec<String> =
        e.slots.iter().filter_map(|s| s.conn.as_deref()).map(|c| format!("{c:?}")).collect();
    format!("{conns:?} {:?} {:?}", e.stats(), e.next_timeout())
}

#[derive(Clone, Debug)]
struct Step {
    a_write: usize,
    b_write: usize,
    b_read: usize,
    room: usize,
    drop_mask: u8,
}

fn step() -> impl Strategy<Value = Step> {
    (0usize..12_000, 0usize..3_000, 0usize..40_000, 1usize..10, any::<u8>()).prop_map(
        |(a_write, b_write, b_read, room, drop_mask)| Step { a_write, b_write, b_read, room, drop_mask },
    )
}

fn run(timestamps: bool, sack: bool, delay_us: u64, loss: u8, steps: &[Step]) -> Result<(), TestCaseError> {
    let now0 = Instant::from_millis(10);
    let config = |ip, mac| {
        let mut c = EngineConfig::new(ip, 24, EthernetAddress(mac), 7);
        c.tcp.timestamps = timestamps;
        c.tcp.sack = sack;
        c
    };
    let mut a = Engine::new(config(A_IP, [2, 0, 0, 0, 2, 1]), now0);
    let mut twin = Engine::new(config(A_IP, [2, 0, 0, 0, 2, 1]), now0);
    let mut b = Engine::new(config(B_IP, [2, 0, 0, 0, 2, 2]), now0);
    let listener = b.listen(80, 4, None).expect("listen");
    let ha = a.connect(now0, (B_IP, 80), Some(40_000), None).expect("connect");
    let ht = twin.connect(now0, (B_IP, 80), Some(40_000), None).expect("connect");
    let mut hb = None;
    let delay = Duration::from_micros(delay_us);
    let mut now = now0;
    // Frames in flight: (arrival, to b?, frame).
    let mut flying: Vec<(Instant, bool, Vec<u8>)> = Vec::new();
    let data = vec![0x5au8; 20_000];
    let mut sink = vec![0u8; 40_000];
    let mut sent = 0u64;
    for s in steps {
        let _ = a.write(now, ha, &data[..s.a_write]);
        let _ = twin.write(now, ht, &data[..s.a_write]);
        if hb.is_none() {
            hb = b.accept(listener).ok().flatten();
        }
        if let Some(h) = hb {
            let _ = b.write(now, h, &data[..s.b_write]);
            let _ = b.read(now, h, &mut sink[..s.b_read]);
        }
        while a.poll_event().is_some() {}
        while twin.poll_event().is_some() {}
        while b.poll_event().is_some() {}
        let mut out = TestPort { room: s.room, ..TestPort::default() };
        let mut twin_out = TestPort { room: s.room, ..TestPort::default() };
        a.poll_transmit(now, &mut out);
        forget_kept_headers(&mut twin);
        twin.poll_transmit(now, &mut twin_out);
        prop_assert_eq!(&out.outbox, &twin_out.outbox);
        prop_assert_eq!(state_of(&a), state_of(&twin));
        let mut back = TestPort { room: 64, ..TestPort::default() };
        b.poll_transmit(now, &mut back);
        for (i, f) in out.outbox.into_iter().enumerate() {
            sent += 1;
            // Losses only once the connection is up, so every case gets going.
            let lost = sent > 6
                && loss > 0
                && (s.drop_mask >> (i % 8)) & 1 == 1
                && sent.is_multiple_of(u64::from(loss));
            if !lost {
                flying.push((now + delay, true, f));
            }
        }
        flying.extend(back.outbox.into_iter().map(|f| (now + delay, false, f)));
        // Advance to the next arrival or timer.
        let next = flying
            .iter()
            .map(|f| f.0)
            .chain([a.next_timeout(), b.next_timeout()].into_iter().flatten())
            .min();
        let Some(next) = next else { continue };
        now = now.max(next);
        let (due, later): (Vec<_>, Vec<_>) = flying.drain(..).partition(|f| f.0 <= now);
        flying = later;
        for (_, to_b, mut f) in due {
            if to_b {
                b.receive(now, &mut f);
            } else {
                let mut copy = f.clone();
                a.receive(now, &mut f);
                twin.receive(now, &mut copy);
            }
        }
        a.handle_timeout(now);
        twin.handle_timeout(now);
        b.handle_timeout(now);
        prop_assert_eq!(state_of(&a), state_of(&twin));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn kept_headers_change_no_frame(
        timestamps in any::<bool>(),
        sack in any::<bool>(),
        delay_us in 50u64..20_000,
        loss in 0u8..6,
        steps in proptest::collection::vec(step(), 1..50),
    ) {
        run(timestamps, sack, delay_us, loss, &steps)?;
    }
}

/// The property above is not vacuous: bulk data does go out with rebased headers.
#[test]
fn bulk_polls_rebase_their_kept_headers() {
    let steps: Vec<Step> = (0..30)
        .map(|_| Step { a_write: 20_000, b_write: 0, b_read: 40_000, room: 8, drop_mask: 0 })
        .collect();
    run(true, true, 1_000, 0, &steps).expect("same frames");
}
