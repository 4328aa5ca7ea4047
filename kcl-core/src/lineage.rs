//! Shard lineage: which leases to create from a shard list, when a child may be processed, and
//! which finished leases may be deleted — the Java KCL's hierarchical shard sync rules.
//!
//! The worked example of the Java KCL's `HierarchicalShardSyncer`:
//!
//! ```text
//! 0 1 2 3 4   5   - shards till epoch 102
//! \ / \ / |   |
//!  6   7  4   5   - shards from epoch 103 - 205
//!   \ /   |  / \
//!    8    4 9  10 - shards from epoch 206 (open - no ending sequence number)
//! ```
//!
//! With existing leases {4, 5, 7}, LATEST creates {6}; TRIM_HORIZON and AT_TIMESTAMP create
//! {0, 1} (then 6 and 8 get leases at their parents' shard end).
//!
//! ```
//! use kcl_core::kinesis::{HashKeyRange, SequenceNumber, SequenceNumberRange, Shard, ShardId};
//! use kcl_core::lease::{ExtendedSequenceNumber, Lease};
//! use kcl_core::lineage::{InitialPosition, leases_to_create};
//!
//! let shard = |id: u64, parent: Option<u64>, closed: bool| Shard {
//!     shard_id: ShardId::from_index(id),
//!     parent_shard_id: parent.map(ShardId::from_index),
//!     adjacent_parent_shard_id: None,
//!     hash_key_range: HashKeyRange::split_evenly(1)[0],
//!     sequence_number_range: SequenceNumberRange {
//!         starting_sequence_number: SequenceNumber::from_u128(id as u128),
//!         ending_sequence_number: closed.then(|| SequenceNumber::from_u128(100)),
//!     },
//! };
//! // Shard 0 was split into 1 and 2; nothing is leased yet.
//! let shards = [shard(0, None, true), shard(1, Some(0), false), shard(2, Some(0), false)];
//! let created = leases_to_create(&shards, &[], InitialPosition::TrimHorizon);
//! assert_eq!(created.len(), 1);
//! assert_eq!(created[0].lease_key, ShardId::from_index(0));
//! assert_eq!(created[0].checkpoint, ExtendedSequenceNumber::TRIM_HORIZON);
//! ```

use crate::kinesis::{ChildShard, EpochMillis, Shard, ShardId, StartingPosition};
use crate::lease::{CheckpointValue, ExtendedSequenceNumber, Lease};
use std::collections::{HashMap, HashSet};

/// Where an application starts reading shards it has never processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialPosition {
    /// Only records put from now on.
    Latest,
    /// The oldest retained records.
    TrimHorizon,
    /// Records that arrived at or after this time.
    AtTimestamp(EpochMillis),
}

impl InitialPosition {
    /// The checkpoint a new lease starts with at this position.
    pub fn checkpoint(&self) -> ExtendedSequenceNumber {
        match self {
            InitialPosition::Latest => ExtendedSequenceNumber::LATEST,
            InitialPosition::TrimHorizon => ExtendedSequenceNumber::TRIM_HORIZON,
            InitialPosition::AtTimestamp(_) => ExtendedSequenceNumber::AT_TIMESTAMP,
        }
    }

    /// Where to start reading a lease whose checkpoint is a sentinel, or after its sequence
    /// number. `None` for `SHARD_END` (nothing left to read).
    pub fn starting_position(
        &self,
        checkpoint: &ExtendedSequenceNumber,
    ) -> Option<StartingPosition> {
        Some(match checkpoint.value {
            CheckpointValue::TrimHorizon => StartingPosition::TrimHorizon,
            CheckpointValue::Latest => StartingPosition::Latest,
            CheckpointValue::AtTimestamp => match self {
                InitialPosition::AtTimestamp(at) => StartingPosition::AtTimestamp(*at),
                // An AT_TIMESTAMP checkpoint under another initial position: read everything.
                _ => StartingPosition::TrimHorizon,
            },
            // Any sequence checkpoint may sit inside a KPL-aggregated record — also at
            // sub-sequence 0, its first user record — so re-read that record (as the Java KCL
            // does) and let the reader drop the user records at or below the checkpoint.
            CheckpointValue::Sequence(sequence) => StartingPosition::AtSequenceNumber(sequence),
            CheckpointValue::ShardEnd => return None,
        })
    }
}

