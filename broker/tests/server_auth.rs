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

/// A raw JSON request with the given `Authorization` header (and `X-Amz-Date`) or none.
async fn raw_call(
    endpoint: &str,
    operation: &str,
    authorization: Option<&str>,
    body: &str,
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let mut request = reqwest::Client::new()
        .post(endpoint)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("Kinesis_20131202.{operation}"))
        .header("x-amz-date", "20261125T200000Z")
        .body(body.to_owned());
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, headers, body)
}

const ANY_KEY: &str = "AWS4-HMAC-SHA256 Credential=ANYKEY/20261125/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";

#[tokio::test]
async fn by_default_requests_must_be_signed_in_form_with_any_key() {
    let (_broker, server) = server_common::start(ServerOptions::default()).await;
    let endpoint = server.endpoint();

    let (status, headers, body) = raw_call(&endpoint, "ListStreams", None, "{}").await;
    assert_eq!(status, 400);
    assert_eq!(
        headers["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );
    assert_eq!(body["__type"], "MissingAuthenticationTokenException");
    assert_eq!(body["message"], "Missing Authentication Token");

    // An unknown operation is named before the signature is looked at (as on AWS).
    let (status, _, body) = raw_call(&endpoint, "NoSuchOperation", None, "{}").await;
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "UnknownOperationException");

    // Every missing part is listed, in AWS's order, then the header itself.
    let cases = [
        (
            "AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/kinesis/aws4_request",
            "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/kinesis/aws4_request",
        ),
        (
            "Basic dXNlcjpwYXNz",
            "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=Basic dXNlcjpwYXNz",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKID, SignedHeaders=host, Signature=00",
            "Credential should be scoped to a valid region, not a malformed scope. Credential=AKID",
        ),
    ];
    for (authorization, message) in cases {
        let (status, headers, body) =
            raw_call(&endpoint, "ListStreams", Some(authorization), "{}").await;
        assert_eq!(status, 400, "{authorization}");
        assert_eq!(headers["x-amzn-errortype"], "IncompleteSignatureException");
        assert_eq!(body["message"], message, "{authorization}");
    }

    // Any access key and signature pass when no keys are configured.
    let (status, _, body) = raw_call(&endpoint, "ListStreams", Some(ANY_KEY), "{}").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["StreamNames"], serde_json::json!([]));
    let sdk = server_common::client_with_keys(&endpoint, "WHOEVER", "whatever");
    sdk.list_streams().send().await.expect("the SDK signs");

    // A presigned query without all of its parameters is incomplete too.
    let response = reqwest::Client::new()
        .post(format!("{endpoint}/?X-Amz-Algorithm=AWS4-HMAC-SHA256"))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "Kinesis_20131202.ListStreams")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["__type"], "IncompleteSignatureException");
    assert_eq!(
        body["message"],
        "AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must include 'X-Amz-Signature'. AWS query-string parameters must include 'X-Amz-SignedHeaders'. AWS query-string parameters must include 'X-Amz-Date'. Re-examine the query-string parameters."
    );
    server.shutdown().await;
}

#[tokio::test]
async fn allow_unsigned_accepts_requests_without_a_signature() {
    let options = ServerOptions {
        allow_unsigned: true,
        ..ServerOptions::default()
    };
    let (_broker, server) = server_common::start(options).await;
    let (status, _, body) = raw_call(&server.endpoint(), "ListStreams", None, "{}").await;
    assert_eq!(status, 200, "{body}");
    // A header that is not SigV4 is ignored too (the request is served in the default region).
    let (status, _, body) =
        raw_call(&server.endpoint(), "ListStreams", Some("Basic x"), "{}").await;
    assert_eq!(status, 200, "{body}");
    server.shutdown().await;
}

#[tokio::test]
async fn cors_preflights_and_answers_carry_the_headers_kinesis_sends() {
    let (_broker, server) = server_common::start(ServerOptions::default()).await;
    let endpoint = server.endpoint();
    let http = reqwest::Client::new();

    let preflight = http
        .request(reqwest::Method::OPTIONS, &endpoint)
        .header("origin", "http://app.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,x-amz-date,x-amz-target,x-amz-user-agent",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    let headers = preflight.headers().clone();
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(headers["access-control-allow-methods"], "POST");
    assert_eq!(
        headers["access-control-allow-headers"],
        "authorization,content-type,x-amz-date,x-amz-target,x-amz-user-agent"
    );
    assert_eq!(headers["access-control-max-age"], "172800");
    assert!(headers.contains_key("x-amzn-requestid"));
    assert!(preflight.bytes().await.unwrap().is_empty());

    // Answers (successes and errors) to requests with Origin allow it and expose AWS's headers.
    for authorization in [Some(ANY_KEY), None] {
        let mut request = http
            .post(&endpoint)
            .header("origin", "http://app.example")
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", "Kinesis_20131202.ListStreams")
            .header("x-amz-date", "20261125T200000Z")
            .body("{}");
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let response = request.send().await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["access-control-allow-origin"], "*");
        assert_eq!(
            headers["access-control-expose-headers"],
            "x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date"
        );
    }

    // Without Origin there is no CORS header, and OPTIONS is no operation.
    let (_, headers, _) = raw_call(&endpoint, "ListStreams", Some(ANY_KEY), "{}").await;
    assert!(!headers.contains_key("access-control-allow-origin"));
    let plain_options = http
        .request(reqwest::Method::OPTIONS, &endpoint)
        .send()
        .await
        .unwrap();
    assert_eq!(plain_options.status(), 400);
    server.shutdown().await;
}
