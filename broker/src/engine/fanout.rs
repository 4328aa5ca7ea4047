//! Enhanced fan-out: consumers and `SubscribeToShard` push subscriptions.
//!
//! Each subscription is a task that reads its shard from the starting position and pushes
//! [`SubscribeToShardEvent`]s into a bounded channel (backpressure: it waits for the reader).
//! It sleeps on the shard's `Notify` between appends (no polling), spends a per-consumer,
//! per-shard byte budget, and ends after `subscription_duration` by the clock, when the shard
//! end was delivered, when the receiver is dropped, the consumer deregistered, a newer
//! subscription replaced it, or the broker shut down.

use super::data::read_shard;
use super::state::{self, ConsumerState, ShardState, StreamState};
use super::throttle::TokenBucket;
use super::token::{PayloadReader, PayloadWriter, TokenKind};
use super::validate::{self, Violations};
use super::{ActiveSubscription, Broker, BrokerInner, await_durable, consumer_arn, seq};
use crate::engine::api::*;
use kcl_core::kinesis::{
    ConsumerDescription, EpochMillis, KinesisError, SequenceNumber, ShardId, SubscribeToShardEvent,
};
use kcl_core::stream_client::Subscription;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// A resubscription this soon after the previous one is refused while that one is active.
const RESUBSCRIBE_GRACE: Duration = Duration::from_secs(5);
/// An empty event is sent after this long without one, so readers see liveness and lag.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Most records in one event.
const MAX_EVENT_RECORDS: usize = 10_000;
/// Most bytes in one event when throughput limits are off.
const MAX_EVENT_BYTES: usize = 10 * 1_048_576;

impl Broker {
    /// `RegisterStreamConsumer`. The consumer is `ACTIVE` at once. A name registered again
    /// after `DeregisterStreamConsumer` gets a new ARN, so the old ARN stays unknown.
    pub async fn register_stream_consumer(
        &self,
        input: RegisterStreamConsumerInput,
    ) -> Result<Consumer, KinesisError> {
        let inner = &self.inner;
        let mut violations = Violations::default();
        violations.name(&input.consumer_name, "consumerName");
        violations.into_result()?;
        let (consumer, ticket) = {
            let _control = inner.control_lock();
            let stream = inner.stream_active(&StreamRef::Arn(input.stream_arn.clone()))?;
            let mut meta = state::lock(&stream.meta);
            if meta.consumers.contains_key(&input.consumer_name) {
                return Err(validate::in_use(format!(
                    "Consumer {} under stream {} already exists for account {}.",
                    input.consumer_name,
                    stream.name,
                    inner.account()
                )));
            }
            if meta.consumers.len() >= inner.config.max_consumers_per_stream {
                return Err(validate::limit_exceeded(format!(
                    "Consumer limit of {} for stream {} under account {} has been reached.",
                    inner.config.max_consumers_per_stream,
                    stream.name,
                    inner.account()
                )));
            }
            // A name registered again gets a new ARN: its creation second (the ARN's suffix)
            // is moved past the one of the ARN it had before being deregistered.
            let now = inner.now_wall();
            let created_at = match meta.retired_consumers.get(&input.consumer_name) {
                Some(&retired) if now.0.div_euclid(1000) <= retired => {
                    EpochMillis(retired.saturating_add(1).saturating_mul(1000))
                }
                _ => now,
            };
            let state = ConsumerState {
                name: input.consumer_name.clone(),
                arn: consumer_arn(
                    &inner.config.region,
                    inner.account(),
                    &stream.name,
                    &input.consumer_name,
                    created_at,
                ),
                created_at,
                cancel: CancellationToken::new(),
                resource_policy: None,
            };
            let consumer = describe(&state);
            meta.consumers.insert(input.consumer_name.clone(), state);
            drop(meta);
            (consumer, inner.journal_metadata())
        };
        await_durable(ticket).await?;
        Ok(consumer)
    }

