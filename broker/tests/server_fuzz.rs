//! Throws random, mutated and truncated request bodies (JSON and CBOR) at the HTTP layer
//! in-process: no panic, no hang, and every answer is a well-formed AWS error or success.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use broker::engine::{Broker, BrokerConfig};
use broker::server::{ServerOptions, ServerState};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const OPERATIONS: [&str; 30] = [
    "CreateStream",
    "DeleteStream",
    "DescribeStream",
    "DescribeStreamSummary",
    "ListStreams",
    "ListShards",
    "DescribeLimits",
    "PutRecord",
    "PutRecords",
    "GetShardIterator",
    "GetRecords",
    "SplitShard",
    "MergeShards",
    "UpdateShardCount",
    "IncreaseStreamRetentionPeriod",
    "DecreaseStreamRetentionPeriod",
    "UpdateStreamMode",
    "AddTagsToStream",
    "RemoveTagsFromStream",
    "ListTagsForStream",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
    "RegisterStreamConsumer",
    "DeregisterStreamConsumer",
    "DescribeStreamConsumer",
    "ListStreamConsumers",
    "SubscribeToShard",
    "NoSuchOperation",
    "",
];

struct Fixture {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
    iterator: String,
    consumer_arn: String,
}

const STREAM_ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/fuzz";

fn fixture() -> Fixture {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let broker = Broker::new(BrokerConfig::unlimited());
    let (iterator, consumer_arn) = runtime.block_on(async {
        use broker::engine::*;
        broker
            .create_stream(CreateStreamInput {
                stream_name: "fuzz".into(),
                shard_count: Some(2),
                ..Default::default()
            })
            .await
            .unwrap();
        broker
            .put_record(PutRecordInput {
                stream: StreamRef::name("fuzz"),
                data: "hello".into(),
                partition_key: "k".into(),
                explicit_hash_key: Some("0".into()),
                sequence_number_for_ordering: None,
            })
            .await
            .unwrap();
        let iterator = broker
            .get_shard_iterator(GetShardIteratorInput {
                stream: StreamRef::name("fuzz"),
                shard_id: "shardId-000000000000".into(),
                position: kcl_core::kinesis::StartingPosition::TrimHorizon,
            })
            .await
            .unwrap()
            .shard_iterator;
        let consumer = broker
            .register_stream_consumer(RegisterStreamConsumerInput {
                stream_arn: STREAM_ARN.into(),
                consumer_name: "c".into(),
            })
            .await
            .unwrap();
        (iterator, consumer.consumer_arn)
    });
    // Bodies are what is fuzzed here, not signatures: accept unsigned requests.
    let options = ServerOptions {
        allow_unsigned: true,
        ..ServerOptions::default()
    };
    let state = ServerState::new(broker, options, CancellationToken::new());
    let app = broker::server::router(Arc::new(state));
    Fixture {
        runtime,
        app,
        iterator,
        consumer_arn,
    }
}

