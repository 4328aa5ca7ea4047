//! Scenarios in real time: the HTTP client against a `kinesis-broker` server started in-process,
//! a SQLite lease file, and KPL-aggregated input. Generous deadlines, no fixed sleeps.

use broker::engine::{
    Broker, BrokerConfig, PutRecordsInput, PutRecordsRequestEntry, StreamRef, ThroughputLimits,
};
use broker::server::RunningServer;
use bytes::Bytes;
use kcl_core::clock::SystemClock;
use kcl_core::lease_store::LeaseStore;
use kcl_core::sqlite::SqliteLeaseStore;
use kcl_core::stream_client::StreamClient;
use kcl_worker::client::{HttpClientConfig, HttpStreamClient, StaticCredentials};
use kcl_worker::kpl::{UserRecord, aggregate};
use kcl_worker::retrieval::{FanOutConfig, RetrievalMode};
use kcl_worker::testing::{Fleet, FleetConfig, ObservationKind, ProducedRecord, ValidationRules};
use std::sync::Arc;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

async fn sqlite_store(dir: &tempfile::TempDir) -> Arc<dyn LeaseStore> {
    Arc::new(
        SqliteLeaseStore::open(dir.path().join("leases.db"), "fleet-app")
            .await
            .expect("sqlite"),
    )
}

fn broker() -> Broker {
    let mut config = BrokerConfig::default().with_clock(SystemClock::shared());
    config.throughput = ThroughputLimits::off();
    Broker::new(config)
}

