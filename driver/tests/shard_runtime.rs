//! The shard runtime: pinned named threads, live stats, phased shutdown with deadlines, panic
//! capture. Shutdown by signal is in `shard_signal.rs` (its own process-wide handler).

mod shard_common;

use linerate_driver::shard::{RuntimeConfig, ShardError, ShardRuntime, StartError};
use linerate_stack::time::Duration;
use shard_common::{cores, wait_for_polls, Behaviour, Counter, Counts};

fn config() -> RuntimeConfig {
    RuntimeConfig {
        handle_signals: false,
        drain_deadline: Duration::from_secs(10),
        close_deadline: Duration::from_secs(10),
        time_wait_deadline: Duration::from_secs(10),
        ..RuntimeConfig::default()
    }
}

#[test]
fn four_shards_on_two_cores_count_and_shut_down_in_phases() {
    let cores = cores(4);
    let runtime = ShardRuntime::start_with(config(), &cores, |_| Counter::new(Behaviour::default())).unwrap();
    assert_eq!(runtime.shards(), 4);
    wait_for_polls(&runtime, 4_000);
    assert!(runtime.loop_stats().iterations > 0, "loop stats are published while running");
    runtime.stop_handle().request_stop();
    let stats = runtime.join().expect("no shard failed");
    assert_eq!(stats.shards.len(), 4);
    let mut total = Counts::default();
    for (i, shard) in stats.shards.iter().enumerate() {
        assert_eq!((shard.shard, shard.core), (i, cores[i]));
        assert!(shard.work.polls > 0, "shard {i} never polled");
        assert_eq!(shard.work.phase_log, 123, "shard {i}: phases Drain, CloseListeners, TimeWait in order");
        assert!(shard.work.shutdown_polls >= 15, "each phase ran until its in-flight work was done");
        assert_eq!(shard.work.misplaced_polls, 0, "shard {i} ran off its core or under the wrong name");
        assert_eq!(shard.loop_stats.phases_drained, 3);
        assert_eq!(shard.loop_stats.phases_timed_out, 0);
        assert_eq!(shard.loop_stats.iterations, shard.work.polls);
        assert!(
            shard.loop_stats.idle_sleeps > 0 && shard.loop_stats.idle_spins > 0 && shard.loop_stats.busy > 0
        );
        total += shard.work;
    }
    assert_eq!(stats.total, total);
    assert!(total.polls >= 4_000);
}

#[test]
fn a_phase_that_never_drains_ends_at_its_deadline() {
    let config = RuntimeConfig {
        drain_deadline: Duration::from_millis(20),
        close_deadline: Duration::from_millis(5),
        time_wait_deadline: Duration::from_millis(5),
        ..config()
    };
    let never = Behaviour { polls_to_drain: None, stop_at: Some(100), ..Behaviour::default() };
    let runtime = ShardRuntime::start_with(config, &cores(2), |_| Counter::new(never)).unwrap();
    let stats = runtime.join().expect("deadlines end the shutdown");
    for shard in &stats.shards {
        assert_eq!(shard.work.phase_log, 123);
        assert_eq!(shard.loop_stats.phases_timed_out, 3);
        assert_eq!(shard.loop_stats.phases_drained, 0);
    }
}

#[test]
fn work_can_request_the_stop_itself() {
    let stop_early = Behaviour { stop_at: Some(50), ..Behaviour::default() };
    let runtime = ShardRuntime::start_with(config(), &cores(3), |_| Counter::new(stop_early)).unwrap();
    let stats = runtime.join().unwrap();
    assert!(stats.shards.iter().all(|s| s.work.phase_log == 123));
}

#[test]
fn a_panicking_shard_stops_the_runtime_and_is_named_in_the_error() {
    let behaviour = Behaviour { panic_at: Some((2, 300)), ..Behaviour::default() };
    let runtime = ShardRuntime::start_with(config(), &cores(4), |_| Counter::new(behaviour)).unwrap();
    match runtime.join() {
        Err(ShardError::Panicked { shard, message }) => {
            assert_eq!(shard, 2);
            assert_eq!(message, "boom on shard 2");
        }
        other => panic!("expected shard 2's panic, got {other:?}"),
    }
    let error = ShardError::Panicked { shard: 2, message: "boom on shard 2".into() };
    assert_eq!(error.to_string(), "shard 2 panicked: boom on shard 2");
}

#[test]
fn bad_core_lists_are_refused_before_any_thread_starts() {
    let start =
        |cores: &[usize]| ShardRuntime::start_with(config(), cores, |_| Counter::new(Behaviour::default()));
    assert!(matches!(start(&[]), Err(StartError::NoShards)));
    match start(&[0, 4096]) {
        Err(StartError::NoSuchCore { shard: 1, core: 4096, .. }) => {}
        other => panic!("expected NoSuchCore, got {other:?}"),
    }
}
