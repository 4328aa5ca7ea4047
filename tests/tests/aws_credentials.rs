//! The `kcl` binary (kcl-worker's `aws` feature) against a real `kinesis-broker` process with
//! SigV4 verification on: credentials and region from a temporary profile file, from the
//! environment with a session token, and a wrong secret rejected; the endpoint from
//! `AWS_ENDPOINT_URL_KINESIS` / `AWS_ENDPOINT_URL` when no flag is given.

use std::path::Path;
use std::process::{Command, Output};
use tests::{BrokerProcess, binary};

const GOOD_KEY: &str = "AKIDPROFILE";
const GOOD_SECRET: &str = "profile-secret";
const ENV_KEY: &str = "ASIAENVKEY";
const ENV_SECRET: &str = "env-secret";

/// Every variable of the AWS chain a developer's or CI machine might have set, removed so the
/// test sees only what it gives.
const AWS_VARIABLES: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_KINESIS",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "KCL_ENDPOINT",
];

/// Runs `kcl ARGS` with a clean AWS environment plus `env`; HOME points at `home` so no real
/// `~/.aws` is read, and instance metadata is off so nothing waits for it.
fn kcl(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(binary("kcl").expect("the kcl binary"));
    for name in AWS_VARIABLES {
        command.env_remove(name);
    }
    command
        .env("HOME", home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().copied())
        .args(args);
    command.output().expect("kcl runs")
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn credentials_region_and_endpoint_come_from_the_aws_chain() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = format!("{GOOD_KEY}:{GOOD_SECRET},{ENV_KEY}:{ENV_SECRET}");
    let broker = BrokerProcess::start_with_args(
        "127.0.0.1:0",
        None,
        &dir.path().join("broker.log"),
        &["--auth-keys", &keys],
    )
    .expect("broker starts");
    let endpoint = broker.endpoint();

    // A profile in temporary files, chosen by AWS_PROFILE; the region comes from the profile
    // and the endpoint from AWS_ENDPOINT_URL_KINESIS (which wins over AWS_ENDPOINT_URL).
    let credentials_file = dir.path().join("credentials");
    let config_file = dir.path().join("config");
    std::fs::write(
        &credentials_file,
        format!(
            "[default]\naws_access_key_id = AKIDWRONGDEFAULT\naws_secret_access_key = nope\n\n\
             [kcl-test]\naws_access_key_id = {GOOD_KEY}\naws_secret_access_key = {GOOD_SECRET}\n"
        ),
    )
    .expect("credentials file");
    std::fs::write(&config_file, "[profile kcl-test]\nregion = eu-central-1\n")
        .expect("config file");
    let credentials_path = credentials_file.to_str().expect("utf-8 path");
    let config_path = config_file.to_str().expect("utf-8 path");
    let profile_env = [
        ("AWS_SHARED_CREDENTIALS_FILE", credentials_path),
        ("AWS_CONFIG_FILE", config_path),
        ("AWS_PROFILE", "kcl-test"),
        ("AWS_ENDPOINT_URL_KINESIS", endpoint.as_str()),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
    ];
    let created = kcl(
        dir.path(),
        &profile_env,
        &["stream", "create", "from-profile", "--shards", "2"],
    );
    assert!(created.status.success(), "{}", describe(&created));
    // `-v` logs the resolved connection: the profile's region and the variable's endpoint.
    let described = kcl(
        dir.path(),
        &profile_env,
        &["stream", "describe", "from-profile", "-v"],
    );
    assert!(described.status.success(), "{}", describe(&described));
    let log = String::from_utf8_lossy(&described.stderr);
    assert!(
        log.contains("region=eu-central-1"),
        "{}",
        describe(&described)
    );
    assert!(log.contains("KinesisVariable"), "{}", describe(&described));
    assert_eq!(
        String::from_utf8_lossy(&described.stdout)
            .matches("shardId-")
            .count(),
        2,
        "{}",
        describe(&described)
    );

    // Temporary credentials from the environment (with a session token); the endpoint from
    // AWS_ENDPOINT_URL alone.
    let env_credentials = [
        ("AWS_ACCESS_KEY_ID", ENV_KEY),
        ("AWS_SECRET_ACCESS_KEY", ENV_SECRET),
        ("AWS_SESSION_TOKEN", "session-token-from-sts"),
        ("AWS_REGION", "eu-central-1"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
    ];
    let listed = kcl(dir.path(), &env_credentials, &["stream", "list"]);
    assert!(listed.status.success(), "{}", describe(&listed));
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("from-profile"),
        "{}",
        describe(&listed)
    );

    // The right key with a wrong secret: the broker rejects the signature and kcl says so.
    let wrong_secret = [
        ("AWS_ACCESS_KEY_ID", ENV_KEY),
        ("AWS_SECRET_ACCESS_KEY", "not-the-secret"),
        ("AWS_SESSION_TOKEN", "session-token-from-sts"),
        ("AWS_REGION", "eu-central-1"),
    ];
    let rejected = kcl(
        dir.path(),
        &wrong_secret,
        &["stream", "list", "--endpoint", &endpoint],
    );
    assert!(!rejected.status.success(), "{}", describe(&rejected));
    let stderr = String::from_utf8_lossy(&rejected.stderr);
    assert!(
        stderr.contains("signature"),
        "the error names the signature: {}",
        describe(&rejected)
    );

    // An explicit --endpoint wins over both variables (which point nowhere here).
    let unreachable = [
        ("AWS_ENDPOINT_URL_KINESIS", "http://127.0.0.1:9"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
    ];
    let flagged: Vec<(&str, &str)> = env_credentials[..4]
        .iter()
        .copied()
        .chain(unreachable)
        .collect();
    let listed = kcl(
        dir.path(),
        &flagged,
        &["stream", "list", "--endpoint", &endpoint],
    );
    assert!(listed.status.success(), "{}", describe(&listed));
}
