//! The AWS JSON shapes of the Firehose operations this API serves (botocore's
//! `firehose/2015-08-04` model), and their conversion to the delivery model.

use crate::api::error::ApiError;
use crate::config::{BufferingHints, Compression, DynamicPartitioning, Processing, S3Destination};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// `Tag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Tag {
    pub(crate) key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) value: Option<String>,
}

/// `KinesisStreamSourceConfiguration`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct KinesisStreamSourceConfiguration {
    #[serde(rename = "KinesisStreamARN")]
    pub(crate) kinesis_stream_arn: String,
    #[serde(rename = "RoleARN")]
    pub(crate) role_arn: String,
}

/// `BufferingHints`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireBufferingHints {
    #[serde(rename = "SizeInMBs", default, skip_serializing_if = "Option::is_none")]
    pub(crate) size_in_mbs: Option<i64>,
    #[serde(
        rename = "IntervalInSeconds",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) interval_in_seconds: Option<i64>,
}

/// `ProcessorParameter`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ProcessorParameter {
    pub(crate) parameter_name: String,
    pub(crate) parameter_value: String,
}

/// `Processor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Processor {
    #[serde(rename = "Type")]
    pub(crate) processor_type: String,
    #[serde(default)]
    pub(crate) parameters: Vec<ProcessorParameter>,
}

/// `ProcessingConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ProcessingConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) enabled: Option<bool>,
    #[serde(default)]
    pub(crate) processors: Vec<Processor>,
}

/// `ExtendedS3DestinationConfiguration`, `S3DestinationConfiguration` and their `…Update`
/// shapes: every member optional, so one shape serves creation, update and the catalog.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireDestination {
    #[serde(rename = "RoleARN", default, skip_serializing_if = "Option::is_none")]
    pub(crate) role_arn: Option<String>,
    #[serde(rename = "BucketARN", default, skip_serializing_if = "Option::is_none")]
    pub(crate) bucket_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error_output_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) buffering_hints: Option<WireBufferingHints>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) compression_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) encryption_configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cloud_watch_logging_options: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) processing_configuration: Option<ProcessingConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) s3_backup_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dynamic_partitioning_configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) file_extension: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) custom_time_zone: Option<String>,
    /// Members this broker does not model (`S3BackupConfiguration`,
    /// `DataFormatConversionConfiguration`, ...): refused when set.
    #[serde(flatten, default, skip_serializing)]
    pub(crate) unsupported: BTreeMap<String, Value>,
}

impl WireDestination {
    /// This destination with every member `update` sets replaced (`UpdateDestination`).
    pub(crate) fn merged_with(&self, update: &WireDestination) -> WireDestination {
        fn pick<T: Clone>(new: &Option<T>, old: &Option<T>) -> Option<T> {
            new.clone().or_else(|| old.clone())
        }
        let buffering_hints = match (&update.buffering_hints, &self.buffering_hints) {
            (Some(new), Some(old)) => Some(WireBufferingHints {
                size_in_mbs: new.size_in_mbs.or(old.size_in_mbs),
                interval_in_seconds: new.interval_in_seconds.or(old.interval_in_seconds),
            }),
            (new, old) => pick(new, old),
        };
        WireDestination {
            role_arn: pick(&update.role_arn, &self.role_arn),
            bucket_arn: pick(&update.bucket_arn, &self.bucket_arn),
            prefix: pick(&update.prefix, &self.prefix),
            error_output_prefix: pick(&update.error_output_prefix, &self.error_output_prefix),
            buffering_hints,
            compression_format: pick(&update.compression_format, &self.compression_format),
            encryption_configuration: pick(
                &update.encryption_configuration,
                &self.encryption_configuration,
            ),
            cloud_watch_logging_options: pick(
                &update.cloud_watch_logging_options,
                &self.cloud_watch_logging_options,
            ),
            processing_configuration: pick(
                &update.processing_configuration,
                &self.processing_configuration,
            ),
            s3_backup_mode: pick(&update.s3_backup_mode, &self.s3_backup_mode),
            dynamic_partitioning_configuration: pick(
                &update.dynamic_partitioning_configuration,
                &self.dynamic_partitioning_configuration,
            ),
            file_extension: pick(&update.file_extension, &self.file_extension),
            custom_time_zone: pick(&update.custom_time_zone, &self.custom_time_zone),
            unsupported: update.unsupported.clone(),
        }
    }

