//! The real `kinesis-broker` binary with `--data-dir`: acknowledged records survive SIGKILL,
//! and a damaged log tail is reported and cut off at restart.

mod broker_process;

use broker_process::start_broker;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn call(
    http: &reqwest::Client,
    endpoint: &str,
    operation: &str,
    body: Value,
) -> Result<Value, String> {
    let response = http
        .post(endpoint)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("Kinesis_20131202.{operation}"))
        // Signed in form (as AWS requires); the broker checks no signature without --auth-keys.
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/kinesis/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=00",
        )
        .header("x-amz-date", "20260101T000000Z")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let text = response.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// Every record of the stream, per shard, in read order: (sequence number, data).
async fn read_all(
    http: &reqwest::Client,
    endpoint: &str,
    stream: &str,
) -> BTreeMap<String, Vec<(String, String)>> {
    let shards = call(http, endpoint, "ListShards", json!({"StreamName": stream}))
        .await
        .unwrap();
    let mut all = BTreeMap::new();
    for shard in shards["Shards"].as_array().unwrap() {
        let shard_id = shard["ShardId"].as_str().unwrap().to_string();
        let iterator = call(
            http,
            endpoint,
            "GetShardIterator",
            json!({"StreamName": stream, "ShardId": shard_id, "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await
        .unwrap();
        let mut iterator = iterator["ShardIterator"].as_str().map(str::to_string);
        let mut records = Vec::new();
        while let Some(current) = iterator {
            let page = call(
                http,
                endpoint,
                "GetRecords",
                json!({"ShardIterator": current}),
            )
            .await
            .unwrap();
            let page_records = page["Records"].as_array().unwrap();
            for record in page_records {
                records.push((
                    record["SequenceNumber"].as_str().unwrap().to_string(),
                    record["Data"].as_str().unwrap().to_string(),
                ));
            }
            if page_records.is_empty() {
                break;
            }
            iterator = page["NextShardIterator"].as_str().map(str::to_string);
        }
        all.insert(shard_id, records);
    }
    all
}

/// An acknowledged record: shard, sequence number, base64 data.
type Ack = (String, String, String);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let http = reqwest::Client::new();
    let mut process = start_broker(
        &data_dir,
        &dir.path().join("first.log"),
        &["--no-throughput-limits"],
    )
    .await;
    call(
        &http,
        &process.endpoint,
        "CreateStream",
        json!({"StreamName": "durable", "ShardCount": 3}),
    )
    .await
    .unwrap();

    // Writers stream PutRecords and remember what was acknowledged, in acknowledgement order.
    let acknowledged: Arc<Mutex<Vec<Vec<Ack>>>> = Arc::new(Mutex::new(vec![Vec::new(); 4]));
    let mut writers = Vec::new();
    for writer in 0..4usize {
        let http = http.clone();
        let endpoint = process.endpoint.clone();
        let acknowledged = Arc::clone(&acknowledged);
        writers.push(tokio::spawn(async move {
            for batch in 0u64.. {
                let records: Vec<Value> = (0..10)
                    .map(|i| {
                        let data = format!("w{writer}-b{batch}-r{i}");
                        json!({"PartitionKey": format!("writer-{writer}"),
                               "Data": base64_encode(data.as_bytes())})
                    })
                    .collect();
                let body = json!({"StreamName": "durable", "Records": records.clone()});
                let Ok(answer) = call(&http, &endpoint, "PutRecords", body).await else {
                    return; // the broker is gone
                };
                let mut acks = acknowledged.lock().unwrap();
                for (result, sent) in answer["Records"].as_array().unwrap().iter().zip(&records) {
                    if let Some(sequence) = result["SequenceNumber"].as_str() {
                        acks[writer].push((
                            result["ShardId"].as_str().unwrap().to_string(),
                            sequence.to_string(),
                            sent["Data"].as_str().unwrap().to_string(),
                        ));
                    }
                }
            }
        }));
    }
    // Kill once enough has been acknowledged, while writes are still in flight.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let total: usize = acknowledged.lock().unwrap().iter().map(Vec::len).sum();
        if total >= 400 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "writers made no progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = Pid::from_raw(process.child.id().unwrap() as i32);
    kill(pid, Signal::SIGKILL).unwrap();
    process.child.wait().await.unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    let process = start_broker(
        &data_dir,
        &dir.path().join("second.log"),
        &["--no-throughput-limits"],
    )
    .await;
    let recovered = read_all(&http, &process.endpoint, "durable").await;
    for (writer, acks) in acknowledged.iter().enumerate() {
        assert!(!acks.is_empty(), "writer {writer} got acknowledgements");
        let shard = &acks[0].0;
        let records = &recovered[shard];
        // Every acknowledged record is there, with its sequence number and data, in order.
        let mut position = 0;
        for (ack_shard, sequence, data) in acks {
            assert_eq!(ack_shard, shard, "one partition key, one shard");
            let found = records[position..]
                .iter()
                .position(|(s, d)| s == sequence && d == data)
                .unwrap_or_else(|| {
                    panic!("acknowledged record {sequence} of writer {writer} lost")
                });
            position += found + 1;
        }
    }
    // Sequence numbers still increase within each shard after recovery.
    for records in recovered.values() {
        for pair in records.windows(2) {
            assert!(numeric_less(&pair[0].0, &pair[1].0), "{pair:?}");
        }
    }
    // The restarted broker keeps accepting writes after the recovered ones.
    let put = call(
        &http,
        &process.endpoint,
        "PutRecord",
        json!({"StreamName": "durable", "PartitionKey": "writer-0", "Data": "YWZ0ZXI="}),
    )
    .await
    .unwrap();
    let last_before = acknowledged[0].last().unwrap();
    assert!(numeric_less(
        &last_before.1,
        put["SequenceNumber"].as_str().unwrap()
    ));
}

fn numeric_less(a: &str, b: &str) -> bool {
    (a.len(), a) < (b.len(), b)
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_log_tail_is_reported_and_cut() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let http = reqwest::Client::new();
    let mut process = start_broker(
        &data_dir,
        &dir.path().join("first.log"),
        &["--no-throughput-limits"],
    )
    .await;
    call(
        &http,
        &process.endpoint,
        "CreateStream",
        json!({"StreamName": "s", "ShardCount": 1}),
    )
    .await
    .unwrap();
    let mut sequences = Vec::new();
    for i in 0..5 {
        let put = call(
            &http,
            &process.endpoint,
            "PutRecord",
            json!({"StreamName": "s", "PartitionKey": "k", "Data": base64_encode(format!("r{i}").as_bytes())}),
        )
        .await
        .unwrap();
        sequences.push(put["SequenceNumber"].as_str().unwrap().to_string());
    }
    // A clean stop (SIGTERM), then garbage after the last frame, as a torn write leaves it.
    kill(
        Pid::from_raw(process.child.id().unwrap() as i32),
        Signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), process.child.wait())
        .await
        .expect("SIGTERM stops the broker")
        .unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let segment = data_dir.join("log").join(format!("{:020}.log", 1));
    let intact_length = std::fs::metadata(&segment).unwrap().len();
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes.extend_from_slice(&[0x10, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3]);
    std::fs::write(&segment, &bytes).unwrap();

    let log_file = dir.path().join("second.log");
    let process = start_broker(&data_dir, &log_file, &["--no-throughput-limits"]).await;
    let log = std::fs::read_to_string(&log_file).unwrap();
    assert!(
        log.contains("recovery truncated"),
        "recovery is reported: {log}"
    );
    assert!(log.contains("dropped_bytes=11"), "{log}");
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), intact_length);
    let recovered = read_all(&http, &process.endpoint, "s").await;
    let recovered: Vec<String> = recovered
        .values()
        .flatten()
        .map(|(sequence, _)| sequence.clone())
        .collect();
    assert_eq!(recovered, sequences);
}
