//! Shared helpers of the cross-crate and multi-process test suites.
