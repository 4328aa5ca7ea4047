//! The Kinesis HTTP protocol over the [engine](crate::engine): what boto3, the AWS CLI and the
//! AWS SDKs speak.
//!
//! - `POST /` with `X-Amz-Target: Kinesis_20131202.<Operation>`, bodies in JSON
//!   (`application/x-amz-json-1.1`) or CBOR (`application/x-amz-cbor-1.1`), answered in the
//!   request's format (the crate-private `codec` and `wire` modules).
//! - Errors as AWS shapes them: status, `x-amzn-ErrorType`, `{"__type","message"}`
//!   ([`ServerError`]); every answer carries `x-amzn-RequestId`.
//! - SigV4: as AWS, every request must carry a well-formed signature (`Authorization`
//!   header or presigned query): none is `MissingAuthenticationTokenException`, a malformed
//!   one `IncompleteSignatureException`. The signature itself is checked only with
//!   [`ServerOptions::auth`] (against [`AuthKeys`]); [`ServerOptions::allow_unsigned`] accepts
//!   unsigned requests for local use.
//! - The caller's region: the region of the request's credential scope picks the engine
//!   ([`Regions`]); streams are per region as in AWS.
//! - CORS as AWS answers it: `OPTIONS` preflights with `Origin`, and
//!   `Access-Control-Allow-Origin` / `-Expose-Headers` on answers to requests with `Origin`
//!   (the crate-private `cors` module).
//! - `SubscribeToShard` answers an `application/vnd.amazon.eventstream`
//!   ([`kcl_core::eventstream`]).
//! - `GET /health` answers `{"status":"ok"}`.
//! - With feature `tls`, `spawn_tls` serves HTTPS (rustls) instead of plain HTTP.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use broker::engine::{Broker, BrokerConfig};
//! use broker::server::{ServerOptions, spawn};
//!
//! let broker = Broker::new(BrokerConfig::default());
//! let server = spawn(broker, ServerOptions::default(), "127.0.0.1:0".parse().unwrap()).await?;
//! println!("listening on {}", server.local_addr());
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub(crate) mod codec;
pub(crate) mod cors;
pub(crate) mod error;
pub mod extension;
pub mod metrics;
pub mod regions;
pub(crate) mod request_check;
pub(crate) mod shapes;
pub(crate) mod sigv4;
pub(crate) mod wire;
pub(crate) mod wire_account;

pub use error::{MAX_BODY_BYTES, ServerError};
pub use extension::{
    ExtensionError, ExtensionFormat, ExtensionRequest, ExtensionService, Extensions,
};
pub use regions::{OpenRegionError, RegionOpener, Regions};
pub use sigv4::{AuthKeys, ParseAuthKeysError, is_region_name};

use crate::engine::Broker;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use codec::WireFormat;
use futures::StreamExt;
use kcl_core::eventstream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The `X-Amz-Target` prefix of every Kinesis operation.
pub const TARGET_PREFIX: &str = "Kinesis_20131202.";

/// How the server treats requests.
///
/// The default is AWS's behaviour: every request must be signed (a well-formed SigV4
/// `Authorization` header or presigned query), but any access key and secret pass.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Verify SigV4 signatures against these keys; `None` checks only that a request is
    /// signed, with any key.
    pub auth: Option<AuthKeys>,
    /// Accept requests without any signature (no `Authorization` header), as a local
    /// convenience; they are served in the default region. `false` (the default) answers
    /// them `MissingAuthenticationTokenException` as AWS does. Ignored when [`Self::auth`]
    /// is set: then every request must be signed with one of its keys.
    pub allow_unsigned: bool,
    /// Other AWS JSON services answered on this port by `X-Amz-Target` prefix (the
    /// [`extension`] hook), e.g. the Firehose API.
    pub extensions: Extensions,
}

/// What every request handler shares.
#[derive(Debug)]
pub struct ServerState {
    regions: Regions,
    options: ServerOptions,
    /// Cancelled at shutdown: ends open `SubscribeToShard` streams so shutdown can finish.
    shutdown: CancellationToken,
}

