//! Account settings and capacity settings of the in-process engine: the minimum throughput
//! billing commitment (DescribeAccountSettings / UpdateAccountSettings, its 24-hour term on the
//! injected clock), UpdateStreamWarmThroughput (on-demand streams of committed accounts only),
//! UpdateMaxRecordSize (the record size limit PutRecord and PutRecords enforce), ON_DEMAND
//! defaults, and all of it kept across a restart with the durable journal.

mod engine_support;

use broker::engine::{
    Broker, BrokerConfig, CommitmentStatus, CreateStreamInput, PutRecordsInput,
    PutRecordsRequestEntry, StreamMode, StreamRef, UpdateMaxRecordSizeInput, UpdateStreamModeInput,
    UpdateStreamWarmThroughputInput,
};
use engine_support::*;
use kcl_core::kinesis::{EpochMillis, KinesisErrorKind};
use std::time::Duration;

const ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/s";
const HOUR: Duration = Duration::from_secs(3600);

fn warm(stream: &str, mibps: u32) -> UpdateStreamWarmThroughputInput {
    UpdateStreamWarmThroughputInput {
        stream: StreamRef::from(stream),
        warm_throughput_mibps: mibps,
    }
}

fn max_record_size(kib: u32) -> UpdateMaxRecordSizeInput {
    UpdateMaxRecordSizeInput {
        stream: StreamRef::Arn(ARN.to_owned()),
        max_record_size_kib: kib,
    }
}

async fn create_on_demand(broker: &Broker, name: &str) {
    broker
        .create_stream(CreateStreamInput {
            stream_name: name.into(),
            shard_count: None,
            stream_mode: Some(StreamMode::OnDemand),
            ..Default::default()
        })
        .await
        .expect("create an on-demand stream");
}

#[tokio::test]
async fn the_billing_commitment_has_a_24_hour_term() {
    let (clock, broker) = manual_broker();
    let initial = broker.describe_account_settings().await.unwrap();
    assert_eq!(initial.status, CommitmentStatus::Disabled);
    assert_eq!(initial.started_at, None);

    let enabled = broker
        .update_account_settings(CommitmentStatus::Enabled)
        .await
        .unwrap();
    assert_eq!(enabled.status, CommitmentStatus::Enabled);
    assert_eq!(enabled.started_at, Some(START));
    assert_eq!(
        enabled.earliest_allowed_end_at,
        Some(EpochMillis(START.0 + 24 * 3_600_000))
    );
    assert_eq!(broker.describe_account_settings().await.unwrap(), enabled);

    // Disabling inside the term only schedules the end; enabling again cancels that.
    clock.advance(HOUR);
    let pending = broker
        .update_account_settings(CommitmentStatus::Disabled)
        .await
        .unwrap();
    assert_eq!(
        pending.status,
        CommitmentStatus::EnabledUntilEarliestAllowedEnd
    );
    let again = broker
        .update_account_settings(CommitmentStatus::Enabled)
        .await
        .unwrap();
    assert_eq!(again.status, CommitmentStatus::Enabled);
    assert_eq!(again.started_at, Some(START), "the same term goes on");
    broker
        .update_account_settings(CommitmentStatus::Disabled)
        .await
        .unwrap();

    // The scheduled end takes effect when the clock passes it.
    clock.advance(24 * HOUR);
    let ended = broker.describe_account_settings().await.unwrap();
    assert_eq!(ended.status, CommitmentStatus::Disabled);
    assert_eq!(ended.ended_at, enabled.earliest_allowed_end_at);

    let refused = broker
        .update_account_settings(CommitmentStatus::EnabledUntilEarliestAllowedEnd)
        .await;
    assert_kind(refused, KinesisErrorKind::InvalidArgument);
}

