//! AWS Signature Version 4: reading the credential scope of any signed request, and optionally
//! verifying signatures against configured access keys.
//!
//! Verification follows the published algorithm: a canonical request (method, canonical URI,
//! canonical query string, the signed headers, the payload hash), a string to sign over its
//! SHA-256 and the credential scope, and the signature as HMAC-SHA256 under a key derived from
//! the secret, the date, the region and the service.

use super::error::ServerError;
use axum::http;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

type HmacSha256 = Hmac<Sha256>;

/// How far a request's `X-Amz-Date` may be from the server's clock, as AWS allows.
pub(crate) const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Access keys the server accepts when verification is on: access key id → secret key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AuthKeys {
    secrets: HashMap<String, String>,
}

impl std::fmt::Debug for AuthKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        f.debug_struct("AuthKeys")
            .field("access_key_ids", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why an `--auth-keys` list cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("auth keys must be a comma-separated list of ACCESS_KEY_ID:SECRET pairs: {0}")]
pub struct ParseAuthKeysError(String);

impl AuthKeys {
    /// Keys from `(access key id, secret)` pairs.
    pub fn new<I, K, S>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, S)>,
        K: Into<String>,
        S: Into<String>,
    {
        AuthKeys {
            secrets: pairs
                .into_iter()
                .map(|(key, secret)| (key.into(), secret.into()))
                .collect(),
        }
    }

    /// Parses `AKID:SECRET,AKID2:SECRET2`.
    pub fn parse(list: &str) -> Result<Self, ParseAuthKeysError> {
        let mut secrets = HashMap::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let Some((key, secret)) = entry.split_once(':') else {
                return Err(ParseAuthKeysError(format!("entry {entry:?} has no ':'")));
            };
            if key.is_empty() || secret.is_empty() {
                return Err(ParseAuthKeysError(format!(
                    "entry for {key:?} has an empty access key id or secret"
                )));
            }
            secrets.insert(key.to_string(), secret.to_string());
        }
        if secrets.is_empty() {
            return Err(ParseAuthKeysError("no keys given".into()));
        }
        Ok(AuthKeys { secrets })
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    fn secret(&self, access_key_id: &str) -> Option<&str> {
        self.secrets.get(access_key_id).map(String::as_str)
    }
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authorization<'a> {
    /// The access key id of the credential.
    pub access_key_id: &'a str,
    /// `YYYYMMDD` of the credential scope.
    pub date: &'a str,
    /// The region of the credential scope.
    pub region: &'a str,
    /// The service of the credential scope.
    pub service: &'a str,
    /// The signed header names, lowercase, `;`-separated.
    pub signed_headers: &'a str,
    /// The hex signature.
    pub signature: &'a str,
}

impl<'a> Authorization<'a> {
    /// Parses the header value as AWS reads it: the parameters after the algorithm, every
    /// missing one (and a missing `X-Amz-Date`/`Date` header, unless `has_date`) listed in one
    /// `IncompleteSignatureException` message ending with `Authorization=HEADER`.
    pub(crate) fn parse(header: &'a str, has_date: bool) -> Result<Self, ServerError> {
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        let parameters = header
            .split([',', ' '])
            .filter(|part| !part.is_empty())
            .skip(1)
            .filter_map(|part| part.trim().split_once('='));
        for (name, value) in parameters {
            let value = Some(value.trim()).filter(|value| !value.is_empty());
            match name {
                "Credential" => credential = value,
                "SignedHeaders" => signed_headers = value,
                "Signature" => signature = value,
                _ => {}
            }
        }
        let mut missing = String::new();
        for (name, value) in [
            ("Credential", credential),
            ("Signature", signature),
            ("SignedHeaders", signed_headers),
        ] {
            if value.is_none() {
                missing.push_str(&format!(
                    "Authorization header requires '{name}' parameter. "
                ));
            }
        }
        if !has_date {
            missing.push_str(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' \
                 header. ",
            );
        }
        let (Some(credential), Some(signed_headers), Some(signature)) =
            (credential, signed_headers, signature)
        else {
            return Err(ServerError::IncompleteSignature(format!(
                "{missing}Authorization={header}"
            )));
        };
        if !missing.is_empty() {
            return Err(ServerError::IncompleteSignature(format!(
                "{missing}Authorization={header}"
            )));
        }
        if !header.trim_start().starts_with(ALGORITHM) {
            return Err(ServerError::IncompleteSignature(format!(
                "Unsupported authorization type or algorithm; expected {ALGORITHM}. \
                 Authorization={header}"
            )));
        }
        let scope = CredentialScope::parse(credential)?;
        Ok(Authorization {
            access_key_id: scope.access_key_id,
            date: scope.date,
            region: scope.region,
            service: scope.service,
            signed_headers,
            signature,
        })
    }
}

