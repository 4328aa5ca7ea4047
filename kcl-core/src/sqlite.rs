//! [`SqliteLeaseStore`]: the lease table in a SQLite file that several processes may share.
//!
//! - One table per application (the name is sanitized into a table name with a hash suffix, so
//!   distinct names never collide) plus a `kcl_applications` table naming them.
//! - WAL journal, `synchronous=NORMAL`, a busy timeout, every write in `BEGIN IMMEDIATE` (the
//!   write lock is taken before the read of the read-modify-write, so two processes can never
//!   both pass a condition), cached prepared statements, a batch of renewals in one transaction.
//! - Group commit: writes queued while the previous transaction ran are applied one after the
//!   other in ONE transaction (each with its own condition; one write's failed condition does not
//!   affect the others) and each caller is answered only after that transaction committed.
//! - The file is stamped with an `application_id` and a schema version (`PRAGMA user_version`).
//!   A file that is not SQLite, belongs to another program or has a newer schema is refused
//!   with [`LeaseStoreError::InvalidStore`] and left untouched.
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
use std::sync::mpsc;
use std::time::Duration;

/// `PRAGMA application_id` of a kcl-rs lease file ("KCLR").
pub const APPLICATION_ID: i32 = 0x4B43_4C52;
/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i32 = 1;
/// How long a write waits for another process's write lock before giving up as throttled.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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

fn storage_error(error: rusqlite::Error) -> LeaseStoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            LeaseStoreError::Throttled(format!("sqlite is busy: {error}"))
        }
        Some(ErrorCode::NotADatabase) => {
            LeaseStoreError::InvalidStore(format!("file is not a SQLite database: {error}"))
        }
        _ => LeaseStoreError::Storage(format!("sqlite: {error}")),
    }
}

impl SqliteLeaseStore {
    /// Opens (creating if needed) the lease table of `application_name` in the SQLite file at
    /// `path`. Fails with [`LeaseStoreError::InvalidStore`] if the file is not SQLite, belongs
    /// to another program, or has a schema version this build does not know.
    pub async fn open(
        path: impl AsRef<Path>,
        application_name: &str,
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
                let opened = Database::open(&thread_path, &application, thread_table);
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
        })
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
    select_one: String,
    select_all: String,
    insert: String,
    update: String,
    delete: String,
}

fn read_identity(connection: &Connection) -> Result<(i32, i32, i64), LeaseStoreError> {
    let application_id: i32 = connection
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .map_err(storage_error)?;
    let user_version: i32 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(storage_error)?;
    let tables: i64 = connection
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |row| row.get(0),
        )
        .map_err(storage_error)?;
    Ok((application_id, user_version, tables))
}

