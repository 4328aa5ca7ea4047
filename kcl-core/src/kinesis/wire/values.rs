//! The value types whose encoding differs between the two body formats of the Kinesis
//! protocol, and the decimal encoding of hash keys.
//!
//! - JSON (`application/x-amz-json-1.1`): blobs are base64 text, timestamps epoch seconds with a
//!   fraction.
//! - CBOR (`application/x-amz-cbor-1.1`, feature `cbor`): blobs are byte strings, timestamps CBOR
//!   tag 1 wrapping integer epoch *milliseconds* (as AWS and the Java SDK do it).
//!
//! serde's `is_human_readable` tells the two apart (serde_json is human readable, ciborium is
//! not), so one set of structs serves both formats.

use crate::kinesis::EpochMillis;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A blob: base64 text in JSON, a byte string in CBOR.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Blob(pub Bytes);

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timestamp(pub EpochMillis);

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
            return serializer.serialize_f64(self.0.as_secs_f64());
        }
        #[cfg(feature = "cbor")]
        {
            ciborium::tag::Required::<i64, 1>(self.0.0).serialize(serializer)
        }
        #[cfg(not(feature = "cbor"))]
        {
            serializer.serialize_i64(self.0.0)
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
        deserialize_binary(deserializer)
    }
}

/// CBOR: AWS sends tag 1 around integer milliseconds; an untagged number is accepted as
/// milliseconds too, and a float (tagged or not) as milliseconds with a fraction.
#[cfg(feature = "cbor")]
fn deserialize_binary<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
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

/// Without the `cbor` feature a binary format carries plain integer milliseconds.
#[cfg(not(feature = "cbor"))]
fn deserialize_binary<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
    let millis = i64::deserialize(deserializer)?;
    millis_from_f64(millis as f64)
}

/// A 128-bit hash key as the decimal string Kinesis writes (`"340282366920938463463374607431768211455"`).
pub(crate) mod decimal_u128 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(value: &u128, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<u128, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(|_| {
            serde::de::Error::custom(format!("invalid hash key {text:?}: not a decimal u128"))
        })
    }
}
