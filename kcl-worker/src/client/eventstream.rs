//! The AWS event-stream framing used by `SubscribeToShard` over HTTP.
//!
//! Each message: total length (u32 BE), headers length (u32 BE), CRC32 of those 8 bytes,
//! headers, payload, CRC32 of everything before it. A header is name length (u8), name, a type
//! byte and a typed value; strings (type 7) are u16-length-prefixed.

use bytes::{Buf, Bytes, BytesMut};

const PRELUDE_LEN: usize = 12;
const TRAILER_LEN: usize = 4;
/// Messages larger than this are rejected as corrupt (AWS's limit is 16 MiB).
const MAX_MESSAGE_LEN: usize = 24 * 1024 * 1024;

/// Why a byte stream is not a valid event stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventStreamError {
    /// The prelude's CRC32 does not match.
    #[error("event stream prelude checksum mismatch")]
    PreludeChecksum,
    /// The message's CRC32 does not match.
    #[error("event stream message checksum mismatch")]
    MessageChecksum,
    /// The lengths in the prelude are impossible.
    #[error("event stream message has invalid lengths (total {total}, headers {headers})")]
    InvalidLength {
        /// The total length from the prelude.
        total: usize,
        /// The headers length from the prelude.
        headers: usize,
    },
    /// A header is truncated or has an unknown type.
    #[error("event stream header is malformed: {0}")]
    MalformedHeader(&'static str),
}

/// One decoded event-stream message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMessage {
    /// The string-valued headers, in order (`:message-type`, `:event-type`, ...).
    pub headers: Vec<(String, String)>,
    /// The payload.
    pub payload: Bytes,
}

impl EventMessage {
    /// The value of the string header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Incremental decoder: push bytes as they arrive, pop whole messages.
#[derive(Debug, Default)]
pub struct EventStreamDecoder {
    buffer: BytesMut,
}

impl EventStreamDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        EventStreamDecoder::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<EventMessage>, EventStreamError> {
        if self.buffer.len() < PRELUDE_LEN {
            return Ok(None);
        }
        let total = u32::from_be_bytes(self.buffer[0..4].try_into().unwrap_or_default()) as usize;
        let headers_len =
            u32::from_be_bytes(self.buffer[4..8].try_into().unwrap_or_default()) as usize;
        let prelude_crc = u32::from_be_bytes(self.buffer[8..12].try_into().unwrap_or_default());
        if crc32fast::hash(&self.buffer[0..8]) != prelude_crc {
            return Err(EventStreamError::PreludeChecksum);
        }
        let too_small = total < PRELUDE_LEN + TRAILER_LEN + headers_len;
        if too_small || total > MAX_MESSAGE_LEN {
            return Err(EventStreamError::InvalidLength {
                total,
                headers: headers_len,
            });
        }
        if self.buffer.len() < total {
            return Ok(None);
        }
        let frame = self.buffer.split_to(total).freeze();
        let message_crc = u32::from_be_bytes(frame[total - 4..].try_into().unwrap_or_default());
        if crc32fast::hash(&frame[..total - 4]) != message_crc {
            return Err(EventStreamError::MessageChecksum);
        }
        let headers = parse_headers(&frame[PRELUDE_LEN..PRELUDE_LEN + headers_len])?;
        let payload = frame.slice(PRELUDE_LEN + headers_len..total - TRAILER_LEN);
        Ok(Some(EventMessage { headers, payload }))
    }
}

fn parse_headers(mut bytes: &[u8]) -> Result<Vec<(String, String)>, EventStreamError> {
    let mut headers = Vec::new();
    while bytes.has_remaining() {
        let name_len = usize::from(bytes.get_u8());
        let name = take(&mut bytes, name_len)?;
        let name = String::from_utf8_lossy(name).into_owned();
        if !bytes.has_remaining() {
            return Err(EventStreamError::MalformedHeader("missing value type"));
        }
        let value_type = bytes.get_u8();
        let fixed_len = match value_type {
            0 | 1 => Some(0),
            2 => Some(1),
            3 => Some(2),
            4 => Some(4),
            5 | 8 => Some(8),
            9 => Some(16),
            6 | 7 => None,
            _ => return Err(EventStreamError::MalformedHeader("unknown value type")),
        };
        match fixed_len {
            Some(len) => {
                take(&mut bytes, len)?;
            }
            None => {
                if bytes.remaining() < 2 {
                    return Err(EventStreamError::MalformedHeader("truncated value length"));
                }
                let len = usize::from(bytes.get_u16());
                let value = take(&mut bytes, len)?;
                if value_type == 7 {
                    headers.push((name, String::from_utf8_lossy(value).into_owned()));
                }
            }
        }
    }
    Ok(headers)
}

fn take<'a>(bytes: &mut &'a [u8], len: usize) -> Result<&'a [u8], EventStreamError> {
    if bytes.len() < len {
        return Err(EventStreamError::MalformedHeader("truncated header"));
    }
    let (head, tail) = bytes.split_at(len);
    *bytes = tail;
    Ok(head)
}

/// Encodes a message with string headers (used by tests and tools that fake a server).
pub fn encode_message(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut header_bytes = Vec::new();
    for (name, value) in headers {
        header_bytes.push(name.len() as u8);
        header_bytes.extend_from_slice(name.as_bytes());
        header_bytes.push(7);
        header_bytes.extend_from_slice(&(value.len() as u16).to_be_bytes());
        header_bytes.extend_from_slice(value.as_bytes());
    }
    let total = PRELUDE_LEN + header_bytes.len() + payload.len() + TRAILER_LEN;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(header_bytes.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&header_bytes);
    out.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_messages_split_at_every_byte() {
        let first = encode_message(&[(":event-type", "initial-response")], b"{}");
        let second = encode_message(
            &[
                (":message-type", "event"),
                (":event-type", "SubscribeToShardEvent"),
            ],
            b"{\"Records\":[]}",
        );
        let stream: Vec<u8> = first.iter().chain(second.iter()).copied().collect();
        let mut decoder = EventStreamDecoder::new();
        let mut messages = Vec::new();
        for byte in &stream {
            decoder.push(std::slice::from_ref(byte));
            while let Some(message) = decoder.next_message().expect("valid") {
                messages.push(message);
            }
        }
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].header(":event-type"), Some("initial-response"));
        assert_eq!(
            messages[1].header(":event-type"),
            Some("SubscribeToShardEvent")
        );
        assert_eq!(&messages[1].payload[..], b"{\"Records\":[]}");
    }

    #[test]
    fn rejects_corruption() {
        let mut message = encode_message(&[(":event-type", "x")], b"payload");
        let mut bad_prelude = message.clone();
        bad_prelude[9] ^= 1;
        let mut decoder = EventStreamDecoder::new();
        decoder.push(&bad_prelude);
        assert_eq!(
            decoder.next_message(),
            Err(EventStreamError::PreludeChecksum)
        );

        let last = message.len() - 6;
        message[last] ^= 1;
        let mut decoder = EventStreamDecoder::new();
        decoder.push(&message);
        assert_eq!(
            decoder.next_message(),
            Err(EventStreamError::MessageChecksum)
        );
    }
}
