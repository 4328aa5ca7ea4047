//! The validation table: the input shape of every operation, each member's type and
//! constraints, in the order AWS reports their violations.
//!
//! Types, bounds, patterns and enum values are botocore's model (`kinesis/2013-12-02`). The
//! member order is the one real Kinesis reports (as kinesalite's tests record it) for the
//! operations kinesalite covers, and the model's order for the others. Data only: the
//! `request_check` module applies it.

/// The type of a member, as the JSON/CBOR front end of AWS converts it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Type {
    /// A string.
    String,
    /// A 32-bit integer (`integer` in the model).
    Integer,
    /// `true` / `false`.
    Boolean,
    /// Bytes: base64 text in JSON, a byte string in CBOR.
    Blob,
    /// Epoch seconds (JSON) or tag-1 milliseconds (CBOR).
    Timestamp,
    /// A list of the given member.
    List(&'static Member),
    /// A map from string keys to values.
    Map {
        /// The key's constraints.
        key: &'static Member,
        /// The value's constraints.
        value: &'static Member,
    },
    /// A structure with these members.
    Structure(&'static [Member]),
}

/// One member of an input shape.
#[derive(Debug)]
pub(crate) struct Member {
    /// The wire name (`StreamName`); violations name it with a lower-case first letter.
    pub(crate) name: &'static str,
    /// Its type.
    pub(crate) kind: Type,
    /// Whether the model lists it as required ("Member must not be null").
    pub(crate) required: bool,
    /// Its constraints, in the order AWS reports them.
    pub(crate) rules: &'static [Rule],
}

/// One constraint of a member.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rule {
    /// The whole value matches this regular expression (the model's text).
    Pattern(&'static str),
    /// At least this many characters / bytes / entries.
    MinLength(usize),
    /// At most this many characters / bytes / entries.
    MaxLength(usize),
    /// A number of at least this value.
    Min(i64),
    /// A number of at most this value.
    Max(i64),
    /// One of these values (listed in AWS's order).
    OneOf(&'static [&'static str]),
}

/// The model's pattern of stream, consumer and shard names and of shard ids.
pub(crate) const NAME_PATTERN: &str = "[a-zA-Z0-9_.-]+";
/// The pattern of hash keys.
pub(crate) const HASH_KEY_PATTERN: &str = "0|([1-9]\\d{0,38})";
/// The pattern of sequence numbers.
pub(crate) const SEQUENCE_NUMBER_PATTERN: &str = "0|([1-9]\\d{0,128})";
/// The pattern of stream ARNs.
pub(crate) const STREAM_ARN_PATTERN: &str = "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+";
/// The pattern of consumer ARNs.
pub(crate) const CONSUMER_ARN_PATTERN: &str = "^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+";
/// The pattern of resource ARNs (streams and consumers).
pub(crate) const RESOURCE_ARN_PATTERN: &str = "arn:aws.*:kinesis:.*:\\d{12}:.*stream/\\S+";
/// The pattern of stream ids.
pub(crate) const STREAM_ID_PATTERN: &str = "[a-z0-9]{20}-[a-z0-9]{3}";

/// Every pattern of the table (compiled once by `request_check`).
pub(crate) const PATTERNS: [&str; 7] = [
    NAME_PATTERN,
    HASH_KEY_PATTERN,
    SEQUENCE_NUMBER_PATTERN,
    STREAM_ARN_PATTERN,
    CONSUMER_ARN_PATTERN,
    RESOURCE_ARN_PATTERN,
    STREAM_ID_PATTERN,
];

/// `ShardIteratorType` values, in the order AWS lists them in its message.
pub(crate) const ITERATOR_TYPES: &[&str] = &[
    "AFTER_SEQUENCE_NUMBER",
    "LATEST",
    "AT_TIMESTAMP",
    "AT_SEQUENCE_NUMBER",
    "TRIM_HORIZON",
];

/// `MetricsName` values.
pub(crate) const METRICS: &[&str] = &[
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
    "ALL",
];

/// `ShardFilterType` values.
pub(crate) const SHARD_FILTER_TYPES: &[&str] = &[
    "AFTER_SHARD_ID",
    "AT_TRIM_HORIZON",
    "FROM_TRIM_HORIZON",
    "AT_LATEST",
    "AT_TIMESTAMP",
    "FROM_TIMESTAMP",
];

