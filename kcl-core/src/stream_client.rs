//! What a worker needs from a Kinesis-compatible stream, behind a trait.
//!
//! Implemented for the in-process broker and for any Kinesis HTTP endpoint (this project's
//! `kinesis-broker`, real Kinesis, other emulators) in `kcl-worker`.

use crate::kinesis::{
    ConsumerDescription, GetRecordsOutput, KinesisError, Shard, ShardFilter, ShardId,
    StartingPosition, StreamSummary, SubscribeToShardEvent,
};
use tokio::sync::mpsc;

/// A push subscription to one shard (enhanced fan-out `SubscribeToShard`).
///
/// Events arrive in order; the subscription ends (`None`) when the server closes it, after which
/// the consumer resubscribes from the last continuation sequence number.
#[derive(Debug)]
pub struct Subscription {
    events: mpsc::Receiver<Result<SubscribeToShardEvent, KinesisError>>,
    reader: Option<tokio::task::JoinHandle<()>>,
}

impl Subscription {
    /// A subscription fed by the sending half of `events`.
    pub fn new(events: mpsc::Receiver<Result<SubscribeToShardEvent, KinesisError>>) -> Self {
        Subscription {
            events,
            reader: None,
        }
    }

    /// A subscription fed by `reader`, a background task sending into `events`. The reader must
    /// stop once the channel is closed (e.g. `Sender::closed` / a failed send);
    /// [`Subscription::close`] waits for it.
    pub fn with_reader(
        events: mpsc::Receiver<Result<SubscribeToShardEvent, KinesisError>>,
        reader: tokio::task::JoinHandle<()>,
    ) -> Self {
        Subscription {
            events,
            reader: Some(reader),
        }
    }

    /// Ends the subscription and waits until its reader task (if any) has stopped. Dropping a
    /// subscription ends it too, without waiting.
    pub async fn close(mut self) {
        self.events.close();
        if let Some(reader) = self.reader.take() {
            // A reader that panicked or was aborted has stopped as well.
            let _ = reader.await;
        }
    }

    /// The next event, or `None` when the subscription has ended.
    pub async fn next_event(&mut self) -> Option<Result<SubscribeToShardEvent, KinesisError>> {
        self.events.recv().await
    }
}

/// The Kinesis operations a worker uses.
#[async_trait::async_trait]
pub trait StreamClient: Send + Sync + 'static {
    /// Summary of the stream (status, ARN, retention).
    async fn describe_stream_summary(
        &self,
        stream_name: &str,
    ) -> Result<StreamSummary, KinesisError>;

    /// All shards matching `filter` (every page of `ListShards`).
    async fn list_shards(
        &self,
        stream_name: &str,
        filter: Option<ShardFilter>,
    ) -> Result<Vec<Shard>, KinesisError>;

    /// A shard iterator at `position`.
    async fn get_shard_iterator(
        &self,
        stream_name: &str,
        shard_id: &ShardId,
        position: StartingPosition,
    ) -> Result<String, KinesisError>;

    /// Up to `limit` records from `shard_iterator`.
    async fn get_records(
        &self,
        shard_iterator: &str,
        limit: u32,
    ) -> Result<GetRecordsOutput, KinesisError>;

    /// Registers an enhanced fan-out consumer, or describes it if it already exists.
    async fn register_stream_consumer(
        &self,
        stream_name: &str,
        consumer_name: &str,
    ) -> Result<ConsumerDescription, KinesisError>;

    /// Subscribes `consumer_arn` to `shard_id` from `position`.
    async fn subscribe_to_shard(
        &self,
        consumer_arn: &str,
        shard_id: &ShardId,
        position: StartingPosition,
    ) -> Result<Subscription, KinesisError>;
}