/// A valid request body for `operation` against the fixture.
fn template(operation: &str, fixture: &Fixture) -> Value {
    let shard = "shardId-000000000000";
    match operation {
        "CreateStream" => json!({"StreamName": "created", "ShardCount": 1}),
        "PutRecord" => json!({"StreamName": "fuzz", "Data": "aGk=", "PartitionKey": "k"}),
        "PutRecords" => json!({"StreamARN": STREAM_ARN,
            "Records": [{"Data": "aGk=", "PartitionKey": "k"}, {"Data": "", "PartitionKey": "j", "ExplicitHashKey": "7"}]}),
        "GetShardIterator" => json!({"StreamName": "fuzz", "ShardId": shard,
            "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": 1.5e9}),
        "GetRecords" => json!({"ShardIterator": fixture.iterator, "Limit": 10}),
        "ListShards" => {
            json!({"StreamName": "fuzz", "ShardFilter": {"Type": "AFTER_SHARD_ID", "ShardId": shard}})
        }
        "SplitShard" => {
            json!({"StreamName": "fuzz", "ShardToSplit": shard, "NewStartingHashKey": "1000"})
        }
        "MergeShards" => {
            json!({"StreamName": "fuzz", "ShardToMerge": shard, "AdjacentShardToMerge": "shardId-000000000001"})
        }
        "UpdateShardCount" => {
            json!({"StreamName": "fuzz", "TargetShardCount": 3, "ScalingType": "UNIFORM_SCALING"})
        }
        "IncreaseStreamRetentionPeriod" | "DecreaseStreamRetentionPeriod" => {
            json!({"StreamName": "fuzz", "RetentionPeriodHours": 24})
        }
        "UpdateStreamMode" => {
            json!({"StreamARN": STREAM_ARN, "StreamModeDetails": {"StreamMode": "PROVISIONED"}})
        }
        "AddTagsToStream" => json!({"StreamName": "fuzz", "Tags": {"a": "b"}}),
        "RemoveTagsFromStream" => json!({"StreamName": "fuzz", "TagKeys": ["a"]}),
        "TagResource" => json!({"ResourceARN": STREAM_ARN, "Tags": {"a": "b"}}),
        "UntagResource" => json!({"ResourceARN": STREAM_ARN, "TagKeys": ["a"]}),
        "ListTagsForResource" => json!({"ResourceARN": STREAM_ARN}),
        "RegisterStreamConsumer" => json!({"StreamARN": STREAM_ARN, "ConsumerName": "other"}),
        "DescribeStreamConsumer" | "DeregisterStreamConsumer" => {
            json!({"ConsumerARN": fixture.consumer_arn})
        }
        "ListStreamConsumers" => json!({"StreamARN": STREAM_ARN, "MaxResults": 5}),
        "SubscribeToShard" => json!({"ConsumerARN": fixture.consumer_arn, "ShardId": shard,
            "StartingPosition": {"Type": "AT_SEQUENCE_NUMBER", "SequenceNumber": "1"}}),
        "ListStreams" => json!({"Limit": 5}),
        _ => json!({"StreamName": "fuzz", "Limit": 2}),
    }
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(json!(1e300)),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        ".{0,40}".prop_map(Value::String),
        Just(Value::String("%%%not base64".into())),
        Just(Value::String("9".repeat(80))),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[A-Za-z]{1,12}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Keep,
    Replace(usize, Value),
    Remove(usize),
    AddUnknown(Value),
    Truncate(f64),
    FlipByte(f64, u8),
    Garbage(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        Just(Mutation::Keep),
        (any::<usize>(), arbitrary_json()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        any::<usize>().prop_map(Mutation::Remove),
        arbitrary_json().prop_map(Mutation::AddUnknown),
        (0.0f64..1.0).prop_map(Mutation::Truncate),
        (0.0f64..1.0, 1u8..=255).prop_map(|(at, x)| Mutation::FlipByte(at, x)),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Mutation::Garbage),
    ]
}

