//! The Firehose extension of the real `kinesis-broker` binary over plain HTTP: without
//! `--firehose-dir` it answers an error saying how to switch it on; with `--auth-keys` a
//! Firehose request passes the same SigV4 check as Kinesis requests.

mod broker_process;

use broker_process::start_broker;

/// A well-formed SigV4 header whose signature no key produced.
const FORGED_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=AKIDTEST/20261202/us-east-1/firehose/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0000000000000000000000000000000000000000000000000000000000000000";

async fn post(endpoint: &str, target: &str) -> (u16, Option<String>, serde_json::Value) {
    post_signed_as(endpoint, target, FORGED_AUTHORIZATION).await
}

async fn post_signed_as(
    endpoint: &str,
    target: &str,
    authorization: &str,
) -> (u16, Option<String>, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(endpoint)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", target)
        .header("x-amz-date", "20261202T000000Z")
        .header("authorization", authorization)
        .body("{}")
        .send()
        .await
        .expect("the broker answers");
    let status = response.status().as_u16();
    let error_type = response
        .headers()
        .get("x-amzn-errortype")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    assert!(response.headers().contains_key("x-amzn-requestid"));
    let body = response.json().await.expect("a JSON body");
    (status, error_type, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firehose_without_firehose_dir_says_how_to_switch_it_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start_broker(&dir.path().join("data"), &dir.path().join("log"), &[]).await;
    let (status, error_type, body) =
        post(&broker.endpoint, "Firehose_20150804.ListDeliveryStreams").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_type.as_deref(), Some("UnknownOperationException"));
    assert_eq!(body["__type"], "UnknownOperationException");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("--firehose-dir"), "{message}");
    assert!(message.contains("ListDeliveryStreams"), "{message}");
    broker.child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firehose_requests_pass_the_shared_signature_check() {
    let dir = tempfile::tempdir().unwrap();
    let objects = dir.path().join("objects");
    let objects = objects.to_string_lossy();
    let mut broker = start_broker(
        &dir.path().join("data"),
        &dir.path().join("log"),
        &[
            "--auth-keys",
            "AKIDTEST:right-secret",
            "--firehose-dir",
            &objects,
        ],
    )
    .await;
    let (status, error_type, body) =
        post(&broker.endpoint, "Firehose_20150804.ListDeliveryStreams").await;
    assert!((400..500).contains(&status), "{status} {body}");
    let error_type = error_type.unwrap_or_default();
    assert!(
        error_type.contains("Signature"),
        "a forged signature must be refused before the Firehose API: {error_type} {body}"
    );
    broker.child.kill().await.unwrap();
}

/// Delivery streams live in the broker's `--region`: a request signed for another region is
/// refused, not served (and stored) as if it were the broker's own region.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firehose_requests_for_another_region_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let objects = dir.path().join("objects");
    let objects = objects.to_string_lossy();
    let mut broker = start_broker(
        &dir.path().join("data"),
        &dir.path().join("log"),
        &["--region", "us-east-1", "--firehose-dir", &objects],
    )
    .await;
    let home = FORGED_AUTHORIZATION;
    let elsewhere = FORGED_AUTHORIZATION.replace("/us-east-1/", "/eu-west-1/");
    let (status, _, body) = post_signed_as(
        &broker.endpoint,
        "Firehose_20150804.ListDeliveryStreams",
        home,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, error_type, body) = post_signed_as(
        &broker.endpoint,
        "Firehose_20150804.ListDeliveryStreams",
        &elsewhere,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_type.as_deref(), Some("InvalidArgumentException"));
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("eu-west-1"), "{message}");
    broker.child.kill().await.unwrap();
}
