//! The shards' heap setting: memory a shard frees stays in its arena, so allocating it again
//! costs no page fault (and no `madvise` that would interrupt the other shards' cores).

mod shard_common;

use linerate_driver::shard::heap::{retain_freed_memory, HeapTuning};
use linerate_driver::shard::{
    PollOutcome, RuntimeConfig, ShardContext, ShardRuntime, ShardWork, ShutdownPhase,
};
use shard_common::cores;

/// Minor page faults of the calling thread so far.
fn thread_minor_faults() -> i64 {
    // SAFETY: rusage is plain data that the kernel fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) }, 0);
    usage.ru_minflt
}

/// A few connections' worth of allocator churn: 64 blocks of 8 KiB (512 KiB, four times glibc's
/// default trim threshold) allocated, written, and freed.
fn churn() {
    let blocks: Vec<Box<[u8; 8192]>> = (0..64).map(|i| Box::new([i as u8; 8192])).collect();
    std::hint::black_box(&blocks);
}

const ROUNDS: u64 = 200;

/// A shard that churns once per poll and counts its thread's page faults after the first round.
#[derive(Default)]
struct Churner {
    rounds: u64,
    faults_before: i64,
    /// Page faults over rounds 2..=ROUNDS+1, published as the shard's stats.
    faults: u64,
}

impl ShardWork for Churner {
    type Stats = u64;

    fn poll(&mut self, ctx: &mut ShardContext) -> PollOutcome {
        if self.rounds <= ROUNDS {
            churn();
            if self.rounds == 0 {
                self.faults_before = thread_minor_faults();
            } else if self.rounds == ROUNDS {
                self.faults = (thread_minor_faults() - self.faults_before).max(0) as u64;
                ctx.request_stop();
            }
            self.rounds += 1;
        }
        PollOutcome::Busy
    }

    fn begin_shutdown(&mut self, _phase: ShutdownPhase, _ctx: &mut ShardContext) {}

    fn is_drained(&self, _phase: ShutdownPhase) -> bool {
        self.rounds > ROUNDS
    }

    fn stats(&self) -> u64 {
        self.faults
    }
}

#[test]
fn shards_reuse_what_they_free_without_page_faults() {
    let config = RuntimeConfig { handle_signals: false, ..RuntimeConfig::default() };
    assert!(config.retain_freed_memory, "on by default");
    let runtime = ShardRuntime::start_with(config, &cores(2), |_| Churner::default()).unwrap();
    let stats = runtime.join().expect("no shard failed");
    let expected = if cfg!(all(target_os = "linux", target_env = "gnu")) {
        HeapTuning::Applied
    } else {
        HeapTuning::Unsupported
    };
    assert_eq!(retain_freed_memory(), expected, "the runtime's setting is accepted, and again");
    for shard in &stats.shards {
        // With glibc's default trimming each round gives ~100 pages back and faults them in again
        // (about 20,000 faults over the rounds); kept, the pages stay mapped.
        assert!(
            shard.work < 64,
            "shard {}: {} page faults in {ROUNDS} rounds of reuse",
            shard.shard,
            shard.work
        );
    }
}
