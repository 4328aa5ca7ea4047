//! `kcl demo`'s logic, shortened: a crash and a split under continuous production must lose
//! nothing, keep per-shard order and start the split's children only after their parent.

use kcl::demo::{DemoConfig, run_demo};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_loses_nothing_through_a_crash_and_a_split() {
    let verdict = run_demo(DemoConfig {
        shards: 3,
        workers: 3,
        rate: 1000,
        failover: Duration::from_millis(1000),
        phase: Duration::from_millis(1500),
        live_view: false,
        serve: None,
    })
    .await
    .expect("the demo runs to the end");
    assert!(verdict.produced > 0, "{verdict:?}");
    assert_eq!(verdict.lost, 0, "{}", verdict.render());
    // The testing toolkit's validator: per-shard and per-key order, children after parents,
    // no stale checkpoint.
    assert!(verdict.validation.is_ok(), "{}", verdict.render());
    assert!(verdict.is_success());
    let (crashed, shards) = verdict.crashed.clone().expect("a worker was crashed");
    assert!(!shards.is_empty(), "{crashed} held no shard");
    assert!(
        verdict.failover.is_some(),
        "the crashed worker's shards resumed"
    );
    let (_, children) = verdict.split.clone().expect("a shard was split");
    assert_eq!(children.len(), 2);
    assert_eq!(
        verdict.unique_processed,
        verdict.produced,
        "{}",
        verdict.render()
    );
}
