//! CBOR requests (as the Java SDKs send them): blobs as byte strings, timestamps as tag 1
//! around epoch milliseconds, answers in CBOR, errors in CBOR.

mod server_common;

use broker::server::ServerOptions;
use ciborium::Value;
use kcl_core::eventstream;

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(key, value)| (Value::Text(key.into()), value))
            .collect(),
    )
}

fn get<'a>(value: &'a Value, key: &str) -> &'a Value {
    value
        .as_map()
        .unwrap()
        .iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {key} in {value:?}"))
}

async fn cbor_call(
    http: &reqwest::Client,
    endpoint: &str,
    operation: &str,
    body: Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut bytes = Vec::new();
    ciborium::into_writer(&body, &mut bytes).unwrap();
    let response = http
        .post(endpoint)
        .header("content-type", "application/x-amz-cbor-1.1")
        .header("x-amz-target", format!("Kinesis_20131202.{operation}"))
        // Signed in form (as AWS requires); the broker checks no signature without --auth-keys.
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/kinesis/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=00",
        )
        .header("x-amz-date", "20260101T000000Z")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/x-amz-cbor-1.1");
    let bytes = response.bytes().await.unwrap();
    (
        status,
        headers,
        ciborium::from_reader(bytes.as_ref()).unwrap(),
    )
}

