//! A [`StreamClient`] for any Kinesis HTTP endpoint: this project's `kinesis-broker`, real
//! Kinesis, or another emulator. JSON protocol (`application/x-amz-json-1.1`), SigV4-signed with
//! `aws-sigv4`, `SubscribeToShard` read as an event stream.

use super::credentials::{CredentialsSource, StaticCredentials};
use super::eventstream::{EventMessage, EventStreamDecoder};
use super::retry::RetryConfig;
use crate::error::WorkerError;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use backon::Retryable;
use bytes::Bytes;
use futures::StreamExt;
use kcl_core::kinesis::wire;
use kcl_core::kinesis::{
    ConsumerDescription, GetRecordsOutput, KinesisError, KinesisErrorKind, Shard, ShardFilter,
    ShardId, StartingPosition, StreamSummary, SubscribeToShardEvent,
};
use kcl_core::stream_client::{StreamClient, Subscription};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tracing::Instrument;

/// Configuration of an [`HttpStreamClient`].
#[derive(Debug, Clone)]
pub struct HttpClientConfig {
    /// The endpoint URL, e.g. `http://127.0.0.1:4567` or `https://kinesis.us-east-1.amazonaws.com`.
    pub endpoint: String,
    /// The signing region; `None` reads `AWS_REGION` / `AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// Where signing credentials come from; `None` reads `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` once. With the `aws` feature,
    /// `client::aws_client_config` sets the standard AWS chain here.
    pub credentials: Option<SharedCredentialsProvider>,
    /// Time limit of one request (not of a `SubscribeToShard` stream).
    pub request_timeout: Duration,
    /// Time limit to establish a connection.
    pub connect_timeout: Duration,
    /// Retry policy for transient failures.
    pub retry: RetryConfig,
}

impl HttpClientConfig {
    /// A configuration for `endpoint` with default timeouts and environment credentials.
    pub fn new(endpoint: impl Into<String>) -> Self {
        HttpClientConfig {
            endpoint: endpoint.into(),
            region: None,
            credentials: None,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            retry: RetryConfig::default(),
        }
    }

    /// Sets explicit credentials.
    pub fn with_credentials(mut self, credentials: StaticCredentials) -> Self {
        self.credentials = Some(credentials.into_provider());
        self
    }

    /// Sets a credentials provider (asked on the first request and again before what it gave
    /// expires).
    pub fn with_credentials_provider(
        mut self,
        provider: impl ProvideCredentials + 'static,
    ) -> Self {
        self.credentials = Some(SharedCredentialsProvider::new(provider));
        self
    }

    /// Sets the signing region.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }
}

/// A Kinesis JSON-protocol client.
#[derive(Debug, Clone)]
pub struct HttpStreamClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    region: String,
    credentials: CredentialsSource,
    request_timeout: Duration,
    retry: RetryConfig,
}

/// A failed attempt, classified for retrying.
#[derive(Debug)]
enum CallError {
    /// The service answered with an error.
    Service { status: u16, error: KinesisError },
    /// No (complete) answer: connection refused/reset, timeout, unreadable body.
    Transport(String),
    /// No credentials to sign with (the provider failed); not retried here, the provider
    /// retries what it can itself.
    Credentials(String),
}

impl CallError {
    fn is_retryable(&self) -> bool {
        match self {
            CallError::Transport(_) => true,
            CallError::Credentials(_) => false,
            CallError::Service { status, error } => *status >= 500 || error.is_retryable(),
        }
    }

    fn into_kinesis(self) -> KinesisError {
        match self {
            CallError::Service { error, .. } => error,
            CallError::Transport(message) | CallError::Credentials(message) => {
                KinesisError::new(KinesisErrorKind::Other, message)
            }
        }
    }
}

const TARGET_PREFIX: &str = "Kinesis_20131202.";