const fn member(name: &'static str, kind: Type, rules: &'static [Rule]) -> Member {
    Member {
        name,
        kind,
        required: false,
        rules,
    }
}

const fn required(name: &'static str, kind: Type, rules: &'static [Rule]) -> Member {
    Member {
        name,
        kind,
        required: true,
        rules,
    }
}

const NAME_RULES: &[Rule] = &[
    Rule::Pattern(NAME_PATTERN),
    Rule::MinLength(1),
    Rule::MaxLength(128),
];
const STREAM_ARN_RULES: &[Rule] = &[
    Rule::MinLength(1),
    Rule::MaxLength(2048),
    Rule::Pattern(STREAM_ARN_PATTERN),
];
const CONSUMER_ARN_RULES: &[Rule] = &[
    Rule::MinLength(1),
    Rule::MaxLength(2048),
    Rule::Pattern(CONSUMER_ARN_PATTERN),
];
const RESOURCE_ARN_RULES: &[Rule] = &[
    Rule::MinLength(1),
    Rule::MaxLength(2048),
    Rule::Pattern(RESOURCE_ARN_PATTERN),
];
const STREAM_ID_RULES: &[Rule] = &[
    Rule::MinLength(1),
    Rule::MaxLength(24),
    Rule::Pattern(STREAM_ID_PATTERN),
];
const TOKEN_RULES: &[Rule] = &[Rule::MinLength(1), Rule::MaxLength(1_048_576)];
const LIMIT_10000: &[Rule] = &[Rule::Min(1), Rule::Max(10_000)];
const DATA_RULES: &[Rule] = &[Rule::MinLength(0), Rule::MaxLength(10_485_760)];
const PARTITION_KEY_RULES: &[Rule] = &[Rule::MinLength(1), Rule::MaxLength(256)];
const HASH_KEY_RULES: &[Rule] = &[Rule::Pattern(HASH_KEY_PATTERN)];
const SEQUENCE_RULES: &[Rule] = &[Rule::Pattern(SEQUENCE_NUMBER_PATTERN)];

const STREAM_NAME: Member = member("StreamName", Type::String, NAME_RULES);
const STREAM_ARN: Member = member("StreamARN", Type::String, STREAM_ARN_RULES);
const STREAM_ID: Member = member("StreamId", Type::String, STREAM_ID_RULES);
const CONSUMER_NAME: Member = member("ConsumerName", Type::String, NAME_RULES);
const CONSUMER_ARN: Member = member("ConsumerARN", Type::String, CONSUMER_ARN_RULES);
const RESOURCE_ARN: Member = required("ResourceARN", Type::String, RESOURCE_ARN_RULES);
const NEXT_TOKEN: Member = member("NextToken", Type::String, TOKEN_RULES);
const CREATION_TIMESTAMP: Member = member("StreamCreationTimestamp", Type::Timestamp, &[]);

static TAG_KEY: Member = member(
    "TagKey",
    Type::String,
    &[Rule::MinLength(1), Rule::MaxLength(128)],
);
static TAG_VALUE: Member = member(
    "TagValue",
    Type::String,
    &[Rule::MinLength(0), Rule::MaxLength(256)],
);
const TAG_MAP: Type = Type::Map {
    key: &TAG_KEY,
    value: &TAG_VALUE,
};
const TAG_MAP_RULES: &[Rule] = &[Rule::MinLength(1), Rule::MaxLength(200)];
static TAG_KEY_LIST_MEMBER: Member = member(
    "member",
    Type::String,
    &[Rule::MinLength(1), Rule::MaxLength(128)],
);
const TAG_KEYS: Member = required(
    "TagKeys",
    Type::List(&TAG_KEY_LIST_MEMBER),
    &[Rule::MinLength(1), Rule::MaxLength(50)],
);

