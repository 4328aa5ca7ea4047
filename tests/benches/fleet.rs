//! Fleet benchmark with real processes over HTTP: a `kinesis-broker` server and `kcl worker`
//! processes on one SQLite lease file, `--failover-ms 1000`.
//!
//! - failover time after SIGKILL: kill → first record of one of the victim's shards written by
//!   another worker (and → all of its shards resumed), over `KILLS` kills (default 20);
//! - graceful handoff time after SIGTERM, measured the same way (default 10 rounds);
//! - end-to-end throughput: 4 workers, 8 shards, records produced over HTTP as fast as possible
//!   and written to the jsonl sinks (fsynced, checkpointed per batch).
//!
//! ```text
//! cargo build --release -p kinesis-broker --bin kinesis-broker -p kcl --bin kcl
//! cargo bench -p tests --bench fleet
//! ```
//! Environment: `KILLS`, `HANDOFFS`, `RECORDS` (default 200000) override the sizes.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tests::fleet::{FleetOptions, ProcessFleet};

const LONG: Duration = Duration::from_secs(120);

fn live_refs(live: &[String]) -> Vec<&str> {
    live.iter().map(String::as_str).collect()
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((fraction * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn summarize(name: &str, samples: &mut [Duration]) {
    samples.sort();
    let millis = |duration: Duration| duration.as_secs_f64() * 1000.0;
    println!(
        "{name}: n={} p50={:.0} ms p99={:.0} ms min={:.0} ms max={:.0} ms",
        samples.len(),
        millis(percentile(samples, 0.50)),
        millis(percentile(samples, 0.99)),
        millis(samples.first().copied().unwrap_or_default()),
        millis(samples.last().copied().unwrap_or_default()),
    );
}

/// How a worker leaves in a handover round.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Departure {
    Kill,
    Terminate,
}

/// Removes the busiest worker `rounds` times and measures (first shard resumed, all resumed).
async fn handover_rounds(
    name: &str,
    departure: Departure,
    rounds: u64,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let mut fleet = ProcessFleet::start(name, FleetOptions::default()).await?;
    let mut live: Vec<String> = (1..=3).map(|index| format!("w{index}")).collect();
    let mut next_worker = 4;
    for worker in &live {
        fleet.start_worker(worker)?;
    }
    fleet.wait_balanced(&live_refs(&live), LONG).await?;
    // A steady trickle of records (about 100 per shard per second) runs throughout.
    let producer = fleet.spawn_trickle(400);
    let mut first_resumed = Vec::new();
    let mut all_resumed = Vec::new();
    for round in 0..rounds {
        let counts = fleet.lease_counts().await?;
        let victim = live
            .iter()
            .max_by_key(|worker| counts.get(*worker).copied().unwrap_or(0))
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no live worker"))?;
        let victim_shards: HashSet<String> = fleet.shards_of(&victim).await?.into_iter().collect();
        let mut tail = fleet.tail();
        let started = Instant::now();
        match departure {
            Departure::Kill => fleet.kill(&victim)?,
            Departure::Terminate => {
                fleet.stop_gracefully_nowait(&victim)?;
            }
        }
        let mut resumed: HashMap<String, Duration> = HashMap::new();
        while resumed.len() < victim_shards.len() {
            anyhow::ensure!(
                started.elapsed() < LONG,
                "{name}: shards of {victim} never resumed"
            );
            for (worker, record) in tail.poll() {
                if worker != victim && victim_shards.contains(&record.shard_id) {
                    resumed
                        .entry(record.shard_id)
                        .or_insert_with(|| started.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let first = resumed.values().min().copied().unwrap_or_default();
        let all = resumed.values().max().copied().unwrap_or_default();
        println!(
            "{name} round {round}: {victim} held {} shards; first resumed after {} ms, all after {} ms",
            victim_shards.len(),
            first.as_millis(),
            all.as_millis()
        );
        first_resumed.push(first);
        all_resumed.push(all);
        if departure == Departure::Terminate {
            fleet.wait_exit(&victim, LONG).await?;
        }
        live.retain(|worker| *worker != victim);
        let replacement = format!("w{next_worker}");
        next_worker += 1;
        fleet.start_worker(&replacement)?;
        live.push(replacement);
        fleet.wait_balanced(&live_refs(&live), LONG).await?;
    }
    producer.abort();
    Ok((first_resumed, all_resumed))
}

async fn throughput(records: u64) -> anyhow::Result<()> {
    let mut fleet = ProcessFleet::start(
        "throughput",
        FleetOptions {
            shards: 8,
            ..FleetOptions::default()
        },
    )
    .await?;
    let workers = ["t1", "t2", "t3", "t4"];
    for worker in workers {
        fleet.start_worker(worker)?;
    }
    fleet.wait_balanced(&workers, LONG).await?;
    let mut tail = fleet.tail();
    let started = Instant::now();
    let producers: Vec<_> = (0..4)
        .map(|_| fleet.spawn_producer_with(records / 4, None, 500, 100))
        .collect();
    let mut produced = 0usize;
    for producer in producers {
        produced += producer.await??.len();
    }
    let produce_time = started.elapsed();
    let mut seen = 0usize;
    while seen < produced {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "throughput run stalled"
        );
        seen += tail.poll().len();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = started.elapsed();
    println!(
        "throughput: {produced} records of 100 bytes, 8 shards, 4 workers: produced over HTTP in {:.2} s ({:.0} rec/s); all in the sinks after {:.2} s => end-to-end {:.0} records/s",
        produce_time.as_secs_f64(),
        produced as f64 / produce_time.as_secs_f64(),
        total.as_secs_f64(),
        produced as f64 / total.as_secs_f64()
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let kills = env_number("KILLS", 20);
    let handoffs = env_number("HANDOFFS", 10);
    let records = env_number("RECORDS", 200_000);
    println!("fleet bench: real kinesis-broker + kcl worker processes, --failover-ms 1000");

    let (mut first, mut all) = handover_rounds("kill", Departure::Kill, kills).await?;
    summarize("failover after SIGKILL, first shard resumed", &mut first);
    summarize("failover after SIGKILL, all shards resumed", &mut all);

    let (mut first, mut all) = handover_rounds("term", Departure::Terminate, handoffs).await?;
    summarize(
        "graceful handoff after SIGTERM, first shard resumed",
        &mut first,
    );
    summarize(
        "graceful handoff after SIGTERM, all shards resumed",
        &mut all,
    );

    throughput(records).await?;
    Ok(())
}
