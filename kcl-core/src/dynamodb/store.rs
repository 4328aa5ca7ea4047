//! [`DynamoDbLeaseStore`]: the [`LeaseStore`] trait on a Java-KCL-compatible DynamoDB table.
//!
//! Every write is one conditional request (`PutItem` with `attribute_not_exists(leaseKey)` to
//! create, `UpdateItem` with `SET`/`REMOVE` expressions for everything else, so attributes this
//! crate does not know are kept). A `ConditionalCheckFailedException` is
//! [`LeaseStoreError::ConditionFailed`] with the reason read from the item as it was.

use super::errors::{FailureClass, classify, describe, to_store_error};
use super::options::DynamoDbOptions;
use super::schema::{self, Item};
use crate::conditions;
use crate::kinesis::{HashKeyRange, ShardId};
use crate::lease::Lease;
use crate::lease_store::{CheckpointUpdate, LeaseStore, LeaseStoreError, Renewal};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use backon::{ExponentialBuilder, Retryable};
use futures::StreamExt;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The smallest and largest backoff delay between retries of one request.
const MIN_BACKOFF: Duration = Duration::from_millis(25);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A lease table in DynamoDB, shared by workers on any number of hosts.
///
/// Cheap to clone (one shared client). Opened with [`DynamoDbLeaseStore::connect`], which
/// creates the table when asked to and checks its key schema.
#[derive(Debug, Clone)]
pub struct DynamoDbLeaseStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    options: DynamoDbOptions,
    requests_sent: AtomicU64,
}

/// The result of sending one request with retries.
pub(crate) struct Sent<T, E> {
    /// The last attempt's result.
    pub(crate) outcome: Result<T, SdkError<E, HttpResponse>>,
    /// Whether an earlier attempt failed in a way that may have applied the write (a timeout
    /// or a lost response), so a later condition failure may be our own write.
    pub(crate) ambiguous: bool,
}

/// A conditional `UpdateItem` on one lease. Attribute names are written `#name` and are mapped
/// to themselves; values are `:placeholders`.
struct Update {
    operation: &'static str,
    lease_key: ShardId,
    update: String,
    condition: String,
    values: Vec<(&'static str, AttributeValue)>,
}

/// What a conditional write did.
enum Written {
    /// The write applied; the lease as it is now.
    Applied(Lease),
    /// The condition did not hold; the lease as it was (`None`: there is no such lease).
    Rejected(Option<Lease>),
}

/// Every `#name` placeholder of the expressions, mapped to `name`.
fn placeholder_names(expressions: &[&str]) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for expression in expressions {
        let mut rest = *expression;
        while let Some(start) = rest.find('#') {
            let after = &rest[start + 1..];
            let length = after
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(after.len());
            let name = &after[..length];
            names.insert(format!("#{name}"), name.to_owned());
            rest = &after[length..];
        }
    }
    names
}

fn one() -> AttributeValue {
    schema::number(1)
}

fn zero() -> AttributeValue {
    schema::number(0)
}

