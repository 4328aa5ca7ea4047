//! [`SqliteLeaseStore`]: the lease table in a SQLite file that several processes may share.
//!
//! - One table per application (the name is sanitized into a table name with a hash suffix, so
//!   distinct names never collide) plus a `kcl_applications` table naming them.
//! - WAL journal, `synchronous=NORMAL`, a busy timeout ([`SqliteOptions::busy_timeout`]), every
//!   write in `BEGIN IMMEDIATE` (the write lock is taken before the read of the
//!   read-modify-write, so two processes can never both pass a condition), cached prepared
//!   statements, a batch of renewals in one transaction.
//! - Group commit: writes queued while the previous transaction ran are applied one after the
//!   other in ONE transaction (each with its own condition; one write's failed condition does not
//!   affect the others) and each caller is answered only after that transaction committed.
//! - The file is stamped with an `application_id` and a schema version (`PRAGMA user_version`).
//!   A file that is not SQLite, belongs to another program or has a newer schema is refused
//!   with [`LeaseStoreError::InvalidStore`] and left untouched. The identity is read from one
//!   consistent snapshot, so a file another process is initialising at that moment is never
//!   mistaken for a foreign one.
//! - Fleet cold start: any number of processes may open a new file at the same moment. Set-up
//!   that finds the file busy (another process is switching it to WAL or creating its table) is
//!   retried with a bounded backoff until [`SqliteOptions::open_timeout`].
//! - Errors are classified: a lock held by another connection for longer than the busy timeout
//!   is [`LeaseStoreError::Throttled`]; a full disk, a corrupt, read-only or unopenable file is
//!   [`LeaseStoreError::Unavailable`] (an operator must act; see
//!   [`LeaseStoreError::is_retryable`]).
//! - A lease row that cannot be decoded is skipped by scans (logged with `tracing::error!`, and
//!   counted by [`SqliteLeaseStore::skipped_rows`]); reading or writing that key fails with
//!   [`LeaseStoreError::InvalidStore`] naming the key and the field, and never overwrites it.
//! - All SQLite work runs on one dedicated thread per store (never on async worker threads);
//!   requests reach it through a channel. Dropping the store ends the thread after the requests
//!   already sent.
//!
//! ```
//! use kcl_core::kinesis::ShardId;
//! use kcl_core::lease::{ExtendedSequenceNumber, Lease};
//! use kcl_core::lease_store::LeaseStore;
//! use kcl_core::sqlite::SqliteLeaseStore;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let dir = std::env::temp_dir().join(format!("kcl-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let store = SqliteLeaseStore::open(dir.join("leases.db"), "my-app").await?;
//! let shard = ShardId::from_index(0);
//! store.create_lease_if_absent(&Lease::new(shard.clone(), ExtendedSequenceNumber::LATEST)).await?;
//! let taken = store.take_lease(&shard, 0, "worker-a").await?;
//! assert!(taken.is_owned_by("worker-a"));
//! # drop(store);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), kcl_core::lease_store::LeaseStoreError>(())
//! # }).unwrap();
//! ```

use crate::conditions;
use crate::kinesis::{HashKeyRange, ShardId};
use crate::lease::{CheckpointValue, ExtendedSequenceNumber, Lease};
use crate::lease_store::{CheckpointUpdate, LeaseStore, LeaseStoreError, Renewal};
use md5::{Digest, Md5};
use rusqlite::{Connection, ErrorCode, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// `PRAGMA application_id` of a kcl-rs lease file ("KCLR").
pub const APPLICATION_ID: i32 = 0x4B43_4C52;
/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i32 = 1;
/// The default [`SqliteOptions::busy_timeout`]: a quarter of the default failover time (10 s).
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_millis(2_500);
/// The default [`SqliteOptions::open_timeout`].
pub const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest busy timeout SQLite accepts (`i32::MAX` milliseconds, about 24.8 days); longer
/// ones are capped to it.
const MAX_BUSY_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// The longest pause between two set-up attempts on a busy file while opening.
const MAX_OPEN_PAUSE: Duration = Duration::from_millis(50);

/// How a [`SqliteLeaseStore`] uses its file.
///
/// ```
/// use kcl_core::sqlite::SqliteOptions;
/// use std::time::Duration;
///
/// // A fleet whose failover time is 4 s: renewals may be retried several times within it.
/// let options = SqliteOptions::for_failover_time(Duration::from_secs(4));
/// assert_eq!(options.busy_timeout, Duration::from_secs(1));
/// assert_eq!(SqliteOptions::default().busy_timeout, Duration::from_millis(2_500));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// How long one statement waits for a lock held by another connection (another process
    /// writing the same file) before failing as [`LeaseStoreError::Throttled`]. Default 2.5 s.
    ///
    /// Set it to at most the failover time / 4 ([`SqliteOptions::for_failover_time`]) so that a
    /// renewal blocked by another writer fails fast enough to be retried several times before
    /// the lease expires. If another process holds the write lock for longer than the failover
    /// time (a stuck process, an operator's open transaction), every write of every worker on
    /// the file fails as `Throttled` until the lock is released: renewals fail, so each worker's
    /// leases expire locally and it stops processing them, and no other worker on the same file
    /// can take them either (it cannot write); processing resumes once the lock is released.
    /// Values above about 24 days are capped.
    pub busy_timeout: Duration,
    /// How long [`SqliteLeaseStore::open`] keeps retrying the set-up of a file that other
    /// processes are opening or initialising at the same moment before failing as
    /// [`LeaseStoreError::Throttled`]. Default 30 s.
    pub open_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            open_timeout: DEFAULT_OPEN_TIMEOUT,
        }
    }
}

impl SqliteOptions {
    /// The defaults with `busy_timeout` = `failover_time` / 4.
    pub fn for_failover_time(failover_time: Duration) -> Self {
        SqliteOptions::default().with_busy_timeout(failover_time / 4)
    }

    /// These options with another [`busy_timeout`](SqliteOptions::busy_timeout).
    pub fn with_busy_timeout(mut self, busy_timeout: Duration) -> Self {
        self.busy_timeout = busy_timeout;
        self
    }

    /// These options with another [`open_timeout`](SqliteOptions::open_timeout).
    pub fn with_open_timeout(mut self, open_timeout: Duration) -> Self {
        self.open_timeout = open_timeout;
        self
    }
}