/// A 4-shard fleet reading through the HTTP client from an in-process `kinesis-broker`, with
/// its leases in a SQLite file (kept alive by the returned temp dir).
async fn http_fleet(retrieval: RetrievalMode) -> (tempfile::TempDir, RunningServer, Fleet) {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = broker();
    let server = broker::server::spawn(
        broker.clone(),
        Default::default(),
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("server");
    let credentials = StaticCredentials {
        access_key_id: "AKIDEXAMPLE".to_owned(),
        secret_access_key: "secret".to_owned(),
        session_token: None,
    };
    let client: Arc<dyn StreamClient> = Arc::new(
        HttpStreamClient::new(
            HttpClientConfig::new(server.endpoint()).with_credentials(credentials),
        )
        .expect("client"),
    );
    let mut config = FleetConfig::fast(SystemClock::shared(), 4);
    config.retrieval = retrieval;
    let fleet = Fleet::with_client(config, sqlite_store(&dir).await, broker, client)
        .await
        .expect("fleet");
    (dir, server, fleet)
}

async fn http_scenario(retrieval: RetrievalMode) {
    let (_dir, server, fleet) = http_fleet(retrieval).await;
    fleet.add_worker("w1");
    fleet.add_worker("w2");
    fleet.produce(400, 16).await.expect("produce");
    assert!(fleet.wait_all_processed(DEADLINE).await);
    let shards = fleet.open_shards().await.expect("shards");
    fleet.split(&shards[0]).await.expect("split");
    fleet.crash("w1").await;
    fleet.add_worker("w3");
    fleet.produce(400, 16).await.expect("produce");
    assert!(
        fleet.wait_all_processed(DEADLINE).await,
        "processed {} of {}",
        fleet.log().unique_processed(),
        fleet.produced_count()
    );
    fleet.shutdown_all().await;
    let report = fleet.validate(ValidationRules::default()).await;
    assert!(
        report.is_ok(),
        "{:?}\n{}",
        report.errors,
        fleet.lifecycle_trail()
    );
    server.shutdown().await;
}

async fn http_graceful_handoff(retrieval: RetrievalMode) {
    let (_dir, server, fleet) = http_fleet(retrieval).await;
    fleet.add_worker("w1");
    fleet.add_worker("w2");
    // Produce only once the workers are balanced and the victim of any start-up steal has
    // noticed it (its consumer ended): a stale consumer processing a batch after its lease was
    // stolen legitimately causes a redelivery, and this scenario allows no duplicates.
    let balanced = fleet
        .wait_until(DEADLINE, || async {
            let counts = fleet.lease_counts().await;
            let table_balanced = counts.get("w1") == Some(&2) && counts.get("w2") == Some(&2);
            let consumers_settled = fleet
                .handles()
                .iter()
                .all(|handle| handle.metrics().leases_held == 2);
            table_balanced && consumers_settled
        })
        .await;
    assert!(balanced, "two workers hold two leases each");
    fleet.produce(400, 16).await.expect("produce");
    assert!(fleet.wait_all_processed(DEADLINE).await);
    fleet.shutdown("w1").await;
    let moved = fleet
        .wait_until(DEADLINE, || async {
            fleet.lease_counts().await.get("w2") == Some(&4)
        })
        .await;
    assert!(moved, "w2 takes the released leases");
    fleet.produce(400, 16).await.expect("produce");
    assert!(fleet.wait_all_processed(DEADLINE).await);
    fleet.shutdown_all().await;
    let report = fleet
        .validate(ValidationRules {
            allow_duplicates: false,
        })
        .await;
    assert!(report.is_ok(), "{:?}", report.errors);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_graceful_handoff_polling() {
    http_graceful_handoff(RetrievalMode::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_graceful_handoff_fan_out() {
    http_graceful_handoff(RetrievalMode::FanOut(FanOutConfig::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_client_polling_with_sqlite_leases() {
    http_scenario(RetrievalMode::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_client_fan_out_with_sqlite_leases() {
    http_scenario(RetrievalMode::FanOut(FanOutConfig::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpl_aggregates_are_deaggregated_and_checkpointed_by_sub_sequence_polling() {
    kpl_scenario(RetrievalMode::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpl_aggregates_are_deaggregated_and_checkpointed_by_sub_sequence_fan_out() {
    kpl_scenario(RetrievalMode::FanOut(FanOutConfig::default())).await;
}

async fn kpl_scenario(retrieval: RetrievalMode) {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = broker();
    let client: Arc<dyn StreamClient> = Arc::new(kcl_worker::client::EmbeddedStreamClient::new(
        broker.clone(),
    ));
    let mut config = FleetConfig::fast(SystemClock::shared(), 1);
    config.retrieval = retrieval;
    let fleet = Fleet::with_client(config, sqlite_store(&dir).await, broker.clone(), client)
        .await
        .expect("fleet");
    let mut produced = Vec::new();
    let mut entries = Vec::new();
    for aggregate_index in 0..10 {
        let users: Vec<UserRecord> = (0..5)
            .map(|user| UserRecord {
                partition_key: format!("key-{user}"),
                explicit_hash_key: None,
                data: Bytes::from(format!("agg-{aggregate_index}-{user}")),
            })
            .collect();
        produced.extend(users.iter().map(|user| ProducedRecord {
            partition_key: user.partition_key.clone(),
            data: user.data.clone(),
        }));
        entries.push(PutRecordsRequestEntry {
            data: aggregate(&users),
            partition_key: "key-0".to_owned(),
            explicit_hash_key: None,
        });
    }
    broker
        .put_records(PutRecordsInput {
            stream: StreamRef::name("fleet-stream"),
            records: entries,
        })
        .await
        .expect("put");
    fleet.note_produced(produced);
    fleet.add_worker("w1");
    assert!(fleet.wait_all_processed(DEADLINE).await);
    fleet.shutdown_all().await;
    let observations = fleet.log().snapshot();
    let sub_sequences: Vec<u64> = observations
        .iter()
        .filter_map(|o| match &o.kind {
            ObservationKind::Processed { position, .. } => Some(position.sub_sequence_number),
            _ => None,
        })
        .collect();
    assert_eq!(sub_sequences.len(), 50);
    assert!(
        sub_sequences
            .chunks(5)
            .all(|chunk| chunk == [0, 1, 2, 3, 4]),
        "{sub_sequences:?}"
    );
    let lease = fleet
        .lease_store()
        .list_leases()
        .await
        .expect("leases")
        .remove(0);
    assert_eq!(
        lease.checkpoint.sub_sequence_number, 4,
        "checkpointed at the last user record"
    );
    let report = fleet
        .validate(ValidationRules {
            allow_duplicates: false,
        })
        .await;
    assert!(report.is_ok(), "{:?}", report.errors);
}
