//! Which lease store a command uses: `--leases sqlite:PATH | dynamodb:TABLE` (or the SQLite
//! shorthand `--lease-db PATH`), parsed into a typed spec, and the one place that opens it as an
//! `Arc<dyn LeaseStore>`.

use crate::args::LeaseStoreArgs;
use anyhow::Context;
use kcl_core::dynamodb::{DynamoDbLeaseStore, DynamoDbOptions};
use kcl_core::lease_store::LeaseStore;
use kcl_core::sqlite::{SqliteLeaseStore, SqliteOptions};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The value of `--leases`, as written on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseStoreSpec {
    /// `sqlite:PATH`: a SQLite lease file shared by the workers of one host.
    Sqlite(PathBuf),
    /// `dynamodb:TABLE`: a DynamoDB lease table (Java-KCL compatible); `dynamodb:` alone
    /// (`None`) names the table after the application, as the Java KCL does.
    DynamoDb(Option<String>),
}

/// A `--leases` / `--lease-db` / `--dynamodb-endpoint` combination that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseSpecError {
    /// Neither `sqlite:` nor `dynamodb:`.
    #[error(
        "--leases must be sqlite:PATH or dynamodb:TABLE (dynamodb: alone uses the application name), got {0:?}"
    )]
    UnknownScheme(String),
    /// `sqlite:` with nothing after it.
    #[error("--leases sqlite:PATH needs a file path after `sqlite:`")]
    EmptySqlitePath,
    /// A table name DynamoDB would refuse.
    #[error(
        "{source_flag}: DynamoDB table name {name:?} must be 3 to 255 characters of a-z, A-Z, 0-9, `_`, `-` and `.`"
    )]
    BadTableName {
        /// Where the name came from (`--leases` or `--application`).
        source_flag: &'static str,
        /// The refused name.
        name: String,
    },
    /// Both `--leases` and `--lease-db`.
    #[error("--leases and --lease-db both name the lease store: give only one of them")]
    Conflict,
    /// Neither `--leases` nor `--lease-db`.
    #[error(
        "no lease store: give --leases sqlite:PATH, --leases dynamodb:TABLE or --lease-db PATH"
    )]
    Missing,
    /// `--dynamodb-endpoint` with a SQLite store.
    #[error(
        "--dynamodb-endpoint applies only to --leases dynamodb:TABLE, not to a SQLite lease file"
    )]
    EndpointWithoutDynamoDb,
}

impl FromStr for LeaseStoreSpec {
    type Err = LeaseSpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(path) = text.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err(LeaseSpecError::EmptySqlitePath);
            }
            return Ok(LeaseStoreSpec::Sqlite(PathBuf::from(path)));
        }
        let Some(table) = text.strip_prefix("dynamodb:") else {
            return Err(LeaseSpecError::UnknownScheme(text.to_owned()));
        };
        if table.is_empty() {
            return Ok(LeaseStoreSpec::DynamoDb(None));
        }
        check_table_name(table, "--leases dynamodb:TABLE")?;
        Ok(LeaseStoreSpec::DynamoDb(Some(table.to_owned())))
    }
}

impl fmt::Display for LeaseStoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeaseStoreSpec::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            LeaseStoreSpec::DynamoDb(table) => {
                write!(f, "dynamodb:{}", table.as_deref().unwrap_or_default())
            }
        }
    }
}

/// DynamoDB's rule for table names: 3 to 255 characters of `[a-zA-Z0-9_.-]`.
fn check_table_name(name: &str, source_flag: &'static str) -> Result<(), LeaseSpecError> {
    let allowed = |character: char| character.is_ascii_alphanumeric() || "_-.".contains(character);
    if (3..=255).contains(&name.len()) && name.chars().all(allowed) {
        return Ok(());
    }
    Err(LeaseSpecError::BadTableName {
        source_flag,
        name: name.to_owned(),
    })
}

