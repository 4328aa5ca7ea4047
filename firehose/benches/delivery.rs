//! Delivery throughput (filled in below).
fn main() {}
