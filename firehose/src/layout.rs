//! Object keys: prefix expressions (`!{timestamp:…}`, `!{partitionKeyFromQuery:…}`,
//! `!{firehose:…}`) and the object-name suffix `NAME-VERSION-YYYY-MM-DD-HH-MM-SS-UUID[.gz]`.

use crate::config::Compression;
use crate::error::FirehoseError;
use kcl_core::kinesis::EpochMillis;
use std::collections::BTreeMap;

/// The time prefix used when no prefix is configured, and appended to a prefix without
/// expressions (`yyyy/MM/dd/HH/`).
pub const DEFAULT_TIME_PREFIX: &str = "!{timestamp:yyyy/MM/dd/HH}/";

/// The error prefix used when none is configured.
pub const DEFAULT_ERROR_PREFIX: &str = "!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/";

/// The longest S3 object key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// A parsed prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Timestamp(Vec<TimeToken>),
    PartitionKey(String),
    RandomString,
    ErrorOutputType,
}

/// One element of a Java `DateTimeFormatter` pattern (the subset Firehose prefixes use).
#[derive(Debug, Clone, PartialEq, Eq)]
enum TimeToken {
    Literal(String),
    /// A field and its width (`yyyy` -> (Year, 4)).
    Field(TimeField, usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeField {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
}

/// What a prefix is rendered with.
#[derive(Debug, Clone, Copy)]
pub struct PrefixContext<'a> {
    /// The approximate arrival time of the oldest record of the object.
    pub timestamp: EpochMillis,
    /// Partition key values by name (dynamic partitioning).
    pub partition_keys: &'a BTreeMap<String, String>,
    /// `!{firehose:error-output-type}` (`processing-failed`, ...), for error prefixes.
    pub error_output_type: Option<&'a str>,
    /// 11 random characters for `!{firehose:random-string}`.
    pub random_string: &'a str,
}

impl PrefixTemplate {
    /// Parses the prefix in `field` (for error messages). `None` or empty: the default time
    /// prefix (for `ErrorOutputPrefix`: `processing-failed/` style default). A prefix with no
    /// expression gets the default time prefix appended, as Firehose does.
    pub fn parse(field: &str, prefix: Option<&str>) -> Result<Self, FirehoseError> {
        let is_error = field == "ErrorOutputPrefix";
        let text = match prefix.filter(|text| !text.is_empty()) {
            Some(text) => text,
            None if is_error => DEFAULT_ERROR_PREFIX,
            None => DEFAULT_TIME_PREFIX,
        };
        if text.len() > MAX_KEY_BYTES {
            return Err(FirehoseError::invalid(field, "must be at most 1024 bytes"));
        }
        let mut parts = parse_parts(field, text)?;
        if parts.iter().all(|part| matches!(part, Part::Literal(_))) {
            parts.extend(parse_parts(field, DEFAULT_TIME_PREFIX)?);
        }
        for part in &parts {
            match part {
                Part::ErrorOutputType if !is_error => {
                    return Err(FirehoseError::invalid(
                        field,
                        "!{firehose:error-output-type} may only be used in ErrorOutputPrefix",
                    ));
                }
                Part::PartitionKey(_) if is_error => {
                    return Err(FirehoseError::invalid(
                        field,
                        "!{partitionKeyFromQuery:…} may not be used in ErrorOutputPrefix",
                    ));
                }
                _ => {}
            }
        }
        let template = PrefixTemplate { parts };
        template.check_sample(field)?;
        Ok(template)
    }

    /// Renders the prefix with sample values and checks the key it starts is valid (no
    /// leading '/', no empty, `.` or `..` segments).
    fn check_sample(&self, field: &str) -> Result<(), FirehoseError> {
        let partition_keys: BTreeMap<String, String> = self
            .partition_keys()
            .into_iter()
            .map(|name| (name.to_owned(), "v".to_owned()))
            .collect();
        let sample = self.render(&PrefixContext {
            timestamp: EpochMillis(0),
            partition_keys: &partition_keys,
            error_output_type: Some("processing-failed"),
            random_string: "abcdefghijk",
        });
        validate_key(&format!("{sample}object")).map_err(|_| {
            FirehoseError::invalid(
                field,
                "may not start with '/' or contain empty, '.' or '..' path segments",
            )
        })
    }

