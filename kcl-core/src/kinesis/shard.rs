//! Shards, their ids and their lineage.

use super::{HashKeyRange, SequenceNumber};
use std::fmt;
use std::sync::Arc;

/// A shard id such as `shardId-000000000007`.
///
/// Cheap to clone. Ids created by [`ShardId::from_index`] sort in creation order.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(Arc<str>);

impl ShardId {
    /// The id Kinesis gives the `index`-th shard of a stream: `shardId-` and 12 digits.
    pub fn from_index(index: u64) -> Self {
        ShardId(format!("shardId-{index:012}").into())
    }

    /// Wraps an id as given by a server; any text is accepted.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        ShardId(id.into())
    }

    /// The index in a Kinesis-style id (`shardId-000000000007` → 7), if it has that form.
    pub fn index(&self) -> Option<u64> {
        let digits = self.0.strip_prefix("shardId-")?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl std::borrow::Borrow<str> for ShardId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ShardId {
    fn from(id: &str) -> Self {
        ShardId(id.into())
    }
}

impl From<String> for ShardId {
    fn from(id: String) -> Self {
        ShardId(id.into())
    }
}

impl serde::Serialize for ShardId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for ShardId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(ShardId(text.as_ref().into()))
    }
}

/// The sequence numbers a shard has used: from its first, to its last once it is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceNumberRange {
    /// The first sequence number the shard may use.
    pub starting_sequence_number: SequenceNumber,
    /// The last sequence number of a closed shard; `None` while the shard is open.
    pub ending_sequence_number: Option<SequenceNumber>,
}

/// A shard as `ListShards` / `DescribeStream` describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// The shard's id.
    pub shard_id: ShardId,
    /// The shard it was split from, or the first of the two it was merged from.
    pub parent_shard_id: Option<ShardId>,
    /// The second parent of a merged shard.
    pub adjacent_parent_shard_id: Option<ShardId>,
    /// The hash keys routed to this shard.
    pub hash_key_range: HashKeyRange,
    /// The sequence numbers the shard has used.
    pub sequence_number_range: SequenceNumberRange,
}

impl Shard {
    /// Whether the shard is closed (split or merged away; it takes no more writes).
    pub fn is_closed(&self) -> bool {
        self.sequence_number_range.ending_sequence_number.is_some()
    }

    /// The shard's parents: none, one (split) or two (merge).
    pub fn parent_shard_ids(&self) -> impl Iterator<Item = &ShardId> {
        self.parent_shard_id
            .iter()
            .chain(self.adjacent_parent_shard_id.iter())
    }
}

/// A child of a closed shard, as `GetRecords` reports it at the end of its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildShard {
    /// The child's id.
    pub shard_id: ShardId,
    /// All parents of the child (two for a merge).
    pub parent_shards: Vec<ShardId>,
    /// The hash keys routed to the child.
    pub hash_key_range: HashKeyRange,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ids_look_like_kinesis() {
        let id = ShardId::from_index(7);
        assert_eq!(id.as_str(), "shardId-000000000007");
        assert_eq!(id.index(), Some(7));
        assert_eq!(ShardId::new("other").index(), None);
        assert!(ShardId::from_index(9) < ShardId::from_index(10));
    }
}
