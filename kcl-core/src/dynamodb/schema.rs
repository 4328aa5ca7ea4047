//! The Java KCL's lease item: attribute names and types, and the conversion between a
//! [`Lease`] and a DynamoDB item (see `docs/java-kcl-lease-table.md` for where each name was
//! checked).

use crate::kinesis::{HashKeyRange, ShardId};
use crate::lease::{CheckpointValue, ExtendedSequenceNumber, Lease};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// `leaseKey` (S): the hash key, the shard id.
pub(crate) const LEASE_KEY: &str = "leaseKey";
/// `leaseOwner` (S), absent when the lease is free.
pub(crate) const LEASE_OWNER: &str = "leaseOwner";
/// `leaseCounter` (N): the fencing token.
pub(crate) const LEASE_COUNTER: &str = "leaseCounter";
/// `ownerSwitchesSinceCheckpoint` (N).
pub(crate) const OWNER_SWITCHES: &str = "ownerSwitchesSinceCheckpoint";
/// `checkpoint` (S): a sequence number or a sentinel.
pub(crate) const CHECKPOINT: &str = "checkpoint";
/// `checkpointSubSequenceNumber` (N).
pub(crate) const CHECKPOINT_SUB: &str = "checkpointSubSequenceNumber";
/// `pendingCheckpoint` (S).
pub(crate) const PENDING_CHECKPOINT: &str = "pendingCheckpoint";
/// `pendingCheckpointSubSequenceNumber` (N).
pub(crate) const PENDING_CHECKPOINT_SUB: &str = "pendingCheckpointSubSequenceNumber";
/// `pendingCheckpointState` (B).
pub(crate) const PENDING_CHECKPOINT_STATE: &str = "pendingCheckpointState";
/// `parentShardId` (SS, a set despite the name).
pub(crate) const PARENT_SHARD_IDS: &str = "parentShardId";
/// `childShardIds` (SS).
pub(crate) const CHILD_SHARD_IDS: &str = "childShardIds";
/// `startingHashKey` (S, decimal).
pub(crate) const STARTING_HASH_KEY: &str = "startingHashKey";
/// `endingHashKey` (S, decimal).
pub(crate) const ENDING_HASH_KEY: &str = "endingHashKey";
// `checkpointOwner` (S, KCL 3.x graceful handoff: the worker that still has to checkpoint) and
// `throughputKBps` (N, KCL 3.x) are not modelled: takes and evictions remove `checkpointOwner`
// as the Java KCL does, renewals require it absent, and `throughputKBps` is left untouched.
/// The KCL 3.x global secondary index (hash `leaseOwner`, range `leaseKey`).
pub(crate) const LEASE_OWNER_INDEX: &str = "LeaseOwnerToLeaseKeyIndex";

/// A DynamoDB item.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// The item's key for `lease_key`.
pub(crate) fn key(lease_key: &ShardId) -> Item {
    HashMap::from([(
        LEASE_KEY.to_owned(),
        AttributeValue::S(lease_key.as_str().to_owned()),
    )])
}

