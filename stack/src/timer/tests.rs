//! Edge cases of the timer wheel. The randomized comparison against a binary-heap model lives in
//! `stack/tests/timer_model.rs`.

use super::*;

const TICK_NS: u64 = 4_000;

fn wheel_at(start: Instant) -> TimerWheel<u32> {
    TimerWheel::new(WheelConfig::default(), start)
}

fn drain(wheel: &mut TimerWheel<u32>, now: Instant) -> Vec<u32> {
    let mut out = Vec::new();
    wheel.expire(now, |_, value| out.push(value));
    out
}

fn sorted(mut values: Vec<u32>) -> Vec<u32> {
    values.sort_unstable();
    values
}

fn ns(n: u64) -> Instant {
    Instant::from_nanos(n)
}

fn secs(n: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(n)
}

#[test]
fn default_tick_is_four_microseconds() {
    let wheel = wheel_at(Instant::ZERO);
    assert_eq!(wheel.tick(), Duration::from_micros(4));
    assert!(wheel.is_empty());
    assert_eq!(wheel.next_expiry(), None);
}

#[test]
fn deadline_rounds_up_and_never_fires_early() {
    let mut wheel = wheel_at(Instant::ZERO);
    let handle = wheel.insert(ns(TICK_NS + 1), 7);
    assert_eq!(wheel.deadline(handle), Some(ns(2 * TICK_NS)));
    assert_eq!(wheel.next_expiry(), Some(ns(2 * TICK_NS)));
    assert_eq!(wheel.poll_expired(ns(TICK_NS + 1)), None, "deadline passed but tick not reached");
    assert_eq!(wheel.poll_expired(ns(2 * TICK_NS - 1)), None);
    assert_eq!(wheel.poll_expired(ns(2 * TICK_NS)), Some((handle, 7)));
    assert!(wheel.is_empty());
}

#[test]
fn exact_multiple_of_tick_is_not_rounded() {
    let mut wheel = wheel_at(Instant::ZERO);
    let handle = wheel.insert(ns(3 * TICK_NS), 1);
    assert_eq!(wheel.deadline(handle), Some(ns(3 * TICK_NS)));
    assert_eq!(drain(&mut wheel, ns(3 * TICK_NS)), [1]);
}

#[test]
fn past_deadlines_fire_at_next_poll() {
    let start = Instant::from_millis(10);
    let mut wheel = wheel_at(start);
    wheel.insert(Instant::from_millis(5), 1);
    wheel.insert(Instant::ZERO, 2);
    wheel.insert(start, 3);
    // Both past deadlines are due at the cursor, so all three tie.
    assert_eq!(wheel.next_expiry(), Some(start));
    assert_eq!(sorted(drain(&mut wheel, start)), [1, 2, 3]);
}

#[test]
fn past_deadline_is_not_ordered_before_a_timer_already_yielded() {
    let mut wheel = wheel_at(Instant::ZERO);
    wheel.insert(ns(10 * TICK_NS), 1);
    wheel.insert(ns(20 * TICK_NS), 2);
    let now = ns(30 * TICK_NS);
    assert_eq!(wheel.poll_expired(now).map(|(_, v)| v), Some(1));
    assert_eq!(wheel.advanced_to(), ns(10 * TICK_NS));
    // Deadline 5 ticks is before the cursor (10): it is due at tick 10, ahead of tick 20.
    wheel.insert(ns(5 * TICK_NS), 3);
    wheel.insert(ns(15 * TICK_NS), 4);
    assert_eq!(drain(&mut wheel, now), [3, 4, 2]);
    assert_eq!(wheel.advanced_to(), now);
}

#[test]
fn deadlines_within_one_tick_tie() {
    let mut wheel = wheel_at(Instant::ZERO);
    wheel.insert(ns(TICK_NS), 1);
    wheel.insert(ns(TICK_NS - 1), 2);
    wheel.insert(ns(1), 3);
    wheel.insert(ns(TICK_NS + 1), 4);
    let first_tick = drain(&mut wheel, ns(TICK_NS));
    assert_eq!(sorted(first_tick), [1, 2, 3], "all due at tick 1, whatever their nanoseconds");
    assert_eq!(drain(&mut wheel, ns(10 * TICK_NS)), [4]);
}

