//! The standalone Kinesis-compatible broker (work in progress).

fn main() {}
