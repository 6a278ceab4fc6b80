//! Streams of one protocol that know their connection.
//!
//! `libp2p_stream` (used for signaling) picks a random connection when it
//! opens a stream and does not say which connection an inbound stream came
//! on. File transfers need both: a session must run on the direct connection
//! when there is one (not on a relayed connection about to be closed), and
//! the bytes it moves are counted on the path that carried them. So the
//! transfer protocol has this small behaviour of its own: every stream comes
//! with the [`Path`] of its connection, decided once from the connection's
//! address (the same rule as `node`'s), and [`Control::open_stream`] picks a
//! direct connection over a relayed one.
//!
//! It never dials: a stream is opened on a connection that exists.

use std::{
    convert::Infallible,
    future::Future,
    io,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll},
};

use futures::{
    channel::{mpsc, oneshot},
    future::Shared,
    FutureExt as _, SinkExt as _, StreamExt as _,
};
use libp2p::{
    core::{transport::PortUse, upgrade::ReadyUpgrade, Endpoint},
    swarm::{
        self as swarm,
        handler::{
            ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
        },
        ConnectionClosed, ConnectionDenied, ConnectionHandler, ConnectionId, FromSwarm,
        NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
    },
    Multiaddr, PeerId, Stream, StreamProtocol,
};

use shoal_proto::vecmap::VecMap;

use crate::state::Path;

/// Inbound streams waiting for the application, at most.
const INCOMING_QUEUE: usize = 16;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenStreamError {
    #[error("not connected to {0}")]
    NotConnected(PeerId),
    #[error("the remote does not support the protocol")]
    UnsupportedProtocol,
    #[error("opening the stream timed out")]
    Timeout,
    #[error("the connection closed while the stream was opening")]
    Closed,
    #[error("io: {0}")]
    Io(#[from] io::Error),
}

struct NewStream {
    sender: oneshot::Sender<Result<Stream, OpenStreamError>>,
}

struct Conn {
    peer: PeerId,
    path: Path,
    sender: mpsc::Sender<NewStream>,
    /// Dropped with the connection: completes every [`ConnectionGone`].
    _alive: oneshot::Sender<()>,
    gone: ConnectionGone,
}

/// Completes once the connection a stream runs on has closed. A stream of
/// a connection the swarm closed itself is not always told (a relayed
/// stream's read may stay pending): sessions wait on this as well.
#[derive(Clone)]
pub struct ConnectionGone(Shared<oneshot::Receiver<()>>);

impl Future for ConnectionGone {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll_unpin(cx).map(|_| ())
    }
}

/// A stream with the path and the fate of its connection.
pub struct PathStream {
    pub path: Path,
    pub gone: ConnectionGone,
    pub stream: Stream,
}

#[derive(Default)]
struct Table {
    connections: VecMap<ConnectionId, Conn>,
    incoming: Option<mpsc::Sender<Incoming>>,
}

fn lock(shared: &Mutex<Table>) -> MutexGuard<'_, Table> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// A stream a remote opened.
pub struct Incoming {
    pub peer: PeerId,
    pub stream: PathStream,
}

/// `…/webrtc…` is a direct connection; everything else (the relay's circuit)
/// is relayed.
pub fn path_of(addr: &Multiaddr) -> Path {
    if addr
        .iter()
        .any(|p| matches!(p, libp2p::multiaddr::Protocol::WebRTC))
    {
        Path::Direct
    } else {
        Path::Relayed
    }
}

pub struct Behaviour {
    protocol: StreamProtocol,
    // A `Mutex` only because handlers must be `Send`; wasm is single-threaded.
    shared: Arc<Mutex<Table>>,
}

impl Behaviour {
    pub fn new(protocol: StreamProtocol) -> Self {
        Self {
            protocol,
            shared: Arc::default(),
        }
    }

    pub fn new_control(&self) -> Control {
        Control {
            shared: self.shared.clone(),
        }
    }

    fn handler(&self, id: ConnectionId, peer: PeerId, addr: &Multiaddr) -> Handler {
        let (sender, receiver) = mpsc::channel(0);
        let path = path_of(addr);
        let (alive, gone) = oneshot::channel();
        let gone = ConnectionGone(gone.shared());
        lock(&self.shared).connections.insert(
            id,
            Conn {
                peer,
                path,
                sender,
                _alive: alive,
                gone: gone.clone(),
            },
        );
        Handler {
            protocol: self.protocol.clone(),
            peer,
            path,
            gone,
            shared: self.shared.clone(),
            receiver,
            pending: None,
        }
    }
}

