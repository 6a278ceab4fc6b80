//! One simulated page: it does with the relay what a browser peer does
//! (WebSocket, Noise, Yamux; a circuit reservation; a rendezvous registration
//! in its swarm; a ping every 5 s) and then idles, answering the
//! coordinator's requests to discover its swarm or open a circuit to another
//! page (the relayed connection that signaling runs on).

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use libp2p::{
    core::upgrade::Version,
    multiaddr::Protocol,
    noise, ping, relay, rendezvous,
    swarm::{dial_opts::DialOpts, NetworkBehaviour, SwarmEvent},
    websocket, yamux, Multiaddr, PeerId, Swarm, Transport as _,
};
use tokio::sync::{mpsc, oneshot};

use crate::bound_tcp::BoundTcp;

#[derive(NetworkBehaviour)]
struct Page {
    relay: relay::client::Behaviour,
    rendezvous: rendezvous::client::Behaviour,
    ping: ping::Behaviour,
}

/// Why a page did not come up, or a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Failure {
    Dial,
    Reservation,
    Registration,
    Discovery,
    Circuit,
    Disconnected,
    Timeout,
}

pub enum Request {
    /// Discover the page's swarm; answer with the round trip.
    Discover(oneshot::Sender<Result<Duration, Failure>>),
    /// Dial `peer` through the relay, answer with the time until the
    /// connection is up, then close it.
    Circuit(PeerId, oneshot::Sender<Result<Duration, Failure>>),
}

/// What a page reports once it is up: its id, and how long each step took.
pub struct Ready {
    pub peer: PeerId,
    pub connect: Duration,
    pub reserve: Duration,
    pub register: Duration,
}

pub struct Setup {
    pub source: Ipv4Addr,
    pub relay_addr: Multiaddr,
    pub relay_peer: PeerId,
    pub namespace: rendezvous::Namespace,
}

/// Bound on each step; past it the step counts as [`Failure::Timeout`].
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

fn swarm(source: Ipv4Addr) -> Swarm<Page> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_other_transport(|key| {
            let ws = websocket::Config::new(BoundTcp { source });
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                ws.upgrade(Version::V1Lazy)
                    .authenticate(noise::Config::new(key)?)
                    .multiplex(yamux::Config::default()),
            )
        })
        .expect("transport")
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .expect("relay client")
        .with_behaviour(|key, relay| Page {
            relay,
            rendezvous: rendezvous::client::Behaviour::new(key.clone()),
            // As the browser peer: a ping every 5 s keeps the relay's idle
            // timeout away.
            ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(5))),
        })
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build()
}

/// Brings a page up, reports it on `ready`, then serves `requests` until the
/// coordinator drops the sender.
pub async fn run(
    setup: Setup,
    ready: oneshot::Sender<Result<Ready, Failure>>,
    requests: mpsc::Receiver<Request>,
) {
    let mut swarm = swarm(setup.source);
    match tokio::time::timeout(STEP_TIMEOUT * 3, up(&mut swarm, &setup)).await {
        Ok(Ok(r)) => {
            let _ = ready.send(Ok(r));
        }
        Ok(Err(f)) => {
            let _ = ready.send(Err(f));
            return;
        }
        Err(_) => {
            let _ = ready.send(Err(Failure::Timeout));
            return;
        }
    }
    serve(swarm, &setup, requests).await;
}

