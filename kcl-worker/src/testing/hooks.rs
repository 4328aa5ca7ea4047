//! Pass-through wrappers around a real [`StreamClient`] and a real [`LeaseStore`] whose hooks
//! see every call and may hold it, answer it with an error, or alter its answer: the faults a
//! broker or a store cannot produce on demand (a refused iterator, denied reads, a write lock,
//! a full disk, a paused process), written as a few lines of hook instead of a whole wrapper.

use kcl_core::kinesis::{
    ConsumerDescription, GetRecordsOutput, HashKeyRange, KinesisError, Shard, ShardFilter, ShardId,
    StartingPosition, StreamSummary,
};
use kcl_core::lease::Lease;
use kcl_core::lease_store::{CheckpointUpdate, LeaseStore, LeaseStoreError, Renewal};
use kcl_core::stream_client::{StreamClient, Subscription};
use std::sync::Arc;

// ---- stream client ----------------------------------------------------------------------

/// A call reaching a [`HookedStreamClient`], with its arguments.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum StreamCall<'a> {
    /// `DescribeStreamSummary`.
    DescribeStreamSummary {
        /// The stream.
        stream_name: &'a str,
    },
    /// `ListShards`.
    ListShards {
        /// The stream.
        stream_name: &'a str,
        /// The filter.
        filter: Option<&'a ShardFilter>,
    },
    /// `GetShardIterator`.
    GetShardIterator {
        /// The stream.
        stream_name: &'a str,
        /// The shard.
        shard_id: &'a ShardId,
        /// Where to start.
        position: StartingPosition,
    },
    /// `GetRecords`.
    GetRecords {
        /// The iterator read.
        shard_iterator: &'a str,
        /// The record limit.
        limit: u32,
    },
    /// `RegisterStreamConsumer`.
    RegisterStreamConsumer {
        /// The stream.
        stream_name: &'a str,
        /// The consumer.
        consumer_name: &'a str,
    },
    /// `SubscribeToShard`.
    SubscribeToShard {
        /// The consumer.
        consumer_arn: &'a str,
        /// The shard.
        shard_id: &'a ShardId,
        /// Where to start.
        position: StartingPosition,
    },
}

