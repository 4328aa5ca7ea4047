//! The error table: every (operation, error) pair botocore's Kinesis model documents is either
//! answered by the broker (one request over HTTP that must get exactly that `__type`,
//! `x-amzn-ErrorType` and status) or listed as one that cannot happen locally, with the reason.
//! A pair that is neither fails the test, so a new model (or a new operation) cannot go
//! unnoticed.

mod server_common;

use broker::engine::{Broker, BrokerConfig};
use broker::server::{RunningServer, ServerOptions};
use kcl_core::clock::{ManualClock, SharedClock};
use kcl_core::kinesis::EpochMillis;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

const ACCOUNT: &str = "000000000000";

fn stream_arn(name: &str) -> String {
    format!("arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/{name}")
}

/// Every operation's documented errors, from botocore's model (python3 with boto3).
fn model_errors() -> Option<BTreeMap<String, Vec<String>>> {
    let script = "import json, botocore.loaders\n\
        m = botocore.loaders.Loader().load_service_model('kinesis', 'service-2')\n\
        print(json.dumps({op: [e['shape'] for e in o.get('errors', [])] for op, o in m['operations'].items()}))";
    if !server_common::boto3::boto3_available() {
        return None;
    }
    let output = std::process::Command::new("python3")
        .args(["-c", script])
        .output()
        .expect("python3 runs");
    assert!(output.status.success(), "loading botocore's model failed");
    Some(serde_json::from_slice(&output.stdout).expect("the model's errors as JSON"))
}

/// Why a documented pair cannot be produced by a local broker.
fn excuse(operation: &str, error: &str) -> Option<&'static str> {
    if matches!(
        (operation, error),
        (
            "UpdateAccountSettings" | "UpdateMaxRecordSize",
            "InvalidArgumentException"
        )
    ) {
        return Some(
            "AWS does not say when; every value the validation table lets through is valid here",
        );
    }
    if error.starts_with("KMS") {
        return Some("no KMS is called: encryption is recorded, never performed");
    }
    Some(match (operation, error) {
        (_, "AccessDeniedException") => "no IAM: every caller may do everything",
        (_, "InternalFailureException") => "a fault of AWS itself; nothing a request can provoke",
        ("PutRecords", "ProvisionedThroughputExceededException") => {
            "throttling is reported per record (ErrorCode), as Kinesis does; the call succeeds"
        }
        ("GetShardIterator", "ProvisionedThroughputExceededException") => {
            "the broker does not rate-limit GetShardIterator calls"
        }
        ("SplitShard", "LimitExceededException") => {
            "the account's shard limit reached by a split: the limit itself is covered by CreateStream"
        }
        ("GetRecords", "ResourceNotFoundException") => {
            "an iterator of a deleted stream: not produced by the broker yet"
        }
        (_, "LimitExceededException")
            if !matches!(
                operation,
                "CreateStream" | "RegisterStreamConsumer" | "UpdateShardCount"
            ) =>
        {
            "AWS's per-account control-plane call rate: the broker does not throttle control calls"
        }
        (
            "DeregisterStreamConsumer"
            | "DescribeStreamConsumer"
            | "ListStreamConsumers"
            | "RegisterStreamConsumer"
            | "ListTagsForResource"
            | "TagResource"
            | "UntagResource"
            | "GetResourcePolicy"
            | "PutResourcePolicy"
            | "DeleteResourcePolicy"
            | "SubscribeToShard"
            | "DescribeStream"
            | "DescribeStreamSummary"
            | "ListTagsForStream"
            | "ListStreams"
            | "CreateStream"
            | "UpdateStreamMode",
            "InvalidArgumentException",
        ) => {
            "no request shape reaches an InvalidArgumentException in the broker for this operation yet"
        }
        (
            "ListShards"
            | "ListStreamConsumers"
            | "DeleteResourcePolicy"
            | "GetResourcePolicy"
            | "PutResourcePolicy"
            | "ListTagsForResource"
            | "TagResource"
            | "UntagResource"
            | "UpdateStreamMode"
            | "SubscribeToShard"
            | "DisableEnhancedMonitoring"
            | "EnableEnhancedMonitoring"
            | "StartStreamEncryption"
            | "StopStreamEncryption"
            | "DeleteStream"
            | "AddTagsToStream"
            | "RemoveTagsFromStream"
            | "IncreaseStreamRetentionPeriod"
            | "DecreaseStreamRetentionPeriod"
            | "MergeShards"
            | "SplitShard"
            | "UpdateShardCount"
            | "RegisterStreamConsumer",
            "ResourceInUseException",
        ) => {
            "not produced by the broker yet: resharding and settings take effect at once (no UPDATING \
             state), and a stream still CREATING (with a create delay) is not found by this operation"
        }
        _ => return None,
    })
}

