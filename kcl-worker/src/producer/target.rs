//! Where producers write: [`HttpTarget`] for any Kinesis HTTP endpoint, `EmbeddedTarget`
//! (feature `embedded`) for the in-process broker. Both serve the batch [`Producer`] (through
//! [`PutRecordsTarget`]) and the [`KplProducer`](super::KplProducer) (through [`ProducerTarget`],
//! which also carries explicit hash keys and lists shards for shard prediction).

#[cfg(doc)]
use super::batch::Producer;
use super::batch::{ProduceEntry, PutOutcome, PutRecordsTarget};
use crate::client::HttpStreamClient;
use crate::kpl::UserRecord;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use kcl_core::kinesis::{KinesisError, KinesisErrorKind, Shard};
use kcl_core::stream_client::StreamClient as _;
use serde_json::{Value, json};

/// Where a [`KplProducer`](super::KplProducer) writes: `PutRecords` with explicit hash keys,
/// and `ListShards` to predict which shard a record goes to.
#[async_trait::async_trait]
pub trait ProducerTarget: Send + Sync + std::fmt::Debug {
    /// The stream written to (the `stream` label of the producer's metrics).
    fn stream_name(&self) -> &str;

    /// Puts `records` (at most 500, at most 5 MiB) and returns one outcome per record, in order.
    async fn put(&self, records: &[UserRecord]) -> Result<Vec<PutOutcome>, KinesisError>;

    /// Every shard of the stream, open and closed (for shard prediction).
    async fn shards(&self) -> Result<Vec<Shard>, KinesisError>;
}

/// Puts into a stream over the Kinesis JSON protocol (signed and retried by the
/// [`HttpStreamClient`]).
#[derive(Debug, Clone)]
pub struct HttpTarget {
    client: HttpStreamClient,
    stream_name: String,
}

impl HttpTarget {
    /// A target writing to `stream_name` through `client`.
    pub fn new(client: HttpStreamClient, stream_name: impl Into<String>) -> Self {
        HttpTarget {
            client,
            stream_name: stream_name.into(),
        }
    }
}

fn malformed(operation: &str, what: &str) -> KinesisError {
    KinesisError::new(
        KinesisErrorKind::Other,
        format!("unreadable {operation} response: {what}"),
    )
}

/// Decodes the `Records` of a `PutRecords` answer, one outcome per request entry.
pub fn put_outcomes(answer: &Value, expected: usize) -> Result<Vec<PutOutcome>, KinesisError> {
    let records = answer
        .get("Records")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("PutRecords", "no Records array"))?;
    if records.len() != expected {
        return Err(malformed(
            "PutRecords",
            &format!("{} results for {expected} records", records.len()),
        ));
    }
    Ok(records
        .iter()
        .map(|record| {
            let text = |field: &str| record.get(field).and_then(Value::as_str).map(str::to_owned);
            match (text("ErrorCode"), text("ShardId"), text("SequenceNumber")) {
                (None, Some(shard_id), Some(sequence_number)) => PutOutcome::Accepted {
                    shard_id,
                    sequence_number,
                },
                (error_code, _, _) => PutOutcome::Failed {
                    error_code: error_code.unwrap_or_else(|| "InternalFailure".to_owned()),
                },
            }
        })
        .collect())
}

#[async_trait::async_trait]
impl PutRecordsTarget for HttpTarget {
    async fn put_records(&self, entries: &[ProduceEntry]) -> Result<Vec<PutOutcome>, KinesisError> {
        let records: Vec<Value> = entries
            .iter()
            .map(|entry| {
                json!({
                    "Data": BASE64.encode(&entry.data),
                    "PartitionKey": entry.partition_key,
                })
            })
            .collect();
        let answer = self
            .client
            .call_json(
                "PutRecords",
                json!({"StreamName": self.stream_name, "Records": records}),
            )
            .await?;
        put_outcomes(&answer, entries.len())
    }
}

fn put_records_body(stream_name: &str, records: &[UserRecord]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|record| {
            let mut entry = json!({
                "Data": BASE64.encode(&record.data),
                "PartitionKey": record.partition_key,
            });
            if let Some(hash_key) = record.explicit_hash_key {
                entry["ExplicitHashKey"] = Value::String(hash_key.to_string());
            }
            entry
        })
        .collect();
    json!({"StreamName": stream_name, "Records": records})
}

