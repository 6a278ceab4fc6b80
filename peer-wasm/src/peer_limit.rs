//! `maxPeers` as a libp2p behaviour: a connection to a new peer beyond the
//! limit is denied when it is established, inbound or outbound, so strangers
//! that dial us cannot take more room than the page allowed. The rule is
//! `shoal_proto::peer_limit` (tested natively); this only feeds it.

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use libp2p::{
    core::{transport::PortUse, Endpoint},
    swarm::{
        behaviour::ConnectionEstablished, dummy, ConnectionClosed, ConnectionDenied, ConnectionId,
        FromSwarm, NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
    },
    Multiaddr, PeerId,
};
use shoal_proto::peer_limit::PeerLimit;

pub struct Behaviour(PeerLimit<PeerId>);

impl Behaviour {
    /// At most `max` peers; the relay is not one of them.
    pub fn new(max: usize, relay: PeerId) -> Self {
        Self(PeerLimit::new(max, [relay]))
    }

    fn check(&self, peer: &PeerId) -> Result<THandler<Self>, ConnectionDenied> {
        self.0.admit(peer).map_err(|e| {
            tracing::info!(%peer, "connection refused: {e}");
            ConnectionDenied::new(e)
        })?;
        Ok(dummy::ConnectionHandler)
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check(&peer)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check(&peer)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished { peer_id, .. }) => {
                self.0.established(peer_id)
            }
            FromSwarm::ConnectionClosed(ConnectionClosed { peer_id, .. }) => {
                self.0.closed(&peer_id)
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}
