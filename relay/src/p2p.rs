//! The libp2p side: a swarm that is a circuit-relay-v2 server and a
//! rendezvous point for browsers.
//!
//! Its only transport is the [`crate::bridge`]: WebSockets the HTTP server
//! accepted. Browsers connect there, reserve a relayed address, register it at the
//! rendezvous server under the swarm's namespace, discover each other, and
//! open relayed connections to signal WebRTC (or, as a fallback, to carry the
//! data itself).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Multiaddr;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{connection_limits, identify, noise, ping, relay, yamux, PeerId, Swarm, Transport};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::bridge::BridgeTransport;
use crate::config::Limits;
use crate::metrics::Metrics;
use crate::state::AppState;

/// `protocol_version` announced by identify. rust-libp2p does not check it;
/// the identify stream protocol itself is always `/ipfs/id/1.0.0`.
pub const IDENTIFY_PROTOCOL_VERSION: &str = "/ipfs/id/1.0.0";

/// Browsers are never dialled back, so a dropped idle connection would lose
/// their reservation until they notice; keep idle connections for an hour.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum P2pError {
    #[error("cannot set up the libp2p transport: {0}")]
    Transport(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: Multiaddr, reason: String },
    #[error("libp2p listener on {addr} reported no address within {timeout:?}")]
    ListenTimeout { addr: Multiaddr, timeout: Duration },
}

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    // First: it refuses connections before the others see them.
    limits: connection_limits::Behaviour,
    relay: relay::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    rendezvous: crate::rendezvous::Behaviour,
}

/// The relay-server configuration: the CLI limits and the rate limits of
/// [`crate::limits`] (instead of libp2p's, which refuse an office's tabs).
pub fn relay_config(limits: &Limits) -> relay::Config {
    use crate::limits::{
        RateLimit, CIRCUITS_PER_IP, CIRCUITS_PER_PEER, RESERVATIONS_PER_IP, RESERVATIONS_PER_PEER,
    };
    let burst = |r: &RateLimit| NonZeroU32::new(r.burst).unwrap_or(NonZeroU32::MIN);
    relay::Config {
        max_reservations: limits.max_reservations,
        max_circuits: limits.max_circuits,
        max_circuits_per_peer: limits.max_circuits_per_peer,
        max_circuit_duration: limits.max_circuit_duration(),
        max_circuit_bytes: limits.max_circuit_bytes,
        reservation_rate_limiters: Vec::new(),
        circuit_src_rate_limiters: Vec::new(),
        ..relay::Config::default()
    }
    .reservation_rate_per_peer(burst(&RESERVATIONS_PER_PEER), RESERVATIONS_PER_PEER.every)
    .reservation_rate_per_ip(burst(&RESERVATIONS_PER_IP), RESERVATIONS_PER_IP.every)
    .circuit_src_per_peer(burst(&CIRCUITS_PER_PEER), CIRCUITS_PER_PEER.every)
    .circuit_src_per_ip(burst(&CIRCUITS_PER_IP), CIRCUITS_PER_IP.every)
}

/// Connection counts the swarm enforces (per IP is enforced before the
/// WebSocket upgrade, in [`crate::admission`]).
fn connection_limits(limits: &Limits) -> connection_limits::ConnectionLimits {
    use crate::limits::{MAX_CONNECTIONS_PER_PEER, MAX_PENDING_CONNECTIONS};
    connection_limits::ConnectionLimits::default()
        .with_max_established_incoming(Some(limits.max_connections))
        .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
        .with_max_pending_incoming(Some(MAX_PENDING_CONNECTIONS))
}