    /// The partition key names the prefix uses, in order.
    pub fn partition_keys(&self) -> Vec<&str> {
        self.parts
            .iter()
            .filter_map(|part| match part {
                Part::PartitionKey(name) => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The prefix for one object.
    pub fn render(&self, context: &PrefixContext<'_>) -> String {
        let time = UtcTime::from_millis(context.timestamp);
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Timestamp(tokens) => time.format(tokens, &mut out),
                Part::PartitionKey(name) => {
                    out.push_str(context.partition_keys.get(name).map_or("", String::as_str));
                }
                Part::RandomString => out.push_str(context.random_string),
                Part::ErrorOutputType => {
                    out.push_str(context.error_output_type.unwrap_or("processing-failed"));
                }
            }
        }
        out
    }
}

fn parse_parts(field: &str, text: &str) -> Result<Vec<Part>, FirehoseError> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("!{") {
        if start > 0 {
            parts.push(Part::Literal(rest[..start].to_owned()));
        }
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| FirehoseError::invalid(field, "has an unclosed !{ expression"))?;
        parts.push(parse_expression(field, &after[..end])?);
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest.to_owned()));
    }
    for part in &parts {
        if let Part::Literal(text) = part
            && (text.contains('\\') || text.chars().any(char::is_control))
        {
            return Err(FirehoseError::invalid(
                field,
                "may not contain '\\' or control characters",
            ));
        }
    }
    Ok(parts)
}

fn parse_expression(field: &str, expression: &str) -> Result<Part, FirehoseError> {
    let (namespace, value) = expression.split_once(':').ok_or_else(|| {
        FirehoseError::invalid(
            field,
            format!("expression !{{{expression}}} must be !{{namespace:value}}"),
        )
    })?;
    match (namespace, value) {
        ("timestamp", pattern) => Ok(Part::Timestamp(parse_time_pattern(field, pattern)?)),
        ("partitionKeyFromQuery", name) if !name.is_empty() => {
            Ok(Part::PartitionKey(name.to_owned()))
        }
        ("firehose", "random-string") => Ok(Part::RandomString),
        ("firehose", "error-output-type") => Ok(Part::ErrorOutputType),
        _ => Err(FirehoseError::invalid(
            field,
            format!(
                "unsupported expression !{{{expression}}} (supported: timestamp, partitionKeyFromQuery, firehose:random-string, firehose:error-output-type)"
            ),
        )),
    }
}

/// Parses the Java `DateTimeFormatter` subset: `y M d H m s` (repeated for width), quoted
/// literals (`'…'`, `''` is a quote) and any other non-letter character as itself.
fn parse_time_pattern(field: &str, pattern: &str) -> Result<Vec<TimeToken>, FirehoseError> {
    if pattern.is_empty() {
        return Err(FirehoseError::invalid(
            field,
            "!{timestamp:} needs a pattern",
        ));
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        if c == '\'' {
            let mut literal = String::new();
            index += 1;
            loop {
                match chars.get(index) {
                    None => {
                        return Err(FirehoseError::invalid(
                            field,
                            format!("timestamp pattern {pattern:?} has an unclosed quote"),
                        ));
                    }
                    Some('\'') if chars.get(index + 1) == Some(&'\'') => {
                        literal.push('\'');
                        index += 2;
                    }
                    Some('\'') => {
                        index += 1;
                        break;
                    }
                    Some(other) => {
                        literal.push(*other);
                        index += 1;
                    }
                }
            }
            if literal.is_empty() {
                literal.push('\'');
            }
            tokens.push(TimeToken::Literal(literal));
            continue;
        }
        if c.is_ascii_alphabetic() {
            let field_kind = match c {
                'y' | 'u' => TimeField::Year,
                'M' => TimeField::Month,
                'd' => TimeField::Day,
                'H' => TimeField::Hour,
                'm' => TimeField::Minute,
                's' => TimeField::Second,
                _ => {
                    return Err(FirehoseError::invalid(
                        field,
                        format!(
                            "timestamp pattern letter {c:?} is not supported (supported: y M d H m s)"
                        ),
                    ));
                }
            };
            let run = chars[index..]
                .iter()
                .take_while(|&&other| other == c)
                .count();
            tokens.push(TimeToken::Field(field_kind, run));
            index += run;
            continue;
        }
        tokens.push(TimeToken::Literal(c.to_string()));
        index += 1;
    }
    Ok(tokens)
}

