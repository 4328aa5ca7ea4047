//! AWS's validation layer over HTTP: every violation of a request in one
//! `ValidationException` before any lookup, `SerializationException`s worded as Kinesis words
//! them (JSON and CBOR), shard ids read as Kinesis reads them, and tag characters checked as
//! Kinesis checks them.

mod server_common;

use broker::server::ServerOptions;
use serde_json::{Value, json};

const ACCOUNT: &str = "000000000000";

/// Sends a JSON request; answers (status, x-amzn-ErrorType, body).
async fn call(endpoint: &str, operation: &str, body: &str) -> (u16, String, Value) {
    server_common::post_json(&reqwest::Client::new(), endpoint, operation, body).await
}

/// Sends a CBOR request; answers (status, x-amzn-ErrorType, body).
async fn call_cbor(
    endpoint: &str,
    operation: &str,
    body: &ciborium::Value,
) -> (u16, String, ciborium::Value) {
    let mut bytes = Vec::new();
    ciborium::into_writer(body, &mut bytes).expect("encodes");
    let response = reqwest::Client::new()
        .post(endpoint)
        .header("content-type", "application/x-amz-cbor-1.1")
        .header("x-amz-target", format!("Kinesis_20131202.{operation}"))
        .body(bytes)
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    let error_type = response
        .headers()
        .get("x-amzn-errortype")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = response.bytes().await.expect("a body");
    let body = ciborium::from_reader(bytes.as_ref()).expect("a CBOR body");
    (status, error_type, body)
}

async fn expect_error(endpoint: &str, operation: &str, body: &str, error: &str, message: &str) {
    let (status, error_type, answer) = call(endpoint, operation, body).await;
    assert_eq!(
        (status, error_type.as_str()),
        (400, error),
        "{operation} {body}: {answer}"
    );
    assert_eq!(answer["__type"], error, "{operation} {body}");
    assert_eq!(answer["message"], message, "{operation} {body}");
}