    /// `DeregisterStreamConsumer`: ends the consumer's subscriptions.
    pub async fn deregister_stream_consumer(
        &self,
        consumer: ConsumerRef,
    ) -> Result<(), KinesisError> {
        let inner = &self.inner;
        let ticket = {
            let _control = inner.control_lock();
            let (stream, found) = inner.find_consumer(&consumer)?;
            {
                let mut meta = state::lock(&stream.meta);
                meta.consumers.remove(&found.name);
                meta.retired_consumers
                    .insert(found.name.clone(), found.created_at.0.div_euclid(1000));
            }
            found.cancel.cancel();
            state::lock(&inner.fan_out_budgets).retain(|(arn, _), _| arn != &found.arn);
            inner.journal_metadata()
        };
        await_durable(ticket).await
    }

    /// `DescribeStreamConsumer`.
    pub async fn describe_stream_consumer(
        &self,
        consumer: ConsumerRef,
    ) -> Result<ConsumerDescription, KinesisError> {
        let (stream, found) = self.inner.find_consumer(&consumer)?;
        Ok(ConsumerDescription {
            consumer_name: found.name.clone(),
            consumer_arn: found.arn.clone(),
            consumer_status: "ACTIVE".to_owned(),
            consumer_creation_timestamp: found.created_at,
            stream_arn: stream.arn.clone(),
        })
    }

    /// `ListStreamConsumers` (paginated by `NextToken`).
    pub async fn list_stream_consumers(
        &self,
        input: ListStreamConsumersInput,
    ) -> Result<ListStreamConsumersOutput, KinesisError> {
        let inner = &self.inner;
        let mut violations = Violations::default();
        if let Some(max) = input.max_results {
            violations.range(u64::from(max), "maxResults", 1, 10_000);
        }
        violations.into_result()?;
        let stream = inner.stream_any(&StreamRef::Arn(input.stream_arn.clone()))?;
        let after = match &input.next_token {
            Some(token) => {
                let payload = inner.open_token(TokenKind::ListStreamConsumers, token)?;
                let mut reader = PayloadReader::new(&payload);
                let invalid = || validate::invalid_argument("Invalid NextToken.");
                let uid = reader.u64().ok_or_else(invalid)?;
                if uid != stream.uid {
                    return Err(invalid());
                }
                Some(reader.str().ok_or_else(invalid)?.to_owned())
            }
            None => None,
        };
        let page_size = input.max_results.unwrap_or(100) as usize;
        let meta = state::lock(&stream.meta);
        let mut consumers: Vec<Consumer> = meta
            .consumers
            .values()
            .filter(|consumer| after.as_ref().is_none_or(|after| &consumer.name > after))
            .take(page_size + 1)
            .map(describe)
            .collect();
        drop(meta);
        let has_more = consumers.len() > page_size;
        consumers.truncate(page_size);
        let next_token = match (has_more, consumers.last()) {
            (true, Some(last)) => Some(
                inner.seal_token(
                    TokenKind::ListStreamConsumers,
                    PayloadWriter::default()
                        .u64(stream.uid)
                        .str(&last.consumer_name)
                        .finish(),
                ),
            ),
            _ => None,
        };
        Ok(ListStreamConsumersOutput {
            consumers,
            next_token,
        })
    }

