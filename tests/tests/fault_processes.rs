//! Faults that lose records or end shards by mistake, reproduced with real processes: a real
//! `kinesis-broker` server, real `kcl worker` processes on a real SQLite lease file, verified
//! from their jsonl sinks and the lease table.
//!
//! 1. A worker started while the stream is still `CREATING`.
//! 2. The push (enhanced fan-out) consumer of a worker is deregistered under it.
//! 3. A sink whose every write fails, then SIGTERM: the checkpoint must not pass what no sink
//!    ever received.
//! 4. Another process holds the lease file's write lock for 6 s (less than the failover time).
//! 5. A fleet cold start: 4 workers open a new lease file at the same moment.
//!
//! No reshard happens in any of these, so a lease at `SHARD_END` is always a mistake.
//!
//! Needs the `kinesis-broker` and `kcl` binaries of the same profile next to the test
//! executable: `cargo test -p tests` builds them.

use kcl_core::kinesis::SequenceNumber;
use kcl_core::lease::ExtendedSequenceNumber;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};
use tests::fleet::{FleetOptions, ProcessFleet, read_leases};

/// Deadline of anything a correct worker does in a few seconds (generous for a loaded machine).
const LONG: Duration = Duration::from_secs(90);

/// The logs of `workers`, for failure messages.
fn logs(fleet: &ProcessFleet, workers: &[&str]) -> String {
    workers
        .iter()
        .map(|worker| format!("--- {worker}\n{}", fleet.worker_log(worker)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Fails if any lease is at `SHARD_END` (the streams here are never resharded).
async fn ensure_no_shard_end(fleet: &ProcessFleet, workers: &[&str]) -> anyhow::Result<()> {
    let ended: Vec<String> = fleet
        .leases()
        .await?
        .into_iter()
        .filter(|lease| lease.is_finished())
        .map(|lease| lease.lease_key.to_string())
        .collect();
    anyhow::ensure!(
        ended.is_empty(),
        "leases {ended:?} reached SHARD_END although the stream was never resharded \
         (their shards are open: records written to them from now on are never processed)\n{}",
        logs(fleet, workers)
    );
    Ok(())
}

/// Waits until every produced record is in a sink, failing at once if a lease reaches
/// `SHARD_END` meanwhile.
async fn wait_processed_without_shard_end(
    fleet: &ProcessFleet,
    workers: &[&str],
    deadline: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        ensure_no_shard_end(fleet, workers).await?;
        let seen: HashSet<Vec<u8>> = fleet
            .sinks()?
            .into_iter()
            .flat_map(|sink| sink.records)
            .filter_map(|record| record.data_bytes())
            .collect();
        let missing = fleet
            .produced()
            .iter()
            .filter(|record| !seen.contains(record.entry.data.as_ref()))
            .count();
        if missing == 0 {
            return Ok(());
        }
        if started.elapsed() > deadline {
            let leases: Vec<String> = fleet
                .leases()
                .await?
                .iter()
                .map(|lease| {
                    format!(
                        "{} owner={:?} checkpoint={}",
                        lease.lease_key, lease.lease_owner, lease.checkpoint
                    )
                })
                .collect();
            anyhow::bail!(
                "{missing} of {} records not in any sink after {deadline:?}; lease table: \
                 {leases:?}\n{}",
                fleet.produced().len(),
                logs(fleet, workers)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_started_while_the_stream_is_creating_loses_nothing() {
    let mut fleet = ProcessFleet::start_with_broker_args(
        "creating",
        FleetOptions {
            shards: 2,
            ..FleetOptions::default()
        },
        &["--create-delay", "5s"],
    )
    .await
    .expect("fleet");
    fleet.start_worker("w1").expect("worker");
    assert_eq!(
        fleet.stream_status().await.expect("stream status"),
        "CREATING",
        "precondition: the worker starts while the stream is still CREATING"
    );
    fleet
        .wait_active()
        .await
        .expect("the stream becomes ACTIVE");
    fleet.produce(400).await.expect("produce");
    // A correct worker keeps looking for the shards while the stream is CREATING and takes them
    // within seconds once it is ACTIVE; 45 s is far more than that, and less than the 60 s
    // shard-sync interval a worker that gave up until its next periodic sync would need.
    wait_processed_without_shard_end(&fleet, &["w1"], Duration::from_secs(45))
        .await
        .expect("every record produced after the stream became ACTIVE is processed");
    let leases = fleet.leases().await.expect("leases");
    assert_eq!(leases.len(), 2, "one lease per shard: {leases:?}");
    assert!(
        leases.iter().all(|lease| !lease.is_finished()),
        "no lease at SHARD_END: {leases:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deregistered_push_consumer_is_registered_again_and_nothing_is_lost() {
    let mut fleet = ProcessFleet::start(
        "deregistered",
        FleetOptions {
            shards: 2,
            ..FleetOptions::default()
        },
    )
    .await
    .expect("fleet");
    fleet
        .start_worker_with("w1", &["--retrieval", "push"])
        .expect("worker");
    fleet.produce(200).await.expect("produce");
    wait_processed_without_shard_end(&fleet, &["w1"], LONG)
        .await
        .expect("the push worker processes the first records");
    let application = fleet.application.clone();
    let consumers = fleet.stream_consumers().await.expect("consumers");
    let old_arn = consumers
        .iter()
        .find(|(name, _, _)| *name == application)
        .map(|(_, arn, _)| arn.clone())
        .unwrap_or_else(|| panic!("the worker registered consumer {application}: {consumers:?}"));

    fleet
        .deregister_consumer(&application)
        .await
        .expect("deregister the worker's consumer");
    fleet
        .produce(200)
        .await
        .expect("produce after deregistering");
    wait_processed_without_shard_end(&fleet, &["w1"], LONG)
        .await
        .expect("records produced after the consumer was deregistered are processed");
    let consumers = fleet.stream_consumers().await.expect("consumers");
    assert!(
        consumers
            .iter()
            .any(|(name, arn, status)| *name == application
                && *arn != old_arn
                && status == "ACTIVE"),
        "the worker registered its consumer again under a new ARN: {consumers:?}"
    );

    // A restarted worker still delivers new records.
    fleet.terminate("w1").await.expect("w1 stops on SIGTERM");
    fleet
        .start_worker_with("w2", &["--retrieval", "push"])
        .expect("worker");
    fleet.produce(100).await.expect("produce after the restart");
    wait_processed_without_shard_end(&fleet, &["w2"], LONG)
        .await
        .expect("the restarted worker processes new records");
    let report = fleet.verify(true).await.expect("verify");
    assert!(report.is_ok(), "{}\n{:#?}", report.summary(), report.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sink_never_lets_the_checkpoint_pass_unwritten_records() {
    let mut fleet = ProcessFleet::start(
        "fullsink",
        FleetOptions {
            shards: 2,
            ..FleetOptions::default()
        },
    )
    .await
    .expect("fleet");
    // Every write to /dev/full fails with ENOSPC: nothing ever reaches this sink.
    fleet
        .start_worker_with_untracked_sink("w1", "jsonl:/dev/full", &[])
        .expect("worker");
    fleet.produce(200).await.expect("produce");
    let first_produced: BTreeMap<String, SequenceNumber> =
        fleet
            .produced()
            .iter()
            .fold(BTreeMap::new(), |mut first, record| {
                let sequence: SequenceNumber = record
                    .sequence_number
                    .parse()
                    .expect("a produced sequence number");
                first
                    .entry(record.shard_id.clone())
                    .and_modify(|current: &mut SequenceNumber| *current = (*current).min(sequence))
                    .or_insert(sequence);
                first
            });
    // The real condition: the worker has tried (and failed) to write a batch of every shard
    // that got records, so each of those batches was handed to its processor.
    let shards: Vec<String> = first_produced.keys().cloned().collect();
    fleet
        .wait_worker_log(
            "w1",
            "a failed sink write on every shard with records",
            LONG,
            |log| {
                shards.iter().all(|shard| {
                    log.lines().any(|line| {
                        (line.contains("record processor failed")
                            || line.contains("No space left on device"))
                            && line.contains(&format!("shard_id={shard}"))
                    })
                })
            },
        )
        .await
        .expect("the worker attempts the writes");
    let clean = fleet
        .terminate_and_wait("w1", LONG)
        .await
        .expect("w1 exits on SIGTERM");
    eprintln!("w1 exited after SIGTERM (clean: {clean})");

    let leases = fleet.leases().await.expect("leases");
    for (shard, first) in &first_produced {
        let lease = leases
            .iter()
            .find(|lease| lease.lease_key.as_str() == shard)
            .unwrap_or_else(|| panic!("a lease for {shard}: {leases:?}"));
        let passed = match lease.checkpoint.sequence_number() {
            Some(checkpoint) => checkpoint >= *first,
            None => lease.checkpoint != ExtendedSequenceNumber::TRIM_HORIZON,
        };
        assert!(
            !passed,
            "nothing was ever written to a sink, yet after SIGTERM the lease of {shard} is \
             checkpointed at {} (the first record produced to it is {first}): records up to \
             the checkpoint are lost\n{}",
            lease.checkpoint,
            fleet.worker_log_full("w1")
        );
    }

    // A worker with a good sink delivers every record.
    fleet.start_worker("w2").expect("worker");
    wait_processed_without_shard_end(&fleet, &["w2"], LONG)
        .await
        .expect("a worker with a good sink processes every record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_lock_held_shorter_than_the_failover_time_loses_no_lease() {
    let workers = ["w1", "w2", "w3"];
    let mut fleet = ProcessFleet::start(
        "locked",
        FleetOptions {
            shards: 6,
            failover_ms: 10_000,
            ..FleetOptions::default()
        },
    )
    .await
    .expect("fleet");
    for worker in workers {
        fleet.start_worker(worker).expect("worker");
    }
    fleet
        .wait_balanced(&workers, Duration::from_secs(150))
        .await
        .expect("leases spread over the three workers");
    let producing = fleet.spawn_producer(2000, Some(100));
    let mut tail = fleet.tail();
    let mut flowing = 0;
    tests::wait_until(
        "records flowing into the sinks",
        LONG,
        Duration::from_millis(100),
        || {
            flowing += tail.poll().len();
            Ok((flowing >= 50).then_some(()))
        },
    )
    .await
    .expect("records flow");

    let owners = |leases: &[kcl_core::lease::Lease]| -> BTreeMap<String, Option<String>> {
        leases
            .iter()
            .map(|lease| (lease.lease_key.to_string(), lease.lease_owner.clone()))
            .collect()
    };
    let before = owners(&fleet.leases().await.expect("leases"));
    let handovers_before = fleet.handovers().len();
    fleet
        .hold_lease_file_write_lock(Duration::from_secs(6))
        .await
        .expect("hold the write lock for 6 s");

    // Watch until every lease was renewed four more times (renewals come every third of the
    // failover time, so that spans more than a failover time), or an owner changed.
    let counters = |leases: &[kcl_core::lease::Lease]| -> BTreeMap<String, u64> {
        leases
            .iter()
            .map(|lease| (lease.lease_key.to_string(), lease.lease_counter))
            .collect()
    };
    let released = counters(&fleet.leases().await.expect("leases"));
    let started = Instant::now();
    loop {
        let leases = fleet.leases().await.expect("leases");
        let now = counters(&leases);
        let renewed = released
            .iter()
            .all(|(shard, counter)| now.get(shard).is_some_and(|now| *now >= counter + 4));
        if renewed || owners(&leases) != before || fleet.handovers().len() > handovers_before {
            break;
        }
        assert!(
            started.elapsed() < LONG,
            "leases not renewed after the lock was released: {released:?} → {now:?}\n{}",
            logs(&fleet, &workers)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // For the record: how often the workers met the lock (a write waits up to SQLite's busy
    // timeout, then fails as throttled).
    for worker in workers {
        let busy = fleet
            .worker_log_full(worker)
            .lines()
            .filter(|line| line.contains("sqlite is busy"))
            .count();
        eprintln!("{worker}: {busy} lease-file writes failed as busy during the lock");
    }
    let after = owners(&fleet.leases().await.expect("leases"));
    let handovers: Vec<_> = fleet.handovers()[handovers_before..].to_vec();
    assert!(
        after == before && handovers.is_empty(),
        "a 6 s write lock (failover time 10 s) cost leases: owners {before:?} → {after:?}, \
         handovers {handovers:?}\n{}",
        logs(&fleet, &workers)
    );

    let stored = producing.await.expect("producer task").expect("produced");
    fleet.add_produced(stored);
    wait_processed_without_shard_end(&fleet, &workers, LONG)
        .await
        .expect("every record is processed");
    for worker in workers {
        assert!(fleet.is_running(worker), "{worker} is still running");
    }
    let report = fleet.verify(false).await.expect("verify");
    assert_eq!(
        report.duplicates,
        0,
        "no record is delivered twice when no lease changed owner: {}",
        report.summary()
    );
    assert!(report.is_ok(), "{}\n{:#?}", report.summary(), report.errors);
}

/// Cold-start rounds: each takes a fraction of a second, and the start-up race they look for
/// does not happen in every round.
const ROUNDS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_cold_starting_on_a_new_lease_file_all_keep_running() {
    let mut fleet = ProcessFleet::start("cold", FleetOptions::default())
        .await
        .expect("fleet");
    let shards: HashSet<String> = fleet
        .shards()
        .await
        .expect("shards")
        .into_iter()
        .map(|shard| shard.shard_id.to_string())
        .collect();
    for round in 0..ROUNDS {
        let lease_db = fleet.dir().join(format!("cold-{round}.db"));
        let application = format!("cold-{round}-app");
        let workers: Vec<String> = (1..=4).map(|index| format!("r{round}-w{index}")).collect();
        let ids: Vec<&str> = workers.iter().map(String::as_str).collect();
        // As close to the same moment as separate processes get.
        for worker in &ids {
            fleet
                .start_worker_on(worker, &lease_db, &application)
                .expect("worker");
        }
        // "worker starting" is logged once the lease file is open.
        for worker in &ids {
            fleet
                .wait_worker_log(worker, "the worker to open the lease file", LONG, |log| {
                    log.contains("worker starting")
                })
                .await
                .unwrap_or_else(|error| {
                    panic!("round {round}: {worker} failed at start: {error:#}")
                });
        }
        let started = Instant::now();
        loop {
            for worker in &ids {
                assert!(
                    fleet.is_running(worker),
                    "round {round}: {worker} died:\n{}",
                    fleet.worker_log(worker)
                );
            }
            let leases = read_leases(&lease_db, &application)
                .await
                .expect("read the new lease file");
            let owned: BTreeSet<String> = leases
                .iter()
                .filter(|lease| {
                    lease
                        .lease_owner
                        .as_deref()
                        .is_some_and(|owner| ids.contains(&owner))
                })
                .map(|lease| lease.lease_key.to_string())
                .collect();
            if shards.iter().all(|shard| owned.contains(shard)) {
                break;
            }
            assert!(
                started.elapsed() < LONG,
                "round {round}: leases not all owned after {LONG:?}: {leases:?}\n{}",
                logs(&fleet, &ids)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for worker in &ids {
            assert!(
                fleet.is_running(worker),
                "round {round}: {worker} died after the leases were owned:\n{}",
                fleet.worker_log(worker)
            );
        }
        for worker in &ids {
            fleet.kill(worker).expect("kill");
        }
    }
}
