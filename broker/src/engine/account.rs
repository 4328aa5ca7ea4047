//! Account-level settings and the per-stream capacity settings that depend on them:
//! `DescribeAccountSettings` / `UpdateAccountSettings` (the minimum throughput billing
//! commitment, with its 24-hour minimum term), `UpdateStreamWarmThroughput` (on-demand streams
//! of accounts with a commitment) and `UpdateMaxRecordSize` (the per-stream record size limit
//! that `PutRecord(s)` enforce). Stored per broker (one account in one region), persisted by a
//! durable journal, reported by `DescribeStreamSummary`.

use super::state;
use super::validate::{self, Violations};
use super::{Broker, await_durable};
use crate::engine::api::{StreamMode, StreamRef};
use kcl_core::kinesis::{EpochMillis, KinesisError};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;

/// The smallest `MaxRecordSizeInKiB` (1 MiB, every stream's default on Kinesis).
pub const MIN_RECORD_SIZE_KIB: u32 = 1024;
/// The largest `MaxRecordSizeInKiB` (10 MiB).
pub const MAX_RECORD_SIZE_KIB: u32 = 10240;
/// The largest warm throughput of one on-demand stream, MiB/s (Kinesis: 10 GiB/s).
pub const MAX_WARM_THROUGHPUT_MIBPS: u32 = 10 * 1024;
/// How long a minimum throughput billing commitment lasts at least (Kinesis: 24 hours).
pub const COMMITMENT_MINIMUM_MILLIS: i64 = 24 * 60 * 60 * 1000;

/// `MinimumThroughputBillingCommitment.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CommitmentStatus {
    /// `ENABLED`.
    #[serde(rename = "ENABLED")]
    Enabled,
    /// `DISABLED` (the default).
    #[default]
    #[serde(rename = "DISABLED")]
    Disabled,
    /// `ENABLED_UNTIL_EARLIEST_ALLOWED_END`: disabling was asked before the minimum term ended.
    #[serde(rename = "ENABLED_UNTIL_EARLIEST_ALLOWED_END")]
    EnabledUntilEarliestAllowedEnd,
}

impl CommitmentStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CommitmentStatus::Enabled => "ENABLED",
            CommitmentStatus::Disabled => "DISABLED",
            CommitmentStatus::EnabledUntilEarliestAllowedEnd => {
                "ENABLED_UNTIL_EARLIEST_ALLOWED_END"
            }
        }
    }

    /// Whether the account has a commitment in force (warm throughput is allowed).
    pub fn is_enabled(self) -> bool {
        self != CommitmentStatus::Disabled
    }
}

/// The account's minimum throughput billing commitment (`DescribeAccountSettings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BillingCommitment {
    /// `Status`.
    pub status: CommitmentStatus,
    /// `StartedAt`: when the current (or last) commitment began.
    pub started_at: Option<EpochMillis>,
    /// `EndedAt`: when the last commitment ended.
    pub ended_at: Option<EpochMillis>,
    /// `EarliestAllowedEndAt`: `StartedAt` plus the 24-hour minimum term.
    pub earliest_allowed_end_at: Option<EpochMillis>,
}

/// A [`BillingCommitment`] as a [`BrokerSnapshot`](super::BrokerSnapshot) keeps it (epoch
/// milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BillingCommitmentSnapshot {
    /// The status.
    pub status: CommitmentStatus,
    /// `StartedAt`, epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_millis: Option<i64>,
    /// `EndedAt`, epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at_millis: Option<i64>,
    /// `EarliestAllowedEndAt`, epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earliest_allowed_end_at_millis: Option<i64>,
}

impl From<BillingCommitment> for BillingCommitmentSnapshot {
    fn from(commitment: BillingCommitment) -> Self {
        BillingCommitmentSnapshot {
            status: commitment.status,
            started_at_millis: commitment.started_at.map(|at| at.0),
            ended_at_millis: commitment.ended_at.map(|at| at.0),
            earliest_allowed_end_at_millis: commitment.earliest_allowed_end_at.map(|at| at.0),
        }
    }
}

impl From<BillingCommitmentSnapshot> for BillingCommitment {
    fn from(snapshot: BillingCommitmentSnapshot) -> Self {
        BillingCommitment {
            status: snapshot.status,
            started_at: snapshot.started_at_millis.map(EpochMillis),
            ended_at: snapshot.ended_at_millis.map(EpochMillis),
            earliest_allowed_end_at: snapshot.earliest_allowed_end_at_millis.map(EpochMillis),
        }
    }
}

impl BillingCommitment {
    /// The commitment at wall time `now`: a pending disable takes effect at the earliest end.
    pub(crate) fn at(mut self, now: EpochMillis) -> Self {
        if self.status == CommitmentStatus::EnabledUntilEarliestAllowedEnd
            && let Some(end) = self.earliest_allowed_end_at
            && now.0 >= end.0
        {
            self.status = CommitmentStatus::Disabled;
            self.ended_at = Some(end);
        }
        self
    }

