//! The MultiLangDaemon driver of `kcl worker --exec` against the sample record processor of
//! the PyPI package `amazon_kclpy` (its pure-Python part; its Java jars are not needed).
//!
//! The package is taken from `$KCLPY_DIR` (an unpacked sdist) if set, else fetched once with
//! `pip download --no-deps amazon_kclpy==3.2.0` and unpacked into cargo's per-target temp dir
//! (reused by later runs). Without python3 or without network access the tests are skipped with
//! a printed reason.

use kcl::multilang::{
    CheckpointOutcome, CheckpointRequests, ChildCommand, ChildProcess, DaemonMessage,
    ProtocolRecord, RefuseCheckpoints,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

const KCLPY_VERSION: &str = "3.2.0";

/// The unpacked `amazon_kclpy` sdist, found or fetched once per test process; `Err` is the
/// reason to skip.
fn kclpy_source() -> Result<PathBuf, String> {
    static SOURCE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    SOURCE.get_or_init(fetch_kclpy).clone()
}

fn fetch_kclpy() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("KCLPY_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("amazon_kclpy");
    let unpacked = cache.join(format!("amazon_kclpy-{KCLPY_VERSION}"));
    if unpacked.join("samples/sample_kclpy_app.py").exists() {
        return Ok(unpacked);
    }
    let python = Command::new("python3").arg("--version").output();
    if !python.is_ok_and(|output| output.status.success()) {
        return Err("python3 is not installed".to_owned());
    }
    let scratch = tempfile::tempdir().map_err(|error| format!("no temp dir: {error}"))?;
    let download = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--quiet",
        ])
        .arg(format!("amazon_kclpy=={KCLPY_VERSION}"))
        .arg("-d")
        .arg(scratch.path())
        .output()
        .map_err(|error| format!("cannot run pip: {error}"))?;
    if !download.status.success() {
        return Err(format!(
            "pip download amazon_kclpy failed (no network?): {}",
            String::from_utf8_lossy(&download.stderr).trim()
        ));
    }
    let archive = scratch
        .path()
        .join(format!("amazon_kclpy-{KCLPY_VERSION}.tar.gz"));
    let unpack = Command::new("tar")
        .arg("xzf")
        .arg(&archive)
        .arg("-C")
        .arg(scratch.path())
        .status()
        .map_err(|error| format!("cannot run tar: {error}"))?;
    if !unpack.success() {
        return Err(format!("cannot unpack {}", archive.display()));
    }
    std::fs::create_dir_all(&cache).map_err(|error| format!("cannot create the cache: {error}"))?;
    let _ = std::fs::remove_dir_all(&unpacked);
    std::fs::rename(
        scratch.path().join(format!("amazon_kclpy-{KCLPY_VERSION}")),
        &unpacked,
    )
    .map_err(|error| format!("cannot move the package into the cache: {error}"))?;
    Ok(unpacked)
}

#[derive(Debug, Default)]
struct RecordingCheckpoints {
    requests: Vec<(Option<String>, Option<u64>)>,
}

#[async_trait::async_trait]
impl CheckpointRequests for RecordingCheckpoints {
    async fn checkpoint(
        &mut self,
        sequence_number: Option<String>,
        sub_sequence_number: Option<u64>,
    ) -> CheckpointOutcome {
        self.requests
            .push((sequence_number.clone(), sub_sequence_number));
        CheckpointOutcome {
            sequence_number,
            sub_sequence_number,
            error: None,
        }
    }
}

fn batch(sequences: &[&str]) -> DaemonMessage {
    DaemonMessage::ProcessRecords {
        millis_behind_latest: 0,
        records: sequences
            .iter()
            .map(|sequence| ProtocolRecord {
                data: "aGVsbG8gd29ybGQ=".to_owned(),
                partition_key: "key".to_owned(),
                sequence_number: (*sequence).to_owned(),
                sub_sequence_number: 0,
                approximate_arrival_timestamp: 1_700_000_000_000,
            })
            .collect(),
    }
}

