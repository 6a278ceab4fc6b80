//! The libp2p driver of the [`Registry`]: a `NetworkBehaviour` over
//! `libp2p-request-response` (one request and one answer per stream, as
//! rust-libp2p's client does), the [`Codec`] reading at most
//! [`RENDEZVOUS_MAX_REQUEST`](crate::limits::RENDEZVOUS_MAX_REQUEST) bytes.
//! It feeds each request with the connection's address and `now` to the
//! registry, sends the answer, tells it when a peer's last connection
//! closes, and sweeps expired entries on a timer. Everything it decides is
//! reported as an [`Event`].

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use asynchronous_codec::{FramedRead, FramedWrite};
use futures::{AsyncRead, AsyncWrite, SinkExt, StreamExt};
use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId, StreamProtocol};

use super::protocol::{self, proto, AnswerKind, Request};
use super::registry::{Policy, Refusal, Registry};
use crate::admission::AddrKey;
use crate::limits;

pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/rendezvous/1.0.0");

/// Reads one length-prefixed `Message`, writes one. Requests over
/// [`limits::RENDEZVOUS_MAX_REQUEST`] fail at their length prefix. A request
/// that cannot be read is handed on as `Err` (request-response drops read
/// failures silently; the server counts them).
#[derive(Debug, Clone, Default)]
pub struct Codec;

fn framing() -> prost_codec::Codec<proto::Message, proto::Message> {
    prost_codec::Codec::new(limits::RENDEZVOUS_MAX_REQUEST)
}

impl request_response::Codec for Codec {
    type Protocol = StreamProtocol;
    type Request = io::Result<proto::Message>;
    type Response = Option<proto::Message>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Self::Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        let read = FramedRead::new(io, framing()).next().await;
        Ok(match read {
            Some(msg) => msg.map_err(io::Error::from),
            None => Err(io::ErrorKind::UnexpectedEof.into()),
        })
    }

    async fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
    ) -> io::Result<Self::Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the relay sends no requests",
        ))
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: Self::Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the relay sends no requests",
        ))
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Self::Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        // Answers are larger than requests: the discover page bounds them.
        let mut framed = FramedWrite::new(
            io,
            prost_codec::Codec::<proto::Message, proto::Message>::new(1 << 20),
        );
        if let Some(res) = res {
            framed.send(res).await.map_err(io::Error::from)?;
        }
        framed.close().await.map_err(io::Error::from)
    }
}

/// What the server did, for metrics and logs.
#[derive(Debug)]
pub enum Event {
    Registered {
        peer: PeerId,
        namespace: String,
        ttl: u64,
    },
    Unregistered {
        peer: PeerId,
        namespace: String,
    },
    Discovered {
        peer: PeerId,
        found: usize,
    },
    Refused {
        peer: PeerId,
        refusal: Refusal,
    },
    /// A stream that did not yield a request (too large, not protobuf, reset).
    BadStream {
        peer: PeerId,
        error: String,
    },
    /// Registrations dropped because their peer left or they expired.
    Dropped {
        count: usize,
    },
}

/// The rendezvous server.
pub struct Behaviour {
    inner: request_response::Behaviour<Codec>,
    registry: Registry,
    /// Client address of every open connection (for the per-address cap).
    addresses: HashMap<ConnectionId, AddrKey>,
    sweep: tokio::time::Interval,
    events: std::collections::VecDeque<Event>,
}

