//! The shoal relay: one process, one port. It serves the page, `/api/info`,
//! `/healthz` and the peers' libp2p WebSocket over HTTP or HTTPS, runs the
//! libp2p node browsers meet through, and answers STUN on a UDP port.
//!
//! # Layout
//! - [`config`]: the command line (clap) and the defaults derived from it.
//! - [`limits`]: every fixed limit on what clients send, with its reason.
//! - [`metrics`]: what the relay does, counted, for `GET /metrics`.
//! - [`identity`]: the ed25519 key on disk that keeps the PeerId stable.
//! - [`tls`]: HTTPS from certificate files or ACME (rustls).
//! - [`http`]: `router()` — `/healthz`, `/api/info`, `/metrics`, `/p2p`, the page.
//! - [`proxy`]: the client's address behind trusted reverse proxies.
//! - [`accept`]: plain-HTTP sockets must send within a bound before HTTP sees them.
//! - [`admission`]: how many libp2p WebSockets one address may hold.
//! - [`bandwidth`]: the total bandwidth cap, a token bucket all connections share.
//! - [`bridge`]: WebSockets accepted by the HTTP server, as a libp2p transport.
//! - [`p2p`]: the swarm — circuit relay v2 server, identify, ping,
//!   rendezvous server — and its event loop.
//! - [`rendezvous`]: shoal's rendezvous server: registry, wire format, driver.
//!   Its messages are `prost` structs framed by `prost-codec` over
//!   `asynchronous-codec` (async streams); the same protobuf and varint
//!   crates are under `shoal_proto`'s codec layer.
//! - [`state`]: [`AppState`], what `/api/info` reports, shared by both sides.
//! - [`stun`]: a STUN Binding server on UDP, so browsers learn their NAT address.
//!
//! # Data flow
//! [`Relay::bind`] loads the key, sets up TLS, binds the one TCP listener,
//! builds the swarm on the bridge's transport and starts its listener.
//! [`Relay::serve`] runs two tasks until shutdown: axum-server answers HTTP(S)
//! from [`AppState`] and hands WebSocket upgrades at `/p2p` to the bridge; the
//! swarm task drives libp2p. A page loads from the relay, reads `/api/info`
//! (PeerId, ICE servers), opens `ws[s]://<origin>/p2p`, reserves a relayed
//! address and registers it at the rendezvous server; other pages discover
//! it there. Browsers then signal WebRTC over a relayed connection and talk
//! directly; only when that fails does their data flow through the relay.

pub mod accept;
pub mod admission;
pub mod bandwidth;
pub mod bridge;
pub mod config;
pub mod http;
pub mod identity;
pub mod limits;
pub mod metrics;
pub mod p2p;
pub mod proxy;
pub mod rendezvous;
pub mod state;
pub mod stun;
pub mod tls;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsAcceptor;
use libp2p::Swarm;
use shoal_proto::info::{RelayInfo, P2P_PATH};
use tokio::sync::watch;
use tracing::{info, warn};

pub use config::Config;
pub use state::AppState;

