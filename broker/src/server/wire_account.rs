//! Wire shapes of the account-level and capacity operations (botocore member names):
//! `DescribeAccountSettings`, `UpdateAccountSettings`, `UpdateStreamWarmThroughput` and
//! `UpdateMaxRecordSize`, and their conversion from and to the engine's types
//! ([`crate::engine::account`]).

use super::codec::Timestamp;
use super::error::ServerError;
use crate::engine::validate::Violations;
use crate::engine::{
    BillingCommitment, CommitmentStatus, StreamRef, UpdateMaxRecordSizeInput,
    UpdateStreamWarmThroughputInput, UpdateStreamWarmThroughputOutput, WarmThroughput,
};
use kcl_core::kinesis::wire::WireWarmThroughput;
use serde::{Deserialize, Serialize};

/// The engine's warm throughput on the wire.
pub(crate) fn wire_warm_throughput(warm: WarmThroughput) -> WireWarmThroughput {
    WireWarmThroughput {
        target_mibps: Some(warm.target_mibps),
        current_mibps: Some(warm.current_mibps),
    }
}

/// `MinimumThroughputBillingCommitment` as answered.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireCommitment {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    earliest_allowed_end_at: Option<Timestamp>,
}

/// `DescribeAccountSettings` / `UpdateAccountSettings` response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct AccountSettingsResponse {
    minimum_throughput_billing_commitment: WireCommitment,
}

impl From<BillingCommitment> for AccountSettingsResponse {
    fn from(commitment: BillingCommitment) -> Self {
        AccountSettingsResponse {
            minimum_throughput_billing_commitment: WireCommitment {
                status: commitment.status.as_str(),
                started_at: commitment.started_at.map(Timestamp),
                ended_at: commitment.ended_at.map(Timestamp),
                earliest_allowed_end_at: commitment.earliest_allowed_end_at.map(Timestamp),
            },
        }
    }
}

/// `MinimumThroughputBillingCommitment` as requested.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CommitmentRequest {
    status: Option<String>,
}

/// `UpdateAccountSettings` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateAccountSettingsRequest {
    minimum_throughput_billing_commitment: Option<CommitmentRequest>,
}

impl UpdateAccountSettingsRequest {
    /// The status asked for.
    pub(crate) fn into_status(self) -> Result<CommitmentStatus, ServerError> {
        let mut violations = Violations::default();
        let commitment = violations.required(
            self.minimum_throughput_billing_commitment,
            "minimumThroughputBillingCommitment",
        );
        let status = commitment.and_then(|commitment| {
            violations
                .required(
                    commitment.status,
                    "minimumThroughputBillingCommitment.status",
                )
                .and_then(|status| {
                    violations
                        .one_of(
                            &status,
                            "minimumThroughputBillingCommitment.status",
                            &["ENABLED", "DISABLED"],
                        )
                        .map(|status| match status {
                            "ENABLED" => CommitmentStatus::Enabled,
                            _ => CommitmentStatus::Disabled,
                        })
                })
        });
        violations.into_result()?;
        Ok(status.unwrap_or_default())
    }
}

/// `UpdateStreamWarmThroughput` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateStreamWarmThroughputRequest {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    #[serde(rename = "WarmThroughputMiBps")]
    warm_throughput_mibps: Option<i64>,
}

impl UpdateStreamWarmThroughputRequest {
    /// The engine request.
    pub(crate) fn into_input(self) -> Result<UpdateStreamWarmThroughputInput, ServerError> {
        let mut violations = Violations::default();
        let mibps = violations
            .required(self.warm_throughput_mibps, "warmThroughputMiBps")
            .and_then(|mibps| {
                violations.bounded(Some(mibps), "warmThroughputMiBps", 0, i64::from(u32::MAX))
            });
        violations.into_result()?;
        Ok(UpdateStreamWarmThroughputInput {
            stream: StreamRef::from_parts(self.stream_name, self.stream_arn)?,
            warm_throughput_mibps: mibps.unwrap_or_default(),
        })
    }
}

