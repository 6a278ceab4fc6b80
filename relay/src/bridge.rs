//! WebSockets accepted by the HTTP server, handed to the libp2p swarm.
//!
//! The page, `/api/info` and the peers' libp2p connections share one port
//! (and so one TLS certificate, one firewall rule, one proxy location): axum
//! accepts the WebSocket upgrade, and [`Bridge::hand_over`] queues the socket
//! for [`BridgeTransport`], a libp2p [`Transport`] whose only listener yields
//! those sockets as byte streams. The swarm upgrades them with Noise and
//! Yamux like any other inbound connection.
//!
//! Nothing here parses libp2p: the WebSocket carries an opaque byte stream
//! (each binary message a chunk of it), exactly as `libp2p-websocket` does.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket};
use futures::future::Ready;
use futures::{Sink, Stream};
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::core::Transport;
use libp2p::Multiaddr;
use prometheus_client::metrics::counter::Counter;
use rw_stream_sink::RwStreamSink;
use tokio::sync::mpsc;

use crate::admission::Permit;
use crate::bandwidth::Bandwidth;
use crate::limits;
use crate::metrics::Metrics;

/// An accepted WebSocket as an `AsyncRead + AsyncWrite` byte stream.
pub type Connection = RwStreamSink<Messages>;

/// A socket on its way from the HTTP server to the swarm.
struct Incoming {
    connection: Connection,
    /// The client as the swarm should see it (after trusted proxies).
    remote: Multiaddr,
}

/// Refused hand-overs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandOverError {
    #[error(
        "the relay is busy: {} WebSockets already wait for the swarm",
        limits::WS_HANDOVER_QUEUE
    )]
    Busy,
    #[error("the relay is shutting down")]
    Closed,
}

impl HandOverError {
    /// Label for `/metrics`.
    pub fn reason(&self) -> &'static str {
        match self {
            HandOverError::Busy => "busy",
            HandOverError::Closed => "shutting_down",
        }
    }

    /// The reason sent in the close frame (code 1013).
    pub fn close_reason(&self) -> &'static str {
        match self {
            HandOverError::Busy => "the relay is busy",
            HandOverError::Closed => "the relay is shutting down",
        }
    }
}

/// The HTTP side's end: cheap to clone, one per router.
#[derive(Debug, Clone)]
pub struct Bridge {
    tx: mpsc::Sender<Incoming>,
    metrics: Arc<Metrics>,
    bandwidth: Bandwidth,
}

impl Bridge {
    /// Charges every byte peers send to `bandwidth`, the relay's total cap.
    pub fn with_bandwidth(mut self, bandwidth: Bandwidth) -> Self {
        self.bandwidth = bandwidth;
        self
    }

    /// Queues an accepted WebSocket for the swarm. Never waits: when the
    /// swarm is this far behind, one more socket would only wait longer.
    /// `permit` is the client address's slot, held until the connection ends.
    /// A refused socket comes back with the reason, to be closed with it.
    pub fn hand_over(
        &self,
        socket: WebSocket,
        remote: Multiaddr,
        permit: Permit,
    ) -> Result<(), (HandOverError, Box<WebSocket>)> {
        // Reserve the queue slot first, so that a refusal still has the socket.
        let slot = match self.tx.try_reserve() {
            Ok(slot) => slot,
            Err(e) => {
                Metrics::count(&self.metrics.websockets, "refused");
                let error = match e {
                    mpsc::error::TrySendError::Full(()) => HandOverError::Busy,
                    mpsc::error::TrySendError::Closed(()) => HandOverError::Closed,
                };
                return Err((error, Box::new(socket)));
            }
        };
        let messages = Messages {
            socket,
            bytes_in: self.metrics.bytes("in"),
            bytes_out: self.metrics.bytes("out"),
            idle: Box::pin(tokio::time::sleep(limits::WS_IDLE_TIMEOUT)),
            bandwidth: self.bandwidth.clone(),
            throttle: None,
            throttled: self.metrics.bandwidth_waits.clone(),
            _permit: permit,
        };
        slot.send(Incoming {
            connection: RwStreamSink::new(messages),
            remote,
        });
        Metrics::count(&self.metrics.websockets, "accepted");
        Ok(())
    }
}

/// The swarm's end: a transport that never dials and listens on exactly one
/// address, the one the HTTP server is reachable at.
pub struct BridgeTransport {
    rx: mpsc::Receiver<Incoming>,
    listener: Option<(ListenerId, Multiaddr)>,
    events: VecDeque<TransportEvent<Ready<Result<Connection, io::Error>>, io::Error>>,
}

/// A connected pair: give the [`Bridge`] to the router, the transport to the
/// swarm.
pub fn bridge(metrics: Arc<Metrics>) -> (Bridge, BridgeTransport) {
    let (tx, rx) = mpsc::channel(limits::WS_HANDOVER_QUEUE);
    let transport = BridgeTransport {
        rx,
        listener: None,
        events: VecDeque::new(),
    };
    (
        Bridge {
            tx,
            metrics,
            bandwidth: Bandwidth::default(),
        },
        transport,
    )
}

