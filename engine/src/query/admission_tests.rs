//! The API token and the limits on streams and connections, through the front door and a
//! real socket.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

use super::access::{ApiAccess, ApiToken};
use super::admission::{Admission, HttpLimits};
use super::gate::Gate;
use super::router;
use super::server::HttpServer;
use super::tests::fixture;
use crate::readiness::Phase;
use crate::status::EngineStatus;

const TOKEN: &str = "a-token-of-the-tests-0123456789";
/// The idle timeout of the connection test: long enough for the refusal to be seen first
/// on a loaded machine.
const IDLE: Duration = Duration::from_secs(3);

struct Answer {
    status: StatusCode,
    challenge: Option<String>,
    body: Value,
}

async fn send(gate: &Arc<Gate>, request: Request<Body>) -> Answer {
    let response = gate.service().oneshot(request).await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|value| value.to_str().unwrap().to_string());
    let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        challenge,
        body,
    }
}

fn get(uri: &str, bearer: Option<&str>) -> Request<Body> {
    let mut request = Request::get(uri);
    if let Some(token) = bearer {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::empty()).unwrap()
}

fn post_event(bearer: Option<&str>) -> Request<Body> {
    let mut request = Request::post("/events/clicks").header("content-type", "application/json");
    if let Some(token) = bearer {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::from("{}")).unwrap()
}

/// A running API behind a gate that wants `TOKEN`, for writes or for everything.
fn protected(protect_reads: bool, limits: HttpLimits) -> (tempfile::TempDir, Arc<Gate>) {
    let (dir, state) = fixture();
    let access = ApiAccess {
        token: Some(ApiToken::new(TOKEN).unwrap()),
        protect_reads,
    };
    let admission = Admission::new(access, limits);
    let status = Arc::clone(&state.status);
    let gate = Gate::new(Arc::clone(&status), Arc::clone(&admission));
    gate.open(router(state.with_admission(admission)));
    status.readiness.enter(Phase::Running);
    (dir, gate)
}

#[tokio::test]
async fn writes_need_the_token_and_reads_stay_open_by_default() {
    let (_dir, gate) = protected(false, HttpLimits::default());
    let missing = send(&gate, post_event(None)).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED, "{}", missing.body);
    assert_eq!(missing.body["status"], 401);
    assert!(
        missing.body["error"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer"),
        "{}",
        missing.body
    );
    assert_eq!(
        missing.challenge.as_deref(),
        Some(r#"Bearer realm="sluice""#)
    );
    let wrong = send(&gate, post_event(Some("not-the-token-at-all"))).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.challenge.unwrap().contains("invalid_token"));
    // The token on the query string does not do for a write.
    let request = Request::post(format!("/events/clicks?access_token={TOKEN}"))
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(send(&gate, request).await.status, StatusCode::UNAUTHORIZED);
    // With the token the request reaches the handler: the fixture reads no `clicks`.
    let admitted = send(&gate, post_event(Some(TOKEN))).await;
    assert_eq!(admitted.status, StatusCode::NOT_FOUND, "{}", admitted.body);

    let read = send(&gate, get("/views/counts/all", None)).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    let status = send(&gate, get("/status", None)).await.body;
    assert_eq!(status["http"]["token_required_for"], "writes");
    assert_eq!(status["http"]["unauthorized"], 3);
}

#[tokio::test]
async fn with_reads_protected_every_route_but_probes_and_page_needs_the_token() {
    let (_dir, gate) = protected(true, HttpLimits::default());
    for path in [
        "/views",
        "/views/counts/all",
        "/status",
        "/metrics",
        "/openapi.json",
    ] {
        let answer = send(&gate, get(path, None)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        let answer = send(&gate, get(path, Some(TOKEN))).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.body);
    }
    for path in ["/healthz", "/readyz", "/", "/assets/dashboard.js"] {
        let answer = send(&gate, get(path, None)).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
    }
    // As a stream would send it: taken off the query before the handler, which refuses
    // parameters it does not know.
    let answer = send(
        &gate,
        get(&format!("/views/counts/all?access_token={TOKEN}"), None),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["windows"].as_array().map(Vec::len), Some(3));
    let answer = send(&gate, get("/views/counts/all?access_token=wrong", None)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let status = send(&gate, get("/status", Some(TOKEN))).await.body;
    assert_eq!(status["http"]["token_required_for"], "all");
}

#[tokio::test]
async fn streams_beyond_the_limit_are_refused_until_one_closes() {
    let limits = HttpLimits {
        max_streams: 2,
        ..HttpLimits::default()
    };
    let (_dir, gate) = protected(false, limits);
    let open = |uri: &'static str| {
        let gate = Arc::clone(&gate);
        async move { gate.service().oneshot(get(uri, None)).await.unwrap() }
    };
    let first = open("/stream").await;
    let second = open("/views/counts/stream").await;
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let refused = send(&gate, get("/views/counts/all/stream", None)).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        refused.body["error"]
            .as_str()
            .unwrap()
            .contains("2 live streams are open"),
        "{}",
        refused.body
    );
    // A client that goes away drops its stream, and its place with it.
    drop(first);
    assert_eq!(open("/stream").await.status(), StatusCode::OK);
    let status = send(&gate, get("/status", None)).await.body;
    assert_eq!(status["http"]["refused_streams"], 1);
    // The second stream; the third was dropped with its answer.
    assert_eq!(status["http"]["open_streams"], 1);
    let response = gate.service().oneshot(get("/metrics", None)).await.unwrap();
    let metrics = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("sluice_http_refused_total{reason=\"streams\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("sluice_http_open_streams 1"), "{metrics}");
    drop(second);
}

/// What the server answers on a fresh connection to `addr`, as raw HTTP.
fn raw_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_answered_503_and_closed() {
    let status = Arc::new(EngineStatus::new());
    let admission = Admission::new(
        ApiAccess::default(),
        HttpLimits {
            max_connections: 1,
            idle_timeout: IDLE,
            ..HttpLimits::default()
        },
    );
    let gate = Gate::new(status, Arc::clone(&admission));
    let server = HttpServer::start(
        "127.0.0.1:0".parse().unwrap(),
        gate.service(),
        Arc::clone(&admission),
    )
    .await
    .unwrap();
    let addr = server.addr();
    let checked = tokio::task::spawn_blocking(move || {
        // An idle connection holds the one place.
        let holder = std::net::TcpStream::connect(addr).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while admission.open_connections() < 1 {
            assert!(
                Instant::now() < deadline,
                "the first connection was not accepted"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let refused = raw_get(addr, "/healthz");
        assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
        assert!(refused.contains("--max-connections"), "{refused}");
        assert!(
            refused.to_ascii_lowercase().contains("retry-after: 5"),
            "{refused}"
        );
        // Silent past the idle timeout, the holder is closed and its place is free again,
        // though its client never let go.
        let quiet_since = Instant::now();
        let deadline = quiet_since + IDLE + Duration::from_secs(10);
        loop {
            let answer = raw_get(addr, "/healthz");
            if answer.starts_with("HTTP/1.1 200") {
                break;
            }
            assert!(Instant::now() < deadline, "no place came free: {answer}");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(quiet_since.elapsed() >= IDLE - Duration::from_millis(100));
        let mut holder = holder;
        holder
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut rest = Vec::new();
        // The server closed it: the read ends rather than timing out.
        assert!(
            holder.read_to_end(&mut rest).is_ok(),
            "the idle connection was closed"
        );
        admission
            .refused_connections
            .load(std::sync::atomic::Ordering::Relaxed)
    })
    .await
    .unwrap();
    assert!(checked >= 1);
    server.stop().await;
}
