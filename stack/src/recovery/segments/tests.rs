//! The segment store's records, runs and relocation, against their contracts.

use super::*;

fn push(store: &mut SegmentStore, start: u32, len: u32, at_ms: u64) {
    store.push(SeqNumber(start), len, Instant::from_millis(at_ms), None, PacketSnapshot::default()).unwrap();
}

fn tx_order(store: &SegmentStore) -> Vec<u32> {
    let mut out = Vec::new();
    let mut cur = store.oldest_tx_slot();
    while let Some(s) = cur {
        out.push(store.by_slot(s).start.0);
        cur = store.next_tx_slot(s);
    }
    out
}

/// `first_ending_after` by a linear scan: the records whose start is at or before `seq`,
/// then the last of them unless `seq` is at or past its end.
fn first_ending_after_by_scan(store: &SegmentStore, seq: SeqNumber) -> usize {
    let Some(front) = store.front() else { return 0 };
    if seq < front.start {
        return 0;
    }
    let target = offset(seq, front.start);
    let starting = store.iter().take_while(|r| offset(r.start, front.start) <= target).count();
    match starting.checked_sub(1).and_then(|p| store.get(p)) {
        Some(rec) if offset(rec.end(), front.start) > target => starting - 1,
        _ => starting,
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]
    /// The galloping search finds what a scan finds, for records of any length (zero
    /// included), a ring that wrapped, a trimmed front and sequence numbers across 2^32.
    #[test]
    fn galloping_search_matches_a_scan(
        first in proptest::prelude::any::<u32>(),
        lens in proptest::collection::vec(0u32..3000, 1..300),
        pops in 0usize..40,
        trim in 0u32..3000,
        probes in proptest::collection::vec(0u32..1_000_000, 1..40),
    ) {
        let mut store = SegmentStore::new(256);
        let mut next = first;
        for (i, &len) in lens.iter().enumerate() {
            if store.is_full() || i == pops {
                for _ in 0..pops.min(store.len()) {
                    store.pop_front();
                }
            }
            if store.is_full() {
                break;
            }
            push(&mut store, next, len, i as u64);
            next = next.wrapping_add(len);
        }
        if let Some(front) = store.front().copied() {
            store.trim_front(trim.min(front.len.saturating_sub(1)));
        }
        let base = store.front().map_or(first, |r| r.start.0).wrapping_sub(10);
        for p in probes {
            let seq = SeqNumber(base.wrapping_add(p % (lens.iter().sum::<u32>() + 20)));
            proptest::prop_assert_eq!(store.first_ending_after(seq), first_ending_after_by_scan(&store, seq));
        }
    }

    /// A bulk flight (records of one length, maybe a trimmed front or a shorter last one):
    /// the guess from the length is taken when it is right and checked when it is not.
    #[test]
    fn equal_lengths_search_matches_a_scan(
        first in proptest::prelude::any::<u32>(),
        len in 1u32..3000,
        count in 1usize..200,
        last in 0u32..3000,
        trim in 0u32..3000,
        probes in proptest::collection::vec(0u32..1_000_000, 1..40),
    ) {
        let mut store = SegmentStore::new(256);
        let mut next = first;
        for i in 0..count {
            let l = if i + 1 == count { last } else { len };
            push(&mut store, next, l, i as u64);
            next = next.wrapping_add(l);
        }
        if trim % 2 == 0 {
            store.trim_front((trim / 2).min(len - 1));
        }
        let base = store.front().map_or(first, |r| r.start.0).wrapping_sub(10);
        let span = next.wrapping_sub(base) + 20;
        for p in probes {
            let seq = SeqNumber(base.wrapping_add(p % span));
            proptest::prop_assert_eq!(store.first_ending_after(seq), first_ending_after_by_scan(&store, seq));
        }
    }
}

#[test]
fn ring_wraps_and_lookup_stays_correct() {
    let mut store = SegmentStore::new(4);
    let mut next = 0xFFFF_FFF0u32;
    for round in 0..10u64 {
        while !store.is_full() {
            push(&mut store, next, 8, round);
            next = next.wrapping_add(8);
        }
        assert!(store.push(SeqNumber(next), 8, Instant::ZERO, None, PacketSnapshot::default()).is_err());
        let front = store.front().unwrap().start;
        for (i, rec) in store.iter().enumerate() {
            assert_eq!(store.position_of(rec.start), Some(i));
            assert_eq!(store.position_of(rec.start + 7), Some(i));
            assert_eq!(rec.start, front + i as u32 * 8);
        }
        assert_eq!(store.position_of(front - 1), None);
        assert_eq!(store.first_ending_after(SeqNumber(next)), store.len());
        store.pop_front();
        store.pop_front();
    }
}

