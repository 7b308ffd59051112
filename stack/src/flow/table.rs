//! [`FlowTable`]: open addressing with linear probing and backward-shift deletion.
//!
//! Why not `std::collections::HashMap` with a keyed hasher: measured in
//! `bench/benches/handshake.rs` at 1 Mi flows, same SipHash-1-3 for both, two runs on 2 heavily
//! shared cores (absolute numbers are loose): hit 0.54-0.56 vs 0.81-1.10 us, remove+insert
//! 1.07-1.18 vs 1.57-1.64 us, filling 1 Mi flows about equal (0.46-0.57 vs 0.54-0.72 s); a miss
//! costs 0.22 vs 0.10-0.18 us (hashbrown's dense control bytes end a miss without touching the
//! entries). Hits and churn dominate an engine's lookups, so this table wins; it also has a fixed
//! slot array sized once at construction (load factor at most 1/2), never rehashes, and keeps each
//! entry's hash so a probe compares one `u32` before a key. Deletion shifts the following run back
//! instead of leaving tombstones, so a long-lived table never degrades with churn.
//!
//! Building a table touches none of its slot array: a free slot is all zero bytes and the array
//! comes from zeroed memory, so the pages of a 1 Mi-flow table (40 MiB) become resident only as
//! flows land in them, not at every engine start (see [`Slot`]).

use core::fmt;

use siphasher::sip::SipHasher13;

use super::FourTuple;

/// Returned by [`FlowTable::insert`] when the table already holds `capacity` flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("flow table full ({capacity} flows): close idle connections or build the engine with a larger flow capacity")]
pub struct FlowTableFull {
    pub capacity: usize,
}

/// The `tag` of a used slot always has this bit: a free slot is all zero bytes (tag 0, key 0,
/// `V::default()`), so the slot array can come from zeroed memory. Capacity is at most 2^30, so
/// the mask has at most 31 bits and the bit never changes a home slot.
const OCCUPIED: u32 = 1 << 31;

/// `(tag, key, value)`: `tag` is the low 32 bits of the keyed hash with [`OCCUPIED`] set (0 for a
/// free slot); the home slot is `tag & mask`, and a probe compares the tag before the 12-byte key
/// ([`FourTuple::to_bytes`]). A tuple of plain integers, not a struct, so that `vec![free; n]`
/// takes the standard library's zeroed-allocation path (`alloc_zeroed`, i.e. `calloc`, whose
/// fresh pages the kernel maps on first touch): it does so for integers, short arrays and tuples
/// of them, not for a user type or an `Option` of one. That is a specialisation inside `std`, not
/// a documented promise, so `tests/flow_table_rss.rs` measures it.
type Slot<V> = (u32, [u8; FourTuple::BYTES], V);

/// A bounded map from [`FourTuple`] to `V` with a secret-keyed hash.
///
/// At most `capacity` entries; at least twice as many slots, so probe runs stay short and an empty
/// slot always exists (every probe loop ends). Values are `Copy`, and a free slot holds
/// `V::default()`: when that is all zero bytes (`u32`, `u64`, …) building a table touches none
/// of its slot array, so a large table costs memory only for the pages its flows land in.
pub struct FlowTable<V> {
    slots: Box<[Slot<V>]>,
    mask: usize,
    len: usize,
    capacity: usize,
    hasher: SipHasher13,
}

impl<V: Copy + Default> FlowTable<V> {
    /// A table for at most `capacity` flows, hashing with SipHash-1-3 under `key`.
    ///
    /// `key` must be secret and random per process (or per shard): it is what stops a peer from
    /// choosing 4-tuples that collide. Reserves all slots now (zeroed memory, see [`FlowTable`]);
    /// nothing allocates later.
    ///
    /// # Panics
    /// If `capacity` exceeds 2^30 (a configuration error: the slot array would not fit).
    pub fn new(capacity: usize, key: [u8; 16]) -> Self {
        assert!(capacity <= 1 << 30, "flow table capacity {capacity} is above the 2^30 limit");
        let n = (capacity * 2).max(2).next_power_of_two();
        let slots = vec![free(); n].into_boxed_slice();
        FlowTable { slots, mask: n - 1, len: 0, capacity, hasher: SipHasher13::new_with_key(&key) }
    }

