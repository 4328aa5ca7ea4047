//! Shared helpers of the server tests: an in-process server and an SDK client for it.

#![allow(dead_code)]

pub(crate) mod boto3;

use aws_sdk_kinesis::config::{Credentials, Region};
use broker::engine::{Broker, BrokerConfig};
use broker::server::{RunningServer, ServerOptions};

/// A broker without throughput limits served on a free loopback port.
pub(crate) async fn start(options: ServerOptions) -> (Broker, RunningServer) {
    let broker = Broker::new(BrokerConfig::unlimited());
    let server = broker::server::spawn(broker.clone(), options, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind a loopback port");
    (broker, server)
}

/// Posts a hand-written JSON body to `operation` (unsigned: the server must allow it);
/// answers the status, the `x-amzn-ErrorType` header (empty when absent) and the body parsed
/// as JSON (`Null` when it is not JSON).
pub(crate) async fn post_json(
    http: &reqwest::Client,
    endpoint: &str,
    operation: &str,
    body: &str,
) -> (u16, String, serde_json::Value) {
    let response = http
        .post(endpoint)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("Kinesis_20131202.{operation}"))
        .body(body.to_owned())
        .send()
        .await
        .expect("the broker answers");
    let status = response.status().as_u16();
    let error_type = response
        .headers()
        .get("x-amzn-errortype")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = response.bytes().await.expect("a body");
    let answer = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, error_type, answer)
}

/// An AWS SDK client for `endpoint` signing with the given keys.
pub(crate) fn client_with_keys(
    endpoint: &str,
    access_key: &str,
    secret: &str,
) -> aws_sdk_kinesis::Client {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(access_key, secret, None, None, "test"))
        .build();
    aws_sdk_kinesis::Client::from_conf(config)
}

/// An AWS SDK client for `endpoint` with throwaway keys.
pub(crate) fn client(endpoint: &str) -> aws_sdk_kinesis::Client {
    client_with_keys(endpoint, "AKIDTEST", "secret")
}

/// Runs the boto3 script `broker/scripts/SCRIPT` against a fresh in-process server and checks
/// that it exits successfully and prints `success_line`. Skipped, with the reason printed, when
/// python3 or boto3 is not installed (CI installs both).
pub(crate) async fn run_boto3_script(script: &str, success_line: &str) {
    if !boto3::boto3_available() {
        return;
    }
    let (_broker, server) = start(ServerOptions::default()).await;
    let script = format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR"));
    boto3::run_boto3_script(&script, &server.endpoint(), &[], success_line).await;
    server.shutdown().await;
}
