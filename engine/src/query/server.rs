//! The HTTP server of an engine: bound before anything else starts (a restart answers at
//! once, through [`super::gate`]), and stopped last. Dropping it stops it too, so a start
//! that fails half-way lets go of its port.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::ServiceExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::admission::Admission;
use super::connections::CappedListener;
use super::gate::GateService;
use crate::error::EngineError;

/// A server answering on its address until stopped or dropped.
pub struct HttpServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds `addr` and serves `app` there, with at most the connections `admission` allows.
    pub async fn start(
        addr: SocketAddr,
        app: GateService,
        admission: Arc<Admission>,
    ) -> Result<Self, EngineError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| EngineError::Http {
                addr: addr.to_string(),
                source,
            })?;
        let bound = listener.local_addr().map_err(|source| EngineError::Http {
            addr: addr.to_string(),
            source,
        })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            // Ends when asked to, or when the sender is dropped with the server.
            let serving = axum::serve(
                CappedListener::new(listener, admission),
                app.into_make_service(),
            )
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(error) = serving.await {
                warn!(%error, "HTTP server stopped with an error");
            }
        });
        info!(%bound, "serving the query API");
        Ok(HttpServer {
            addr: bound,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops taking requests, and waits for those in flight.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}
