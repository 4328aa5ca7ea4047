//! The status of an application at one moment: every shard (owner, counter, checkpoint, lag,
//! lineage) and every worker with its shards, read from a lease store (any `LeaseStore`:
//! SQLite, DynamoDB, ...) and, for the lag, the stream.

use super::lag_cache::{DEFAULT_LAG_MAX_AGE, LagCache};
use crate::leases::{LeaseRow, lease_rows};
use kcl_core::clock::SharedClock;
use kcl_core::lease_store::{LeaseStore, LeaseStoreError};
use kcl_core::stream_client::StreamClient;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// One shard as the status page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShardStatus {
    /// The lease row: shard, owner, counter, checkpoint, parents, state, lag.
    #[serde(flatten)]
    pub lease: LeaseRow,
    /// The shards whose parents include this one.
    pub children: Vec<String>,
    /// The generation: 0 for a shard without a parent in the table, else one more than its
    /// deepest parent's.
    pub depth: usize,
}

/// One worker and the shards it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerStatus {
    /// The worker id.
    pub worker_id: String,
    /// The shards it holds (unfinished leases it owns), sorted.
    pub shards: Vec<String>,
}

/// Everything the status page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusSnapshot {
    /// The stream, when known.
    pub stream: Option<String>,
    /// Every shard, sorted by id.
    pub shards: Vec<ShardStatus>,
    /// Every worker holding a lease, sorted by id.
    pub workers: Vec<WorkerStatus>,
}

impl StatusSnapshot {
    /// The snapshot of lease rows (pure: children, generations and workers derived here).
    pub fn from_rows(stream: Option<String>, rows: Vec<LeaseRow>) -> Self {
        let mut children: HashMap<String, Vec<String>> = HashMap::new();
        for row in &rows {
            for parent in &row.parents {
                children
                    .entry(parent.clone())
                    .or_default()
                    .push(row.shard_id.clone());
            }
        }
        let parents_of: HashMap<&str, &[String]> = rows
            .iter()
            .map(|row| (row.shard_id.as_str(), row.parents.as_slice()))
            .collect();
        let mut depths: HashMap<String, usize> = HashMap::new();
        for row in &rows {
            depth_of(&row.shard_id, &parents_of, &mut depths, 0);
        }
        let mut workers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for row in &rows {
            if let Some(owner) = &row.owner
                && row.state != "finished"
            {
                workers
                    .entry(owner.clone())
                    .or_default()
                    .push(row.shard_id.clone());
            }
        }
        let shards = rows
            .into_iter()
            .map(|lease| {
                let mut shard_children = children.remove(&lease.shard_id).unwrap_or_default();
                shard_children.sort();
                let depth = depths.get(&lease.shard_id).copied().unwrap_or(0);
                ShardStatus {
                    lease,
                    children: shard_children,
                    depth,
                }
            })
            .collect();
        let workers = workers
            .into_iter()
            .map(|(worker_id, mut shards)| {
                shards.sort();
                WorkerStatus { worker_id, shards }
            })
            .collect();
        StatusSnapshot {
            stream,
            shards,
            workers,
        }
    }
}

/// The generation of `shard`, memoised; `guard` bounds the recursion on a (corrupt) cycle.
fn depth_of(
    shard: &str,
    parents_of: &HashMap<&str, &[String]>,
    depths: &mut HashMap<String, usize>,
    guard: usize,
) -> usize {
    if let Some(depth) = depths.get(shard) {
        return *depth;
    }
    let parents = parents_of.get(shard).copied().unwrap_or_default();
    let depth = if guard > parents_of.len() {
        0
    } else {
        parents
            .iter()
            .filter(|parent| parents_of.contains_key(parent.as_str()))
            .map(|parent| depth_of(parent, parents_of, depths, guard + 1) + 1)
            .max()
            .unwrap_or(0)
    };
    depths.insert(shard.to_owned(), depth);
    depth
}

/// Where a status comes from: a lease store and, for the lag column, the stream.
#[derive(Clone)]
pub struct StatusSource {
    /// The lease table.
    pub store: Arc<dyn LeaseStore>,
    /// The stream client and stream name, and the remembered lags, for each shard's lag
    /// (`None`: no lag column).
    pub stream: Option<StreamLag>,
}

