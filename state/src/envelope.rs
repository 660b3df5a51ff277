//! Versioned value envelopes.
//!
//! Every value starts with a format-version byte. A window value then carries a flags byte
//! (bit 0: the window is final), the window end as a big-endian `i64`, and the JSON of the
//! aggregate. A table value carries the JSON directly after the version. JSON keeps stored
//! aggregates readable by the HTTP API without knowing their Rust types.

use crate::codec::{decode_i64, encode_i64};
use crate::error::StateError;

/// The only format this version writes and reads.
pub const FORMAT_VERSION: u8 = 1;
const FINAL_FLAG: u8 = 0b1;

/// One window of a key, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowEntry {
    /// Inclusive start, epoch milliseconds.
    pub start: i64,
    /// Exclusive end, epoch milliseconds.
    pub end: i64,
    /// Whether the watermark has passed `end`, so the value can no longer change.
    pub is_final: bool,
    /// The aggregate as JSON.
    pub value_json: Vec<u8>,
}

/// Encodes the stored part of a window entry (the start lives in the key).
pub fn encode_window_value(end: i64, is_final: bool, value_json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value_json.len() + 10);
    out.push(FORMAT_VERSION);
    out.push(if is_final { FINAL_FLAG } else { 0 });
    out.extend_from_slice(&encode_i64(end));
    out.extend_from_slice(value_json);
    out
}

/// Decodes a window value stored for a window that starts at `start`.
pub fn decode_window_value(start: i64, bytes: &[u8]) -> Result<WindowEntry, StateError> {
    check_version(bytes)?;
    if bytes.len() < 10 {
        return Err(StateError::corrupt(
            "window value is shorter than its header",
        ));
    }
    let mut end = [0u8; 8];
    end.copy_from_slice(&bytes[2..10]);
    Ok(WindowEntry {
        start,
        end: decode_i64(end),
        is_final: bytes[1] & FINAL_FLAG != 0,
        value_json: bytes[10..].to_vec(),
    })
}

/// Encodes a table value.
pub fn encode_table_value(value_json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value_json.len() + 1);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(value_json);
    out
}

/// Decodes a table value into its JSON.
pub fn decode_table_value(bytes: &[u8]) -> Result<Vec<u8>, StateError> {
    check_version(bytes)?;
    Ok(bytes[1..].to_vec())
}

fn check_version(bytes: &[u8]) -> Result<(), StateError> {
    match bytes.first() {
        Some(&FORMAT_VERSION) => Ok(()),
        Some(other) => Err(StateError::corrupt(format!(
            "value has format version {other}, this build reads {FORMAT_VERSION}"
        ))),
        None => Err(StateError::corrupt("empty value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_values_round_trip() {
        let bytes = encode_window_value(120_000, true, br#"{"count":3}"#);
        let entry = decode_window_value(60_000, &bytes).unwrap();
        assert_eq!(entry.end, 120_000);
        assert!(entry.is_final);
        assert_eq!(entry.value_json, br#"{"count":3}"#);
    }

    #[test]
    fn unknown_versions_are_refused() {
        let mut bytes = encode_table_value(b"1");
        bytes[0] = 9;
        assert!(decode_table_value(&bytes).is_err());
        assert!(decode_window_value(0, &[FORMAT_VERSION, 0]).is_err());
    }
}