    /// `SubscribeToShard`: a push subscription of a registered consumer to one shard.
    ///
    /// Must be called inside a tokio runtime (it spawns the delivery task). The subscription
    /// ends after `subscription_duration` (5 minutes); resubscribe from the last
    /// `continuation_sequence_number` with `AfterSequenceNumber`. A second call for the same
    /// consumer and shard within 5 seconds, while the first is still active, is
    /// `ResourceInUseException`; later, the new subscription replaces the old one.
    pub async fn subscribe_to_shard(
        &self,
        input: SubscribeToShardInput,
    ) -> Result<Subscription, KinesisError> {
        let inner = &self.inner;
        let (stream, consumer) =
            inner.find_consumer(&ConsumerRef::by_arn(input.consumer_arn.clone()))?;
        if stream.status(inner.now_mono()) != StreamStatus::Active {
            return Err(inner.stream_not_found(&stream.name));
        }
        let shard = inner.retained_shard(&stream, &input.shard_id)?;
        let start = inner.resolve_position(&stream, &shard, input.starting_position)?;
        let now = inner.now_mono();
        let key = (consumer.arn.clone(), shard.id.clone());
        let id = inner.next_subscription_id.fetch_add(1, Ordering::SeqCst);
        let cancel = consumer.cancel.child_token();
        {
            let mut subscriptions = state::lock(&inner.subscriptions);
            if let Some(previous) = subscriptions.get(&key) {
                let still_active = !previous.cancel.is_cancelled();
                if still_active && now < previous.started_at + RESUBSCRIBE_GRACE {
                    return Err(validate::in_use(format!(
                        "Another active subscription exists for this consumer: {}:{}:{}:{}",
                        inner.account(),
                        stream.name,
                        shard.id,
                        consumer.name
                    )));
                }
                previous.cancel.cancel();
            }
            subscriptions.insert(
                key.clone(),
                ActiveSubscription {
                    id,
                    started_at: now,
                    cancel: cancel.clone(),
                },
            );
        }
        let budget = inner.fan_out_budget(&key, now);
        let (sender, receiver) = mpsc::channel(inner.config.subscription_buffer.max(1));
        let task = SubscriptionTask {
            inner: Arc::clone(inner),
            stream,
            shard,
            key,
            id,
            cancel,
            budget,
            sender,
            position: start,
            last_delivered: seq::predecessor(start),
            deadline: now.saturating_add(inner.config.subscription_duration),
        };
        let span = tracing::debug_span!(
            "subscription",
            stream = %task.stream.name,
            consumer = %consumer.name,
            shard_id = %task.shard.id
        );
        tracing::debug!(parent: &span, "subscription started");
        inner.tasks.spawn(task.run().instrument(span));
        Ok(Subscription::new(receiver))
    }
}

fn describe(consumer: &ConsumerState) -> Consumer {
    Consumer {
        consumer_name: consumer.name.clone(),
        consumer_arn: consumer.arn.clone(),
        consumer_status: "ACTIVE".to_owned(),
        consumer_creation_timestamp: consumer.created_at,
    }
}

impl BrokerInner {
    /// The consumer a reference names, with its stream.
    pub(super) fn find_consumer(
        &self,
        consumer: &ConsumerRef,
    ) -> Result<(Arc<StreamState>, ConsumerState), KinesisError> {
        let not_found = |what: &str| {
            validate::not_found(format!(
                "Consumer {what} under account {} not found.",
                self.account()
            ))
        };
        let (stream, name, arn) = match (
            &consumer.consumer_arn,
            &consumer.stream_arn,
            &consumer.consumer_name,
        ) {
            (Some(arn), _, _) => {
                let parsed = validate::parse_arn(arn).and_then(|parsed| {
                    let (name, _seconds) = parsed.consumer?.rsplit_once(':')?;
                    Some((parsed.stream_name, name))
                });
                let Some((stream_name, consumer_name)) = parsed else {
                    let mut violations = Violations::default();
                    violations.value(
                        arn,
                        "consumerARN",
                        "Member must satisfy regular expression pattern: ^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+",
                    );
                    violations.into_result()?;
                    return Err(not_found(arn));
                };
                let stream = self
                    .stream_any(&StreamRef::Arn(self.stream_arn(stream_name)))
                    .map_err(|_| not_found(arn))?;
                (stream, consumer_name.to_owned(), Some(arn.clone()))
            }
            (None, Some(stream_arn), Some(name)) => {
                validate::name(name, "consumerName")?;
                let stream = self.stream_any(&StreamRef::Arn(stream_arn.clone()))?;
                (stream, name.clone(), None)
            }
            _ => {
                return Err(validate::invalid_argument(
                    "Either ConsumerARN or both StreamARN and ConsumerName must be provided.",
                ));
            }
        };
        let found = state::lock(&stream.meta).consumers.get(&name).cloned();
        match found {
            Some(found) if arn.as_ref().is_none_or(|arn| arn == &found.arn) => Ok((stream, found)),
            _ => Err(not_found(arn.as_deref().unwrap_or(&name))),
        }
    }

    fn fan_out_budget(
        &self,
        key: &(String, ShardId),
        now: Duration,
    ) -> Option<Arc<Mutex<TokenBucket>>> {
        let limits = self.config.throughput;
        if !limits.enabled {
            return None;
        }
        let rate = limits.fan_out_bytes_per_sec * limits.scale;
        let mut budgets = state::lock(&self.fan_out_budgets);
        let budget = budgets
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Mutex::new(TokenBucket::new(rate, rate, now))));
        Some(Arc::clone(budget))
    }
}

