//! The peer's Swarm: transports, behaviours, and the event loop that joins a
//! swarm through the relay and upgrades every relayed peer to a direct
//! WebRTC connection.
//!
//! Flow: connect to the relay over WebSocket → listen on
//! `<relay>/p2p-circuit` (a reservation) and `<relay>/p2p-circuit/webrtc` →
//! register under the swarm's rendezvous namespace and discover the others →
//! dial each over the relay circuit → once a relayed connection is up, the
//! peer with the smaller PeerId dials `/webrtc` through it. Transfers use
//! whichever connection exists; the relayed one is closed once a direct one
//! is up.
//!
//! Retries follow `shoal_proto::backoff`: a lost relay is redialed (0.5 s
//! doubling to 30 s, with jitter) until it is back, then the node reserves,
//! registers and discovers again; direct connections do not need the relay
//! and stay up meanwhile. The policy towards each peer — relayed first, a
//! direct dial by the smaller PeerId, the relayed connection closed once
//! direct, retries (2 s doubling to 60 s) while only relayed, fallback to the
//! relay when a direct connection dies — is the sans-IO
//! `shoal_proto::paths::PathManager`; this loop feeds it swarm events and
//! carries out its actions.

use std::time::Duration;

use futures::{channel::mpsc, FutureExt as _, StreamExt as _};
use futures_timer::Delay;
use libp2p::{
    core::{
        muxing::StreamMuxerBox,
        transport::{Boxed, ListenerId},
        upgrade::Version,
        ConnectedPoint, Transport as _,
    },
    identity,
    multiaddr::Protocol,
    noise, ping, relay, rendezvous,
    swarm::{
        dial_opts::{DialOpts, PeerCondition},
        ConnectionId, NetworkBehaviour, SwarmEvent,
    },
    yamux, Multiaddr, PeerId, Swarm,
};
use shoal_proto::{
    backoff::{Backoff, Policy},
    paths::{self, PathAction, PathManager},
};
use web_time::Instant;

use crate::{
    milestones::Milestone,
    state::{Path, SharedState},
    streams,
    transfer::Transfers,
    webrtc, ws,
};

/// Interval between discovery rounds at the relay (new peers also announce
/// themselves by dialing, so this is only a safety net).
const DISCOVER_EVERY: Duration = Duration::from_secs(5);
/// Pause before registering again after the relay refused a registration.
const REGISTER_RETRY: Duration = Duration::from_secs(5);
/// Bound on a dial to the relay or through it, handshakes included (the
/// path rules rely on it; see there).
const DIAL_TIMEOUT: Duration = paths::DIAL_TIMEOUT;
/// Rendezvous registrations live this long; renewed at half.
const REGISTRATION_TTL: u64 = shoal_proto::info::REGISTRATION_TTL_SECS;
/// A connection whose ping goes unanswered this long is closed as dead.
const PING_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the loop looks at its timers.
const TICK: Duration = Duration::from_millis(250);
/// Discovery asked for by transfers (a session from a peer not yet known as
/// a member) runs at most this often. Only such rounds count: one asked for
/// after a periodic round goes at once (a peer that registered and then
/// opened a session waited up to this long for the sharer to look it up:
/// 300 ms of a joining page's 800 to its first chunk).
const DISCOVER_ON_DEMAND_EVERY: Duration = Duration::from_secs(1);

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    // First: a connection it denies never reaches the others.
    limit: crate::peer_limit::Behaviour,
    relay: relay::client::Behaviour,
    rendezvous: rendezvous::client::Behaviour,
    // No identify: nothing here or at the relay reads what a peer announces
    // (our external address is the circuit, added by hand), and leaving it
    // out of the wasm saves 12,582 bytes of brotli (449,871 -> 437,289).
    ping: ping::Behaviour,
    stream: libp2p_stream::Behaviour,
    blocks: streams::Behaviour,
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
    /// Test-only: dial a peer through the relay's circuit whether or not it
    /// is in this node's swarm (a stranger reaching for a page).
    #[cfg(feature = "test-hooks")]
    TestDialRelayed(PeerId),
}

