//! Aggregates written by our `KplProducer` are readable by AWS's own de-aggregator, the Python
//! `aws_kinesis_agg` package (`pip install aws_kinesis_agg`; `.ci/run` installs it). Without
//! python3 or the package the test is skipped with a loud message.

#[path = "../../kcl-core/tests/support/missing_tool.rs"]
mod missing_tool;

use broker::engine::{Broker, BrokerConfig, CreateStreamInput};
use kcl_core::kinesis::StartingPosition;
use kcl_core::stream_client::StreamClient;
use kcl_worker::client::EmbeddedStreamClient;
use kcl_worker::kpl::deaggregate;
use kcl_worker::producer::{EmbeddedTarget, KplProducer, KplProducerConfig, UserRecord};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;

const STREAM: &str = "kpl-interop";

/// A user record as `aws_kinesis_agg` returned it: partition key, data, sequence number,
/// sub-sequence number, explicit hash key.
type TheirRecord = (String, Vec<u8>, String, u64, Option<String>);

fn fixture() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/kpl_deaggregate.py")
}

/// Why the test cannot run here, if it cannot.
fn missing_python_package() -> Option<String> {
    match Command::new("python3")
        .args(["-c", "import aws_kinesis_agg"])
        .output()
    {
        Err(error) => Some(format!("python3 is not installed ({error})")),
        Ok(output) if !output.status.success() => Some(format!(
            "the python package aws_kinesis_agg is missing (pip install aws_kinesis_agg): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Ok(_) => None,
    }
}

/// The user records the test sends: varied keys (some non-ASCII), some explicit hash keys, and
/// payloads of varied length including empty and binary.
fn user_records() -> Vec<UserRecord> {
    (0..3_000u32)
        .map(|index| {
            let key = match index % 4 {
                0 => format!("key-{}", index % 97),
                1 => format!("clé-{}", index % 13),
                2 => format!("{index}"),
                _ => "same".to_owned(),
            };
            let data: Vec<u8> = (0..(index % 300))
                .map(|byte| (byte * 7 + index) as u8)
                .collect();
            let record = UserRecord::new(key, data);
            if index % 5 == 0 {
                record.with_explicit_hash_key(u128::from(index) << 100)
            } else {
                record
            }
        })
        .collect()
}

/// Produces the records with aggregation into an in-process broker and returns the stored
/// Kinesis records as JSON, plus what our own consumer de-aggregates from them.
async fn produce(records: &[UserRecord]) -> (Vec<Value>, Vec<(String, Vec<u8>, String, u64)>) {
    let broker = Broker::new(BrokerConfig::unlimited());
    broker
        .create_stream(CreateStreamInput {
            stream_name: STREAM.to_owned(),
            shard_count: Some(2),
            ..CreateStreamInput::default()
        })
        .await
        .expect("stream");
    let producer = KplProducer::start(
        Arc::new(EmbeddedTarget::new(broker.clone(), STREAM)),
        KplProducerConfig::default(),
    )
    .expect("producer");
    let mut receipts = Vec::new();
    for record in records {
        receipts.push(producer.send(record.clone()).await.expect("send"));
    }
    for receipt in receipts {
        receipt.await.expect("stored");
    }
    let stats = producer.stats();
    producer.shutdown().await.expect("shutdown");
    assert!(stats.aggregation_ratio() > 10.0, "{stats:?}");
    let client = EmbeddedStreamClient::new(broker);
    let mut raw = Vec::new();
    let mut ours = Vec::new();
    for shard in client.list_shards(STREAM, None).await.expect("shards") {
        let iterator = client
            .get_shard_iterator(STREAM, &shard.shard_id, StartingPosition::TrimHorizon)
            .await
            .expect("iterator");
        let output = client
            .get_records(&iterator, 10_000)
            .await
            .expect("records");
        for record in output.records {
            raw.push(json!({
                "data": to_hex(&record.data),
                "partitionKey": &*record.partition_key,
                "sequenceNumber": record.sequence_number.to_string(),
            }));
            for user in deaggregate(record, Some(shard.hash_key_range)) {
                ours.push((
                    user.partition_key.to_string(),
                    user.data.to_vec(),
                    user.sequence_number.to_string(),
                    user.sub_sequence_number,
                ));
            }
        }
    }
    (raw, ours)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn aws_kinesis_agg_reads_our_aggregates() {
    if let Some(reason) = missing_python_package() {
        missing_tool::skip_for_missing_tool("aws_kinesis_agg_reads_our_aggregates", &reason);
        return;
    }
    let records = user_records();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (raw, ours) = runtime.block_on(produce(&records));
    let mut child = Command::new("python3")
        .arg(fixture())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(Value::Array(raw).to_string().as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("python3 finishes");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs: Vec<TheirRecord> = String::from_utf8(output.stdout)
        .expect("utf8")
        .lines()
        .map(|line| {
            let user: Value = serde_json::from_str(line).expect("json");
            (
                user["partitionKey"].as_str().expect("key").to_owned(),
                unhex(user["data"].as_str().expect("data")),
                user["sequenceNumber"].as_str().expect("seq").to_owned(),
                user["subSequenceNumber"]
                    .as_u64()
                    .expect("aggregated record"),
                user["explicitHashKey"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(theirs.len(), records.len(), "every user record, none twice");
    // The same user records, sequence and sub-sequence numbers as our consumer reads.
    let mut theirs_keyed: Vec<(String, Vec<u8>, String, u64)> = theirs
        .iter()
        .map(|(key, data, seq, sub, _)| (key.clone(), data.clone(), seq.clone(), *sub))
        .collect();
    let mut ours = ours;
    theirs_keyed.sort();
    ours.sort();
    assert_eq!(theirs_keyed, ours);
    // And exactly the records that were sent, explicit hash keys included.
    let mut sent: BTreeMap<(String, Vec<u8>), usize> = BTreeMap::new();
    for record in &records {
        *sent
            .entry((record.partition_key.clone(), record.data.to_vec()))
            .or_default() += 1;
    }
    let mut received: BTreeMap<(String, Vec<u8>), usize> = BTreeMap::new();
    for (key, data, _, _, explicit_hash_key) in &theirs {
        *received.entry((key.clone(), data.clone())).or_default() += 1;
        let expected = records
            .iter()
            .find(|record| &record.partition_key == key && record.data[..] == data[..])
            .and_then(|record| record.explicit_hash_key)
            .map(|hash_key| hash_key.to_string());
        if expected.is_some() {
            assert_eq!(explicit_hash_key, &expected, "{key}");
        }
    }
    assert_eq!(received, sent);
}