/// What the lag column needs: the stream and the lags measured lately.
#[derive(Clone)]
pub struct StreamLag {
    /// The stream client.
    pub client: Arc<dyn StreamClient>,
    /// The stream's name.
    pub name: String,
    /// Lags measured lately (shared by every snapshot of this source).
    pub cache: Arc<LagCache>,
}

impl StreamLag {
    /// The lag column of `name` read through `client`, each shard measured at most once per
    /// [`DEFAULT_LAG_MAX_AGE`] on `clock`.
    pub fn new(client: Arc<dyn StreamClient>, name: &str, clock: SharedClock) -> Self {
        StreamLag {
            client,
            name: name.to_owned(),
            cache: Arc::new(LagCache::new(clock, DEFAULT_LAG_MAX_AGE)),
        }
    }
}

impl std::fmt::Debug for StreamLag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamLag")
            .field("name", &self.name)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for StatusSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusSource")
            .field("stream", &self.stream.as_ref().map(|lag| &lag.name))
            .finish_non_exhaustive()
    }
}

impl StatusSource {
    /// Reads the lease table now, with each shard's lag as measured within the cache's age.
    pub async fn snapshot(&self) -> Result<StatusSnapshot, LeaseStoreError> {
        let leases = self.store.list_leases().await?;
        let mut rows = lease_rows(&leases);
        if let Some(lag) = &self.stream {
            let leases: Vec<&kcl_core::lease::Lease> = leases.iter().collect();
            let lags = lag
                .cache
                .lags(lag.client.as_ref(), &lag.name, &leases)
                .await;
            for row in &mut rows {
                row.lag_millis = lags.get(&row.shard_id).copied().flatten();
            }
        }
        let stream = self.stream.as_ref().map(|lag| lag.name.clone());
        Ok(StatusSnapshot::from_rows(stream, rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(shard: &str, owner: Option<&str>, parents: &[&str], state: &'static str) -> LeaseRow {
        LeaseRow {
            shard_id: shard.to_owned(),
            owner: owner.map(str::to_owned),
            counter: 1,
            checkpoint: "TRIM_HORIZON".to_owned(),
            parents: parents.iter().map(|p| (*p).to_owned()).collect(),
            state,
            lag_millis: None,
        }
    }

    #[test]
    fn lineage_depths_children_and_workers() {
        // 0 and 1 merged into 3; 2 split into 4 and 5; 5 missing parent 9 (already deleted).
        let rows = vec![
            row("s0", Some("w1"), &[], "finished"),
            row("s1", Some("w2"), &[], "finished"),
            row("s2", Some("w2"), &[], "finished"),
            row("s3", Some("w1"), &["s0", "s1"], "owned"),
            row("s4", Some("w2"), &["s2"], "owned"),
            row("s5", None, &["s2", "s9"], "available"),
            row("s6", Some("w1"), &["s3"], "owned"),
        ];
        let snapshot = StatusSnapshot::from_rows(Some("orders".to_owned()), rows);
        let summary: Vec<(&str, usize, Vec<&str>)> = snapshot
            .shards
            .iter()
            .map(|shard| {
                (
                    shard.lease.shard_id.as_str(),
                    shard.depth,
                    shard.children.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("s0", 0, vec!["s3"]),
                ("s1", 0, vec!["s3"]),
                ("s2", 0, vec!["s4", "s5"]),
                ("s3", 1, vec!["s6"]),
                ("s4", 1, vec![]),
                ("s5", 1, vec![]),
                ("s6", 2, vec![]),
            ]
        );
        let workers: Vec<(&str, Vec<&str>)> = snapshot
            .workers
            .iter()
            .map(|w| {
                (
                    w.worker_id.as_str(),
                    w.shards.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            workers,
            [("w1", vec!["s3", "s6"]), ("w2", vec!["s4"])],
            "finished leases are not held"
        );
    }

    #[test]
    fn a_parent_cycle_does_not_recurse_forever() {
        let rows = vec![
            row("a", None, &["b"], "available"),
            row("b", None, &["a"], "available"),
        ];
        let snapshot = StatusSnapshot::from_rows(None, rows);
        assert_eq!(snapshot.shards.len(), 2);
    }
}
