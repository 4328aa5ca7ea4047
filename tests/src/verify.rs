//! Verifies a fleet from what its `kcl worker --sink jsonl:...` files contain, what the producer
//! got acknowledged, and what the lease table showed while the fleet ran.
//!
//! The jsonl files carry no processing times or sessions, so the checks are stated so that they
//! need none:
//! - every acknowledged record is in some sink, at the shard and sequence number the broker
//!   acknowledged; nothing else is;
//! - per (worker file, shard) the records are cut into acquisitions of the shard's lease (named in
//!   the lines, or inferred where the shard goes back or skips records): within one
//!   acquisition every record is the shard's next one, an acquisition starts right after the
//!   checkpoint it was taken at (where the line says), and a record delivered more than once is
//!   at the head or the tail of an acquisition (a handover, also from a worker to itself), never
//!   in the middle (the comment on `check_acquisitions` says why);
//! - a record processed by two workers lies above the checkpoint the shard had while the losing
//!   worker still owned it, where the lease watcher saw that handover;
//! - with `allow_duplicates == false`, no record is processed twice at all;
//! - within one worker file, a child shard's first record comes after its parents' last records
//!   (the cross-worker check is done live by [`crate::fleet`] against the lease table).

use bytes::Bytes;
use kcl::sink::{SinkAcquisition, SinkRecord};
use kcl_core::kinesis::SequenceNumber;
use kcl_core::lease::{CheckpointValue, ExtendedSequenceNumber};
use kcl_worker::producer::StoredRecord;
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
    produced: &[StoredRecord],
    sinks: &[SinkFile],
    handovers: &[Handover],
    parents: &HashMap<String, Vec<String>>,
    allow_duplicates: bool,
) -> FleetReport {
    let mut report = FleetReport {
        produced: produced.len(),
        ..FleetReport::default()
    };
    let expected: HashMap<&Bytes, &StoredRecord> = produced
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

    for sink in sinks {
        report.torn_lines += sink.torn_lines;
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
    let order = ShardOrder::new(produced);
    for sink in sinks {
        for error in check_acquisitions(sink, &occurrences, &order, &handed_over) {
            push_error(&mut report, error);
        }
    }
    report
}

/// The acknowledged records of each shard in shard order: the order in which any one
/// acquisition of the shard's lease delivers them.
struct ShardOrder<'a> {
    /// shard → its acknowledged sequence numbers, ascending.
    sequences: HashMap<&'a str, Vec<SequenceNumber>>,
    /// payload → (shard, index in that shard's `sequences`).
    positions: HashMap<&'a Bytes, (&'a str, usize)>,
}

impl<'a> ShardOrder<'a> {
    fn new(produced: &'a [StoredRecord]) -> Self {
        let mut by_shard: HashMap<&str, Vec<(SequenceNumber, &Bytes)>> = HashMap::new();
        for record in produced {
            if let Ok(sequence) = record.sequence_number.parse::<SequenceNumber>() {
                by_shard
                    .entry(record.shard_id.as_str())
                    .or_default()
                    .push((sequence, &record.entry.data));
            }
        }
        let mut order = ShardOrder {
            sequences: HashMap::new(),
            positions: HashMap::new(),
        };
        for (shard, mut records) in by_shard {
            records.sort_by_key(|(sequence, _)| *sequence);
            for (index, (_, data)) in records.iter().enumerate() {
                order.positions.insert(data, (shard, index));
            }
            order.sequences.insert(
                shard,
                records.into_iter().map(|(sequence, _)| sequence).collect(),
            );
        }
        order
    }

    /// Where a delivered record lies in its shard's order (`None`: not acknowledged there).
    fn position(&self, shard: &str, data: &Bytes) -> Option<usize> {
        self.positions
            .get(data)
            .filter(|(acknowledged_shard, _)| *acknowledged_shard == shard)
            .map(|(_, index)| *index)
    }