pub fn build_swarm(
    keypair: Keypair,
    limits: &Limits,
    transport: BridgeTransport,
) -> Result<Swarm<Behaviour>, P2pError> {
    let relay_config = relay_config(limits);
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        // The WebSockets the HTTP server accepted; the relay never dials.
        .with_other_transport(|key| {
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                transport
                    .upgrade(Version::V1Lazy)
                    .authenticate(noise::Config::new(key)?)
                    .multiplex(yamux::Config::default())
                    .timeout(crate::limits::UPGRADE_TIMEOUT),
            )
        })
        .map_err(|e| P2pError::Transport(e.to_string()))?
        .with_behaviour(|key| {
            let local_peer_id = key.public().to_peer_id();
            let mut relay = relay::Behaviour::new(local_peer_id, relay_config);
            // Advertise HOP even before an external address is known: on a
            // LAN or behind a proxy none may ever be confirmed.
            relay.set_status(Some(relay::Status::Enable));
            Behaviour {
                limits: connection_limits::Behaviour::new(connection_limits(limits)),
                relay,
                identify: identify::Behaviour::new(
                    identify::Config::new(IDENTIFY_PROTOCOL_VERSION.into(), key.public())
                        .with_agent_version(format!("shoal-relay/{}", env!("CARGO_PKG_VERSION"))),
                ),
                ping: ping::Behaviour::default(),
                rendezvous: crate::rendezvous::Behaviour::new(crate::rendezvous::Policy::default()),
            }
        })
        .map_err(|e| P2pError::Transport(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    Ok(swarm)
}

/// Starts the bridge's listener on `addr` (the HTTP server's address as a
/// `/ws` multiaddr) and waits (at most `timeout`) until the swarm has taken
/// it, so that `/api/info` lists it from the start.
pub async fn listen(
    swarm: &mut Swarm<Behaviour>,
    state: &AppState,
    addr: Multiaddr,
    timeout: Duration,
) -> Result<Multiaddr, P2pError> {
    swarm
        .listen_on(addr.clone())
        .map_err(|e| P2pError::Listen {
            addr: addr.clone(),
            reason: error_chain(&e),
        })?;
    let first = tokio::time::timeout(timeout, async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => return Ok(address),
                SwarmEvent::ListenerClosed { reason, .. } => {
                    let reason = reason.err().map_or("closed".into(), |e| error_chain(&e));
                    return Err(P2pError::Listen {
                        addr: addr.clone(),
                        reason,
                    });
                }
                SwarmEvent::ListenerError { error, .. } => {
                    return Err(P2pError::Listen {
                        addr: addr.clone(),
                        reason: error_chain(&error),
                    });
                }
                other => on_event(swarm, state, other),
            }
        }
    })
    .await
    .map_err(|_| P2pError::ListenTimeout {
        addr: addr.clone(),
        timeout,
    })??;
    on_new_listen_addr(swarm, state, first.clone());
    Ok(first)
}

/// Runs the swarm until `stop` turns true (or its sender is dropped).
pub async fn drive(
    mut swarm: Swarm<Behaviour>,
    state: Arc<AppState>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            event = swarm.select_next_some() => on_event(&mut swarm, &state, event),
        }
    }
    let peers = swarm.connected_peers().count();
    info!(peers, "p2p stopped; closing connections");
}

/// The transport's errors wrap each other and some print nothing themselves
/// (a busy port shows as ""): join every non-empty message in the chain.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let msg = e.to_string();
        if !msg.is_empty() && !parts.iter().any(|p: &String| p.contains(&msg)) {
            parts.push(msg);
        }
        next = e.source();
    }
    if parts.is_empty() {
        format!("{error:?}")
    } else {
        parts.join(": ")
    }
}

fn with_peer_id(addr: Multiaddr, peer_id: PeerId) -> Multiaddr {
    addr.with_p2p(peer_id).unwrap_or_else(|addr| addr)
}

/// Announces `addr` to clients: in relay reservations and in `/api/info`.
pub fn announce(swarm: &mut Swarm<Behaviour>, state: &AppState, addr: Multiaddr) {
    let full = with_peer_id(addr.clone(), *swarm.local_peer_id()).to_string();
    swarm.add_external_address(addr);
    state.update_info(|info| {
        if !info.listen_addrs.contains(&full) {
            info.listen_addrs.push(full);
        }
    });
}