/// A lease store fully determined: the defaults (table name, endpoint) applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseStoreLocation {
    /// A SQLite lease file.
    Sqlite(PathBuf),
    /// A DynamoDB table.
    DynamoDb {
        /// The table name.
        table: String,
        /// `--dynamodb-endpoint`; `None`: the AWS chain (`AWS_ENDPOINT_URL_DYNAMODB`,
        /// `AWS_ENDPOINT_URL`, else the region's endpoint).
        endpoint_url: Option<String>,
    },
}

impl fmt::Display for LeaseStoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeaseStoreLocation::Sqlite(path) => write!(f, "SQLite lease file {}", path.display()),
            LeaseStoreLocation::DynamoDb {
                table,
                endpoint_url: Some(endpoint),
            } => write!(f, "DynamoDB table {table} at {endpoint}"),
            LeaseStoreLocation::DynamoDb { table, .. } => write!(f, "DynamoDB table {table}"),
        }
    }
}

impl LeaseStoreLocation {
    /// Applies the rules to the lease-store flags of `application`: exactly one of `--leases`
    /// and `--lease-db`, `dynamodb:` alone names the table after the application, and
    /// `--dynamodb-endpoint` only with DynamoDB.
    pub fn resolve(
        args: &LeaseStoreArgs,
        application: &str,
    ) -> Result<LeaseStoreLocation, LeaseSpecError> {
        let spec = match (&args.leases, &args.lease_db) {
            (Some(_), Some(_)) => return Err(LeaseSpecError::Conflict),
            (None, None) => return Err(LeaseSpecError::Missing),
            (Some(spec), None) => spec.clone(),
            (None, Some(path)) => LeaseStoreSpec::Sqlite(path.clone()),
        };
        match spec {
            LeaseStoreSpec::Sqlite(_) if args.dynamodb_endpoint.is_some() => {
                Err(LeaseSpecError::EndpointWithoutDynamoDb)
            }
            LeaseStoreSpec::Sqlite(path) => Ok(LeaseStoreLocation::Sqlite(path)),
            LeaseStoreSpec::DynamoDb(table) => {
                let table = match table {
                    Some(table) => table,
                    None => {
                        check_table_name(application, "--application (the default table name)")?;
                        application.to_owned()
                    }
                };
                Ok(LeaseStoreLocation::DynamoDb {
                    table,
                    endpoint_url: args.dynamodb_endpoint.clone(),
                })
            }
        }
    }
}

/// What a store is opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorePurpose {
    /// A worker: creates the store if absent; store calls retry within a quarter of the
    /// failover time, so a renewal is retried several times before the lease could expire.
    Worker {
        /// The lease failover time.
        failover_time: Duration,
    },
    /// `kcl leases` / `kcl status`: the store must exist already (a typo should not create an
    /// empty table).
    Inspect,
}

/// Opens the lease store of `application` at `location`: the only place that picks the store
/// implementation. `region` signs DynamoDB requests (the Kinesis region: the table and the
/// stream are normally in the same one); `None` takes it from the AWS chain.
pub async fn open_lease_store(
    location: &LeaseStoreLocation,
    application: &str,
    region: Option<&str>,
    purpose: StorePurpose,
) -> anyhow::Result<Arc<dyn LeaseStore>> {
    match location {
        LeaseStoreLocation::Sqlite(path) => {
            let store = match purpose {
                StorePurpose::Worker { failover_time } => {
                    SqliteLeaseStore::open_with_options(
                        path,
                        application,
                        SqliteOptions::for_failover_time(failover_time),
                    )
                    .await
                }
                StorePurpose::Inspect => {
                    anyhow::ensure!(
                        path.exists(),
                        "lease file {} does not exist",
                        path.display()
                    );
                    SqliteLeaseStore::open(path, application).await
                }
            }
            .with_context(|| format!("opening the lease file {}", path.display()))?;
            Ok(Arc::new(store))
        }
        LeaseStoreLocation::DynamoDb {
            table,
            endpoint_url,
        } => {
            let mut options = DynamoDbOptions::new(table.clone());
            if let Some(endpoint_url) = endpoint_url {
                options = options.with_endpoint_url(endpoint_url.clone());
            }
            let endpoint_in_effect = endpoint_url
                .clone()
                .or_else(|| std::env::var("AWS_ENDPOINT_URL_DYNAMODB").ok())
                .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
            let local_placeholders =
                endpoint_in_effect.is_some_and(|endpoint| uses_local_placeholders(&endpoint));
            if local_placeholders {
                tracing::debug!(
                    "no AWS credentials in the environment; using placeholders for a local DynamoDB endpoint"
                );
                options = options.with_static_credentials("kcl-local", "kcl-local");
            }
            match region {
                Some(region) => options = options.with_region(region.to_owned()),
                None if local_placeholders => options = options.with_region(DEFAULT_REGION),
                None => {}
            }
            options = match purpose {
                StorePurpose::Worker { failover_time } => options
                    .with_create_table_if_absent(true)
                    .with_retry_budget(failover_time / 4),
                StorePurpose::Inspect => options.with_create_table_if_absent(false),
            };
            let hint = match purpose {
                StorePurpose::Worker { .. } => "",
                StorePurpose::Inspect => {
                    " (`kcl leases` and `kcl status` never create a table: check --leases, \
                     --application and the endpoint)"
                }
            };
            let store = DynamoDbLeaseStore::connect(options)
                .await
                .with_context(|| format!("opening the {location}{hint}"))?;
            Ok(Arc::new(store))
        }
    }
}

