//! KPL aggregation: many user records packed into one Kinesis record.
//!
//! Format: the magic bytes `F3 89 9A C2`, a protobuf `AggregatedRecord`, then the 16-byte MD5
//! of the protobuf bytes. A record without the magic, too short, whose MD5 does not match or
//! whose protobuf does not decode is delivered as a plain record (what the Java KCL does).
//!
//! After de-aggregation, user records whose hash key lies outside the shard's hash-key range are
//! dropped, as the Java KCL does: after a reshard, a parent's aggregate can hold user records
//! that belong to the other child.

use crate::record::KinesisClientRecord;
use bytes::Bytes;
use kcl_core::kinesis::{HashKey, HashKeyRange, Record, partition_key_hash};
use md5::{Digest, Md5};
use prost::Message;
use std::collections::HashMap;
use std::sync::Arc;

/// The four bytes every KPL aggregated record starts with.
pub const KPL_MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
/// Length of the MD5 trailer of an aggregate.
pub const MD5_LEN: usize = 16;

/// The protobuf `AggregatedRecord`.
#[derive(Clone, PartialEq, prost::Message)]
struct AggregatedRecord {
    #[prost(string, repeated, tag = "1")]
    partition_key_table: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    explicit_hash_key_table: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    records: Vec<AggregatedUserRecord>,
}

/// The protobuf `Record` inside an aggregate.
#[derive(Clone, PartialEq, prost::Message)]
struct AggregatedUserRecord {
    #[prost(uint64, required, tag = "1")]
    partition_key_index: u64,
    #[prost(uint64, optional, tag = "2")]
    explicit_hash_key_index: Option<u64>,
    #[prost(bytes = "bytes", required, tag = "3")]
    data: Bytes,
    #[prost(message, repeated, tag = "4")]
    tags: Vec<AggregatedTag>,
}

/// The protobuf `Tag` (carried by the KPL, ignored by consumers).
#[derive(Clone, PartialEq, prost::Message)]
struct AggregatedTag {
    #[prost(string, required, tag = "1")]
    key: String,
    #[prost(string, optional, tag = "2")]
    value: Option<String>,
}

/// One user record to put into an aggregate with [`aggregate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user record's partition key.
    pub partition_key: String,
    /// Its explicit hash key, if any.
    pub explicit_hash_key: Option<HashKey>,
    /// Its payload.
    pub data: Bytes,
}

impl UserRecord {
    /// A user record with `partition_key` and `data`, routed by the partition key's hash.
    pub fn new(partition_key: impl Into<String>, data: impl Into<Bytes>) -> Self {
        UserRecord {
            partition_key: partition_key.into(),
            explicit_hash_key: None,
            data: data.into(),
        }
    }

    /// This record routed by `hash_key` instead of its partition key's hash.
    pub fn with_explicit_hash_key(mut self, hash_key: HashKey) -> Self {
        self.explicit_hash_key = Some(hash_key);
        self
    }

    /// The hash key Kinesis routes the record by: the explicit one, else the MD5 of the
    /// partition key.
    pub fn hash_key(&self) -> HashKey {
        self.explicit_hash_key
            .unwrap_or_else(|| partition_key_hash(&self.partition_key))
    }

