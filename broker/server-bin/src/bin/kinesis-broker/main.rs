//! `kinesis-broker`: a Kinesis Data Streams compatible server.
//!
//! ```text
//! kinesis-broker --listen 127.0.0.1:4567 --data-dir ./data --fsync always
//! ```
//!
//! Every flag can also be set in a TOML file given with `--config` (keys are the long flag
//! names, e.g. `data-dir = "./data"`); flags on the command line win. Without `--data-dir`
//! everything stays in memory. Prints `listening on ADDR` to stdout once it accepts
//! connections, logs with `tracing` (`RUST_LOG`), and on SIGTERM/SIGINT stops accepting,
//! finishes in-flight requests and syncs the log before exiting.

use anyhow::{Context, bail};
use broker::engine::{Broker, BrokerConfig, ThroughputLimits};
use broker::server::{AuthKeys, ServerOptions, TlsFiles};
use broker::storage::{FsyncPolicy, StorageConfig};
use clap::Parser;
use serde::Deserialize;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Command-line flags; every one may also come from the `--config` file.
#[derive(Debug, Default, Parser, Deserialize)]
#[command(
    name = "kinesis-broker",
    version,
    about = "A Kinesis Data Streams compatible broker"
)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Flags {
    /// A TOML file with any of these settings (command-line flags override it).
    #[arg(long)]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:4567; port 0 picks a free port].
    #[arg(long)]
    listen: Option<String>,
    /// Directory for durable storage; without it everything stays in memory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// When to fsync the log: always | interval | never [default: always].
    #[arg(long)]
    fsync: Option<String>,
    /// The fsync interval for `--fsync interval`, in milliseconds [default: 100].
    #[arg(long)]
    fsync_interval_ms: Option<u64>,
    /// Log segment size in bytes [default: 67108864].
    #[arg(long)]
    segment_bytes: Option<u64>,
    /// Region shown in ARNs [default: us-east-1].
    #[arg(long)]
    region: Option<String>,
    /// Account id shown in ARNs [default: 000000000000].
    #[arg(long)]
    account_id: Option<String>,
    /// Maximum open shards over all streams [default: 20000].
    #[arg(long)]
    shard_limit: Option<u32>,
    /// Switch off the per-shard throughput limits.
    #[arg(long)]
    #[serde(default)]
    no_throughput_limits: bool,
    /// Shard iterator lifetime, e.g. 300s, 5m, 1500ms (a bare number is seconds) [default: 300s].
    #[arg(long)]
    iterator_ttl: Option<String>,
    /// How long new streams stay CREATING [default: 0].
    #[arg(long)]
    create_delay: Option<String>,
    /// How long deleted streams stay DELETING [default: 0].
    #[arg(long)]
    delete_delay: Option<String>,
    /// Verify SigV4 signatures against these keys: AKID:SECRET[,AKID2:SECRET2...].
    #[arg(long, env = "KINESIS_BROKER_AUTH_KEYS", hide_env_values = true)]
    auth_keys: Option<String>,
    /// TLS certificate chain (PEM); requires --tls-key.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); requires --tls-cert.
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// How often expired records are dropped, e.g. 60s [default: 60s].
    #[arg(long)]
    retention_check: Option<String>,
    /// Serve Prometheus metrics at GET /metrics on this address (a bare port means loopback).
    #[arg(long)]
    metrics_listen: Option<String>,
    /// Serve the Firehose API, writing S3-destination objects under DIR/BUCKET/ (without it
    /// Firehose requests are answered with an error).
    #[arg(long)]
    firehose_dir: Option<PathBuf>,
    /// A Lambda function of Firehose processing configurations, run locally as NAME=COMMAND
    /// (`sh -c COMMAND`; repeatable).
    #[arg(long)]
    #[serde(default)]
    firehose_lambda: Vec<String>,
}

impl Flags {
    /// Command-line values override the file's.
    fn merged_over(self, file: Flags) -> Flags {
        Flags {
            config: self.config,
            listen: self.listen.or(file.listen),
            data_dir: self.data_dir.or(file.data_dir),
            fsync: self.fsync.or(file.fsync),
            fsync_interval_ms: self.fsync_interval_ms.or(file.fsync_interval_ms),
            segment_bytes: self.segment_bytes.or(file.segment_bytes),
            region: self.region.or(file.region),
            account_id: self.account_id.or(file.account_id),
            shard_limit: self.shard_limit.or(file.shard_limit),
            no_throughput_limits: self.no_throughput_limits || file.no_throughput_limits,
            iterator_ttl: self.iterator_ttl.or(file.iterator_ttl),
            create_delay: self.create_delay.or(file.create_delay),
            delete_delay: self.delete_delay.or(file.delete_delay),
            auth_keys: self.auth_keys.or(file.auth_keys),
            tls_cert: self.tls_cert.or(file.tls_cert),
            tls_key: self.tls_key.or(file.tls_key),
            retention_check: self.retention_check.or(file.retention_check),
            metrics_listen: self.metrics_listen.or(file.metrics_listen),
            firehose_dir: self.firehose_dir.or(file.firehose_dir),
            firehose_lambda: if self.firehose_lambda.is_empty() {
                file.firehose_lambda
            } else {
                self.firehose_lambda
            },
        }
    }
}

