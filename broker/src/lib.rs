//! # broker
//!
//! A Kinesis Data Streams compatible stream store.
//!
//! - [`engine`]: the in-process store behind a cloneable [`Broker`](engine::Broker) handle.
//! - [`server`]: the Kinesis HTTP protocol (JSON and CBOR, SigV4, event streams) over the engine.
//! - [`storage`]: durable, checksummed append-only logs under `--data-dir`.

pub mod engine;
pub mod server;
pub mod storage;