/// One running subscription.
struct SubscriptionTask {
    inner: Arc<BrokerInner>,
    stream: Arc<StreamState>,
    shard: Arc<ShardState>,
    key: (String, ShardId),
    id: u64,
    cancel: CancellationToken,
    budget: Option<Arc<Mutex<TokenBucket>>>,
    sender: mpsc::Sender<Result<SubscribeToShardEvent, KinesisError>>,
    position: SequenceNumber,
    last_delivered: SequenceNumber,
    deadline: Duration,
}

/// Why a subscription stopped waiting.
enum Wake {
    Changed,
    Timer,
    Stop,
}

impl SubscriptionTask {
    async fn run(mut self) {
        let mut last_event_at = self.inner.now_mono();
        loop {
            let shard = Arc::clone(&self.shard);
            let changed = shard.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let now = self.inner.now_mono();
            if now >= self.deadline || self.stopped() {
                break;
            }
            if self.stream.deleting.load(Ordering::Acquire) {
                let error = self.inner.stream_not_found(&self.stream.name);
                let _ = self.sender.try_send(Err(error));
                break;
            }
            let budget_bytes = match &self.budget {
                Some(budget) => state::lock(budget).available(now),
                None => MAX_EVENT_BYTES as f64,
            };
            if budget_bytes <= 0.0 {
                let wait = self
                    .budget
                    .as_ref()
                    .map(|budget| state::lock(budget).time_until(1.0, now))
                    .unwrap_or(Duration::ZERO)
                    .max(Duration::from_millis(10));
                if matches!(self.wait(None, wait).await, Wake::Stop) {
                    break;
                }
                continue;
            }
            let max_bytes = (budget_bytes as usize).clamp(1, MAX_EVENT_BYTES);
            let wall = self.inner.now_wall();
            let read = read_shard(
                &self.shard,
                self.position,
                MAX_EVENT_RECORDS,
                max_bytes,
                self.stream.horizon(wall),
                wall,
            );
            let heartbeat_due = now >= last_event_at + HEARTBEAT;
            if read.records.is_empty() && !read.at_end && !heartbeat_due {
                let remaining = self.deadline.saturating_sub(now).min(HEARTBEAT);
                if matches!(self.wait(Some(changed), remaining).await, Wake::Stop) {
                    break;
                }
                continue;
            }
            if let Some(budget) = &self.budget {
                state::lock(budget).take_allowing_debt(read.bytes as f64, now);
            }
            if let Some(last) = read.records.last() {
                self.last_delivered = last.sequence_number;
            }
            self.position = read.next_position;
            let event = SubscribeToShardEvent {
                continuation_sequence_number: (!read.at_end).then_some(self.last_delivered),
                records: read.records,
                millis_behind_latest: read.millis_behind_latest,
                child_shards: read.children,
            };
            let sent = tokio::select! {
                sent = self.sender.send(Ok(event)) => sent.is_ok(),
                () = self.cancel.cancelled() => false,
                () = self.inner.shutdown.cancelled() => false,
            };
            last_event_at = self.inner.now_mono();
            if !sent || read.at_end {
                break;
            }
        }
        self.finish();
    }

    fn stopped(&self) -> bool {
        self.cancel.is_cancelled() || self.inner.shutdown.is_cancelled() || self.sender.is_closed()
    }

    async fn wait(
        &self,
        changed: Option<std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>>,
        timeout: Duration,
    ) -> Wake {
        let changed = async {
            match changed {
                Some(changed) => changed.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = changed => Wake::Changed,
            () = tokio::time::sleep(timeout) => Wake::Timer,
            () = self.cancel.cancelled() => Wake::Stop,
            () = self.inner.shutdown.cancelled() => Wake::Stop,
            () = self.sender.closed() => Wake::Stop,
        }
    }

    fn finish(self) {
        let mut subscriptions = state::lock(&self.inner.subscriptions);
        if subscriptions
            .get(&self.key)
            .is_some_and(|active| active.id == self.id)
        {
            subscriptions.remove(&self.key);
        }
        drop(subscriptions);
        self.cancel.cancel();
        tracing::debug!(consumer_arn = %self.key.0, shard_id = %self.key.1, "subscription ended");
    }
}