/// A new lease for `shard` with its parents and hash range, at `checkpoint`.
pub fn lease_for_shard(shard: &Shard, checkpoint: ExtendedSequenceNumber) -> Lease {
    let mut lease = Lease::new(shard.shard_id.clone(), checkpoint);
    lease.parent_shard_ids = shard.parent_shard_ids().cloned().collect();
    lease.hash_key_range = Some(shard.hash_key_range);
    lease
}

/// The walk over the shard graph of one sync (the Java KCL's memoization context).
struct Sync<'a> {
    shards: HashMap<&'a ShardId, &'a Shard>,
    leased: HashSet<&'a ShardId>,
    initial: InitialPosition,
    is_descendant: HashMap<ShardId, bool>,
    should_create: HashSet<ShardId>,
    new_leases: HashMap<ShardId, Lease>,
}

impl<'a> Sync<'a> {
    /// The shard's parents that are in the shard list.
    fn parents(&self, shard: &'a Shard) -> Vec<&'a ShardId> {
        shard
            .parent_shard_ids()
            .filter_map(|parent| self.shards.get_key_value(parent).map(|(key, _)| *key))
            .collect()
    }

    /// Whether `shard_id` descends from a leased shard (or from one that will get a lease),
    /// creating leases for the first ancestor level that still needs processing.
    fn check_descendant(&mut self, shard_id: &'a ShardId) -> bool {
        if let Some(known) = self.is_descendant.get(shard_id) {
            return *known;
        }
        let Some(shard) = self.shards.get(shard_id).copied() else {
            return false;
        };
        if self.leased.contains(shard_id) {
            self.is_descendant.insert(shard_id.clone(), true);
            return true;
        }
        let parents = self.parents(shard);
        let mut descendant_parents = HashSet::new();
        for parent in &parents {
            let parent_is_descendant = self.check_descendant(parent);
            if parent_is_descendant || self.should_create.contains(*parent) {
                descendant_parents.insert((*parent).clone());
            }
        }
        let is_descendant = !descendant_parents.is_empty();
        if is_descendant {
            for parent in &parents {
                self.create_parent_lease_if_needed(parent, &descendant_parents);
            }
        } else if !matches!(self.initial, InitialPosition::Latest) {
            // Not a descendant, but the application wants everything retained (or everything
            // from a time): this shard's lineage is processed from its oldest level.
            self.should_create.insert(shard_id.clone());
        }
        self.is_descendant.insert(shard_id.clone(), is_descendant);
        is_descendant
    }

    fn create_parent_lease_if_needed(
        &mut self,
        parent: &'a ShardId,
        descendant_parents: &HashSet<ShardId>,
    ) {
        if self.leased.contains(parent) {
            return;
        }
        let parent_is_descendant = descendant_parents.contains(parent);
        if !self.new_leases.contains_key(parent) {
            // Create it if it was marked for creation (TRIM_HORIZON / AT_TIMESTAMP), or if it is
            // the oldest shard of this lineage without a leased ancestor (its sibling parent is
            // covered by the lease table).
            let marked_for_creation = self.should_create.contains(parent);
            if !marked_for_creation && parent_is_descendant {
                return;
            }
            let Some(shard) = self.shards.get(parent).copied() else {
                return;
            };
            self.new_leases.insert(
                parent.clone(),
                lease_for_shard(shard, self.initial.checkpoint()),
            );
        }
        let checkpoint =
            if parent_is_descendant && !matches!(self.initial, InitialPosition::AtTimestamp(_)) {
                ExtendedSequenceNumber::TRIM_HORIZON
            } else {
                self.initial.checkpoint()
            };
        if let Some(lease) = self.new_leases.get_mut(parent) {
            lease.checkpoint = checkpoint;
        }
    }
}

/// The leases to create so every shard of `shards` (the full `ListShards` answer) is processed
/// once, in lineage order, given the `existing` leases.
///
/// For each open shard without a lease, its ancestry is walked: if an ancestor is leased (or,
/// for TRIM_HORIZON / AT_TIMESTAMP, has no parents in the list), leases are created only at the
/// first ancestor level that still needs processing — descendants start at TRIM_HORIZON
/// (AT_TIMESTAMP when that is the initial position) and get their leases later, at their
/// parents' shard end. An open shard with no such ancestry gets a lease at `initial`. On an
/// empty table this gives exactly the shards at the initial position: the open shards for
/// LATEST, the oldest retained level for TRIM_HORIZON and AT_TIMESTAMP.
///
/// The result is sorted by starting sequence number (then shard id), so creating the leases in
/// order recovers gracefully from a crash half-way.
pub fn leases_to_create(
    shards: &[Shard],
    existing: &[Lease],
    initial: InitialPosition,
) -> Vec<Lease> {
    let mut sync = Sync {
        shards: shards
            .iter()
            .map(|shard| (&shard.shard_id, shard))
            .collect(),
        leased: existing.iter().map(|lease| &lease.lease_key).collect(),
        initial,
        is_descendant: HashMap::new(),
        should_create: HashSet::new(),
        new_leases: HashMap::new(),
    };
    let open_shards = shards.iter().filter(|shard| !shard.is_closed());
    for shard in open_shards {
        if sync.leased.contains(&shard.shard_id) {
            continue;
        }
        let is_descendant = sync.check_descendant(&shard.shard_id);
        if !is_descendant {
            sync.new_leases.insert(
                shard.shard_id.clone(),
                lease_for_shard(shard, initial.checkpoint()),
            );
        }
    }
    let starting = |lease: &Lease| {
        sync.shards
            .get(&lease.lease_key)
            .map(|shard| shard.sequence_number_range.starting_sequence_number)
    };
    let mut created: Vec<Lease> = sync.new_leases.values().cloned().collect();
    created.sort_by(|a, b| {
        starting(a)
            .cmp(&starting(b))
            .then_with(|| a.lease_key.cmp(&b.lease_key))
    });
    created
}

/// Why a child shard reported at a parent's end is inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineageError {
    /// The child does not name the ended shard among its parents.
    #[error("child shard {child} does not list {parent} among its parent shards")]
    NotAChildOf {
        /// The child shard.
        child: ShardId,
        /// The shard that ended.
        parent: ShardId,
    },
    /// A merge child's other parent has no lease yet (it descends from a shard still being
    /// processed): creating the child's lease now would let the child start before that parent
    /// is processed. Retry later, keeping the lease; do not checkpoint SHARD_END yet.
    #[error(
        "child shard {child} of a merge waits for a lease on its other parent {missing_parent}; retry later"
    )]
    ParentLeaseMissing {
        /// The merge child.
        child: ShardId,
        /// The parent without a lease.
        missing_parent: ShardId,
    },
    /// A child must have one parent (split) or two (merge).
    #[error("child shard {child} has {count} parent shards; must have 1 (split) or 2 (merge)")]
    WrongParentCount {
        /// The child shard.
        child: ShardId,
        /// How many parents it lists.
        count: usize,
    },
}