    /// The commitment after asking for `wanted` at wall time `now` (Kinesis's rules: enabling
    /// starts a 24-hour term or cancels a pending disable; disabling inside the term is
    /// deferred to its end).
    pub(crate) fn updated(self, wanted: CommitmentStatus, now: EpochMillis) -> Self {
        let current = self.at(now);
        match (current.status, wanted) {
            (CommitmentStatus::Disabled, CommitmentStatus::Enabled) => BillingCommitment {
                status: CommitmentStatus::Enabled,
                started_at: Some(now),
                ended_at: None,
                earliest_allowed_end_at: Some(EpochMillis(now.0 + COMMITMENT_MINIMUM_MILLIS)),
            },
            (CommitmentStatus::EnabledUntilEarliestAllowedEnd, CommitmentStatus::Enabled) => {
                BillingCommitment {
                    status: CommitmentStatus::Enabled,
                    ..current
                }
            }
            (CommitmentStatus::Enabled, CommitmentStatus::Disabled) => {
                let end = current.earliest_allowed_end_at.unwrap_or(now);
                if now.0 < end.0 {
                    BillingCommitment {
                        status: CommitmentStatus::EnabledUntilEarliestAllowedEnd,
                        ..current
                    }
                } else {
                    BillingCommitment {
                        status: CommitmentStatus::Disabled,
                        ended_at: Some(now),
                        ..current
                    }
                }
            }
            _ => current,
        }
    }
}

/// `UpdateStreamWarmThroughput` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateStreamWarmThroughputInput {
    /// `StreamName` / `StreamARN`.
    pub stream: StreamRef,
    /// `WarmThroughputMiBps`.
    pub warm_throughput_mibps: u32,
}

/// `WarmThroughput` of a stream: the target and what the stream handles now (the same here:
/// a local broker scales at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmThroughput {
    /// `TargetMiBps`.
    pub target_mibps: u32,
    /// `CurrentMiBps`.
    pub current_mibps: u32,
}

/// `UpdateStreamWarmThroughput` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateStreamWarmThroughputOutput {
    /// `StreamARN`.
    pub stream_arn: String,
    /// `StreamName`.
    pub stream_name: String,
    /// `WarmThroughput`.
    pub warm_throughput: WarmThroughput,
}

/// `UpdateMaxRecordSize` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateMaxRecordSizeInput {
    /// `StreamARN` (the operation has no `StreamName`).
    pub stream: StreamRef,
    /// `MaxRecordSizeInKiB`, 1024–10240.
    pub max_record_size_kib: u32,
}

/// Bytes in a record size limit given in KiB.
pub(crate) fn kib_to_bytes(kib: u32) -> usize {
    usize::try_from(kib)
        .unwrap_or(usize::MAX)
        .saturating_mul(1024)
}

/// A record size limit in bytes, as KiB (rounded down).
pub(crate) fn bytes_to_kib(bytes: usize) -> u32 {
    u32::try_from(bytes / 1024).unwrap_or(u32::MAX)
}

impl Broker {
    /// `DescribeAccountSettings`.
    pub async fn describe_account_settings(&self) -> Result<BillingCommitment, KinesisError> {
        let inner = &self.inner;
        Ok(state::lock(&inner.account).at(inner.now_wall()))
    }

    /// `UpdateAccountSettings`: enables or disables the minimum throughput billing commitment
    /// and answers the settings after the change.
    pub async fn update_account_settings(
        &self,
        wanted: CommitmentStatus,
    ) -> Result<BillingCommitment, KinesisError> {
        if wanted == CommitmentStatus::EnabledUntilEarliestAllowedEnd {
            return Err(validate::invalid_argument(
                "MinimumThroughputBillingCommitment status must be ENABLED or DISABLED.",
            ));
        }
        let inner = &self.inner;
        let (updated, ticket) = {
            let _control = inner.control_lock();
            let mut account = state::lock(&inner.account);
            let updated = account.updated(wanted, inner.now_wall());
            *account = updated;
            drop(account);
            tracing::info!(status = updated.status.as_str(), "account settings changed");
            (updated, inner.journal_metadata())
        };
        await_durable(ticket).await?;
        Ok(updated)
    }

