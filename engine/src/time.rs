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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    match DateTime::<Utc>::from_timestamp_millis(millis) {
        Some(time) => time.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => millis.to_string(),
    }
}

impl Serialize for EventTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_millis(self.0))
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
}
