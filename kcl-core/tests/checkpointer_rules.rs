//! The checkpointer's rules (the Java KCL's `ShardRecordProcessorCheckpointer`) and the held
//! lease's renewal / loss rules, against the in-memory store with a manual clock.

use kcl_core::checkpoint::{CheckpointError, Checkpointer};
use kcl_core::clock::{Clock, ManualClock, SharedClock};
use kcl_core::config::LeaseConfig;
use kcl_core::held_lease::{HeldLease, renew_leases};
use kcl_core::kinesis::{EpochMillis, HashKeyRange, SequenceNumber, ShardId};
use kcl_core::lease::{ExtendedSequenceNumber, Lease};
use kcl_core::lease_store::{CheckpointUpdate, LeaseStore, LeaseStoreError, Renewal};
use kcl_core::memory::InMemoryLeaseStore;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const WORKER: &str = "worker-a";

fn seq(n: u128, sub: u64) -> ExtendedSequenceNumber {
    ExtendedSequenceNumber::new(SequenceNumber::from_u128(n), sub)
}

/// A store that yields around every call (so concurrent writers interleave) and can be told to
/// fail with a transient error.
#[derive(Debug, Default)]
struct TestStore {
    inner: InMemoryLeaseStore,
    failing: AtomicBool,
    /// Checkpoint writes take a second (of tokio time) to be applied and answered.
    slow_checkpoints: AtomicBool,
}