/// A UTC calendar time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    /// Year (proleptic Gregorian).
    pub year: i64,
    /// Month 1..=12.
    pub month: u32,
    /// Day 1..=31.
    pub day: u32,
    /// Hour 0..=23.
    pub hour: u32,
    /// Minute 0..=59.
    pub minute: u32,
    /// Second 0..=59.
    pub second: u32,
}

impl UtcTime {
    /// The UTC calendar time of `at` (milliseconds since the epoch).
    pub fn from_millis(at: EpochMillis) -> Self {
        let seconds = at.0.div_euclid(1000);
        let days = seconds.div_euclid(86_400);
        let of_day = seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        // of_day < 86_400, so the casts below cannot truncate.
        UtcTime {
            year,
            month,
            day,
            hour: u32::try_from(of_day / 3600).unwrap_or(0),
            minute: u32::try_from(of_day % 3600 / 60).unwrap_or(0),
            second: u32::try_from(of_day % 60).unwrap_or(0),
        }
    }

    fn format(&self, tokens: &[TimeToken], out: &mut String) {
        use std::fmt::Write;
        for token in tokens {
            match token {
                TimeToken::Literal(text) => out.push_str(text),
                TimeToken::Field(TimeField::Year, 2) => {
                    let _ = write!(out, "{:02}", self.year.rem_euclid(100));
                }
                TimeToken::Field(kind, width) => {
                    let value = match kind {
                        TimeField::Year => self.year,
                        TimeField::Month => i64::from(self.month),
                        TimeField::Day => i64::from(self.day),
                        TimeField::Hour => i64::from(self.hour),
                        TimeField::Minute => i64::from(self.minute),
                        TimeField::Second => i64::from(self.second),
                    };
                    let _ = write!(out, "{value:0width$}");
                }
            }
        }
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// The object name after the prefix: `NAME-VERSION-YYYY-MM-DD-HH-MM-SS-UUID` plus the
/// compression's extension. `at` is the object's write time.
pub fn object_name(
    stream_name: &str,
    version_id: u64,
    at: EpochMillis,
    id: uuid::Uuid,
    compression: Compression,
) -> String {
    let time = UtcTime::from_millis(at);
    format!(
        "{stream_name}-{version_id}-{:04}-{:02}-{:02}-{:02}-{:02}-{:02}-{}{}",
        time.year,
        time.month,
        time.day,
        time.hour,
        time.minute,
        time.second,
        id.hyphenated(),
        compression.extension()
    )
}

/// 11 random lowercase letters and digits for `!{firehose:random-string}`.
pub fn random_string() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(11)
        .map(|byte| char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]))
        .collect()
}

/// The longest partition value: one file or directory name (255 bytes on Linux filesystems).
pub const MAX_PARTITION_VALUE_BYTES: usize = 255;
/// The most bytes all partition values of one record may take together, so that an object key
/// with them stays within its 1024 bytes.
pub const MAX_PARTITION_VALUES_BYTES: usize = 512;

/// Checks that a partition key value can go into an object key: 1..=512 bytes, no '/', no
/// control characters, not `.` or `..`.
pub fn validate_partition_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("the value is empty".into());
    }
    // Each value is one directory name under the local sink: Linux allows 255 bytes.
    if value.len() > MAX_PARTITION_VALUE_BYTES {
        return Err(format!(
            "the value is longer than {MAX_PARTITION_VALUE_BYTES} bytes"
        ));
    }
    if value == "." || value == ".." || value.contains('/') || value.contains('\\') {
        return Err(format!(
            "the value {value:?} is a path element or contains '/'"
        ));
    }
    if value.chars().any(char::is_control) {
        return Err("the value contains control characters".into());
    }
    Ok(())
}