#[tokio::test]
async fn all_violations_come_in_one_validation_exception_before_any_lookup() {
    let (_broker, server) = server_common::start(unsigned_allowed()).await;
    let endpoint = server.endpoint();
    let name129 = "a".repeat(129);
    let cases: Vec<(&str, String, String)> = vec![
        (
            "CreateStream",
            r#"{"StreamName":"","ShardCount":0}"#.into(),
            "3 validation errors detected: Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1; Value '' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
        ),
        // The stream does not exist: the violations are still what is answered.
        (
            "PutRecord",
            r#"{"StreamName":"missing","PartitionKey":"","Data":"","SequenceNumberForOrdering":"abc"}"#.into(),
            "2 validation errors detected: Value 'abc' at 'sequenceNumberForOrdering' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128}); Value '' at 'partitionKey' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
        ),
        (
            "GetShardIterator",
            format!(r#"{{"StreamName":"{name129}","ShardId":"{name129}","ShardIteratorType":"LATEST"}}"#),
            format!("2 validation errors detected: Value '{name129}' at 'shardId' failed to satisfy constraint: Member must have length less than or equal to 128; Value '{name129}' at 'streamName' failed to satisfy constraint: Member must have length less than or equal to 128"),
        ),
        (
            "PutRecords",
            r#"{"StreamName":"missing","Records":[{"PartitionKey":"a","Data":""},{"Data":""}]}"#.into(),
            "1 validation error detected: Value null at 'records.2.member.partitionKey' failed to satisfy constraint: Member must not be null".into(),
        ),
        (
            "SubscribeToShard",
            "{}".into(),
            "3 validation errors detected: Value null at 'consumerARN' failed to satisfy constraint: Member must not be null; Value null at 'shardId' failed to satisfy constraint: Member must not be null; Value null at 'startingPosition' failed to satisfy constraint: Member must not be null".into(),
        ),
        (
            "RemoveTagsFromStream",
            r#"{"StreamName":"missing","TagKeys":[]}"#.into(),
            "1 validation error detected: Value '[]' at 'tagKeys' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
        ),
        (
            "AddTagsToStream",
            r#"{"StreamName":"missing","Tags":{"k":"","":"v"}}"#.into(),
            "1 validation error detected: Value '{k=, =v}' at 'tags' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]".into(),
        ),
        (
            "UpdateShardCount",
            r#"{"StreamName":"missing"}"#.into(),
            "2 validation errors detected: Value null at 'scalingType' failed to satisfy constraint: Member must not be null; Value null at 'targetShardCount' failed to satisfy constraint: Member must not be null".into(),
        ),
        (
            "ListStreamConsumers",
            r#"{"StreamARN":"arn:aws:kinesis:us-east-1:1:stream/s","MaxResults":10001}"#.into(),
            "2 validation errors detected: Value 'arn:aws:kinesis:us-east-1:1:stream/s' at 'streamARN' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+; Value '10001' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 10000".into(),
        ),
    ];
    for (operation, body, message) in cases {
        expect_error(&endpoint, operation, &body, "ValidationException", &message).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_types_are_serialization_exceptions_worded_as_kinesis() {
    let (_broker, server) = server_common::start(unsigned_allowed()).await;
    let endpoint = server.endpoint();
    let cases: &[(&str, &str, &str)] = &[
        (
            "CreateStream",
            r#"{"StreamName":"s","ShardCount":"2"}"#,
            "class java.lang.String can not be converted to an Integer",
        ),
        (
            "CreateStream",
            r#"{"StreamName":["s"],"ShardCount":2}"#,
            "Start of list found where not expected",
        ),
        (
            "PutRecord",
            r#"{"StreamName":"s","PartitionKey":"p","Data":"hello"}"#,
            "'hello' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 5",
        ),
        (
            "PutRecords",
            r#"{"StreamName":"s","Records":{"Data":""}}"#,
            "Start of structure or map found where not expected.",
        ),
        (
            "DeleteStream",
            r#"{"StreamName":"s","EnforceConsumerDeletion":1}"#,
            "class java.lang.Short can not be converted to an Boolean",
        ),
        (
            "ListShards",
            r#"{"StreamName":"s","ShardFilter":"AT_LATEST"}"#,
            "Expected null",
        ),
    ];
    for (operation, body, message) in cases {
        let (status, error_type, answer) = call(&endpoint, operation, body).await;
        assert_eq!(
            (status, error_type.as_str()),
            (400, "SerializationException"),
            "{body}"
        );
        // Kinesis says `Message` in a SerializationException.
        assert_eq!(
            answer,
            json!({"__type": "SerializationException", "Message": message}),
            "{operation} {body}"
        );
    }
    for body in ["{", "{\"StreamName\":\"s\"} trailing", "[1,"] {
        let (status, _, answer) = call(&endpoint, "ListStreams", body).await;
        assert_eq!(status, 400);
        assert_eq!(
            answer,
            json!({"__type": "SerializationException"}),
            "{body}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn cbor_requests_get_the_same_checks() {
    use ciborium::Value;
    let (_broker, server) = server_common::start(unsigned_allowed()).await;
    let endpoint = server.endpoint();
    let text = |value: &str| Value::Text(value.to_owned());
    let body = Value::Map(vec![
        (text("StreamName"), text("bad name")),
        (text("Data"), Value::Bytes(vec![1, 2, 3])),
    ]);
    let (status, error_type, answer) = call_cbor(&endpoint, "PutRecord", &body).await;
    assert_eq!((status, error_type.as_str()), (400, "ValidationException"));
    let message = answer
        .as_map()
        .and_then(|map| map.iter().find(|(k, _)| k.as_text() == Some("message")))
        .and_then(|(_, v)| v.as_text())
        .expect("a message");
    assert_eq!(
        message,
        "2 validation errors detected: Value null at 'partitionKey' failed to satisfy constraint: Member must not be null; Value 'bad name' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
    );
    let wrong = Value::Map(vec![
        (text("StreamName"), text("s")),
        (text("ShardCount"), Value::Bool(true)),
    ]);
    let (status, error_type, answer) = call_cbor(&endpoint, "CreateStream", &wrong).await;
    assert_eq!(
        (status, error_type.as_str()),
        (400, "SerializationException")
    );
    let message = answer
        .as_map()
        .and_then(|map| map.iter().find(|(k, _)| k.as_text() == Some("Message")))
        .and_then(|(_, v)| v.as_text())
        .expect("a Message");
    assert_eq!(
        message,
        "class java.lang.Boolean can not be converted to an Integer"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn shard_ids_are_read_as_kinesis_reads_them() {
    let (_broker, server) = server_common::start(unsigned_allowed()).await;
    let endpoint = server.endpoint();
    let (status, _, _) = call(
        &endpoint,
        "CreateStream",
        r#"{"StreamName":"s","ShardCount":2}"#,
    )
    .await;
    assert_eq!(status, 200);
    for shard_id in [
        "shardId-1",
        "anything-1",
        "1",
        "shardId-000000000001",
        "a-00001",
    ] {
        let body =
            format!(r#"{{"StreamName":"s","ShardId":"{shard_id}","ShardIteratorType":"LATEST"}}"#);
        let (status, _, answer) = call(&endpoint, "GetShardIterator", &body).await;
        assert_eq!(status, 200, "{shard_id}: {answer}");
        assert!(answer["ShardIterator"].is_string(), "{shard_id}");
    }
    let not_found = [
        (
            "shardId-5",
            format!(
                "Shard shardId-000000000005 in stream s under account {ACCOUNT} does not exist"
            ),
        ),
        (
            "ABKLFD8",
            format!("Could not find shard ABKLFD8 in stream s under account {ACCOUNT}."),
        ),
        (
            "2147483648",
            format!("Could not find shard 2147483648 in stream s under account {ACCOUNT}."),
        ),
    ];
    for (shard_id, message) in not_found {
        let body =
            format!(r#"{{"StreamName":"s","ShardId":"{shard_id}","ShardIteratorType":"LATEST"}}"#);
        expect_error(
            &endpoint,
            "GetShardIterator",
            &body,
            "ResourceNotFoundException",
            &message,
        )
        .await;
    }
    // Resharding reads them the same way.
    let (status, _, answer) = call(
        &endpoint,
        "MergeShards",
        r#"{"StreamName":"s","ShardToMerge":"x-0","AdjacentShardToMerge":"1"}"#,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let either_or = "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber.";
    expect_error(
        &endpoint,
        "GetShardIterator",
        r#"{"StreamName":"s","ShardId":"shardId-0","ShardIteratorType":"LATEST","StartingSequenceNumber":"5"}"#,
        "InvalidArgumentException",
        &format!("{either_or} Request specified LATEST and also a StartingSequenceNumber."),
    )
    .await;
    expect_error(
        &endpoint,
        "GetShardIterator",
        r#"{"StreamName":"s","ShardId":"shardId-0","ShardIteratorType":"AFTER_SEQUENCE_NUMBER"}"#,
        "InvalidArgumentException",
        &format!(
            "{either_or} Request specified AFTER_SEQUENCE_NUMBER and no StartingSequenceNumber."
        ),
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn tag_characters_are_checked_after_the_lookup() {
    let (_broker, server) = server_common::start(unsigned_allowed()).await;
    let endpoint = server.endpoint();
    let (status, _, _) = call(
        &endpoint,
        "CreateStream",
        r#"{"StreamName":"s","ShardCount":1}"#,
    )
    .await;
    assert_eq!(status, 200);
    let invalid = "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @ :.";
    let allowed = "The allowed characters are Unicode letters, white-spaces, '_',',','/','=','+','-','@',':'.";
    let cases: Vec<(&str, &str, String, String)> = vec![
        (
            "AddTagsToStream",
            r#"{"StreamName":"s","Tags":{"team":"no*stars"}}"#,
            "InvalidArgumentException".into(),
            invalid.into(),
        ),
        (
            "AddTagsToStream",
            r#"{"StreamName":"s","Tags":{"share":"50%"}}"#,
            "InvalidArgumentException".into(),
            format!(
                "Failed to add tags to stream s under account {ACCOUNT} because some tags contained illegal characters. {allowed}"
            ),
        ),
        (
            "RemoveTagsFromStream",
            r#"{"StreamName":"s","TagKeys":["50%"]}"#,
            "InvalidArgumentException".into(),
            format!(
                "Failed to remove tags from stream s under account {ACCOUNT} because some tags contained illegal characters. {allowed}"
            ),
        ),
        (
            "AddTagsToStream",
            r#"{"StreamName":"missing","Tags":{"team":"no*stars"}}"#,
            "ResourceNotFoundException".into(),
            format!("Stream missing under account {ACCOUNT} not found."),
        ),
    ];
    for (operation, body, error, message) in cases {
        expect_error(&endpoint, operation, body, &error, &message).await;
    }
    let (status, _, answer) = call(
        &endpoint,
        "AddTagsToStream",
        r#"{"StreamName":"s","Tags":{"Team Name":"a/b=c+d-e@f:g_h.i","Ünïcödé":"日本"}}"#,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (_, _, tags) = call(&endpoint, "ListTagsForStream", r#"{"StreamName":"s"}"#).await;
    assert_eq!(tags["Tags"].as_array().map(Vec::len), Some(2), "{tags}");
    server.shutdown().await;
}

/// These tests send hand-written bodies without signatures: the signature checks every
/// operation shares are covered by server_auth.rs.
fn unsigned_allowed() -> ServerOptions {
    ServerOptions {
        allow_unsigned: true,
        ..ServerOptions::default()
    }
}
