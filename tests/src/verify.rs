//! Verifies a fleet from what its `kcl worker --sink jsonl:...` files contain, what the producer
//! got acknowledged, and what the lease table showed while the fleet ran.
//!
//! The jsonl files carry no processing times or sessions, so the checks are stated so that they
//! need none:
//! - every acknowledged record is in some sink, at the shard and sequence number the broker
//!   acknowledged; nothing else is;
//! - per (worker file, shard) the sequence numbers increase, except where the shard changed
//!   owners (a new owner resumes from the last checkpoint, so a re-taken shard may restart lower);
//! - a record processed by two workers lies in the uncheckpointed window of a handover: above
//!   the checkpoint the shard had while the losing worker still owned it (where the lease
//!   watcher saw that handover), and always at the head or the tail of a worker's run of that
//!   shard (the previous owner's unchecked tail, or its own tail when it lost the shard) —
//!   never in the middle;
//! - with `allow_duplicates == false`, no record is processed twice at all;
//! - within one worker file, a child shard's first record comes after its parents' last records
//!   (the cross-worker check is done live by [`crate::fleet`] against the lease table).

use bytes::Bytes;
use kcl_core::kinesis::SequenceNumber;
use kcl_worker::cli::produce::ProducedRecord;
use kcl_worker::cli::sink::SinkRecord;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The records one worker process wrote.
#[derive(Debug, Clone, Default)]
pub struct SinkFile {
    /// The worker's id.
    pub worker_id: String,
    /// Its records, in file (processing) order.
    pub records: Vec<SinkRecord>,
    /// Incomplete lines (a kill during a write).
    pub torn_lines: usize,
}

/// A shard changing owner, seen in the lease table: `from` owned `shard_id` while its checkpoint
/// was (at most) `checkpoint` (`None`: a sentinel, nothing checkpointed yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    /// The shard.
    pub shard_id: String,
    /// The worker that lost or released it.
    pub from: String,
    /// The checkpoint last seen while `from` still owned it.
    pub checkpoint: Option<SequenceNumber>,
}

/// What a verification found.
#[derive(Debug, Clone, Default)]
pub struct FleetReport {
    /// Records acknowledged by the broker.
    pub produced: usize,
    /// Records in the sinks (with re-deliveries).
    pub processed: usize,
    /// Distinct records in the sinks.
    pub unique: usize,
    /// Re-deliveries.
    pub duplicates: usize,
    /// Incomplete lines in the sinks.
    pub torn_lines: usize,
    /// Every violation, described.
    pub errors: Vec<String>,
}

impl FleetReport {
    /// Whether no violation was found.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// A one-line summary.
    pub fn summary(&self) -> String {
        format!(
            "produced {}, processed {} ({} distinct, {} duplicates, {} torn lines), {} violations",
            self.produced,
            self.processed,
            self.unique,
            self.duplicates,
            self.torn_lines,
            self.errors.len()
        )
    }
}

const MAX_ERRORS: usize = 20;

fn push_error(report: &mut FleetReport, error: String) {
    if report.errors.len() < MAX_ERRORS {
        report.errors.push(error);
    } else if report.errors.len() == MAX_ERRORS {
        report.errors.push("... more violations omitted".to_owned());
    }
}

