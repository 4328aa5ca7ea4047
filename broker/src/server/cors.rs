//! CORS as Kinesis answers it, so browser SDK code can call the broker: an `OPTIONS` request
//! with `Origin` is a preflight answered `200` with an empty body (the requested method and
//! headers echoed back, cached for two days), and every other answer to a request with
//! `Origin` allows any origin and exposes the headers the SDKs read.
//!
//! The header values are the ones observed on real Kinesis (kinesalite records them).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// How long a browser may cache a preflight answer, in seconds (two days).
pub(crate) const PREFLIGHT_MAX_AGE_SECS: &str = "172800";

/// The response headers a browser script may read.
pub(crate) const EXPOSED_HEADERS: &str =
    "x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date";

/// Whether the request carries an `Origin` (is a cross-origin browser request).
pub(crate) fn has_origin(headers: &HeaderMap) -> bool {
    headers.contains_key(header::ORIGIN)
}

/// The answer to an `OPTIONS` preflight with `Origin`.
pub(crate) fn preflight(request: &HeaderMap) -> Response {
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    if let Some(requested) = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
    }
    if let Some(requested) = request.get(header::ACCESS_CONTROL_REQUEST_METHOD) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, requested.clone());
    }
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE_SECS),
    );
    headers.insert("x-amzn-requestid", super::request_id_header());
    response
}

/// Adds the CORS headers to the answer of a (non-preflight) request with `Origin`.
pub(crate) fn decorate(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED_HEADERS),
    );
}
