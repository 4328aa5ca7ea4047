//! `kcl leases` and `kcl status`: the lease table as rows (table or JSON), optionally with each
//! shard's lag read from the stream.

use kcl_core::kinesis::{ShardId, StartingPosition};
use kcl_core::lease::{CheckpointValue, Lease};
use kcl_core::stream_client::StreamClient;
use serde::Serialize;

/// One lease, as `kcl leases` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseRow {
    /// The shard.
    pub shard_id: String,
    /// The worker holding the lease, if any.
    pub owner: Option<String>,
    /// The lease counter (fencing token).
    pub counter: u64,
    /// The checkpoint (sequence number, `/sub-sequence` if non-zero, or a sentinel).
    pub checkpoint: String,
    /// The parent shards.
    pub parents: Vec<String>,
    /// `finished` (checkpoint at SHARD_END), `owned` or `available`.
    pub state: &'static str,
    /// How far the checkpoint is behind the tip of the shard, in milliseconds (`kcl status`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_millis: Option<u64>,
}

impl LeaseRow {
    /// The row of one lease.
    pub fn from_lease(lease: &Lease) -> Self {
        let state = if lease.is_finished() {
            "finished"
        } else if lease.lease_owner.is_some() {
            "owned"
        } else {
            "available"
        };
        LeaseRow {
            shard_id: lease.lease_key.to_string(),
            owner: lease.lease_owner.clone(),
            counter: lease.lease_counter,
            checkpoint: lease.checkpoint.to_string(),
            parents: lease
                .parent_shard_ids
                .iter()
                .map(ShardId::to_string)
                .collect(),
            state,
            lag_millis: None,
        }
    }
}

/// The rows of a lease table, sorted by shard id.
pub fn lease_rows(leases: &[Lease]) -> Vec<LeaseRow> {
    let mut rows: Vec<_> = leases.iter().map(LeaseRow::from_lease).collect();
    rows.sort_by(|a, b| a.shard_id.cmp(&b.shard_id));
    rows
}

/// Renders rows as an aligned text table (with a lag column when any row has a lag).
pub fn render_table(rows: &[LeaseRow]) -> String {
    let with_lag = rows.iter().any(|row| row.lag_millis.is_some());
    let mut header = vec![
        "SHARD",
        "OWNER",
        "COUNTER",
        "CHECKPOINT",
        "PARENTS",
        "STATE",
    ];
    if with_lag {
        header.push("LAG(ms)");
    }
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|cell| (*cell).to_owned()).collect()];
    for row in rows {
        let mut cells = vec![
            row.shard_id.clone(),
            row.owner.clone().unwrap_or_else(|| "-".to_owned()),
            row.counter.to_string(),
            row.checkpoint.clone(),
            if row.parents.is_empty() {
                "-".to_owned()
            } else {
                row.parents.join(",")
            },
            row.state.to_owned(),
        ];
        if with_lag {
            cells.push(
                row.lag_millis
                    .map_or_else(|| "-".to_owned(), |lag| lag.to_string()),
            );
        }
        lines.push(cells);
    }
    let columns = lines[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            lines
                .iter()
                .map(|cells| cells[column].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for cells in &lines {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(padded.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// How far `lease`'s checkpoint is behind the tip of its shard, in milliseconds, read with one
/// `GetRecords` of one record after the checkpoint. `Some(0)` for a finished shard; `None` if
/// the stream could not tell (shard gone, errors).
pub async fn checkpoint_lag(
    client: &dyn StreamClient,
    stream_name: &str,
    lease: &Lease,
) -> Option<u64> {
    let position = match lease.checkpoint.value {
        CheckpointValue::ShardEnd => return Some(0),
        CheckpointValue::Sequence(sequence) => StartingPosition::AfterSequenceNumber(sequence),
        CheckpointValue::Latest => StartingPosition::Latest,
        CheckpointValue::TrimHorizon | CheckpointValue::AtTimestamp => {
            StartingPosition::TrimHorizon
        }
    };
    let iterator = client
        .get_shard_iterator(stream_name, &lease.lease_key, position)
        .await
        .ok()?;
    let output = client.get_records(&iterator, 1).await.ok()?;
    Some(output.millis_behind_latest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcl_core::kinesis::SequenceNumber;
    use kcl_core::lease::ExtendedSequenceNumber;

    fn lease(index: u64, owner: Option<&str>, checkpoint: ExtendedSequenceNumber) -> Lease {
        let mut lease = Lease::new(ShardId::from_index(index), checkpoint);
        lease.lease_owner = owner.map(str::to_owned);
        lease.lease_counter = index * 10;
        lease
    }

    #[test]
    fn rows_show_owner_checkpoint_parents_and_state() {
        let mut child = lease(2, None, ExtendedSequenceNumber::TRIM_HORIZON);
        child.parent_shard_ids = vec![ShardId::from_index(0), ShardId::from_index(1)];
        let leases = [
            child,
            lease(1, Some("w1"), ExtendedSequenceNumber::SHARD_END),
            lease(
                0,
                Some("w2"),
                ExtendedSequenceNumber::new(SequenceNumber::from_u128(42), 3),
            ),
        ];
        let rows = lease_rows(&leases);
        let summary: Vec<_> = rows
            .iter()
            .map(|row| (row.shard_id.as_str(), row.checkpoint.as_str(), row.state))
            .collect();
        assert_eq!(
            summary,
            [
                ("shardId-000000000000", "42/3", "owned"),
                ("shardId-000000000001", "SHARD_END", "finished"),
                ("shardId-000000000002", "TRIM_HORIZON", "available"),
            ]
        );
        let table = render_table(&rows);
        let lines: Vec<_> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("SHARD "));
        assert!(!lines[0].contains("LAG"));
        assert!(lines[3].contains("shardId-000000000000,shardId-000000000001"));
        let json = serde_json::to_value(&rows).expect("json");
        assert_eq!(json[0]["owner"], "w2");
        assert_eq!(json[2]["owner"], serde_json::Value::Null);
        assert!(json[0].get("lag_millis").is_none());
    }

    #[test]
    fn a_lag_column_appears_when_known() {
        let mut rows = lease_rows(&[lease(0, None, ExtendedSequenceNumber::LATEST)]);
        rows[0].lag_millis = Some(1500);
        let table = render_table(&rows);
        assert!(
            table
                .lines()
                .next()
                .is_some_and(|header| header.ends_with("LAG(ms)"))
        );
        assert!(
            table
                .lines()
                .nth(1)
                .is_some_and(|line| line.ends_with("1500"))
        );
    }
}
