//! Query-string parameters, parsed by hand so that every mistake is a JSON 400 that names
//! the parameter.

use std::collections::HashMap;

use sluice_state::KeyRange;

use super::error::ApiError;
use crate::time::parse_timestamp;

/// Largest page a scan returns.
pub const MAX_LIMIT: usize = 1000;
/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: usize = 100;

/// Parsed query parameters.
pub struct Params(HashMap<String, String>);

impl Params {
    /// Wraps the raw query map, refusing parameters this route does not know.
    pub fn new(raw: HashMap<String, String>, known: &[&str]) -> Result<Self, ApiError> {
        if let Some(unknown) = raw.keys().find(|name| !known.contains(&name.as_str())) {
            return Err(ApiError::BadRequest(format!(
                "unknown parameter `{unknown}`; this route takes {}",
                known.join(", ")
            )));
        }
        Ok(Params(raw))
    }

    /// An RFC 3339 or epoch-millisecond time, or `default` when absent.
    pub fn time(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        match self.0.get(name) {
            None => Ok(default),
            Some(text) => parse_timestamp(text)
                .map_err(|reason| ApiError::BadRequest(format!("parameter `{name}`: {reason}"))),
        }
    }

    /// The page size: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.0.get("limit") {
            None => Ok(DEFAULT_LIMIT),
            Some(text) => match text.parse::<usize>() {
                Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
                _ => Err(ApiError::BadRequest(format!(
                    "parameter `limit` must be a whole number from 1 to {MAX_LIMIT}, not `{text}`"
                ))),
            },
        }
    }

    /// The half-open time range `[from, to)`, unbounded where a side is absent.
    pub fn time_range(&self) -> Result<(i64, i64), ApiError> {
        let from = self.time("from", i64::MIN)?;
        let to = self.time("to", i64::MAX)?;
        if from >= to {
            return Err(ApiError::BadRequest("`from` must be before `to`".into()));
        }
        Ok((from, to))
    }

    /// The keys a scan visits: `[key_from, key_to)`, `prefix` and the cursor `after`.
    pub fn key_range(&self) -> Result<KeyRange<'_>, ApiError> {
        let bytes = |name: &str| self.text(name).map(str::as_bytes);
        let range = KeyRange {
            from: bytes("key_from"),
            to: bytes("key_to"),
            prefix: bytes("prefix"),
            after: bytes("after"),
        };
        if let (Some(from), Some(to)) = (range.from, range.to)
            && from >= to
        {
            return Err(ApiError::BadRequest(
                "`key_from` must sort before `key_to`".into(),
            ));
        }
        Ok(range)
    }

    /// A plain string parameter.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}
