//! Packs user records bound for one shard into KPL aggregates, tracking the exact encoded size
//! as records are added so an aggregate never exceeds its byte limit.

use crate::kpl::{KPL_MAGIC, MD5_LEN, UserRecord, aggregate};
use bytes::Bytes;
use kcl_core::kinesis::HashKey;
use prost::encoding::encoded_len_varint;
use std::collections::HashMap;

/// Bytes a length-delimited protobuf field of `len` bytes takes (one-byte tag + length + body).
fn delimited_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

/// Bytes a varint field with `value` takes (one-byte tag + varint).
fn varint_field_len(value: u64) -> usize {
    1 + encoded_len_varint(value)
}

/// An aggregate being filled: user records (each with a caller's `T`, e.g. its completion) and
/// the exact size [`crate::kpl::aggregate`] will encode them to.
#[derive(Debug)]
pub struct Aggregator<T> {
    records: Vec<(UserRecord, T)>,
    partition_keys: HashMap<String, u64>,
    hash_keys: HashMap<HashKey, u64>,
    body_len: usize,
}

impl<T> Default for Aggregator<T> {
    fn default() -> Self {
        Aggregator {
            records: Vec::new(),
            partition_keys: HashMap::new(),
            hash_keys: HashMap::new(),
            body_len: 0,
        }
    }
}

impl<T> Aggregator<T> {
    /// An empty aggregator.
    pub fn new() -> Self {
        Aggregator::default()
    }

    /// The encoded size of an aggregate holding only `record`.
    pub fn single_size(record: &UserRecord) -> usize {
        Aggregator::<()>::new().size_with(record)
    }

    /// User records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no user record is held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The encoded size (magic + protobuf + MD5) of the records held now.
    pub fn size(&self) -> usize {
        KPL_MAGIC.len() + self.body_len + MD5_LEN
    }

    /// The encoded size if `record` were added.
    pub fn size_with(&self, record: &UserRecord) -> usize {
        KPL_MAGIC.len() + self.body_len + self.added_len(record) + MD5_LEN
    }

    /// Bytes `record` adds to the protobuf body (its table entries and its `Record` message).
    fn added_len(&self, record: &UserRecord) -> usize {
        let mut added = 0;
        let partition_key_index = match self.partition_keys.get(&record.partition_key) {
            Some(index) => *index,
            None => {
                added += delimited_len(record.partition_key.len());
                self.partition_keys.len() as u64
            }
        };
        let mut message_len = varint_field_len(partition_key_index);
        if let Some(hash_key) = record.explicit_hash_key {
            let hash_key_index = match self.hash_keys.get(&hash_key) {
                Some(index) => *index,
                None => {
                    added += delimited_len(hash_key.to_string().len());
                    self.hash_keys.len() as u64
                }
            };
            message_len += varint_field_len(hash_key_index);
        }
        message_len += delimited_len(record.data.len());
        added + delimited_len(message_len)
    }

    /// Adds `record` (check [`Aggregator::size_with`] against the limit first).
    pub fn push(&mut self, record: UserRecord, tag: T) {
        self.body_len += self.added_len(&record);
        let next_key_index = self.partition_keys.len() as u64;
        self.partition_keys
            .entry(record.partition_key.clone())
            .or_insert(next_key_index);
        if let Some(hash_key) = record.explicit_hash_key {
            let next_hash_index = self.hash_keys.len() as u64;
            self.hash_keys.entry(hash_key).or_insert(next_hash_index);
        }
        self.records.push((record, tag));
    }

    /// The encoded aggregate and the records in it, in the order they were added; empties the
    /// aggregator.
    pub fn take(&mut self) -> (Bytes, Vec<(UserRecord, T)>) {
        let records = std::mem::take(&mut self.records);
        self.partition_keys.clear();
        self.hash_keys.clear();
        self.body_len = 0;
        let users: Vec<UserRecord> = records.iter().map(|(record, _)| record.clone()).collect();
        (aggregate(&users), records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kpl::deaggregate;
    use kcl_core::kinesis::{EpochMillis, HashKeyRange, Record, SequenceNumber};
    use proptest::prelude::*;
    use std::sync::Arc;

    fn user_record() -> impl Strategy<Value = UserRecord> {
        (
            "[a-zA-Z0-9]{1,20}",
            proptest::option::of(any::<u128>()),
            proptest::collection::vec(any::<u8>(), 0..400),
        )
            .prop_map(|(partition_key, explicit_hash_key, data)| UserRecord {
                partition_key,
                explicit_hash_key,
                data: Bytes::from(data),
            })
    }

    /// Fills aggregates the way the producer does: close the current one when the next record
    /// would push it over `limit`.
    fn pack(records: &[UserRecord], limit: usize) -> Vec<(Bytes, Vec<UserRecord>)> {
        let mut out = Vec::new();
        let mut current = Aggregator::new();
        for record in records {
            if !current.is_empty() && current.size_with(record) > limit {
                let (bytes, users) = current.take();
                out.push((bytes, users.into_iter().map(|(user, ())| user).collect()));
            }
            current.push(record.clone(), ());
        }
        if !current.is_empty() {
            let (bytes, users) = current.take();
            out.push((bytes, users.into_iter().map(|(user, ())| user).collect()));
        }
        out
    }

    #[test]
    fn the_size_of_the_reference_vector_is_exact() {
        let mut aggregator = Aggregator::new();
        for (key, data) in [("pk0", "data0"), ("pk1", "data1"), ("pk2", "data2")] {
            aggregator.push(UserRecord::new(key, data), ());
        }
        assert_eq!(aggregator.size(), 68);
        let (bytes, records) = aggregator.take();
        assert_eq!(bytes.len(), 68);
        assert_eq!(records.len(), 3);
        assert!(aggregator.is_empty());
        assert_eq!(aggregator.size(), KPL_MAGIC.len() + MD5_LEN);
    }

    proptest! {
        /// The predicted size always equals the encoded size, each aggregate stays within the
        /// limit unless it holds a single record, and de-aggregation returns every record.
        #[test]
        fn any_user_records_round_trip_within_the_limit(
            records in proptest::collection::vec(user_record(), 1..60),
            limit in 200usize..4_000,
        ) {
            let packed = pack(&records, limit);
            let mut seen = Vec::new();
            for (bytes, users) in &packed {
                let predicted = {
                    let mut check = Aggregator::new();
                    for user in users {
                        check.push(user.clone(), ());
                    }
                    check.size()
                };
                prop_assert_eq!(predicted, bytes.len());
                prop_assert!(users.len() == 1 || bytes.len() <= limit, "{} > {}", bytes.len(), limit);
                let record = Record {
                    sequence_number: SequenceNumber::from_u128(1),
                    approximate_arrival_timestamp: EpochMillis(0),
                    data: bytes.clone(),
                    partition_key: Arc::from(users[0].partition_key.as_str()),
                    explicit_hash_key: None,
                };
                for (index, out) in deaggregate(record, Some(HashKeyRange::FULL)).into_iter().enumerate() {
                    prop_assert!(out.aggregated);
                    prop_assert_eq!(out.sub_sequence_number, index as u64);
                    seen.push(UserRecord {
                        partition_key: out.partition_key.to_string(),
                        explicit_hash_key: out.explicit_hash_key,
                        data: out.data,
                    });
                }
            }
            prop_assert_eq!(seen, records);
        }
    }
}
