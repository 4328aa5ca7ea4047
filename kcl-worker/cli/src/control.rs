//! `kcl stream ...` (the control plane) and `kcl produce`, over a Kinesis HTTP endpoint.

use crate::args::{EndpointArgs, ProduceArgs, StreamArgs, StreamCommand};
use crate::worker::{http_client, json_api};
use anyhow::Context;
use bytes::Bytes;
use kcl_core::kinesis::{Shard, ShardId};
use kcl_core::stream_client::StreamClient;
use kcl_worker::client::HttpStreamClient;
use kcl_worker::producer::{HttpTarget, ProduceEntry, Producer, ProducerConfig, generated_entry};
use serde_json::{Value, json};
use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The records `kcl produce` writes: the lines of a file (or stdin for `-`), or generated ones.
fn produce_entries(args: &ProduceArgs) -> anyhow::Result<Vec<ProduceEntry>> {
    let Some(path) = &args.from_file else {
        return Ok((0..args.count)
            .map(|index| generated_entry(index, args.size, args.keys))
            .collect());
    };
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(path)
            .with_context(|| format!("opening --from-file {}", path.display()))?;
        Box::new(std::io::BufReader::new(file))
    };
    let keys = u64::from(args.keys.max(1));
    let mut entries = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading line {} of the input", index + 1))?;
        entries.push(ProduceEntry {
            partition_key: format!("key-{}", index as u64 % keys),
            data: Bytes::from(line),
        });
    }
    Ok(entries)
}

/// Runs `kcl produce`.
pub async fn run_produce(args: ProduceArgs, endpoint: &EndpointArgs) -> anyhow::Result<ExitCode> {
    let api = json_api(endpoint).await?;
    let entries = produce_entries(&args)?;
    let total = entries.len() as u64;
    let producer = Producer::new(
        Arc::new(HttpTarget::new(api.client().clone(), args.stream.clone())),
        ProducerConfig {
            batch_size: usize::from(args.batch_size),
            rate: (args.rate > 0).then_some(args.rate),
            ..ProducerConfig::default()
        },
    );
    let progress = if args.no_progress {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} records ({per_sec}, eta {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    };
    let started = Instant::now();
    let stored = producer
        .put_all(entries, |count| progress.inc(count as u64))
        .await;
    progress.finish_and_clear();
    let stored = stored?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "stored {} records in {:.2} s ({:.0} records/s) into stream {}",
        stored.len(),
        elapsed,
        stored.len() as f64 / elapsed.max(1e-9),
        args.stream
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
    let client = http_client(endpoint).await?;
    let api = json_api(endpoint).await?;
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
