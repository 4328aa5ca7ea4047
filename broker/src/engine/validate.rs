//! Input validation with Kinesis's error types and wording.

use kcl_core::kinesis::{HashKey, KinesisError, KinesisErrorKind, ShardId};

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

/// The shard a request's shard id names, read as Kinesis reads it: the digits after the last
/// `-` (or the whole id when it has none) are the shard's index, so `shardId-0`, `anything-0`
/// and `0` all name `shardId-000000000000`. An id without such digits, or with an index above
/// 2^31 − 1, is kept as given (and names no shard). Applied where requests are decoded (the
/// server); the engine's callers name shards exactly.
#[cfg(any(feature = "server", test))]
pub(crate) fn parse_shard_id(text: &str) -> ShardId {
    let digits = text.rsplit('-').next().unwrap_or(text);
    let index = (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse::<u64>().ok())
        .flatten()
        .filter(|index| *index <= MAX_SHARD_INDEX);
    match index {
        Some(index) => ShardId::from_index(index),
        None => ShardId::from(text),
    }
}

/// The largest shard index Kinesis parses (a Java `int`).
const MAX_SHARD_INDEX: u64 = i32::MAX as u64;

/// The `ResourceNotFoundException` message for a shard id that names no shard of a stream:
/// Kinesis words ids it could not parse differently from parsed ids of absent shards.
pub(crate) fn shard_not_found_message(shard_id: &str, stream_name: &str, account: &str) -> String {
    let parsed = ShardId::from(shard_id)
        .index()
        .is_some_and(|index| index <= MAX_SHARD_INDEX);
    if parsed {
        format!("Shard {shard_id} in stream {stream_name} under account {account} does not exist")
    } else {
        format!("Could not find shard {shard_id} in stream {stream_name} under account {account}.")
    }
}

/// Whether a tag key or value uses only the characters Kinesis allows (Unicode letters,
/// digits, white space, `_ . / = + - % @ :`).
fn tag_text_allowed(text: &str) -> bool {
    text.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || "_./=+-%@: ".contains(c)
            || ('\u{00C0}'..='\u{1FFF}').contains(&c)
            || ('\u{2C00}'..='\u{D7FF}').contains(&c)
    })
}

/// Checks the characters of tag keys and values as Kinesis does after finding the stream
/// (`InvalidArgumentException`); `action` is "add tags to" or "remove tags from".
pub(crate) fn tag_characters<'a>(
    texts: impl IntoIterator<Item = &'a str> + Clone,
    action: &str,
    stream_name: &str,
    account: &str,
) -> Result<(), KinesisError> {
    if !texts.clone().into_iter().all(tag_text_allowed) {
        return Err(invalid_argument(
            "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @ :.",
        ));
    }
    if texts.into_iter().any(|text| text.contains('%')) {
        return Err(invalid_argument(format!(
            "Failed to {action} stream {stream_name} under account {account} because some tags contained illegal characters. The allowed characters are Unicode letters, white-spaces, '_',',','/','=','+','-','@',':'."
        )));
    }
    Ok(())
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
    fn shard_ids_are_read_as_kinesis_reads_them() {
        let cases: &[(&str, &str)] = &[
            ("shardId-0", "shardId-000000000000"),
            ("anything-0", "shardId-000000000000"),
            ("0", "shardId-000000000000"),
            ("shard-7", "shardId-000000000007"),
            ("2147483647", "shardId-002147483647"),
            ("a-00002147483647", "shardId-002147483647"),
            ("-00002147483647", "shardId-002147483647"),
            ("x-y-12", "shardId-000000000012"),
            ("shardId-000000000003", "shardId-000000000003"),
            ("2147483648", "2147483648"),
            ("shardId-002147483648", "shardId-002147483648"),
            ("ABKLFD8", "ABKLFD8"),
            ("2.14E4", "2.14E4"),
            ("shardId-", "shardId-"),
            ("99999999999999999999999", "99999999999999999999999"),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_shard_id(text).as_str(), *expected, "{text}");
        }
    }

    #[test]
    fn unknown_shards_are_worded_by_whether_they_parsed() {
        assert_eq!(
            shard_not_found_message("shardId-000000000005", "s", "000000000000"),
            "Shard shardId-000000000005 in stream s under account 000000000000 does not exist"
        );
        for raw in ["ABKLFD8", "shardId-002147483648", "2.14E4"] {
            assert_eq!(
                shard_not_found_message(raw, "s", "000000000000"),
                format!("Could not find shard {raw} in stream s under account 000000000000.")
            );
        }
    }

    #[test]
    fn tag_characters_follow_kinesis() {
        let check = |texts: &[&str]| {
            tag_characters(texts.iter().copied(), "add tags to", "s", "000000000000")
                .map_err(|error| (error.kind, error.message))
        };
        assert_eq!(
            check(&["team", "a b_c.d/e=f+g-h@i:j", "Ünïcödé", "日本"]),
            Ok(())
        );
        let (kind, message) = check(&["ok", "no*stars"]).expect_err("invalid");
        assert_eq!(kind, KinesisErrorKind::InvalidArgument);
        assert!(
            message.starts_with("Some tags contain invalid characters."),
            "{message}"
        );
        let (kind, message) = check(&["50%"]).expect_err("percent");
        assert_eq!(kind, KinesisErrorKind::InvalidArgument);
        assert!(
            message.starts_with("Failed to add tags to stream s under account 000000000000 because some tags contained illegal characters."),
            "{message}"
        );
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
