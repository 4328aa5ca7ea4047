//! The two body formats of the Kinesis protocol and the value types whose encoding differs
//! between them.
//!
//! - JSON (`application/x-amz-json-1.1`): blobs are base64 text, timestamps epoch seconds with a
//!   fraction.
//! - CBOR (`application/x-amz-cbor-1.1`): blobs are byte strings, timestamps CBOR tag 1 wrapping
//!   integer epoch *milliseconds* (as AWS and the Java SDK do it).
//!
//! Wire structs use [`Blob`] and [`Timestamp`]; serde's `is_human_readable` tells the two
//! formats apart (serde_json is human readable, ciborium is not), so one set of structs serves
//! both formats without an intermediate value tree on the hot JSON path.

use super::error::ServerError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use kcl_core::kinesis::EpochMillis;
use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

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
    pub(crate) fn error_body(self, error: &ServerError) -> Vec<u8> {
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

/// The body of every error answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ErrorBody<S = &'static str> {
    /// The error type (`ResourceNotFoundException`, ...).
    #[serde(rename = "__type")]
    pub error_type: S,
    /// The human-readable message.
    pub message: String,
}

/// A blob: base64 text in JSON, a byte string in CBOR.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Blob(pub Bytes);

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&BASE64.encode(&self.0))
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BlobVisitor;
        impl<'de> Visitor<'de> for BlobVisitor {
            type Value = Blob;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a base64 string or a byte string")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Blob, E> {
                BASE64
                    .decode(text)
                    .map(|bytes| Blob(Bytes::from(bytes)))
                    .map_err(|_| E::custom("blob is not valid base64"))
            }
            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Blob, E> {
                Ok(Blob(Bytes::copy_from_slice(bytes)))
            }
            fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(Bytes::from(bytes)))
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(BlobVisitor)
        } else {
            deserializer.deserialize_any(BlobVisitor)
        }
    }
}

/// A point in time: epoch seconds with a fraction in JSON, tag 1 + epoch milliseconds in CBOR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timestamp(pub EpochMillis);

/// The latest timestamp accepted on input (year 9999), so conversions never overflow.
const MAX_TIMESTAMP_MILLIS: f64 = 253_402_300_799_000.0;

fn millis_from_f64<E: de::Error>(millis: f64) -> Result<Timestamp, E> {
    if !millis.is_finite() || millis.abs() > MAX_TIMESTAMP_MILLIS {
        return Err(E::custom("timestamp is out of range"));
    }
    Ok(Timestamp(EpochMillis(millis.round() as i64)))
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_f64(self.0.as_secs_f64())
        } else {
            ciborium::tag::Required::<i64, 1>(self.0.0).serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            struct SecondsVisitor;
            impl<'de> Visitor<'de> for SecondsVisitor {
                type Value = Timestamp;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("epoch seconds as a number")
                }
                fn visit_f64<E: de::Error>(self, seconds: f64) -> Result<Timestamp, E> {
                    millis_from_f64(seconds * 1000.0)
                }
                fn visit_i64<E: de::Error>(self, seconds: i64) -> Result<Timestamp, E> {
                    millis_from_f64(seconds as f64 * 1000.0)
                }
                fn visit_u64<E: de::Error>(self, seconds: u64) -> Result<Timestamp, E> {
                    millis_from_f64(seconds as f64 * 1000.0)
                }
            }
            return deserializer.deserialize_any(SecondsVisitor);
        }
        // CBOR: AWS sends tag 1 around integer milliseconds; accept an untagged number as
        // milliseconds too, and a float (tagged or not) as milliseconds with a fraction.
        let value = ciborium::Value::deserialize(deserializer)?;
        let value = match value {
            ciborium::Value::Tag(_, inner) => *inner,
            other => other,
        };
        match value {
            ciborium::Value::Integer(millis) => {
                let millis = i128::from(millis);
                millis_from_f64(millis as f64)
            }
            ciborium::Value::Float(millis) => millis_from_f64(millis),
            _ => Err(de::Error::custom("timestamp must be a number")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