impl ServerState {
    /// State serving `regions` (a [`Broker`] converts: its region, plus in-memory engines for
    /// regions opened later) with `options`; `shutdown` ends event streams when cancelled.
    pub fn new(
        regions: impl Into<Regions>,
        options: ServerOptions,
        shutdown: CancellationToken,
    ) -> Self {
        ServerState {
            regions: regions.into(),
            options,
            shutdown,
        }
    }
}

/// The HTTP application: `GET /health` and the Kinesis protocol on every `POST`.
pub fn router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .fallback(handle)
        .with_state(state)
}

async fn health() -> Response {
    let mut response = (StatusCode::OK, r#"{"status":"ok"}"#).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn request_id_header() -> HeaderValue {
    // A UUID is always a valid header value.
    HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("00000000-0000-0000-0000-000000000000"))
}

fn error_response(format: WireFormat, error: &ServerError) -> Response {
    let status =
        StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, format.error_body(error)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(
        "x-amzn-errortype",
        HeaderValue::from_static(error.aws_type()),
    );
    response
}

fn success_response<T: Serialize>(format: WireFormat, value: &T) -> Result<Response, ServerError> {
    let body = format.encode(value)?;
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    Ok(response)
}

fn raw_response(format: WireFormat, body: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}

async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ServerError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(ServerError::RequestTooLarge);
    }
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|error| {
            let too_large =
                std::iter::successors(Some(&error as &(dyn std::error::Error + 'static)), |e| {
                    e.source()
                })
                .any(|e| e.to_string().contains("length limit"));
            if too_large {
                ServerError::RequestTooLarge
            } else {
                ServerError::Serialization(format!("could not read the request body: {error}"))
            }
        })
}

/// Verifies SigV4; large bodies are hashed on a blocking thread.
async fn verify_signature(
    parts: &axum::http::request::Parts,
    body: &Bytes,
    keys: &AuthKeys,
) -> Result<(), ServerError> {
    fn verify(
        method: &Method,
        uri: &axum::http::Uri,
        headers: &HeaderMap,
        body: &[u8],
        keys: &AuthKeys,
    ) -> Result<(), ServerError> {
        let request = sigv4::SignedRequest {
            method: method.as_str(),
            uri,
            headers,
            body,
        };
        sigv4::verify(request, keys, now_epoch_secs())
    }
    if body.len() < LARGE_BODY_BYTES {
        return verify(&parts.method, &parts.uri, &parts.headers, body, keys);
    }
    let (method, uri, headers) = (
        parts.method.clone(),
        parts.uri.clone(),
        parts.headers.clone(),
    );
    let (body, keys) = (body.clone(), keys.clone());
    tokio::task::spawn_blocking(move || verify(&method, &uri, &headers, &body, &keys))
        .await
        .map_err(|error| ServerError::InternalFailure(error.to_string()))?
}

fn now_epoch_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

/// Checks the request's signature as configured and answers the region it names.
async fn authenticate(
    state: &ServerState,
    parts: &axum::http::request::Parts,
    body: &Bytes,
) -> Result<Option<String>, ServerError> {
    if let Some(keys) = &state.options.auth {
        verify_signature(parts, body, keys).await?;
        return Ok(sigv4::credential_region(&parts.uri, &parts.headers));
    }
    if state.options.allow_unsigned {
        return Ok(sigv4::credential_region(&parts.uri, &parts.headers));
    }
    sigv4::require_signature(&parts.uri, &parts.headers).map(Some)
}

async fn handle(State(state): State<Arc<ServerState>>, request: Request) -> Response {
    let cross_origin = cors::has_origin(request.headers());
    if cross_origin && request.method() == Method::OPTIONS {
        return cors::preflight(request.headers());
    }
    let mut response = answer(&state, request).await;
    if cross_origin {
        cors::decorate(response.headers_mut());
    }
    response
}

