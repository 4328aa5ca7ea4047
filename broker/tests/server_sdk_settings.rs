//! The AWS SDK for Rust drives the stream-settings operations over HTTP: StartStreamEncryption,
//! StopStreamEncryption, Enable/DisableEnhancedMonitoring and Put/Get/DeleteResourcePolicy, and
//! reads them back through DescribeStream(Summary).

mod server_common;

use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{EncryptionType, MetricsName};
use broker::server::ServerOptions;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kinesis:GetRecords","Resource":"*"}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_drives_stream_settings() -> TestResult {
    let (_broker, server) = server_common::start(ServerOptions::default()).await;
    let client = server_common::client(&server.endpoint());
    client
        .create_stream()
        .stream_name("s")
        .shard_count(1)
        .send()
        .await?;
    let arn = client
        .describe_stream_summary()
        .stream_name("s")
        .send()
        .await?
        .stream_description_summary()
        .map(|summary| summary.stream_arn().to_owned())
        .ok_or("no summary")?;

    client
        .start_stream_encryption()
        .stream_arn(&arn)
        .encryption_type(EncryptionType::Kms)
        .key_id("alias/aws/kinesis")
        .send()
        .await?;
    let described = client.describe_stream().stream_name("s").send().await?;
    let description = described.stream_description().ok_or("no description")?;
    assert_eq!(description.encryption_type(), Some(&EncryptionType::Kms));
    assert_eq!(description.key_id(), Some("alias/aws/kinesis"));
    let put = client
        .put_record()
        .stream_name("s")
        .data(Blob::new("x"))
        .partition_key("k")
        .send()
        .await?;
    assert_eq!(put.encryption_type(), Some(&EncryptionType::Kms));
    client
        .stop_stream_encryption()
        .stream_name("s")
        .encryption_type(EncryptionType::Kms)
        .key_id("alias/aws/kinesis")
        .send()
        .await?;
    let summary = client
        .describe_stream_summary()
        .stream_name("s")
        .send()
        .await?;
    let summary = summary.stream_description_summary().ok_or("no summary")?;
    assert_eq!(summary.encryption_type(), Some(&EncryptionType::None));
    assert_eq!(summary.key_id(), None);

    let enabled = client
        .enable_enhanced_monitoring()
        .stream_name("s")
        .shard_level_metrics(MetricsName::All)
        .send()
        .await?;
    assert!(enabled.current_shard_level_metrics().is_empty());
    assert_eq!(enabled.desired_shard_level_metrics().len(), 7);
    assert!(
        !enabled
            .desired_shard_level_metrics()
            .contains(&MetricsName::All),
        "ALL is expanded"
    );
    let disabled = client
        .disable_enhanced_monitoring()
        .stream_arn(&arn)
        .shard_level_metrics(MetricsName::IncomingBytes)
        .shard_level_metrics(MetricsName::OutgoingBytes)
        .send()
        .await?;
    assert_eq!(disabled.current_shard_level_metrics().len(), 7);
    assert_eq!(disabled.desired_shard_level_metrics().len(), 5);
    assert_eq!(disabled.stream_name(), Some("s"));
    assert_eq!(disabled.stream_arn(), Some(arn.as_str()));
    let summary = client
        .describe_stream_summary()
        .stream_name("s")
        .send()
        .await?;
    let summary = summary.stream_description_summary().ok_or("no summary")?;
    let monitored = summary.enhanced_monitoring();
    assert_eq!(monitored.len(), 1);
    assert_eq!(
        monitored[0].shard_level_metrics(),
        disabled.desired_shard_level_metrics()
    );

    client
        .put_resource_policy()
        .resource_arn(&arn)
        .policy(POLICY)
        .send()
        .await?;
    let policy = client
        .get_resource_policy()
        .resource_arn(&arn)
        .send()
        .await?;
    assert_eq!(policy.policy(), POLICY);
    let consumer = client
        .register_stream_consumer()
        .stream_arn(&arn)
        .consumer_name("reader")
        .send()
        .await?;
    let consumer_arn = consumer
        .consumer()
        .map(|consumer| consumer.consumer_arn().to_owned())
        .ok_or("no consumer")?;
    client
        .put_resource_policy()
        .resource_arn(&consumer_arn)
        .policy(POLICY)
        .send()
        .await?;
    let consumer_policy = client
        .get_resource_policy()
        .resource_arn(&consumer_arn)
        .send()
        .await?;
    assert_eq!(consumer_policy.policy(), POLICY);
    client
        .delete_resource_policy()
        .resource_arn(&arn)
        .send()
        .await?;
    let cleared = client
        .get_resource_policy()
        .resource_arn(&arn)
        .send()
        .await?;
    assert_eq!(cleared.policy(), "{}");

    let missing = client
        .get_resource_policy()
        .resource_arn(arn.replace("stream/s", "stream/missing"))
        .send()
        .await
        .expect_err("unknown stream");
    assert_eq!(missing.code(), Some("ResourceNotFoundException"));
    let invalid = client
        .enable_enhanced_monitoring()
        .stream_name("s")
        .shard_level_metrics(MetricsName::from("Latency"))
        .send()
        .await
        .expect_err("unknown metric");
    assert_eq!(invalid.code(), Some("ValidationException"));
    server.shutdown().await;
    Ok(())
}