#[tokio::test]
async fn warm_throughput_needs_an_on_demand_stream_and_a_commitment() {
    let (_clock, broker) = manual_broker();
    create(&broker, "provisioned", 1).await;
    create_on_demand(&broker, "s").await;

    let no_commitment = broker.update_stream_warm_throughput(warm("s", 100)).await;
    let error = assert_kind(no_commitment, KinesisErrorKind::InvalidArgument);
    assert!(error.message.contains("MinimumThroughputBillingCommitment"));

    broker
        .update_account_settings(CommitmentStatus::Enabled)
        .await
        .unwrap();
    let provisioned = broker
        .update_stream_warm_throughput(warm("provisioned", 100))
        .await;
    assert_kind(provisioned, KinesisErrorKind::InvalidArgument);
    let unknown = broker
        .update_stream_warm_throughput(warm("nope", 100))
        .await;
    assert_kind(unknown, KinesisErrorKind::ResourceNotFound);
    let too_much = broker
        .update_stream_warm_throughput(warm("s", 10 * 1024 + 1))
        .await;
    assert_kind(too_much, KinesisErrorKind::LimitExceeded);

    let updated = broker
        .update_stream_warm_throughput(warm(ARN, 250))
        .await
        .unwrap();
    assert_eq!(updated.stream_name, "s");
    assert_eq!(updated.stream_arn, ARN);
    assert_eq!(updated.warm_throughput.target_mibps, 250);
    assert_eq!(updated.warm_throughput.current_mibps, 250);
    let summary = broker
        .describe_stream_summary(StreamRef::name("s"))
        .await
        .unwrap();
    assert_eq!(
        summary.warm_throughput.map(|warm| warm.target_mibps),
        Some(250)
    );
    let provisioned = broker
        .describe_stream_summary(StreamRef::name("provisioned"))
        .await
        .unwrap();
    assert_eq!(provisioned.warm_throughput, None);

    // Back to PROVISIONED, the warm throughput is gone.
    broker
        .update_stream_mode(UpdateStreamModeInput {
            stream_arn: ARN.into(),
            stream_mode: StreamMode::Provisioned,
        })
        .await
        .unwrap();
    let summary = broker
        .describe_stream_summary(StreamRef::name("s"))
        .await
        .unwrap();
    assert_eq!(summary.warm_throughput, None);
}

#[tokio::test]
async fn the_max_record_size_is_enforced_per_stream() {
    let (_clock, broker) = manual_broker();
    create(&broker, "s", 1).await;
    create(&broker, "other", 1).await;
    let summary = broker
        .describe_stream_summary(StreamRef::name("s"))
        .await
        .unwrap();
    assert_eq!(summary.max_record_size_kib, 1024);

    // 2 MiB of data: too large for a default stream, with the limit named.
    let large = "x".repeat(2 * 1024 * 1024);
    let refused = broker.put_record(put_input("s", "k", &large)).await;
    let error = assert_kind(refused, KinesisErrorKind::Validation);
    assert!(
        error
            .message
            .contains("Member must have length less than or equal to 1048576"),
        "{error}"
    );

    for out_of_range in [1023, 10241] {
        let refused = broker
            .update_max_record_size(max_record_size(out_of_range))
            .await;
        assert_kind(refused, KinesisErrorKind::Validation);
    }
    let unknown = broker
        .update_max_record_size(UpdateMaxRecordSizeInput {
            stream: StreamRef::Arn(ARN.replace("/s", "/nope")),
            max_record_size_kib: 4096,
        })
        .await;
    assert_kind(unknown, KinesisErrorKind::ResourceNotFound);

    broker
        .update_max_record_size(max_record_size(4096))
        .await
        .unwrap();
    let summary = broker
        .describe_stream_summary(StreamRef::name("s"))
        .await
        .unwrap();
    assert_eq!(summary.max_record_size_kib, 4096);
    broker
        .put_record(put_input("s", "k", &large))
        .await
        .expect("2 MiB fits a 4 MiB limit");
    let batch = |stream: &str| PutRecordsInput {
        stream: StreamRef::name(stream),
        records: vec![PutRecordsRequestEntry {
            data: large.clone().into(),
            partition_key: "k".into(),
            explicit_hash_key: None,
        }],
    };
    let accepted = broker.put_records(batch("s")).await.unwrap();
    assert_eq!(accepted.failed_record_count, 0);
    // The other stream keeps the default.
    let refused = broker.put_records(batch("other")).await;
    let error = assert_kind(refused, KinesisErrorKind::Validation);
    assert!(error.message.contains("records.1.member.data"), "{error}");

    // Beyond 10 MiB nothing is accepted, whatever the stream's limit.
    broker
        .update_max_record_size(max_record_size(10240))
        .await
        .unwrap();
    let too_large = "x".repeat(10 * 1024 * 1024 + 1);
    let refused = broker.put_record(put_input("s", "k", &too_large)).await;
    let error = assert_kind(refused, KinesisErrorKind::Validation);
    assert!(error.message.contains("10485760"), "{error}");
}