/// The parts of a credential `AKID/YYYYMMDD/REGION/SERVICE/aws4_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CredentialScope<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

impl<'a> CredentialScope<'a> {
    /// Splits and checks a credential with AWS's `IncompleteSignatureException` wording.
    fn parse(credential: &'a str) -> Result<Self, ServerError> {
        let scope: Vec<&str> = credential.split('/').collect();
        let [access_key_id, date, region, service, terminator] = scope.as_slice() else {
            return Err(ServerError::IncompleteSignature(format!(
                "Credential should be scoped to a valid region, not a malformed scope. \
                 Credential={credential}"
            )));
        };
        if *terminator != "aws4_request" || access_key_id.is_empty() || date.len() != 8 {
            return Err(ServerError::IncompleteSignature(format!(
                "Credential should be scoped with a valid terminator: 'aws4_request'. \
                 Credential={credential}"
            )));
        }
        if !is_region_name(region) {
            return Err(ServerError::IncompleteSignature(format!(
                "Credential should be scoped to a valid region, not '{region}'. "
            )));
        }
        Ok(CredentialScope {
            access_key_id,
            date,
            region,
            service,
        })
    }
}

/// Whether `name` looks like an AWS region (`us-east-1`, `us-gov-west-1`, `cn-north-1`): 1–32
/// lowercase letters, digits and dashes, starting with a letter. The server keeps one store
/// per region (and one directory per region on disk), so nothing else is accepted.
pub fn is_region_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=32).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || *byte == b'-')
}

/// Whether the request carries a date header SigV4 accepts.
fn has_date_header(headers: &http::HeaderMap) -> bool {
    headers.contains_key("x-amz-date") || headers.contains_key(http::header::DATE)
}

/// The query-string parameters a presigned request must carry, in AWS's order.
const QUERY_PARAMETERS: [&str; 5] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-SignedHeaders",
    "X-Amz-Date",
];

/// The decoded value of query parameter `name`.
fn query_parameter(uri: &http::Uri, name: &str) -> Option<String> {
    uri.query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| percent_decode(value))
}

/// Checks that a request is signed at all, as AWS does before it looks at the signature
/// itself: an `Authorization` header with `Credential`, `Signature` and `SignedHeaders` and a
/// date header, or presigned query parameters. Answers the credential scope's region.
///
/// No header and no `X-Amz-Algorithm` → `MissingAuthenticationTokenException`; both →
/// `InvalidSignatureException`; missing parts → `IncompleteSignatureException`.
pub(crate) fn require_signature(
    uri: &http::Uri,
    headers: &http::HeaderMap,
) -> Result<String, ServerError> {
    let header = headers.get(http::header::AUTHORIZATION);
    let presigned = query_parameter(uri, "X-Amz-Algorithm").is_some();
    match (header, presigned) {
        (Some(_), true) => Err(ServerError::InvalidSignature(
            "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP \
             header."
                .into(),
        )),
        (None, false) => Err(ServerError::MissingAuthenticationToken),
        (Some(header), false) => {
            let header = header.to_str().map_err(|_| {
                ServerError::IncompleteSignature("Authorization header is not valid text".into())
            })?;
            let auth = Authorization::parse(header, has_date_header(headers))?;
            Ok(auth.region.to_owned())
        }
        (None, true) => {
            let missing: String = QUERY_PARAMETERS
                .iter()
                .filter(|name| query_parameter(uri, name).is_none_or(|value| value.is_empty()))
                .map(|name| format!("AWS query-string parameters must include '{name}'. "))
                .collect();
            if !missing.is_empty() {
                return Err(ServerError::IncompleteSignature(format!(
                    "{missing}Re-examine the query-string parameters."
                )));
            }
            let credential = query_parameter(uri, "X-Amz-Credential").unwrap_or_default();
            let region = CredentialScope::parse(&credential)?.region.to_owned();
            Ok(region)
        }
    }
}

