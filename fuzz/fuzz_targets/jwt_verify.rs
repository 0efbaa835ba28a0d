//! `cargo fuzz run jwt_verify`: see fuzz/README.md. The harness lives in
//! `src/lib.rs`, shared with the replay tests of tessera-http.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::jwt_verify(data));
