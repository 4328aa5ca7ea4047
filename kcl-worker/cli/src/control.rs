//! `kcl stream ...` (the control plane) and `kcl produce`, over a Kinesis HTTP endpoint.

use crate::args::{EndpointArgs, ProduceArgs, StreamArgs, StreamCommand};
use crate::worker::json_api;
use anyhow::Context;
use bytes::Bytes;
use kcl_core::kinesis::{Shard, ShardId};
use kcl_core::stream_client::StreamClient;
use kcl_worker::client::HttpStreamClient;
use kcl_worker::producer::{
    HttpTarget, KplProducer, KplProducerConfig, ProduceError, PutReceipt, UserRecord,
    generated_entry,
};
use serde_json::{Value, json};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The records `kcl produce` writes, one at a time: the lines of a file (or stdin for `-`),
/// streamed without reading the whole input, or generated ones.
enum RecordSource {
    Generated {
        next: u64,
        count: u64,
    },
    Lines {
        lines: tokio::io::Lines<Box<dyn tokio::io::AsyncBufRead + Unpin + Send>>,
        next: u64,
    },
}

impl RecordSource {
    async fn open(args: &ProduceArgs) -> anyhow::Result<RecordSource> {
        use tokio::io::AsyncBufReadExt as _;
        let Some(path) = &args.from_file else {
            return Ok(RecordSource::Generated {
                next: 0,
                count: args.count,
            });
        };
        let reader: Box<dyn tokio::io::AsyncBufRead + Unpin + Send> = if path.as_os_str() == "-" {
            Box::new(tokio::io::BufReader::new(tokio::io::stdin()))
        } else {
            let file = tokio::fs::File::open(path)
                .await
                .with_context(|| format!("opening --from-file {}", path.display()))?;
            Box::new(tokio::io::BufReader::new(file))
        };
        Ok(RecordSource::Lines {
            lines: reader.lines(),
            next: 0,
        })
    }

    /// The next record, or `None` at the end.
    async fn next(&mut self, args: &ProduceArgs) -> anyhow::Result<Option<UserRecord>> {
        let keys = u64::from(args.keys.max(1));
        match self {
            RecordSource::Generated { next, count } => {
                if *next >= *count {
                    return Ok(None);
                }
                let entry = generated_entry(*next, args.size, args.keys);
                *next += 1;
                Ok(Some(UserRecord::new(entry.partition_key, entry.data)))
            }
            RecordSource::Lines { lines, next } => {
                let line = lines
                    .next_line()
                    .await
                    .with_context(|| format!("reading line {} of the input", *next + 1))?;
                let Some(line) = line else {
                    return Ok(None);
                };
                let record = UserRecord::new(format!("key-{}", *next % keys), Bytes::from(line));
                *next += 1;
                Ok(Some(record))
            }
        }
    }
}

fn producer_config(args: &ProduceArgs) -> KplProducerConfig {
    KplProducerConfig {
        aggregate: args.aggregate,
        aggregation_max_bytes: usize::try_from(args.aggregation_max_bytes).unwrap_or(51_200),
        collection_max_records: usize::from(args.batch_size),
        record_max_buffered_time: Duration::from_millis(args.max_buffered_ms),
        record_ttl: Duration::from_secs(args.record_ttl_secs.max(1)),
        ordered: args.ordered,
        ..KplProducerConfig::default()
    }
}

