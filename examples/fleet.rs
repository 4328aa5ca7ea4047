//! Failover testing with the in-process fleet toolkit (`kcl_worker::testing`): three workers
//! over an embedded broker and a SQLite lease file; one crashes, one is paused past the failover
//! time and resumed, a shard is split — and the validator checks that every record was
//! processed, in order per shard, with duplicates only above the last checkpoint of a lost lease
//! and no child shard before its parent.
//!
//! ```text
//! cargo run -p examples --example fleet
//! ```
//!
//! The same calls work inside a `#[tokio::test]` of your own.

use kcl_core::clock::SystemClock;
use kcl_core::lease_store::LeaseStore;
use kcl_core::sqlite::SqliteLeaseStore;
use kcl_worker::testing::{Fleet, FleetConfig, ValidationRules};
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn LeaseStore> =
        Arc::new(SqliteLeaseStore::open(dir.path().join("leases.db"), "fleet-app").await?);
    let fleet = Fleet::new(FleetConfig::fast(SystemClock::shared(), 4), store).await?;
    for worker in ["w1", "w2", "w3"] {
        fleet.add_worker(worker);
    }
    fleet.produce(2_000, 50).await?;
    anyhow::ensure!(
        fleet.wait_all_processed(Duration::from_secs(30)).await,
        "warm-up"
    );
    println!("leases: {:?}", fleet.lease_counts().await);

    fleet.crash("w1").await;
    println!("crashed w1");
    fleet.produce(2_000, 50).await?;
    anyhow::ensure!(
        fleet.wait_all_processed(Duration::from_secs(30)).await,
        "after the crash"
    );
    println!("leases: {:?}", fleet.lease_counts().await);

    fleet.pause("w2");
    println!("paused w2 past the failover time");
    fleet.produce(1_000, 50).await?;
    anyhow::ensure!(
        fleet.wait_all_processed(Duration::from_secs(30)).await,
        "while paused"
    );
    fleet.resume("w2");
    println!("resumed w2");

    let open = fleet.open_shards().await?;
    fleet.split(&open[0]).await?;
    println!("split {}", open[0]);
    fleet.produce(2_000, 50).await?;
    anyhow::ensure!(
        fleet.wait_all_processed(Duration::from_secs(30)).await,
        "after the split"
    );
    fleet.shutdown_all().await;

    let report = fleet.validate(ValidationRules::default()).await;
    println!(
        "produced {}, processed {} distinct, {} duplicates",
        fleet.produced_count(),
        report.unique_processed,
        report.duplicates
    );
    for error in &report.errors {
        println!("VIOLATION: {error}");
    }
    anyhow::ensure!(report.is_ok(), "the fleet broke a delivery guarantee");
    println!("OK: every record processed, in order, children after parents");
    Ok(())
}
