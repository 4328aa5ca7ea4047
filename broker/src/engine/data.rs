//! Data-plane operations: `PutRecord`, `PutRecords`, `GetShardIterator`, `GetRecords`.

use super::state::{self, ReadBuckets, ShardState, StreamState, WriteBuckets};
use super::throttle::TokenBucket;
use super::token::{PayloadReader, PayloadWriter, TokenKind, format_java_date};
use super::validate::{self, Violations};
use super::{Broker, BrokerInner, DurabilityTicket, JournalAppend};
use crate::engine::api::*;
use bytes::Bytes;
use kcl_core::kinesis::{
    ChildShard, EpochMillis, GetRecordsOutput, HashKey, KinesisError, KinesisErrorKind, Record,
    SequenceNumber, ShardId, StartingPosition, partition_key_hash,
};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Most records one `GetRecords` call returns.
pub(crate) const MAX_GET_RECORDS: u32 = 10_000;

/// A validated record about to be stored.
#[derive(Debug)]
struct PreparedRecord {
    data: Bytes,
    partition_key: Arc<str>,
    explicit_hash_key: Option<HashKey>,
    hash_key: HashKey,
    size: usize,
}

/// Where a shard read starts and ends.
#[derive(Debug)]
pub(crate) struct ShardRead {
    pub(crate) records: Vec<Record>,
    /// Where the next read continues (first sequence number not yet returned).
    pub(crate) next_position: SequenceNumber,
    /// The shard is closed and everything in it was returned.
    pub(crate) at_end: bool,
    pub(crate) children: Vec<ChildShard>,
    pub(crate) millis_behind_latest: u64,
    pub(crate) bytes: usize,
}

/// The size Kinesis charges for a record: data plus partition key.
pub(crate) fn record_size(record: &Record) -> usize {
    record.data.len() + record.partition_key.len()
}

/// Reads up to `max_records` / `max_bytes` (at least one record if any) from `position`,
/// skipping records that arrived before `horizon`.
pub(crate) fn read_shard(
    shard: &ShardState,
    position: SequenceNumber,
    max_records: usize,
    max_bytes: usize,
    horizon: EpochMillis,
    now: EpochMillis,
) -> ShardRead {
    let log = state::read(&shard.log);
    let mut start = log.records.index_of_sequence(position);
    let oldest_expired = log
        .records
        .first()
        .is_some_and(|oldest| oldest.approximate_arrival_timestamp < horizon);
    if oldest_expired {
        start = start.max(log.records.index_of_arrival(horizon));
    }
    let mut records =
        Vec::with_capacity(max_records.min(log.records.len() - start.min(log.records.len())));
    let mut bytes = 0usize;
    'chunks: for slice in log.records.slices_from(start) {
        let mut take = 0usize;
        let mut full = false;
        for record in slice {
            let taken = records.len() + take;
            let size = record_size(record);
            if taken >= max_records || (taken > 0 && bytes + size > max_bytes) {
                full = true;
                break;
            }
            bytes += size;
            take += 1;
        }
        records.extend_from_slice(&slice[..take]);
        if full {
            break 'chunks;
        }
    }
    let next_index = start + records.len();
    let next_position = records
        .last()
        .map_or(position, |last| last.sequence_number.successor());
    let caught_up = next_index >= log.records.len();
    let millis_behind_latest = match log.records.get(next_index) {
        Some(next) if !caught_up => {
            u64::try_from(now.0.saturating_sub(next.approximate_arrival_timestamp.0)).unwrap_or(0)
        }
        _ => 0,
    };
    let (at_end, children) = match (&log.end, caught_up) {
        (Some(end), true) => (true, end.children.clone()),
        _ => (false, Vec::new()),
    };
    ShardRead {
        records,
        next_position,
        at_end,
        children,
        millis_behind_latest,
        bytes,
    }
}

