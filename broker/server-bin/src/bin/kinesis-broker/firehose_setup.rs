//! The Firehose API on this port: `--firehose-dir DIR` serves it with objects written under
//! `DIR/BUCKET/`; without it every `Firehose_20150804.*` request is answered with an error
//! saying how to switch it on. `--firehose-lambda NAME=COMMAND` runs `sh -c COMMAND` for the
//! Lambda function `NAME` of a processing configuration.

use anyhow::{Context, bail};
use broker::engine::Broker;
use broker::server::{ExtensionError, ExtensionRequest, ExtensionService};
use firehose::api::{FirehoseApi, FirehoseApiOptions, TARGET_PREFIX};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Parses the `--firehose-lambda NAME=COMMAND` list into function name -> `sh -c COMMAND`.
pub(crate) fn parse_lambdas(entries: &[String]) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut lambdas = BTreeMap::new();
    for entry in entries {
        let Some((name, command)) = entry.split_once('=') else {
            bail!("--firehose-lambda: {entry:?} must be NAME=COMMAND");
        };
        let (name, command) = (name.trim(), command.trim());
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid_name {
            bail!(
                "--firehose-lambda: function name {name:?} must be 1 to 64 letters, digits, '-' or '_'"
            );
        }
        if command.is_empty() {
            bail!("--firehose-lambda: {name} needs a command after '='");
        }
        if lambdas
            .insert(
                name.to_owned(),
                vec!["sh".to_owned(), "-c".to_owned(), command.to_owned()],
            )
            .is_some()
        {
            bail!("--firehose-lambda: function {name} is given twice");
        }
    }
    Ok(lambdas)
}

/// Opens the Firehose API (restarting every delivery from its checkpoints).
pub(crate) async fn open(
    firehose_dir: PathBuf,
    data_dir: Option<PathBuf>,
    lambdas: BTreeMap<String, Vec<String>>,
    broker: &Broker,
) -> anyhow::Result<FirehoseApi> {
    std::fs::create_dir_all(&firehose_dir)
        .with_context(|| format!("--firehose-dir: cannot create {}", firehose_dir.display()))?;
    let options = FirehoseApiOptions {
        data_dir,
        sink: Arc::new(firehose::LocalDirSink::new(firehose_dir)),
        source: broker.clone(),
        lambdas,
        clock: broker.config().clock.clone(),
        worker_id: "kinesis-broker-firehose".to_owned(),
    };
    FirehoseApi::open(options)
        .await
        .context("cannot start the Firehose API")
}

/// Answers every Firehose request when `--firehose-dir` is not given.
#[derive(Debug)]
pub(crate) struct FirehoseOff;

#[async_trait::async_trait]
impl ExtensionService for FirehoseOff {
    fn target_prefix(&self) -> &str {
        TARGET_PREFIX
    }

    async fn call(&self, request: ExtensionRequest) -> Result<serde_json::Value, ExtensionError> {
        Err(ExtensionError::client(
            "UnknownOperationException",
            format!(
                "{TARGET_PREFIX}{}: the Firehose API is off; start kinesis-broker with --firehose-dir DIR",
                request.operation
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambdas_parse_or_name_the_rule() {
        let parsed = parse_lambdas(&["upper=python3 up.py --x".to_owned()]).unwrap();
        assert_eq!(
            parsed.get("upper").unwrap(),
            &vec![
                "sh".to_owned(),
                "-c".to_owned(),
                "python3 up.py --x".to_owned()
            ]
        );
        let cases = [
            (vec!["nocommand"], "NAME=COMMAND"),
            (vec!["=cmd"], "function name"),
            (vec!["bad name=cmd"], "function name"),
            (vec!["f="], "needs a command"),
            (vec!["f=a", "f=b"], "twice"),
        ];
        for (entries, named) in cases {
            let entries: Vec<String> = entries.into_iter().map(str::to_owned).collect();
            let error = parse_lambdas(&entries).unwrap_err().to_string();
            assert!(error.contains("--firehose-lambda"), "{error}");
            assert!(error.contains(named), "{error} should say {named}");
        }
    }
}
