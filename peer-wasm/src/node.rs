//! The peer's Swarm: transports, behaviours, and the event loop that joins a
//! swarm through the relay and upgrades every relayed peer to a direct
//! WebRTC connection.
//!
//! Flow: connect to the relay over WebSocket → listen on
//! `<relay>/p2p-circuit` (a reservation) and `<relay>/p2p-circuit/webrtc` →
//! register under the swarm's rendezvous namespace and discover the others →
//! dial each over the relay circuit → once a relayed connection is up, the
//! peer with the smaller PeerId dials `/webrtc` through it. A failed WebRTC
//! dial is retried a few times; the relayed connection stays either way.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use futures::{channel::mpsc, FutureExt as _, StreamExt as _};
use futures_timer::Delay;
use libp2p::{
    core::{muxing::StreamMuxerBox, transport::Boxed, upgrade::Version, ConnectedPoint, Transport as _},
    identify, identity,
    multiaddr::Protocol,
    noise, ping, relay, rendezvous,
    swarm::{
        dial_opts::{DialOpts, PeerCondition},
        NetworkBehaviour, SwarmEvent,
    },
    yamux, Multiaddr, PeerId, Swarm,
};
use web_time::Instant;

use crate::{
    state::{Path, SharedState},
    ws::EagerFlush,
    transfer::Transfers,
    webrtc,
};

/// Interval between discovery rounds at the relay (new peers also announce
/// themselves by dialing, so this is only a safety net).
const DISCOVER_EVERY: Duration = Duration::from_secs(5);
/// Pause before reconnecting to a lost relay.
const RELAY_RETRY: Duration = Duration::from_secs(3);
/// WebRTC attempts per peer, and the pause before each retry.
const WEBRTC_ATTEMPTS: u32 = 3;
const WEBRTC_RETRY: Duration = Duration::from_secs(2);
/// A peer still only relayed after this long gets transfers over the relay
/// (the NAT fallback); a direct connection that comes later takes over.
const FALLBACK_AFTER: Duration = Duration::from_secs(15);
/// Rendezvous registrations live this long (the relay's minimum); renewed at half.
const REGISTRATION_TTL: u64 = 2 * 60 * 60;

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    relay: relay::client::Behaviour,
    rendezvous: rendezvous::client::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    stream: libp2p_stream::Behaviour,
}

/// What the page asked for.
#[derive(Debug, Clone)]
pub struct Settings {
    pub relay_addr: Multiaddr,
    pub relay_peer: PeerId,
    pub namespace: rendezvous::Namespace,
    pub max_peers: usize,
}

pub enum Command {
    Stop,
}

/// The Swarm, and a stream control for the application's protocols.
pub fn build(
    keypair: identity::Keypair,
    webrtc_config: webrtc::Config,
) -> Result<(Swarm<Behaviour>, libp2p_stream::Control), String> {
    let local_peer = keypair.public().to_peer_id();
    let (relay_transport, relay_behaviour) = relay::client::new(local_peer);
    let stream = libp2p_stream::Behaviour::new();
    let app_control = stream.new_control();
    let webrtc = webrtc::Transport::new(webrtc_config, stream.new_control()).map_err(|e| e.to_string())?;
    let noise = noise::Config::new(&keypair).map_err(|e| e.to_string())?;
    let upgraded = relay_transport
        .or_transport(libp2p::websocket_websys::Transport::default().map(|conn, _| EagerFlush(conn)))
        .upgrade(Version::V1Lazy)
        .authenticate(noise)
        .multiplex(yamux::Config::default())
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
    let transport: Boxed<(PeerId, StreamMuxerBox)> = webrtc
        .or_transport(upgraded)
        .map(|either, _| match either {
            futures::future::Either::Left(out) | futures::future::Either::Right(out) => out,
        })
        .boxed();
    let behaviour = Behaviour {
        relay: relay_behaviour,
        rendezvous: rendezvous::client::Behaviour::new(keypair.clone()),
        identify: identify::Behaviour::new(
            identify::Config::new("/ipfs/id/1.0.0".into(), keypair.public())
                .with_agent_version(format!("shoal-peer/{}", env!("CARGO_PKG_VERSION"))),
        ),
        ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(5))),
        stream,
    };
    let config = libp2p::swarm::Config::with_wasm_executor()
        // Relayed and direct connections stay up while the page is open.
        .with_idle_connection_timeout(Duration::from_secs(24 * 60 * 60));
    Ok((Swarm::new(transport, behaviour, local_peer, config), app_control))
}

