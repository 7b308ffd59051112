//! linerate-bench: criterion micro-benchmarks live in `benches/`; end-to-end harness to come.