fn progress_bar(args: &ProduceArgs) -> indicatif::ProgressBar {
    if args.no_progress {
        return indicatif::ProgressBar::hidden();
    }
    let (bar, template) = if args.from_file.is_some() {
        (
            indicatif::ProgressBar::new_spinner(),
            "{elapsed_precise} {pos} user records ({per_sec}) {msg}",
        )
    } else {
        (
            indicatif::ProgressBar::new(args.count),
            "{elapsed_precise} [{bar:40}] {pos}/{len} user records ({per_sec}, eta {eta}) {msg}",
        )
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Waits for the receipts in send order: counts stored records, keeps the first failure.
async fn await_receipts(
    mut receipts: tokio::sync::mpsc::Receiver<PutReceipt>,
    producer: KplProducer,
    progress: indicatif::ProgressBar,
    failed: Arc<std::sync::atomic::AtomicBool>,
) -> (u64, u64, Option<ProduceError>) {
    let (mut stored, mut failures, mut first_error) = (0u64, 0u64, None);
    while let Some(receipt) = receipts.recv().await {
        match receipt.await {
            Ok(_) => stored += 1,
            Err(error) => {
                failures += 1;
                failed.store(true, std::sync::atomic::Ordering::Relaxed);
                first_error.get_or_insert(error);
            }
        }
        progress.inc(1);
        if stored % 256 == 0 {
            let stats = producer.stats();
            progress.set_message(format!(
                "-> {} Kinesis records, {} retries",
                stats.kinesis_records_put, stats.retries
            ));
        }
    }
    (stored, failures, first_error)
}

/// Runs `kcl produce`.
pub async fn run_produce(args: ProduceArgs, endpoint: &EndpointArgs) -> anyhow::Result<ExitCode> {
    let api = json_api(endpoint).await?;
    let producer = KplProducer::start(
        Arc::new(HttpTarget::new(api.client().clone(), args.stream.clone())),
        producer_config(&args),
    )?;
    let progress = progress_bar(&args);
    let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (receipt_sender, receipt_receiver) = tokio::sync::mpsc::channel(4_096);
    let waiter = tokio::spawn(await_receipts(
        receipt_receiver,
        producer.clone(),
        progress.clone(),
        failed.clone(),
    ));
    let mut source = RecordSource::open(&args).await?;
    let started = Instant::now();
    let mut sent = 0u64;
    while let Some(record) = source.next(&args).await? {
        if failed.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        if args.rate > 0 {
            let due = started + Duration::from_secs_f64(sent as f64 / f64::from(args.rate));
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        let receipt = producer.send(record).await?;
        sent += 1;
        if receipt_sender.send(receipt).await.is_err() {
            break;
        }
    }
    drop(receipt_sender);
    let (stored, failures, first_error) = waiter.await?;
    let stats = producer.stats();
    producer.shutdown().await?;
    progress.finish_and_clear();
    if let Some(error) = first_error {
        eprintln!("{failures} of {sent} records were not stored");
        return Err(error.into());
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "stored {stored} records in {elapsed:.2} s ({:.0} records/s) into stream {}",
        stored as f64 / elapsed.max(1e-9),
        args.stream
    );
    println!(
        "{} Kinesis records ({:.1} user records each), {} retries, {} throttled",
        stats.kinesis_records_put,
        stats.aggregation_ratio(),
        stats.retries,
        stats.throttles
    );
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_status(
    client: &HttpStreamClient,
    stream: &str,
    wanted: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let summary = client.describe_stream_summary(stream).await?;
        if summary.stream_status == wanted {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "stream {stream} is still {} after 120 s",
            summary.stream_status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The first hash key of the upper child when splitting `shard` in the middle.
pub fn middle_hash_key(shard: &Shard) -> u128 {
    let range = shard.hash_key_range;
    range.starting_hash_key + (range.ending_hash_key - range.starting_hash_key) / 2 + 1
}

fn render_shards(shards: &[Shard]) -> String {
    let mut text = format!(
        "{:<22} {:<6} {:<45} {:<41} {}\n",
        "SHARD", "STATE", "PARENTS", "HASH KEYS (first)", "HASH KEYS (last)"
    );
    for shard in shards {
        let parents: Vec<_> = shard.parent_shard_ids().map(ShardId::to_string).collect();
        text.push_str(&format!(
            "{:<22} {:<6} {:<45} {:<41} {}\n",
            shard.shard_id,
            if shard.is_closed() { "closed" } else { "open" },
            if parents.is_empty() {
                "-".to_owned()
            } else {
                parents.join(",")
            },
            shard.hash_key_range.starting_hash_key,
            shard.hash_key_range.ending_hash_key
        ));
    }
    text
}

/// Runs `kcl stream ...`.
pub async fn run_stream(args: StreamArgs, endpoint: &EndpointArgs) -> anyhow::Result<ExitCode> {
    // One AWS configuration (profile files, credential provider) for both callers.
    let api = json_api(endpoint).await?;
    let client = api.client().clone();
    match args.command {
        StreamCommand::Create { name, shards } => {
            api.call(
                "CreateStream",
                &json!({"StreamName": name, "ShardCount": shards}),
            )
            .await?;
            wait_for_status(&client, &name, "ACTIVE").await?;
            println!("created stream {name} with {shards} shards");
        }
        StreamCommand::Describe { name } => {
            let summary = client.describe_stream_summary(&name).await?;
            let shards = client.list_shards(&name, None).await?;
            println!(
                "stream {}  status {}  open shards {}  retention {} h  consumers {}\narn {}",
                summary.stream_name,
                summary.stream_status,
                summary.open_shard_count,
                summary.retention_period_hours,
                summary.consumer_count,
                summary.stream_arn
            );
            print!("{}", render_shards(&shards));
        }
        StreamCommand::List => {
            let mut start: Option<String> = None;
            loop {
                let mut request = json!({"Limit": 100});
                if let Some(last) = &start {
                    request["ExclusiveStartStreamName"] = json!(last);
                }
                let answer = api.call("ListStreams", &request).await?;
                let names: Vec<String> = answer
                    .get("StreamNames")
                    .and_then(Value::as_array)
                    .map(|names| {
                        names
                            .iter()
                            .filter_map(|name| name.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                for name in &names {
                    println!("{name}");
                }
                let more = answer.get("HasMoreStreams").and_then(Value::as_bool) == Some(true);
                match names.last() {
                    Some(last) if more => start = Some(last.clone()),
                    _ => break,
                }
            }
        }
        StreamCommand::Split {
            name,
            shard,
            hash_key,
        } => {
            let hash_key = match hash_key {
                Some(key) => key,
                None => {
                    let shards = client.list_shards(&name, None).await?;
                    let target = shards
                        .iter()
                        .find(|candidate| candidate.shard_id.as_str() == shard)
                        .with_context(|| format!("stream {name} has no shard {shard}"))?;
                    middle_hash_key(target).to_string()
                }
            };
            api.call(
                "SplitShard",
                &json!({"StreamName": name, "ShardToSplit": shard, "NewStartingHashKey": hash_key}),
            )
            .await?;
            wait_for_status(&client, &name, "ACTIVE").await?;
            println!("split {shard} of {name} at hash key {hash_key}");
        }
        StreamCommand::Merge {
            name,
            shard,
            adjacent,
        } => {
            api.call(
                    "MergeShards",
                    &json!({"StreamName": name, "ShardToMerge": shard, "AdjacentShardToMerge": adjacent}),
                )
                .await?;
            wait_for_status(&client, &name, "ACTIVE").await?;
            println!("merged {shard} and {adjacent} of {name}");
        }
        StreamCommand::Scale { name, target } => {
            let answer = api.call(
                    "UpdateShardCount",
                    &json!({"StreamName": name, "TargetShardCount": target, "ScalingType": "UNIFORM_SCALING"}),
                )
                .await?;
            wait_for_status(&client, &name, "ACTIVE").await?;
            let current = answer
                .get("CurrentShardCount")
                .and_then(Value::as_u64)
                .map_or_else(|| "?".to_owned(), |count| count.to_string());
            println!("scaled {name} from {current} to {target} open shards");
        }
        StreamCommand::Delete { name } => {
            api.call("DeleteStream", &json!({"StreamName": name}))
                .await?;
            println!("deleted stream {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcl_core::kinesis::{HashKeyRange, SequenceNumber, SequenceNumberRange};

    #[test]
    fn the_middle_split_key_lies_inside_the_range() {
        let shard = Shard {
            shard_id: ShardId::from_index(0),
            parent_shard_id: None,
            adjacent_parent_shard_id: None,
            hash_key_range: HashKeyRange::FULL,
            sequence_number_range: SequenceNumberRange {
                starting_sequence_number: SequenceNumber::ZERO,
                ending_sequence_number: None,
            },
        };
        assert_eq!(middle_hash_key(&shard), 1u128 << 127);
    }
}
