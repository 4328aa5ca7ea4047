//! The `application/vnd.amazon.eventstream` message framing used by `SubscribeToShard`.
//!
//! A message is: total length (u32 BE), headers length (u32 BE), CRC32 of those eight bytes,
//! the headers, the payload, and the CRC32 of everything before it. A header is its name length
//! (u8), name, value type (u8), and the value; the encoder writes only string values (type 7:
//! u16 BE length, UTF-8 bytes) and reads every value type AWS defines.
//!
//! This module is framing only: the broker's HTTP server writes these messages and the HTTP
//! stream client reads them, each without depending on the other.

use bytes::{BufMut, Bytes, BytesMut};

/// The largest message this codec writes or reads (AWS's limit is 16 MiB).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

const PRELUDE_BYTES: usize = 12;
const CRC_BYTES: usize = 4;

/// One header value. Strings are what the Kinesis events use; other types are kept raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Type 7: a UTF-8 string.
    String(String),
    /// Any other type, with its type byte and raw value bytes.
    Other(u8, Bytes),
}

/// A decoded event-stream message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Headers in wire order.
    pub headers: Vec<(String, HeaderValue)>,
    /// The payload.
    pub payload: Bytes,
}

impl Message {
    /// The string value of header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(key, value)| match value {
            HeaderValue::String(text) if key == name => Some(text.as_str()),
            _ => None,
        })
    }
}

/// Why bytes are not a valid event-stream message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// More bytes are needed to complete the message.
    #[error("incomplete event-stream message")]
    Incomplete,
    /// The prelude or message checksum does not match.
    #[error("event-stream {0} checksum mismatch")]
    Checksum(&'static str),
    /// Lengths or headers are inconsistent.
    #[error("malformed event-stream message: {0}")]
    Malformed(&'static str),
}

/// Encodes a message whose header values are all strings.
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let headers_len: usize = headers
        .iter()
        .map(|(name, value)| 1 + name.len() + 1 + 2 + value.len())
        .sum();
    let total_len = PRELUDE_BYTES + headers_len + payload.len() + CRC_BYTES;
    let mut out = BytesMut::with_capacity(total_len);
    out.put_u32(total_len as u32);
    out.put_u32(headers_len as u32);
    out.put_u32(crc32fast::hash(&out[..8]));
    for (name, value) in headers {
        out.put_u8(name.len() as u8);
        out.put_slice(name.as_bytes());
        out.put_u8(7);
        out.put_u16(value.len() as u16);
        out.put_slice(value.as_bytes());
    }
    out.put_slice(payload);
    let crc = crc32fast::hash(&out);
    out.put_u32(crc);
    out.freeze()
}

/// An `event` message of type `event_type` with a payload in `content_type`.
pub fn event(event_type: &str, content_type: &str, payload: &[u8]) -> Bytes {
    encode(
        &[
            (":message-type", "event"),
            (":event-type", event_type),
            (":content-type", content_type),
        ],
        payload,
    )
}

/// An `exception` message (`:exception-type` is the AWS error type).
pub fn exception(exception_type: &str, content_type: &str, payload: &[u8]) -> Bytes {
    encode(
        &[
            (":message-type", "exception"),
            (":exception-type", exception_type),
            (":content-type", content_type),
        ],
        payload,
    )
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Decodes the first message of `buf`, returning it and the number of bytes it used.
pub fn decode(buf: &[u8]) -> Result<(Message, usize), FrameError> {
    if buf.len() < PRELUDE_BYTES {
        return Err(FrameError::Incomplete);
    }
    let total_len = read_u32(buf, 0) as usize;
    let headers_len = read_u32(buf, 4) as usize;
    if crc32fast::hash(&buf[..8]) != read_u32(buf, 8) {
        return Err(FrameError::Checksum("prelude"));
    }
    if total_len > MAX_MESSAGE_BYTES || total_len < PRELUDE_BYTES + headers_len + CRC_BYTES {
        return Err(FrameError::Malformed("lengths are inconsistent"));
    }
    if buf.len() < total_len {
        return Err(FrameError::Incomplete);
    }
    let body_end = total_len - CRC_BYTES;
    if crc32fast::hash(&buf[..body_end]) != read_u32(buf, body_end) {
        return Err(FrameError::Checksum("message"));
    }
    let headers = decode_headers(&buf[PRELUDE_BYTES..PRELUDE_BYTES + headers_len])?;
    let payload = Bytes::copy_from_slice(&buf[PRELUDE_BYTES + headers_len..body_end]);
    Ok((Message { headers, payload }, total_len))
}

fn decode_headers(mut bytes: &[u8]) -> Result<Vec<(String, HeaderValue)>, FrameError> {
    let truncated = FrameError::Malformed("header is truncated");
    let mut headers = Vec::new();
    while !bytes.is_empty() {
        let name_len = usize::from(bytes[0]);
        let name = bytes.get(1..1 + name_len).ok_or(truncated.clone())?;
        let name = String::from_utf8(name.to_vec())
            .map_err(|_| FrameError::Malformed("header name is not UTF-8"))?;
        bytes = &bytes[1 + name_len..];
        let value_type = *bytes.first().ok_or(truncated.clone())?;
        bytes = &bytes[1..];
        let fixed_len = match value_type {
            0 | 1 => Some(0),
            2 => Some(1),
            3 => Some(2),
            4 => Some(4),
            5 | 8 => Some(8),
            9 => Some(16),
            6 | 7 => None,
            _ => return Err(FrameError::Malformed("unknown header value type")),
        };
        let (value, rest) = match fixed_len {
            Some(len) => {
                let value = bytes.get(..len).ok_or(truncated.clone())?;
                (value, &bytes[len..])
            }
            None => {
                let len_bytes = bytes.get(..2).ok_or(truncated.clone())?;
                let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
                let value = bytes.get(2..2 + len).ok_or(truncated.clone())?;
                (value, &bytes[2 + len..])
            }
        };
        let value = if value_type == 7 {
            HeaderValue::String(
                String::from_utf8(value.to_vec())
                    .map_err(|_| FrameError::Malformed("header value is not UTF-8"))?,
            )
        } else {
            HeaderValue::Other(value_type, Bytes::copy_from_slice(value))
        };
        headers.push((name, value));
        bytes = rest;
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let frame = event(
            "SubscribeToShardEvent",
            "application/x-amz-json-1.1",
            b"{\"a\":1}",
        );
        let (message, used) = decode(&frame).unwrap();
        assert_eq!(used, frame.len());
        assert_eq!(message.header(":event-type"), Some("SubscribeToShardEvent"));
        assert_eq!(message.header(":message-type"), Some("event"));
        assert_eq!(message.payload.as_ref(), b"{\"a\":1}");
    }

    #[test]
    fn matches_a_known_frame() {
        // An empty message: 16 bytes, total length 16, headers length 0.
        let frame = encode(&[], b"");
        assert_eq!(frame.len(), 16);
        assert_eq!(&frame[..8], &[0, 0, 0, 16, 0, 0, 0, 0]);
        assert_eq!(read_u32(&frame, 8), 0x05c2_48eb);
    }

    #[test]
    fn detects_corruption_and_truncation() {
        let frame = exception("ResourceNotFoundException", "application/json", b"{}");
        assert_eq!(
            decode(&frame[..frame.len() - 1]),
            Err(FrameError::Incomplete)
        );
        for index in 0..frame.len() {
            let mut corrupted = frame.to_vec();
            corrupted[index] ^= 0x40;
            assert!(
                decode(&corrupted).is_err(),
                "flip at {index} went unnoticed"
            );
        }
    }
}
