//! `kcl firehose` against a real `kinesis-broker --firehose-dir` process: create, list,
//! describe, put (the records reach a file under DIR/BUCKET/), delete.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use tests::{BrokerProcess, binary, local_aws_env};

fn kcl(endpoint: &str, args: &[&str]) -> (String, String) {
    let mut command = Command::new(binary("kcl").expect("the kcl binary"));
    command
        .args(["firehose"])
        .args(args)
        .args(["--endpoint", endpoint])
        .envs(local_aws_env())
        .env_remove("KCL_ENDPOINT");
    let output: Output = command.output().expect("kcl runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "kcl firehose {args:?} failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

/// The concatenated contents of every file below `dir` (sorted by path).
fn contents(dir: &Path) -> Vec<u8> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if !entry.file_name().to_string_lossy().starts_with('.') {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .iter()
        .flat_map(|path| std::fs::read(path).unwrap_or_default())
        .collect()
}

#[test]
fn kcl_firehose_creates_puts_into_and_deletes_a_delivery_stream() {
    let dir = tempfile::tempdir().expect("temp dir");
    let objects = dir.path().join("objects");
    let objects_arg = objects.to_string_lossy().into_owned();
    let broker = BrokerProcess::start_with_args(
        "127.0.0.1:0",
        None,
        &dir.path().join("broker.log"),
        &["--firehose-dir", &objects_arg],
    )
    .expect("broker starts");
    let endpoint = broker.endpoint();

    let (created, _) = kcl(
        &endpoint,
        &[
            "create",
            "clicks",
            "--bucket",
            "cli-bucket",
            "--size-mib",
            "1",
            "--interval-secs",
            "1",
        ],
    );
    assert!(
        created.contains("created delivery stream clicks"),
        "{created}"
    );
    assert!(
        created.contains("arn:aws:firehose:us-east-1:000000000000:deliverystream/clicks"),
        "{created}"
    );
    let (listed, _) = kcl(&endpoint, &["list"]);
    assert_eq!(listed.lines().collect::<Vec<_>>(), vec!["clicks"]);
    let (described, _) = kcl(&endpoint, &["describe", "clicks"]);
    assert!(described.contains("status ACTIVE"), "{described}");
    assert!(described.contains("type DirectPut"), "{described}");
    assert!(
        described.contains("bucket arn:aws:s3:::cli-bucket"),
        "{described}"
    );
    assert!(described.contains("buffer 1 MiB / 1 s"), "{described}");

    let (put, _) = kcl(
        &endpoint,
        &["put", "clicks", "--data", "first", "--data", "second"],
    );
    assert!(put.contains("put 2 records into clicks, 0 failed"), "{put}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let delivered = contents(&objects.join("cli-bucket"));
        if delivered == b"first\nsecond\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the records were not delivered; found {:?}",
            String::from_utf8_lossy(&delivered)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let (deleted, _) = kcl(&endpoint, &["delete", "clicks"]);
    assert!(
        deleted.contains("deleted delivery stream clicks"),
        "{deleted}"
    );
    let (listed, _) = kcl(&endpoint, &["list"]);
    assert!(listed.trim().is_empty(), "{listed}");
}
