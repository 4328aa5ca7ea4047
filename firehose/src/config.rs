//! The delivery-stream model: destination, buffering, compression, transformation and
//! dynamic partitioning, with validation. Plain Rust (serde for persistence); the AWS wire
//! shapes live in the API module.

use crate::error::FirehoseError;
use serde::{Deserialize, Serialize};

/// One delivery stream as the delivery pipeline sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryStreamConfig {
    /// The delivery stream's name (first part of every object name).
    pub name: String,
    /// The destination's version (second part of every object name; AWS starts at 1 and bumps
    /// it on each `UpdateDestination`).
    pub version_id: u64,
    /// Where and how objects are written.
    pub destination: S3Destination,
}

impl DeliveryStreamConfig {
    /// Checks every field (see [`S3Destination::validate`]).
    pub fn validate(&self) -> Result<(), FirehoseError> {
        if self.name.is_empty() || self.name.len() > 64 {
            return Err(FirehoseError::invalid(
                "DeliveryStreamName",
                "must be 1 to 64 characters",
            ));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        if !self.name.chars().all(allowed) {
            return Err(FirehoseError::invalid(
                "DeliveryStreamName",
                "may contain only letters, digits, '_', '.' and '-'",
            ));
        }
        self.destination.validate()
    }
}

/// An S3-style destination: bucket, prefixes, compression, buffering, processing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Destination {
    /// The bucket (from `BucketARN` `arn:aws:s3:::BUCKET`).
    pub bucket: String,
    /// The key prefix; may contain `!{timestamp:FMT}`, `!{partitionKeyFromQuery:KEY}` and
    /// `!{firehose:random-string}`. `None`: `YYYY/MM/DD/HH/`.
    pub prefix: Option<String>,
    /// The prefix of failed records; may contain `!{firehose:error-output-type}` and
    /// `!{timestamp:FMT}`. `None`: `processing-failed/YYYY/MM/DD/HH/`.
    pub error_output_prefix: Option<String>,
    /// Object compression.
    pub compression: Compression,
    /// When a buffer is flushed.
    pub buffering: BufferingHints,
    /// The Lambda-style transformation, if any.
    pub processing: Option<Processing>,
    /// Partitioning on JSON keys of the (transformed) records, if any.
    pub dynamic_partitioning: Option<DynamicPartitioning>,
}

impl S3Destination {
    /// A destination writing to `bucket` with every default.
    pub fn new(bucket: impl Into<String>) -> Self {
        S3Destination {
            bucket: bucket.into(),
            prefix: None,
            error_output_prefix: None,
            compression: Compression::Uncompressed,
            buffering: BufferingHints::default(),
            processing: None,
            dynamic_partitioning: None,
        }
    }

    /// Checks the bucket, the prefixes, the hints and the processing command.
    pub fn validate(&self) -> Result<(), FirehoseError> {
        validate_bucket(&self.bucket)?;
        self.buffering.validate()?;
        let prefix = crate::layout::PrefixTemplate::parse("Prefix", self.prefix.as_deref())?;
        crate::layout::PrefixTemplate::parse(
            "ErrorOutputPrefix",
            self.error_output_prefix.as_deref(),
        )?;
        let keys: Vec<&str> = self
            .dynamic_partitioning
            .iter()
            .flat_map(|partitioning| partitioning.keys.iter().map(|key| key.name.as_str()))
            .collect();
        for used in prefix.partition_keys() {
            if !keys.contains(&used) {
                return Err(FirehoseError::invalid(
                    "Prefix",
                    format!(
                        "!{{partitionKeyFromQuery:{used}}} needs a dynamic partitioning key named {used:?}"
                    ),
                ));
            }
        }
        if self.dynamic_partitioning.is_some() && prefix.partition_keys().is_empty() {
            return Err(FirehoseError::invalid(
                "Prefix",
                "must use !{partitionKeyFromQuery:KEY} when dynamic partitioning is enabled",
            ));
        }
        if self.dynamic_partitioning.is_some() && self.error_output_prefix.is_none() {
            return Err(FirehoseError::invalid(
                "ErrorOutputPrefix",
                "is required when dynamic partitioning is enabled",
            ));
        }
        if let Some(processing) = &self.processing
            && processing.command.is_empty()
        {
            return Err(FirehoseError::invalid(
                "ProcessingConfiguration.command",
                "must name a program to run",
            ));
        }
        Ok(())
    }
}