impl TestStore {
    async fn gate(&self) -> Result<(), LeaseStoreError> {
        tokio::task::yield_now().await;
        if self.failing.load(Ordering::SeqCst) {
            return Err(LeaseStoreError::Storage("injected failure".to_owned()));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl LeaseStore for TestStore {
    async fn create_lease_if_absent(&self, lease: &Lease) -> Result<bool, LeaseStoreError> {
        self.gate().await?;
        self.inner.create_lease_if_absent(lease).await
    }
    async fn list_leases(&self) -> Result<Vec<Lease>, LeaseStoreError> {
        self.gate().await?;
        self.inner.list_leases().await
    }
    async fn get_lease(&self, key: &ShardId) -> Result<Option<Lease>, LeaseStoreError> {
        self.gate().await?;
        self.inner.get_lease(key).await
    }
    async fn renew_leases(
        &self,
        renewals: &[Renewal],
    ) -> Result<Vec<Result<Lease, LeaseStoreError>>, LeaseStoreError> {
        self.gate().await?;
        let result = self.inner.renew_leases(renewals).await;
        tokio::task::yield_now().await;
        result
    }
    async fn take_lease(
        &self,
        key: &ShardId,
        counter: u64,
        owner: &str,
    ) -> Result<Lease, LeaseStoreError> {
        self.gate().await?;
        self.inner.take_lease(key, counter, owner).await
    }
    async fn evict_lease(&self, key: &ShardId, owner: &str) -> Result<Lease, LeaseStoreError> {
        self.gate().await?;
        self.inner.evict_lease(key, owner).await
    }
    async fn update_checkpoint(
        &self,
        key: &ShardId,
        owner: &str,
        counter: u64,
        update: &CheckpointUpdate,
    ) -> Result<Lease, LeaseStoreError> {
        self.gate().await?;
        let result = self
            .inner
            .update_checkpoint(key, owner, counter, update)
            .await;
        if self.slow_checkpoints.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tokio::task::yield_now().await;
        result
    }
    async fn update_lineage(
        &self,
        key: &ShardId,
        children: &[ShardId],
        range: Option<HashKeyRange>,
    ) -> Result<Lease, LeaseStoreError> {
        self.gate().await?;
        self.inner.update_lineage(key, children, range).await
    }
    async fn delete_lease(&self, key: &ShardId) -> Result<(), LeaseStoreError> {
        self.gate().await?;
        self.inner.delete_lease(key).await
    }
}

struct Fixture {
    clock: Arc<ManualClock>,
    store: Arc<TestStore>,
    held: Arc<HeldLease>,
    checkpointer: Checkpointer,
    shard: ShardId,
    config: LeaseConfig,
}

impl Fixture {
    async fn new(initial: ExtendedSequenceNumber) -> Self {
        let clock = Arc::new(ManualClock::new(EpochMillis(0)));
        let store = Arc::new(TestStore::default());
        let shard = ShardId::from_index(0);
        let config = LeaseConfig::default();
        store
            .create_lease_if_absent(&Lease::new(shard.clone(), initial))
            .await
            .expect("create");
        let taken = store.take_lease(&shard, 0, WORKER).await.expect("take");
        let held = HeldLease::new(taken, WORKER, clock.monotonic(), &config);
        let shared: SharedClock = clock.clone();
        let checkpointer = Checkpointer::new(held.clone(), store.clone(), shared);
        Fixture {
            clock,
            store,
            held,
            checkpointer,
            shard,
            config,
        }
    }

    async fn stored(&self) -> Lease {
        self.store
            .inner
            .get_lease(&self.shard)
            .await
            .expect("get")
            .expect("lease exists")
    }
}

#[tokio::test]
async fn checkpoint_stores_the_largest_delivered_record() {
    let fixture = Fixture::new(ExtendedSequenceNumber::TRIM_HORIZON).await;
    for n in [10, 30, 20] {
        fixture.checkpointer.record_delivered(seq(n, 0));
    }
    fixture.checkpointer.checkpoint().await.expect("checkpoint");
    let stored = fixture.stored().await;
    assert_eq!(stored.checkpoint, seq(30, 0));
    assert_eq!(stored.owner_switches_since_checkpoint, 0);
    assert_eq!(fixture.checkpointer.last_checkpoint().await, seq(30, 0));
}

#[tokio::test]
async fn checkpoint_at_must_lie_between_the_last_checkpoint_and_the_largest_delivered() {
    let fixture = Fixture::new(seq(10, 0)).await;
    fixture.checkpointer.record_delivered(seq(20, 0));
    fixture.checkpointer.record_delivered(seq(30, 2));
    // (requested, accepted?)
    let cases = [
        (seq(9, 0), false),
        (seq(31, 0), false),
        (seq(30, 3), false),
        (ExtendedSequenceNumber::SHARD_END, false),
        (seq(15, 0), true),
        (seq(14, 0), false),
        (seq(30, 1), true),
        (seq(30, 2), true),
    ];
    for (requested, accepted) in cases {
        let result = fixture.checkpointer.checkpoint_to(requested).await;
        match (result, accepted) {
            (Ok(()), true) => assert_eq!(fixture.stored().await.checkpoint, requested),
            (
                Err(CheckpointError::OutOfRange {
                    requested: got,
                    last_checkpoint,
                    ..
                }),
                false,
            ) => {
                assert_eq!(got, requested);
                assert_eq!(last_checkpoint, fixture.stored().await.checkpoint);
            }
            (other, _) => panic!("{requested}: unexpected {other:?}"),
        }
    }
    let error = fixture
        .checkpointer
        .checkpoint_at(SequenceNumber::from_u128(5), 0)
        .await
        .expect_err("below the last checkpoint");
    let message = error.to_string();
    assert!(
        message.contains("did not fall into acceptable range"),
        "{message}"
    );
    assert!(message.contains("[30/2, 30/2]"), "{message}");
}

#[tokio::test]
async fn repeating_the_last_checkpoint_writes_nothing() {
    let fixture = Fixture::new(ExtendedSequenceNumber::TRIM_HORIZON).await;
    fixture.checkpointer.record_delivered(seq(5, 0));
    fixture.checkpointer.checkpoint().await.expect("first");
    let counter = fixture.stored().await.lease_counter;
    fixture.checkpointer.checkpoint().await.expect("repeat");
    fixture
        .checkpointer
        .checkpoint_to(seq(5, 0))
        .await
        .expect("repeat at");
    assert_eq!(fixture.stored().await.lease_counter, counter);
}

#[tokio::test]
async fn checkpoint_with_nothing_delivered_is_a_no_op() {
    let fixture = Fixture::new(ExtendedSequenceNumber::LATEST).await;
    let before = fixture.stored().await;
    fixture.checkpointer.checkpoint().await.expect("no-op");
    assert_eq!(fixture.stored().await, before);
}

#[tokio::test]
async fn at_shard_end_the_last_record_is_stored_as_shard_end() {
    // (deliveries, checkpoint target (None = checkpoint()), stored)
    let cases: Vec<(
        &str,
        Vec<u128>,
        Option<ExtendedSequenceNumber>,
        ExtendedSequenceNumber,
    )> = vec![
        (
            "checkpoint()",
            vec![10, 20],
            None,
            ExtendedSequenceNumber::SHARD_END,
        ),
        (
            "last record",
            vec![10, 20],
            Some(seq(20, 0)),
            ExtendedSequenceNumber::SHARD_END,
        ),
        ("earlier record", vec![10, 20], Some(seq(10, 0)), seq(10, 0)),
        (
            "explicit SHARD_END",
            vec![10],
            Some(ExtendedSequenceNumber::SHARD_END),
            ExtendedSequenceNumber::SHARD_END,
        ),
        (
            "empty shard",
            vec![],
            None,
            ExtendedSequenceNumber::SHARD_END,
        ),
    ];
    for (name, deliveries, target, stored) in cases {
        let fixture = Fixture::new(ExtendedSequenceNumber::TRIM_HORIZON).await;
        for n in deliveries {
            fixture.checkpointer.record_delivered(seq(n, 0));
        }
        assert!(!fixture.checkpointer.is_at_shard_end());
        fixture.checkpointer.mark_shard_end();
        assert!(fixture.checkpointer.is_at_shard_end());
        match target {
            None => fixture.checkpointer.checkpoint().await,
            Some(target) => fixture.checkpointer.checkpoint_to(target).await,
        }
        .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(fixture.stored().await.checkpoint, stored, "{name}");
    }
}

#[tokio::test]
async fn prepared_checkpoints_are_stored_as_pending_then_committed() {
    let fixture = Fixture::new(ExtendedSequenceNumber::TRIM_HORIZON).await;
    fixture.checkpointer.record_delivered(seq(10, 0));
    fixture.checkpointer.record_delivered(seq(20, 0));
    let prepared = fixture
        .checkpointer
        .prepare_checkpoint(seq(10, 0), Some(b"state".to_vec()))
        .await
        .expect("prepare");
    assert_eq!(prepared.position(), seq(10, 0));
    let stored = fixture.stored().await;
    assert_eq!(stored.checkpoint, ExtendedSequenceNumber::TRIM_HORIZON);
    assert_eq!(stored.pending_checkpoint, Some(seq(10, 0)));
    assert_eq!(
        stored.pending_checkpoint_state.as_deref(),
        Some(&b"state"[..])
    );
    assert_eq!(
        fixture.checkpointer.pending_checkpoint().await,
        Some((seq(10, 0), Some(b"state".to_vec())))
    );

    prepared.commit().await.expect("commit");
    let stored = fixture.stored().await;
    assert_eq!(stored.checkpoint, seq(10, 0));
    assert_eq!(stored.pending_checkpoint, None);
    assert_eq!(stored.pending_checkpoint_state, None);

    let out_of_range = fixture
        .checkpointer
        .prepare_checkpoint(seq(21, 0), None)
        .await;
    assert!(matches!(
        out_of_range,
        Err(CheckpointError::OutOfRange { .. })
    ));

    // Preparing the last checkpoint writes nothing; committing it does nothing.
    let counter = fixture.stored().await.lease_counter;
    let same = fixture
        .checkpointer
        .prepare_checkpoint(seq(10, 0), Some(b"x".to_vec()))
        .await
        .expect("prepare same");
    same.commit().await.expect("commit same");
    assert_eq!(fixture.stored().await.lease_counter, counter);

    let latest = fixture
        .checkpointer
        .prepare_checkpoint_latest(None)
        .await
        .expect("prepare latest");
    assert_eq!(latest.position(), seq(20, 0));
}

#[tokio::test]
async fn a_lease_taken_by_another_worker_rejects_checkpoints_and_stores_nothing() {
    let fixture = Fixture::new(ExtendedSequenceNumber::TRIM_HORIZON).await;
    fixture.checkpointer.record_delivered(seq(10, 0));
    let current = fixture.stored().await;
    fixture
        .store
        .take_lease(&fixture.shard, current.lease_counter, "worker-b")
        .await
        .expect("other worker takes");
    let before = fixture.stored().await;
    let error = fixture.checkpointer.checkpoint().await.expect_err("lost");
    assert!(error.is_lease_lost(), "{error}");
    assert!(fixture.held.is_lost());
    assert_eq!(fixture.stored().await, before);
    // Once lost, always lost: no further write is even attempted.
    let again = fixture
        .checkpointer
        .checkpoint()
        .await
        .expect_err("still lost");
    assert!(again.is_lease_lost());
    assert_eq!(fixture.stored().await, before);
}

#[tokio::test]
async fn a_locally_expired_lease_rejects_checkpoints_without_writing() {
    let fixture = Fixture::new(ExtendedSequenceNumber::TRIM_HORIZON).await;
    fixture.checkpointer.record_delivered(seq(10, 0));
    fixture
        .clock
        .advance(fixture.config.failover_time() + Duration::from_millis(1));
    let before = fixture.stored().await;
    let error = fixture
        .checkpointer
        .checkpoint()
        .await
        .expect_err("expired");
    assert!(error.is_lease_lost());
    assert_eq!(fixture.stored().await, before, "nothing written");
}

#[tokio::test]
async fn an_evicted_lease_rejects_checkpoints() {
    let fixture = Fixture::new(ExtendedSequenceNumber::TRIM_HORIZON).await;
    fixture.checkpointer.record_delivered(seq(10, 0));
    let evicted = fixture
        .held
        .evict(fixture.store.as_ref())
        .await
        .expect("evict");
    assert_eq!(evicted.lease_owner, None);
    assert!(
        fixture
            .checkpointer
            .checkpoint()
            .await
            .expect_err("evicted")
            .is_lease_lost()
    );
}

#[tokio::test]
async fn a_transient_store_error_does_not_lose_the_lease() {
    let fixture = Fixture::new(ExtendedSequenceNumber::TRIM_HORIZON).await;
    fixture.checkpointer.record_delivered(seq(10, 0));
    fixture.store.failing.store(true, Ordering::SeqCst);
    let error = fixture
        .checkpointer
        .checkpoint()
        .await
        .expect_err("transient");
    assert!(matches!(error, CheckpointError::Store(_)), "{error}");
    assert!(!fixture.held.is_lost());
    fixture.store.failing.store(false, Ordering::SeqCst);
    fixture
        .checkpointer
        .checkpoint()
        .await
        .expect("retry succeeds");
    assert_eq!(fixture.stored().await.checkpoint, seq(10, 0));
}

#[tokio::test]
async fn checkpoints_count_as_renewals_and_renewals_follow_checkpoints() {
    let fixture = Fixture::new(ExtendedSequenceNumber::TRIM_HORIZON).await;
    let step = fixture.config.renew_interval();
    for n in 1..=10u128 {
        fixture.clock.advance(step);
        fixture.checkpointer.record_delivered(seq(n, 0));
        fixture.checkpointer.checkpoint().await.expect("checkpoint");
        fixture.clock.advance(step);
        let report = renew_leases(
            fixture.store.as_ref(),
            std::slice::from_ref(&fixture.held),
            fixture.clock.as_ref(),
        )
        .await
        .expect("renew");
        assert_eq!(report.renewed, vec![fixture.shard.clone()], "round {n}");
    }
    assert_eq!(fixture.stored().await.lease_counter, 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checkpoints_and_renewals_never_lose_the_lease_spuriously() {
    let fixture = Fixture::new(ExtendedSequenceNumber::TRIM_HORIZON).await;
    let rounds = 200u128;
    let checkpointer = fixture.checkpointer.clone();
    let checkpoints = tokio::spawn(async move {
        for n in 1..=rounds {
            checkpointer.record_delivered(seq(n, 0));
            checkpointer
                .checkpoint()
                .await
                .expect("checkpoint never fails");
        }
    });
    let store = fixture.store.clone();
    let held = fixture.held.clone();
    let clock = fixture.clock.clone();
    let renewals = tokio::spawn(async move {
        for _ in 0..rounds {
            let report = renew_leases(store.as_ref(), std::slice::from_ref(&held), clock.as_ref())
                .await
                .expect("renew");
            assert!(report.lost.is_empty(), "{:?}", report.lost);
            assert!(report.failed.is_empty());
        }
    });
    checkpoints.await.expect("checkpoint task");
    renewals.await.expect("renewal task");
    assert!(!fixture.held.is_lost());
    let stored = fixture.stored().await;
    assert_eq!(stored.checkpoint, seq(rounds, 0));
    assert_eq!(stored.lease_counter, 1 + 2 * rounds as u64);
}

#[tokio::test]
async fn renewal_reports_leases_lost_to_other_workers_and_to_local_expiry() {
    let clock = ManualClock::new(EpochMillis(0));
    let config = LeaseConfig::default();
    let store = InMemoryLeaseStore::new();
    let mut held = Vec::new();
    for index in 0..3 {
        let shard = ShardId::from_index(index);
        store
            .create_lease_if_absent(&Lease::new(shard.clone(), ExtendedSequenceNumber::LATEST))
            .await
            .expect("create");
        let taken = store.take_lease(&shard, 0, WORKER).await.expect("take");
        held.push(HeldLease::new(taken, WORKER, Duration::ZERO, &config));
    }
    // Shard 1 is stolen; shard 2's held lease stops being renewed (we leave it out).
    store
        .take_lease(&ShardId::from_index(1), 1, "worker-b")
        .await
        .expect("steal");
    clock.advance(config.renew_interval());
    let report = renew_leases(&store, &held[..2], &clock)
        .await
        .expect("renew");
    assert_eq!(report.renewed, vec![ShardId::from_index(0)]);
    assert_eq!(report.lost.len(), 1);
    assert_eq!(report.lost[0].shard_id, ShardId::from_index(1));
    assert!(
        report.lost[0].reason.contains("expected"),
        "{}",
        report.lost[0].reason
    );
    assert!(held[1].is_lost());

    clock.advance(config.failover_time());
    assert!(held[2].is_held(config.renew_interval()));
    let report = renew_leases(&store, &held, &clock).await.expect("renew");
    // Shard 0 was renewed one failover time ago (exactly): still held. Shard 2 is expired.
    assert_eq!(report.renewed, vec![ShardId::from_index(0)]);
    assert_eq!(report.lost.len(), 1);
    assert_eq!(report.lost[0].shard_id, ShardId::from_index(2));
    assert!(held[2].is_lost());
    let stored = store
        .get_lease(&ShardId::from_index(2))
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(stored.lease_counter, 1, "an expired lease is not renewed");
    // A lease re-acquired later is a new acquisition with a new token.
    let retaken = store
        .take_lease(&ShardId::from_index(2), 1, WORKER)
        .await
        .expect("retake");
    let again = HeldLease::new(retaken, WORKER, Duration::from_secs(20), &config);
    assert_ne!(again.token(), held[2].token());
    assert!(!again.is_lost());
}

#[tokio::test]
async fn outside_a_delivery_checkpoints_stop_at_the_last_processed_batch() {
    // (steps after "record 10 processed", what checkpoint() stores, whether checkpoint_to(20)
    // is in range)
    #[derive(Debug, Clone, Copy)]
    enum Step {
        Start,
        FinishOk,
        FinishFailed,
    }
    let cases: [(&[Step], ExtendedSequenceNumber, bool); 5] = [
        (&[], seq(10, 0), false),
        // Inside `process_records` the whole batch may be checkpointed.
        (&[Step::Start], seq(20, 0), true),
        (&[Step::Start, Step::FinishOk], seq(20, 0), true),
        // A failed attempt (e.g. the sink is full), then `shutdown_requested`: the batch reached
        // no sink, so it may not be checkpointed.
        (&[Step::Start, Step::FinishFailed], seq(10, 0), false),
        (
            &[
                Step::Start,
                Step::FinishFailed,
                Step::Start,
                Step::FinishFailed,
            ],
            seq(10, 0),
            false,
        ),
    ];
    for (steps, expected, twenty_in_range) in cases {
        let fixture = Fixture::new(ExtendedSequenceNumber::TRIM_HORIZON).await;
        let checkpointer = &fixture.checkpointer;
        checkpointer.record_delivered(seq(10, 0));
        for step in steps {
            match step {
                Step::Start => checkpointer.start_delivery(seq(20, 0)),
                Step::FinishOk => checkpointer.finish_delivery(true),
                Step::FinishFailed => checkpointer.finish_delivery(false),
            }
        }
        let to_twenty = checkpointer.checkpoint_to(seq(20, 0)).await;
        assert_eq!(
            to_twenty.is_ok(),
            twenty_in_range,
            "{steps:?}: {to_twenty:?}"
        );
        checkpointer.checkpoint().await.expect("checkpoint");
        assert_eq!(fixture.stored().await.checkpoint, expected, "{steps:?}");
    }
}

#[tokio::test]
async fn a_sentinel_is_never_a_checkpoint_target() {
    let fixture = Fixture::new(ExtendedSequenceNumber::TRIM_HORIZON).await;
    fixture.checkpointer.record_delivered(seq(10, 0));
    for sentinel in [
        ExtendedSequenceNumber::TRIM_HORIZON,
        ExtendedSequenceNumber::LATEST,
        ExtendedSequenceNumber::AT_TIMESTAMP,
    ] {
        let checkpoint = fixture.checkpointer.checkpoint_to(sentinel).await;
        assert!(
            matches!(checkpoint, Err(CheckpointError::NotARecord { .. })),
            "checkpoint_to({sentinel}): {checkpoint:?}"
        );
        let prepared = fixture
            .checkpointer
            .prepare_checkpoint(sentinel, None)
            .await;
        assert!(
            matches!(prepared, Err(CheckpointError::NotARecord { .. })),
            "prepare_checkpoint({sentinel}): {prepared:?}"
        );
    }
    assert_eq!(
        fixture.stored().await.checkpoint,
        ExtendedSequenceNumber::TRIM_HORIZON,
        "nothing was stored"
    );
}

#[tokio::test(start_paused = true)]
async fn a_checkpoint_abandoned_mid_write_still_records_the_new_counter() {
    // A caller that stops waiting (a protocol timeout) must not leave the held lease with the
    // counter from before a write the store applied: the next renewal would fail for nothing.
    let fixture = Fixture::new(ExtendedSequenceNumber::TRIM_HORIZON).await;
    fixture.checkpointer.record_delivered(seq(10, 0));
    fixture.store.slow_checkpoints.store(true, Ordering::SeqCst);
    let abandoned =
        tokio::time::timeout(Duration::from_millis(10), fixture.checkpointer.checkpoint()).await;
    assert!(abandoned.is_err(), "the caller gave up before the answer");
    // The write goes on without the caller and records its counter.
    tokio::time::sleep(Duration::from_secs(2)).await;
    fixture
        .store
        .slow_checkpoints
        .store(false, Ordering::SeqCst);
    assert_eq!(fixture.stored().await.checkpoint, seq(10, 0));
    let report = renew_leases(
        fixture.store.as_ref(),
        std::slice::from_ref(&fixture.held),
        fixture.clock.as_ref(),
    )
    .await
    .expect("renewal");
    assert_eq!(report.renewed, vec![fixture.shard.clone()], "{report:?}");
    assert!(!fixture.held.is_lost());
}
