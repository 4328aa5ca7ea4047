//! # kcl-worker
//!
//! The kcl-rs runtime (work in progress).