    /// `UpdateStreamWarmThroughput`: only for `ON_DEMAND` streams of an account with a minimum
    /// throughput billing commitment; the stream is warm at once (it stays `ACTIVE`).
    pub async fn update_stream_warm_throughput(
        &self,
        input: UpdateStreamWarmThroughputInput,
    ) -> Result<UpdateStreamWarmThroughputOutput, KinesisError> {
        let inner = &self.inner;
        if input.warm_throughput_mibps > MAX_WARM_THROUGHPUT_MIBPS {
            return Err(validate::limit_exceeded(format!(
                "Warm throughput of {} MiBps exceeds the limit of {MAX_WARM_THROUGHPUT_MIBPS} \
                 MiBps for an on-demand stream.",
                input.warm_throughput_mibps
            )));
        }
        let (output, ticket) = {
            let _control = inner.control_lock();
            let stream = inner.stream_active(&input.stream)?;
            if !state::lock(&inner.account)
                .at(inner.now_wall())
                .status
                .is_enabled()
            {
                return Err(validate::invalid_argument(format!(
                    "Warm throughput is only supported in accounts with \
                     MinimumThroughputBillingCommitment enabled; account {} has none.",
                    inner.account()
                )));
            }
            let mut meta = state::lock(&stream.meta);
            if meta.mode != StreamMode::OnDemand {
                return Err(validate::invalid_argument(format!(
                    "Warm throughput is only supported for ON_DEMAND streams; stream {} under \
                     account {} is PROVISIONED.",
                    stream.name,
                    inner.account()
                )));
            }
            meta.warm_throughput_mibps = Some(input.warm_throughput_mibps);
            drop(meta);
            tracing::info!(
                stream = %stream.name,
                warm_throughput_mibps = input.warm_throughput_mibps,
                "stream warm throughput changed"
            );
            let output = UpdateStreamWarmThroughputOutput {
                stream_arn: stream.arn.clone(),
                stream_name: stream.name.clone(),
                warm_throughput: WarmThroughput {
                    target_mibps: input.warm_throughput_mibps,
                    current_mibps: input.warm_throughput_mibps,
                },
            };
            (output, inner.journal_metadata())
        };
        await_durable(ticket).await?;
        Ok(output)
    }

    /// `UpdateMaxRecordSize`: the largest record (data plus partition key) `PutRecord(s)`
    /// accept on the stream from now on, 1024–10240 KiB.
    pub async fn update_max_record_size(
        &self,
        input: UpdateMaxRecordSizeInput,
    ) -> Result<(), KinesisError> {
        let mut violations = Violations::default();
        violations.range(
            u64::from(input.max_record_size_kib),
            "maxRecordSizeInKiB",
            u64::from(MIN_RECORD_SIZE_KIB),
            u64::from(MAX_RECORD_SIZE_KIB),
        );
        violations.into_result()?;
        let inner = &self.inner;
        let ticket = {
            let _control = inner.control_lock();
            let stream = inner.stream_active(&input.stream)?;
            stream
                .max_record_bytes
                .store(kib_to_bytes(input.max_record_size_kib), Ordering::Release);
            tracing::info!(
                stream = %stream.name,
                max_record_size_kib = input.max_record_size_kib,
                "stream max record size changed"
            );
            inner.journal_metadata()
        };
        await_durable(ticket).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 60 * 60 * 1000;

    #[test]
    fn the_commitment_follows_kinesis_rules() {
        use CommitmentStatus::*;
        let start = EpochMillis(1_000 * HOUR);
        let off = BillingCommitment::default();
        assert_eq!(off.at(start).status, Disabled);
        // (state before, wanted, hours later, status after)
        let enabled = off.updated(Enabled, start);
        assert_eq!(enabled.status, Enabled);
        assert_eq!(enabled.started_at, Some(start));
        assert_eq!(
            enabled.earliest_allowed_end_at,
            Some(EpochMillis(start.0 + 24 * HOUR))
        );
        let cases = [
            (enabled, Enabled, 1, Enabled),
            (enabled, Disabled, 1, EnabledUntilEarliestAllowedEnd),
            (enabled, Disabled, 25, Disabled),
            (off, Disabled, 1, Disabled),
        ];
        for (before, wanted, hours, after) in cases {
            let now = EpochMillis(start.0 + hours * HOUR);
            assert_eq!(
                before.updated(wanted, now).status,
                after,
                "{before:?} {wanted:?} +{hours}h"
            );
        }
        let pending = enabled.updated(Disabled, EpochMillis(start.0 + HOUR));
        assert_eq!(
            pending
                .updated(Enabled, EpochMillis(start.0 + 2 * HOUR))
                .status,
            Enabled
        );
        let ended = pending.at(EpochMillis(start.0 + 30 * HOUR));
        assert_eq!(ended.status, Disabled);
        assert_eq!(ended.ended_at, Some(EpochMillis(start.0 + 24 * HOUR)));
        assert_eq!(ended.started_at, Some(start));
    }

    #[test]
    fn record_sizes_convert_between_kib_and_bytes() {
        assert_eq!(kib_to_bytes(MIN_RECORD_SIZE_KIB), 1_048_576);
        assert_eq!(kib_to_bytes(MAX_RECORD_SIZE_KIB), 10 * 1_048_576);
        assert_eq!(bytes_to_kib(1_048_576), 1024);
    }
}
