//! The two body formats of the Kinesis protocol and the value types whose encoding differs
//! between them.
//!
//! - JSON (`application/x-amz-json-1.1`): blobs are base64 text, timestamps epoch seconds with a
//!   fraction.
//! - CBOR (`application/x-amz-cbor-1.1`): blobs are byte strings, timestamps CBOR tag 1 wrapping
//!   integer epoch *milliseconds* (as AWS and the Java SDK do it).
//!
//! Wire structs use [`Blob`] and [`Timestamp`] (kcl-core's `kinesis::wire`, shared with the HTTP
//! client); serde's `is_human_readable` tells the two formats apart (serde_json is human
//! readable, ciborium is not), so one set of structs serves both formats without an intermediate
//! value tree on the hot JSON path.

use super::error::ServerError;
pub(crate) use kcl_core::kinesis::wire::{Blob, Timestamp};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The body format of a request, and so of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireFormat {
    /// `application/x-amz-json-1.1` (also accepted: `application/json`, `x-amz-json-1.0`).
    Json,
    /// `application/x-amz-cbor-1.1` (also accepted: `application/cbor`).
    Cbor,
}

impl WireFormat {
    /// The format named by a `Content-Type` header; JSON when the header is absent or unknown
    /// (the answer to a body in an unknown format is then a `SerializationException`).
    pub(crate) fn from_content_type(content_type: Option<&str>) -> Self {
        let Some(content_type) = content_type else {
            return WireFormat::Json;
        };
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if media_type.eq_ignore_ascii_case("application/x-amz-cbor-1.1")
            || media_type.eq_ignore_ascii_case("application/cbor")
        {
            WireFormat::Cbor
        } else {
            WireFormat::Json
        }
    }

    /// The `Content-Type` of answers in this format.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            WireFormat::Json => "application/x-amz-json-1.1",
            WireFormat::Cbor => "application/x-amz-cbor-1.1",
        }
    }

    /// Decodes a request body; an empty body reads as an empty object.
    pub(crate) fn decode<T: DeserializeOwned>(self, body: &[u8]) -> Result<T, ServerError> {
        match self {
            WireFormat::Json => {
                let body = if body.iter().all(u8::is_ascii_whitespace) {
                    b"{}".as_slice()
                } else {
                    body
                };
                serde_json::from_slice(body).map_err(|error| {
                    ServerError::Serialization(format!("malformed JSON request body: {error}"))
                })
            }
            WireFormat::Cbor => {
                if body.is_empty() {
                    return decode_empty_cbor();
                }
                ciborium::from_reader(body).map_err(|error| {
                    ServerError::Serialization(format!("malformed CBOR request body: {error}"))
                })
            }
        }
    }

    /// Encodes an answer body.
    pub(crate) fn encode<T: Serialize>(self, value: &T) -> Result<Vec<u8>, ServerError> {
        match self {
            WireFormat::Json => serde_json::to_vec(value)
                .map_err(|error| ServerError::InternalFailure(format!("encoding JSON: {error}"))),
            WireFormat::Cbor => {
                let mut out = Vec::with_capacity(256);
                ciborium::into_writer(value, &mut out).map_err(|error| {
                    ServerError::InternalFailure(format!("encoding CBOR: {error}"))
                })?;
                Ok(out)
            }
        }
    }

    /// The body of an error answer: `{"__type": ..., "message": ...}` in this format.
    ///
    /// A `SerializationException` says `Message` (capitalised), and nothing when it has no
    /// message (a body that does not parse), as Kinesis answers it.
    pub(crate) fn error_body(self, error: &ServerError) -> Vec<u8> {
        if let ServerError::Serialization(message) = error {
            let body = SerializationBody {
                error_type: error.aws_type(),
                message: (!message.is_empty()).then_some(message.as_str()),
            };
            return self.encode(&body).unwrap_or_else(|_| b"{}".to_vec());
        }
        let body = ErrorBody {
            error_type: error.aws_type(),
            message: error.message(),
        };
        // Encoding two strings cannot fail; fall back to an empty object if it somehow did.
        self.encode(&body).unwrap_or_else(|_| b"{}".to_vec())
    }
}

