//! SigV4 verification on: unsigned, malformed and wrongly signed requests are rejected with
//! AWS's error types; the SDK with a configured key passes.

mod server_common;

use aws_sdk_kinesis::error::ProvideErrorMetadata;
use broker::server::{AuthKeys, ServerOptions};

#[tokio::test]
async fn only_correctly_signed_requests_pass() {
    let options = ServerOptions {
        auth: Some(AuthKeys::new([("AKIDGOOD", "good-secret")])),
        ..ServerOptions::default()
    };
    let (_broker, server) = server_common::start(options).await;
    let endpoint = server.endpoint();
    let http = reqwest::Client::new();
    let raw = |authorization: Option<&'static str>| {
        let mut request = http
            .post(&endpoint)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", "Kinesis_20131202.ListStreams")
            .header("x-amz-date", "20261125T200000Z")
            .body("{}");
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        request.send()
    };

    let unsigned = raw(None).await.unwrap();
    assert_eq!(unsigned.status(), 400);
    assert_eq!(
        unsigned.headers()["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );
    let body: serde_json::Value = unsigned.json().await.unwrap();
    assert_eq!(body["message"], "Missing Authentication Token");

    let malformed = raw(Some(
        "AWS4-HMAC-SHA256 Credential=AKIDGOOD/20261125/us-east-1/kinesis/aws4_request",
    ))
    .await
    .unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(
        malformed.headers()["x-amzn-errortype"],
        "IncompleteSignatureException"
    );

    let wrong_secret = server_common::client_with_keys(&endpoint, "AKIDGOOD", "bad-secret");
    let error = wrong_secret.list_streams().send().await.unwrap_err();
    assert_eq!(error.code(), Some("InvalidSignatureException"));
    assert_eq!(error.raw_response().map(|r| r.status().as_u16()), Some(403));

    let unknown_key = server_common::client_with_keys(&endpoint, "AKIDOTHER", "good-secret");
    let error = unknown_key.list_streams().send().await.unwrap_err();
    assert_eq!(error.code(), Some("UnrecognizedClientException"));

    let good = server_common::client_with_keys(&endpoint, "AKIDGOOD", "good-secret");
    good.create_stream()
        .stream_name("signed")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    let listed = good.list_streams().send().await.unwrap();
    assert_eq!(listed.stream_names(), ["signed"]);

    // A large signed body (about 700 KB of JSON) is verified too.
    let mut batch = good.put_records().stream_name("signed");
    for i in 0..500 {
        batch = batch.records(
            aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
                .partition_key(format!("key-{i}"))
                .data(aws_sdk_kinesis::primitives::Blob::new(vec![b'x'; 1000]))
                .build()
                .unwrap(),
        );
    }
    let put = batch.send().await.unwrap();
    assert_eq!(put.records().len(), 500);
    server.shutdown().await;
}
