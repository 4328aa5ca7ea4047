//! The lease table's lifecycle: check that an existing table has the Java KCL's key schema,
//! create it when absent (on-demand billing, optional `LeaseOwnerToLeaseKeyIndex`), and wait
//! until it is `ACTIVE`.

use super::errors::{classify, describe};
use super::schema::{LEASE_KEY, LEASE_OWNER, LEASE_OWNER_INDEX};
use super::store::DynamoDbLeaseStore;
use crate::lease_store::LeaseStoreError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TableDescription, TableStatus,
};
use std::time::Duration;

/// How often the table status is polled while waiting for `ACTIVE`.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

fn key_element(name: &str, key_type: KeyType) -> Result<KeySchemaElement, LeaseStoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|error| LeaseStoreError::InvalidStore(format!("key schema element: {error}")))
}

fn string_attribute(name: &str) -> Result<AttributeDefinition, LeaseStoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|error| LeaseStoreError::InvalidStore(format!("attribute definition: {error}")))
}

fn lease_owner_index() -> Result<GlobalSecondaryIndex, LeaseStoreError> {
    GlobalSecondaryIndex::builder()
        .index_name(LEASE_OWNER_INDEX)
        .key_schema(key_element(LEASE_OWNER, KeyType::Hash)?)
        .key_schema(key_element(LEASE_KEY, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        )
        .build()
        .map_err(|error| LeaseStoreError::InvalidStore(format!("index definition: {error}")))
}

/// The key schema of `table` as text, e.g. `leaseKey (S) HASH, owner (S) RANGE`.
fn describe_key_schema(table: &TableDescription) -> String {
    let type_of = |name: &str| {
        table
            .attribute_definitions()
            .iter()
            .find(|definition| definition.attribute_name() == name)
            .map(|definition| definition.attribute_type().as_str().to_owned())
            .unwrap_or_else(|| "?".to_owned())
    };
    table
        .key_schema()
        .iter()
        .map(|element| {
            format!(
                "{} ({}) {}",
                element.attribute_name(),
                type_of(element.attribute_name()),
                element.key_type().as_str()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks that `table` is keyed by `leaseKey` (S) alone, as the Java KCL's lease table is.
pub(crate) fn check_key_schema(
    table_name: &str,
    table: &TableDescription,
) -> Result<(), LeaseStoreError> {
    let keys = table.key_schema();
    let is_lease_key = keys.len() == 1
        && keys[0].attribute_name() == LEASE_KEY
        && keys[0].key_type() == &KeyType::Hash
        && table.attribute_definitions().iter().any(|definition| {
            definition.attribute_name() == LEASE_KEY
                && definition.attribute_type() == &ScalarAttributeType::S
        });
    if is_lease_key {
        return Ok(());
    }
    Err(LeaseStoreError::InvalidStore(format!(
        "table {table_name} is not a lease table: its key schema is [{}], a lease table has \
         exactly one hash key, {LEASE_KEY} (S)",
        describe_key_schema(table)
    )))
}

impl DynamoDbLeaseStore {
    /// Describes the table; `Ok(None)` when it does not exist.
    async fn describe_table(&self) -> Result<Option<TableDescription>, LeaseStoreError> {
        let what = format!("describe table {}", self.table_name());
        let result = self
            .send(|| {
                self.client()
                    .describe_table()
                    .table_name(self.table_name())
                    .send()
            })
            .await;
        match result.outcome {
            Ok(output) => Ok(output.table),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(error) => Err(super::errors::to_store_error(
                classify(&error),
                &what,
                &describe(&error),
            )),
        }
    }

    /// Makes sure the table exists with the right key schema and is `ACTIVE`.
    pub(crate) async fn ensure_table(&self) -> Result<(), LeaseStoreError> {
        let table_name = self.table_name().to_owned();
        let existing = self.describe_table().await?;
        let table = match existing {
            Some(table) => table,
            None if self.options().create_table_if_absent => {
                self.create_table().await?;
                return self.wait_until_active().await;
            }
            None => {
                return Err(LeaseStoreError::Unavailable(format!(
                    "lease table {table_name} does not exist (and create_table_if_absent is off)"
                )));
            }
        };
        check_key_schema(&table_name, &table)?;
        if self.options().create_lease_owner_index
            && !table
                .global_secondary_indexes()
                .iter()
                .any(|index| index.index_name() == Some(LEASE_OWNER_INDEX))
        {
            self.add_lease_owner_index().await?;
        }
        if table.table_status() == Some(&TableStatus::Active) {
            return Ok(());
        }
        self.wait_until_active().await
    }

    async fn create_table(&self) -> Result<(), LeaseStoreError> {
        let table_name = self.table_name().to_owned();
        let mut request = self
            .client()
            .create_table()
            .table_name(&table_name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key_element(LEASE_KEY, KeyType::Hash)?)
            .attribute_definitions(string_attribute(LEASE_KEY)?);
        if self.options().create_lease_owner_index {
            request = request
                .attribute_definitions(string_attribute(LEASE_OWNER)?)
                .global_secondary_indexes(lease_owner_index()?);
        }
        let result = self.send(|| request.clone().send()).await;
        match result.outcome {
            Ok(_) => {
                tracing::info!(table = %table_name, "created the lease table");
                Ok(())
            }
            // Another worker created it first.
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                Ok(())
            }
            Err(error) => Err(super::errors::to_store_error(
                classify(&error),
                &format!("create table {table_name}"),
                &describe(&error),
            )),
        }
    }

    async fn add_lease_owner_index(&self) -> Result<(), LeaseStoreError> {
        let table_name = self.table_name().to_owned();
        let index = lease_owner_index()?;
        let create = CreateGlobalSecondaryIndexAction::builder()
            .index_name(LEASE_OWNER_INDEX)
            .set_key_schema(Some(index.key_schema().to_vec()))
            .set_projection(index.projection().cloned())
            .build()
            .map_err(|error| LeaseStoreError::InvalidStore(format!("index definition: {error}")))?;
        let request = self
            .client()
            .update_table()
            .table_name(&table_name)
            .attribute_definitions(string_attribute(LEASE_KEY)?)
            .attribute_definitions(string_attribute(LEASE_OWNER)?)
            .global_secondary_index_updates(
                GlobalSecondaryIndexUpdate::builder().create(create).build(),
            );
        let result = self.send(|| request.clone().send()).await;
        match result.outcome {
            Ok(_) => {
                tracing::info!(table = %table_name, index = LEASE_OWNER_INDEX, "creating the lease owner index");
                Ok(())
            }
            // Another worker is adding it (or the table is being updated) at the same time.
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                Ok(())
            }
            Err(error) => Err(super::errors::to_store_error(
                classify(&error),
                &format!("add index {LEASE_OWNER_INDEX} to table {table_name}"),
                &describe(&error),
            )),
        }
    }

    /// Polls until the table is `ACTIVE`, at most `table_active_timeout`.
    async fn wait_until_active(&self) -> Result<(), LeaseStoreError> {
        let table_name = self.table_name().to_owned();
        let timeout = self.options().table_active_timeout;
        let wait = async {
            loop {
                if let Some(table) = self.describe_table().await? {
                    check_key_schema(&table_name, &table)?;
                    if table.table_status() == Some(&TableStatus::Active) {
                        return Ok(());
                    }
                }
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or_else(|_| {
                Err(LeaseStoreError::Unavailable(format!(
                    "lease table {table_name} did not become ACTIVE within {timeout:?}"
                )))
            })
    }
}