static STREAM_MODE_DETAILS: [Member; 1] = [required(
    "StreamMode",
    Type::String,
    &[Rule::OneOf(&["PROVISIONED", "ON_DEMAND"])],
)];
static METRIC_NAME: Member = member("member", Type::String, &[Rule::OneOf(METRICS)]);
const SHARD_LEVEL_METRICS: Member = required(
    "ShardLevelMetrics",
    Type::List(&METRIC_NAME),
    &[Rule::MinLength(1), Rule::MaxLength(7)],
);
static SHARD_FILTER: [Member; 3] = [
    required("Type", Type::String, &[Rule::OneOf(SHARD_FILTER_TYPES)]),
    member("ShardId", Type::String, NAME_RULES),
    member("Timestamp", Type::Timestamp, &[]),
];
static STARTING_POSITION: [Member; 3] = [
    required("Type", Type::String, &[Rule::OneOf(ITERATOR_TYPES)]),
    member("SequenceNumber", Type::String, SEQUENCE_RULES),
    member("Timestamp", Type::Timestamp, &[]),
];
static PUT_RECORDS_ENTRY: [Member; 3] = [
    required("PartitionKey", Type::String, PARTITION_KEY_RULES),
    required("Data", Type::Blob, DATA_RULES),
    member("ExplicitHashKey", Type::String, HASH_KEY_RULES),
];
static PUT_RECORDS_ENTRY_MEMBER: Member =
    member("member", Type::Structure(&PUT_RECORDS_ENTRY), &[]);
static BILLING_COMMITMENT: [Member; 1] = [required(
    "Status",
    Type::String,
    &[Rule::OneOf(&["ENABLED", "DISABLED"])],
)];
const ENCRYPTION_TYPE: Member = required(
    "EncryptionType",
    Type::String,
    &[Rule::OneOf(&["NONE", "KMS"])],
);
const KEY_ID: Member = required(
    "KeyId",
    Type::String,
    &[Rule::MinLength(1), Rule::MaxLength(2048)],
);
const WARM_THROUGHPUT: Member = member("WarmThroughputMiBps", Type::Integer, &[Rule::Min(0)]);
const MAX_RECORD_SIZE: Member = member(
    "MaxRecordSizeInKiB",
    Type::Integer,
    &[Rule::Min(1024), Rule::Max(10_240)],
);
const RETENTION: Member = required("RetentionPeriodHours", Type::Integer, &[]);

