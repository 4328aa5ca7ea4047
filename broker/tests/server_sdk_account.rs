//! The AWS SDK for Rust against the server: the account-level and capacity operations
//! (DescribeAccountSettings, UpdateAccountSettings, UpdateStreamWarmThroughput,
//! UpdateMaxRecordSize, ON_DEMAND streams), and the caller's region: two clients signing for
//! two regions see separate streams, and ARNs (stream, consumer, ListStreams summaries) carry
//! each client's own region.

mod server_common;

use aws_sdk_kinesis::config::{Credentials, Region};
use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    MinimumThroughputBillingCommitmentInput, MinimumThroughputBillingCommitmentInputStatus,
    MinimumThroughputBillingCommitmentOutputStatus, StreamMode, StreamModeDetails,
};
use broker::server::ServerOptions;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn client_in(endpoint: &str, region: &'static str) -> aws_sdk_kinesis::Client {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version_latest()
        .region(Region::new(region))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .build();
    aws_sdk_kinesis::Client::from_conf(config)
}

fn commitment(
    status: MinimumThroughputBillingCommitmentInputStatus,
) -> Result<MinimumThroughputBillingCommitmentInput, aws_sdk_kinesis::error::BuildError> {
    MinimumThroughputBillingCommitmentInput::builder()
        .status(status)
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_drives_account_and_capacity_settings() -> TestResult {
    let (_broker, server) = server_common::start(ServerOptions::default()).await;
    let client = server_common::client(&server.endpoint());

    let settings = client.describe_account_settings().send().await?;
    let current = settings
        .minimum_throughput_billing_commitment()
        .ok_or("no commitment")?;
    assert_eq!(
        current.status(),
        &MinimumThroughputBillingCommitmentOutputStatus::Disabled
    );

    client
        .create_stream()
        .stream_name("od")
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()?,
        )
        .send()
        .await?;
    let summary = client
        .describe_stream_summary()
        .stream_name("od")
        .send()
        .await?;
    let summary = summary.stream_description_summary().ok_or("no summary")?;
    assert_eq!(
        summary.open_shard_count(),
        4,
        "on-demand streams start with 4 shards"
    );
    assert_eq!(
        summary
            .stream_mode_details()
            .map(|details| details.stream_mode()),
        Some(&StreamMode::OnDemand)
    );
    assert_eq!(summary.max_record_size_in_kib(), Some(1024));
    assert!(summary.warm_throughput().is_none());
    let arn = summary.stream_arn().to_owned();

    // Warm throughput needs a commitment first.
    let error = client
        .update_stream_warm_throughput()
        .stream_name("od")
        .warm_throughput_mibps(100)
        .send()
        .await
        .expect_err("no commitment yet");
    assert_eq!(error.code(), Some("InvalidArgumentException"));

    let updated = client
        .update_account_settings()
        .minimum_throughput_billing_commitment(commitment(
            MinimumThroughputBillingCommitmentInputStatus::Enabled,
        )?)
        .send()
        .await?;
    let enabled = updated
        .minimum_throughput_billing_commitment()
        .ok_or("no commitment")?;
    assert_eq!(
        enabled.status(),
        &MinimumThroughputBillingCommitmentOutputStatus::Enabled
    );
    let started = enabled.started_at().ok_or("no StartedAt")?;
    let earliest = enabled.earliest_allowed_end_at().ok_or("no end")?;
    assert_eq!(earliest.secs() - started.secs(), 24 * 3600);

    let warm = client
        .update_stream_warm_throughput()
        .stream_arn(&arn)
        .warm_throughput_mibps(200)
        .send()
        .await?;
    assert_eq!(warm.stream_name(), Some("od"));
    assert_eq!(warm.stream_arn(), Some(arn.as_str()));
    let warm_throughput = warm.warm_throughput().ok_or("no WarmThroughput")?;
    assert_eq!(warm_throughput.target_mibps(), Some(200));
    assert_eq!(warm_throughput.current_mibps(), Some(200));

    // Disabling inside the 24-hour term is deferred.
    let disabled = client
        .update_account_settings()
        .minimum_throughput_billing_commitment(commitment(
            MinimumThroughputBillingCommitmentInputStatus::Disabled,
        )?)
        .send()
        .await?;
    assert_eq!(
        disabled
            .minimum_throughput_billing_commitment()
            .map(|commitment| commitment.status()),
        Some(&MinimumThroughputBillingCommitmentOutputStatus::EnabledUntilEarliestAllowedEnd)
    );

    // UpdateMaxRecordSize changes what PutRecord accepts.
    let two_mib = Blob::new(vec![b'x'; 2 * 1024 * 1024]);
    let error = client
        .put_record()
        .stream_name("od")
        .partition_key("k")
        .data(two_mib.clone())
        .send()
        .await
        .expect_err("2 MiB is over the default limit");
    assert_eq!(error.code(), Some("ValidationException"));
    let error = client
        .update_max_record_size()
        .stream_arn(&arn)
        .max_record_size_in_kib(20_000)
        .send()
        .await
        .expect_err("over 10240 KiB");
    assert_eq!(error.code(), Some("ValidationException"));
    client
        .update_max_record_size()
        .stream_arn(&arn)
        .max_record_size_in_kib(3072)
        .send()
        .await?;
    client
        .put_record()
        .stream_name("od")
        .partition_key("k")
        .data(two_mib)
        .send()
        .await?;
    let summary = client
        .describe_stream_summary()
        .stream_name("od")
        .send()
        .await?;
    let summary = summary.stream_description_summary().ok_or("no summary")?;
    assert_eq!(summary.max_record_size_in_kib(), Some(3072));
    assert_eq!(
        summary
            .warm_throughput()
            .and_then(|warm| warm.target_mibps()),
        Some(200)
    );
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_two_regions_see_separate_streams_with_their_own_arns() -> TestResult {
    let (_broker, server) = server_common::start(ServerOptions::default()).await;
    let east = client_in(&server.endpoint(), "us-east-1");
    let west = client_in(&server.endpoint(), "eu-west-1");

    east.create_stream()
        .stream_name("orders")
        .shard_count(1)
        .send()
        .await?;
    west.create_stream()
        .stream_name("orders")
        .shard_count(2)
        .send()
        .await?;
    west.create_stream()
        .stream_name("only-west")
        .shard_count(1)
        .send()
        .await?;

    let east_names = east.list_streams().send().await?;
    assert_eq!(east_names.stream_names(), ["orders"]);
    let west_names = west.list_streams().send().await?;
    assert_eq!(west_names.stream_names(), ["only-west", "orders"]);
    for summary in west_names.stream_summaries() {
        assert!(
            summary
                .stream_arn()
                .starts_with("arn:aws:kinesis:eu-west-1:000000000000:stream/"),
            "{}",
            summary.stream_arn()
        );
    }

    let east_orders = east.describe_stream().stream_name("orders").send().await?;
    let east_orders = east_orders.stream_description().ok_or("no description")?;
    assert_eq!(
        east_orders.stream_arn(),
        "arn:aws:kinesis:us-east-1:000000000000:stream/orders"
    );
    assert_eq!(east_orders.shards().len(), 1);
    let west_orders = west.describe_stream().stream_name("orders").send().await?;
    let west_orders = west_orders.stream_description().ok_or("no description")?;
    assert_eq!(
        west_orders.stream_arn(),
        "arn:aws:kinesis:eu-west-1:000000000000:stream/orders"
    );
    assert_eq!(west_orders.shards().len(), 2);

    let error = east
        .describe_stream_summary()
        .stream_name("only-west")
        .send()
        .await
        .expect_err("streams are per region");
    assert_eq!(error.code(), Some("ResourceNotFoundException"));
    // Another region's ARN names no stream of this region.
    let error = east
        .describe_stream_summary()
        .stream_arn(west_orders.stream_arn())
        .send()
        .await
        .expect_err("a eu-west-1 ARN in us-east-1");
    assert_eq!(error.code(), Some("ResourceNotFoundException"));

    let consumer = west
        .register_stream_consumer()
        .stream_arn(west_orders.stream_arn())
        .consumer_name("app")
        .send()
        .await?;
    let consumer_arn = consumer
        .consumer()
        .map(|consumer| consumer.consumer_arn().to_owned())
        .ok_or("no consumer")?;
    assert!(
        consumer_arn
            .starts_with("arn:aws:kinesis:eu-west-1:000000000000:stream/orders/consumer/app:"),
        "{consumer_arn}"
    );

    // Records stay in their region too.
    west.put_record()
        .stream_name("orders")
        .partition_key("k")
        .data(Blob::new("west"))
        .send()
        .await?;
    let east_iterator = east
        .get_shard_iterator()
        .stream_name("orders")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await?;
    let east_records = east
        .get_records()
        .shard_iterator(east_iterator.shard_iterator().ok_or("no iterator")?)
        .send()
        .await?;
    assert!(east_records.records().is_empty());
    server.shutdown().await;
    Ok(())
}