/// The event loop. Ends on [`Command::Stop`].
pub async fn run(
    mut swarm: Swarm<Behaviour>,
    settings: Settings,
    state: SharedState,
    transfers: Transfers,
    mut commands: mpsc::Receiver<Command>,
) {
    let mut lp = Loop {
        settings,
        state,
        transfers,
        webrtc_dials: HashMap::new(),
        retries: BTreeMap::new(),
        relayed_since: HashMap::new(),
        listening: false,
        next_discover: None,
        next_register: None,
        cookie: None,
    };
    lp.dial_relay(&mut swarm);
    loop {
        let mut tick = Delay::new(Duration::from_millis(500)).fuse();
        futures::select! {
            ev = swarm.select_next_some() => lp.on_event(&mut swarm, ev),
            _ = tick => lp.on_tick(&mut swarm),
            cmd = commands.next() => match cmd {
                Some(Command::Stop) | None => {
                    swarm.behaviour_mut().rendezvous.unregister(lp.settings.namespace.clone(), lp.settings.relay_peer);
                    // Give the unregister a moment to leave.
                    let mut grace = Delay::new(Duration::from_millis(200)).fuse();
                    loop {
                        futures::select! {
                            _ = swarm.select_next_some() => {},
                            _ = grace => break,
                        }
                    }
                    lp.state.update(|s| s.set_stopped());
                    tracing::info!("node stopped");
                    return;
                }
            },
        }
    }
}

struct Loop {
    settings: Settings,
    state: SharedState,
    transfers: Transfers,
    /// Peers connected only through the relay, and since when (until they
    /// are handed to transfers as the fallback path).
    relayed_since: HashMap<PeerId, Instant>,
    /// Pending `/webrtc` dials, by the connection id the Swarm gave them.
    webrtc_dials: HashMap<libp2p::swarm::ConnectionId, PeerId>,
    /// Peers whose WebRTC dial failed: when to try again.
    retries: BTreeMap<PeerId, Instant>,
    listening: bool,
    next_discover: Option<Instant>,
    next_register: Option<Instant>,
    cookie: Option<rendezvous::Cookie>,
}

fn is_direct(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::WebRTC))
}

impl Loop {
    fn dial_relay(&mut self, swarm: &mut Swarm<Behaviour>) {
        let opts = DialOpts::peer_id(self.settings.relay_peer)
            .addresses(vec![self.settings.relay_addr.clone()])
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        if let Err(e) = swarm.dial(opts) {
            tracing::warn!("cannot dial the relay: {e}");
        }
        self.state.update(|s| s.relay_connecting());
    }

    fn circuit_addr(&self) -> Multiaddr {
        self.settings.relay_addr.clone().with(Protocol::P2pCircuit)
    }

    fn dial_webrtc(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId) {
        if self.webrtc_dials.values().any(|p| *p == peer) {
            return;
        }
        let attempt = self.state.update(|s| s.begin_webrtc_attempt(&peer));
        let addr = self.circuit_addr().with(Protocol::WebRTC).with(Protocol::P2p(peer));
        // `Always`: the relayed connection to this peer is already up.
        let opts = DialOpts::peer_id(peer).addresses(vec![addr]).condition(PeerCondition::Always).build();
        let id = opts.connection_id();
        tracing::info!(%peer, attempt, "dialing /webrtc through the relayed connection");
        match swarm.dial(opts) {
            Ok(()) => {
                self.webrtc_dials.insert(id, peer);
            }
            Err(e) => tracing::warn!(%peer, "cannot start a /webrtc dial: {e}"),
        }
    }

    /// The smaller PeerId starts WebRTC, so the two sides never race.
    fn should_initiate(&self, swarm: &Swarm<Behaviour>, peer: &PeerId) -> bool {
        swarm.local_peer_id().to_bytes() < peer.to_bytes()
    }

