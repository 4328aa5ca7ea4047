//! The Lambda transformation contract over a local command: one JSON request on the
//! command's stdin (`{"invocationId", "deliveryStreamArn", "region", "records": [{"recordId",
//! "approximateArrivalTimestamp", "data"}]}`), the answer on its stdout (`{"records":
//! [{"recordId", "result": "Ok"|"Dropped"|"ProcessingFailed", "data"}]}`). A failed invocation
//! (spawn error, exit status, timeout, bad JSON, a missing or unknown record id) is retried;
//! when the retries run out every record of the batch is `ProcessingFailed`.

use crate::config::Processing;
use crate::error::FirehoseError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use kcl_core::clock::SharedClock;
use kcl_core::kinesis::EpochMillis;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// How long one invocation may run before it is killed and counted as failed.
pub const DEFAULT_INVOCATION_TIMEOUT: Duration = Duration::from_secs(60);

/// The error code of records the function answered `ProcessingFailed` for.
pub const PROCESSING_FAILED_CODE: &str = "Lambda.ProcessingFailed";
/// The error code of records whose invocation failed after every retry.
pub const FUNCTION_ERROR_CODE: &str = "Lambda.FunctionError";

/// One record given to the function.
#[derive(Debug, Clone)]
pub struct TransformInput {
    /// Unique in the invocation.
    pub record_id: String,
    /// When the record arrived (milliseconds since the epoch).
    pub arrival: EpochMillis,
    /// The payload.
    pub data: Bytes,
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransformOutcome {
    /// Transformed: deliver this payload.
    Ok(Bytes),
    /// Dropped on purpose: deliver nothing.
    Dropped,
    /// Failed: goes to the error prefix.
    Failed {
        /// `Lambda.ProcessingFailed` or `Lambda.FunctionError`.
        error_code: String,
        /// Why.
        error_message: String,
    },
}

/// The outcome of a batch, in input order.
#[derive(Debug, Clone)]
pub struct TransformOutput {
    /// One outcome per input record, in order.
    pub outcomes: Vec<TransformOutcome>,
    /// Invocations attempted.
    pub attempts: u32,
    /// When the last attempt ended (wall clock).
    pub attempt_ending: EpochMillis,
}

/// Runs the transformation command.
#[derive(Debug, Clone)]
pub struct Transformer {
    processing: Processing,
    delivery_stream_arn: String,
    region: String,
    timeout: Duration,
    clock: SharedClock,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Request<'a> {
    invocation_id: String,
    delivery_stream_arn: &'a str,
    region: &'a str,
    records: Vec<RequestRecord<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestRecord<'a> {
    record_id: &'a str,
    approximate_arrival_timestamp: i64,
    data: String,
}

#[derive(Deserialize)]
struct Response {
    records: Vec<ResponseRecord>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResponseRecord {
    record_id: String,
    result: String,
    #[serde(default)]
    data: Option<String>,
}

impl Transformer {
    /// A transformer for `processing`, reporting `delivery_stream_arn` (its region is the
    /// ARN's fourth field) to the function.
    pub fn new(
        processing: Processing,
        delivery_stream_arn: impl Into<String>,
        clock: SharedClock,
    ) -> Self {
        let delivery_stream_arn = delivery_stream_arn.into();
        let region = delivery_stream_arn
            .split(':')
            .nth(3)
            .unwrap_or("us-east-1")
            .to_owned();
        Transformer {
            processing,
            delivery_stream_arn,
            region,
            timeout: DEFAULT_INVOCATION_TIMEOUT,
            clock,
        }
    }

    /// Sets the invocation timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The configured Lambda ARN.
    pub fn function_arn(&self) -> &str {
        &self.processing.function_arn
    }

