//! The SPSC ring and the mesh under load: nothing lost, nothing duplicated, FIFO per sender,
//! every refusal counted. Bounded in items; no sleeps.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use linerate_driver::shard::ring;
use linerate_driver::shard::Mesh;

#[test]
fn push_gives_the_item_back_when_full_and_order_is_fifo() {
    let (mut tx, mut rx) = ring::channel::<u32>(3);
    assert_eq!(tx.capacity(), 3, "capacity is exact, not rounded up");
    for i in 0..3 {
        tx.push(i).unwrap();
    }
    assert_eq!(tx.push(99), Err(99));
    assert_eq!(rx.len(), 3);
    assert_eq!(rx.pop(), Some(0));
    tx.push(3).unwrap();
    let mut out = Vec::new();
    assert_eq!(rx.pop_batch(10, |v| out.push(v)), 3);
    assert_eq!(out, [1, 2, 3]);
    assert_eq!(rx.pop(), None);
    assert!(rx.is_empty());
}

#[test]
fn push_iter_takes_only_what_fits() {
    let (mut tx, mut rx) = ring::channel::<u32>(4);
    let mut items = 0..10;
    assert_eq!(tx.push_iter(&mut items), 4);
    assert_eq!(items.next(), Some(4), "items that did not fit stay in the iterator");
    assert_eq!(rx.pop_batch(2, drop), 2);
    assert_eq!(tx.push_iter(&mut items), 2);
    let mut out = Vec::new();
    rx.pop_batch(usize::MAX, |v| out.push(v));
    assert_eq!(out, [2, 3, 5, 6]);
}

/// Counts live instances so the test can see that dropping a ring drops what it still holds.
struct Tracked(Arc<AtomicUsize>);
impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[test]
fn dropping_the_ring_drops_queued_items_exactly_once() {
    let live = Arc::new(AtomicUsize::new(0));
    let make = || {
        live.fetch_add(1, Ordering::Relaxed);
        Tracked(live.clone())
    };
    let (mut tx, mut rx) = ring::channel(8);
    // Wrap the indices around a few times first.
    for _ in 0..20 {
        tx.push(make()).ok().unwrap();
        drop(rx.pop());
    }
    for _ in 0..5 {
        tx.push(make()).ok().unwrap();
    }
    drop(rx.pop());
    assert_eq!(live.load(Ordering::Relaxed), 4);
    drop(tx);
    assert_eq!(live.load(Ordering::Relaxed), 4, "the consumer still holds them");
    drop(rx);
    assert_eq!(live.load(Ordering::Relaxed), 0);
}

#[test]
fn spsc_across_threads_loses_and_duplicates_nothing() {
    const ITEMS: u64 = 50_000;
    let (mut tx, mut rx) = ring::channel::<u64>(64);
    let producer = thread::spawn(move || {
        let mut refused = 0u64;
        let mut next = 0;
        while next < ITEMS {
            // Alternate single pushes and batches to cover both paths.
            if next % 2 == 0 {
                match tx.push(next) {
                    Ok(()) => next += 1,
                    Err(_) => {
                        refused += 1;
                        thread::yield_now();
                    }
                }
            } else {
                let end = (next + 32).min(ITEMS);
                let mut batch = next..end;
                let pushed = tx.push_iter(&mut batch) as u64;
                refused += u64::from(pushed == 0);
                next += pushed;
            }
        }
        refused
    });
    let mut expected = 0;
    while expected < ITEMS {
        let got = rx.pop_batch(32, |v| {
            assert_eq!(v, expected, "out of order or duplicated");
            expected += 1;
        });
        if got == 0 {
            thread::yield_now();
        }
    }
    producer.join().unwrap();
    assert_eq!(rx.pop(), None);
}

/// Checks that `msg` is the next one expected from `from` and counts it.
fn check(me: usize, next_from: &mut [u64], from: usize, (sender, seq): (usize, u64)) {
    assert_eq!(from, sender, "delivered on the wrong link");
    assert_eq!(seq, next_from[from], "shard {me}: message from {from} out of order");
    next_from[from] += 1;
}

