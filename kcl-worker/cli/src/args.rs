//! Command-line arguments of `kcl` (clap derive), kept apart from the logic that runs them.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// `kcl`: run Kinesis consumer workers, produce records, manage streams and inspect leases.
#[derive(Debug, Parser)]
#[command(name = "kcl", version, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v: debug, -vv: trace). `RUST_LOG` overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Where the Kinesis endpoint is (accepted before or after any subcommand; `demo` and
    /// `leases` do not use it).
    #[command(flatten)]
    pub endpoint: EndpointArgs,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `kcl`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a self-contained demonstration: an embedded broker, a producer and three workers on a
    /// SQLite lease file; one worker crashes, a shard splits, the rest shut down gracefully, and
    /// a verdict (produced / processed / duplicates / lost, failover time) is printed.
    Demo(DemoArgs),
    /// Run one worker process against a Kinesis HTTP endpoint.
    Worker(WorkerArgs),
    /// Produce records with PutRecords (batched, retried, with a progress bar).
    Produce(ProduceArgs),
    /// Manage streams: create, describe, list, split, merge, scale, delete.
    Stream(StreamArgs),
    /// Show the lease table of an application.
    Leases(LeasesArgs),
    /// Show the lease table with each shard's lag read from the broker.
    Status(StatusArgs),
}

/// Where a Kinesis-compatible endpoint is and how to sign requests to it. Global flags: they
/// may follow any subcommand (`kcl stream create t --endpoint URL`).
#[derive(Debug, Clone, Args)]
pub struct EndpointArgs {
    /// The Kinesis endpoint, e.g. http://127.0.0.1:4567 for a local `kinesis-broker`.
    #[arg(
        long,
        env = "KCL_ENDPOINT",
        default_value = "http://127.0.0.1:4567",
        global = true
    )]
    pub endpoint: String,
    /// The AWS region used for request signing.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1", global = true)]
    pub region: String,
}

/// Arguments of `kcl demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Number of shards of the demo stream.
    #[arg(long, default_value_t = 4)]
    pub shards: u32,
    /// Number of workers.
    #[arg(long, default_value_t = 3)]
    pub workers: usize,
    /// Records per second the demo producer writes.
    #[arg(long, default_value_t = 2000)]
    pub rate: u32,
    /// Lease failover time in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub failover_ms: u64,
    /// Length of each phase (warm-up, after the crash, after the split) in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub phase_ms: u64,
    /// Do not print the live view, only the phases and the verdict.
    #[arg(long)]
    pub quiet: bool,
    /// Serve the live status page and /metrics on ADDR while the demo runs (a bare port
    /// means loopback).
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<String>,
}

/// Arguments of `kcl worker`.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// The stream to consume.
    #[arg(long)]
    pub stream: String,
    /// The application name: workers with the same name share the shards.
    #[arg(long)]
    pub application: String,
    /// The SQLite lease file shared by all workers of the application.
    #[arg(long)]
    pub lease_db: PathBuf,
    /// This worker's id (default: host name, process id and a random suffix).
    #[arg(long)]
    pub worker_id: Option<String>,
    /// Where a shard without a checkpoint starts.
    #[arg(long, default_value = "trim-horizon")]
    pub initial_position: InitialPositionArg,
    /// A lease not renewed for this long is taken over by another worker.
    #[arg(long, default_value_t = 10_000)]
    pub failover_ms: u64,
    /// Exit with an error once the lease file has kept failing with errors no retry fixes
    /// (disk full, corrupt, read-only) for this many milliseconds (0: never exit).
    #[arg(long, default_value_t = 120_000)]
    pub store_failure_timeout_ms: u64,
    /// How records are retrieved.
    #[arg(long, value_enum, default_value_t = RetrievalArg::Polling)]
    pub retrieval: RetrievalArg,
    /// Where records go: `jsonl:PATH` (one JSON object per record, fsynced before the
    /// checkpoint) or `stdout`.
    #[arg(long, conflicts_with = "exec", required_unless_present = "exec")]
    pub sink: Option<SinkSpec>,
    /// A record processor speaking the KCL MultiLangDaemon protocol, run once per shard through
    /// `sh -c`, e.g. `--exec "python3 my_processor.py"`.
    #[arg(long)]
    pub exec: Option<String>,
    /// With --exec: a child that does not answer an action within this many milliseconds is
    /// killed and the action retried with a new child (default: wait forever).
    #[arg(long, requires = "exec")]
    pub exec_timeout_ms: Option<u64>,
    /// Polling: pause after a GetRecords call that returned no records, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub idle_between_reads_ms: u64,
    /// Serve GET /metrics (Prometheus) and GET /health on ADDR (a bare port means loopback).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// /health turns 503 when a shard's record processor has been running this long.
    #[arg(long, default_value_t = 300_000)]
    pub stuck_shard_after_ms: u64,
}