const COLUMNS: &str = "lease_key, lease_owner, lease_counter, checkpoint, checkpoint_sub, \
    pending_checkpoint, pending_checkpoint_sub, pending_checkpoint_state, owner_switches, \
    parent_shard_ids, child_shard_ids, starting_hash_key, ending_hash_key";

/// The most queued jobs taken at once; their consecutive writes share one transaction.
const MAX_WRITES_PER_COMMIT: usize = 256;

type ReadWork = Box<dyn FnOnce(&Connection, &Sql) + Send>;

/// Work sent to the connection thread.
enum Job {
    /// Runs outside any write transaction (scans, point reads).
    Read(ReadWork),
    /// Runs inside a `BEGIN IMMEDIATE` transaction shared with the other writes queued at the
    /// same time (group commit); its result is reported once that transaction has committed.
    Write(Box<dyn WriteJob>),
}

/// A write whose result is held back until its transaction commits.
trait WriteJob: Send {
    /// Runs the read-modify-write inside the open transaction and keeps the result.
    fn run(&mut self, connection: &Connection, sql: &Sql);
    /// Whether the run returned an error (its partial writes, if any, must be undone).
    fn failed(&self) -> bool;
    /// Reports the kept result, or `failure` if the transaction could not begin or commit.
    fn finish(self: Box<Self>, failure: Option<LeaseStoreError>);
}

type WriteWork<T> = Box<dyn FnOnce(&Connection, &Sql) -> Result<T, LeaseStoreError> + Send>;

struct PendingWrite<T> {
    work: Option<WriteWork<T>>,
    result: Option<Result<T, LeaseStoreError>>,
    reply: tokio::sync::oneshot::Sender<Result<T, LeaseStoreError>>,
}

impl<T: Send> WriteJob for PendingWrite<T> {
    fn run(&mut self, connection: &Connection, sql: &Sql) {
        if let Some(work) = self.work.take() {
            self.result = Some(work(connection, sql));
        }
    }

    fn failed(&self) -> bool {
        matches!(self.result, Some(Err(_)))
    }

    fn finish(self: Box<Self>, failure: Option<LeaseStoreError>) {
        let result = match (self.result, failure) {
            // A write that failed on its own wrote nothing: its own error is the truth.
            (Some(Err(error)), _) => Err(error),
            (_, Some(failure)) => Err(failure),
            (Some(Ok(value)), None) => Ok(value),
            (None, None) => Err(LeaseStoreError::Storage("write was never run".to_owned())),
        };
        let _ = self.reply.send(result);
    }
}

/// A copy of an error, for reporting one failed commit to every write in it.
fn duplicate(error: &LeaseStoreError) -> LeaseStoreError {
    match error {
        LeaseStoreError::ConditionFailed { lease_key, reason } => {
            LeaseStoreError::ConditionFailed {
                lease_key: lease_key.clone(),
                reason: reason.clone(),
            }
        }
        LeaseStoreError::Throttled(message) => LeaseStoreError::Throttled(message.clone()),
        LeaseStoreError::InvalidStore(message) => LeaseStoreError::InvalidStore(message.clone()),
        LeaseStoreError::Unavailable(message) => LeaseStoreError::Unavailable(message.clone()),
        LeaseStoreError::Storage(message) => LeaseStoreError::Storage(message.clone()),
    }
}

/// A lease table of one application in a SQLite file.
#[derive(Debug)]
pub struct SqliteLeaseStore {
    jobs: mpsc::Sender<Job>,
    /// Resolves (with an error) when the connection thread has ended.
    thread_ended: tokio::sync::oneshot::Receiver<()>,
    path: PathBuf,
    table: String,
    /// Rows the latest scan could not decode and skipped.
    skipped: Arc<AtomicU64>,
}

/// The table name for an application: `leases_` + the name's safe characters + a hash suffix.
pub fn table_name(application_name: &str) -> String {
    let safe: String = application_name
        .chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let digest = Md5::digest(application_name.as_bytes());
    let suffix: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("leases_{safe}_{suffix}")
}

/// Classifies an error of an open store: busy → throttled (retry), a problem only an operator
/// can fix → unavailable, anything else → storage.
fn storage_error(error: rusqlite::Error) -> LeaseStoreError {
    let unavailable = |what: &str| LeaseStoreError::Unavailable(format!("{what} ({error})"));
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            LeaseStoreError::Throttled(format!("sqlite is busy: {error}"))
        }
        Some(ErrorCode::DiskFull) => unavailable("disk full"),
        Some(ErrorCode::DatabaseCorrupt) => unavailable("file is corrupt"),
        Some(ErrorCode::ReadOnly) => unavailable("file is read-only"),
        Some(ErrorCode::SystemIoFailure) => unavailable("i/o error on the file"),
        Some(ErrorCode::CannotOpen) => unavailable("cannot open the file"),
        Some(ErrorCode::PermissionDenied) => unavailable("permission denied"),
        // Only after a successful open: the file was replaced or overwritten while in use.
        Some(ErrorCode::NotADatabase) => unavailable("file is no longer a SQLite database"),
        _ => LeaseStoreError::Storage(format!("sqlite: {error}")),
    }
}

/// Classifies an error while opening `path`: as [`storage_error`], except that a file that is
/// not SQLite is refused as invalid, and the path is named.
fn open_error(path: &Path, error: rusqlite::Error) -> LeaseStoreError {
    if error.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
        return LeaseStoreError::InvalidStore(format!(
            "{}: file is not a SQLite database: {error}",
            path.display()
        ));
    }
    match storage_error(error) {
        LeaseStoreError::Unavailable(message) => {
            LeaseStoreError::Unavailable(format!("{}: {message}", path.display()))
        }
        other => other,
    }
}

impl SqliteLeaseStore {
    /// Opens (creating if needed) the lease table of `application_name` in the SQLite file at
    /// `path`, with the default [`SqliteOptions`]. Fails with [`LeaseStoreError::InvalidStore`]
    /// if the file is not SQLite, belongs to another program, or has a schema version this build
    /// does not know, and with [`LeaseStoreError::Unavailable`] if it cannot be opened or
    /// written (a missing directory, a read-only or full file system).
    ///
    /// Any number of processes may open the same new file at the same moment: set-up retries
    /// while the file is busy, for up to [`SqliteOptions::open_timeout`].
    pub async fn open(
        path: impl AsRef<Path>,
        application_name: &str,
    ) -> Result<Self, LeaseStoreError> {
        SqliteLeaseStore::open_with_options(path, application_name, SqliteOptions::default()).await
    }

