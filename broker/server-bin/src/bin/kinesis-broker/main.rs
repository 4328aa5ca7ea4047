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
//!
//! Requests must be SigV4-signed (any key passes unless `--auth-keys` is set), as with AWS;
//! `--allow-unsigned` accepts unsigned ones. Each request is served in the region of its
//! credential scope (`--region` when unsigned): streams are per region, and with `--data-dir`
//! the `--region` one lives in the directory itself and every other under
//! `DATA_DIR/regions/REGION/` (reopened at start).

use anyhow::{Context, bail};
use broker::engine::{Broker, BrokerConfig, ThroughputLimits};
use broker::server::{AuthKeys, OpenRegionError, Regions, ServerOptions, TlsFiles};
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
    /// Accept unsigned requests (no Authorization header), served in --region. Without it,
    /// as on AWS, they are answered MissingAuthenticationTokenException. Ignored with
    /// --auth-keys.
    #[arg(long)]
    #[serde(default)]
    allow_unsigned: bool,
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
            allow_unsigned: self.allow_unsigned || file.allow_unsigned,
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
        if !broker::server::is_region_name(&region) {
            bail!(
                "--region: {region:?} must be a region name like us-east-1 (lowercase letters, \
                 digits and dashes)"
            );
        }
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
            allow_unsigned: flags.allow_unsigned,
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

/// The disk journals of every region opened so far (synced and stopped at shutdown).
#[derive(Clone, Default)]
struct Journals(Arc<std::sync::Mutex<Vec<Arc<broker::storage::DiskJournal>>>>);

impl Journals {
    fn push(&self, journal: Arc<broker::storage::DiskJournal>) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(journal);
    }

    fn take(&self) -> Vec<Arc<broker::storage::DiskJournal>> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// Where a region's data lives: the default region in the data directory itself (so data
/// directories of earlier versions still open), every other one under `regions/REGION/`.
fn region_dir(storage: &StorageConfig, default_region: &str, region: &str) -> PathBuf {
    if region == default_region {
        storage.data_dir.clone()
    } else {
        storage.data_dir.join("regions").join(region)
    }
}

/// Opens (recovers) one region's durable store; blocking.
fn open_durable_region(
    storage: &StorageConfig,
    config: &BrokerConfig,
    region: &str,
    journals: &Journals,
) -> anyhow::Result<Broker> {
    let mut region_storage = storage.clone();
    region_storage.data_dir = region_dir(storage, &config.region, region);
    let opened = broker::storage::open(region_storage)?;
    for cut in &opened.report.truncations {
        tracing::warn!(
            region = %region,
            segment = %cut.segment.display(),
            offset = cut.offset,
            dropped_bytes = cut.dropped_bytes,
            reason = %cut.reason,
            "recovery truncated a damaged log tail"
        );
    }
    let region_config = BrokerConfig {
        region: region.to_owned(),
        ..config.clone()
    };
    let broker = Broker::restore(
        region_config,
        Arc::clone(&opened.journal) as _,
        opened.state,
    )
    .with_context(|| format!("cannot restore region {region} from the data directory"))?;
    journals.push(opened.journal);
    Ok(broker)
}

/// The file in the data directory naming the region its top-level store belongs to.
const REGION_FILE: &str = "REGION";

/// Checks that the data directory's own store belongs to `region` (the `--region` of the
/// runs that wrote it), recording it on first use, so a restart with another `--region` does
/// not serve one region's streams as another's.
fn claim_default_region(storage: &StorageConfig, region: &str) -> anyhow::Result<()> {
    let path = storage.data_dir.join(REGION_FILE);
    match std::fs::read_to_string(&path) {
        Ok(recorded) if recorded.trim() == region => Ok(()),
        Ok(recorded) => bail!(
            "--region: the data directory {} holds region {}; start with --region {} (other \
             regions are kept under its regions/ directory)",
            storage.data_dir.display(),
            recorded.trim(),
            recorded.trim()
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&storage.data_dir)
                .with_context(|| format!("cannot create {}", storage.data_dir.display()))?;
            std::fs::write(&path, format!("{region}\n"))
                .with_context(|| format!("cannot write {}", path.display()))
        }
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The regions found under `DATA_DIR/regions/` (names that are not regions are skipped).
fn stored_regions(storage: &StorageConfig) -> anyhow::Result<Vec<String>> {
    let dir = storage.data_dir.join("regions");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut regions = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() && broker::server::is_region_name(&name) {
            regions.push(name);
        } else {
            tracing::warn!(path = %entry.path().display(), "not a region directory; ignored");
        }
    }
    regions.sort();
    Ok(regions)
}

