//! Stream settings that Kinesis stores and reports but this broker does not act on:
//! server-side encryption (`Start`/`StopStreamEncryption`), enhanced shard-level monitoring
//! (`Enable`/`DisableEnhancedMonitoring`) and resource policies (`Put`/`Get`/
//! `DeleteResourcePolicy`). Each is validated with Kinesis's wording, kept in the stream's
//! metadata, reported by `DescribeStream(Summary)` and persisted by a durable journal. Records
//! are never encrypted, no metric is emitted and no policy is enforced.

use super::state::{self, StreamMeta};
use super::validate::{self, Violations};
use super::{Broker, BrokerInner, await_durable};
use crate::engine::api::*;
use kcl_core::kinesis::KinesisError;
use std::sync::atomic::Ordering;

/// The shard-level metrics Kinesis knows, in the botocore model's order (`ALL` excluded).
pub(crate) const METRIC_NAMES: [&str; 7] = [
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
];

/// The member values `ShardLevelMetrics` accepts, as the enum constraint lists them.
const METRIC_ENUM: &str = "[IncomingBytes, IncomingRecords, OutgoingBytes, OutgoingRecords, WriteProvisionedThroughputExceeded, ReadProvisionedThroughputExceeded, IteratorAgeMilliseconds, ALL]";

/// Longest `KeyId` Kinesis accepts.
const MAX_KEY_ID_LENGTH: usize = 2048;
/// Longest `ResourceARN` Kinesis accepts.
const MAX_RESOURCE_ARN_LENGTH: usize = 2048;
/// The `ResourceARN` pattern of the botocore model.
const RESOURCE_ARN_PATTERN: &str = "arn:aws.*:kinesis:.*:\\d{12}:.*stream/\\S+";
/// What `GetResourcePolicy` answers for a resource without a policy.
const NO_POLICY: &str = "{}";

/// A set of shard-level metrics (one bit per entry of [`METRIC_NAMES`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ShardLevelMetrics(u8);

impl ShardLevelMetrics {
    const ALL: ShardLevelMetrics = ShardLevelMetrics((1 << METRIC_NAMES.len()) - 1);

    /// The set named by wire names (`ALL` is every metric); the first unknown name is the error.
    pub(crate) fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        let mut bits = 0u8;
        for name in names {
            let name = name.as_ref();
            if name == "ALL" {
                bits |= Self::ALL.0;
                continue;
            }
            let index = METRIC_NAMES
                .iter()
                .position(|known| *known == name)
                .ok_or_else(|| name.to_owned())?;
            bits |= 1 << index;
        }
        Ok(ShardLevelMetrics(bits))
    }

    /// The wire names, in the model's order (`ALL` expanded, as Kinesis reports it).
    pub(crate) fn names(self) -> Vec<String> {
        METRIC_NAMES
            .iter()
            .enumerate()
            .filter(|(index, _)| self.0 & (1 << index) != 0)
            .map(|(_, name)| (*name).to_owned())
            .collect()
    }

    fn union(self, other: Self) -> Self {
        ShardLevelMetrics(self.0 | other.0)
    }

    fn without(self, other: Self) -> Self {
        ShardLevelMetrics(self.0 & !other.0)
    }
}

/// The settings `DescribeStream(Summary)` reports, copied out of a stream's metadata.
#[derive(Debug, Clone)]
pub(crate) struct StreamSettings {
    pub(crate) encryption_type: EncryptionType,
    pub(crate) key_id: Option<String>,
    pub(crate) shard_level_metrics: Vec<String>,
}

impl StreamSettings {
    pub(crate) fn of(meta: &StreamMeta) -> Self {
        StreamSettings {
            encryption_type: if meta.encryption_key_id.is_some() {
                EncryptionType::Kms
            } else {
                EncryptionType::None
            },
            key_id: meta.encryption_key_id.clone(),
            shard_level_metrics: meta.shard_level_metrics.names(),
        }
    }
}

/// What a `ResourceARN` names.
enum PolicyTarget {
    Stream(StreamRef),
    Consumer(ConsumerRef),
}

impl Broker {
    /// `StartStreamEncryption`: records `KMS` and the key id (records stay unencrypted).
    pub async fn start_stream_encryption(
        &self,
        input: StreamEncryptionInput,
    ) -> Result<(), KinesisError> {
        check_key_id(&input.key_id)?;
        require_kms(input.encryption_type)?;
        self.change_encryption(&input.stream, Some(input.key_id))
            .await
    }

    /// `StopStreamEncryption`: back to `NONE`.
    pub async fn stop_stream_encryption(
        &self,
        input: StreamEncryptionInput,
    ) -> Result<(), KinesisError> {
        check_key_id(&input.key_id)?;
        require_kms(input.encryption_type)?;
        self.change_encryption(&input.stream, None).await
    }