    /// As [`open`](SqliteLeaseStore::open), with `options` (set
    /// [`busy_timeout`](SqliteOptions::busy_timeout) from the fleet's failover time with
    /// [`SqliteOptions::for_failover_time`]).
    pub async fn open_with_options(
        path: impl AsRef<Path>,
        application_name: &str,
        options: SqliteOptions,
    ) -> Result<Self, LeaseStoreError> {
        let path = path.as_ref().to_path_buf();
        if application_name.is_empty() {
            return Err(LeaseStoreError::InvalidStore(
                "application_name must not be empty".to_owned(),
            ));
        }
        let table = table_name(application_name);
        let (jobs, receiver) = mpsc::channel::<Job>();
        let (ready_sender, ready) = tokio::sync::oneshot::channel();
        let (ended_sender, thread_ended) = tokio::sync::oneshot::channel::<()>();
        let thread_path = path.clone();
        let thread_table = table.clone();
        let application = application_name.to_owned();
        std::thread::Builder::new()
            .name("kcl-sqlite".to_owned())
            .spawn(move || {
                // Dropped when this thread ends, which `close` waits for.
                let _ended = ended_sender;
                let opened = Database::open(&thread_path, &application, thread_table, &options);
                let mut database = match opened {
                    Ok(database) => {
                        let _ = ready_sender.send(Ok(()));
                        database
                    }
                    Err(error) => {
                        let _ = ready_sender.send(Err(error));
                        return;
                    }
                };
                while let Ok(first) = receiver.recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_WRITES_PER_COMMIT {
                        match receiver.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    database.run(batch);
                }
            })
            .map_err(|error| {
                LeaseStoreError::Storage(format!("cannot start the sqlite thread: {error}"))
            })?;
        ready.await.map_err(|_| {
            LeaseStoreError::Storage("the sqlite thread ended while opening".to_owned())
        })??;
        Ok(SqliteLeaseStore {
            jobs,
            thread_ended,
            path,
            table,
            skipped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// How many rows the latest [`list_leases`](LeaseStore::list_leases) skipped because they
    /// could not be decoded (each one is logged with `tracing::error!` naming the lease, the
    /// table and the field); 0 before the first scan and once the rows are repaired or deleted.
    pub fn skipped_rows(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Finishes the requests already sent, closes the connection and waits until it is closed
    /// (dropping the store does the same without waiting).
    pub async fn close(self) {
        let SqliteLeaseStore {
            jobs, thread_ended, ..
        } = self;
        drop(jobs);
        // The sender is dropped, never used: an error here means "the thread has ended".
        let _ = thread_ended.await;
    }

    /// The file this store uses.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The table holding this application's leases.
    pub fn table(&self) -> &str {
        &self.table
    }

    async fn send<T>(
        &self,
        job: Job,
        receiver: tokio::sync::oneshot::Receiver<Result<T, LeaseStoreError>>,
    ) -> Result<T, LeaseStoreError> {
        let stopped = || LeaseStoreError::Storage("the sqlite thread has stopped".to_owned());
        self.jobs.send(job).map_err(|_| stopped())?;
        receiver.await.map_err(|_| stopped())?
    }

    /// Runs a read on the connection thread and waits for its result.
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection, &Sql) -> Result<T, LeaseStoreError> + Send + 'static,
    ) -> Result<T, LeaseStoreError> {
        let (reply, receiver) = tokio::sync::oneshot::channel();
        let job = Job::Read(Box::new(move |connection, sql| {
            let _ = reply.send(work(connection, sql));
        }));
        self.send(job, receiver).await
    }

    /// Runs a write in the connection thread's next transaction and waits until it committed.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection, &Sql) -> Result<T, LeaseStoreError> + Send + 'static,
    ) -> Result<T, LeaseStoreError> {
        let (reply, receiver) = tokio::sync::oneshot::channel();
        let job = Job::Write(Box::new(PendingWrite {
            work: Some(Box::new(work)),
            result: None,
            reply,
        }));
        self.send(job, receiver).await
    }
}

/// The connection and the SQL of one application's table; lives on the connection thread.
struct Database {
    connection: Connection,
    sql: Sql,
}

/// The statements of one application's table.
struct Sql {
    /// The table's name (for logs).
    table: String,
    select_one: String,
    select_all: String,
    insert: String,
    update: String,
    delete: String,
}

/// What the file says it is: `application_id`, `user_version` and its number of tables.
type Identity = (i32, i32, i64);

/// Reads the identity inside the caller's open transaction.
fn read_identity(connection: &Connection) -> Result<Identity, rusqlite::Error> {
    // The table count first: it starts the read transaction (the snapshot) if none is open yet.
    let tables: i64 = connection.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
        [],
        |row| row.get(0),
    )?;
    let application_id: i32 =
        connection.query_row("PRAGMA application_id", [], |row| row.get(0))?;
    let user_version: i32 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    Ok((application_id, user_version, tables))
}

/// Reads the identity from one consistent snapshot (one read transaction), so that a set-up
/// committed by another process is seen either entirely or not at all: three separate queries
/// could see its tables but the `application_id` of before and take the file for a foreign one.
fn read_identity_snapshot(connection: &mut Connection) -> Result<Identity, rusqlite::Error> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Deferred)?;
    let identity = read_identity(&transaction)?;
    // Read only: ending it either way is the same; commit releases the snapshot.
    transaction.commit()?;
    Ok(identity)
}

/// Whether the file may be used; `Ok(true)` if it still needs initializing.
fn check_identity(path: &Path, identity: Identity) -> Result<bool, LeaseStoreError> {
    let (application_id, user_version, tables) = identity;
    if application_id == 0 && user_version == 0 && tables == 0 {
        return Ok(true);
    }
    if application_id != APPLICATION_ID {
        return Err(LeaseStoreError::InvalidStore(format!(
            "{} is a SQLite database of another program (application_id {application_id:#x}, \
             {tables} tables), not a kcl-rs lease table",
            path.display()
        )));
    }
    if user_version > SCHEMA_VERSION {
        return Err(LeaseStoreError::InvalidStore(format!(
            "{} has lease schema version {user_version}, newer than the version {SCHEMA_VERSION} \
             this build supports; upgrade kcl-rs",
            path.display()
        )));
    }
    if user_version < 1 {
        return Err(LeaseStoreError::InvalidStore(format!(
            "{} has an unknown lease schema version {user_version}",
            path.display()
        )));
    }
    Ok(false)
}

