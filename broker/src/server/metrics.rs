//! The server's metrics: the one place it records into the `metrics` facade.
//!
//! The library never installs a recorder (without one every call is a no-op); the
//! `kinesis-broker` binary installs the Prometheus exporter with `--metrics-listen`. Names
//! follow Prometheus conventions: `kcl_broker_` prefix, `_total` counters, seconds.

use crate::engine::{PutRecordsInput, StreamRef};
use kcl_core::kinesis::Record;
use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use std::time::Duration;

/// Requests answered (counter; labels `operation`, `error_type`, which is `none` on success).
pub const REQUESTS: &str = "kcl_broker_requests_total";
/// Time to answer a request (histogram; label `operation`).
pub const REQUEST_SECONDS: &str = "kcl_broker_request_duration_seconds";
/// Requests refused for throughput or rate limits (counter; label `operation`).
pub const THROTTLED_REQUESTS: &str = "kcl_broker_throttled_requests_total";
/// `PutRecords` entries refused for throughput (counter; label `stream`).
pub const THROTTLED_RECORDS: &str = "kcl_broker_throttled_records_total";
/// Records accepted by `PutRecord`/`PutRecords` (counter; label `stream`).
pub const RECORDS_IN: &str = "kcl_broker_records_in_total";
/// Bytes (data + partition key) of those records (counter; label `stream`).
pub const BYTES_IN: &str = "kcl_broker_bytes_in_total";
/// Records returned by `GetRecords` (counter; label `stream`).
pub const RECORDS_OUT: &str = "kcl_broker_records_out_total";
/// Bytes (data + partition key) of those records (counter; label `stream`).
pub const BYTES_OUT: &str = "kcl_broker_bytes_out_total";
/// `SubscribeToShard` event streams open now (gauge).
pub const OPEN_SUBSCRIPTIONS: &str = "kcl_broker_fanout_subscriptions_open";

/// Describes the server's series (and the storage writer's) to the installed recorder.
pub fn describe() {
    describe_counter!(
        REQUESTS,
        Unit::Count,
        "requests answered, by operation and error type"
    );
    describe_histogram!(REQUEST_SECONDS, Unit::Seconds, "time to answer a request");
    describe_counter!(
        THROTTLED_REQUESTS,
        Unit::Count,
        "requests refused for limits"
    );
    describe_counter!(
        THROTTLED_RECORDS,
        Unit::Count,
        "PutRecords entries refused for throughput"
    );
    describe_counter!(RECORDS_IN, Unit::Count, "records accepted");
    describe_counter!(BYTES_IN, Unit::Bytes, "bytes accepted");
    describe_counter!(RECORDS_OUT, Unit::Count, "records returned by GetRecords");
    describe_counter!(BYTES_OUT, Unit::Bytes, "bytes returned by GetRecords");
    describe_gauge!(
        OPEN_SUBSCRIPTIONS,
        Unit::Count,
        "open SubscribeToShard streams"
    );
    #[cfg(feature = "storage")]
    crate::storage::describe_metrics();
}

/// The stream name of a reference (an ARN that does not parse is its own label).
fn stream_label(stream: &StreamRef) -> String {
    match stream {
        StreamRef::Name(name) => name.clone(),
        StreamRef::Arn(arn) => crate::engine::validate::parse_arn(arn)
            .map_or(arn.as_str(), |parsed| parsed.stream_name)
            .to_owned(),
    }
}

/// One request was answered: `error_type` is the AWS error type, `None` on success.
pub(crate) fn request_answered(operation: &str, error_type: Option<&'static str>, took: Duration) {
    let operation = if operation.is_empty() {
        "unknown"
    } else {
        operation
    };
    let operation = operation.to_owned();
    counter!(REQUESTS, "operation" => operation.clone(), "error_type" => error_type.unwrap_or("none"))
        .increment(1);
    histogram!(REQUEST_SECONDS, "operation" => operation.clone()).record(took.as_secs_f64());
    if matches!(
        error_type,
        Some("ProvisionedThroughputExceededException" | "LimitExceededException")
    ) {
        counter!(THROTTLED_REQUESTS, "operation" => operation).increment(1);
    }
}

/// The size of a `PutRecords` request's entries, measured before the broker takes it.
#[derive(Debug)]
pub(crate) struct PutSizes {
    stream: String,
    entry_bytes: Vec<u64>,
}

/// Measures a `PutRecords` request.
pub(crate) fn put_records_sizes(input: &PutRecordsInput) -> PutSizes {
    PutSizes {
        stream: stream_label(&input.stream),
        entry_bytes: input
            .records
            .iter()
            .map(|entry| (entry.data.len() + entry.partition_key.len()) as u64)
            .collect(),
    }
}

/// A `PutRecords` answered: counts the accepted entries and the throttled ones.
pub(crate) fn records_put(sizes: &PutSizes, output: &crate::engine::PutRecordsOutput) {
    let mut records = 0u64;
    let mut bytes = 0u64;
    let mut throttled = 0u64;
    for (entry, size) in output.records.iter().zip(&sizes.entry_bytes) {
        if entry.is_success() {
            records += 1;
            bytes += size;
        } else if entry.error_code.as_deref() == Some("ProvisionedThroughputExceededException") {
            throttled += 1;
        }
    }
    records_in(&sizes.stream, records, bytes);
    if throttled > 0 {
        counter!(THROTTLED_RECORDS, "stream" => sizes.stream.clone()).increment(throttled);
    }
}

/// A `PutRecord` of `bytes` into `stream` was accepted.
pub(crate) fn record_put(stream: &StreamRef, bytes: usize) {
    records_in(&stream_label(stream), 1, bytes as u64);
}

fn records_in(stream: &str, records: u64, bytes: u64) {
    counter!(RECORDS_IN, "stream" => stream.to_owned()).increment(records);
    counter!(BYTES_IN, "stream" => stream.to_owned()).increment(bytes);
}

/// `GetRecords` returned `records` of `stream` (`None`: not known, not counted).
pub(crate) fn records_got(stream: String, records: &[Record]) {
    let bytes: usize = records
        .iter()
        .map(|record| record.data.len() + record.partition_key.len())
        .sum();
    counter!(RECORDS_OUT, "stream" => stream.clone()).increment(records.len() as u64);
    counter!(BYTES_OUT, "stream" => stream).increment(bytes as u64);
}

/// Counts an open `SubscribeToShard` stream while it lives.
#[derive(Debug)]
pub(crate) struct OpenSubscription(());

impl OpenSubscription {
    pub(crate) fn opened() -> Self {
        gauge!(OPEN_SUBSCRIPTIONS).increment(1.0);
        OpenSubscription(())
    }
}

impl Drop for OpenSubscription {
    fn drop(&mut self) {
        gauge!(OPEN_SUBSCRIPTIONS).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_labels_are_names() {
        let cases = [
            (StreamRef::name("orders"), "orders"),
            (
                StreamRef::arn("arn:aws:kinesis:us-east-1:000000000000:stream/orders"),
                "orders",
            ),
            (StreamRef::arn("not-an-arn"), "not-an-arn"),
        ];
        for (stream, expected) in cases {
            assert_eq!(stream_label(&stream), expected, "{stream:?}");
        }
    }
}