    /// What the record counts against Kinesis's size limits: payload + partition key bytes.
    pub fn request_size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// Packs user records into one KPL aggregated payload (magic + protobuf + MD5).
///
/// Partition keys and explicit hash keys are de-duplicated into the aggregate's tables. Put the
/// result with the first user record's partition key (as the KPL does).
pub fn aggregate(records: &[UserRecord]) -> Bytes {
    let mut message = AggregatedRecord {
        partition_key_table: Vec::new(),
        explicit_hash_key_table: Vec::new(),
        records: Vec::with_capacity(records.len()),
    };
    let mut partition_key_indexes: HashMap<&str, u64> = HashMap::new();
    let mut hash_key_indexes: HashMap<HashKey, u64> = HashMap::new();
    for record in records {
        let partition_key_index = *partition_key_indexes
            .entry(record.partition_key.as_str())
            .or_insert_with(|| {
                message
                    .partition_key_table
                    .push(record.partition_key.clone());
                (message.partition_key_table.len() - 1) as u64
            });
        let explicit_hash_key_index = record.explicit_hash_key.map(|key| {
            *hash_key_indexes.entry(key).or_insert_with(|| {
                message.explicit_hash_key_table.push(key.to_string());
                (message.explicit_hash_key_table.len() - 1) as u64
            })
        });
        message.records.push(AggregatedUserRecord {
            partition_key_index,
            explicit_hash_key_index,
            data: record.data.clone(),
            tags: Vec::new(),
        });
    }
    let body = message.encode_to_vec();
    let digest = Md5::digest(&body);
    let mut out = Vec::with_capacity(KPL_MAGIC.len() + body.len() + MD5_LEN);
    out.extend_from_slice(&KPL_MAGIC);
    out.extend_from_slice(&body);
    out.extend_from_slice(&digest);
    Bytes::from(out)
}

/// Whether `data` is a well-formed KPL aggregate (magic present and MD5 matching).
pub fn is_aggregated(data: &[u8]) -> bool {
    aggregated_body(data).is_some()
}

/// The protobuf bytes of an aggregate whose magic and MD5 check out.
fn aggregated_body(data: &[u8]) -> Option<&[u8]> {
    let rest = data.strip_prefix(&KPL_MAGIC)?;
    if rest.len() < MD5_LEN {
        return None;
    }
    let (body, checksum) = rest.split_at(rest.len() - MD5_LEN);
    let digest = Md5::digest(body);
    (digest.as_slice() == checksum).then_some(body)
}

/// De-aggregates one Kinesis record into the user records it carries.
///
/// A record that is not a valid aggregate comes back as one plain record. When `shard_range` is
/// given, user records of an aggregate whose hash key lies outside it are dropped.
pub fn deaggregate(record: Record, shard_range: Option<HashKeyRange>) -> Vec<KinesisClientRecord> {
    let Some(body) = aggregated_body(&record.data) else {
        return vec![KinesisClientRecord::plain(record)];
    };
    let message = match AggregatedRecord::decode(body) {
        Ok(message) => message,
        Err(error) => {
            tracing::warn!(
                sequence_number = %record.sequence_number,
                %error,
                "record has the KPL magic and checksum but does not decode; delivering it as a plain record"
            );
            return vec![KinesisClientRecord::plain(record)];
        }
    };
    match unpack(&record, &message, shard_range) {
        Ok(user_records) => user_records,
        Err(reason) => {
            tracing::warn!(
                sequence_number = %record.sequence_number,
                reason,
                "malformed KPL aggregate; delivering it as a plain record"
            );
            vec![KinesisClientRecord::plain(record)]
        }
    }
}

fn unpack(
    record: &Record,
    message: &AggregatedRecord,
    shard_range: Option<HashKeyRange>,
) -> Result<Vec<KinesisClientRecord>, &'static str> {
    let partition_keys: Vec<Arc<str>> = message
        .partition_key_table
        .iter()
        .map(|key| Arc::from(key.as_str()))
        .collect();
    let mut user_records = Vec::with_capacity(message.records.len());
    for (index, user_record) in message.records.iter().enumerate() {
        let partition_key = usize::try_from(user_record.partition_key_index)
            .ok()
            .and_then(|key_index| partition_keys.get(key_index))
            .ok_or("partition key index outside the partition key table")?
            .clone();
        let explicit_hash_key = match user_record.explicit_hash_key_index {
            None => None,
            Some(key_index) => {
                let text = usize::try_from(key_index)
                    .ok()
                    .and_then(|key_index| message.explicit_hash_key_table.get(key_index))
                    .ok_or("explicit hash key index outside the explicit hash key table")?;
                Some(
                    text.parse::<HashKey>()
                        .map_err(|_| "explicit hash key is not a 128-bit decimal")?,
                )
            }
        };
        let hash_key = explicit_hash_key.unwrap_or_else(|| partition_key_hash(&partition_key));
        if shard_range.is_some_and(|range| !range.contains(hash_key)) {
            continue;
        }
        user_records.push(KinesisClientRecord {
            sequence_number: record.sequence_number,
            sub_sequence_number: index as u64,
            approximate_arrival_timestamp: record.approximate_arrival_timestamp,
            partition_key,
            explicit_hash_key,
            data: user_record.data.clone(),
            aggregated: true,
        });
    }
    Ok(user_records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcl_core::kinesis::{EpochMillis, SequenceNumber};
    use proptest::prelude::*;

    const REFERENCE_VECTOR: &str = "f3899ac20a03706b300a03706b310a03706b321a0908001a0564617461301a0908011a0564617461311a0908021a0564617461325b65041201b393a0bf4df8c3bb7dc825";

    fn record_with(data: Bytes) -> Record {
        Record {
            sequence_number: SequenceNumber::from_u128(77),
            approximate_arrival_timestamp: EpochMillis(1_000),
            data,
            partition_key: Arc::from("outer"),
            explicit_hash_key: None,
        }
    }

    fn user(partition_key: &str, data: &str) -> UserRecord {
        UserRecord {
            partition_key: partition_key.to_owned(),
            explicit_hash_key: None,
            data: Bytes::from(data.to_owned()),
        }
    }

    #[test]
    fn aggregates_the_reference_vector_byte_for_byte() {
        let packed = aggregate(&[
            user("pk0", "data0"),
            user("pk1", "data1"),
            user("pk2", "data2"),
        ]);
        assert_eq!(packed.len(), 68);
        assert_eq!(hex::encode(&packed), REFERENCE_VECTOR);
    }

    #[test]
    fn deaggregates_the_reference_vector_with_sub_sequence_numbers() {
        let data = Bytes::from(hex::decode(REFERENCE_VECTOR).expect("hex"));
        let records = deaggregate(record_with(data), None);
        let seen: Vec<(u64, &str, &[u8])> = records
            .iter()
            .map(|r| (r.sub_sequence_number, &*r.partition_key, &r.data[..]))
            .collect();
        assert_eq!(
            seen,
            vec![
                (0, "pk0", &b"data0"[..]),
                (1, "pk1", &b"data1"[..]),
                (2, "pk2", &b"data2"[..])
            ]
        );
        assert!(records.iter().all(|r| r.aggregated));
        assert!(
            records
                .iter()
                .all(|r| r.sequence_number == SequenceNumber::from_u128(77))
        );
    }

    #[test]
    fn not_aggregated_inputs_are_plain_records() {
        let mut bad_md5 = hex::decode(REFERENCE_VECTOR).expect("hex");
        let last = bad_md5.len() - 1;
        bad_md5[last] ^= 0xff;
        let mut undecodable = KPL_MAGIC.to_vec();
        let garbage = [0xffu8, 0xff, 0xff];
        undecodable.extend_from_slice(&garbage);
        undecodable.extend_from_slice(&Md5::digest(garbage));
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("no magic", b"hello".to_vec()),
            ("empty", Vec::new()),
            ("magic only", KPL_MAGIC.to_vec()),
            ("bad md5", bad_md5),
            ("undecodable protobuf", undecodable),
        ];
        for (name, data) in cases {
            let records = deaggregate(record_with(Bytes::from(data.clone())), None);
            assert_eq!(records.len(), 1, "{name}");
            assert!(!records[0].aggregated, "{name}");
            assert_eq!(&records[0].data[..], &data[..], "{name}");
            assert_eq!(&*records[0].partition_key, "outer", "{name}");
        }
    }

