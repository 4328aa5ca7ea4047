//! A shard's records: append-only chunks, trimmed from the front.

use kcl_core::kinesis::{EpochMillis, Record, SequenceNumber};
use std::collections::VecDeque;

/// Records per chunk. Every chunk but the last is full, so an index is two divisions away.
const CHUNK: usize = 4096;

/// The retained records of one shard, in sequence-number (and arrival) order.
///
/// Appends never move existing records (a new chunk is started when the last is full);
/// trimming drops whole chunks once every record in them has expired.
#[derive(Debug, Default)]
pub(crate) struct RecordLog {
    chunks: VecDeque<Vec<Record>>,
    /// Records of the first chunk that were trimmed but not yet dropped.
    head_skip: usize,
    len: usize,
}

impl RecordLog {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn push(&mut self, record: Record) {
        let needs_chunk = self.chunks.back().is_none_or(|chunk| chunk.len() == CHUNK);
        if needs_chunk {
            self.chunks.push_back(Vec::new());
        }
        if let Some(chunk) = self.chunks.back_mut() {
            chunk.push(record);
            self.len += 1;
        }
    }

    /// The `index`-th retained record (0 = the oldest).
    pub(crate) fn get(&self, index: usize) -> Option<&Record> {
        if index >= self.len {
            return None;
        }
        let position = self.head_skip + index;
        self.chunks.get(position / CHUNK)?.get(position % CHUNK)
    }

    pub(crate) fn first(&self) -> Option<&Record> {
        self.get(0)
    }

    pub(crate) fn last(&self) -> Option<&Record> {
        self.len.checked_sub(1).and_then(|index| self.get(index))
    }

    /// The index of the first record for which `is_before` is false (`is_before` must be true
    /// for a prefix of the log and false after it).
    fn partition_point(&self, is_before: impl Fn(&Record) -> bool) -> usize {
        let (mut low, mut high) = (0usize, self.len);
        while low < high {
            let middle = low + (high - low) / 2;
            match self.get(middle) {
                Some(record) if is_before(record) => low = middle + 1,
                _ => high = middle,
            }
        }
        low
    }

    /// The index of the first record with a sequence number `>= at`.
    pub(crate) fn index_of_sequence(&self, at: SequenceNumber) -> usize {
        self.partition_point(|record| record.sequence_number < at)
    }

    /// The index of the first record that arrived at or after `at`.
    pub(crate) fn index_of_arrival(&self, at: EpochMillis) -> usize {
        self.partition_point(|record| record.approximate_arrival_timestamp < at)
    }

    /// Records from `start`, oldest first.
    pub(crate) fn iter_from(&self, start: usize) -> impl Iterator<Item = &Record> + '_ {
        self.slices_from(start).flatten()
    }

    /// Records from `start`, oldest first, as contiguous slices (one per chunk).
    pub(crate) fn slices_from(&self, start: usize) -> impl Iterator<Item = &[Record]> + '_ {
        let position = self.head_skip + start.min(self.len);
        let first_chunk = position / CHUNK;
        let first_offset = position % CHUNK;
        self.chunks
            .iter()
            .skip(first_chunk)
            .enumerate()
            .map(move |(i, chunk)| {
                let from = if i == 0 { first_offset } else { 0 };
                chunk.get(from..).unwrap_or(&[])
            })
            .filter(|slice| !slice.is_empty())
    }

    /// Drops the `count` oldest records.
    pub(crate) fn trim_front(&mut self, count: usize) {
        let count = count.min(self.len);
        self.len -= count;
        self.head_skip += count;
        while self.head_skip >= CHUNK && !self.chunks.is_empty() {
            self.chunks.pop_front();
            self.head_skip -= CHUNK;
        }
        if self.len == 0 {
            self.chunks.clear();
            self.head_skip = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn record(n: u64) -> Record {
        Record {
            sequence_number: SequenceNumber::from_u128(u128::from(n) * 10),
            approximate_arrival_timestamp: EpochMillis(i64::try_from(n).unwrap_or(0)),
            data: Bytes::new(),
            partition_key: "k".into(),
            explicit_hash_key: None,
        }
    }

    #[test]
    fn indexes_and_trims_across_chunks() {
        let mut log = RecordLog::default();
        let total = CHUNK as u64 * 2 + 17;
        for n in 0..total {
            log.push(record(n));
        }
        assert_eq!(log.len(), total as usize);
        assert_eq!(log.index_of_sequence(SequenceNumber::from_u128(55)), 6);
        assert_eq!(log.index_of_arrival(EpochMillis(4096)), 4096);
        assert_eq!(log.iter_from(4095).count(), total as usize - 4095);
        let sliced: usize = log.slices_from(4095).map(<[Record]>::len).sum();
        assert_eq!(sliced, total as usize - 4095);
        assert_eq!(log.slices_from(4095).next().map(<[Record]>::len), Some(1));
        log.trim_front(CHUNK + 3);
        assert_eq!(
            log.first().map(|r| r.approximate_arrival_timestamp),
            Some(EpochMillis(CHUNK as i64 + 3))
        );
        assert_eq!(log.iter_from(0).count(), log.len());
        assert_eq!(
            log.last().map(|r| r.approximate_arrival_timestamp),
            Some(EpochMillis(total as i64 - 1))
        );
        let seqs: Vec<_> = log
            .iter_from(log.len() - 2)
            .map(|r| r.sequence_number)
            .collect();
        assert_eq!(seqs.len(), 2);
        log.trim_front(usize::MAX);
        assert_eq!(log.len(), 0);
        log.push(record(1));
        assert_eq!(log.len(), 1);
    }
}
