//! Observability of real processes: `/metrics` of a real `kcl worker` and a real
//! `kinesis-broker`, parsed with a Prometheus text parser (not a regex), move as records flow;
//! the worker's `/health` turns 503 while another process holds the lease file's write lock
//! and back to 200 once it lets go.
//!
//! Needs the `kinesis-broker` and `kcl` binaries of the same profile next to the test
//! executable: `cargo test -p tests` builds them.

use anyhow::Context;
use prometheus_parse::{Sample, Scrape, Value};
use std::future::Future;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};
use tests::fleet::{FleetOptions, ProcessFleet};

/// Deadline of anything a correct process does in a few seconds (generous for a loaded machine).
const LONG: Duration = Duration::from_secs(90);

/// A port free right now on loopback (the OS does not hand it out again at once).
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Polls `condition` every 200 ms until it returns `Some`, for at most `deadline`.
async fn poll<T, F, Fut>(what: &str, deadline: Duration, mut condition: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let started = Instant::now();
    let mut last_error = String::new();
    loop {
        match condition().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last_error = format!("{error:#}"),
        }
        anyhow::ensure!(
            started.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what} (last error: {last_error})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// GETs `url`'s Prometheus text and parses it.
async fn scrape(url: &str) -> anyhow::Result<Scrape> {
    let response = reqwest::get(url)
        .await
        .with_context(|| format!("GET {url}"))?;
    anyhow::ensure!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(
        content_type.starts_with("text/plain"),
        "GET {url}: content type {content_type:?}"
    );
    let text = response.text().await?;
    Ok(Scrape::parse(text.lines().map(|line| Ok(line.to_owned())))?)
}

/// The value of a counter, gauge or untyped sample; a histogram's total count.
fn sample_value(sample: &Sample) -> f64 {
    match &sample.value {
        Value::Counter(value) | Value::Gauge(value) | Value::Untyped(value) => *value,
        Value::Histogram(buckets) => buckets
            .iter()
            .map(|bucket| bucket.count)
            .fold(0.0, f64::max),
        Value::Summary(_) => 0.0,
    }
}

/// The samples of `metric` whose labels include every `(name, value)` of `labels`.
fn samples<'a>(
    scrape: &'a Scrape,
    metric: &'a str,
    labels: &'a [(&'a str, &'a str)],
) -> impl Iterator<Item = &'a Sample> + 'a {
    scrape.samples.iter().filter(move |sample| {
        sample.metric == metric
            && labels
                .iter()
                .all(|(name, value)| sample.labels.get(name) == Some(*value))
    })
}

/// The sum of `metric` over the samples matching `labels`.
fn total(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    samples(scrape, metric, labels).map(sample_value).sum()
}