    /// Transforms `records`, retrying failed invocations `retries` times with backoff.
    pub async fn transform(&self, records: &[TransformInput]) -> TransformOutput {
        let mut delays = backon::BackoffBuilder::build(
            backon::ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(100))
                .with_max_delay(Duration::from_secs(5))
                .with_jitter()
                .without_max_times(),
        );
        let attempts_allowed = self.processing.retries.saturating_add(1);
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.invoke_once(records).await {
                Ok(outcomes) => {
                    return TransformOutput {
                        outcomes,
                        attempts,
                        attempt_ending: self.clock.wall(),
                    };
                }
                Err(error) if attempts >= attempts_allowed => {
                    tracing::warn!(%error, attempts, "transformation failed; the batch goes to the error prefix");
                    metrics::counter!("kcl_firehose_transform_failures_total").increment(1);
                    let message = error.to_string();
                    return TransformOutput {
                        outcomes: records
                            .iter()
                            .map(|_| TransformOutcome::Failed {
                                error_code: FUNCTION_ERROR_CODE.to_owned(),
                                error_message: message.clone(),
                            })
                            .collect(),
                        attempts,
                        attempt_ending: self.clock.wall(),
                    };
                }
                Err(error) => {
                    tracing::info!(%error, attempts, "transformation failed; retrying");
                    let delay = delays.next().unwrap_or(Duration::from_secs(1));
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// One invocation: spawn, write the request, read the answer, check it.
    async fn invoke_once(
        &self,
        records: &[TransformInput],
    ) -> Result<Vec<TransformOutcome>, FirehoseError> {
        let fail = |message: String| FirehoseError::Transform(message);
        let request = Request {
            invocation_id: uuid::Uuid::new_v4().to_string(),
            delivery_stream_arn: &self.delivery_stream_arn,
            region: &self.region,
            records: records
                .iter()
                .map(|record| RequestRecord {
                    record_id: &record.record_id,
                    approximate_arrival_timestamp: record.arrival.0,
                    data: BASE64.encode(&record.data),
                })
                .collect(),
        };
        let request = serde_json::to_vec(&request).map_err(|error| fail(error.to_string()))?;
        let (program, args) = self
            .processing
            .command
            .split_first()
            .ok_or_else(|| fail("no command configured".into()))?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| fail(format!("cannot run {program:?}: {error}")))?;
        let mut stdin = child.stdin.take().ok_or_else(|| fail("no stdin".into()))?;
        let write = async move {
            // A command that exits without reading its input is judged by its answer.
            let _ = stdin.write_all(&request).await;
            let _ = stdin.shutdown().await;
        };
        let run = async {
            let ((), output) = tokio::join!(write, child.wait_with_output());
            output
        };
        let output = tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| {
                fail(format!(
                    "the command did not answer within {:?}",
                    self.timeout
                ))
            })?
            .map_err(|error| fail(format!("waiting for the command: {error}")))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let stderr: String = stderr.chars().take(512).collect();
            return Err(fail(format!(
                "the command exited with {}: {}",
                output.status,
                stderr.trim()
            )));
        }
        let response: Response = serde_json::from_slice(&output.stdout)
            .map_err(|error| fail(format!("the answer is not the expected JSON: {error}")))?;
        outcomes_in_order(records, response)
    }
}

/// Matches the answer to the request: every record id exactly once, a known result, base64
/// data for `Ok`.
fn outcomes_in_order(
    records: &[TransformInput],
    response: Response,
) -> Result<Vec<TransformOutcome>, FirehoseError> {
    let fail = |message: String| FirehoseError::Transform(message);
    let mut by_id: HashMap<String, TransformOutcome> =
        HashMap::with_capacity(response.records.len());
    for answer in response.records {
        let outcome = match answer.result.as_str() {
            "Ok" => {
                let data = answer.data.as_deref().unwrap_or("");
                let decoded = BASE64.decode(data).map_err(|error| {
                    fail(format!(
                        "record {:?} has invalid base64 data: {error}",
                        answer.record_id
                    ))
                })?;
                TransformOutcome::Ok(Bytes::from(decoded))
            }
            "Dropped" => TransformOutcome::Dropped,
            "ProcessingFailed" => TransformOutcome::Failed {
                error_code: PROCESSING_FAILED_CODE.to_owned(),
                error_message: "the function returned ProcessingFailed for this record".to_owned(),
            },
            other => {
                return Err(fail(format!(
                    "record {:?} has unknown result {other:?}",
                    answer.record_id
                )));
            }
        };
        if by_id.insert(answer.record_id.clone(), outcome).is_some() {
            return Err(fail(format!(
                "record {:?} is answered twice",
                answer.record_id
            )));
        }
    }
    let outcomes = records
        .iter()
        .map(|record| {
            by_id.remove(&record.record_id).ok_or_else(|| {
                fail(format!(
                    "record {:?} is missing from the answer",
                    record.record_id
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(unknown) = by_id.keys().next() {
        return Err(fail(format!(
            "the answer has an unknown record id {unknown:?}"
        )));
    }
    Ok(outcomes)
}

/// The JSON line Firehose writes for a record that failed transformation (`attemptsMade`,
/// `arrivalTimestamp`, `errorCode`, `errorMessage`, `attemptEndingTimestamp`, `rawData`,
/// `lambdaArn`), newline-terminated.
pub fn error_record_line(
    attempts: u32,
    arrival: EpochMillis,
    error_code: &str,
    error_message: &str,
    attempt_ending: EpochMillis,
    raw_data: &[u8],
    lambda_arn: Option<&str>,
) -> Bytes {
    let mut value = serde_json::json!({
        "attemptsMade": attempts,
        "arrivalTimestamp": arrival.0,
        "errorCode": error_code,
        "errorMessage": error_message,
        "attemptEndingTimestamp": attempt_ending.0,
        "rawData": BASE64.encode(raw_data),
    });
    if let (Some(arn), Some(object)) = (lambda_arn, value.as_object_mut()) {
        object.insert(
            "lambdaArn".into(),
            serde_json::Value::String(arn.to_owned()),
        );
    }
    let mut line = value.to_string().into_bytes();
    line.push(b'\n');
    Bytes::from(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcl_core::clock::SystemClock;

    fn inputs(data: &[&str]) -> Vec<TransformInput> {
        data.iter()
            .enumerate()
            .map(|(index, data)| TransformInput {
                record_id: format!("id-{index}"),
                arrival: EpochMillis(1000 + index as i64),
                data: Bytes::from(data.to_string()),
            })
            .collect()
    }

    fn transformer(script: &str, retries: u32) -> Transformer {
        Transformer::new(
            Processing {
                function_arn: "arn:aws:lambda:eu-west-1:123456789012:function:f".into(),
                command: vec!["sh".into(), "-c".into(), script.into()],
                retries,
            },
            "arn:aws:firehose:eu-west-1:123456789012:deliverystream/s",
            SystemClock::shared(),
        )
        .with_timeout(Duration::from_secs(30))
    }

    fn response(entries: &[(&str, &str, Option<&str>)]) -> Response {
        Response {
            records: entries
                .iter()
                .map(|(id, result, data)| ResponseRecord {
                    record_id: (*id).into(),
                    result: (*result).into(),
                    data: data.map(|d| BASE64.encode(d)),
                })
                .collect(),
        }
    }

    #[test]
    fn answers_are_matched_by_record_id() {
        let records = inputs(&["a", "b", "c"]);
        let ok = outcomes_in_order(
            &records,
            response(&[
                ("id-2", "ProcessingFailed", None),
                ("id-0", "Ok", Some("A")),
                ("id-1", "Dropped", None),
            ]),
        )
        .unwrap();
        assert_eq!(ok[0], TransformOutcome::Ok(Bytes::from_static(b"A")));
        assert_eq!(ok[1], TransformOutcome::Dropped);
        assert!(
            matches!(&ok[2], TransformOutcome::Failed { error_code, .. } if error_code == PROCESSING_FAILED_CODE)
        );
        /// (answer entries: id, result, data; the rule broken)
        type Bad = (
            &'static [(&'static str, &'static str, Option<&'static str>)],
            &'static str,
        );
        let bad: &[Bad] = &[
            (
                &[("id-0", "Ok", Some("A")), ("id-1", "Ok", Some("B"))],
                "missing",
            ),
            (
                &[
                    ("id-0", "Ok", Some("A")),
                    ("id-1", "Ok", Some("B")),
                    ("id-2", "Ok", Some("C")),
                    ("x", "Ok", Some("D")),
                ],
                "unknown record id",
            ),
            (
                &[
                    ("id-0", "Ok", Some("A")),
                    ("id-0", "Ok", Some("B")),
                    ("id-2", "Ok", Some("C")),
                ],
                "twice",
            ),
            (
                &[
                    ("id-0", "Maybe", None),
                    ("id-1", "Ok", Some("B")),
                    ("id-2", "Ok", Some("C")),
                ],
                "unknown result",
            ),
        ];
        for (entries, rule) in bad {
            let error = outcomes_in_order(&records, response(entries))
                .unwrap_err()
                .to_string();
            assert!(error.contains(rule), "{rule}: {error}");
        }
    }

    #[tokio::test]
    async fn a_command_transforms_drops_and_fails_records() {
        // Upper-cases "a…", drops "b…", fails the rest: a tiny Lambda in python.
        let script = r#"python3 -c '
import base64, json, sys
req = json.load(sys.stdin)
assert req["deliveryStreamArn"].endswith("deliverystream/s") and req["region"] == "eu-west-1"
out = []
for r in req["records"]:
    d = base64.b64decode(r["data"])
    if d.startswith(b"a"):
        out.append({"recordId": r["recordId"], "result": "Ok", "data": base64.b64encode(d.upper()).decode()})
    elif d.startswith(b"b"):
        out.append({"recordId": r["recordId"], "result": "Dropped"})
    else:
        out.append({"recordId": r["recordId"], "result": "ProcessingFailed"})
print(json.dumps({"records": out}))
'"#;
        let output = transformer(script, 0)
            .transform(&inputs(&["ax", "bx", "cx"]))
            .await;
        assert_eq!(output.attempts, 1);
        assert_eq!(
            output.outcomes[0],
            TransformOutcome::Ok(Bytes::from_static(b"AX"))
        );
        assert_eq!(output.outcomes[1], TransformOutcome::Dropped);
        assert!(matches!(
            output.outcomes[2],
            TransformOutcome::Failed { .. }
        ));
    }

    #[tokio::test]
    async fn failing_invocations_are_retried_then_every_record_fails() {
        let cases = [
            ("exit 3", "exited with"),
            ("cat >/dev/null; echo not-json", "not the expected JSON"),
            ("cat >/dev/null; echo '{\"records\": []}'", "missing"),
            ("/nonexistent-program-xyz", "exited with"),
        ];
        for (script, reason) in cases {
            let output = transformer(script, 2).transform(&inputs(&["a", "b"])).await;
            assert_eq!(output.attempts, 3, "{script}");
            for outcome in &output.outcomes {
                match outcome {
                    TransformOutcome::Failed {
                        error_code,
                        error_message,
                    } => {
                        assert_eq!(error_code, FUNCTION_ERROR_CODE);
                        assert!(error_message.contains(reason), "{script}: {error_message}");
                    }
                    other => panic!("{script}: {other:?}"),
                }
            }
        }
    }

    #[tokio::test]
    async fn a_slow_command_times_out() {
        let output = transformer("sleep 30", 0)
            .with_timeout(Duration::from_millis(200))
            .transform(&inputs(&["a"]))
            .await;
        assert!(
            matches!(&output.outcomes[0], TransformOutcome::Failed { error_message, .. } if error_message.contains("did not answer"))
        );
    }

    #[test]
    fn error_records_have_the_firehose_fields() {
        let line = error_record_line(
            4,
            EpochMillis(10),
            "Lambda.FunctionError",
            "boom",
            EpochMillis(20),
            b"raw",
            Some("arn:x"),
        );
        assert_eq!(line.last(), Some(&b'\n'));
        let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "attemptsMade": 4, "arrivalTimestamp": 10, "errorCode": "Lambda.FunctionError",
                "errorMessage": "boom", "attemptEndingTimestamp": 20, "rawData": "cmF3", "lambdaArn": "arn:x"
            })
        );
    }
}
