//! [`DynamoDbOptions`]: where the lease table is and how to talk to it.

use std::time::Duration;

/// Where and how to open a DynamoDB lease table.
///
/// Build it with [`DynamoDbOptions::new`] and the `with_*` methods; every field has a default
/// that matches the Java KCL where it has one.
///
/// ```
/// use kcl_core::dynamodb::DynamoDbOptions;
/// use std::time::Duration;
///
/// let options = DynamoDbOptions::new("my-application")
///     .with_endpoint_url("http://127.0.0.1:8000")
///     .with_region("us-east-1")
///     .with_retry_budget(Duration::from_secs(5));
/// assert_eq!(options.table_name, "my-application");
/// assert!(options.create_table_if_absent);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DynamoDbOptions {
    /// The lease table; the Java KCL defaults it to the application name.
    pub table_name: String,
    /// The endpoint. `None`: the aws-config chain (`AWS_ENDPOINT_URL_DYNAMODB`,
    /// `AWS_ENDPOINT_URL`, profile settings, then the region's default endpoint).
    pub endpoint_url: Option<String>,
    /// The region. `None`: the aws-config chain (`AWS_REGION`, profile, instance metadata).
    pub region: Option<String>,
    /// Create the table when it does not exist (on-demand billing, key `leaseKey` (S)) and wait
    /// until it is `ACTIVE`. Default `true`.
    pub create_table_if_absent: bool,
    /// Also create the KCL 3.x `LeaseOwnerToLeaseKeyIndex` global secondary index (hash
    /// `leaseOwner`, range `leaseKey`) when creating the table. Default `false`.
    pub create_lease_owner_index: bool,
    /// Throttling and transient errors of one operation are retried (exponential backoff with
    /// jitter) while the sum of the backoff delays stays inside this budget. Default 2 s.
    pub retry_budget: Duration,
    /// The longest one HTTP attempt may take before it counts as a transient failure.
    /// Default 5 s.
    pub attempt_timeout: Duration,
    /// How long [`connect`](super::DynamoDbLeaseStore::connect) waits for a new table to become
    /// `ACTIVE`. Default 120 s.
    pub table_active_timeout: Duration,
    /// The `Limit` of each scan page (`None`: DynamoDB's 1 MB pages). Small values exist for
    /// tests of pagination.
    pub scan_page_limit: Option<i32>,
    /// How many renewals of one [`renew_leases`](crate::lease_store::LeaseStore::renew_leases)
    /// batch are in flight at once (each is its own conditional `UpdateItem`). Default 16.
    pub renew_concurrency: usize,
    /// Static credentials `(access key id, secret access key)` instead of the aws-config chain;
    /// for local servers and tests.
    pub static_credentials: Option<(String, String)>,
}

impl DynamoDbOptions {
    /// Options for `table_name` with every other setting at its default.
    pub fn new(table_name: impl Into<String>) -> Self {
        DynamoDbOptions {
            table_name: table_name.into(),
            endpoint_url: None,
            region: None,
            create_table_if_absent: true,
            create_lease_owner_index: false,
            retry_budget: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(5),
            table_active_timeout: Duration::from_secs(120),
            scan_page_limit: None,
            renew_concurrency: 16,
            static_credentials: None,
        }
    }

    /// Sets [`endpoint_url`](Self::endpoint_url).
    pub fn with_endpoint_url(mut self, endpoint_url: impl Into<String>) -> Self {
        self.endpoint_url = Some(endpoint_url.into());
        self
    }

    /// Sets [`region`](Self::region).
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sets [`create_table_if_absent`](Self::create_table_if_absent).
    pub fn with_create_table_if_absent(mut self, create: bool) -> Self {
        self.create_table_if_absent = create;
        self
    }

    /// Sets [`create_lease_owner_index`](Self::create_lease_owner_index).
    pub fn with_lease_owner_index(mut self, create: bool) -> Self {
        self.create_lease_owner_index = create;
        self
    }

    /// Sets [`retry_budget`](Self::retry_budget).
    pub fn with_retry_budget(mut self, budget: Duration) -> Self {
        self.retry_budget = budget;
        self
    }

    /// Sets [`attempt_timeout`](Self::attempt_timeout).
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Sets [`table_active_timeout`](Self::table_active_timeout).
    pub fn with_table_active_timeout(mut self, timeout: Duration) -> Self {
        self.table_active_timeout = timeout;
        self
    }

    /// Sets [`scan_page_limit`](Self::scan_page_limit).
    pub fn with_scan_page_limit(mut self, limit: i32) -> Self {
        self.scan_page_limit = Some(limit);
        self
    }

    /// Sets [`renew_concurrency`](Self::renew_concurrency).
    pub fn with_renew_concurrency(mut self, concurrency: usize) -> Self {
        self.renew_concurrency = concurrency;
        self
    }

    /// Sets [`static_credentials`](Self::static_credentials).
    pub fn with_static_credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.static_credentials = Some((access_key_id.into(), secret_access_key.into()));
        self
    }

    /// Checks the settings, naming the field and the rule that is broken.
    pub(crate) fn validate(&self) -> Result<(), String> {
        // DynamoDB table names: 3 to 255 characters of [a-zA-Z0-9_.-].
        let name = &self.table_name;
        if !(3..=255).contains(&name.len()) {
            return Err(format!(
                "table_name {name:?} must be 3 to 255 characters long"
            ));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        {
            return Err(format!(
                "table_name {name:?} may only contain a-z, A-Z, 0-9, '_', '-' and '.', found {bad:?}"
            ));
        }
        if self.scan_page_limit.is_some_and(|limit| limit < 1) {
            return Err("scan_page_limit must be at least 1".to_owned());
        }
        if self.renew_concurrency == 0 {
            return Err("renew_concurrency must be at least 1".to_owned());
        }
        if self.attempt_timeout.is_zero() {
            return Err("attempt_timeout must be greater than zero".to_owned());
        }
        Ok(())
    }
}