#[async_trait::async_trait]
impl ProducerTarget for HttpTarget {
    fn stream_name(&self) -> &str {
        &self.stream_name
    }

    async fn put(&self, records: &[UserRecord]) -> Result<Vec<PutOutcome>, KinesisError> {
        let answer = self
            .client
            .call_json("PutRecords", put_records_body(&self.stream_name, records))
            .await?;
        put_outcomes(&answer, records.len())
    }

    async fn shards(&self) -> Result<Vec<Shard>, KinesisError> {
        self.client.list_shards(&self.stream_name, None).await
    }
}

/// Puts into a stream of an in-process [`broker::engine::Broker`].
#[cfg(feature = "embedded")]
#[derive(Debug, Clone)]
pub struct EmbeddedTarget {
    broker: broker::engine::Broker,
    stream_name: String,
}

#[cfg(feature = "embedded")]
impl EmbeddedTarget {
    /// A target writing to `stream_name` of `broker`.
    pub fn new(broker: broker::engine::Broker, stream_name: impl Into<String>) -> Self {
        EmbeddedTarget {
            broker,
            stream_name: stream_name.into(),
        }
    }
}

#[cfg(feature = "embedded")]
#[async_trait::async_trait]
impl PutRecordsTarget for EmbeddedTarget {
    async fn put_records(&self, entries: &[ProduceEntry]) -> Result<Vec<PutOutcome>, KinesisError> {
        let records: Vec<UserRecord> = entries
            .iter()
            .map(|entry| UserRecord::new(entry.partition_key.clone(), entry.data.clone()))
            .collect();
        self.put(&records).await
    }
}

#[cfg(feature = "embedded")]
#[async_trait::async_trait]
impl ProducerTarget for EmbeddedTarget {
    fn stream_name(&self) -> &str {
        &self.stream_name
    }

    async fn put(&self, records: &[UserRecord]) -> Result<Vec<PutOutcome>, KinesisError> {
        use broker::engine::{PutRecordsInput, PutRecordsRequestEntry, StreamRef};
        let input = PutRecordsInput {
            stream: StreamRef::name(self.stream_name.clone()),
            records: records
                .iter()
                .map(|record| PutRecordsRequestEntry {
                    data: record.data.clone(),
                    partition_key: record.partition_key.clone(),
                    explicit_hash_key: record.explicit_hash_key.map(|key| key.to_string()),
                })
                .collect(),
        };
        let output = self.broker.put_records(input).await?;
        Ok(output.records.into_iter().map(embedded_outcome).collect())
    }

    async fn shards(&self) -> Result<Vec<Shard>, KinesisError> {
        crate::client::EmbeddedStreamClient::new(self.broker.clone())
            .list_shards(&self.stream_name, None)
            .await
    }
}

#[cfg(feature = "embedded")]
fn embedded_outcome(result: broker::engine::PutRecordsResultEntry) -> PutOutcome {
    match (result.error_code, result.shard_id, result.sequence_number) {
        (None, Some(shard_id), Some(sequence_number)) => PutOutcome::Accepted {
            shard_id: shard_id.to_string(),
            sequence_number: sequence_number.to_string(),
        },
        (error_code, _, _) => PutOutcome::Failed {
            error_code: error_code.unwrap_or_else(|| "InternalFailure".to_owned()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_records_answers_decode_per_entry() {
        let answer = json!({"FailedRecordCount": 1, "Records": [
            {"SequenceNumber": "495903382714902566085596925383615710959215759891365", "ShardId": "shardId-000000000001"},
            {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard"},
        ]});
        let outcomes = put_outcomes(&answer, 2).expect("decodes");
        assert_eq!(
            outcomes,
            vec![
                PutOutcome::Accepted {
                    shard_id: "shardId-000000000001".into(),
                    sequence_number: "495903382714902566085596925383615710959215759891365".into(),
                },
                PutOutcome::Failed {
                    error_code: "ProvisionedThroughputExceededException".into(),
                },
            ]
        );
        assert!(
            put_outcomes(&answer, 3).is_err(),
            "a count mismatch is an error"
        );
        assert!(put_outcomes(&json!({}), 0).is_err());
    }
}