/// An AWS JSON 1.1 service reachable on the client's endpoint: its `X-Amz-Target` prefix and
/// SigV4 signing name (Kinesis, or e.g. Firehose on `kinesis-broker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonService {
    /// The `X-Amz-Target` prefix with its trailing dot (`Kinesis_20131202.`).
    pub target_prefix: &'static str,
    /// The SigV4 service name of the credential scope (`kinesis`).
    pub signing_name: &'static str,
}

impl JsonService {
    /// Kinesis Data Streams.
    pub const KINESIS: JsonService = JsonService {
        target_prefix: TARGET_PREFIX,
        signing_name: "kinesis",
    };
    /// Amazon Data Firehose.
    pub const FIREHOSE: JsonService = JsonService {
        target_prefix: "Firehose_20150804.",
        signing_name: "firehose",
    };
}
const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";

impl HttpStreamClient {
    /// A client for `config.endpoint`. Fails with a clear error if the endpoint is not an
    /// http(s) URL with a host or no credentials are configured or in the environment.
    pub fn new(config: HttpClientConfig) -> Result<Self, WorkerError> {
        let endpoint = reqwest::Url::parse(&config.endpoint).map_err(|error| {
            WorkerError::invalid_config(
                "endpoint",
                format!("{:?} is not a URL: {error}", config.endpoint),
            )
        })?;
        let scheme_ok = matches!(endpoint.scheme(), "http" | "https");
        if !scheme_ok || endpoint.host_str().is_none() {
            return Err(WorkerError::invalid_config(
                "endpoint",
                format!(
                    "{:?} must be an http:// or https:// URL with a host",
                    config.endpoint
                ),
            ));
        }
        let credentials = config
            .credentials
            .clone()
            .or_else(|| StaticCredentials::from_env().map(StaticCredentials::into_provider))
            .ok_or_else(|| {
                WorkerError::invalid_config(
                    "credentials",
                    "none configured and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not set",
                )
            })?;
        let region = config
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .unwrap_or_else(|| "us-east-1".to_owned());
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|error| WorkerError::invalid_config("endpoint", error.to_string()))?;
        let credentials = CredentialsSource::new(credentials);
        Ok(HttpStreamClient {
            inner: Arc::new(Inner {
                http,
                endpoint,
                region,
                credentials,
                request_timeout: config.request_timeout,
                retry: config.retry,
            }),
        })
    }

    /// Calls any Kinesis operation (e.g. `PutRecords`, `CreateStream`) with a JSON body,
    /// signed and retried like every other call, and returns the JSON answer.
    pub async fn call_json(&self, operation: &str, body: Value) -> Result<Value, KinesisError> {
        self.call(operation, &body).await
    }

    /// Calls `operation` of another JSON service on the same endpoint (e.g.
    /// [`JsonService::FIREHOSE`]), signed and retried as the Kinesis calls are.
    pub async fn call_service_json(
        &self,
        service: JsonService,
        operation: &str,
        body: Value,
    ) -> Result<Value, KinesisError> {
        self.call_service(service, operation, &body).await
    }

    /// Calls `operation` with `body`, retrying transient failures, and decodes the answer.
    async fn call<T: DeserializeOwned>(
        &self,
        operation: &str,
        body: &(impl Serialize + Sync),
    ) -> Result<T, KinesisError> {
        self.call_service(JsonService::KINESIS, operation, body)
            .await
    }

    /// Calls `operation` of `service` with `body`, retrying transient failures.
    async fn call_service<T: DeserializeOwned>(
        &self,
        service: JsonService,
        operation: &str,
        body: &(impl Serialize + Sync),
    ) -> Result<T, KinesisError> {
        let body = encode_body(operation, body)?;
        let attempt = || async {
            let response = self.send_to(service, operation, body.clone(), true).await?;
            let bytes = response.bytes().await.map_err(|error| {
                CallError::Transport(format!("reading {operation} response: {error}"))
            })?;
            serde_json::from_slice::<T>(&bytes).map_err(|error| CallError::Service {
                status: 200,
                error: KinesisError::new(
                    KinesisErrorKind::Other,
                    format!("unreadable {operation} response: {error}"),
                ),
            })
        };
        attempt
            .retry(self.inner.retry.backoff())
            .when(CallError::is_retryable)
            .notify(|error, delay| {
                tracing::debug!(operation, ?error, ?delay, "retrying kinesis call");
            })
            .await
            .map_err(CallError::into_kinesis)
    }

    /// Sends one signed request; an error status becomes a [`CallError::Service`].
    async fn send(
        &self,
        operation: &str,
        body: Bytes,
        with_timeout: bool,
    ) -> Result<reqwest::Response, CallError> {
        self.send_to(JsonService::KINESIS, operation, body, with_timeout)
            .await
    }

    /// Sends one signed request to `service`.
    async fn send_to(
        &self,
        service: JsonService,
        operation: &str,
        body: Bytes,
        with_timeout: bool,
    ) -> Result<reqwest::Response, CallError> {
        let target = format!("{}{operation}", service.target_prefix);
        let now = SystemTime::now();
        let credentials = self
            .inner
            .credentials
            .credentials_at(now)
            .await
            .map_err(CallError::Credentials)?;
        let headers = self.sign(&credentials, now, service.signing_name, &target, &body)?;
        let mut request = self
            .inner
            .http
            .post(self.inner.endpoint.clone())
            .header("content-type", JSON_CONTENT_TYPE)
            .header("x-amz-target", &target)
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if with_timeout {
            request = request.timeout(self.inner.request_timeout);
        }
        let response = request
            .send()
            .await
            .map_err(|error| CallError::Transport(format!("{operation}: {error}")))?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(response);
        }
        let header_type = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await.unwrap_or_default();
        let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let error_type = parsed
            .get("__type")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or(header_type)
            .unwrap_or_default();
        let message = parsed
            .get("message")
            .or_else(|| parsed.get("Message"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let mut kind = KinesisErrorKind::from_aws_type(&error_type);
        if kind == KinesisErrorKind::Other && status >= 500 {
            kind = KinesisErrorKind::InternalFailure;
        }
        let message = if message.is_empty() {
            format!("{operation} failed with HTTP {status} {error_type}")
        } else if kind == KinesisErrorKind::Other && !error_type.is_empty() {
            // No kind of ours names it: keep the service's error type in the message.
            let short_type = error_type.rsplit('#').next().unwrap_or(&error_type);
            format!("{short_type}: {message}")
        } else {
            message
        };
        Err(CallError::Service {
            status,
            error: KinesisError::new(kind, message),
        })
    }

    /// SigV4 headers for a request to the endpoint.
    fn sign(
        &self,
        credentials: &Credentials,
        now: SystemTime,
        signing_name: &str,
        target: &str,
        body: &[u8],
    ) -> Result<Vec<(String, String)>, CallError> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        use aws_sigv4::sign::v4;
        let identity = credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.inner.region)
            .name(signing_name)
            .time(now)
            .settings(SigningSettings::default())
            .build()
            .map_err(|error| CallError::Transport(format!("signing: {error}")))?
            .into();
        let request_headers = [
            ("content-type", JSON_CONTENT_TYPE),
            ("x-amz-target", target),
        ];
        let signable = SignableRequest::new(
            "POST",
            self.inner.endpoint.as_str(),
            request_headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|error| CallError::Transport(format!("signing: {error}")))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|error| CallError::Transport(format!("signing: {error}")))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect())
    }

    /// The ARN of `stream_name`.
    async fn stream_arn(&self, stream_name: &str) -> Result<String, KinesisError> {
        Ok(self.describe_stream_summary(stream_name).await?.stream_arn)
    }
}