#[tokio::test]
async fn on_demand_streams_start_with_four_shards_up_to_the_stream_limit() {
    let (_clock, config) = manual_config();
    let config = BrokerConfig {
        on_demand_stream_limit: 2,
        ..config
    };
    let broker = Broker::new(config);
    create_on_demand(&broker, "a").await;
    let summary = broker
        .describe_stream_summary(StreamRef::name("a"))
        .await
        .unwrap();
    assert_eq!(summary.stream_mode, StreamMode::OnDemand);
    assert_eq!(summary.open_shard_count, 4);
    create_on_demand(&broker, "b").await;
    let over = broker
        .create_stream(CreateStreamInput {
            stream_name: "c".into(),
            stream_mode: Some(StreamMode::OnDemand),
            ..Default::default()
        })
        .await;
    assert_kind(over, KinesisErrorKind::LimitExceeded);
    let limits = broker.describe_limits().await.unwrap();
    assert_eq!(limits.on_demand_stream_count, 2);
    assert_eq!(limits.on_demand_stream_count_limit, 2);
}

/// Account and capacity settings survive a restart on the durable journal.
#[cfg(feature = "storage")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_and_capacity_settings_survive_a_restart_in_durable_mode() {
    use broker::storage::{FsyncPolicy, StorageConfig};
    use std::sync::Arc;

    async fn open(
        dir: &std::path::Path,
        config: BrokerConfig,
    ) -> (Broker, Arc<broker::storage::DiskJournal>) {
        let storage = StorageConfig::new(dir, FsyncPolicy::Always);
        let opened = tokio::task::spawn_blocking(move || broker::storage::open(storage))
            .await
            .expect("open task")
            .expect("open the data directory");
        let journal = opened.journal.clone();
        let broker = Broker::restore(config, opened.journal, opened.state).expect("restore");
        (broker, journal)
    }

    async fn close(broker: Broker, journal: Arc<broker::storage::DiskJournal>) {
        broker.shutdown().await;
        journal.sync().await.expect("sync");
        tokio::task::spawn_blocking(move || journal.shutdown())
            .await
            .expect("shutdown task");
    }

    let dir = tempfile::tempdir().unwrap();
    let (_clock, config) = manual_config();
    let (first, journal) = open(dir.path(), config.clone()).await;
    create_on_demand(&first, "s").await;
    let enabled = first
        .update_account_settings(CommitmentStatus::Enabled)
        .await
        .unwrap();
    first
        .update_stream_warm_throughput(warm("s", 300))
        .await
        .unwrap();
    first
        .update_max_record_size(max_record_size(2048))
        .await
        .unwrap();
    close(first, journal).await;

    let (second, journal) = open(dir.path(), config).await;
    assert_eq!(second.describe_account_settings().await.unwrap(), enabled);
    let summary = second
        .describe_stream_summary(StreamRef::name("s"))
        .await
        .unwrap();
    assert_eq!(summary.stream_mode, StreamMode::OnDemand);
    assert_eq!(summary.max_record_size_kib, 2048);
    assert_eq!(
        summary.warm_throughput.map(|warm| warm.current_mibps),
        Some(300)
    );
    let large = "x".repeat(1536 * 1024);
    second
        .put_record(put_input("s", "k", &large))
        .await
        .expect("the restored limit still applies");
    close(second, journal).await;
}

#[tokio::test]
async fn a_large_record_bursts_past_the_write_rate_and_the_shard_then_recovers() {
    let (clock, config) = manual_config();
    let config = BrokerConfig {
        throughput: broker::engine::ThroughputLimits::KINESIS,
        ..config
    };
    let broker = Broker::new(config);
    create(&broker, "s", 1).await;
    broker
        .update_max_record_size(max_record_size(4096))
        .await
        .unwrap();
    // 3 MiB is three seconds of a shard's write rate: accepted on a full bucket...
    let large = "x".repeat(3 * 1024 * 1024);
    broker
        .put_record(put_input("s", "k", &large))
        .await
        .expect("a large record fits a full bucket");
    // ...which is then in debt until the rate has paid it back.
    let throttled = broker.put_record(put_input("s", "k", "small")).await;
    assert_kind(throttled, KinesisErrorKind::ProvisionedThroughputExceeded);
    clock.advance(Duration::from_secs(1));
    let still = broker.put_record(put_input("s", "k", "small")).await;
    assert_kind(still, KinesisErrorKind::ProvisionedThroughputExceeded);
    clock.advance(Duration::from_secs(3));
    broker
        .put_record(put_input("s", "k", "small"))
        .await
        .expect("the debt is repaid");
}
