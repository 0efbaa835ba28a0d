//! RFC 3339 timestamps written digit by digit: the JSON answers carry
//! several, and `time`'s general format interpreter costs about a thousand
//! instructions for each. The output is byte for byte that of `time`'s own
//! `Rfc3339` (tested below), which stays the path for what this does not
//! cover (an offset other than UTC, a year outside 0–9999).

use serde::Serializer;
use time::OffsetDateTime;

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, the longest UTC form.
const LONGEST: usize = 30;

/// Serializes `t` as RFC 3339 (`#[serde(serialize_with = …)]`).
pub fn serialize<S: Serializer>(t: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; LONGEST];
    match utc(*t, &mut buf) {
        Some(text) => serializer.serialize_str(text),
        None => time::serde::rfc3339::serialize(t, serializer),
    }
}

/// `t` written into `buf`, if it is in UTC and between years 0 and 9999.
fn utc(t: OffsetDateTime, buf: &mut [u8; LONGEST]) -> Option<&str> {
    if !t.offset().is_utc() {
        return None;
    }
    let (year, month, day) = t.to_calendar_date();
    let year = u32::try_from(year).ok().filter(|y| *y <= 9999)?;
    let (hour, minute, second, nanos) = t.to_hms_nano();
    let mut at = 0;
    let mut put = |value: u32, digits: usize, after: Option<u8>| {
        let mut rest = value;
        for place in (at..at + digits).rev() {
            if let Some(slot) = buf.get_mut(place) {
                // `rest % 10` is a single digit.
                *slot = b'0' + (rest % 10) as u8;
            }
            rest /= 10;
        }
        at += digits;
        if let (Some(byte), Some(slot)) = (after, buf.get_mut(at)) {
            *slot = byte;
            at += 1;
        }
    };
    put(year, 4, Some(b'-'));
    put(u32::from(u8::from(month)), 2, Some(b'-'));
    put(u32::from(day), 2, Some(b'T'));
    put(u32::from(hour), 2, Some(b':'));
    put(u32::from(minute), 2, Some(b':'));
    put(u32::from(second), 2, None);
    if nanos != 0 {
        // As `time` does: only the fraction's significant digits.
        let mut digits = 9;
        let mut fraction = nanos;
        while fraction % 10 == 0 {
            fraction /= 10;
            digits -= 1;
        }
        put(0, 0, Some(b'.'));
        put(fraction, digits, None);
    }
    put(0, 0, Some(b'Z'));
    std::str::from_utf8(buf.get(..at)?).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use time::format_description::well_known::Rfc3339;
    use time::{Duration, UtcOffset};

    use super::*;

    fn ours(t: OffsetDateTime) -> String {
        serialize(&t, serde_json::value::Serializer)
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn writes_what_time_writes() {
        let mut cases = vec![
            OffsetDateTime::UNIX_EPOCH,
            OffsetDateTime::UNIX_EPOCH + Duration::nanoseconds(1),
            OffsetDateTime::UNIX_EPOCH + Duration::milliseconds(500),
            OffsetDateTime::UNIX_EPOCH + Duration::milliseconds(120),
            OffsetDateTime::UNIX_EPOCH - Duration::nanoseconds(1),
            time::macros::datetime!(0000-01-01 00:00:00 UTC),
            time::macros::datetime!(9999-12-31 23:59:59.999999999 UTC),
            time::macros::datetime!(2024-02-29 12:34:56.000000010 UTC),
            time::macros::datetime!(2026-12-01 10:00:00 +02:00),
        ];
        // A spread of instants from year 0 to 9999, by a fixed sequence.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let seconds = (x % 315_537_897_600) as i64 - 62_167_219_200;
            let nanos = match x % 4 {
                0 => 0,
                1 => (x >> 20) % 1000 * 1_000_000,
                _ => (x >> 20) % 1_000_000_000,
            } as i64;
            cases.push(
                OffsetDateTime::from_unix_timestamp(seconds).unwrap()
                    + Duration::nanoseconds(nanos),
            );
        }
        for t in cases {
            assert_eq!(ours(t), t.format(&Rfc3339).unwrap(), "{t:?}");
            let east = t.checked_to_offset(UtcOffset::from_hms(5, 30, 0).unwrap());
            if let Some(east) = east {
                assert_eq!(ours(east), east.format(&Rfc3339).unwrap(), "{east:?}");
            }
        }
    }

    #[test]
    fn years_rfc_3339_cannot_write_fail_as_time_fails() {
        let t = time::macros::datetime!(-0001-12-31 23:59:59 UTC);
        assert!(serialize(&t, serde_json::value::Serializer).is_err());
    }
}
