//! Checks what processors observed against what was produced. Input-agnostic: feed it
//! observations from in-process recording processors or records read back from sinks.

use bytes::Bytes;
use kcl_core::kinesis::ShardId;
use kcl_core::lease::ExtendedSequenceNumber;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A record as a producer put it: the producer's own [`ProduceEntry`](crate::producer::ProduceEntry)
/// (partition key and payload). Records are identified by `data` (make payloads unique).
pub use crate::producer::ProduceEntry as ProducedRecord;

/// What a processor saw or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObservationKind {
    /// `initialize` with the start position.
    Initialized {
        /// The checkpoint processing resumed from.
        start: ExtendedSequenceNumber,
        /// The lease counter of the acquisition: orders the sessions of a shard.
        lease_counter: u64,
    },
    /// A record handed to `process_records` (and processed successfully).
    Processed {
        /// Its partition key.
        partition_key: String,
        /// Its payload.
        data: Bytes,
        /// Its position.
        position: ExtendedSequenceNumber,
    },
    /// A checkpoint about to be asked of the checkpointer (recorded before the call, so the
    /// validator knows when the write was issued, not only when its answer arrived).
    CheckpointRequested {
        /// The position asked for.
        position: ExtendedSequenceNumber,
    },
    /// A checkpoint attempt and whether the store accepted it.
    Checkpointed {
        /// The position asked for.
        position: ExtendedSequenceNumber,
        /// Whether it was stored.
        accepted: bool,
    },
    /// `shard_ended` (after a successful checkpoint at SHARD_END).
    ShardEnded,
    /// `lease_lost`.
    LeaseLost,
    /// `shutdown_requested`.
    ShutdownRequested,
}

/// One observation, in global order (the order of the list given to the validator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The worker.
    pub worker_id: String,
    /// The shard.
    pub shard_id: ShardId,
    /// One id per processor instance (a lease acquisition).
    pub session: u64,
    /// What happened.
    pub kind: ObservationKind,
}

/// What to allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationRules {
    /// Whether a record may be processed more than once (after a crash or pause it may, but
    /// only above the last checkpoint).
    pub allow_duplicates: bool,
}

impl Default for ValidationRules {
    fn default() -> Self {
        ValidationRules {
            allow_duplicates: true,
        }
    }
}

/// The outcome of a validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationReport {
    /// Every violation found, described.
    pub errors: Vec<String>,
    /// Distinct records processed.
    pub unique_processed: usize,
    /// Extra deliveries (processings beyond the first).
    pub duplicates: usize,
    /// Produced records never processed (each is also one of the `errors`).
    pub lost: usize,
}

