//! Scale benchmark of lease assignment with real processes on ONE SQLite lease file: a
//! `kinesis-broker` server and W `kcl worker` processes started at the same moment on an idle
//! stream of S shards (`--failover-ms 3000`), for sizes from 64 shards × 2 workers to
//! 1,024 shards × 16 workers.
//!
//! Per size, timed from the moment the workers are spawned (lease table polled every 100 ms):
//! - **owned**: every lease owned by a worker;
//! - **balanced**: every lease owned and max − min ≤ 1 leases per worker;
//! - **moves after owned**: owner changes (A → B) after every lease was first owned, until the
//!   end of a settle window of two taker intervals after balance (total, and the most for one
//!   lease), counted by the harness's 25 ms lease watcher.
//!
//! Then a quarter of the workers (at least one) is SIGKILLed together; timed from the kill:
//! - **recovered**: every lease owned by a survivor;
//! - **rebalanced**: recovered and max − min ≤ 1 among the survivors;
//! - **recovery moves**: owner changes from the kill to the end of a second settle window (total,
//!   and the most for one lease: 1 means no lease moved twice).
//!
//! Times are also given in taker intervals (`take_interval` = 2 × (failover + 25 ms), 6.05 s
//! at 3 s failover; see `kcl-core/src/config.rs`). Every wait has a deadline; a run that misses
//! one is reported as a failure row, with the fleet's temp dir (logs, lease file) kept.
//!
//! ```text
//! cargo build --release -p kinesis-broker --bin kinesis-broker -p kcl --bin kcl
//! cargo bench -p tests --bench fleet_scale
//! ```
//! Environment: `SIZES` (default `64x2,256x8,1024x16`: shards x workers), `FAILOVER_MS`
//! (default 3000), `RUNS` per size (default 1; medians are printed when > 1), `IDLE_MS`
//! (`--idle-between-reads-ms` of the workers, default 1000), `DEADLINE_S` per wait (default
//! 180), `SETTLE_MS` (default two taker intervals).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tests::fleet::{FleetOptions, ProcessFleet};

/// How often the bench reads the lease table.
const POLL: Duration = Duration::from_millis(100);

/// The settings of a whole bench run.
#[derive(Debug, Clone)]
struct Settings {
    failover_ms: u64,
    idle_ms: u64,
    deadline: Duration,
    settle: Duration,
    take_interval: Duration,
}

impl Settings {
    fn rounds(&self, seconds: f64) -> f64 {
        seconds / self.take_interval.as_secs_f64()
    }
}

/// One size: shards × workers.
#[derive(Debug, Clone, Copy)]
struct Size {
    shards: u32,
    workers: usize,
}

/// The outcome of one run of one size; `None` fields were not reached.
#[derive(Debug, Default, Clone)]
struct Row {
    shards: u32,
    workers: usize,
    victims: usize,
    owned: Option<f64>,
    balanced: Option<f64>,
    last_change: Option<f64>,
    moves_after_owned: Option<usize>,
    max_moves_after_owned: Option<usize>,
    balanced_counts: String,
    victim_leases: Option<usize>,
    recovered: Option<f64>,
    rebalanced: Option<f64>,
    recovery_last_change: Option<f64>,
    recovery_moves: Option<usize>,
    recovery_max_moves: Option<usize>,
    rebalanced_counts: String,
    load: Vec<String>,
    error: Option<String>,
    kept: Option<PathBuf>,
}

/// The lease table as read at one poll: shard → owner, of unfinished leases.
struct Snapshot {
    owners: BTreeMap<String, Option<String>>,
}

impl Snapshot {
    async fn read(fleet: &ProcessFleet) -> anyhow::Result<Snapshot> {
        let owners = fleet
            .leases()
            .await?
            .into_iter()
            .filter(|lease| !lease.is_finished())
            .map(|lease| (lease.lease_key.to_string(), lease.lease_owner))
            .collect();
        Ok(Snapshot { owners })
    }

    /// Leases per live worker (zero included) and the number of leases no live worker owns.
    fn counts(&self, live: &[String]) -> (BTreeMap<String, usize>, usize) {
        let mut counts: BTreeMap<String, usize> =
            live.iter().map(|worker| (worker.clone(), 0)).collect();
        let mut not_live = 0;
        for owner in self.owners.values() {
            match owner.as_ref().and_then(|owner| counts.get_mut(owner)) {
                Some(count) => *count += 1,
                None => not_live += 1,
            }
        }
        (counts, not_live)
    }

    /// Every one of the `shards` leases exists and is owned by a live worker.
    fn all_owned(&self, live: &[String], shards: u32) -> bool {
        let (_, not_live) = self.counts(live);
        self.owners.len() == shards as usize && not_live == 0
    }