    /// The destination's description (`ExtendedS3DestinationDescription`; its
    /// `S3DestinationDescription` is the subset without the extended members).
    pub(crate) fn description(&self, extended: bool) -> Value {
        let hints = BufferingHints::default();
        let buffering = self.buffering_hints.unwrap_or_default();
        let mut description = serde_json::json!({
            "RoleARN": self.role_arn.clone().unwrap_or_default(),
            "BucketARN": self.bucket_arn.clone().unwrap_or_default(),
            "BufferingHints": {
                "SizeInMBs": buffering.size_in_mbs.unwrap_or(i64::from(hints.size_mib)),
                "IntervalInSeconds": buffering
                    .interval_in_seconds
                    .unwrap_or(i64::from(hints.interval_secs)),
            },
            "CompressionFormat": self.compression_format.clone().unwrap_or_else(|| "UNCOMPRESSED".into()),
            "EncryptionConfiguration": self
                .encryption_configuration
                .clone()
                .unwrap_or_else(|| serde_json::json!({"NoEncryptionConfig": "NoEncryption"})),
            "CloudWatchLoggingOptions": self
                .cloud_watch_logging_options
                .clone()
                .unwrap_or_else(|| serde_json::json!({"Enabled": false})),
        });
        let Some(fields) = description.as_object_mut() else {
            return description;
        };
        if let Some(prefix) = &self.prefix {
            fields.insert("Prefix".into(), Value::from(prefix.clone()));
        }
        if let Some(prefix) = &self.error_output_prefix {
            fields.insert("ErrorOutputPrefix".into(), Value::from(prefix.clone()));
        }
        if !extended {
            return description;
        }
        let processing = self.processing_configuration.clone().unwrap_or_default();
        fields.insert(
            "ProcessingConfiguration".into(),
            serde_json::json!({
                "Enabled": processing.enabled.unwrap_or(false),
                "Processors": processing.processors,
            }),
        );
        fields.insert(
            "S3BackupMode".into(),
            Value::from(
                self.s3_backup_mode
                    .clone()
                    .unwrap_or_else(|| "Disabled".into()),
            ),
        );
        if let Some(partitioning) = &self.dynamic_partitioning_configuration {
            fields.insert(
                "DynamicPartitioningConfiguration".into(),
                partitioning.clone(),
            );
        }
        if let Some(extension) = &self.file_extension {
            fields.insert("FileExtension".into(), Value::from(extension.clone()));
        }
        if let Some(zone) = &self.custom_time_zone {
            fields.insert("CustomTimeZone".into(), Value::from(zone.clone()));
        }
        description
    }

