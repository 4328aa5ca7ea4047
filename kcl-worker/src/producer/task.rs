//! The producer's background task: routes user records to per-shard queues, aggregates them,
//! collects `PutRecords` requests, paces them per shard, retries failures and resolves every
//! record's receipt.

use super::aggregator::Aggregator;
use super::batch::PutOutcome;
use super::collector::Collector;
use super::config::KplProducerConfig;
use super::error::ProduceError;
use super::handle::{PutResult, Submitted};
use super::metrics::ProducerMetrics;
use super::rate_limit::RateLimiter;
use super::retry;
use super::shard_map::ShardMap;
use super::target::ProducerTarget;
use crate::kpl::UserRecord;
use kcl_core::clock::SharedClock;
use kcl_core::kinesis::{HashKey, KinesisError};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// What the handle sends the task.
#[derive(Debug)]
pub(crate) enum Command {
    /// A user record to put.
    Record(Submitted),
    /// Send everything now; answer when nothing is left in flight.
    Flush(oneshot::Sender<()>),
}

/// A user record inside the task, with what the task tracks about it.
#[derive(Debug)]
struct Pending {
    submitted: Submitted,
    hash_key: HashKey,
    arrived: Duration,
    deadline: Duration,
}

/// One Kinesis record to put: an aggregate of user records, or one user record as it is.
#[derive(Debug)]
struct Outgoing {
    users: Vec<Pending>,
    wire: UserRecord,
    aggregated: bool,
    /// The queue (predicted shard, `""` when unknown) it belongs to.
    queue: String,
    /// Distinct partition keys of its user records (ordered mode).
    keys: Vec<String>,
    attempts: u32,
    backoff: Option<backon::ExponentialBackoff>,
    not_before: Duration,
    last_error: Option<String>,
}

impl Outgoing {
    /// A Kinesis record for `users` (aggregated when more than one).
    fn new(users: Vec<Pending>, queue: String) -> Outgoing {
        let mut outgoing = Outgoing::unencoded(users, queue);
        outgoing.encode();
        outgoing
    }

    /// A Kinesis record for `users` whose aggregate `data` is already encoded.
    fn aggregated(users: Vec<Pending>, data: bytes::Bytes, queue: String) -> Outgoing {
        if users.len() == 1 {
            return Outgoing::new(users, queue);
        }
        let mut outgoing = Outgoing::unencoded(users, queue);
        if let Some(first) = outgoing.users.first() {
            outgoing.wire = UserRecord {
                partition_key: first.submitted.record.partition_key.clone(),
                explicit_hash_key: Some(first.hash_key),
                data,
            };
            outgoing.aggregated = true;
        }
        outgoing
    }

    fn unencoded(users: Vec<Pending>, queue: String) -> Outgoing {
        let mut keys: Vec<String> = Vec::new();
        for user in &users {
            let key = &user.submitted.record.partition_key;
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
        Outgoing {
            wire: UserRecord::new("", bytes::Bytes::new()),
            users,
            aggregated: false,
            queue,
            keys,
            attempts: 0,
            backoff: None,
            not_before: Duration::ZERO,
            last_error: None,
        }
    }

    /// (Re)builds the record put on the wire from the user records held.
    fn encode(&mut self) {
        let Some(first) = self.users.first() else {
            return;
        };
        if self.users.len() == 1 {
            self.wire = first.submitted.record.clone();
            self.aggregated = false;
            return;
        }
        let mut aggregator = Aggregator::new();
        for user in &self.users {
            aggregator.push(user.submitted.record.clone(), ());
        }
        let (data, _) = aggregator.take();
        self.wire = UserRecord {
            partition_key: first.submitted.record.partition_key.clone(),
            explicit_hash_key: Some(first.hash_key),
            data,
        };
        self.aggregated = true;
    }

    fn size(&self) -> usize {
        self.wire.request_size()
    }

    fn oldest(&self) -> Duration {
        self.users
            .iter()
            .map(|user| user.arrived)
            .min()
            .unwrap_or_default()
    }
}

/// One shard's (or the unknown shard's) records waiting to be sent.
#[derive(Debug, Default)]
struct ShardQueue {
    open: Aggregator<Pending>,
    open_since: Option<Duration>,
    ready: VecDeque<Outgoing>,
}

/// A finished `PutRecords` call.
#[derive(Debug)]
struct RequestDone {
    batch: Vec<Outgoing>,
    result: Result<Vec<PutOutcome>, KinesisError>,
    elapsed: Duration,
}

/// How often the task looks at its queues while records are buffered.
const TICK: Duration = Duration::from_millis(5);
/// How often buffered records are checked against their TTL.
const EXPIRY_CHECK: Duration = Duration::from_millis(50);
/// Most queued records looked at per shard when collecting one request.
const SCAN_PER_SHARD: usize = 2_000;

/// The background task's state.
#[derive(Debug)]
pub(crate) struct Task {
    target: Arc<dyn ProducerTarget>,
    config: KplProducerConfig,
    clock: SharedClock,
    metrics: Arc<ProducerMetrics>,
    map: ShardMap,
    limiter: RateLimiter,
    queues: BTreeMap<String, ShardQueue>,
    in_flight_keys: HashMap<String, usize>,
    requests: JoinSet<RequestDone>,
    outstanding: usize,
    flush_waiters: Vec<oneshot::Sender<()>>,
    flushing: bool,
    expiry_checked_at: Duration,
}

impl Task {
    pub(crate) fn new(
        target: Arc<dyn ProducerTarget>,
        config: KplProducerConfig,
        metrics: Arc<ProducerMetrics>,
    ) -> Task {
        Task {
            clock: config.clock.clone(),
            limiter: RateLimiter::new(config.shard_limits),
            target,
            config,
            metrics,
            map: ShardMap::default(),
            queues: BTreeMap::new(),
            in_flight_keys: HashMap::new(),
            requests: JoinSet::new(),
            outstanding: 0,
            flush_waiters: Vec::new(),
            flushing: false,
            expiry_checked_at: Duration::ZERO,
        }
    }

