//! End-to-end deliveries over an in-process broker, kcl-worker's consumer, a real SQLite
//! lease file and a local directory: order, layout, compression, buffering hints,
//! transformation, dynamic partitioning and restarts.

#[path = "../../kcl-core/tests/support/missing_tool.rs"]
mod missing_tool;
mod support;

use firehose::layout::UtcTime;
use firehose::{BufferingHints, Compression, DynamicPartitioning, Processing, S3Destination};
use kcl_core::clock::{SystemClock, TokioClock};
use kcl_core::kinesis::EpochMillis;
use std::collections::BTreeSet;
use std::time::Duration;
use support::*;

fn destination(size_mib: u32, interval_secs: u32, compression: Compression) -> S3Destination {
    S3Destination {
        compression,
        buffering: BufferingHints {
            size_mib,
            interval_secs,
        },
        ..S3Destination::new("bucket")
    }
}

/// The data lines of every object, files ordered by their first line.
fn delivered_lines(objects: &[(String, Vec<u8>)]) -> Vec<Vec<u8>> {
    let mut bodies: Vec<&Vec<u8>> = objects.iter().map(|(_, body)| body).collect();
    bodies.sort();
    bodies.iter().flat_map(|body| lines(body)).collect()
}

fn count_lines(objects: &[(String, Vec<u8>)]) -> usize {
    objects.iter().map(|(_, body)| lines(body).len()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_delivered_in_order_under_the_documented_keys() -> anyhow::Result<()> {
    let rig = Rig::new(SystemClock::shared(), 1, Leases::Sqlite).await?;
    let records = numbered(2_000);
    let first_arrival = rig.clock.wall();
    rig.put(&records).await?;
    let delivery = rig
        .start("orders", destination(1, 1, Compression::Uncompressed))
        .await?;
    wait_until("all records delivered", Duration::from_secs(600), || {
        count_lines(&objects(&rig.out(), "bucket")) >= records.len()
    })
    .await;
    let objects = objects(&rig.out(), "bucket");
    // Concatenated without delimiters: the files are exactly the records, in order, once.
    assert_eq!(delivered_lines(&objects), records);
    // Default prefix YYYY/MM/DD/HH/ (UTC of the first record's arrival), then the name.
    let time = UtcTime::from_millis(first_arrival);
    let prefix = format!(
        "{:04}/{:02}/{:02}/{:02}/",
        time.year, time.month, time.day, time.hour
    );
    for (key, _) in &objects {
        let name = key
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{key} is not under {prefix}"));
        assert_object_name(name, "orders", 1, "");
    }
    // An object is visible once renamed, a moment before its put returns and is counted.
    wait_until(
        "the stats count every record",
        Duration::from_secs(600),
        || delivery.stats().records_delivered >= records.len() as u64,
    )
    .await;
    let stats = delivery.stats();
    assert_eq!(stats.records_delivered, records.len() as u64);
    assert_eq!(stats.files, objects.len() as u64);
    delivery.shutdown().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn gzip_objects_round_trip_and_flush_at_the_size_hint() -> anyhow::Result<()> {
    let rig = Rig::new(TokioClock::shared(), 1, Leases::Memory).await?;
    // 3.5 MiB of 64 KiB records: three objects by size, the rest by the (long) interval.
    let records: Vec<Vec<u8>> = (0..56)
        .map(|i| {
            let mut record = format!("rec-{i:06}:").into_bytes();
            record.resize(64 * 1024 - 1, b'a' + (i % 26) as u8);
            record.push(b'\n');
            record
        })
        .collect();
    rig.put(&records).await?;
    let started = tokio::time::Instant::now();
    let delivery = rig
        .start("zipped", destination(1, 900, Compression::Gzip))
        .await?;
    wait_until("three objects by size", Duration::from_secs(600), || {
        delivery.stats().files >= 3
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(900),
        "size flushes do not wait for the interval"
    );
    let by_size = objects(&rig.out(), "bucket");
    for (key, body) in &by_size {
        assert_object_name(
            key.rsplit('/').next().unwrap_or_default(),
            "zipped",
            1,
            ".gz",
        );
        assert_eq!(
            body.len(),
            1024 * 1024,
            "{key}: a size flush holds the first 16 records that reach 1 MiB"
        );
    }
    wait_until("the rest by interval", Duration::from_secs(2_000), || {
        delivery.stats().records_delivered >= records.len() as u64
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(900),
        "the last object waited for the interval"
    );
    let all = objects(&rig.out(), "bucket");
    assert_eq!(all.len(), 4);
    assert_eq!(delivered_lines(&all), records);
    assert!(
        delivery.stats().bytes < 100 * 1024,
        "compressed (repetitive data)"
    );
    delivery.shutdown().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_small_buffer_waits_for_the_interval_hint() -> anyhow::Result<()> {
    let rig = Rig::new(TokioClock::shared(), 1, Leases::Memory).await?;
    let delivery = rig
        .start("slow", destination(5, 120, Compression::Uncompressed))
        .await?;
    rig.put(&numbered(3)).await?;
    wait_until("the records buffered", Duration::from_secs(600), || {
        delivery.stats().records_in == 3
    })
    .await;
    let buffered_at = tokio::time::Instant::now();
    assert!(
        objects(&rig.out(), "bucket").is_empty(),
        "3 records are far below the size hint"
    );
    wait_until("the object", Duration::from_secs(600), || {
        !objects(&rig.out(), "bucket").is_empty()
    })
    .await;
    let waited = buffered_at.elapsed();
    // (tokio's paused time: exact, not wall-clock speed.) The buffer opened at most one poll
    // (100 ms) before `buffered_at`; an empty call comes every second of idleness.
    assert!(
        waited >= Duration::from_millis(119_800),
        "flushed after {waited:?}, before the interval"
    );
    assert!(
        waited <= Duration::from_millis(121_200),
        "flushed {waited:?} after buffering, not at the interval"
    );
    assert_eq!(delivered_lines(&objects(&rig.out(), "bucket")), numbered(3));
    delivery.shutdown().await;
    Ok(())
}

/// A transformation that upper-cases records, drops those containing "drop" and fails those
/// containing "fail".
const TRANSFORM_PY: &str = r#"
import base64, json, sys
request = json.load(sys.stdin)
out = []
for record in request["records"]:
    data = base64.b64decode(record["data"])
    if b"drop" in data:
        out.append({"recordId": record["recordId"], "result": "Dropped"})
    elif b"fail" in data:
        out.append({"recordId": record["recordId"], "result": "ProcessingFailed", "data": record["data"]})
    else:
        out.append({"recordId": record["recordId"], "result": "Ok", "data": base64.b64encode(data.upper()).decode()})
json.dump({"records": out}, sys.stdout)
"#;

fn python3_available() -> bool {
    std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transformation_drops_and_fails_records_into_the_error_prefix() -> anyhow::Result<()> {
    if !python3_available() {
        missing_tool::skip_for_missing_tool("transformation test", "python3 is not installed");
        return Ok(());
    }
    let rig = Rig::new(SystemClock::shared(), 1, Leases::Sqlite).await?;
    let script = rig.dir.path().join("transform.py");
    std::fs::write(&script, TRANSFORM_PY)?;
    let records: Vec<Vec<u8>> = (0..300)
        .map(|i| {
            let kind = match i % 10 {
                3 => "drop",
                7 => "fail",
                _ => "keep",
            };
            format!("rec-{i:06}-{kind}\n").into_bytes()
        })
        .collect();
    rig.put(&records).await?;
    let lambda_arn = "arn:aws:lambda:us-east-1:000000000000:function:upper";
    let delivery = rig
        .start(
            "transformed",
            S3Destination {
                processing: Some(Processing {
                    function_arn: lambda_arn.into(),
                    command: vec!["python3".into(), script.display().to_string()],
                    retries: 1,
                }),
                ..destination(1, 0, Compression::Uncompressed)
            },
        )
        .await?;
    let kept: Vec<Vec<u8>> = records
        .iter()
        .filter(|r| r.ends_with(b"keep\n"))
        .map(|r| r.to_ascii_uppercase())
        .collect();
    let failed: Vec<&Vec<u8>> = records.iter().filter(|r| r.ends_with(b"fail\n")).collect();
    wait_until("every record handled", Duration::from_secs(120), || {
        let stats = delivery.stats();
        stats.records_delivered as usize >= kept.len()
            && stats.records_failed as usize >= failed.len()
    })
    .await;
    let all = objects(&rig.out(), "bucket");
    let (errors, data): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|(key, _)| key.starts_with("processing-failed/"));
    assert_eq!(
        delivered_lines(&data),
        kept,
        "Ok records transformed, in order; dropped ones gone"
    );
    // Error objects: JSON lines in Firehose's format, the original data in rawData.
    let mut raw_failed = Vec::new();
    for (key, body) in &errors {
        let time = key.strip_prefix("processing-failed/").unwrap_or_default();
        assert_eq!(
            time.split('/').count(),
            5,
            "processing-failed/YYYY/MM/DD/HH/NAME: {key}"
        );
        for line in lines(body) {
            let value: serde_json::Value = serde_json::from_slice(&line)?;
            assert_eq!(value["errorCode"], "Lambda.ProcessingFailed");
            assert_eq!(value["lambdaArn"], lambda_arn);
            assert_eq!(value["attemptsMade"], 1);
            assert!(value["arrivalTimestamp"].as_i64().is_some_and(|t| t > 0));
            assert!(value["attemptEndingTimestamp"].as_i64() >= value["arrivalTimestamp"].as_i64());
            assert!(value["errorMessage"].is_string());
            use base64::Engine;
            raw_failed.push(
                base64::engine::general_purpose::STANDARD
                    .decode(value["rawData"].as_str().unwrap_or_default())?,
            );
        }
    }
    raw_failed.sort();
    assert_eq!(raw_failed.iter().collect::<Vec<_>>(), failed);
    let stats = delivery.stats();
    assert_eq!(stats.records_dropped, 30);
    delivery.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_transformation_sends_the_batch_to_the_error_prefix_after_retries()
-> anyhow::Result<()> {
    let rig = Rig::new(SystemClock::shared(), 1, Leases::Sqlite).await?;
    rig.put(&numbered(20)).await?;
    let delivery = rig
        .start(
            "broken",
            S3Destination {
                processing: Some(Processing {
                    function_arn: "arn:aws:lambda:us-east-1:000000000000:function:broken".into(),
                    command: vec![
                        "sh".into(),
                        "-c".into(),
                        "cat >/dev/null; echo oops >&2; exit 2".into(),
                    ],
                    retries: 2,
                }),
                error_output_prefix: Some("errors/!{firehose:error-output-type}/".into()),
                ..destination(1, 0, Compression::Uncompressed)
            },
        )
        .await?;
    wait_until("all failed", Duration::from_secs(120), || {
        delivery.stats().records_failed >= 20
    })
    .await;
    let all = objects(&rig.out(), "bucket");
    assert!(
        all.iter()
            .all(|(key, _)| key.starts_with("errors/processing-failed/")),
        "{all:?}"
    );
    let mut raw = Vec::new();
    for (_, body) in &all {
        for line in lines(body) {
            let value: serde_json::Value = serde_json::from_slice(&line)?;
            assert_eq!(value["attemptsMade"], 3, "1 + 2 retries");
            assert_eq!(value["errorCode"], "Lambda.FunctionError");
            assert!(
                value["errorMessage"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("oops")
            );
            use base64::Engine;
            raw.push(
                base64::engine::general_purpose::STANDARD
                    .decode(value["rawData"].as_str().unwrap_or_default())?,
            );
        }
    }
    raw.sort();
    assert_eq!(raw, numbered(20));
    assert_eq!(delivery.stats().records_delivered, 0);
    delivery.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_partitioning_writes_one_prefix_per_key_value() -> anyhow::Result<()> {
    let rig = Rig::new(SystemClock::shared(), 1, Leases::Sqlite).await?;
    let customers = ["acme", "globex", "initech"];
    let mut records: Vec<Vec<u8>> = (0..300)
        .map(|i| {
            format!(
                "{{\"customer\":{{\"id\":\"{}\"}},\"n\":{i}}}\n",
                customers[i % 3]
            )
            .into_bytes()
        })
        .collect();
    records.push(b"not json\n".to_vec());
    records.push(b"{\"customer\":{}}\n".to_vec());
    rig.put(&records).await?;
    let delivery = rig
        .start(
            "partitioned",
            S3Destination {
                prefix: Some(
                    "customer=!{partitionKeyFromQuery:customer}/!{timestamp:yyyy}/".into(),
                ),
                error_output_prefix: Some("errors/!{firehose:error-output-type}/".into()),
                dynamic_partitioning: Some(DynamicPartitioning::parse_jq(
                    "{customer: .customer.id}",
                )?),
                ..destination(64, 1, Compression::Uncompressed)
            },
        )
        .await?;
    wait_until(
        "all partitions and errors",
        Duration::from_secs(600),
        || {
            let stats = delivery.stats();
            stats.records_delivered >= 300 && stats.records_failed >= 2
        },
    )
    .await;
    let all = objects(&rig.out(), "bucket");
    let year = UtcTime::from_millis(rig.clock.wall()).year;
    for customer in customers {
        let prefix = format!("customer={customer}/{year:04}/");
        let mine: Vec<_> = all
            .iter()
            .filter(|(key, _)| key.starts_with(&prefix))
            .cloned()
            .collect();
        let expected: Vec<Vec<u8>> = records
            .iter()
            .filter(|r| r.starts_with(format!("{{\"customer\":{{\"id\":\"{customer}\"").as_bytes()))
            .cloned()
            .collect();
        assert_eq!(delivered_lines(&mine), expected, "{customer}");
    }
    let errors: Vec<_> = all
        .iter()
        .filter(|(key, _)| key.starts_with("errors/partitioning-failed/"))
        .collect();
    let failed_lines: usize = errors.iter().map(|(_, body)| lines(body).len()).sum();
    assert_eq!(failed_lines, 2);
    assert_eq!(
        all.len(),
        customers.len() + errors.len(),
        "nothing else was written"
    );
    delivery.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_stopped_midway_resumes_and_loses_nothing() -> anyhow::Result<()> {
    let rig = Rig::new(SystemClock::shared(), 2, Leases::Sqlite).await?;
    // 10 KiB records over two shards (random partition keys spread them).
    let record = |i: usize| {
        let mut data = format!("rec-{i:06}:").into_bytes();
        data.resize(10 * 1024 - 1, b'x');
        data.push(b'\n');
        data
    };
    let put_spread = |range: std::ops::Range<usize>| {
        let broker = rig.broker.clone();
        async move {
            for i in range {
                broker
                    .put_record(broker::engine::PutRecordInput {
                        stream: broker::engine::StreamRef::name("source"),
                        data: record(i).into(),
                        partition_key: format!("key-{i}"),
                        explicit_hash_key: None,
                        sequence_number_for_ordering: None,
                    })
                    .await?;
            }
            anyhow::Ok(())
        }
    };
    put_spread(0..400).await?;
    let first = rig
        .start("resumed", destination(1, 900, Compression::Gzip))
        .await?;
    // Stop after some objects were written by size, while the rest is still buffered.
    wait_until("some objects", Duration::from_secs(600), || {
        first.stats().files >= 2
    })
    .await;
    first.shutdown().await;
    let before_restart = count_lines(&objects(&rig.out(), "bucket"));
    assert!(
        before_restart < 400,
        "the stop came before everything was delivered"
    );
    put_spread(400..600).await?;
    let second = rig
        .start("resumed", destination(1, 1, Compression::Gzip))
        .await?;
    let expected: BTreeSet<Vec<u8>> = (0..600).map(record).collect();
    wait_until(
        "every record after the restart",
        Duration::from_secs(900),
        || {
            let delivered: BTreeSet<Vec<u8>> = objects(&rig.out(), "bucket")
                .iter()
                .flat_map(|(_, body)| lines(body))
                .collect();
            delivered.is_superset(&expected)
        },
    )
    .await;
    // Every object is in order (per shard a file is one contiguous, increasing run).
    for (key, body) in objects(&rig.out(), "bucket") {
        let body_lines = lines(&body);
        assert!(
            body_lines.windows(2).all(|pair| pair[0] < pair[1]),
            "{key} out of order"
        );
    }
    second.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_updated_destination_applies_from_the_next_object() -> anyhow::Result<()> {
    let rig = Rig::new(SystemClock::shared(), 1, Leases::Sqlite).await?;
    let delivery = rig
        .start("updated", destination(1, 900, Compression::Uncompressed))
        .await?;
    rig.put(&numbered(10)).await?;
    wait_until("records buffered", Duration::from_secs(120), || {
        delivery.stats().records_in >= 10
    })
    .await;
    assert!(
        objects(&rig.out(), "bucket").is_empty(),
        "10 small records wait for 900 s"
    );
    delivery.update_destination(S3Destination {
        prefix: Some("v2/".into()),
        ..destination(1, 1, Compression::Gzip)
    });
    assert_eq!(delivery.config().version_id, 2);
    wait_until(
        "the object under the new settings",
        Duration::from_secs(120),
        || delivery.stats().records_delivered >= 10,
    )
    .await;
    let all = objects(&rig.out(), "bucket");
    assert_eq!(all.len(), 1);
    let (key, body) = &all[0];
    let name = key.strip_prefix("v2/").unwrap_or_else(|| panic!("{key}"));
    // A static prefix gets the default time prefix appended.
    assert_eq!(name.split('/').count(), 5, "{key}");
    assert_object_name(
        name.rsplit('/').next().unwrap_or_default(),
        "updated",
        2,
        ".gz",
    );
    assert_eq!(lines(body), numbered(10));
    delivery.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sink_is_retried_until_it_works_and_nothing_is_lost() -> anyhow::Result<()> {
    let rig = Rig::new(SystemClock::shared(), 1, Leases::Sqlite).await?;
    // The sink's root is a regular file: every put fails (not a directory).
    std::fs::write(rig.out(), b"in the way")?;
    rig.put(&numbered(50)).await?;
    let delivery = rig
        .start("retried", destination(1, 1, Compression::Uncompressed))
        .await?;
    wait_until(
        "records read while the sink fails",
        Duration::from_secs(120),
        || delivery.stats().records_in >= 50,
    )
    .await;
    assert_eq!(delivery.stats().files, 0);
    std::fs::remove_file(rig.out())?;
    wait_until(
        "delivered once the sink works",
        Duration::from_secs(120),
        || delivery.stats().records_delivered >= 50,
    )
    .await;
    assert_eq!(
        delivered_lines(&objects(&rig.out(), "bucket")),
        numbered(50)
    );
    delivery.shutdown().await;
    Ok(())
}

#[test]
fn object_name_times_are_utc() {
    let time = UtcTime::from_millis(EpochMillis(1_700_000_000_000));
    assert_eq!(
        (time.year, time.month, time.day, time.hour),
        (2023, 11, 14, 22)
    );
}