    /// The delivery model of this destination; `lambda_command` resolves a Lambda ARN to the
    /// local command run for it.
    pub(crate) fn to_destination(
        &self,
        extended: bool,
        lambda_command: &dyn Fn(&str) -> Result<Vec<String>, ApiError>,
    ) -> Result<S3Destination, ApiError> {
        if let Some(member) = self.unsupported.keys().next() {
            return Err(ApiError::InvalidArgument(format!(
                "{member} is not supported by this broker's Firehose API"
            )));
        }
        let bucket_arn = self
            .bucket_arn
            .as_deref()
            .ok_or_else(|| ApiError::InvalidArgument("BucketARN is required".into()))?;
        if self.role_arn.as_deref().is_none_or(str::is_empty) {
            return Err(ApiError::InvalidArgument("RoleARN is required".into()));
        }
        let mut destination = S3Destination::new(bucket_of(bucket_arn)?);
        destination.prefix = self.prefix.clone().filter(|prefix| !prefix.is_empty());
        destination.error_output_prefix = self
            .error_output_prefix
            .clone()
            .filter(|prefix| !prefix.is_empty());
        destination.compression = compression(self.compression_format.as_deref())?;
        destination.buffering = buffering(self.buffering_hints.unwrap_or_default())?;
        if self
            .s3_backup_mode
            .as_deref()
            .is_some_and(|mode| mode != "Disabled")
        {
            return Err(ApiError::InvalidArgument(
                "S3BackupMode Enabled is not supported by this broker's Firehose API".into(),
            ));
        }
        if let Some(extension) = self.file_extension.as_deref().filter(|e| !e.is_empty()) {
            return Err(ApiError::InvalidArgument(format!(
                "FileExtension {extension:?} is not supported by this broker's Firehose API"
            )));
        }
        if let Some(zone) = self
            .custom_time_zone
            .as_deref()
            .filter(|zone| !zone.is_empty() && *zone != "UTC")
        {
            return Err(ApiError::InvalidArgument(format!(
                "CustomTimeZone {zone:?} is not supported (prefixes are rendered in UTC)"
            )));
        }
        if !extended {
            return Ok(destination);
        }
        let partitioning_enabled = self
            .dynamic_partitioning_configuration
            .as_ref()
            .and_then(|config| config.get("Enabled"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let processing = self.processing_configuration.clone().unwrap_or_default();
        let processing_enabled = processing.enabled.unwrap_or(false);
        let mut query = None;
        if processing_enabled {
            for processor in &processing.processors {
                let parameter = |name: &str| {
                    processor
                        .parameters
                        .iter()
                        .find(|parameter| parameter.parameter_name == name)
                        .map(|parameter| parameter.parameter_value.clone())
                };
                match processor.processor_type.as_str() {
                    "Lambda" => {
                        let arn = parameter("LambdaArn").ok_or_else(|| {
                            ApiError::InvalidArgument(
                                "ProcessingConfiguration: a Lambda processor needs the LambdaArn parameter".into(),
                            )
                        })?;
                        let retries = match parameter("NumberOfRetries") {
                            None => Processing::DEFAULT_RETRIES,
                            Some(text) => text.parse::<u32>().ok().filter(|n| *n <= 300).ok_or_else(|| {
                                ApiError::InvalidArgument(format!(
                                    "ProcessingConfiguration: NumberOfRetries {text:?} must be a number from 0 to 300"
                                ))
                            })?,
                        };
                        let command = lambda_command(&arn)?;
                        destination.processing = Some(Processing {
                            function_arn: arn,
                            command,
                            retries,
                        });
                    }
                    "MetadataExtraction" => {
                        let text = parameter("MetadataExtractionQuery").ok_or_else(|| {
                            ApiError::InvalidArgument(
                                "ProcessingConfiguration: a MetadataExtraction processor needs the MetadataExtractionQuery parameter".into(),
                            )
                        })?;
                        query = Some(DynamicPartitioning::parse_jq(&text)?);
                    }
                    other => {
                        return Err(ApiError::InvalidArgument(format!(
                            "ProcessingConfiguration: processor type {other} is not supported by this broker (Lambda and MetadataExtraction are)"
                        )));
                    }
                }
            }
        }
        match (partitioning_enabled, query) {
            (true, Some(query)) => destination.dynamic_partitioning = Some(query),
            (true, None) => {
                return Err(ApiError::InvalidArgument(
                    "DynamicPartitioningConfiguration: enabled dynamic partitioning needs a MetadataExtraction processor with a MetadataExtractionQuery (partitioning keys from Lambda are not supported)".into(),
                ));
            }
            (false, Some(_)) => {
                return Err(ApiError::InvalidArgument(
                    "ProcessingConfiguration: a MetadataExtraction processor needs DynamicPartitioningConfiguration.Enabled true".into(),
                ));
            }
            (false, None) => {}
        }
        Ok(destination)
    }
}

/// The bucket of `arn:aws:s3:::BUCKET`.
pub(crate) fn bucket_of(arn: &str) -> Result<String, ApiError> {
    let bucket = arn
        .strip_prefix("arn:")
        .and_then(|rest| rest.split_once(":s3:::"))
        .map(|(_partition, bucket)| bucket)
        .filter(|bucket| !bucket.is_empty() && !bucket.contains('/'))
        .ok_or_else(|| {
            ApiError::InvalidArgument(format!(
                "BucketARN {arn:?} must be an S3 bucket ARN like arn:aws:s3:::BUCKET"
            ))
        })?;
    Ok(bucket.to_owned())
}

fn compression(format: Option<&str>) -> Result<Compression, ApiError> {
    match format.unwrap_or("UNCOMPRESSED") {
        "UNCOMPRESSED" => Ok(Compression::Uncompressed),
        "GZIP" => Ok(Compression::Gzip),
        other => Err(ApiError::InvalidArgument(format!(
            "CompressionFormat {other} is not supported by this broker (UNCOMPRESSED or GZIP)"
        ))),
    }
}

fn buffering(hints: WireBufferingHints) -> Result<BufferingHints, ApiError> {
    let defaults = BufferingHints::default();
    let size = hints.size_in_mbs.unwrap_or(i64::from(defaults.size_mib));
    let interval = hints
        .interval_in_seconds
        .unwrap_or(i64::from(defaults.interval_secs));
    let size_mib = u32::try_from(size).map_err(|_| {
        ApiError::InvalidArgument(format!(
            "BufferingHints.SizeInMBs must be between 1 and 128, got {size}"
        ))
    })?;
    let interval_secs = u32::try_from(interval).map_err(|_| {
        ApiError::InvalidArgument(format!(
            "BufferingHints.IntervalInSeconds must be between 0 and 900, got {interval}"
        ))
    })?;
    let hints = BufferingHints {
        size_mib,
        interval_secs,
    };
    hints.validate()?;
    Ok(hints)
}

/// The function name of a Lambda ARN (`arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`).
pub(crate) fn lambda_function_name(arn: &str) -> Result<&str, ApiError> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        [
            "arn",
            _partition,
            "lambda",
            _region,
            _account,
            "function",
            name,
            ..,
        ] if !name.is_empty() => Ok(name),
        _ => Err(ApiError::InvalidArgument(format!(
            "LambdaArn {arn:?} must be a Lambda function ARN like arn:aws:lambda:REGION:ACCOUNT:function:NAME"
        ))),
    }
}

