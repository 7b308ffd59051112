//! The run guard's environment: `LINERATE_SEED` overrides the seed and `LINERATE_PCAP_DIR` gets a
//! pcap of every run, failing ones included. One test in its own binary, because it sets
//! process-wide environment variables.

mod sim_toys;

use linerate_driver::pcap::PcapReader;
use linerate_driver::sim::{LinkConfig, SimRun};
use linerate_stack::time::{Duration, Instant};
use sim_toys::{Sender, Sink};

#[test]
fn seed_override_and_pcap_dir_are_honoured_even_when_the_test_fails() {
    let dir = std::env::temp_dir().join(format!("linerate-sim-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::env::set_var("LINERATE_PCAP_DIR", &dir);
    std::env::set_var("LINERATE_SEED", "0x10");

    let failing = std::panic::catch_unwind(|| {
        let run = SimRun::new("guarded::failing run", 3);
        assert_eq!(run.seed(), 16);
        let hint = run.reproduce_hint();
        assert!(hint.contains("seed=16") && hint.contains("LINERATE_SEED=16"), "{hint}");
        let mut pair = run.pair(
            LinkConfig::default().delay(Duration::from_millis(1)),
            LinkConfig::default(),
            Sender::new(64, 4, Duration::from_millis(1)),
            Sink::default(),
        );
        pair.run_to(Instant::MAX, 100).unwrap();
        panic!("deliberate failure after {} arrivals", pair.b.arrivals.len());
    });
    assert!(failing.is_err());

    let path = dir.join("guarded__failing_run-16.pcap");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let records = PcapReader::new(&bytes[..]).unwrap().read_all().unwrap();
    assert_eq!(records.len(), 4);
    if let Some(count) = sim_toys::tshark_frame_count(&path) {
        assert_eq!(count, 4);
    }
    std::env::remove_var("LINERATE_SEED");
    std::env::remove_var("LINERATE_PCAP_DIR");
    std::fs::remove_dir_all(&dir).unwrap();
}
