//! Input validation with Kinesis's error types and wording.

use kcl_core::kinesis::{HashKey, KinesisError, KinesisErrorKind};

/// The pattern of stream and consumer names.
pub(crate) const NAME_PATTERN: &str = "[a-zA-Z0-9_.-]+";
/// The pattern of stream ARNs.
pub(crate) const STREAM_ARN_PATTERN: &str = "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+";

/// Collects constraint violations and turns them into one `ValidationException`
/// ("2 validation errors detected: ...; ..."). The one collector of the crate: the engine checks
/// typed inputs with it, the server checks leniently decoded request members with it.
#[derive(Debug, Default)]
pub(crate) struct Violations {
    messages: Vec<String>,
}

impl Violations {
    pub(crate) fn push(&mut self, message: String) {
        self.messages.push(message);
    }

    /// A violation of `value` at `field`.
    pub(crate) fn value(&mut self, value: &str, field: &str, constraint: &str) {
        self.push(format!(
            "Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
        ));
    }

    /// A violation at `field` whose value is not shown (blobs, lists).
    pub(crate) fn field(&mut self, field: &str, constraint: &str) {
        self.push(format!(
            "Value at '{field}' failed to satisfy constraint: {constraint}"
        ));
    }

    pub(crate) fn into_result(self) -> Result<(), KinesisError> {
        if self.messages.is_empty() {
            return Ok(());
        }
        let count = self.messages.len();
        let noun = if count == 1 { "error" } else { "errors" };
        Err(KinesisError::new(
            KinesisErrorKind::Validation,
            format!(
                "{count} validation {noun} detected: {}",
                self.messages.join("; ")
            ),
        ))
    }

    /// Checks a stream or consumer name: 1–128 characters of `[a-zA-Z0-9_.-]`.
    pub(crate) fn name(&mut self, value: &str, field: &str) {
        let length = value.chars().count();
        if length > 128 {
            self.value(
                value,
                field,
                "Member must have length less than or equal to 128",
            );
        }
        if length < 1 {
            self.value(
                value,
                field,
                "Member must have length greater than or equal to 1",
            );
        }
        let well_formed = value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !well_formed || value.is_empty() {
            self.value(
                value,
                field,
                &format!("Member must satisfy regular expression pattern: {NAME_PATTERN}"),
            );
        }
    }

    /// Checks that a string member has `min`–`max` characters.
    pub(crate) fn length(&mut self, value: &str, field: &str, min: usize, max: usize) {
        let length = value.chars().count();
        if length > max {
            self.value(
                value,
                field,
                &format!("Member must have length less than or equal to {max}"),
            );
        }
        if length < min {
            self.value(
                value,
                field,
                &format!("Member must have length greater than or equal to {min}"),
            );
        }
    }

    /// Checks a partition key: 1–256 characters.
    pub(crate) fn partition_key(&mut self, value: &str, field: &str) {
        let length = value.chars().count();
        if length > 256 {
            self.value(
                value,
                field,
                "Member must have length less than or equal to 256",
            );
        }
        if length < 1 {
            self.value(
                value,
                field,
                "Member must have length greater than or equal to 1",
            );
        }
    }

    /// Checks `value` lies in `[min, max]`.
    pub(crate) fn range(&mut self, value: u64, field: &str, min: u64, max: u64) {
        if value < min {
            self.value(
                &value.to_string(),
                field,
                &format!("Member must have value greater than or equal to {min}"),
            );
        }
        if value > max {
            self.value(
                &value.to_string(),
                field,
                &format!("Member must have value less than or equal to {max}"),
            );
        }
    }

    /// Checks a decimal hash key's shape (`0|([1-9]\d{0,38})`).
    pub(crate) fn hash_key_shape(&mut self, value: &str, field: &str) {
        if !is_hash_key_shaped(value) {
            self.value(
                value,
                field,
                "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})",
            );
        }
    }
}

/// The server's checks of leniently decoded request members (integers as `i64`, enums as
/// strings), so range and enum violations are worded as AWS words them.
#[cfg(feature = "server")]
impl Violations {
    /// A required member that is absent.
    pub(crate) fn required<T>(&mut self, value: Option<T>, field: &str) -> Option<T> {
        if value.is_none() {
            self.push(format!(
                "Value null at '{field}' failed to satisfy constraint: Member must not be null"
            ));
        }
        value
    }

    /// An optional integer member (decoded as `i64`, so negative and huge values are seen)
    /// that must lie in `[min, max]`; `None` when it is absent or out of range.
    pub(crate) fn bounded(
        &mut self,
        value: Option<i64>,
        field: &str,
        min: i64,
        max: i64,
    ) -> Option<u32> {
        let value = value?;
        if value < min {
            self.value(
                &value.to_string(),
                field,
                &format!("Member must have value greater than or equal to {min}"),
            );
            return None;
        }
        if value > max {
            self.value(
                &value.to_string(),
                field,
                &format!("Member must have value less than or equal to {max}"),
            );
            return None;
        }
        u32::try_from(value).ok()
    }

    /// A string member that must be one of `allowed`.
    pub(crate) fn one_of<'a>(
        &mut self,
        value: &'a str,
        field: &str,
        allowed: &[&str],
    ) -> Option<&'a str> {
        if allowed.contains(&value) {
            return Some(value);
        }
        self.value(
            value,
            field,
            &format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ),
        );
        None
    }

    /// A sequence-number member.
    pub(crate) fn sequence_number(
        &mut self,
        value: &str,
        field: &str,
    ) -> Option<kcl_core::kinesis::SequenceNumber> {
        let parsed = value.parse().ok();
        if parsed.is_none() {
            self.value(
                value,
                field,
                "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128})",
            );
        }
        parsed
    }
}