/// The region of a request's credential scope (`Authorization` header or presigned query),
/// if it is signed with a well-formed one.
pub(crate) fn credential_region(uri: &http::Uri, headers: &http::HeaderMap) -> Option<String> {
    require_signature(uri, headers).ok()
}

/// A request as the verifier sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignedRequest<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The request URI (path and query; authority used for `host` under HTTP/2).
    pub uri: &'a http::Uri,
    /// The request headers.
    pub headers: &'a http::HeaderMap,
    /// The request body.
    pub body: &'a [u8],
}

/// Verifies the SigV4 signature of `request` against `keys` at wall-clock time
/// `now_epoch_secs`.
pub(crate) fn verify(
    request: SignedRequest<'_>,
    keys: &AuthKeys,
    now_epoch_secs: i64,
) -> Result<(), ServerError> {
    let headers = request.headers;
    let Some(header) = headers.get(http::header::AUTHORIZATION) else {
        return Err(ServerError::MissingAuthenticationToken);
    };
    let header = header.to_str().map_err(|_| {
        ServerError::IncompleteSignature("Authorization header is not valid text".into())
    })?;
    let auth = Authorization::parse(header, has_date_header(headers))?;

    let amz_date = headers
        .get("x-amz-date")
        .or_else(|| headers.get(http::header::DATE))
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| {
            ServerError::IncompleteSignature(format!(
                "Date must be in ISO-8601 'basic format'. Authorization={header}"
            ))
        })?;
    let request_secs = parse_amz_date(amz_date).ok_or_else(|| {
        ServerError::IncompleteSignature(format!(
            "Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See \
             http://en.wikipedia.org/wiki/ISO_8601"
        ))
    })?;

    let Some(secret) = keys.secret(auth.access_key_id) else {
        return Err(ServerError::UnrecognizedClient);
    };

    if (now_epoch_secs - request_secs).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(ServerError::InvalidSignature(format!(
            "Signature expired: {amz_date} is now earlier or later than {} (allowed skew: 15 \
             min.)",
            format_amz_date(now_epoch_secs)
        )));
    }
    if !amz_date.starts_with(auth.date) {
        return Err(ServerError::InvalidSignature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '{}' != '{}', from '{amz_date}'.",
            auth.date,
            &amz_date[..8.min(amz_date.len())]
        )));
    }

    let body_hash = hex::encode(Sha256::digest(request.body));
    let payload_hash = match headers
        .get("x-amz-content-sha256")
        .and_then(|value| value.to_str().ok())
    {
        Some("UNSIGNED-PAYLOAD") => "UNSIGNED-PAYLOAD".to_string(),
        Some(claimed) if !claimed.eq_ignore_ascii_case(&body_hash) => {
            return Err(ServerError::InvalidSignature(
                "The provided 'x-amz-content-sha256' header does not match what was computed."
                    .into(),
            ));
        }
        _ => body_hash,
    };

    let canonical = canonical_request(&request, auth.signed_headers, &payload_hash)?;
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let signing_key = signing_key(secret, auth.date, auth.region, auth.service);
    let expected = hex::encode(hmac(&signing_key, string_to_sign.as_bytes()));
    if !constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        return Err(ServerError::InvalidSignature(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details."
                .into(),
        ));
    }
    Ok(())
}