/// `UpdateStreamWarmThroughput` response.
#[derive(Debug, Serialize)]
pub(crate) struct UpdateStreamWarmThroughputResponse {
    #[serde(rename = "StreamARN")]
    stream_arn: String,
    #[serde(rename = "StreamName")]
    stream_name: String,
    #[serde(rename = "WarmThroughput")]
    warm_throughput: WireWarmThroughput,
}

impl From<UpdateStreamWarmThroughputOutput> for UpdateStreamWarmThroughputResponse {
    fn from(output: UpdateStreamWarmThroughputOutput) -> Self {
        UpdateStreamWarmThroughputResponse {
            stream_arn: output.stream_arn,
            stream_name: output.stream_name,
            warm_throughput: wire_warm_throughput(output.warm_throughput),
        }
    }
}

/// `UpdateMaxRecordSize` request (the operation takes no `StreamName`).
#[derive(Debug, Deserialize)]
pub(crate) struct UpdateMaxRecordSizeRequest {
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    #[serde(rename = "MaxRecordSizeInKiB")]
    max_record_size_kib: Option<i64>,
}

impl UpdateMaxRecordSizeRequest {
    /// The engine request.
    pub(crate) fn into_input(self) -> Result<UpdateMaxRecordSizeInput, ServerError> {
        use crate::engine::account::{MAX_RECORD_SIZE_KIB, MIN_RECORD_SIZE_KIB};
        let mut violations = Violations::default();
        let kib = violations
            .required(self.max_record_size_kib, "maxRecordSizeInKiB")
            .and_then(|kib| {
                violations.bounded(
                    Some(kib),
                    "maxRecordSizeInKiB",
                    i64::from(MIN_RECORD_SIZE_KIB),
                    i64::from(MAX_RECORD_SIZE_KIB),
                )
            });
        violations.into_result()?;
        Ok(UpdateMaxRecordSizeInput {
            stream: StreamRef::from_parts(None, self.stream_arn)?,
            max_record_size_kib: kib.unwrap_or(MIN_RECORD_SIZE_KIB),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_validated_with_aws_wording() {
        let cases: [(&str, Option<&str>); 4] = [
            (
                r#"{}"#,
                Some(
                    "Value null at 'minimumThroughputBillingCommitment' failed to satisfy constraint: Member must not be null",
                ),
            ),
            (
                r#"{"MinimumThroughputBillingCommitment":{}}"#,
                Some(
                    "Value null at 'minimumThroughputBillingCommitment.status' failed to satisfy constraint: Member must not be null",
                ),
            ),
            (
                r#"{"MinimumThroughputBillingCommitment":{"Status":"SOMETIMES"}}"#,
                Some(
                    "Value 'SOMETIMES' at 'minimumThroughputBillingCommitment.status' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED]",
                ),
            ),
            (
                r#"{"MinimumThroughputBillingCommitment":{"Status":"ENABLED"}}"#,
                None,
            ),
        ];
        for (body, expected) in cases {
            let request: UpdateAccountSettingsRequest =
                serde_json::from_str(body).expect("well-formed JSON");
            match (request.into_status(), expected) {
                (Ok(status), None) => assert_eq!(status, CommitmentStatus::Enabled),
                (Err(error), Some(message)) => {
                    assert_eq!(
                        error.message(),
                        format!("1 validation error detected: {message}")
                    )
                }
                (outcome, expected) => panic!("{body}: {outcome:?} vs {expected:?}"),
            }
        }
        let too_small: UpdateMaxRecordSizeRequest = serde_json::from_str(
            r#"{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s","MaxRecordSizeInKiB":1023}"#,
        )
        .expect("well-formed JSON");
        assert_eq!(
            too_small.into_input().expect_err("below 1024").message(),
            "1 validation error detected: Value '1023' at 'maxRecordSizeInKiB' failed to satisfy constraint: Member must have value greater than or equal to 1024"
        );
        let negative: UpdateStreamWarmThroughputRequest =
            serde_json::from_str(r#"{"StreamName":"s","WarmThroughputMiBps":-1}"#)
                .expect("well-formed JSON");
        assert_eq!(
            negative.into_input().expect_err("negative").message(),
            "1 validation error detected: Value '-1' at 'warmThroughputMiBps' failed to satisfy constraint: Member must have value greater than or equal to 0"
        );
    }
}