async fn answer(state: &ServerState, request: Request) -> Response {
    if let Some((service, operation)) = extension_target(state, request.headers()) {
        return serve_extension(state, service, operation, request).await;
    }
    let (parts, body) = request.into_parts();
    let format = WireFormat::from_content_type(
        parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok()),
    );
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let operation = target.strip_prefix(TARGET_PREFIX).unwrap_or("").to_owned();
    let started = std::time::Instant::now();
    let outcome = async {
        let body = read_body(&parts.headers, body).await?;
        if parts.method != Method::POST || !is_known_operation(&operation) {
            return Err(ServerError::UnknownOperation(target.clone()));
        }
        let region = authenticate(state, &parts, &body).await?;
        let broker = state.regions.get(region.as_deref()).await?;
        dispatch(state, &broker, &operation, format, body).await
    }
    .await;
    let error_type = outcome.as_ref().err().map(ServerError::aws_type);
    // Series are labelled by operation: an unknown name (any header a client sends) is
    // counted as "unknown", so requests cannot add series without bound.
    let operation_label = if is_known_operation(&operation) {
        operation.as_str()
    } else {
        "unknown"
    };
    metrics::request_answered(operation_label, error_type, started.elapsed());
    let mut response = match outcome {
        Ok(response) => response,
        Err(error) => {
            if error.http_status() >= 500 {
                tracing::error!(operation = %operation, error = %error, "request failed");
            } else {
                tracing::debug!(operation = %operation, error_type = error.aws_type(), "request rejected");
            }
            error_response(format, &error)
        }
    };
    response
        .headers_mut()
        .insert("x-amzn-requestid", request_id_header());
    response
}

/// The registered extension whose `X-Amz-Target` prefix the request names, with the operation.
fn extension_target(
    state: &ServerState,
    headers: &HeaderMap,
) -> Option<(Arc<dyn ExtensionService>, String)> {
    let target = headers.get("x-amz-target")?.to_str().ok()?;
    let (service, operation) = state.options.extensions.route(target)?;
    Some((service, operation.to_owned()))
}

/// Serves an extension's request: the shared body limit and SigV4 check, then the service.
async fn serve_extension(
    state: &ServerState,
    service: Arc<dyn ExtensionService>,
    operation: String,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let format = match WireFormat::from_content_type(
        parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok()),
    ) {
        WireFormat::Json => ExtensionFormat::Json,
        WireFormat::Cbor => ExtensionFormat::Cbor,
    };
    let checked = async {
        let body = read_body(&parts.headers, body).await?;
        let region = authenticate(state, &parts, &body).await?;
        Ok::<_, ServerError>((body, region))
    }
    .await;
    let outcome = match checked {
        Ok((body, region)) => {
            let request = ExtensionRequest {
                operation: operation.clone(),
                body,
                region,
                format,
            };
            service.call(request).await
        }
        Err(error) => Err(ExtensionError {
            status: error.http_status(),
            error_type: error.aws_type().to_owned(),
            message: error.to_string(),
        }),
    };
    let (status, body, error_type) = match outcome {
        Ok(value) => (StatusCode::OK, value, None),
        Err(error) => {
            tracing::debug!(target_prefix = service.target_prefix(), operation = %operation,
                error_type = %error.error_type, "extension request rejected");
            let status =
                StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, error.body(), Some(error.error_type))
        }
    };
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Some(value) = error_type.and_then(|text| HeaderValue::from_str(&text).ok()) {
        headers.insert("x-amzn-errortype", value);
    }
    headers.insert("x-amzn-requestid", request_id_header());
    response
}

fn decode<T: DeserializeOwned>(format: WireFormat, body: &[u8]) -> Result<T, ServerError> {
    format.decode(body)
}

/// Bodies above this size are decoded on a blocking thread (decoding takes milliseconds).
const LARGE_BODY_BYTES: usize = 256 * 1024;

/// Answers with more records than this are encoded on a blocking thread.
const LARGE_RECORD_COUNT: usize = 1000;

async fn decode_off_thread<T: DeserializeOwned + Send + 'static>(
    format: WireFormat,
    body: Bytes,
) -> Result<T, ServerError> {
    if body.len() < LARGE_BODY_BYTES {
        return format.decode(&body);
    }
    tokio::task::spawn_blocking(move || format.decode(&body))
        .await
        .map_err(|error| ServerError::InternalFailure(error.to_string()))?
}

/// AWS's type and constraint checks of the body (`request_check`), on a blocking thread for
/// large bodies.
async fn check_off_thread(
    operation: &str,
    format: WireFormat,
    body: &Bytes,
) -> Result<(), ServerError> {
    if body.len() < LARGE_BODY_BYTES {
        return request_check::check(operation, format, body);
    }
    let (operation, body) = (operation.to_owned(), body.clone());
    tokio::task::spawn_blocking(move || request_check::check(&operation, format, &body))
        .await
        .map_err(|error| ServerError::InternalFailure(error.to_string()))?
}