fn protocol_error(message: impl Into<String>) -> KinesisError {
    KinesisError::new(KinesisErrorKind::Other, message)
}

#[async_trait::async_trait]
impl StreamClient for HttpStreamClient {
    async fn describe_stream_summary(
        &self,
        stream_name: &str,
    ) -> Result<StreamSummary, KinesisError> {
        let response: wire::DescribeStreamSummaryResponse = self
            .call(
                "DescribeStreamSummary",
                &wire::StreamNameRequest::named(stream_name),
            )
            .await?;
        Ok(response.into())
    }

    async fn list_shards(
        &self,
        stream_name: &str,
        filter: Option<ShardFilter>,
    ) -> Result<Vec<Shard>, KinesisError> {
        let mut shards = Vec::new();
        let mut request = wire::ListShardsRequest::first_page(stream_name, filter.as_ref());
        loop {
            let page: wire::ListShardsResponse = self.call("ListShards", &request).await?;
            shards.extend(page.shards.into_iter().map(Shard::from));
            match page.next_token {
                Some(token) if !token.is_empty() => {
                    request = wire::ListShardsRequest::next_page(token);
                }
                _ => return Ok(shards),
            }
        }
    }

    async fn get_shard_iterator(
        &self,
        stream_name: &str,
        shard_id: &ShardId,
        position: StartingPosition,
    ) -> Result<String, KinesisError> {
        let request = wire::GetShardIteratorRequest::new(stream_name, shard_id, position);
        let response: wire::GetShardIteratorResponse =
            self.call("GetShardIterator", &request).await?;
        Ok(response.shard_iterator)
    }