/// The engines to serve: the `--region` one, every region stored under the data directory,
/// and an opener for regions that first appear in a request's credential scope.
async fn open_regions(settings: &Settings, journals: &Journals) -> anyhow::Result<Regions> {
    let config = settings.broker.clone();
    let Some(storage) = settings.storage.clone() else {
        return Ok(Regions::from(Broker::new(config)));
    };
    let journals = journals.clone();
    tokio::task::spawn_blocking(move || {
        claim_default_region(&storage, &config.region)?;
        let default = open_durable_region(&storage, &config, &config.region, &journals)?;
        let stored = stored_regions(&storage)?;
        let opener = {
            let (storage, config, journals) = (storage.clone(), config.clone(), journals.clone());
            move |region: &str| {
                open_durable_region(&storage, &config, region, &journals).map_err(|error| {
                    OpenRegionError {
                        region: region.to_owned(),
                        reason: format!("{error:#}"),
                    }
                })
            }
        };
        let regions = Regions::new(default, opener);
        for region in stored.iter().filter(|region| **region != config.region) {
            regions.insert(open_durable_region(&storage, &config, region, &journals)?);
        }
        Ok(regions)
    })
    .await
    .context("storage recovery task failed")?
}

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

    let journals = Journals::default();
    let regions = open_regions(&settings, &journals).await?;
    let mut options = settings.options.clone();
    let firehose = match settings.firehose {
        Some(firehose) => {
            let data_dir = settings
                .storage
                .as_ref()
                .map(|storage| storage.data_dir.clone());
            let api = firehose_setup::open(
                firehose.dir,
                data_dir,
                firehose.lambdas,
                &regions.default_broker(),
            )
            .await?;
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
            broker::server::spawn_tls(regions.clone(), options.clone(), settings.listen, tls).await
        }
        None => broker::server::spawn(regions.clone(), options.clone(), settings.listen).await,
    }
    .with_context(|| format!("cannot listen on {}", settings.listen))?;
    tracing::info!(
        address = %server.local_addr(),
        durable = settings.storage.is_some(),
        tls = settings.tls.is_some(),
        auth = settings.options.auth.is_some(),
        allow_unsigned = settings.options.allow_unsigned,
        regions = ?regions.names(),
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
        let regions = regions.clone();
        let cancel = maintenance.clone();
        let period = settings.retention_check;
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = ticks.tick() => {
                        for broker in regions.brokers() {
                            let report = broker.enforce_retention().await;
                            tracing::debug!(region = %broker.config().region, ?report, "retention enforced");
                        }
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
    for broker in regions.brokers() {
        broker.shutdown().await;
    }
    if let Some(metrics_server) = metrics_server {
        metrics_server.shutdown().await;
    }
    for journal in journals.take() {
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
            allow-unsigned = true
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
        assert!(settings.options.allow_unsigned);
        let defaults = settings_of(&[]);
        assert!(
            !defaults.options.allow_unsigned,
            "requests must be signed by default, as on AWS"
        );
        assert!(toml::from_str::<Flags>("unknown-key = 1").is_err());
    }

    fn settings_of(args: &[&str]) -> Settings {
        let flags =
            Flags::parse_from(std::iter::once("kinesis-broker").chain(args.iter().copied()));
        settings(flags).expect("valid flags")
    }

    #[test]
    fn a_data_directory_keeps_the_region_it_was_created_for() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = StorageConfig::new(dir.path().join("data"), FsyncPolicy::Never);
        claim_default_region(&storage, "us-east-1").expect("first use records the region");
        claim_default_region(&storage, "us-east-1").expect("the same region again");
        let error = claim_default_region(&storage, "eu-west-1").expect_err("another region");
        assert!(
            format!("{error:#}").contains("--region us-east-1"),
            "{error:#}"
        );
    }

    #[test]
    fn bad_settings_are_refused_with_the_flag_named() {
        let cases: [&[&str]; 5] = [
            &["--listen", "nowhere"],
            &["--fsync", "sometimes"],
            &["--account-id", "12"],
            &["--tls-cert", "c.pem"],
            &["--region", "../elsewhere"],
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
