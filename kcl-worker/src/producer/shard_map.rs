//! Predicts the shard a hash key goes to from `ListShards`' hash-key ranges, and knows every
//! shard's range (closed ones too) to judge where an aggregate that landed elsewhere belongs.

use kcl_core::kinesis::{HashKey, HashKeyRange, Shard};
use std::collections::HashMap;
use std::time::Duration;

/// The open shards by hash-key range, plus every known shard's range.
#[derive(Debug, Clone, Default)]
pub struct ShardMap {
    /// Open shards sorted by starting hash key.
    open: Vec<(HashKeyRange, String)>,
    /// Every listed shard's range, open or closed.
    ranges: HashMap<String, HashKeyRange>,
    /// When the map was last loaded (producer clock).
    loaded_at: Option<Duration>,
    /// Set when a put landed on another shard than predicted.
    stale: bool,
}

impl ShardMap {
    /// A map of `shards` loaded at `now`.
    pub fn from_shards(shards: &[Shard], now: Duration) -> Self {
        let mut open: Vec<(HashKeyRange, String)> = shards
            .iter()
            .filter(|shard| shard.sequence_number_range.ending_sequence_number.is_none())
            .map(|shard| (shard.hash_key_range, shard.shard_id.to_string()))
            .collect();
        open.sort_by_key(|(range, _)| range.starting_hash_key);
        let ranges = shards
            .iter()
            .map(|shard| (shard.shard_id.to_string(), shard.hash_key_range))
            .collect();
        ShardMap {
            open,
            ranges,
            loaded_at: Some(now),
            stale: false,
        }
    }

    /// The open shard whose range holds `hash_key`, if the map knows one.
    pub fn predict(&self, hash_key: HashKey) -> Option<&str> {
        let after = self
            .open
            .partition_point(|(range, _)| range.starting_hash_key <= hash_key);
        let (range, shard_id) = self.open.get(after.checked_sub(1)?)?;
        range.contains(hash_key).then_some(shard_id.as_str())
    }

    /// The hash-key range of `shard_id`, if listed.
    pub fn range_of(&self, shard_id: &str) -> Option<HashKeyRange> {
        self.ranges.get(shard_id).copied()
    }

    /// Open shards known.
    pub fn open_shards(&self) -> usize {
        self.open.len()
    }

    /// Marks the map out of date (a put landed on another shard than predicted).
    pub fn mark_stale(&mut self) {
        self.stale = true;
    }

    /// Whether the map should be reloaded at `now`: it was never loaded, or it is stale and
    /// was loaded at least `min_interval` ago.
    pub fn needs_refresh(&self, now: Duration, min_interval: Duration) -> bool {
        match self.loaded_at {
            None => true,
            Some(loaded_at) => self.stale && now.saturating_sub(loaded_at) >= min_interval,
        }
    }

    /// Records a failed reload at `now` (so reloads are not attempted in a tight loop).
    pub fn reload_failed(&mut self, now: Duration) {
        self.loaded_at = Some(now);
        self.stale = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcl_core::kinesis::{SequenceNumber, SequenceNumberRange, ShardId};

    fn shard(index: u64, range: HashKeyRange, closed: bool) -> Shard {
        Shard {
            shard_id: ShardId::from_index(index),
            parent_shard_id: None,
            adjacent_parent_shard_id: None,
            hash_key_range: range,
            sequence_number_range: SequenceNumberRange {
                starting_sequence_number: SequenceNumber::from_u128(1),
                ending_sequence_number: closed.then(|| SequenceNumber::from_u128(2)),
            },
        }
    }

    #[test]
    fn predicts_by_open_ranges_only() {
        let halves = HashKeyRange::split_evenly(2);
        let shards = vec![
            shard(0, HashKeyRange::FULL, true),
            shard(1, halves[0], false),
            shard(2, halves[1], false),
        ];
        let map = ShardMap::from_shards(&shards, Duration::ZERO);
        let cases = [
            (0u128, Some("shardId-000000000001")),
            (halves[0].ending_hash_key, Some("shardId-000000000001")),
            (halves[1].starting_hash_key, Some("shardId-000000000002")),
            (u128::MAX, Some("shardId-000000000002")),
        ];
        for (hash_key, expected) in cases {
            assert_eq!(map.predict(hash_key), expected, "{hash_key}");
        }
        assert_eq!(map.open_shards(), 2);
        assert_eq!(
            map.range_of("shardId-000000000000"),
            Some(HashKeyRange::FULL)
        );
        assert_eq!(ShardMap::default().predict(7), None);
    }

    #[test]
    fn reloads_when_stale_and_not_too_often() {
        let mut map = ShardMap::default();
        assert!(map.needs_refresh(Duration::ZERO, Duration::from_secs(1)));
        map = ShardMap::from_shards(&[], Duration::from_secs(10));
        assert!(!map.needs_refresh(Duration::from_secs(20), Duration::from_secs(1)));
        map.mark_stale();
        assert!(!map.needs_refresh(Duration::from_millis(10_500), Duration::from_secs(1)));
        assert!(map.needs_refresh(Duration::from_secs(11), Duration::from_secs(1)));
    }
}