/// Checks the sinks against the produced records, the handovers and the shard lineage
/// (`parents`: child → its parents).
pub fn verify_sinks(
    produced: &[ProducedRecord],
    sinks: &[SinkFile],
    handovers: &[Handover],
    parents: &HashMap<String, Vec<String>>,
    allow_duplicates: bool,
) -> FleetReport {
    let mut report = FleetReport {
        produced: produced.len(),
        ..FleetReport::default()
    };
    let expected: HashMap<&Bytes, &ProducedRecord> = produced
        .iter()
        .map(|record| (&record.entry.data, record))
        .collect();
    // data → occurrences (worker, sequence)
    let mut occurrences: HashMap<Bytes, Vec<&str>> = HashMap::new();
    let mut positions: HashMap<Bytes, (String, SequenceNumber)> = HashMap::new();
    let handed_over: HashMap<&str, Vec<&Handover>> =
        handovers.iter().fold(HashMap::new(), |mut map, handover| {
            map.entry(handover.shard_id.as_str())
                .or_default()
                .push(handover);
            map
        });

    let mut workers_of_shard: HashMap<&str, HashSet<&str>> = HashMap::new();
    for sink in sinks {
        for record in &sink.records {
            workers_of_shard
                .entry(record.shard_id.as_str())
                .or_default()
                .insert(sink.worker_id.as_str());
        }
    }
    let changed_hands = |shard: &str| {
        handed_over.contains_key(shard)
            || workers_of_shard
                .get(shard)
                .is_some_and(|workers| workers.len() > 1)
    };

    for sink in sinks {
        report.torn_lines += sink.torn_lines;
        let mut last_by_shard: HashMap<&str, SequenceNumber> = HashMap::new();
        let mut first_index: HashMap<&str, usize> = HashMap::new();
        let mut last_index: HashMap<&str, usize> = HashMap::new();
        for (index, record) in sink.records.iter().enumerate() {
            report.processed += 1;
            let shard = record.shard_id.as_str();
            first_index.entry(shard).or_insert(index);
            last_index.insert(shard, index);
            let Some(data) = record.data_bytes().map(Bytes::from) else {
                push_error(
                    &mut report,
                    format!("{}: undecodable data {:?}", sink.worker_id, record.data),
                );
                continue;
            };
            let Ok(sequence) = record.sequence_number.parse::<SequenceNumber>() else {
                push_error(
                    &mut report,
                    format!(
                        "{}: bad sequence number {:?}",
                        sink.worker_id, record.sequence_number
                    ),
                );
                continue;
            };
            match expected.get(&data) {
                None => push_error(
                    &mut report,
                    format!(
                        "{}: processed a record never acknowledged: {:?}",
                        sink.worker_id,
                        String::from_utf8_lossy(&data)
                    ),
                ),
                Some(produced) => {
                    if produced.shard_id != record.shard_id
                        || produced.sequence_number != record.sequence_number
                    {
                        push_error(
                            &mut report,
                            format!(
                                "{}: record {:?} seen at {}/{}, acknowledged at {}/{}",
                                sink.worker_id,
                                String::from_utf8_lossy(&data),
                                record.shard_id,
                                record.sequence_number,
                                produced.shard_id,
                                produced.sequence_number
                            ),
                        );
                    }
                }
            }
            if let Some(last) = last_by_shard.get(shard)
                && sequence <= *last
                && !changed_hands(shard)
            {
                push_error(
                    &mut report,
                    format!(
                        "{}: shard {shard} went back from {last} to {sequence} though it never changed hands",
                        sink.worker_id
                    ),
                );
            }
            last_by_shard.insert(shard, sequence);
            occurrences
                .entry(data.clone())
                .or_default()
                .push(sink.worker_id.as_str());
            positions.insert(data, (record.shard_id.clone(), sequence));
        }
        // Children after parents within this worker's file.
        for (child, child_parents) in parents {
            let Some(&child_first) = first_index.get(child.as_str()) else {
                continue;
            };
            for parent in child_parents {
                if let Some(&parent_last) = last_index.get(parent.as_str())
                    && parent_last > child_first
                {
                    push_error(
                        &mut report,
                        format!(
                            "{}: child {child} processed before its parent {parent} was done",
                            sink.worker_id
                        ),
                    );
                }
            }
        }
    }

    report.unique = occurrences.len();
    report.duplicates = report.processed - report.unique;
    for record in produced {
        if !occurrences.contains_key(&record.entry.data) {
            push_error(
                &mut report,
                format!(
                    "lost: {:?} (shard {}, sequence {})",
                    String::from_utf8_lossy(&record.entry.data),
                    record.shard_id,
                    record.sequence_number
                ),
            );
        }
    }
    if !allow_duplicates && report.duplicates > 0 {
        let error = format!("{} duplicates where none are allowed", report.duplicates);
        push_error(&mut report, error);
    }
    // Precise rule, where the watcher saw the handover: a record processed by several workers
    // lies above the checkpoint the shard had while one of them still owned it.
    let mut unexplained: BTreeMap<String, usize> = BTreeMap::new();
    for (data, workers) in &occurrences {
        if workers.len() < 2 {
            continue;
        }
        let Some((shard, sequence)) = positions.get(data) else {
            continue;
        };
        let observed: Vec<&&Handover> = handed_over
            .get(shard.as_str())
            .into_iter()
            .flatten()
            .filter(|handover| workers.contains(&handover.from.as_str()))
            .collect();
        if observed.is_empty() {
            continue;
        }
        let explained = observed.iter().any(|handover| {
            handover
                .checkpoint
                .is_none_or(|checkpoint| *sequence > checkpoint)
        });
        if !explained {
            *unexplained.entry(shard.clone()).or_default() += workers.len() - 1;
        }
    }
    for (shard, count) in unexplained {
        push_error(
            &mut report,
            format!(
                "shard {shard}: {count} duplicates outside any handover's uncheckpointed window"
            ),
        );
    }
    // Structural rule, always: within each run of a worker's records of a shard (a run ends
    // where the sequence goes back), re-delivered records can only be a head (the tail the
    // previous owner had not checkpointed) and a tail (what this worker had not checkpointed
    // when it lost the shard): the pattern is dup* unique* dup*.
    for sink in sinks {
        let mut runs: HashMap<&str, Vec<Vec<bool>>> = HashMap::new();
        let mut last: HashMap<&str, SequenceNumber> = HashMap::new();
        for record in &sink.records {
            let shard = record.shard_id.as_str();
            let Ok(sequence) = record.sequence_number.parse::<SequenceNumber>() else {
                continue;
            };
            let duplicated = record
                .data_bytes()
                .map(Bytes::from)
                .and_then(|data| occurrences.get(&data))
                .is_some_and(|workers| workers.len() > 1);
            let shard_runs = runs.entry(shard).or_default();
            let restarts = last.get(shard).is_none_or(|previous| sequence <= *previous);
            if restarts || shard_runs.is_empty() {
                shard_runs.push(Vec::new());
            }
            if let Some(run) = shard_runs.last_mut() {
                run.push(duplicated);
            }
            last.insert(shard, sequence);
        }
        for (shard, shard_runs) in runs {
            for run in shard_runs {
                let head = run.iter().take_while(|duplicated| **duplicated).count();
                let tail = run[head..]
                    .iter()
                    .rev()
                    .take_while(|duplicated| **duplicated)
                    .count();
                let middle = run.len() - head - tail;
                if run[head..head + middle]
                    .iter()
                    .any(|duplicated| *duplicated)
                {
                    push_error(
                        &mut report,
                        format!(
                            "{}: shard {shard} has re-delivered records in the middle of a run, not at a handover",
                            sink.worker_id
                        ),
                    );
                }
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcl_worker::cli::produce::ProduceEntry;

    fn produced(index: u64, shard: &str) -> ProducedRecord {
        ProducedRecord {
            entry: ProduceEntry {
                partition_key: format!("k{index}"),
                data: Bytes::from(format!("r{index}")),
            },
            shard_id: shard.to_owned(),
            sequence_number: (100 + index).to_string(),
        }
    }

    fn seen(record: &ProducedRecord, worker: &str) -> SinkRecord {
        SinkRecord::new(
            &record.shard_id,
            record.sequence_number.clone(),
            0,
            &record.entry.partition_key,
            &record.entry.data,
            0,
            worker,
        )
    }

    fn file(worker: &str, records: &[&ProducedRecord]) -> SinkFile {
        SinkFile {
            worker_id: worker.to_owned(),
            records: records.iter().map(|record| seen(record, worker)).collect(),
            torn_lines: 0,
        }
    }

    #[test]
    fn table_of_fleet_histories() {
        let r: Vec<_> = (0..6).map(|index| produced(index, "s0")).collect();
        let handover_after_2 = Handover {
            shard_id: "s0".into(),
            from: "a".into(),
            checkpoint: Some(SequenceNumber::from_u128(102)),
        };
        // (name, sinks, handovers, duplicates allowed, expected to pass)
        type Case = (&'static str, Vec<SinkFile>, Vec<Handover>, bool, bool);
        let cases: Vec<Case> = vec![
            (
                "clean",
                vec![file("a", &[&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]])],
                vec![],
                false,
                true,
            ),
            (
                "lost record",
                vec![file("a", &[&r[0], &r[1], &r[2], &r[3], &r[4]])],
                vec![],
                true,
                false,
            ),
            (
                "redelivery above the checkpoint after a handover",
                vec![
                    file("a", &[&r[0], &r[1], &r[2], &r[3]]),
                    file("b", &[&r[3], &r[4], &r[5]]),
                ],
                vec![handover_after_2.clone()],
                true,
                true,
            ),
            (
                "redelivery of checkpointed records",
                vec![
                    file("a", &[&r[0], &r[1], &r[2], &r[3]]),
                    file("b", &[&r[1], &r[2], &r[3], &r[4], &r[5]]),
                ],
                vec![handover_after_2.clone()],
                true,
                false,
            ),
            (
                "duplicates not allowed",
                vec![
                    file("a", &[&r[0], &r[1], &r[2], &r[3]]),
                    file("b", &[&r[3], &r[4], &r[5]]),
                ],
                vec![handover_after_2],
                false,
                false,
            ),
            (
                "a re-delivered record in the middle of a run",
                vec![
                    file("a", &[&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]),
                    file("b", &[&r[2]]),
                ],
                vec![],
                true,
                false,
            ),
            (
                "an unobserved handover: the old owner's tail is the new owner's head",
                vec![
                    file("a", &[&r[0], &r[1], &r[2], &r[3]]),
                    file("b", &[&r[2], &r[3], &r[4], &r[5]]),
                ],
                vec![],
                true,
                true,
            ),
            (
                "out of order without handover",
                vec![file("a", &[&r[0], &r[2], &r[1], &r[3], &r[4], &r[5]])],
                vec![],
                true,
                false,
            ),
        ];
        for (name, sinks, handovers, allow_duplicates, ok) in cases {
            let report = verify_sinks(&r, &sinks, &handovers, &HashMap::new(), allow_duplicates);
            assert_eq!(report.is_ok(), ok, "{name}: {:?}", report.errors);
        }
    }

    #[test]
    fn a_child_before_its_parent_in_one_file_is_caught() {
        let parent = produced(0, "p");
        let child = produced(1, "c");
        let parents = HashMap::from([("c".to_owned(), vec!["p".to_owned()])]);
        let good = verify_sinks(
            &[parent.clone(), child.clone()],
            &[file("a", &[&parent, &child])],
            &[],
            &parents,
            false,
        );
        assert!(good.is_ok(), "{:?}", good.errors);
        let bad = verify_sinks(
            &[parent.clone(), child.clone()],
            &[file("a", &[&child, &parent])],
            &[],
            &parents,
            false,
        );
        assert!(!bad.is_ok());
    }
}
