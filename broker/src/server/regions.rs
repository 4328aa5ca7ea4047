//! One broker engine per AWS region: streams are per (account, region) as in AWS, and each
//! request is served by the engine of the region its SigV4 credential scope names (the default
//! region when it names none). Engines of other regions are opened on first use.

use super::error::ServerError;
use super::sigv4::is_region_name;
use crate::engine::{Broker, BrokerConfig};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// At most this many regions are served (AWS has fewer than 40), so a client signing for
/// random region names cannot make the server open stores without end.
pub const MAX_REGIONS: usize = 64;

/// Why the store of a region could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot open the store of region {region}: {reason}")]
pub struct OpenRegionError {
    /// The region.
    pub region: String,
    /// What went wrong.
    pub reason: String,
}

/// Opens (creates, or reopens from disk) the broker engine of one region. Called on a blocking
/// thread, at most once per region.
pub trait RegionOpener: Send + Sync + 'static {
    /// The engine of `region`, whose ARNs carry `region`.
    fn open(&self, region: &str) -> Result<Broker, OpenRegionError>;
}

impl<F> RegionOpener for F
where
    F: Fn(&str) -> Result<Broker, OpenRegionError> + Send + Sync + 'static,
{
    fn open(&self, region: &str) -> Result<Broker, OpenRegionError> {
        self(region)
    }
}

struct RegionsInner {
    default_region: String,
    brokers: RwLock<BTreeMap<String, Broker>>,
    /// Held while a region is being opened, so no region is opened twice.
    opening: tokio::sync::Mutex<()>,
    opener: Box<dyn RegionOpener>,
}

/// The engines a server serves, one per region; a cheap `Clone` handle.
///
/// `Regions::from(broker)` serves `broker` for its configured region and opens in-memory
/// engines with the same configuration for other regions.
#[derive(Clone)]
pub struct Regions {
    inner: Arc<RegionsInner>,
}

impl std::fmt::Debug for Regions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Regions")
            .field("default_region", &self.inner.default_region)
            .field("regions", &self.names())
            .finish()
    }
}

impl From<Broker> for Regions {
    fn from(broker: Broker) -> Self {
        let template = broker.config().clone();
        Regions::new(broker, move |region: &str| {
            let config = BrokerConfig {
                region: region.to_owned(),
                ..template.clone()
            };
            Ok(Broker::new(config))
        })
    }
}

impl Regions {
    /// Serves `default` (for its configured region) and opens other regions with `opener`.
    pub fn new(default: Broker, opener: impl RegionOpener) -> Regions {
        let default_region = default.config().region.clone();
        let brokers = BTreeMap::from([(default_region.clone(), default)]);
        Regions {
            inner: Arc::new(RegionsInner {
                default_region,
                brokers: RwLock::new(brokers),
                opening: tokio::sync::Mutex::new(()),
                opener: Box::new(opener),
            }),
        }
    }

    /// Adds an engine opened before serving (a region reopened from disk at start).
    pub fn insert(&self, broker: Broker) {
        let region = broker.config().region.clone();
        write(&self.inner.brokers).insert(region, broker);
    }

    /// The region used when a request names none.
    pub fn default_region(&self) -> &str {
        &self.inner.default_region
    }

    /// The engine of the default region.
    pub fn default_broker(&self) -> Broker {
        self.existing(&self.inner.default_region)
            .expect("the default region is inserted at construction and never removed")
    }

    /// The regions served so far, sorted.
    pub fn names(&self) -> Vec<String> {
        read(&self.inner.brokers).keys().cloned().collect()
    }

    /// Every engine served so far (for retention passes and shutdown).
    pub fn brokers(&self) -> Vec<Broker> {
        read(&self.inner.brokers).values().cloned().collect()
    }

    fn existing(&self, region: &str) -> Option<Broker> {
        read(&self.inner.brokers).get(region).cloned()
    }

    /// The engine of `region` (`None`: the default region), opened on first use.
    pub async fn get(&self, region: Option<&str>) -> Result<Broker, ServerError> {
        let region = region.unwrap_or(&self.inner.default_region);
        if let Some(broker) = self.existing(region) {
            return Ok(broker);
        }
        if !is_region_name(region) {
            return Err(ServerError::IncompleteSignature(format!(
                "Credential should be scoped to a valid region, not '{region}'. "
            )));
        }
        // The open runs in a task of its own, holding the opening lock: a request dropped
        // mid-way (its client gone) can neither leave an opened store unregistered nor let a
        // second open of the same directory start.
        let inner = Arc::clone(&self.inner);
        let name = region.to_owned();
        tokio::spawn(async move { open_region(inner, name).await })
            .await
            .map_err(|error| ServerError::InternalFailure(error.to_string()))?
    }
}

