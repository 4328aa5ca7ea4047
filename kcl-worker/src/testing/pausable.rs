//! Wrappers that freeze a worker while its [`PauseGate`] is closed, as SIGSTOP or a long GC
//! pause would: its lease-store and stream calls, pushed events and record-processor callbacks
//! block. Nothing in the worker itself knows about the gate; its timers run on, so on resuming
//! it sees the time that passed (leases expired locally), as a resumed process does.

use super::hooks::{
    HookedLeaseStore, HookedStreamClient, LeaseStoreHook, StoreCall, StreamAnswer, StreamCall,
    StreamHook,
};
use crate::checkpointer::RecordCheckpointer;
use crate::processor::{
    InitializationInput, ProcessRecordsInput, ProcessorError, ShardRecordProcessor,
    ShardRecordProcessorFactory,
};
use kcl_core::kinesis::{KinesisError, KinesisErrorKind, ShardId, SubscribeToShardEvent};
use kcl_core::lease_store::LeaseStoreError;
use kcl_core::stream_client::Subscription;
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
pub type PausableLeaseStore = HookedLeaseStore<PauseGate>;

/// A stream client whose calls (and pushed events) wait while the gate is closed.
pub type PausableStreamClient = HookedStreamClient<PauseGate>;

#[async_trait::async_trait]
impl LeaseStoreHook for PauseGate {
    async fn before(&self, _call: StoreCall<'_>) -> Result<(), LeaseStoreError> {
        self.wait_open().await;
        Ok(())
    }
}

#[async_trait::async_trait]
impl StreamHook for PauseGate {
    async fn before(&self, _call: StreamCall<'_>) -> Result<(), KinesisError> {
        self.wait_open().await;
        Ok(())
    }

    /// Pushed events are held back too while the gate is closed: a paused worker receives (and
    /// so processes) nothing.
    fn after(&self, _call: StreamCall<'_>, answer: StreamAnswer<'_>) {
        let StreamAnswer::SubscribeToShard(answer) = answer else {
            return;
        };
        let placeholder = Err(KinesisError::new(
            KinesisErrorKind::Other,
            "subscription moved behind the pause gate",
        ));
        *answer = std::mem::replace(answer, placeholder).map(|upstream| {
            let (sender, receiver) = mpsc::channel(1);
            let reader = tokio::spawn(forward_when_open(upstream, sender, self.clone()));
            Subscription::with_reader(receiver, reader)
        });
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