async fn up(swarm: &mut Swarm<Page>, setup: &Setup) -> Result<Ready, Failure> {
    let t0 = Instant::now();
    swarm
        .dial(setup.relay_addr.clone())
        .map_err(|_| Failure::Dial)?;
    next(swarm, |ev| match ev {
        SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == setup.relay_peer => {
            Some(Ok(()))
        }
        SwarmEvent::OutgoingConnectionError { error, .. } => {
            tracing::debug!("dial failed: {error}");
            Some(Err(Failure::Dial))
        }
        _ => None,
    })
    .await?;
    let connect = t0.elapsed();

    let t1 = Instant::now();
    let circuit = setup.relay_addr.clone().with(Protocol::P2pCircuit);
    swarm
        .listen_on(circuit.clone())
        .map_err(|_| Failure::Reservation)?;
    next(swarm, |ev| match ev {
        SwarmEvent::Behaviour(PageEvent::Relay(relay::client::Event::ReservationReqAccepted {
            ..
        })) => Some(Ok(())),
        SwarmEvent::ListenerClosed { .. } | SwarmEvent::ListenerError { .. } => {
            Some(Err(Failure::Reservation))
        }
        SwarmEvent::ConnectionClosed { peer_id, .. } if peer_id == setup.relay_peer => {
            Some(Err(Failure::Disconnected))
        }
        _ => None,
    })
    .await?;
    let reserve = t1.elapsed();

    let t2 = Instant::now();
    let me = *swarm.local_peer_id();
    swarm.add_external_address(circuit.with(Protocol::P2p(me)));
    swarm
        .behaviour_mut()
        .rendezvous
        .register(
            setup.namespace.clone(),
            setup.relay_peer,
            Some(shoal_proto::info::REGISTRATION_TTL_SECS),
        )
        .map_err(|e| {
            tracing::debug!("register: {e}");
            Failure::Registration
        })?;
    next(swarm, |ev| match ev {
        SwarmEvent::Behaviour(PageEvent::Rendezvous(rendezvous::client::Event::Registered {
            ..
        })) => Some(Ok(())),
        SwarmEvent::Behaviour(PageEvent::Rendezvous(
            rendezvous::client::Event::RegisterFailed { error, .. },
        )) => {
            tracing::debug!("registration refused: {error:?}");
            Some(Err(Failure::Registration))
        }
        SwarmEvent::ConnectionClosed { peer_id, .. } if peer_id == setup.relay_peer => {
            Some(Err(Failure::Disconnected))
        }
        _ => None,
    })
    .await?;
    Ok(Ready {
        peer: me,
        connect,
        reserve,
        register: t2.elapsed(),
    })
}

/// Polls the swarm until `f` decides; bounded by [`STEP_TIMEOUT`].
async fn next<T>(
    swarm: &mut Swarm<Page>,
    mut f: impl FnMut(SwarmEvent<PageEvent>) -> Option<Result<T, Failure>>,
) -> Result<T, Failure> {
    tokio::time::timeout(STEP_TIMEOUT, async {
        loop {
            if let Some(r) = f(swarm.select_next_some().await) {
                return r;
            }
        }
    })
    .await
    .map_err(|_| Failure::Timeout)?
}

async fn serve(mut swarm: Swarm<Page>, setup: &Setup, mut requests: mpsc::Receiver<Request>) {
    loop {
        tokio::select! {
            request = requests.recv() => match request {
                None => return,
                Some(Request::Discover(reply)) => {
                    let t = Instant::now();
                    swarm.behaviour_mut().rendezvous.discover(
                        Some(setup.namespace.clone()), None, None, setup.relay_peer,
                    );
                    let r = next(&mut swarm, |ev| match ev {
                        SwarmEvent::Behaviour(PageEvent::Rendezvous(
                            rendezvous::client::Event::Discovered { .. },
                        )) => Some(Ok(())),
                        SwarmEvent::Behaviour(PageEvent::Rendezvous(
                            rendezvous::client::Event::DiscoverFailed { .. },
                        )) => Some(Err(Failure::Discovery)),
                        _ => None,
                    })
                    .await;
                    let _ = reply.send(r.map(|()| t.elapsed()));
                }
                Some(Request::Circuit(peer, reply)) => {
                    let t = Instant::now();
                    let addr = setup
                        .relay_addr
                        .clone()
                        .with(Protocol::P2pCircuit)
                        .with(Protocol::P2p(peer));
                    let opts = DialOpts::peer_id(peer).addresses(vec![addr]).build();
                    let r = match swarm.dial(opts) {
                        Err(_) => Err(Failure::Circuit),
                        Ok(()) => {
                            next(&mut swarm, |ev| match ev {
                                SwarmEvent::ConnectionEstablished { peer_id, .. }
                                    if peer_id == peer => Some(Ok(())),
                                SwarmEvent::OutgoingConnectionError { peer_id: Some(p), .. }
                                    if p == peer => Some(Err(Failure::Circuit)),
                                _ => None,
                            })
                            .await
                        }
                    };
                    let _ = reply.send(r.map(|()| t.elapsed()));
                    let _ = swarm.disconnect_peer_id(peer);
                }
            },
            _ = swarm.select_next_some() => {}
        }
    }
}