fn apply(mut value: Value, mutation: &Mutation, cbor: bool) -> Vec<u8> {
    if let Value::Object(map) = &mut value {
        let keys: Vec<String> = map.keys().cloned().collect();
        match mutation {
            Mutation::Replace(i, replacement) if !keys.is_empty() => {
                map.insert(keys[i % keys.len()].clone(), replacement.clone());
            }
            Mutation::Remove(i) if !keys.is_empty() => {
                map.remove(&keys[i % keys.len()]);
            }
            Mutation::AddUnknown(extra) => {
                map.insert("UnknownMember".into(), extra.clone());
            }
            _ => {}
        }
    }
    let mut bytes = if cbor {
        // Blobs become byte strings and timestamps tag 1, as CBOR clients send them.
        let mut cbor_value = ciborium::Value::serialized(&value).unwrap();
        if let ciborium::Value::Map(entries) = &mut cbor_value {
            for (key, entry) in entries.iter_mut() {
                match key.as_text() {
                    Some("Data") => {
                        if let Some(text) = entry.as_text() {
                            *entry = ciborium::Value::Bytes(text.as_bytes().to_vec());
                        }
                    }
                    Some("Timestamp") => {
                        *entry = ciborium::Value::Tag(1, Box::new(entry.clone()));
                    }
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        ciborium::into_writer(&cbor_value, &mut out).unwrap();
        out
    } else {
        serde_json::to_vec(&value).unwrap()
    };
    match mutation {
        Mutation::Truncate(at) => bytes.truncate((bytes.len() as f64 * at) as usize),
        Mutation::FlipByte(at, x) if !bytes.is_empty() => {
            let index = ((bytes.len() as f64 * at) as usize).min(bytes.len() - 1);
            bytes[index] ^= x;
        }
        Mutation::Garbage(garbage) => bytes = garbage.clone(),
        _ => {}
    }
    bytes
}

fn check_response(fixture: &Fixture, operation: &str, body: Vec<u8>, cbor: bool) {
    let content_type = if cbor {
        "application/x-amz-cbor-1.1"
    } else {
        "application/x-amz-json-1.1"
    };
    let request = Request::post("/")
        .header("content-type", content_type)
        .header("x-amz-target", format!("Kinesis_20131202.{operation}"))
        .body(Body::from(body))
        .unwrap();
    let response = fixture.runtime.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(60),
            fixture.app.clone().oneshot(request),
        )
        .await
        .expect("the server answers without hanging")
        .unwrap()
    });
    let status = response.status();
    let headers = response.headers().clone();
    assert!(headers.contains_key("x-amzn-requestid"));
    assert_ne!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{operation}: internal failure"
    );
    let answer_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if answer_type == "application/vnd.amazon.eventstream" {
        assert_eq!(status, StatusCode::OK);
        return; // a live subscription: its framing is tested elsewhere
    }
    assert_eq!(
        answer_type, content_type,
        "{operation}: answered in the request's format"
    );
    let bytes = fixture.runtime.block_on(async {
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
    });
    let parsed: ciborium::Value = if cbor {
        ciborium::from_reader(bytes.as_ref()).expect("a CBOR body")
    } else {
        let json: Value = serde_json::from_slice(&bytes).expect("a JSON body");
        ciborium::Value::serialized(&json).unwrap()
    };
    let map = parsed.as_map().expect("an object body");
    if status.is_success() {
        return;
    }
    assert!(
        matches!(status.as_u16(), 400 | 403 | 413),
        "{operation}: status {status}"
    );
    let error_type = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .expect("x-amzn-ErrorType on errors");
    let body_type = map
        .iter()
        .find(|(k, _)| k.as_text() == Some("__type"))
        .and_then(|(_, v)| v.as_text())
        .expect("__type in the error body");
    assert_eq!(error_type, body_type);
    // Kinesis writes a SerializationException's message as `Message`, and none at all for a
    // body that does not parse; every other error has a `message`.
    let message_key = if body_type == "SerializationException" {
        "Message"
    } else {
        "message"
    };
    let message = map
        .iter()
        .find(|(k, _)| k.as_text() == Some(message_key))
        .and_then(|(_, v)| v.as_text());
    assert!(
        message.is_some() || body_type == "SerializationException",
        "message in the error body"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn mutated_requests_get_well_formed_answers(
        operation_index in 0..OPERATIONS.len(),
        mutation in mutation(),
        cbor in any::<bool>(),
    ) {
        thread_local! {
            static FIXTURE: Fixture = fixture();
        }
        FIXTURE.with(|fixture| {
            let operation = OPERATIONS[operation_index];
            let body = apply(template(operation, fixture), &mutation, cbor);
            check_response(fixture, operation, body, cbor);
        });
    }
}

#[test]
fn oversized_bodies_get_an_aws_shaped_error() {
    let fixture = fixture();
    let body = vec![b' '; broker::server::MAX_BODY_BYTES + 1];
    let request = Request::post("/")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "Kinesis_20131202.PutRecords")
        .body(Body::from(body))
        .unwrap();
    let response = fixture
        .runtime
        .block_on(fixture.app.clone().oneshot(request))
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.headers()["x-amzn-errortype"],
        "RequestEntityTooLargeException"
    );
}