#[test]
fn transmission_order_follows_retransmissions() {
    let mut store = SegmentStore::new(8);
    for i in 0..4 {
        push(&mut store, i * 10, 10, u64::from(i));
    }
    assert_eq!(tx_order(&store), vec![0, 10, 20, 30]);
    let s = store.slot_of(1);
    store.relink_newest(s);
    assert_eq!(tx_order(&store), vec![0, 20, 30, 10]);
    store.set_sacked(2);
    assert_eq!(tx_order(&store), vec![0, 30, 10]);
    store.pop_front();
    assert_eq!(tx_order(&store), vec![30, 10]);
    let mut steps = 0;
    assert_eq!(store.next_unsacked(0, &mut steps), 0);
    assert_eq!(store.next_unsacked(1, &mut steps), 2, "position 1 (seq 20) is SACKed");
    store.trim_front(4);
    assert_eq!(store.front().map(|r| (r.start.0, r.len)), Some((14, 6)));
    assert_eq!(store.position_of(SeqNumber(13)), None);
    assert_eq!(store.position_of(SeqNumber(14)), Some(0));
}
#[test]
fn growing_a_wrapped_ring_keeps_order_links_and_slot_marks() {
    let mut store = SegmentStore::new(40);
    assert_eq!((store.allocated(), store.capacity()), (0, 40), "nothing before the first push");
    for i in 0..INITIAL_RECORDS as u32 {
        push(&mut store, i * 10, 10, u64::from(i));
    }
    for _ in 0..5 {
        store.pop_front();
    }
    for i in INITIAL_RECORDS as u32..INITIAL_RECORDS as u32 + 5 {
        push(&mut store, i * 10, 10, u64::from(i));
    }
    assert!(store.slot_of(store.len() - 1) < store.slot_of(0), "the ring wraps");
    let s = store.slot_of(2);
    store.relink_newest(s);
    store.set_sacked(4);
    store.set_sacked(12);
    let mut lost = SlotBits::new(store.allocated());
    for pos in [1, 7, 14] {
        lost.insert(store.slot_of(pos));
    }
    let lost_starts = |store: &SegmentStore, bits: &SlotBits| {
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some(p) = store.next_marked(bits, pos) {
            out.push(store.get(p).unwrap().start.0);
            pos = p + 1;
        }
        out
    };
    // Links are slot indices and change; everything else must not.
    let records = |store: &SegmentStore| {
        store.iter().map(|r| (r.start, r.len, r.first_sent, r.state)).collect::<Vec<_>>()
    };
    let before = (tx_order(&store), records(&store), lost_starts(&store, &lost));
    let moved = store
        .push(SeqNumber(210), 10, Instant::from_millis(21), None, PacketSnapshot::default())
        .unwrap()
        .expect("a full ring grows");
    let lost = moved.bits(&lost);
    assert_eq!(store.allocated(), 2 * INITIAL_RECORDS);
    let (mut tx, mut expected, marks) = before;
    tx.push(210);
    assert_eq!(tx_order(&store), tx);
    expected.push((SeqNumber(210), 10, Instant::from_millis(21), SegmentState::default()));
    assert_eq!(records(&store), expected);
    assert_eq!(lost_starts(&store, &lost), marks);
    let mut steps = 0;
    assert_eq!(store.next_unsacked(4, &mut steps), 5);
    assert_eq!(store.next_unsacked(12, &mut steps), 13);
    for (i, rec) in expected.iter().enumerate() {
        assert_eq!(store.position_of(rec.0 + 3), Some(i));
    }
    // Grows once more, to the bound, then refuses.
    let mut next = 220;
    while !store.is_full() {
        push(&mut store, next, 10, 30);
        next += 10;
    }
    assert_eq!((store.len(), store.allocated()), (40, 40));
    assert!(store.push(SeqNumber(next), 10, Instant::ZERO, None, PacketSnapshot::default()).is_err());
}