/// Checks records (field name, data plus partition key bytes) against the stream's record
/// size limit (`UpdateMaxRecordSize`), with the wording of the model's length constraint.
fn check_record_sizes(
    stream: &StreamState,
    sizes: impl IntoIterator<Item = (String, usize)>,
) -> Result<(), KinesisError> {
    let limit = stream.max_record_bytes.load(Ordering::Acquire);
    let mut violations = Violations::default();
    for (field, size) in sizes {
        if size > limit {
            violations.field(
                &field,
                &format!("Member must have length less than or equal to {limit}"),
            );
        }
    }
    violations.into_result()
}

impl BrokerInner {
    /// The largest record any stream may accept (`UpdateMaxRecordSize`'s ceiling, or the
    /// configured default if that is larger): the request-level check before any lookup.
    pub(crate) fn largest_record_bytes(&self) -> usize {
        self.config
            .max_record_bytes
            .max(super::account::kib_to_bytes(
                super::account::MAX_RECORD_SIZE_KIB,
            ))
    }
}

impl Broker {
    /// `PutRecord`.
    pub async fn put_record(&self, input: PutRecordInput) -> Result<PutRecordOutput, KinesisError> {
        let inner = &self.inner;
        let mut violations = Violations::default();
        violations.partition_key(&input.partition_key, "partitionKey");
        let record_bytes = input.data.len() + input.partition_key.len();
        let largest = inner.largest_record_bytes();
        if record_bytes > largest {
            violations.field(
                "data",
                &format!("Member must have length less than or equal to {largest}"),
            );
        }
        if let Some(ordering) = &input.sequence_number_for_ordering
            && ordering.parse::<SequenceNumber>().is_err()
        {
            {
                violations.value(
                    ordering,
                    "sequenceNumberForOrdering",
                    "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128})",
                );
            }
        }
        if let Some(key) = &input.explicit_hash_key {
            violations.hash_key_shape(key, "explicitHashKey");
        }
        violations.into_result()?;
        let explicit_hash_key = input
            .explicit_hash_key
            .as_deref()
            .map(|key| validate::explicit_hash_key(key, "explicitHashKey"))
            .transpose()?;
        let stream = inner.stream_for_data(&input.stream)?;
        check_record_sizes(&stream, [("data".to_owned(), record_bytes)])?;
        let record = prepare(input.data, &input.partition_key, explicit_hash_key);
        let (mut results, tickets) = inner.append(&stream, vec![record]);
        settle(&mut results, tickets).await;
        let result = results.pop().ok_or_else(|| {
            KinesisError::new(
                KinesisErrorKind::InternalFailure,
                "Internal service failure.",
            )
        })?;
        match (result.shard_id, result.sequence_number, result.error_code) {
            (Some(shard_id), Some(sequence_number), None) => Ok(PutRecordOutput {
                shard_id,
                sequence_number,
                encryption_type: encryption_type_of(&stream).to_owned(),
            }),
            (_, _, code) => Err(KinesisError::new(
                KinesisErrorKind::from_aws_type(code.as_deref().unwrap_or("InternalFailure")),
                result.error_message.unwrap_or_default(),
            )),
        }
    }

