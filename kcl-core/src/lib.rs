//! # kcl-core
//!
//! The vocabulary and the coordination rules of kcl-rs, with no runtime of their own:
//!
//! - [`kinesis`]: the Kinesis data model (shards, hash-key ranges, sequence numbers, records,
//!   starting positions, error kinds), shared by the bundled broker and every stream client.
//! - [`lease`] and [`lease_store`]: the lease table (compatible with the Java KCL's DynamoDB
//!   schema) and the [`LeaseStore`](lease_store::LeaseStore) trait of conditional writes.
//! - [`clock`]: injected monotonic and wall time.
//! - [`stream_client`]: the [`StreamClient`](stream_client::StreamClient) trait a worker reads
//!   a stream through.
//!
//! ```
//! use kcl_core::kinesis::{HashKeyRange, partition_key_hash};
//!
//! // A stream of 4 shards divides the 128-bit key space evenly; a key lands in exactly one.
//! let ranges = HashKeyRange::split_evenly(4);
//! let key = partition_key_hash("user-42");
//! assert_eq!(ranges.iter().filter(|range| range.contains(key)).count(), 1);
//! ```

pub mod clock;
pub mod kinesis;
pub mod lease;
pub mod lease_store;
pub mod stream_client;
