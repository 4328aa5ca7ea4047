//! A [`StreamClient`] over an in-process [`Broker`]: no network, no serialization.

use broker::engine::{
    Broker, ConsumerRef, GetRecordsInput, GetShardIteratorInput, ListShardsInput,
    RegisterStreamConsumerInput, StreamRef, SubscribeToShardInput,
};
use kcl_core::kinesis::{
    ConsumerDescription, GetRecordsOutput, KinesisError, KinesisErrorKind, Shard, ShardFilter,
    ShardId, StartingPosition, StreamSummary,
};
use kcl_core::stream_client::{StreamClient, Subscription};

/// Reads a stream of an in-process broker.
#[derive(Clone)]
pub struct EmbeddedStreamClient {
    broker: Broker,
}

impl std::fmt::Debug for EmbeddedStreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStreamClient")
            .finish_non_exhaustive()
    }
}

impl EmbeddedStreamClient {
    /// A client for `broker` (a cheap handle clone).
    pub fn new(broker: Broker) -> Self {
        EmbeddedStreamClient { broker }
    }

    /// The broker.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }
}

#[async_trait::async_trait]
impl StreamClient for EmbeddedStreamClient {
    async fn describe_stream_summary(
        &self,
        stream_name: &str,
    ) -> Result<StreamSummary, KinesisError> {
        let summary = self
            .broker
            .describe_stream_summary(StreamRef::name(stream_name))
            .await?;
        Ok(StreamSummary {
            stream_name: summary.stream_name,
            stream_arn: summary.stream_arn,
            stream_status: summary.stream_status.as_str().to_owned(),
            retention_period_hours: summary.retention_period_hours,
            open_shard_count: summary.open_shard_count,
            consumer_count: summary.consumer_count,
            stream_creation_timestamp: summary.stream_creation_timestamp,
        })
    }

    async fn list_shards(
        &self,
        stream_name: &str,
        filter: Option<ShardFilter>,
    ) -> Result<Vec<Shard>, KinesisError> {
        let mut shards = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let input = match next_token.take() {
                Some(token) => ListShardsInput {
                    stream: None,
                    next_token: Some(token),
                    exclusive_start_shard_id: None,
                    max_results: None,
                    stream_creation_timestamp: None,
                    shard_filter: None,
                },
                None => ListShardsInput {
                    stream: Some(StreamRef::name(stream_name)),
                    next_token: None,
                    exclusive_start_shard_id: None,
                    max_results: None,
                    stream_creation_timestamp: None,
                    shard_filter: filter.clone(),
                },
            };
            let page = self.broker.list_shards(input).await?;
            shards.extend(page.shards);
            match page.next_token {
                Some(token) => next_token = Some(token),
                None => return Ok(shards),
            }
        }
    }

    async fn get_shard_iterator(
        &self,
        stream_name: &str,
        shard_id: &ShardId,
        position: StartingPosition,
    ) -> Result<String, KinesisError> {
        let output = self
            .broker
            .get_shard_iterator(GetShardIteratorInput {
                stream: StreamRef::name(stream_name),
                shard_id: shard_id.clone(),
                position,
            })
            .await?;
        Ok(output.shard_iterator)
    }

    async fn get_records(
        &self,
        shard_iterator: &str,
        limit: u32,
    ) -> Result<GetRecordsOutput, KinesisError> {
        self.broker
            .get_records(GetRecordsInput {
                shard_iterator: shard_iterator.to_owned(),
                limit: Some(limit),
                stream_arn: None,
            })
            .await
    }

    async fn register_stream_consumer(
        &self,
        stream_name: &str,
        consumer_name: &str,
    ) -> Result<ConsumerDescription, KinesisError> {
        let stream_arn = self.describe_stream_summary(stream_name).await?.stream_arn;
        let registered = self
            .broker
            .register_stream_consumer(RegisterStreamConsumerInput {
                stream_arn: stream_arn.clone(),
                consumer_name: consumer_name.to_owned(),
            })
            .await;
        match registered {
            Ok(consumer) => Ok(ConsumerDescription {
                consumer_name: consumer.consumer_name,
                consumer_arn: consumer.consumer_arn,
                consumer_status: consumer.consumer_status,
                consumer_creation_timestamp: consumer.consumer_creation_timestamp,
                stream_arn,
            }),
            Err(error) if error.kind == KinesisErrorKind::ResourceInUse => {
                self.broker
                    .describe_stream_consumer(ConsumerRef::by_name(stream_arn, consumer_name))
                    .await
            }
            Err(error) => Err(error),
        }
    }

    async fn subscribe_to_shard(
        &self,
        consumer_arn: &str,
        shard_id: &ShardId,
        position: StartingPosition,
    ) -> Result<Subscription, KinesisError> {
        self.broker
            .subscribe_to_shard(SubscribeToShardInput {
                consumer_arn: consumer_arn.to_owned(),
                shard_id: shard_id.clone(),
                starting_position: position,
            })
            .await
    }
}
