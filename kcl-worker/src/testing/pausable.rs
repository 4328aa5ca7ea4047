//! Wrappers that block a worker's I/O while its [`PauseGate`] is closed.

use crate::config::PauseGate;
use kcl_core::kinesis::{
    ConsumerDescription, GetRecordsOutput, HashKeyRange, KinesisError, Shard, ShardFilter, ShardId,
    StartingPosition, StreamSummary, SubscribeToShardEvent,
};
use kcl_core::lease::Lease;
use kcl_core::lease_store::{CheckpointUpdate, LeaseStore, LeaseStoreError, Renewal};
use kcl_core::stream_client::{StreamClient, Subscription};
use std::sync::Arc;
use tokio::sync::mpsc;

/// A lease store whose calls wait while the gate is closed.
#[derive(Clone)]
pub struct PausableLeaseStore {
    inner: Arc<dyn LeaseStore>,
    gate: PauseGate,
}

impl PausableLeaseStore {
    /// Gates `inner` with `gate`.
    pub fn new(inner: Arc<dyn LeaseStore>, gate: PauseGate) -> Self {
        PausableLeaseStore { inner, gate }
    }
}

#[async_trait::async_trait]
impl LeaseStore for PausableLeaseStore {
    async fn create_lease_if_absent(&self, lease: &Lease) -> Result<bool, LeaseStoreError> {
        self.gate.wait_open().await;
        self.inner.create_lease_if_absent(lease).await
    }
    async fn list_leases(&self) -> Result<Vec<Lease>, LeaseStoreError> {
        self.gate.wait_open().await;
        self.inner.list_leases().await
    }
    async fn get_lease(&self, lease_key: &ShardId) -> Result<Option<Lease>, LeaseStoreError> {
        self.gate.wait_open().await;
        self.inner.get_lease(lease_key).await
    }
    async fn renew_leases(
        &self,
        renewals: &[Renewal],
    ) -> Result<Vec<Result<Lease, LeaseStoreError>>, LeaseStoreError> {
        self.gate.wait_open().await;
        self.inner.renew_leases(renewals).await
    }
    async fn take_lease(
        &self,
        lease_key: &ShardId,
        expected_counter: u64,
        new_owner: &str,
    ) -> Result<Lease, LeaseStoreError> {
        self.gate.wait_open().await;
        self.inner
            .take_lease(lease_key, expected_counter, new_owner)
            .await
    }
    async fn evict_lease(
        &self,
        lease_key: &ShardId,
        expected_owner: &str,
    ) -> Result<Lease, LeaseStoreError> {
        self.gate.wait_open().await;
        self.inner.evict_lease(lease_key, expected_owner).await
    }
    async fn update_checkpoint(
        &self,
        lease_key: &ShardId,
        expected_owner: &str,
        expected_counter: u64,
        update: &CheckpointUpdate,
    ) -> Result<Lease, LeaseStoreError> {
        self.gate.wait_open().await;
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
        self.gate.wait_open().await;
        self.inner
            .update_lineage(lease_key, child_shard_ids, hash_key_range)
            .await
    }
    async fn delete_lease(&self, lease_key: &ShardId) -> Result<(), LeaseStoreError> {
        self.gate.wait_open().await;
        self.inner.delete_lease(lease_key).await
    }
}

/// A stream client whose calls wait while the gate is closed.
#[derive(Clone)]
pub struct PausableStreamClient {
    inner: Arc<dyn StreamClient>,
    gate: PauseGate,
}

impl PausableStreamClient {
    /// Gates `inner` with `gate`.
    pub fn new(inner: Arc<dyn StreamClient>, gate: PauseGate) -> Self {
        PausableStreamClient { inner, gate }
    }
}

#[async_trait::async_trait]
impl StreamClient for PausableStreamClient {
    async fn describe_stream_summary(
        &self,
        stream_name: &str,
    ) -> Result<StreamSummary, KinesisError> {
        self.gate.wait_open().await;
        self.inner.describe_stream_summary(stream_name).await
    }
    async fn list_shards(
        &self,
        stream_name: &str,
        filter: Option<ShardFilter>,
    ) -> Result<Vec<Shard>, KinesisError> {
        self.gate.wait_open().await;
        self.inner.list_shards(stream_name, filter).await
    }
    async fn get_shard_iterator(
        &self,
        stream_name: &str,
        shard_id: &ShardId,
        position: StartingPosition,
    ) -> Result<String, KinesisError> {
        self.gate.wait_open().await;
        self.inner
            .get_shard_iterator(stream_name, shard_id, position)
            .await
    }
    async fn get_records(
        &self,
        shard_iterator: &str,
        limit: u32,
    ) -> Result<GetRecordsOutput, KinesisError> {
        self.gate.wait_open().await;
        self.inner.get_records(shard_iterator, limit).await
    }
    async fn register_stream_consumer(
        &self,
        stream_name: &str,
        consumer_name: &str,
    ) -> Result<ConsumerDescription, KinesisError> {
        self.gate.wait_open().await;
        self.inner
            .register_stream_consumer(stream_name, consumer_name)
            .await
    }
    async fn subscribe_to_shard(
        &self,
        consumer_arn: &str,
        shard_id: &ShardId,
        position: StartingPosition,
    ) -> Result<Subscription, KinesisError> {
        self.gate.wait_open().await;
        let upstream = self
            .inner
            .subscribe_to_shard(consumer_arn, shard_id, position)
            .await?;
        // Pushed events are held back too while the gate is closed: a paused worker receives
        // (and so processes) nothing.
        let (sender, receiver) = mpsc::channel(1);
        let reader = tokio::spawn(forward_when_open(upstream, sender, self.gate.clone()));
        Ok(Subscription::with_reader(receiver, reader))
    }
}

/// Forwards `upstream`'s events to `sender`, each only once `gate` is open; stops (closing
/// `upstream` and waiting for its reader) when either side ends.
async fn forward_when_open(
    mut upstream: Subscription,
    sender: mpsc::Sender<Result<SubscribeToShardEvent, KinesisError>>,
    gate: PauseGate,
) {
    loop {
        let event = tokio::select! {
            event = upstream.next_event() => event,
            () = sender.closed() => break,
        };
        let Some(event) = event else { break };
        tokio::select! {
            () = gate.wait_open() => {}
            () = sender.closed() => break,
        }
        if sender.send(event).await.is_err() {
            break;
        }
    }
    upstream.close().await;
}