    async fn change_encryption(
        &self,
        stream: &StreamRef,
        key_id: Option<String>,
    ) -> Result<(), KinesisError> {
        let inner = &self.inner;
        let ticket = {
            let _control = inner.control_lock();
            let stream = inner.stream_active(stream)?;
            let encrypted = key_id.is_some();
            state::lock(&stream.meta).encryption_key_id = key_id;
            stream.encrypted.store(encrypted, Ordering::Release);
            tracing::info!(stream = %stream.name, "stream encryption setting changed");
            inner.journal_metadata()
        };
        await_durable(ticket).await
    }

    /// `EnableEnhancedMonitoring`: adds metrics (`ALL` adds every one).
    pub async fn enable_enhanced_monitoring(
        &self,
        input: EnhancedMonitoringInput,
    ) -> Result<EnhancedMonitoringOutput, KinesisError> {
        self.change_monitoring(input, ShardLevelMetrics::union)
            .await
    }

    /// `DisableEnhancedMonitoring`: removes metrics (`ALL` removes every one).
    pub async fn disable_enhanced_monitoring(
        &self,
        input: EnhancedMonitoringInput,
    ) -> Result<EnhancedMonitoringOutput, KinesisError> {
        self.change_monitoring(input, ShardLevelMetrics::without)
            .await
    }

    async fn change_monitoring(
        &self,
        input: EnhancedMonitoringInput,
        apply: fn(ShardLevelMetrics, ShardLevelMetrics) -> ShardLevelMetrics,
    ) -> Result<EnhancedMonitoringOutput, KinesisError> {
        let requested = check_metrics(&input.shard_level_metrics)?;
        let inner = &self.inner;
        let (output, ticket) = {
            let _control = inner.control_lock();
            let stream = inner.stream_active(&input.stream)?;
            let mut meta = state::lock(&stream.meta);
            let current = meta.shard_level_metrics;
            let desired = apply(current, requested);
            meta.shard_level_metrics = desired;
            drop(meta);
            let output = EnhancedMonitoringOutput {
                stream_name: stream.name.clone(),
                stream_arn: stream.arn.clone(),
                current_shard_level_metrics: current.names(),
                desired_shard_level_metrics: desired.names(),
            };
            (output, inner.journal_metadata())
        };
        await_durable(ticket).await?;
        Ok(output)
    }

    /// `PutResourcePolicy` on a stream or consumer ARN: stores the document verbatim
    /// (replacing any earlier one). Policies are never enforced by this broker.
    pub async fn put_resource_policy(
        &self,
        input: PutResourcePolicyInput,
    ) -> Result<(), KinesisError> {
        let target = self.inner.policy_target(&input.resource_arn)?;
        if input.policy.trim().is_empty() {
            return Err(validate::invalid_argument(
                "Policy must be a non-empty JSON policy document.",
            ));
        }
        self.set_policy(target, Some(input.policy)).await
    }

    /// `GetResourcePolicy`: the stored document, or `{}` when none is attached.
    pub async fn get_resource_policy(&self, resource_arn: &str) -> Result<String, KinesisError> {
        let inner = &self.inner;
        let policy = match inner.policy_target(resource_arn)? {
            PolicyTarget::Stream(stream) => {
                let stream = inner.stream_any(&stream)?;
                state::lock(&stream.meta).resource_policy.clone()
            }
            PolicyTarget::Consumer(consumer) => inner.find_consumer(&consumer)?.1.resource_policy,
        };
        Ok(policy.unwrap_or_else(|| NO_POLICY.to_owned()))
    }

    /// `DeleteResourcePolicy`: detaches the policy (a resource without one is left as is).
    pub async fn delete_resource_policy(&self, resource_arn: &str) -> Result<(), KinesisError> {
        let target = self.inner.policy_target(resource_arn)?;
        self.set_policy(target, None).await
    }

    async fn set_policy(
        &self,
        target: PolicyTarget,
        policy: Option<String>,
    ) -> Result<(), KinesisError> {
        let inner = &self.inner;
        let ticket = {
            let _control = inner.control_lock();
            match target {
                PolicyTarget::Stream(stream) => {
                    let stream = inner.stream_active(&stream)?;
                    state::lock(&stream.meta).resource_policy = policy;
                }
                PolicyTarget::Consumer(consumer) => {
                    let (stream, found) = inner.find_consumer(&consumer)?;
                    let mut meta = state::lock(&stream.meta);
                    if let Some(registered) = meta.consumers.get_mut(&found.name) {
                        registered.resource_policy = policy;
                    }
                }
            }
            inner.journal_metadata()
        };
        await_durable(ticket).await
    }
}