/// How long start-up waits for the libp2p listener to report its address.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open HTTP requests and the swarm get to finish after a signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    #[error(transparent)]
    P2p(#[from] p2p::P2pError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Stun(#[from] stun::StunError),
    #[error("cannot listen on {addr}: {reason}")]
    HttpBind { addr: SocketAddr, reason: io::Error },
    #[error("HTTP server failed: {0}")]
    Http(io::Error),
    #[error("a server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A relay with its listener bound, not yet serving.
pub struct Relay {
    state: Arc<AppState>,
    swarm: Swarm<p2p::Behaviour>,
    http: std::net::TcpListener,
    http_addr: SocketAddr,
    tls: tls::Tls,
    stun: Option<tokio::net::UdpSocket>,
    stun_stats: Arc<stun::StunStats>,
}

impl Relay {
    pub async fn bind(config: &Config) -> Result<Self, Error> {
        let (keypair, origin) = identity::load_or_create(&config.identity)?;
        identity::warn_if_exposed(&config.identity);
        let peer_id = keypair.public().to_peer_id();
        let verb = match origin {
            identity::Origin::Loaded => "loaded",
            identity::Origin::Created => "created",
        };
        info!("{verb} identity key {}", config.identity.display());
        info!("peer id {peer_id}");
        info!("limits: {}", config.limits);
        info!("fixed limits: {}", limits::summary());

        let www = config.www_dir();
        if !www.join("index.html").is_file() {
            warn!("no index.html in {}; only the API will work", www.display());
        }
        let tls = tls::setup(&config.tls)?;

        let bind_err = |reason| Error::HttpBind {
            addr: config.listen,
            reason,
        };
        let http = std::net::TcpListener::bind(config.listen).map_err(bind_err)?;
        http.set_nonblocking(true).map_err(bind_err)?;
        let http_addr = http.local_addr().map_err(bind_err)?;

        let stun = match config.stun_addr() {
            Some(addr) => Some(stun::bind(addr).await?),
            None => {
                info!("built-in STUN server off (--no-stun)");
                None
            }
        };
        let stun_port = stun.as_ref().map(|(_, addr)| addr.port());

        let metrics = Arc::new(metrics::Metrics::default());
        let (bridge, transport) = bridge::bridge(metrics.clone());
        let bridge = bridge.with_bandwidth(bandwidth::Bandwidth::new(
            config.limits.max_relay_bytes_per_sec,
        ));
        metrics
            .bandwidth_limit
            .set(i64::try_from(config.limits.max_relay_bytes_per_sec).unwrap_or(i64::MAX));
        let state = Arc::new(
            AppState::new(
                RelayInfo {
                    peer_id: peer_id.to_string(),
                    p2p_path: P2P_PATH.to_string(),
                    stun_port,
                    ice_servers: config.ice.servers(),
                    listen_addrs: Vec::new(),
                    version: env!("CARGO_PKG_VERSION").to_string(),
                },
                www,
                bridge,
                proxy::TrustedProxies::new(config.trusted_proxies.clone()),
                tls.is_on(),
                metrics.clone(),
            )
            .with_admission(admission::Admission::new(
                config.limits.max_connections_per_ip,
                config.limits.max_connections as usize,
            )),
        );

        let mut swarm = p2p::build_swarm(keypair, &config.limits, transport)?;
        let listen_addr = config::ws_multiaddr(http_addr, tls.is_on());
        p2p::listen(&mut swarm, &state, listen_addr, LISTEN_TIMEOUT).await?;
        for addr in config.announced_addrs(http_addr.port()) {
            info!("announcing external address {addr}");
            p2p::announce(&mut swarm, &state, addr);
        }
        Ok(Self {
            state,
            swarm,
            http,
            http_addr,
            tls,
            stun: stun.map(|(socket, _)| socket),
            stun_stats: Arc::new(stun::StunStats::new(&metrics)),
        })
    }

    /// The bound address (the real port when `--listen` used port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn info(&self) -> RelayInfo {
        self.state.info()
    }

    /// Serves HTTP(S) and drives the swarm until `shutdown` completes, then
    /// gives both [`SHUTDOWN_GRACE`] to finish.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), Error> {
        let Self {
            state,
            swarm,
            http,
            http_addr,
            tls,
            stun,
            stun_stats,
        } = self;
        info!("serving page from {}", state.www().display());
        let scheme = if tls.is_on() { "https" } else { "http" };

        let (stop_tx, stop_rx) = watch::channel(false);
        let mut swarm_task = tokio::spawn(p2p::drive(swarm, state.clone(), stop_rx.clone()));
        if let Some(socket) = stun {
            tokio::spawn(stun::serve(socket, stun_stats, stop_rx.clone()));
        }
        let handle = axum_server::Handle::new();
        let mut server = axum_server::from_tcp(http)
            .map_err(Error::Http)?
            .handle(handle.clone());
        server
            .http_builder()
            .http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits::HTTP_HEADER_TIMEOUT);
        let app = http::router(state).into_make_service_with_connect_info::<SocketAddr>();
        let mut http_task = match tls {
            tls::Tls::Off => tokio::spawn(
                server
                    .acceptor(accept::NoDelay(accept::FirstByte::new(
                        limits::HTTP_HEADER_TIMEOUT,
                    )))
                    .serve(app),
            ),
            tls::Tls::Files(config) => tokio::spawn(
                server
                    .acceptor(
                        RustlsAcceptor::new(config)
                            .handshake_timeout(limits::TLS_HANDSHAKE_TIMEOUT)
                            .acceptor(accept::NoDelay(axum_server::accept::DefaultAcceptor)),
                    )
                    .serve(app),
            ),
            tls::Tls::Acme(acceptor) => tokio::spawn(
                server
                    .acceptor(tls::Timeout::new(
                        accept::NoDelay(acceptor),
                        limits::TLS_HANDSHAKE_TIMEOUT,
                    ))
                    .serve(app),
            ),
        };
        // Printed last so that tests can wait for it: everything is up now.
        info!("listening on {scheme}://{http_addr}");

        let early = tokio::select! {
            () = shutdown => None,
            res = &mut http_task => Some(res),
            res = &mut swarm_task => {
                warn!("p2p task ended unexpectedly");
                res?;
                None
            }
        };
        if let Some(res) = early {
            let _ = stop_tx.send(true);
            return res?.map_err(Error::Http);
        }

        info!("shutting down");
        handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
        let _ = stop_tx.send(true);
        match tokio::time::timeout(SHUTDOWN_GRACE * 2, &mut http_task).await {
            Ok(res) => res?.map_err(Error::Http)?,
            Err(_) => {
                warn!("HTTP connections still open after {SHUTDOWN_GRACE:?}; dropping them");
                http_task.abort();
            }
        }
        if !swarm_task.is_finished()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut swarm_task)
                .await
                .is_err()
        {
            warn!("p2p task did not stop within {SHUTDOWN_GRACE:?}");
            swarm_task.abort();
        }
        info!("relay stopped");
        Ok(())
    }
}

/// Binds, then serves until Ctrl-C or SIGTERM.
pub async fn run(config: Config) -> Result<(), Error> {
    Relay::bind(&config).await?.serve(shutdown_signal()).await
}

/// Completes on Ctrl-C or (on Unix) SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            warn!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(e) => {
                warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => info!("received Ctrl-C"),
        () = terminate => info!("received SIGTERM"),
    }
}