/// Checks S3 bucket naming rules (3-63 characters of lowercase letters, digits, '.', '-',
/// starting and ending with a letter or digit). They also keep `DIR/BUCKET` inside `DIR`.
pub fn validate_bucket(bucket: &str) -> Result<(), FirehoseError> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-');
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !(3..=63).contains(&bucket.len())
        || !bucket.chars().all(allowed)
        || !ends_ok(bucket.chars().next())
        || !ends_ok(bucket.chars().last())
        || bucket.contains("..")
    {
        return Err(FirehoseError::invalid(
            "BucketARN",
            format!(
                "bucket name {bucket:?} must be 3-63 lowercase letters, digits, '.' or '-', starting and ending with a letter or digit"
            ),
        ));
    }
    Ok(())
}

/// When a buffer is written out: whichever hint is reached first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BufferingHints {
    /// Size hint in MiB (1..=128, default 5).
    pub size_mib: u32,
    /// Interval hint in seconds (0..=900, default 300).
    pub interval_secs: u32,
}

impl Default for BufferingHints {
    fn default() -> Self {
        BufferingHints {
            size_mib: 5,
            interval_secs: 300,
        }
    }
}

impl BufferingHints {
    /// Checks the AWS ranges.
    pub fn validate(&self) -> Result<(), FirehoseError> {
        if !(1..=128).contains(&self.size_mib) {
            return Err(FirehoseError::invalid(
                "BufferingHints.SizeInMBs",
                format!("must be between 1 and 128, got {}", self.size_mib),
            ));
        }
        if self.interval_secs > 900 {
            return Err(FirehoseError::invalid(
                "BufferingHints.IntervalInSeconds",
                format!("must be between 0 and 900, got {}", self.interval_secs),
            ));
        }
        Ok(())
    }

    /// The size hint in bytes.
    pub fn size_bytes(&self) -> usize {
        usize::try_from(self.size_mib)
            .unwrap_or(usize::MAX)
            .saturating_mul(1024 * 1024)
    }

    /// The interval hint.
    pub fn interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.interval_secs))
    }
}

/// Object compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Compression {
    /// Objects are the concatenated records.
    #[default]
    Uncompressed,
    /// Objects are one GZIP member of the concatenated records, named `….gz`.
    Gzip,
}

impl Compression {
    /// The object-name suffix (`""` or `".gz"`).
    pub fn extension(&self) -> &'static str {
        match self {
            Compression::Uncompressed => "",
            Compression::Gzip => ".gz",
        }
    }
}

/// A Lambda-style record transformation run as a local command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Processing {
    /// The Lambda ARN configured (reported in error records as `lambdaArn`).
    pub function_arn: String,
    /// The program and its arguments: one JSON request on stdin, the answer on stdout.
    pub command: Vec<String>,
    /// Retries after a failed invocation (Lambda `NumberOfRetries`, default 3).
    pub retries: u32,
}

impl Processing {
    /// The default number of retries (AWS: 3).
    pub const DEFAULT_RETRIES: u32 = 3;
}

/// Dynamic partitioning on JSON keys of the records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicPartitioning {
    /// The partition keys, in the order written in the query.
    pub keys: Vec<PartitionKeyQuery>,
}

/// One partition key: a name and the JSON path of its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionKeyQuery {
    /// The key's name (used as `!{partitionKeyFromQuery:NAME}`).
    pub name: String,
    /// The object fields to descend (`.a.b` is `["a", "b"]`).
    pub path: Vec<String>,
}

