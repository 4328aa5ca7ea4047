//! `http-bench`: PutRecords / GetRecords throughput over HTTP, for `kinesis-broker` (in memory
//! and with `--fsync always`) and, when given, kinesalite — the same client for all of them.
//!
//! ```text
//! cargo build --release -p kinesis-broker --bins
//! target/release/http-bench --seconds 5 --kinesalite /path/to/node_modules/kinesalite/cli.js
//! ```
//!
//! The client is a minimal keep-alive HTTP/1.1 client (so the measurement is not dominated by a
//! heavyweight client); every producer sends `PutRecords` of 500 records of 100 bytes in JSON,
//! every reader drains one shard with `GetRecords` (Limit 10000) from `TRIM_HORIZON`.

use anyhow::{Context, anyhow, bail};
use base64::Engine as _;
use clap::Parser;
use serde::Deserialize;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// Flags of the benchmark.
#[derive(Debug, Parser)]
#[command(name = "http-bench", about = "Kinesis HTTP throughput benchmark")]
struct Flags {
    /// Seconds of PutRecords load per target.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent producers.
    #[arg(long, default_value_t = 16)]
    producers: usize,
    /// Shards of the benchmark stream (one reader per shard).
    #[arg(long, default_value_t = 4)]
    shards: usize,
    /// Records per PutRecords call.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Bytes per record.
    #[arg(long, default_value_t = 100)]
    record_bytes: usize,
    /// kinesalite's cli.js (run with `node`); skipped when absent.
    #[arg(long)]
    kinesalite: Option<PathBuf>,
    /// Where the `--fsync always` broker keeps its data (a temporary directory below it).
    #[arg(long, default_value = "target/http-bench-data")]
    data_root: PathBuf,
    /// Also run the `--fsync always` target.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    durable: bool,
}

/// One keep-alive HTTP/1.1 connection.
struct Connection {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    host: String,
}

impl Connection {
    async fn open(host: &str) -> anyhow::Result<Connection> {
        let stream = TcpStream::connect(host).await?;
        stream.set_nodelay(true)?;
        let (read, write) = stream.into_split();
        Ok(Connection {
            reader: BufReader::with_capacity(256 * 1024, read),
            writer: write,
            host: host.to_string(),
        })
    }

