//! # broker
//!
//! A Kinesis Data Streams compatible stream store.
//!
//! - [`engine`]: the in-process store behind a cloneable [`Broker`](engine::Broker) handle.
//!   Always built; it needs no network, no disk and no HTTP stack.
//! - `server` (feature `server`): the Kinesis HTTP protocol (JSON and CBOR, SigV4, event
//!   streams) over the engine; feature `tls` adds HTTPS.
//! - `storage` (feature `storage`): durable, checksummed append-only logs under a data
//!   directory, plugged into the engine through its [`Journal`](engine::journal::Journal) hook.
//!
//! | feature   | adds                                                    |
//! |-----------|---------------------------------------------------------|
//! | (default) | [`engine`] only                                         |
//! | `server`  | `broker::server` (axum, codecs, SigV4, event streams)   |
//! | `storage` | `broker::storage` (durable logs)                        |
//! | `tls`     | `broker::server::spawn_tls` (rustls); implies `server`  |
//!
//! The `kinesis-broker` server binary (flags, config file, signals) is its own package,
//! `broker/server-bin`, built on this library with every feature on.

pub mod engine;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "storage")]
pub mod storage;