/// The region when neither `--region`, `AWS_REGION` nor the profile gives one and the endpoint
/// is a local one.
pub(crate) const DEFAULT_REGION: &str = "us-east-1";

/// Whether to sign requests to `endpoint` with placeholder credentials (which a local
/// `kinesis-broker`, moto or dynalite accept): the endpoint is a loopback host and the
/// environment names no credentials (neither keys nor `AWS_PROFILE`). Without this the AWS chain
/// would probe instance metadata for a minute before giving up.
pub(crate) fn uses_local_placeholders(endpoint: &str) -> bool {
    let configured = std::env::var_os("AWS_ACCESS_KEY_ID").is_some()
        || std::env::var_os("AWS_PROFILE").is_some();
    !configured && is_loopback_url(endpoint)
}

/// Whether `url` names a loopback host.
fn is_loopback_url(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    let Some(host) = parsed.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_error(source_flag: &'static str, name: &str) -> LeaseSpecError {
        LeaseSpecError::BadTableName {
            source_flag,
            name: name.to_owned(),
        }
    }

    #[test]
    fn loopback_endpoints_are_recognized() {
        let cases = [
            ("http://127.0.0.1:8000", true),
            ("http://localhost:5000", true),
            ("http://[::1]:5000", true),
            ("http://127.8.9.1:5000", true),
            ("https://dynamodb.eu-west-1.amazonaws.com", false),
            ("http://10.0.0.5:8000", false),
            ("not a url", false),
        ];
        for (url, loopback) in cases {
            assert_eq!(is_loopback_url(url), loopback, "{url}");
        }
    }

    #[test]
    fn specs_parse() {
        let long_name = "t".repeat(255);
        let too_long = "t".repeat(256);
        let long_spec = format!("dynamodb:{long_name}");
        let too_long_spec = format!("dynamodb:{too_long}");
        let cases: Vec<(&str, Result<LeaseStoreSpec, LeaseSpecError>)> = vec![
            (
                "sqlite:/var/lib/kcl/leases.db",
                Ok(LeaseStoreSpec::Sqlite("/var/lib/kcl/leases.db".into())),
            ),
            ("sqlite:l.db", Ok(LeaseStoreSpec::Sqlite("l.db".into()))),
            ("sqlite:", Err(LeaseSpecError::EmptySqlitePath)),
            (
                "dynamodb:billing-leases",
                Ok(LeaseStoreSpec::DynamoDb(Some("billing-leases".into()))),
            ),
            (
                "dynamodb:My_App.v2",
                Ok(LeaseStoreSpec::DynamoDb(Some("My_App.v2".into()))),
            ),
            ("dynamodb:", Ok(LeaseStoreSpec::DynamoDb(None))),
            (
                &long_spec,
                Ok(LeaseStoreSpec::DynamoDb(Some(long_name.clone()))),
            ),
            (
                &too_long_spec,
                Err(table_error("--leases dynamodb:TABLE", &too_long)),
            ),
            (
                "dynamodb:ab",
                Err(table_error("--leases dynamodb:TABLE", "ab")),
            ),
            (
                "dynamodb:has space",
                Err(table_error("--leases dynamodb:TABLE", "has space")),
            ),
            (
                "dynamodb:a/b/c",
                Err(table_error("--leases dynamodb:TABLE", "a/b/c")),
            ),
            (
                "leases.db",
                Err(LeaseSpecError::UnknownScheme("leases.db".into())),
            ),
            (
                "dynamo:t",
                Err(LeaseSpecError::UnknownScheme("dynamo:t".into())),
            ),
            ("", Err(LeaseSpecError::UnknownScheme(String::new()))),
        ];
        for (text, expected) in cases {
            let parsed = text.parse::<LeaseStoreSpec>();
            assert_eq!(parsed, expected, "{text:?}");
            if let Ok(spec) = parsed {
                assert_eq!(spec.to_string(), text, "round trip of {text:?}");
            }
        }
    }

    #[test]
    fn every_error_names_the_flag_it_is_about() {
        let errors = [
            (LeaseSpecError::UnknownScheme("x".into()), "--leases"),
            (LeaseSpecError::EmptySqlitePath, "--leases"),
            (table_error("--leases dynamodb:TABLE", "ab"), "--leases"),
            (table_error("--application", "ab"), "--application"),
            (LeaseSpecError::Conflict, "--lease-db"),
            (LeaseSpecError::Missing, "--leases"),
            (
                LeaseSpecError::EndpointWithoutDynamoDb,
                "--dynamodb-endpoint",
            ),
        ];
        for (error, flag) in errors {
            let message = error.to_string();
            assert!(message.contains(flag), "{message:?} names {flag}");
            assert!(
                message.starts_with(|first: char| !first.is_uppercase()),
                "{message:?} is lowercase"
            );
        }
    }

    fn args(
        leases: Option<&str>,
        lease_db: Option<&str>,
        endpoint: Option<&str>,
    ) -> LeaseStoreArgs {
        LeaseStoreArgs {
            leases: leases.map(|spec| spec.parse().expect("valid spec")),
            lease_db: lease_db.map(PathBuf::from),
            dynamodb_endpoint: endpoint.map(str::to_owned),
        }
    }

    #[test]
    fn locations_resolve() {
        let local = "http://127.0.0.1:8000";
        let cases = [
            (
                args(Some("sqlite:l.db"), None, None),
                "billing",
                Ok(LeaseStoreLocation::Sqlite("l.db".into())),
            ),
            (
                args(None, Some("l.db"), None),
                "billing",
                Ok(LeaseStoreLocation::Sqlite("l.db".into())),
            ),
            (
                args(Some("dynamodb:leases-t"), None, None),
                "billing",
                Ok(LeaseStoreLocation::DynamoDb {
                    table: "leases-t".into(),
                    endpoint_url: None,
                }),
            ),
            (
                args(Some("dynamodb:"), None, Some(local)),
                "billing",
                Ok(LeaseStoreLocation::DynamoDb {
                    table: "billing".into(),
                    endpoint_url: Some(local.into()),
                }),
            ),
            (
                args(Some("dynamodb:"), None, None),
                "my app",
                Err(table_error(
                    "--application (the default table name)",
                    "my app",
                )),
            ),
            (
                args(Some("dynamodb:t12"), Some("l.db"), None),
                "billing",
                Err(LeaseSpecError::Conflict),
            ),
            (
                args(None, None, None),
                "billing",
                Err(LeaseSpecError::Missing),
            ),
            (
                args(None, Some("l.db"), Some(local)),
                "billing",
                Err(LeaseSpecError::EndpointWithoutDynamoDb),
            ),
            (
                args(Some("sqlite:l.db"), None, Some(local)),
                "billing",
                Err(LeaseSpecError::EndpointWithoutDynamoDb),
            ),
        ];
        for (args, application, expected) in cases {
            assert_eq!(
                LeaseStoreLocation::resolve(&args, application),
                expected,
                "{args:?} for {application}"
            );
        }
    }
}