fn is_hash_key_shaped(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 39
        && bytes.iter().all(u8::is_ascii_digit)
        && (bytes.len() == 1 || bytes[0] != b'0')
}

/// Validates a single value and fails with its `ValidationException`.
pub(crate) fn name(value: &str, field: &str) -> Result<(), KinesisError> {
    let mut violations = Violations::default();
    violations.name(value, field);
    violations.into_result()
}

/// Parses an `ExplicitHashKey`: a pattern violation is a `ValidationException`, a value above
/// 2^128 − 1 an `InvalidArgumentException`.
pub(crate) fn explicit_hash_key(value: &str, field: &str) -> Result<HashKey, KinesisError> {
    let mut violations = Violations::default();
    violations.hash_key_shape(value, field);
    violations.into_result()?;
    value.parse::<u128>().map_err(|_| {
        KinesisError::new(
            KinesisErrorKind::InvalidArgument,
            format!(
                "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {value}"
            ),
        )
    })
}

/// An `InvalidArgumentException`.
pub(crate) fn invalid_argument(message: impl Into<String>) -> KinesisError {
    KinesisError::new(KinesisErrorKind::InvalidArgument, message)
}

/// A `ResourceNotFoundException`.
pub(crate) fn not_found(message: impl Into<String>) -> KinesisError {
    KinesisError::new(KinesisErrorKind::ResourceNotFound, message)
}

/// A `ResourceInUseException`.
pub(crate) fn in_use(message: impl Into<String>) -> KinesisError {
    KinesisError::new(KinesisErrorKind::ResourceInUse, message)
}

/// A `LimitExceededException`.
pub(crate) fn limit_exceeded(message: impl Into<String>) -> KinesisError {
    KinesisError::new(KinesisErrorKind::LimitExceeded, message)
}

/// The parts of a stream ARN `arn:PARTITION:kinesis:REGION:ACCOUNT:stream/NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamArn<'a> {
    pub(crate) region: &'a str,
    pub(crate) account: &'a str,
    pub(crate) stream_name: &'a str,
    /// The part after `/consumer/`, for consumer ARNs.
    pub(crate) consumer: Option<&'a str>,
}

/// Splits a stream or consumer ARN; `None` if it does not have that shape.
pub(crate) fn parse_arn(arn: &str) -> Option<StreamArn<'_>> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("kinesis"), Some(region), Some(account), Some(rest)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if !partition.starts_with("aws") || account.len() != 12 {
        return None;
    }
    if !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let resource = rest.strip_prefix("stream/")?;
    let (stream_name, consumer) = match resource.split_once("/consumer/") {
        Some((stream_name, consumer)) => (stream_name, Some(consumer)),
        None => (resource, None),
    };
    if stream_name.is_empty() || stream_name.contains(char::is_whitespace) {
        return None;
    }
    Some(StreamArn {
        region,
        account,
        stream_name,
        consumer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_kinesis_rules() {
        let cases: &[(&str, Option<&str>)] = &[
            ("orders", None),
            ("a.b_c-9", None),
            (
                "bad name",
                Some(
                    "1 validation error detected: Value 'bad name' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
                ),
            ),
            (
                "",
                Some(
                    "2 validation errors detected: Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or equal to 1; Value '' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
                ),
            ),
        ];
        for (input, expected) in cases {
            let outcome = name(input, "streamName");
            match expected {
                None => assert!(outcome.is_ok(), "{input:?}"),
                Some(message) => {
                    let error = outcome.expect_err("invalid");
                    assert_eq!(error.kind, KinesisErrorKind::Validation);
                    assert_eq!(&error.message, message);
                }
            }
        }
        let long = "x".repeat(129);
        assert!(name(&long, "streamName").is_err());
        assert!(name(&"x".repeat(128), "streamName").is_ok());
    }

    #[test]
    fn explicit_hash_keys_are_checked() {
        assert_eq!(explicit_hash_key("0", "explicitHashKey"), Ok(0));
        let max = u128::MAX.to_string();
        assert_eq!(explicit_hash_key(&max, "explicitHashKey"), Ok(u128::MAX));
        let too_big = "340282366920938463463374607431768211456";
        let error = explicit_hash_key(too_big, "explicitHashKey").expect_err("too big");
        assert_eq!(error.kind, KinesisErrorKind::InvalidArgument);
        assert!(error.message.ends_with(too_big));
        for bad in ["", "01", "-1", "1a"] {
            let error = explicit_hash_key(bad, "explicitHashKey").expect_err("bad shape");
            assert_eq!(error.kind, KinesisErrorKind::Validation, "{bad:?}");
        }
    }

    #[test]
    fn arns_split_into_their_parts() {
        let arn = parse_arn("arn:aws:kinesis:us-east-1:000000000000:stream/orders").expect("ok");
        assert_eq!(arn.stream_name, "orders");
        assert_eq!(arn.consumer, None);
        let consumer =
            parse_arn("arn:aws:kinesis:eu-west-1:123456789012:stream/s/consumer/c:1700000000")
                .expect("ok");
        assert_eq!(consumer.region, "eu-west-1");
        assert_eq!(consumer.consumer, Some("c:1700000000"));
        for bad in [
            "",
            "orders",
            "arn:aws:sqs:us-east-1:000000000000:stream/x",
            "arn:aws:kinesis:r:1:stream/x",
        ] {
            assert!(parse_arn(bad).is_none(), "{bad}");
        }
    }
}