/// The canonical request of SigV4 for the headers named in `signed_headers`.
pub(crate) fn canonical_request(
    request: &SignedRequest<'_>,
    signed_headers: &str,
    payload_hash: &str,
) -> Result<String, ServerError> {
    let mut canonical_headers = String::new();
    for name in signed_headers.split(';') {
        let values: Vec<String> = request
            .headers
            .get_all(name)
            .iter()
            .map(|value| collapse_spaces(&String::from_utf8_lossy(value.as_bytes())))
            .collect();
        let value = if values.is_empty() && name == "host" {
            // HTTP/2 carries the host in `:authority`, which hyper puts into the URI.
            request
                .uri
                .authority()
                .map(|authority| authority.as_str().to_string())
                .ok_or_else(|| {
                    ServerError::IncompleteSignature("signed header 'host' is missing".into())
                })?
        } else if values.is_empty() {
            return Err(ServerError::InvalidSignature(format!(
                "The request signature we calculated does not match the signature you \
                 provided: signed header '{name}' is not present."
            )));
        } else {
            values.join(",")
        };
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&value);
        canonical_headers.push('\n');
    }
    Ok(format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        request.method,
        canonical_uri(request.uri.path()),
        canonical_query(request.uri.query().unwrap_or("")),
    ))
}

fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Percent-encodes everything but the unreserved characters, as SigV4 requires.
fn uri_encode(input: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    for byte in input.bytes() {
        let unreserved = byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~');
        if unreserved || (keep_slash && byte == b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| input.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Non-S3 services encode the (already encoded) path once more.
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    uri_encode(path, true)
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                uri_encode(&percent_decode(name), false),
                uri_encode(&percent_decode(value), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("hmac accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The SigV4 signing key for a secret, date (`YYYYMMDD`), region and service.
pub(crate) fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Parses `YYYYMMDDTHHMMSSZ` into epoch seconds.
pub(crate) fn parse_amz_date(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 16 || bytes[8] != b'T' || bytes[15] != b'Z' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let (hour, minute, second) = (number(9..11)?, number(11..13)?, number(13..15)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Formats epoch seconds as `YYYYMMDDTHHMMSSZ`.
pub(crate) fn format_amz_date(epoch_secs: i64) -> String {
    let days = epoch_secs.div_euclid(86_400);
    let secs_of_day = epoch_secs.rem_euclid(86_400);
    let (year, month, day) = crate::engine::token::civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    )
}

/// Signs a request the way an SDK would (used by the tests): returns the `Authorization` header
/// value for the given headers (which must include `host` and `x-amz-date`).
#[cfg(test)]
pub(crate) fn sign(
    request: &SignedRequest<'_>,
    access_key_id: &str,
    secret: &str,
    region: &str,
    service: &str,
) -> Result<String, ServerError> {
    let amz_date = request
        .headers
        .get("x-amz-date")
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| ServerError::IncompleteSignature("x-amz-date is missing".into()))?;
    let date = amz_date.get(..8).unwrap_or("");
    let mut names: Vec<String> = request
        .headers
        .keys()
        .map(|name| name.as_str().to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    let signed_headers = names.join(";");
    let payload_hash = hex::encode(Sha256::digest(request.body));
    let canonical = canonical_request(request, &signed_headers, &payload_hash)?;
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let signature = hex::encode(hmac(
        &signing_key(secret, date, region, service),
        string_to_sign.as_bytes(),
    ));
    Ok(format!(
        "{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={signed_headers}, \
         Signature={signature}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http;

    #[test]
    fn amz_dates_round_trip() {
        for secs in [
            0i64,
            951_782_400,
            1_764_028_800,
            1_796_000_123,
            4_102_444_799,
        ] {
            let text = format_amz_date(secs);
            assert_eq!(parse_amz_date(&text), Some(secs), "{text}");
        }
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(parse_amz_date("2015-08-30T12:36:00Z"), None);
        assert_eq!(parse_amz_date("20151330T123600Z"), None);
    }

    /// The `get-vanilla` example of the AWS SigV4 test suite (published credentials and
    /// expected signature).
    #[test]
    fn matches_the_aws_test_suite_vanilla_get() {
        let uri: http::Uri = "/".parse().unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert("host", "example.amazonaws.com".parse().unwrap());
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        let request = SignedRequest {
            method: "GET",
            uri: &uri,
            headers: &headers,
            body: b"",
        };
        let authorization = sign(
            &request,
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "us-east-1",
            "service",
        )
        .unwrap();
        assert!(
            authorization.ends_with(
                "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            ),
            "{authorization}"
        );
        headers.insert("authorization", authorization.parse().unwrap());
        let keys = AuthKeys::new([("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")]);
        let request = SignedRequest {
            method: "GET",
            uri: &uri,
            headers: &headers,
            body: b"",
        };
        verify(request, &keys, 1_440_938_160).unwrap();
    }

    fn signed_post(body: &[u8]) -> (http::Uri, http::HeaderMap) {
        let uri: http::Uri = "/".parse().unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert("host", "localhost:4567".parse().unwrap());
        headers.insert("x-amz-date", "20261125T200000Z".parse().unwrap());
        headers.insert(
            "x-amz-target",
            "Kinesis_20131202.ListStreams".parse().unwrap(),
        );
        let request = SignedRequest {
            method: "POST",
            uri: &uri,
            headers: &headers,
            body,
        };
        let authorization = sign(&request, "AKID", "SECRET", "eu-west-1", "kinesis").unwrap();
        headers.insert("authorization", authorization.parse().unwrap());
        (uri, headers)
    }

    #[test]
    fn rejects_each_kind_of_bad_request() {
        let now = parse_amz_date("20261125T200100Z").unwrap();
        let keys = AuthKeys::new([("AKID", "SECRET")]);
        let body = br#"{}"#;
        let (uri, headers) = signed_post(body);
        let request = SignedRequest {
            method: "POST",
            uri: &uri,
            headers: &headers,
            body,
        };
        verify(request, &keys, now).unwrap();
        assert_eq!(
            credential_region(&uri, &headers).as_deref(),
            Some("eu-west-1")
        );

        let tampered = SignedRequest {
            body: br#"{"Limit":1}"#,
            ..request
        };
        assert_eq!(
            verify(tampered, &keys, now).unwrap_err().aws_type(),
            "InvalidSignatureException"
        );
        let other_keys = AuthKeys::new([("AKID", "OTHER")]);
        assert_eq!(
            verify(request, &other_keys, now).unwrap_err().aws_type(),
            "InvalidSignatureException"
        );
        let unknown = AuthKeys::new([("SOMEONE", "SECRET")]);
        assert_eq!(
            verify(request, &unknown, now).unwrap_err().aws_type(),
            "UnrecognizedClientException"
        );
        let later = now + 3600;
        assert_eq!(
            verify(request, &keys, later).unwrap_err().aws_type(),
            "InvalidSignatureException"
        );

        let mut unsigned = headers.clone();
        unsigned.remove("authorization");
        let request_unsigned = SignedRequest {
            headers: &unsigned,
            ..request
        };
        assert_eq!(
            verify(request_unsigned, &keys, now).unwrap_err().aws_type(),
            "MissingAuthenticationTokenException"
        );
        for malformed in [
            "AWS4-HMAC-SHA256 Credential=AKID/20261125/eu-west-1/kinesis/aws4_request",
            "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00",
            "Basic dXNlcjpwYXNz",
            "AWS4-HMAC-SHA256 Credential=AKID, SignedHeaders=host, Signature=00",
        ] {
            let mut bad = headers.clone();
            bad.insert("authorization", malformed.parse().unwrap());
            let request_bad = SignedRequest {
                headers: &bad,
                ..request
            };
            assert_eq!(
                verify(request_bad, &keys, now).unwrap_err().aws_type(),
                "IncompleteSignatureException",
                "{malformed}"
            );
        }
    }

    #[test]
    fn parses_auth_key_lists() {
        let keys = AuthKeys::parse("A:x, B:y").unwrap();
        assert_eq!(keys.secret("A"), Some("x"));
        assert_eq!(keys.secret("B"), Some("y"));
        assert!(AuthKeys::parse("nocolon").is_err());
        assert!(AuthKeys::parse("").is_err());
        assert!(AuthKeys::parse(":x").is_err());
    }
}
