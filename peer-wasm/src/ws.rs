//! The WebSocket to the relay: `libp2p-websocket-websys`, with a flush that
//! does not wait.
//!
//! Its `poll_flush` returns `Pending` while the socket's `bufferedAmount` is
//! above zero — which it is right after every `send` — and is woken only by a
//! 100 ms interval. Each handshake step flushes, so the first connection took
//! three such waits (≈300 ms, measured), and every relayed message one more.
//! Once `send` has taken the bytes the browser delivers them; there is nothing
//! more a flush could wait for. Writes still apply backpressure.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use futures::{AsyncRead, AsyncWrite};

pub struct EagerFlush<T>(pub T);

impl<T: AsyncRead + Unpin> AsyncRead for EagerFlush<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for EagerFlush<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}