/// The stream name of `arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`, with its region and account.
pub(crate) fn kinesis_stream_of(arn: &str) -> Result<(&str, &str, &str), ApiError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if let ["arn", _partition, "kinesis", region, account, resource] = parts.as_slice()
        && let Some(name) = resource.strip_prefix("stream/")
        && !name.is_empty()
    {
        return Ok((region, account, name));
    }
    Err(ApiError::InvalidArgument(format!(
        "KinesisStreamARN {arn:?} must be a Kinesis stream ARN like arn:aws:kinesis:REGION:ACCOUNT:stream/NAME"
    )))
}

/// `CreateDeliveryStream` input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateDeliveryStreamInput {
    pub(crate) delivery_stream_name: String,
    #[serde(default)]
    pub(crate) delivery_stream_type: Option<String>,
    #[serde(default)]
    pub(crate) kinesis_stream_source_configuration: Option<KinesisStreamSourceConfiguration>,
    #[serde(default, rename = "S3DestinationConfiguration")]
    pub(crate) s3_destination_configuration: Option<WireDestination>,
    #[serde(default, rename = "ExtendedS3DestinationConfiguration")]
    pub(crate) extended_s3_destination_configuration: Option<WireDestination>,
    #[serde(default)]
    pub(crate) tags: Option<Vec<Tag>>,
    /// Accepted and ignored (nothing is encrypted at rest by this broker).
    #[serde(default, rename = "DeliveryStreamEncryptionConfigurationInput")]
    pub(crate) _encryption: Option<serde::de::IgnoredAny>,
    /// Accepted and ignored (the throughput hint of DirectPut streams).
    #[serde(default, rename = "DirectPutSourceConfiguration")]
    pub(crate) _direct_put: Option<serde::de::IgnoredAny>,
    /// Other destinations and sources: refused.
    #[serde(flatten)]
    pub(crate) unsupported: BTreeMap<String, Value>,
}

/// Inputs naming only a delivery stream (`DescribeDeliveryStream`, `DeleteDeliveryStream`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StreamNameInput {
    pub(crate) delivery_stream_name: String,
}

/// `ListDeliveryStreams` input.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListDeliveryStreamsInput {
    #[serde(default)]
    pub(crate) limit: Option<i64>,
    #[serde(default)]
    pub(crate) delivery_stream_type: Option<String>,
    #[serde(default)]
    pub(crate) exclusive_start_delivery_stream_name: Option<String>,
}