    fn on_tick(&mut self, swarm: &mut Swarm<Behaviour>) {
        let now = Instant::now();
        if self.next_discover.is_some_and(|t| now >= t) {
            self.discover(swarm);
        }
        if self.next_register.is_some_and(|t| now >= t) {
            self.register(swarm);
        }
        let fallback: Vec<PeerId> =
            self.relayed_since.iter().filter(|(_, t)| now >= **t + FALLBACK_AFTER).map(|(p, _)| *p).collect();
        for peer in fallback {
            self.relayed_since.remove(&peer);
            if self.state.read(|s| s.needs_direct(&peer)) {
                tracing::info!(%peer, "no direct path; transfers go through the relay (end-to-end encrypted)");
                self.transfers.peer_usable(peer);
            }
        }
        let due: Vec<PeerId> = self.retries.iter().filter(|(_, t)| now >= **t).map(|(p, _)| *p).collect();
        for peer in due {
            self.retries.remove(&peer);
            if peer == self.settings.relay_peer {
                self.dial_relay(swarm);
            } else if self.state.read(|s| s.needs_direct(&peer)) {
                self.dial_webrtc(swarm, peer);
            }
        }
    }

    fn discover(&mut self, swarm: &mut Swarm<Behaviour>) {
        swarm.behaviour_mut().rendezvous.discover(
            Some(self.settings.namespace.clone()),
            self.cookie.clone(),
            None,
            self.settings.relay_peer,
        );
        self.next_discover = Some(Instant::now() + DISCOVER_EVERY);
    }

    fn register(&mut self, swarm: &mut Swarm<Behaviour>) {
        let ns = self.settings.namespace.clone();
        match swarm.behaviour_mut().rendezvous.register(ns, self.settings.relay_peer, Some(REGISTRATION_TTL)) {
            Ok(()) => self.next_register = Some(Instant::now() + Duration::from_secs(REGISTRATION_TTL / 2)),
            Err(e) => {
                tracing::warn!("rendezvous registration failed: {e}");
                self.next_register = Some(Instant::now() + RELAY_RETRY);
            }
        }
    }