#[tokio::test]
async fn the_amazon_kclpy_sample_processor_runs_unchanged() {
    let source = match kclpy_source() {
        Ok(source) => source,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    let sample = source.join("samples/sample_kclpy_app.py");
    assert!(sample.exists(), "{} is missing", sample.display());
    let command = ChildCommand {
        command: format!("python3 {}", sample.display()),
        env: vec![("PYTHONPATH".to_owned(), source.display().to_string())],
        response_timeout: Some(Duration::from_secs(60)),
    };
    let shard = "shardId-000000000001";
    let mut child = ChildProcess::spawn(&command, shard).expect("starts the sample");
    child
        .exchange(
            &DaemonMessage::Initialize {
                shard_id: shard.to_owned(),
                sequence_number: Some("TRIM_HORIZON".to_owned()),
                sub_sequence_number: Some(0),
            },
            &mut RefuseCheckpoints("InvalidStateException"),
        )
        .await
        .expect("initialize is acknowledged");

    let first = "49590338271490256608559692538361571095921575989136588898";
    let second = "49590338271490256608559692538361571095921575989136588899";
    let mut checkpoints = RecordingCheckpoints::default();
    child
        .exchange(&batch(&[first, second]), &mut checkpoints)
        .await
        .expect("processRecords is acknowledged");
    // The sample checkpoints its first batch (then every 30 s) at the largest record.
    assert_eq!(
        checkpoints.requests,
        vec![(Some(second.to_owned()), Some(0))]
    );
    child
        .exchange(&DaemonMessage::ShardEnded, &mut checkpoints)
        .await
        .expect("shardEnded is acknowledged");
    assert_eq!(checkpoints.requests.len(), 2);
    assert_eq!(
        checkpoints.requests[1],
        (None, None),
        "checkpoint at SHARD_END"
    );

    let status = child.close(Duration::from_secs(30)).await;
    assert!(
        status.is_some_and(|status| status.success()),
        "the sample exits cleanly at end of input: {status:?}"
    );
}

#[tokio::test]
async fn the_amazon_kclpy_sample_checkpoints_on_requested_shutdown_and_not_after_lease_loss() {
    let source = match kclpy_source() {
        Ok(source) => source,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    let command = ChildCommand {
        command: format!(
            "python3 {}",
            source.join("samples/sample_kclpy_app.py").display()
        ),
        env: vec![("PYTHONPATH".to_owned(), source.display().to_string())],
        response_timeout: Some(Duration::from_secs(60)),
    };
    for (final_action, expected_checkpoints) in [
        (DaemonMessage::ShutdownRequested, vec![(None, None)]),
        (DaemonMessage::LeaseLost, vec![]),
    ] {
        let mut child = ChildProcess::spawn(&command, "shardId-000000000002").expect("starts");
        child
            .exchange(
                &DaemonMessage::Initialize {
                    shard_id: "shardId-000000000002".to_owned(),
                    sequence_number: Some("LATEST".to_owned()),
                    sub_sequence_number: Some(0),
                },
                &mut RefuseCheckpoints("InvalidStateException"),
            )
            .await
            .expect("initialize");
        let mut checkpoints = RecordingCheckpoints::default();
        child
            .exchange(&final_action, &mut checkpoints)
            .await
            .expect("the final action is acknowledged");
        assert_eq!(
            checkpoints.requests, expected_checkpoints,
            "{final_action:?}"
        );
        child.close(Duration::from_secs(30)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_amazon_kclpy_sample_runs_under_kcl_worker_and_checkpoints_on_sigterm() {
    let source = match kclpy_source() {
        Ok(source) => source,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    let mut fleet = tests::fleet::ProcessFleet::start(
        "kclpy",
        tests::fleet::FleetOptions {
            shards: 2,
            ..Default::default()
        },
    )
    .await
    .expect("fleet");
    let command = format!(
        "PYTHONPATH={} exec python3 {}",
        source.display(),
        source.join("samples/sample_kclpy_app.py").display()
    );
    fleet.start_exec_worker("py1", &command).expect("worker");
    fleet.produce(200).await.expect("produce");
    // The sample logs one "Record (Partition Key: ..." line per record to stderr.
    tests::wait_until(
        "the sample to log every record",
        Duration::from_secs(90),
        Duration::from_millis(100),
        || {
            let logged = fleet
                .worker_log_full("py1")
                .matches("Record (Partition Key:")
                .count();
            Ok((logged >= 200).then_some(logged))
        },
    )
    .await
    .expect("all records reached the Python processor");
    eprintln!("the sample logged every record");
    // SIGTERM: shutdownRequested makes the sample checkpoint; each shard's checkpoint is then
    // its last record.
    fleet.terminate("py1").await.expect("graceful exit");
    let mut last_by_shard: std::collections::HashMap<String, kcl_core::kinesis::SequenceNumber> =
        std::collections::HashMap::new();
    for record in fleet.produced() {
        let sequence = record.sequence_number.parse().expect("sequence number");
        let last = last_by_shard
            .entry(record.shard_id.clone())
            .or_insert(sequence);
        *last = (*last).max(sequence);
    }
    let leases = fleet.leases().await.expect("leases");
    let checked = leases
        .iter()
        .filter(|lease| last_by_shard.contains_key(lease.lease_key.as_str()))
        .count();
    assert_eq!(
        checked,
        last_by_shard.len(),
        "a lease for every shard: {leases:?}"
    );
    for lease in leases {
        let Some(last) = last_by_shard.get(lease.lease_key.as_str()) else {
            continue;
        };
        assert_eq!(
            lease.checkpoint.sequence_number(),
            Some(*last),
            "{}: checkpoint {} after shutdown",
            lease.lease_key,
            lease.checkpoint
        );
        assert_eq!(lease.lease_owner, None, "the lease was released");
    }
}
