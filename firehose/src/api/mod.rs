//! The Firehose HTTP API (`Firehose_20150804.*`, JSON) served on `kinesis-broker`'s port
//! through the broker's [extension hook](broker::server::extension), so boto3's `firehose`
//! client works unchanged.
//!
//! - Delivery streams live in a [catalog](catalog) persisted under `DATA_DIR/firehose/`.
//! - `DirectPut` streams buffer their records in a private broker engine
//!   (`DATA_DIR/firehose/buffer`, one single-shard stream per delivery stream, throughput
//!   limits off): `PutRecord`/`PutRecordBatch` are `PutRecords` into it, so accepted records
//!   are durable (group commit) before the answer.
//! - Every delivery reads its stream (the buffer stream, or for `KinesisStreamAsSource` the
//!   named stream of the serving broker, from the creation time on) with kcl-worker's consumer
//!   ([`Delivery`]); its leases live in `DATA_DIR/firehose/leases.sqlite` (application
//!   `firehose-<name>`), so after a restart every delivery resumes from its checkpoints.

mod catalog;
mod error;
mod ops;
mod wire;

pub use error::ApiError;

use crate::delivery::{Delivery, DeliveryHandle, DeliveryParams};
use crate::error::FirehoseError;
use crate::sink::ObjectSink;
use broker::engine::{Broker, BrokerConfig, ThroughputLimits};
use broker::server::{ExtensionError, ExtensionFormat, ExtensionRequest, ExtensionService};
use catalog::{Catalog, Entry, Source};
use kcl_core::clock::SharedClock;
use kcl_core::lease_store::LeaseStore;
use kcl_core::lineage::InitialPosition;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

/// The `X-Amz-Target` prefix of the Firehose API.
pub const TARGET_PREFIX: &str = "Firehose_20150804.";

/// How the Firehose API is set up.
#[derive(Clone)]
pub struct FirehoseApiOptions {
    /// The broker's data directory: the catalog, buffer engine and leases go under
    /// `DATA_DIR/firehose/`. `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    /// Where delivered objects go (`--firehose-dir DIR`: a [`LocalDirSink`](crate::LocalDirSink)).
    pub sink: Arc<dyn ObjectSink>,
    /// The engine `KinesisStreamAsSource` streams are read from; its configuration gives the
    /// region, account and `CREATING` delay of delivery streams.
    pub source: Broker,
    /// Lambda function name -> the local command run for it (`--firehose-lambda NAME=COMMAND`).
    pub lambdas: BTreeMap<String, Vec<String>>,
    /// Time for deliveries (buffer intervals, object names).
    pub clock: SharedClock,
    /// The worker id deliveries hold their leases under.
    pub worker_id: String,
}

impl std::fmt::Debug for FirehoseApiOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirehoseApiOptions")
            .field("data_dir", &self.data_dir)
            .field("sink", &self.sink)
            .field("lambdas", &self.lambdas)
            .field("worker_id", &self.worker_id)
            .finish_non_exhaustive()
    }
}

