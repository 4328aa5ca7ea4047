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
