//! # kcl-core
//!
//! The vocabulary and the coordination rules of kcl-rs, with no runtime of their own:
//!
//! - [`kinesis`]: the Kinesis data model (shards, hash-key ranges, sequence numbers, records,
//!   starting positions, error kinds), shared by the bundled broker and every stream client.
//! - [`lease`] and [`lease_store`]: the lease table (compatible with the Java KCL's DynamoDB
//!   schema) and the [`LeaseStore`](lease_store::LeaseStore) trait of conditional writes.
//! - [`clock`]: injected monotonic and wall time.
//! - [`eventstream`]: the `application/vnd.amazon.eventstream` framing of `SubscribeToShard`
//!   over HTTP (encode and decode; shared by the broker's server and the HTTP client).
//! - [`stream_client`]: the [`StreamClient`](stream_client::StreamClient) trait a worker reads
//!   a stream through.
//! - [`memory`] and [`sqlite`]: lease stores (in memory; a SQLite file shared by processes).
//! - `dynamodb` (feature `dynamodb`): a Java-KCL-compatible lease table in DynamoDB.
//! - [`config`]: lease timing and assignment settings (Java KCL defaults).
//! - [`assignment`]: which leases a worker takes or steals, from successive scans.
//! - [`held_lease`] and [`checkpoint`]: a held lease's renewals and the checkpointer rules.
//! - [`lineage`]: lease creation from the shard graph, parent-before-child order, cleanup.
//!
//! The model: every shard has one lease row. A worker scans the table, feeds the scan to
//! [`assignment::LeaseObservations`] and takes what [`assignment::plan_takes`] says with
//! conditional writes; it renews what it holds every
//! [`renew_interval`](config::LeaseConfig::renew_interval) in one batch, and checkpoints through
//! a [`checkpoint::Checkpointer`]. Every write is conditional on the lease counter (and owner),
//! so a paused worker can never overwrite a newer owner's state.
//!
//! One worker's coordination round, end to end (a runtime such as `kcl-worker` runs these steps
//! on timers):
//!
//! ```
//! use kcl_core::assignment::{LeaseObservations, plan_takes};
//! use kcl_core::checkpoint::Checkpointer;
//! use kcl_core::clock::{Clock, ManualClock, SharedClock};
//! use kcl_core::config::LeaseConfig;
//! use kcl_core::held_lease::{HeldLease, renew_leases};
//! use kcl_core::kinesis::{EpochMillis, HashKeyRange, SequenceNumber, SequenceNumberRange, Shard, ShardId};
//! use kcl_core::lease::ExtendedSequenceNumber;
//! use kcl_core::lease_store::LeaseStore;
//! use kcl_core::lineage::{InitialPosition, leases_to_create};
//! use kcl_core::memory::InMemoryLeaseStore;
//! use std::sync::Arc;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = Arc::new(ManualClock::new(EpochMillis(0)));
//! let store = Arc::new(InMemoryLeaseStore::new());
//! let config = LeaseConfig::default();
//!
//! // Shard sync: one lease per shard at the initial position.
//! let shards: Vec<Shard> = HashKeyRange::split_evenly(2)
//!     .into_iter()
//!     .enumerate()
//!     .map(|(index, range)| Shard {
//!         shard_id: ShardId::from_index(index as u64),
//!         parent_shard_id: None,
//!         adjacent_parent_shard_id: None,
//!         hash_key_range: range,
//!         sequence_number_range: SequenceNumberRange {
//!             starting_sequence_number: SequenceNumber::ZERO,
//!             ending_sequence_number: None,
//!         },
//!     })
//!     .collect();
//! for lease in leases_to_create(&shards, &store.list_leases().await?, InitialPosition::TrimHorizon) {
//!     store.create_lease_if_absent(&lease).await?;
//! }
//!
//! // Taker: scan, plan, take with conditional writes.
//! let mut observations = LeaseObservations::new();
//! let now = clock.monotonic();
//! observations.observe_scan(store.list_leases().await?, now);
//! let plan = plan_takes(&observations, "worker-a", now, &config, 1);
//! let mut held = Vec::new();
//! for take in plan.all() {
//!     let lease = store.take_lease(&take.lease_key, take.expected_counter, "worker-a").await?;
//!     held.push(HeldLease::new(lease, "worker-a", now, &config));
//! }
//! assert_eq!(held.len(), 2);
//!
//! // Processing and checkpointing one shard; renewing everything held in one batch.
//! let shared: SharedClock = clock.clone();
//! let checkpointer = Checkpointer::new(held[0].clone(), store.clone(), shared);
//! checkpointer.record_delivered(ExtendedSequenceNumber::new(SequenceNumber::from_u128(7), 0));
//! checkpointer.checkpoint().await.unwrap();
//! clock.advance(config.renew_interval());
//! let report = renew_leases(store.as_ref(), &held, clock.as_ref()).await?;
//! assert_eq!(report.renewed.len(), 2);
//! # Ok::<(), kcl_core::lease_store::LeaseStoreError>(())
//! # }).unwrap();
//! ```
//!
//! The data model in one line:
//!
//! ```
//! use kcl_core::kinesis::{HashKeyRange, partition_key_hash};
//!
//! // A stream of 4 shards divides the 128-bit key space evenly; a key lands in exactly one.
//! let ranges = HashKeyRange::split_evenly(4);
//! let key = partition_key_hash("user-42");
//! assert_eq!(ranges.iter().filter(|range| range.contains(key)).count(), 1);
//! ```

pub mod assignment;
pub mod checkpoint;
pub mod clock;
mod conditions;
pub mod config;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
pub mod eventstream;
pub mod held_lease;
pub mod kinesis;
pub mod lease;
pub mod lease_store;
pub mod lineage;
pub mod memory;
pub mod sqlite;
pub mod stream_client;
