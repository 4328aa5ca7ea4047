//! Hash keys: where a partition key lands in the 128-bit key space.

use md5::{Digest, Md5};

/// A point of the 128-bit hash-key space.
pub type HashKey = u128;

/// Hashes a partition key the way Kinesis does: MD5 of its UTF-8 bytes, read as a big-endian
/// unsigned 128-bit integer.
pub fn partition_key_hash(partition_key: &str) -> HashKey {
    let digest = Md5::digest(partition_key.as_bytes());
    u128::from_be_bytes(digest.into())
}

/// An inclusive range of hash keys owned by a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HashKeyRange {
    /// First hash key of the range.
    pub starting_hash_key: HashKey,
    /// Last hash key of the range (inclusive).
    pub ending_hash_key: HashKey,
}

impl HashKeyRange {
    /// The whole key space, `[0, 2^128 - 1]`.
    pub const FULL: HashKeyRange = HashKeyRange {
        starting_hash_key: 0,
        ending_hash_key: u128::MAX,
    };

    /// A range from `starting_hash_key` to `ending_hash_key`, both inclusive.
    pub fn new(starting_hash_key: HashKey, ending_hash_key: HashKey) -> Self {
        HashKeyRange {
            starting_hash_key,
            ending_hash_key,
        }
    }

    /// Whether `key` lies in this range.
    pub fn contains(&self, key: HashKey) -> bool {
        self.starting_hash_key <= key && key <= self.ending_hash_key
    }

    /// Divides the whole key space evenly into `shard_count` ranges, as `CreateStream` does:
    /// with `h = floor(2^128 / n)`, range `i` is `[i*h, (i+1)*h - 1]` and the last range ends at
    /// `2^128 - 1`. Returns an empty list for `shard_count == 0`.
    pub fn split_evenly(shard_count: u32) -> Vec<HashKeyRange> {
        if shard_count == 0 {
            return Vec::new();
        }
        // floor(2^128 / n) computed without overflow: (2^128 - 1) / n, plus one when n divides
        // 2^128 exactly (n a power of two).
        let n = u128::from(shard_count);
        let width = if n.is_power_of_two() {
            if n == 1 {
                0
            } else {
                1u128 << (128 - n.trailing_zeros())
            }
        } else {
            u128::MAX / n
        };
        (0..n)
            .map(|i| {
                let start = i * width;
                let end = if i + 1 == n {
                    u128::MAX
                } else {
                    (i + 1) * width - 1
                };
                HashKeyRange::new(start, end)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_routing_matches_kinesis() {
        // MD5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(
            partition_key_hash("a"),
            0x0cc175b9c0f1b6a831c399e269772661u128
        );
    }

    #[test]
    fn even_split_covers_the_key_space() {
        for n in [1u32, 2, 3, 4, 5, 7, 8, 100, 1000] {
            let ranges = HashKeyRange::split_evenly(n);
            assert_eq!(ranges.len(), n as usize);
            assert_eq!(ranges[0].starting_hash_key, 0);
            assert_eq!(ranges[ranges.len() - 1].ending_hash_key, u128::MAX);
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].ending_hash_key + 1, pair[1].starting_hash_key);
            }
        }
        let two = HashKeyRange::split_evenly(2);
        assert_eq!(two[0].ending_hash_key, (1u128 << 127) - 1);
        let three = HashKeyRange::split_evenly(3);
        assert_eq!(
            three[1].starting_hash_key,
            113427455640312821154458202477256070485
        );
    }
}