/// The leases to create (if absent) for the children reported when `parent` reached its end.
///
/// Children start at TRIM_HORIZON (as in the Java KCL), carry their parents and hash range. The
/// caller creates them with `create_lease_if_absent` (a merge child is reported by both parents),
/// then records the children on the parent's lease with `update_lineage`. Prefer
/// [`child_leases_to_create`], which also applies the merge rule against the lease table.
pub fn child_leases_at_shard_end(
    parent: &ShardId,
    children: &[ChildShard],
) -> Result<Vec<Lease>, LineageError> {
    children
        .iter()
        .map(|child| {
            if !(1..=2).contains(&child.parent_shards.len()) {
                return Err(LineageError::WrongParentCount {
                    child: child.shard_id.clone(),
                    count: child.parent_shards.len(),
                });
            }
            if !child.parent_shards.contains(parent) {
                return Err(LineageError::NotAChildOf {
                    child: child.shard_id.clone(),
                    parent: parent.clone(),
                });
            }
            let mut lease =
                Lease::new(child.shard_id.clone(), ExtendedSequenceNumber::TRIM_HORIZON);
            lease.parent_shard_ids = child.parent_shards.clone();
            lease.hash_key_range = Some(child.hash_key_range);
            Ok(lease)
        })
        .collect()
}