/// The answer of the real client to a [`StreamCall`], which an
/// [`after`](StreamHook::after) hook may replace.
#[derive(Debug)]
#[non_exhaustive]
pub enum StreamAnswer<'a> {
    /// Of `DescribeStreamSummary`.
    DescribeStreamSummary(&'a mut Result<StreamSummary, KinesisError>),
    /// Of `ListShards`.
    ListShards(&'a mut Result<Vec<Shard>, KinesisError>),
    /// Of `GetShardIterator`.
    GetShardIterator(&'a mut Result<String, KinesisError>),
    /// Of `GetRecords`.
    GetRecords(&'a mut Result<GetRecordsOutput, KinesisError>),
    /// Of `RegisterStreamConsumer`.
    RegisterStreamConsumer(&'a mut Result<ConsumerDescription, KinesisError>),
    /// Of `SubscribeToShard`.
    SubscribeToShard(&'a mut Result<Subscription, KinesisError>),
}

/// What a test does to the calls of a [`HookedStreamClient`]. Both hooks default to passing
/// the call through unchanged.
#[async_trait::async_trait]
pub trait StreamHook: Send + Sync + 'static {
    /// Before the call reaches the real client: may wait, or answer it with an error (the real
    /// client is then not called and [`after`](Self::after) not run).
    async fn before(&self, _call: StreamCall<'_>) -> Result<(), KinesisError> {
        Ok(())
    }

    /// After the real client answered: may look at or replace the answer.
    fn after(&self, _call: StreamCall<'_>, _answer: StreamAnswer<'_>) {}
}

/// A [`StreamClient`] passing every call to a real one through a [`StreamHook`].
pub struct HookedStreamClient<H> {
    inner: Arc<dyn StreamClient>,
    hook: Arc<H>,
}

impl<H> Clone for HookedStreamClient<H> {
    fn clone(&self) -> Self {
        HookedStreamClient {
            inner: self.inner.clone(),
            hook: self.hook.clone(),
        }
    }
}

impl<H: std::fmt::Debug> std::fmt::Debug for HookedStreamClient<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookedStreamClient")
            .field("hook", &self.hook)
            .finish_non_exhaustive()
    }
}

impl<H: StreamHook> HookedStreamClient<H> {
    /// `inner`, every call passed through `hook`.
    pub fn new(inner: Arc<dyn StreamClient>, hook: H) -> Self {
        HookedStreamClient {
            inner,
            hook: Arc::new(hook),
        }
    }

    /// The hook (to change what it does while the test runs).
    pub fn hook(&self) -> &H {
        &self.hook
    }
}

#[async_trait::async_trait]
impl<H: StreamHook> StreamClient for HookedStreamClient<H> {
    async fn describe_stream_summary(
        &self,
        stream_name: &str,
    ) -> Result<StreamSummary, KinesisError> {
        let call = StreamCall::DescribeStreamSummary { stream_name };
        self.hook.before(call).await?;
        let mut answer = self.inner.describe_stream_summary(stream_name).await;
        self.hook
            .after(call, StreamAnswer::DescribeStreamSummary(&mut answer));
        answer
    }

    async fn list_shards(
        &self,
        stream_name: &str,
        filter: Option<ShardFilter>,
    ) -> Result<Vec<Shard>, KinesisError> {
        let call = StreamCall::ListShards {
            stream_name,
            filter: filter.as_ref(),
        };
        self.hook.before(call).await?;
        let mut answer = self.inner.list_shards(stream_name, filter.clone()).await;
        self.hook.after(call, StreamAnswer::ListShards(&mut answer));
        answer
    }

    async fn get_shard_iterator(
        &self,
        stream_name: &str,
        shard_id: &ShardId,
        position: StartingPosition,
    ) -> Result<String, KinesisError> {
        let call = StreamCall::GetShardIterator {
            stream_name,
            shard_id,
            position,
        };
        self.hook.before(call).await?;
        let mut answer = self
            .inner
            .get_shard_iterator(stream_name, shard_id, position)
            .await;
        self.hook
            .after(call, StreamAnswer::GetShardIterator(&mut answer));
        answer
    }

    async fn get_records(
        &self,
        shard_iterator: &str,
        limit: u32,
    ) -> Result<GetRecordsOutput, KinesisError> {
        let call = StreamCall::GetRecords {
            shard_iterator,
            limit,
        };
        self.hook.before(call).await?;
        let mut answer = self.inner.get_records(shard_iterator, limit).await;
        self.hook.after(call, StreamAnswer::GetRecords(&mut answer));
        answer
    }

    async fn register_stream_consumer(
        &self,
        stream_name: &str,
        consumer_name: &str,
    ) -> Result<ConsumerDescription, KinesisError> {
        let call = StreamCall::RegisterStreamConsumer {
            stream_name,
            consumer_name,
        };
        self.hook.before(call).await?;
        let mut answer = self
            .inner
            .register_stream_consumer(stream_name, consumer_name)
            .await;
        self.hook
            .after(call, StreamAnswer::RegisterStreamConsumer(&mut answer));
        answer
    }

    async fn subscribe_to_shard(
        &self,
        consumer_arn: &str,
        shard_id: &ShardId,
        position: StartingPosition,
    ) -> Result<Subscription, KinesisError> {
        let call = StreamCall::SubscribeToShard {
            consumer_arn,
            shard_id,
            position,
        };
        self.hook.before(call).await?;
        let mut answer = self
            .inner
            .subscribe_to_shard(consumer_arn, shard_id, position)
            .await;
        self.hook
            .after(call, StreamAnswer::SubscribeToShard(&mut answer));
        answer
    }
}

// ---- lease store ------------------------------------------------------------------------

/// A call reaching a [`HookedLeaseStore`] (its lease key where it has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreCall<'a> {
    /// `create_lease_if_absent`.
    CreateLease(&'a ShardId),
    /// `list_leases` (a scan).
    ListLeases,
    /// `get_lease`.
    GetLease(&'a ShardId),
    /// `renew_leases` (one batch).
    RenewLeases,
    /// `take_lease`.
    TakeLease(&'a ShardId),
    /// `evict_lease`.
    EvictLease(&'a ShardId),
    /// `update_checkpoint`.
    UpdateCheckpoint(&'a ShardId),
    /// `update_lineage`.
    UpdateLineage(&'a ShardId),
    /// `delete_lease`.
    DeleteLease(&'a ShardId),
}

/// The kind of a [`StoreCall`], for hooks that treat all writes alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreCallKind {
    /// A scan or a point read.
    Read,
    /// A renewal batch.
    Renew,
    /// Any other write.
    Write,
}

impl StoreCall<'_> {
    /// Read, renewal or other write.
    pub fn kind(self) -> StoreCallKind {
        match self {
            StoreCall::ListLeases | StoreCall::GetLease(_) => StoreCallKind::Read,
            StoreCall::RenewLeases => StoreCallKind::Renew,
            _ => StoreCallKind::Write,
        }
    }
}

/// What a test does to the calls of a [`HookedLeaseStore`].
#[async_trait::async_trait]
pub trait LeaseStoreHook: Send + Sync + 'static {
    /// Before the call reaches the real store: may wait, or answer it with an error (the real
    /// store is then not called).
    async fn before(&self, call: StoreCall<'_>) -> Result<(), LeaseStoreError>;
}

/// A [`LeaseStore`] passing every call to a real one through a [`LeaseStoreHook`].
pub struct HookedLeaseStore<H> {
    inner: Arc<dyn LeaseStore>,
    hook: Arc<H>,
}

impl<H> Clone for HookedLeaseStore<H> {
    fn clone(&self) -> Self {
        HookedLeaseStore {
            inner: self.inner.clone(),
            hook: self.hook.clone(),
        }
    }
}

impl<H: std::fmt::Debug> std::fmt::Debug for HookedLeaseStore<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookedLeaseStore")
            .field("hook", &self.hook)
            .finish_non_exhaustive()
    }
}

impl<H: LeaseStoreHook> HookedLeaseStore<H> {
    /// `inner`, every call passed through `hook`.
    pub fn new(inner: Arc<dyn LeaseStore>, hook: H) -> Self {
        HookedLeaseStore {
            inner,
            hook: Arc::new(hook),
        }
    }

    /// The hook (to change what it does while the test runs).
    pub fn hook(&self) -> &H {
        &self.hook
    }
}

#[async_trait::async_trait]
impl<H: LeaseStoreHook> LeaseStore for HookedLeaseStore<H> {
    async fn create_lease_if_absent(&self, lease: &Lease) -> Result<bool, LeaseStoreError> {
        self.hook
            .before(StoreCall::CreateLease(&lease.lease_key))
            .await?;
        self.inner.create_lease_if_absent(lease).await
    }

    async fn list_leases(&self) -> Result<Vec<Lease>, LeaseStoreError> {
        self.hook.before(StoreCall::ListLeases).await?;
        self.inner.list_leases().await
    }

    async fn get_lease(&self, lease_key: &ShardId) -> Result<Option<Lease>, LeaseStoreError> {
        self.hook.before(StoreCall::GetLease(lease_key)).await?;
        self.inner.get_lease(lease_key).await
    }

    async fn renew_leases(
        &self,
        renewals: &[Renewal],
    ) -> Result<Vec<Result<Lease, LeaseStoreError>>, LeaseStoreError> {
        self.hook.before(StoreCall::RenewLeases).await?;
        self.inner.renew_leases(renewals).await
    }

    async fn take_lease(
        &self,
        lease_key: &ShardId,
        expected_counter: u64,
        new_owner: &str,
    ) -> Result<Lease, LeaseStoreError> {
        self.hook.before(StoreCall::TakeLease(lease_key)).await?;
        self.inner
            .take_lease(lease_key, expected_counter, new_owner)
            .await
    }

    async fn evict_lease(
        &self,
        lease_key: &ShardId,
        expected_owner: &str,
    ) -> Result<Lease, LeaseStoreError> {
        self.hook.before(StoreCall::EvictLease(lease_key)).await?;
        self.inner.evict_lease(lease_key, expected_owner).await
    }

    async fn update_checkpoint(
        &self,
        lease_key: &ShardId,
        expected_owner: &str,
        expected_counter: u64,
        update: &CheckpointUpdate,
    ) -> Result<Lease, LeaseStoreError> {
        self.hook
            .before(StoreCall::UpdateCheckpoint(lease_key))
            .await?;
        self.inner
            .update_checkpoint(lease_key, expected_owner, expected_counter, update)
            .await
    }

    async fn update_lineage(
        &self,
        lease_key: &ShardId,
        child_shard_ids: &[ShardId],
        hash_key_range: Option<HashKeyRange>,
    ) -> Result<Lease, LeaseStoreError> {
        self.hook
            .before(StoreCall::UpdateLineage(lease_key))
            .await?;
        self.inner
            .update_lineage(lease_key, child_shard_ids, hash_key_range)
            .await
    }

    async fn delete_lease(&self, lease_key: &ShardId) -> Result<(), LeaseStoreError> {
        self.hook.before(StoreCall::DeleteLease(lease_key)).await?;
        self.inner.delete_lease(lease_key).await
    }
}