    fn on_event(&mut self, swarm: &mut Swarm<Behaviour>, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, .. } => {
                if peer_id == self.settings.relay_peer {
                    tracing::info!("connected to the relay");
                    self.state.update(|s| s.relay_connected());
                    // Discovery needs only this connection: find the others
                    // while our own reservation is still being made.
                    self.discover(swarm);
                    if !self.listening {
                        self.listening = true;
                        for addr in [self.circuit_addr(), self.circuit_addr().with(Protocol::WebRTC)] {
                            if let Err(e) = swarm.listen_on(addr.clone()) {
                                tracing::warn!(%addr, "cannot listen: {e}");
                            }
                        }
                    }
                    return;
                }
                let addr = match &endpoint {
                    ConnectedPoint::Dialer { address, .. } => address.clone(),
                    ConnectedPoint::Listener { send_back_addr, .. } => send_back_addr.clone(),
                };
                let path = if is_direct(&addr) { Path::Direct } else { Path::Relayed };
                self.webrtc_dials.remove(&connection_id);
                tracing::info!(peer = %peer_id, ?path, "connection established");
                self.state.update(|s| s.connection_opened(peer_id, connection_id, path));
                if path == Path::Direct {
                    // File bytes never cross the relay when a direct path
                    // exists: drop the relayed connections to this peer. Only
                    // the side that dialed /webrtc does, once its dial is
                    // complete: the answerer is done first, and closing the
                    // relayed connection then would cut the dialer's signaling.
                    if endpoint.is_dialer() {
                        for id in self.state.read(|s| s.relayed_connections(&peer_id)) {
                            swarm.close_connection(id);
                        }
                    }
                    self.relayed_since.remove(&peer_id);
                    self.transfers.peer_usable(peer_id);
                } else if !self.state.read(|s| s.has_direct(&peer_id)) {
                    self.relayed_since.entry(peer_id).or_insert_with(Instant::now);
                }
                if path == Path::Relayed && self.should_initiate(swarm, &peer_id) && self.state.read(|s| s.needs_direct(&peer_id)) {
                    self.dial_webrtc(swarm, peer_id);
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, connection_id, num_established, cause, .. } => {
                if peer_id == self.settings.relay_peer {
                    if num_established == 0 {
                        tracing::warn!("lost the relay ({cause:?}); reconnecting");
                        self.listening = false;
                        self.next_discover = None;
                        self.next_register = None;
                        self.state.update(|s| s.relay_lost(cause.map(|c| c.to_string())));
                        self.retry_relay_later();
                    }
                    return;
                }
                tracing::info!(peer = %peer_id, "connection closed ({cause:?})");
                self.state.update(|s| s.connection_closed(&peer_id, connection_id));
                if num_established == 0 {
                    self.transfers.peer_gone(&peer_id);
                    self.relayed_since.remove(&peer_id);
                    // It may only have lost its direct path: try the relay
                    // once (fails at once if the peer has left).
                    let addr = self.circuit_addr().with(Protocol::P2p(peer_id));
                    let _ = swarm.dial(DialOpts::peer_id(peer_id).addresses(vec![addr]).build());
                }
                if self.should_initiate(swarm, &peer_id) && self.state.read(|s| s.needs_direct(&peer_id)) {
                    self.retries.insert(peer_id, Instant::now() + WEBRTC_RETRY);
                }
            }
            SwarmEvent::OutgoingConnectionError { connection_id, peer_id, error } => {
                if let Some(peer) = self.webrtc_dials.remove(&connection_id) {
                    let attempts = self.state.update(|s| s.webrtc_failed(&peer, error.to_string()));
                    tracing::warn!(%peer, attempts, "direct WebRTC connection failed: {error}; staying relayed");
                    if attempts < WEBRTC_ATTEMPTS {
                        self.retries.insert(peer, Instant::now() + WEBRTC_RETRY * attempts);
                    }
                } else if peer_id == Some(self.settings.relay_peer) {
                    tracing::warn!("cannot reach the relay: {error}");
                    self.state.update(|s| s.relay_failed(error.to_string()));
                    self.retry_relay_later();
                } else {
                    tracing::debug!(?peer_id, "dial failed: {error}");
                }
            }
            SwarmEvent::IncomingConnectionError { send_back_addr, error, .. } => {
                tracing::warn!(%send_back_addr, "inbound connection failed: {error}");
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
            }
            SwarmEvent::Behaviour(ev) => self.on_behaviour(swarm, ev),
            _ => {}
        }
    }

    fn retry_relay_later(&mut self) {
        // Reuse the retry clock: a due entry for the relay redials it.
        self.retries.insert(self.settings.relay_peer, Instant::now() + RELAY_RETRY);
    }

    fn on_behaviour(&mut self, swarm: &mut Swarm<Behaviour>, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Relay(relay::client::Event::ReservationReqAccepted { renewal: false, .. }) => {
                tracing::info!("relay reservation accepted");
                swarm.add_external_address(self.circuit_addr());
                self.state.update(|s| s.relay_reserved());
                self.register(swarm);
            }
            BehaviourEvent::Rendezvous(rendezvous::client::Event::Discovered { registrations, cookie, .. }) => {
                self.cookie = Some(cookie);
                let me = *swarm.local_peer_id();
                for reg in registrations {
                    let peer = reg.record.peer_id();
                    if peer == me || swarm.is_connected(&peer) {
                        continue;
                    }
                    if self.state.read(|s| s.peer_count()) >= self.settings.max_peers {
                        tracing::info!(%peer, "peer limit reached; not dialing");
                        continue;
                    }
                    // Every member uses this relay, so its circuit is the way in.
                    let addr = self.circuit_addr().with(Protocol::P2p(peer));
                    tracing::info!(%peer, "discovered; dialing through the relay");
                    let opts = DialOpts::peer_id(peer).addresses(vec![addr]).build();
                    if let Err(e) = swarm.dial(opts) {
                        tracing::debug!(%peer, "not dialing: {e}");
                    }
                }
            }
            BehaviourEvent::Rendezvous(rendezvous::client::Event::DiscoverFailed { error, .. }) => {
                tracing::warn!("discovery failed: {error:?}");
                self.cookie = None;
            }
            BehaviourEvent::Rendezvous(rendezvous::client::Event::Registered { namespace, .. }) => {
                tracing::info!(%namespace, "registered in the swarm");
                // Whoever registered just before us is found now; whoever
                // registers after us finds us. No one waits for a round.
                self.discover(swarm);
            }
            BehaviourEvent::Rendezvous(rendezvous::client::Event::RegisterFailed { error, .. }) => {
                tracing::warn!("registration refused: {error:?}");
            }
            BehaviourEvent::Ping(ping::Event { peer, connection, result: Ok(rtt) }) => {
                self.state.update(|s| s.rtt(&peer, connection, rtt));
            }
            _ => {}
        }
    }
}