/// Runs one operation and encodes its answer.
async fn dispatch(
    state: &ServerState,
    broker: &Broker,
    operation: &str,
    format: WireFormat,
    body_bytes: Bytes,
) -> Result<Response, ServerError> {
    use wire::*;
    let empty = Empty {};
    check_off_thread(operation, format, &body_bytes).await?;
    let body = body_bytes.as_ref();
    match operation {
        "PutRecords" => {
            let request: PutRecordsRequest = decode_off_thread(format, body_bytes).await?;
            let input = request.into_input()?;
            let sizes = metrics::put_records_sizes(&input);
            let output = broker.put_records(input).await?;
            metrics::records_put(&sizes, &output);
            success_response(format, &PutRecordsResponse::from(output))
        }
        "GetRecords" => {
            let input = decode::<GetRecordsRequest>(format, body)?.into_input()?;
            let (output, stream) = broker.get_records_of_stream(input).await?;
            if !output.records.is_empty() {
                metrics::records_got(stream, &output.records);
            }
            let large = output.records.len() > LARGE_RECORD_COUNT;
            let encode = move || match format {
                WireFormat::Json => Ok(raw_response(format, get_records_json(&output)?)),
                WireFormat::Cbor => success_response(format, &GetRecordsResponse::from(output)),
            };
            if large {
                tokio::task::spawn_blocking(encode)
                    .await
                    .map_err(|error| ServerError::InternalFailure(error.to_string()))?
            } else {
                encode()
            }
        }
        "PutRecord" => {
            let input = decode::<PutRecordRequest>(format, body)?.into_input()?;
            let (stream, bytes) = (
                input.stream.clone(),
                input.data.len() + input.partition_key.len(),
            );
            let output = broker.put_record(input).await?;
            metrics::record_put(&stream, bytes);
            success_response(format, &PutRecordResponse::from(output))
        }
        "GetShardIterator" => {
            let input = decode::<GetShardIteratorRequest>(format, body)?.into_input()?;
            let output = broker.get_shard_iterator(input).await?;
            success_response(
                format,
                &GetShardIteratorResponse {
                    shard_iterator: output.shard_iterator,
                },
            )
        }
        "CreateStream" => {
            let input = decode::<CreateStreamRequest>(format, body)?.into_input()?;
            broker.create_stream(input).await?;
            success_response(format, &empty)
        }
        "DeleteStream" => {
            let input = decode::<DeleteStreamRequest>(format, body)?.into_input()?;
            broker.delete_stream(input).await?;
            success_response(format, &empty)
        }
        "DescribeStream" => {
            let input = decode::<DescribeStreamRequest>(format, body)?.into_input()?;
            let output = broker.describe_stream(input).await?;
            success_response(format, &DescribeStreamResponse::from(output))
        }
        "DescribeStreamSummary" => {
            let stream = decode::<StreamOnlyRequest>(format, body)?.into_stream()?;
            let output = broker.describe_stream_summary(stream).await?;
            success_response(format, &DescribeStreamSummaryResponse::from(output))
        }
        "ListStreams" => {
            let input = decode::<ListStreamsRequest>(format, body)?.into_input()?;
            let output = broker.list_streams(input).await?;
            success_response(format, &ListStreamsResponse::from(output))
        }
        "ListShards" => {
            let input = decode::<ListShardsRequest>(format, body)?.into_input()?;
            let output = broker.list_shards(input).await?;
            success_response(format, &ListShardsResponse::from(output))
        }
        "DescribeLimits" => {
            let _: AnyObject = decode(format, body)?;
            let output = broker.describe_limits().await?;
            success_response(format, &DescribeLimitsResponse::from(output))
        }
        "SplitShard" => {
            let input = decode::<SplitShardRequest>(format, body)?.into_input()?;
            broker.split_shard(input).await?;
            success_response(format, &empty)
        }
        "MergeShards" => {
            let input = decode::<MergeShardsRequest>(format, body)?.into_input()?;
            broker.merge_shards(input).await?;
            success_response(format, &empty)
        }
        "UpdateShardCount" => {
            let input = decode::<UpdateShardCountRequest>(format, body)?.into_input()?;
            let output = broker.update_shard_count(input).await?;
            success_response(format, &UpdateShardCountResponse::from(output))
        }
        "IncreaseStreamRetentionPeriod" => {
            let input = decode::<RetentionPeriodRequest>(format, body)?.into_input()?;
            broker.increase_stream_retention_period(input).await?;
            success_response(format, &empty)
        }
        "DecreaseStreamRetentionPeriod" => {
            let input = decode::<RetentionPeriodRequest>(format, body)?.into_input()?;
            broker.decrease_stream_retention_period(input).await?;
            success_response(format, &empty)
        }
        "UpdateStreamMode" => {
            let input = decode::<UpdateStreamModeRequest>(format, body)?.into_input()?;
            broker.update_stream_mode(input).await?;
            success_response(format, &empty)
        }
        "AddTagsToStream" => {
            let input = decode::<AddTagsToStreamRequest>(format, body)?.into_input()?;
            broker.add_tags_to_stream(input).await?;
            success_response(format, &empty)
        }
        "RemoveTagsFromStream" => {
            let input = decode::<RemoveTagsFromStreamRequest>(format, body)?.into_input()?;
            broker.remove_tags_from_stream(input).await?;
            success_response(format, &empty)
        }
        "ListTagsForStream" => {
            let input = decode::<ListTagsForStreamRequest>(format, body)?.into_input()?;
            let output = broker.list_tags_for_stream(input).await?;
            success_response(format, &ListTagsForStreamResponse::from(output))
        }
        "TagResource" => {
            let input = decode::<TagResourceRequest>(format, body)?.into_input()?;
            broker.tag_resource(input).await?;
            success_response(format, &empty)
        }
        "UntagResource" => {
            let input = decode::<UntagResourceRequest>(format, body)?.into_input()?;
            broker.untag_resource(input).await?;
            success_response(format, &empty)
        }
        "ListTagsForResource" => {
            let arn = decode::<ListTagsForResourceRequest>(format, body)?.into_arn()?;
            let tags = broker.list_tags_for_resource(&arn).await?;
            success_response(format, &ListTagsForResourceResponse::from(tags))
        }
        "RegisterStreamConsumer" => {
            let input = decode::<RegisterStreamConsumerRequest>(format, body)?.into_input()?;
            let output = broker.register_stream_consumer(input).await?;
            success_response(format, &RegisterStreamConsumerResponse::from(output))
        }
        "DeregisterStreamConsumer" => {
            let consumer = decode::<ConsumerRefRequest>(format, body)?.into_ref();
            broker.deregister_stream_consumer(consumer).await?;
            success_response(format, &empty)
        }
        "DescribeStreamConsumer" => {
            let consumer = decode::<ConsumerRefRequest>(format, body)?.into_ref();
            let output = broker.describe_stream_consumer(consumer).await?;
            success_response(format, &DescribeStreamConsumerResponse::from(output))
        }
        "ListStreamConsumers" => {
            let input = decode::<ListStreamConsumersRequest>(format, body)?.into_input()?;
            let output = broker.list_stream_consumers(input).await?;
            success_response(format, &ListStreamConsumersResponse::from(output))
        }
        "SubscribeToShard" => {
            let input = decode::<SubscribeToShardRequest>(format, body)?.into_input()?;
            let subscription = broker.subscribe_to_shard(input).await?;
            Ok(event_stream_response(
                format,
                subscription,
                state.shutdown.clone(),
            ))
        }
        "StartStreamEncryption" => {
            let input = decode::<StreamEncryptionRequest>(format, body)?.into_input()?;
            broker.start_stream_encryption(input).await?;
            success_response(format, &empty)
        }
        "StopStreamEncryption" => {
            let input = decode::<StreamEncryptionRequest>(format, body)?.into_input()?;
            broker.stop_stream_encryption(input).await?;
            success_response(format, &empty)
        }
        "EnableEnhancedMonitoring" => {
            let input = decode::<EnhancedMonitoringRequest>(format, body)?.into_input()?;
            let output = broker.enable_enhanced_monitoring(input).await?;
            success_response(format, &EnhancedMonitoringResponse::from(output))
        }
        "DisableEnhancedMonitoring" => {
            let input = decode::<EnhancedMonitoringRequest>(format, body)?.into_input()?;
            let output = broker.disable_enhanced_monitoring(input).await?;
            success_response(format, &EnhancedMonitoringResponse::from(output))
        }
        "PutResourcePolicy" => {
            let input = decode::<PutResourcePolicyRequest>(format, body)?.into_input()?;
            broker.put_resource_policy(input).await?;
            success_response(format, &empty)
        }
        "GetResourcePolicy" => {
            let arn = decode::<ResourceArnRequest>(format, body)?.into_arn()?;
            let policy = broker.get_resource_policy(&arn).await?;
            success_response(format, &GetResourcePolicyResponse::from(policy))
        }
        "DeleteResourcePolicy" => {
            let arn = decode::<ResourceArnRequest>(format, body)?.into_arn()?;
            broker.delete_resource_policy(&arn).await?;
            success_response(format, &empty)
        }
        "DescribeAccountSettings" => {
            let _: AnyObject = decode(format, body)?;
            let settings = broker.describe_account_settings().await?;
            success_response(
                format,
                &wire_account::AccountSettingsResponse::from(settings),
            )
        }
        "UpdateAccountSettings" => {
            let status = decode::<wire_account::UpdateAccountSettingsRequest>(format, body)?
                .into_status()?;
            let settings = broker.update_account_settings(status).await?;
            success_response(
                format,
                &wire_account::AccountSettingsResponse::from(settings),
            )
        }
        "UpdateStreamWarmThroughput" => {
            let input = decode::<wire_account::UpdateStreamWarmThroughputRequest>(format, body)?
                .into_input()?;
            let output = broker.update_stream_warm_throughput(input).await?;
            success_response(
                format,
                &wire_account::UpdateStreamWarmThroughputResponse::from(output),
            )
        }
        "UpdateMaxRecordSize" => {
            let input =
                decode::<wire_account::UpdateMaxRecordSizeRequest>(format, body)?.into_input()?;
            broker.update_max_record_size(input).await?;
            success_response(format, &empty)
        }
        other => Err(ServerError::UnknownOperation(other.to_owned())),
    }
}

