//! Query-string parameters, parsed by hand so that every mistake is a JSON 400 that names
//! the parameter.

use std::collections::HashMap;

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

    /// A plain string parameter.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}