/// The rollback journal modes a file may still be in while another process switches it to WAL.
fn is_rollback_journal(mode: &str) -> bool {
    ["delete", "truncate", "persist"]
        .iter()
        .any(|rollback| mode.eq_ignore_ascii_case(rollback))
}

/// A pause of `base` plus up to 100% random jitter, so that processes retrying together spread.
fn jittered(base: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let base_micros = u64::try_from(base.as_micros()).unwrap_or(u64::MAX).max(1);
    base + Duration::from_micros(random % base_micros)
}

impl Database {
    fn open(
        path: &Path,
        application_name: &str,
        table: String,
        options: &SqliteOptions,
    ) -> Result<Self, LeaseStoreError> {
        // No deadline if it is too far to represent.
        let deadline = Instant::now().checked_add(options.open_timeout);
        let mut connection = Connection::open(path).map_err(|error| open_error(path, error))?;
        connection
            .busy_timeout(options.busy_timeout.min(MAX_BUSY_TIMEOUT))
            .map_err(|error| open_error(path, error))?;
        connection.set_prepared_statement_cache_capacity(32);
        // SQLite does not always wait on its busy handler during set-up (switching the journal
        // mode, a lock that cannot be upgraded): another process initialising the same file is
        // answered with "database is locked" at once. Retry until the deadline.
        let mut pause = Duration::from_millis(1);
        loop {
            match Database::set_up(&mut connection, path, application_name, &table) {
                Ok(()) => break,
                Err(LeaseStoreError::Throttled(message)) => {
                    let left =
                        deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
                    if left == Some(Duration::ZERO) {
                        return Err(LeaseStoreError::Throttled(format!(
                            "{} stayed busy for {:?} while opening: {message}",
                            path.display(),
                            options.open_timeout
                        )));
                    }
                    let pause_now = jittered(pause);
                    std::thread::sleep(left.map_or(pause_now, |left| pause_now.min(left)));
                    pause = (pause * 2).min(MAX_OPEN_PAUSE);
                }
                Err(error) => return Err(error),
            }
        }
        Ok(Database {
            connection,
            sql: Sql::new(table),
        })
    }

    /// One attempt to check, configure and initialise the file; `Throttled` if it was busy.
    fn set_up(
        connection: &mut Connection,
        path: &Path,
        application_name: &str,
        table: &str,
    ) -> Result<(), LeaseStoreError> {
        let error = |error| open_error(path, error);
        // Refuse foreign files before changing anything in them.
        check_identity(path, read_identity_snapshot(connection).map_err(error)?)?;
        let mode: String = connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            // SQLite answers with the old mode when it could not switch (another connection
            // holds a lock): that is a busy file, not a refusal.
            if is_rollback_journal(&mode) {
                return Err(LeaseStoreError::Throttled(format!(
                    "{} could not be switched to WAL yet (journal mode is {mode})",
                    path.display()
                )));
            }
            return Err(LeaseStoreError::Storage(format!(
                "cannot use WAL journal mode on {} (got {mode})",
                path.display()
            )));
        }
        // NORMAL: a commit is durable against process crashes, and against power loss once the
        // WAL is checkpointed; 64 MiB of page cache and memory-mapped reads keep full scans of
        // large tables in memory.
        connection
            .execute_batch(
                "PRAGMA synchronous = NORMAL;
                 PRAGMA cache_size = -65536;
                 PRAGMA mmap_size = 268435456;",
            )
            .map_err(error)?;

        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(error)?;
        // Another process may have initialized the file meanwhile: check again, under the lock.
        if check_identity(path, read_identity(&transaction).map_err(error)?)? {
            transaction
                .execute_batch(&format!(
                    "PRAGMA application_id = {APPLICATION_ID};
                     PRAGMA user_version = {SCHEMA_VERSION};
                     CREATE TABLE kcl_applications (
                         application_name TEXT PRIMARY KEY NOT NULL,
                         table_name TEXT NOT NULL UNIQUE
                     );"
                ))
                .map_err(error)?;
        }
        transaction
            .execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {table} (
                     lease_key TEXT PRIMARY KEY NOT NULL,
                     lease_owner TEXT,
                     lease_counter INTEGER NOT NULL,
                     checkpoint TEXT NOT NULL,
                     checkpoint_sub INTEGER NOT NULL,
                     pending_checkpoint TEXT,
                     pending_checkpoint_sub INTEGER,
                     pending_checkpoint_state BLOB,
                     owner_switches INTEGER NOT NULL,
                     parent_shard_ids TEXT NOT NULL,
                     child_shard_ids TEXT NOT NULL,
                     starting_hash_key TEXT,
                     ending_hash_key TEXT
                 ) WITHOUT ROWID;"
            ))
            .map_err(error)?;
        transaction
            .execute(
                "INSERT OR IGNORE INTO kcl_applications (application_name, table_name) \
                 VALUES (?1, ?2)",
                params![application_name, table],
            )
            .map_err(error)?;
        transaction.commit().map_err(error)?;

        Ok(())
    }
}

impl Sql {
    fn new(table: String) -> Self {
        Sql {
            select_one: format!("SELECT {COLUMNS} FROM {table} WHERE lease_key = ?1"),
            select_all: format!("SELECT {COLUMNS} FROM {table} ORDER BY lease_key"),
            insert: format!(
                "INSERT OR IGNORE INTO {table} ({COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
            ),
            update: format!(
                "UPDATE {table} SET lease_owner = ?2, lease_counter = ?3, checkpoint = ?4, \
                 checkpoint_sub = ?5, pending_checkpoint = ?6, pending_checkpoint_sub = ?7, \
                 pending_checkpoint_state = ?8, owner_switches = ?9, parent_shard_ids = ?10, \
                 child_shard_ids = ?11, starting_hash_key = ?12, ending_hash_key = ?13 \
                 WHERE lease_key = ?1"
            ),
            delete: format!("DELETE FROM {table} WHERE lease_key = ?1"),
            table,
        }
    }
}