/// Every shard sends numbered messages to every other shard through the mesh; on a full ring it
/// drains its own inbox and retries (so shards cannot deadlock on each other's full rings).
#[test]
fn mesh_stress_many_producers_fifo_per_sender_nothing_lost() {
    const SHARDS: usize = 4;
    const PER_DEST: u64 = 5_000;
    let links = Mesh::new::<(usize, u64)>(SHARDS, 16);
    let handles: Vec<_> = links
        .into_iter()
        .map(|mut links| {
            thread::spawn(move || {
                let me = links.id();
                let mut next_from = [0u64; SHARDS];
                let mut refused = 0u64;
                for seq in 0..PER_DEST {
                    for to in (0..SHARDS).filter(|&to| to != me) {
                        let mut msg = (me, seq);
                        while let Err(back) = links.send(to, msg) {
                            refused += 1;
                            msg = back;
                            links.drain(|from, msg| check(me, &mut next_from, from, msg));
                            // More threads than cores: let the receiver run.
                            thread::yield_now();
                        }
                    }
                }
                // Keep draining until every other shard's messages have all arrived.
                while (0..SHARDS).any(|from| from != me && next_from[from] < PER_DEST) {
                    links.drain(|from, msg| check(me, &mut next_from, from, msg));
                    thread::yield_now();
                }
                let total = links.total_stats();
                assert_eq!(total.sent, PER_DEST * (SHARDS as u64 - 1));
                assert_eq!(total.dropped, refused, "every refusal is counted on its link");
                assert_eq!(links.misrouted(), 0);
                links
            })
        })
        .collect();
    // Join all before dropping any links: a dropped consumer end would strand a sender.
    let links: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for l in &links {
        assert_eq!((0..SHARDS).map(|to| l.link_stats(to).sent).sum::<u64>(), PER_DEST * (SHARDS as u64 - 1));
    }
}

#[test]
fn mesh_refuses_sends_to_self_and_to_unknown_shards() {
    let mut links = Mesh::new::<u8>(3, 2);
    let (a, rest) = links.split_at_mut(1);
    let a = &mut a[0];
    assert_eq!(a.shards(), 3);
    assert_eq!(a.send(0, 1), Err(1));
    assert_eq!(a.send(7, 2), Err(2));
    assert_eq!(a.misrouted(), 2);
    assert!(a.send(2, 3).is_ok());
    assert!(a.send(2, 4).is_ok());
    assert_eq!(a.send(2, 5), Err(5), "capacity 2");
    assert_eq!(a.link_stats(2).dropped, 1);
    assert_eq!(a.link_stats(1).dropped, 0);
    let mut got = Vec::new();
    assert_eq!(rest[1].drain(|from, m| got.push((from, m))), 2);
    assert_eq!(got, [(0, 3), (0, 4)]);
    assert_eq!(Mesh::new::<u8>(1, 4)[0].drain(|_, _| unreachable!()), 0);
}

mod model {
    use std::collections::VecDeque;

    use linerate_driver::shard::ring;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Push,
        PushBatch(usize),
        Pop,
        PopBatch(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Push),
            (0usize..12).prop_map(Op::PushBatch),
            Just(Op::Pop),
            (0usize..12).prop_map(Op::PopBatch),
        ]
    }

    proptest! {
        /// Any single-threaded sequence of operations behaves like a bounded `VecDeque`.
        #[test]
        fn ring_matches_a_bounded_deque(capacity in 1usize..9, ops in prop::collection::vec(op(), 0..200)) {
            let (mut tx, mut rx) = ring::channel::<u32>(capacity);
            let mut model = VecDeque::new();
            let mut next = 0u32;
            for op in ops {
                match op {
                    Op::Push => {
                        let result = tx.push(next);
                        if model.len() < capacity {
                            prop_assert_eq!(result, Ok(()));
                            model.push_back(next);
                        } else {
                            prop_assert_eq!(result, Err(next));
                        }
                        next += 1;
                    }
                    Op::PushBatch(n) => {
                        let mut items = next..next + n as u32;
                        let pushed = tx.push_iter(&mut items);
                        prop_assert_eq!(pushed, n.min(capacity - model.len()));
                        model.extend(next..next + pushed as u32);
                        next += pushed as u32;
                    }
                    Op::Pop => prop_assert_eq!(rx.pop(), model.pop_front()),
                    Op::PopBatch(n) => {
                        let mut got = Vec::new();
                        rx.pop_batch(n, |v| got.push(v));
                        let want: Vec<u32> = model.drain(..n.min(model.len())).collect();
                        prop_assert_eq!(got, want);
                    }
                }
                prop_assert_eq!(rx.len(), model.len());
            }
        }
    }
}
