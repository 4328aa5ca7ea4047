//! Checksummed frames: the unit of every log file.
//!
//! A frame is `payload length (u32 LE) | CRC32 of the payload (u32 LE) | payload`. A reader
//! stops at the first frame that is cut short (a torn write) or whose checksum does not match
//! (corruption); everything before it is intact.

/// Bytes of the frame header (length + checksum).
pub const HEADER_BYTES: usize = 8;

/// The largest payload a frame may carry (a maximal `PutRecords` batch fits many times over).
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024 * 1024;

/// Appends one frame holding `payload` to `out`.
pub fn encode_into(out: &mut Vec<u8>, payload: &[u8]) {
    out.reserve(HEADER_BYTES + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Starts a frame in `out`: reserves the header, to be filled by [`seal`] once the payload has
/// been appended after it. Returns the frame's start offset.
pub fn begin(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_BYTES]);
    start
}

/// Finishes the frame begun at `start`: everything after its header is the payload.
pub fn seal(out: &mut [u8], start: usize) {
    let payload = &out[start + HEADER_BYTES..];
    let length = (payload.len() as u32).to_le_bytes();
    let checksum = crc32fast::hash(payload).to_le_bytes();
    out[start..start + 4].copy_from_slice(&length);
    out[start + 4..start + HEADER_BYTES].copy_from_slice(&checksum);
}

/// Where and why reading frames stopped before the end of the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameDefect {
    /// The data ends inside a frame header or payload (a write cut short by a crash).
    Torn,
    /// A frame's checksum does not match its payload, or its length is impossible.
    Corrupt,
}

impl FrameDefect {
    /// A short description for reports.
    pub fn describe(self) -> &'static str {
        match self {
            FrameDefect::Torn => "torn frame (write cut short)",
            FrameDefect::Corrupt => "corrupt frame (checksum or length mismatch)",
        }
    }
}

/// One step of reading frames from a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<'a> {
    /// A whole, intact frame: its payload and the offset just after it.
    Frame(&'a [u8], usize),
    /// The end of the data, exactly at a frame boundary.
    End,
    /// A defect at the current offset; nothing from here on can be trusted.
    Defect(FrameDefect),
}

/// Reads the frame starting at `offset` of `data`.
pub fn next(data: &[u8], offset: usize) -> Next<'_> {
    let rest = &data[offset.min(data.len())..];
    if rest.is_empty() {
        return Next::End;
    }
    if rest.len() < HEADER_BYTES {
        return Next::Defect(FrameDefect::Torn);
    }
    let length = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let checksum = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    // A zero length is never written (payloads are never empty): it is a zero-filled tail.
    if length == 0 || length > MAX_PAYLOAD_BYTES {
        return Next::Defect(FrameDefect::Corrupt);
    }
    let Some(payload) = rest.get(HEADER_BYTES..HEADER_BYTES + length) else {
        return Next::Defect(FrameDefect::Torn);
    };
    if crc32fast::hash(payload) != checksum {
        return Next::Defect(FrameDefect::Corrupt);
    }
    Next::Frame(payload, offset + HEADER_BYTES + length)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frames(payloads: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for payload in payloads {
            encode_into(&mut out, payload);
        }
        out
    }

    fn read_all(data: &[u8]) -> (Vec<Vec<u8>>, usize, Option<FrameDefect>) {
        let mut offset = 0;
        let mut payloads = Vec::new();
        loop {
            match next(data, offset) {
                Next::Frame(payload, after) => {
                    payloads.push(payload.to_vec());
                    offset = after;
                }
                Next::End => return (payloads, offset, None),
                Next::Defect(defect) => return (payloads, offset, Some(defect)),
            }
        }
    }

    #[test]
    fn reads_back_what_was_written() {
        let payloads = vec![b"a".to_vec(), vec![7; 1000], b"xyz".to_vec()];
        let data = frames(&payloads);
        assert_eq!(read_all(&data), (payloads, data.len(), None));
    }

    #[test]
    fn begin_and_seal_equal_encode_into() {
        let mut direct = Vec::new();
        encode_into(&mut direct, b"payload");
        let mut staged = Vec::new();
        let start = begin(&mut staged);
        staged.extend_from_slice(b"payload");
        seal(&mut staged, start);
        assert_eq!(direct, staged);
    }

    #[test]
    fn zero_filled_tail_is_a_defect() {
        let mut data = frames(&[b"a".to_vec()]);
        let good = data.len();
        data.extend_from_slice(&[0; 64]);
        assert_eq!(read_all(&data).1, good);
        assert_eq!(read_all(&data).2, Some(FrameDefect::Corrupt));
    }

    proptest! {
        /// Cutting the data anywhere keeps exactly the frames wholly before the cut.
        #[test]
        fn truncation_keeps_a_prefix(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..64), 1..8),
            cut_fraction in 0.0f64..1.0,
        ) {
            let data = frames(&payloads);
            let cut = (data.len() as f64 * cut_fraction) as usize;
            let (read, offset, defect) = read_all(&data[..cut]);
            prop_assert!(offset <= cut);
            prop_assert_eq!(&read[..], &payloads[..read.len()]);
            let boundary = frames(&payloads[..read.len()]).len();
            prop_assert_eq!(offset, boundary);
            prop_assert_eq!(defect.is_none(), offset == cut);
        }

        /// Flipping any byte never yields a frame that was not written.
        #[test]
        fn corruption_is_detected(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..64), 1..6),
            index_fraction in 0.0f64..1.0,
            flip in 1u8..=255,
        ) {
            let mut data = frames(&payloads);
            let index = ((data.len() as f64 * index_fraction) as usize).min(data.len() - 1);
            data[index] ^= flip;
            let (read, _, _) = read_all(&data);
            for (got, want) in read.iter().zip(&payloads) {
                prop_assert_eq!(got, want);
            }
            prop_assert!(read.len() < payloads.len() || read == payloads);
        }
    }
}