    /// How many acknowledged records of `shard` lie after the checkpoint `start` and before
    /// `first`, the first record an acquisition starting from `start` delivered (records it
    /// skipped). `None` for starts that do not name a position (`LATEST`, `AT_TIMESTAMP`).
    fn skipped_after(
        &self,
        shard: &str,
        start: &ExtendedSequenceNumber,
        first: SequenceNumber,
    ) -> Option<usize> {
        let sequences = self.sequences.get(shard).map(Vec::as_slice).unwrap_or(&[]);
        let before_first = sequences.partition_point(|sequence| *sequence < first);
        let up_to_start = match start.value {
            CheckpointValue::TrimHorizon => 0,
            CheckpointValue::Sequence(checkpoint) => {
                sequences.partition_point(|sequence| *sequence <= checkpoint)
            }
            _ => return None,
        };
        Some(before_first.saturating_sub(up_to_start))
    }
}

/// One record in a worker's sink, placed in its shard.
struct Delivery<'a> {
    record: &'a SinkRecord,
    data: Bytes,
    sequence: SequenceNumber,
    position: Option<usize>,
    /// Delivered more than once in the whole fleet (by this worker or others).
    duplicated: bool,
}

impl Delivery<'_> {
    fn acquisition(&self) -> Option<&SinkAcquisition> {
        self.record.acquisition.as_ref()
    }
}

/// How a delivery follows the previous one of the same shard in the same sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The shard's next record.
    Next,
    /// The same record again or an earlier one.
    Back,
    /// A later record, with acknowledged records of the shard skipped in between.
    Skip,
}

fn step(previous: &Delivery<'_>, next: &Delivery<'_>) -> Step {
    match (previous.position, next.position) {
        (Some(previous), Some(next)) if next == previous + 1 => Step::Next,
        (Some(previous), Some(next)) if next <= previous => Step::Back,
        (Some(_), Some(_)) => Step::Skip,
        _ => {
            let key =
                |delivery: &Delivery<'_>| (delivery.sequence, delivery.record.sub_sequence_number);
            if key(next) > key(previous) {
                Step::Next
            } else {
                Step::Back
            }
        }
    }
}

/// Why a run of one worker's deliveries of a shard began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opened {
    /// The worker's first delivery of the shard.
    First,
    /// The acquisition named in the lines changed.
    NewAcquisition,
    /// No acquisition in the lines, and the shard went back (or repeated a record).
    WentBack,
    /// No acquisition in the lines, and the shard jumped over records.
    Skipped,
}

/// The deliveries of one shard by one acquisition of its lease, as far as the sink tells.
struct Run<'a> {
    opened: Opened,
    deliveries: Vec<Delivery<'a>>,
}

impl Run<'_> {
    fn acquisition(&self) -> Option<&SinkAcquisition> {
        self.deliveries.first().and_then(Delivery::acquisition)
    }
}