    /// `PutRecords`: 1–500 records; each is accepted or fails on its own (throughput),
    /// results in request order.
    pub async fn put_records(
        &self,
        input: PutRecordsInput,
    ) -> Result<PutRecordsOutput, KinesisError> {
        let inner = &self.inner;
        let config = &inner.config;
        let mut violations = Violations::default();
        if input.records.is_empty() {
            violations.field(
                "records",
                "Member must have length greater than or equal to 1",
            );
        }
        if input.records.len() > config.max_put_records_count {
            violations.field(
                "records",
                &format!(
                    "Member must have length less than or equal to {}",
                    config.max_put_records_count
                ),
            );
        }
        let mut total_bytes = 0usize;
        for (index, entry) in input.records.iter().enumerate() {
            let member = index + 1;
            let size = entry.data.len() + entry.partition_key.len();
            total_bytes += size;
            let key_length = entry.partition_key.len();
            if key_length == 0 || key_length > 256 {
                violations.partition_key(
                    &entry.partition_key,
                    &format!("records.{member}.member.partitionKey"),
                );
            }
            if size > inner.largest_record_bytes() {
                violations.field(
                    &format!("records.{member}.member.data"),
                    &format!(
                        "Member must have length less than or equal to {}",
                        inner.largest_record_bytes()
                    ),
                );
            }
            if let Some(key) = &entry.explicit_hash_key {
                violations.hash_key_shape(key, &format!("records.{member}.member.explicitHashKey"));
            }
        }
        violations.into_result()?;
        if total_bytes > config.max_put_records_bytes {
            return Err(validate::invalid_argument(format!(
                "Records size exceeds {} MB limit",
                config.max_put_records_bytes / 1_048_576
            )));
        }
        let sizes: Vec<(String, usize)> = input
            .records
            .iter()
            .enumerate()
            .map(|(index, entry)| {
                (
                    format!("records.{}.member.data", index + 1),
                    entry.data.len() + entry.partition_key.len(),
                )
            })
            .collect();
        let mut prepared = Vec::with_capacity(input.records.len());
        for (index, entry) in input.records.into_iter().enumerate() {
            let explicit_hash_key = entry
                .explicit_hash_key
                .as_deref()
                .map(|key| {
                    validate::explicit_hash_key(
                        key,
                        &format!("records.{}.member.explicitHashKey", index + 1),
                    )
                })
                .transpose()?;
            prepared.push(prepare(entry.data, &entry.partition_key, explicit_hash_key));
        }
        let stream = inner.stream_for_data(&input.stream)?;
        check_record_sizes(&stream, sizes)?;
        let (mut results, tickets) = inner.append(&stream, prepared);
        settle(&mut results, tickets).await;
        let failed = results.iter().filter(|result| !result.is_success()).count();
        Ok(PutRecordsOutput {
            failed_record_count: u32::try_from(failed).unwrap_or(u32::MAX),
            records: results,
            encryption_type: encryption_type_of(&stream).to_owned(),
        })
    }

    /// `GetShardIterator`.
    pub async fn get_shard_iterator(
        &self,
        input: GetShardIteratorInput,
    ) -> Result<GetShardIteratorOutput, KinesisError> {
        let inner = &self.inner;
        let stream = inner.stream_for_data(&input.stream)?;
        let shard = inner.retained_shard(&stream, &input.shard_id)?;
        let position = inner.resolve_position(&stream, &shard, input.position)?;
        let payload = PayloadWriter::default()
            .str(&stream.name)
            .u64(stream.uid)
            .str(shard.id.as_str())
            .sequence(position)
            .finish();
        Ok(GetShardIteratorOutput {
            shard_iterator: inner
                .sealer
                .seal(TokenKind::ShardIterator, &payload, inner.now_wall()),
        })
    }

    /// `GetRecords`.
    pub async fn get_records(
        &self,
        input: GetRecordsInput,
    ) -> Result<GetRecordsOutput, KinesisError> {
        let (output, _stream_name) = self.get_records_of_stream(input).await?;
        Ok(output)
    }

