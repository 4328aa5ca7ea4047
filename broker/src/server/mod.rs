//! The Kinesis HTTP protocol server (work in progress).
