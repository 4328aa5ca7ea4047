//! When to flush: a buffer of records that is full at the size hint or old at the interval
//! hint (measured on the injected monotonic clock), and the object body it becomes.

use crate::config::{BufferingHints, Compression};
use crate::error::FirehoseError;
use bytes::Bytes;
use kcl_core::kinesis::EpochMillis;
use kcl_core::lease::ExtendedSequenceNumber;
use std::io::Write;
use std::time::Duration;

/// Why a buffer is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushReason {
    /// It holds at least the size hint.
    Size,
    /// Its oldest record has waited the interval hint.
    Interval,
    /// The shard ended: everything goes out.
    ShardEnd,
}

impl FlushReason {
    /// The metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            FlushReason::Size => "size",
            FlushReason::Interval => "interval",
            FlushReason::ShardEnd => "shard_end",
        }
    }
}

/// Records waiting to become one object.
#[derive(Debug, Default)]
pub struct Buffer {
    records: Vec<Bytes>,
    bytes: usize,
    opened_at: Duration,
    first_arrival: EpochMillis,
    resume_point: Option<ExtendedSequenceNumber>,
    opened_order: u64,
}

impl Buffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Buffer::default()
    }

    /// Adds a record. The first record of a buffer opens it: `now` (monotonic) starts its
    /// interval, `arrival` names its time prefix, `resume_point` is where the shard may be
    /// checkpointed while this buffer is pending (the last record processed before it), and
    /// `order` ranks it among the shard's open buffers.
    pub fn push(
        &mut self,
        data: Bytes,
        arrival: EpochMillis,
        now: Duration,
        resume_point: Option<ExtendedSequenceNumber>,
        order: u64,
    ) {
        if self.records.is_empty() {
            self.opened_at = now;
            self.first_arrival = arrival;
            self.resume_point = resume_point;
            self.opened_order = order;
        }
        self.bytes += data.len();
        self.records.push(data);
    }

    /// Whether the buffer holds nothing.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// The uncompressed bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The approximate arrival time of its oldest record.
    pub fn first_arrival(&self) -> EpochMillis {
        self.first_arrival
    }

    /// Where the shard may be checkpointed while this buffer is pending.
    pub fn resume_point(&self) -> Option<ExtendedSequenceNumber> {
        self.resume_point
    }

    /// The order in which the shard's buffers were opened.
    pub fn opened_order(&self) -> u64 {
        self.opened_order
    }

    /// Whether the buffer must be flushed at `now`: size first, then age. Never for an empty
    /// buffer.
    pub fn due(&self, hints: &BufferingHints, now: Duration) -> Option<FlushReason> {
        if self.records.is_empty() {
            return None;
        }
        if self.bytes >= hints.size_bytes() {
            return Some(FlushReason::Size);
        }
        if now.saturating_sub(self.opened_at) >= hints.interval() {
            return Some(FlushReason::Interval);
        }
        None
    }

    /// How long until the interval hint is reached (`None` when empty).
    pub fn time_left(&self, hints: &BufferingHints, now: Duration) -> Option<Duration> {
        if self.records.is_empty() {
            return None;
        }
        Some(
            hints
                .interval()
                .saturating_sub(now.saturating_sub(self.opened_at)),
        )
    }

    /// The records (cheap clones) for building an object; the buffer keeps them until
    /// [`Buffer::clear`] (after the object is durable).
    pub fn records(&self) -> Vec<Bytes> {
        self.records.clone()
    }

    /// Empties the buffer.
    pub fn clear(&mut self) {
        *self = Buffer::default();
    }
}

