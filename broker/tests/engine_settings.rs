//! Stream settings of the in-process engine: server-side encryption, enhanced monitoring and
//! resource policies (stream and consumer ARNs) — stored, reported by DescribeStream(Summary),
//! validated with Kinesis's wording, and kept across a restart with the durable journal.

mod engine_support;

use broker::engine::{
    Broker, BrokerConfig, ConsumerRef, DeleteStreamInput, DescribeStreamInput, EncryptionType,
    EnhancedMonitoringInput, PutResourcePolicyInput, RegisterStreamConsumerInput,
    StreamEncryptionInput, StreamRef,
};
use engine_support::*;
use kcl_core::kinesis::KinesisErrorKind;
use std::time::Duration;

const ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/s";
const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kinesis:GetRecords","Resource":"*"}]}"#;
const EVERY_METRIC: [&str; 7] = [
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
];

fn encryption(stream: &str, key_id: &str) -> StreamEncryptionInput {
    StreamEncryptionInput {
        stream: StreamRef::from(stream),
        encryption_type: EncryptionType::Kms,
        key_id: key_id.to_owned(),
    }
}

fn metrics(stream: &str, names: &[&str]) -> EnhancedMonitoringInput {
    EnhancedMonitoringInput {
        stream: StreamRef::from(stream),
        shard_level_metrics: names.iter().map(|name| (*name).to_owned()).collect(),
    }
}

fn describe_input(stream: &str) -> DescribeStreamInput {
    DescribeStreamInput {
        stream: StreamRef::from(stream),
        limit: None,
        exclusive_start_shard_id: None,
    }
}