/// The Firehose API: register it with
/// [`Extensions::register`](broker::server::Extensions::register); call
/// [`FirehoseApi::shutdown`] after the server stopped.
#[derive(Debug, Clone)]
pub struct FirehoseApi {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    options: FirehoseApiOptions,
    /// The private engine of `DirectPut` buffer streams.
    buffer: Broker,
    buffer_journal: Option<Arc<broker::storage::DiskJournal>>,
    /// `DATA_DIR/firehose/leases.sqlite`, or `None` for in-memory leases.
    leases_path: Option<PathBuf>,
    state: tokio::sync::Mutex<State>,
    /// Set to `true` at shutdown: stops the retention task.
    maintenance: tokio::sync::watch::Sender<bool>,
    retention_task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[derive(Debug)]
struct State {
    catalog: Catalog,
    deliveries: HashMap<String, DeliveryHandle>,
}

/// How often the buffer engine drops records past their retention.
const RETENTION_CHECK: std::time::Duration = std::time::Duration::from_secs(60);

impl FirehoseApi {
    /// Opens the catalog, the buffer engine and the lease file (under `DATA_DIR/firehose/`
    /// when durable) and restarts every delivery stream from its checkpoints.
    pub async fn open(options: FirehoseApiOptions) -> Result<FirehoseApi, ApiError> {
        let source_config = options.source.config().clone();
        let buffer_config = BrokerConfig {
            throughput: ThroughputLimits::off(),
            create_delay: std::time::Duration::ZERO,
            delete_delay: std::time::Duration::ZERO,
            clock: source_config.clock.clone(),
            region: source_config.region.clone(),
            account_id: source_config.account_id.clone(),
            ..BrokerConfig::default()
        };
        let (catalog, buffer, buffer_journal, leases_path) = match &options.data_dir {
            Some(data_dir) => {
                let root = data_dir.join("firehose");
                std::fs::create_dir_all(&root).map_err(|error| {
                    ApiError::Unavailable(format!("cannot create {}: {error}", root.display()))
                })?;
                let storage = broker::storage::StorageConfig::new(
                    root.join("buffer"),
                    broker::storage::FsyncPolicy::Always,
                );
                let opened = tokio::task::spawn_blocking(move || broker::storage::open(storage))
                    .await
                    .map_err(|error| ApiError::Unavailable(error.to_string()))?
                    .map_err(|error| {
                        ApiError::Unavailable(format!(
                            "cannot open the firehose buffer engine: {error}"
                        ))
                    })?;
                let journal = Arc::clone(&opened.journal);
                let buffer = Broker::restore(buffer_config, opened.journal, opened.state).map_err(
                    |error| {
                        ApiError::Unavailable(format!(
                            "cannot restore the firehose buffer engine: {error}"
                        ))
                    },
                )?;
                let catalog = Catalog::load(root.join("catalog.json"))?;
                (
                    catalog,
                    buffer,
                    Some(journal),
                    Some(root.join("leases.sqlite")),
                )
            }
            None => (Catalog::in_memory(), Broker::new(buffer_config), None, None),
        };
        let (maintenance, mut stopped) = tokio::sync::watch::channel(false);
        let retention_task = {
            let buffer = buffer.clone();
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(RETENTION_CHECK);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = stopped.changed() => return,
                        _ = ticks.tick() => {
                            let report = buffer.enforce_retention().await;
                            tracing::debug!(?report, "firehose buffer retention enforced");
                        }
                    }
                }
            })
        };
        let api = FirehoseApi {
            inner: Arc::new(Inner {
                options,
                buffer,
                buffer_journal,
                leases_path,
                state: tokio::sync::Mutex::new(State {
                    catalog,
                    deliveries: HashMap::new(),
                }),
                maintenance,
                retention_task: std::sync::Mutex::new(Some(retention_task)),
            }),
        };
        api.restart_deliveries().await?;
        Ok(api)
    }

    /// Starts the delivery of every catalogued stream (after a restart: from its checkpoints)
    /// and drops buffer streams no delivery stream owns (left by a crash during a delete).
    async fn restart_deliveries(&self) -> Result<(), ApiError> {
        let mut state = self.inner.state.lock().await;
        let entries: Vec<Entry> = state.catalog.entries().cloned().collect();
        for mut entry in entries {
            if let Some(processing) = &mut entry.config.destination.processing
                && let Ok(command) = self.lambda_command(&processing.function_arn)
            {
                processing.command = command;
            }
            match self.start_delivery(&entry).await {
                Ok(handle) => {
                    state.deliveries.insert(entry.name().to_owned(), handle);
                }
                Err(error) => tracing::error!(
                    delivery_stream = entry.name(),
                    error = %error,
                    "cannot restart the delivery of a delivery stream"
                ),
            }
        }
        let owned: Vec<String> = state
            .catalog
            .entries()
            .filter(|entry| entry.source == Source::DirectPut)
            .map(|entry| entry.name().to_owned())
            .collect();
        drop(state);
        let listed = self
            .inner
            .buffer
            .list_streams(broker::engine::ListStreamsInput::default())
            .await
            .map_err(|error| ApiError::Unavailable(error.to_string()))?;
        for stream in listed.stream_names {
            if !owned.contains(&stream) {
                tracing::info!(stream = %stream, "dropping an orphaned firehose buffer stream");
                self.delete_buffer_stream(&stream).await;
            }
        }
        Ok(())
    }

    /// The lease store of delivery stream `name` (application `firehose-<name>`).
    async fn lease_store(&self, name: &str) -> Result<Arc<dyn LeaseStore>, ApiError> {
        let application = format!("firehose-{name}");
        match &self.inner.leases_path {
            Some(path) => {
                let store = kcl_core::sqlite::SqliteLeaseStore::open(path, &application)
                    .await
                    .map_err(|error| {
                        ApiError::Unavailable(format!(
                            "cannot open the lease store of {name}: {error}"
                        ))
                    })?;
                Ok(Arc::new(store))
            }
            None => Ok(Arc::new(kcl_core::memory::InMemoryLeaseStore::new())),
        }
    }

    /// Deletes every lease (and so every checkpoint) of delivery stream `name`.
    async fn clear_leases(&self, name: &str) -> Result<(), ApiError> {
        if self.inner.leases_path.is_none() {
            return Ok(());
        }
        let store = self.lease_store(name).await?;
        let unavailable = |error: kcl_core::lease_store::LeaseStoreError| {
            ApiError::Unavailable(error.to_string())
        };
        for lease in store.list_leases().await.map_err(unavailable)? {
            store
                .delete_lease(&lease.lease_key)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn start_delivery(&self, entry: &Entry) -> Result<DeliveryHandle, ApiError> {
        let options = &self.inner.options;
        let (source_stream, engine, initial_position) = match &entry.source {
            Source::DirectPut => (
                entry.name().to_owned(),
                self.inner.buffer.clone(),
                InitialPosition::TrimHorizon,
            ),
            Source::KinesisStream { stream_name, .. } => (
                stream_name.clone(),
                options.source.clone(),
                InitialPosition::AtTimestamp(epoch_millis(entry.created_ms)),
            ),
        };
        let params = DeliveryParams {
            config: entry.config.clone(),
            delivery_stream_arn: entry.arn.clone(),
            source_stream,
            stream_client: Arc::new(kcl_worker::client::EmbeddedStreamClient::new(engine)),
            lease_store: self.lease_store(entry.name()).await?,
            sink: Arc::clone(&options.sink),
            clock: options.clock.clone(),
            worker_id: options.worker_id.clone(),
            initial_position,
        };
        Delivery::start(params).await.map_err(ApiError::from)
    }

    /// The local command of a Lambda ARN (`--firehose-lambda NAME=COMMAND`).
    fn lambda_command(&self, arn: &str) -> Result<Vec<String>, ApiError> {
        let name = wire::lambda_function_name(arn)?;
        self.inner.options.lambdas.get(name).cloned().ok_or_else(|| {
            ApiError::InvalidArgument(format!(
                "LambdaArn {arn}: no local command for function {name:?}; start kinesis-broker with --firehose-lambda {name}=COMMAND"
            ))
        })
    }

    async fn delete_buffer_stream(&self, name: &str) {
        let input = broker::engine::DeleteStreamInput {
            stream: broker::engine::StreamRef::name(name),
            enforce_consumer_deletion: true,
        };
        if let Err(error) = self.inner.buffer.delete_stream(input).await
            && error.kind.aws_type() != "ResourceNotFoundException"
        {
            tracing::warn!(stream = %name, error = %error, "cannot delete a firehose buffer stream");
        }
    }

    /// Counters of the delivery of `name` (None if it has no running delivery).
    pub async fn delivery_stats(&self, name: &str) -> Option<crate::delivery::DeliveryStats> {
        let state = self.inner.state.lock().await;
        state.deliveries.get(name).map(DeliveryHandle::stats)
    }

    /// Stops every delivery (unflushed records are re-read on the next start), the buffer
    /// engine and its log.
    pub async fn shutdown(&self) {
        let deliveries: Vec<DeliveryHandle> = {
            let mut state = self.inner.state.lock().await;
            state.deliveries.drain().map(|(_, handle)| handle).collect()
        };
        for delivery in deliveries {
            delivery.shutdown().await;
        }
        self.inner.maintenance.send_replace(true);
        let retention_task = self
            .inner
            .retention_task
            .lock()
            .ok()
            .and_then(|mut task| task.take());
        if let Some(task) = retention_task {
            let _ = task.await;
        }
        self.inner.buffer.shutdown().await;
        if let Some(journal) = &self.inner.buffer_journal {
            if let Err(error) = journal.sync().await {
                tracing::error!(error = %error, "final firehose buffer sync failed");
            }
            let journal = Arc::clone(journal);
            let _ = tokio::task::spawn_blocking(move || journal.shutdown()).await;
        }
    }
}

/// `i64` epoch milliseconds as the lineage type.
fn epoch_millis(millis: i64) -> kcl_core::kinesis::EpochMillis {
    kcl_core::kinesis::EpochMillis(millis)
}

#[async_trait::async_trait]
impl ExtensionService for FirehoseApi {
    fn target_prefix(&self) -> &str {
        TARGET_PREFIX
    }

    async fn call(&self, request: ExtensionRequest) -> Result<serde_json::Value, ExtensionError> {
        if request.format == ExtensionFormat::Cbor {
            return Err(ApiError::Serialization(
                "the Firehose API speaks application/x-amz-json-1.1 only".into(),
            )
            .into());
        }
        let home_region = &self.inner.options.source.config().region;
        if let Some(region) = request.region.as_deref()
            && region != home_region
        {
            return Err(ApiError::InvalidArgument(format!(
                "delivery streams live in region {home_region} on this broker; the request is signed for {region}"
            ))
            .into());
        }
        let operation = request.operation.clone();
        let answer = self.dispatch(request).await;
        if let Err(error) = &answer {
            tracing::debug!(operation = %operation, error_type = error.aws_type(), error = %error, "firehose request rejected");
        }
        answer.map_err(ExtensionError::from)
    }
}

impl From<FirehoseError> for ExtensionError {
    fn from(error: FirehoseError) -> Self {
        ExtensionError::from(ApiError::from(error))
    }
}
