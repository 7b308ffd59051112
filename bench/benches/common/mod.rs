//! Criterion settings shared by every bench in `benches/` (each includes this as `mod common`).
//!
//! Owns where criterion keeps its results: `<target dir>/criterion` of the build that made the
//! bench binary, wherever the binary is started from. Criterion itself asks `cargo metadata`
//! when cargo runs the binary (the `CARGO` variable is set) and otherwise falls back to
//! `target/criterion` relative to the working directory, so a binary run by hand (`valgrind`,
//! `perf`, alternated before/after runs, as docs/PERFORMANCE.md does) from `bench/` left an
//! untracked `bench/target/`. Must not: override an explicit `CRITERION_HOME`.

use std::path::Path;

use criterion::Criterion;

/// The default configuration, with results in this build's target directory. Cargo sets
/// `CARGO_TARGET_TMPDIR` (`<target dir>/tmp`) when it compiles a bench, so this follows
/// `CARGO_TARGET_DIR` and `build.target-dir` too.
pub fn criterion() -> Criterion {
    let config = Criterion::default();
    if std::env::var_os("CRITERION_HOME").is_some() {
        return config;
    }
    // `output_directory` is criterion 0.5's own (doc-hidden) setter for this.
    match Path::new(env!("CARGO_TARGET_TMPDIR")).parent() {
        Some(target) => config.output_directory(&target.join("criterion")),
        None => config,
    }
}
