//! A Java-KCL-compatible lease table in DynamoDB (feature `dynamodb`).
//!
//! [`DynamoDbLeaseStore`] implements [`LeaseStore`](crate::lease_store::LeaseStore) on the
//! table layout the Java KCL 2.x/3.x uses (key `leaseKey` (S), attributes `leaseOwner`,
//! `leaseCounter`, `checkpoint`, ...; see `docs/java-kcl-lease-table.md`), with the same
//! conditional writes, so kcl-rs workers can take over a table a Java fleet wrote.
//!
//! ```no_run
//! use kcl_core::dynamodb::{DynamoDbLeaseStore, DynamoDbOptions};
//! use kcl_core::lease_store::LeaseStore;
//!
//! # async fn example() -> Result<(), kcl_core::lease_store::LeaseStoreError> {
//! // Region, credentials and endpoint come from the standard AWS chain.
//! let store = DynamoDbLeaseStore::connect(DynamoDbOptions::new("my-application")).await?;
//! let leases = store.list_leases().await?;
//! println!("{} leases, {} requests so far", leases.len(), store.requests_sent());
//! # Ok(())
//! # }
//! ```

mod errors;
mod options;
mod schema;
mod store;
mod table;

/// The AWS SDK for DynamoDB this store is built on, re-exported so callers (tests, tools that
/// prepare or inspect a table) use the same version as [`DynamoDbLeaseStore::client`].
pub use aws_sdk_dynamodb as sdk;
pub use options::DynamoDbOptions;
pub use store::DynamoDbLeaseStore;