fn owned(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

#[tokio::test]
async fn encryption_is_recorded_and_reported() {
    let (_clock, broker) = manual_broker();
    create(&broker, "s", 1).await;
    let before = broker.describe_stream(describe_input("s")).await.unwrap();
    assert_eq!(before.encryption_type, "NONE");
    assert_eq!(before.key_id, None);

    broker
        .start_stream_encryption(encryption(ARN, "alias/aws/kinesis"))
        .await
        .expect("start encryption by ARN");
    let described = broker.describe_stream(describe_input("s")).await.unwrap();
    assert_eq!(described.encryption_type, "KMS");
    assert_eq!(described.key_id.as_deref(), Some("alias/aws/kinesis"));
    let summary = broker
        .describe_stream_summary(StreamRef::name("s"))
        .await
        .unwrap();
    assert_eq!(summary.encryption_type, "KMS");
    assert_eq!(summary.key_id.as_deref(), Some("alias/aws/kinesis"));
    let put = broker.put_record(put_input("s", "k", "v")).await.unwrap();
    assert_eq!(put.encryption_type, "KMS", "puts say KMS while it is on");

    // A new key replaces the old one; stopping goes back to NONE without a key.
    broker
        .start_stream_encryption(encryption("s", "12345678-1234-1234-1234-123456789012"))
        .await
        .unwrap();
    let summary = broker
        .describe_stream_summary(StreamRef::name("s"))
        .await
        .unwrap();
    assert_eq!(
        summary.key_id.as_deref(),
        Some("12345678-1234-1234-1234-123456789012")
    );
    broker
        .stop_stream_encryption(encryption("s", "12345678-1234-1234-1234-123456789012"))
        .await
        .unwrap();
    let summary = broker
        .describe_stream_summary(StreamRef::name("s"))
        .await
        .unwrap();
    assert_eq!(summary.encryption_type, "NONE");
    assert_eq!(summary.key_id, None);
    let put = broker.put_record(put_input("s", "k", "v")).await.unwrap();
    assert_eq!(put.encryption_type, "NONE");
}

#[tokio::test]
async fn encryption_requests_are_checked() {
    let (_clock, broker) = manual_broker();
    create(&broker, "s", 1).await;
    let empty_key = broker.start_stream_encryption(encryption("s", "")).await;
    let error = assert_kind(empty_key, KinesisErrorKind::Validation);
    assert_eq!(
        error.message,
        "1 validation error detected: Value '' at 'keyId' failed to satisfy constraint: Member must have length greater than or equal to 1"
    );
    let long_key = broker
        .start_stream_encryption(encryption("s", &"k".repeat(2049)))
        .await;
    assert_kind(long_key, KinesisErrorKind::Validation);
    let none = broker
        .start_stream_encryption(StreamEncryptionInput {
            encryption_type: EncryptionType::None,
            ..encryption("s", "alias/aws/kinesis")
        })
        .await;
    assert_kind(none, KinesisErrorKind::InvalidArgument);
    let missing = broker
        .start_stream_encryption(encryption("missing", "alias/aws/kinesis"))
        .await;
    let error = assert_kind(missing, KinesisErrorKind::ResourceNotFound);
    assert_eq!(
        error.message,
        "Stream missing under account 000000000000 not found."
    );
    let bad_name = broker
        .stop_stream_encryption(encryption("bad name", "alias/aws/kinesis"))
        .await;
    assert_kind(bad_name, KinesisErrorKind::Validation);
}

#[tokio::test]
async fn a_stream_being_deleted_rejects_setting_changes() {
    let (clock, config) = manual_config();
    let broker = Broker::new(BrokerConfig {
        delete_delay: Duration::from_secs(10),
        ..config
    });
    create(&broker, "s", 1).await;
    broker
        .delete_stream(DeleteStreamInput {
            stream: StreamRef::name("s"),
            enforce_consumer_deletion: false,
        })
        .await
        .unwrap();
    let encryption = broker
        .start_stream_encryption(encryption("s", "alias/aws/kinesis"))
        .await;
    let error = assert_kind(encryption, KinesisErrorKind::ResourceInUse);
    assert_eq!(
        error.message,
        "Stream s under account 000000000000 not ACTIVE, instead in state DELETING"
    );
    let monitoring = broker
        .enable_enhanced_monitoring(metrics("s", &["ALL"]))
        .await;
    assert_kind(monitoring, KinesisErrorKind::ResourceInUse);
    let policy = broker
        .put_resource_policy(PutResourcePolicyInput {
            resource_arn: ARN.to_owned(),
            policy: POLICY.to_owned(),
        })
        .await;
    assert_kind(policy, KinesisErrorKind::ResourceInUse);
    clock.advance(Duration::from_secs(11));
    let gone = broker
        .enable_enhanced_monitoring(metrics("s", &["ALL"]))
        .await;
    assert_kind(gone, KinesisErrorKind::ResourceNotFound);
}

#[tokio::test]
async fn enhanced_monitoring_answers_current_and_desired_metrics() {
    let (_clock, broker) = manual_broker();
    create(&broker, "s", 2).await;
    let enabled = broker
        .enable_enhanced_monitoring(metrics("s", &["OutgoingBytes", "IncomingBytes"]))
        .await
        .expect("enable");
    assert_eq!(enabled.stream_name, "s");
    assert_eq!(enabled.stream_arn, ARN);
    assert!(enabled.current_shard_level_metrics.is_empty());
    assert_eq!(
        enabled.desired_shard_level_metrics,
        owned(&["IncomingBytes", "OutgoingBytes"])
    );

    let all = broker
        .enable_enhanced_monitoring(metrics(ARN, &["ALL"]))
        .await
        .expect("enable ALL");
    assert_eq!(
        all.current_shard_level_metrics,
        owned(&["IncomingBytes", "OutgoingBytes"])
    );
    assert_eq!(all.desired_shard_level_metrics, owned(&EVERY_METRIC));
    let described = broker.describe_stream(describe_input("s")).await.unwrap();
    assert_eq!(described.shard_level_metrics, owned(&EVERY_METRIC));

    let disabled = broker
        .disable_enhanced_monitoring(metrics("s", &["IteratorAgeMilliseconds", "IncomingBytes"]))
        .await
        .expect("disable two");
    assert_eq!(disabled.current_shard_level_metrics, owned(&EVERY_METRIC));
    assert_eq!(
        disabled.desired_shard_level_metrics,
        owned(&EVERY_METRIC[1..6])
    );
    let summary = broker
        .describe_stream_summary(StreamRef::name("s"))
        .await
        .unwrap();
    assert_eq!(summary.shard_level_metrics, owned(&EVERY_METRIC[1..6]));

    let none = broker
        .disable_enhanced_monitoring(metrics("s", &["ALL"]))
        .await
        .expect("disable ALL");
    assert!(none.desired_shard_level_metrics.is_empty());
    let described = broker.describe_stream(describe_input("s")).await.unwrap();
    assert!(described.shard_level_metrics.is_empty());
}

#[tokio::test]
async fn enhanced_monitoring_requests_are_checked_before_the_stream_is_looked_up() {
    let (_clock, broker) = manual_broker();
    let cases: &[(&[&str], &str)] = &[
        (
            &[],
            "1 validation error detected: Value '[]' at 'shardLevelMetrics' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ),
        (
            &["IncomingBytes", "Bogus"],
            "1 validation error detected: Value '[IncomingBytes, Bogus]' at 'shardLevelMetrics' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [IncomingBytes, IncomingRecords, OutgoingBytes, OutgoingRecords, WriteProvisionedThroughputExceeded, ReadProvisionedThroughputExceeded, IteratorAgeMilliseconds, ALL]]",
        ),
    ];
    for (names, message) in cases {
        let outcome = broker
            .enable_enhanced_monitoring(metrics("missing", names))
            .await;
        let error = assert_kind(outcome, KinesisErrorKind::Validation);
        assert_eq!(&error.message, message);
    }
    let eight = [EVERY_METRIC.as_slice(), &["ALL"]].concat();
    let outcome = broker
        .disable_enhanced_monitoring(metrics("missing", &eight))
        .await;
    let error = assert_kind(outcome, KinesisErrorKind::Validation);
    assert!(
        error
            .message
            .ends_with("Member must have length less than or equal to 7"),
        "{}",
        error.message
    );
    let missing = broker
        .enable_enhanced_monitoring(metrics("missing", &["ALL"]))
        .await;
    assert_kind(missing, KinesisErrorKind::ResourceNotFound);
}

#[tokio::test]
async fn resource_policies_attach_to_streams_and_consumers() {
    let (_clock, broker) = manual_broker();
    create(&broker, "s", 1).await;
    assert_eq!(broker.get_resource_policy(ARN).await.unwrap(), "{}");
    broker
        .put_resource_policy(PutResourcePolicyInput {
            resource_arn: ARN.to_owned(),
            policy: POLICY.to_owned(),
        })
        .await
        .expect("put stream policy");
    assert_eq!(broker.get_resource_policy(ARN).await.unwrap(), POLICY);

    let consumer = broker
        .register_stream_consumer(RegisterStreamConsumerInput {
            stream_arn: ARN.to_owned(),
            consumer_name: "c".into(),
        })
        .await
        .unwrap();
    let consumer_arn = consumer.consumer_arn.clone();
    assert_eq!(
        broker.get_resource_policy(&consumer_arn).await.unwrap(),
        "{}"
    );
    let consumer_policy = POLICY.replace("GetRecords", "SubscribeToShard");
    broker
        .put_resource_policy(PutResourcePolicyInput {
            resource_arn: consumer_arn.clone(),
            policy: consumer_policy.clone(),
        })
        .await
        .expect("put consumer policy");
    assert_eq!(
        broker.get_resource_policy(&consumer_arn).await.unwrap(),
        consumer_policy
    );
    assert_eq!(broker.get_resource_policy(ARN).await.unwrap(), POLICY);

    broker.delete_resource_policy(ARN).await.expect("delete");
    assert_eq!(broker.get_resource_policy(ARN).await.unwrap(), "{}");
    broker
        .delete_resource_policy(ARN)
        .await
        .expect("deleting an absent policy is accepted");

    // A deregistered consumer, and its policy, are gone.
    broker
        .deregister_stream_consumer(ConsumerRef::by_arn(consumer_arn.clone()))
        .await
        .unwrap();
    let gone = broker.get_resource_policy(&consumer_arn).await;
    assert_kind(gone, KinesisErrorKind::ResourceNotFound);
}

#[tokio::test]
async fn resource_arns_are_checked() {
    let (_clock, broker) = manual_broker();
    create(&broker, "s", 1).await;
    let not_an_arn = broker.get_resource_policy("s").await;
    let error = assert_kind(not_an_arn, KinesisErrorKind::Validation);
    assert_eq!(
        error.message,
        "1 validation error detected: Value 's' at 'resourceARN' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{12}:.*stream/\\S+"
    );
    let empty = broker.delete_resource_policy("").await;
    let error = assert_kind(empty, KinesisErrorKind::Validation);
    assert!(error.message.starts_with("2 validation errors detected"));
    let other_account = broker
        .get_resource_policy("arn:aws:kinesis:us-east-1:111111111111:stream/s")
        .await;
    assert_kind(other_account, KinesisErrorKind::ResourceNotFound);
    let missing_stream = broker
        .put_resource_policy(PutResourcePolicyInput {
            resource_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/missing".into(),
            policy: POLICY.into(),
        })
        .await;
    assert_kind(missing_stream, KinesisErrorKind::ResourceNotFound);
    let missing_consumer = broker
        .get_resource_policy(&format!("{ARN}/consumer/nobody:1700000000"))
        .await;
    assert_kind(missing_consumer, KinesisErrorKind::ResourceNotFound);
    let blank = broker
        .put_resource_policy(PutResourcePolicyInput {
            resource_arn: ARN.into(),
            policy: "  ".into(),
        })
        .await;
    assert_kind(blank, KinesisErrorKind::InvalidArgument);
}

/// Settings survive a restart of a broker on the durable journal (`broker::storage`).
#[cfg(feature = "storage")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_survive_a_restart_in_durable_mode() {
    use broker::storage::{FsyncPolicy, StorageConfig};

    async fn open(dir: &std::path::Path) -> (Broker, std::sync::Arc<broker::storage::DiskJournal>) {
        let config = StorageConfig::new(dir, FsyncPolicy::Always);
        let opened = tokio::task::spawn_blocking(move || broker::storage::open(config))
            .await
            .expect("open task")
            .expect("open the data directory");
        let journal = opened.journal.clone();
        let broker = Broker::restore(BrokerConfig::unlimited(), opened.journal, opened.state)
            .expect("restore");
        (broker, journal)
    }

    async fn close(broker: Broker, journal: std::sync::Arc<broker::storage::DiskJournal>) {
        broker.shutdown().await;
        journal.sync().await.expect("sync");
        tokio::task::spawn_blocking(move || journal.shutdown())
            .await
            .expect("shutdown task");
    }

    let dir = tempfile::tempdir().unwrap();
    let (first, journal) = open(dir.path()).await;
    create(&first, "s", 1).await;
    first
        .start_stream_encryption(encryption("s", "alias/aws/kinesis"))
        .await
        .unwrap();
    first
        .enable_enhanced_monitoring(metrics("s", &["IncomingBytes", "IteratorAgeMilliseconds"]))
        .await
        .unwrap();
    first
        .put_resource_policy(PutResourcePolicyInput {
            resource_arn: ARN.into(),
            policy: POLICY.into(),
        })
        .await
        .unwrap();
    let consumer = first
        .register_stream_consumer(RegisterStreamConsumerInput {
            stream_arn: ARN.into(),
            consumer_name: "c".into(),
        })
        .await
        .unwrap();
    let consumer_policy = POLICY.replace("GetRecords", "SubscribeToShard");
    first
        .put_resource_policy(PutResourcePolicyInput {
            resource_arn: consumer.consumer_arn.clone(),
            policy: consumer_policy.clone(),
        })
        .await
        .unwrap();
    close(first, journal).await;

    let (second, journal) = open(dir.path()).await;
    let summary = second
        .describe_stream_summary(StreamRef::name("s"))
        .await
        .expect("the stream is back");
    assert_eq!(summary.encryption_type, "KMS");
    assert_eq!(summary.key_id.as_deref(), Some("alias/aws/kinesis"));
    let put = second.put_record(put_input("s", "k", "v")).await.unwrap();
    assert_eq!(put.encryption_type, "KMS");
    assert_eq!(
        summary.shard_level_metrics,
        owned(&["IncomingBytes", "IteratorAgeMilliseconds"])
    );
    assert_eq!(second.get_resource_policy(ARN).await.unwrap(), POLICY);
    assert_eq!(
        second
            .get_resource_policy(&consumer.consumer_arn)
            .await
            .unwrap(),
        consumer_policy
    );

    // Clearing the settings is persisted too.
    second
        .stop_stream_encryption(encryption("s", "alias/aws/kinesis"))
        .await
        .unwrap();
    second
        .disable_enhanced_monitoring(metrics("s", &["ALL"]))
        .await
        .unwrap();
    second.delete_resource_policy(ARN).await.unwrap();
    close(second, journal).await;

    let (third, journal) = open(dir.path()).await;
    let described = third.describe_stream(describe_input("s")).await.unwrap();
    assert_eq!(described.encryption_type, "NONE");
    assert_eq!(described.key_id, None);
    assert!(described.shard_level_metrics.is_empty());
    assert_eq!(third.get_resource_policy(ARN).await.unwrap(), "{}");
    assert_eq!(
        third
            .get_resource_policy(&consumer.consumer_arn)
            .await
            .unwrap(),
        consumer_policy
    );
    close(third, journal).await;
}