/// A number attribute.
pub(crate) fn number(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The full item of a new lease, as the Java KCL's `toDynamoRecord` writes it (empty sets and
/// absent optional values are left out: DynamoDB has no empty sets).
pub(crate) fn to_item(lease: &Lease) -> Item {
    let mut item = key(&lease.lease_key);
    item.insert(LEASE_COUNTER.to_owned(), number(lease.lease_counter));
    if let Some(owner) = &lease.lease_owner {
        item.insert(LEASE_OWNER.to_owned(), AttributeValue::S(owner.clone()));
    }
    item.insert(
        OWNER_SWITCHES.to_owned(),
        number(lease.owner_switches_since_checkpoint),
    );
    insert_checkpoint(&mut item, &lease.checkpoint);
    if let Some(pending) = &lease.pending_checkpoint {
        insert_pending_checkpoint(&mut item, pending);
    }
    if let Some(state) = &lease.pending_checkpoint_state {
        item.insert(
            PENDING_CHECKPOINT_STATE.to_owned(),
            AttributeValue::B(Blob::new(state.clone())),
        );
    }
    if let Some(parents) = string_set(&lease.parent_shard_ids) {
        item.insert(PARENT_SHARD_IDS.to_owned(), parents);
    }
    if let Some(children) = string_set(&lease.child_shard_ids) {
        item.insert(CHILD_SHARD_IDS.to_owned(), children);
    }
    if let Some(range) = &lease.hash_key_range {
        insert_hash_key_range(&mut item, range);
    }
    item
}

fn insert_checkpoint(item: &mut Item, checkpoint: &ExtendedSequenceNumber) {
    item.insert(
        CHECKPOINT.to_owned(),
        AttributeValue::S(checkpoint.value.as_table_string()),
    );
    item.insert(
        CHECKPOINT_SUB.to_owned(),
        number(checkpoint.sub_sequence_number),
    );
}

fn insert_pending_checkpoint(item: &mut Item, pending: &ExtendedSequenceNumber) {
    item.insert(
        PENDING_CHECKPOINT.to_owned(),
        AttributeValue::S(pending.value.as_table_string()),
    );
    item.insert(
        PENDING_CHECKPOINT_SUB.to_owned(),
        number(pending.sub_sequence_number),
    );
}

fn insert_hash_key_range(item: &mut Item, range: &HashKeyRange) {
    item.insert(
        STARTING_HASH_KEY.to_owned(),
        AttributeValue::S(range.starting_hash_key.to_string()),
    );
    item.insert(
        ENDING_HASH_KEY.to_owned(),
        AttributeValue::S(range.ending_hash_key.to_string()),
    );
}

/// A string set of shard ids, `None` when empty (DynamoDB rejects empty sets).
pub(crate) fn string_set(shard_ids: &[ShardId]) -> Option<AttributeValue> {
    if shard_ids.is_empty() {
        return None;
    }
    let mut ids: Vec<String> = shard_ids.iter().map(|id| id.as_str().to_owned()).collect();
    ids.sort_unstable();
    ids.dedup();
    Some(AttributeValue::Ss(ids))
}

/// Values of the checkpoint attributes, for `SET` expressions.
pub(crate) fn checkpoint_values(
    checkpoint: &ExtendedSequenceNumber,
) -> (AttributeValue, AttributeValue) {
    (
        AttributeValue::S(checkpoint.value.as_table_string()),
        number(checkpoint.sub_sequence_number),
    )
}

/// Values of the hash-key attributes, for `SET` expressions.
pub(crate) fn hash_key_values(range: &HashKeyRange) -> (AttributeValue, AttributeValue) {
    (
        AttributeValue::S(range.starting_hash_key.to_string()),
        AttributeValue::S(range.ending_hash_key.to_string()),
    )
}

/// Why an item is not a lease: the attribute and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError {
    /// The lease key, when the item has a readable one.
    pub(crate) lease_key: Option<String>,
    /// What is wrong, naming the attribute.
    pub(crate) problem: String,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.lease_key {
            Some(lease_key) => write!(f, "lease item {lease_key}: {}", self.problem),
            None => write!(
                f,
                "lease item without a readable leaseKey: {}",
                self.problem
            ),
        }
    }
}

/// Reads typed attributes of one item, producing [`DecodeError`]s that name the attribute.
struct Reader<'a> {
    item: &'a Item,
    lease_key: Option<String>,
}

impl Reader<'_> {
    fn error(&self, problem: String) -> DecodeError {
        DecodeError {
            lease_key: self.lease_key.clone(),
            problem,
        }
    }

    fn string(&self, name: &str) -> Result<Option<&str>, DecodeError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(text)) => Ok(Some(text)),
            Some(other) => Err(self.error(format!(
                "attribute {name} must be a string (S), found {}",
                type_name(other)
            ))),
        }
    }

    fn number(&self, name: &str) -> Result<Option<u64>, DecodeError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(text)) => text.parse::<u64>().map(Some).map_err(|_| {
                self.error(format!(
                    "attribute {name} must be a non-negative integer, found {text:?}"
                ))
            }),
            Some(other) => Err(self.error(format!(
                "attribute {name} must be a number (N), found {}",
                type_name(other)
            ))),
        }
    }

    fn shard_ids(&self, name: &str) -> Result<Vec<ShardId>, DecodeError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(Vec::new()),
            Some(AttributeValue::Ss(ids)) => {
                let mut ids: Vec<ShardId> =
                    ids.iter().map(|id| ShardId::new(id.as_str())).collect();
                ids.sort_unstable();
                Ok(ids)
            }
            Some(other) => Err(self.error(format!(
                "attribute {name} must be a string set (SS), found {}",
                type_name(other)
            ))),
        }
    }

    fn sequence(
        &self,
        name: &str,
        sub_name: &str,
    ) -> Result<Option<ExtendedSequenceNumber>, DecodeError> {
        let Some(text) = self.string(name)? else {
            return Ok(None);
        };
        // The Java KCL treats an empty pending checkpoint as none.
        if text.is_empty() {
            return Ok(None);
        }
        let value = CheckpointValue::from_table_string(text).ok_or_else(|| {
            self.error(format!(
                "attribute {name} must be a sequence number or one of TRIM_HORIZON, LATEST, \
                 AT_TIMESTAMP, SHARD_END, found {text:?}"
            ))
        })?;
        let sub_sequence_number = self.number(sub_name)?.unwrap_or(0);
        Ok(Some(ExtendedSequenceNumber {
            value,
            sub_sequence_number,
        }))
    }

    fn hash_key(&self, name: &str) -> Result<Option<u128>, DecodeError> {
        let Some(text) = self.string(name)? else {
            return Ok(None);
        };
        text.parse::<u128>().map(Some).map_err(|_| {
            self.error(format!(
                "attribute {name} must be a decimal hash key below 2^128, found {text:?}"
            ))
        })
    }
}

