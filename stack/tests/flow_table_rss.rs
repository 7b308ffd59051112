//! Building a 1 Mi-flow [`FlowTable`] must not make its slot array resident: the array comes
//! from zeroed memory and the kernel maps a page only when a flow lands in it.
//!
//! Its own test binary with one test, so no other test allocates while the resident set is
//! read. Not flaky: the table's slot array is 40 MiB, and the checks are a quarter of that either
//! way (the untouched table must grow the resident set by less than 10 MiB, a table whose free
//! slots are not zero bytes by more than 30 MiB), far above the harness's own allocations and
//! far below what touching the array costs. Linux only (`/proc/self/status`).

#![cfg(target_os = "linux")]

use linerate_stack::flow::{FlowTable, FourTuple};
use linerate_stack::wire::Ipv4Address;

const FLOWS: usize = 1 << 20;
/// 2 Mi slots of 20 bytes (tag, 12 key bytes, a `u32` value).
const ARRAY_BYTES: usize = 2 * FLOWS * 20;

/// `VmRSS` of this process in bytes.
fn resident() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .expect("VmRSS in /proc/self/status");
    kib * 1024
}

/// A value whose default is not zero bytes: its table must fill every slot (the control that
/// shows the measurement sees a touched array).
#[derive(Clone, Copy, Debug, PartialEq)]
struct NotZero(u32);

impl Default for NotZero {
    fn default() -> Self {
        NotZero(u32::MAX)
    }
}

#[test]
fn a_new_table_leaves_its_slot_array_untouched() {
    let before = resident();
    let mut table = FlowTable::<u32>::new(FLOWS, [7; 16]);
    let grown = resident().saturating_sub(before);
    eprintln!("slot array {ARRAY_BYTES} B; resident growth: new table {grown} B");
    assert!(grown < ARRAY_BYTES / 4, "building the table made {grown} bytes resident");

    // The table works, and its pages come in as flows land: 1,000 flows touch at most 1,000 pages.
    for n in 0..1_000u32 {
        let t = FourTuple::new(Ipv4Address::new(198, 18, 0, 1), 80, Ipv4Address::from_u32(n), 1);
        table.insert(t, n).expect("capacity");
        assert_eq!(table.get(&t), Some(&n));
    }
    let grown = resident().saturating_sub(before);
    eprintln!("resident growth: table with 1,000 flows {grown} B");
    assert!(grown < ARRAY_BYTES / 4, "1,000 flows made {grown} bytes resident");

    let before = resident();
    let control = FlowTable::<NotZero>::new(FLOWS, [7; 16]);
    let grown = resident().saturating_sub(before);
    eprintln!("resident growth: table with non-zero free slots {grown} B");
    assert!(grown > ARRAY_BYTES * 3 / 4, "a filled slot array made only {grown} bytes resident");
    drop((table, control));
}