/// `Record`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Record {
    pub(crate) data: String,
}

/// `PutRecord` input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutRecordInput {
    pub(crate) delivery_stream_name: String,
    pub(crate) record: Record,
}

/// `PutRecordBatch` input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutRecordBatchInput {
    pub(crate) delivery_stream_name: String,
    pub(crate) records: Vec<Record>,
}

/// `UpdateDestination` input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateDestinationInput {
    pub(crate) delivery_stream_name: String,
    pub(crate) current_delivery_stream_version_id: String,
    pub(crate) destination_id: String,
    #[serde(default, rename = "S3DestinationUpdate")]
    pub(crate) s3_destination_update: Option<WireDestination>,
    #[serde(default, rename = "ExtendedS3DestinationUpdate")]
    pub(crate) extended_s3_destination_update: Option<WireDestination>,
    /// Updates of other destination kinds: refused.
    #[serde(flatten)]
    pub(crate) unsupported: BTreeMap<String, Value>,
}

/// `TagDeliveryStream` input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TagDeliveryStreamInput {
    pub(crate) delivery_stream_name: String,
    pub(crate) tags: Vec<Tag>,
}

/// `UntagDeliveryStream` input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UntagDeliveryStreamInput {
    pub(crate) delivery_stream_name: String,
    pub(crate) tag_keys: Vec<String>,
}