impl DynamicPartitioning {
    /// Parses the MetadataExtraction JQ query, restricted to an object of simple paths:
    /// `{customer: .customer.id, day: .day}` (names may be quoted; path segments are
    /// identifiers or quoted strings: `."a b"`).
    pub fn parse_jq(query: &str) -> Result<Self, FirehoseError> {
        const FIELD: &str = "MetadataExtractionQuery";
        let fail = |rule: String| FirehoseError::invalid(FIELD, rule);
        let body = query
            .trim()
            .strip_prefix('{')
            .and_then(|rest| rest.strip_suffix('}'))
            .ok_or_else(|| fail("must be a JQ object like {key:.field}".into()))?;
        let mut keys = Vec::new();
        for entry in split_top_level(body) {
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(fail("has an empty entry".into()));
            }
            let (name, path) = entry
                .split_once(':')
                .ok_or_else(|| fail(format!("entry {entry:?} must be NAME:.path")))?;
            let name =
                unquote(name.trim()).ok_or_else(|| fail(format!("bad key name in {entry:?}")))?;
            if name.is_empty() || !name.chars().all(is_ident_char) {
                return Err(fail(format!(
                    "key name {name:?} must be letters, digits or '_'"
                )));
            }
            if keys.iter().any(|key: &PartitionKeyQuery| key.name == name) {
                return Err(fail(format!("key {name:?} appears twice")));
            }
            let path = parse_path(path.trim()).ok_or_else(|| {
                fail(format!(
                    "path of {name:?} must be a simple path like .a.b, got {:?}",
                    path.trim()
                ))
            })?;
            keys.push(PartitionKeyQuery { name, path });
        }
        if keys.is_empty() {
            return Err(fail("must define at least one key".into()));
        }
        Ok(DynamicPartitioning { keys })
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Splits on commas outside double quotes.
fn split_top_level(body: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut in_quotes = false;
    let mut start = 0;
    for (index, c) in body.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => {
                parts.push(&body[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[start..]);
    parts
}

fn unquote(text: &str) -> Option<String> {
    match text.strip_prefix('"') {
        Some(rest) => rest
            .strip_suffix('"')
            .filter(|inner| !inner.contains('"'))
            .map(str::to_owned),
        None => Some(text.to_owned()),
    }
}

/// `.a.b` / `."x y".c` -> segments; `None` for anything else (`.`, filters, indexes).
fn parse_path(path: &str) -> Option<Vec<String>> {
    let mut segments = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        rest = rest.strip_prefix('.')?;
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"')?;
            segments.push(quoted[..end].to_owned());
            rest = &quoted[end + 1..];
        } else {
            let end = rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len());
            if end == 0 {
                return None;
            }
            segments.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    if segments.is_empty() {
        return None;
    }
    Some(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, path: &[&str]) -> PartitionKeyQuery {
        PartitionKeyQuery {
            name: name.into(),
            path: path.iter().map(|segment| (*segment).to_owned()).collect(),
        }
    }

    #[test]
    fn jq_queries_parse_into_keys() {
        let cases: &[(&str, Vec<PartitionKeyQuery>)] = &[
            ("{customer:.customer}", vec![key("customer", &["customer"])]),
            (
                " { customer_id : .customer.id , day:.day } ",
                vec![
                    key("customer_id", &["customer", "id"]),
                    key("day", &["day"]),
                ],
            ),
            ("{\"k\": .\"a b\".c}", vec![key("k", &["a b", "c"])]),
        ];
        for (query, expected) in cases {
            let parsed = DynamicPartitioning::parse_jq(query).unwrap();
            assert_eq!(&parsed.keys, expected, "{query}");
        }
    }

    #[test]
    fn bad_jq_queries_name_the_rule() {
        let cases = [
            (".customer", "must be a JQ object"),
            ("{}", "empty entry"),
            ("{a}", "must be NAME:.path"),
            ("{a:.x, a:.y}", "appears twice"),
            ("{a:.}", "simple path"),
            ("{a:.x | ascii_downcase}", "simple path"),
            ("{a:.x[0]}", "simple path"),
            ("{a-b:.x}", "letters, digits or '_'"),
        ];
        for (query, rule) in cases {
            let message = DynamicPartitioning::parse_jq(query)
                .unwrap_err()
                .to_string();
            assert!(
                message.contains("MetadataExtractionQuery") && message.contains(rule),
                "{query}: {message}"
            );
        }
    }

    #[test]
    fn hints_are_checked_against_the_aws_ranges() {
        let cases = [
            (1, 0, None),
            (128, 900, None),
            (5, 300, None),
            (0, 300, Some("BufferingHints.SizeInMBs")),
            (129, 300, Some("BufferingHints.SizeInMBs")),
            (5, 901, Some("BufferingHints.IntervalInSeconds")),
        ];
        for (size_mib, interval_secs, field) in cases {
            let result = BufferingHints {
                size_mib,
                interval_secs,
            }
            .validate();
            match field {
                None => assert!(result.is_ok(), "{size_mib}/{interval_secs}"),
                Some(field) => {
                    let message = result.unwrap_err().to_string();
                    assert!(message.contains(field), "{message}");
                }
            }
        }
        assert_eq!(BufferingHints::default().size_bytes(), 5 * 1024 * 1024);
    }

    #[test]
    fn destinations_are_validated() {
        let partitioned = || S3Destination {
            prefix: Some("c=!{partitionKeyFromQuery:c}/".into()),
            error_output_prefix: Some("errors/".into()),
            dynamic_partitioning: Some(DynamicPartitioning::parse_jq("{c:.c}").unwrap()),
            ..S3Destination::new("my-bucket")
        };
        assert!(partitioned().validate().is_ok());
        assert!(S3Destination::new("my.bucket-1").validate().is_ok());
        let cases: Vec<(S3Destination, &str)> = vec![
            (S3Destination::new("ab"), "BucketARN"),
            (S3Destination::new("My_Bucket"), "BucketARN"),
            (S3Destination::new("a..b"), "BucketARN"),
            (S3Destination::new("-ab"), "BucketARN"),
            (
                S3Destination {
                    prefix: Some("/abs/".into()),
                    ..S3Destination::new("bucket")
                },
                "Prefix",
            ),
            (
                S3Destination {
                    prefix: Some("a/../b/".into()),
                    ..S3Destination::new("bucket")
                },
                "Prefix",
            ),
            (
                S3Destination {
                    prefix: Some("c=!{partitionKeyFromQuery:c}/".into()),
                    ..S3Destination::new("bucket")
                },
                "needs a dynamic partitioning key",
            ),
            (
                S3Destination {
                    prefix: Some("static/".into()),
                    ..partitioned()
                },
                "must use !{partitionKeyFromQuery",
            ),
            (
                S3Destination {
                    error_output_prefix: None,
                    ..partitioned()
                },
                "ErrorOutputPrefix",
            ),
            (
                S3Destination {
                    processing: Some(Processing {
                        function_arn: "arn".into(),
                        command: vec![],
                        retries: 3,
                    }),
                    ..S3Destination::new("bucket")
                },
                "ProcessingConfiguration.command",
            ),
        ];
        for (destination, rule) in cases {
            let message = destination.validate().unwrap_err().to_string();
            assert!(message.contains(rule), "{destination:?}: {message}");
        }
    }

    #[test]
    fn the_config_round_trips_through_serde() {
        let config = DeliveryStreamConfig {
            name: "orders".into(),
            version_id: 2,
            destination: S3Destination {
                compression: Compression::Gzip,
                processing: Some(Processing {
                    function_arn: "arn:aws:lambda:us-east-1:1:function:f".into(),
                    command: vec!["python3".into(), "t.py".into()],
                    retries: Processing::DEFAULT_RETRIES,
                }),
                ..S3Destination::new("bucket")
            },
        };
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(
            serde_json::from_str::<DeliveryStreamConfig>(&json).unwrap(),
            config
        );
        assert!(config.validate().is_ok());
        let bad_name = DeliveryStreamConfig {
            name: "a/b".into(),
            ..config
        };
        assert!(
            bad_name
                .validate()
                .unwrap_err()
                .to_string()
                .contains("DeliveryStreamName")
        );
    }
}