fn is_histogram(scrape: &Scrape, metric: &str) -> bool {
    scrape
        .samples
        .iter()
        .any(|sample| sample.metric == metric && matches!(sample.value, Value::Histogram(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_and_broker_metrics_move_as_records_flow() -> anyhow::Result<()> {
    let broker_port = free_port()?;
    let broker_metrics_addr = format!("127.0.0.1:{broker_port}");
    let mut fleet = ProcessFleet::start_with_broker_args(
        "observe-metrics",
        FleetOptions {
            shards: 3,
            failover_ms: 3000,
            durable: true,
            ..FleetOptions::default()
        },
        &["--metrics-listen", &broker_metrics_addr],
    )
    .await?;
    fleet.wait_active().await?;
    let stream = "observe-metrics-stream";
    let broker_metrics = format!("http://{broker_metrics_addr}/metrics");
    let worker_port = free_port()?;
    let worker_metrics = format!("http://127.0.0.1:{worker_port}/metrics");
    // A bare port means loopback.
    fleet.start_worker_with("w1", &["--metrics-listen", &worker_port.to_string()])?;

    fleet.produce(200).await?;
    let worker = poll(
        "the worker to count 200 processed records",
        LONG,
        || async {
            let scrape = scrape(&worker_metrics).await?;
            let processed = total(
                &scrape,
                "kcl_records_processed_total",
                &[("worker_id", "w1")],
            );
            let held = total(&scrape, "kcl_leases_held", &[("worker_id", "w1")]);
            Ok((processed >= 200.0 && held == 3.0).then_some(scrape))
        },
    )
    .await?;
    // A lease lost on a badly stalled machine is taken again and its uncheckpointed tail
    // processed again; otherwise every record is counted exactly once.
    let lost = total(&worker, "kcl_leases_lost_total", &[]);
    let processed = total(&worker, "kcl_records_processed_total", &[]);
    if lost == 0.0 {
        assert_eq!(processed, 200.0, "every record counted once");
        assert_eq!(total(&worker, "kcl_leases_taken_total", &[]), 3.0);
    } else {
        assert!(processed >= 200.0);
        assert!(total(&worker, "kcl_leases_taken_total", &[]) > 3.0);
    }
    assert!(total(&worker, "kcl_bytes_processed_total", &[]) > 200.0);
    let lag_shards: Vec<&str> = samples(&worker, "kcl_shard_millis_behind_latest", &[])
        .filter_map(|sample| sample.labels.get("shard_id"))
        .collect();
    assert_eq!(
        lag_shards.len(),
        3,
        "one lag gauge per shard: {lag_shards:?}"
    );
    assert!(is_histogram(&worker, "kcl_processing_duration_seconds"));
    assert!(total(&worker, "kcl_processing_duration_seconds", &[]) > 0.0);
    // The sink processor checkpoints every batch.
    assert!(total(&worker, "kcl_checkpoints_total", &[]) > 0.0);
    assert!(total(&worker, "kcl_checkpoint_duration_seconds", &[]) > 0.0);

    let broker = poll("the broker to count 200 records out", LONG, || async {
        let scrape = scrape(&broker_metrics).await?;
        let out = total(
            &scrape,
            "kcl_broker_records_out_total",
            &[("stream", stream)],
        );
        Ok((out >= 200.0).then_some(scrape))
    })
    .await?;
    assert_eq!(
        total(
            &broker,
            "kcl_broker_records_in_total",
            &[("stream", stream)]
        ),
        200.0
    );
    assert!(total(&broker, "kcl_broker_bytes_in_total", &[("stream", stream)]) > 200.0);
    let put_requests = total(
        &broker,
        "kcl_broker_requests_total",
        &[("operation", "PutRecords"), ("error_type", "none")],
    );
    assert!(put_requests >= 1.0, "PutRecords counted: {put_requests}");
    assert!(
        total(
            &broker,
            "kcl_broker_requests_total",
            &[("operation", "GetRecords")]
        ) > 0.0
    );
    assert!(is_histogram(&broker, "kcl_broker_request_duration_seconds"));
    // Durable broker: every put was fsynced, in group commits.
    assert!(total(&broker, "kcl_broker_fsync_duration_seconds", &[]) > 0.0);
    assert!(total(&broker, "kcl_broker_group_commit_appends", &[]) > 0.0);

    // The series keep moving: 100 more records.
    fleet.produce(100).await?;
    poll("both processes to count 300 records", LONG, || async {
        let worker = scrape(&worker_metrics).await?;
        let broker = scrape(&broker_metrics).await?;
        let processed = total(&worker, "kcl_records_processed_total", &[]);
        let put = total(
            &broker,
            "kcl_broker_records_in_total",
            &[("stream", stream)],
        );
        Ok((processed >= 300.0 && put >= 300.0).then_some(()))
    })
    .await?;
    // Leases are renewed every third of the failover time: a renewal run is timed.
    let worker = poll("a timed lease renewal", LONG, || async {
        let scrape = scrape(&worker_metrics).await?;
        let renewals = total(&scrape, "kcl_lease_renewal_duration_seconds", &[]);
        Ok((renewals > 0.0).then_some(scrape))
    })
    .await?;
    assert!(is_histogram(&worker, "kcl_lease_renewal_duration_seconds"));
    // An error type is counted per operation.
    let api_error = reqwest::Client::new()
        .post(fleet.endpoint())
        .header("x-amz-target", "Kinesis_20131202.DescribeStreamSummary")
        .header("content-type", "application/x-amz-json-1.1")
        // Signed in form (as AWS requires); the broker checks no signature without --auth-keys.
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/kinesis/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=00",
        )
        .header("x-amz-date", "20260101T000000Z")
        .body(r#"{"StreamName":"no-such-stream"}"#)
        .send()
        .await?;
    assert_eq!(api_error.status(), 400);
    let broker = scrape(&broker_metrics).await?;
    assert_eq!(
        total(
            &broker,
            "kcl_broker_requests_total",
            &[
                ("operation", "DescribeStreamSummary"),
                ("error_type", "ResourceNotFoundException")
            ]
        ),
        1.0
    );
    Ok(())
}

/// Holds the SQLite write lock of `path` (`BEGIN IMMEDIATE`) from another connection until the
/// returned sender is dropped or sent to.
fn lock_lease_file(path: &Path) -> anyhow::Result<std::sync::mpsc::Sender<()>> {
    let connection = rusqlite::Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(60))?;
    connection.execute_batch("BEGIN IMMEDIATE")?;
    let (release, released) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let _ = released.recv();
        let _ = connection.execute_batch("ROLLBACK");
    });
    Ok(release)
}

/// `/health`'s status code and JSON body.
async fn health(url: &str) -> anyhow::Result<(u16, serde_json::Value)> {
    let response = reqwest::get(url).await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_turns_503_while_the_lease_store_is_unavailable_and_back_to_200()
-> anyhow::Result<()> {
    let mut fleet = ProcessFleet::start(
        "observe-health",
        FleetOptions {
            shards: 2,
            failover_ms: 2000,
            durable: false,
            ..FleetOptions::default()
        },
    )
    .await?;
    let port = free_port()?;
    let health_url = format!("http://127.0.0.1:{port}/health");
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    fleet.start_worker_with("w1", &["--metrics-listen", &format!("127.0.0.1:{port}")])?;
    poll(
        "the worker to hold both leases and be healthy",
        LONG,
        || async {
            let (status, _) = health(&health_url).await?;
            let held = total(&scrape(&metrics_url).await?, "kcl_leases_held", &[]);
            Ok((status == 200 && held == 2.0).then_some(()))
        },
    )
    .await?;
    let (_, body) = health(&health_url).await?;
    assert_eq!(body["status"], "ok");

    let release = lock_lease_file(fleet.lease_db())?;
    let (status, body) = poll(
        "/health to turn 503 while the lease file is locked",
        LONG,
        || async {
            let (status, body) = health(&health_url).await?;
            Ok((status == 503).then_some((status, body)))
        },
    )
    .await?;
    assert_eq!(status, 503);
    assert_eq!(body["status"], "unhealthy", "{body}");
    let reason = body["reason"].as_str().unwrap_or_default();
    assert!(!reason.is_empty(), "a reason is given: {body}");
    assert!(
        body["failing_for_ms"].as_u64().unwrap_or(0) >= 1000,
        "{body}"
    );
    // Whichever check turned it (the store's errors, or renewals overdue while a store call
    // waits for the lock), the failing calls are counted while the lock is held.
    poll("lease-store errors to be counted", LONG, || async {
        let errors = total(
            &scrape(&metrics_url).await?,
            "kcl_lease_store_errors_total",
            &[],
        );
        Ok((errors > 0.0).then_some(()))
    })
    .await?;

    release.send(()).ok();
    poll(
        "/health to return to 200 once the lock is released",
        LONG,
        || async {
            let (status, _) = health(&health_url).await?;
            Ok((status == 200).then_some(()))
        },
    )
    .await?;
    Ok(())
}

/// The status server in-process over a real in-memory lease store, without a browser: the
/// JSON, the page and the fragment agree on shards, owners and lineage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_server_renders_leases_as_json_html_and_lineage() -> anyhow::Result<()> {
    use kcl::observe::server::{Endpoints, serve};
    use kcl::observe::status::StatusSource;
    use kcl_core::kinesis::ShardId;
    use kcl_core::lease::{ExtendedSequenceNumber, Lease};
    use kcl_core::lease_store::LeaseStore;
    use kcl_core::memory::InMemoryLeaseStore;
    use std::sync::Arc;

    let store = Arc::new(InMemoryLeaseStore::new());
    let parent = ShardId::from_index(0);
    store
        .create_lease_if_absent(&Lease::new(
            parent.clone(),
            ExtendedSequenceNumber::SHARD_END,
        ))
        .await?;
    for index in [1, 2] {
        let mut child = Lease::new(
            ShardId::from_index(index),
            ExtendedSequenceNumber::TRIM_HORIZON,
        );
        child.parent_shard_ids = vec![parent.clone()];
        store.create_lease_if_absent(&child).await?;
    }
    store.take_lease(&ShardId::from_index(1), 0, "w<1>").await?;
    let server = serve(
        "127.0.0.1:0".parse()?,
        Endpoints {
            status: Some(StatusSource {
                store: store.clone(),
                stream: None,
            }),
            ..Endpoints::default()
        },
    )
    .await?;
    let base = format!("http://{}", server.local_addr());

    let status: serde_json::Value = reqwest::get(format!("{base}/api/status"))
        .await?
        .json()
        .await?;
    let shards = status["shards"].as_array().context("shards")?;
    assert_eq!(shards.len(), 3, "{status}");
    assert_eq!(
        shards[0]["children"],
        serde_json::json!(["shardId-000000000001", "shardId-000000000002"])
    );
    assert_eq!(shards[1]["depth"], 1);
    assert_eq!(shards[1]["owner"], "w<1>");
    assert_eq!(status["workers"][0]["worker_id"], "w<1>");

    let page = reqwest::get(format!("{base}/")).await?;
    assert!(
        page.headers()["content-type"]
            .to_str()?
            .starts_with("text/html")
    );
    let page = page.text().await?;
    for index in 0..3 {
        assert!(page.contains(&format!("data-shard=\"shardId-00000000000{index}\"")));
    }
    assert!(
        page.contains("data-owner=\"w&lt;1&gt;\""),
        "owners are escaped"
    );
    assert_eq!(
        page.matches("<line ").count(),
        2,
        "two parent → child arrows"
    );
    let fragment = reqwest::get(format!("{base}/fragment"))
        .await?
        .text()
        .await?;
    assert!(fragment.contains("<svg id=\"lineage\""));
    assert!(
        !fragment.contains("<script"),
        "the fragment is only the live part"
    );
    // Only the status routes were mounted.
    assert_eq!(reqwest::get(format!("{base}/metrics")).await?.status(), 404);
    assert_eq!(reqwest::get(format!("{base}/health")).await?.status(), 404);
    server.shutdown().await;
    Ok(())
}
