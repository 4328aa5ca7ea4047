//! The messages of the KCL MultiLangDaemon protocol: one JSON object per line over the child's
//! stdin (daemon → child) and stdout (child → daemon).

use serde::{Deserialize, Serialize};

/// A record as the protocol delivers it inside `processRecords`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename = "record", rename_all = "camelCase")]
pub struct ProtocolRecord {
    /// The payload, base64.
    pub data: String,
    /// The partition key.
    pub partition_key: String,
    /// The sequence number (decimal string).
    pub sequence_number: String,
    /// The index inside a KPL-aggregated record; 0 for plain records.
    pub sub_sequence_number: u64,
    /// When the broker accepted the record, epoch milliseconds.
    pub approximate_arrival_timestamp: i64,
}

/// A message from the daemon (this worker) to the record processor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "action",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum DaemonMessage {
    /// The processor now owns `shard_id`, starting after the given position.
    Initialize {
        /// The shard.
        shard_id: String,
        /// The checkpoint the processing starts from (sequence number or sentinel name).
        sequence_number: Option<String>,
        /// The checkpoint's sub-sequence number.
        sub_sequence_number: Option<u64>,
    },
    /// A batch of records.
    ProcessRecords {
        /// How far the batch is behind the tip of the shard.
        millis_behind_latest: u64,
        /// The records, in order.
        records: Vec<ProtocolRecord>,
    },
    /// The lease was lost: do not checkpoint any more.
    LeaseLost,
    /// The shard ended: checkpoint (at SHARD_END) before answering.
    ShardEnded,
    /// The worker is shutting down: checkpoint if you wish before answering.
    ShutdownRequested,
    /// Legacy (KCL 1.x) shutdown with reason `TERMINATE` or `ZOMBIE`.
    Shutdown {
        /// `TERMINATE` (shard end) or `ZOMBIE` (lease lost).
        reason: String,
    },
    /// The answer to a checkpoint request.
    Checkpoint {
        /// The position checkpointed (or requested, on failure).
        sequence_number: Option<String>,
        /// Its sub-sequence number.
        sub_sequence_number: Option<u64>,
        /// The Java exception's simple name on failure, e.g. `ShutdownException`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

impl DaemonMessage {
    /// The `action` name, which the child's `status` echoes in `responseFor`.
    pub fn action(&self) -> &'static str {
        match self {
            DaemonMessage::Initialize { .. } => "initialize",
            DaemonMessage::ProcessRecords { .. } => "processRecords",
            DaemonMessage::LeaseLost => "leaseLost",
            DaemonMessage::ShardEnded => "shardEnded",
            DaemonMessage::ShutdownRequested => "shutdownRequested",
            DaemonMessage::Shutdown { .. } => "shutdown",
            DaemonMessage::Checkpoint { .. } => "checkpoint",
        }
    }
}

/// A message from the record processor to the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "action",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ChildMessage {
    /// The processor finished handling an action.
    Status {
        /// The action handled.
        response_for: String,
    },
    /// A checkpoint request; `None` means the largest delivered record (SHARD_END after
    /// `shardEnded`).
    Checkpoint {
        /// The sequence number to checkpoint at.
        #[serde(default, deserialize_with = "sequence_number_text")]
        sequence_number: Option<String>,
        /// Its sub-sequence number.
        #[serde(default)]
        sub_sequence_number: Option<u64>,
    },
}

/// Accepts a sequence number written as a string or (by careless processors) as a number.
fn sequence_number_text<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(text)) => Ok(Some(text)),
        Some(serde_json::Value::Number(number)) => Ok(Some(number.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!(
            "sequenceNumber must be a string or null, got {other}"
        ))),
    }
}

/// What one line of the child's stdout turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildLine {
    /// An empty line (the protocol frames messages with newlines on both sides).
    Blank,
    /// A protocol message.
    Message(ChildMessage),
    /// Anything else: logged and ignored.
    Other(String),
}

/// Classifies one line of the child's stdout.
pub fn parse_child_line(line: &str) -> ChildLine {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return ChildLine::Blank;
    }
    match serde_json::from_str::<ChildMessage>(trimmed) {
        Ok(message) => ChildLine::Message(message),
        Err(_) => ChildLine::Other(trimmed.to_owned()),
    }
}