/// The per-acquisition rule for one worker's sink: its deliveries of each shard are cut into
/// runs, one per acquisition of the shard's lease, and every re-delivery must sit at an
/// acquisition's edges.
///
/// Why: a worker whose lease renewal comes later than the failover time (a loaded machine, a
/// SIGSTOP) has lost the lease (`HeldLease::is_locally_expired`); its consumer ends with
/// `lease_lost`, and the next take, by another worker or by the same one, creates a new
/// processor, initialized at the stored checkpoint. That acquisition delivers again everything
/// after the checkpoint: at-least-once at a handover, also when the worker hands the lease to
/// itself, and also when the new acquisition starts above this worker's previous records
/// (another worker held the shard in between and checkpointed further, so the sequence never
/// goes back in this file). Within ONE acquisition, records are delivered once each, in shard
/// order: a repeat, a jump back or a skip there is a worker bug.
///
/// - Lines that name their acquisition ([`SinkAcquisition`]): a run is one acquisition. Within
///   it, each record must be the shard's next one; its first record must be the first record
///   after the checkpoint the acquisition started from (so a re-delivery restarts at or after
///   that checkpoint, and never skips); an id may not come back after another one; and any
///   record also delivered elsewhere must be at the run's head (the previous owner's
///   uncheckpointed tail) or tail (what was not checkpointed when the lease was lost).
/// - Lines without it (older workers, the multilang fixture): acquisitions are inferred. A run
///   ends where the shard goes back (a re-take restarting from a checkpoint, which must land
///   on a record this worker already delivered) or skips records (someone else held the shard
///   in between). Re-delivered records in the middle of a run are accepted only where the lease
///   watcher saw this worker lose the shard at a checkpoint below them (a re-take that resumed
///   exactly after this worker's last record is invisible in the sink); re-deliveries inside
///   one acquisition that look like a re-take cannot be told apart without the field.
fn check_acquisitions(
    sink: &SinkFile,
    occurrences: &HashMap<Bytes, Vec<&str>>,
    order: &ShardOrder<'_>,
    handed_over: &HashMap<&str, Vec<&Handover>>,
) -> Vec<String> {
    let worker = sink.worker_id.as_str();
    let mut errors = Vec::new();
    let mut runs: BTreeMap<&str, Vec<Run<'_>>> = BTreeMap::new();
    for record in &sink.records {
        let shard = record.shard_id.as_str();
        let (Some(data), Ok(sequence)) = (
            record.data_bytes().map(Bytes::from),
            record.sequence_number.parse::<SequenceNumber>(),
        ) else {
            continue; // reported already
        };
        let delivery = Delivery {
            record,
            position: order.position(shard, &data),
            duplicated: occurrences
                .get(&data)
                .is_some_and(|workers| workers.len() > 1),
            data,
            sequence,
        };
        let shard_runs = runs.entry(shard).or_default();
        let previous = shard_runs.last().and_then(|run| run.deliveries.last());
        let opened = match previous {
            None => Some(Opened::First),
            Some(previous) => {
                let step = step(previous, &delivery);
                match (previous.acquisition(), delivery.acquisition()) {
                    (Some(before), Some(now)) if before.id != now.id => {
                        Some(Opened::NewAcquisition)
                    }
                    (Some(acquisition), Some(_)) => {
                        match step {
                            Step::Next => {}
                            Step::Back => errors.push(format!(
                                "{worker}: shard {shard} went back from {} to {sequence} within one acquisition ({}): re-delivered records that are not at a handover",
                                previous.sequence, acquisition.id
                            )),
                            Step::Skip => errors.push(format!(
                                "{worker}: shard {shard} skipped records between {} and {sequence} within one acquisition ({})",
                                previous.sequence, acquisition.id
                            )),
                        }
                        None
                    }
                    _ => match step {
                        Step::Next => None,
                        Step::Back => Some(Opened::WentBack),
                        Step::Skip => Some(Opened::Skipped),
                    },
                }
            }
        };
        match (opened, shard_runs.last_mut()) {
            (None, Some(run)) => run.deliveries.push(delivery),
            (opened, _) => shard_runs.push(Run {
                opened: opened.unwrap_or(Opened::First),
                deliveries: vec![delivery],
            }),
        }
    }

    for (shard, shard_runs) in runs {
        let mut delivered_before: HashSet<&Bytes> = HashSet::new();
        let mut acquisitions_before: HashSet<&str> = HashSet::new();
        for run in &shard_runs {
            let Some(first) = run.deliveries.first() else {
                continue;
            };
            match run.acquisition() {
                Some(acquisition) => {
                    if !acquisitions_before.insert(acquisition.id.as_str()) {
                        errors.push(format!(
                            "{worker}: shard {shard}: acquisition {} delivered records again after another acquisition",
                            acquisition.id
                        ));
                    }
                    if let Some(start) = acquisition.start() {
                        let at_or_below = match start.value {
                            CheckpointValue::Sequence(checkpoint) => {
                                (first.sequence, first.record.sub_sequence_number)
                                    <= (checkpoint, start.sub_sequence_number)
                            }
                            _ => false,
                        };
                        if at_or_below {
                            errors.push(format!(
                                "{worker}: shard {shard}: acquisition {} started from checkpoint {start} but delivered {} again",
                                acquisition.id, first.sequence
                            ));
                        } else if let Some(skipped) =
                            order.skipped_after(shard, &start, first.sequence)
                            && skipped > 0
                        {
                            errors.push(format!(
                                "{worker}: shard {shard}: acquisition {} started from checkpoint {start} but its first record is {}: {skipped} records skipped",
                                acquisition.id, first.sequence
                            ));
                        }
                    }
                }
                None => {
                    if run.opened == Opened::WentBack && !delivered_before.contains(&first.data) {
                        errors.push(format!(
                            "{worker}: shard {shard} went back to {}, a record it had not processed before: out of order, not a restart from a checkpoint",
                            first.sequence
                        ));
                    }
                }
            }
            // dup* unique* dup*: re-deliveries at the head or the tail of the acquisition only.
            let head = run
                .deliveries
                .iter()
                .take_while(|delivery| delivery.duplicated)
                .count();
            let tail = run.deliveries[head..]
                .iter()
                .rev()
                .take_while(|delivery| delivery.duplicated)
                .count();
            let middle = &run.deliveries[head..run.deliveries.len() - tail];
            let mut index = 0;
            while index < middle.len() {
                if !middle[index].duplicated {
                    index += 1;
                    continue;
                }
                let block_first = &middle[index];
                while index < middle.len() && middle[index].duplicated {
                    index += 1;
                }
                match run.acquisition() {
                    Some(acquisition) => errors.push(format!(
                        "{worker}: shard {shard} has re-delivered records in the middle of acquisition {} (from {}), not at a handover",
                        acquisition.id, block_first.sequence
                    )),
                    None => {
                        let lost_below = handed_over.get(shard).is_some_and(|handovers| {
                            handovers.iter().any(|handover| {
                                handover.from == worker
                                    && handover
                                        .checkpoint
                                        .is_none_or(|checkpoint| block_first.sequence > checkpoint)
                            })
                        });
                        if !lost_below {
                            errors.push(format!(
                                "{worker}: shard {shard} has re-delivered records in the middle of a run (from {}), not at a handover",
                                block_first.sequence
                            ));
                        }
                    }
                }
            }
            delivered_before.extend(run.deliveries.iter().map(|delivery| &delivery.data));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcl_worker::producer::ProduceEntry;

    fn produced(index: u64, shard: &str) -> StoredRecord {
        StoredRecord {
            entry: ProduceEntry {
                partition_key: format!("k{index}"),
                data: Bytes::from(format!("r{index}")),
            },
            shard_id: shard.to_owned(),
            sequence_number: (100 + index).to_string(),
        }
    }

    fn seen(record: &StoredRecord, worker: &str) -> SinkRecord {
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

    fn file(worker: &str, records: &[&StoredRecord]) -> SinkFile {
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

    /// One acquisition in a test sink: its id, the checkpoint it started from (`None`:
    /// `TRIM_HORIZON`, `Some(i)`: record `i`'s sequence number) and what it delivered.
    type Acquired<'a> = (&'a str, Option<u64>, Vec<&'a StoredRecord>);

    fn acquired(worker: &str, acquisitions: &[Acquired<'_>]) -> SinkFile {
        let records = acquisitions
            .iter()
            .flat_map(|(id, start, records)| {
                let acquisition = SinkAcquisition {
                    id: (*id).to_owned(),
                    checkpoint: start
                        .map_or_else(|| "TRIM_HORIZON".to_owned(), |i| (100 + i).to_string()),
                    sub_sequence_number: 0,
                };
                records
                    .iter()
                    .map(move |record| seen(record, worker).with_acquisition(Some(&acquisition)))
            })
            .collect();
        SinkFile {
            worker_id: worker.to_owned(),
            records,
            torn_lines: 0,
        }
    }

    fn lost_by(worker: &str, checkpoint: u64) -> Handover {
        Handover {
            shard_id: "s0".into(),
            from: worker.into(),
            checkpoint: Some(SequenceNumber::from_u128(u128::from(100 + checkpoint))),
        }
    }

    #[test]
    fn table_of_acquisitions_and_redeliveries() {
        let r: Vec<_> = (0..10).map(|index| produced(index, "s0")).collect();
        let span = |from: usize, to: usize| r[from..=to].iter().collect::<Vec<_>>();
        let plain = |worker: &str, parts: &[(usize, usize)]| {
            let records: Vec<&StoredRecord> = parts
                .iter()
                .flat_map(|(from, to)| r[*from..=*to].iter())
                .collect();
            file(worker, &records)
        };
        // (name, sinks, handovers seen by the lease watcher, expected to pass)
        type Case = (&'static str, Vec<SinkFile>, Vec<Handover>, bool);
        let cases: Vec<Case> = vec![
            (
                "the same worker re-takes its lease (late renewal) and resumes at its checkpoint",
                vec![acquired(
                    "a",
                    &[("a1", None, span(0, 5)), ("a2", Some(2), span(3, 9))],
                )],
                vec![],
                true,
            ),
            (
                "re-delivery within one acquisition",
                vec![acquired(
                    "a",
                    &[("a1", None, [span(0, 5), span(3, 9)].concat())],
                )],
                vec![],
                false,
            ),
            (
                "handover to another worker",
                vec![
                    acquired("a", &[("a1", None, span(0, 5))]),
                    acquired("b", &[("b1", Some(2), span(3, 9))]),
                ],
                vec![lost_by("a", 2)],
                true,
            ),
            (
                "gap: a lost record",
                vec![
                    acquired("a", &[("a1", None, span(0, 3))]),
                    acquired("b", &[("b1", Some(4), span(5, 9))]),
                ],
                vec![lost_by("a", 4)],
                false,
            ),
            (
                "lost to another worker, re-taken after it checkpointed further (the CI failure)",
                vec![
                    acquired(
                        "a",
                        &[("a1", None, span(0, 3)), ("a2", Some(4), span(5, 9))],
                    ),
                    acquired("b", &[("b1", Some(1), span(2, 6))]),
                ],
                vec![lost_by("a", 1), lost_by("b", 4)],
                true,
            ),
            (
                "the same, in lines without acquisitions: the skip ends a's first run",
                vec![plain("a", &[(0, 3), (5, 9)]), plain("b", &[(2, 6)])],
                vec![lost_by("a", 1), lost_by("b", 4)],
                true,
            ),
            (
                "re-taken right after its own last record",
                vec![
                    acquired(
                        "a",
                        &[("a1", None, span(0, 3)), ("a2", Some(3), span(4, 9))],
                    ),
                    acquired("b", &[("b1", Some(1), span(2, 5))]),
                ],
                vec![],
                true,
            ),
            (
                "the same without acquisitions: explained by the watcher seeing a lose the shard",
                vec![plain("a", &[(0, 9)]), plain("b", &[(2, 5)])],
                vec![lost_by("a", 1), lost_by("b", 3)],
                true,
            ),
            (
                "a restart below the checkpoint the acquisition started from",
                vec![acquired(
                    "a",
                    &[("a1", None, span(0, 5)), ("a2", Some(4), span(3, 9))],
                )],
                vec![],
                false,
            ),
            (
                "an acquisition that skips records after its checkpoint",
                vec![acquired(
                    "a",
                    &[("a1", None, span(0, 5)), ("a2", Some(2), span(5, 9))],
                )],
                vec![],
                false,
            ),
            (
                "two owners at once: a re-delivery in the middle of an acquisition",
                vec![
                    acquired("a", &[("a1", None, span(0, 9))]),
                    acquired("b", &[("b1", Some(1), span(2, 2))]),
                ],
                vec![lost_by("a", 1)],
                false,
            ),
            (
                "an acquisition id that comes back after another one",
                vec![acquired(
                    "a",
                    &[
                        ("a1", None, span(0, 4)),
                        ("a2", Some(4), span(5, 6)),
                        ("a1", None, span(7, 9)),
                    ],
                )],
                vec![],
                false,
            ),
            (
                "without acquisitions: a restart at a record the worker delivered is a re-take",
                vec![plain("a", &[(0, 5), (3, 9)])],
                vec![],
                true,
            ),
            (
                "without acquisitions: going back to a record never delivered is out of order",
                vec![plain("a", &[(0, 0), (2, 2), (1, 1), (3, 9)])],
                vec![],
                false,
            ),
        ];
        for (name, sinks, handovers, ok) in cases {
            let report = verify_sinks(&r, &sinks, &handovers, &HashMap::new(), true);
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