fn on_new_listen_addr(swarm: &mut Swarm<Behaviour>, state: &AppState, address: Multiaddr) {
    info!(
        "p2p listening on {}",
        with_peer_id(address.clone(), *swarm.local_peer_id())
    );
    // Relay reservations hand out the relay's external addresses; with none,
    // browsers get a reservation they cannot build a circuit address from.
    announce(swarm, state, address);
}

fn on_event(swarm: &mut Swarm<Behaviour>, state: &AppState, event: SwarmEvent<BehaviourEvent>) {
    match event {
        SwarmEvent::Behaviour(event) => {
            on_behaviour_event(state.metrics(), event);
            let rendezvous = &swarm.behaviour().rendezvous;
            let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
            let metrics = state.metrics();
            metrics
                .rendezvous_registrations
                .set(gauge(rendezvous.registrations()));
            metrics.rendezvous_swarms.set(gauge(rendezvous.swarms()));
        }
        SwarmEvent::NewListenAddr { address, .. } => on_new_listen_addr(swarm, state, address),
        SwarmEvent::ExpiredListenAddr { address, .. } => {
            info!("p2p no longer listening on {address}");
            swarm.remove_external_address(&address);
            let full = with_peer_id(address, *swarm.local_peer_id()).to_string();
            state.update_info(|info| info.listen_addrs.retain(|a| *a != full));
        }
        SwarmEvent::ListenerClosed {
            addresses, reason, ..
        } => {
            warn!(?addresses, ?reason, "p2p listener closed");
        }
        SwarmEvent::ListenerError { error, .. } => warn!("p2p listener error: {error}"),
        SwarmEvent::ConnectionEstablished {
            peer_id,
            endpoint,
            num_established,
            ..
        } => {
            if num_established.get() == 1 {
                state.metrics().peers.inc();
            }
            debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), num_established, "connection opened");
        }
        SwarmEvent::ConnectionClosed {
            peer_id,
            endpoint,
            num_established,
            cause,
            ..
        } => {
            if num_established == 0 {
                state.metrics().peers.dec();
            }
            let cause = cause.map_or_else(|| "closed".to_string(), |c| c.to_string());
            debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), num_established, %cause, "connection closed");
        }
        SwarmEvent::IncomingConnectionError {
            send_back_addr,
            error,
            ..
        } => {
            debug!(addr = %send_back_addr, "incoming connection failed: {error}");
        }
        other => debug!(?other, "swarm event"),
    }
}

fn on_behaviour_event(metrics: &Metrics, event: BehaviourEvent) {
    match event {
        BehaviourEvent::Relay(event) => on_relay_event(metrics, event),
        BehaviourEvent::Rendezvous(event) => on_rendezvous_event(metrics, event),
        BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
            debug!(peer = %peer_id, agent = %info.agent_version, "identified");
        }
        BehaviourEvent::Identify(_) | BehaviourEvent::Ping(_) | BehaviourEvent::Limits(_) => {}
    }
}

fn on_relay_event(metrics: &Metrics, event: relay::Event) {
    use relay::Event as E;
    let outcome = match &event {
        E::ReservationReqAccepted { renewed: true, .. } => Some((&metrics.reservations, "renewed")),
        E::ReservationReqAccepted { .. } => Some((&metrics.reservations, "accepted")),
        E::ReservationReqDenied { .. } => Some((&metrics.reservations, "denied")),
        E::CircuitReqAccepted { .. } => Some((&metrics.circuits, "accepted")),
        E::CircuitReqDenied { .. } => Some((&metrics.circuits, "denied")),
        E::CircuitClosed { error: None, .. } => Some((&metrics.circuits_ended, "closed")),
        E::CircuitClosed { error: Some(_), .. } => Some((&metrics.circuits_ended, "failed")),
        _ => None,
    };
    if let Some((family, outcome)) = outcome {
        Metrics::count(family, outcome);
    }
    match event {
        E::ReservationReqAccepted {
            src_peer_id,
            renewed,
        } => {
            debug!(peer = %src_peer_id, renewed, "reservation accepted");
        }
        E::ReservationReqDenied {
            src_peer_id,
            status,
        } => {
            info!(peer = %src_peer_id, ?status, "reservation denied");
        }
        E::ReservationClosed { src_peer_id } => debug!(peer = %src_peer_id, "reservation closed"),
        E::ReservationTimedOut { src_peer_id } => {
            info!(peer = %src_peer_id, "reservation timed out")
        }
        E::CircuitReqAccepted {
            src_peer_id,
            dst_peer_id,
        } => {
            debug!(src = %src_peer_id, dst = %dst_peer_id, "circuit opened");
        }
        E::CircuitReqDenied {
            src_peer_id,
            dst_peer_id,
            status,
        } => {
            info!(src = %src_peer_id, dst = %dst_peer_id, ?status, "circuit denied");
        }
        E::CircuitClosed {
            src_peer_id,
            dst_peer_id,
            error,
        } => {
            let cause = error.map_or_else(|| "closed".to_string(), |e| e.to_string());
            debug!(src = %src_peer_id, dst = %dst_peer_id, %cause, "circuit closed");
        }
        // The remaining variants are deprecated upstream (failures now logged
        // by libp2p itself) or only report our own status.
        other => debug!(?other, "relay event"),
    }
}

