//! Incremental reading of the AWS event-stream framing used by `SubscribeToShard` over HTTP.
//!
//! The framing itself (prelude, headers, CRCs) is kcl-core's codec,
//! [`kcl_core::eventstream`], shared with the broker's server; this module only buffers bytes as they arrive from the
//! network and pops whole messages.

use bytes::{Buf, BytesMut};

pub use kcl_core::eventstream::{FrameError as EventStreamError, Message as EventMessage};
use kcl_core::eventstream::{FrameError, decode};

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
        match decode(&self.buffer) {
            Ok((message, used)) => {
                self.buffer.advance(used);
                Ok(Some(message))
            }
            Err(FrameError::Incomplete) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcl_core::eventstream::encode;

    #[test]
    fn decodes_messages_split_at_every_byte() {
        let first = encode(&[(":event-type", "initial-response")], b"{}");
        let second = encode(
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
        let mut message = encode(&[(":event-type", "x")], b"payload").to_vec();
        let mut bad_prelude = message.clone();
        bad_prelude[9] ^= 1;
        let mut decoder = EventStreamDecoder::new();
        decoder.push(&bad_prelude);
        assert_eq!(
            decoder.next_message(),
            Err(EventStreamError::Checksum("prelude"))
        );

        let last = message.len() - 6;
        message[last] ^= 1;
        let mut decoder = EventStreamDecoder::new();
        decoder.push(&message);
        assert_eq!(
            decoder.next_message(),
            Err(EventStreamError::Checksum("message"))
        );
    }
}