#[test]
fn ties_meet_in_one_tick_across_a_cascade() {
    let mut wheel = wheel_at(Instant::ZERO);
    // Tick 5000 is filed in a higher level; the poll just before cascades it down.
    wheel.insert(ns(5_000 * TICK_NS), 1);
    assert_eq!(wheel.poll_expired(ns(4_990 * TICK_NS)), None);
    wheel.insert(ns(5_000 * TICK_NS), 2);
    // Filed relative to the cursor 4990, after that cascade; same tick as the others.
    assert_eq!(drain(&mut wheel, ns(4_999 * TICK_NS)), Vec::<u32>::new());
    wheel.insert(ns(5_000 * TICK_NS - 5), 3);
    assert_eq!(drain(&mut wheel, ns(5_000 * TICK_NS - 1)), Vec::<u32>::new());
    assert_eq!(sorted(drain(&mut wheel, ns(5_000 * TICK_NS))), [1, 2, 3]);
}

#[test]
fn reschedule_earlier_and_later() {
    let mut wheel = wheel_at(Instant::ZERO);
    let a = wheel.insert(Instant::from_millis(100), 1);
    let b = wheel.insert(Instant::from_millis(50), 2);
    assert!(wheel.reschedule(a, Instant::from_millis(10)));
    assert_eq!(wheel.next_expiry(), Some(Instant::from_millis(10)));
    assert!(wheel.reschedule(b, secs(3)));
    assert_eq!(wheel.deadline(b), Some(secs(3)));
    assert_eq!(drain(&mut wheel, Instant::from_millis(60)), [1]);
    assert_eq!(wheel.next_expiry(), Some(secs(3)));
    assert_eq!(drain(&mut wheel, secs(3)), [2]);
}

#[test]
fn a_later_deadline_is_postponed_in_place_and_refiled_when_its_slot_is_reached() {
    let mut wheel = wheel_at(Instant::ZERO);
    let a = wheel.insert(ns(10 * TICK_NS), 1);
    let b = wheel.insert(ns(10 * TICK_NS), 2);
    assert!(wheel.reschedule(a, ns(20 * TICK_NS)));
    assert!(wheel.reschedule(a, ns(30 * TICK_NS)), "postponing twice");
    assert_eq!(wheel.deadline(a), Some(ns(30 * TICK_NS)));
    assert_eq!(wheel.next_expiry(), Some(ns(10 * TICK_NS)));
    assert_eq!(wheel.poll_expired(ns(10 * TICK_NS)), Some((b, 2)));
    // Slot 10 also held `a`, re-filed at tick 30 by the same poll.
    assert_eq!(wheel.poll_expired(ns(29 * TICK_NS)), None);
    assert_eq!(wheel.next_expiry(), Some(ns(30 * TICK_NS)));
    assert_eq!(wheel.poll_expired(ns(30 * TICK_NS)), Some((a, 1)));
    assert!(wheel.is_empty());
}

#[test]
fn postponing_the_earliest_timer_keeps_next_expiry_exact() {
    let mut wheel = wheel_at(Instant::ZERO);
    let a = wheel.insert(ns(10 * TICK_NS), 1);
    assert!(wheel.reschedule(a, ns(25 * TICK_NS)));
    // Its slot was the earliest and lost its only timer at the bound: cleaned at once, without
    // moving the cursor.
    assert_eq!(wheel.next_expiry(), Some(ns(25 * TICK_NS)));
    assert_eq!(wheel.advanced_to(), Instant::ZERO);
    let b = wheel.insert(ns(15 * TICK_NS), 2);
    assert_eq!(wheel.poll_expired(ns(24 * TICK_NS)), Some((b, 2)));
    assert_eq!(wheel.poll_expired(ns(24 * TICK_NS)), None);
    assert_eq!(wheel.poll_expired(ns(25 * TICK_NS)), Some((a, 1)));
}