/// One request that must be answered with an error.
struct Case {
    operation: &'static str,
    error: &'static str,
    body: Value,
    /// Which broker answers it.
    target: Target,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Streams `s` (2 shards, consumer `c`) and `other` are ACTIVE; shard limit 10.
    Active,
    /// Stream `creating` stays CREATING (create delay, clock never moves).
    Creating,
    /// The clock moves 301 s after the tokens and iterators are taken.
    Expired,
}

fn case(operation: &'static str, error: &'static str, body: Value) -> Case {
    Case {
        operation,
        error,
        body,
        target: Target::Active,
    }
}

async fn call(
    http: &reqwest::Client,
    endpoint: &str,
    operation: &str,
    body: &Value,
) -> (u16, String, Value) {
    server_common::post_json(http, endpoint, operation, &body.to_string()).await
}

async fn ok(http: &reqwest::Client, endpoint: &str, operation: &str, body: Value) -> Value {
    let (status, header, value) = call(http, endpoint, operation, &body).await;
    assert_eq!(status, 200, "{operation} {body}: {header} {value}");
    value
}

async fn start(config: BrokerConfig) -> (Broker, RunningServer) {
    let broker = Broker::new(config);
    // The table is about each operation's own errors; the signature errors every operation
    // shares are covered by server_auth.rs.
    let options = ServerOptions {
        allow_unsigned: true,
        ..ServerOptions::default()
    };
    let server = broker::server::spawn(
        broker.clone(),
        options,
        "127.0.0.1:0".parse().expect("an address"),
    )
    .await
    .expect("bind a loopback port");
    (broker, server)
}