impl Database {
    /// Runs a batch of jobs in order; consecutive writes share one transaction.
    fn run(&mut self, batch: Vec<Job>) {
        let mut in_transaction: Vec<Box<dyn WriteJob>> = Vec::new();
        for job in batch {
            match job {
                Job::Read(read) => {
                    self.commit(&mut in_transaction);
                    read(&self.connection, &self.sql);
                }
                Job::Write(mut write) => {
                    let begin = if in_transaction.is_empty() {
                        self.connection.execute_batch("BEGIN IMMEDIATE")
                    } else {
                        Ok(())
                    };
                    if let Err(error) = begin {
                        write.finish(Some(storage_error(error)));
                        continue;
                    }
                    if let Err(error) = self.run_isolated(write.as_mut()) {
                        // The write's effects could not be undone: abandon the whole batch.
                        let _ = self.connection.execute_batch("ROLLBACK");
                        for queued in in_transaction.drain(..) {
                            queued.finish(Some(duplicate(&error)));
                        }
                        write.finish(Some(error));
                        continue;
                    }
                    in_transaction.push(write);
                }
            }
        }
        self.commit(&mut in_transaction);
    }

    /// Runs one write inside a savepoint so that a write failing half-way (a multi-lease renewal
    /// hitting a disk error) leaves nothing behind while the other writes of the batch commit.
    fn run_isolated(&mut self, write: &mut dyn WriteJob) -> Result<(), LeaseStoreError> {
        let step = |sql: &str| -> Result<(), LeaseStoreError> {
            self.connection
                .prepare_cached(sql)
                .and_then(|mut statement| statement.execute([]))
                .map(|_| ())
                .map_err(storage_error)
        };
        step("SAVEPOINT kcl_write")?;
        write.run(&self.connection, &self.sql);
        if write.failed() {
            step("ROLLBACK TO kcl_write")?;
        }
        step("RELEASE kcl_write")
    }

    /// Commits the open transaction and reports every write in it.
    fn commit(&mut self, in_transaction: &mut Vec<Box<dyn WriteJob>>) {
        if in_transaction.is_empty() {
            return;
        }
        let failure = match self.connection.execute_batch("COMMIT") {
            Ok(()) => None,
            Err(error) => {
                let _ = self.connection.execute_batch("ROLLBACK");
                Some(storage_error(error))
            }
        };
        for write in in_transaction.drain(..) {
            write.finish(failure.as_ref().map(duplicate));
        }
    }
}

/// The lease on `lease_key`: the outer error is a failed query, the inner one a row that
/// exists but cannot be decoded.
fn read_lease(
    connection: &Connection,
    sql: &str,
    lease_key: &ShardId,
) -> Result<Option<Result<Lease, BadRow>>, LeaseStoreError> {
    let mut statement = connection.prepare_cached(sql).map_err(storage_error)?;
    let mut rows = statement
        .query(params![lease_key.as_str()])
        .map_err(storage_error)?;
    Ok(rows.next().map_err(storage_error)?.map(lease_from_row))
}

fn write_lease(
    connection: &Connection,
    sql: &str,
    lease: &Lease,
) -> Result<usize, LeaseStoreError> {
    let raw = RawLease::from_lease(lease)?;
    let mut statement = connection.prepare_cached(sql).map_err(storage_error)?;
    statement
        .execute(params![
            raw.lease_key,
            raw.lease_owner,
            raw.lease_counter,
            raw.checkpoint,
            raw.checkpoint_sub,
            raw.pending_checkpoint,
            raw.pending_checkpoint_sub,
            raw.pending_checkpoint_state,
            raw.owner_switches,
            raw.parent_shard_ids,
            raw.child_shard_ids,
            raw.starting_hash_key,
            raw.ending_hash_key,
        ])
        .map_err(storage_error)
}

/// Read-modify-write of one lease (inside the caller's write transaction, which holds SQLite's
/// write lock: no other connection can change the row between the read and the write).
fn modify(
    connection: &Connection,
    sql: &Sql,
    lease_key: &ShardId,
    change: impl FnOnce(&mut Lease) -> Result<(), LeaseStoreError>,
) -> Result<Lease, LeaseStoreError> {
    // An undecodable row fails the write here, before anything is written over it.
    let mut lease = read_lease(connection, &sql.select_one, lease_key)?
        .ok_or_else(|| conditions::missing(lease_key))??;
    change(&mut lease)?;
    write_lease(connection, &sql.update, &lease)?;
    Ok(lease)
}

fn renew_batch(
    connection: &Connection,
    sql: &Sql,
    renewals: &[Renewal],
) -> Result<Vec<Result<Lease, LeaseStoreError>>, LeaseStoreError> {
    let mut results = Vec::with_capacity(renewals.len());
    for renewal in renewals {
        let mut lease = match read_lease(connection, &sql.select_one, &renewal.lease_key)? {
            Some(Ok(lease)) => lease,
            // Only this renewal fails; the others of the batch go ahead.
            Some(Err(bad)) => {
                results.push(Err(bad.into()));
                continue;
            }
            None => {
                results.push(Err(conditions::missing(&renewal.lease_key)));
                continue;
            }
        };
        match conditions::renew(&mut lease, renewal) {
            Ok(()) => {
                write_lease(connection, &sql.update, &lease)?;
                results.push(Ok(lease));
            }
            Err(failed) => results.push(Err(failed)),
        }
    }
    Ok(results)
}

/// Every lease that decodes, and how many rows did not (each is logged and skipped, so one bad
/// row never stops the fleet's scans).
fn list(connection: &Connection, sql: &Sql) -> Result<(Vec<Lease>, u64), LeaseStoreError> {
    let mut statement = connection
        .prepare_cached(&sql.select_all)
        .map_err(storage_error)?;
    let mut rows = statement.query([]).map_err(storage_error)?;
    let mut leases = Vec::new();
    let mut skipped = 0;
    while let Some(row) = rows.next().map_err(storage_error)? {
        match lease_from_row(row) {
            Ok(lease) => leases.push(lease),
            Err(bad) => {
                skipped += 1;
                tracing::error!(
                    table = %sql.table,
                    lease_key = %bad.lease_key,
                    field = bad.field,
                    problem = %bad.detail,
                    "skipping a lease row that cannot be decoded; repair or delete it"
                );
            }
        }
    }
    Ok((leases, skipped))
}

/// A row as stored: text and integers only.
struct RawLease {
    lease_key: String,
    lease_owner: Option<String>,
    lease_counter: i64,
    checkpoint: String,
    checkpoint_sub: i64,
    pending_checkpoint: Option<String>,
    pending_checkpoint_sub: Option<i64>,
    pending_checkpoint_state: Option<Vec<u8>>,
    owner_switches: i64,
    parent_shard_ids: String,
    child_shard_ids: String,
    starting_hash_key: Option<String>,
    ending_hash_key: Option<String>,
}