impl DynamoDbLeaseStore {
    /// Opens the lease table described by `options`: loads region and credentials (the
    /// aws-config chain unless given), checks the table's key schema, and creates the table
    /// (then waits until it is `ACTIVE`) when it is absent and `create_table_if_absent` is set.
    pub async fn connect(options: DynamoDbOptions) -> Result<Self, LeaseStoreError> {
        options.validate().map_err(|problem| {
            LeaseStoreError::InvalidStore(format!("dynamodb options: {problem}"))
        })?;
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            // Retries are ours (backon, inside retry_budget), so every attempt is counted.
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(options.attempt_timeout)
                    .connect_timeout(options.attempt_timeout)
                    .build(),
            );
        if let Some(region) = &options.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(endpoint_url) = &options.endpoint_url {
            loader = loader.endpoint_url(endpoint_url);
        }
        if let Some((access_key_id, secret_access_key)) = &options.static_credentials {
            loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                access_key_id,
                secret_access_key,
                None,
                None,
                "kcl-static-credentials",
            ));
        }
        let sdk_config = loader.load().await;
        if sdk_config.region().is_none() {
            return Err(LeaseStoreError::Unavailable(
                "no AWS region for the lease table: set AWS_REGION, a profile region, or \
                 DynamoDbOptions::with_region"
                    .to_owned(),
            ));
        }
        let store = DynamoDbLeaseStore {
            inner: Arc::new(Inner {
                client: Client::new(&sdk_config),
                options,
                requests_sent: AtomicU64::new(0),
            }),
        };
        store.ensure_table().await?;
        Ok(store)
    }

    /// The lease table's name.
    pub fn table_name(&self) -> &str {
        &self.inner.options.table_name
    }

    /// How many DynamoDB requests (attempts, retries included) this store has sent.
    pub fn requests_sent(&self) -> u64 {
        self.inner.requests_sent.load(Ordering::Relaxed)
    }

    /// The DynamoDB client the store uses (region, credentials, endpoint and timeouts of its
    /// options; no SDK-level retries), for tools that inspect or prepare the table.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    pub(crate) fn options(&self) -> &DynamoDbOptions {
        &self.inner.options
    }

    /// Sends a request built by `make`, retrying throttling and transient failures with
    /// exponential backoff and jitter while the backoff delays fit in the retry budget.
    pub(crate) async fn send<T, E, F, Fut>(&self, mut make: F) -> Sent<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(MIN_BACKOFF)
            .with_max_delay(MAX_BACKOFF)
            .without_max_times()
            .with_total_delay(Some(self.inner.options.retry_budget));
        let mut ambiguous = false;
        let table = self.table_name();
        let outcome = (|| {
            self.inner.requests_sent.fetch_add(1, Ordering::Relaxed);
            make()
        })
        .retry(backoff)
        .when(|error| classify(error).is_retryable())
        .notify(|error, delay| {
            let class = classify(error);
            ambiguous |= class == FailureClass::Transient;
            tracing::warn!(table, ?class, ?delay, error = %describe(error), "dynamodb request failed, retrying");
        })
        .await;
        Sent { outcome, ambiguous }
    }

    /// Reads one item with a consistent read.
    async fn read_item(&self, lease_key: &ShardId) -> Result<Option<Item>, LeaseStoreError> {
        let sent = self
            .send(|| {
                self.client()
                    .get_item()
                    .table_name(self.table_name())
                    .set_key(Some(schema::key(lease_key)))
                    .consistent_read(true)
                    .send()
            })
            .await;
        match sent.outcome {
            Ok(output) => Ok(output.item),
            Err(error) => Err(to_store_error(
                classify(&error),
                &format!("get lease {lease_key}"),
                &describe(&error),
            )),
        }
    }

    /// Decodes an item read for `lease_key`; a bad item is [`LeaseStoreError::InvalidStore`].
    fn decode(&self, item: &Item) -> Result<Lease, LeaseStoreError> {
        schema::from_item(item).map_err(|error| {
            LeaseStoreError::InvalidStore(format!("table {}: {error}", self.table_name()))
        })
    }

    /// Sends a conditional update; on a failed condition, reads the lease as it was (from the
    /// error response, or with a consistent read when the server does not return it).
    async fn conditional_update(
        &self,
        update: &Update,
    ) -> Result<(Written, bool), LeaseStoreError> {
        let names = placeholder_names(&[&update.update, &update.condition]);
        let values: HashMap<String, AttributeValue> = update
            .values
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect();
        let request = self
            .client()
            .update_item()
            .table_name(self.table_name())
            .set_key(Some(schema::key(&update.lease_key)))
            .update_expression(&update.update)
            .condition_expression(&update.condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let sent = self.send(|| request.clone().send()).await;
        let error = match sent.outcome {
            Ok(output) => {
                let item = output.attributes.unwrap_or_default();
                return Ok((Written::Applied(self.decode(&item)?), sent.ambiguous));
            }
            Err(error) => error,
        };
        let Some(UpdateItemError::ConditionalCheckFailedException(failed)) =
            error.as_service_error()
        else {
            let class = classify(&error);
            if class == FailureClass::Invalid {
                // The request is fixed, so the stored item must be at fault: name its attribute.
                if let Some(item) = self.read_item(&update.lease_key).await? {
                    self.decode(&item)?;
                }
            }
            return Err(to_store_error(
                class,
                &format!("{} lease {}", update.operation, update.lease_key),
                &describe(&error),
            ));
        };
        let item = match failed.item() {
            Some(item) => Some(item.clone()),
            None => self.read_item(&update.lease_key).await?,
        };
        let current = item.as_ref().map(|item| self.decode(item)).transpose()?;
        Ok((Written::Rejected(current), sent.ambiguous))
    }

    /// The error for a rejected write: the pure rule's own reason when it explains the
    /// failure, else a note that the lease changed between the write and the read.
    fn rejection(
        lease_key: &ShardId,
        current: Option<Lease>,
        rule: impl FnOnce(&mut Lease) -> Result<(), LeaseStoreError>,
    ) -> LeaseStoreError {
        let Some(mut lease) = current else {
            return conditions::missing(lease_key);
        };
        match rule(&mut lease) {
            Err(error) => error,
            Ok(()) => LeaseStoreError::ConditionFailed {
                lease_key: lease_key.clone(),
                reason: "the lease changed concurrently, or a KCL 3.x graceful handoff \
                         (checkpointOwner) is in progress"
                    .to_owned(),
            },
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(shard_id = %renewal.lease_key, worker_id = %renewal.owner))]
    async fn renew_one(&self, renewal: &Renewal) -> Result<Lease, LeaseStoreError> {
        let update = Update {
            operation: "renew",
            lease_key: renewal.lease_key.clone(),
            update: "SET #leaseCounter = #leaseCounter + :one".to_owned(),
            condition: "#leaseCounter = :expected AND #leaseOwner = :owner \
                        AND attribute_not_exists(#checkpointOwner)"
                .to_owned(),
            values: vec![
                (":one", one()),
                (":expected", schema::number(renewal.expected_counter)),
                (":owner", AttributeValue::S(renewal.owner.clone())),
            ],
        };
        match self.conditional_update(&update).await? {
            (Written::Applied(lease), _) => Ok(lease),
            (Written::Rejected(Some(current)), true)
                if current.is_owned_by(&renewal.owner)
                    && current.lease_counter == renewal.expected_counter.wrapping_add(1) =>
            {
                // Our own earlier attempt applied before its response was lost.
                Ok(current)
            }
            (Written::Rejected(current), _) => {
                Err(Self::rejection(&renewal.lease_key, current, |lease| {
                    conditions::renew(lease, renewal)
                }))
            }
        }
    }
}