/// Parses a duration with `humantime` (`300s`, `1500ms`, `5m`, `2h`, `1h 30m`); a bare number
/// is seconds (`300`).
fn parse_duration(flag: &str, text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = text
            .parse()
            .with_context(|| format!("--{flag}: {text:?} is too large"))?;
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text)
        .with_context(|| format!("--{flag}: {text:?} is not a duration like 300s, 5m or 1500ms"))
}

struct Settings {
    listen: SocketAddr,
    metrics_listen: Option<SocketAddr>,
    storage: Option<StorageConfig>,
    broker: BrokerConfig,
    options: ServerOptions,
    tls: Option<TlsFiles>,
    retention_check: Duration,
    firehose: Option<FirehoseSettings>,
}

/// `--firehose-dir` and `--firehose-lambda`.
struct FirehoseSettings {
    dir: PathBuf,
    lambdas: std::collections::BTreeMap<String, Vec<String>>,
}

fn settings(flags: Flags) -> anyhow::Result<Settings> {
    let listen = flags.listen.as_deref().unwrap_or("127.0.0.1:4567");
    let listen: SocketAddr = listen
        .parse()
        .with_context(|| format!("--listen: {listen:?} is not an address like 127.0.0.1:4567"))?;
    let interval = Duration::from_millis(flags.fsync_interval_ms.unwrap_or(100).max(1));
    let fsync_name = flags.fsync.as_deref().unwrap_or("always");
    let Some(fsync) = FsyncPolicy::parse(fsync_name, interval) else {
        bail!("--fsync: {fsync_name:?} must be always, interval or never");
    };
    let storage = flags.data_dir.clone().map(|dir| {
        let mut config = StorageConfig::new(dir, fsync);
        if let Some(bytes) = flags.segment_bytes {
            config.segment_bytes = bytes.max(4096);
        }
        config
    });
    let mut broker = BrokerConfig::default();
    if let Some(region) = flags.region {
        broker.region = region;
    }
    if let Some(account_id) = flags.account_id {
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            bail!("--account-id: {account_id:?} must be 12 digits");
        }
        broker.account_id = account_id;
    }
    if let Some(limit) = flags.shard_limit {
        broker.shard_limit = limit;
    }
    if flags.no_throughput_limits {
        broker.throughput = ThroughputLimits::off();
    }
    if let Some(ttl) = flags.iterator_ttl {
        broker.iterator_ttl = parse_duration("iterator-ttl", &ttl)?;
    }
    if let Some(delay) = flags.create_delay {
        broker.create_delay = parse_duration("create-delay", &delay)?;
    }
    if let Some(delay) = flags.delete_delay {
        broker.delete_delay = parse_duration("delete-delay", &delay)?;
    }
    let auth = match flags.auth_keys {
        Some(list) => Some(AuthKeys::parse(&list).context("--auth-keys")?),
        None => None,
    };
    let tls = match (flags.tls_cert, flags.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        _ => bail!("--tls-cert and --tls-key must be given together"),
    };
    let retention_check = match flags.retention_check {
        Some(text) => parse_duration("retention-check", &text)?.max(Duration::from_secs(1)),
        None => Duration::from_secs(60),
    };
    let metrics_listen = flags
        .metrics_listen
        .as_deref()
        .map(|text| metrics_listen::parse_addr("metrics-listen", text))
        .transpose()?;
    let lambdas = firehose_setup::parse_lambdas(&flags.firehose_lambda)?;
    let firehose = match flags.firehose_dir {
        Some(dir) => Some(FirehoseSettings { dir, lambdas }),
        None if !lambdas.is_empty() => bail!("--firehose-lambda needs --firehose-dir"),
        None => None,
    };
    Ok(Settings {
        firehose,
        listen,
        metrics_listen,
        storage,
        broker,
        options: ServerOptions {
            auth,
            ..ServerOptions::default()
        },
        tls,
        retention_check,
    })
}

