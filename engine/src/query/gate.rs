//! The HTTP server's front door, up from the moment the engine starts: the port answers
//! while the state opens, the brokers are reached and the operators restore, instead of
//! refusing connections as a restart used to.
//!
//! Until the engine has its state open, only `/healthz` and `/readyz` answer (200, and
//! 503 with the phase); every other route answers 503 with `Retry-After` and the phase.
//! Once the API exists it serves everything but the views, which wait until the
//! operators have restored their state; from then on views answer with the last
//! checkpoint, stamped, even while the engine catches up.
//!
//! Credentials are checked first, whatever the phase (see [`super::access`]).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use axum::Json;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::{Service, ServiceExt};

use super::access::{Verdict, take_query_token};
use super::admission::Admission;
use super::answers::Starting;
use super::error::ApiError;
use super::status::{health_answer, ready_answer};
use crate::status::EngineStatus;

/// Seconds a client is asked to wait before trying a read again.
const RETRY_AFTER_SECS: u32 = 1;

/// The front door, and the API behind it once it exists.
pub struct Gate {
    status: Arc<EngineStatus>,
    /// Whose requests pass, checked before anything else.
    admission: Arc<Admission>,
    /// Set once; read on every request without a lock.
    api: OnceLock<Router>,
}

impl Gate {
    /// A door with nothing behind it yet.
    pub fn new(status: Arc<EngineStatus>, admission: Arc<Admission>) -> Arc<Self> {
        Arc::new(Gate {
            status,
            admission,
            api: OnceLock::new(),
        })
    }

    /// Puts the API behind the door; the first API stays.
    pub fn open(&self, api: Router) {
        let _ = self.api.set(api);
    }

    /// The service the server serves: a plain service rather than a router of its own,
    /// so that a request is routed once, by the API.
    pub fn service(self: &Arc<Self>) -> GateService {
        GateService(Arc::clone(self))
    }
}

/// [`Gate`] as a service.
#[derive(Clone)]
pub struct GateService(Arc<Gate>);

impl Service<Request> for GateService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let gate = Arc::clone(&self.0);
        Box::pin(async move { Ok(pass(&gate, request).await) })
    }
}

/// Whether `path` reads a view's state.
fn reads_views(path: &str) -> bool {
    path == "/views" || path.starts_with("/views/")
}

async fn pass(gate: &Gate, mut request: Request) -> Response {
    let query_token = take_query_token(request.uri()).map(|(uri, token)| {
        *request.uri_mut() = uri;
        token
    });
    let verdict = gate.admission.access.judge(
        request.method(),
        request.uri().path(),
        request.headers(),
        query_token.as_deref(),
    );
    if verdict != Verdict::Admitted {
        gate.admission
            .unauthorized
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return unauthorized(verdict == Verdict::Wrong).into_response();
    }
    let path = request.uri().path();
    let phase = gate.status.readiness.phase();
    match gate.api.get() {
        Some(api) if phase.serves_views() || !reads_views(path) => {
            match api.clone().oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
        _ if path == "/healthz" => health_answer(&gate.status).into_response(),
        _ if path == "/readyz" => ready_answer(&gate.status).into_response(),
        _ => {
            let body = Starting {
                error: format!(
                    "the engine is starting ({}); try again shortly",
                    phase.describe()
                ),
                status: StatusCode::SERVICE_UNAVAILABLE.as_u16(),
                phase,
            };
            let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            response
        }
    }
}

fn unauthorized(wrong: bool) -> ApiError {
    let message = if wrong {
        "the token is not this engine's API token"
    } else {
        "this API needs a token: send `Authorization: Bearer <token>` with the engine's \
         --api-token (a live stream may pass it as `?access_token=<token>`)"
    };
    ApiError::Unauthorized {
        message: message.into(),
        wrong,
    }
}