#[async_trait::async_trait]
impl LeaseStore for DynamoDbLeaseStore {
    async fn create_lease_if_absent(&self, lease: &Lease) -> Result<bool, LeaseStoreError> {
        let item = schema::to_item(lease);
        let sent = self
            .send(|| {
                self.client()
                    .put_item()
                    .table_name(self.table_name())
                    .set_item(Some(item.clone()))
                    .condition_expression("attribute_not_exists(#leaseKey)")
                    .expression_attribute_names("#leaseKey", schema::LEASE_KEY)
                    .send()
            })
            .await;
        match sent.outcome {
            Ok(_) => Ok(true),
            Err(error) if classify(&error) == FailureClass::ConditionFailed => Ok(false),
            Err(error) => Err(to_store_error(
                classify(&error),
                &format!("create lease {}", lease.lease_key),
                &describe(&error),
            )),
        }
    }

    async fn list_leases(&self) -> Result<Vec<Lease>, LeaseStoreError> {
        let mut leases = Vec::new();
        let mut start_key: Option<Item> = None;
        loop {
            let sent = self
                .send(|| {
                    self.client()
                        .scan()
                        .table_name(self.table_name())
                        .consistent_read(true)
                        .set_limit(self.options().scan_page_limit)
                        .set_exclusive_start_key(start_key.clone())
                        .send()
                })
                .await;
            let page = sent.outcome.map_err(|error| {
                to_store_error(
                    classify(&error),
                    &format!("scan table {}", self.table_name()),
                    &describe(&error),
                )
            })?;
            for item in page.items() {
                match schema::from_item(item) {
                    Ok(lease) => leases.push(lease),
                    Err(error) => tracing::error!(
                        table = self.table_name(),
                        %error,
                        "skipping a lease item that cannot be decoded"
                    ),
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => break,
            }
        }
        leases.sort_by(|a, b| a.lease_key.cmp(&b.lease_key));
        Ok(leases)
    }

    async fn get_lease(&self, lease_key: &ShardId) -> Result<Option<Lease>, LeaseStoreError> {
        let item = self.read_item(lease_key).await?;
        item.as_ref().map(|item| self.decode(item)).transpose()
    }

    async fn renew_leases(
        &self,
        renewals: &[Renewal],
    ) -> Result<Vec<Result<Lease, LeaseStoreError>>, LeaseStoreError> {
        // One conditional UpdateItem per lease, as the Java KCL does, several in flight.
        let pending: Vec<_> = renewals
            .iter()
            .map(|renewal| self.renew_one(renewal))
            .collect();
        let results = futures::stream::iter(pending)
            .buffered(self.options().renew_concurrency)
            .collect()
            .await;
        Ok(results)
    }

    #[tracing::instrument(level = "debug", skip(self), fields(shard_id = %lease_key, worker_id = new_owner))]
    async fn take_lease(
        &self,
        lease_key: &ShardId,
        expected_counter: u64,
        new_owner: &str,
    ) -> Result<Lease, LeaseStoreError> {
        let values = vec![
            (":one", one()),
            (":zero", zero()),
            (":expected", schema::number(expected_counter)),
            (":owner", AttributeValue::S(new_owner.to_owned())),
        ];
        // Usually the owner changes (a free or expired lease): one request that also counts
        // the owner switch. Re-taking our own lease is the rarer second form.
        let switch = Update {
            operation: "take",
            lease_key: lease_key.clone(),
            update: "SET #leaseOwner = :owner, #leaseCounter = #leaseCounter + :one, \
                     #ownerSwitchesSinceCheckpoint = \
                     if_not_exists(#ownerSwitchesSinceCheckpoint, :zero) + :one \
                     REMOVE #checkpointOwner"
                .to_owned(),
            condition: "#leaseCounter = :expected AND \
                        (attribute_not_exists(#leaseOwner) OR #leaseOwner <> :owner)"
                .to_owned(),
            values: values.clone(),
        };
        let same_owner = Update {
            operation: "take",
            lease_key: lease_key.clone(),
            update: "SET #leaseCounter = #leaseCounter + :one REMOVE #checkpointOwner".to_owned(),
            condition: "#leaseCounter = :expected AND #leaseOwner = :owner".to_owned(),
            values: vec![values[0].clone(), values[2].clone(), values[3].clone()],
        };
        let applied = |lease: &Lease| {
            lease.is_owned_by(new_owner) && lease.lease_counter == expected_counter.wrapping_add(1)
        };
        let current = match self.conditional_update(&switch).await? {
            (Written::Applied(lease), _) => return Ok(lease),
            (Written::Rejected(Some(current)), true) if applied(&current) => return Ok(current),
            (Written::Rejected(current), _) => current,
        };
        let owned_at_expected = current.as_ref().is_some_and(|lease| {
            lease.is_owned_by(new_owner) && lease.lease_counter == expected_counter
        });
        if !owned_at_expected {
            return Err(Self::rejection(lease_key, current, |lease| {
                conditions::take(lease, expected_counter, new_owner)
            }));
        }
        match self.conditional_update(&same_owner).await? {
            (Written::Applied(lease), _) => Ok(lease),
            (Written::Rejected(Some(current)), true) if applied(&current) => Ok(current),
            (Written::Rejected(current), _) => Err(Self::rejection(lease_key, current, |lease| {
                conditions::take(lease, expected_counter, new_owner)
            })),
        }
    }

    #[tracing::instrument(level = "debug", skip(self), fields(shard_id = %lease_key, worker_id = expected_owner))]
    async fn evict_lease(
        &self,
        lease_key: &ShardId,
        expected_owner: &str,
    ) -> Result<Lease, LeaseStoreError> {
        let update = Update {
            operation: "evict",
            lease_key: lease_key.clone(),
            update: "SET #leaseCounter = #leaseCounter + :one REMOVE #leaseOwner, #checkpointOwner"
                .to_owned(),
            condition: "#leaseOwner = :owner".to_owned(),
            values: vec![
                (":one", one()),
                (":owner", AttributeValue::S(expected_owner.to_owned())),
            ],
        };
        match self.conditional_update(&update).await? {
            (Written::Applied(lease), _) => Ok(lease),
            (Written::Rejected(current), _) => Err(Self::rejection(lease_key, current, |lease| {
                conditions::evict(lease, expected_owner)
            })),
        }
    }

    #[tracing::instrument(level = "debug", skip(self, update), fields(shard_id = %lease_key, worker_id = expected_owner))]
    async fn update_checkpoint(
        &self,
        lease_key: &ShardId,
        expected_owner: &str,
        expected_counter: u64,
        update: &CheckpointUpdate,
    ) -> Result<Lease, LeaseStoreError> {
        let mut sets = vec!["#leaseCounter = #leaseCounter + :one"];
        let mut removes = Vec::new();
        let mut values = vec![
            (":one", one()),
            (":expected", schema::number(expected_counter)),
            (":owner", AttributeValue::S(expected_owner.to_owned())),
        ];
        if let Some(checkpoint) = &update.checkpoint {
            let (value, sub) = schema::checkpoint_values(checkpoint);
            sets.push("#checkpoint = :checkpoint");
            sets.push("#checkpointSubSequenceNumber = :checkpointSub");
            sets.push("#ownerSwitchesSinceCheckpoint = :zero");
            values.extend([
                (":checkpoint", value),
                (":checkpointSub", sub),
                (":zero", zero()),
            ]);
        }
        match &update.pending_checkpoint {
            Some(pending) => {
                let (value, sub) = schema::checkpoint_values(pending);
                sets.push("#pendingCheckpoint = :pending");
                sets.push("#pendingCheckpointSubSequenceNumber = :pendingSub");
                values.extend([(":pending", value), (":pendingSub", sub)]);
            }
            None => removes.extend(["#pendingCheckpoint", "#pendingCheckpointSubSequenceNumber"]),
        }
        match &update.pending_checkpoint_state {
            Some(state) => {
                sets.push("#pendingCheckpointState = :state");
                values.push((":state", AttributeValue::B(Blob::new(state.clone()))));
            }
            None => removes.push("#pendingCheckpointState"),
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let write = Update {
            operation: "checkpoint",
            lease_key: lease_key.clone(),
            update: expression,
            condition: "#leaseOwner = :owner AND #leaseCounter = :expected".to_owned(),
            values,
        };
        let applied = |lease: &Lease| {
            lease.is_owned_by(expected_owner)
                && lease.lease_counter == expected_counter.wrapping_add(1)
                && update
                    .checkpoint
                    .is_none_or(|checkpoint| lease.checkpoint == checkpoint)
                && lease.pending_checkpoint == update.pending_checkpoint
                && lease.pending_checkpoint_state == update.pending_checkpoint_state
        };
        match self.conditional_update(&write).await? {
            (Written::Applied(lease), _) => Ok(lease),
            (Written::Rejected(Some(current)), true) if applied(&current) => Ok(current),
            (Written::Rejected(current), _) => Err(Self::rejection(lease_key, current, |lease| {
                conditions::checkpoint(lease, expected_owner, expected_counter, update)
            })),
        }
    }

    #[tracing::instrument(level = "debug", skip(self, child_shard_ids), fields(shard_id = %lease_key))]
    async fn update_lineage(
        &self,
        lease_key: &ShardId,
        child_shard_ids: &[ShardId],
        hash_key_range: Option<HashKeyRange>,
    ) -> Result<Lease, LeaseStoreError> {
        let mut sets = Vec::new();
        let mut values = Vec::new();
        let mut expression = String::new();
        match schema::string_set(child_shard_ids) {
            Some(children) => {
                sets.push("#childShardIds = :children");
                values.push((":children", children));
            }
            None => expression.push_str("REMOVE #childShardIds "),
        }
        if let Some(range) = &hash_key_range {
            let (start, end) = schema::hash_key_values(range);
            sets.push("#startingHashKey = :start");
            sets.push("#endingHashKey = :end");
            values.extend([(":start", start), (":end", end)]);
        }
        if !sets.is_empty() {
            expression.push_str(&format!("SET {}", sets.join(", ")));
        }
        let write = Update {
            operation: "update lineage of",
            lease_key: lease_key.clone(),
            update: expression,
            condition: "attribute_exists(#leaseKey)".to_owned(),
            values,
        };
        match self.conditional_update(&write).await? {
            (Written::Applied(lease), _) => Ok(lease),
            (Written::Rejected(current), _) => Err(Self::rejection(lease_key, current, |_| Ok(()))),
        }
    }

    #[tracing::instrument(level = "debug", skip(self), fields(shard_id = %lease_key))]
    async fn delete_lease(&self, lease_key: &ShardId) -> Result<(), LeaseStoreError> {
        let sent = self
            .send(|| {
                self.client()
                    .delete_item()
                    .table_name(self.table_name())
                    .set_key(Some(schema::key(lease_key)))
                    .send()
            })
            .await;
        sent.outcome.map(|_| ()).map_err(|error| {
            to_store_error(
                classify(&error),
                &format!("delete lease {lease_key}"),
                &describe(&error),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_collected_from_every_expression() {
        let names = placeholder_names(&[
            "SET #leaseCounter = #leaseCounter + :one REMOVE #checkpointOwner",
            "#leaseOwner = :owner AND attribute_not_exists(#checkpointOwner)",
        ]);
        let mut keys: Vec<&str> = names.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["#checkpointOwner", "#leaseCounter", "#leaseOwner"]);
        assert_eq!(names["#leaseOwner"], "leaseOwner");
    }
}
