//! Collects Kinesis records into one `PutRecords` request within the record-count and byte
//! limits (Kinesis: 500 records, 5 MiB of data plus partition keys).

/// The limits of one `PutRecords` request and what a request being built holds so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collector {
    max_records: usize,
    max_bytes: usize,
    records: usize,
    bytes: usize,
}

impl Collector {
    /// An empty request of at most `max_records` records and `max_bytes` bytes.
    pub fn new(max_records: usize, max_bytes: usize) -> Self {
        Collector {
            max_records: max_records.max(1),
            max_bytes,
            records: 0,
            bytes: 0,
        }
    }

    /// Whether a record of `size` bytes fits. An empty request takes any one record, so an
    /// oversized record is still sent (and rejected by the service with a clear error).
    pub fn fits(&self, size: usize) -> bool {
        if self.records == 0 {
            return true;
        }
        self.records < self.max_records && self.bytes + size <= self.max_bytes
    }

    /// Counts a record of `size` bytes in.
    pub fn add(&mut self, size: usize) {
        self.records += 1;
        self.bytes += size;
    }

    /// Whether no further record can fit (the count limit is reached or the bytes are used up).
    pub fn is_full(&self) -> bool {
        self.records >= self.max_records || self.bytes >= self.max_bytes
    }

    /// Records counted in.
    pub fn records(&self) -> usize {
        self.records
    }

    /// Bytes counted in.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// Splits `sizes` into consecutive requests (the order is kept), each as large as the limits
/// allow: the packing rule the producer's task and `batch::next_batch` apply record by record.
#[cfg(test)]
fn split_into_requests(sizes: &[usize], max_records: usize, max_bytes: usize) -> Vec<usize> {
    let mut lengths = Vec::new();
    let mut current = Collector::new(max_records, max_bytes);
    for size in sizes {
        if !current.fits(*size) {
            lengths.push(current.records());
            current = Collector::new(max_records, max_bytes);
        }
        current.add(*size);
    }
    if current.records() > 0 {
        lengths.push(current.records());
    }
    lengths
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn requests_respect_the_record_and_byte_limits() {
        let cases: [(Vec<usize>, usize, Vec<usize>); 4] = [
            (vec![10; 1200], 500, vec![500, 500, 200]),
            (vec![10; 7], 3, vec![3, 3, 1]),
            (vec![MIB + 1; 9], 500, vec![4, 4, 1]),
            (vec![6 * MIB, 10], 500, vec![1, 1]),
        ];
        for (sizes, max_records, expected) in cases {
            assert_eq!(
                split_into_requests(&sizes, max_records, 5 * MIB),
                expected,
                "{max_records}"
            );
        }
    }

    proptest! {
        /// Every record is in exactly one request, in order, and a request over a limit holds
        /// a single record.
        #[test]
        fn requests_never_exceed_the_limits(
            sizes in proptest::collection::vec(0usize..200_000, 0..2_000),
            max_records in 1usize..600,
            max_bytes in 1usize..2_000_000,
        ) {
            let lengths = split_into_requests(&sizes, max_records, max_bytes);
            prop_assert_eq!(lengths.iter().sum::<usize>(), sizes.len());
            let mut start = 0;
            for length in lengths {
                prop_assert!(length >= 1);
                prop_assert!(length <= max_records);
                let bytes: usize = sizes[start..start + length].iter().sum();
                prop_assert!(length == 1 || bytes <= max_bytes);
                start += length;
            }
        }
    }
}