    /// `GetRecords`, with the name of the stream the iterator read (for the server's
    /// per-stream metrics, without opening the iterator a second time).
    pub(crate) async fn get_records_of_stream(
        &self,
        input: GetRecordsInput,
    ) -> Result<(GetRecordsOutput, String), KinesisError> {
        let inner = &self.inner;
        let mut violations = Violations::default();
        if let Some(limit) = input.limit {
            violations.range(u64::from(limit), "limit", 1, u64::from(MAX_GET_RECORDS));
        }
        violations.into_result()?;
        let limit = input.limit.unwrap_or(MAX_GET_RECORDS) as usize;
        let iterator = inner.open_iterator(&input.shard_iterator)?;
        if let Some(arn) = &input.stream_arn {
            let named = inner.stream_name_of_arn(arn, "streamARN")?;
            if named != iterator.stream_name {
                return Err(validate::invalid_argument(format!(
                    "StreamARN {arn} does not match the stream of the shard iterator."
                )));
            }
        }
        let stream = inner.stream_for_data(&StreamRef::Name(iterator.stream_name.clone()))?;
        if stream.uid != iterator.stream_uid {
            return Err(inner.stream_not_found(&stream.name));
        }
        let shard = inner.retained_shard(&stream, &iterator.shard_id)?;
        let limits = inner.config.throughput;
        let now_mono = inner.now_mono();
        if limits.enabled {
            let mut buckets = state::lock(&shard.read_limits);
            let buckets = buckets.get_or_insert_with(|| ReadBuckets {
                calls: TokenBucket::new(
                    limits.read_calls_per_sec * limits.scale,
                    limits.read_calls_per_sec * limits.scale,
                    now_mono,
                ),
                bytes: TokenBucket::new(
                    limits.read_bytes_per_sec * limits.scale,
                    limits.read_bytes_per_sec * limits.scale,
                    now_mono,
                ),
            });
            if buckets.bytes.available(now_mono) <= 0.0 || !buckets.calls.try_take(1.0, now_mono) {
                return Err(KinesisError::new(
                    KinesisErrorKind::ProvisionedThroughputExceeded,
                    inner.throughput_exceeded_message(&shard.id, &stream.name),
                ));
            }
        }
        let now = inner.now_wall();
        let read = read_shard(
            &shard,
            iterator.position,
            limit,
            inner.config.max_get_records_bytes,
            stream.horizon(now),
            now,
        );
        if limits.enabled
            && let Some(buckets) = state::lock(&shard.read_limits).as_mut()
        {
            {
                buckets
                    .bytes
                    .take_allowing_debt(read.bytes as f64, now_mono);
            }
        }
        let next_shard_iterator = (!read.at_end).then(|| {
            let payload = PayloadWriter::default()
                .str(&stream.name)
                .u64(stream.uid)
                .str(shard.id.as_str())
                .sequence(read.next_position)
                .finish();
            inner.sealer.seal(TokenKind::ShardIterator, &payload, now)
        });
        let output = GetRecordsOutput {
            records: read.records,
            next_shard_iterator,
            millis_behind_latest: read.millis_behind_latest,
            child_shards: read.children,
        };
        Ok((output, stream.name.clone()))
    }
}

fn prepare(data: Bytes, partition_key: &str, explicit_hash_key: Option<HashKey>) -> PreparedRecord {
    let hash_key = explicit_hash_key.unwrap_or_else(|| partition_key_hash(partition_key));
    PreparedRecord {
        size: data.len() + partition_key.len(),
        data,
        partition_key: Arc::from(partition_key),
        explicit_hash_key,
        hash_key,
    }
}

/// Waits for every durability ticket; records of a failed ticket become `InternalFailure`.
async fn settle(
    results: &mut [PutRecordsResultEntry],
    tickets: Vec<(DurabilityTicket, Vec<usize>)>,
) {
    for (ticket, indexes) in tickets {
        if let Err(error) = ticket.await {
            tracing::error!(error = %error, records = indexes.len(), "journal failed to persist records");
            for index in indexes {
                let result = &mut results[index];
                result.sequence_number = None;
                result.shard_id = None;
                result.error_code = Some("InternalFailure".to_owned());
                result.error_message = Some("Internal service failure.".to_owned());
            }
        }
    }
}

/// A decoded shard iterator.
#[derive(Debug)]
struct IteratorPosition {
    stream_name: String,
    stream_uid: u64,
    shard_id: ShardId,
    position: SequenceNumber,
}