    async fn get_records(
        &self,
        shard_iterator: &str,
        limit: u32,
    ) -> Result<GetRecordsOutput, KinesisError> {
        let request = wire::GetRecordsRequest {
            shard_iterator: Some(shard_iterator.to_owned()),
            limit: Some(i64::from(limit)),
            stream_arn: None,
        };
        let response: wire::GetRecordsResponse = self.call("GetRecords", &request).await?;
        Ok(response.into())
    }

    async fn register_stream_consumer(
        &self,
        stream_name: &str,
        consumer_name: &str,
    ) -> Result<ConsumerDescription, KinesisError> {
        let stream_arn = self.stream_arn(stream_name).await?;
        let registered: Result<wire::RegisterStreamConsumerResponse, KinesisError> = self
            .call(
                "RegisterStreamConsumer",
                &wire::RegisterStreamConsumerRequest {
                    stream_arn: Some(stream_arn.clone()),
                    consumer_name: Some(consumer_name.to_owned()),
                },
            )
            .await;
        match registered {
            Ok(response) => Ok(response.consumer.into_description(&stream_arn)),
            Err(error) if error.kind == KinesisErrorKind::ResourceInUse => {
                let request = wire::ConsumerRefRequest {
                    stream_arn: Some(stream_arn.clone()),
                    consumer_name: Some(consumer_name.to_owned()),
                    consumer_arn: None,
                };
                let response: wire::DescribeStreamConsumerResponse =
                    self.call("DescribeStreamConsumer", &request).await?;
                Ok(response.consumer_description.into_description(&stream_arn))
            }
            Err(error) => Err(error),
        }
    }

    async fn subscribe_to_shard(
        &self,
        consumer_arn: &str,
        shard_id: &ShardId,
        position: StartingPosition,
    ) -> Result<Subscription, KinesisError> {
        let request = wire::SubscribeToShardRequest {
            consumer_arn: Some(consumer_arn.to_owned()),
            shard_id: Some(shard_id.as_str().to_owned()),
            starting_position: Some(position.into()),
        };
        let body = encode_body("SubscribeToShard", &request)?;
        let attempt = || async {
            let response = self.send("SubscribeToShard", body.clone(), false).await?;
            let mut events = response.bytes_stream();
            let mut decoder = EventStreamDecoder::new();
            // The first message must be the initial response; anything else is an error.
            let first = loop {
                if let Some(message) = decoder
                    .next_message()
                    .map_err(|error| CallError::Transport(error.to_string()))?
                {
                    break message;
                }
                match events.next().await {
                    Some(Ok(chunk)) => decoder.push(&chunk),
                    Some(Err(error)) => {
                        return Err(CallError::Transport(format!("SubscribeToShard: {error}")));
                    }
                    None => {
                        return Err(CallError::Transport(
                            "SubscribeToShard stream ended before its initial response".to_owned(),
                        ));
                    }
                }
            };
            if let Some(error) = exception_of(&first) {
                return Err(CallError::Service { status: 400, error });
            }
            Ok((events, decoder))
        };
        let (events, decoder) = attempt
            .retry(self.inner.retry.backoff())
            .when(CallError::is_retryable)
            .await
            .map_err(CallError::into_kinesis)?;
        let (sender, receiver) = mpsc::channel(4);
        let reader = tokio::spawn(pump_events(events, decoder, sender).in_current_span());
        Ok(Subscription::with_reader(receiver, reader))
    }
}