/// Opens streams and takes the inbound ones; cheap to clone.
#[derive(Clone)]
pub struct Control {
    shared: Arc<Mutex<Table>>,
}

impl Control {
    /// Opens a stream to `peer` on a direct connection if there is one, else
    /// on a relayed one; returns it with its connection's path.
    pub async fn open_stream(&self, peer: PeerId) -> Result<PathStream, OpenStreamError> {
        let (path, gone, mut sender) = {
            let shared = lock(&self.shared);
            let mut conns: Vec<_> = shared
                .connections
                .values()
                .filter(|c| c.peer == peer)
                .collect();
            conns.sort_by_key(|c| c.path != Path::Direct);
            let conn = conns.first().ok_or(OpenStreamError::NotConnected(peer))?;
            (conn.path, conn.gone.clone(), conn.sender.clone())
        };
        let (tx, rx) = oneshot::channel();
        sender
            .send(NewStream { sender: tx })
            .await
            .map_err(|_| OpenStreamError::Closed)?;
        let stream = rx.await.map_err(|_| OpenStreamError::Closed)??;
        Ok(PathStream { path, gone, stream })
    }

    /// Inbound streams from now on; a second call replaces the first.
    pub fn accept(&self) -> IncomingStreams {
        let (tx, rx) = mpsc::channel(INCOMING_QUEUE);
        lock(&self.shared).incoming = Some(tx);
        IncomingStreams(rx)
    }
}

#[must_use = "streams do nothing unless polled"]
pub struct IncomingStreams(mpsc::Receiver<Incoming>);

impl futures::Stream for IncomingStreams {
    type Item = Incoming;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Incoming>> {
        self.0.poll_next_unpin(cx)
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(id, peer, remote))
    }

    fn handle_established_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        _role: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(id, peer, addr))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        if let FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) = event {
            lock(&self.shared).connections.remove(&connection_id);
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _cx: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

pub struct Handler {
    protocol: StreamProtocol,
    peer: PeerId,
    path: Path,
    gone: ConnectionGone,
    shared: Arc<Mutex<Table>>,
    receiver: mpsc::Receiver<NewStream>,
    /// The stream being opened (one at a time).
    pending: Option<oneshot::Sender<Result<Stream, OpenStreamError>>>,
}

impl ConnectionHandler for Handler {
    type FromBehaviour = Infallible;
    type ToBehaviour = Infallible;
    type InboundProtocol = ReadyUpgrade<StreamProtocol>;
    type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> swarm::SubstreamProtocol<Self::InboundProtocol> {
        swarm::SubstreamProtocol::new(ReadyUpgrade::new(self.protocol.clone()), ())
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<swarm::ConnectionHandlerEvent<Self::OutboundProtocol, (), Self::ToBehaviour>> {
        if self.pending.is_some() {
            return Poll::Pending;
        }
        if let Poll::Ready(Some(new)) = self.receiver.poll_next_unpin(cx) {
            self.pending = Some(new.sender);
            return Poll::Ready(swarm::ConnectionHandlerEvent::OutboundSubstreamRequest {
                protocol: swarm::SubstreamProtocol::new(
                    ReadyUpgrade::new(self.protocol.clone()),
                    (),
                ),
            });
        }
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, event: Infallible) {
        match event {}
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<Self::InboundProtocol, Self::OutboundProtocol>,
    ) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: stream,
                ..
            }) => {
                let mut shared = lock(&self.shared);
                let Some(incoming) = shared.incoming.as_mut() else {
                    return;
                };
                let stream = Incoming {
                    peer: self.peer,
                    stream: PathStream {
                        path: self.path,
                        gone: self.gone.clone(),
                        stream,
                    },
                };
                if let Err(e) = incoming.try_send(stream) {
                    // Dropping the stream resets it; the opener retries.
                    tracing::debug!(peer = %self.peer, "inbound stream dropped: {e}");
                }
            }
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: stream,
                ..
            }) => {
                if let Some(sender) = self.pending.take() {
                    let _ = sender.send(Ok(stream));
                }
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError { error, .. }) => {
                let error = match error {
                    swarm::StreamUpgradeError::Timeout => OpenStreamError::Timeout,
                    swarm::StreamUpgradeError::Apply(v) => match v {},
                    swarm::StreamUpgradeError::NegotiationFailed => {
                        OpenStreamError::UnsupportedProtocol
                    }
                    swarm::StreamUpgradeError::Io(e) => OpenStreamError::Io(e),
                };
                if let Some(sender) = self.pending.take() {
                    let _ = sender.send(Err(error));
                }
            }
            _ => {}
        }
    }
}
