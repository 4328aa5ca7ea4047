//! Starts a local DynamoDB-compatible server (moto, else dynalite) for tests, on a free loopback
//! port, and stops it on drop.
//!
//! Self-contained (std only) so any test crate can include it with
//! `#[path = "../../kcl-core/tests/support/dynamodb_local.rs"] mod dynamodb_local;`.
//! When neither server is installed, [`LocalDynamoDb::start`] returns `Ok(None)` after a loud
//! message, unless `KCL_REQUIRE_DYNAMODB=1` is set (CI), in which case it panics.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer after it was spawned (moto imports a lot of Python on a
/// loaded 2-core machine).
const STARTUP_DEADLINE: Duration = Duration::from_secs(90);
/// How often to try to start on a fresh port when the chosen one was taken meanwhile.
const START_ATTEMPTS: usize = 3;
/// moto's server, with every request handled under one lock. moto checks a write's condition
/// and then applies it without a lock, so two concurrent conditional writes to the same item can
/// both succeed on its threaded server; real DynamoDB applies each conditional write atomically.
/// Serializing requests restores that guarantee (it is stricter than DynamoDB's per-item
/// isolation, which only makes tests slower, never wrong).
const MOTO_SERIALIZED: &str = r#"
import sys, threading
from werkzeug.serving import run_simple
from moto.server import DomainDispatcherApplication, create_backend_app
app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()
def serialized(environ, start_response):
    with lock:
        return list(app(environ, start_response))
run_simple(sys.argv[1], int(sys.argv[2]), serialized, threaded=True)
"#;
/// Environment variable that turns a missing server into a test failure.
const REQUIRE_ENV: &str = "KCL_REQUIRE_DYNAMODB";

/// A running local DynamoDB-compatible server; the child process is killed on drop.
#[derive(Debug)]
pub struct LocalDynamoDb {
    child: Child,
    port: u16,
    kind: ServerKind,
}

/// Which server implementation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// moto's server mode (`pip install 'moto[server]'`), requests serialized.
    Moto,
    /// dynalite (`npm install -g dynalite`).
    Dynalite,
}

impl LocalDynamoDb {
    /// Starts a server on a free loopback port and waits until it answers. `Ok(None)` with a loud
    /// message when neither moto nor dynalite is installed (a panic when `KCL_REQUIRE_DYNAMODB=1`).
    pub fn start() -> std::io::Result<Option<LocalDynamoDb>> {
        let Some(kind) = installed_server() else {
            let message = "neither moto (`python3 -m pip install 'moto[server]'`) nor dynalite \
                           (`npm install -g dynalite`) is installed";
            if std::env::var(REQUIRE_ENV).is_ok_and(|value| value == "1") {
                panic!("{REQUIRE_ENV}=1 but {message}");
            }
            // Straight to the stderr handle: libtest captures `eprintln!` of passing tests.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!! SKIPPING DynamoDB test: {message} !!!!!\n"
            );
            return Ok(None);
        };
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match start_on_free_port(kind) {
                Ok(server) => return Ok(Some(server)),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| std::io::Error::other("server did not start")))
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The endpoint URL, `http://127.0.0.1:PORT`.
    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Which implementation is running.
    pub fn kind(&self) -> ServerKind {
        self.kind
    }
}

impl Drop for LocalDynamoDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command_succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn installed_server() -> Option<ServerKind> {
    if command_succeeds("python3", &["-c", "import moto.server, flask"]) {
        return Some(ServerKind::Moto);
    }
    if command_succeeds("dynalite", &["--help"]) {
        return Some(ServerKind::Dynalite);
    }
    None
}

fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

fn spawn(kind: ServerKind, port: u16) -> std::io::Result<Child> {
    let port_text = port.to_string();
    let mut command = match kind {
        ServerKind::Moto => {
            let mut command = Command::new("python3");
            command.args(["-c", MOTO_SERIALIZED, "127.0.0.1", &port_text]);
            command
        }
        ServerKind::Dynalite => {
            let mut command = Command::new("dynalite");
            command.args(["--host", "127.0.0.1", "--port", &port_text]);
            command
        }
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

fn start_on_free_port(kind: ServerKind) -> std::io::Result<LocalDynamoDb> {
    let port = free_port()?;
    let child = spawn(kind, port)?;
    // From here on, Drop kills the child whatever happens.
    let mut server = LocalDynamoDb { child, port, kind };
    let deadline = Instant::now() + STARTUP_DEADLINE;
    loop {
        if answers_dynamodb(port) {
            return Ok(server);
        }
        if let Some(status) = server.child.try_wait()? {
            return Err(std::io::Error::other(format!(
                "{kind:?} on port {port} exited before answering: {status}"
            )));
        }
        if Instant::now() > deadline {
            return Err(std::io::Error::other(format!(
                "{kind:?} on port {port} did not answer within {STARTUP_DEADLINE:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether a DynamoDB `ListTables` call on the port gets an HTTP 200 answer.
fn answers_dynamodb(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let body = "{}";
    let request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-amz-json-1.0\r\n\
         X-Amz-Target: DynamoDB_20120810.ListTables\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20200101/us-east-1/dynamodb/aws4_request, \
         SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    response.starts_with(b"HTTP/1.1 200") || response.starts_with(b"HTTP/1.0 200")
}