/// Arguments of `kcl produce`.
#[derive(Debug, Clone, Args)]
pub struct ProduceArgs {
    /// The stream to write to.
    #[arg(long)]
    pub stream: String,
    /// Number of generated records (ignored with --from-file).
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    /// Records per second; 0 means as fast as possible.
    #[arg(long, default_value_t = 0)]
    pub rate: u32,
    /// Size of each generated record in bytes.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Number of distinct partition keys of generated records.
    #[arg(long, default_value_t = 100)]
    pub keys: u32,
    /// Read records from a file instead, one record per line (`-` for stdin); the partition key
    /// cycles through --keys keys.
    #[arg(long)]
    pub from_file: Option<PathBuf>,
    /// Records per PutRecords request (at most 500).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=500))]
    pub batch_size: u16,
    /// Do not draw a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// Arguments of `kcl stream`.
#[derive(Debug, Clone, Args)]
pub struct StreamArgs {
    /// The stream operation.
    #[command(subcommand)]
    pub command: StreamCommand,
}

/// The operations of `kcl stream`.
#[derive(Debug, Clone, Subcommand)]
pub enum StreamCommand {
    /// Create a stream and wait until it is active.
    Create {
        /// The stream name.
        name: String,
        /// Number of shards.
        #[arg(long, default_value_t = 4)]
        shards: u32,
    },
    /// Describe a stream and its shards.
    Describe {
        /// The stream name.
        name: String,
    },
    /// List the streams.
    List,
    /// Split a shard in two (at the middle of its hash-key range unless --hash-key is given).
    Split {
        /// The stream name.
        name: String,
        /// The shard to split.
        #[arg(long)]
        shard: String,
        /// The first hash key of the new upper child (decimal).
        #[arg(long)]
        hash_key: Option<String>,
    },
    /// Merge two adjacent shards.
    Merge {
        /// The stream name.
        name: String,
        /// The shard to merge.
        #[arg(long)]
        shard: String,
        /// The adjacent shard to merge it with.
        #[arg(long)]
        adjacent: String,
    },
    /// Change the number of open shards (uniform scaling).
    Scale {
        /// The stream name.
        name: String,
        /// The target number of open shards.
        #[arg(long)]
        target: u32,
    },
    /// Delete a stream.
    Delete {
        /// The stream name.
        name: String,
    },
}

/// Arguments of `kcl leases`.
#[derive(Debug, Clone, Args)]
pub struct LeasesArgs {
    /// The SQLite lease file.
    #[arg(long)]
    pub lease_db: PathBuf,
    /// The application whose leases to show.
    #[arg(long)]
    pub application: String,
    /// Print JSON (one array of leases) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `kcl status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The lease table to show.
    #[command(flatten)]
    pub leases: LeasesArgs,
    /// The stream the application consumes.
    #[arg(long)]
    pub stream: String,
    /// Serve the live status page (and JSON at /api/status) on ADDR instead of printing once
    /// (a bare port means loopback).
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<String>,
}

/// How a worker retrieves records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RetrievalArg {
    /// GetRecords polling.
    Polling,
    /// Enhanced fan-out (SubscribeToShard).
    Push,
}

/// Where a shard without a checkpoint starts: `trim-horizon`, `latest` or `at-timestamp:T`
/// (T in epoch milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialPositionArg {
    /// The oldest retained record.
    TrimHorizon,
    /// Only records written from now on.
    Latest,
    /// Records that arrived at or after this time (epoch milliseconds).
    AtTimestamp(i64),
}

impl FromStr for InitialPositionArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "trim-horizon" | "TRIM_HORIZON" => return Ok(InitialPositionArg::TrimHorizon),
            "latest" | "LATEST" => return Ok(InitialPositionArg::Latest),
            _ => {}
        }
        let Some(millis) = text.strip_prefix("at-timestamp:") else {
            return Err(format!(
                "initial position must be trim-horizon, latest or at-timestamp:EPOCH_MILLIS, got {text:?}"
            ));
        };
        millis
            .parse::<i64>()
            .map(InitialPositionArg::AtTimestamp)
            .map_err(|_| {
                format!("at-timestamp needs epoch milliseconds as an integer, got {millis:?}")
            })
    }
}

