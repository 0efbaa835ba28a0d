//! Criterion benchmarks of Tessera's hot paths live in `benches/`; run them
//! with `cargo bench -p tessera-benches`. This library is empty on purpose.