impl Transport for BridgeTransport {
    type Output = Connection;
    type Error = io::Error;
    type ListenerUpgrade = Ready<Result<Connection, io::Error>>;
    type Dial = Ready<Result<Connection, io::Error>>;

    /// Accepts any address: it is what the swarm reports as ours (the HTTP
    /// server's address), not something to bind. One listener at a time.
    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        if self.listener.is_some() {
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        self.listener = Some((id, addr.clone()));
        self.events.push_back(TransportEvent::NewAddress {
            listener_id: id,
            listen_addr: addr,
        });
        Ok(())
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        if self.listener.as_ref().is_some_and(|(l, _)| *l == id) {
            self.listener = None;
            self.events.push_back(TransportEvent::ListenerClosed {
                listener_id: id,
                reason: Ok(()),
            });
            return true;
        }
        false
    }

    /// The relay never dials: browsers cannot be dialled, and relaying
    /// happens over connections they opened.
    fn dial(
        &mut self,
        addr: Multiaddr,
        _opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        Err(TransportError::MultiaddrNotSupported(addr))
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        if let Some(event) = self.events.pop_front() {
            return Poll::Ready(event);
        }
        let Some((listener_id, local_addr)) = self.listener.clone() else {
            return Poll::Pending;
        };
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Incoming { connection, remote })) => {
                Poll::Ready(TransportEvent::Incoming {
                    listener_id,
                    upgrade: futures::future::ready(Ok(connection)),
                    local_addr,
                    send_back_addr: remote,
                })
            }
            // Every Bridge is gone: the HTTP server has stopped.
            Poll::Ready(None) => {
                self.listener = None;
                Poll::Ready(TransportEvent::ListenerClosed {
                    listener_id,
                    reason: Ok(()),
                })
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// An axum WebSocket seen as a stream of binary chunks and a sink of them,
/// counting the bytes. Pings are answered by the WebSocket layer itself; text
/// messages have no place in a libp2p byte stream and end it. A socket
/// silent for [`limits::WS_IDLE_TIMEOUT`] is dead and ends too. While the
/// relay's total [`Bandwidth`] is in debt, nothing is read.
pub struct Messages {
    socket: WebSocket,
    bytes_in: Counter,
    bytes_out: Counter,
    idle: Pin<Box<tokio::time::Sleep>>,
    bandwidth: Bandwidth,
    /// Armed while this connection waits for the bandwidth cap.
    throttle: Option<Pin<Box<tokio::time::Sleep>>>,
    throttled: Counter,
    _permit: Permit,
}

impl Stream for Messages {
    type Item = io::Result<Vec<u8>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(at) = self.bandwidth.ready_at() {
                let at = tokio::time::Instant::from_std(at);
                if self.throttle.is_none() {
                    self.throttled.inc();
                }
                let sleep = self
                    .throttle
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
                sleep.as_mut().reset(at);
                futures::ready!(sleep.as_mut().poll(cx));
                continue;
            }
            if self.throttle.take().is_some() {
                // Waiting for the cap is not silence.
                let deadline = tokio::time::Instant::now() + limits::WS_IDLE_TIMEOUT;
                self.idle.as_mut().reset(deadline);
            }
            let next = match Pin::new(&mut self.socket).poll_next(cx) {
                Poll::Ready(next) => next,
                Poll::Pending => {
                    futures::ready!(self.idle.as_mut().poll(cx));
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("nothing received for {:?}", limits::WS_IDLE_TIMEOUT),
                    ))));
                }
            };
            let msg = match next {
                None | Some(Ok(Message::Close(_))) => return Poll::Ready(None),
                Some(Err(e)) => return Poll::Ready(Some(Err(io::Error::other(e)))),
                Some(Ok(msg)) => msg,
            };
            let deadline = tokio::time::Instant::now() + limits::WS_IDLE_TIMEOUT;
            self.idle.as_mut().reset(deadline);
            match msg {
                Message::Binary(data) => {
                    self.bytes_in.inc_by(data.len() as u64);
                    self.bandwidth.charge(data.len() as u64);
                    return Poll::Ready(Some(Ok(data.into())));
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                Message::Text(_) => {
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "text message on a libp2p WebSocket",
                    ))))
                }
                Message::Close(_) => return Poll::Ready(None),
            }
        }
    }
}

impl Sink<Vec<u8>> for Messages {
    type Error = io::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket)
            .poll_ready(cx)
            .map_err(io::Error::other)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Vec<u8>) -> io::Result<()> {
        self.bytes_out.inc_by(item.len() as u64);
        Pin::new(&mut self.socket)
            .start_send(Message::Binary(Bytes::from(item)))
            .map_err(io::Error::other)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket)
            .poll_flush(cx)
            .map_err(io::Error::other)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket)
            .poll_close(cx)
            .map_err(io::Error::other)
    }
}
