//! `kcl worker`: one worker process over a Kinesis HTTP endpoint and a lease store (a SQLite
//! file or a DynamoDB table, see [`crate::lease_spec`]).
//! SIGTERM or SIGINT shuts it down gracefully (processors get `shutdown_requested`, leases are
//! released); a second signal exits at once.

use crate::args::{EndpointArgs, InitialPositionArg, RetrievalArg, SinkSpec, WorkerArgs};
use crate::kinesis_json::KinesisJsonApi;
use crate::lease_spec::{
    DEFAULT_REGION, LeaseStoreLocation, StorePurpose, open_lease_store, uses_local_placeholders,
};
use crate::processors::{MultiLangProcessorFactory, SinkProcessorFactory};
use crate::sink::JsonlSink;
use anyhow::Context;
use kcl_core::config::LeaseConfig;
use kcl_core::kinesis::EpochMillis;
use kcl_core::lineage::InitialPosition;
use kcl_worker::client::{
    AwsOverrides, HttpClientConfig, HttpStreamClient, StaticCredentials, aws_client_config,
    resolve_endpoint,
};
use kcl_worker::config::SchedulerConfig;
use kcl_worker::processor::ShardRecordProcessorFactory;
use kcl_worker::retrieval::{FanOutConfig, PollingConfig, RetrievalMode};
use kcl_worker::scheduler::{Scheduler, SchedulerHandle};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// A worker id unique on this machine: host name, process id and a random suffix.
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &suffix[..8])
}

/// The client configuration of the connection flags: credentials and region from the standard
/// AWS chain (env, profile files, SSO, web identity, ECS/EC2 metadata), the endpoint by the AWS
/// precedence (`--endpoint`/`KCL_ENDPOINT` > `AWS_ENDPOINT_URL_KINESIS` > `AWS_ENDPOINT_URL` >
/// `https://kinesis.{region}.amazonaws.com`). For a loopback endpoint with neither keys in the
/// environment nor `AWS_PROFILE`, placeholder keys (which `kinesis-broker` accepts by default)
/// and `us-east-1` stand in, so nothing waits for instance metadata.
pub async fn client_config(endpoint: &EndpointArgs) -> anyhow::Result<HttpClientConfig> {
    let region_for_guess = endpoint.region.as_deref().unwrap_or(DEFAULT_REGION);
    let guessed = resolve_endpoint(endpoint.endpoint.as_deref(), region_for_guess);
    let local_placeholders = uses_local_placeholders(&guessed.url);
    let overrides = AwsOverrides {
        endpoint: endpoint.endpoint.clone(),
        region: endpoint
            .region
            .clone()
            .or_else(|| local_placeholders.then(|| DEFAULT_REGION.to_owned())),
        default_region: Some(DEFAULT_REGION.to_owned()),
        credentials: local_placeholders.then(|| StaticCredentials {
            access_key_id: "kcl-local".to_owned(),
            secret_access_key: "kcl-local".to_owned(),
            session_token: None,
        }),
        ..AwsOverrides::default()
    };
    Ok(aws_client_config(overrides).await?)
}

/// The HTTP stream client for `endpoint`.
pub async fn http_client(endpoint: &EndpointArgs) -> anyhow::Result<HttpStreamClient> {
    let config = client_config(endpoint).await?;
    HttpStreamClient::new(config).context("configuring the Kinesis client")
}

/// A caller of any Kinesis JSON operation on `endpoint` (control plane, `PutRecords`).
pub async fn json_api(endpoint: &EndpointArgs) -> anyhow::Result<KinesisJsonApi> {
    KinesisJsonApi::new(client_config(endpoint).await?).context("configuring the Kinesis client")
}

/// The lineage initial position of a command-line position.
pub fn initial_position(arg: InitialPositionArg) -> InitialPosition {
    match arg {
        InitialPositionArg::TrimHorizon => InitialPosition::TrimHorizon,
        InitialPositionArg::Latest => InitialPosition::Latest,
        InitialPositionArg::AtTimestamp(millis) => {
            InitialPosition::AtTimestamp(EpochMillis(millis))
        }
    }
}

/// Waits for SIGTERM or SIGINT.
pub async fn shutdown_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
    Ok(tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    })
}

