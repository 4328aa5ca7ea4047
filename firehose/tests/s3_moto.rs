//! The S3 sink against a real S3-compatible server (moto's server mode, as installed by
//! `.ci/run`): objects written by `ObjectStoreSink` directly and by a whole delivery are read
//! back over plain HTTP.

#[path = "../../kcl-core/tests/support/dynamodb_local.rs"]
mod dynamodb_local;
#[path = "../../kcl-core/tests/support/missing_tool.rs"]
mod missing_tool;
mod support;

use bytes::Bytes;
use dynamodb_local::{LocalDynamoDb, ServerKind};
use firehose::sink::{ObjectSink, ObjectStoreSink, S3Options};
use firehose::{
    BufferingHints, Compression, Delivery, DeliveryParams, DeliveryStreamConfig, S3Destination,
};
use kcl_core::clock::SystemClock;
use kcl_core::lineage::InitialPosition;
use kcl_core::sqlite::SqliteLeaseStore;
use kcl_worker::client::EmbeddedStreamClient;
use std::sync::Arc;
use std::time::Duration;
use support::*;

/// moto's server (it serves S3 next to DynamoDB), or `None` after a loud skip message.
fn moto() -> anyhow::Result<Option<LocalDynamoDb>> {
    // The launcher falls back to dynalite, which has no S3: only moto will do.
    let moto_installed = std::process::Command::new("python3")
        .args(["-c", "import moto.server, flask"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !moto_installed {
        missing_tool::skip_for_missing_tool(
            "S3 sink tests",
            "moto is not installed (`python3 -m pip install 'moto[server]'`)",
        );
        return Ok(None);
    }
    let server = LocalDynamoDb::start()?;
    if let Some(server) = &server {
        anyhow::ensure!(server.kind() == ServerKind::Moto, "moto did not start");
    }
    Ok(server)
}

fn options(endpoint: &str) -> S3Options {
    S3Options {
        endpoint: Some(endpoint.to_owned()),
        region: "us-east-1".into(),
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
    }
}

/// moto picks the service from the credential scope of the `Authorization` header and does
/// not verify signatures: plain HTTP requests with this header reach its S3.
const S3_SCOPE: &str = "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";

/// Creates a bucket with a plain HTTP PUT.
async fn create_bucket(http: &reqwest::Client, endpoint: &str, bucket: &str) -> anyhow::Result<()> {
    let response = http
        .put(format!("{endpoint}/{bucket}"))
        .header("authorization", S3_SCOPE)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "create bucket: {}",
        response.status()
    );
    Ok(())
}

/// The keys in `bucket` (ListObjectsV2, keys picked out of the XML).
async fn list_keys(
    http: &reqwest::Client,
    endpoint: &str,
    bucket: &str,
) -> anyhow::Result<Vec<String>> {
    let xml = http
        .get(format!("{endpoint}/{bucket}?list-type=2&max-keys=1000"))
        .header("authorization", S3_SCOPE)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(xml
        .split("<Key>")
        .skip(1)
        .filter_map(|rest| rest.split("</Key>").next())
        .map(str::to_owned)
        .collect())
}

async fn get(
    http: &reqwest::Client,
    endpoint: &str,
    bucket: &str,
    key: &str,
) -> anyhow::Result<Vec<u8>> {
    Ok(http
        .get(format!("{endpoint}/{bucket}/{key}"))
        .header("authorization", S3_SCOPE)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?
        .to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_sink_writes_objects_to_s3() -> anyhow::Result<()> {
    let Some(server) = moto()? else { return Ok(()) };
    let endpoint = server.endpoint_url();
    let http = reqwest::Client::new();
    create_bucket(&http, &endpoint, "sink-bucket").await?;
    let sink = ObjectStoreSink::s3(options(&endpoint));
    sink.put(
        "sink-bucket",
        "a/b/one.txt",
        Bytes::from_static(b"hello s3"),
    )
    .await?;
    assert_eq!(
        get(&http, &endpoint, "sink-bucket", "a/b/one.txt").await?,
        b"hello s3"
    );
    // A missing bucket is an error naming the bucket and key, not a panic.
    let error = sink
        .put("no-such-bucket", "x", Bytes::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("no-such-bucket/x"), "{error}");
    // Invalid keys never reach the store.
    assert!(sink.put("sink-bucket", "../x", Bytes::new()).await.is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_writes_gzip_objects_to_s3() -> anyhow::Result<()> {
    let Some(server) = moto()? else { return Ok(()) };
    let endpoint = server.endpoint_url();
    let http = reqwest::Client::new();
    create_bucket(&http, &endpoint, "delivered").await?;
    let rig = Rig::new(SystemClock::shared(), 1, Leases::Sqlite).await?;
    let records = numbered(1_000);
    rig.put(&records).await?;
    let delivery = Delivery::start(DeliveryParams {
        config: DeliveryStreamConfig {
            name: "to-s3".into(),
            version_id: 1,
            destination: S3Destination {
                prefix: Some("logs/!{timestamp:yyyy}/".into()),
                compression: Compression::Gzip,
                buffering: BufferingHints {
                    size_mib: 1,
                    interval_secs: 1,
                },
                ..S3Destination::new("delivered")
            },
        },
        source_stream: rig.stream.clone(),
        stream_client: Arc::new(EmbeddedStreamClient::new(rig.broker.clone())),
        lease_store: Arc::new(SqliteLeaseStore::open(rig.lease_file(), "firehose-to-s3").await?),
        sink: Arc::new(ObjectStoreSink::s3(options(&endpoint))),
        clock: rig.clock.clone(),
        worker_id: "worker-1".into(),
        initial_position: InitialPosition::TrimHorizon,
        delivery_stream_arn: String::new(),
    })
    .await?;
    wait_until("all records in S3", Duration::from_secs(120), || {
        delivery.stats().records_delivered >= records.len() as u64
    })
    .await;
    delivery.shutdown().await;
    let keys = list_keys(&http, &endpoint, "delivered").await?;
    assert!(!keys.is_empty());
    let mut bodies = Vec::new();
    for key in &keys {
        assert!(key.starts_with("logs/") && key.ends_with(".gz"), "{key}");
        assert_object_name(
            key.rsplit('/').next().unwrap_or_default(),
            "to-s3",
            1,
            ".gz",
        );
        bodies.push(gunzip(&get(&http, &endpoint, "delivered", key).await?));
    }
    bodies.sort();
    let delivered: Vec<Vec<u8>> = bodies.iter().flat_map(|body| lines(body)).collect();
    assert_eq!(delivered, records);
    Ok(())
}
