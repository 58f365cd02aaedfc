//! Example programs for keygate.
//!
//! This package holds no library code: each `[[example]]` in its manifest is a small
//! program that shows one way to use keygate, built by CI and run by a test. Run one
//! with `cargo run -p keygate-examples --example NAME`.