#[test]
fn postponing_or_cancelling_a_timer_behind_the_earliest_touches_only_its_entry() {
    let mut wheel = wheel_at(Instant::ZERO);
    wheel.insert(ns(10 * TICK_NS), 1);
    let far = wheel.insert(ns(5_000 * TICK_NS), 2);
    let other = wheel.insert(ns(5_000 * TICK_NS), 3);
    let filed = wheel.slab.entries[far.index as usize].flat;
    assert!(wheel.reschedule(far, ns(7_000 * TICK_NS)));
    assert_eq!(wheel.slab.entries[far.index as usize].flat, filed, "still filed in its higher-level slot");
    assert_eq!(wheel.cancel(other), Some(3));
    assert_eq!(wheel.zombies(), 1, "left linked as a zombie");
    assert_eq!(wheel.next_expiry(), Some(ns(10 * TICK_NS)));
    assert_eq!(drain(&mut wheel, ns(10 * TICK_NS)), [1]);
    // Now the higher-level slot is the earliest; it held no live timer at its bound, so it was
    // cleaned: the zombie freed, the postponed timer re-filed.
    assert_eq!(wheel.zombies(), 0);
    assert_eq!(wheel.next_expiry(), Some(ns(7_000 * TICK_NS)));
    assert_eq!(drain(&mut wheel, ns(7_000 * TICK_NS)), [2]);
}

/// The three ways `reschedule` handles a live timer: the same tick (nothing changes), a later
/// tick (postponed in place; here the earliest slot's only timer, so the wheel settles) and an
/// earlier tick than a postponed one, before its filed slot (unlinked and re-filed at once).
#[test]
fn same_later_and_less_postponed_ticks_keep_next_expiry_exact() {
    let span = slots::SLOTS as u64; // ticks per level-1 slot
    let at = |ticks: u64| ns(ticks * TICK_NS);
    let mut wheel = wheel_at(Instant::ZERO);
    let a = wheel.insert(at(span + 36), 1); // level 1, slot 1
    wheel.insert(at(3 * span + 8), 2); // level 1, slot 3
    assert!(wheel.reschedule(a, at(span + 36)));
    assert_eq!(wheel.next_expiry(), Some(at(span + 36)));
    assert!(wheel.reschedule(a, at(7 * span + 52)));
    assert_eq!(wheel.next_expiry(), Some(at(3 * span + 8)));
    let filed = wheel.slab.entries[a.index as usize].flat;
    assert!(wheel.reschedule(a, at(4 * span + 44)));
    assert_ne!(wheel.slab.entries[a.index as usize].flat, filed, "moved before its slot");
    assert_eq!(wheel.deadline(a), Some(at(4 * span + 44)));
    assert_eq!(wheel.next_expiry(), Some(at(3 * span + 8)));
    assert_eq!(drain(&mut wheel, at(4 * span + 43)), [2]);
    assert_eq!(drain(&mut wheel, at(4 * span + 44)), [1]);
    assert!(wheel.is_empty());
}

#[test]
fn postponing_earlier_within_a_wide_slot_lowers_next_expiry() {
    let mut wheel = wheel_at(Instant::ZERO);
    // One higher-level slot holds ticks 7936..8191 from a cursor at 0 (level 1 of 256 slots;
    // 4096..8191 in level 2 of 64): filed at 8000.
    let a = wheel.insert(ns(8_000 * TICK_NS), 1);
    assert_eq!(wheel.next_expiry(), Some(ns(8_000 * TICK_NS)));
    // Earlier than the timer's tick but inside its slot: stays put, the bound must drop.
    let filed = wheel.slab.entries[a.index as usize].flat;
    assert!(wheel.reschedule(a, ns(7_950 * TICK_NS)));
    assert_eq!(wheel.slab.entries[a.index as usize].flat, filed);
    assert_eq!(wheel.next_expiry(), Some(ns(7_950 * TICK_NS)));
    assert_eq!(drain(&mut wheel, ns(7_950 * TICK_NS - 1)), Vec::<u32>::new());
    assert_eq!(drain(&mut wheel, ns(7_950 * TICK_NS)), [1]);
}