/// The child leases to create when `parent` reached its end, given the `existing` leases: the
/// Java KCL's shard-end rule. Children that already have a lease are left out.
///
/// A merge child is created only when both its parents have leases (or neither has):
/// otherwise [`LineageError::ParentLeaseMissing`] — the other parent descends from a shard still
/// being processed and gets its lease when that shard ends; the caller retries later and stores
/// SHARD_END only after the children's leases exist.
pub fn child_leases_to_create(
    parent: &ShardId,
    children: &[ChildShard],
    existing: &[Lease],
) -> Result<Vec<Lease>, LineageError> {
    let leased = |shard: &ShardId| existing.iter().any(|lease| &lease.lease_key == shard);
    let leases = child_leases_at_shard_end(parent, children)?;
    for child in children
        .iter()
        .filter(|child| child.parent_shards.len() == 2)
    {
        let missing: Vec<&ShardId> = child
            .parent_shards
            .iter()
            .filter(|candidate| !leased(candidate))
            .collect();
        if let [missing_parent] = missing.as_slice() {
            return Err(LineageError::ParentLeaseMissing {
                child: child.shard_id.clone(),
                missing_parent: (*missing_parent).clone(),
            });
        }
    }
    Ok(leases
        .into_iter()
        .filter(|lease| !leased(&lease.lease_key))
        .collect())
}

/// Whether `lease` may be processed: every parent lease in `all_leases` is at SHARD_END
/// (an absent parent lease — never created, or cleaned up — does not block).
pub fn is_ready_to_process(lease: &Lease, all_leases: &[Lease]) -> bool {
    lease.parent_shard_ids.iter().all(|parent| {
        all_leases
            .iter()
            .find(|candidate| &candidate.lease_key == parent)
            .is_none_or(Lease::is_finished)
    })
}

/// Whether a lease has started processing: its checkpoint moved past TRIM_HORIZON and
/// AT_TIMESTAMP (the Java KCL's rule for "child shard started").
pub fn has_started(lease: &Lease) -> bool {
    !matches!(
        lease.checkpoint.value,
        CheckpointValue::TrimHorizon | CheckpointValue::AtTimestamp
    )
}

/// Finished leases that may be deleted: at SHARD_END, with known children that all have leases
/// that have started, and with none of their own parents' leases left in the table.
pub fn cleanup_candidates(leases: &[Lease]) -> Vec<ShardId> {
    let by_key: HashMap<&ShardId, &Lease> = leases
        .iter()
        .map(|lease| (&lease.lease_key, lease))
        .collect();
    leases
        .iter()
        .filter(|lease| lease.is_finished())
        .filter(|lease| !lease.child_shard_ids.is_empty())
        .filter(|lease| {
            lease
                .child_shard_ids
                .iter()
                .all(|child| by_key.get(child).is_some_and(|child| has_started(child)))
        })
        .filter(|lease| {
            lease
                .parent_shard_ids
                .iter()
                .all(|parent| !by_key.contains_key(parent))
        })
        .map(|lease| lease.lease_key.clone())
        .collect()
}
