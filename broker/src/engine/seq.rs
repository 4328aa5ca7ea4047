//! Sequence numbers the way the engine hands them out.
//!
//! Every stream has one counter; a sequence number is `BASE + counter`, a 56-digit decimal like
//! Kinesis's. Values are taken under the shard's write lock, so they increase within a shard,
//! and a child shard only takes values after its parents were closed, so every child record
//! sorts after every parent record.

use kcl_core::kinesis::SequenceNumber;

/// `49500000000000000000000000000000000000000000000000000000` (56 digits) as 256 bits.
const BASE_DECIMAL: &str = "49500000000000000000000000000000000000000000000000000000";

fn base() -> SequenceNumber {
    static BASE: std::sync::OnceLock<SequenceNumber> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        BASE_DECIMAL
            .parse()
            .unwrap_or(SequenceNumber::from_parts(1, 0))
    })
}

/// How far a restored stream's counter jumps past the last recovered sequence number: more than
/// a crashed process could ever have handed out without persisting (2^40 records), while leaving
/// room for millions of restarts in the 64-bit counter.
pub(crate) const RESTART_GAP: u64 = 1 << 40;

/// The sequence number of counter value `counter`.
pub(crate) fn from_counter(counter: u64) -> SequenceNumber {
    let (high, low) = base().to_parts();
    let (low, carry) = low.overflowing_add(u128::from(counter));
    SequenceNumber::from_parts(high + u128::from(carry), low)
}

/// The counter value of a sequence number this engine made, if it is one.
pub(crate) fn to_counter(sequence_number: SequenceNumber) -> Option<u64> {
    let (base_high, base_low) = base().to_parts();
    let (high, low) = sequence_number.to_parts();
    let (difference_low, borrow) = low.overflowing_sub(base_low);
    let difference_high = high
        .checked_sub(base_high)?
        .checked_sub(u128::from(borrow))?;
    if difference_high != 0 {
        return None;
    }
    u64::try_from(difference_low).ok()
}

/// The sequence number just below `sequence_number` (zero stays zero).
pub(crate) fn predecessor(sequence_number: SequenceNumber) -> SequenceNumber {
    let (high, low) = sequence_number.to_parts();
    match (high, low) {
        (_, 1..) => SequenceNumber::from_parts(high, low - 1),
        (1.., 0) => SequenceNumber::from_parts(high - 1, u128::MAX),
        (0, 0) => SequenceNumber::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_look_like_kinesis_and_round_trip() {
        let first = from_counter(0);
        assert_eq!(first.to_string(), BASE_DECIMAL);
        assert_eq!(from_counter(7).to_string().len(), 56);
        for counter in [0u64, 1, 12345, u64::MAX] {
            assert_eq!(to_counter(from_counter(counter)), Some(counter));
        }
        assert!(from_counter(1) > from_counter(0));
        assert_eq!(to_counter(SequenceNumber::from_u128(5)), None);
        assert_eq!(predecessor(from_counter(1)), from_counter(0));
        assert_eq!(predecessor(from_counter(0)).successor(), from_counter(0));
        assert_eq!(predecessor(SequenceNumber::ZERO), SequenceNumber::ZERO);
    }
}