impl Behaviour {
    pub fn new(policy: Policy) -> Self {
        // Sequence numbers start at the wall clock, so that cookies from
        // before a restart ask for everything (see the registry's docs).
        let first_seq = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64);
        let inner = request_response::Behaviour::new(
            [(PROTOCOL, ProtocolSupport::Inbound)],
            request_response::Config::default(),
        );
        let mut sweep = tokio::time::interval(limits::RENDEZVOUS_SWEEP_EVERY);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            inner,
            registry: Registry::new(policy, first_seq),
            addresses: HashMap::new(),
            sweep,
            events: Default::default(),
        }
    }

    /// Registrations held now.
    pub fn registrations(&self) -> usize {
        self.registry.len()
    }

    /// Swarms (namespaces) with registrations now.
    pub fn swarms(&self) -> usize {
        self.registry.namespaces()
    }

    fn on_request(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        msg: proto::Message,
    ) -> Option<proto::Message> {
        let now = Instant::now();
        // Every connection's address is recorded when it opens; a connection
        // without an IP address (none reach the relay today) shares one slot.
        let ip = self
            .addresses
            .get(&connection)
            .copied()
            .unwrap_or(AddrKey::V4(0));
        let request = match protocol::parse(msg) {
            Ok(request) => request,
            Err((kind, refusal)) => {
                let answer = match kind {
                    AnswerKind::Register => Some(protocol::register_response(Err(&refusal))),
                    AnswerKind::Discover => Some(protocol::discover_response(Err(&refusal))),
                    AnswerKind::None => None,
                };
                self.events.push_back(Event::Refused { peer, refusal });
                return answer;
            }
        };
        match request {
            Request::Register {
                namespace,
                record,
                ttl,
            } => {
                let result = record.and_then(|record| {
                    self.registry
                        .register(peer, ip, &namespace, record, ttl, now)
                });
                let answer = protocol::register_response(result.as_ref().copied());
                self.events.push_back(match result {
                    Ok(ttl) => Event::Registered {
                        peer,
                        namespace,
                        ttl,
                    },
                    Err(refusal) => Event::Refused { peer, refusal },
                });
                Some(answer)
            }
            Request::Unregister { namespace } => {
                if self.registry.unregister(peer, &namespace) {
                    self.events
                        .push_back(Event::Unregistered { peer, namespace });
                }
                None
            }
            Request::Discover {
                namespace,
                cookie,
                limit,
            } => {
                let result = self.registry.discover(
                    peer,
                    namespace.as_deref(),
                    cookie.as_deref(),
                    limit,
                    now,
                );
                match result {
                    Ok(page) => {
                        let found = page.registrations.len();
                        self.events.push_back(Event::Discovered { peer, found });
                        Some(protocol::discover_response(Ok(page)))
                    }
                    Err(refusal) => {
                        let answer = protocol::discover_response(Err(&refusal));
                        self.events.push_back(Event::Refused { peer, refusal });
                        Some(answer)
                    }
                }
            }
        }
    }
}

/// The IP of a connection's remote address (`/ip4|ip6/...`).
fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler =
        <request_response::Behaviour<Codec> as NetworkBehaviour>::ConnectionHandler;
    type ToSwarm = Event;

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.inner.handle_established_inbound_connection(
            connection_id,
            peer,
            local_addr,
            remote_addr,
        )
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.inner.handle_established_outbound_connection(
            connection_id,
            peer,
            addr,
            role_override,
            port_use,
        )
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match &event {
            FromSwarm::ConnectionEstablished(e) => {
                if let Some(ip) = ip_of(e.endpoint.get_remote_address()) {
                    self.addresses.insert(e.connection_id, AddrKey::from(ip));
                }
            }
            FromSwarm::ConnectionClosed(e) => {
                self.addresses.remove(&e.connection_id);
                if e.remaining_established == 0 {
                    let count = self.registry.peer_disconnected(e.peer_id);
                    if count > 0 {
                        self.events.push_back(Event::Dropped { count });
                    }
                }
            }
            _ => {}
        }
        self.inner.on_swarm_event(event);
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.inner
            .on_connection_handler_event(peer_id, connection_id, event);
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Event, THandlerInEvent<Self>>> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Poll::Ready(ToSwarm::GenerateEvent(event));
            }
            if self.sweep.poll_tick(cx).is_ready() {
                let count = self.registry.expire(Instant::now());
                if count > 0 {
                    self.events.push_back(Event::Dropped { count });
                }
                continue;
            }
            let event = match self.inner.poll(cx) {
                Poll::Ready(ToSwarm::GenerateEvent(event)) => event,
                Poll::Ready(other) => {
                    return Poll::Ready(other.map_out(|_| unreachable!("matched above")));
                }
                Poll::Pending => return Poll::Pending,
            };
            match event {
                request_response::Event::Message {
                    peer,
                    connection_id,
                    message:
                        request_response::Message::Request {
                            request, channel, ..
                        },
                } => {
                    let answer = match request {
                        Ok(msg) => self.on_request(peer, connection_id, msg),
                        Err(e) => {
                            self.events.push_back(Event::BadStream {
                                peer,
                                error: e.to_string(),
                            });
                            None
                        }
                    };
                    // The peer may be gone already; nothing to do then.
                    let _ = self.inner.send_response(channel, answer);
                }
                request_response::Event::InboundFailure { peer, error, .. } => {
                    self.events.push_back(Event::BadStream {
                        peer,
                        error: error.to_string(),
                    });
                }
                _ => {}
            }
        }
    }
}