impl BrokerInner {
    /// Stores records, grouped by shard with one lock per shard. Returns per-record results
    /// in input order and the journal tickets (with the indexes they cover) to await.
    #[allow(clippy::type_complexity)]
    fn append(
        &self,
        stream: &StreamState,
        records: Vec<PreparedRecord>,
    ) -> (
        Vec<PutRecordsResultEntry>,
        Vec<(DurabilityTicket, Vec<usize>)>,
    ) {
        let mut results = vec![
            PutRecordsResultEntry {
                sequence_number: None,
                shard_id: None,
                error_code: None,
                error_message: None,
            };
            records.len()
        ];
        let mut tickets = Vec::new();
        let topology = state::read(&stream.topology);
        let mut routed: Vec<(usize, usize)> = records
            .iter()
            .enumerate()
            .map(|(index, record)| (topology.route(record.hash_key).unwrap_or(usize::MAX), index))
            .collect();
        routed.sort_by_key(|(shard, _)| *shard);
        let mut records: Vec<Option<PreparedRecord>> = records.into_iter().map(Some).collect();
        let now_wall = self.now_wall();
        let now_mono = self.now_mono();
        let limits = self.config.throughput;
        let horizon = stream.horizon(now_wall);
        for group in routed.chunk_by(|a, b| a.0 == b.0) {
            let Some(shard) = topology.open.get(group[0].0) else {
                for (_, index) in group {
                    results[*index].error_code = Some("InternalFailure".to_owned());
                    results[*index].error_message = Some("Internal service failure.".to_owned());
                }
                continue;
            };
            let mut log = state::write(&shard.log);
            if let Some(retained_from) = log.trim_before(horizon) {
                self.journal.trimmed(stream.uid, &shard.id, retained_from);
            }
            let arrival = now_wall.max(log.last_arrival);
            let mut accepted: Vec<(usize, PreparedRecord)> = Vec::with_capacity(group.len());
            for (_, index) in group {
                let Some(record) = records[*index].take() else {
                    continue;
                };
                if limits.enabled {
                    let buckets = log.write_limits.get_or_insert_with(|| WriteBuckets {
                        records: TokenBucket::new(
                            limits.write_records_per_sec * limits.scale,
                            limits.write_records_per_sec * limits.scale,
                            now_mono,
                        ),
                        bytes: TokenBucket::new(
                            limits.write_bytes_per_sec * limits.scale,
                            limits.write_bytes_per_sec * limits.scale,
                            now_mono,
                        ),
                    });
                    let size = record.size as f64;
                    // A record larger than one second of throughput (a large record after
                    // `UpdateMaxRecordSize`) needs a full bucket and leaves it in debt, as
                    // Kinesis bursts for it and then recovers at the base rate.
                    let burst = limits.write_bytes_per_sec * limits.scale;
                    let fits = buckets.records.available(now_mono) >= 1.0
                        && buckets.bytes.available(now_mono) >= size.min(burst);
                    if !fits {
                        results[*index].error_code = Some(
                            KinesisErrorKind::ProvisionedThroughputExceeded
                                .aws_type()
                                .to_owned(),
                        );
                        results[*index].error_message =
                            Some(self.throughput_exceeded_message(&shard.id, &stream.name));
                        continue;
                    }
                    buckets.records.try_take(1.0, now_mono);
                    buckets.bytes.take_allowing_debt(size, now_mono);
                }
                accepted.push((*index, record));
            }
            if accepted.is_empty() {
                continue;
            }
            let first_counter = stream
                .counter
                .fetch_add(accepted.len() as u64, Ordering::SeqCst);
            let journal_start = log.records.len();
            let mut indexes = Vec::with_capacity(accepted.len());
            for (offset, (index, record)) in accepted.into_iter().enumerate() {
                let sequence_number = super::seq::from_counter(first_counter + offset as u64);
                results[index].sequence_number = Some(sequence_number);
                results[index].shard_id = Some(shard.id.clone());
                indexes.push(index);
                log.records.push(Record {
                    sequence_number,
                    approximate_arrival_timestamp: arrival,
                    data: record.data,
                    partition_key: record.partition_key,
                    explicit_hash_key: record.explicit_hash_key,
                });
            }
            log.last_arrival = arrival;
            if self.journal.is_durable() {
                let appended: Vec<Record> = log.records.iter_from(journal_start).cloned().collect();
                let ticket = self.journal.append(JournalAppend {
                    stream_name: &stream.name,
                    stream_uid: stream.uid,
                    shard_id: &shard.id,
                    records: &appended,
                });
                tickets.push((ticket, indexes));
            }
            drop(log);
            shard.changed.notify_waiters();
        }
        (results, tickets)
    }

    /// A retained shard of the stream (closed shards whose records all expired are gone).
    pub(crate) fn retained_shard(
        &self,
        stream: &StreamState,
        shard_id: &ShardId,
    ) -> Result<Arc<ShardState>, KinesisError> {
        let shard = state::read(&stream.topology).shards.get(shard_id).cloned();
        match shard {
            Some(shard) if !stream.shard_expired(&shard, self.now_wall()) => Ok(shard),
            _ => Err(self.shard_not_found(shard_id.as_str(), &stream.name)),
        }
    }