#[test]
fn an_earlier_deadline_before_the_filed_slot_moves_at_once() {
    let mut wheel = wheel_at(Instant::ZERO);
    let a = wheel.insert(ns(5_000 * TICK_NS), 1);
    assert!(wheel.reschedule(a, ns(100 * TICK_NS)));
    assert_eq!(wheel.next_expiry(), Some(ns(100 * TICK_NS)));
    assert_eq!(drain(&mut wheel, ns(100 * TICK_NS)), [1]);
    assert_eq!(wheel.next_expiry(), None);
}

#[test]
fn reschedule_into_the_past_fires_at_next_poll() {
    let mut wheel = wheel_at(Instant::from_millis(1));
    let a = wheel.insert(secs(60), 1);
    assert!(wheel.reschedule(a, Instant::ZERO));
    assert_eq!(wheel.deadline(a), Some(Instant::from_millis(1)));
    assert_eq!(drain(&mut wheel, Instant::from_millis(1)), [1]);
}

#[test]
fn stale_handles_resolve_to_nothing_after_fire_or_cancel() {
    let mut wheel = wheel_at(Instant::ZERO);
    let fired = wheel.insert(ns(TICK_NS), 1);
    let cancelled = wheel.insert(ns(2 * TICK_NS), 2);
    assert_eq!(wheel.cancel(cancelled), Some(2));
    assert_eq!(wheel.cancel(cancelled), None);
    assert_eq!(wheel.poll_expired(ns(TICK_NS)), Some((fired, 1)));
    for stale in [fired, cancelled] {
        assert_eq!(wheel.cancel(stale), None);
        assert!(!wheel.reschedule(stale, ns(5 * TICK_NS)));
        assert_eq!(wheel.deadline(stale), None);
        assert_eq!(wheel.get(stale), None);
        assert_eq!(wheel.get_mut(stale), None);
    }
    // Slots are reused, but with a new generation: old handles still do not resolve.
    let reused = [wheel.insert(ns(9 * TICK_NS), 3), wheel.insert(ns(9 * TICK_NS), 4)];
    assert!(reused.iter().all(|h| *h != fired && *h != cancelled));
    assert_eq!(wheel.cancel(fired), None);
    assert_eq!(wheel.get(cancelled), None);
    assert_eq!(wheel.len(), 2);
}

#[test]
fn get_mut_changes_the_value_that_fires() {
    let mut wheel = wheel_at(Instant::ZERO);
    let handle = wheel.insert(ns(TICK_NS), 1);
    *wheel.get_mut(handle).unwrap() = 42;
    assert_eq!(wheel.get(handle), Some(&42));
    assert_eq!(drain(&mut wheel, ns(TICK_NS)), [42]);
}

#[test]
fn far_future_deadlines_fire_on_time() {
    let start = Instant::from_millis(123);
    let mut wheel = wheel_at(start);
    let hour = Duration::from_secs(3_600);
    let deadlines =
        [start + hour, start + hour.saturating_mul(24), start + hour.saturating_mul(24 * 365 * 100)];
    for (i, &deadline) in deadlines.iter().enumerate() {
        wheel.insert(deadline, i as u32);
    }
    for (i, &deadline) in deadlines.iter().enumerate() {
        assert_eq!(wheel.next_expiry(), Some(deadline));
        assert_eq!(drain(&mut wheel, deadline - Duration::from_nanos(1)), Vec::<u32>::new());
        assert_eq!(drain(&mut wheel, deadline), [i as u32]);
    }
    assert!(wheel.is_empty());
}