fn on_rendezvous_event(metrics: &Metrics, event: crate::rendezvous::Event) {
    use crate::rendezvous::Event as E;
    match event {
        E::Registered {
            peer,
            namespace,
            ttl,
        } => {
            Metrics::count(&metrics.rendezvous, "registered");
            debug!(%namespace, %peer, ttl, "rendezvous registered");
        }
        E::Unregistered { peer, namespace } => {
            Metrics::count(&metrics.rendezvous, "unregistered");
            debug!(%namespace, %peer, "rendezvous unregistered");
        }
        E::Discovered { peer, found } => {
            Metrics::count(&metrics.rendezvous, "discover_served");
            debug!(%peer, found, "rendezvous discover served");
        }
        E::Refused { peer, refusal } => {
            Metrics::refuse(&metrics.rendezvous_refused, refusal.reason());
            debug!(%peer, reason = refusal.reason(), "rendezvous refused: {refusal}");
        }
        E::BadStream { peer, error } => {
            Metrics::refuse(&metrics.rendezvous_refused, "bad_stream");
            debug!(%peer, "rendezvous stream failed: {error}");
        }
        E::Dropped { count } => debug!(count, "rendezvous registrations dropped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn relay_config_takes_cli_limits() {
        let config = crate::Config::parse_from(["relay"]);
        let relay = relay_config(&config.limits);
        assert_eq!(relay.max_circuit_duration, Duration::from_secs(3600));
        assert_eq!(relay.max_circuit_bytes, 1 << 30);
        assert_eq!(relay.max_reservations, config.limits.max_reservations);
        assert_eq!(relay.max_circuits, config.limits.max_circuits);
    }

    #[tokio::test]
    async fn listens_on_the_http_address_and_records_it() {
        let config = crate::Config::parse_from(["relay"]);
        let keypair = Keypair::generate_ed25519();
        let peer_id = keypair.public().to_peer_id();
        let metrics = Arc::<crate::metrics::Metrics>::default();
        let (bridge, transport) = crate::bridge::bridge(metrics.clone());
        let mut swarm = build_swarm(keypair, &config.limits, transport).expect("swarm");
        let info = shoal_proto::info::RelayInfo {
            peer_id: peer_id.to_string(),
            p2p_path: shoal_proto::info::P2P_PATH.into(),
            stun_port: None,
            ice_servers: vec![],
            listen_addrs: vec![],
            version: "test".into(),
        };
        let state = AppState::new(info, ".".into(), bridge, Default::default(), false, metrics);
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/8080/ws".parse().expect("multiaddr");
        let bound = listen(&mut swarm, &state, addr.clone(), Duration::from_secs(5))
            .await
            .expect("listen");
        assert_eq!(bound, addr);
        assert_eq!(
            state.info().listen_addrs,
            vec![format!("{addr}/p2p/{peer_id}")]
        );
        assert!(swarm.external_addresses().any(|a| *a == addr));
    }
}
