//! The logic of the `kcl` command-line tool; `src/main.rs` only parses arguments and calls
//! [`run`]. Built on the kcl-worker library (features `embedded` and `testing`).
//!
//! - [`args`]: the command line (clap).
//! - [`worker`]: `kcl worker`, one worker process over HTTP and a lease store.
//! - [`lease_spec`]: `--leases sqlite:PATH | dynamodb:TABLE`, and opening that store.
//! - [`processors`]: the processors behind `--sink` and `--exec`.
//! - [`sink`]: the JSON-lines record sink and its reader.
//! - [`multilang`]: the MultiLangDaemon protocol of `--exec`.
//! - [`control`]: `kcl stream ...`, the control plane over HTTP, and `kcl produce` (on
//!   [`kcl_worker::producer`]).
//! - [`leases`]: `kcl leases` and `kcl status`.
//! - [`demo`]: `kcl demo`, a whole fleet in one process.
//! - [`observe`]: `--metrics-listen` / `--serve`: Prometheus metrics, health, the status page.

pub mod args;
pub mod control;
pub mod demo;
pub mod firehose;
pub mod kinesis_json;
pub mod lease_spec;
pub mod leases;
pub mod multilang;
pub mod observe;
pub mod processors;
pub mod sink;
pub mod worker;

use args::{Cli, Command, DemoArgs, LeasesArgs, StatusArgs};
use kcl_core::lease_store::LeaseStore;
use kcl_core::stream_client::StreamClient;
use lease_spec::{LeaseStoreLocation, StorePurpose, open_lease_store};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Runs a parsed command line; the exit code reports success or failure to the shell.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let endpoint = &cli.endpoint;
    match cli.command {
        Command::Worker(args) => worker::run_worker(args, endpoint).await,
        Command::Demo(args) => run_demo_command(args).await,
        Command::Produce(args) => control::run_produce(args, endpoint).await,
        Command::Stream(args) => control::run_stream(args, endpoint).await,
        Command::Firehose(args) => firehose::run_firehose(args, endpoint).await,
        Command::Leases(args) => run_leases(args, endpoint).await,
        Command::Status(args) => run_status(args, endpoint).await,
    }
}

async fn run_demo_command(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let verdict = demo::run_demo(demo::DemoConfig {
        shards: args.shards,
        workers: args.workers,
        rate: args.rate,
        failover: Duration::from_millis(args.failover_ms),
        phase: Duration::from_millis(args.phase_ms),
        live_view: !args.quiet,
        serve: args
            .serve
            .as_deref()
            .map(|addr| observe::parse_listen_addr("serve", addr))
            .transpose()?,
    })
    .await?;
    Ok(if verdict.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Opens the existing lease store of `args` (never creates one: a typo should not make an
/// empty table).
async fn open_existing_lease_store(
    args: &LeasesArgs,
    endpoint: &args::EndpointArgs,
) -> anyhow::Result<Arc<dyn LeaseStore>> {
    let location = LeaseStoreLocation::resolve(&args.lease_store, &args.application)?;
    open_lease_store(
        &location,
        &args.application,
        endpoint.region.as_deref(),
        StorePurpose::Inspect,
    )
    .await
}

async fn run_leases(args: LeasesArgs, endpoint: &args::EndpointArgs) -> anyhow::Result<ExitCode> {
    let store = open_existing_lease_store(&args, endpoint).await?;
    let rows = leases::lease_rows(&store.list_leases().await?);
    print_rows(&rows, args.json)?;
    Ok(ExitCode::SUCCESS)
}

async fn run_status(args: StatusArgs, endpoint: &args::EndpointArgs) -> anyhow::Result<ExitCode> {
    let store = open_existing_lease_store(&args.leases, endpoint).await?;
    let client = worker::http_client(endpoint).await?;
    if let Some(addr) = &args.serve {
        let addr = observe::parse_listen_addr("serve", addr)?;
        return serve_status(store, Arc::new(client), &args.stream, addr).await;
    }
    let mut leases = store.list_leases().await?;
    leases.sort_by(|a, b| a.lease_key.cmp(&b.lease_key));
    let mut rows = leases::lease_rows(&leases);
    for (row, lease) in rows.iter_mut().zip(&leases) {
        row.lag_millis = leases::checkpoint_lag(&client, &args.stream, lease).await;
    }
    print_rows(&rows, args.leases.json)?;
    Ok(ExitCode::SUCCESS)
}

/// `kcl status --serve`: the live status page of `store` until SIGTERM or SIGINT.
async fn serve_status(
    store: Arc<dyn LeaseStore>,
    client: Arc<dyn StreamClient>,
    stream: &str,
    addr: std::net::SocketAddr,
) -> anyhow::Result<ExitCode> {
    let endpoints = observe::server::Endpoints {
        status: Some(observe::status::StatusSource {
            store,
            stream: Some(observe::status::StreamLag::new(
                client,
                stream,
                kcl_core::clock::SystemClock::shared(),
            )),
        }),
        ..observe::server::Endpoints::default()
    };
    let server = observe::server::serve(addr, endpoints).await?;
    println!("serving the status page on http://{}/", server.local_addr());
    let signal = worker::shutdown_signal().await?;
    tracing::info!(signal, "stopping the status page");
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn print_rows(rows: &[leases::LeaseRow], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(rows)?);
    } else {
        print!("{}", leases::render_table(rows));
    }
    Ok(())
}

/// Installs the tracing subscriber on stderr: `RUST_LOG` if set, else `info` (`warn` for
/// `kcl demo`, whose output is its live view), `debug` (`-v`) or `trace` (`-vv`).
pub fn init_tracing(cli: &Cli) {
    let default_level = match (cli.verbose, &cli.command) {
        (0, Command::Demo(_)) => "warn",
        (0, _) => "info",
        (1, _) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
