//! FlowTable against std's HashMap under random operation sequences, plus churn at the capacity
//! limit (where backward-shift deletion is exercised hardest).

use std::collections::HashMap;

use linerate_stack::flow::{FlowTable, FlowTableFull, FourTuple};
use linerate_stack::wire::Ipv4Address;
use proptest::prelude::*;

/// A small key space so inserts, hits, misses and removals all happen often.
fn tuple(n: u16) -> FourTuple {
    FourTuple::new(
        Ipv4Address::new(198, 18, 0, 1),
        80,
        Ipv4Address::new(198, 18, 1, (n % 7) as u8),
        40_000 + n / 7,
    )
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u16, u32),
    Remove(u16),
    Get(u16),
    Bump(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..64u16, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => (0..64u16).prop_map(Op::Remove),
        2 => (0..64u16).prop_map(Op::Get),
        1 => (0..64u16).prop_map(Op::Bump),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn behaves_like_a_bounded_hash_map(
        capacity in 0usize..40,
        key in any::<[u8; 16]>(),
        ops in proptest::collection::vec(op(), 0..400),
    ) {
        let mut table = FlowTable::new(capacity, key);
        let mut model: HashMap<FourTuple, u32> = HashMap::new();
        for op in ops {
            match op {
                Op::Insert(k, v) => {
                    let expected = if model.len() >= capacity && !model.contains_key(&tuple(k)) {
                        Err(FlowTableFull { capacity })
                    } else {
                        model.insert(tuple(k), v);
                        Ok(())
                    };
                    prop_assert_eq!(table.insert(tuple(k), v), expected);
                }
                Op::Remove(k) => prop_assert_eq!(table.remove(&tuple(k)), model.remove(&tuple(k))),
                Op::Get(k) => prop_assert_eq!(table.get(&tuple(k)), model.get(&tuple(k))),
                Op::Bump(k) => {
                    if let Some(v) = table.get_mut(&tuple(k)) {
                        *v = v.wrapping_add(1);
                    }
                    if let Some(v) = model.get_mut(&tuple(k)) {
                        *v = v.wrapping_add(1);
                    }
                }
            }
            prop_assert_eq!(table.len(), model.len());
        }
        let mut seen: Vec<_> = table.iter().map(|(k, v)| (k, *v)).collect();
        let mut expected: Vec<_> = model.into_iter().collect();
        seen.sort();
        expected.sort();
        prop_assert_eq!(seen, expected);
    }
}

#[test]
fn churn_at_full_capacity_keeps_every_live_entry_reachable() {
    // Deterministic LCG: the same run everywhere; the seed is in the failure message.
    const SEED: u64 = 0x5eed_f10e;
    let mut state = SEED;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as u16
    };
    let capacity = 512;
    let mut table = FlowTable::new(capacity, [0x42; 16]);
    let mut live: Vec<FourTuple> = Vec::new();
    for round in 0..20_000u32 {
        let k = FourTuple::new(
            Ipv4Address::new(198, 18, 0, 1),
            443,
            Ipv4Address::from_u32(0xc612_0000 | u32::from(next())),
            next(),
        );
        if live.len() == capacity {
            let victim = live.swap_remove(usize::from(next()) % capacity);
            assert!(table.remove(&victim).is_some(), "seed {SEED:#x} round {round}");
        }
        if table.insert(k, round).is_ok() && !live.contains(&k) {
            live.push(k);
        }
        assert_eq!(table.len(), live.len(), "seed {SEED:#x} round {round}");
    }
    for k in &live {
        assert!(table.contains_key(k), "seed {SEED:#x}: lost {k:?}");
    }
    table.clear();
    assert!(table.is_empty() && table.iter().next().is_none());
}

#[test]
fn iter_mut_updates_in_place() {
    let mut table = FlowTable::new(16, [9; 16]);
    for n in 0..10 {
        table.insert(tuple(n), u32::from(n)).unwrap();
    }
    for (_, v) in table.iter_mut() {
        *v += 100;
    }
    assert_eq!((&table).into_iter().map(|(_, v)| *v).sum::<u32>(), 45 + 1_000);
}