    /// Sends one Kinesis JSON request and returns (status, body).
    async fn call(&mut self, operation: &str, body: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-amz-json-1.1\r\n\
             X-Amz-Target: Kinesis_20131202.{operation}\r\nX-Amz-Date: 20261125T000000Z\r\n\
             Authorization: AWS4-HMAC-SHA256 \
             Credential=AKIDBENCH/20261125/us-east-1/kinesis/aws4_request, \
             SignedHeaders=host;x-amz-date;x-amz-target, Signature=00\r\n\
             Content-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        self.writer.write_all(head.as_bytes()).await?;
        self.writer.write_all(body).await?;
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line).await?;
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
        let mut content_length = None;
        let mut chunked = false;
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).await? == 0 {
                bail!("connection closed in headers");
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.parse::<usize>().ok();
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.eq_ignore_ascii_case("chunked");
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size_line = String::new();
                self.reader.read_line(&mut size_line).await?;
                let size =
                    usize::from_str_radix(size_line.trim().split(';').next().unwrap_or(""), 16)
                        .map_err(|_| anyhow!("bad chunk size {size_line:?}"))?;
                let start = body.len();
                body.resize(start + size, 0);
                self.reader.read_exact(&mut body[start..]).await?;
                let mut crlf = [0u8; 2];
                self.reader.read_exact(&mut crlf).await?;
                if size == 0 {
                    break;
                }
            }
        } else {
            let length = content_length.ok_or_else(|| anyhow!("no content-length"))?;
            body.reserve_exact(length);
            let read = (&mut self.reader)
                .take(length as u64)
                .read_to_end(&mut body)
                .await?;
            if read != length {
                bail!("connection closed in the body");
            }
        }
        Ok((status, body))
    }

    async fn call_ok(&mut self, operation: &str, body: &[u8]) -> anyhow::Result<Vec<u8>> {
        let (status, body) = self.call(operation, body).await?;
        if status != 200 {
            bail!(
                "{operation} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(body)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordsAnswer {
    failed_record_count: Option<u64>,
    records: Vec<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RecordAnswer<'a> {
    data: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetRecordsAnswer<'a> {
    #[serde(borrow)]
    records: Vec<RecordAnswer<'a>>,
    next_shard_iterator: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListShardsAnswer {
    shards: Vec<ShardAnswer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ShardAnswer {
    shard_id: String,
}

#[derive(Debug, Clone, Copy)]
struct Throughput {
    put_records_per_sec: f64,
    get_records_per_sec: f64,
    records: u64,
}

async fn create_stream(host: &str, shards: usize) -> anyhow::Result<Vec<String>> {
    let mut connection = Connection::open(host).await?;
    let body = format!(r#"{{"StreamName":"bench","ShardCount":{shards}}}"#);
    connection.call_ok("CreateStream", body.as_bytes()).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let summary = connection
            .call_ok("DescribeStreamSummary", br#"{"StreamName":"bench"}"#)
            .await?;
        if String::from_utf8_lossy(&summary).contains("\"ACTIVE\"") {
            break;
        }
        if Instant::now() > deadline {
            bail!("stream did not become ACTIVE");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listed = connection
        .call_ok("ListShards", br#"{"StreamName":"bench"}"#)
        .await?;
    let listed: ListShardsAnswer = serde_json::from_slice(&listed)?;
    Ok(listed.shards.into_iter().map(|s| s.shard_id).collect())
}

fn put_records_body(flags: &Flags, producer: usize) -> Vec<u8> {
    let data = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; flags.record_bytes]);
    let records: Vec<String> = (0..flags.batch)
        .map(|i| format!(r#"{{"Data":"{data}","PartitionKey":"p{producer}-{i}"}}"#))
        .collect();
    format!(
        r#"{{"StreamName":"bench","Records":[{}]}}"#,
        records.join(",")
    )
    .into_bytes()
}

async fn run_load(flags: &Flags, host: &str) -> anyhow::Result<Throughput> {
    let shard_ids = create_stream(host, flags.shards).await?;
    let accepted = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(flags.seconds);
    let started = Instant::now();
    let mut producers = Vec::new();
    for producer in 0..flags.producers {
        let body = put_records_body(flags, producer);
        let host = host.to_string();
        let accepted = Arc::clone(&accepted);
        producers.push(tokio::spawn(async move {
            let mut connection = Connection::open(&host).await?;
            while Instant::now() < deadline {
                let answer = connection.call_ok("PutRecords", &body).await?;
                let answer: PutRecordsAnswer = serde_json::from_slice(&answer)?;
                let failed = answer.failed_record_count.unwrap_or(0);
                accepted.fetch_add(answer.records.len() as u64 - failed, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for producer in producers {
        producer.await??;
    }
    let put_elapsed = started.elapsed().as_secs_f64();
    let records = accepted.load(Ordering::Relaxed);

    let read = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut readers = Vec::new();
    for shard_id in shard_ids {
        let host = host.to_string();
        let read = Arc::clone(&read);
        readers.push(tokio::spawn(async move {
            let mut connection = Connection::open(&host).await?;
            let body = format!(
                r#"{{"StreamName":"bench","ShardId":"{shard_id}","ShardIteratorType":"TRIM_HORIZON"}}"#
            );
            let answer = connection.call_ok("GetShardIterator", body.as_bytes()).await?;
            let answer: serde_json::Value = serde_json::from_slice(&answer)?;
            let mut iterator = answer["ShardIterator"].as_str().map(str::to_string);
            let mut decoded = Vec::new();
            while let Some(current) = iterator {
                let body = format!(r#"{{"ShardIterator":"{current}","Limit":10000}}"#);
                let answer = connection.call_ok("GetRecords", body.as_bytes()).await?;
                let page: GetRecordsAnswer<'_> = serde_json::from_slice(&answer)?;
                for record in &page.records {
                    decoded.clear();
                    base64::engine::general_purpose::STANDARD
                        .decode_vec(record.data, &mut decoded)
                        .map_err(|e| anyhow!("bad base64 from the server: {e}"))?;
                }
                read.fetch_add(page.records.len() as u64, Ordering::Relaxed);
                if page.records.is_empty() {
                    break;
                }
                iterator = page.next_shard_iterator;
            }
            anyhow::Ok(())
        }));
    }
    for reader in readers {
        reader.await??;
    }
    let get_elapsed = started.elapsed().as_secs_f64();
    let read = read.load(Ordering::Relaxed);
    if read != records {
        bail!("read {read} records but {records} were acknowledged");
    }
    Ok(Throughput {
        put_records_per_sec: records as f64 / put_elapsed,
        get_records_per_sec: read as f64 / get_elapsed,
        records,
    })
}

async fn start_broker(extra: &[&str]) -> anyhow::Result<(Child, String)> {
    let exe = std::env::current_exe()?
        .parent()
        .context("no executable directory")?
        .join("kinesis-broker");
    let mut child = Command::new(&exe)
        .args(["--listen", "127.0.0.1:0", "--no-throughput-limits"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await??
        .context("kinesis-broker printed nothing")?;
    let addr = line
        .strip_prefix("listening on ")
        .context("unexpected first line")?
        .to_string();
    Ok((child, addr))
}

async fn start_kinesalite(cli: &PathBuf) -> anyhow::Result<(Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new("node")
        .arg(cli)
        .args([
            "--port",
            &port.to_string(),
            "--createStreamMs",
            "0",
            "--shardLimit",
            "100",
        ])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start kinesalite with node")?;
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(&addr).await.is_err() {
        if Instant::now() > deadline {
            bail!("kinesalite did not start listening");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((child, addr))
}

fn report(name: &str, result: &Throughput) {
    println!(
        "{name:<28} put {:>12.0} records/s   get {:>12.0} records/s   ({} records)",
        result.put_records_per_sec, result.get_records_per_sec, result.records
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    println!(
        "http-bench: {} producers x PutRecords of {} x {} B for {} s, then one GetRecords reader per shard ({} shards)",
        flags.producers, flags.batch, flags.record_bytes, flags.seconds, flags.shards
    );

    let (mut memory_process, memory_addr) = start_broker(&[]).await?;
    let memory = run_load(&flags, &memory_addr).await?;
    report("kinesis-broker (memory)", &memory);
    memory_process.kill().await?;

    if flags.durable {
        std::fs::create_dir_all(&flags.data_root)?;
        let dir = flags.data_root.join(format!("run-{}", std::process::id()));
        let dir_text = dir.to_string_lossy().to_string();
        let (mut durable_process, durable_addr) =
            start_broker(&["--data-dir", &dir_text, "--fsync", "always"]).await?;
        let durable = run_load(&flags, &durable_addr).await?;
        report("kinesis-broker (fsync always)", &durable);
        durable_process.kill().await?;
        let _ = std::fs::remove_dir_all(&dir);
    }

    match &flags.kinesalite {
        Some(cli) if cli.exists() => {
            let (mut kinesalite_process, kinesalite_addr) = start_kinesalite(cli).await?;
            let kinesalite = run_load(&flags, &kinesalite_addr).await?;
            report("kinesalite", &kinesalite);
            kinesalite_process.kill().await?;
            println!(
                "ratio memory/kinesalite: put {:.1}x, get {:.1}x",
                memory.put_records_per_sec / kinesalite.put_records_per_sec,
                memory.get_records_per_sec / kinesalite.get_records_per_sec
            );
        }
        Some(cli) => println!("kinesalite skipped: {} does not exist", cli.display()),
        None => println!("kinesalite skipped: pass --kinesalite PATH/TO/kinesalite/cli.js"),
    }
    Ok(())
}
