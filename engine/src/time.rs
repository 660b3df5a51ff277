//! Event time: parsing the contract's timestamps and formatting window bounds.
//!
//! The contract accepts ISO-8601 strings (a string without a zone is UTC) and epoch
//! milliseconds. Inside the engine every event time is epoch milliseconds in an `i64`.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An event time in epoch milliseconds, read from ISO-8601 or epoch milliseconds and
/// written as RFC 3339 UTC with milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventTime(pub i64);

impl EventTime {
    /// Epoch milliseconds.
    pub fn millis(self) -> i64 {
        self.0
    }
}

/// Parses an ISO-8601 timestamp (zoned, or UTC when the zone is missing) or decimal epoch
/// milliseconds into epoch milliseconds.
pub fn parse_timestamp(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return text
            .parse::<i64>()
            .map_err(|_| format!("`{text}` is not a valid epoch-millisecond timestamp"));
    }
    if let Ok(zoned) = DateTime::parse_from_rfc3339(text) {
        return Ok(zoned.timestamp_millis());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(naive.and_utc().timestamp_millis());
        }
    }
    Err(format!(
        "`{text}` is not an ISO-8601 timestamp (e.g. 2024-01-15T10:30:00) or epoch milliseconds"
    ))
}

/// Formats epoch milliseconds as RFC 3339 UTC with milliseconds, e.g. `2024-01-15T10:30:00.000Z`.
pub fn format_millis(millis: i64) -> String {
    match rfc3339_millis(millis) {
        Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        None => match DateTime::<Utc>::from_timestamp_millis(millis) {
            Some(time) => time.to_rfc3339_opts(SecondsFormat::Millis, true),
            None => millis.to_string(),
        },
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for years 0 to 9999, written without allocating: every
/// output event carries one, so chrono's general formatter would be a hot spot.
fn rfc3339_millis(millis: i64) -> Option<[u8; 24]> {
    const DAY_MS: i64 = 86_400_000;
    let (year, month, day) = civil_from_days(millis.div_euclid(DAY_MS));
    if !(0..=9999).contains(&year) {
        return None;
    }
    let in_day = millis.rem_euclid(DAY_MS);
    let fields = [
        (year, 4),
        (i64::from(month), 2),
        (i64::from(day), 2),
        (in_day / 3_600_000, 2),
        (in_day / 60_000 % 60, 2),
        (in_day / 1000 % 60, 2),
        (in_day % 1000, 3),
    ];
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut at = 0;
    for (value, width) in fields {
        let mut value = value;
        for position in (at..at + width).rev() {
            out[position] = b'0' + (value % 10) as u8;
            value /= 10;
        }
        at += width + 1;
    }
    Some(out)
}

/// The proleptic Gregorian `(year, month, day)` of a count of days since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl Serialize for EventTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match rfc3339_millis(self.0) {
            Some(bytes) => serializer.serialize_str(std::str::from_utf8(&bytes).unwrap_or("")),
            None => serializer.serialize_str(&format_millis(self.0)),
        }
    }
}

impl<'de> Deserialize<'de> for EventTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EventTimeVisitor)
    }
}

struct EventTimeVisitor;

impl Visitor<'_> for EventTimeVisitor {
    type Value = EventTime;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an ISO-8601 timestamp string or epoch milliseconds")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<EventTime, E> {
        parse_timestamp(text).map(EventTime).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, millis: i64) -> Result<EventTime, E> {
        Ok(EventTime(millis))
    }

    fn visit_u64<E: de::Error>(self, millis: u64) -> Result<EventTime, E> {
        i64::try_from(millis)
            .map(EventTime)
            .map_err(|_| E::custom("epoch milliseconds out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_contract_formats() {
        let utc = 1_705_314_600_000;
        assert_eq!(parse_timestamp("2024-01-15T10:30:00"), Ok(utc));
        assert_eq!(parse_timestamp("2024-01-15T10:30:00Z"), Ok(utc));
        assert_eq!(parse_timestamp("2024-01-15T12:30:00+02:00"), Ok(utc));
        assert_eq!(parse_timestamp("2024-01-15T10:30:00.250"), Ok(utc + 250));
        assert_eq!(parse_timestamp("1705314600000"), Ok(utc));
        assert!(parse_timestamp("yesterday").is_err());
        assert!(parse_timestamp("").is_err());
    }

    #[test]
    fn event_times_read_strings_and_numbers_and_write_rfc3339() {
        let from_string: EventTime = serde_json::from_str("\"2024-01-15T10:30:00\"").unwrap();
        let from_number: EventTime = serde_json::from_str("1705314600000").unwrap();
        assert_eq!(from_string, from_number);
        assert_eq!(
            serde_json::to_string(&from_string).unwrap(),
            "\"2024-01-15T10:30:00.000Z\""
        );
        assert!(serde_json::from_str::<EventTime>("true").is_err());
    }

    fn chrono_rfc3339(millis: i64) -> String {
        DateTime::<Utc>::from_timestamp_millis(millis)
            .map(|time| time.to_rfc3339_opts(SecondsFormat::Millis, true))
            .unwrap_or_default()
    }

    #[test]
    fn formatting_agrees_with_chrono_at_the_edges() {
        for millis in [
            0,
            -1,
            1_705_314_600_000,
            951_782_400_000,     // 2000-02-29
            -62_167_219_200_000, // 0000-01-01
            253_402_300_799_999, // 9999-12-31T23:59:59.999
        ] {
            assert_eq!(format_millis(millis), chrono_rfc3339(millis), "{millis}");
        }
        // Outside four-digit years, chrono's own format is used.
        assert_eq!(
            format_millis(253_402_300_800_000),
            chrono_rfc3339(253_402_300_800_000)
        );
    }

    proptest::proptest! {
        #[test]
        fn formatting_agrees_with_chrono(millis in -62_167_219_200_000i64..253_402_300_800_000) {
            proptest::prop_assert_eq!(format_millis(millis), chrono_rfc3339(millis));
        }
    }
}