/// Whether the file may be used; `Ok(true)` if it still needs initializing.
fn check_identity(path: &Path, identity: (i32, i32, i64)) -> Result<bool, LeaseStoreError> {
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

impl Database {
    fn open(path: &Path, application_name: &str, table: String) -> Result<Self, LeaseStoreError> {
        let mut connection = Connection::open(path).map_err(storage_error)?;
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(storage_error)?;
        connection.set_prepared_statement_cache_capacity(32);
        // Refuse foreign files before changing anything in them.
        let identity = read_identity(&connection).map_err(|error| match error {
            LeaseStoreError::InvalidStore(message) => {
                LeaseStoreError::InvalidStore(format!("{}: {message}", path.display()))
            }
            other => other,
        })?;
        check_identity(path, identity)?;
        let mode: String = connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(storage_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
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
            .map_err(storage_error)?;

        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(storage_error)?;
        // Another process may have initialized the file meanwhile: check again, under the lock.
        if check_identity(path, read_identity(&transaction)?)? {
            transaction
                .execute_batch(&format!(
                    "PRAGMA application_id = {APPLICATION_ID};
                     PRAGMA user_version = {SCHEMA_VERSION};
                     CREATE TABLE kcl_applications (
                         application_name TEXT PRIMARY KEY NOT NULL,
                         table_name TEXT NOT NULL UNIQUE
                     );"
                ))
                .map_err(storage_error)?;
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
            .map_err(storage_error)?;
        transaction
            .execute(
                "INSERT OR IGNORE INTO kcl_applications (application_name, table_name) \
                 VALUES (?1, ?2)",
                params![application_name, table],
            )
            .map_err(storage_error)?;
        transaction.commit().map_err(storage_error)?;

        Ok(Database {
            connection,
            sql: Sql {
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
            },
        })
    }

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

fn read_lease(
    connection: &Connection,
    sql: &str,
    lease_key: &ShardId,
) -> Result<Option<Lease>, LeaseStoreError> {
    let mut statement = connection.prepare_cached(sql).map_err(storage_error)?;
    let mut rows = statement
        .query(params![lease_key.as_str()])
        .map_err(storage_error)?;
    match rows.next().map_err(storage_error)? {
        Some(row) => lease_from_row(row).map(Some),
        None => Ok(None),
    }
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
    let mut lease = read_lease(connection, &sql.select_one, lease_key)?
        .ok_or_else(|| conditions::missing(lease_key))?;
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
        let Some(mut lease) = read_lease(connection, &sql.select_one, &renewal.lease_key)? else {
            results.push(Err(conditions::missing(&renewal.lease_key)));
            continue;
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

fn list(connection: &Connection, sql: &Sql) -> Result<Vec<Lease>, LeaseStoreError> {
    let mut statement = connection
        .prepare_cached(&sql.select_all)
        .map_err(storage_error)?;
    let mut rows = statement.query([]).map_err(storage_error)?;
    let mut leases = Vec::new();
    while let Some(row) = rows.next().map_err(storage_error)? {
        leases.push(lease_from_row(row)?);
    }
    Ok(leases)
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

fn corrupt(lease_key: &str, field: &str, detail: impl std::fmt::Display) -> LeaseStoreError {
    LeaseStoreError::InvalidStore(format!(
        "lease {lease_key} has an invalid {field}: {detail}"
    ))
}

fn ids_to_json(ids: &[ShardId]) -> Result<String, LeaseStoreError> {
    serde_json::to_string(ids)
        .map_err(|error| LeaseStoreError::Storage(format!("cannot encode shard ids: {error}")))
}

impl RawLease {
    fn from_lease(lease: &Lease) -> Result<Self, LeaseStoreError> {
        // u64 values are stored bit-for-bit in SQLite's signed 64-bit integers.
        Ok(RawLease {
            lease_key: lease.lease_key.as_str().to_owned(),
            lease_owner: lease.lease_owner.clone(),
            lease_counter: lease.lease_counter as i64,
            checkpoint: lease.checkpoint.value.as_table_string(),
            checkpoint_sub: lease.checkpoint.sub_sequence_number as i64,
            pending_checkpoint: lease
                .pending_checkpoint
                .map(|pending| pending.value.as_table_string()),
            pending_checkpoint_sub: lease
                .pending_checkpoint
                .map(|pending| pending.sub_sequence_number as i64),
            pending_checkpoint_state: lease.pending_checkpoint_state.clone(),
            owner_switches: lease.owner_switches_since_checkpoint as i64,
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
    fn value(&self, index: usize) -> Result<rusqlite::types::ValueRef<'r>, LeaseStoreError> {
        self.row.get_ref(index).map_err(storage_error)
    }

    fn text(&self, index: usize, field: &str) -> Result<&'r str, LeaseStoreError> {
        self.optional_text(index, field)?
            .ok_or_else(|| corrupt(self.lease_key, field, "missing"))
    }

    fn optional_text(&self, index: usize, field: &str) -> Result<Option<&'r str>, LeaseStoreError> {
        match self.value(index)? {
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

    fn integer(&self, index: usize, field: &str) -> Result<u64, LeaseStoreError> {
        self.optional_integer(index, field)?
            .ok_or_else(|| corrupt(self.lease_key, field, "missing"))
    }

    fn optional_integer(&self, index: usize, field: &str) -> Result<Option<u64>, LeaseStoreError> {
        match self.value(index)? {
            rusqlite::types::ValueRef::Null => Ok(None),
            // u64 values are stored bit-for-bit in SQLite's signed 64-bit integers.
            rusqlite::types::ValueRef::Integer(value) => Ok(Some(value as u64)),
            other => Err(corrupt(
                self.lease_key,
                field,
                format!("{:?}", other.data_type()),
            )),
        }
    }

    fn optional_blob(&self, index: usize, field: &str) -> Result<Option<Vec<u8>>, LeaseStoreError> {
        match self.value(index)? {
            rusqlite::types::ValueRef::Null => Ok(None),
            rusqlite::types::ValueRef::Blob(bytes) => Ok(Some(bytes.to_vec())),
            other => Err(corrupt(
                self.lease_key,
                field,
                format!("{:?}", other.data_type()),
            )),
        }
    }

    fn checkpoint_value(
        &self,
        text: &str,
        field: &str,
    ) -> Result<CheckpointValue, LeaseStoreError> {
        CheckpointValue::from_table_string(text).ok_or_else(|| corrupt(self.lease_key, field, text))
    }

    fn shard_ids(&self, index: usize, field: &str) -> Result<Vec<ShardId>, LeaseStoreError> {
        let text = self.text(index, field)?;
        if let Some(ids) = parse_plain_string_array(text) {
            return Ok(ids);
        }
        serde_json::from_str(text).map_err(|error| corrupt(self.lease_key, field, error))
    }

    fn hash_key(&self, index: usize, field: &str) -> Result<Option<u128>, LeaseStoreError> {
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
fn lease_from_row(row: &rusqlite::Row<'_>) -> Result<Lease, LeaseStoreError> {
    let lease_key = match row.get_ref(0).map_err(storage_error)? {
        rusqlite::types::ValueRef::Text(bytes) => {
            std::str::from_utf8(bytes).map_err(|error| corrupt("?", "leaseKey", error))?
        }
        _ => return Err(corrupt("?", "leaseKey", "not text")),
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
        self.read(list).await
    }

    async fn get_lease(&self, lease_key: &ShardId) -> Result<Option<Lease>, LeaseStoreError> {
        let lease_key = lease_key.clone();
        self.read(move |connection, sql| read_lease(connection, &sql.select_one, &lease_key))
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