#[test]
fn max_deadline_fires_only_at_the_end_of_time() {
    let mut wheel = wheel_at(Instant::ZERO);
    let handle = wheel.insert(Instant::MAX, 1);
    // 4000 does not divide u64::MAX: the rounded deadline saturates.
    assert_eq!(wheel.deadline(handle), Some(Instant::MAX));
    assert_eq!(wheel.next_expiry(), Some(Instant::MAX));
    assert_eq!(drain(&mut wheel, Instant::MAX - Duration::from_nanos(1)), Vec::<u32>::new());
    assert_eq!(drain(&mut wheel, Instant::MAX), [1]);
    // The cursor is now at the end of time; anything inserted later is due immediately.
    wheel.insert(Instant::ZERO, 2);
    wheel.insert(Instant::MAX, 3);
    assert_eq!(sorted(drain(&mut wheel, Instant::MAX)), [2, 3], "one tick: any order");
}

#[test]
fn one_nanosecond_tick_reaches_the_top_level() {
    let mut wheel = TimerWheel::new(WheelConfig { tick: Duration::ZERO }, Instant::ZERO);
    assert_eq!(wheel.tick(), Duration::from_nanos(1));
    wheel.insert(Instant::MAX, 2);
    wheel.insert(ns(1 << 62), 1);
    assert_eq!(wheel.next_expiry(), Some(ns(1 << 62)));
    assert_eq!(drain(&mut wheel, ns(u64::MAX - 1)), [1]);
    assert_eq!(wheel.next_expiry(), Some(Instant::MAX));
    assert_eq!(drain(&mut wheel, Instant::MAX), [2]);
}