    #[test]
    fn drops_user_records_outside_the_shard_range() {
        let low = UserRecord {
            partition_key: "a".to_owned(),
            explicit_hash_key: Some(5),
            data: Bytes::from_static(b"low"),
        };
        let high = UserRecord {
            partition_key: "b".to_owned(),
            explicit_hash_key: Some(u128::MAX - 5),
            data: Bytes::from_static(b"high"),
        };
        let packed = aggregate(&[low, high]);
        let lower_half = HashKeyRange::split_evenly(2)[0];
        let records = deaggregate(record_with(packed), Some(lower_half));
        assert_eq!(records.len(), 1);
        assert_eq!(&records[0].data[..], b"low");
        assert_eq!(records[0].sub_sequence_number, 0);
        assert_eq!(records[0].explicit_hash_key, Some(5));
    }

    proptest! {
        #[test]
        fn aggregate_then_deaggregate_round_trips(
            items in proptest::collection::vec(("[a-z]{1,8}", proptest::option::of(any::<u128>()), proptest::collection::vec(any::<u8>(), 0..32)), 1..20)
        ) {
            let users: Vec<UserRecord> = items
                .iter()
                .map(|(key, hash, data)| UserRecord {
                    partition_key: key.clone(),
                    explicit_hash_key: *hash,
                    data: Bytes::from(data.clone()),
                })
                .collect();
            let records = deaggregate(record_with(aggregate(&users)), Some(HashKeyRange::FULL));
            prop_assert_eq!(records.len(), users.len());
            for (index, (record, user)) in records.iter().zip(&users).enumerate() {
                prop_assert_eq!(record.sub_sequence_number, index as u64);
                prop_assert_eq!(&*record.partition_key, user.partition_key.as_str());
                prop_assert_eq!(record.explicit_hash_key, user.explicit_hash_key);
                prop_assert_eq!(&record.data, &user.data);
            }
        }
    }
}