/// Why [`build`] could not make the Swarm (both are programming errors, not
/// runtime conditions, but they reach the page as `Node.start`'s rejection).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the WebRTC signaling protocol is already registered")]
    SignalingRegistered(#[from] libp2p_stream::AlreadyRegistered),
    #[error("Noise keys: {0}")]
    Noise(#[from] noise::Error),
}

/// The Swarm, and a stream control for the application's protocols.
pub fn build(
    keypair: identity::Keypair,
    webrtc_config: webrtc::Config,
    max_peers: usize,
    relay_peer: PeerId,
    early_socket: Option<web_sys::WebSocket>,
) -> Result<(Swarm<Behaviour>, streams::Control), BuildError> {
    let local_peer = keypair.public().to_peer_id();
    let (relay_transport, relay_behaviour) = relay::client::new(local_peer);
    let stream = libp2p_stream::Behaviour::new();
    let blocks = streams::Behaviour::new(crate::transfer::protocol());
    let app_control = blocks.new_control();
    let webrtc = webrtc::Transport::new(webrtc_config, stream.new_control())?;
    let noise = noise::Config::new(&keypair)?;
    let upgraded = relay_transport
        .or_transport(ws::Transport::with_early_socket(early_socket))
        .upgrade(Version::V1Lazy)
        .authenticate(noise)
        .multiplex(yamux::Config::default())
        .timeout(DIAL_TIMEOUT)
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
    let transport: Boxed<(PeerId, StreamMuxerBox)> = webrtc
        .or_transport(upgraded)
        .map(|either, _| match either {
            futures::future::Either::Left(out) | futures::future::Either::Right(out) => out,
        })
        .boxed();
    let behaviour = Behaviour {
        limit: crate::peer_limit::Behaviour::new(max_peers, relay_peer),
        relay: relay_behaviour,
        rendezvous: rendezvous::client::Behaviour::new(keypair.clone()),
        ping: ping::Behaviour::new(
            ping::Config::new()
                .with_interval(Duration::from_secs(5))
                .with_timeout(PING_TIMEOUT),
        ),
        stream,
        blocks,
    };
    let config = libp2p::swarm::Config::with_wasm_executor()
        // Relayed and direct connections stay up while the page is open.
        .with_idle_connection_timeout(Duration::from_secs(24 * 60 * 60));
    Ok((
        Swarm::new(transport, behaviour, local_peer, config),
        app_control,
    ))
}

/// A control of the swarm's `libp2p_stream` behaviour (for the test-only
/// echo protocol).
#[cfg(feature = "test-hooks")]
pub fn stream_control(swarm: &Swarm<Behaviour>) -> libp2p_stream::Control {
    swarm.behaviour().stream.new_control()
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
        epoch: Instant::now(),
        relay: RelayLink {
            dial: None,
            backoff: Backoff::new(Policy::RELAY),
            circuit_listener: None,
        },
        paths: PathManager::new(),
        next_discover: None,
        next_register: None,
        cookie: None,
        last_on_demand: None,
    };
    // `/webrtc` signaling arrives over any relayed connection; this listener
    // does not depend on the relay connection and lives as long as the node.
    let webrtc_addr = lp.circuit_addr().with(Protocol::WebRTC);
    if let Err(e) = swarm.listen_on(webrtc_addr.clone()) {
        tracing::warn!(%webrtc_addr, "cannot listen: {e}");
    }
    lp.state.mark(Milestone::RelayDial);
    lp.dial_relay(&mut swarm);
    let mut tick = Delay::new(TICK).fuse();
    loop {
        futures::select! {
            ev = swarm.select_next_some() => {
                lp.on_event(&mut swarm, ev);
                lp.discover_if_asked(&mut swarm);
            }
            _ = tick => {
                // A timer that outlives events: busy swarms still get their ticks.
                tick = Delay::new(TICK).fuse();
                lp.on_tick(&mut swarm);
            }
            cmd = commands.next() => match cmd {
                #[cfg(feature = "test-hooks")]
                Some(Command::TestDialRelayed(peer)) => {
                    let addr = lp.circuit_addr().with(Protocol::P2p(peer));
                    if let Err(e) = swarm.dial(DialOpts::peer_id(peer).addresses(vec![addr]).build()) {
                        tracing::warn!(%peer, "test dial failed at once: {e}");
                    }
                }
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

/// The connection to the relay, as far as the loop drives it.
struct RelayLink {
    /// Our own dial to the relay while it is pending. Other behaviours may
    /// dial the relay too (rendezvous requests, circuit dials); only ours
    /// moves the backoff, but a connection from any of them counts.
    dial: Option<ConnectionId>,
    /// When to dial again after a loss or a failed dial.
    backoff: Backoff,
    /// The `<relay>/p2p-circuit` listener (our reservation); one per relay
    /// connection.
    circuit_listener: Option<ListenerId>,
}

struct Loop {
    settings: Settings,
    state: SharedState,
    transfers: Transfers,
    /// `now` for the sans-IO schedules is the time since this instant.
    epoch: Instant,
    relay: RelayLink,
    /// Paths to every peer: what to dial, close and retry.
    paths: PathManager<PeerId, ConnectionId>,
    next_discover: Option<Instant>,
    next_register: Option<Instant>,
    cookie: Option<rendezvous::Cookie>,
    /// When discovery last ran because transfers asked for it.
    last_on_demand: Option<Instant>,
}

fn is_direct(addr: &Multiaddr) -> bool {
    streams::path_of(addr) == Path::Direct
}

/// Uniform in `[0, 1)`, for jitter.
fn random() -> f64 {
    js_sys::Math::random()
}

impl Loop {
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn dial_relay(&mut self, swarm: &mut Swarm<Behaviour>) {
        // `Disconnected`, not `…AndNotDialing`: a dial that another behaviour
        // started must not stop ours (its outcome is not reported to us).
        let opts = DialOpts::peer_id(self.settings.relay_peer)
            .addresses(vec![self.settings.relay_addr.clone()])
            .condition(PeerCondition::Disconnected)
            .build();
        let id = opts.connection_id();
        match swarm.dial(opts) {
            Ok(()) => self.relay.dial = Some(id),
            Err(e) if swarm.is_connected(&self.settings.relay_peer) => {
                tracing::debug!("not dialing the relay: {e}");
            }
            Err(e) => {
                tracing::warn!("cannot dial the relay: {e}");
                self.relay_dial_failed(e.to_string());
            }
        }
    }

    fn relay_dial_failed(&mut self, error: String) {
        self.relay.dial = None;
        self.state.update(|s| s.relay_dial_failed(error));
        let at = self.relay.backoff.failed(self.now(), random());
        let failures = self.relay.backoff.failures();
        tracing::info!(
            failures,
            "next relay dial in {:?}",
            at.saturating_sub(self.now())
        );
    }

    fn circuit_addr(&self) -> Multiaddr {
        self.settings.relay_addr.clone().with(Protocol::P2pCircuit)
    }

    fn dial_webrtc(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId) {
        let attempt = self.state.update(|s| s.begin_webrtc_attempt(&peer));
        self.state.mark(Milestone::WebrtcStart);
        let addr = self
            .circuit_addr()
            .with(Protocol::WebRTC)
            .with(Protocol::P2p(peer));
        // `Always`: the relayed connection to this peer is already up.
        let opts = DialOpts::peer_id(peer)
            .addresses(vec![addr])
            .condition(PeerCondition::Always)
            .build();
        let id = opts.connection_id();
        tracing::info!(%peer, attempt, "dialing /webrtc through the relayed connection");
        match swarm.dial(opts) {
            Ok(()) => self.paths.direct_dial_started(&peer, id),
            Err(e) => {
                tracing::warn!(%peer, "cannot start a /webrtc dial: {e}");
                let now = self.now();
                self.paths.direct_dial_refused(&peer, now, random());
            }
        }
    }

    /// Carries out what the path manager decided.
    fn apply_paths(&mut self, swarm: &mut Swarm<Behaviour>) {
        while let Some(action) = self.paths.poll_action() {
            match action {
                PathAction::DialDirect(peer) => self.dial_webrtc(swarm, peer),
                PathAction::Close(id, why) => {
                    match why {
                        paths::Why::Stale => tracing::info!(
                            "closing {id:?}: the peer dialed us, so it has lost this connection"
                        ),
                        paths::Why::Late => {
                            tracing::info!("closing {id:?}: relayed, and the peer is direct")
                        }
                        paths::Why::Relayed => tracing::debug!("closing {id:?}: now direct"),
                    }
                    swarm.close_connection(id);
                }
                PathAction::Usable(peer) => self.transfers.peer_usable(peer),
                PathAction::Gone(peer) => {
                    self.transfers.peer_gone(&peer);
                    // If it is still around, the next discovery lists it again.
                    self.cookie = None;
                }
                PathAction::RedialRelayed(peer) => {
                    // It may only have lost its direct path (fails at once
                    // if the peer has left).
                    let addr = self.circuit_addr().with(Protocol::P2p(peer));
                    let _ = swarm.dial(DialOpts::peer_id(peer).addresses(vec![addr]).build());
                }
            }
        }
    }

    /// The smaller PeerId starts WebRTC, so the two sides never race.
    fn should_initiate(&self, swarm: &Swarm<Behaviour>, peer: &PeerId) -> bool {
        swarm.local_peer_id().to_bytes() < peer.to_bytes()
    }

    fn on_tick(&mut self, swarm: &mut Swarm<Behaviour>) {
        let now = self.now();
        let instant = Instant::now();
        if self.next_discover.is_some_and(|t| instant >= t) {
            self.discover(swarm);
        }
        self.discover_if_asked(swarm);
        if self.next_register.is_some_and(|t| instant >= t) {
            self.register(swarm);
        }
        if self.relay.backoff.handle_timeout(now) {
            if !swarm.is_connected(&self.settings.relay_peer) {
                self.dial_relay(swarm);
            } else if self.relay.circuit_listener.is_none() {
                // Connected, but the reservation was refused or ended: ask again.
                self.listen_circuit(swarm);
            }
        }
        self.paths.handle_timeout(now);
        self.apply_paths(swarm);
    }

    /// Discovery asked for by transfers. The request is taken only when it
    /// can be served: one made within a second of the last such round waits
    /// for a later tick. Checked after every swarm event too, so that a peer
    /// that connected before it was seen as a member is looked up at once.
    fn discover_if_asked(&mut self, swarm: &mut Swarm<Behaviour>) {
        if swarm.is_connected(&self.settings.relay_peer)
            && self
                .last_on_demand
                .is_none_or(|t| Instant::now() >= t + DISCOVER_ON_DEMAND_EVERY)
            && self.transfers.take_discover_request()
        {
            self.last_on_demand = Some(Instant::now());
            // A whole listing, not only what is new since the cookie: the
            // peer asked about may have registered before it.
            self.cookie = None;
            self.discover(swarm);
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
        match swarm.behaviour_mut().rendezvous.register(
            ns,
            self.settings.relay_peer,
            Some(REGISTRATION_TTL),
        ) {
            Ok(()) => {
                self.next_register =
                    Some(Instant::now() + Duration::from_secs(REGISTRATION_TTL / 2))
            }
            Err(e) => {
                tracing::warn!("rendezvous registration failed: {e}");
                self.next_register = Some(Instant::now() + REGISTER_RETRY);
            }
        }
    }

    fn on_relay_connected(&mut self, swarm: &mut Swarm<Behaviour>, connection_id: ConnectionId) {
        tracing::info!("connected to the relay");
        self.state.mark(Milestone::RelayConnected);
        if self.relay.dial == Some(connection_id) {
            self.relay.dial = None;
        }
        self.state.update(|s| s.relay_connected());
        // Discovery needs only this connection: find the others while our
        // own reservation is still being made.
        self.discover(swarm);
        // A reservation lives on one relay connection: a new connection
        // needs a new listener (the old one closed with its connection).
        self.listen_circuit(swarm);
    }

    fn listen_circuit(&mut self, swarm: &mut Swarm<Behaviour>) {
        if let Some(old) = self.relay.circuit_listener.take() {
            swarm.remove_listener(old);
        }
        let addr = self.circuit_addr();
        match swarm.listen_on(addr.clone()) {
            Ok(id) => self.relay.circuit_listener = Some(id),
            Err(e) => tracing::warn!(%addr, "cannot listen: {e}"),
        }
    }

    fn on_relay_lost(&mut self, swarm: &mut Swarm<Behaviour>, cause: Option<String>) {
        tracing::warn!("lost the relay ({cause:?}); reconnecting");
        if let Some(old) = self.relay.circuit_listener.take() {
            swarm.remove_listener(old);
        }
        self.next_discover = None;
        self.next_register = None;
        // The relay may have restarted: a cookie from before means nothing to it.
        self.cookie = None;
        self.state.update(|s| s.relay_lost(cause));
        let at = self.relay.backoff.failed(self.now(), random());
        tracing::info!("next relay dial in {:?}", at.saturating_sub(self.now()));
    }

    fn on_event(&mut self, swarm: &mut Swarm<Behaviour>, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                if peer_id == self.settings.relay_peer {
                    if self.relay.dial == Some(connection_id) {
                        self.relay.dial = None;
                    }
                    // A second connection (two dials raced) changes nothing.
                    if num_established.get() == 1 {
                        self.on_relay_connected(swarm, connection_id);
                    }
                    return;
                }
                let addr = match &endpoint {
                    ConnectedPoint::Dialer { address, .. } => address.clone(),
                    ConnectedPoint::Listener { send_back_addr, .. } => send_back_addr.clone(),
                };
                let path = if is_direct(&addr) {
                    Path::Direct
                } else {
                    Path::Relayed
                };
                tracing::info!(peer = %peer_id, ?path, "connection established");
                self.state.mark(match path {
                    Path::Direct => Milestone::Direct,
                    Path::Relayed => Milestone::PeerRelayed,
                });
                self.state
                    .update(|s| s.connection_opened(peer_id, connection_id, path));
                // Transfers start at once on whatever path exists and move
                // when it changes; the relayed connection closes once direct.
                let initiator = self.should_initiate(swarm, &peer_id);
                let now = self.now();
                self.paths.connection_opened(
                    peer_id,
                    connection_id,
                    match path {
                        Path::Direct => paths::Path::Direct,
                        Path::Relayed => paths::Path::Relayed,
                    },
                    endpoint.is_dialer(),
                    initiator,
                    now,
                );
                self.apply_paths(swarm);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => {
                if peer_id == self.settings.relay_peer {
                    if num_established == 0 {
                        self.on_relay_lost(swarm, cause.map(|c| c.to_string()));
                    }
                    return;
                }
                tracing::info!(peer = %peer_id, "connection closed ({cause:?})");
                self.state
                    .update(|s| s.connection_closed(&peer_id, connection_id));
                let relay_up = swarm.is_connected(&self.settings.relay_peer);
                let now = self.now();
                self.paths
                    .connection_closed(&peer_id, &connection_id, relay_up, now, random());
                self.apply_paths(swarm);
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                let now = self.now();
                if let Some(peer) = self.paths.dial_failed(&connection_id, now, random()) {
                    let attempts = self
                        .state
                        .update(|s| s.webrtc_failed(&peer, error.to_string()));
                    let at = self.paths.next_retry(&peer).unwrap_or(now);
                    tracing::warn!(
                        %peer,
                        attempts,
                        "direct WebRTC connection failed: {error}; staying relayed, next try in {:?}",
                        at.saturating_sub(now)
                    );
                } else if self.relay.dial == Some(connection_id) {
                    tracing::warn!("cannot reach the relay: {error}");
                    self.relay_dial_failed(error.to_string());
                } else if peer_id == Some(self.settings.relay_peer) {
                    tracing::debug!("a dial to the relay failed: {error}");
                } else {
                    tracing::debug!(?peer_id, "dial failed: {error}");
                }
            }
            // A peer's `/webrtc` signaling stream arrived.
            SwarmEvent::IncomingConnection { send_back_addr, .. } if is_direct(&send_back_addr) => {
                self.state.mark(Milestone::WebrtcStart);
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                tracing::warn!(%send_back_addr, "inbound connection failed: {}", crate::log::chain(&error));
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } if self.relay.circuit_listener == Some(listener_id) => {
                self.relay.circuit_listener = None;
                tracing::warn!("relay reservation ended: {reason:?}");
                // Say why on the page: a refusal (the relay's limits) is not
                // a network failure, and other pages cannot reach this one
                // meanwhile.
                if let Err(e) = &reason {
                    self.state.update(|s| {
                        s.relay_reservation_refused(format!("the relay refused a reservation: {e}"))
                    });
                }
                if swarm.is_connected(&self.settings.relay_peer) {
                    let at = self.relay.backoff.failed(self.now(), random());
                    tracing::info!(
                        "asking for a reservation again in {:?}",
                        at.saturating_sub(self.now())
                    );
                }
            }
            SwarmEvent::Behaviour(ev) => self.on_behaviour(swarm, ev),
            _ => {}
        }
    }

    fn on_behaviour(&mut self, swarm: &mut Swarm<Behaviour>, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Relay(relay::client::Event::ReservationReqAccepted {
                renewal: false,
                ..
            }) => {
                tracing::info!("relay reservation accepted");
                self.state.mark(Milestone::Reserved);
                self.relay.backoff.reset();
                swarm.add_external_address(self.circuit_addr());
                self.state.update(|s| s.relay_reserved());
                self.register(swarm);
            }
            BehaviourEvent::Rendezvous(rendezvous::client::Event::Discovered {
                registrations,
                cookie,
                ..
            }) => {
                self.cookie = Some(cookie);
                let me = *swarm.local_peer_id();
                for reg in registrations {
                    let peer = reg.record.peer_id();
                    if peer == me {
                        continue;
                    }
                    self.state.mark(Milestone::Discovered);
                    // Signed by the peer: it registered in this swarm.
                    // Sessions are opened to and accepted from members only.
                    self.transfers.member_seen(peer);
                    if swarm.is_connected(&peer) {
                        continue;
                    }
                    if self.paths.backing_off(&peer) {
                        tracing::debug!(%peer, "closed on us lately; redialed on its schedule");
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
            BehaviourEvent::Rendezvous(rendezvous::client::Event::DiscoverFailed {
                error, ..
            }) => {
                tracing::warn!("discovery failed: {error:?}");
                self.cookie = None;
            }
            BehaviourEvent::Rendezvous(rendezvous::client::Event::Registered {
                namespace, ..
            }) => {
                tracing::info!(%namespace, "registered in the swarm");
                self.state.mark(Milestone::Registered);
                // Whoever registered just before us is found now; whoever
                // registers after us finds us. No one waits for a round.
                self.discover(swarm);
            }
            BehaviourEvent::Rendezvous(rendezvous::client::Event::RegisterFailed {
                error, ..
            }) => {
                tracing::warn!("registration refused: {error:?}");
            }
            BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Ok(rtt),
            }) => {
                self.state.update(|s| s.rtt(&peer, connection, rtt));
            }
            BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Err(error),
            }) => {
                // A connection that does not answer pings is dead even if no
                // one closed it (a relayed circuit whose far end vanished, a
                // direct path whose packets are dropped). Closing it ends the
                // sessions on it, and transfers move to what is left.
                tracing::warn!(%peer, "ping failed ({error}); closing that connection");
                swarm.close_connection(connection);
            }
            _ => {}
        }
    }
}