/// A stored row that cannot be decoded into a [`Lease`].
#[derive(Debug)]
struct BadRow {
    /// The row's key (or a description of it, if the key itself is bad).
    lease_key: String,
    /// The lease field (Java KCL attribute name) that failed.
    field: &'static str,
    /// What is wrong with it.
    detail: String,
}

impl From<BadRow> for LeaseStoreError {
    fn from(bad: BadRow) -> Self {
        LeaseStoreError::InvalidStore(format!(
            "lease {} has an invalid {}: {}",
            bad.lease_key, bad.field, bad.detail
        ))
    }
}

fn corrupt(lease_key: &str, field: &'static str, detail: impl std::fmt::Display) -> BadRow {
    BadRow {
        lease_key: lease_key.to_owned(),
        field,
        detail: detail.to_string(),
    }
}

/// A counter as stored: the file holds non-negative integers only (as DynamoDB's numbers do).
fn stored_integer(lease: &Lease, field: &str, value: u64) -> Result<i64, LeaseStoreError> {
    i64::try_from(value).map_err(|_| {
        LeaseStoreError::InvalidStore(format!(
            "lease {}: {field} {value} is larger than the lease file can hold",
            lease.lease_key
        ))
    })
}

fn ids_to_json(ids: &[ShardId]) -> Result<String, LeaseStoreError> {
    serde_json::to_string(ids)
        .map_err(|error| LeaseStoreError::Storage(format!("cannot encode shard ids: {error}")))
}

impl RawLease {
    fn from_lease(lease: &Lease) -> Result<Self, LeaseStoreError> {
        Ok(RawLease {
            lease_key: lease.lease_key.as_str().to_owned(),
            lease_owner: lease.lease_owner.clone(),
            lease_counter: stored_integer(lease, "leaseCounter", lease.lease_counter)?,
            checkpoint: lease.checkpoint.value.as_table_string(),
            checkpoint_sub: stored_integer(
                lease,
                "checkpointSubSequenceNumber",
                lease.checkpoint.sub_sequence_number,
            )?,
            pending_checkpoint: lease
                .pending_checkpoint
                .map(|pending| pending.value.as_table_string()),
            pending_checkpoint_sub: lease
                .pending_checkpoint
                .map(|pending| {
                    stored_integer(
                        lease,
                        "pendingCheckpointSubSequenceNumber",
                        pending.sub_sequence_number,
                    )
                })
                .transpose()?,
            pending_checkpoint_state: lease.pending_checkpoint_state.clone(),
            owner_switches: stored_integer(
                lease,
                "ownerSwitchesSinceCheckpoint",
                lease.owner_switches_since_checkpoint,
            )?,
            parent_shard_ids: ids_to_json(&lease.parent_shard_ids)?,
            child_shard_ids: ids_to_json(&lease.child_shard_ids)?,
            starting_hash_key: lease
                .hash_key_range
                .map(|range| range.starting_hash_key.to_string()),
            ending_hash_key: lease
                .hash_key_range
                .map(|range| range.ending_hash_key.to_string()),
        })
    }
}

/// Column accessors that borrow from the row (no intermediate `String`s on the scan path).
struct Columns<'r, 's> {
    row: &'r rusqlite::Row<'s>,
    lease_key: &'r str,
}

impl<'r> Columns<'r, '_> {
    fn value(
        &self,
        index: usize,
        field: &'static str,
    ) -> Result<rusqlite::types::ValueRef<'r>, BadRow> {
        self.row
            .get_ref(index)
            .map_err(|error| corrupt(self.lease_key, field, error))
    }

    fn text(&self, index: usize, field: &'static str) -> Result<&'r str, BadRow> {
        self.optional_text(index, field)?
            .ok_or_else(|| corrupt(self.lease_key, field, "missing"))
    }

    fn optional_text(&self, index: usize, field: &'static str) -> Result<Option<&'r str>, BadRow> {
        match self.value(index, field)? {
            rusqlite::types::ValueRef::Null => Ok(None),
            rusqlite::types::ValueRef::Text(bytes) => std::str::from_utf8(bytes)
                .map(Some)
                .map_err(|error| corrupt(self.lease_key, field, error)),
            other => Err(corrupt(
                self.lease_key,
                field,
                format!("{:?}", other.data_type()),
            )),
        }
    }

    fn integer(&self, index: usize, field: &'static str) -> Result<u64, BadRow> {
        self.optional_integer(index, field)?
            .ok_or_else(|| corrupt(self.lease_key, field, "missing"))
    }

    fn optional_integer(&self, index: usize, field: &'static str) -> Result<Option<u64>, BadRow> {
        match self.value(index, field)? {
            rusqlite::types::ValueRef::Null => Ok(None),
            rusqlite::types::ValueRef::Integer(value) => u64::try_from(value)
                .map(Some)
                .map_err(|_| corrupt(self.lease_key, field, format!("{value} is negative"))),
            other => Err(corrupt(
                self.lease_key,
                field,
                format!("{:?}", other.data_type()),
            )),
        }
    }

    fn optional_blob(&self, index: usize, field: &'static str) -> Result<Option<Vec<u8>>, BadRow> {
        match self.value(index, field)? {
            rusqlite::types::ValueRef::Null => Ok(None),
            rusqlite::types::ValueRef::Blob(bytes) => Ok(Some(bytes.to_vec())),
            other => Err(corrupt(
                self.lease_key,
                field,
                format!("{:?}", other.data_type()),
            )),
        }
    }

    fn checkpoint_value(&self, text: &str, field: &'static str) -> Result<CheckpointValue, BadRow> {
        CheckpointValue::from_table_string(text).ok_or_else(|| corrupt(self.lease_key, field, text))
    }

    fn shard_ids(&self, index: usize, field: &'static str) -> Result<Vec<ShardId>, BadRow> {
        let text = self.text(index, field)?;
        if let Some(ids) = parse_plain_string_array(text) {
            return Ok(ids);
        }
        serde_json::from_str(text).map_err(|error| corrupt(self.lease_key, field, error))
    }

    fn hash_key(&self, index: usize, field: &'static str) -> Result<Option<u128>, BadRow> {
        self.optional_text(index, field)?
            .map(|text| parse_u128(text).ok_or_else(|| corrupt(self.lease_key, field, text)))
            .transpose()
    }
}

/// The fast path for a JSON array of strings without escapes (every real shard id): `None`
/// whenever the text is anything else, so the JSON parser decides.
fn parse_plain_string_array(text: &str) -> Option<Vec<ShardId>> {
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    if inner.is_empty() {
        return Some(Vec::new());
    }
    if inner.contains('\\') {
        return None;
    }
    // Without escapes a quote only delimits strings, so `","` only separates items.
    inner
        .split(',')
        .map(|item| {
            let id = item.strip_prefix('"')?.strip_suffix('"')?;
            (!id.contains('"')).then(|| ShardId::from(id))
        })
        .collect()
}

/// Parses a decimal `u128` 19 digits at a time (the standard parser multiplies in 128 bits per
/// digit, which dominated full scans).
fn parse_u128(text: &str) -> Option<u128> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || bytes.len() > 39 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    bytes.chunks(19).try_fold(0u128, |value, chunk| {
        let chunk_value = chunk
            .iter()
            .fold(0u64, |acc, digit| acc * 10 + u64::from(digit - b'0'));
        value
            .checked_mul(10u128.pow(chunk.len() as u32))?
            .checked_add(u128::from(chunk_value))
    })
}

