//! The `kcl` binary against a real `kinesis-broker` process: connection flags after any
//! subcommand, and error messages that say a thing once.

use std::process::{Command, Output};
use tests::{BrokerProcess, binary, local_aws_env};

fn kcl(args: &[&str]) -> Output {
    let mut command = Command::new(binary("kcl").expect("the kcl binary"));
    command
        .args(args)
        .envs(local_aws_env())
        .env_remove("KCL_ENDPOINT");
    command.output().expect("kcl runs")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn connection_flags_after_subcommands_and_errors_said_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start("127.0.0.1:0", None, &dir.path().join("broker.log"))
        .expect("broker starts");
    let endpoint = broker.endpoint();

    // `--endpoint` after a nested subcommand (was refused before it became global).
    let created = kcl(&[
        "stream",
        "create",
        "t",
        "--shards",
        "2",
        "--endpoint",
        &endpoint,
    ]);
    let (stdout, stderr) = text(&created);
    assert!(created.status.success(), "{stdout}\n{stderr}");
    let described = kcl(&[
        "stream",
        "describe",
        "t",
        "--endpoint",
        &endpoint,
        "--region",
        "us-east-1",
    ]);
    let (stdout, stderr) = text(&described);
    assert!(described.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.matches("shardId-").count(), 2, "{stdout}");

    // A missing stream: the service's message appears exactly once.
    let produced = kcl(&[
        "produce",
        "--stream",
        "missing",
        "--count",
        "1",
        "--no-progress",
        "--endpoint",
        &endpoint,
    ]);
    let (stdout, stderr) = text(&produced);
    assert!(!produced.status.success(), "{stdout}\n{stderr}");
    let error_line = stderr
        .lines()
        .find(|line| line.starts_with("kcl: "))
        .unwrap_or_else(|| panic!("no error line in:\n{stderr}"));
    assert!(
        error_line.starts_with("kcl: the PutRecords request failed: ResourceNotFoundException"),
        "{error_line}"
    );
    assert_eq!(
        error_line.matches("ResourceNotFoundException").count(),
        1,
        "{error_line}"
    );
    assert_eq!(error_line.matches("not found").count(), 1, "{error_line}");
}