    /// The keyed hash of `key`: also usable to steer flows to shards consistently with this table.
    pub fn hash(&self, key: &FourTuple) -> u64 {
        self.hasher.hash(&key.to_bytes())
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most entries the table will ever hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The tag and key bytes a slot holding `key` has.
    fn tag_and_bytes(&self, key: &FourTuple) -> (u32, [u8; FourTuple::BYTES]) {
        let bytes = key.to_bytes();
        (self.hasher.hash(&bytes) as u32 | OCCUPIED, bytes)
    }

    /// Index of the slot holding `key`, if any.
    fn find(&self, key: &FourTuple) -> Option<usize> {
        let (tag, bytes) = self.tag_and_bytes(key);
        let mut i = tag as usize & self.mask;
        loop {
            let (slot_tag, slot_key, _) = &self.slots[i];
            if *slot_tag == 0 {
                return None;
            }
            if *slot_tag == tag && *slot_key == bytes {
                return Some(i);
            }
            i = (i + 1) & self.mask;
        }
    }

    pub fn get(&self, key: &FourTuple) -> Option<&V> {
        let i = self.find(key)?;
        Some(&self.slots[i].2)
    }

    pub fn get_mut(&mut self, key: &FourTuple) -> Option<&mut V> {
        let i = self.find(key)?;
        Some(&mut self.slots[i].2)
    }

    pub fn contains_key(&self, key: &FourTuple) -> bool {
        self.find(key).is_some()
    }

    /// Inserts `value` under `key`, replacing any value already there.
    ///
    /// Fails without changing anything when `key` is new and the table holds `capacity` flows.
    pub fn insert(&mut self, key: FourTuple, value: V) -> Result<(), FlowTableFull> {
        let (tag, bytes) = self.tag_and_bytes(&key);
        let mut i = tag as usize & self.mask;
        loop {
            let slot = &mut self.slots[i];
            if slot.0 == 0 {
                break;
            }
            if slot.0 == tag && slot.1 == bytes {
                slot.2 = value;
                return Ok(());
            }
            i = (i + 1) & self.mask;
        }
        if self.len >= self.capacity {
            return Err(FlowTableFull { capacity: self.capacity });
        }
        self.slots[i] = (tag, bytes, value);
        self.len += 1;
        Ok(())
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &FourTuple) -> Option<V> {
        let found = self.find(key)?;
        let (_, _, removed) = core::mem::replace(&mut self.slots[found], free());
        self.len -= 1;
        self.shift_back(found);
        Some(removed)
    }

    /// Backward-shift deletion: walks the run after the new hole and moves back every entry whose
    /// home slot is at or before the hole (cyclically), so lookups never need tombstones.
    fn shift_back(&mut self, mut hole: usize) {
        let mut j = (hole + 1) & self.mask;
        while self.slots[j].0 != 0 {
            let home = self.slots[j].0 as usize & self.mask;
            let from_home = j.wrapping_sub(home) & self.mask;
            let from_hole = j.wrapping_sub(hole) & self.mask;
            if from_home >= from_hole {
                self.slots[hole] = core::mem::replace(&mut self.slots[j], free());
                hole = j;
            }
            j = (j + 1) & self.mask;
        }
    }

    /// Removes every entry; keeps the slot array.
    pub fn clear(&mut self) {
        if self.len > 0 {
            self.slots.fill(free());
        }
        self.len = 0;
    }

    /// All entries, in slot order (unrelated to insertion order; depends on the key).
    pub fn iter(&self) -> Iter<'_, V> {
        Iter { slots: self.slots.iter() }
    }

    pub fn iter_mut(&mut self) -> IterMut<'_, V> {
        IterMut { slots: self.slots.iter_mut() }
    }
}

