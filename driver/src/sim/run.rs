//! The test-run guard: seed selection, failure reports and pcap files for simulation tests.
//!
//! A [`SimRun`] is created at the top of a simulation test with the test's name and default seed.
//! It promises three things: the seed can be overridden from the environment (`LINERATE_SEED`,
//! decimal or `0x` hex) to replay a failure; when the test panics, the seed and the command that
//! reproduces it are printed; and when `LINERATE_PCAP_DIR` is set, every run (passing ones too, so
//! CI can check them with tshark) is captured to `<dir>/<test-name>-<seed>.pcap`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;

use super::capture::Capture;
use super::config::LinkConfig;
use super::pair::{Endpoint, Pair};

/// Environment variable that overrides every test's seed.
pub const SEED_ENV: &str = "LINERATE_SEED";
/// Environment variable naming the directory simulation pcaps are written to.
pub const PCAP_DIR_ENV: &str = "LINERATE_PCAP_DIR";

/// Pcap files of the runs alive in this process: two runs writing one file at once leave a
/// corrupt capture (frames of both interleaved), so a second live claim is refused.
static PCAPS_IN_USE: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// Claims `path` for one live run; `false` if another live run already holds it.
fn claim_pcap(path: &std::path::Path) -> bool {
    let mut in_use = PCAPS_IN_USE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    in_use.get_or_insert_with(HashSet::new).insert(path.to_path_buf())
}

fn release_pcap(path: &std::path::Path) {
    let mut in_use = PCAPS_IN_USE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(set) = in_use.as_mut() {
        set.remove(path);
    }
}

/// Guard for one simulation test run.
#[derive(Debug)]
pub struct SimRun {
    name: String,
    seed: u64,
    pcap_path: Option<PathBuf>,
    /// A pcap capture was handed out: a second one would write the same file.
    captured: std::cell::Cell<bool>,
}

impl SimRun {
    /// Starts a run of `test_name` with `default_seed` unless `LINERATE_SEED` says otherwise.
    ///
    /// # Panics
    /// If `LINERATE_SEED` is set but is not a number (a test setup error worth stopping for), or
    /// if another run alive in this process has the same name and seed while pcaps are written
    /// (both would write one file; give concurrent runs distinct names).
    pub fn new(test_name: &str, default_seed: u64) -> Self {
        let seed = match std::env::var(SEED_ENV) {
            Ok(text) => parse_seed(&text)
                .unwrap_or_else(|| panic!("{SEED_ENV}={text:?} is not a decimal or 0x-hex u64 seed")),
            Err(_) => default_seed,
        };
        let pcap_path = std::env::var_os(PCAP_DIR_ENV)
            .map(|dir| PathBuf::from(dir).join(format!("{}-{seed}.pcap", sanitize(test_name))));
        if let Some(path) = &pcap_path {
            assert!(
                claim_pcap(path),
                "two simulation runs alive at once would both write {}: give them distinct names",
                path.display()
            );
        }
        eprintln!("{test_name}: seed={seed}");
        SimRun { name: test_name.to_owned(), seed, pcap_path, captured: std::cell::Cell::new(false) }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where this run's pcap goes, when `LINERATE_PCAP_DIR` is set.
    pub fn pcap_path(&self) -> Option<&std::path::Path> {
        self.pcap_path.as_deref()
    }

    /// The capture for this run: the pcap file when `LINERATE_PCAP_DIR` is set, plus an in-memory
    /// copy when `in_memory` (for tests that inspect it); `None` when neither is wanted.
    ///
    /// # Panics
    /// If the pcap file cannot be created (the message names the path), or when asked for a
    /// second time while pcaps are written: both captures would write one file and leave it
    /// corrupt (give each pair of a test its own `SimRun`).
    pub fn capture(&self, in_memory: bool) -> Option<Capture> {
        let memory = in_memory.then(Capture::in_memory);
        let Some(path) = &self.pcap_path else { return memory };
        assert!(
            !self.captured.replace(true),
            "{}: a second capture would write {} again: give each pair its own SimRun",
            self.name,
            path.display()
        );
        let created = match memory {
            Some(capture) => capture.also_to_file(path),
            None => Capture::to_file(path),
        };
        Some(created.unwrap_or_else(|e| panic!("cannot create pcap {}: {e}", path.display())))
    }

    /// A [`Pair`] seeded by this run, capturing to the run's pcap file if one is wanted.
    pub fn pair<A: Endpoint, B: Endpoint>(
        &self,
        a_to_b: LinkConfig,
        b_to_a: LinkConfig,
        a: A,
        b: B,
    ) -> Pair<A, B> {
        Pair::new(self.seed, a_to_b, b_to_a, a, b).with_capture(self.capture(false))
    }

    /// Like [`SimRun::pair`], but also keeps the capture in memory (see [`Pair::take_capture`]).
    pub fn pair_capturing<A: Endpoint, B: Endpoint>(
        &self,
        a_to_b: LinkConfig,
        b_to_a: LinkConfig,
        a: A,
        b: B,
    ) -> Pair<A, B> {
        Pair::new(self.seed, a_to_b, b_to_a, a, b).with_capture(self.capture(true))
    }

    /// The line printed when the test fails.
    pub fn reproduce_hint(&self) -> String {
        let mut hint = format!(
            "{name}: failed with seed={seed}; reproduce with {SEED_ENV}={seed} cargo test -p linerate-driver -- {name}",
            name = self.name,
            seed = self.seed
        );
        if let Some(path) = &self.pcap_path {
            hint.push_str(&format!(" (capture: {})", path.display()));
        }
        hint
    }
}

impl Drop for SimRun {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.reproduce_hint());
        }
        if let Some(path) = &self.pcap_path {
            release_pcap(path);
        }
    }
}

/// Parses a decimal or `0x`-prefixed hexadecimal seed.
pub fn parse_seed(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// Keeps a test name usable as a file name (test paths contain `::`).
fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pcap_path_is_held_by_one_live_run_at_a_time() {
        let path = std::path::Path::new("/nonexistent/linerate-claim-test-1.pcap");
        assert!(claim_pcap(path));
        assert!(!claim_pcap(path), "a second live claim must be refused");
        release_pcap(path);
        assert!(claim_pcap(path), "released paths can be claimed again");
        release_pcap(path);
    }

    #[test]
    fn seeds_parse_in_decimal_and_hex() {
        assert_eq!(parse_seed("42"), Some(42));
        assert_eq!(parse_seed(" 0x2a "), Some(42));
        assert_eq!(parse_seed("0XFF"), Some(255));
        assert_eq!(parse_seed("forty-two"), None);
        assert_eq!(parse_seed(""), None);
    }

    #[test]
    fn test_paths_become_file_names() {
        assert_eq!(sanitize("sim_link::delay is/exact"), "sim_link__delay_is_exact");
    }
}