/// Decodes one row of `COLUMNS`.
fn lease_from_row(row: &rusqlite::Row<'_>) -> Result<Lease, BadRow> {
    let lease_key = match row.get_ref(0) {
        Ok(rusqlite::types::ValueRef::Text(bytes)) => std::str::from_utf8(bytes)
            .map_err(|error| corrupt(&String::from_utf8_lossy(bytes), "leaseKey", error))?,
        Ok(other) => return Err(corrupt(&format!("{other:?}"), "leaseKey", "not text")),
        Err(error) => return Err(corrupt("?", "leaseKey", error)),
    };
    let columns = Columns { row, lease_key };
    let checkpoint = ExtendedSequenceNumber {
        value: columns.checkpoint_value(columns.text(3, "checkpoint")?, "checkpoint")?,
        sub_sequence_number: columns.integer(4, "checkpointSubSequenceNumber")?,
    };
    let pending_checkpoint = match columns.optional_text(5, "pendingCheckpoint")? {
        None => None,
        Some(text) => Some(ExtendedSequenceNumber {
            value: columns.checkpoint_value(text, "pendingCheckpoint")?,
            sub_sequence_number: columns
                .optional_integer(6, "pendingCheckpointSubSequenceNumber")?
                .unwrap_or(0),
        }),
    };
    let hash_key_range = match (
        columns.hash_key(11, "startingHashKey")?,
        columns.hash_key(12, "endingHashKey")?,
    ) {
        (Some(starting_hash_key), Some(ending_hash_key)) => Some(HashKeyRange {
            starting_hash_key,
            ending_hash_key,
        }),
        _ => None,
    };
    Ok(Lease {
        lease_key: ShardId::from(lease_key),
        lease_owner: columns.optional_text(1, "leaseOwner")?.map(str::to_owned),
        lease_counter: columns.integer(2, "leaseCounter")?,
        checkpoint,
        pending_checkpoint,
        pending_checkpoint_state: columns.optional_blob(7, "pendingCheckpointState")?,
        owner_switches_since_checkpoint: columns.integer(8, "ownerSwitchesSinceCheckpoint")?,
        parent_shard_ids: columns.shard_ids(9, "parentShardId")?,
        child_shard_ids: columns.shard_ids(10, "childShardIds")?,
        hash_key_range,
    })
}

#[async_trait::async_trait]
impl LeaseStore for SqliteLeaseStore {
    async fn create_lease_if_absent(&self, lease: &Lease) -> Result<bool, LeaseStoreError> {
        let lease = lease.clone();
        self.write(move |connection, sql| Ok(write_lease(connection, &sql.insert, &lease)? == 1))
            .await
    }

    async fn list_leases(&self) -> Result<Vec<Lease>, LeaseStoreError> {
        let skipped_rows = self.skipped.clone();
        self.read(move |connection, sql| {
            let (leases, skipped) = list(connection, sql)?;
            skipped_rows.store(skipped, Ordering::Relaxed);
            Ok(leases)
        })
        .await
    }

    async fn get_lease(&self, lease_key: &ShardId) -> Result<Option<Lease>, LeaseStoreError> {
        let lease_key = lease_key.clone();
        self.read(move |connection, sql| {
            match read_lease(connection, &sql.select_one, &lease_key)? {
                Some(decoded) => decoded.map(Some).map_err(LeaseStoreError::from),
                None => Ok(None),
            }
        })
        .await
    }

    async fn renew_leases(
        &self,
        renewals: &[Renewal],
    ) -> Result<Vec<Result<Lease, LeaseStoreError>>, LeaseStoreError> {
        if renewals.is_empty() {
            return Ok(Vec::new());
        }
        let renewals = renewals.to_vec();
        self.write(move |connection, sql| renew_batch(connection, sql, &renewals))
            .await
    }

    async fn take_lease(
        &self,
        lease_key: &ShardId,
        expected_counter: u64,
        new_owner: &str,
    ) -> Result<Lease, LeaseStoreError> {
        let lease_key = lease_key.clone();
        let new_owner = new_owner.to_owned();
        self.write(move |connection, sql| {
            modify(connection, sql, &lease_key, |lease| {
                conditions::take(lease, expected_counter, &new_owner)
            })
        })
        .await
    }

    async fn evict_lease(
        &self,
        lease_key: &ShardId,
        expected_owner: &str,
    ) -> Result<Lease, LeaseStoreError> {
        let lease_key = lease_key.clone();
        let expected_owner = expected_owner.to_owned();
        self.write(move |connection, sql| {
            modify(connection, sql, &lease_key, |lease| {
                conditions::evict(lease, &expected_owner)
            })
        })
        .await
    }

    async fn update_checkpoint(
        &self,
        lease_key: &ShardId,
        expected_owner: &str,
        expected_counter: u64,
        update: &CheckpointUpdate,
    ) -> Result<Lease, LeaseStoreError> {
        let lease_key = lease_key.clone();
        let expected_owner = expected_owner.to_owned();
        let update = update.clone();
        self.write(move |connection, sql| {
            modify(connection, sql, &lease_key, |lease| {
                conditions::checkpoint(lease, &expected_owner, expected_counter, &update)
            })
        })
        .await
    }