/// The object body of `records`: concatenated with no delimiter, GZIP-compressed if asked.
/// CPU-bound: call it from a blocking thread for large buffers.
pub fn encode(records: &[Bytes], compression: Compression) -> Result<Bytes, FirehoseError> {
    let total: usize = records.iter().map(Bytes::len).sum();
    match compression {
        Compression::Uncompressed => {
            let mut body = Vec::with_capacity(total);
            for record in records {
                body.extend_from_slice(record);
            }
            Ok(Bytes::from(body))
        }
        Compression::Gzip => {
            let io_error = |source| FirehoseError::Io {
                action: "compressing",
                path: "object body".into(),
                source,
            };
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(total / 4 + 64),
                flate2::Compression::default(),
            );
            for record in records {
                encoder.write_all(record).map_err(io_error)?;
            }
            Ok(Bytes::from(encoder.finish().map_err(io_error)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    const MIB: usize = 1024 * 1024;

    fn hints(size_mib: u32, interval_secs: u32) -> BufferingHints {
        BufferingHints {
            size_mib,
            interval_secs,
        }
    }

    #[test]
    fn flushes_at_the_size_or_the_interval_whichever_first() {
        struct Case {
            hints: BufferingHints,
            record_sizes: &'static [usize],
            opened_secs: u64,
            now_secs: u64,
            expected: Option<FlushReason>,
        }
        let cases = [
            Case {
                hints: hints(1, 60),
                record_sizes: &[],
                opened_secs: 0,
                now_secs: 1000,
                expected: None,
            },
            Case {
                hints: hints(1, 60),
                record_sizes: &[10],
                opened_secs: 0,
                now_secs: 59,
                expected: None,
            },
            Case {
                hints: hints(1, 60),
                record_sizes: &[10],
                opened_secs: 0,
                now_secs: 60,
                expected: Some(FlushReason::Interval),
            },
            Case {
                hints: hints(1, 60),
                record_sizes: &[10],
                opened_secs: 30,
                now_secs: 89,
                expected: None,
            },
            Case {
                hints: hints(1, 60),
                record_sizes: &[MIB - 1],
                opened_secs: 0,
                now_secs: 1,
                expected: None,
            },
            Case {
                hints: hints(1, 60),
                record_sizes: &[MIB - 1, 1],
                opened_secs: 0,
                now_secs: 1,
                expected: Some(FlushReason::Size),
            },
            Case {
                hints: hints(1, 60),
                record_sizes: &[MIB, 1],
                opened_secs: 0,
                now_secs: 100,
                expected: Some(FlushReason::Size),
            },
            Case {
                hints: hints(1, 0),
                record_sizes: &[1],
                opened_secs: 5,
                now_secs: 5,
                expected: Some(FlushReason::Interval),
            },
            Case {
                hints: hints(128, 900),
                record_sizes: &[MIB; 127],
                opened_secs: 0,
                now_secs: 899,
                expected: None,
            },
        ];
        for (index, case) in cases.iter().enumerate() {
            let mut buffer = Buffer::new();
            for (n, size) in case.record_sizes.iter().enumerate() {
                // Later records do not move the interval's start.
                let at = Duration::from_secs(case.opened_secs + n as u64);
                buffer.push(Bytes::from(vec![b'x'; *size]), EpochMillis(0), at, None, 0);
            }
            assert_eq!(
                buffer.due(&case.hints, Duration::from_secs(case.now_secs)),
                case.expected,
                "case {index}"
            );
        }
    }

    #[test]
    fn the_first_record_opens_the_buffer() {
        let mut buffer = Buffer::new();
        let resume = ExtendedSequenceNumber::TRIM_HORIZON;
        buffer.push(
            Bytes::from_static(b"a"),
            EpochMillis(7),
            Duration::from_secs(3),
            Some(resume),
            4,
        );
        buffer.push(
            Bytes::from_static(b"bc"),
            EpochMillis(9),
            Duration::from_secs(8),
            None,
            5,
        );
        assert_eq!((buffer.len(), buffer.bytes()), (2, 3));
        assert_eq!(buffer.first_arrival(), EpochMillis(7));
        assert_eq!(buffer.resume_point(), Some(resume));
        assert_eq!(buffer.opened_order(), 4);
        let hints = hints(1, 10);
        assert_eq!(
            buffer.time_left(&hints, Duration::from_secs(8)),
            Some(Duration::from_secs(5))
        );
        buffer.clear();
        assert!(buffer.is_empty());
        assert_eq!(buffer.time_left(&hints, Duration::from_secs(8)), None);
    }

    #[test]
    fn bodies_concatenate_and_gzip_round_trips() {
        let records = vec![
            Bytes::from_static(b"one\n"),
            Bytes::from_static(b"two"),
            Bytes::new(),
        ];
        let plain = encode(&records, Compression::Uncompressed).unwrap();
        assert_eq!(&plain[..], b"one\ntwo");
        let gz = encode(&records, Compression::Gzip).unwrap();
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, b"one\ntwo");
    }
}