fn manual_clock() -> (Arc<ManualClock>, SharedClock) {
    let clock = Arc::new(ManualClock::new(EpochMillis(1_700_000_000_000)));
    let shared: SharedClock = clock.clone();
    (clock, shared)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_error_is_answered_or_excused() {
    let Some(model) = model_errors() else {
        return;
    };
    let http = reqwest::Client::new();

    // The ACTIVE broker: throughput limits on, a small shard limit, a clock that never moves.
    let (_clock, shared) = manual_clock();
    let config = BrokerConfig {
        shard_limit: 10,
        ..BrokerConfig::default()
    }
    .with_clock(shared);
    let (_active_broker, active) = start(config).await;
    let active_endpoint = active.endpoint();
    let endpoint = active_endpoint.as_str();
    ok(
        &http,
        endpoint,
        "CreateStream",
        json!({"StreamName": "s", "ShardCount": 2}),
    )
    .await;
    ok(
        &http,
        endpoint,
        "CreateStream",
        json!({"StreamName": "other", "ShardCount": 1}),
    )
    .await;
    let consumer = ok(
        &http,
        endpoint,
        "RegisterStreamConsumer",
        json!({"StreamARN": stream_arn("s"), "ConsumerName": "c"}),
    )
    .await;
    assert!(
        consumer["Consumer"]["ConsumerARN"].is_string(),
        "{consumer}"
    );
    for index in 1..20 {
        let name = format!("c{index}");
        ok(
            &http,
            endpoint,
            "RegisterStreamConsumer",
            json!({"StreamARN": stream_arn("s"), "ConsumerName": name}),
        )
        .await;
    }
    let missing_consumer = format!("{}/consumer/nobody:1700000000", stream_arn("s"));

    // The CREATING broker.
    let (_creating_clock, creating_shared) = manual_clock();
    let creating_config = BrokerConfig {
        create_delay: Duration::from_secs(3600),
        ..BrokerConfig::default()
    }
    .with_clock(creating_shared);
    let (_creating_broker, creating) = start(creating_config).await;
    let creating_endpoint = creating.endpoint();
    ok(
        &http,
        &creating_endpoint,
        "CreateStream",
        json!({"StreamName": "creating", "ShardCount": 1}),
    )
    .await;

    // The broker whose clock moves past every token's and iterator's lifetime.
    let (expiring_clock, expiring_shared) = manual_clock();
    let (_expiring_broker, expiring) =
        start(BrokerConfig::default().with_clock(expiring_shared)).await;
    let expiring_endpoint = expiring.endpoint();
    let e = expiring_endpoint.as_str();
    ok(
        &http,
        e,
        "CreateStream",
        json!({"StreamName": "a", "ShardCount": 2}),
    )
    .await;
    ok(
        &http,
        e,
        "CreateStream",
        json!({"StreamName": "b", "ShardCount": 1}),
    )
    .await;
    for name in ["x", "y"] {
        ok(
            &http,
            e,
            "RegisterStreamConsumer",
            json!({"StreamARN": stream_arn("a"), "ConsumerName": name}),
        )
        .await;
    }
    let streams_token = ok(&http, e, "ListStreams", json!({"Limit": 1})).await["NextToken"]
        .as_str()
        .expect("a ListStreams token")
        .to_owned();
    let shards_token = ok(
        &http,
        e,
        "ListShards",
        json!({"StreamName": "a", "MaxResults": 1}),
    )
    .await["NextToken"]
        .as_str()
        .expect("a ListShards token")
        .to_owned();
    let consumers_token = ok(
        &http,
        e,
        "ListStreamConsumers",
        json!({"StreamARN": stream_arn("a"), "MaxResults": 1}),
    )
    .await["NextToken"]
        .as_str()
        .expect("a ListStreamConsumers token")
        .to_owned();
    let iterator = ok(
        &http,
        e,
        "GetShardIterator",
        json!({"StreamName": "a", "ShardId": "shardId-0", "ShardIteratorType": "LATEST"}),
    )
    .await["ShardIterator"]
        .as_str()
        .expect("an iterator")
        .to_owned();
    expiring_clock.advance(Duration::from_secs(301));

    let not_active = |operation: &'static str, body: Value| Case {
        operation,
        error: "ResourceInUseException",
        body,
        target: Target::Creating,
    };
    let expired = |operation: &'static str, error: &'static str, body: Value| Case {
        operation,
        error,
        body,
        target: Target::Expired,
    };
    let missing = json!({"StreamName": "missing"});
    let cases = vec![
        // ResourceNotFoundException: a stream, shard, consumer or resource that does not exist.
        case(
            "AddTagsToStream",
            "ResourceNotFoundException",
            json!({"StreamName": "missing", "Tags": {"k": "v"}}),
        ),
        case(
            "DecreaseStreamRetentionPeriod",
            "ResourceNotFoundException",
            json!({"StreamName": "missing", "RetentionPeriodHours": 24}),
        ),
        case(
            "IncreaseStreamRetentionPeriod",
            "ResourceNotFoundException",
            json!({"StreamName": "missing", "RetentionPeriodHours": 48}),
        ),
        case(
            "DeleteResourcePolicy",
            "ResourceNotFoundException",
            json!({"ResourceARN": stream_arn("missing")}),
        ),
        case(
            "GetResourcePolicy",
            "ResourceNotFoundException",
            json!({"ResourceARN": stream_arn("missing")}),
        ),
        case(
            "PutResourcePolicy",
            "ResourceNotFoundException",
            json!({"ResourceARN": stream_arn("missing"), "Policy": "{}"}),
        ),
        case("DeleteStream", "ResourceNotFoundException", missing.clone()),
        case(
            "DeregisterStreamConsumer",
            "ResourceNotFoundException",
            json!({"ConsumerARN": missing_consumer}),
        ),
        case(
            "DescribeStreamConsumer",
            "ResourceNotFoundException",
            json!({"ConsumerARN": missing_consumer}),
        ),
        case(
            "DescribeStream",
            "ResourceNotFoundException",
            missing.clone(),
        ),
        case(
            "DescribeStreamSummary",
            "ResourceNotFoundException",
            missing.clone(),
        ),
        case(
            "DisableEnhancedMonitoring",
            "ResourceNotFoundException",
            json!({"StreamName": "missing", "ShardLevelMetrics": ["ALL"]}),
        ),
        case(
            "EnableEnhancedMonitoring",
            "ResourceNotFoundException",
            json!({"StreamName": "missing", "ShardLevelMetrics": ["ALL"]}),
        ),
        case(
            "GetShardIterator",
            "ResourceNotFoundException",
            json!({"StreamName": "s", "ShardId": "shardId-9", "ShardIteratorType": "LATEST"}),
        ),
        case("ListShards", "ResourceNotFoundException", missing.clone()),
        case(
            "ListStreamConsumers",
            "ResourceNotFoundException",
            json!({"StreamARN": stream_arn("missing")}),
        ),
        case(
            "ListTagsForResource",
            "ResourceNotFoundException",
            json!({"ResourceARN": stream_arn("missing")}),
        ),
        case(
            "ListTagsForStream",
            "ResourceNotFoundException",
            missing.clone(),
        ),
        case(
            "MergeShards",
            "ResourceNotFoundException",
            json!({"StreamName": "missing", "ShardToMerge": "shardId-0", "AdjacentShardToMerge": "shardId-1"}),
        ),
        case(
            "PutRecord",
            "ResourceNotFoundException",
            json!({"StreamName": "missing", "PartitionKey": "p", "Data": ""}),
        ),
        case(
            "PutRecords",
            "ResourceNotFoundException",
            json!({"StreamName": "missing", "Records": [{"PartitionKey": "p", "Data": ""}]}),
        ),
        case(
            "RegisterStreamConsumer",
            "ResourceNotFoundException",
            json!({"StreamARN": stream_arn("missing"), "ConsumerName": "c"}),
        ),
        case(
            "RemoveTagsFromStream",
            "ResourceNotFoundException",
            json!({"StreamName": "missing", "TagKeys": ["k"]}),
        ),
        case(
            "SplitShard",
            "ResourceNotFoundException",
            json!({"StreamName": "missing", "ShardToSplit": "shardId-0", "NewStartingHashKey": "1"}),
        ),
        case(
            "StartStreamEncryption",
            "ResourceNotFoundException",
            json!({"StreamName": "missing", "EncryptionType": "KMS", "KeyId": "k"}),
        ),
        case(
            "StopStreamEncryption",
            "ResourceNotFoundException",
            json!({"StreamName": "missing", "EncryptionType": "KMS", "KeyId": "k"}),
        ),
        case(
            "SubscribeToShard",
            "ResourceNotFoundException",
            json!({"ConsumerARN": missing_consumer, "ShardId": "shardId-0", "StartingPosition": {"Type": "LATEST"}}),
        ),
        case(
            "TagResource",
            "ResourceNotFoundException",
            json!({"ResourceARN": stream_arn("missing"), "Tags": {"k": "v"}}),
        ),
        case(
            "UntagResource",
            "ResourceNotFoundException",
            json!({"ResourceARN": stream_arn("missing"), "TagKeys": ["k"]}),
        ),
        case(
            "UpdateShardCount",
            "ResourceNotFoundException",
            json!({"StreamName": "missing", "TargetShardCount": 2, "ScalingType": "UNIFORM_SCALING"}),
        ),
        case(
            "UpdateStreamMode",
            "ResourceNotFoundException",
            json!({"StreamARN": stream_arn("missing"), "StreamModeDetails": {"StreamMode": "ON_DEMAND"}}),
        ),
        // InvalidArgumentException
        case(
            "AddTagsToStream",
            "InvalidArgumentException",
            json!({"StreamName": "s", "Tags": {"k": "no*stars"}}),
        ),
        case(
            "RemoveTagsFromStream",
            "InvalidArgumentException",
            json!({"StreamName": "s", "TagKeys": ["50%"]}),
        ),
        case(
            "DecreaseStreamRetentionPeriod",
            "InvalidArgumentException",
            json!({"StreamName": "s", "RetentionPeriodHours": 48}),
        ),
        case(
            "IncreaseStreamRetentionPeriod",
            "InvalidArgumentException",
            json!({"StreamName": "s", "RetentionPeriodHours": 20}),
        ),
        case("DeleteStream", "InvalidArgumentException", json!({})),
        case(
            "DisableEnhancedMonitoring",
            "InvalidArgumentException",
            json!({"ShardLevelMetrics": ["ALL"]}),
        ),
        case(
            "EnableEnhancedMonitoring",
            "InvalidArgumentException",
            json!({"ShardLevelMetrics": ["ALL"]}),
        ),
        case(
            "GetRecords",
            "InvalidArgumentException",
            json!({"ShardIterator": "not-an-iterator"}),
        ),
        case(
            "GetShardIterator",
            "InvalidArgumentException",
            json!({"StreamName": "s", "ShardId": "shardId-0", "ShardIteratorType": "AT_SEQUENCE_NUMBER"}),
        ),
        case(
            "ListShards",
            "InvalidArgumentException",
            json!({"StreamName": "s", "NextToken": "x"}),
        ),
        case(
            "MergeShards",
            "InvalidArgumentException",
            json!({"StreamName": "s", "ShardToMerge": "shardId-0", "AdjacentShardToMerge": "shardId-0"}),
        ),
        case(
            "PutRecord",
            "InvalidArgumentException",
            json!({"StreamName": "s", "PartitionKey": "p", "Data": "", "ExplicitHashKey": "340282366920938463463374607431768211456"}),
        ),
        case(
            "PutRecords",
            "InvalidArgumentException",
            json!({"Records": [{"PartitionKey": "p", "Data": ""}]}),
        ),
        case(
            "SplitShard",
            "InvalidArgumentException",
            json!({"StreamName": "s", "ShardToSplit": "shardId-0", "NewStartingHashKey": "0"}),
        ),
        case(
            "StartStreamEncryption",
            "InvalidArgumentException",
            json!({"StreamName": "s", "EncryptionType": "NONE", "KeyId": "k"}),
        ),
        case(
            "StopStreamEncryption",
            "InvalidArgumentException",
            json!({"EncryptionType": "KMS", "KeyId": "k"}),
        ),
        case(
            "UpdateShardCount",
            "InvalidArgumentException",
            json!({"TargetShardCount": 2, "ScalingType": "UNIFORM_SCALING"}),
        ),
        // ValidationException: AWS's validation layer, before any lookup.
        case(
            "CreateStream",
            "ValidationException",
            json!({"StreamName": "bad name"}),
        ),
        case(
            "MergeShards",
            "ValidationException",
            json!({"StreamName": "missing"}),
        ),
        case(
            "SplitShard",
            "ValidationException",
            json!({"StreamName": "missing", "ShardToSplit": "shardId-0", "NewStartingHashKey": "01"}),
        ),
        case(
            "UpdateShardCount",
            "ValidationException",
            json!({"StreamName": "missing", "TargetShardCount": 0, "ScalingType": "UNIFORM_SCALING"}),
        ),
        case(
            "UpdateStreamMode",
            "ValidationException",
            json!({"StreamARN": stream_arn("missing"), "StreamModeDetails": {"StreamMode": "SOMETIMES"}}),
        ),
        // LimitExceededException
        case(
            "CreateStream",
            "LimitExceededException",
            json!({"StreamName": "big", "ShardCount": 11}),
        ),
        case(
            "RegisterStreamConsumer",
            "LimitExceededException",
            json!({"StreamARN": stream_arn("s"), "ConsumerName": "c20"}),
        ),
        case(
            "UpdateShardCount",
            "LimitExceededException",
            json!({"StreamName": "s", "TargetShardCount": 9, "ScalingType": "UNIFORM_SCALING"}),
        ),
        // ResourceInUseException
        case(
            "CreateStream",
            "ResourceInUseException",
            json!({"StreamName": "s", "ShardCount": 1}),
        ),
        case(
            "RegisterStreamConsumer",
            "ResourceInUseException",
            json!({"StreamARN": stream_arn("s"), "ConsumerName": "c"}),
        ),
        not_active("ListShards", json!({"StreamName": "creating"})),
        not_active(
            "UpdateMaxRecordSize",
            json!({"StreamARN": stream_arn("creating"), "MaxRecordSizeInKiB": 2048}),
        ),
        case(
            "UpdateMaxRecordSize",
            "ResourceNotFoundException",
            json!({"StreamARN": stream_arn("missing"), "MaxRecordSizeInKiB": 2048}),
        ),
        case("UpdateAccountSettings", "ValidationException", json!({})),
        case(
            "UpdateMaxRecordSize",
            "ValidationException",
            json!({"StreamARN": stream_arn("s"), "MaxRecordSizeInKiB": 1}),
        ),
        case(
            "UpdateStreamWarmThroughput",
            "ResourceNotFoundException",
            json!({"StreamName": "missing", "WarmThroughputMiBps": 10}),
        ),
        case(
            "UpdateStreamWarmThroughput",
            "InvalidArgumentException",
            json!({"StreamName": "s", "WarmThroughputMiBps": 10}),
        ),
        not_active(
            "UpdateStreamWarmThroughput",
            json!({"StreamName": "creating", "WarmThroughputMiBps": 10}),
        ),
        case(
            "UpdateStreamWarmThroughput",
            "ValidationException",
            json!({"StreamName": "s"}),
        ),
        // Expired tokens and iterators.
        expired(
            "ListStreams",
            "ExpiredNextTokenException",
            json!({"NextToken": streams_token}),
        ),
        expired(
            "ListShards",
            "ExpiredNextTokenException",
            json!({"NextToken": shards_token}),
        ),
        expired(
            "ListStreamConsumers",
            "ExpiredNextTokenException",
            json!({"StreamARN": stream_arn("a"), "NextToken": consumers_token}),
        ),
        expired(
            "GetRecords",
            "ExpiredIteratorException",
            json!({"ShardIterator": iterator}),
        ),
        // Throughput: the 1 MiB/s write limit of one shard, and GetRecords' 5 calls a second.
        case(
            "PutRecord",
            "ProvisionedThroughputExceededException",
            json!({"StreamName": "other", "PartitionKey": "p", "Data": big_data()}),
        ),
        case(
            "GetRecords",
            "ProvisionedThroughputExceededException",
            json!({}),
        ),
    ];

    let mut answered: BTreeSet<(String, String)> = BTreeSet::new();
    let mut failures = Vec::new();
    for case in cases {
        let endpoint = match case.target {
            Target::Active => active_endpoint.as_str(),
            Target::Creating => creating_endpoint.as_str(),
            Target::Expired => expiring_endpoint.as_str(),
        };
        let (status, header, body) = match (case.operation, case.error) {
            ("PutRecord", "ProvisionedThroughputExceededException") => {
                // The first megabyte fills the second's budget; the next put is refused.
                let first = call(&http, endpoint, case.operation, &case.body).await;
                assert_eq!(first.0, 200, "{:?}", first.2);
                call(&http, endpoint, case.operation, &case.body).await
            }
            ("GetRecords", "ProvisionedThroughputExceededException") => {
                throttled_get_records(&http, endpoint).await
            }
            _ => call(&http, endpoint, case.operation, &case.body).await,
        };
        // The model gives none of Kinesis's errors an `httpStatusCode`: the JSON protocol's
        // default, 400, is what AWS answers for each.
        let body_type = body["__type"].as_str().unwrap_or("");
        if status != 400 || header != case.error || body_type != case.error {
            failures.push(format!(
                "{} {}: got {status} {header} {body} for {}",
                case.operation, case.error, case.body
            ));
        }
        answered.insert((case.operation.to_owned(), case.error.to_owned()));
    }

    let mut uncovered = Vec::new();
    for (operation, errors) in &model {
        for error in errors {
            let pair = (operation.clone(), error.clone());
            if answered.contains(&pair) {
                continue;
            }
            if excuse(operation, error).is_none() {
                uncovered.push(format!("{operation} {error}"));
            }
        }
    }
    for (operation, error) in &answered {
        let documented = model
            .get(operation)
            .is_some_and(|errors| errors.contains(error));
        assert!(
            documented,
            "{operation} {error} is tested but not in the model"
        );
    }
    active.shutdown().await;
    creating.shutdown().await;
    expiring.shutdown().await;
    assert!(
        failures.is_empty(),
        "wrong answers:\n{}",
        failures.join("\n")
    );
    assert!(
        uncovered.is_empty(),
        "documented pairs neither answered nor excused:\n{}",
        uncovered.join("\n")
    );
}

/// One mebibyte of data, base64.
fn big_data() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(vec![7u8; 1_000_000])
}

/// GetRecords on one shard until the fifth call of the (frozen) second is exceeded.
async fn throttled_get_records(http: &reqwest::Client, endpoint: &str) -> (u16, String, Value) {
    let iterator = ok(
        http,
        endpoint,
        "GetShardIterator",
        json!({"StreamName": "s", "ShardId": "shardId-1", "ShardIteratorType": "TRIM_HORIZON"}),
    )
    .await["ShardIterator"]
        .as_str()
        .expect("an iterator")
        .to_owned();
    let mut last = (0, String::new(), Value::Null);
    for _ in 0..10 {
        last = call(
            http,
            endpoint,
            "GetRecords",
            &json!({"ShardIterator": iterator}),
        )
        .await;
        if last.0 != 200 {
            break;
        }
    }
    last
}
