//! Wrappers that freeze a worker while its [`PauseGate`] is closed, as SIGSTOP or a long GC
//! pause would: its lease-store and stream calls, pushed events and record-processor callbacks
//! block. Nothing in the worker itself knows about the gate; its timers run on, so on resuming
//! it sees the time that passed (leases expired locally), as a resumed process does.

use crate::checkpointer::RecordCheckpointer;
use crate::processor::{
    InitializationInput, ProcessRecordsInput, ProcessorError, ShardRecordProcessor,
    ShardRecordProcessorFactory,
};
use kcl_core::kinesis::{
    ConsumerDescription, GetRecordsOutput, HashKeyRange, KinesisError, Shard, ShardFilter, ShardId,
    StartingPosition, StreamSummary, SubscribeToShardEvent,
};
use kcl_core::lease::Lease;
use kcl_core::lease_store::{CheckpointUpdate, LeaseStore, LeaseStoreError, Renewal};
use kcl_core::stream_client::{StreamClient, Subscription};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::sync::watch;

/// A gate that freezes whatever is wrapped with it while closed.
#[derive(Debug, Clone)]
pub struct PauseGate {
    open: watch::Sender<bool>,
}

impl Default for PauseGate {
    fn default() -> Self {
        PauseGate::new()
    }
}

impl PauseGate {
    /// An open gate.
    pub fn new() -> Self {
        PauseGate {
            open: watch::Sender::new(true),
        }
    }

    /// Closes the gate: gated work blocks until [`PauseGate::resume`].
    pub fn pause(&self) {
        self.open.send_replace(false);
    }

    /// Opens the gate.
    pub fn resume(&self) {
        self.open.send_replace(true);
    }

    /// Whether the gate is closed.
    pub fn is_paused(&self) -> bool {
        !*self.open.borrow()
    }

    /// Waits until the gate is open.
    pub async fn wait_open(&self) {
        let mut receiver = self.open.subscribe();
        let _ = receiver.wait_for(|open| *open).await;
    }
}

/// A lease store whose calls wait while the gate is closed.
#[derive(Clone)]
pub struct PausableLeaseStore {
    inner: Arc<dyn LeaseStore>,
    gate: PauseGate,
}

impl std::fmt::Debug for PausableLeaseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PausableLeaseStore")
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
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

impl std::fmt::Debug for PausableStreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PausableStreamClient")
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
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

/// Makes processors whose callbacks wait while the gate is closed.
pub struct PausableProcessorFactory {
    inner: Arc<dyn ShardRecordProcessorFactory>,
    gate: PauseGate,
}

impl std::fmt::Debug for PausableProcessorFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PausableProcessorFactory")
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

impl PausableProcessorFactory {
    /// Gates the processors `inner` makes with `gate`.
    pub fn new(inner: Arc<dyn ShardRecordProcessorFactory>, gate: PauseGate) -> Self {
        PausableProcessorFactory { inner, gate }
    }
}

impl ShardRecordProcessorFactory for PausableProcessorFactory {
    fn create_processor(&self, shard_id: &ShardId) -> Box<dyn ShardRecordProcessor> {
        Box::new(PausableProcessor {
            inner: self.inner.create_processor(shard_id),
            gate: self.gate.clone(),
        })
    }
}

/// A processor whose callbacks wait while the gate is closed.
struct PausableProcessor {
    inner: Box<dyn ShardRecordProcessor>,
    gate: PauseGate,
}

#[async_trait::async_trait]
impl ShardRecordProcessor for PausableProcessor {
    async fn initialize(&mut self, input: InitializationInput) -> Result<(), ProcessorError> {
        self.gate.wait_open().await;
        self.inner.initialize(input).await
    }
    async fn process_records(&mut self, input: ProcessRecordsInput) -> Result<(), ProcessorError> {
        self.gate.wait_open().await;
        self.inner.process_records(input).await
    }
    async fn lease_lost(&mut self) -> Result<(), ProcessorError> {
        self.gate.wait_open().await;
        self.inner.lease_lost().await
    }
    async fn shard_ended(
        &mut self,
        checkpointer: RecordCheckpointer,
    ) -> Result<(), ProcessorError> {
        self.gate.wait_open().await;
        self.inner.shard_ended(checkpointer).await
    }
    async fn shutdown_requested(
        &mut self,
        checkpointer: RecordCheckpointer,
    ) -> Result<(), ProcessorError> {
        self.gate.wait_open().await;
        self.inner.shutdown_requested(checkpointer).await
    }
}