    async fn update_lineage(
        &self,
        lease_key: &ShardId,
        child_shard_ids: &[ShardId],
        hash_key_range: Option<HashKeyRange>,
    ) -> Result<Lease, LeaseStoreError> {
        let lease_key = lease_key.clone();
        let child_shard_ids = child_shard_ids.to_vec();
        self.write(move |connection, sql| {
            modify(connection, sql, &lease_key, |lease| {
                conditions::lineage(lease, &child_shard_ids, hash_key_range);
                Ok(())
            })
        })
        .await
    }

    async fn delete_lease(&self, lease_key: &ShardId) -> Result<(), LeaseStoreError> {
        let lease_key = lease_key.clone();
        self.write(move |connection, sql| {
            connection
                .prepare_cached(&sql.delete)
                .and_then(|mut statement| statement.execute(params![lease_key.as_str()]))
                .map_err(storage_error)?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::OpenFlags;

    /// A file with one table `t` of a few rows.
    fn file_with_a_table(dir: &Path) -> PathBuf {
        let path = dir.join("data.db");
        let connection = Connection::open(&path).expect("open");
        connection
            .execute_batch(
                "CREATE TABLE t (value BLOB);
                 INSERT INTO t VALUES (zeroblob(100)), (zeroblob(100));",
            )
            .expect("create");
        path
    }

    fn assert_unavailable(error: LeaseStoreError, what: &str) {
        match &error {
            LeaseStoreError::Unavailable(message) => {
                assert!(message.contains(what), "{message}");
                assert!(!error.is_retryable(), "{error}");
            }
            other => panic!("expected Unavailable({what}), got {other:?}"),
        }
    }

    // Real SQLite errors, produced by real files and connections, through the classification.

    #[test]
    fn a_write_through_a_read_only_connection_is_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = file_with_a_table(dir.path());
        let connection =
            Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
        let error = connection
            .execute("INSERT INTO t VALUES (1)", [])
            .expect_err("read-only");
        assert_eq!(error.sqlite_error_code(), Some(ErrorCode::ReadOnly));
        assert_unavailable(storage_error(error), "file is read-only");
    }

    #[test]
    fn a_full_database_is_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = file_with_a_table(dir.path());
        let connection = Connection::open(&path).expect("open");
        let pages: i64 = connection
            .query_row("PRAGMA page_count", [], |row| row.get(0))
            .expect("page count");
        // The file may not grow: SQLite reports exactly what a full disk gives (SQLITE_FULL).
        let _: i64 = connection
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |row| {
                row.get(0)
            })
            .expect("limit");
        let error = connection
            .execute("INSERT INTO t VALUES (zeroblob(1000000))", [])
            .expect_err("full");
        assert_eq!(error.sqlite_error_code(), Some(ErrorCode::DiskFull));
        assert_unavailable(storage_error(error), "disk full");
    }

    #[test]
    fn a_file_that_cannot_be_opened_is_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing").join("data.db");
        let error = Connection::open(&path).expect_err("no directory");
        assert_eq!(error.sqlite_error_code(), Some(ErrorCode::CannotOpen));
        assert_unavailable(open_error(&path, error), "cannot open the file");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_invalid_at_open_and_unavailable_later() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("garbage.db");
        std::fs::write(&path, vec![0x5A; 4096]).expect("write");
        let connection = Connection::open(&path).expect("open is lazy");
        let error = || {
            connection
                .query_row("SELECT count(*) FROM sqlite_master", [], |row| {
                    row.get::<_, i64>(0)
                })
                .expect_err("not a database")
        };
        assert_eq!(error().sqlite_error_code(), Some(ErrorCode::NotADatabase));
        assert!(matches!(
            open_error(&path, error()),
            LeaseStoreError::InvalidStore(_)
        ));
        assert_unavailable(storage_error(error()), "no longer a SQLite database");
    }

    #[test]
    fn a_lock_held_by_another_connection_is_throttled_and_retryable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = file_with_a_table(dir.path());
        let holder = Connection::open(&path).expect("open");
        holder.execute_batch("BEGIN IMMEDIATE").expect("lock");
        let waiter = Connection::open(&path).expect("open");
        waiter.busy_timeout(Duration::ZERO).expect("no waiting");
        let error = waiter.execute_batch("BEGIN IMMEDIATE").expect_err("locked");
        let error = storage_error(error);
        assert!(matches!(error, LeaseStoreError::Throttled(_)), "{error:?}");
        assert!(error.is_retryable());
        assert!(duplicate(&error).is_retryable());
    }

    #[test]
    fn u128_parsing_matches_the_standard_parser() {
        let max = u128::MAX.to_string();
        for text in [
            "0",
            "7",
            "1234567890123456789",
            "12345678901234567890",
            &max,
        ] {
            assert_eq!(parse_u128(text), text.parse().ok(), "{text}");
        }
        let too_big = "340282366920938463463374607431768211456";
        for bad in [
            "",
            "-1",
            "1a",
            " 1",
            too_big,
            "1234567890123456789012345678901234567890",
        ] {
            assert_eq!(parse_u128(bad), None, "{bad}");
        }
    }

    #[test]
    fn shard_id_lists_decode_like_json() {
        let ids =
            |names: &[&str]| -> Vec<ShardId> { names.iter().map(|n| ShardId::from(*n)).collect() };
        for names in [
            &[][..],
            &["shardId-000000000001"][..],
            &["a", "b"][..],
            &["a,b", "c"][..],
            &["quote\"inside", "x"][..],
            &["back\\slash"][..],
            &["", ","][..],
        ] {
            let encoded = ids_to_json(&ids(names)).expect("encode");
            let fast = parse_plain_string_array(&encoded);
            if let Some(fast) = &fast {
                assert_eq!(fast, &ids(names), "{encoded}");
            }
            let slow: Vec<ShardId> = serde_json::from_str(&encoded).expect("json");
            assert_eq!(slow, ids(names), "{encoded}");
        }
    }

    #[test]
    fn table_names_are_safe_and_distinct() {
        assert_eq!(table_name("my-app").len(), table_name("my_app").len());
        assert_ne!(table_name("my-app"), table_name("my_app"));
        let odd = table_name("app; DROP TABLE x; --\u{1F600}");
        assert!(
            odd.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "{odd}"
        );
        assert!(odd.starts_with("leases_"));
    }
}