    /// Turns a starting position into "the first record with a sequence number >= this".
    pub(crate) fn resolve_position(
        &self,
        stream: &StreamState,
        shard: &ShardState,
        position: StartingPosition,
    ) -> Result<SequenceNumber, KinesisError> {
        let log = state::read(&shard.log);
        let after_last = log
            .records
            .last()
            .map_or(shard.starting_sequence_number, |last| {
                last.sequence_number.successor()
            });
        let check_in_shard = |sequence_number: SequenceNumber| {
            let below = sequence_number < shard.starting_sequence_number;
            let above = log
                .end
                .as_ref()
                .is_some_and(|end| sequence_number > end.ending_sequence_number)
                || (log.end.is_none()
                    && sequence_number
                        >= super::seq::from_counter(stream.counter.load(Ordering::SeqCst)));
            if below || above {
                return Err(validate::invalid_argument(format!(
                    "Invalid StartingSequenceNumber. It does not belong to shard {} in stream {} under account {}.",
                    shard.id,
                    stream.name,
                    self.account()
                )));
            }
            Ok(sequence_number)
        };
        match position {
            StartingPosition::TrimHorizon => Ok(shard.starting_sequence_number),
            StartingPosition::Latest => Ok(after_last),
            StartingPosition::AtSequenceNumber(sequence_number) => check_in_shard(sequence_number),
            StartingPosition::AfterSequenceNumber(sequence_number) => {
                // "After the number just below the shard's start" is where a fan-out heartbeat
                // of a still-empty shard tells the consumer to continue from.
                let before_first = sequence_number.successor() == shard.starting_sequence_number;
                if before_first {
                    return Ok(shard.starting_sequence_number);
                }
                check_in_shard(sequence_number).map(SequenceNumber::successor)
            }
            StartingPosition::AtTimestamp(at) => {
                let index = log.records.index_of_arrival(at);
                Ok(log
                    .records
                    .get(index)
                    .map_or(after_last, |record| record.sequence_number))
            }
        }
    }

    fn open_iterator(&self, iterator: &str) -> Result<IteratorPosition, KinesisError> {
        let invalid = || validate::invalid_argument("Invalid ShardIterator.");
        if iterator.is_empty() || iterator.len() > 512 {
            return Err(invalid());
        }
        let (payload, created_at) = self
            .sealer
            .open(TokenKind::ShardIterator, iterator)
            .ok_or_else(invalid)?;
        let mut reader = PayloadReader::new(&payload);
        let stream_name = reader.str().ok_or_else(invalid)?.to_owned();
        let stream_uid = reader.u64().ok_or_else(invalid)?;
        let shard_id = ShardId::from(reader.str().ok_or_else(invalid)?);
        let position = reader.sequence().ok_or_else(invalid)?;
        if !reader.is_empty() {
            return Err(invalid());
        }
        let now = self.now_wall();
        let ttl = i64::try_from(self.config.iterator_ttl.as_millis()).unwrap_or(i64::MAX);
        if now.0.saturating_sub(created_at.0) > ttl {
            return Err(KinesisError::new(
                KinesisErrorKind::ExpiredIterator,
                format!(
                    "Iterator expired. The iterator was created at time {} while right now it is {} which is further in the future than the tolerated delay of {ttl} milliseconds.",
                    format_java_date(created_at),
                    format_java_date(now)
                ),
            ));
        }
        Ok(IteratorPosition {
            stream_name,
            stream_uid,
            shard_id,
            position,
        })
    }
}

/// The `EncryptionType` a put answers: `KMS` once `StartStreamEncryption` was called (the
/// records are not really encrypted; see `settings`).
fn encryption_type_of(stream: &super::state::StreamState) -> &'static str {
    if stream.encrypted.load(std::sync::atomic::Ordering::Acquire) {
        super::api::EncryptionType::Kms.as_str()
    } else {
        super::api::EncryptionType::None.as_str()
    }
}
