//! Input headers that travel with a record through the dataflow, so that every output
//! record derived from an input record carries that record's headers (a `traceparent`
//! above all), as Kafka Streams forwards a record's headers through its processors.
//!
//! What carries them: a source's records, and everything derived from one record by a
//! stateless step (`map`, `filter`, `flat_map`, `key_by`, a branch) or by a sequenced
//! process (the saga's events for an order carry the order's headers). What does not: a
//! window's or a table's changes, each of which many records made; their `sluice-id`
//! names the window or row instead. Sluice's own headers (`sluice-*`) are not carried:
//! each output gets its own.
//!
//! Most records have no headers, so the empty case is a null pointer; headers, when there
//! are some, are read once per input record and shared by everything derived from it.

use std::fmt;
use std::sync::Arc;

use serde::de::Deserializer;
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// The prefix of the headers Sluice writes itself.
pub const SLUICE_HEADER_PREFIX: &str = "sluice-";

/// Headers as name and value, in the order they came.
pub type HeaderList = Vec<(String, Vec<u8>)>;

/// A record's carried headers: a thin pointer, since records move a lot and most carry
/// nothing.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CarriedHeaders(Option<Arc<HeaderList>>);

impl CarriedHeaders {
    /// No headers.
    pub const NONE: CarriedHeaders = CarriedHeaders(None);

    /// The headers of `all` that are not Sluice's own.
    pub fn of(mut all: HeaderList) -> Self {
        // In place: the list read from the record is the one kept, one allocation a record.
        all.retain(|(name, _)| !name.starts_with(SLUICE_HEADER_PREFIX));
        if all.is_empty() {
            CarriedHeaders::NONE
        } else {
            CarriedHeaders(Some(Arc::new(all)))
        }
    }

    /// The headers, in order.
    pub fn as_slice(&self) -> &[(String, Vec<u8>)] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

impl fmt::Debug for CarriedHeaders {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_list()
            .entries(
                self.as_slice()
                    .iter()
                    .map(|(name, value)| (name, String::from_utf8_lossy(value))),
            )
            .finish()
    }
}

impl Serialize for CarriedHeaders {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CarriedHeaders {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<(String, Vec<u8>)>::deserialize(deserializer).map(CarriedHeaders::of)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sluice_headers_are_not_carried_and_none_is_empty() {
        let headers = CarriedHeaders::of(vec![
            ("traceparent".into(), b"00-1-2-01".to_vec()),
            ("sluice-id".into(), b"x".to_vec()),
            ("tenant".into(), Vec::new()),
        ]);
        assert_eq!(
            headers.as_slice(),
            [
                ("traceparent".to_string(), b"00-1-2-01".to_vec()),
                ("tenant".to_string(), Vec::new())
            ]
        );
        assert!(CarriedHeaders::of(vec![("sluice-id".into(), vec![])]).is_empty());
        let json = serde_json::to_string(&headers).unwrap();
        assert_eq!(
            serde_json::from_str::<CarriedHeaders>(&json).unwrap(),
            headers
        );
        assert_eq!(serde_json::to_string(&CarriedHeaders::NONE).unwrap(), "[]");
    }
}