impl ValidationReport {
    /// Whether no violation was found.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Validates observations.
///
/// Checks: every produced record was processed; within a session records come in increasing
/// position and above the session's start; per partition key, records were first processed in
/// produced order (across parent → child shards); a child shard starts only after each of its
/// parents (that anyone processed) ended — from the request of an accepted or unanswered `SHARD_END`
/// checkpoint, since a child may start as soon as that write commits; no checkpoint is accepted from a session after a later
/// session of the same shard started (no stale checkpoint lands; a checkpoint counts from its
/// [`CheckpointRequested`](ObservationKind::CheckpointRequested) when one was recorded, since
/// only a write issued after the later session started is provably stale, and repeating the
/// session's last checkpoint writes nothing); a later session starts at or
/// after the previous sessions' accepted checkpoints (duplicates only after the last checkpoint);
/// no duplicates at all unless allowed.
pub fn validate(
    produced: &[ProducedRecord],
    observations: &[Observation],
    parents: &HashMap<ShardId, Vec<ShardId>>,
    rules: ValidationRules,
) -> ValidationReport {
    let mut report = ValidationReport::default();
    let mut first_processed: HashMap<&Bytes, usize> = HashMap::new();
    let mut processed_count: HashMap<&Bytes, usize> = HashMap::new();
    let mut session_last: HashMap<u64, ExtendedSequenceNumber> = HashMap::new();
    let mut session_start: HashMap<u64, (usize, ExtendedSequenceNumber)> = HashMap::new();
    let mut shard_sessions: BTreeMap<&ShardId, Vec<u64>> = BTreeMap::new();
    let mut accepted_checkpoints: HashMap<u64, Vec<(usize, ExtendedSequenceNumber)>> =
        HashMap::new();
    // When each session last asked for a checkpoint: an accepted checkpoint counts from its
    // request, because the write may commit before a later session's take even though its answer
    // arrives after that session started.
    let mut checkpoint_requested_at: HashMap<u64, usize> = HashMap::new();
    // A shard's end counts from the request of its SHARD_END checkpoint: once that write
    // commits, a child may start, possibly before the parent's processor hears the answer (or
    // never hears it, when its worker is killed in between). Requests still unanswered at the
    // end of the log may have committed, so they count too; a refused one does not.
    let mut shard_end_requested_at: HashMap<u64, usize> = HashMap::new();
    let mut session_shard: HashMap<u64, &ShardId> = HashMap::new();
    // Sessions of a shard are ordered by their acquisition's lease counter, not by when their
    // processor started: under load a consumer of an older acquisition may start its processor
    // after the newer owner's (its checkpoints are then refused).
    let mut session_counter: HashMap<u64, u64> = HashMap::new();
    let mut first_start: HashMap<&ShardId, usize> = HashMap::new();
    let mut first_end: HashMap<&ShardId, usize> = HashMap::new();
    let mut touched: HashSet<&ShardId> = HashSet::new();

    for (index, observation) in observations.iter().enumerate() {
        let session = observation.session;
        touched.insert(&observation.shard_id);
        match &observation.kind {
            ObservationKind::Initialized {
                start,
                lease_counter,
            } => {
                session_start.insert(session, (index, *start));
                session_counter.insert(session, *lease_counter);
                shard_sessions
                    .entry(&observation.shard_id)
                    .or_default()
                    .push(session);
                first_start.entry(&observation.shard_id).or_insert(index);
            }
            ObservationKind::Processed { data, position, .. } => {
                first_processed.entry(data).or_insert(index);
                *processed_count.entry(data).or_insert(0) += 1;
                if let Some(last) = session_last.get(&session)
                    && position <= last
                {
                    report.errors.push(format!(
                        "shard {} session {session}: record {position} delivered after {last} (out of order)",
                        observation.shard_id
                    ));
                }
                if let Some((_, start)) = session_start.get(&session)
                    && position <= start
                {
                    report.errors.push(format!(
                        "shard {} session {session}: record {position} at or below the start checkpoint {start}",
                        observation.shard_id
                    ));
                }
                session_last.insert(session, *position);
            }
            ObservationKind::CheckpointRequested { position } => {
                checkpoint_requested_at.insert(session, index);
                if *position == ExtendedSequenceNumber::SHARD_END {
                    shard_end_requested_at.insert(session, index);
                    session_shard.insert(session, &observation.shard_id);
                }
            }
            ObservationKind::Checkpointed { position, accepted } => {
                let requested_at = checkpoint_requested_at.remove(&session).unwrap_or(index);
                if *position == ExtendedSequenceNumber::SHARD_END {
                    shard_end_requested_at.remove(&session);
                    if *accepted {
                        note_end(&mut first_end, &observation.shard_id, requested_at);
                    }
                }
                let accepted_before = accepted_checkpoints.entry(session).or_default();
                // Repeating the session's last checkpoint writes nothing (as in the Java KCL),
                // so it succeeds even when the lease has just moved: it is not a stale write.
                let repeated = accepted_before.last().map(|(_, last)| last) == Some(position);
                if *accepted && !repeated {
                    accepted_before.push((requested_at, *position));
                }
            }
            ObservationKind::ShardEnded => {
                note_end(&mut first_end, &observation.shard_id, index);
            }
            _ => {}
        }
    }
    for (session, requested_at) in shard_end_requested_at {
        if let Some(shard_id) = session_shard.get(&session) {
            note_end(&mut first_end, shard_id, requested_at);
        }
    }

    for record in produced {
        if !first_processed.contains_key(&record.data) {
            report.lost += 1;
            report.errors.push(format!(
                "record {:?} (partition key {}) was never processed",
                String::from_utf8_lossy(&record.data),
                record.partition_key
            ));
        }
    }
    report.unique_processed = first_processed.len();
    report.duplicates = processed_count.values().map(|count| count - 1).sum();
    if !rules.allow_duplicates && report.duplicates > 0 {
        report.errors.push(format!(
            "{} duplicate deliveries where none are allowed",
            report.duplicates
        ));
    }

    // Per partition key: first processing follows produced order.
    let mut by_key: HashMap<&str, Vec<&ProducedRecord>> = HashMap::new();
    for record in produced {
        by_key
            .entry(&record.partition_key)
            .or_default()
            .push(record);
    }
    for (key, records) in by_key {
        let mut previous: Option<(usize, &Bytes)> = None;
        for record in records {
            let Some(&index) = first_processed.get(&record.data) else {
                continue;
            };
            if let Some((previous_index, previous_data)) = previous
                && index < previous_index
            {
                report.errors.push(format!(
                    "partition key {key}: {:?} processed before {:?} though produced after it",
                    String::from_utf8_lossy(&record.data),
                    String::from_utf8_lossy(previous_data)
                ));
            }
            previous = Some((index, &record.data));
        }
    }

    // Children after parents.
    for (child, child_parents) in parents {
        let Some(&child_start) = first_start.get(child) else {
            continue;
        };
        for parent in child_parents {
            if !touched.contains(parent) {
                continue;
            }
            match first_end.get(parent) {
                Some(&end) if end < child_start => {}
                _ => report.errors.push(format!(
                    "child shard {child} started before parent {parent} ended"
                )),
            }
        }
    }

    // Checkpoints across sessions of a shard, in acquisition order (stable for equal counters).
    for (shard_id, mut sessions) in shard_sessions {
        sessions.sort_by_key(|session| session_counter.get(session).copied().unwrap_or(0));
        for (position, session) in sessions.iter().enumerate() {
            let Some(&(started_at, start)) = session_start.get(session) else {
                continue;
            };
            for earlier in &sessions[..position] {
                for &(at, checkpoint) in accepted_checkpoints.get(earlier).into_iter().flatten() {
                    if at > started_at {
                        report.errors.push(format!(
                            "shard {shard_id}: stale checkpoint {checkpoint} of session {earlier} accepted after session {session} started"
                        ));
                    } else if checkpoint > start {
                        report.errors.push(format!(
                            "shard {shard_id}: session {session} started at {start}, below the accepted checkpoint {checkpoint} of session {earlier}"
                        ));
                    }
                }
            }
        }
    }
    report
}

/// Records that `shard_id` may have ended at `index`, keeping the earliest such index.
fn note_end<'a>(first_end: &mut HashMap<&'a ShardId, usize>, shard_id: &'a ShardId, index: usize) {
    let end = first_end.entry(shard_id).or_insert(index);
    *end = (*end).min(index);
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcl_core::kinesis::SequenceNumber;

