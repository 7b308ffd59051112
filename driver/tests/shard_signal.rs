//! SIGTERM starts the phased shutdown. Its own test binary (one test) because the handler and the
//! "shutdown requested" flag are process-wide: the runtime installs the handler before the test
//! raises the signal, so the test process itself is not killed.

mod shard_common;

use linerate_driver::shard::signal::shutdown_requested;
use linerate_driver::shard::{RuntimeConfig, ShardRuntime};
use linerate_stack::time::Duration;
use shard_common::{cores, wait_for_polls, Behaviour, Counter};

#[test]
fn sigterm_runs_every_phase_on_every_shard_then_the_runtime_ends() {
    let config = RuntimeConfig {
        handle_signals: true,
        drain_deadline: Duration::from_secs(10),
        close_deadline: Duration::from_secs(10),
        time_wait_deadline: Duration::from_secs(10),
        ..RuntimeConfig::default()
    };
    let runtime =
        ShardRuntime::start_with(config, &cores(4), |_| Counter::new(Behaviour::default())).unwrap();
    wait_for_polls(&runtime, 2_000);
    assert!(!shutdown_requested());
    // SAFETY: raise(3) with a valid signal; our handler is installed, so it only sets a flag.
    assert_eq!(unsafe { libc::raise(libc::SIGTERM) }, 0);
    assert!(shutdown_requested());
    let stats = runtime.join().expect("clean shutdown");
    for shard in &stats.shards {
        assert_eq!(shard.work.phase_log, 123, "shard {}: Drain, CloseListeners, TimeWait", shard.shard);
        assert_eq!(shard.loop_stats.phases_drained, 3);
    }
}
