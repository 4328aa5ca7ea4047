//! `kcl firehose`: Firehose delivery streams of a `kinesis-broker --firehose-dir` (or AWS),
//! over the same signed, retried JSON client as `kcl stream` ([`JsonService::FIREHOSE`]).

use crate::args::{EndpointArgs, FirehoseArgs, FirehoseCommand};
use crate::worker::json_api;
use anyhow::Context;
use base64::Engine as _;
use kcl_core::stream_client::StreamClient;
use kcl_worker::client::{HttpStreamClient, JsonService};
use serde_json::{Value, json};
use std::io::BufRead;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The IAM role every configuration names (the broker does not check roles).
const ROLE_ARN: &str = "arn:aws:iam::000000000000:role/kcl-firehose";
/// Records per PutRecordBatch.
const BATCH: usize = 500;

async fn call(client: &HttpStreamClient, operation: &str, body: Value) -> anyhow::Result<Value> {
    client
        .call_service_json(JsonService::FIREHOSE, operation, body)
        .await
        .with_context(|| format!("Firehose {operation}"))
}

/// The `ExtendedS3DestinationConfiguration` of `kcl firehose create`.
fn destination(command: &FirehoseCommand) -> Value {
    let FirehoseCommand::Create {
        bucket,
        prefix,
        error_prefix,
        size_mib,
        interval_secs,
        gzip,
        lambda_arn,
        ..
    } = command
    else {
        return Value::Null;
    };
    let mut destination = json!({
        "RoleARN": ROLE_ARN,
        "BucketARN": format!("arn:aws:s3:::{bucket}"),
        "BufferingHints": {"SizeInMBs": size_mib, "IntervalInSeconds": interval_secs},
        "CompressionFormat": if *gzip { "GZIP" } else { "UNCOMPRESSED" },
    });
    if let Some(prefix) = prefix {
        destination["Prefix"] = json!(prefix);
    }
    if let Some(prefix) = error_prefix {
        destination["ErrorOutputPrefix"] = json!(prefix);
    }
    if let Some(arn) = lambda_arn {
        destination["ProcessingConfiguration"] = json!({
            "Enabled": true,
            "Processors": [{"Type": "Lambda", "Parameters": [
                {"ParameterName": "LambdaArn", "ParameterValue": arn}]}],
        });
    }
    destination
}