    fn now(&self) -> Duration {
        self.clock.monotonic()
    }

    /// Runs until cancelled, or until every handle is gone and everything is drained.
    pub(crate) async fn run(self, commands: mpsc::Receiver<Command>, cancel: CancellationToken) {
        let span = tracing::info_span!("kpl_producer", stream = self.target.stream_name());
        self.run_inner(commands, cancel).instrument(span).await;
    }

    async fn run_inner(mut self, mut commands: mpsc::Receiver<Command>, cancel: CancellationToken) {
        self.refresh_map().await;
        let mut closed = false;
        loop {
            let now = self.now();
            if self
                .map
                .needs_refresh(now, self.config.shard_map_min_refresh)
            {
                self.refresh_map().await;
            }
            self.expire(now);
            self.dispatch(now);
            if self.outstanding == 0 {
                for waiter in self.flush_waiters.drain(..) {
                    let _ = waiter.send(());
                }
                self.flushing = false;
                if closed {
                    break;
                }
            }
            let wait = if self.outstanding == 0 {
                Duration::from_secs(3_600)
            } else {
                TICK.min(self.config.record_max_buffered_time)
                    .max(Duration::from_millis(1))
            };
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                Some(joined) = self.requests.join_next(), if !self.requests.is_empty() => {
                    match joined {
                        Ok(done) => self.complete(done).await,
                        Err(error) => tracing::error!(%error, "a PutRecords call panicked; its records fail"),
                    }
                }
                command = commands.recv(), if !closed => match command {
                    Some(command) => {
                        self.command(command);
                        // Take what else is waiting without going round the loop per record.
                        for _ in 0..10_000 {
                            match commands.try_recv() {
                                Ok(command) => self.command(command),
                                Err(_) => break,
                            }
                        }
                    }
                    None => {
                        closed = true;
                        self.flushing = true;
                    }
                },
                () = tokio::time::sleep(wait) => {}
            }
        }
        self.fail_everything().await;
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Record(submitted) => self.accept(submitted),
            Command::Flush(waiter) => {
                self.flush_waiters.push(waiter);
                self.flushing = true;
            }
        }
    }

    /// Fails every record still held (shutdown).
    async fn fail_everything(&mut self) {
        self.requests.abort_all();
        while let Some(joined) = self.requests.join_next().await {
            if let Ok(done) = joined {
                for outgoing in done.batch {
                    self.fail(outgoing.users, &ProduceError::ShutDown);
                }
            }
        }
        let queues = std::mem::take(&mut self.queues);
        for (_, mut queue) in queues {
            let (_, open) = queue.open.take();
            self.fail(
                open.into_iter().map(|(_, user)| user).collect(),
                &ProduceError::ShutDown,
            );
            for outgoing in queue.ready {
                self.fail(outgoing.users, &ProduceError::ShutDown);
            }
        }
        for waiter in self.flush_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }

    async fn refresh_map(&mut self) {
        let now = self.now();
        match self.target.shards().await {
            Ok(shards) => {
                self.map = ShardMap::from_shards(&shards, now);
                tracing::debug!(open_shards = self.map.open_shards(), "shard map loaded");
            }
            Err(error) => {
                tracing::warn!(%error, "ListShards failed; records are not aggregated until the shard map loads");
                self.map.reload_failed(now);
            }
        }
    }

    /// Routes a new user record to its predicted shard's queue.
    fn accept(&mut self, submitted: Submitted) {
        let now = self.now();
        self.outstanding += 1;
        let hash_key = submitted.record.hash_key();
        let pending = Pending {
            submitted,
            hash_key,
            arrived: now,
            deadline: now + self.config.record_ttl,
        };
        self.enqueue(pending);
    }

    fn enqueue(&mut self, pending: Pending) {
        let predicted = self.map.predict(pending.hash_key).map(str::to_owned);
        let aggregate = self.config.aggregate && predicted.is_some();
        let queue_name = predicted.unwrap_or_default();
        let max_bytes = self.config.aggregation_max_bytes;
        let max_records = self.config.aggregation_max_records;
        let queue = self.queues.entry(queue_name.clone()).or_default();
        if !aggregate || Aggregator::<()>::single_size(&pending.submitted.record) > max_bytes {
            close_open(queue, &queue_name);
            queue
                .ready
                .push_back(Outgoing::new(vec![pending], queue_name));
            return;
        }
        let record = &pending.submitted.record;
        if !queue.open.is_empty()
            && (queue.open.size_with(record) > max_bytes || queue.open.len() >= max_records)
        {
            close_open(queue, &queue_name);
        }
        if queue.open.is_empty() {
            queue.open_since = Some(pending.arrived);
        }
        queue.open.push(pending.submitted.record.clone(), pending);
    }

    /// Fails records past their TTL that are waiting in a queue.
    fn expire(&mut self, now: Duration) {
        if now.saturating_sub(self.expiry_checked_at) < EXPIRY_CHECK {
            return;
        }
        self.expiry_checked_at = now;
        let mut expired: Vec<(Pending, u32, Option<String>)> = Vec::new();
        for queue in self.queues.values_mut() {
            queue.ready.retain_mut(|outgoing| {
                if outgoing.users.iter().all(|user| user.deadline > now) {
                    return true;
                }
                let (gone, kept): (Vec<Pending>, Vec<Pending>) =
                    std::mem::take(&mut outgoing.users)
                        .into_iter()
                        .partition(|user| user.deadline <= now);
                for user in gone {
                    expired.push((user, outgoing.attempts, outgoing.last_error.clone()));
                }
                outgoing.users = kept;
                outgoing.encode();
                !outgoing.users.is_empty()
            });
        }
        for (user, attempts, last_error) in expired {
            self.finish_failed(user, attempts, last_error);
        }
    }

    fn finish_failed(&mut self, user: Pending, attempts: u32, last_error: Option<String>) {
        self.outstanding -= 1;
        let last_error = last_error.unwrap_or_else(|| {
            "never sent: held back by the shard rate limits or ordering".to_owned()
        });
        user.submitted.completion.finish(Err(ProduceError::Expired {
            attempts,
            last_error,
        }));
    }

    fn fail(&mut self, users: Vec<Pending>, error: &ProduceError) {
        for user in users {
            self.outstanding -= 1;
            user.submitted.completion.finish(Err(error.clone()));
        }
    }

    /// Closes aggregates that waited long enough and sends what is due.
    fn dispatch(&mut self, now: Duration) {
        let force = self.flushing;
        let linger = self.config.record_max_buffered_time;
        for (name, queue) in &mut self.queues {
            let due = queue
                .open_since
                .is_some_and(|since| force || now >= since + linger);
            if due {
                close_open(queue, name);
            }
        }
        while self.requests.len() < self.config.max_concurrent_requests {
            let Some(batch) = self.collect(now, force) else {
                break;
            };
            self.send(batch, now);
        }
    }

    /// Picks the next request's records, or `None` when nothing is due.
    fn collect(&mut self, now: Duration, force: bool) -> Option<Vec<Outgoing>> {
        let ordered = self.config.ordered;
        let rate_limit = self.config.rate_limit;
        let linger = self.config.record_max_buffered_time;
        let mut collector = Collector::new(
            self.config.collection_max_records,
            self.config.collection_max_bytes,
        );
        let mut overflowed = false;
        let mut urgent = force;
        let mut picked: Vec<(String, usize)> = Vec::new();
        let mut blocked: HashSet<String> = HashSet::new();
        let mut taken: HashMap<String, (f64, f64)> = HashMap::new();
        'shards: for (name, queue) in &self.queues {
            for (index, outgoing) in queue.ready.iter().enumerate().take(SCAN_PER_SHARD) {
                if collector.is_full() {
                    break 'shards;
                }
                let held_back = ordered
                    && outgoing
                        .keys
                        .iter()
                        .any(|key| blocked.contains(key) || self.in_flight_keys.contains_key(key));
                if held_back || outgoing.not_before > now {
                    if ordered {
                        blocked.extend(outgoing.keys.iter().cloned());
                    }
                    continue;
                }
                let size = outgoing.size();
                if !collector.fits(size) {
                    overflowed = true;
                    break 'shards;
                }
                if rate_limit && !name.is_empty() {
                    let (records, bytes) = taken.get(name).copied().unwrap_or_default();
                    if !self
                        .limiter
                        .allows(name, records + 1.0, bytes + size as f64, now)
                    {
                        if ordered {
                            for rest in queue.ready.iter().skip(index) {
                                blocked.extend(rest.keys.iter().cloned());
                            }
                        }
                        continue 'shards;
                    }
                    taken.insert(name.clone(), (records + 1.0, bytes + size as f64));
                }
                collector.add(size);
                urgent |= outgoing.attempts > 0 || now >= outgoing.oldest() + linger;
                if ordered {
                    blocked.extend(outgoing.keys.iter().cloned());
                }
                picked.push((name.clone(), index));
            }
        }
        if picked.is_empty() || !(urgent || overflowed || collector.is_full()) {
            return None;
        }
        for (name, (records, bytes)) in taken {
            self.limiter.take(&name, records, bytes, now);
        }
        let mut batch = Vec::with_capacity(picked.len());
        let mut by_queue: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (name, index) in picked {
            by_queue.entry(name).or_default().push(index);
        }
        for (name, indexes) in by_queue {
            let Some(queue) = self.queues.get_mut(&name) else {
                continue;
            };
            let mut removed: Vec<Outgoing> = indexes
                .iter()
                .rev()
                .filter_map(|index| queue.ready.remove(*index))
                .collect();
            removed.reverse();
            batch.extend(removed);
        }
        Some(batch)
    }

    fn send(&mut self, mut batch: Vec<Outgoing>, now: Duration) {
        for outgoing in &mut batch {
            if outgoing.attempts > 0 {
                self.metrics.retried();
            }
            outgoing.attempts += 1;
            if self.config.ordered {
                for key in &outgoing.keys {
                    *self.in_flight_keys.entry(key.clone()).or_default() += 1;
                }
            }
        }
        let wire: Vec<UserRecord> = batch.iter().map(|outgoing| outgoing.wire.clone()).collect();
        let target = self.target.clone();
        let clock = self.clock.clone();
        tracing::trace!(records = wire.len(), "PutRecords");
        self.requests.spawn(async move {
            let result = target.put(&wire).await;
            let elapsed = clock.monotonic().saturating_sub(now);
            RequestDone {
                batch,
                result,
                elapsed,
            }
        });
    }

    /// Handles a finished request: resolves stored records, requeues the rest.
    async fn complete(&mut self, done: RequestDone) {
        self.metrics.request_done(done.elapsed.as_secs_f64());
        let now = self.now();
        if self.config.ordered {
            for outgoing in &done.batch {
                for key in &outgoing.keys {
                    if let Some(count) = self.in_flight_keys.get_mut(key) {
                        *count -= 1;
                        if *count == 0 {
                            self.in_flight_keys.remove(key);
                        }
                    }
                }
            }
        }
        let mut retries: Vec<Outgoing> = Vec::new();
        let mut misrouted: Vec<(Outgoing, String, String)> = Vec::new();
        match done.result {
            Err(error) if error.is_retryable() => {
                tracing::debug!(%error, records = done.batch.len(), "PutRecords failed; retrying");
                for mut outgoing in done.batch {
                    outgoing.last_error = Some(error.to_string());
                    retries.push(outgoing);
                }
            }
            Err(error) => {
                tracing::warn!(%error, records = done.batch.len(), "PutRecords failed for good");
                let failure = ProduceError::Request(error);
                for outgoing in done.batch {
                    self.fail(outgoing.users, &failure);
                }
            }
            Ok(outcomes) => {
                for (mut outgoing, outcome) in done.batch.into_iter().zip(outcomes) {
                    match outcome {
                        PutOutcome::Accepted {
                            shard_id,
                            sequence_number,
                        } => {
                            let expected = outgoing.queue == shard_id;
                            if !expected && outgoing.aggregated {
                                misrouted.push((outgoing, shard_id, sequence_number));
                                continue;
                            }
                            if !expected {
                                self.map.mark_stale();
                            }
                            self.stored(outgoing, &shard_id, &sequence_number, |_| true);
                        }
                        PutOutcome::Failed { error_code } => {
                            if retry::is_throttle(&error_code) {
                                self.metrics.throttled();
                                if !outgoing.queue.is_empty() {
                                    self.limiter.throttled(&outgoing.queue, now);
                                }
                            }
                            tracing::trace!(shard_id = %outgoing.queue, error_code, "record rejected");
                            outgoing.last_error = Some(error_code);
                            retries.push(outgoing);
                        }
                    }
                }
            }
        }
        for outgoing in retries.into_iter().rev() {
            self.requeue(outgoing, now);
        }
        if !misrouted.is_empty() {
            self.settle_misrouted(misrouted).await;
        }
    }

    /// Aggregates that landed on another shard than predicted: the shard map is reloaded; the
    /// user records whose hash key that shard owns are stored (consumers keep them), the others
    /// (consumers drop them there) are routed and sent again.
    async fn settle_misrouted(&mut self, misrouted: Vec<(Outgoing, String, String)>) {
        self.map.mark_stale();
        self.refresh_map().await;
        for (outgoing, shard_id, sequence_number) in misrouted {
            tracing::debug!(
                predicted = %outgoing.queue,
                %shard_id,
                users = outgoing.users.len(),
                "aggregate landed on another shard"
            );
            let Some(range) = self.map.range_of(&shard_id) else {
                self.resend(outgoing.users);
                continue;
            };
            let stray = self.stored(outgoing, &shard_id, &sequence_number, |hash_key| {
                range.contains(hash_key)
            });
            self.resend(stray);
        }
    }

    fn resend(&mut self, users: Vec<Pending>) {
        for user in users {
            self.enqueue(user);
        }
    }

    /// Resolves the user records of a stored Kinesis record that `kept` accepts (by hash key);
    /// returns the others.
    fn stored(
        &mut self,
        outgoing: Outgoing,
        shard_id: &str,
        sequence_number: &str,
        kept: impl Fn(HashKey) -> bool,
    ) -> Vec<Pending> {
        let aggregated = outgoing.aggregated;
        let attempts = outgoing.attempts;
        let mut stray = Vec::new();
        let mut stored = 0u64;
        for (index, user) in outgoing.users.into_iter().enumerate() {
            if !kept(user.hash_key) {
                stray.push(user);
                continue;
            }
            stored += 1;
            self.outstanding -= 1;
            user.submitted.completion.finish(Ok(PutResult {
                shard_id: shard_id.to_owned(),
                sequence_number: sequence_number.to_owned(),
                sub_sequence_number: aggregated.then_some(index as u64),
                attempts,
            }));
        }
        if stored > 0 {
            self.metrics.stored(stored);
        }
        stray
    }

    /// Puts a failed record back at the front of its queue after a backoff delay, or fails the
    /// user records whose TTL has passed.
    fn requeue(&mut self, mut outgoing: Outgoing, now: Duration) {
        let held = outgoing.users.len();
        let (gone, kept): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut outgoing.users)
            .into_iter()
            .partition(|user| user.deadline <= now);
        for user in gone {
            self.finish_failed(user, outgoing.attempts, outgoing.last_error.clone());
        }
        if kept.is_empty() {
            return;
        }
        let changed = kept.len() != held;
        outgoing.users = kept;
        if changed {
            outgoing.encode();
        }
        let (min, max) = (self.config.min_retry_delay, self.config.max_retry_delay);
        let delay = outgoing
            .backoff
            .get_or_insert_with(|| retry::backoff(min, max))
            .next()
            .unwrap_or(max);
        outgoing.not_before = now + delay;
        self.queues
            .entry(outgoing.queue.clone())
            .or_default()
            .ready
            .push_front(outgoing);
    }
}

/// Moves a queue's open aggregate (if any) to the back of its ready records.
fn close_open(queue: &mut ShardQueue, name: &str) {
    if queue.open.is_empty() {
        return;
    }
    let (data, users) = queue.open.take();
    queue.open_since = None;
    let users: Vec<Pending> = users.into_iter().map(|(_, user)| user).collect();
    queue
        .ready
        .push_back(Outgoing::aggregated(users, data, name.to_owned()));
}