    fn pos(n: u128) -> ExtendedSequenceNumber {
        ExtendedSequenceNumber::new(SequenceNumber::from_u128(n), 0)
    }

    fn obs(shard: u64, session: u64, kind: ObservationKind) -> Observation {
        Observation {
            worker_id: "w".to_owned(),
            shard_id: ShardId::from_index(shard),
            session,
            kind,
        }
    }

    fn processed(shard: u64, session: u64, n: u128, key: &str) -> Observation {
        obs(
            shard,
            session,
            ObservationKind::Processed {
                partition_key: key.to_owned(),
                data: Bytes::from(format!("r{n}")),
                position: pos(n),
            },
        )
    }

    fn produced(n: u128, key: &str) -> ProducedRecord {
        ProducedRecord {
            partition_key: key.to_owned(),
            data: Bytes::from(format!("r{n}")),
        }
    }

    /// A session starting at `at`; its lease counter is its session number (acquisition order
    /// = start order).
    fn start(shard: u64, session: u64, at: ExtendedSequenceNumber) -> Observation {
        start_acquired(shard, session, at, session)
    }

    fn start_acquired(
        shard: u64,
        session: u64,
        at: ExtendedSequenceNumber,
        lease_counter: u64,
    ) -> Observation {
        obs(
            shard,
            session,
            ObservationKind::Initialized {
                start: at,
                lease_counter,
            },
        )
    }

    fn checkpoint_requested(shard: u64, session: u64, n: u128) -> Observation {
        obs(
            shard,
            session,
            ObservationKind::CheckpointRequested { position: pos(n) },
        )
    }