impl fmt::Display for InitialPositionArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitialPositionArg::TrimHorizon => f.write_str("trim-horizon"),
            InitialPositionArg::Latest => f.write_str("latest"),
            InitialPositionArg::AtTimestamp(millis) => write!(f, "at-timestamp:{millis}"),
        }
    }
}

/// A record sink: `jsonl:PATH` or `stdout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkSpec {
    /// Append JSON lines to a file, fsynced before each checkpoint.
    Jsonl(PathBuf),
    /// Write JSON lines to standard output.
    Stdout,
}

impl FromStr for SinkSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "stdout" {
            return Ok(SinkSpec::Stdout);
        }
        match text.strip_prefix("jsonl:") {
            Some("") => Err("jsonl sink needs a path: jsonl:PATH".to_owned()),
            Some(path) => Ok(SinkSpec::Jsonl(PathBuf::from(path))),
            None => Err(format!("sink must be jsonl:PATH or stdout, got {text:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn initial_positions_parse() {
        let cases = [
            ("trim-horizon", Ok(InitialPositionArg::TrimHorizon)),
            ("latest", Ok(InitialPositionArg::Latest)),
            (
                "at-timestamp:1700000000000",
                Ok(InitialPositionArg::AtTimestamp(1_700_000_000_000)),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<InitialPositionArg>(), expected, "{text}");
            let printed = expected.clone().expect("valid case").to_string();
            assert_eq!(printed.parse::<InitialPositionArg>(), expected);
        }
        for bad in ["", "oldest", "at-timestamp:", "at-timestamp:soon"] {
            assert!(bad.parse::<InitialPositionArg>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sinks_parse() {
        assert_eq!("stdout".parse::<SinkSpec>(), Ok(SinkSpec::Stdout));
        assert_eq!(
            "jsonl:/tmp/out.jsonl".parse::<SinkSpec>(),
            Ok(SinkSpec::Jsonl(PathBuf::from("/tmp/out.jsonl")))
        );
        for bad in ["jsonl:", "file:/x", ""] {
            assert!(bad.parse::<SinkSpec>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn connection_flags_are_accepted_after_any_subcommand() {
        let cases: [&[&str]; 6] = [
            &[
                "kcl",
                "stream",
                "create",
                "t",
                "--shards",
                "2",
                "--endpoint",
                "http://h:1",
            ],
            &["kcl", "stream", "--endpoint", "http://h:1", "list"],
            &["kcl", "--endpoint", "http://h:1", "stream", "describe", "t"],
            &[
                "kcl",
                "produce",
                "--stream",
                "t",
                "--endpoint",
                "http://h:1",
            ],
            &[
                "kcl",
                "status",
                "--lease-db",
                "l.db",
                "--application",
                "a",
                "--stream",
                "t",
                "--endpoint",
                "http://h:1",
            ],
            &[
                "kcl",
                "worker",
                "--stream",
                "s",
                "--application",
                "a",
                "--lease-db",
                "l.db",
                "--sink",
                "stdout",
                "--endpoint",
                "http://h:1",
            ],
        ];
        for case in cases {
            let cli =
                Cli::try_parse_from(case.iter().copied().chain(["--region", "eu-west-1", "-v"]))
                    .unwrap_or_else(|error| panic!("{case:?}: {error}"));
            assert_eq!(cli.endpoint.endpoint, "http://h:1", "{case:?}");
            assert_eq!(cli.endpoint.region, "eu-west-1", "{case:?}");
            assert_eq!(cli.verbose, 1, "{case:?}");
        }
        let defaulted = Cli::try_parse_from(["kcl", "stream", "list"]).expect("parses");
        if std::env::var_os("KCL_ENDPOINT").is_none() {
            assert_eq!(defaulted.endpoint.endpoint, "http://127.0.0.1:4567");
        }
    }

    #[test]
    fn worker_needs_exactly_one_of_sink_and_exec() {
        let base = [
            "kcl",
            "worker",
            "--stream",
            "s",
            "--application",
            "a",
            "--lease-db",
            "l.db",
        ];
        let neither = Cli::try_parse_from(base);
        assert!(neither.is_err());
        let both = Cli::try_parse_from(
            base.iter()
                .copied()
                .chain(["--sink", "stdout", "--exec", "cat"]),
        );
        assert!(both.is_err());
        let sink_only = Cli::try_parse_from(base.iter().copied().chain(["--sink", "stdout"]));
        assert!(sink_only.is_ok());
    }
}
