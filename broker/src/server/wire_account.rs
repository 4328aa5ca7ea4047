//! Wire shapes of the account-level and capacity operations (botocore member names):
//! `DescribeAccountSettings`, `UpdateAccountSettings`, `UpdateStreamWarmThroughput` and
//! `UpdateMaxRecordSize`, and their conversion from and to the engine's types
//! ([`crate::engine::account`]).

use super::codec::Timestamp;
use super::error::ServerError;
use super::wire::present;
use crate::engine::account::MAX_RECORD_SIZE_KIB;
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
    /// The status asked for (the request passed the validation table: both members are
    /// present and the status is one of the enum's values).
    pub(crate) fn into_status(self) -> Result<CommitmentStatus, ServerError> {
        let commitment = present(
            self.minimum_throughput_billing_commitment,
            "minimumThroughputBillingCommitment",
        )?;
        let status = present(
            commitment.status,
            "minimumThroughputBillingCommitment.status",
        )?;
        Ok(match status.as_str() {
            "ENABLED" => CommitmentStatus::Enabled,
            _ => CommitmentStatus::Disabled,
        })
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
    /// The engine request (the validation table required and bounded the throughput).
    pub(crate) fn into_input(self) -> Result<UpdateStreamWarmThroughputInput, ServerError> {
        let mibps = present(self.warm_throughput_mibps, "warmThroughputMiBps")?;
        Ok(UpdateStreamWarmThroughputInput {
            stream: StreamRef::from_parts(self.stream_name, self.stream_arn)?,
            warm_throughput_mibps: u32::try_from(mibps.max(0)).unwrap_or(u32::MAX),
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
    /// The engine request (the validation table required the size and bounded it to
    /// 1024–10240 KiB).
    pub(crate) fn into_input(self) -> Result<UpdateMaxRecordSizeInput, ServerError> {
        let kib = present(self.max_record_size_kib, "maxRecordSizeInKiB")?;
        Ok(UpdateMaxRecordSizeInput {
            stream: StreamRef::from_parts(None, self.stream_arn)?,
            max_record_size_kib: u32::try_from(kib).unwrap_or(MAX_RECORD_SIZE_KIB),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::codec::WireFormat;
    use super::super::request_check::check;

    #[test]
    fn requests_are_validated_by_the_table_with_aws_wording() {
        let cases: [(&str, &str, Option<&str>); 6] = [
            (
                "UpdateAccountSettings",
                r#"{}"#,
                Some(
                    "Value null at 'minimumThroughputBillingCommitment' failed to satisfy constraint: Member must not be null",
                ),
            ),
            (
                "UpdateAccountSettings",
                r#"{"MinimumThroughputBillingCommitment":{}}"#,
                Some(
                    "Value null at 'minimumThroughputBillingCommitment.status' failed to satisfy constraint: Member must not be null",
                ),
            ),
            (
                "UpdateAccountSettings",
                r#"{"MinimumThroughputBillingCommitment":{"Status":"SOMETIMES"}}"#,
                Some(
                    "Value 'SOMETIMES' at 'minimumThroughputBillingCommitment.status' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED]",
                ),
            ),
            (
                "UpdateAccountSettings",
                r#"{"MinimumThroughputBillingCommitment":{"Status":"ENABLED"}}"#,
                None,
            ),
            (
                "UpdateMaxRecordSize",
                r#"{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s","MaxRecordSizeInKiB":1023}"#,
                Some(
                    "Value '1023' at 'maxRecordSizeInKiB' failed to satisfy constraint: Member must have value greater than or equal to 1024",
                ),
            ),
            (
                "UpdateStreamWarmThroughput",
                r#"{"StreamName":"s","WarmThroughputMiBps":-1}"#,
                Some(
                    "Value '-1' at 'warmThroughputMiBps' failed to satisfy constraint: Member must have value greater than or equal to 0",
                ),
            ),
        ];
        for (operation, body, expected) in cases {
            let outcome = check(operation, WireFormat::Json, body.as_bytes());
            match (outcome, expected) {
                (Ok(()), None) => {}
                (Err(error), Some(message)) => assert_eq!(
                    error.message(),
                    format!("1 validation error detected: {message}"),
                    "{operation} {body}"
                ),
                (outcome, expected) => panic!("{operation} {body}: {outcome:?} vs {expected:?}"),
            }
        }
    }
}
