//! Sequence numbers: decimal strings compared as numbers.
//!
//! Kinesis writes sequence numbers as decimal strings of up to 129 digits and in practice uses
//! 56 digits, more than a `u128` holds. [`SequenceNumber`] keeps the value as a 256-bit unsigned
//! integer (up to 77 digits), so it is `Copy`, compares numerically and never allocates.

use std::fmt;
use std::str::FromStr;

/// A Kinesis sequence number, ordered numerically.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SequenceNumber {
    // Field order matters: the derived `Ord` compares `high` first.
    high: u128,
    low: u128,
}

/// Why a string is not a valid sequence number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseSequenceNumberError {
    /// The string is empty, has a non-digit, or has a leading zero.
    #[error("sequence number must match 0|([1-9]\\d{{0,128}}), got {0:?}")]
    Malformed(String),
    /// The value does not fit 256 bits (more than 77 digits).
    #[error("sequence number {0:?} is larger than this implementation supports (2^256-1)")]
    TooLarge(String),
}

const TEN_POW_19: u64 = 10_000_000_000_000_000_000;

impl SequenceNumber {
    /// The smallest sequence number, zero.
    pub const ZERO: SequenceNumber = SequenceNumber { high: 0, low: 0 };

    /// A sequence number from a value that fits 128 bits.
    pub const fn from_u128(value: u128) -> Self {
        SequenceNumber {
            high: 0,
            low: value,
        }
    }

    /// A sequence number from its high and low 128-bit halves.
    pub const fn from_parts(high: u128, low: u128) -> Self {
        SequenceNumber { high, low }
    }

    /// The high and low 128-bit halves.
    pub const fn to_parts(self) -> (u128, u128) {
        (self.high, self.low)
    }

    /// The value as a `u128`, if it fits.
    pub const fn to_u128(self) -> Option<u128> {
        if self.high == 0 { Some(self.low) } else { None }
    }

    /// The next sequence number (saturating at the maximum).
    pub fn successor(self) -> Self {
        match self.low.checked_add(1) {
            Some(low) => SequenceNumber {
                high: self.high,
                low,
            },
            None => SequenceNumber {
                high: self.high.saturating_add(1),
                low: if self.high == u128::MAX { u128::MAX } else { 0 },
            },
        }
    }

    /// `self * 10^19 + digit_chunk`, or `None` on overflow.
    fn mul_add(self, multiplier: u64, addend: u64) -> Option<Self> {
        let m = u128::from(multiplier);
        let low_lo = (self.low & u128::from(u64::MAX)) * m + u128::from(addend);
        let low_hi = (self.low >> 64) * m + (low_lo >> 64);
        let low = (low_hi << 64) | (low_lo & u128::from(u64::MAX));
        let carry = low_hi >> 64;
        let high = self.high.checked_mul(m)?.checked_add(carry)?;
        Some(SequenceNumber { high, low })
    }

    /// `(self / divisor, self % divisor)`.
    fn div_rem(self, divisor: u64) -> (Self, u64) {
        let d = u128::from(divisor);
        let mut remainder: u128 = 0;
        let mut quotient = [0u128; 4];
        let limbs = [
            self.high >> 64,
            self.high & u128::from(u64::MAX),
            self.low >> 64,
            self.low & u128::from(u64::MAX),
        ];
        for (i, limb) in limbs.iter().enumerate() {
            let current = (remainder << 64) | limb;
            quotient[i] = current / d;
            remainder = current % d;
        }
        let q = SequenceNumber {
            high: (quotient[0] << 64) | quotient[1],
            low: (quotient[2] << 64) | quotient[3],
        };
        (q, remainder as u64)
    }
}

impl FromStr for SequenceNumber {
    type Err = ParseSequenceNumberError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        let well_formed = !bytes.is_empty()
            && bytes.len() <= 129
            && bytes.iter().all(u8::is_ascii_digit)
            && (bytes.len() == 1 || bytes[0] != b'0');
        if !well_formed {
            return Err(ParseSequenceNumberError::Malformed(s.to_owned()));
        }
        if bytes.len() <= 38 {
            // Fast path: always fits a u128.
            let value = s
                .parse::<u128>()
                .map_err(|_| ParseSequenceNumberError::Malformed(s.to_owned()))?;
            return Ok(SequenceNumber::from_u128(value));
        }
        let mut value = SequenceNumber::ZERO;
        for chunk in bytes.chunks(19) {
            let chunk_value: u64 = chunk
                .iter()
                .fold(0u64, |acc, digit| acc * 10 + u64::from(digit - b'0'));
            let multiplier = 10u64.pow(chunk.len() as u32);
            value = value
                .mul_add(multiplier, chunk_value)
                .ok_or_else(|| ParseSequenceNumberError::TooLarge(s.to_owned()))?;
        }
        Ok(value)
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.high == 0 {
            return write!(f, "{}", self.low);
        }
        // Peel off 19-digit chunks from the least significant end.
        let mut chunks = Vec::with_capacity(5);
        let mut rest = *self;
        while rest.high != 0 {
            let (quotient, remainder) = rest.div_rem(TEN_POW_19);
            chunks.push(remainder);
            rest = quotient;
        }
        write!(f, "{}", rest.low)?;
        for chunk in chunks.iter().rev() {
            write!(f, "{chunk:019}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SequenceNumber({self})")
    }
}

impl serde::Serialize for SequenceNumber {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SequenceNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints_aws_sized_numbers() {
        let aws = "49590338271490256608559692538361571095921575989136588898";
        let parsed: SequenceNumber = aws.parse().expect("valid");
        assert_eq!(parsed.to_string(), aws);
        assert!(parsed.to_u128().is_none());
    }

    #[test]
    fn rejects_malformed_input() {
        for bad in ["", "01", "12a", "-1", " 1", "1.0"] {
            assert!(bad.parse::<SequenceNumber>().is_err(), "{bad:?}");
        }
        let too_large = "9".repeat(78);
        assert!(matches!(
            too_large.parse::<SequenceNumber>(),
            Err(ParseSequenceNumberError::TooLarge(_))
        ));
    }

    #[test]
    fn orders_numerically_not_lexically() {
        let small: SequenceNumber = "9".parse().expect("valid");
        let big: SequenceNumber = "10".parse().expect("valid");
        assert!(small < big);
        let max_u128 = SequenceNumber::from_u128(u128::MAX);
        assert!(max_u128 < max_u128.successor());
        assert_eq!(
            max_u128.successor().to_string(),
            "340282366920938463463374607431768211456"
        );
    }

    proptest! {
        #[test]
        fn display_round_trips(high in any::<u128>(), low in any::<u128>()) {
            let value = SequenceNumber::from_parts(high >> 3, low);
            let text = value.to_string();
            prop_assert_eq!(text.parse::<SequenceNumber>(), Ok(value));
        }

        #[test]
        fn order_matches_decimal_order(a in any::<(u128, u128)>(), b in any::<(u128, u128)>()) {
            let x = SequenceNumber::from_parts(a.0 >> 3, a.1);
            let y = SequenceNumber::from_parts(b.0 >> 3, b.1);
            let (xs, ys) = (x.to_string(), y.to_string());
            let decimal_order = xs.len().cmp(&ys.len()).then_with(|| xs.cmp(&ys));
            prop_assert_eq!(x.cmp(&y), decimal_order);
        }
    }
}
