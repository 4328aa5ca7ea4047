//! DynamoDB-specific behaviour of `DynamoDbLeaseStore` on a local DynamoDB-compatible server:
//! items a Java KCL worker wrote (unknown attributes kept, `checkpointOwner` handoffs), damaged
//! items, paginated scans, the table lifecycle (creation, index, wrong key schema) and request
//! counting. The shared conformance suite lives in `lease_stores.rs`.

#![cfg(feature = "dynamodb")]

#[path = "support/dynamodb_local.rs"]
mod dynamodb_local;

use dynamodb_local::LocalDynamoDb;
use kcl_core::dynamodb::sdk::types::{AttributeDefinition, ScalarAttributeType};
use kcl_core::dynamodb::sdk::types::{AttributeValue, BillingMode, KeySchemaElement, KeyType};
use kcl_core::dynamodb::{DynamoDbLeaseStore, DynamoDbOptions};
use kcl_core::kinesis::{HashKeyRange, SequenceNumber, ShardId};
use kcl_core::lease::{ExtendedSequenceNumber, Lease};
use kcl_core::lease_store::{CheckpointUpdate, LeaseStore, LeaseStoreError, Renewal};
use std::collections::HashMap;
use std::time::Duration;

async fn start_server() -> Option<LocalDynamoDb> {
    tokio::task::spawn_blocking(LocalDynamoDb::start)
        .await
        .expect("launcher thread")
        .expect("start local dynamodb")
}

fn options(server: &LocalDynamoDb, table: &str) -> DynamoDbOptions {
    DynamoDbOptions::new(table)
        .with_endpoint_url(server.endpoint_url())
        .with_region("us-east-1")
        .with_static_credentials("test", "test")
}

