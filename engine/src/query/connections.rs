//! A listener that holds at most `max_connections` open: each accepted connection keeps a
//! permit of [`Admission`] until it closes, and one beyond the limit is answered with a
//! 503 that says so, then closed, rather than left waiting in the kernel's backlog or
//! taking file descriptors that RocksDB and the Kafka clients need.
//!
//! A connection that sends and receives nothing for `idle_timeout` is closed: axum's
//! server sets no timeouts of its own, so silent connections could otherwise hold every
//! place, the probes' included. Refusals are bounded too: past [`MAX_REFUSING`] at once a
//! connection over the limit is closed without an answer.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tracing::warn;

use super::admission::{Admission, BUSY_RETRY_AFTER_SECS};

/// How long a refused connection is given to take its answer.
const REFUSAL_GRACE: Duration = Duration::from_secs(2);
/// Refused connections being answered at once; each holds a socket for up to the grace.
pub const MAX_REFUSING: usize = 64;
/// How long to wait before accepting again after the system refused an accept (out of
/// file descriptors, say), so that a full process does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// [`TcpListener`] under the connection limit.
pub struct CappedListener {
    inner: TcpListener,
    admission: Arc<Admission>,
    refusing: Arc<Semaphore>,
}

impl CappedListener {
    pub fn new(inner: TcpListener, admission: Arc<Admission>) -> Self {
        CappedListener {
            inner,
            admission,
            refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
        }
    }
}

impl Listener for CappedListener {
    type Io = CappedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (CappedStream, SocketAddr) {
        loop {
            let (stream, peer) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    warn!(%error, "cannot accept an HTTP connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            match self.admission.connection() {
                Some(permit) => {
                    // Small writes (a live stream's events) go out at once.
                    let _ = stream.set_nodelay(true);
                    let idle_timeout = self.admission.limits.idle_timeout;
                    return (
                        CappedStream {
                            stream,
                            _permit: permit,
                            idle: Box::pin(tokio::time::sleep(idle_timeout)),
                            idle_timeout,
                        },
                        peer,
                    );
                }
                None => {
                    // Past the bound, dropping the socket closes it at once.
                    if let Ok(answering) = Arc::clone(&self.refusing).try_acquire_owned() {
                        let limit = self.admission.limits.max_connections;
                        tokio::spawn(async move {
                            refuse(stream, limit).await;
                            drop(answering);
                        });
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// Answers a connection over the limit, then closes it. The request is read (up to the
/// grace) after the answer is sent, so that closing does not reset the connection before
/// the client has read why.
async fn refuse(mut stream: TcpStream, limit: usize) {
    let body = serde_json::json!({
        "error": format!(
            "{limit} connections are open, the most this engine serves (--max-connections); \
             retry shortly"
        ),
        "status": 503,
    })
    .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: {BUSY_RETRY_AFTER_SECS}\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_GRACE, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        io::Result::Ok(())
    })
    .await;
}

/// A connection, holding its place under the limit until it closes or goes idle.
pub struct CappedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    /// Fires once the connection has been silent for `idle_timeout`.
    idle: Pin<Box<Sleep>>,
    idle_timeout: Duration,
}

impl CappedStream {
    fn active(&mut self) {
        let deadline = Instant::now() + self.idle_timeout;
        self.idle.as_mut().reset(deadline);
    }
}

impl AsyncRead for CappedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buffer.filled().len();
        match Pin::new(&mut self.stream).poll_read(context, buffer) {
            Poll::Ready(outcome) => {
                if buffer.filled().len() > before {
                    self.active();
                }
                Poll::Ready(outcome)
            }
            // The server always waits to read (the next request, or the end of the
            // connection), so this is where silence is noticed.
            Poll::Pending => match self.idle.as_mut().poll(context) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the connection was idle for longer than --http-idle-timeout-secs",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write(context, buffer);
        if matches!(written, Poll::Ready(Ok(count)) if count > 0) {
            self.active();
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write_vectored(context, buffers);
        if matches!(written, Poll::Ready(Ok(count)) if count > 0) {
            self.active();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(context)
    }
}
