//! Plain-HTTP connections must say something: [`FirstByte`] hands a TCP
//! connection to the HTTP server only once its first byte has arrived, and
//! drops it after [`HTTP_HEADER_TIMEOUT`](crate::limits::HTTP_HEADER_TIMEOUT)
//! of silence. hyper's own request-head timeout starts with the first byte,
//! so without this a socket that never sends holds its connection forever
//! (over TLS, the handshake timeout covers this).

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
}
