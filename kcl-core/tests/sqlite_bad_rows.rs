//! One lease row that cannot be decoded (written by hand, by another tool, or damaged) must not
//! stop the fleet: scans skip it and return the rest; reads and writes of that key fail with an
//! error naming the key and the field, and never overwrite the row.

use kcl_core::kinesis::ShardId;
use kcl_core::lease::{ExtendedSequenceNumber, Lease};
use kcl_core::lease_store::{CheckpointUpdate, LeaseStore, LeaseStoreError, Renewal};
use kcl_core::sqlite::SqliteLeaseStore;
use rusqlite::types::Value;
use std::path::Path;
use std::time::Duration;

fn raw_connection(path: &Path) -> rusqlite::Connection {
    let connection = rusqlite::Connection::open(path).expect("raw open");
    connection
        .busy_timeout(Duration::from_secs(30))
        .expect("busy timeout");
    connection
}

/// Every column of the row with `lease_key`, as stored.
fn raw_row(connection: &rusqlite::Connection, table: &str, lease_key: &str) -> Vec<Value> {
    connection
        .query_row(
            &format!("SELECT * FROM {table} WHERE lease_key = ?1"),
            [lease_key],
            |row| {
                (0..row.as_ref().column_count())
                    .map(|index| row.get::<_, Value>(index))
                    .collect()
            },
        )
        .expect("raw row")
}

fn assert_names_bad_row(error: &LeaseStoreError, lease_key: &str, field: &str, what: &str) {
    assert!(
        matches!(error, LeaseStoreError::InvalidStore(_)),
        "{what}: expected InvalidStore, got {error:?}"
    );
    let message = error.to_string();
    assert!(message.contains(lease_key), "{what}: {message}");
    assert!(message.contains(field), "{what}: {message}");
}

#[tokio::test]
async fn an_undecodable_row_is_skipped_by_scans_and_refused_by_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("leases.db");
    let store = SqliteLeaseStore::open(&path, "app").await.expect("open");
    let good: Vec<ShardId> = (0..4).map(ShardId::from_index).collect();
    for key in &good {
        store
            .create_lease_if_absent(&Lease::new(key.clone(), ExtendedSequenceNumber::LATEST))
            .await
            .expect("create");
    }
    let table = store.table().to_owned();
    let connection = raw_connection(&path);
    // Copies of a good row with one column broken each, inserted with plain SQL.
    let template = good[0].as_str().to_owned();
    let bad_rows = [
        ("bad-checkpoint", "checkpoint", "'garbage'", "checkpoint"),
        (
            "bad-parents",
            "parent_shard_ids",
            "'[not json'",
            "parentShardId",
        ),
        ("bad-counter", "lease_counter", "-5", "leaseCounter"),
    ];
    let columns = "lease_key, lease_owner, lease_counter, checkpoint, checkpoint_sub, \
        pending_checkpoint, pending_checkpoint_sub, pending_checkpoint_state, owner_switches, \
        parent_shard_ids, child_shard_ids, starting_hash_key, ending_hash_key";
    for (key, column, value, _) in bad_rows {
        let selected = columns
            .split(", ")
            .map(|name| match name {
                "lease_key" => format!("'{key}'"),
                "lease_owner" => "'someone'".to_owned(),
                name if name == column => value.to_owned(),
                name => name.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(", ");
        connection
            .execute(
                &format!(
                    "INSERT INTO {table} ({columns}) SELECT {selected} FROM {table} \
                     WHERE lease_key = ?1"
                ),
                [&template],
            )
            .expect("insert a bad row");
    }
    let before: Vec<Vec<Value>> = bad_rows
        .iter()
        .map(|(key, ..)| raw_row(&connection, &table, key))
        .collect();

    // The scan returns the good leases and counts the bad rows.
    let listed: Vec<ShardId> = store
        .list_leases()
        .await
        .expect("a scan with bad rows still succeeds")
        .into_iter()
        .map(|lease| lease.lease_key)
        .collect();
    assert_eq!(listed, good);
    assert_eq!(store.skipped_rows(), bad_rows.len() as u64);

    for (key, _, _, field) in bad_rows {
        let lease_key = ShardId::from(key);
        let error = store.get_lease(&lease_key).await.expect_err("get");
        assert_names_bad_row(&error, key, field, "get_lease");
        let error = store
            .take_lease(&lease_key, 0, "worker")
            .await
            .expect_err("take");
        assert_names_bad_row(&error, key, field, "take_lease");
        let error = store
            .evict_lease(&lease_key, "someone")
            .await
            .expect_err("evict");
        assert_names_bad_row(&error, key, field, "evict_lease");
        let update = CheckpointUpdate {
            checkpoint: Some(ExtendedSequenceNumber::TRIM_HORIZON),
            pending_checkpoint: None,
            pending_checkpoint_state: None,
        };
        let error = store
            .update_checkpoint(&lease_key, "someone", 0, &update)
            .await
            .expect_err("checkpoint");
        assert_names_bad_row(&error, key, field, "update_checkpoint");
        let error = store
            .update_lineage(&lease_key, &[ShardId::from_index(9)], None)
            .await
            .expect_err("lineage");
        assert_names_bad_row(&error, key, field, "update_lineage");
        assert!(
            !store
                .create_lease_if_absent(&Lease::new(
                    lease_key.clone(),
                    ExtendedSequenceNumber::LATEST
                ))
                .await
                .expect("create over a bad row"),
            "a bad row still occupies its key"
        );
    }

    // A renewal batch with a bad row renews the good lease and reports the bad one alone.
    let taken = store
        .take_lease(&good[1], 0, "someone")
        .await
        .expect("take a good lease");
    let renewals = [
        Renewal {
            lease_key: good[1].clone(),
            expected_counter: taken.lease_counter,
            owner: "someone".to_owned(),
        },
        Renewal {
            lease_key: ShardId::from("bad-checkpoint"),
            expected_counter: 0,
            owner: "someone".to_owned(),
        },
    ];
    let results = store.renew_leases(&renewals).await.expect("renew batch");
    assert_eq!(results.len(), 2);
    let renewed = results[0].as_ref().expect("the good lease renews");
    assert_eq!(renewed.lease_counter, taken.lease_counter + 1);
    let error = results[1].as_ref().expect_err("the bad row does not renew");
    assert_names_bad_row(error, "bad-checkpoint", "checkpoint", "renew_leases");

    let after: Vec<Vec<Value>> = bad_rows
        .iter()
        .map(|(key, ..)| raw_row(&connection, &table, key))
        .collect();
    assert_eq!(after, before, "bad rows are never overwritten");

    // Once the row is repaired, the scan sees it again and nothing is skipped.
    for (key, ..) in bad_rows {
        connection
            .execute(&format!("DELETE FROM {table} WHERE lease_key = ?1"), [key])
            .expect("repair");
    }
    assert_eq!(store.list_leases().await.expect("list").len(), good.len());
    assert_eq!(store.skipped_rows(), 0);
}
