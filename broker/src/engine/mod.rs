//! The in-process Kinesis engine (work in progress).
