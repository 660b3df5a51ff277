//! What the HTTP server admits, and how much of it at once: whose requests (see
//! [`super::access`]), bodies up to a size, connections and live streams up to a count.
//! Each limit reached has its own clear answer, counted in `/status` and `/metrics`: a 413
//! for a body, a 503 for a stream or a connection, both with `Retry-After`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::access::ApiAccess;
use super::error::ApiError;

/// Seconds a client refused for lack of room is asked to wait.
pub const BUSY_RETRY_AFTER_SECS: u64 = 5;

/// How much the server takes at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// The largest request body, in bytes (an event posted to `/events`).
    pub max_body_bytes: usize,
    /// Open connections; the next one is answered 503 and closed. Below the process's
    /// open-file limit, so that RocksDB and the Kafka clients keep their files.
    pub max_connections: usize,
    /// Live streams (Server-Sent Events) at once; each holds a connection and a place in
    /// the change feed.
    pub max_streams: usize,
    /// How long a connection may send and receive nothing before it is closed, so that
    /// silent connections cannot hold every place (a stream's keep-alives count as traffic).
    pub idle_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_body_bytes: 1 << 20,
            max_connections: 512,
            max_streams: 128,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// The server's admission policy and what it has admitted and refused so far.
#[derive(Debug)]
pub struct Admission {
    pub access: ApiAccess,
    pub limits: HttpLimits,
    connections: Arc<Semaphore>,
    streams: Arc<Semaphore>,
    /// Connections answered 503 because `max_connections` were open.
    pub refused_connections: AtomicU64,
    /// Streams answered 503 because `max_streams` were open.
    pub refused_streams: AtomicU64,
    /// Requests answered 413 for a body over `max_body_bytes`.
    pub refused_bodies: AtomicU64,
    /// Requests answered 401.
    pub unauthorized: AtomicU64,
}

impl Admission {
    pub fn new(access: ApiAccess, limits: HttpLimits) -> Arc<Self> {
        Arc::new(Admission {
            access,
            limits,
            connections: Arc::new(Semaphore::new(limits.max_connections)),
            streams: Arc::new(Semaphore::new(limits.max_streams)),
            refused_connections: AtomicU64::new(0),
            refused_streams: AtomicU64::new(0),
            refused_bodies: AtomicU64::new(0),
            unauthorized: AtomicU64::new(0),
        })
    }

    /// No token, the default limits: what tests and benchmarks serve with.
    pub fn open() -> Arc<Self> {
        Admission::new(ApiAccess::default(), HttpLimits::default())
    }

    /// A place for one more connection, held until the permit drops; `None` when full.
    pub fn connection(&self) -> Option<OwnedSemaphorePermit> {
        let permit = Arc::clone(&self.connections).try_acquire_owned().ok();
        if permit.is_none() {
            self.refused_connections.fetch_add(1, Ordering::Relaxed);
        }
        permit
    }

    /// A place for one more live stream, held until the permit drops (with the stream,
    /// when its client goes away); a 503 that says why when full.
    pub fn stream(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        Arc::clone(&self.streams).try_acquire_owned().map_err(|_| {
            self.refused_streams.fetch_add(1, Ordering::Relaxed);
            ApiError::Unavailable {
                message: format!(
                    "{} live streams are open, the most this engine serves (--max-streams); \
                     close one, or follow several views on one `GET /stream`",
                    self.limits.max_streams
                ),
                retry_after_seconds: BUSY_RETRY_AFTER_SECS,
            }
        })
    }

    /// The 413 for a body over the limit.
    pub fn body_too_large(&self) -> ApiError {
        self.refused_bodies.fetch_add(1, Ordering::Relaxed);
        ApiError::TooLarge(format!(
            "the request body is over {} bytes, the most this engine takes (--max-body-bytes)",
            self.limits.max_body_bytes
        ))
    }

    pub fn open_connections(&self) -> usize {
        self.limits.max_connections - self.connections.available_permits()
    }

    pub fn open_streams(&self) -> usize {
        self.limits.max_streams - self.streams.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_come_back_when_dropped_and_refusals_are_counted() {
        let admission = Admission::new(
            ApiAccess::default(),
            HttpLimits {
                max_body_bytes: 10,
                max_connections: 1,
                max_streams: 2,
                idle_timeout: Duration::from_secs(60),
            },
        );
        let connection = admission.connection().expect("room for one");
        assert!(admission.connection().is_none());
        assert_eq!(admission.open_connections(), 1);
        drop(connection);
        assert!(admission.connection().is_some());
        assert_eq!(admission.refused_connections.load(Ordering::Relaxed), 1);

        let streams = [admission.stream(), admission.stream()];
        assert!(streams.iter().all(Result::is_ok));
        let refused = admission.stream().expect_err("full");
        assert!(refused.to_string().contains("2 live streams"), "{refused}");
        assert_eq!(admission.open_streams(), 2);
        drop(streams);
        assert_eq!(admission.open_streams(), 0);
        assert_eq!(admission.refused_streams.load(Ordering::Relaxed), 1);
    }
}