/// `ListTagsForDeliveryStream` input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListTagsForDeliveryStreamInput {
    pub(crate) delivery_stream_name: String,
    #[serde(default)]
    pub(crate) exclusive_start_tag_key: Option<String>,
    #[serde(default)]
    pub(crate) limit: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_lambda(arn: &str) -> Result<Vec<String>, ApiError> {
        Err(ApiError::InvalidArgument(format!("no lambda {arn}")))
    }

    fn destination(json: Value) -> WireDestination {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn arns_parse_or_name_the_rule() {
        assert_eq!(bucket_of("arn:aws:s3:::my-bucket").unwrap(), "my-bucket");
        assert_eq!(bucket_of("arn:aws-cn:s3:::b.c").unwrap(), "b.c");
        for bad in [
            "my-bucket",
            "arn:aws:s3:::",
            "arn:aws:s3:::a/b",
            "arn:aws:sqs:::x",
        ] {
            let error = bucket_of(bad).unwrap_err();
            assert!(error.to_string().contains("BucketARN"), "{bad}: {error}");
        }
        assert_eq!(
            lambda_function_name("arn:aws:lambda:us-east-1:000000000000:function:shout").unwrap(),
            "shout"
        );
        assert_eq!(
            lambda_function_name("arn:aws:lambda:us-east-1:000000000000:function:shout:$LATEST")
                .unwrap(),
            "shout"
        );
        assert!(lambda_function_name("arn:aws:lambda:us-east-1:0:layer:x").is_err());
        assert_eq!(
            kinesis_stream_of("arn:aws:kinesis:eu-west-1:123456789012:stream/orders").unwrap(),
            ("eu-west-1", "123456789012", "orders")
        );
        assert!(kinesis_stream_of("arn:aws:kinesis:eu-west-1:1:orders").is_err());
    }

    #[test]
    fn destinations_convert_with_defaults_and_refuse_what_is_not_modelled() {
        let converted = destination(serde_json::json!({
            "RoleARN": "arn:aws:iam::000000000000:role/r",
            "BucketARN": "arn:aws:s3:::logs",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 2},
            "CompressionFormat": "GZIP",
            "Prefix": "data/",
        }))
        .to_destination(true, &no_lambda)
        .unwrap();
        assert_eq!(converted.bucket, "logs");
        assert_eq!(converted.prefix.as_deref(), Some("data/"));
        assert_eq!(converted.compression, Compression::Gzip);
        assert_eq!(
            converted.buffering,
            BufferingHints {
                size_mib: 1,
                interval_secs: 2
            }
        );
        let refused = [
            (
                serde_json::json!({"RoleARN": "r", "BucketARN": "arn:aws:s3:::logs", "CompressionFormat": "ZIP"}),
                "CompressionFormat",
            ),
            (
                serde_json::json!({"RoleARN": "r", "BucketARN": "arn:aws:s3:::logs", "BufferingHints": {"SizeInMBs": 0}}),
                "SizeInMBs",
            ),
            (
                serde_json::json!({"RoleARN": "r", "BucketARN": "arn:aws:s3:::logs", "BufferingHints": {"IntervalInSeconds": 901}}),
                "IntervalInSeconds",
            ),
            (serde_json::json!({"RoleARN": "r"}), "BucketARN"),
            (
                serde_json::json!({"BucketARN": "arn:aws:s3:::logs"}),
                "RoleARN",
            ),
            (
                serde_json::json!({"RoleARN": "r", "BucketARN": "arn:aws:s3:::logs", "DataFormatConversionConfiguration": {}}),
                "DataFormatConversionConfiguration",
            ),
            (
                serde_json::json!({"RoleARN": "r", "BucketARN": "arn:aws:s3:::logs",
                "ProcessingConfiguration": {"Enabled": true, "Processors": [{"Type": "Lambda", "Parameters": [
                    {"ParameterName": "LambdaArn", "ParameterValue": "arn:aws:lambda:us-east-1:000000000000:function:f"}]}]}}),
                "no lambda",
            ),
            (
                serde_json::json!({"RoleARN": "r", "BucketARN": "arn:aws:s3:::logs",
                "DynamicPartitioningConfiguration": {"Enabled": true}}),
                "MetadataExtraction",
            ),
        ];
        for (json, named) in refused {
            let error = destination(json.clone())
                .to_destination(true, &no_lambda)
                .unwrap_err();
            assert_eq!(error.aws_type(), "InvalidArgumentException", "{json}");
            assert!(error.to_string().contains(named), "{json}: {error}");
        }
    }

    #[test]
    fn lambda_and_partitioning_processors_resolve() {
        let converted = destination(serde_json::json!({
            "RoleARN": "arn:aws:iam::000000000000:role/r",
            "BucketARN": "arn:aws:s3:::logs",
            "Prefix": "c=!{partitionKeyFromQuery:customer}/",
            "ErrorOutputPrefix": "errors/",
            "DynamicPartitioningConfiguration": {"Enabled": true},
            "ProcessingConfiguration": {"Enabled": true, "Processors": [
                {"Type": "Lambda", "Parameters": [
                    {"ParameterName": "LambdaArn", "ParameterValue": "arn:aws:lambda:us-east-1:000000000000:function:upper"},
                    {"ParameterName": "NumberOfRetries", "ParameterValue": "1"}]},
                {"Type": "MetadataExtraction", "Parameters": [
                    {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{customer:.customer}"},
                    {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}
            ]}
        }))
        .to_destination(true, &|arn| {
            Ok(vec![lambda_function_name(arn)?.to_owned()])
        })
        .unwrap();
        let processing = converted.processing.unwrap();
        assert_eq!(processing.command, vec!["upper".to_owned()]);
        assert_eq!(processing.retries, 1);
        let keys = converted.dynamic_partitioning.unwrap().keys;
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].name, "customer");
    }

    #[test]
    fn updates_replace_only_the_members_they_set() {
        let stored = destination(serde_json::json!({
            "RoleARN": "arn:aws:iam::000000000000:role/r",
            "BucketARN": "arn:aws:s3:::logs",
            "Prefix": "a/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
        }));
        let update = destination(serde_json::json!({
            "BufferingHints": {"IntervalInSeconds": 5},
            "ErrorOutputPrefix": "err/",
        }));
        let merged = stored.merged_with(&update);
        assert_eq!(merged.prefix.as_deref(), Some("a/"));
        assert_eq!(merged.error_output_prefix.as_deref(), Some("err/"));
        assert_eq!(
            merged.buffering_hints,
            Some(WireBufferingHints {
                size_in_mbs: Some(1),
                interval_in_seconds: Some(5)
            })
        );
        let description = merged.description(true);
        assert_eq!(description["BufferingHints"]["IntervalInSeconds"], 5);
        assert_eq!(description["CompressionFormat"], "UNCOMPRESSED");
        assert_eq!(description["S3BackupMode"], "Disabled");
    }
}