#[test]
fn one_poll_far_ahead_yields_everything_in_order() {
    let mut wheel = wheel_at(Instant::ZERO);
    let mut expected = Vec::new();
    // Deadlines at every scale from one tick to ~a year, inserted in scrambled order.
    let mut deadlines: Vec<u64> = (0..60).map(|shift| (1_u64 << (shift % 45)) * 1_000 + 17).collect();
    deadlines.sort_by_key(|d| d.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    for (i, &d) in deadlines.iter().enumerate() {
        wheel.insert(ns(d), i as u32);
        expected.push((d.div_ceil(TICK_NS), i as u32));
    }
    expected.sort();
    let got = drain(&mut wheel, Instant::from_millis(1_000_000_000_000));
    // Timers of one tick come out in any order: compare the ticks in firing order, then the set.
    let tick_of = |i: u32| deadlines[i as usize].div_ceil(TICK_NS);
    let got_ticks: Vec<u64> = got.iter().map(|&i| tick_of(i)).collect();
    assert_eq!(got_ticks, expected.iter().map(|&(tick, _)| tick).collect::<Vec<_>>());
    assert_eq!(sorted(got), (0..60).collect::<Vec<u32>>());
}

#[test]
fn time_wait_of_sixty_seconds_at_four_microsecond_ticks() {
    let start = Instant::from_millis(1_234);
    let mut wheel = wheel_at(start);
    let time_wait = start + Duration::from_secs(60);
    let handle = wheel.insert(time_wait, 9);
    // A pacing timer in level 0 alongside the long one.
    wheel.insert(start + Duration::from_micros(32), 1);
    assert_eq!(drain(&mut wheel, start + Duration::from_micros(32)), [1]);
    let mut now = start;
    // A driver loop that sleeps until `next_expiry`: exact, so the first wake fires it.
    let mut wakes = 0;
    while let Some(next) = wheel.next_expiry() {
        assert_eq!(next, time_wait);
        now = next;
        wakes += 1;
        assert_eq!(wheel.poll_expired(now), Some((handle, 9)));
    }
    assert_eq!((wakes, now), (1, time_wait));
}

#[test]
fn next_expiry_stays_exact_after_cancels_and_postponements() {
    let mut wheel = wheel_at(Instant::ZERO);
    // Timers in one higher-level slot (ticks 7936..8191, as in the test above).
    let a = wheel.insert(ns(8_000 * TICK_NS), 1);
    let b = wheel.insert(ns(7_960 * TICK_NS), 2);
    let _c = wheel.insert(ns(8_100 * TICK_NS), 3);
    assert_eq!(wheel.next_expiry(), Some(ns(7_960 * TICK_NS)));
    wheel.insert(ns(7_950 * TICK_NS), 4);
    assert_eq!(wheel.next_expiry(), Some(ns(7_950 * TICK_NS)));
    assert_eq!(wheel.cancel(b), Some(2));
    assert!(wheel.reschedule(a, ns(8_150 * TICK_NS)));
    assert_eq!(wheel.next_expiry(), Some(ns(7_950 * TICK_NS)), "still exact: 4 is live");
    assert_eq!(drain(&mut wheel, ns(7_950 * TICK_NS)), [4]);
    // The slot's cascade re-filed everything by its real tick: exact again.
    assert_eq!(wheel.next_expiry(), Some(ns(8_100 * TICK_NS)));
    assert_eq!(wheel.zombies(), 0, "the cascade freed the cancelled timer");
}

#[test]
fn cancelling_the_earliest_timers_keeps_next_expiry_exact() {
    let mut wheel = wheel_at(Instant::ZERO);
    // Ticks from 2^24 on, from a cursor at 0: three adjacent ticks in one wide slot (level 3
    // of 256 slots, level 4 of 64).
    let base = 1_u64 << 24;
    let first = wheel.insert(ns((base + 1) * TICK_NS), 1);
    let second = wheel.insert(ns((base + 2) * TICK_NS), 2);
    wheel.insert(ns((base + 3) * TICK_NS), 3);
    assert_eq!(wheel.cancel(second), Some(2), "not the minimum");
    assert_eq!(wheel.zombies(), 1);
    assert_eq!(wheel.next_expiry(), Some(ns((base + 1) * TICK_NS)));
    assert_eq!(wheel.cancel(first), Some(1));
    assert_eq!(wheel.next_expiry(), Some(ns((base + 3) * TICK_NS)));
    assert_eq!(wheel.zombies(), 0, "the rescan of the slot freed both");
    assert_eq!(drain(&mut wheel, ns((base + 3) * TICK_NS - 1)), Vec::<u32>::new());
    assert_eq!(drain(&mut wheel, ns((base + 3) * TICK_NS)), [3]);
}

#[test]
fn cancelled_timers_never_fire_and_their_zombies_stay_bounded() {
    let mut wheel = wheel_at(Instant::ZERO);
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let handles: Vec<_> = (0..10_000_u32).map(|i| wheel.insert(ns(next() % (1 << 40)), i)).collect();
    let mut kept = Vec::new();
    for (i, &h) in handles.iter().enumerate() {
        if i % 10 == 3 {
            kept.push(i as u32);
        } else {
            assert_eq!(wheel.cancel(h), Some(i as u32));
        }
        assert!(wheel.zombies() <= 2_500, "zombies {} after {} cancels", wheel.zombies(), i);
    }
    assert_eq!(wheel.len(), 1_000);
    assert!(wheel.zombies() >= 64, "cancels leave zombies, not unlinks");
    assert_eq!(sorted(drain(&mut wheel, Instant::MAX)), kept);
    assert_eq!(wheel.zombies(), 0, "every slot was walked");
    assert_eq!(wheel.next_expiry(), None);
}

#[test]
fn batched_unlinks_of_neighbouring_zombies_keep_the_lists_intact() {
    let mut wheel = wheel_at(Instant::ZERO);
    // Long lists in few slots, and runs of cancels of adjacent entries: batches whose zombies
    // are each other's neighbours, heads and tails.
    let handles: Vec<_> =
        (0..3_000_u32).map(|i| wheel.insert(ns(u64::from(i % 3) * 9_000 * TICK_NS), i)).collect();
    let mut kept = Vec::new();
    for (i, &h) in handles.iter().enumerate() {
        if i % 97 < 90 {
            wheel.cancel(h);
        } else {
            kept.push(i as u32);
        }
    }
    assert!(wheel.zombies() <= 64);
    for at in [0, 9_000, 18_000] {
        let fired = drain(&mut wheel, ns(at * TICK_NS));
        let want: Vec<u32> = kept.iter().copied().filter(|i| u64::from(i % 3) * 9_000 == at).collect();
        assert_eq!(sorted(fired), want, "tick {at}");
    }
    assert!(wheel.is_empty());
    assert_eq!(wheel.zombies(), 0);
}

#[test]
fn a_driver_sleeping_until_next_expiry_wakes_only_to_fire() {
    let mut wheel = wheel_at(Instant::ZERO);
    let deadline = |i: u64, round: u64| ns(((i * 37 % 1_000) + 1) * 50 * TICK_NS + round * 7_000 * TICK_NS);
    let handles: Vec<_> = (0..200_u64).map(|i| wheel.insert(deadline(i, 0), i as u32)).collect();
    // TCP-like: every timer restarted later a few times (all postponed in place), some
    // cancelled (zombies).
    for round in 1..=3_u64 {
        for (i, &h) in handles.iter().enumerate() {
            assert!(wheel.reschedule(h, deadline(i as u64, round)));
        }
    }
    for &h in handles.iter().step_by(5) {
        wheel.cancel(h);
    }
    let (mut now, mut wakes, mut fired) = (Instant::ZERO, 0, 0);
    while let Some(next) = wheel.next_expiry() {
        assert!(next > now, "next_expiry {next:?} not after the last wake {now:?}");
        now = next;
        wakes += 1;
        let got = drain(&mut wheel, now);
        assert_eq!(got.len(), 1, "one timer per distinct deadline, at {now:?}");
        assert_eq!(Some(now), Some(deadline(u64::from(got[0]), 3)));
        fired += 1;
    }
    assert_eq!((wakes, fired), (160, 160));
    assert_eq!(wheel.zombies(), 0);
}

#[test]
fn polling_with_an_earlier_now_yields_nothing_and_keeps_the_cursor() {
    let mut wheel = wheel_at(Instant::from_millis(5));
    wheel.insert(Instant::from_millis(6), 1);
    assert_eq!(wheel.poll_expired(Instant::from_millis(1)), None);
    assert_eq!(wheel.advanced_to(), Instant::from_millis(5));
    assert_eq!(drain(&mut wheel, Instant::from_millis(6)), [1]);
}

#[test]
fn clear_drops_everything_and_stales_handles() {
    let mut wheel = TimerWheel::with_capacity(WheelConfig::default(), Instant::ZERO, 16);
    assert!(wheel.capacity() >= 16);
    let handles: Vec<_> = (0..10).map(|i| wheel.insert(Instant::from_millis(i * 7), i as u32)).collect();
    wheel.clear();
    assert!(wheel.is_empty());
    assert_eq!(wheel.next_expiry(), None);
    assert!(handles.iter().all(|&h| wheel.get(h).is_none()));
    let fresh = wheel.insert(Instant::from_millis(1), 99);
    assert!(!handles.contains(&fresh));
    assert_eq!(drain(&mut wheel, Instant::from_millis(100)), [99]);
}

#[test]
fn no_reallocation_once_grown() {
    let mut wheel = TimerWheel::with_capacity(WheelConfig::default(), Instant::ZERO, 1_000);
    let capacity = wheel.capacity();
    for round in 0..20_u64 {
        let handles: Vec<_> =
            (0..1_000).map(|i| wheel.insert(Instant::from_micros(round * 10_000 + i * 3), 0)).collect();
        for h in handles.iter().step_by(2) {
            wheel.cancel(*h);
        }
        wheel.expire(Instant::from_micros((round + 1) * 10_000), |_, _| {});
        assert!(wheel.is_empty());
    }
    assert_eq!(wheel.capacity(), capacity);
}

#[test]
fn an_insert_revives_a_recent_zombie_filed_no_later_than_its_tick() {
    let mut wheel = wheel_at(Instant::ZERO);
    // An earlier timer keeps the cancelled one's slot from being the earliest (whose zombies
    // the wheel frees at once).
    wheel.insert(ns(5 * TICK_NS), 0);
    let keep = wheel.insert(secs(1), 1);
    let near = wheel.insert(ns(10 * TICK_NS), 2);
    assert_eq!(wheel.cancel(near), Some(2));
    assert_eq!(wheel.zombies(), 1);
    // The zombie's level-0 slot starts before 60 s: the new timer takes its entry in place.
    let far = wheel.insert(secs(60), 3);
    assert_eq!(far.index, near.index, "the zombie's entry");
    assert_ne!(far, near, "with a new generation");
    assert_eq!(wheel.zombies(), 0);
    assert_eq!(wheel.get(near), None, "the cancelled handle stays stale");
    assert_eq!((wheel.get(far), wheel.deadline(far)), (Some(&3), Some(secs(60))));
    assert_eq!(wheel.next_expiry(), Some(ns(5 * TICK_NS)));
    // Reaching the level-0 slot re-files the revived timer instead of firing it.
    assert_eq!(drain(&mut wheel, ns(10 * TICK_NS)), [0]);
    assert_eq!(wheel.next_expiry(), Some(secs(1)));
    assert_eq!(drain(&mut wheel, secs(1)), [1]);
    assert_eq!(wheel.get(keep), None);
    assert_eq!(wheel.next_expiry(), Some(secs(60)));
    assert_eq!(drain(&mut wheel, secs(60) - Duration::from_nanos(1)), Vec::<u32>::new());
    assert_eq!(drain(&mut wheel, secs(60)), [3]);
}

#[test]
fn a_zombie_filed_after_the_new_tick_is_not_revived() {
    let mut wheel = wheel_at(Instant::ZERO);
    wheel.insert(secs(50), 0);
    let late = wheel.insert(secs(100), 1);
    wheel.cancel(late);
    // 100 s is in a slot starting at 2^24 ticks (67 s; level 3 of 256 slots, level 4 of 64): a
    // 61 s timer cannot sit there.
    let early = wheel.insert(secs(61), 2);
    assert_ne!(early.index, late.index);
    assert_eq!(wheel.zombies(), 1);
    assert_eq!(wheel.next_expiry(), Some(secs(50)));
    // A later one can.
    let later = wheel.insert(secs(90), 3);
    assert_eq!(later.index, late.index);
    assert_eq!(wheel.zombies(), 0);
    assert_eq!(drain(&mut wheel, Instant::MAX), [0, 2, 3]);
}

#[test]
fn reviving_into_an_empty_wheel_keeps_next_expiry_exact() {
    let mut wheel = wheel_at(Instant::ZERO);
    let soon = wheel.insert(ns(5 * TICK_NS), 1);
    let also = wheel.insert(ns(5 * TICK_NS), 2);
    wheel.cancel(soon);
    wheel.cancel(also);
    assert!(wheel.is_empty());
    // Only zombies were left; the revived entry keeps its level-0 slot but is due at 2 s.
    let revived = wheel.insert(secs(2), 3);
    assert!(revived.index == soon.index || revived.index == also.index);
    assert_eq!(wheel.next_expiry(), Some(secs(2)));
    assert_eq!(drain(&mut wheel, secs(2)), [3]);
    assert_eq!(wheel.zombies(), 0);
}

#[test]
fn a_zombie_that_cannot_live_again_is_retired_not_revived() {
    let mut wheel = wheel_at(Instant::ZERO);
    let old = wheel.insert(secs(1), 1);
    wheel.slab.entries[old.index as usize].generation = u32::MAX - 2;
    let old = TimerHandle { index: old.index, generation: u32::MAX - 2 };
    assert_eq!(wheel.cancel(old), Some(1));
    let fresh = wheel.insert(secs(2), 2);
    assert_ne!(fresh.index, old.index);
    assert_eq!(wheel.zombies(), 0, "unlinked and retired");
    assert_eq!(drain(&mut wheel, Instant::MAX), [2]);
    assert_ne!(wheel.insert(secs(3), 3).index, old.index, "never reused");
}