impl BrokerInner {
    /// Checks a `ResourceARN` as Kinesis does and says whether it names a stream or a consumer.
    fn policy_target(&self, resource_arn: &str) -> Result<PolicyTarget, KinesisError> {
        let mut violations = Violations::default();
        violations.length(resource_arn, "resourceARN", 1, MAX_RESOURCE_ARN_LENGTH);
        let parsed = validate::parse_arn(resource_arn);
        if parsed.is_none() {
            violations.value(
                resource_arn,
                "resourceARN",
                &format!("Member must satisfy regular expression pattern: {RESOURCE_ARN_PATTERN}"),
            );
        }
        violations.into_result()?;
        let Some(parsed) = parsed else {
            return Err(validate::invalid_argument("invalid resource ARN"));
        };
        if parsed.consumer.is_some() {
            return Ok(PolicyTarget::Consumer(ConsumerRef::by_arn(resource_arn)));
        }
        self.stream_name_of_arn(resource_arn, "resourceARN")?;
        Ok(PolicyTarget::Stream(StreamRef::Arn(
            resource_arn.to_owned(),
        )))
    }
}

fn check_key_id(key_id: &str) -> Result<(), KinesisError> {
    let mut violations = Violations::default();
    violations.length(key_id, "keyId", 1, MAX_KEY_ID_LENGTH);
    violations.into_result()
}

fn require_kms(encryption_type: EncryptionType) -> Result<(), KinesisError> {
    match encryption_type {
        EncryptionType::Kms => Ok(()),
        EncryptionType::None => Err(validate::invalid_argument(
            "Encryption type NONE is not supported; the only valid value is KMS.",
        )),
    }
}

/// Checks `ShardLevelMetrics` (1–7 members of the metric enum) with Kinesis's wording.
fn check_metrics(names: &[String]) -> Result<ShardLevelMetrics, KinesisError> {
    let mut violations = Violations::default();
    let shown = format!("[{}]", names.join(", "));
    let known = ShardLevelMetrics::from_names(names);
    if known.is_err() {
        violations.value(
            &shown,
            "shardLevelMetrics",
            &format!("Member must satisfy constraint: [Member must satisfy enum value set: {METRIC_ENUM}]"),
        );
    }
    if names.len() > METRIC_NAMES.len() {
        violations.value(
            &shown,
            "shardLevelMetrics",
            "Member must have length less than or equal to 7",
        );
    }
    if names.is_empty() {
        violations.value(
            &shown,
            "shardLevelMetrics",
            "Member must have length greater than or equal to 1",
        );
    }
    violations.into_result()?;
    known.map_err(|name| validate::invalid_argument(format!("unknown metric {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcl_core::kinesis::KinesisErrorKind;

    #[test]
    fn all_expands_to_every_metric_in_model_order() {
        let all = ShardLevelMetrics::from_names(&["ALL"]).expect("known");
        assert_eq!(all.names(), METRIC_NAMES.map(str::to_owned).to_vec());
        let two = ShardLevelMetrics::from_names(&["OutgoingBytes", "IncomingBytes"]).expect("ok");
        assert_eq!(two.names(), ["IncomingBytes", "OutgoingBytes"]);
        assert_eq!(all.without(two).names().len(), 5);
        assert_eq!(
            ShardLevelMetrics::from_names(&["Bogus"]),
            Err("Bogus".to_owned())
        );
    }

    #[test]
    fn metric_lists_are_validated_with_aws_wording() {
        let cases: &[(&[&str], Option<&str>)] = &[
            (&["IncomingBytes"], None),
            (&["ALL", "IncomingBytes"], None),
            (
                &[],
                Some(
                    "1 validation error detected: Value '[]' at 'shardLevelMetrics' failed to satisfy constraint: Member must have length greater than or equal to 1",
                ),
            ),
            (
                &["Nope"],
                Some(
                    "1 validation error detected: Value '[Nope]' at 'shardLevelMetrics' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [IncomingBytes, IncomingRecords, OutgoingBytes, OutgoingRecords, WriteProvisionedThroughputExceeded, ReadProvisionedThroughputExceeded, IteratorAgeMilliseconds, ALL]]",
                ),
            ),
        ];
        for (names, expected) in cases {
            let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
            match (check_metrics(&names), expected) {
                (Ok(_), None) => {}
                (Err(error), Some(message)) => {
                    assert_eq!(error.kind, KinesisErrorKind::Validation);
                    assert_eq!(&error.message, message);
                }
                (outcome, expected) => panic!("{names:?}: {outcome:?} vs {expected:?}"),
            }
        }
        let eight = vec!["IncomingBytes".to_owned(); 8];
        let error = check_metrics(&eight).expect_err("too many");
        assert!(error.message.contains("length less than or equal to 7"));
    }
}