/// Checks an object key: 1..=1024 bytes, relative, no empty, `.` or `..` segment except an
/// empty last-but-not-only one is refused too, no '\\' or control characters. Keys that pass
/// map to a file strictly inside `DIR/BUCKET/` in [`LocalDirSink`](crate::sink::LocalDirSink).
pub fn validate_key(key: &str) -> Result<(), FirehoseError> {
    let fail = |rule: &str| FirehoseError::InvalidObjectName {
        name: key.to_owned(),
        rule: rule.to_owned(),
    };
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(fail("must be 1 to 1024 bytes"));
    }
    if key.contains('\\') || key.chars().any(char::is_control) {
        return Err(fail("may not contain '\\' or control characters"));
    }
    if key
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err(fail("may not have empty, '.' or '..' path segments"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    // 2024-02-29T13:05:09.123Z
    const LEAP_DAY: EpochMillis = EpochMillis(1_709_211_909_123);

    #[test]
    fn utc_time_matches_known_dates() {
        let cases = [
            (0, (1970, 1, 1, 0, 0, 0)),
            (LEAP_DAY.0, (2024, 2, 29, 13, 5, 9)),
            (951_782_400_000, (2000, 2, 29, 0, 0, 0)),
            (1_735_689_599_999, (2024, 12, 31, 23, 59, 59)),
            (-1, (1969, 12, 31, 23, 59, 59)),
        ];
        for (millis, (year, month, day, hour, minute, second)) in cases {
            let time = UtcTime::from_millis(EpochMillis(millis));
            assert_eq!(
                time,
                UtcTime {
                    year,
                    month,
                    day,
                    hour,
                    minute,
                    second
                },
                "{millis}"
            );
        }
    }

    #[test]
    fn prefixes_render_as_documented() {
        /// (field, prefix, partition key values, expected rendering)
        type Case = (
            &'static str,
            Option<&'static str>,
            &'static [(&'static str, &'static str)],
            &'static str,
        );
        let cases: &[Case] = &[
            ("Prefix", None, &[], "2024/02/29/13/"),
            ("Prefix", Some(""), &[], "2024/02/29/13/"),
            ("Prefix", Some("logs/"), &[], "logs/2024/02/29/13/"),
            (
                "Prefix",
                Some("y=!{timestamp:yyyy}/m=!{timestamp:MM}/"),
                &[],
                "y=2024/m=02/",
            ),
            (
                "Prefix",
                Some("dt=!{timestamp:yyyy'-'MM'-'dd}/h=!{timestamp:HH}/"),
                &[],
                "dt=2024-02-29/h=13/",
            ),
            (
                "Prefix",
                Some("!{timestamp:yy-M-d H:m:s}/"),
                &[],
                "24-2-29 13:5:9/",
            ),
            (
                "Prefix",
                Some("!{timestamp:'it''s' yyyy}/"),
                &[],
                "it's 2024/",
            ),
            (
                "Prefix",
                Some("c=!{partitionKeyFromQuery:customer}/!{timestamp:yyyy}/"),
                &[("customer", "acme")],
                "c=acme/2024/",
            ),
            (
                "ErrorOutputPrefix",
                None,
                &[],
                "processing-failed/2024/02/29/13/",
            ),
            (
                "ErrorOutputPrefix",
                Some("err/!{firehose:error-output-type}/"),
                &[],
                "err/processing-failed/",
            ),
            (
                "ErrorOutputPrefix",
                Some("errors/"),
                &[],
                "errors/2024/02/29/13/",
            ),
        ];
        for (field, prefix, partition, expected) in cases {
            let template = PrefixTemplate::parse(field, *prefix).unwrap();
            let partition_keys = keys(partition);
            let rendered = template.render(&PrefixContext {
                timestamp: LEAP_DAY,
                partition_keys: &partition_keys,
                error_output_type: Some("processing-failed"),
                random_string: "abcdefghijk",
            });
            assert_eq!(&rendered, expected, "{field} {prefix:?}");
        }
    }

    #[test]
    fn bad_prefixes_name_the_field_and_rule() {
        let cases: &[(&str, &str, &str)] = &[
            ("Prefix", "a/!{timestamp:yyyy", "unclosed"),
            ("Prefix", "!{timestamp:QQ}/", "letter 'Q'"),
            ("Prefix", "!{timestamp:'x}/", "unclosed quote"),
            ("Prefix", "!{nope:x}/", "unsupported expression"),
            (
                "Prefix",
                "!{firehose:error-output-type}/",
                "only be used in ErrorOutputPrefix",
            ),
            (
                "ErrorOutputPrefix",
                "!{partitionKeyFromQuery:a}/",
                "may not be used",
            ),
            ("Prefix", "a\\b/", "control"),
        ];
        for (field, prefix, rule) in cases {
            let message = PrefixTemplate::parse(field, Some(prefix))
                .unwrap_err()
                .to_string();
            assert!(
                message.contains(field) && message.contains(rule),
                "{prefix}: {message}"
            );
        }
    }

    #[test]
    fn object_names_follow_the_firehose_format() {
        let id = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(
            object_name("orders", 1, LEAP_DAY, id, Compression::Uncompressed),
            "orders-1-2024-02-29-13-05-09-01234567-89ab-cdef-0123-456789abcdef"
        );
        assert_eq!(
            object_name("orders", 3, LEAP_DAY, id, Compression::Gzip),
            "orders-3-2024-02-29-13-05-09-01234567-89ab-cdef-0123-456789abcdef.gz"
        );
    }

    #[test]
    fn keys_are_checked() {
        for good in ["a", "a/b", "2024/01/01/00/x-1", "a b/c"] {
            assert!(validate_key(good).is_ok(), "{good}");
        }
        for bad in ["", "/a", "a//b", "a/", "../a", "a/./b", "a\\b", "a\nb"] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
        assert!(validate_partition_value("acme").is_ok());
        for bad in ["", ".", "..", "a/b", "a\u{7}"] {
            assert!(validate_partition_value(bad).is_err(), "{bad:?}");
        }
    }

    fn prefix_strategy() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[a-z0-9=_-]{1,8}/".prop_map(|s| s),
            Just("!{timestamp:yyyy/MM/dd}/".to_owned()),
            Just("!{timestamp:HH'h'mm}/".to_owned()),
            Just("k=!{partitionKeyFromQuery:k}/".to_owned()),
            Just("!{firehose:random-string}/".to_owned()),
        ];
        proptest::collection::vec(piece, 0..5).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        /// Every key built from a valid prefix, valid partition values and any time is a valid
        /// object key, and no two objects get the same key.
        #[test]
        fn keys_are_valid_and_never_collide(
            prefix in prefix_strategy(),
            millis in 0i64..4_102_444_800_000,
            value in "[a-zA-Z0-9 ._=-]{1,20}",
            version in 1u64..1000,
        ) {
            prop_assume!(validate_partition_value(&value).is_ok());
            let template = PrefixTemplate::parse("Prefix", Some(&prefix)).unwrap();
            let partition_keys = keys(&[("k", value.as_str())]);
            let mut seen = std::collections::HashSet::new();
            for _ in 0..20 {
                let random = random_string();
                let rendered = template.render(&PrefixContext {
                    timestamp: EpochMillis(millis),
                    partition_keys: &partition_keys,
                    error_output_type: None,
                    random_string: &random,
                });
                let key = format!(
                    "{rendered}{}",
                    object_name("s", version, EpochMillis(millis), uuid::Uuid::new_v4(), Compression::Gzip)
                );
                prop_assert!(validate_key(&key).is_ok(), "{key}");
                prop_assert!(seen.insert(key.clone()), "collision on {key}");
            }
        }
    }
}