/// Runs `kcl worker` until a signal (graceful shutdown) or a fatal error.
pub async fn run_worker(args: WorkerArgs, endpoint: &EndpointArgs) -> anyhow::Result<ExitCode> {
    let worker_id = args.worker_id.clone().unwrap_or_else(default_worker_id);
    let client = http_client(endpoint).await?;
    let lease = LeaseConfig::builder()
        .failover_time(Duration::from_millis(args.failover_ms))
        .build()
        .context("--failover-ms")?;
    let location = LeaseStoreLocation::resolve(&args.lease_store, &args.application)?;
    let store = open_lease_store(
        &location,
        &args.application,
        endpoint.region.as_deref(),
        StorePurpose::Worker {
            failover_time: lease.failover_time(),
        },
    )
    .await?;
    let factory: Arc<dyn ShardRecordProcessorFactory> = match (&args.sink, &args.exec) {
        (Some(SinkSpec::Jsonl(path)), _) => Arc::new(SinkProcessorFactory::new(
            JsonlSink::open_file(path)?,
            &worker_id,
        )),
        (Some(SinkSpec::Stdout), _) => {
            Arc::new(SinkProcessorFactory::new(JsonlSink::stdout(), &worker_id))
        }
        (None, Some(command)) => Arc::new(MultiLangProcessorFactory::new(
            command,
            &worker_id,
            &args.stream,
            &args.application,
            args.exec_timeout_ms.map(Duration::from_millis),
        )),
        (None, None) => anyhow::bail!("either --sink or --exec is required"),
    };
    let mut config = SchedulerConfig::new(
        args.application.clone(),
        args.stream.clone(),
        worker_id.clone(),
        store,
        Arc::new(client),
    );
    config.initial_position = initial_position(args.initial_position);
    config.lease = lease;
    config.lease_store_failure_timeout = (args.store_failure_timeout_ms > 0)
        .then(|| Duration::from_millis(args.store_failure_timeout_ms));
    config.retrieval = match args.retrieval {
        RetrievalArg::Polling => RetrievalMode::Polling(PollingConfig {
            idle_time_between_reads: Duration::from_millis(args.idle_between_reads_ms),
            ..PollingConfig::default()
        }),
        RetrievalArg::Push => RetrievalMode::FanOut(FanOutConfig::default()),
    };
    if args.failover_ms < 10_000 {
        config.parent_shard_poll_interval = Duration::from_millis(args.failover_ms.max(100));
    }
    // The recorder must exist before the scheduler registers its series.
    let metrics_listen = args
        .metrics_listen
        .as_deref()
        .map(|addr| crate::observe::parse_listen_addr("metrics-listen", addr))
        .transpose()?;
    let exporter = metrics_listen
        .map(|_| crate::observe::exporter::install())
        .transpose()?;
    let scheduler = Scheduler::with_shared_factory(config, factory)?;
    let handle = scheduler.handle();
    let observe_server = match (metrics_listen, exporter) {
        (Some(addr), Some(exporter)) => {
            let endpoints = crate::observe::server::Endpoints {
                metrics: Some(exporter),
                health: Some(crate::observe::server::HealthSource {
                    handle: handle.clone(),
                    stuck_after: Duration::from_millis(args.stuck_shard_after_ms),
                }),
                status: None,
            };
            let server = crate::observe::server::serve(addr, endpoints)
                .await
                .context("--metrics-listen")?;
            tracing::info!(address = %server.local_addr(), "serving /metrics and /health");
            Some(server)
        }
        _ => None,
    };
    tracing::info!(
        worker_id = %worker_id,
        stream = %args.stream,
        application = %args.application,
        endpoint = endpoint.endpoint.as_deref().unwrap_or("(from the AWS environment)"),
        lease_store = %location,
        "worker starting"
    );
    let exit = supervise(scheduler, handle).await;
    if let Some(server) = observe_server {
        server.shutdown().await;
    }
    tracing::info!(worker_id = %worker_id, "worker stopped");
    exit
}

/// Runs the scheduler until it ends or a signal asks it to stop (a second signal: at once).
async fn supervise(scheduler: Scheduler, handle: SchedulerHandle) -> anyhow::Result<ExitCode> {
    let mut run = tokio::spawn(scheduler.run());
    tokio::select! {
        finished = &mut run => {
            finished.context("the worker task failed")??;
            return Ok(ExitCode::SUCCESS);
        }
        signal = shutdown_signal() => {
            tracing::info!(signal = signal?, "graceful shutdown requested");
        }
    }
    tokio::select! {
        () = handle.shutdown() => {}
        second = shutdown_signal() => {
            tracing::warn!(signal = second?, "second signal: exiting without a graceful shutdown");
            return Ok(ExitCode::from(130));
        }
    }
    run.await.context("the worker task failed")??;
    Ok(ExitCode::SUCCESS)
}