async fn connect(server: &LocalDynamoDb, table: &str) -> DynamoDbLeaseStore {
    DynamoDbLeaseStore::connect(options(server, table))
        .await
        .expect("connect")
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

fn n(number: u64) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

type Item = HashMap<String, AttributeValue>;

/// An item shaped the way a Java KCL 3.x worker leaves it, with attributes kcl-rs does not model.
fn java_item(shard: &str, owner: &str, counter: u64) -> Item {
    HashMap::from([
        ("leaseKey".to_owned(), s(shard)),
        ("leaseOwner".to_owned(), s(owner)),
        ("leaseCounter".to_owned(), n(counter)),
        ("ownerSwitchesSinceCheckpoint".to_owned(), n(2)),
        (
            "checkpoint".to_owned(),
            s("49590338271490256608559692538361571095921575989136588898"),
        ),
        ("checkpointSubSequenceNumber".to_owned(), n(0)),
        (
            "parentShardId".to_owned(),
            AttributeValue::Ss(vec!["shardId-000000000000".to_owned()]),
        ),
        ("startingHashKey".to_owned(), s("0")),
        (
            "endingHashKey".to_owned(),
            s("340282366920938463463374607431768211455"),
        ),
        (
            "throughputKBps".to_owned(),
            AttributeValue::N("12.5".to_owned()),
        ),
        ("applicationNote".to_owned(), s("written by a Java worker")),
    ])
}

async fn put_raw(store: &DynamoDbLeaseStore, item: Item) {
    store
        .client()
        .put_item()
        .table_name(store.table_name())
        .set_item(Some(item))
        .send()
        .await
        .expect("raw put");
}

async fn get_raw(store: &DynamoDbLeaseStore, shard: &str) -> Item {
    store
        .client()
        .get_item()
        .table_name(store.table_name())
        .key("leaseKey", s(shard))
        .consistent_read(true)
        .send()
        .await
        .expect("raw get")
        .item
        .expect("item exists")
}

fn assert_condition_failed<T: std::fmt::Debug>(result: Result<T, LeaseStoreError>, what: &str) {
    match result {
        Err(LeaseStoreError::ConditionFailed { .. }) => {}
        other => panic!("{what}: expected ConditionFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_java_lease_is_taken_over_and_its_unknown_attributes_kept() {
    let Some(server) = start_server().await else {
        return;
    };
    let store = connect(&server, "java-app").await;
    let shard = "shardId-000000000001";
    put_raw(&store, java_item(shard, "java-worker-1", 41)).await;

    let lease = store
        .get_lease(&ShardId::new(shard))
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(lease.lease_owner.as_deref(), Some("java-worker-1"));
    assert_eq!(lease.lease_counter, 41);
    assert_eq!(
        lease.checkpoint,
        ExtendedSequenceNumber::new(
            "49590338271490256608559692538361571095921575989136588898"
                .parse()
                .expect("sequence"),
            0
        )
    );
    assert_eq!(lease.parent_shard_ids, vec![ShardId::from_index(0)]);
    assert_eq!(lease.hash_key_range, Some(HashKeyRange::FULL));

    // Take it from the dead Java owner, renew, checkpoint, record lineage, evict.
    let key = ShardId::new(shard);
    let taken = store
        .take_lease(&key, 41, "rust-worker")
        .await
        .expect("take");
    assert_eq!(taken.lease_counter, 42);
    assert_eq!(taken.owner_switches_since_checkpoint, 3);
    let renewed = store
        .renew_leases(&[Renewal {
            lease_key: key.clone(),
            expected_counter: 42,
            owner: "rust-worker".to_owned(),
        }])
        .await
        .expect("renew")
        .remove(0)
        .expect("renewed");
    let update = CheckpointUpdate {
        checkpoint: Some(ExtendedSequenceNumber::new(SequenceNumber::from_u128(7), 1)),
        pending_checkpoint: None,
        pending_checkpoint_state: None,
    };
    store
        .update_checkpoint(&key, "rust-worker", renewed.lease_counter, &update)
        .await
        .expect("checkpoint");
    store
        .update_lineage(&key, &[ShardId::from_index(5)], None)
        .await
        .expect("lineage");
    store.evict_lease(&key, "rust-worker").await.expect("evict");

    let raw = get_raw(&store, shard).await;
    assert_eq!(
        raw.get("throughputKBps"),
        Some(&AttributeValue::N("12.5".to_owned()))
    );
    assert_eq!(
        raw.get("applicationNote"),
        Some(&s("written by a Java worker"))
    );
    assert_eq!(raw.get("checkpoint"), Some(&s("7")));
    assert_eq!(raw.get("checkpointSubSequenceNumber"), Some(&n(1)));
    assert_eq!(raw.get("ownerSwitchesSinceCheckpoint"), Some(&n(0)));
    assert_eq!(raw.get("leaseCounter"), Some(&n(45)));
    assert_eq!(raw.get("leaseOwner"), None, "evicted");
    assert_eq!(
        raw.get("childShardIds"),
        Some(&AttributeValue::Ss(vec!["shardId-000000000005".to_owned()]))
    );
    assert_eq!(raw.get("startingHashKey"), Some(&s("0")), "range kept");
}

#[tokio::test]
async fn a_java_graceful_handoff_blocks_renewal_and_a_take_clears_it() {
    let Some(server) = start_server().await else {
        return;
    };
    let store = connect(&server, "handoff").await;
    let shard = "shardId-000000000002";
    let mut item = java_item(shard, "rust-worker", 10);
    // A KCL 3.x handoff in progress: checkpointOwner still has to checkpoint.
    item.insert("checkpointOwner".to_owned(), s("rust-worker"));
    put_raw(&store, item).await;
    let key = ShardId::new(shard);
    let results = store
        .renew_leases(&[Renewal {
            lease_key: key.clone(),
            expected_counter: 10,
            owner: "rust-worker".to_owned(),
        }])
        .await
        .expect("renew batch");
    match &results[0] {
        Err(LeaseStoreError::ConditionFailed { reason, .. }) => {
            assert!(reason.contains("checkpointOwner"), "{reason}");
        }
        other => panic!("renewal during a handoff: {other:?}"),
    }
    let taken = store
        .take_lease(&key, 10, "rust-worker")
        .await
        .expect("take");
    assert_eq!(taken.lease_counter, 11);
    assert_eq!(get_raw(&store, shard).await.get("checkpointOwner"), None);
    store
        .renew_leases(&[Renewal {
            lease_key: key.clone(),
            expected_counter: 11,
            owner: "rust-worker".to_owned(),
        }])
        .await
        .expect("renew batch")
        .remove(0)
        .expect("renews after the take");
}

#[tokio::test]
async fn a_damaged_item_is_skipped_by_scans_and_refused_by_reads_and_writes() {
    let Some(server) = start_server().await else {
        return;
    };
    let store = connect(&server, "damaged").await;
    store
        .create_lease_if_absent(&Lease::new(
            ShardId::from_index(1),
            ExtendedSequenceNumber::LATEST,
        ))
        .await
        .expect("create");
    let mut bad = java_item("shardId-000000000009", "someone", 3);
    bad.insert("leaseCounter".to_owned(), s("three"));
    put_raw(&store, bad).await;

    let leases = store.list_leases().await.expect("list");
    assert_eq!(
        leases
            .iter()
            .map(|lease| lease.lease_key.clone())
            .collect::<Vec<_>>(),
        vec![ShardId::from_index(1)]
    );
    let bad_key = ShardId::from_index(9);
    for (what, error) in [
        (
            "get",
            store
                .get_lease(&bad_key)
                .await
                .map(|_| ())
                .expect_err("get"),
        ),
        (
            "take",
            store
                .take_lease(&bad_key, 3, "me")
                .await
                .map(|_| ())
                .expect_err("take"),
        ),
        (
            "evict",
            store
                .evict_lease(&bad_key, "someone")
                .await
                .map(|_| ())
                .expect_err("evict"),
        ),
    ] {
        let text = error.to_string();
        assert!(
            matches!(error, LeaseStoreError::InvalidStore(_)),
            "{what}: {text}"
        );
        assert!(
            text.contains("shardId-000000000009") && text.contains("leaseCounter"),
            "{what}: {text}"
        );
    }
    assert_eq!(
        get_raw(&store, "shardId-000000000009")
            .await
            .get("leaseCounter"),
        Some(&s("three")),
        "left as it is"
    );
}

#[tokio::test]
async fn scans_follow_every_page() {
    let Some(server) = start_server().await else {
        return;
    };
    let store = DynamoDbLeaseStore::connect(options(&server, "paged").with_scan_page_limit(2))
        .await
        .expect("connect");
    for index in 0..7 {
        store
            .create_lease_if_absent(&Lease::new(
                ShardId::from_index(index),
                ExtendedSequenceNumber::TRIM_HORIZON,
            ))
            .await
            .expect("create");
    }
    let before = store.requests_sent();
    let leases = store.list_leases().await.expect("list");
    let pages = store.requests_sent() - before;
    assert_eq!(
        leases
            .into_iter()
            .map(|lease| lease.lease_key)
            .collect::<Vec<_>>(),
        (0..7).map(ShardId::from_index).collect::<Vec<_>>()
    );
    assert!(
        pages >= 4,
        "7 leases in pages of 2 need at least 4 scans, counted {pages}"
    );
}

#[tokio::test]
async fn one_request_per_renewal_and_per_write() {
    let Some(server) = start_server().await else {
        return;
    };
    let store = connect(&server, "counting").await;
    let renewals: Vec<Renewal> = (0..5)
        .map(|index| Renewal {
            lease_key: ShardId::from_index(index),
            expected_counter: 1,
            owner: "w".to_owned(),
        })
        .collect();
    for renewal in &renewals {
        let lease = Lease::new(renewal.lease_key.clone(), ExtendedSequenceNumber::LATEST);
        store.create_lease_if_absent(&lease).await.expect("create");
        store
            .take_lease(&renewal.lease_key, 0, "w")
            .await
            .expect("take");
    }
    let before = store.requests_sent();
    let results = store.renew_leases(&renewals).await.expect("renew");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        store.requests_sent() - before,
        5,
        "one UpdateItem per lease"
    );
    let before = store.requests_sent();
    assert_condition_failed(
        store.take_lease(&ShardId::from_index(0), 0, "other").await,
        "stale take",
    );
    assert!(
        store.requests_sent() - before <= 2,
        "a failed take reads at most once more"
    );
}

#[tokio::test]
async fn the_table_is_created_on_demand_with_the_owner_index() {
    let Some(server) = start_server().await else {
        return;
    };
    let store =
        DynamoDbLeaseStore::connect(options(&server, "with-index").with_lease_owner_index(true))
            .await
            .expect("connect");
    let table = store
        .client()
        .describe_table()
        .table_name("with-index")
        .send()
        .await
        .expect("describe")
        .table
        .expect("table");
    let key_schema: Vec<(String, KeyType)> = table
        .key_schema()
        .iter()
        .map(|element| {
            (
                element.attribute_name().to_owned(),
                element.key_type().clone(),
            )
        })
        .collect();
    assert_eq!(key_schema, vec![("leaseKey".to_owned(), KeyType::Hash)]);
    assert_eq!(
        table
            .billing_mode_summary()
            .and_then(|summary| summary.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
    let index = table
        .global_secondary_indexes()
        .iter()
        .find(|index| index.index_name() == Some("LeaseOwnerToLeaseKeyIndex"))
        .expect("owner index");
    let index_keys: Vec<&str> = index
        .key_schema()
        .iter()
        .map(|element| element.attribute_name())
        .collect();
    assert_eq!(index_keys, ["leaseOwner", "leaseKey"]);

    // Connecting again to the existing table works; a missing table without creation does not.
    connect(&server, "with-index").await;
    let missing =
        DynamoDbLeaseStore::connect(options(&server, "missing").with_create_table_if_absent(false))
            .await;
    match missing {
        Err(LeaseStoreError::Unavailable(message)) => {
            assert!(message.contains("missing"), "{message}")
        }
        other => panic!("missing table: {other:?}"),
    }
}

#[tokio::test]
async fn a_table_with_another_key_schema_is_refused() {
    let Some(server) = start_server().await else {
        return;
    };
    let store = connect(&server, "some-leases").await;
    store
        .client()
        .create_table()
        .table_name("orders")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("orderId")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("orderId")
                .attribute_type(ScalarAttributeType::N)
                .build()
                .expect("definition"),
        )
        .send()
        .await
        .expect("create foreign table");
    match DynamoDbLeaseStore::connect(options(&server, "orders")).await {
        Err(LeaseStoreError::InvalidStore(message)) => {
            assert!(message.contains("orders"), "{message}");
            assert!(message.contains("orderId (N) HASH"), "{message}");
            assert!(message.contains("leaseKey (S)"), "{message}");
        }
        other => panic!("foreign table: {other:?}"),
    }
}

#[tokio::test]
async fn bad_options_and_an_unreachable_endpoint_are_clear_errors() {
    match DynamoDbLeaseStore::connect(DynamoDbOptions::new("x")).await {
        Err(LeaseStoreError::InvalidStore(message)) => {
            assert!(message.contains("table_name"), "{message}")
        }
        other => panic!("short table name: {other:?}"),
    }
    // A port nobody listens on: a transport failure, retried inside the budget, then Storage.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let options = DynamoDbOptions::new("nowhere")
        .with_endpoint_url(format!("http://127.0.0.1:{port}"))
        .with_region("us-east-1")
        .with_static_credentials("test", "test")
        .with_retry_budget(Duration::from_millis(200));
    match DynamoDbLeaseStore::connect(options).await {
        Err(error @ LeaseStoreError::Storage(_)) => {
            assert!(error.is_retryable());
            assert!(
                error.to_string().contains("describe table nowhere"),
                "{error}"
            );
        }
        other => panic!("unreachable endpoint: {other:?}"),
    }
}

/// A fault injector in front of the real server: throttles, or loses the answers of writes that
/// did take effect; everything else is forwarded.
mod faulty_proxy {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// One HTTP/1.1 message: the head (start line and headers) and the body.
    fn read_message(reader: &mut impl BufRead) -> std::io::Result<Option<(String, Vec<u8>)>> {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(None);
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let length = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())
                    .flatten()
            })
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        Ok(Some((head, body)))
    }

    fn forward(upstream_port: u16, head: &str, body: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut upstream = TcpStream::connect(("127.0.0.1", upstream_port))?;
        upstream.write_all(head.as_bytes())?;
        upstream.write_all(body)?;
        let mut reader = BufReader::new(upstream);
        let (response_head, response_body) =
            read_message(&mut reader)?.ok_or_else(|| std::io::Error::other("upstream closed"))?;
        let mut response = response_head.into_bytes();
        response.extend_from_slice(&response_body);
        Ok(response)
    }

    fn throttled() -> Vec<u8> {
        let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"injected throttle"}"#;
        format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.0\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    /// What the proxy does wrong, and how many times.
    #[derive(Debug, Clone, Copy)]
    pub(super) enum Fault {
        /// Answer the first `n` requests with a throttling error instead of forwarding them.
        Throttle(u64),
        /// Forward the first `n` `UpdateItem` requests (they take effect) but drop the
        /// connection instead of returning the answer, as a network failure would.
        LoseUpdateResponses(u64),
    }

    fn is_update_item(head: &str) -> bool {
        head.lines().any(|line| {
            line.split_once(':').is_some_and(|(name, value)| {
                name.eq_ignore_ascii_case("x-amz-target") && value.trim().ends_with(".UpdateItem")
            })
        })
    }

    /// Starts the proxy; returns its port and the count of requests it has seen.
    pub(super) fn start(upstream_port: u16, fault: Fault) -> (u16, Arc<AtomicU64>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("address").port();
        let seen = Arc::new(AtomicU64::new(0));
        let faults = Arc::new(AtomicU64::new(0));
        let counter = seen.clone();
        std::thread::spawn(move || {
            for connection in listener.incoming() {
                let Ok(mut client) = connection else { return };
                let counter = counter.clone();
                let faults = faults.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(client.try_clone().expect("clone"));
                    while let Ok(Some((head, body))) = read_message(&mut reader) {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let response = match fault {
                            Fault::Throttle(n) if faults.fetch_add(1, Ordering::SeqCst) < n => {
                                throttled()
                            }
                            Fault::LoseUpdateResponses(n)
                                if is_update_item(&head)
                                    && faults.fetch_add(1, Ordering::SeqCst) < n =>
                            {
                                let _ = forward(upstream_port, &head, &body);
                                let _ = client.shutdown(std::net::Shutdown::Both);
                                return;
                            }
                            _ => match forward(upstream_port, &head, &body) {
                                Ok(response) => response,
                                Err(_) => return,
                            },
                        };
                        if client.write_all(&response).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (port, seen)
    }
}

use faulty_proxy::Fault;

#[tokio::test]
async fn throttling_is_retried_inside_the_budget_then_reported() {
    let Some(server) = start_server().await else {
        return;
    };
    let upstream_port = server.port();
    // Three throttles, then the real server: connect succeeds after retrying.
    let (port, seen) = faulty_proxy::start(upstream_port, Fault::Throttle(3));
    let through_throttles = options(&server, "throttled")
        .with_endpoint_url(format!("http://127.0.0.1:{port}"))
        .with_retry_budget(Duration::from_secs(10));
    let store = DynamoDbLeaseStore::connect(through_throttles)
        .await
        .expect("connect through throttles");
    assert!(
        store.requests_sent() >= 4,
        "3 throttled attempts were retried"
    );
    assert_eq!(
        store.requests_sent(),
        seen.load(std::sync::atomic::Ordering::SeqCst)
    );
    store
        .create_lease_if_absent(&Lease::new(
            ShardId::from_index(0),
            ExtendedSequenceNumber::LATEST,
        ))
        .await
        .expect("create after the throttles");

    // Throttled forever: the budget runs out and the error says Throttled (retryable).
    let (port, seen) = faulty_proxy::start(upstream_port, Fault::Throttle(u64::MAX));
    let always_throttled = options(&server, "throttled")
        .with_endpoint_url(format!("http://127.0.0.1:{port}"))
        .with_retry_budget(Duration::from_millis(300));
    match DynamoDbLeaseStore::connect(always_throttled).await {
        Err(error @ LeaseStoreError::Throttled(_)) => {
            assert!(error.is_retryable());
            assert!(
                error
                    .to_string()
                    .contains("ProvisionedThroughputExceededException"),
                "{error}"
            );
        }
        other => panic!("always throttled: {other:?}"),
    }
    assert!(
        seen.load(std::sync::atomic::Ordering::SeqCst) > 1,
        "retried before giving up"
    );
}

#[tokio::test]
async fn a_write_whose_answer_was_lost_is_recognised_when_its_retry_fails_the_condition() {
    let Some(server) = start_server().await else {
        return;
    };
    let direct = connect(&server, "lost-answers").await;
    for index in 0..3 {
        let lease = Lease::new(ShardId::from_index(index), ExtendedSequenceNumber::LATEST);
        direct.create_lease_if_absent(&lease).await.expect("create");
    }
    // Every first UpdateItem through the proxy is applied by the server, but its answer is lost:
    // the retry then fails its condition (the counter moved), and the store must see that the
    // lease already shows its own write.
    let (port, _) = faulty_proxy::start(server.port(), Fault::LoseUpdateResponses(1));
    let through_proxy = options(&server, "lost-answers")
        .with_endpoint_url(format!("http://127.0.0.1:{port}"))
        .with_retry_budget(Duration::from_secs(10));
    let store = DynamoDbLeaseStore::connect(through_proxy)
        .await
        .expect("connect");
    let taken = store
        .take_lease(&ShardId::from_index(0), 0, "worker-a")
        .await
        .expect("take succeeds although its first answer was lost");
    assert_eq!(taken.lease_counter, 1);
    assert!(taken.is_owned_by("worker-a"));
    // Later writes go through normally, and the lease is exactly as one take leaves it.
    let renewed = store
        .renew_leases(&[Renewal {
            lease_key: ShardId::from_index(0),
            expected_counter: 1,
            owner: "worker-a".to_owned(),
        }])
        .await
        .expect("renew")
        .remove(0)
        .expect("renewed");
    assert_eq!(renewed.lease_counter, 2);
    assert_eq!(
        direct
            .get_lease(&ShardId::from_index(0))
            .await
            .expect("get")
            .expect("exists")
            .owner_switches_since_checkpoint,
        1
    );
}