/// The JSON body of a request (the wire shapes always encode; the error names the operation if
/// one ever did not).
fn encode_body(operation: &str, body: &impl Serialize) -> Result<Bytes, KinesisError> {
    serde_json::to_vec(body)
        .map(Bytes::from)
        .map_err(|error| protocol_error(format!("encoding the {operation} request: {error}")))
}

/// The error carried by an exception message, if `message` is one.
fn exception_of(message: &EventMessage) -> Option<KinesisError> {
    let message_type = message.header(":message-type").unwrap_or("event");
    if message_type == "event" {
        return None;
    }
    let error_type = message
        .header(":exception-type")
        .or_else(|| message.header(":error-code"))
        .unwrap_or("InternalFailure");
    let parsed: Value = serde_json::from_slice(&message.payload).unwrap_or(Value::Null);
    let text = parsed
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| message.header(":error-message"))
        .unwrap_or("subscription failed");
    Some(KinesisError::new(
        KinesisErrorKind::from_aws_type(error_type),
        text,
    ))
}

fn decode_event(message: &EventMessage) -> Result<Option<SubscribeToShardEvent>, KinesisError> {
    if let Some(error) = exception_of(message) {
        return Err(error);
    }
    if message.header(":event-type") != Some("SubscribeToShardEvent") {
        return Ok(None);
    }
    let event: wire::SubscribeToShardEventPayload = serde_json::from_slice(&message.payload)
        .map_err(|error| protocol_error(format!("unreadable SubscribeToShardEvent: {error}")))?;
    Ok(Some(event.into()))
}