/// Every operation's input members; `None` for an operation the table does not know.
pub(crate) fn input(operation: &str) -> Option<&'static [Member]> {
    static ADD_TAGS: [Member; 4] = [
        required("Tags", TAG_MAP, TAG_MAP_RULES),
        STREAM_NAME,
        STREAM_ARN,
        STREAM_ID,
    ];
    static CREATE_STREAM: [Member; 6] = [
        member("ShardCount", Type::Integer, &[Rule::Min(1)]),
        required("StreamName", Type::String, NAME_RULES),
        member(
            "StreamModeDetails",
            Type::Structure(&STREAM_MODE_DETAILS),
            &[],
        ),
        member("Tags", TAG_MAP, TAG_MAP_RULES),
        WARM_THROUGHPUT,
        MAX_RECORD_SIZE,
    ];
    static RETENTION_PERIOD: [Member; 4] = [RETENTION, STREAM_NAME, STREAM_ARN, STREAM_ID];
    static RESOURCE_ONLY: [Member; 2] = [RESOURCE_ARN, STREAM_ID];
    static DELETE_STREAM: [Member; 4] = [
        STREAM_NAME,
        member("EnforceConsumerDeletion", Type::Boolean, &[]),
        STREAM_ARN,
        STREAM_ID,
    ];
    static CONSUMER_REF: [Member; 4] = [STREAM_ARN, CONSUMER_NAME, CONSUMER_ARN, STREAM_ID];
    static NONE: [Member; 0] = [];
    static DESCRIBE_STREAM: [Member; 5] = [
        member("ExclusiveStartShardId", Type::String, NAME_RULES),
        member("Limit", Type::Integer, LIMIT_10000),
        STREAM_NAME,
        STREAM_ARN,
        STREAM_ID,
    ];
    static STREAM_ONLY: [Member; 3] = [STREAM_NAME, STREAM_ARN, STREAM_ID];
    static ENHANCED_MONITORING: [Member; 4] =
        [STREAM_NAME, SHARD_LEVEL_METRICS, STREAM_ARN, STREAM_ID];
    static GET_RECORDS: [Member; 4] = [
        member("Limit", Type::Integer, LIMIT_10000),
        required(
            "ShardIterator",
            Type::String,
            &[Rule::MinLength(1), Rule::MaxLength(512)],
        ),
        STREAM_ARN,
        STREAM_ID,
    ];
    static GET_SHARD_ITERATOR: [Member; 7] = [
        required("ShardId", Type::String, NAME_RULES),
        required(
            "ShardIteratorType",
            Type::String,
            &[Rule::OneOf(ITERATOR_TYPES)],
        ),
        member("StartingSequenceNumber", Type::String, SEQUENCE_RULES),
        STREAM_NAME,
        member("Timestamp", Type::Timestamp, &[]),
        STREAM_ARN,
        STREAM_ID,
    ];
    static LIST_SHARDS: [Member; 8] = [
        member("ExclusiveStartShardId", Type::String, NAME_RULES),
        member("MaxResults", Type::Integer, LIMIT_10000),
        NEXT_TOKEN,
        member("ShardFilter", Type::Structure(&SHARD_FILTER), &[]),
        CREATION_TIMESTAMP,
        STREAM_NAME,
        STREAM_ARN,
        STREAM_ID,
    ];
    static LIST_STREAM_CONSUMERS: [Member; 5] = [
        required("StreamARN", Type::String, STREAM_ARN_RULES),
        NEXT_TOKEN,
        member("MaxResults", Type::Integer, LIMIT_10000),
        CREATION_TIMESTAMP,
        STREAM_ID,
    ];
    static LIST_STREAMS: [Member; 3] = [
        member("ExclusiveStartStreamName", Type::String, NAME_RULES),
        member("Limit", Type::Integer, LIMIT_10000),
        NEXT_TOKEN,
    ];
    static LIST_TAGS_FOR_STREAM: [Member; 5] = [
        member(
            "ExclusiveStartTagKey",
            Type::String,
            &[Rule::MinLength(1), Rule::MaxLength(128)],
        ),
        member("Limit", Type::Integer, &[Rule::Min(1), Rule::Max(50)]),
        STREAM_NAME,
        STREAM_ARN,
        STREAM_ID,
    ];
    static MERGE_SHARDS: [Member; 5] = [
        required("ShardToMerge", Type::String, NAME_RULES),
        required("AdjacentShardToMerge", Type::String, NAME_RULES),
        STREAM_NAME,
        STREAM_ARN,
        STREAM_ID,
    ];
    static PUT_RECORD: [Member; 7] = [
        member("SequenceNumberForOrdering", Type::String, SEQUENCE_RULES),
        required("PartitionKey", Type::String, PARTITION_KEY_RULES),
        member("ExplicitHashKey", Type::String, HASH_KEY_RULES),
        required("Data", Type::Blob, DATA_RULES),
        STREAM_NAME,
        STREAM_ARN,
        STREAM_ID,
    ];
    static PUT_RECORDS: [Member; 4] = [
        required(
            "Records",
            Type::List(&PUT_RECORDS_ENTRY_MEMBER),
            &[Rule::MinLength(1), Rule::MaxLength(500)],
        ),
        STREAM_NAME,
        STREAM_ARN,
        STREAM_ID,
    ];
    static PUT_RESOURCE_POLICY: [Member; 3] = [
        RESOURCE_ARN,
        STREAM_ID,
        required("Policy", Type::String, &[]),
    ];
    static REGISTER_CONSUMER: [Member; 4] = [
        required("StreamARN", Type::String, STREAM_ARN_RULES),
        required("ConsumerName", Type::String, NAME_RULES),
        STREAM_ID,
        member("Tags", TAG_MAP, TAG_MAP_RULES),
    ];
    static REMOVE_TAGS: [Member; 4] = [STREAM_NAME, TAG_KEYS, STREAM_ARN, STREAM_ID];
    static SPLIT_SHARD: [Member; 5] = [
        required("NewStartingHashKey", Type::String, HASH_KEY_RULES),
        STREAM_NAME,
        required("ShardToSplit", Type::String, NAME_RULES),
        STREAM_ARN,
        STREAM_ID,
    ];
    static STREAM_ENCRYPTION: [Member; 5] =
        [STREAM_NAME, ENCRYPTION_TYPE, KEY_ID, STREAM_ARN, STREAM_ID];
    static SUBSCRIBE_TO_SHARD: [Member; 4] = [
        required("ConsumerARN", Type::String, CONSUMER_ARN_RULES),
        STREAM_ID,
        required("ShardId", Type::String, NAME_RULES),
        required("StartingPosition", Type::Structure(&STARTING_POSITION), &[]),
    ];
    static TAG_RESOURCE: [Member; 3] = [
        required("Tags", TAG_MAP, TAG_MAP_RULES),
        RESOURCE_ARN,
        STREAM_ID,
    ];
    static UNTAG_RESOURCE: [Member; 3] = [TAG_KEYS, RESOURCE_ARN, STREAM_ID];
    static UPDATE_ACCOUNT_SETTINGS: [Member; 1] = [required(
        "MinimumThroughputBillingCommitment",
        Type::Structure(&BILLING_COMMITMENT),
        &[],
    )];
    static UPDATE_MAX_RECORD_SIZE: [Member; 3] = [
        STREAM_ARN,
        STREAM_ID,
        required(
            "MaxRecordSizeInKiB",
            Type::Integer,
            &[Rule::Min(1024), Rule::Max(10_240)],
        ),
    ];
    static UPDATE_SHARD_COUNT: [Member; 5] = [
        required(
            "ScalingType",
            Type::String,
            &[Rule::OneOf(&["UNIFORM_SCALING"])],
        ),
        STREAM_NAME,
        required("TargetShardCount", Type::Integer, &[Rule::Min(1)]),
        STREAM_ARN,
        STREAM_ID,
    ];
    static UPDATE_STREAM_MODE: [Member; 4] = [
        required("StreamARN", Type::String, STREAM_ARN_RULES),
        STREAM_ID,
        required(
            "StreamModeDetails",
            Type::Structure(&STREAM_MODE_DETAILS),
            &[],
        ),
        WARM_THROUGHPUT,
    ];
    static UPDATE_WARM_THROUGHPUT: [Member; 4] = [
        STREAM_ARN,
        STREAM_NAME,
        STREAM_ID,
        required("WarmThroughputMiBps", Type::Integer, &[Rule::Min(0)]),
    ];
    Some(match operation {
        "AddTagsToStream" => &ADD_TAGS,
        "CreateStream" => &CREATE_STREAM,
        "DecreaseStreamRetentionPeriod" | "IncreaseStreamRetentionPeriod" => &RETENTION_PERIOD,
        "DeleteResourcePolicy" | "GetResourcePolicy" | "ListTagsForResource" => &RESOURCE_ONLY,
        "DeleteStream" => &DELETE_STREAM,
        "DeregisterStreamConsumer" | "DescribeStreamConsumer" => &CONSUMER_REF,
        "DescribeAccountSettings" | "DescribeLimits" => &NONE,
        "DescribeStream" => &DESCRIBE_STREAM,
        "DescribeStreamSummary" => &STREAM_ONLY,
        "DisableEnhancedMonitoring" | "EnableEnhancedMonitoring" => &ENHANCED_MONITORING,
        "GetRecords" => &GET_RECORDS,
        "GetShardIterator" => &GET_SHARD_ITERATOR,
        "ListShards" => &LIST_SHARDS,
        "ListStreamConsumers" => &LIST_STREAM_CONSUMERS,
        "ListStreams" => &LIST_STREAMS,
        "ListTagsForStream" => &LIST_TAGS_FOR_STREAM,
        "MergeShards" => &MERGE_SHARDS,
        "PutRecord" => &PUT_RECORD,
        "PutRecords" => &PUT_RECORDS,
        "PutResourcePolicy" => &PUT_RESOURCE_POLICY,
        "RegisterStreamConsumer" => &REGISTER_CONSUMER,
        "RemoveTagsFromStream" => &REMOVE_TAGS,
        "SplitShard" => &SPLIT_SHARD,
        "StartStreamEncryption" | "StopStreamEncryption" => &STREAM_ENCRYPTION,
        "SubscribeToShard" => &SUBSCRIBE_TO_SHARD,
        "TagResource" => &TAG_RESOURCE,
        "UntagResource" => &UNTAG_RESOURCE,
        "UpdateAccountSettings" => &UPDATE_ACCOUNT_SETTINGS,
        "UpdateMaxRecordSize" => &UPDATE_MAX_RECORD_SIZE,
        "UpdateShardCount" => &UPDATE_SHARD_COUNT,
        "UpdateStreamMode" => &UPDATE_STREAM_MODE,
        "UpdateStreamWarmThroughput" => &UPDATE_WARM_THROUGHPUT,
        _ => return None,
    })
}
