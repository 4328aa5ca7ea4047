//! Tamper-evident tokens: shard iterators and pagination tokens.
//!
//! A token is `base64(kind ‖ payload ‖ created_at ‖ HMAC-SHA256(key, kind ‖ payload ‖
//! created_at))`. The key is random per broker (persisted in the metadata snapshot), so a
//! forged or corrupted token fails the MAC check, and `created_at` gives its age.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use kcl_core::kinesis::{EpochMillis, SequenceNumber};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a token is for; a token of one kind is never accepted as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum TokenKind {
    ShardIterator = 1,
    ListShards = 2,
    ListStreams = 3,
    ListStreamConsumers = 4,
}

const MAC_LEN: usize = 32;

/// Signs and verifies tokens with one key.
#[derive(Clone)]
pub(crate) struct TokenSealer {
    key: [u8; 32],
}

impl std::fmt::Debug for TokenSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSealer { key: <redacted> }")
    }
}

impl TokenSealer {
    pub(crate) fn new(key: [u8; 32]) -> Self {
        TokenSealer { key }
    }

    pub(crate) fn key(&self) -> [u8; 32] {
        self.key
    }

    fn mac(&self, body: &[u8]) -> [u8; MAC_LEN] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// Seals `payload` created at `created_at`.
    pub(crate) fn seal(&self, kind: TokenKind, payload: &[u8], created_at: EpochMillis) -> String {
        let mut body = Vec::with_capacity(1 + payload.len() + 8 + MAC_LEN);
        body.push(kind as u8);
        body.extend_from_slice(payload);
        body.extend_from_slice(&created_at.0.to_be_bytes());
        let mac = self.mac(&body);
        body.extend_from_slice(&mac);
        STANDARD.encode(body)
    }

    /// Opens a token of `kind`: its payload and creation time, or `None` if it is malformed,
    /// of another kind, or forged.
    pub(crate) fn open(&self, kind: TokenKind, token: &str) -> Option<(Vec<u8>, EpochMillis)> {
        if token.len() > 4096 {
            return None;
        }
        let mut body = STANDARD.decode(token).ok()?;
        if body.len() < 1 + 8 + MAC_LEN || body[0] != kind as u8 {
            return None;
        }
        let mac_start = body.len() - MAC_LEN;
        let expected = self.mac(&body[..mac_start]);
        if !constant_time_eq(&expected, &body[mac_start..]) {
            return None;
        }
        body.truncate(mac_start);
        let time_start = body.len() - 8;
        let created_at = i64::from_be_bytes(body[time_start..].try_into().ok()?);
        body.truncate(time_start);
        body.remove(0);
        Some((body, EpochMillis(created_at)))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Builds a token payload.
#[derive(Debug, Default)]
pub(crate) struct PayloadWriter {
    bytes: Vec<u8>,
}

impl PayloadWriter {
    pub(crate) fn u64(mut self, value: u64) -> Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn i64(mut self, value: i64) -> Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn u8(mut self, value: u8) -> Self {
        self.bytes.push(value);
        self
    }

    pub(crate) fn str(mut self, value: &str) -> Self {
        let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
        self.bytes.extend_from_slice(&len.to_be_bytes());
        self.bytes
            .extend_from_slice(&value.as_bytes()[..usize::from(len)]);
        self
    }

    pub(crate) fn sequence(self, value: SequenceNumber) -> Self {
        let (high, low) = value.to_parts();
        let mut this = self;
        this.bytes.extend_from_slice(&high.to_be_bytes());
        this.bytes.extend_from_slice(&low.to_be_bytes());
        this
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads a token payload written by [`PayloadWriter`].
#[derive(Debug)]
pub(crate) struct PayloadReader<'a> {
    bytes: &'a [u8],
}

impl<'a> PayloadReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        PayloadReader { bytes }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    pub(crate) fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    pub(crate) fn str(&mut self) -> Option<&'a str> {
        let len = u16::from_be_bytes(self.take(2)?.try_into().ok()?);
        std::str::from_utf8(self.take(usize::from(len))?).ok()
    }

    pub(crate) fn sequence(&mut self) -> Option<SequenceNumber> {
        let high = u128::from_be_bytes(self.take(16)?.try_into().ok()?);
        let low = u128::from_be_bytes(self.take(16)?.try_into().ok()?);
        Some(SequenceNumber::from_parts(high, low))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Formats a wall-clock time as Java's `Date.toString()` does in UTC
/// (`Wed Nov 25 20:00:00 UTC 2026`), the format of Kinesis's expiry messages.
pub(crate) fn format_java_date(time: EpochMillis) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let seconds = time.0.div_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let weekday = DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let month_name = MONTHS[usize::try_from(month - 1).unwrap_or(0)];
    format!(
        "{weekday} {month_name} {day:02} {:02}:{:02}:{:02} UTC {year}",
        second_of_day / 3600,
        (second_of_day / 60) % 60,
        second_of_day % 60
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month 1–12, day 1–31),
/// counting in 400-year eras of 146,097 days.
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468; // days since 0000-03-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // 0 = March
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_tokens_open_and_forgeries_do_not() {
        let sealer = TokenSealer::new([7; 32]);
        let payload = PayloadWriter::default().str("stream").u64(3).finish();
        let token = sealer.seal(TokenKind::ShardIterator, &payload, EpochMillis(42));
        assert!(token.len() <= 512);
        let (opened, created) = sealer
            .open(TokenKind::ShardIterator, &token)
            .expect("opens");
        assert_eq!((opened, created), (payload, EpochMillis(42)));
        assert!(sealer.open(TokenKind::ListShards, &token).is_none());
        assert!(
            TokenSealer::new([8; 32])
                .open(TokenKind::ShardIterator, &token)
                .is_none()
        );
        let mut tampered = token.clone().into_bytes();
        tampered[6] = if tampered[6] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert!(sealer.open(TokenKind::ShardIterator, &tampered).is_none());
        assert!(
            sealer
                .open(TokenKind::ShardIterator, "not base64!")
                .is_none()
        );
        assert!(sealer.open(TokenKind::ShardIterator, "").is_none());
    }

    #[test]
    fn java_dates_match_known_days() {
        assert_eq!(
            format_java_date(EpochMillis(0)),
            "Thu Jan 01 00:00:00 UTC 1970"
        );
        // 2026-11-25T20:00:15Z
        assert_eq!(
            format_java_date(EpochMillis(1_795_636_815_000)),
            "Wed Nov 25 20:00:15 UTC 2026"
        );
        // 2000-02-29T12:34:56Z, a leap day.
        assert_eq!(
            format_java_date(EpochMillis(951_827_696_000)),
            "Tue Feb 29 12:34:56 UTC 2000"
        );
    }
}