/// Forwards decoded events to the subscription until the stream ends, fails, or the
/// subscription is dropped.
async fn pump_events<S, E>(
    mut events: S,
    mut decoder: EventStreamDecoder,
    sender: mpsc::Sender<Result<SubscribeToShardEvent, KinesisError>>,
) where
    S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    loop {
        loop {
            let message = match decoder.next_message() {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(error) => {
                    let _ = sender.send(Err(protocol_error(error.to_string()))).await;
                    return;
                }
            };
            match decode_event(&message) {
                Ok(None) => continue,
                Ok(Some(event)) => {
                    if sender.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
                Err(error) => {
                    let _ = sender.send(Err(error)).await;
                    return;
                }
            }
        }
        let chunk = tokio::select! {
            chunk = events.next() => chunk,
            () = sender.closed() => return,
        };
        match chunk {
            Some(Ok(chunk)) => decoder.push(&chunk),
            Some(Err(error)) => {
                let _ = sender
                    .send(Err(protocol_error(format!(
                        "subscription stream failed: {error}"
                    ))))
                    .await;
                return;
            }
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcl_core::kinesis::EpochMillis;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves one canned response per connection, recording each request's head.
    async fn canned_server(
        responses: Vec<(u16, &'static str)>,
    ) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let mut heads = Vec::new();
            for (status, body) in responses {
                let (mut socket, _) = listener.accept().await.expect("accept");
                let mut received = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let read = socket.read(&mut chunk).await.expect("read");
                    received.extend_from_slice(&chunk[..read]);
                    let text = String::from_utf8_lossy(&received).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|line| {
                                line.to_ascii_lowercase()
                                    .strip_prefix("content-length: ")
                                    .map(str::to_owned)
                            })
                            .and_then(|value| value.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if received.len() >= end + 4 + length {
                            heads.push(text[..end].to_owned());
                            break;
                        }
                    }
                    if read == 0 {
                        break;
                    }
                }
                let reason = if status == 200 { "OK" } else { "Bad Request" };
                let response = format!(
                    "HTTP/1.1 {status} {reason}\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(response.as_bytes()).await.expect("write");
                socket.shutdown().await.ok();
            }
            heads
        });
        (endpoint, task)
    }

    fn client(endpoint: &str, max_retries: usize) -> HttpStreamClient {
        let mut config = HttpClientConfig::new(endpoint)
            .with_region("eu-west-1")
            .with_credentials(StaticCredentials {
                access_key_id: "AKIDTEST".to_owned(),
                secret_access_key: "secret".to_owned(),
                session_token: None,
            });
        config.retry = RetryConfig {
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_retries,
        };
        HttpStreamClient::new(config).expect("client")
    }

    const SUMMARY: &str = r#"{"StreamDescriptionSummary":{"StreamName":"s","StreamARN":"arn:aws:kinesis:eu-west-1:000000000000:stream/s","StreamStatus":"ACTIVE","RetentionPeriodHours":24,"OpenShardCount":2,"ConsumerCount":0,"StreamCreationTimestamp":1700000000.5}}"#;
    const THROTTLED: &str = r#"{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded for shard"}"#;
    const NOT_FOUND: &str = r#"{"__type":"ResourceNotFoundException","message":"Stream s under account 000000000000 not found."}"#;

    #[tokio::test]
    async fn throttling_is_retried_and_requests_are_signed() {
        let (endpoint, server) =
            canned_server(vec![(400, THROTTLED), (500, "{}"), (200, SUMMARY)]).await;
        let summary = client(&endpoint, 3)
            .describe_stream_summary("s")
            .await
            .expect("summary after retries");
        assert_eq!(summary.open_shard_count, 2);
        assert_eq!(
            summary.stream_creation_timestamp,
            EpochMillis(1_700_000_000_500)
        );
        let heads = server.await.expect("server");
        assert_eq!(heads.len(), 3);
        for head in heads {
            let head = head.to_ascii_lowercase();
            assert!(
                head.contains("x-amz-target: kinesis_20131202.describestreamsummary"),
                "{head}"
            );
            assert!(
                head.contains("authorization: aws4-hmac-sha256 credential=akidtest/"),
                "{head}"
            );
            assert!(head.contains("/eu-west-1/kinesis/aws4_request"), "{head}");
        }
    }

    #[tokio::test]
    async fn client_errors_are_not_retried_and_keep_their_kind() {
        let (endpoint, server) = canned_server(vec![(400, NOT_FOUND)]).await;
        let error = client(&endpoint, 3)
            .describe_stream_summary("s")
            .await
            .expect_err("not found");
        assert_eq!(error.kind, KinesisErrorKind::ResourceNotFound);
        assert!(error.message.contains("not found"));
        assert_eq!(server.await.expect("server").len(), 1);
    }

    #[tokio::test]
    async fn retries_are_bounded() {
        let (endpoint, _server) = canned_server(vec![(400, THROTTLED), (400, THROTTLED)]).await;
        let error = client(&endpoint, 1)
            .describe_stream_summary("s")
            .await
            .expect_err("throttled");
        assert_eq!(error.kind, KinesisErrorKind::ProvisionedThroughputExceeded);
    }

    #[test]
    fn bad_configuration_is_rejected_naming_the_field() {
        let credentials = StaticCredentials {
            access_key_id: "a".to_owned(),
            secret_access_key: "b".to_owned(),
            session_token: None,
        };
        for endpoint in ["not a url", "ftp://host", "unix:/tmp/socket"] {
            let error = HttpStreamClient::new(
                HttpClientConfig::new(endpoint).with_credentials(credentials.clone()),
            )
            .expect_err(endpoint);
            assert!(error.to_string().contains("endpoint"), "{error}");
        }
    }
}
