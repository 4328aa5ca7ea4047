//! Runnable examples of kcl-rs live beside this file; each names its `cargo run` line.