/// Encodes a daemon message as one line (with its trailing newline).
pub fn encode_daemon_line(message: &DaemonMessage) -> Result<Vec<u8>, serde_json::Error> {
    let mut line = serde_json::to_vec(message)?;
    line.push(b'\n');
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn daemon_messages_have_the_wire_shape() {
        let cases = [
            (
                DaemonMessage::Initialize {
                    shard_id: "shardId-000000000000".into(),
                    sequence_number: Some("TRIM_HORIZON".into()),
                    sub_sequence_number: Some(0),
                },
                json!({"action":"initialize","shardId":"shardId-000000000000",
                       "sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}),
            ),
            (
                DaemonMessage::ProcessRecords {
                    millis_behind_latest: 12,
                    records: vec![ProtocolRecord {
                        data: "aGk=".into(),
                        partition_key: "k".into(),
                        sequence_number: "49590338271490256608559692538361571095921575989136588898"
                            .into(),
                        sub_sequence_number: 0,
                        approximate_arrival_timestamp: 1_700_000_000_123,
                    }],
                },
                json!({"action":"processRecords","millisBehindLatest":12,"records":[{
                    "action":"record","data":"aGk=","partitionKey":"k",
                    "sequenceNumber":"49590338271490256608559692538361571095921575989136588898",
                    "subSequenceNumber":0,"approximateArrivalTimestamp":1_700_000_000_123i64}]}),
            ),
            (DaemonMessage::LeaseLost, json!({"action":"leaseLost"})),
            (DaemonMessage::ShardEnded, json!({"action":"shardEnded"})),
            (
                DaemonMessage::ShutdownRequested,
                json!({"action":"shutdownRequested"}),
            ),
            (
                DaemonMessage::Shutdown {
                    reason: "TERMINATE".into(),
                },
                json!({"action":"shutdown","reason":"TERMINATE"}),
            ),
            (
                DaemonMessage::Checkpoint {
                    sequence_number: Some("5".into()),
                    sub_sequence_number: Some(0),
                    error: None,
                },
                json!({"action":"checkpoint","sequenceNumber":"5","subSequenceNumber":0}),
            ),
            (
                DaemonMessage::Checkpoint {
                    sequence_number: None,
                    sub_sequence_number: None,
                    error: Some("ShutdownException".into()),
                },
                json!({"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,
                       "error":"ShutdownException"}),
            ),
        ];
        for (message, expected) in cases {
            let encoded = encode_daemon_line(&message).expect("encodes");
            assert_eq!(encoded.last(), Some(&b'\n'));
            let value: serde_json::Value = serde_json::from_slice(&encoded).expect("json");
            assert_eq!(value, expected, "{message:?}");
            assert_eq!(value["action"], message.action());
            let decoded: DaemonMessage = serde_json::from_value(value).expect("decodes");
            assert_eq!(decoded, message);
        }
    }

    #[test]
    fn child_lines_are_classified() {
        let cases = [
            ("", ChildLine::Blank),
            ("   \r", ChildLine::Blank),
            (
                r#"{"action": "status", "responseFor": "initialize"}"#,
                ChildLine::Message(ChildMessage::Status {
                    response_for: "initialize".into(),
                }),
            ),
            (
                r#"{"action": "checkpoint", "sequenceNumber": null, "subSequenceNumber": null}"#,
                ChildLine::Message(ChildMessage::Checkpoint {
                    sequence_number: None,
                    sub_sequence_number: None,
                }),
            ),
            (
                r#"{"action": "checkpoint", "sequenceNumber": "17", "subSequenceNumber": 2}"#,
                ChildLine::Message(ChildMessage::Checkpoint {
                    sequence_number: Some("17".into()),
                    sub_sequence_number: Some(2),
                }),
            ),
            (
                r#"{"action": "checkpoint", "sequenceNumber": 17}"#,
                ChildLine::Message(ChildMessage::Checkpoint {
                    sequence_number: Some("17".into()),
                    sub_sequence_number: None,
                }),
            ),
            (
                "Encountered shutdown exception, skipping checkpoint",
                ChildLine::Other("Encountered shutdown exception, skipping checkpoint".into()),
            ),
            (
                r#"{"action": "dance"}"#,
                ChildLine::Other(r#"{"action": "dance"}"#.into()),
            ),
            ("[1, 2]", ChildLine::Other("[1, 2]".into())),
        ];
        for (line, expected) in cases {
            assert_eq!(parse_child_line(line), expected, "{line:?}");
        }
    }
}