fn decode_empty_cbor<T: DeserializeOwned>() -> Result<T, ServerError> {
    // An empty CBOR map (0xa0), the CBOR spelling of `{}`.
    ciborium::from_reader([0xa0u8].as_slice()).map_err(|error| {
        ServerError::Serialization(format!("malformed CBOR request body: {error}"))
    })
}

/// The body of a `SerializationException`.
#[derive(Debug, Serialize)]
struct SerializationBody<'a> {
    #[serde(rename = "__type")]
    error_type: &'static str,
    #[serde(rename = "Message", skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

/// The body of every other error answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ErrorBody<S = &'static str> {
    /// The error type (`ResourceNotFoundException`, ...).
    #[serde(rename = "__type")]
    pub error_type: S,
    /// The human-readable message.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kcl_core::kinesis::EpochMillis;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase")]
    struct Sample {
        data: Blob,
        at: Timestamp,
    }

    fn sample() -> Sample {
        Sample {
            data: Blob(Bytes::from_static(b"hello\x00\xff")),
            at: Timestamp(EpochMillis(1_506_440_188_749)),
        }
    }

    #[test]
    fn json_uses_base64_and_seconds() {
        let encoded = WireFormat::Json.encode(&sample()).unwrap();
        let text = String::from_utf8(encoded.clone()).unwrap();
        assert_eq!(text, r#"{"Data":"aGVsbG8A/w==","At":1506440188.749}"#);
        let decoded: Sample = WireFormat::Json.decode(&encoded).unwrap();
        assert_eq!(decoded, sample());
        let integral: Sample = WireFormat::Json
            .decode(br#"{"Data":"","At":1506440188}"#)
            .unwrap();
        assert_eq!(integral.at, Timestamp(EpochMillis(1_506_440_188_000)));
    }

    #[test]
    fn cbor_uses_bytes_and_tagged_millis() {
        let encoded = WireFormat::Cbor.encode(&sample()).unwrap();
        let value: ciborium::Value = ciborium::from_reader(encoded.as_slice()).unwrap();
        let map = value.as_map().unwrap();
        let data = &map
            .iter()
            .find(|(k, _)| k.as_text() == Some("Data"))
            .unwrap()
            .1;
        assert_eq!(data.as_bytes().unwrap().as_slice(), b"hello\x00\xff");
        let at = &map
            .iter()
            .find(|(k, _)| k.as_text() == Some("At"))
            .unwrap()
            .1;
        match at {
            ciborium::Value::Tag(1, inner) => {
                assert_eq!(inner.as_integer().map(i128::from), Some(1_506_440_188_749));
            }
            other => panic!("timestamp not tag 1: {other:?}"),
        }
        let decoded: Sample = WireFormat::Cbor.decode(&encoded).unwrap();
        assert_eq!(decoded, sample());
    }

    #[test]
    fn malformed_inputs_are_serialization_errors() {
        let cases: [(&[u8], WireFormat); 6] = [
            (br#"{"Data":"%%%","At":1}"#, WireFormat::Json),
            (br#"{"Data":"","At":"soon"}"#, WireFormat::Json),
            (br#"{"Data":"","At":1e300}"#, WireFormat::Json),
            (br#"{"Data":"","#, WireFormat::Json),
            (b"\xff\x00", WireFormat::Cbor),
            (b"", WireFormat::Cbor),
        ];
        for (body, format) in cases {
            let result: Result<Sample, _> = format.decode(body);
            match result {
                Err(ServerError::Serialization(_)) => {}
                other => panic!("{body:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn content_types_pick_the_format() {
        assert_eq!(WireFormat::from_content_type(None), WireFormat::Json);
        assert_eq!(
            WireFormat::from_content_type(Some("application/x-amz-cbor-1.1")),
            WireFormat::Cbor
        );
        assert_eq!(
            WireFormat::from_content_type(Some("application/x-amz-json-1.1; charset=utf-8")),
            WireFormat::Json
        );
    }
}
