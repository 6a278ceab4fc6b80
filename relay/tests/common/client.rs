//! A native libp2p client that does what a page does: dial the relay over
//! `/ws`, reserve a relayed address, register and discover at the rendezvous
//! server, ping.

use std::time::Duration;

use futures::StreamExt;
use libp2p::core::upgrade::Version;
use libp2p::multiaddr::{Multiaddr, Protocol};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    identity, noise, ping, relay, rendezvous, tcp, websocket, yamux, PeerId, Swarm, Transport,
};

#[derive(NetworkBehaviour)]
pub struct Client {
    pub relay: relay::client::Behaviour,
    pub rendezvous: rendezvous::client::Behaviour,
    pub ping: ping::Behaviour,
}

pub fn client() -> Swarm<Client> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_other_transport(|key| {
            let ws = websocket::Config::new(tcp::tokio::Transport::new(tcp::Config::default()));
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                ws.upgrade(Version::V1Lazy)
                    .authenticate(noise::Config::new(key)?)
                    .multiplex(yamux::Config::default()),
            )
        })
        .expect("transport")
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .expect("relay client")
        .with_behaviour(|key: &identity::Keypair, relay| Client {
            relay,
            rendezvous: rendezvous::client::Behaviour::new(key.clone()),
            ping: ping::Behaviour::default(),
        })
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build()
}

/// Polls `swarm` until `f` returns `Some`, at most 60 s.
pub async fn until<T>(
    swarm: &mut Swarm<Client>,
    mut f: impl FnMut(SwarmEvent<ClientEvent>) -> Option<T>,
) -> T {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Some(t) = f(swarm.select_next_some().await) {
                return t;
            }
        }
    })
    .await
    .expect("timed out waiting for swarm event")
}

/// Dials the relay and waits for the connection.
pub async fn connect(swarm: &mut Swarm<Client>, relay_addr: &Multiaddr) {
    swarm.dial(relay_addr.clone()).expect("dial relay");
    until(swarm, |e| match e {
        SwarmEvent::ConnectionEstablished { .. } => Some(()),
        SwarmEvent::OutgoingConnectionError { error, .. } => panic!("dial failed: {error}"),
        _ => None,
    })
    .await;
}

/// Registers in `ns`: the granted TTL, or the error code.
pub async fn register(
    swarm: &mut Swarm<Client>,
    ns: &str,
    relay_id: PeerId,
    ttl: Option<u64>,
) -> Result<u64, rendezvous::ErrorCode> {
    let ns = rendezvous::Namespace::new(ns.to_owned()).expect("namespace");
    swarm
        .behaviour_mut()
        .rendezvous
        .register(ns, relay_id, ttl)
        .expect("register");
    until(swarm, |e| match e {
        SwarmEvent::Behaviour(ClientEvent::Rendezvous(rendezvous::client::Event::Registered {
            ttl,
            ..
        })) => Some(Ok(ttl)),
        SwarmEvent::Behaviour(ClientEvent::Rendezvous(
            rendezvous::client::Event::RegisterFailed { error, .. },
        )) => Some(Err(error)),
        _ => None,
    })
    .await
}

/// Discovers in `ns` (`None`: every swarm): the PeerIds found, or the error.
pub async fn discover(
    swarm: &mut Swarm<Client>,
    ns: Option<&str>,
    relay_id: PeerId,
) -> Result<Vec<PeerId>, rendezvous::ErrorCode> {
    let ns = ns.map(|ns| rendezvous::Namespace::new(ns.to_owned()).expect("namespace"));
    swarm
        .behaviour_mut()
        .rendezvous
        .discover(ns, None, None, relay_id);
    until(swarm, |e| match e {
        SwarmEvent::Behaviour(ClientEvent::Rendezvous(rendezvous::client::Event::Discovered {
            registrations,
            ..
        })) => Some(Ok(registrations
            .iter()
            .map(|r| r.record.peer_id())
            .collect())),
        SwarmEvent::Behaviour(ClientEvent::Rendezvous(
            rendezvous::client::Event::DiscoverFailed { error, .. },
        )) => Some(Err(error)),
        _ => None,
    })
    .await
}

/// Reserves a relayed address; returns it.
pub async fn reserve(swarm: &mut Swarm<Client>, relay_addr: &Multiaddr) -> Multiaddr {
    swarm
        .listen_on(relay_addr.clone().with(Protocol::P2pCircuit))
        .expect("listen via relay");
    let addr = until(swarm, |e| match e {
        SwarmEvent::NewListenAddr { address, .. } => Some(address),
        SwarmEvent::ListenerClosed { reason, .. } => panic!("reservation refused: {reason:?}"),
        _ => None,
    })
    .await;
    swarm.add_external_address(addr.clone());
    addr
}

/// Drives a swarm in the background (keeps its connections open) until
/// the handle is dropped.
pub fn keep_alive(mut swarm: Swarm<Client>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let _ = swarm.select_next_some().await;
        }
    })
}
