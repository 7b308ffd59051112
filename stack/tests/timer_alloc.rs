//! The timer wheel allocates nothing on insert, cancel, reschedule, `next_expiry` or expiry once
//! its slab has grown: checked with a counting global allocator (this test binary only). The
//! count is per thread, so the test harness's own allocations on other threads never count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use linerate_stack::time::{Duration, Instant};
use linerate_stack::timer::{TimerWheel, WheelConfig};

struct CountingAllocator;

thread_local! {
    // Const-initialised, no destructor: reading it never allocates.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count_one() {
    ALLOCATIONS.with(|c| c.set(c.get() + 1));
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: defers every call to `System` unchanged; only counts allocations.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn no_allocation_on_any_operation_once_grown() {
    const LIVE: u64 = 4_096;
    let mut now = Instant::from_millis(1);
    let mut wheel = TimerWheel::with_capacity(WheelConfig::default(), now, LIVE as usize);
    let mut handles = [None; LIVE as usize];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let before = allocations();
    let mut fired = 0_usize;
    for round in 0..200_u64 {
        for slot in handles.iter_mut() {
            // Delays from 1 µs to ~4.6 h: every level up to 5 sees traffic.
            let deadline = now + Duration::from_nanos(1_000 << (next() % 25));
            // Timers that fired leave stale handles behind: their slot takes a new timer.
            match slot.filter(|&handle| wheel.get(handle).is_some()) {
                Some(handle) if next() % 3 == 0 => {
                    wheel.reschedule(handle, deadline);
                }
                Some(handle) if next() % 3 == 0 => {
                    wheel.cancel(handle);
                    *slot = None;
                }
                Some(_) => {}
                None => *slot = Some(wheel.insert(deadline, round)),
            }
        }
        if let Some(next_expiry) = wheel.next_expiry() {
            now = now.max(next_expiry);
        }
        now += Duration::from_micros(next() % 5_000);
        fired += wheel.expire(now, |_, _| {});
        assert!(wheel.len() <= LIVE as usize);
    }
    assert_eq!(allocations(), before, "the wheel allocated after growing");
    assert!(fired > 10_000, "the schedule exercised expiry ({fired} fired)");
}
