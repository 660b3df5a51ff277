//! API errors as JSON: `{"error": message, "status": code}`, with `Retry-After` on a
//! 503 and `WWW-Authenticate` on a 401.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
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
    /// No token, or a wrong one, where the API needs it.
    #[error("{message}")]
    Unauthorized {
        message: String,
        /// Credentials came and were wrong (rather than none came).
        wrong: bool,
    },
    /// A request body over the limit.
    #[error("{0}")]
    TooLarge(String),
    /// A dependency (the broker) is down, or the server is full: the caller should retry later.
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
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        };
        let body = ErrorBody {
            error: self.to_string(),
            status: status.as_u16(),
        };
        let mut response = (status, Json(body)).into_response();
        match self {
            ApiError::Unavailable {
                retry_after_seconds,
                ..
            } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, retry_after_seconds.into());
            }
            // RFC 6750: the challenge names the scheme, and says when a token was refused.
            ApiError::Unauthorized { wrong, .. } => {
                let challenge = if wrong {
                    r#"Bearer realm="sluice", error="invalid_token""#
                } else {
                    r#"Bearer realm="sluice""#
                };
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
            _ => {}
        }
        response
    }
}