async fn wait_active(client: &HttpStreamClient, name: &str) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let answer = call(
            client,
            "DescribeDeliveryStream",
            json!({"DeliveryStreamName": name}),
        )
        .await?;
        let description = answer["DeliveryStreamDescription"].clone();
        let status = description["DeliveryStreamStatus"].as_str().unwrap_or("");
        if status == "ACTIVE" {
            return Ok(description);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "delivery stream {name} is still {status} after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One line per fact of a `DeliveryStreamDescription`.
pub fn render_description(description: &Value) -> String {
    let text = |value: &Value| value.as_str().unwrap_or("-").to_owned();
    let destination = &description["Destinations"][0];
    let s3 = if destination["ExtendedS3DestinationDescription"].is_object() {
        &destination["ExtendedS3DestinationDescription"]
    } else {
        &destination["S3DestinationDescription"]
    };
    let source = &description["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"];
    format!(
        "delivery stream {}  status {}  type {}  version {}\narn {}\nsource {}\nbucket {}  prefix {}  error prefix {}\nbuffer {} MiB / {} s  compression {}\n",
        text(&description["DeliveryStreamName"]),
        text(&description["DeliveryStreamStatus"]),
        text(&description["DeliveryStreamType"]),
        text(&description["VersionId"]),
        text(&description["DeliveryStreamARN"]),
        if source.is_string() {
            text(source)
        } else {
            "DirectPut".to_owned()
        },
        text(&s3["BucketARN"]),
        text(&s3["Prefix"]),
        text(&s3["ErrorOutputPrefix"]),
        s3["BufferingHints"]["SizeInMBs"],
        s3["BufferingHints"]["IntervalInSeconds"],
        text(&s3["CompressionFormat"]),
    )
}

/// Runs `kcl firehose ...`.
pub async fn run_firehose(args: FirehoseArgs, endpoint: &EndpointArgs) -> anyhow::Result<ExitCode> {
    let api = json_api(endpoint).await?;
    let client = api.client().clone();
    match &args.command {
        command @ FirehoseCommand::Create {
            name,
            source_stream,
            ..
        } => {
            let mut request = json!({
                "DeliveryStreamName": name,
                "DeliveryStreamType": "DirectPut",
                "ExtendedS3DestinationConfiguration": destination(command),
            });
            if let Some(stream) = source_stream {
                let summary = client.describe_stream_summary(stream).await?;
                request["DeliveryStreamType"] = json!("KinesisStreamAsSource");
                request["KinesisStreamSourceConfiguration"] =
                    json!({"KinesisStreamARN": summary.stream_arn, "RoleARN": ROLE_ARN});
            }
            let answer = call(&client, "CreateDeliveryStream", request).await?;
            wait_active(&client, name).await?;
            println!(
                "created delivery stream {name}\narn {}",
                answer["DeliveryStreamARN"].as_str().unwrap_or("-")
            );
        }
        FirehoseCommand::Describe { name } => {
            let answer = call(
                &client,
                "DescribeDeliveryStream",
                json!({"DeliveryStreamName": name}),
            )
            .await?;
            print!(
                "{}",
                render_description(&answer["DeliveryStreamDescription"])
            );
        }
        FirehoseCommand::Put { name, data } => {
            let records: Vec<String> = if data.is_empty() {
                std::io::stdin()
                    .lock()
                    .lines()
                    .collect::<Result<_, _>>()
                    .context("reading records from stdin")?
            } else {
                data.clone()
            };
            let (mut accepted, mut failed) = (0usize, 0usize);
            for chunk in records.chunks(BATCH) {
                let entries: Vec<Value> = chunk
                    .iter()
                    .map(|record| {
                        let bytes = format!("{record}\n");
                        json!({"Data": base64::engine::general_purpose::STANDARD.encode(bytes)})
                    })
                    .collect();
                let answer = call(
                    &client,
                    "PutRecordBatch",
                    json!({"DeliveryStreamName": name, "Records": entries}),
                )
                .await?;
                let chunk_failed = answer["FailedPutCount"].as_u64().unwrap_or(0) as usize;
                failed += chunk_failed;
                accepted += chunk.len() - chunk_failed.min(chunk.len());
            }
            println!("put {accepted} records into {name}, {failed} failed");
            if failed > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
        FirehoseCommand::List => {
            let mut start: Option<String> = None;
            loop {
                let mut request = json!({"Limit": 100});
                if let Some(last) = &start {
                    request["ExclusiveStartDeliveryStreamName"] = json!(last);
                }
                let answer = call(&client, "ListDeliveryStreams", request).await?;
                let names: Vec<String> = answer["DeliveryStreamNames"]
                    .as_array()
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
                let more = answer["HasMoreDeliveryStreams"].as_bool() == Some(true);
                match names.last() {
                    Some(last) if more => start = Some(last.clone()),
                    _ => break,
                }
            }
        }
        FirehoseCommand::Delete { name } => {
            call(
                &client,
                "DeleteDeliveryStream",
                json!({"DeliveryStreamName": name}),
            )
            .await?;
            println!("deleted delivery stream {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_flags_become_the_destination() {
        let command = FirehoseCommand::Create {
            name: "d".into(),
            bucket: "logs".into(),
            source_stream: None,
            prefix: Some("p/".into()),
            error_prefix: None,
            size_mib: 1,
            interval_secs: 2,
            gzip: true,
            lambda_arn: Some("arn:aws:lambda:us-east-1:000000000000:function:f".into()),
        };
        let destination = destination(&command);
        assert_eq!(destination["BucketARN"], "arn:aws:s3:::logs");
        assert_eq!(destination["BufferingHints"]["SizeInMBs"], 1);
        assert_eq!(destination["BufferingHints"]["IntervalInSeconds"], 2);
        assert_eq!(destination["CompressionFormat"], "GZIP");
        assert_eq!(destination["Prefix"], "p/");
        assert!(destination.get("ErrorOutputPrefix").is_none());
        assert_eq!(
            destination["ProcessingConfiguration"]["Processors"][0]["Parameters"][0]["ParameterValue"],
            "arn:aws:lambda:us-east-1:000000000000:function:f"
        );
    }

    #[test]
    fn descriptions_render_source_and_buffering() {
        let description = json!({
            "DeliveryStreamName": "d", "DeliveryStreamStatus": "ACTIVE",
            "DeliveryStreamType": "KinesisStreamAsSource", "VersionId": "2",
            "DeliveryStreamARN": "arn:aws:firehose:us-east-1:000000000000:deliverystream/d",
            "Source": {"KinesisStreamSourceDescription": {"KinesisStreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/s"}},
            "Destinations": [{"ExtendedS3DestinationDescription": {
                "BucketARN": "arn:aws:s3:::b", "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
                "CompressionFormat": "GZIP"}}]
        });
        let text = render_description(&description);
        assert!(text.contains("status ACTIVE"), "{text}");
        assert!(
            text.contains("source arn:aws:kinesis:us-east-1:000000000000:stream/s"),
            "{text}"
        );
        assert!(
            text.contains("buffer 1 MiB / 60 s  compression GZIP"),
            "{text}"
        );
    }
}