    fn checkpoint(shard: u64, session: u64, n: u128, accepted: bool) -> Observation {
        obs(
            shard,
            session,
            ObservationKind::Checkpointed {
                position: pos(n),
                accepted,
            },
        )
    }

    #[test]
    fn table_of_histories() {
        let th = ExtendedSequenceNumber::TRIM_HORIZON;
        type Case = (
            &'static str,
            Vec<ProducedRecord>,
            Vec<Observation>,
            bool,
            usize,
        );
        let cases: Vec<Case> = vec![
            (
                "clean run",
                vec![produced(1, "a"), produced(2, "a")],
                vec![
                    start(0, 1, th),
                    processed(0, 1, 1, "a"),
                    processed(0, 1, 2, "a"),
                    checkpoint(0, 1, 2, true),
                ],
                false,
                0,
            ),
            (
                "missing record",
                vec![produced(1, "a"), produced(2, "a")],
                vec![start(0, 1, th), processed(0, 1, 1, "a")],
                true,
                1,
            ),
            (
                "out of order",
                vec![produced(1, "a"), produced(2, "a")],
                vec![
                    start(0, 1, th),
                    processed(0, 1, 2, "a"),
                    processed(0, 1, 1, "a"),
                ],
                true,
                2,
            ),
            (
                "duplicate after last checkpoint is fine",
                vec![produced(1, "a"), produced(2, "a")],
                vec![
                    start(0, 1, th),
                    processed(0, 1, 1, "a"),
                    checkpoint(0, 1, 1, true),
                    processed(0, 1, 2, "a"),
                    start(0, 2, pos(1)),
                    processed(0, 2, 2, "a"),
                ],
                true,
                0,
            ),
            (
                "duplicates forbidden",
                vec![produced(1, "a")],
                vec![
                    start(0, 1, th),
                    processed(0, 1, 1, "a"),
                    start(0, 2, th),
                    processed(0, 2, 1, "a"),
                ],
                false,
                1,
            ),
            (
                "restart below the last checkpoint",
                vec![produced(1, "a"), produced(2, "a")],
                vec![
                    start(0, 1, th),
                    processed(0, 1, 1, "a"),
                    processed(0, 1, 2, "a"),
                    checkpoint(0, 1, 2, true),
                    start(0, 2, pos(1)),
                    processed(0, 2, 2, "a"),
                ],
                true,
                1,
            ),
            (
                "stale checkpoint accepted",
                vec![produced(1, "a")],
                vec![
                    start(0, 1, th),
                    processed(0, 1, 1, "a"),
                    start(0, 2, th),
                    checkpoint(0, 1, 1, true),
                    processed(0, 2, 1, "a"),
                ],
                true,
                1,
            ),
            (
                "checkpoint issued before the next session started, answered after: not stale",
                vec![produced(1, "a")],
                vec![
                    start(0, 1, th),
                    processed(0, 1, 1, "a"),
                    checkpoint_requested(0, 1, 1),
                    start(0, 2, pos(1)),
                    checkpoint(0, 1, 1, true),
                ],
                false,
                0,
            ),
            (
                "checkpoint issued after the next session started and accepted: stale",
                vec![produced(1, "a")],
                vec![
                    start(0, 1, th),
                    processed(0, 1, 1, "a"),
                    start(0, 2, th),
                    checkpoint_requested(0, 1, 1),
                    checkpoint(0, 1, 1, true),
                    processed(0, 2, 1, "a"),
                ],
                true,
                1,
            ),
            (
                "the last checkpoint repeated after the next session started writes nothing",
                vec![produced(1, "a")],
                vec![
                    start(0, 1, th),
                    processed(0, 1, 1, "a"),
                    checkpoint(0, 1, 1, true),
                    start(0, 2, pos(1)),
                    checkpoint_requested(0, 1, 1),
                    checkpoint(0, 1, 1, true),
                ],
                false,
                0,
            ),
            (
                "an older acquisition's processor starting late is not the later session",
                vec![produced(1, "a")],
                vec![
                    start_acquired(0, 3, th, 2),
                    start_acquired(0, 4, th, 1),
                    processed(0, 4, 1, "a"),
                    checkpoint_requested(0, 4, 1),
                    checkpoint(0, 4, 1, false),
                    processed(0, 3, 1, "a"),
                    checkpoint_requested(0, 3, 1),
                    checkpoint(0, 3, 1, true),
                ],
                true,
                0,
            ),
            (
                "a newer acquisition starting later makes the older one's checkpoint stale",
                vec![produced(1, "a")],
                vec![
                    start_acquired(0, 3, th, 1),
                    start_acquired(0, 4, th, 2),
                    processed(0, 3, 1, "a"),
                    checkpoint_requested(0, 3, 1),
                    checkpoint(0, 3, 1, true),
                    processed(0, 4, 1, "a"),
                ],
                true,
                1,
            ),
            (
                "stale checkpoint rejected is fine",
                vec![produced(1, "a")],
                vec![
                    start(0, 1, th),
                    processed(0, 1, 1, "a"),
                    start(0, 2, th),
                    checkpoint(0, 1, 1, false),
                    processed(0, 2, 1, "a"),
                ],
                true,
                0,
            ),
        ];
        for (name, produced, observations, allow_duplicates, expected_errors) in cases {
            let report = validate(
                &produced,
                &observations,
                &HashMap::new(),
                ValidationRules { allow_duplicates },
            );
            assert_eq!(
                report.errors.len(),
                expected_errors,
                "{name}: {:?}",
                report.errors
            );
        }
    }