/// The operations [`dispatch`] answers. Any other target is an `UnknownOperationException`,
/// answered (as AWS does) before the signature is looked at.
const KNOWN_OPERATIONS: [&str; 39] = [
    "AddTagsToStream",
    "CreateStream",
    "DecreaseStreamRetentionPeriod",
    "DeleteResourcePolicy",
    "DeleteStream",
    "DeregisterStreamConsumer",
    "DescribeAccountSettings",
    "DescribeLimits",
    "DescribeStream",
    "DescribeStreamConsumer",
    "DescribeStreamSummary",
    "DisableEnhancedMonitoring",
    "EnableEnhancedMonitoring",
    "GetRecords",
    "GetResourcePolicy",
    "GetShardIterator",
    "IncreaseStreamRetentionPeriod",
    "ListShards",
    "ListStreamConsumers",
    "ListStreams",
    "ListTagsForResource",
    "ListTagsForStream",
    "MergeShards",
    "PutRecord",
    "PutRecords",
    "PutResourcePolicy",
    "RegisterStreamConsumer",
    "RemoveTagsFromStream",
    "SplitShard",
    "StartStreamEncryption",
    "StopStreamEncryption",
    "SubscribeToShard",
    "TagResource",
    "UntagResource",
    "UpdateAccountSettings",
    "UpdateMaxRecordSize",
    "UpdateShardCount",
    "UpdateStreamMode",
    "UpdateStreamWarmThroughput",
];