fn type_name(value: &AttributeValue) -> &'static str {
    match value {
        AttributeValue::B(_) => "binary (B)",
        AttributeValue::Bool(_) => "boolean (BOOL)",
        AttributeValue::Bs(_) => "binary set (BS)",
        AttributeValue::L(_) => "list (L)",
        AttributeValue::M(_) => "map (M)",
        AttributeValue::N(_) => "number (N)",
        AttributeValue::Ns(_) => "number set (NS)",
        AttributeValue::Null(_) => "null (NULL)",
        AttributeValue::S(_) => "string (S)",
        AttributeValue::Ss(_) => "string set (SS)",
        _ => "an unknown type",
    }
}

/// Decodes a lease item. Attributes this crate does not model (`throughputKBps`,
/// `checkpointOwner`, multi-stream `streamName`/`shardId`, anything newer) are ignored here and
/// kept in the table, because every update is an `UpdateItem` that names only its attributes.
pub(crate) fn from_item(item: &Item) -> Result<Lease, DecodeError> {
    let mut reader = Reader {
        item,
        lease_key: None,
    };
    let lease_key = reader
        .string(LEASE_KEY)?
        .ok_or_else(|| reader.error(format!("attribute {LEASE_KEY} is missing")))?
        .to_owned();
    reader.lease_key = Some(lease_key.clone());
    let lease_counter = reader
        .number(LEASE_COUNTER)?
        .ok_or_else(|| reader.error(format!("attribute {LEASE_COUNTER} is missing")))?;
    let checkpoint = reader
        .sequence(CHECKPOINT, CHECKPOINT_SUB)?
        .ok_or_else(|| reader.error(format!("attribute {CHECKPOINT} is missing")))?;
    let pending_checkpoint_state = match item.get(PENDING_CHECKPOINT_STATE) {
        Some(AttributeValue::B(blob)) => Some(blob.as_ref().to_vec()),
        // Some Java KCL versions' toDynamoRecord wrote a number here by mistake; the Java reader
        // (safeGetByteArray) then sees no state, and so do we.
        _ => None,
    };
    let hash_key_range = match (
        reader.hash_key(STARTING_HASH_KEY)?,
        reader.hash_key(ENDING_HASH_KEY)?,
    ) {
        (Some(start), Some(end)) => Some(HashKeyRange::new(start, end)),
        _ => None,
    };
    Ok(Lease {
        lease_key: ShardId::new(lease_key.as_str()),
        lease_owner: reader.string(LEASE_OWNER)?.map(str::to_owned),
        lease_counter,
        checkpoint,
        pending_checkpoint: reader.sequence(PENDING_CHECKPOINT, PENDING_CHECKPOINT_SUB)?,
        pending_checkpoint_state,
        owner_switches_since_checkpoint: reader.number(OWNER_SWITCHES)?.unwrap_or(0),
        parent_shard_ids: reader.shard_ids(PARENT_SHARD_IDS)?,
        child_shard_ids: reader.shard_ids(CHILD_SHARD_IDS)?,
        hash_key_range,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinesis::SequenceNumber;

    fn full_lease() -> Lease {
        let mut lease = Lease::new(
            ShardId::new("shardId-000000000001"),
            ExtendedSequenceNumber::new(SequenceNumber::from_u128(42), 3),
        );
        lease.lease_owner = Some("worker-a".to_owned());
        lease.lease_counter = 9;
        lease.pending_checkpoint = Some(ExtendedSequenceNumber::SHARD_END);
        lease.pending_checkpoint_state = Some(vec![1, 2, 3]);
        lease.owner_switches_since_checkpoint = 2;
        lease.parent_shard_ids = vec![ShardId::new("p1"), ShardId::new("p2")];
        lease.child_shard_ids = vec![ShardId::new("c1")];
        lease.hash_key_range = Some(HashKeyRange::FULL);
        lease
    }

    #[test]
    fn items_round_trip() {
        let lease = full_lease();
        assert_eq!(from_item(&to_item(&lease)), Ok(lease));
        let bare = Lease::new(ShardId::new("s"), ExtendedSequenceNumber::TRIM_HORIZON);
        let item = to_item(&bare);
        assert!(!item.contains_key(PARENT_SHARD_IDS), "no empty sets");
        assert_eq!(from_item(&item), Ok(bare));
    }

    #[test]
    fn java_item_shapes_decode() {
        // Java writes no pendingCheckpoint attributes when there is none, an empty string is
        // treated as none, and some versions wrote pendingCheckpointState as a number.
        let mut item = to_item(&full_lease());
        item.insert(
            PENDING_CHECKPOINT.to_owned(),
            AttributeValue::S(String::new()),
        );
        item.insert(PENDING_CHECKPOINT_STATE.to_owned(), number(0));
        item.insert(
            "throughputKBps".to_owned(),
            AttributeValue::N("12.5".to_owned()),
        );
        let lease = from_item(&item).expect("decodes");
        assert_eq!(lease.pending_checkpoint, None);
        assert_eq!(lease.pending_checkpoint_state, None);
    }

    /// A damage done to an item: its name, the change, and the expected message part.
    type Damage = (&'static str, fn(&mut Item), &'static str);

    #[test]
    fn malformed_items_name_the_lease_and_attribute() {
        let cases: Vec<Damage> = vec![
            (
                "missing key",
                |item| {
                    item.remove(LEASE_KEY);
                },
                "attribute leaseKey is missing",
            ),
            (
                "key not S",
                |item| {
                    item.insert(LEASE_KEY.into(), number(1));
                },
                "attribute leaseKey must be a string (S), found number (N)",
            ),
            (
                "missing counter",
                |item| {
                    item.remove(LEASE_COUNTER);
                },
                "attribute leaseCounter is missing",
            ),
            (
                "counter not N",
                |item| {
                    item.insert(LEASE_COUNTER.into(), AttributeValue::S("1".into()));
                },
                "attribute leaseCounter must be a number (N), found string (S)",
            ),
            (
                "negative counter",
                |item| {
                    item.insert(LEASE_COUNTER.into(), AttributeValue::N("-1".into()));
                },
                "attribute leaseCounter must be a non-negative integer, found \"-1\"",
            ),
            (
                "missing checkpoint",
                |item| {
                    item.remove(CHECKPOINT);
                },
                "attribute checkpoint is missing",
            ),
            (
                "bad checkpoint",
                |item| {
                    item.insert(CHECKPOINT.into(), AttributeValue::S("soon".into()));
                },
                "attribute checkpoint must be a sequence number",
            ),
            (
                "parents not SS",
                |item| {
                    item.insert(PARENT_SHARD_IDS.into(), AttributeValue::S("p".into()));
                },
                "attribute parentShardId must be a string set (SS)",
            ),
            (
                "bad hash key",
                |item| {
                    item.insert(ENDING_HASH_KEY.into(), AttributeValue::S("x".into()));
                },
                "attribute endingHashKey must be a decimal hash key",
            ),
            (
                "owner not S",
                |item| {
                    item.insert(LEASE_OWNER.into(), AttributeValue::Bool(true));
                },
                "attribute leaseOwner must be a string (S), found boolean (BOOL)",
            ),
        ];
        for (name, damage, expected) in cases {
            let mut item = to_item(&full_lease());
            damage(&mut item);
            let error = from_item(&item).expect_err(name).to_string();
            assert!(error.contains(expected), "{name}: {error}");
            if name != "missing key" && name != "key not S" {
                assert!(error.contains("shardId-000000000001"), "{name}: {error}");
            }
        }
    }
}
