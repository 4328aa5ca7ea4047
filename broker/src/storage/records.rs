//! The payload of a record frame: one put call's records for one shard.
//!
//! Layout (all integers little endian):
//! `version u8 = 1 | stream_uid u64 | shard id: len u16 + UTF-8 | count u32 | records`, each
//! record being `sequence number: high u128 + low u128 | arrival millis i64 |
//! explicit hash key: flag u8 (+ u128) | partition key: len u16 + UTF-8 | data: len u32 + bytes`.

use bytes::Bytes;
use kcl_core::kinesis::{EpochMillis, Record, SequenceNumber, ShardId};
use std::sync::Arc;

const VERSION: u8 = 1;

/// A decoded record frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    /// The owning stream's uid.
    pub stream_uid: u64,
    /// The shard.
    pub shard_id: ShardId,
    /// The records, in sequence-number order.
    pub records: Vec<Record>,
}

/// The bytes [`encode`] will produce for `records` (to size buffers).
pub fn encoded_len(shard_id: &ShardId, records: &[Record]) -> usize {
    let fixed = 1 + 8 + 2 + shard_id.as_str().len() + 4;
    let per_record: usize = records
        .iter()
        .map(|record| {
            let hash_key = if record.explicit_hash_key.is_some() {
                16
            } else {
                0
            };
            32 + 8 + 1 + hash_key + 2 + record.partition_key.len() + 4 + record.data.len()
        })
        .sum();
    fixed + per_record
}

/// Encodes a batch into `out`.
pub fn encode(out: &mut Vec<u8>, stream_uid: u64, shard_id: &ShardId, records: &[Record]) {
    out.reserve(encoded_len(shard_id, records));
    out.push(VERSION);
    out.extend_from_slice(&stream_uid.to_le_bytes());
    let shard = shard_id.as_str().as_bytes();
    out.extend_from_slice(&(shard.len() as u16).to_le_bytes());
    out.extend_from_slice(shard);
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for record in records {
        let (high, low) = record.sequence_number.to_parts();
        out.extend_from_slice(&high.to_le_bytes());
        out.extend_from_slice(&low.to_le_bytes());
        out.extend_from_slice(&record.approximate_arrival_timestamp.0.to_le_bytes());
        match record.explicit_hash_key {
            Some(key) => {
                out.push(1);
                out.extend_from_slice(&key.to_le_bytes());
            }
            None => out.push(0),
        }
        let key = record.partition_key.as_bytes();
        out.extend_from_slice(&(key.len() as u16).to_le_bytes());
        out.extend_from_slice(key);
        out.extend_from_slice(&(record.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&record.data);
    }
}

/// Why a frame payload is not a record batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed record frame: {0}")]
pub struct DecodeError(&'static str);

struct Reader<'a> {
    data: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let bytes = self
            .data
            .get(self.offset..self.offset + len)
            .ok_or(DecodeError("truncated"))?;
        self.offset += len;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N)?;
        let mut array = [0u8; N];
        array.copy_from_slice(bytes);
        Ok(array)
    }

    fn text(&mut self, len: usize) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.take(len)?).map_err(|_| DecodeError("text is not UTF-8"))
    }
}

/// Decodes a batch. `frame` is the frame payload; record data is sliced out of it without
/// copying.
pub fn decode(frame: &Bytes) -> Result<RecordBatch, DecodeError> {
    let mut reader = Reader {
        data: frame,
        offset: 0,
    };
    if reader.array::<1>()?[0] != VERSION {
        return Err(DecodeError("unknown version"));
    }
    let stream_uid = u64::from_le_bytes(reader.array()?);
    let shard_len = usize::from(u16::from_le_bytes(reader.array()?));
    let shard_id = ShardId::new(reader.text(shard_len)?);
    let count = u32::from_le_bytes(reader.array()?) as usize;
    // Each record takes at least 47 bytes; refuse counts the payload cannot hold.
    if count > frame.len() / 47 + 1 {
        return Err(DecodeError("record count exceeds the frame"));
    }
    let mut records = Vec::with_capacity(count);
    for _ in 0..count {
        let high = u128::from_le_bytes(reader.array()?);
        let low = u128::from_le_bytes(reader.array()?);
        let arrival = i64::from_le_bytes(reader.array()?);
        let explicit_hash_key = match reader.array::<1>()?[0] {
            0 => None,
            1 => Some(u128::from_le_bytes(reader.array()?)),
            _ => return Err(DecodeError("bad explicit hash key flag")),
        };
        let key_len = usize::from(u16::from_le_bytes(reader.array()?));
        let partition_key: Arc<str> = reader.text(key_len)?.into();
        let data_len = u32::from_le_bytes(reader.array()?) as usize;
        let start = reader.offset;
        reader.take(data_len)?;
        records.push(Record {
            sequence_number: SequenceNumber::from_parts(high, low),
            approximate_arrival_timestamp: EpochMillis(arrival),
            data: frame.slice(start..start + data_len),
            partition_key,
            explicit_hash_key,
        });
    }
    if reader.offset != frame.len() {
        return Err(DecodeError("trailing bytes"));
    }
    Ok(RecordBatch {
        stream_uid,
        shard_id,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(seq: u128, key: &str, data: &[u8], hash: Option<u128>) -> Record {
        Record {
            sequence_number: SequenceNumber::from_parts(seq >> 3, seq),
            approximate_arrival_timestamp: EpochMillis(1_700_000_000_000 + seq as i64),
            data: Bytes::copy_from_slice(data),
            partition_key: key.into(),
            explicit_hash_key: hash,
        }
    }

    proptest! {
        #[test]
        fn batches_round_trip(
            uid in any::<u64>(),
            shard in "[a-zA-Z0-9-]{1,40}",
            entries in proptest::collection::vec(
                (any::<u128>(), "\\PC{1,20}", proptest::collection::vec(any::<u8>(), 0..100),
                 proptest::option::of(any::<u128>())),
                0..20),
        ) {
            let shard_id = ShardId::new(shard.as_str());
            let records: Vec<Record> = entries
                .iter()
                .map(|(seq, key, data, hash)| record(*seq, key, data, *hash))
                .collect();
            let mut out = Vec::new();
            encode(&mut out, uid, &shard_id, &records);
            prop_assert_eq!(out.len(), encoded_len(&shard_id, &records));
            let decoded = decode(&Bytes::from(out)).unwrap();
            prop_assert_eq!(decoded, RecordBatch { stream_uid: uid, shard_id, records });
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&Bytes::from(data));
        }
    }
}