fn is_known_operation(operation: &str) -> bool {
    KNOWN_OPERATIONS.contains(&operation)
}

/// Any object body: operations without members still need a well-formed body.
#[derive(Debug, serde::Deserialize)]
struct AnyObject {}

/// The `SubscribeToShard` answer: `initial-response`, then one message per event, an
/// exception message if the subscription fails, and the end of the stream when it closes
/// (after its 5 minutes, or at server shutdown).
fn event_stream_response(
    format: WireFormat,
    subscription: kcl_core::stream_client::Subscription,
    shutdown: CancellationToken,
) -> Response {
    struct Pump {
        subscription: kcl_core::stream_client::Subscription,
        shutdown: CancellationToken,
        failed: bool,
        _open: metrics::OpenSubscription,
    }
    let content_type = format.content_type();
    let initial_payload = format.encode(&wire::Empty {}).unwrap_or_default();
    let initial = eventstream::event("initial-response", content_type, &initial_payload);
    let pump = Pump {
        subscription,
        shutdown,
        failed: false,
        _open: metrics::OpenSubscription::opened(),
    };
    let events = futures::stream::unfold(pump, move |mut pump| async move {
        if pump.failed {
            return None;
        }
        let next = tokio::select! {
            () = pump.shutdown.cancelled() => None,
            event = pump.subscription.next_event() => event,
        };
        let frame = match next? {
            Ok(event) => {
                let payload = format.encode(&wire::WireSubscribeToShardEvent::from(event));
                match payload {
                    Ok(payload) => {
                        eventstream::event("SubscribeToShardEvent", content_type, &payload)
                    }
                    Err(error) => {
                        pump.failed = true;
                        exception_frame(format, &error)
                    }
                }
            }
            Err(error) => {
                pump.failed = true;
                exception_frame(format, &ServerError::from(error))
            }
        };
        Some((Ok::<Bytes, Infallible>(frame), pump))
    });
    let stream =
        futures::stream::once(async move { Ok::<Bytes, Infallible>(initial) }).chain(events);
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    response
}

