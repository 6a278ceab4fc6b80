//! Plain-HTTP connections must say something: [`FirstByte`] hands a TCP
//! connection to the HTTP server only once its first byte has arrived, and
//! drops it after [`HTTP_HEADER_TIMEOUT`](crate::limits::HTTP_HEADER_TIMEOUT)
//! of silence. hyper's own request-head timeout starts with the first byte,
//! so without this a socket that never sends holds its connection forever
//! (over TLS, the handshake timeout covers this).
//!
//! [`NoDelay`] turns Nagle's algorithm off on every accepted connection. The
//! libp2p WebSocket carries small frames both ways (Noise and Yamux
//! handshakes, rendezvous and circuit requests, signaling); with Nagle on, a
//! frame written while an earlier one is unacknowledged waits for the
//! browser's delayed ACK (40 ms on Linux), and every round trip of a page
//! joining a swarm paid it (tests/bench/connect.mjs: from the relay's
//! WebSocket open to the first direct peer, see BENCHMARKS.md).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::net::TcpStream;

#[derive(Debug, Clone, Copy)]
pub struct FirstByte {
    timeout: Duration,
}

impl FirstByte {
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

type Accepted<S> = Pin<Box<dyn Future<Output = io::Result<(TcpStream, S)>> + Send>>;

impl<S: Send + 'static> Accept<TcpStream, S> for FirstByte {
    type Stream = TcpStream;
    type Service = S;
    type Future = Accepted<S>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let timeout = self.timeout;
        Box::pin(async move {
            let mut first = [0u8; 1];
            match tokio::time::timeout(timeout, stream.peek(&mut first)).await {
                Ok(Ok(_)) => Ok((stream, service)),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("nothing received within {timeout:?}"),
                )),
            }
        })
    }
}

/// Sets `TCP_NODELAY` on each accepted connection, then hands it to `inner`.
#[derive(Debug, Clone, Copy)]
pub struct NoDelay<A>(pub A);

impl<A, S> Accept<TcpStream, S> for NoDelay<A>
where
    A: Accept<TcpStream, S>,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = A::Future;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        if let Err(e) = stream.set_nodelay(true) {
            // Still usable, only slower.
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        self.0.accept(stream, service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn silent_sockets_are_dropped_talking_ones_kept() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accept = FirstByte::new(Duration::from_millis(200));

        let _silent = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (stream, _) = listener.accept().await.expect("accept");
        let err = accept.accept(stream, ()).await.expect_err("dropped");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);

        let mut talking = tokio::net::TcpStream::connect(addr).await.expect("connect");
        talking.write_all(b"G").await.expect("write");
        let (stream, _) = listener.accept().await.expect("accept");
        assert!(accept.accept(stream, ()).await.is_ok());
    }

    #[tokio::test]
    async fn accepted_connections_have_nagle_off() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let _client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (stream, _) = listener.accept().await.expect("accept");
        assert!(!stream.nodelay().expect("nodelay"));
        let (stream, ()) = NoDelay(axum_server::accept::DefaultAcceptor)
            .accept(stream, ())
            .await
            .expect("accepted");
        assert!(stream.nodelay().expect("nodelay"));
    }
}