    /// All owned and max − min ≤ 1 among the live workers.
    fn balanced(&self, live: &[String], shards: u32) -> bool {
        let (counts, _) = self.counts(live);
        let max = counts.values().copied().max().unwrap_or(0);
        let min = counts.values().copied().min().unwrap_or(0);
        self.all_owned(live, shards) && max - min <= 1
    }

    /// "min–max (n leases unowned by live workers)" for reports.
    fn describe(&self, live: &[String]) -> String {
        let (counts, not_live) = self.counts(live);
        let max = counts.values().copied().max().unwrap_or(0);
        let min = counts.values().copied().min().unwrap_or(0);
        format!(
            "{} leases; per live worker min {min} max {max}; {not_live} not owned by a live worker; {counts:?}",
            self.owners.len()
        )
    }
}

/// Follows the lease table poll after poll: the time of the last owner change seen.
struct Tracker {
    started: Instant,
    previous: Option<BTreeMap<String, Option<String>>>,
    last_change: Option<Duration>,
}

impl Tracker {
    fn new(started: Instant) -> Tracker {
        Tracker {
            started,
            previous: None,
            last_change: None,
        }
    }

    fn observe(&mut self, snapshot: &Snapshot) {
        if self.previous.as_ref() != Some(&snapshot.owners) {
            if self.previous.is_some() {
                self.last_change = Some(self.started.elapsed());
            }
            self.previous = Some(snapshot.owners.clone());
        }
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn parse_sizes(text: &str) -> anyhow::Result<Vec<Size>> {
    text.split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            let (shards, workers) = part
                .trim()
                .split_once('x')
                .ok_or_else(|| anyhow::anyhow!("size {part:?} is not SHARDSxWORKERS"))?;
            Ok(Size {
                shards: shards.parse()?,
                workers: workers.parse()?,
            })
        })
        .collect()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// Polls until `condition` holds; the time since `tracker.started`, or an error describing
/// the last lease table after `deadline` (or when a live worker exited).
async fn wait_for(
    fleet: &mut ProcessFleet,
    live: &[String],
    tracker: &mut Tracker,
    deadline: Duration,
    what: &str,
    condition: impl Fn(&Snapshot) -> bool,
) -> anyhow::Result<Duration> {
    loop {
        let snapshot = Snapshot::read(fleet).await?;
        tracker.observe(&snapshot);
        if condition(&snapshot) {
            return Ok(tracker.started.elapsed());
        }
        if let Some(dead) = live.iter().find(|worker| !fleet.is_running(worker)) {
            anyhow::bail!(
                "{dead} exited while waiting for {what}: {}\n{}",
                snapshot.describe(live),
                fleet.worker_log(dead)
            );
        }
        if tracker.started.elapsed() > deadline {
            anyhow::bail!(
                "{what}: not reached after {deadline:?}: {}",
                snapshot.describe(live)
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Keeps polling for `window`, so late owner changes are seen (and counted by the watcher).
async fn settle(
    fleet: &ProcessFleet,
    tracker: &mut Tracker,
    window: Duration,
) -> anyhow::Result<Snapshot> {
    let started = Instant::now();
    loop {
        let snapshot = Snapshot::read(fleet).await?;
        tracker.observe(&snapshot);
        if started.elapsed() >= window {
            return Ok(snapshot);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Owner changes recorded by the fleet's lease watcher since `mark`: (total, most for one lease).
async fn moves_since(fleet: &ProcessFleet, mark: usize) -> anyhow::Result<(usize, usize)> {
    fleet.settle_watcher().await?;
    let mut per_lease: HashMap<String, usize> = HashMap::new();
    for handover in fleet.handovers().into_iter().skip(mark) {
        *per_lease.entry(handover.shard_id).or_default() += 1;
    }
    Ok((
        per_lease.values().sum(),
        per_lease.values().copied().max().unwrap_or(0),
    ))
}

async fn handover_mark(fleet: &ProcessFleet) -> anyhow::Result<usize> {
    fleet.settle_watcher().await?;
    Ok(fleet.handovers().len())
}

/// One run of one size; fills `row` as far as it gets.
async fn run_size(
    fleet: &mut ProcessFleet,
    size: Size,
    settings: &Settings,
    row: &mut Row,
) -> anyhow::Result<()> {
    let shards = size.shards;
    let mut live: Vec<String> = (1..=size.workers)
        .map(|index| format!("w{index:02}"))
        .collect();

    // Phase 1: all workers start at the same moment on a new lease file.
    let started = Instant::now();
    for worker in &live {
        fleet.start_worker(worker)?;
    }
    let mut tracker = Tracker::new(started);
    let owned = wait_for(
        fleet,
        &live,
        &mut tracker,
        settings.deadline,
        "every lease owned",
        |snapshot| snapshot.all_owned(&live, shards),
    )
    .await?;
    row.owned = Some(owned.as_secs_f64());
    let mark = handover_mark(fleet).await?;
    let balanced = wait_for(
        fleet,
        &live,
        &mut tracker,
        settings.deadline,
        "balance",
        |snapshot| snapshot.balanced(&live, shards),
    )
    .await?;
    row.balanced = Some(balanced.as_secs_f64());
    row.load.push(format!("balanced {}", load_average()));
    let snapshot = settle(fleet, &mut tracker, settings.settle).await?;
    row.balanced_counts = snapshot.describe(&live);
    anyhow::ensure!(
        snapshot.balanced(&live, shards),
        "balance lost during the settle window: {}",
        row.balanced_counts
    );
    let (moves, max_moves) = moves_since(fleet, mark).await?;
    row.moves_after_owned = Some(moves);
    row.max_moves_after_owned = Some(max_moves);
    row.last_change = tracker.last_change.map(|last| last.as_secs_f64());

    // Phase 2: SIGKILL a quarter of the workers together.
    let victims: Vec<String> = live[..(size.workers / 4).max(1)].to_vec();
    row.victims = victims.len();
    let (counts, _) = snapshot.counts(&live);
    row.victim_leases = Some(victims.iter().map(|victim| counts[victim]).sum());
    let mark = handover_mark(fleet).await?;
    let killed = Instant::now();
    for victim in &victims {
        fleet.kill(victim)?;
    }
    live.retain(|worker| !victims.contains(worker));
    let mut tracker = Tracker::new(killed);
    let recovered = wait_for(
        fleet,
        &live,
        &mut tracker,
        settings.deadline,
        "every lease owned by a survivor",
        |snapshot| snapshot.all_owned(&live, shards),
    )
    .await?;
    row.recovered = Some(recovered.as_secs_f64());
    let rebalanced = wait_for(
        fleet,
        &live,
        &mut tracker,
        settings.deadline,
        "balance among the survivors",
        |snapshot| snapshot.balanced(&live, shards),
    )
    .await?;
    row.rebalanced = Some(rebalanced.as_secs_f64());
    row.load.push(format!("rebalanced {}", load_average()));
    let snapshot = settle(fleet, &mut tracker, settings.settle).await?;
    row.rebalanced_counts = snapshot.describe(&live);
    let (moves, max_moves) = moves_since(fleet, mark).await?;
    row.recovery_moves = Some(moves);
    row.recovery_max_moves = Some(max_moves);
    row.recovery_last_change = tracker.last_change.map(|last| last.as_secs_f64());
    anyhow::ensure!(
        snapshot.balanced(&live, shards),
        "balance among the survivors lost during the settle window: {}",
        row.rebalanced_counts
    );
    Ok(())
}

async fn run_one(size: Size, run: u64, settings: &Settings) -> Row {
    let mut row = Row {
        shards: size.shards,
        workers: size.workers,
        ..Row::default()
    };
    let name = format!("scale{}x{}r{run}", size.shards, size.workers);
    let mut fleet = match ProcessFleet::start(
        &name,
        FleetOptions {
            shards: size.shards,
            failover_ms: settings.failover_ms,
            ..FleetOptions::default()
        },
    )
    .await
    {
        Ok(fleet) => fleet,
        Err(error) => {
            row.error = Some(format!("starting the fleet: {error:#}"));
            return row;
        }
    };
    fleet.set_idle_between_reads_ms(settings.idle_ms);
    if let Err(error) = run_size(&mut fleet, size, settings, &mut row).await {
        row.error = Some(format!("{error:#}"));
        row.kept = Some(fleet.keep_files());
    }
    // Dropping the fleet kills every process.
    row
}

fn seconds(value: Option<f64>, settings: &Settings) -> String {
    match value {
        Some(seconds) => format!("{seconds:.1} ({:.2})", settings.rounds(seconds)),
        None => "—".to_owned(),
    }
}

fn moves(total: Option<usize>, max: Option<usize>) -> String {
    match (total, max) {
        (Some(total), Some(max)) => format!("{total} (max {max})"),
        _ => "—".to_owned(),
    }
}

fn print_header() {
    println!(
        "| shards | workers | owned s (rounds) | balanced s (rounds) | moves after owned (max per lease) | killed (their leases) | recovered s (rounds) | rebalanced s (rounds) | recovery moves (max per lease) | note |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
}

fn print_row(row: &Row, label: &str, settings: &Settings) {
    println!(
        "| {} | {} | {} | {} | {} | {} ({}) | {} | {} | {} | {} |",
        row.shards,
        row.workers,
        seconds(row.owned, settings),
        seconds(row.balanced, settings),
        moves(row.moves_after_owned, row.max_moves_after_owned),
        row.victims,
        row.victim_leases
            .map_or_else(|| "—".to_owned(), |count| count.to_string()),
        seconds(row.recovered, settings),
        seconds(row.rebalanced, settings),
        moves(row.recovery_moves, row.recovery_max_moves),
        if row.error.is_some() { "FAILED" } else { label },
    );
}

fn median_f64(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let mut values: Vec<f64> = values.collect::<Option<Vec<f64>>>()?;
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

fn median_usize(values: impl Iterator<Item = Option<usize>>) -> Option<usize> {
    let mut values: Vec<usize> = values.collect::<Option<Vec<usize>>>()?;
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}

/// The median of each column over the successful runs (for an odd count, the middle value).
fn median_row(rows: &[Row]) -> Option<Row> {
    let ok: Vec<&Row> = rows.iter().filter(|row| row.error.is_none()).collect();
    let first = ok.first()?;
    Some(Row {
        shards: first.shards,
        workers: first.workers,
        victims: first.victims,
        owned: median_f64(ok.iter().map(|row| row.owned)),
        balanced: median_f64(ok.iter().map(|row| row.balanced)),
        moves_after_owned: median_usize(ok.iter().map(|row| row.moves_after_owned)),
        max_moves_after_owned: ok.iter().filter_map(|row| row.max_moves_after_owned).max(),
        victim_leases: median_usize(ok.iter().map(|row| row.victim_leases)),
        recovered: median_f64(ok.iter().map(|row| row.recovered)),
        rebalanced: median_f64(ok.iter().map(|row| row.rebalanced)),
        recovery_moves: median_usize(ok.iter().map(|row| row.recovery_moves)),
        recovery_max_moves: ok.iter().filter_map(|row| row.recovery_max_moves).max(),
        ..Row::default()
    })
}

fn print_details(row: &Row, run: u64) {
    let fmt = |value: Option<f64>| value.map_or_else(|| "—".to_owned(), |v| format!("{v:.1} s"));
    println!(
        "  {}x{} run {run}: last owner change {} after start; after balance: {}",
        row.shards,
        row.workers,
        fmt(row.last_change),
        row.balanced_counts
    );
    println!(
        "  {}x{} run {run}: last owner change {} after the kill; after rebalance: {}; load {}",
        row.shards,
        row.workers,
        fmt(row.recovery_last_change),
        row.rebalanced_counts,
        row.load.join(", ")
    );
    if let Some(error) = &row.error {
        println!("  FAILED: {error}");
    }
    if let Some(dir) = &row.kept {
        println!("  fleet files kept in {}", dir.display());
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let sizes =
        parse_sizes(&std::env::var("SIZES").unwrap_or_else(|_| "64x2,256x8,1024x16".to_owned()))?;
    let failover_ms = env_number("FAILOVER_MS", 3000);
    let failover = Duration::from_millis(failover_ms);
    let take_interval = kcl_core::config::LeaseConfig::builder()
        .failover_time(failover)
        .build()?
        .take_interval();
    let settings = Settings {
        failover_ms,
        idle_ms: env_number("IDLE_MS", 1000),
        deadline: Duration::from_secs(env_number("DEADLINE_S", 180)),
        settle: Duration::from_millis(env_number(
            "SETTLE_MS",
            u64::try_from(take_interval.as_millis() * 2).unwrap_or(u64::MAX),
        )),
        take_interval,
    };
    let runs = env_number("RUNS", 1).max(1);
    println!(
        "fleet scale bench: real kinesis-broker + kcl worker processes on one lease file, \
         --failover-ms {failover_ms}, --idle-between-reads-ms {}, taker interval {} ms, \
         settle window {} ms, {runs} run(s) per size; rounds = seconds / taker interval",
        settings.idle_ms,
        take_interval.as_millis(),
        settings.settle.as_millis()
    );
    let mut results: Vec<(Size, Vec<Row>)> = Vec::new();
    for size in sizes {
        let mut rows = Vec::new();
        for run in 1..=runs {
            let row = run_one(size, run, &settings).await;
            print_header();
            print_row(&row, &format!("run {run}"), &settings);
            print_details(&row, run);
            rows.push(row);
        }
        results.push((size, rows));
    }
    println!();
    println!(
        "summary ({runs} run(s) per size; with several runs, medians of the successful runs and the worst max per lease):"
    );
    print_header();
    for (_, rows) in &results {
        let failed = rows.iter().filter(|row| row.error.is_some()).count();
        if runs == 1 {
            print_row(&rows[0], "", &settings);
        } else if let Some(median) = median_row(rows) {
            let label = if failed > 0 {
                format!("median of {} ({failed} FAILED)", rows.len() - failed)
            } else {
                format!("median of {}", rows.len())
            };
            print_row(&median, &label, &settings);
        } else {
            print_row(&rows[0], "all FAILED", &settings);
        }
    }
    Ok(())
}