fn read_flags() -> anyhow::Result<Flags> {
    let flags = Flags::parse();
    let Some(path) = flags.config.clone() else {
        return Ok(flags);
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("--config: cannot read {}", path.display()))?;
    let file: Flags = toml::from_str(&text)
        .with_context(|| format!("--config: {} is not a valid config file", path.display()))?;
    Ok(flags.merged_over(file))
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(error = %error, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

mod firehose_setup;
mod metrics_listen;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let settings = settings(read_flags()?)?;
    // Installed before the broker exists, so every series it records is exported.
    let metrics_server = match settings.metrics_listen {
        Some(addr) => Some(metrics_listen::serve(addr).await?),
        None => None,
    };

    let (broker, journal) = match settings.storage.clone() {
        Some(storage) => {
            let opened = tokio::task::spawn_blocking(move || broker::storage::open(storage))
                .await
                .context("storage recovery task failed")??;
            for cut in &opened.report.truncations {
                tracing::warn!(
                    segment = %cut.segment.display(),
                    offset = cut.offset,
                    dropped_bytes = cut.dropped_bytes,
                    reason = %cut.reason,
                    "recovery truncated a damaged log tail"
                );
            }
            let journal = Arc::clone(&opened.journal);
            let broker = Broker::restore(settings.broker.clone(), opened.journal, opened.state)
                .context("cannot restore the broker from the data directory")?;
            (broker, Some(journal))
        }
        None => (Broker::new(settings.broker.clone()), None),
    };

    let mut options = settings.options.clone();
    let firehose = match settings.firehose {
        Some(firehose) => {
            let data_dir = settings
                .storage
                .as_ref()
                .map(|storage| storage.data_dir.clone());
            let api =
                firehose_setup::open(firehose.dir, data_dir, firehose.lambdas, &broker).await?;
            options.extensions.register(Arc::new(api.clone()));
            Some(api)
        }
        None => {
            options
                .extensions
                .register(Arc::new(firehose_setup::FirehoseOff));
            None
        }
    };
    let server = match settings.tls.clone() {
        Some(tls) => {
            broker::server::spawn_tls(broker.clone(), options.clone(), settings.listen, tls).await
        }
        None => broker::server::spawn(broker.clone(), options.clone(), settings.listen).await,
    }
    .with_context(|| format!("cannot listen on {}", settings.listen))?;
    tracing::info!(
        address = %server.local_addr(),
        durable = settings.storage.is_some(),
        tls = settings.tls.is_some(),
        auth = settings.options.auth.is_some(),
        firehose = firehose.is_some(),
        "kinesis-broker started"
    );
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {}", server.local_addr())?;
        stdout.flush()?;
    }

    let maintenance = CancellationToken::new();
    let retention_task = {
        let broker = broker.clone();
        let cancel = maintenance.clone();
        let period = settings.retention_check;
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = ticks.tick() => {
                        let report = broker.enforce_retention().await;
                        tracing::debug!(?report, "retention enforced");
                    }
                }
            }
        })
    };

    shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    server.shutdown().await;
    if let Some(firehose) = firehose {
        firehose.shutdown().await;
    }
    maintenance.cancel();
    let _ = retention_task.await;
    broker.shutdown().await;
    if let Some(metrics_server) = metrics_server {
        metrics_server.shutdown().await;
    }
    if let Some(journal) = journal {
        if let Err(error) = journal.sync().await {
            tracing::error!(error = %error, "final log sync failed");
        }
        tokio::task::spawn_blocking(move || journal.shutdown())
            .await
            .context("log writer shutdown failed")?;
    }
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_units() {
        let cases = [
            ("300", 300_000),
            ("300s", 300_000),
            ("1500ms", 1_500),
            ("5m", 300_000),
            ("2h", 7_200_000),
            (" 3s ", 3_000),
            ("1h 30m", 5_400_000),
            ("1.5s", 1_500),
        ];
        for (text, millis) in cases {
            assert_eq!(
                parse_duration("x", text).unwrap(),
                Duration::from_millis(millis),
                "{text}"
            );
        }
        for bad in ["", "s", "5 parsecs", "-1s", "5x"] {
            assert!(parse_duration("x", bad).is_err(), "{bad}");
        }
        let error = parse_duration("create-delay", "5 parsecs").unwrap_err();
        assert!(error.to_string().contains("--create-delay"), "{error}");
    }

    #[test]
    fn config_file_values_yield_to_flags() {
        let file: Flags = toml::from_str(
            r#"
            listen = "0.0.0.0:9000"
            data-dir = "/var/lib/broker"
            fsync = "interval"
            fsync-interval-ms = 250
            no-throughput-limits = true
            auth-keys = "A:B"
            "#,
        )
        .unwrap();
        let flags = Flags::parse_from(["kinesis-broker", "--listen", "127.0.0.1:0"]);
        let settings = settings(flags.merged_over(file)).unwrap();
        assert_eq!(settings.listen, "127.0.0.1:0".parse().unwrap());
        let storage = settings.storage.unwrap();
        assert_eq!(storage.data_dir, PathBuf::from("/var/lib/broker"));
        assert_eq!(
            storage.fsync,
            FsyncPolicy::Interval(Duration::from_millis(250))
        );
        assert!(!settings.broker.throughput.enabled);
        assert!(settings.options.auth.is_some());
        assert!(toml::from_str::<Flags>("unknown-key = 1").is_err());
    }

    #[test]
    fn bad_settings_are_refused_with_the_flag_named() {
        let cases: [&[&str]; 4] = [
            &["--listen", "nowhere"],
            &["--fsync", "sometimes"],
            &["--account-id", "12"],
            &["--tls-cert", "c.pem"],
        ];
        for args in cases {
            let flags =
                Flags::parse_from(std::iter::once("kinesis-broker").chain(args.iter().copied()));
            let error = settings(flags).err().expect("refused");
            let flag = args[0];
            assert!(
                format!("{error:#}").contains(flag),
                "{error:#} should name {flag}"
            );
        }
    }
}