/// Opens `region` under the opening lock and registers it (or answers the engine another
/// request registered meanwhile).
async fn open_region(inner: Arc<RegionsInner>, region: String) -> Result<Broker, ServerError> {
    let _opening = inner.opening.lock().await;
    if let Some(broker) = read(&inner.brokers).get(&region).cloned() {
        return Ok(broker);
    }
    if read(&inner.brokers).len() >= MAX_REGIONS {
        return Err(ServerError::Kinesis(kcl_core::kinesis::KinesisError::new(
            kcl_core::kinesis::KinesisErrorKind::LimitExceeded,
            format!("this broker serves at most {MAX_REGIONS} regions; {region} is one too many"),
        )));
    }
    let opener = Arc::clone(&inner);
    let name = region.clone();
    let broker = tokio::task::spawn_blocking(move || opener.opener.open(&name))
        .await
        .map_err(|error| ServerError::InternalFailure(error.to_string()))?
        .map_err(|error| ServerError::InternalFailure(error.to_string()))?;
    tracing::info!(region = %region, "serving a new region");
    write(&inner.brokers).insert(region, broker.clone());
    Ok(broker)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_region_gets_its_own_engine_with_its_own_arns() {
        let regions = Regions::from(Broker::new(BrokerConfig::default()));
        assert_eq!(regions.default_region(), "us-east-1");
        let default = regions.get(None).await.expect("default");
        assert_eq!(default.config().region, "us-east-1");
        let west = regions.get(Some("eu-west-1")).await.expect("opened");
        assert_eq!(west.config().region, "eu-west-1");
        west.create_stream(crate::engine::CreateStreamInput {
            stream_name: "orders".into(),
            shard_count: Some(1),
            ..Default::default()
        })
        .await
        .expect("created in eu-west-1");
        let again = regions.get(Some("eu-west-1")).await.expect("kept");
        let summary = again
            .describe_stream_summary(crate::engine::StreamRef::name("orders"))
            .await
            .expect("the same engine");
        assert!(
            summary.stream_arn.contains(":eu-west-1:"),
            "{}",
            summary.stream_arn
        );
        let elsewhere = default
            .describe_stream_summary(crate::engine::StreamRef::name("orders"))
            .await
            .expect_err("streams are per region");
        assert_eq!(
            elsewhere.kind,
            kcl_core::kinesis::KinesisErrorKind::ResourceNotFound
        );
        assert_eq!(regions.names(), ["eu-west-1", "us-east-1"]);
        let refused = regions.get(Some("../etc")).await.expect_err("not a region");
        assert_eq!(refused.aws_type(), "IncompleteSignatureException");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_dropped_while_its_region_opens_still_registers_it_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::mpsc;
        let opens = Arc::new(AtomicUsize::new(0));
        let (release, released) = mpsc::channel::<()>();
        let released = std::sync::Mutex::new(released);
        let (started, mut has_started) = tokio::sync::mpsc::unbounded_channel::<()>();
        let counted = Arc::clone(&opens);
        let regions = Regions::new(Broker::new(BrokerConfig::default()), move |region: &str| {
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = started.send(());
            // Blocks (on the blocking pool) until the test lets the open finish.
            let _ = released
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .recv();
            Ok(Broker::new(BrokerConfig {
                region: region.to_owned(),
                ..BrokerConfig::default()
            }))
        });
        let first = {
            let regions = regions.clone();
            tokio::spawn(async move { regions.get(Some("eu-west-1")).await })
        };
        has_started.recv().await.expect("the open started");
        first.abort();
        let _ = first.await;
        let second = {
            let regions = regions.clone();
            tokio::spawn(async move { regions.get(Some("eu-west-1")).await })
        };
        // Two releases: a second open (the defect this test guards against) must not hang.
        release.send(()).expect("release the open");
        let _ = release.send(());
        let broker = second.await.expect("joined").expect("opened");
        assert_eq!(broker.config().region, "eu-west-1");
        assert_eq!(
            opens.load(Ordering::SeqCst),
            1,
            "the directory is opened once"
        );
        assert_eq!(regions.names(), ["eu-west-1", "us-east-1"]);
    }
}