/// A free slot: all zero bytes when `V::default()` is.
fn free<V: Default>() -> Slot<V> {
    (0, [0; FourTuple::BYTES], V::default())
}

impl<V> fmt::Debug for FlowTable<V> {
    /// Shows the size only: never the hash key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowTable")
            .field("len", &self.len)
            .field("capacity", &self.capacity)
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// Iterator over `(FourTuple, &V)`; see [`FlowTable::iter`]. Keys come by value: a slot keeps
/// the key's bytes, not a [`FourTuple`].
pub struct Iter<'a, V> {
    slots: core::slice::Iter<'a, Slot<V>>,
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (FourTuple, &'a V);
    fn next(&mut self) -> Option<Self::Item> {
        self.slots.find(|s| s.0 != 0).map(|(_, key, value)| (FourTuple::from_bytes(*key), value))
    }
}

impl<V> fmt::Debug for Iter<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").finish_non_exhaustive()
    }
}

/// Iterator over `(FourTuple, &mut V)`; see [`FlowTable::iter_mut`].
pub struct IterMut<'a, V> {
    slots: core::slice::IterMut<'a, Slot<V>>,
}

impl<'a, V> Iterator for IterMut<'a, V> {
    type Item = (FourTuple, &'a mut V);
    fn next(&mut self) -> Option<Self::Item> {
        self.slots.find(|s| s.0 != 0).map(|(_, key, value)| (FourTuple::from_bytes(*key), value))
    }
}

impl<V> fmt::Debug for IterMut<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IterMut").finish_non_exhaustive()
    }
}

impl<'a, V: Copy + Default> IntoIterator for &'a FlowTable<V> {
    type Item = (FourTuple, &'a V);
    type IntoIter = Iter<'a, V>;
    fn into_iter(self) -> Iter<'a, V> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Ipv4Address;

    fn tuple(n: u32) -> FourTuple {
        FourTuple::new(Ipv4Address::new(198, 18, 0, 1), 80, Ipv4Address::from_u32(n), n as u16)
    }

    #[test]
    fn insert_get_remove_round_trip() {
        let mut t = FlowTable::new(4, [7; 16]);
        assert_eq!(t.insert(tuple(1), "a"), Ok(()));
        assert_eq!(t.insert(tuple(2), "b"), Ok(()));
        assert_eq!(t.get(&tuple(1)), Some(&"a"));
        assert_eq!(t.remove(&tuple(1)), Some("a"));
        assert_eq!(t.get(&tuple(1)), None);
        assert_eq!(t.get(&tuple(2)), Some(&"b"));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn full_table_refuses_new_keys_but_replaces_existing() {
        let mut t = FlowTable::new(2, [1; 16]);
        t.insert(tuple(1), 1).unwrap();
        t.insert(tuple(2), 2).unwrap();
        assert_eq!(t.insert(tuple(3), 3), Err(FlowTableFull { capacity: 2 }));
        assert_eq!(t.insert(tuple(2), 20), Ok(()));
        assert_eq!(t.get(&tuple(2)), Some(&20));
        assert_eq!(t.len(), 2);
        let mut zero = FlowTable::new(0, [1; 16]);
        assert!(zero.insert(tuple(1), ()).is_err());
        assert_eq!(zero.get(&tuple(1)), None);
    }

    #[test]
    fn different_keys_give_different_hashes() {
        let a = FlowTable::<()>::new(1, [1; 16]);
        let b = FlowTable::<()>::new(1, [2; 16]);
        assert_ne!(a.hash(&tuple(9)), b.hash(&tuple(9)));
        assert_eq!(a.hash(&tuple(9)), FlowTable::<()>::new(8, [1; 16]).hash(&tuple(9)));
    }

    #[test]
    fn debug_does_not_leak_the_key() {
        let t = FlowTable::<u8>::new(3, [0xab; 16]);
        let s = format!("{t:?}");
        assert!(s.contains("capacity: 3") && !s.contains("171"), "{s}");
    }
}
