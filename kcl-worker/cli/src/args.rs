//! Command-line arguments of `kcl` (clap derive), kept apart from the logic that runs them.

use crate::lease_spec::LeaseStoreSpec;
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

    /// Where the Kinesis endpoint is (accepted before or after any subcommand; `demo` does not
    /// use it, `leases` only its region, for DynamoDB).
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
    /// Manage Firehose delivery streams of a `kinesis-broker --firehose-dir`: create,
    /// describe, put, list, delete.
    Firehose(FirehoseArgs),
    /// Show the lease table of an application.
    Leases(LeasesArgs),
    /// Show the lease table with each shard's lag read from the broker.
    Status(StatusArgs),
}

/// Where a Kinesis-compatible endpoint is and how to sign requests to it. Global flags: they
/// may follow any subcommand (`kcl stream create t --endpoint URL`). Credentials come from the
/// standard AWS chain (env, `AWS_PROFILE` and the profile files, SSO, web identity, ECS/EC2).
#[derive(Debug, Clone, Args)]
pub struct EndpointArgs {
    /// The Kinesis endpoint, e.g. http://127.0.0.1:4567 for a local `kinesis-broker`. Without
    /// it: AWS_ENDPOINT_URL_KINESIS, else AWS_ENDPOINT_URL, else https://kinesis.REGION.amazonaws.com.
    #[arg(long, env = "KCL_ENDPOINT", global = true)]
    pub endpoint: Option<String>,
    /// The AWS region (signing, and the default endpoint); else the profile's, else us-east-1.
    #[arg(long, env = "AWS_REGION", global = true)]
    pub region: Option<String>,
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
    /// The lease store shared by all workers of the application.
    #[command(flatten)]
    pub lease_store: LeaseStoreArgs,
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
    /// Kinesis records per PutRecords request (at most 500).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=500))]
    pub batch_size: u16,
    /// Pack records bound for the same shard into KPL aggregates (readable by the KCL and by
    /// AWS's de-aggregation libraries); many times the records/s of plain records.
    #[arg(long)]
    pub aggregate: bool,
    /// Largest KPL aggregate in bytes (with --aggregate; KPL default 51,200).
    #[arg(long, default_value_t = 51_200, value_parser = clap::value_parser!(u64).range(64..=1_048_576))]
    pub aggregation_max_bytes: u64,
    /// How long a record may wait to be batched, in milliseconds (KPL default 100).
    #[arg(long, default_value_t = 100)]
    pub max_buffered_ms: u64,
    /// Keep each partition key's records in order through retries.
    #[arg(long)]
    pub ordered: bool,
    /// Seconds a record is retried before it counts as failed (KPL default 30).
    #[arg(long, default_value_t = 30)]
    pub record_ttl_secs: u64,
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

/// Arguments of `kcl firehose`.
#[derive(Debug, Clone, Args)]
pub struct FirehoseArgs {
    /// The delivery stream operation.
    #[command(subcommand)]
    pub command: FirehoseCommand,
}

/// The operations of `kcl firehose`.
#[derive(Debug, Clone, Subcommand)]
pub enum FirehoseCommand {
    /// Create a delivery stream to an S3 bucket and wait until it is active.
    Create {
        /// The delivery stream name.
        name: String,
        /// The destination bucket (objects under `--firehose-dir DIR/BUCKET/` of the broker).
        #[arg(long)]
        bucket: String,
        /// Read this Kinesis stream (KinesisStreamAsSource) instead of DirectPut.
        #[arg(long)]
        source_stream: Option<String>,
        /// The object key prefix (default `YYYY/MM/DD/HH/`).
        #[arg(long)]
        prefix: Option<String>,
        /// The prefix of failed records (default `processing-failed/YYYY/MM/DD/HH/`).
        #[arg(long)]
        error_prefix: Option<String>,
        /// The buffer size hint in MiB (1-128).
        #[arg(long, default_value_t = 5)]
        size_mib: u32,
        /// The buffer interval hint in seconds (0-900).
        #[arg(long, default_value_t = 300)]
        interval_secs: u32,
        /// Compress objects with GZIP.
        #[arg(long)]
        gzip: bool,
        /// Transform records with this Lambda function ARN (run by the broker as the
        /// `--firehose-lambda NAME=COMMAND` of the function's name).
        #[arg(long)]
        lambda_arn: Option<String>,
    },
    /// Describe a delivery stream.
    Describe {
        /// The delivery stream name.
        name: String,
    },
    /// Put records (PutRecordBatch, 500 at a time): each --data, else each line of stdin,
    /// with a newline appended.
    Put {
        /// The delivery stream name.
        name: String,
        /// A record (repeatable); without any, stdin's lines are the records.
        #[arg(long)]
        data: Vec<String>,
    },
    /// List the delivery streams.
    List,
    /// Delete a delivery stream.
    Delete {
        /// The delivery stream name.
        name: String,
    },
}

/// Arguments of `kcl leases`.
#[derive(Debug, Clone, Args)]
pub struct LeasesArgs {
    /// The lease store.
    #[command(flatten)]
    pub lease_store: LeaseStoreArgs,
    /// The application whose leases to show.
    #[arg(long)]
    pub application: String,
    /// Print JSON (one array of leases) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Where the lease table is: `--leases sqlite:PATH | dynamodb:TABLE`, or `--lease-db PATH`
/// (the SQLite shorthand); see [`crate::lease_spec`].
#[derive(Debug, Clone, Args)]
pub struct LeaseStoreArgs {
    /// The lease store: `sqlite:PATH` (a lease file shared by the workers of one host) or
    /// `dynamodb:TABLE` (a Java-KCL compatible table shared across hosts; `dynamodb:` alone
    /// names the table after --application, as the Java KCL does).
    #[arg(
        long,
        value_name = "SPEC",
        conflicts_with = "lease_db",
        required_unless_present = "lease_db"
    )]
    pub leases: Option<LeaseStoreSpec>,
    /// The SQLite lease file: short for `--leases sqlite:PATH`.
    #[arg(long, value_name = "PATH")]
    pub lease_db: Option<PathBuf>,
    /// With `--leases dynamodb:...`: the DynamoDB endpoint, e.g. http://127.0.0.1:5000 for a
    /// local moto server (default: AWS_ENDPOINT_URL_DYNAMODB, else AWS_ENDPOINT_URL, else the
    /// region's endpoint).
    #[arg(long, value_name = "URL")]
    pub dynamodb_endpoint: Option<String>,
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
            assert_eq!(
                cli.endpoint.endpoint.as_deref(),
                Some("http://h:1"),
                "{case:?}"
            );
            assert_eq!(
                cli.endpoint.region.as_deref(),
                Some("eu-west-1"),
                "{case:?}"
            );
            assert_eq!(cli.verbose, 1, "{case:?}");
        }
        let defaulted = Cli::try_parse_from(["kcl", "stream", "list"]).expect("parses");
        if std::env::var_os("KCL_ENDPOINT").is_none() {
            assert_eq!(
                defaulted.endpoint.endpoint, None,
                "resolved later, by the AWS rules"
            );
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

    #[test]
    fn lease_store_flags_parse_on_every_command_that_reads_leases() {
        let worker = [
            "kcl",
            "worker",
            "--stream",
            "s",
            "--application",
            "a",
            "--sink",
            "stdout",
        ];
        let leases = ["kcl", "leases", "--application", "a"];
        let status = ["kcl", "status", "--application", "a", "--stream", "s"];
        let store = |cli: &Cli| match &cli.command {
            Command::Worker(args) => args.lease_store.clone(),
            Command::Leases(args) => args.lease_store.clone(),
            Command::Status(args) => args.leases.lease_store.clone(),
            other => panic!("unexpected command {other:?}"),
        };
        for base in [&worker[..], &leases[..], &status[..]] {
            let parse = |extra: &[&str]| Cli::try_parse_from(base.iter().chain(extra).copied());
            let dynamodb = parse(&["--leases", "dynamodb:", "--dynamodb-endpoint", "http://h:1"])
                .unwrap_or_else(|error| panic!("{base:?}: {error}"));
            let parsed = store(&dynamodb);
            assert_eq!(parsed.leases, Some(LeaseStoreSpec::DynamoDb(None)));
            assert_eq!(parsed.dynamodb_endpoint.as_deref(), Some("http://h:1"));
            let sqlite = parse(&["--leases", "sqlite:l.db"]).expect("sqlite spec");
            assert_eq!(
                store(&sqlite).leases,
                Some(LeaseStoreSpec::Sqlite(PathBuf::from("l.db")))
            );
            let shorthand = parse(&["--lease-db", "l.db"]).expect("--lease-db");
            assert_eq!(store(&shorthand).lease_db, Some(PathBuf::from("l.db")));

            let both = parse(&["--leases", "dynamodb:t12", "--lease-db", "l.db"])
                .expect_err("--leases with --lease-db");
            assert!(both.to_string().contains("--lease-db"), "{both}");
            let neither = parse(&[]).expect_err("no lease store");
            assert!(neither.to_string().contains("--leases"), "{neither}");
            let bad = parse(&["--leases", "postgres://db"]).expect_err("unknown scheme");
            assert!(
                bad.to_string().contains("sqlite:PATH or dynamodb:TABLE"),
                "{bad}"
            );
        }
    }
}