#[tokio::test]
async fn cbor_requests_are_answered_in_cbor() {
    let (_broker, server) = server_common::start(ServerOptions::default()).await;
    let endpoint = server.endpoint();
    let http = reqwest::Client::new();

    let (status, _, _) = cbor_call(
        &http,
        &endpoint,
        "CreateStream",
        map(vec![
            ("StreamName", Value::Text("java".into())),
            ("ShardCount", Value::Integer(1.into())),
        ]),
    )
    .await;
    assert_eq!(status, 200);

    let payload = vec![0u8, 159, 146, 150, 255];
    let (status, _, put) = cbor_call(
        &http,
        &endpoint,
        "PutRecord",
        map(vec![
            ("StreamName", Value::Text("java".into())),
            ("PartitionKey", Value::Text("k".into())),
            ("Data", Value::Bytes(payload.clone())),
        ]),
    )
    .await;
    assert_eq!(status, 200);
    let sequence = get(&put, "SequenceNumber").as_text().unwrap().to_string();

    // AT_TIMESTAMP with a tag-1 millisecond timestamp from long ago: finds the record.
    let (status, _, iterator) = cbor_call(
        &http,
        &endpoint,
        "GetShardIterator",
        map(vec![
            ("StreamName", Value::Text("java".into())),
            ("ShardId", Value::Text("shardId-000000000000".into())),
            ("ShardIteratorType", Value::Text("AT_TIMESTAMP".into())),
            (
                "Timestamp",
                Value::Tag(1, Box::new(Value::Integer(1_000_000_000_000i64.into()))),
            ),
        ]),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, page) = cbor_call(
        &http,
        &endpoint,
        "GetRecords",
        map(vec![(
            "ShardIterator",
            get(&iterator, "ShardIterator").clone(),
        )]),
    )
    .await;
    assert_eq!(status, 200);
    let records = get(&page, "Records").as_array().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(get(&records[0], "Data").as_bytes().unwrap(), &payload);
    assert_eq!(
        get(&records[0], "SequenceNumber").as_text().unwrap(),
        sequence
    );
    let Value::Tag(1, arrival) = get(&records[0], "ApproximateArrivalTimestamp") else {
        panic!("arrival timestamp is not tag 1");
    };
    let arrival_millis = i128::from(arrival.as_integer().expect("integer milliseconds"));
    let now_millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i128;
    assert!(
        (now_millis - arrival_millis).abs() < 600_000,
        "{arrival_millis} is milliseconds"
    );

    // A timestamp in the future finds nothing.
    let (_, _, later) = cbor_call(
        &http,
        &endpoint,
        "GetShardIterator",
        map(vec![
            ("StreamName", Value::Text("java".into())),
            ("ShardId", Value::Text("shardId-000000000000".into())),
            ("ShardIteratorType", Value::Text("AT_TIMESTAMP".into())),
            (
                "Timestamp",
                Value::Tag(
                    1,
                    Box::new(Value::Integer((now_millis as i64 + 3_600_000).into())),
                ),
            ),
        ]),
    )
    .await;
    let (_, _, empty) = cbor_call(
        &http,
        &endpoint,
        "GetRecords",
        map(vec![(
            "ShardIterator",
            get(&later, "ShardIterator").clone(),
        )]),
    )
    .await;
    assert!(get(&empty, "Records").as_array().unwrap().is_empty());

    // Errors come back in CBOR with the AWS type.
    let (status, headers, error) = cbor_call(
        &http,
        &endpoint,
        "DescribeStream",
        map(vec![("StreamName", Value::Text("missing".into()))]),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(headers["x-amzn-errortype"], "ResourceNotFoundException");
    assert_eq!(
        get(&error, "__type").as_text(),
        Some("ResourceNotFoundException")
    );
    assert!(
        get(&error, "message")
            .as_text()
            .unwrap()
            .contains("missing")
    );
    assert!(headers.contains_key("x-amzn-requestid"));

    // Wrong member types are SerializationExceptions.
    let (status, headers, _) = cbor_call(
        &http,
        &endpoint,
        "PutRecord",
        map(vec![("StreamName", Value::Integer(5.into()))]),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(headers["x-amzn-errortype"], "SerializationException");
    server.shutdown().await;
}

#[tokio::test]
async fn subscribe_to_shard_frames_events() {
    let (_broker, server) = server_common::start(ServerOptions::default()).await;
    let endpoint = server.endpoint();
    let http = reqwest::Client::new();
    let json_call = |operation: &str, body: serde_json::Value| {
        http.post(&endpoint)
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
    };
    json_call(
        "CreateStream",
        serde_json::json!({"StreamName": "efo", "ShardCount": 1}),
    )
    .await
    .unwrap();
    json_call(
        "PutRecord",
        serde_json::json!({"StreamName": "efo", "PartitionKey": "k", "Data": "aGVsbG8="}),
    )
    .await
    .unwrap();
    let registered: serde_json::Value = json_call(
        "RegisterStreamConsumer",
        serde_json::json!({"StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/efo",
                           "ConsumerName": "push"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let consumer_arn = registered["Consumer"]["ConsumerARN"]
        .as_str()
        .unwrap()
        .to_string();
    let mut response = json_call(
        "SubscribeToShard",
        serde_json::json!({"ConsumerARN": consumer_arn, "ShardId": "shardId-000000000000",
                           "StartingPosition": {"Type": "TRIM_HORIZON"}}),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let mut buffer = Vec::new();
    let mut messages = Vec::new();
    while messages.len() < 2 {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(60), response.chunk())
            .await
            .expect("events arrive")
            .unwrap()
            .expect("the stream stays open");
        buffer.extend_from_slice(&chunk);
        while let Ok((message, used)) = eventstream::decode(&buffer) {
            messages.push(message);
            buffer.drain(..used);
        }
    }
    assert_eq!(messages[0].header(":event-type"), Some("initial-response"));
    assert_eq!(messages[0].header(":message-type"), Some("event"));
    assert_eq!(
        messages[1].header(":event-type"),
        Some("SubscribeToShardEvent")
    );
    let event: serde_json::Value = serde_json::from_slice(&messages[1].payload).unwrap();
    assert_eq!(event["Records"][0]["Data"], "aGVsbG8=");
    assert!(event["ContinuationSequenceNumber"].is_string());
    assert!(event["MillisBehindLatest"].is_number());
    drop(response);
    server.shutdown().await;
}
