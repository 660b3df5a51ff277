//! API errors as JSON: `{"error": message, "status": code}`.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::answers::ErrorBody;

/// An error answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// An unknown view, key or route.
    #[error("{0}")]
    NotFound(String),
    /// A parameter that cannot be used.
    #[error("{0}")]
    BadRequest(String),
    /// State that could not be read.
    #[error("{0}")]
    Internal(String),
    /// A dependency (the broker) is down: the caller should retry later.
    #[error("{message}; retry in {retry_after_seconds} s")]
    Unavailable {
        message: String,
        retry_after_seconds: u64,
    },
}

impl From<sluice_state::StateError> for ApiError {
    fn from(error: sluice_state::StateError) -> Self {
        ApiError::Internal(format!("cannot read state: {error}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        };
        let body = ErrorBody {
            error: self.to_string(),
            status: status.as_u16(),
        };
        let mut response = (status, Json(body)).into_response();
        if let ApiError::Unavailable {
            retry_after_seconds,
            ..
        } = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after_seconds.into());
        }
        response
    }
}