    #[test]
    fn child_must_start_after_parent_ended() {
        let th = ExtendedSequenceNumber::TRIM_HORIZON;
        let parents = HashMap::from([(ShardId::from_index(1), vec![ShardId::from_index(0)])]);
        let produced = vec![produced(1, "a"), produced(5, "a")];
        let good = vec![
            start(0, 1, th),
            processed(0, 1, 1, "a"),
            obs(0, 1, ObservationKind::ShardEnded),
            start(1, 2, th),
            processed(1, 2, 5, "a"),
        ];
        assert!(validate(&produced, &good, &parents, ValidationRules::default()).is_ok());
        let bad = vec![
            start(0, 1, th),
            start(1, 2, th),
            processed(1, 2, 5, "a"),
            processed(0, 1, 1, "a"),
            obs(0, 1, ObservationKind::ShardEnded),
        ];
        let report = validate(&produced, &bad, &parents, ValidationRules::default());
        // Child before parent, and key order broken across parent → child.
        assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
    }

    #[test]
    fn a_parent_ends_when_its_shard_end_checkpoint_is_requested() {
        let th = ExtendedSequenceNumber::TRIM_HORIZON;
        let end = ExtendedSequenceNumber::SHARD_END;
        let parents = HashMap::from([(ShardId::from_index(1), vec![ShardId::from_index(0)])]);
        let produced = vec![produced(1, "a"), produced(5, "a")];
        let end_requested = obs(0, 1, ObservationKind::CheckpointRequested { position: end });
        let end_answered = |accepted| {
            obs(
                0,
                1,
                ObservationKind::Checkpointed {
                    position: end,
                    accepted,
                },
            )
        };
        let head = || vec![start(0, 1, th), processed(0, 1, 1, "a")];
        let child = || vec![start(1, 2, th), processed(1, 2, 5, "a")];
        type Case = (&'static str, Vec<Observation>, usize);
        let cases: Vec<Case> = vec![
            (
                "the child starts between the committed write and its answer",
                [
                    head(),
                    vec![end_requested.clone()],
                    child(),
                    vec![end_answered(true), obs(0, 1, ObservationKind::ShardEnded)],
                ]
                .concat(),
                0,
            ),
            (
                "the parent's worker is killed before the answer arrives",
                [head(), vec![end_requested.clone()], child()].concat(),
                0,
            ),
            (
                "the SHARD_END write was refused: the parent did not end",
                [
                    head(),
                    vec![end_requested.clone(), end_answered(false)],
                    child(),
                ]
                .concat(),
                1,
            ),
            (
                "the child starts before the SHARD_END checkpoint is requested",
                [
                    head(),
                    child(),
                    vec![end_requested.clone(), end_answered(true)],
                ]
                .concat(),
                1,
            ),
        ];
        for (name, observations, expected_errors) in cases {
            let report = validate(
                &produced,
                &observations,
                &parents,
                ValidationRules::default(),
            );
            assert_eq!(
                report.errors.len(),
                expected_errors,
                "{name}: {:?}",
                report.errors
            );
        }
    }
}