fn exception_frame(format: WireFormat, error: &ServerError) -> Bytes {
    eventstream::exception(
        error.aws_type(),
        format.content_type(),
        &format.error_body(error),
    )
}

/// A server running on a socket, stopped with [`RunningServer::shutdown`].
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The endpoint URL (`http://ADDR`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Stops accepting connections, ends event streams, finishes in-flight requests.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(error = %error, "server stopped with an error"),
            Err(error) => tracing::error!(error = %error, "server task failed"),
        }
    }
}

/// Binds `addr` (port 0 picks a free port) and serves `regions` (or a single [`Broker`]) over
/// plain HTTP (HTTP/1.1 and HTTP/2 with prior knowledge) until [`RunningServer::shutdown`].
pub async fn spawn(
    regions: impl Into<Regions>,
    options: ServerOptions,
    addr: SocketAddr,
) -> std::io::Result<RunningServer> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local_addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let state = Arc::new(ServerState::new(regions, options, shutdown.clone()));
    let app = router(state);
    let signal = shutdown.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { signal.cancelled().await })
            .await
    });
    Ok(RunningServer {
        local_addr,
        shutdown,
        task,
    })
}

/// PEM files of a TLS certificate chain and its private key (feature `tls`).
#[cfg(feature = "tls")]
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain (PEM).
    pub cert: std::path::PathBuf,
    /// The private key (PEM).
    pub key: std::path::PathBuf,
}

/// Like [`spawn`], but serving HTTPS (HTTP/1.1 and HTTP/2 via ALPN) with the given certificate
/// (feature `tls`).
#[cfg(feature = "tls")]
pub async fn spawn_tls(
    regions: impl Into<Regions>,
    options: ServerOptions,
    addr: SocketAddr,
    tls: TlsFiles,
) -> std::io::Result<RunningServer> {
    // Several rustls crypto providers may be compiled in; pick one explicitly. An error only
    // means a provider was installed already.
    let _already_installed = rustls::crypto::CryptoProvider::install_default(
        rustls::crypto::aws_lc_rs::default_provider(),
    );
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key).await?;
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let local_addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let state = Arc::new(ServerState::new(regions, options, shutdown.clone()));
    let app = router(state);
    let handle = axum_server::Handle::new();
    let signal_handle = handle.clone();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        signal.cancelled().await;
        signal_handle.graceful_shutdown(Some(std::time::Duration::from_secs(30)));
    });
    let task = tokio::spawn(async move {
        axum_server::from_tcp_rustls(listener, config)
            .handle(handle)
            .serve(app.into_make_service())
            .await
    });
    Ok(RunningServer {
        local_addr,
        shutdown,
        task,
    })
}
